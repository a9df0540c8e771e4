"""Issue 5: the configuration file of the issue, as written (its ports 18081 and 18082 included), serving
real requests from the official SDKs through the proxy to two fake upstreams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rawproxy.config import Config
from rawproxy.service import serve
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.config_examples import ISSUE5_EXAMPLE as EXAMPLE

pytestmark = pytest.mark.integration


class Example:
    def __init__(self, url: str, cheap: FakeUpstream, claude: FakeUpstream) -> None:
        self.url = url
        self.cheap = cheap
        self.claude = claude


@pytest.fixture
async def example(tmp_path: Path) -> AsyncIterator[Example]:
    path = tmp_path / "rawproxy.toml"
    path.write_text(EXAMPLE)
    try:
        cheap = await FakeUpstream(port=18081).start()
        claude = await FakeUpstream(port=18082).start()
    except OSError as exc:  # pragma: no cover - a machine where the issue's ports are taken
        pytest.skip(f"port 18081 or 18082 is in use: {exc}")
    config = Config.from_env(
        ["--config", str(path), "--port", "0"], environ={"MY_ANTHROPIC_KEY": "sk-ant-env"}, dotenv=None
    )
    ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, ready=lambda h, p: ready.set_result((h, p)), stop=stop))
    host, port = await asyncio.wait_for(ready, 5)
    yield Example(f"http://{host}:{port}", cheap, claude)
    stop.set()
    await asyncio.wait_for(task, 10)
    await cheap.close()
    await claude.close()


def only_post(upstream: FakeUpstream) -> Any:
    (recorded,) = [r for r in upstream.requests if r.method == "POST"]
    return recorded


async def anthropic_call(example: Example, model: str, **extra: Any) -> str:
    anthropic = pytest.importorskip("anthropic")
    async with anthropic.AsyncAnthropic(base_url=example.url, api_key="sk-client", max_retries=0) as api:
        message = await api.messages.create(
            model=model,
            max_tokens=4000,
            messages=extra.pop("messages", [{"role": "user", "content": "hi"}]),
            **extra,
        )
    return "".join(block.text for block in message.content if block.type == "text")


async def test_issue5_example_haiku_route_goes_to_cheap_translated(example: Example) -> None:
    assert await anthropic_call(example, "claude-haiku-4-5-20251001") == "Hello from the fake upstream."
    sent = only_post(example.cheap)
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == "small-model"
    assert sent.headers["authorization"] == "Bearer sk-cheap"
    assert example.claude.requests == []


async def test_issue5_example_think_rule_beats_the_claude_default(example: Example) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    await anthropic_call(example, "claude-sonnet-4-6", thinking=thinking)
    assert only_post(example.cheap).body["model"] == "reasoner-model"
    assert example.claude.requests == []


async def test_issue5_example_long_context_rule(example: Example) -> None:
    long_text = "word " * 260_000  # about 325 000 characters: over 60 000 estimated tokens
    await anthropic_call(example, "claude-sonnet-4-6", messages=[{"role": "user", "content": long_text}])
    assert only_post(example.cheap).body["model"] == "long-model"


async def test_issue5_example_claude_models_pass_through_with_the_env_key_and_cli_identity(
    example: Example,
) -> None:
    await anthropic_call(example, "claude-sonnet-4-6")
    sent = only_post(example.claude)
    assert sent.path == "/v1/messages" and sent.query == "beta=true"  # claude-cli's ?beta=true
    assert sent.body["model"] == "claude-sonnet-4-6"
    assert sent.headers["x-api-key"] == "sk-ant-env"
    assert sent.headers["user-agent"].startswith("claude-cli/")
    assert "sk-client" not in str(sent.headers)  # the client's key never goes upstream
    assert example.cheap.requests == []


async def test_issue5_example_gpt_route_is_an_openai_passthrough(example: Example) -> None:
    openai = pytest.importorskip("openai")
    async with openai.AsyncOpenAI(base_url=example.url + "/v1", api_key="sk-client", max_retries=0) as api:
        answer = await api.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert answer.choices[0].message.content == "Hello from the fake upstream."
    sent = only_post(example.cheap)
    assert sent.body["model"] == "gpt-4o" and sent.headers["authorization"] == "Bearer sk-cheap"
