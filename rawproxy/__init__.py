"""rawproxy: a small, very fast protocol-translation proxy between the Anthropic Messages and OpenAI
Chat Completions APIs.

Import-light on purpose: importing the package loads no network code; ``serve`` imports it on call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Config", "Proxy", "__version__", "serve"]

if TYPE_CHECKING:
    from .config import Config
    from .embed import Proxy


def __getattr__(name: str) -> Any:
    if name == "Config":
        from .config import Config

        return Config
    if name == "Proxy":
        from .embed import Proxy

        return Proxy
    raise AttributeError(name)


async def serve(config: Config) -> None:
    """Run the proxy with ``config`` until cancelled (on ``config.host``/``config.port``)."""
    from .service import serve as _serve

    await _serve(config)
