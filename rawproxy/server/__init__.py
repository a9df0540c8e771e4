"""The HTTP/1.1 server: ``connection.py`` (one client connection as an asyncio protocol), ``writer.py``
(the response framing, our ``ResponseSink``), ``loop.py`` (the h11 request loop and its limits). It asks the
exchange layer for error bodies and knows nothing of dialects.
"""

from __future__ import annotations

from .loop import Server
from .writer import ResponseWriter

__all__ = ["ResponseWriter", "Server"]
