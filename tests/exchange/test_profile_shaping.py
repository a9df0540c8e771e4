"""Decision 5: each OpenAI-compatible upstream profile shapes the request, tested on RECORDED Claude Code
requests (tests/fixtures/captures/, see PROVENANCE.md there).

Each capture is sent as Claude Code sent it (``POST /v1/messages?beta=true`` with its own headers, the
key swapped for a test one) through the proxy to a fake OpenAI upstream with one profile, and the test
asserts on what the fake recorded: path, query, headers and body. Profiles: ``openai`` (reasoning models:
``max_completion_tokens``, no ``temperature``, ``reasoning_effort``: A2O-R24/R25/R27), ``azure``
(deployment URL, ``api-version``, ``api-key``), ``openrouter`` (a ``reasoning`` object), ``deepseek``
(string content, ``reasoning_content`` replayed on tool turns: A2O-R04/R16), ``gemini`` (tool schemas
sanitised: A2O-R21), ``generic`` (``top_k`` allowed, ``max_tokens``). Every translated request also gets
``stream_options.include_usage`` (A2O-R30) and never Claude Code's own fields (A2O-R28) or headers.

Output caps: Claude Code asks for 128000 tokens; that is clamped to a configured ``max_output_tokens``,
else to the known table (gpt-4o: 16384), else to what the upstream's ``/models`` reports, a list fetched
once per upstream and only for a request asking more than 8192.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.config.file import Route, UpstreamSpec
from rawproxy.testing.fake_upstream import FakeUpstream, RecordedRequest
from tests.support import FIXTURES_DIR
from tests.support.rawhttp import HTTPConnection, Response, parse_sse, text_of

pytestmark = pytest.mark.integration

CAPTURES = FIXTURES_DIR / "captures"
THINKING_TOOL = "05_thinking_tool__02_POST_v1_messages.json"  # thinking + tool_use + tool_result history
ALL_TOOLS = "13_tool_search_off__01_POST_v1_messages.json"  # 21 tools, format: uri
INTERACTIVE = "15_interactive_tmux__01_POST_v1_messages.json"  # propertyNames
ALL_CAPTURES = [THINKING_TOOL, ALL_TOOLS, INTERACTIVE]

UPSTREAM_KEY = "sk-upstream-key"
CLIENT_KEY = "sk-ant-claude-code-key"
BOUND = 10.0
# Connection-level headers of the capture that a new request of ours sets for itself.
HOP_BY_HOP = {"host", "content-length", "connection", "accept-encoding"}
# What Claude Code's request carries that must not reach an OpenAI-compatible upstream (A2O-R28).
CLAUDE_ONLY_FIELDS = ("thinking", "output_config", "context_management", "metadata", "system")
GEMINI_REJECTS = {
    "$schema",
    "additionalProperties",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "propertyNames",
    "const",
}


def capture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CAPTURES / name).read_text())
    assert data["method"] == "POST" and data["target"] == "/v1/messages?beta=true"
    assert data["body"]["max_tokens"] == 128000 and data["body"]["stream"] is True
    return data


async def send(proxy: Any, recorded: dict[str, Any], body: dict[str, Any] | None = None) -> Response:
    """The recorded request again, as Claude Code sent it: its target, its headers (the key swapped),
    its body (or a test's modified copy of it)."""
    headers = [(k, v) for k, v in recorded["headers"] if k.lower() not in HOP_BY_HOP]
    headers = [(k, CLIENT_KEY if k.lower() == "x-api-key" else v) for k, v in headers]
    payload = json.dumps(body if body is not None else recorded["body"]).encode()
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=BOUND) as conn:
        resp = await conn.request("POST", recorded["target"], headers, payload, timeout=BOUND)
    assert resp.status == 200, resp.body
    events = parse_sse(resp.body)
    assert [e.event for e in events if e.event != "ping"][-1] == "message_stop", resp.body[-500:]
    assert text_of(events)  # what the fake answered (its MOCK: keywords pick the text), translated
    return resp


