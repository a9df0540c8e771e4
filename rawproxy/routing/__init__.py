"""Routing: which upstream and model serve a request. Pure; built from plain specs, never from the
configuration itself (``rawproxy.config`` imports this package, not the other way round).

- :mod:`.specs`: the data routing is built from (``UpstreamSpec``, ``Route``, ``Rules``, ``Target``,
  ``ModelRoutes``, ``RouterSpec``);
- :mod:`.upstreams`: ``Upstream`` (one upstream's URL, keys, dialect and headers), ``make_upstream``,
  ``build_upstreams`` and ``upstream_for``;
- :mod:`.facts`: ``RequestFacts``, what the content rules read in a request;
- :mod:`.router`: the ``Router`` and its ``Decision``, ``resolve_model`` and ``parse_model_map``.
"""

from __future__ import annotations

from .facts import RequestFacts
from .router import Decision, Router, parse_model_map, resolve_model
from .specs import (
    DEFAULT_LONG_CONTEXT,
    RULE_NAMES,
    ModelRoutes,
    Route,
    RouterSpec,
    Rules,
    Target,
    UpstreamSpec,
)
from .upstreams import AZURE_API_VERSION, ClientKey, Upstream, build_upstreams, make_upstream, upstream_for

__all__ = [
    "AZURE_API_VERSION",
    "DEFAULT_LONG_CONTEXT",
    "RULE_NAMES",
    "ClientKey",
    "Decision",
    "ModelRoutes",
    "RequestFacts",
    "Route",
    "Router",
    "RouterSpec",
    "Rules",
    "Target",
    "Upstream",
    "UpstreamSpec",
    "build_upstreams",
    "make_upstream",
    "parse_model_map",
    "resolve_model",
    "upstream_for",
]
