"""End to end: the real Claude Code CLI (pinned) -> rawproxy -> the scripted fake OpenAI upstream.

Each test asks for a behaviour with a ``MOCK:`` keyword in the prompt (see rawproxy.testing.fake_upstream.KEYWORDS)
and checks both sides: what Claude Code reported (``--output-format json``, files its Bash tool wrote)
and what the fake upstream received from the proxy (plain OpenAI Chat Completions requests).
The M26 test queues its script instead, and reads what Claude Code sent from the proxy's access log.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from rawproxy.carrier import is_sealed
from rawproxy.models import family_of
from rawproxy.routing.specs import ModelRoutes
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from rawproxy.testing.fake_upstream.openai_rules import refusal

from .conftest import ClaudeRun, RunClaude
from .logged_bodies import client_bodies

pytestmark = pytest.mark.e2e

# Top-level fields of an Anthropic Messages request that must not reach an OpenAI upstream.
ANTHROPIC_FIELDS = {
    "system",
    "thinking",
    "metadata",
    "context_management",
    "output_config",
    "stop_sequences",
    "top_k",
    "anthropic_version",
    "anthropic_beta",
    "betas",
    "container",
    "mcp_servers",
}
# Keys and block types inside messages that only exist in the Anthropic format.
ANTHROPIC_MESSAGE_KEYS = {"thinking", "signature", "cache_control", "tool_use_id", "is_error", "citations"}
ANTHROPIC_BLOCK_TYPES = {
    "thinking",
    "redacted_thinking",
    "tool_use",
    "tool_result",
    "server_tool_use",
    "document",
}
OPENAI_ROLES = {"system", "developer", "user", "assistant", "tool"}


def chat_requests(fake: FakeUpstream) -> list[dict[str, Any]]:
    """The bodies of the Chat Completions requests the fake upstream received, in order."""
    return [r.body for r in fake.requests if r.method == "POST" and r.path.endswith("/chat/completions")]


def _walk(value: Any, path: str = "$") -> list[tuple[str, str, Any]]:
    """(path, key, value) for every key of every object inside ``value``."""
    out: list[tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            out.append((path, key, item))
            out += _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _walk(item, f"{path}[{i}]")
    return out


def assert_openai_request(body: Any) -> None:
    """A Chat Completions request with nothing of the Anthropic format left in it."""
    assert isinstance(body, dict), body
    leaked = sorted(ANTHROPIC_FIELDS & body.keys())
    assert not leaked, f"Anthropic fields reached the upstream: {leaked}"
    assert isinstance(body.get("model"), str) and body["model"]
    messages = body.get("messages")
    assert isinstance(messages, list) and messages
    for message in messages:
        assert message.get("role") in OPENAI_ROLES, message
    bad = [
        f"{path}.{key}={item!r}"[:200]
        for path, key, item in _walk(messages, "$.messages")
        if key in ANTHROPIC_MESSAGE_KEYS or (key == "type" and item in ANTHROPIC_BLOCK_TYPES)
    ]
    assert not bad, f"Anthropic message content reached the upstream: {bad}"
    for tool in body.get("tools") or []:
        assert tool.get("type") == "function", tool
        assert set(tool) == {"type", "function"}, f"extra keys on a tool: {sorted(tool)}"
        function = tool["function"]
        assert isinstance(function.get("name"), str), tool
        assert isinstance(function.get("parameters"), dict), tool
        assert not {"input_schema", "cache_control", "defer_loading"} & function.keys(), function


def assert_no_thinking(body: Any) -> None:
    """No ``thinking`` key and no block of type thinking anywhere in the request."""
    hits = [
        f"{path}.{key}"
        for path, key, item in _walk(body)
        if key in ("thinking", "signature") or (key == "type" and item in ("thinking", "redacted_thinking"))
    ]
    assert not hits, f"thinking leaked into the upstream request: {hits}"


def tool_turn(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The last assistant message with tool_calls and the tool messages right after it."""
    messages = body["messages"]
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "assistant" and messages[i].get("tool_calls"):
            results = []
            for message in messages[i + 1 :]:
                if message.get("role") != "tool":
                    break
                results.append(message)
            return messages[i], results
    raise AssertionError(f"no assistant message with tool_calls in {json.dumps(messages)[-3000:]}")


def bash_args(call: dict[str, Any]) -> dict[str, Any]:
    assert call.get("type") == "function", call
    assert call["function"]["name"] == "Bash", call
    args = json.loads(call["function"]["arguments"])
    assert isinstance(args, dict), call
    return args