async def shaped(
    proxy_factory: Any,
    fake: FakeUpstream,
    profile: str | None,
    model: str,
    *,
    base_url: str | None = None,
    global_cap: int | None = None,
    **fields: Any,
) -> Any:
    """A proxy with one OpenAI-compatible upstream of ``profile`` and one route: every model to it, as
    ``model``. ``fields`` go to the UpstreamSpec; ``global_cap`` is the Config's max_output_tokens."""
    fields.setdefault("api_keys", (UPSTREAM_KEY,))
    spec = UpstreamSpec(
        name="up", protocol="openai", base_url=base_url or fake.url, profile=profile, **fields
    )
    return await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        grace_seconds=1.0,
        upstreams=(spec,),
        route_table=(Route(match="*", upstream="up", model=model),),
        max_output_tokens=global_cap,
    )


def completions(fake: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def only_completion(fake: FakeUpstream) -> RecordedRequest:
    (sent,) = completions(fake)
    assert sent.method == "POST"
    return sent


def model_lists(fake: FakeUpstream) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith("/models")]


def assert_translated_headers(sent: RecordedRequest, auth: dict[str, str]) -> None:
    """The upstream's own auth only; nothing of Claude Code's identity or key."""
    present = {k: sent.headers[k] for k in ("authorization", "api-key", "x-api-key") if k in sent.headers}
    assert present == auth
    assert all(CLIENT_KEY not in v for v in sent.headers.values())
    leaked = [
        k for k in sent.headers if k.startswith(("anthropic-", "x-stainless-", "x-claude-code", "x-app"))
    ]
    assert leaked == [], leaked
    assert sent.headers["user-agent"].startswith("rawproxy/")


def assert_no_claude_fields(body: dict[str, Any]) -> None:
    assert [k for k in CLAUDE_ONLY_FIELDS if k in body] == []  # A2O-R28: never forwarded
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}  # A2O-R30


