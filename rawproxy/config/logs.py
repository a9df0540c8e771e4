"""The logging the ``log_level`` and ``log_format`` settings describe: set up once by ``python -m rawproxy``
and applied again by a reload that changes either (both are ``live`` rows of the SETTINGS table).

Only logging this module set up is ever changed: a program that embeds the proxy (``serve(config)``)
keeps its own logging, at start and on every reload.
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["JSONFormatter", "apply_logging", "setup_logging"]

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_state = {"configured": False}  # set by setup_logging: only then may a reload change the logging


class JSONFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message; an access line's fields instead of its
    text (``extra={"access": ...}``)."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        line: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def setup_logging(level: str, style: str = "text") -> None:
    """The root logger to stderr, at ``level``, as text or one JSON object a line."""
    logging.basicConfig(level=_level(level), format=_TEXT_FORMAT, stream=sys.stderr)
    if style == "json":
        _format(style)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # httpx logs every request URL at INFO
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    _state["configured"] = True


def apply_logging(level: str, style: str) -> bool:
    """A reload's new level and format, on the logging setup_logging made; False (nothing done) when it
    made none (the proxy embedded in a program, or in tests)."""
    if not _state["configured"]:
        return False
    logging.getLogger().setLevel(_level(level))
    _format(style)
    return True


def _level(name: str) -> int:
    level = getattr(logging, name.upper(), logging.INFO)
    return level if isinstance(level, int) else logging.INFO


def _format(style: str) -> None:
    if style == "json":
        formatter: logging.Formatter = JSONFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter(_TEXT_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
