"""rawproxy: a small, very fast protocol-translation proxy between the Anthropic Messages and OpenAI
Chat Completions APIs.

Import-light on purpose: importing the package loads no network code; ``serve`` imports it on call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Config", "__version__", "serve"]

if TYPE_CHECKING:
    from .config import Config


def __getattr__(name: str) -> Any:
    if name == "Config":
        from .config import Config

        return Config
    raise AttributeError(name)


async def serve(config: Config) -> None:
    """Run the proxy with ``config`` until cancelled."""
    from .server import serve as _serve

    await _serve(config)
