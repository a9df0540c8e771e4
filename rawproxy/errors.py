"""The exceptions that may leave the sans-I/O core, split by who is at fault (as h11 does).

Rule 1: every error carries an :class:`~rawproxy.ir.ErrorInfo` (status, canonical type, message), so the
I/O shell can render it in the *client's* dialect without knowing where it came from.

Rule 2: only these exceptions escape ``parse_request``, ``StreamTranslator.feed`` and friends. Any other
exception from the core is a bug; the server still answers it with a 500 in the client's error shape,
never with a traceback.

The canonical error types are Anthropic's (docs.claude.com/en/api/errors), because they are the finer
of the two vocabularies: each dialect maps them to and from its own wire names.
"""

from __future__ import annotations

from .ir import ErrorInfo, ErrorType


class ProxyError(Exception):
    """Base class: something the proxy answers with an error response or an in-stream error event."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info

    @property
    def status_hint(self) -> int:
        return self.info.status


class ClientError(ProxyError):
    """The client sent something we cannot serve (bad JSON, missing field, unknown path): 4xx."""

    def __init__(
        self, message: str, *, status: int = 400, type: ErrorType = ErrorType.INVALID_REQUEST
    ) -> None:
        super().__init__(ErrorInfo(status=status, type=type, message=message))


class UpstreamError(ProxyError):
    """The upstream answered with an error status (already mapped to the canonical vocabulary)."""


class UpstreamProtocolError(ProxyError):
    """The upstream broke the protocol: malformed stream, premature end, connection reset (502)."""

    def __init__(self, message: str, *, status: int = 502, type: ErrorType = ErrorType.API) -> None:
        super().__init__(ErrorInfo(status=status, type=type, message=message))


class ConfigError(ValueError):
    """A configuration that cannot work (flags, environment or ``--config`` file); the message says which
    setting and why. Raised at start and on a reload, never while serving a request."""
