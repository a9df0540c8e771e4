"""Issue 7: the embedding API, ``async with Proxy(config) as proxy`` in the caller's event loop."""

from __future__ import annotations

import socket

import pytest

import rawproxy
from rawproxy import Config, Proxy
from rawproxy.testing.fake_upstream import FakeUpstream

pytestmark = pytest.mark.integration


async def test_issue7_proxy_runs_in_the_callers_loop_on_a_free_port(fake: FakeUpstream) -> None:
    anthropic = pytest.importorskip("anthropic")
    async with Proxy(Config(openai_upstream=fake.url, openai_key="sk-up")) as proxy:
        assert proxy.port not in (0, 8082) and proxy.url == f"http://127.0.0.1:{proxy.port}"
        async with anthropic.AsyncAnthropic(base_url=proxy.url, api_key="x", max_retries=0) as client:
            message = await client.messages.create(
                model="gpt-4o", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
            )
        assert message.content[0].text == "Hello from the fake upstream."
    with pytest.raises(OSError):  # stopped: nothing listens there any more
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


async def test_issue7_proxy_on_a_taken_port_raises(fake: FakeUpstream) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            async with Proxy(Config(port=port, openai_upstream=fake.url), free_port=False):
                pass


def test_issue7_the_public_names() -> None:
    assert rawproxy.Proxy is Proxy and rawproxy.Config is Config
