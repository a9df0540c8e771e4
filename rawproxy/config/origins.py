"""Where each setting of the built-in upstreams came from (flag, environment, ``.env``, file), asked by
load.py while it reads them, kept in ``Config.origins`` for the start lines (startup.py, issue 18)."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .settings import Setting

__all__ = ["ORIGIN_SETTINGS", "where"]

# The settings that make the two built-in upstreams; a file's [[upstreams]] come from the file.
ORIGIN_SETTINGS = ("openai_upstream", "openai_key", "anthropic_upstream", "anthropic_key")


def where(
    setting: Setting,
    args: argparse.Namespace,
    env: Mapping[str, str],
    dotenv: Mapping[str, str],
    top: Mapping[str, Any],
    path: str | None,
) -> str | None:
    """Where ``setting``'s value came from, in the order load.py's ``_pick`` takes it; None: the default."""

    def variable(name: str) -> str:
        return f".env {name}" if dotenv.get(name) == env[name] else f"environment {name}"

    if setting.flag is not None and getattr(args, setting.name, None) is not None:
        return "flag --" + setting.name.replace("_", "-")
    if setting.env is not None and env.get(setting.env):
        return variable(setting.env)
    if setting.file and setting.name in top:
        return f"file {path}"
    if setting.fallback is not None and env.get(setting.fallback):
        return variable(setting.fallback)
    return None
