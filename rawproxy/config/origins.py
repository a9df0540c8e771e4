"""Where each setting of the built-in upstreams came from (flag, environment, ``.env``, file), as load.py
found it while reading them (its ``_picked``), kept in ``Config.origins`` for the start lines
(startup.py, issue 18)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ORIGIN_SETTINGS", "said"]

# The settings that make the two built-in upstreams; a file's [[upstreams]] come from the file.
ORIGIN_SETTINGS = ("openai_upstream", "openai_key", "anthropic_upstream", "anthropic_key")


def said(source: str, env: Mapping[str, str], dotenv: Mapping[str, str], path: str | None) -> str:
    """``source`` as load.py names it (``--flag``, a variable's name, ``file``), for a person."""
    if source.startswith("--"):
        return "flag " + source
    if source == "file":
        return f"file {path}"
    return (".env " if dotenv.get(source) == env.get(source) else "environment ") + source
