"""The configuration: the ``Config`` every module reads, and how it is made.

- settings.py: the ``SETTINGS`` table, one row per setting, from which the rest is built;
- load.py: argv, the environment and ``.env`` (the only reader of ``os.environ``) -> values;
- file.py: the ``--config`` TOML file (named upstreams, routes, rules, top-level settings);
- model.py: the frozen ``Config``, its checks, ``summary()`` and ``router_spec()``/``router()``;
- logs.py: the logging the ``log_level`` and ``log_format`` settings describe, applied at start and on reload.

This package imports ``rawproxy.routing`` (for its specs), never the other way round.
"""

from __future__ import annotations

from ..errors import ConfigError
from .load import build_parser, claude_code_environment, read_dotenv
from .model import Config
from .settings import DEFAULT_ANTHROPIC_UPSTREAM, DEFAULT_OPENAI_UPSTREAM, SETTINGS, Setting

__all__ = [
    "DEFAULT_ANTHROPIC_UPSTREAM",
    "DEFAULT_OPENAI_UPSTREAM",
    "LIMIT_FLAGS",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Setting",
    "build_parser",
    "claude_code_environment",
    "read_dotenv",
]

# The limits (issue 6), each a flag of its own: (name, type), the rows of the --help section "limits".
LIMIT_FLAGS: tuple[tuple[str, type], ...] = tuple((s.name, s.type) for s in SETTINGS if s.group == "limits")
