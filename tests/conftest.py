"""Shared fixtures: a fake upstream and a running proxy on 127.0.0.1, inside the test's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import hypothesis  # noqa: F401  (see below)
import pytest

from rawproxy import Proxy
from rawproxy.config import Config
from rawproxy.testing.fake_upstream import FakeUpstream

# hypothesis is imported here, at collection, on purpose: its pytest plugin otherwise imports it lazily
# from inside a hook, mid-session, and pytest's assertion rewriting of those modules (ast.parse, never
# cached here because PYTHONDONTWRITEBYTECODE is set) can then hit CPython 3.11's "AST constructor
# recursion depth mismatch" bug (python/cpython#106905), failing a random test.


@dataclass
class RunningProxy:
    """A started ``rawproxy.Proxy`` (the public embedding API) and the ``Config`` it serves."""

    url: str
    host: str
    port: int
    config: Config
    proxy: Proxy


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


ProxyFactory = Callable[..., Awaitable[RunningProxy]]


@pytest.fixture
async def proxy_factory(fake: FakeUpstream) -> AsyncIterator[ProxyFactory]:
    """Start a proxy in front of ``fake`` (or another upstream URL); ``Config`` fields as keywords."""
    running: list[RunningProxy] = []

    async def start(**overrides: Any) -> RunningProxy:
        settings: dict[str, Any] = {
            "port": 0,
            "openai_upstream": fake.url,
            "openai_key": "sk-upstream-secret",
        }
        settings.update(overrides)
        config = Config(**settings)
        proxy = await asyncio.wait_for(Proxy(config, free_port=False).start(), 5)
        started = RunningProxy(proxy.url, proxy.host, proxy.port, config, proxy)
        running.append(started)
        return started

    yield start
    await asyncio.wait_for(asyncio.gather(*(started.proxy.stop() for started in running)), 10)


@pytest.fixture
async def proxy(proxy_factory: ProxyFactory) -> RunningProxy:
    return await proxy_factory(grace_seconds=1.0)


@pytest.fixture
async def anthropic_client(proxy: RunningProxy) -> AsyncIterator[Any]:
    anthropic = pytest.importorskip("anthropic")
    client = anthropic.AsyncAnthropic(base_url=proxy.url, api_key="sk-client", max_retries=0, timeout=20)
    yield client
    await client.close()


# In CI (CI=true) a skipped end-to-end or nginx test fails the run: a green run with the real clients
# skipped would prove nothing (the machine lacked node, npm or nginx, and the run must say so).
_MUST_RUN = ("tests/e2e/", "tests/server/test_nginx.py")
_skipped_must_run: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and report.nodeid.startswith(_MUST_RUN):
        _skipped_must_run.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import os

    if _skipped_must_run and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    import os

    if _skipped_must_run and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        terminalreporter.write_line(
            f"CI: {len(_skipped_must_run)} end-to-end/nginx test(s) skipped, which fails the run: "
            + ", ".join(_skipped_must_run[:5]),
            red=True,
        )
