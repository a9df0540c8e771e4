"""What a real CLI sent to the proxy, read back from the proxy's own access log.

A proxy started with ``log_bodies=True`` logs each client request body (redacted: long strings cut to
200 characters, secrets replaced) on the ``rawproxy.access`` logger as ``"<rid> body <json>"``. The small
fields the tests look at (``model``, ``thinking``, ``output_config``, ``reasoning``) come through whole,
so a test can compare what the CLI asked for with what the fake upstream received.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

__all__ = ["client_bodies"]


def client_bodies(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The client request bodies the proxy logged, in order (the test must hold
    ``caplog.at_level(logging.INFO, logger="rawproxy.access")``)."""
    bodies: list[dict[str, Any]] = []
    for record in caplog.records:
        if record.name != "rawproxy.access" or record.levelno != logging.INFO:
            continue
        message = record.getMessage()
        rid, sep, rest = message.partition(" body ")
        if not sep or not rid.isdigit():
            continue
        body = json.loads(rest)
        if isinstance(body, dict):
            bodies.append(body)
    return bodies