def walk_schema(schema: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, keyword, value) of every JSON Schema keyword, recursively; the keys of a ``properties``
    map are property names, not keywords, so they are walked into but not reported."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            yield path, key, value
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    yield from walk_schema(sub, f"{path}/properties/{name}")
            else:
                yield from walk_schema(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from walk_schema(item, f"{path}/{i}")


def property_paths(schema: Any) -> set[str]:
    """Where properties are declared, but for those inside a keyword Gemini rejects (the value schema
    of ``additionalProperties``, say): those go with their keyword."""
    return {
        path for path, _, _ in walk_schema(schema) if "/properties/" in path and not _under_rejected(path)
    }


def _under_rejected(path: str) -> bool:
    segments = path.split("/")[1:]
    keywords = [s for i, s in enumerate(segments) if i == 0 or segments[i - 1] != "properties"]
    return any(k in GEMINI_REJECTS for k in keywords)


def rejected_keywords(schema: Any) -> list[str]:
    return [
        f"{path}/{key}"
        for path, key, value in walk_schema(schema)
        if key in GEMINI_REJECTS or (key == "format" and value not in ("enum", "date-time"))
    ]


def recorded_tools(body: dict[str, Any]) -> dict[str, Any]:
    return {t["name"]: t["input_schema"] for t in body["tools"]}


def sent_tools(body: dict[str, Any]) -> dict[str, Any]:
    assert all(t["type"] == "function" for t in body["tools"])
    return {t["function"]["name"]: t["function"]["parameters"] for t in body["tools"]}


# ========================================================================================== openai


@pytest.mark.parametrize(("model", "cap"), [("gpt-5", 128000), ("o3", 100000)])
async def test_a2o_r24_r25_r27_openai_profile_shapes_claude_code_for_a_reasoning_model(
    proxy_factory: Any, fake: FakeUpstream, model: str, cap: int
) -> None:
    recorded = capture(INTERACTIVE)
    body = copy.deepcopy(recorded["body"])
    body["temperature"] = 0.7  # Claude Code sends none: added, to see it dropped
    proxy = await shaped(proxy_factory, fake, "openai", model)
    await send(proxy, recorded, body)
    sent = only_completion(fake)
    assert (sent.path, sent.query) == ("/v1/chat/completions", "")  # Claude Code's ?beta=true stays here
    assert_translated_headers(sent, {"authorization": f"Bearer {UPSTREAM_KEY}"})
    out = sent.body
    assert out["model"] == model
    assert out["max_completion_tokens"] == cap  # A2O-R24: the parameter name and the known cap
    assert "max_tokens" not in out
    assert "temperature" not in out  # A2O-R25
    assert out["reasoning_effort"] == "medium"  # A2O-R27: adaptive + output_config.effort medium
    assert "reasoning" not in out and "top_k" not in out
    assert_no_claude_fields(out)
    assert sent_tools(out) == recorded_tools(body)  # no schema sanitising for OpenAI (A2O-R21)
    assert model_lists(fake) == []  # the cap is known: nothing fetched


async def test_a2o_r24_r25_openai_profile_non_reasoning_model_keeps_temperature_and_max_tokens(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    recorded = capture(INTERACTIVE)
    body = copy.deepcopy(recorded["body"])
    body["temperature"] = 0.7
    body["top_k"] = 40
    proxy = await shaped(proxy_factory, fake, "openai", "gpt-4o")
    await send(proxy, recorded, body)
    out = only_completion(fake).body
    assert out["max_tokens"] == 16384 and "max_completion_tokens" not in out
    assert out["temperature"] == 0.7
    assert "reasoning_effort" not in out  # only for reasoning models under this profile
    assert "top_k" not in out  # A2O-R25: not an OpenAI parameter


# =========================================================================================== azure


@pytest.mark.parametrize(
    ("suffix", "api_version", "path", "query"),
    [
        ("", None, "/openai/deployments/o3/chat/completions", "api-version=2024-10-21"),
        (
            "/openai",
            "2025-04-01-preview",
            "/openai/deployments/o3/chat/completions",
            "api-version=2025-04-01-preview",
        ),
        (
            "/openai/deployments/my-o3",
            None,
            "/openai/deployments/my-o3/chat/completions",
            "api-version=2024-10-21",
        ),
        ("/openai/v1", None, "/openai/v1/chat/completions", ""),
    ],
    ids=["resource", "resource_openai_with_api_version", "deployment_url", "v1_api"],
)
async def test_decision5_azure_profile_deployment_url_api_version_and_api_key_header(
    proxy_factory: Any, fake: FakeUpstream, suffix: str, api_version: str | None, path: str, query: str
) -> None:
    recorded = capture(THINKING_TOOL)
    body = copy.deepcopy(recorded["body"])
    body["temperature"] = 0.5
    proxy = await shaped(
        proxy_factory, fake, "azure", "o3", base_url=fake.anthropic_url + suffix, api_version=api_version
    )
    await send(proxy, recorded, body)
    sent = only_completion(fake)
    assert (sent.path, sent.query) == (path, query)
    assert_translated_headers(sent, {"api-key": UPSTREAM_KEY})  # api-key, and no Authorization
    out = sent.body
    assert out["model"] == "o3"
    assert out["max_completion_tokens"] == 100000 and "max_tokens" not in out
    assert "temperature" not in out
    assert out["reasoning_effort"] == "medium"
    assert_no_claude_fields(out)


# ====================================================================================== openrouter


async def test_a2o_r27_openrouter_profile_sends_a_reasoning_object_and_the_reported_cap(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    fake.openai_models = [
        {
            "id": "qwen/qwen3-coder",
            "context_length": 262144,
            "top_provider": {"max_completion_tokens": 65536},
        },
        {"id": "other/model", "top_provider": {"max_completion_tokens": 1000}},
    ]
    recorded = capture(THINKING_TOOL)
    proxy = await shaped(proxy_factory, fake, "openrouter", "qwen/qwen3-coder")
    await send(proxy, recorded)
    sent = only_completion(fake)
    assert_translated_headers(sent, {"authorization": f"Bearer {UPSTREAM_KEY}"})
    out = sent.body
    assert out["reasoning"] == {"effort": "medium"}  # A2O-R27: OpenRouter's object, for any model
    assert "reasoning_effort" not in out
    assert out["max_tokens"] == 65536 and "max_completion_tokens" not in out  # top_provider's cap
    assert_no_claude_fields(out)
    (listed,) = model_lists(fake)
    assert listed.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


# ======================================================================================== deepseek


async def test_a2o_r16_r04_deepseek_profile_string_content_and_reasoning_replayed_on_the_tool_turn(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    recorded = capture(THINKING_TOOL)
    history = recorded["body"]["messages"]
    (assistant,) = [m for m in history if m["role"] == "assistant"]
    thinking = next(b["thinking"] for b in assistant["content"] if b["type"] == "thinking")
    tool_use = next(b for b in assistant["content"] if b["type"] == "tool_use")
    proxy = await shaped(proxy_factory, fake, "deepseek", "deepseek-reasoner")
    await send(proxy, recorded)
    out = only_completion(fake).body
    messages = out["messages"]
    assert all(isinstance(m["content"], str) or m["content"] is None for m in messages), [
        (m["role"], type(m["content"]).__name__) for m in messages
    ]  # DeepSeek rejects content part lists (A2O-R04)
    first_user = next(m for m in messages if m["role"] == "user")
    assert "MOCK:think_bash Think then write." in first_user["content"]  # the two text blocks, joined
    (turn,) = [m for m in messages if m["role"] == "assistant"]
    assert turn["reasoning_content"] == thinking  # A2O-R16: replayed for DeepSeek's tool turns
    assert turn["content"] == "I'll run the command."
    (call,) = turn["tool_calls"]
    assert call["function"]["name"] == "Bash"
    assert json.loads(call["function"]["arguments"]) == tool_use["input"]
    (result,) = [m for m in messages if m["role"] == "tool"]
    assert result == {
        "role": "tool",
        "tool_call_id": call["id"],
        "content": "(Bash completed with no output)",
    }
    assert out["max_tokens"] == 65536  # the known cap of deepseek-reasoner
    assert_no_claude_fields(out)


async def test_a2o_r16_generic_profile_neither_replays_reasoning_nor_flattens_content(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """The same recorded turn to a generic upstream: the control for the DeepSeek shaping above."""
    proxy = await shaped(proxy_factory, fake, "generic", "deepseek-reasoner")
    await send(proxy, capture(THINKING_TOOL))
    messages = only_completion(fake).body["messages"]
    first_user = next(m for m in messages if m["role"] == "user")
    assert isinstance(first_user["content"], list) and len(first_user["content"]) == 2
    (turn,) = [m for m in messages if m["role"] == "assistant"]
    assert "reasoning_content" not in turn
    assert "MOCK_REASONING" not in json.dumps(messages)  # thinking is stripped, never dumped into text


# ========================================================================================== gemini


@pytest.mark.parametrize("name", [ALL_TOOLS, INTERACTIVE])
async def test_a2o_r21_gemini_profile_sanitises_every_recorded_tool_schema(
    proxy_factory: Any, fake: FakeUpstream, name: str
) -> None:
    recorded = capture(name)
    body = copy.deepcopy(recorded["body"])
    # Claude Code's schemas have no `const`: one is added to Bash's, to see it go too.
    bash = next(t for t in body["tools"] if t["name"] == "Bash")
    bash["input_schema"]["properties"]["mode"] = {"type": "string", "const": "run"}
    before = recorded_tools(body)
    found = {key.rsplit("/", 1)[-1] for schema in before.values() for key in rejected_keywords(schema)}
    assert {"$schema", "additionalProperties", "exclusiveMinimum", "const"} <= found  # the capture has them
    assert ("propertyNames" in found) == (name == INTERACTIVE) and ("format" in found) == (name == ALL_TOOLS)
    proxy = await shaped(proxy_factory, fake, "gemini", "gemini-2.5-pro", max_output_tokens=65536)
    await send(proxy, recorded, body)
    out = only_completion(fake).body
    after = sent_tools(out)
    assert list(after) == list(before)  # every tool, in order, under its own name
    for tool, schema in after.items():
        assert rejected_keywords(schema) == [], tool
        assert property_paths(schema) == property_paths(before[tool]), tool  # no property lost
    assert after["Bash"]["properties"]["mode"] == {"type": "string"}
    assert out["max_tokens"] == 65536
    assert_no_claude_fields(out)


async def test_a2o_r21_generic_profile_sends_the_recorded_schemas_unchanged(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    recorded = capture(INTERACTIVE)
    proxy = await shaped(proxy_factory, fake, "generic", "qwen3-coder", max_output_tokens=32768)
    await send(proxy, recorded)
    assert sent_tools(only_completion(fake).body) == recorded_tools(recorded["body"])


# ========================================================================================= generic


@pytest.mark.parametrize(("profile", "top_k"), [("generic", 40), ("openai", None), ("gemini", None)])
async def test_a2o_r25_top_k_only_for_the_generic_profile(
    proxy_factory: Any, fake: FakeUpstream, profile: str, top_k: int | None
) -> None:
    recorded = capture(THINKING_TOOL)
    body = copy.deepcopy(recorded["body"])
    body["top_k"] = 40  # Claude Code sends none: added
    body["temperature"] = 0.3
    proxy = await shaped(proxy_factory, fake, profile, "llama-3.3-70b", max_output_tokens=8000)
    await send(proxy, recorded, body)
    out = only_completion(fake).body
    assert out.get("top_k") == top_k
    assert out["temperature"] == 0.3  # not a reasoning model: kept under every profile
    assert out["max_tokens"] == 8000 and "max_completion_tokens" not in out


async def test_a2o_r24_generic_profile_uses_max_tokens_even_for_a_reasoning_model_name(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """vLLM or Ollama serving a model called gpt-5 still takes max_tokens, and temperature."""
    recorded = capture(THINKING_TOOL)
    body = copy.deepcopy(recorded["body"])
    body["temperature"] = 0.3
    proxy = await shaped(proxy_factory, fake, "generic", "gpt-5")
    await send(proxy, recorded, body)
    out = only_completion(fake).body
    assert out["max_tokens"] == 128000 and "max_completion_tokens" not in out
    assert out["temperature"] == 0.3
    assert "reasoning_effort" not in out and "reasoning" not in out  # the generic profile sends neither


# ===================================================================================== output caps


@pytest.mark.parametrize(
    ("upstream_cap", "global_cap", "expected"),
    [
        (4096, None, 4096),
        (None, 6000, 6000),
        (4096, 6000, 4096),  # the upstream's setting wins over the global one
        (200000, None, 128000),  # a cap above the ask leaves the ask: never raised
    ],
    ids=["upstream", "global", "upstream_over_global", "cap_above_the_ask"],
)
@pytest.mark.parametrize("model", ["gpt-4o", "acme-large"], ids=["known_model", "unknown_model"])
async def test_decision5_configured_max_output_tokens_clamps_claude_codes_128000(
    proxy_factory: Any,
    fake: FakeUpstream,
    upstream_cap: int | None,
    global_cap: int | None,
    expected: int,
    model: str,
) -> None:
    proxy = await shaped(
        proxy_factory, fake, "generic", model, max_output_tokens=upstream_cap, global_cap=global_cap
    )
    await send(proxy, capture(THINKING_TOOL))
    assert only_completion(fake).body["max_tokens"] == expected  # configuration wins over the table
    assert model_lists(fake) == []  # a configured cap needs no /models


@pytest.mark.parametrize(("model", "cap"), [("gpt-4o", 16384), ("gpt-4o-mini", 16384), ("gpt-4.1", 32768)])
async def test_a2o_r24_known_table_caps_claude_codes_128000(
    proxy_factory: Any, fake: FakeUpstream, model: str, cap: int
) -> None:
    proxy = await shaped(proxy_factory, fake, "openai", model)
    await send(proxy, capture(ALL_TOOLS))
    assert only_completion(fake).body["max_tokens"] == cap
    assert model_lists(fake) == []


REPORTED = {
    "max_completion_tokens": ({"id": "acme-large", "max_completion_tokens": 20000}, 20000),
    "top_provider": ({"id": "acme-large", "top_provider": {"max_completion_tokens": 65536}}, 65536),
    "litellm_model_info": ({"id": "acme-large", "model_info": {"max_output_tokens": 30000}}, 30000),
    "context_window_only": ({"id": "acme-large", "max_model_len": 262144, "context_length": 262144}, 128000),
    "not_listed": ({"id": "another-model", "max_completion_tokens": 1000}, 128000),
}


@pytest.mark.parametrize("reported", list(REPORTED))
async def test_decision5_unknown_models_cap_comes_from_the_upstreams_models_list_fetched_once(
    proxy_factory: Any, fake: FakeUpstream, reported: str
) -> None:
    entry, expected = REPORTED[reported]
    fake.openai_models = [{"id": "fake-model", "max_completion_tokens": 7}, entry]
    recorded = capture(THINKING_TOOL)
    proxy = await shaped(proxy_factory, fake, "generic", "acme-large")
    for _ in range(3):
        await send(proxy, recorded)
    assert [r.body["max_tokens"] for r in completions(fake)] == [expected] * 3
    (listed,) = model_lists(fake)  # once, though three requests asked more than 8192
    assert (listed.path, listed.headers["authorization"]) == ("/v1/models", f"Bearer {UPSTREAM_KEY}")


async def test_decision5_models_list_is_fetched_only_for_a_max_tokens_above_8192(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    fake.openai_models = [{"id": "acme-large", "max_completion_tokens": 20000}]
    recorded = capture(THINKING_TOOL)
    proxy = await shaped(proxy_factory, fake, "generic", "acme-large")
    for asked in (8192, 1000):
        body = copy.deepcopy(recorded["body"])
        body["max_tokens"] = asked
        await send(proxy, recorded, body)
    assert model_lists(fake) == []  # a small ask needs no cap
    assert [r.body["max_tokens"] for r in completions(fake)] == [8192, 1000]
    body = copy.deepcopy(recorded["body"])
    body["max_tokens"] = 8193
    await send(proxy, recorded, body)
    await send(proxy, recorded)  # the recorded 128000
    assert len(model_lists(fake)) == 1
    assert [r.body["max_tokens"] for r in completions(fake)][2:] == [8193, 20000]


async def test_decision5_models_list_is_fetched_once_per_upstream_under_concurrent_requests(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    """Two upstreams (on one fake, so one list of entries): each fetches its list once, even when
    several requests need the cap at the same moment."""
    fake.openai_models = [
        {"id": "acme-a", "max_completion_tokens": 11111},
        {"id": "acme-b", "top_provider": {"max_completion_tokens": 22222}},
    ]
    specs = tuple(
        UpstreamSpec(
            name=name, protocol="openai", base_url=fake.url, profile="generic", api_keys=(f"key-{name}",)
        )
        for name in ("first", "second")
    )
    proxy = await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        grace_seconds=1.0,
        upstreams=specs,
        route_table=(
            Route(match="claude-opus*", upstream="first", model="acme-a"),
            Route(match="*", upstream="second", model="acme-b"),
        ),
    )
    recorded = capture(THINKING_TOOL)
    opus = recorded["body"]
    haiku = {**copy.deepcopy(opus), "model": "claude-haiku-5-5"}
    await asyncio.wait_for(
        asyncio.gather(*(send(proxy, recorded, body) for body in (opus, haiku) * 3)), 3 * BOUND
    )
    caps = sorted((r.body["model"], r.body["max_tokens"]) for r in completions(fake))
    assert caps == [("acme-a", 11111)] * 3 + [("acme-b", 22222)] * 3
    keys = sorted(r.headers["authorization"] for r in model_lists(fake))
    assert keys == ["Bearer key-first", "Bearer key-second"]  # one list per upstream, each its own key
