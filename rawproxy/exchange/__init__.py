"""One exchange, from a complete client request to its answer: the layer between the server and the
upstream client.

- ``app.py``: the handler (``App``): makes each request's ``Exchange``, turns failures into answers, logs.
- ``endpoints.py``: the one table of endpoints (path, methods, handler) and client authentication.
- ``completion.py``: a completions request: routing, then each try translated; ``passthrough.py`` when
  both sides speak the same protocol.
- ``retry.py``: all retry, fallback and "400 wording -> rewrite" policy.
- ``relay.py``: the push seam between the upstream connection's callback and the client's writer.
- ``catalog.py``: model lists and output caps; ``state.py``: the Responses API's ``previous_response_id``.
- ``context.py``: the per-request object and what every request shares.
"""

from __future__ import annotations

from .app import App, error_response

__all__ = ["App", "error_response"]