def assert_no_proxy_errors(caplog: pytest.LogCaptureFixture) -> None:
    """The proxy logged nothing at ERROR: an exception it did not expect is a bug even if the run passed."""
    errors = [r for r in caplog.records if r.name.startswith("rawproxy") and r.levelno >= logging.ERROR]
    assert not errors, "rawproxy logged errors:\n" + "\n".join(
        f"{r.name}: {r.getMessage()}\n{r.exc_text or ''}" for r in errors
    )


def assert_success(run: ClaudeRun) -> dict[str, Any]:
    assert run.returncode == 0, run.describe()
    output = run.output
    assert output.get("is_error") is False, run.describe()
    return output


async def test_plain_text(
    fake: FakeUpstream, proxy_factory: Any, run_claude: RunClaude, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await proxy_factory()
    run = await run_claude("MOCK:text Say the magic words.", proxy.url)

    output = assert_success(run)
    assert "rawproxy-e2e-ok" in output["result"], run.describe()

    chats = chat_requests(fake)
    assert len(chats) == 1, [r.path for r in fake.requests]
    body = chats[0]
    assert_openai_request(body)
    assert body.get("stream") is True
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"], "the system prompt is empty"
    names = [tool["function"]["name"] for tool in body.get("tools") or []]
    assert "Bash" in names, names
    bash = next(t["function"] for t in body["tools"] if t["function"]["name"] == "Bash")
    assert "command" in bash["parameters"].get("properties", {}), bash["parameters"]
    user = [m for m in body["messages"] if m["role"] == "user"]
    assert "MOCK:text" in json.dumps(user), user

    record = next(r for r in fake.requests if r.path.endswith("/chat/completions"))
    headers = {k.lower(): v for k, v in record.headers.items()}
    assert headers.get("authorization") == "Bearer sk-upstream-secret"
    leaked = sorted(k for k in headers if k.startswith("anthropic-") or k == "x-api-key")
    assert not leaked, f"Anthropic headers reached the upstream: {leaked}"
    assert_no_proxy_errors(caplog)


async def test_bash_tool_loop(
    fake: FakeUpstream, proxy_factory: Any, run_claude: RunClaude, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await proxy_factory()
    run = await run_claude("MOCK:bash Write the file.", proxy.url)

    output = assert_success(run)
    assert run.file("out.txt").strip() == "rawproxy-ok"
    assert "The file out.txt was written." in output["result"], run.describe()

    chats = chat_requests(fake)
    assert len(chats) == 2, run.describe()
    for body in chats:
        assert_openai_request(body)
        assert body.get("stream") is True
    assistant, results = tool_turn(chats[1])
    assert len(assistant["tool_calls"]) == 1, assistant
    call = assistant["tool_calls"][0]
    assert bash_args(call) == {"command": "echo rawproxy-ok > out.txt", "description": "Write out.txt"}
    assert results, f"no role:tool message after the assistant's tool_calls: {chats[1]['messages'][-3:]}"
    assert results[0]["tool_call_id"] == call["id"]
    assert isinstance(results[0]["content"], str | list), results[0]
    assert_no_proxy_errors(caplog)


async def test_parallel_tool_calls(
    fake: FakeUpstream, proxy_factory: Any, run_claude: RunClaude, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await proxy_factory()
    run = await run_claude("MOCK:parallel Write both files.", proxy.url)

    output = assert_success(run)
    assert run.file("a.txt").strip() == "one"
    assert run.file("b.txt").strip() == "two"
    assert "Both files were written." in output["result"], run.describe()

    chats = chat_requests(fake)
    assert len(chats) == 2, run.describe()
    for body in chats:
        assert_openai_request(body)
    assistant, results = tool_turn(chats[1])
    calls = assistant["tool_calls"]
    assert [bash_args(c)["command"] for c in calls] == ["echo one > a.txt", "echo two > b.txt"]
    assert len({c["id"] for c in calls}) == 2, calls
    assert [r["tool_call_id"] for r in results] == [c["id"] for c in calls], results
    assert_no_proxy_errors(caplog)


async def test_reasoning_then_tool_call(
    fake: FakeUpstream, proxy_factory: Any, run_claude: RunClaude, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await proxy_factory()
    run = await run_claude("MOCK:think Think, then write the file.", proxy.url)

    output = assert_success(run)
    assert run.file("think.txt").strip() == "thought"
    assert "Done thinking and writing." in output["result"], run.describe()
    # Claude Code asked for adaptive thinking, so the reasoning reached it as a thinking block signed with
    # rawproxy's sealed envelope, before the tool call (its session transcript keeps what it received).
    blocks = run.assistant_blocks()
    kinds = [b.get("type") for b in blocks]
    assert "thinking" in kinds and "tool_use" in kinds, blocks
    assert kinds.index("thinking") < kinds.index("tool_use"), kinds
    thinking = blocks[kinds.index("thinking")]
    assert thinking.get("thinking") == "The user wants a file. I will use Bash.", thinking
    assert is_sealed(thinking.get("signature")), thinking

    chats = chat_requests(fake)
    assert len(chats) == 2, run.describe()
    for body in chats:
        assert_openai_request(body)
        assert_no_thinking(body)
    assistant, results = tool_turn(chats[1])
    # RS-07: Claude Code sent the block back, and the upstream got its reasoning back in its own field
    assert assistant["reasoning_content"] == "The user wants a file. I will use Bash."
    call = assistant["tool_calls"][0]
    assert bash_args(call)["command"] == "echo thought > think.txt"
    assert [r["tool_call_id"] for r in results] == [call["id"]]
    assert_no_proxy_errors(caplog)


async def test_upstream_rate_limit(
    fake: FakeUpstream, proxy_factory: Any, run_claude: RunClaude, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await proxy_factory()
    run = await run_claude("MOCK:429 Anything.", proxy.url)

    assert run.returncode == 1, run.describe()
    output = run.output
    assert output.get("is_error") is True, run.describe()
    assert output.get("api_error_status") == 429, run.describe()
    assert "Rate limit reached" in output.get("result", ""), run.describe()

    chats = chat_requests(fake)
    assert chats, "the upstream saw no request"
    for body in chats:
        assert_openai_request(body)
    assert_no_proxy_errors(caplog)


async def test_midstream_failure_retried_without_streaming(
    fake: FakeUpstream, proxy_factory: Any, run_claude: RunClaude, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await proxy_factory()
    run = await run_claude("MOCK:midstream Tell me.", proxy.url)

    output = assert_success(run)
    assert "answer after a failed stream" in output["result"], run.describe()

    chats = chat_requests(fake)
    assert [bool(body.get("stream")) for body in chats] == [True, False], run.describe()
    for body in chats:
        assert_openai_request(body)
    assert_no_proxy_errors(caplog)


# M26 (issue 15): Claude Code on claude-opus-4-8 with thinking on, its opus tier served by an OpenAI
# reasoning model. Claude Code 2.1.332 asks that model for adaptive thinking and an output_config.effort
# (high unless --effort says otherwise); gpt-5.2 takes reasoning_effort none/low/medium/high/xhigh only.

OPUS_4_8 = "claude-opus-4-8"
GPT_5_2 = "gpt-5.2"


@pytest.mark.parametrize(
    ("effort", "asked", "mapped"),
    [(None, "high", "high"), ("max", "max", "xhigh")],
    ids=["default-effort", "effort-max"],
)
async def test_m26_claude_code_opus_4_8_thinking_to_an_openai_upstream(
    fake: FakeUpstream,
    proxy_factory: Any,
    run_claude: RunClaude,
    caplog: pytest.LogCaptureFixture,
    effort: str | None,
    asked: str,
    mapped: str,
) -> None:
    """Claude Code on claude-opus-4-8 sends ``thinking: {"type": "adaptive"}`` with ``output_config.effort``
    (max with ``--effort max``). Routed to gpt-5.2, that effort must arrive as a ``reasoning_effort`` on
    gpt-5.2's own scale (max is xhigh there), or OpenAI answers 400 "Unsupported value: 'max' is not
    supported with the 'gpt-5.2' model..."; and the reasoning the upstream streams back must reach
    Claude Code as thinking without breaking the turn."""
    reasoning = "Reasoning on the OpenAI side before answering."
    answer = "Opus 4.8 answered by gpt-5.2."
    fake.enqueue(Script(text=answer, reasoning=reasoning))
    proxy = await proxy_factory(
        upstream_profile="openai",  # OpenAI's own API: reasoning_effort, max_completion_tokens
        routes=ModelRoutes(big=GPT_5_2),  # the opus tier
        log_bodies=True,  # what Claude Code asked for, in the access log (logged_bodies.py)
    )
    extra = ["--model", OPUS_4_8, *(["--effort", effort] if effort else [])]
    with caplog.at_level(logging.INFO, logger="rawproxy.access"):
        run = await run_claude("Think, then answer in one sentence.", proxy.url, *extra)

    output = assert_success(run)
    assert answer in output["result"], run.describe()

    # What Claude Code asked the proxy for: adaptive thinking at an effort.
    sent = [b for b in client_bodies(caplog) if b.get("model") == OPUS_4_8]
    assert len(sent) == 1, [b.get("model") for b in client_bodies(caplog)]
    assert (sent[0].get("thinking") or {}).get("type") == "adaptive", sent[0].get("thinking")
    assert (sent[0].get("output_config") or {}).get("effort") == asked, sent[0].get("output_config")

    # What the upstream got: gpt-5.2 at that effort on its own scale, a request the strict fake takes.
    chats = chat_requests(fake)
    assert len(chats) == 1, run.describe()
    body = chats[0]
    assert_openai_request(body)
    assert_no_thinking(body)
    assert body["model"] == GPT_5_2
    assert fake.strict, "the fake must refuse what the real API refuses"
    assert refusal(body) is None, f"OpenAI would refuse it: {refusal(body)}"
    assert body.get("reasoning_effort") == mapped, body.get("reasoning_effort")
    assert mapped in family_of(GPT_5_2).efforts
    assert "reasoning" not in body  # the "openai" profile's parameter is reasoning_effort
    assert "temperature" not in body and "top_p" not in body, body
    assert "max_completion_tokens" in body and "max_tokens" not in body, body
    assert fake.streams_completed == 1, "the fake did not answer the request with a whole stream"

    # The reasoning reached Claude Code as a thinking block, before the answer.
    blocks = run.assistant_blocks()
    kinds = [b.get("type") for b in blocks]
    assert "thinking" in kinds and "text" in kinds, blocks
    assert kinds.index("thinking") < kinds.index("text"), kinds
    assert blocks[kinds.index("thinking")].get("thinking") == reasoning, blocks
    assert_no_proxy_errors(caplog)


GEMINI_SIGNATURE = {"google": {"thought_signature": "EjQKMgEMOdbHQ3y7ZyfV7dSNgdLe2Vd1v1Zr"}}


@pytest.mark.parametrize("mode", ["deepseek", "gemini", "openrouter"])
async def test_rs_09_claude_code_bash_loop_gives_the_provider_its_reasoning_state_back(
    fake: FakeUpstream,
    proxy_factory: Any,
    run_claude: RunClaude,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    """Issue 16, done when: Claude Code 2.1.332, thinking on (it asks adaptive thinking), a bash tool loop
    against the fake in DeepSeek V4's mode (refuses a tool turn without its reasoning_content), Gemini's
    (refuses one whose call lacks its thought signature) and OpenRouter's (reasoning_details with an
    encrypted entry), with the default profile: the loop completes and the upstream got back exactly what
    it sent (``fake.lost`` lists every difference)."""
    call = ToolCall(
        name="Bash",
        arguments={"command": "echo stateful > state.txt", "description": "Write state.txt"},
        extra_content=GEMINI_SIGNATURE if mode == "gemini" else None,
    )
    reasoning = "" if mode == "gemini" else "The user wants state.txt. I will use Bash."
    fake.provider = mode
    fake.enqueue(
        Script(text="", reasoning=reasoning, tool_calls=[call], arg_fragments=3),
        Script(text="The state file was written."),
    )
    proxy = await proxy_factory()  # the default profile: no per-provider switch
    run = await run_claude("Write the state file.", proxy.url)

    output = assert_success(run)
    assert run.file("state.txt").strip() == "stateful"
    assert "The state file was written." in output["result"], run.describe()
    chats = chat_requests(fake)
    assert len(chats) == 2, run.describe()
    assert fake.lost == [], fake.lost
    assistant, results = tool_turn(chats[1])
    wanted = fake.issued[assistant["tool_calls"][0]["id"]]
    assert wanted, "the provider issued no state: the test would prove nothing"
    if mode == "gemini":
        assert assistant["tool_calls"][0]["extra_content"] == GEMINI_SIGNATURE
    else:  # the reasoning reached Claude Code as a thinking block signed with the envelope
        thinking = [b for b in run.assistant_blocks() if b.get("type") == "thinking"]
        assert [b.get("thinking") for b in thinking] == [reasoning], run.assistant_blocks()
        assert is_sealed(thinking[0].get("signature"))
        field = "reasoning_content" if mode == "deepseek" else "reasoning_details"
        assert assistant[field] == wanted[field]
    assert [r["tool_call_id"] for r in results] == [assistant["tool_calls"][0]["id"]]
    assert "rp1" not in json.dumps(chats[1])  # no envelope reaches the upstream
    assert_no_proxy_errors(caplog)
