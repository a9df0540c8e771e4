"""Model lists and output caps: what the upstreams say they serve, asked for rarely and kept a while.

``GET /v1/models`` answers with the configured route names and every upstream's own list, in the client's
API shape (A2O-M02: Claude Code's model picker; it must answer fast, so an upstream gets 3 s). The same
lists report output caps (decision 5), fetched once per upstream and only for a request that asks for
more than any current model can give (Claude Code's 32000 to 128000): a small ask needs no cap.

A list that cannot be had (the upstream down, slow, or answering an error) is no list: the configured
names are listed alone. A 200 that is no list (``{"data": 5}``, not JSON) is no list either, cached as
such for ``cache_seconds`` and logged at warning once a fetch, so requests go on (no output cap from it);
but ``GET /v1/models`` answers it with a 502 naming the upstream (issue 19), as the upstream broke the
protocol.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from .. import client as upstream_client
from ..dialects import (
    ANTHROPIC_MODELS_PATH,
    OPENAI_MODELS_PATH,
    anthropic_models_page,
    openai_model_entries,
    reported_caps,
)
from ..errors import ProxyError, UpstreamStatus, UpstreamTimeout
from ..models import family_of
from ..routing import Upstream

__all__ = ["SAFE_MAX_TOKENS", "Catalog"]

log = logging.getLogger("rawproxy")

SAFE_MAX_TOKENS = 8192  # a max_tokens every model in use accepts: no cap needs looking up
LIST_SECONDS = 3.0  # the longest an upstream's list may take: Claude Code's picker waits for it
ANTHROPIC_PAGES = 10  # of 1000 models each (O2A-M01)
_UNLISTED = (ProxyError, TimeoutError, orjson.JSONDecodeError)


class _NoList(Exception):
    """An upstream answered its model list with a 200 that is no list (the message says why)."""

    def __init__(self, error: ProxyError, up: Upstream) -> None:
        super().__init__(f"{error} (upstream {up.name})")


class Catalog:
    """The upstreams' model lists and output caps, cached for ``cache_seconds``."""

    def __init__(self, client: upstream_client.Client) -> None:
        self.client = client
        self.cache_seconds = 300.0
        # when fetched, every name listed, and what was wrong with a list of the wrong shape (if one was)
        self._names: tuple[float, list[str], str | None] | None = None
        self._caps: dict[str, tuple[float, dict[str, int]]] = {}  # upstream name -> reported output caps
        self._caps_pending: dict[str, asyncio.Task[dict[str, int]]] = {}

    def reset(self, cache_seconds: float) -> None:
        """A new configuration: nothing cached is trusted any more."""
        self.cache_seconds = cache_seconds
        self._names = None
        self._caps.clear()

    async def _openai_list(self, up: Upstream) -> list[dict[str, Any]]:
        """The upstream's ``/models`` entries, on the lean client (no httpx import on a first request)."""
        status, _, body = await upstream_client.request(
            self.client,
            "GET",
            up.url(OPENAI_MODELS_PATH),
            headers=up.request_headers(),
            timeout=up.timeout,
            route=up.route,
        )
        if status != 200:  # the upstream's own error, relayed when no list can be had (issue 18)
            raise UpstreamStatus(up.dialect.parse_error(status, body))
        try:
            return openai_model_entries(status, body)
        except ProxyError as exc:  # a 200 of the wrong shape (model_lists raises nothing else)
            raise _NoList(exc, up) from None

    async def _anthropic_list(self, up: Upstream) -> list[dict[str, Any]]:
        """Anthropic's paginated list (has_more, last_id -> after_id), at most ten pages (O2A-M01)."""
        entries: list[dict[str, Any]] = []
        after: str | None = ""
        for _ in range(ANTHROPIC_PAGES):
            url = up.base + ANTHROPIC_MODELS_PATH + "?limit=1000" + (f"&after_id={after}" if after else "")
            status, body = await upstream_client.fetch(
                self.client, url, headers=up.request_headers(), route=up.route
            )
            if status != 200:
                raise UpstreamStatus(up.dialect.parse_error(status, body))
            try:
                page, after = anthropic_models_page(status, body)
            except ProxyError as exc:  # a 200 of the wrong shape (model_lists raises nothing else)
                raise _NoList(exc, up) from None
            entries += page
            if after is None:
                break
        return entries

    async def _list(self, up: Upstream) -> list[dict[str, Any]]:
        async with asyncio.timeout(LIST_SECONDS):
            return await (self._anthropic_list(up) if up.protocol == "anthropic" else self._openai_list(up))

    async def model_names(self, upstreams: list[Upstream]) -> tuple[list[str], str | None, ProxyError | None]:
        """Every model the upstreams list, in their order; what was wrong with the list of an upstream
        that answered one of the wrong shape, if one did (cached alike); and, when no upstream could
        list anything, the first failure (not cached: the next ask tries again)."""
        now = time.monotonic()
        if self._names and now - self._names[0] < self.cache_seconds:
            return self._names[1], self._names[2], None
        names: list[str] = []
        wrong: str | None = None
        failures: list[ProxyError] = []
        for up in upstreams:
            try:
                entries = await self._list(up)
            except _NoList as exc:
                log.warning("%s: taken as no list", exc)
                wrong, entries = wrong or str(exc), []
            except _UNLISTED as exc:
                log.warning("could not list the models of upstream %s: %s", up.name, exc)
                failures.append(
                    exc
                    if isinstance(exc, ProxyError)
                    else UpstreamTimeout(
                        f"upstream {up.name} did not list its models within {LIST_SECONDS:g} s"
                    )
                )
                continue
            names += [m["id"] for m in entries]
            if up.protocol == "openai":
                self._caps[up.name] = (now, reported_caps(entries))
        if failures and len(failures) == len(upstreams):
            return [], wrong, failures[0]
        self._names = (now, names, wrong)
        return names, wrong, None

    async def output_cap(
        self, up: Upstream, model: str, asked: int | None, configured: int | None
    ) -> int | None:
        """The cap on the upstream's output tokens the client's max_tokens is clamped to (decision 5):
        the upstream's setting, the global one (``configured``), the registry's (models.py), or what an
        OpenAI upstream's ``/models`` reports."""
        explicit = up.max_output_tokens or configured
        if explicit:
            return explicit
        known = family_of(model).output_cap  # models.py, for both protocols
        if known is not None or up.protocol != "openai" or (asked or 0) <= SAFE_MAX_TOKENS:
            return known
        cached = self._caps.get(up.name)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1].get(model)
        task = self._caps_pending.get(up.name)
        if task is None:
            task = self._caps_pending[up.name] = asyncio.create_task(self._fetch_caps(up))
        if cached is not None:  # stale: refreshed in the background, the old figures meanwhile
            return cached[1].get(model)
        return (await asyncio.shield(task)).get(model)

    async def _fetch_caps(self, up: Upstream) -> dict[str, int]:
        caps: dict[str, int] = {}
        try:
            caps = reported_caps(await self._list(up))
        except _NoList as exc:
            log.warning("%s: taken as no list, so no output caps", exc)
        except _UNLISTED as exc:
            log.info("upstream %s reports no output caps: %s", up.name, exc)
        finally:
            self._caps_pending.pop(up.name, None)
        self._caps[up.name] = (time.monotonic(), caps)
        return caps
