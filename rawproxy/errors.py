"""The exceptions that may leave the sans-I/O core and the upstream client, split by who is at fault.

Rule 1: every error carries an :class:`~rawproxy.ir.ErrorInfo` (status, canonical type, message), so the
I/O shell can render it in the *client's* dialect without knowing where it came from.

Rule 2: each class is one fault, named by ``kind``, which the access log and the metrics report; nothing
downstream tells faults apart by reading a message. ``ProxyError`` itself is abstract: raise the class
that says whose fault it is (as h11 splits ``LocalProtocolError`` from ``RemoteProtocolError``).

Rule 3: only these exceptions escape ``parse_request``, ``StreamTranslator.feed`` and the upstream client.
Any other exception is a bug; the server still answers it with a 500 in the client's error shape, never
with a traceback.

The canonical error types are Anthropic's (docs.claude.com/en/api/errors), because they are the finer
of the two vocabularies: each dialect maps them to and from its own wire names.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from .ir import ErrorInfo, ErrorType

__all__ = [
    "ClientError",
    "ConfigError",
    "Fault",
    "ProxyError",
    "UpstreamProtocolError",
    "UpstreamStatus",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]

Fault = Literal[
    "client", "upstream_status", "upstream_unreachable", "upstream_timeout", "upstream_protocol", "internal"
]


class ProxyError(Exception):
    """Base class: something the proxy answers with an error response or an in-stream error event."""

    kind: ClassVar[Fault] = "internal"

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info

    @property
    def status_hint(self) -> int:
        return self.info.status


class ClientError(ProxyError):
    """The client sent something we cannot serve (bad JSON, missing field, unknown path): 4xx."""

    kind = "client"

    def __init__(
        self, message: str, *, status: int = 400, type: ErrorType = ErrorType.INVALID_REQUEST
    ) -> None:
        super().__init__(ErrorInfo(status=status, type=type, message=message))


class UpstreamStatus(ProxyError):
    """The upstream answered with an error (a status, an error body, or an in-band error event), already
    mapped to the canonical vocabulary."""

    kind = "upstream_status"


class UpstreamUnreachable(ProxyError):
    """No answer could be asked for: the connection failed, or no connection was free (502, 529)."""

    kind = "upstream_unreachable"

    def __init__(self, message: str, *, status: int = 502, type: ErrorType = ErrorType.API) -> None:
        super().__init__(ErrorInfo(status=status, type=type, message=message))


class UpstreamTimeout(ProxyError):
    """The upstream was silent longer than the read timeout, or a stream ran past its limit (504)."""

    kind = "upstream_timeout"

    def __init__(self, message: str = "upstream timed out") -> None:
        super().__init__(ErrorInfo(status=504, type=ErrorType.TIMEOUT, message=message))


class UpstreamProtocolError(ProxyError):
    """The upstream broke the protocol: malformed stream, premature end, connection reset (502)."""

    kind = "upstream_protocol"

    def __init__(self, message: str, *, status: int = 502, type: ErrorType = ErrorType.API) -> None:
        super().__init__(ErrorInfo(status=status, type=type, message=message))


class ConfigError(ValueError):
    """A configuration that cannot work (flags, environment or ``--config`` file); the message says which
    setting and why. Raised at start and on a reload, never while serving a request."""
