"""End to end: the real Codex CLI (pinned; it speaks only the Responses API) -> rawproxy -> the fake
upstream, with each of the two upstream protocols (issue 8).

``codex exec`` runs headless with a custom ``model_providers`` entry (``wire_api = "responses"``) pointing
at the proxy. The upstream is scripted to answer the first turn with a call of Codex's shell tool
(``exec_command``) and the second with text; the test checks that Codex ran the command (the file it
wrote), that the command's output reached the upstream as a tool result, and that Codex finished the
turn with the upstream's text.

The M26 tests (issue 15) run Codex at ``model_reasoning_effort = "high"`` on claude-opus-4-8, which takes
adaptive thinking only, against the strict fake: every upstream request must be one Anthropic's API
takes for that model, and the thinking Codex replays on the tool turn must keep its signature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rawproxy.carrier import is_sealed
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall
from rawproxy.testing.fake_upstream.anthropic_rules import refusal

from .logged_bodies import client_bodies

pytestmark = pytest.mark.e2e

CODEX_VERSION = "0.171.0"
REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = Path(__file__).resolve().parent / "install-codex.sh"
DEFAULT_BIN = REPO / ".e2e-codex" / "node_modules" / ".bin" / "codex"
RUN_TIMEOUT = 120.0


def _version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False)
    return done.stdout.strip()


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The pinned Codex CLI (installed on first use; skipped only without node and npm)."""
    override = os.environ.get("RAWPROXY_CODEX_BIN")
    if override:
        return Path(override)
    if DEFAULT_BIN.exists() and _version(DEFAULT_BIN) == f"codex-cli {CODEX_VERSION}":
        return DEFAULT_BIN
    if shutil.which("npm") is None:
        pytest.skip(f"npm is not on PATH: Codex {CODEX_VERSION} cannot be installed here")
    done = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, cwd=REPO, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{INSTALL_SCRIPT.name} failed:\n{done.stderr[-4000:]}", pytrace=False)
    binary = Path(done.stdout.strip().splitlines()[-1])
    assert _version(binary) == f"codex-cli {CODEX_VERSION}"
    return binary


CONFIG = """model = "{model}"
model_provider = "rawproxy"

[model_providers.rawproxy]
name = "rawproxy"
base_url = "{base_url}/v1"
wire_api = "responses"
env_key = "RAWPROXY_E2E_KEY"
"""


async def run_codex(
    codex: Path, tmp: Path, base_url: str, model: str, prompt: str, *, settings: str = ""
) -> tuple[int, str, str, Path]:
    """One ``codex exec`` run; ``settings`` are top-level config.toml lines (``model_reasoning_effort``)."""
    home, cwd = tmp / "home", tmp / "work"
    (home / ".codex").mkdir(parents=True)
    cwd.mkdir()
    (home / ".codex" / "config.toml").write_text(settings + CONFIG.format(model=model, base_url=base_url))
    code, stdout, stderr = await exec_codex(
        codex, home, cwd, prompt, {"RAWPROXY_E2E_KEY": "sk-dummy-rawproxy-e2e"}
    )
    return code, stdout, stderr, cwd


async def exec_codex(
    codex: Path, home: Path, cwd: Path, prompt: str, keys: dict[str, str]
) -> tuple[int, str, str]:
    """``codex exec prompt`` in ``cwd`` with ``home``'s ``.codex`` and an environment made from scratch
    (``keys`` added); (exit code, stdout, stderr); a run past ``RUN_TIMEOUT`` is killed and fails."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "LANG": "C.UTF-8",
        # anything that tried to leave the machine would meet a closed loopback port
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        **keys,
    }
    argv = [
        str(codex),
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",  # no sandbox to set up: the command is ours
        prompt,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = await proc.communicate()
        pytest.fail(f"codex did not finish in {RUN_TIMEOUT:.0f} s\n{stdout.decode()}\n{stderr.decode()}")
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")


@pytest.mark.parametrize("upstream", ["openai", "anthropic"])
async def test_r8_codex_runs_a_shell_tool_turn_through_the_proxy(
    codex_bin: Path, proxy_factory: Any, fake: FakeUpstream, tmp_path: Path, upstream: str
) -> None:
    command = "echo made-by-codex-through-rawproxy > proof.txt && echo ok"
    fake.enqueue(
        Script(text="", tool_calls=[ToolCall(name="exec_command", arguments={"cmd": command})]),
        Script(text="The file is written."),
    )
    if upstream == "openai":
        settings: dict[str, Any] = {"openai_upstream": fake.url, "openai_key": "sk-upstream"}
        model = "gpt-5"
    else:
        settings = {
            "anthropic_upstream": fake.anthropic_url,
            "anthropic_key": "sk-ant-test",
            "openai_upstream": DEFAULT_OPENAI_UPSTREAM,
            "openai_key": None,
        }
        model = "claude-sonnet-4-6"
    proxy = await proxy_factory(grace_seconds=1.0, **settings)
    code, stdout, stderr, cwd = await run_codex(codex_bin, tmp_path, proxy.url, model, "write the proof file")
    described = f"codex exited {code}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert code == 0, described
    assert (cwd / "proof.txt").read_text().strip() == "made-by-codex-through-rawproxy", described
    assert "The file is written." in stdout, described
    turns = [r for r in fake.requests if r.method == "POST"]
    assert len(turns) == 2, described
    first, second = turns[0].body, turns[1].body
    if upstream == "openai":
        assert first["messages"][0]["role"] in ("system", "developer")  # Codex's developer messages
        names = {t["function"]["name"] for t in first["tools"]}
        results = [m for m in second["messages"] if m["role"] == "tool"]
        output = results[-1]["content"]
    else:
        assert first["system"]
        names = {t["name"] for t in first["tools"]}
        assert "web_search" in names  # Codex's hosted web search, as Anthropic's server tool
        results = [
            b
            for m in second["messages"]
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_result"
        ]
        output = results[-1]["content"]
    assert "exec_command" in names
    assert any(n.startswith("multi_agent_v1__") for n in names)  # a namespace, flattened
    assert "ok" in str(output), described


# M26 (issue 15): Codex at reasoning effort "high" on claude-opus-4-8, a model that takes adaptive
# thinking only, against the strict fake (it refuses what Anthropic's API refuses for that model, in the
# API's words, and leaves the thinking text out unless display "summarized" is asked).

OPUS_4_8 = "claude-opus-4-8"
REASONING_HIGH = 'model_reasoning_effort = "high"\n'
ADAPTIVE_SUMMARIZED = {"type": "adaptive", "display": "summarized"}


def _anthropic_settings(fake: FakeUpstream) -> dict[str, Any]:
    return {
        "grace_seconds": 1.0,
        "anthropic_upstream": fake.anthropic_url,
        "anthropic_key": "sk-ant-test",
        "openai_upstream": DEFAULT_OPENAI_UPSTREAM,
        "openai_key": None,
        "log_bodies": True,  # what Codex asked for, in the access log (logged_bodies.py)
    }


def _enabled_thinking(value: Any, path: str = "$") -> list[str]:
    """Where ``value`` holds a thinking budget: a ``type: "enabled"`` object or a ``budget_tokens``."""
    hits: list[str] = []
    if isinstance(value, dict):
        if value.get("type") == "enabled" or "budget_tokens" in value:
            hits.append(path)
        for key, item in value.items():
            hits += _enabled_thinking(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            hits += _enabled_thinking(item, f"{path}[{i}]")
    return hits


def assert_taken_by_opus_4_8(fake: FakeUpstream, described: str) -> list[dict[str, Any]]:
    """The Messages requests the fake got, each one Anthropic's API takes for claude-opus-4-8 (the strict
    fake's own rules find nothing to refuse, and it answered every one with a whole 200 stream), each
    asking for adaptive thinking shown summarized at effort high, without a sampling parameter."""
    assert fake.strict, "the fake must refuse what the real API refuses"
    turns = [r.body for r in fake.requests if r.method == "POST" and r.path.endswith("/v1/messages")]
    assert turns, described
    for i, body in enumerate(turns):
        where = f"upstream request {i + 1} of {len(turns)}"
        assert body["model"] == OPUS_4_8, where
        assert refusal(body) is None, f"{where} would earn a 400: {refusal(body)}\n{described}"
        assert body.get("thinking") == ADAPTIVE_SUMMARIZED, f"{where}: thinking={body.get('thinking')}"
        assert (body.get("output_config") or {}).get("effort") == "high", (
            f"{where}: {body.get('output_config')}"
        )
        sampling = sorted({"temperature", "top_p", "top_k"} & body.keys())
        assert not sampling, f"{where} sends {sampling}, which claude-opus-4-8 refuses"
        enabled = _enabled_thinking(body)
        assert not enabled, f"{where} asks for budgeted thinking at {enabled}"
    assert fake.streams_completed == len(turns), (
        f"the fake completed {fake.streams_completed} streams for {len(turns)} requests: one was refused\n"
        f"{described}"
    )
    return turns


def codex_requests(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The Responses API requests Codex sent to the proxy (its model turns), in order."""
    return [b for b in client_bodies(caplog) if "input" in b]


async def test_m26_codex_reasoning_high_on_opus_4_8_text_turn(
    codex_bin: Path, proxy_factory: Any, fake: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Codex 0.171 with ``model_reasoning_effort = "high"`` on claude-opus-4-8 used to fail its first turn
    with Anthropic's 400 '"thinking.type.enabled" is not supported for this model. Use
    "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.': the effort became
    a thinking budget. It must become adaptive thinking at effort high, shown summarized (Opus 4.8 leaves
    its thinking out otherwise), and the answer and the thinking must reach Codex."""
    fake.enqueue(
        Script(
            text="Opus 4.8 answered at high effort.",
            reasoning="Weighing the question with care.",
            signature="sig-opus-4-8-text",
        )
    )
    proxy = await proxy_factory(**_anthropic_settings(fake))
    with caplog.at_level(logging.INFO, logger="rawproxy.access"):
        code, stdout, stderr, _ = await run_codex(
            codex_bin, tmp_path, proxy.url, OPUS_4_8, "answer in one sentence", settings=REASONING_HIGH
        )
    described = f"codex exited {code}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert code == 0, described
    assert "Opus 4.8 answered at high effort." in stdout, described
    assert "Weighing the question with care." in stderr, described  # the thinking shown, not omitted
    asked = codex_requests(caplog)
    assert len(asked) == 1, described
    assert asked[0]["model"] == OPUS_4_8
    assert asked[0]["reasoning"]["effort"] == "high", asked[0].get("reasoning")
    turns = assert_taken_by_opus_4_8(fake, described)
    assert len(turns) == 1, described


async def test_m26_codex_reasoning_high_on_opus_4_8_shell_tool_turn(
    codex_bin: Path, proxy_factory: Any, fake: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same 400 ('"thinking.type.enabled" is not supported for this model...') hit Codex 0.171 at
    reasoning high on claude-opus-4-8 in a shell tool loop, and the second turn carries more risk: Codex
    replays the first answer's reasoning (its encrypted content) with the tool result, and Anthropic
    takes a thinking block back only with the signature it came with. Every turn must be one the API
    takes, the command must run, and the replayed thinking must keep the fake's signature."""
    command = "echo made-by-codex-on-opus-4-8 > proof.txt && echo ok"
    reasoning = "The user wants the proof file. I will write it with the shell."
    signature = "sig-opus-4-8-tool-turn"
    fake.enqueue(
        Script(
            text="",
            reasoning=reasoning,
            signature=signature,
            tool_calls=[ToolCall(name="exec_command", arguments={"cmd": command})],
        ),
        Script(text="The file is written."),
    )
    proxy = await proxy_factory(**_anthropic_settings(fake))
    with caplog.at_level(logging.INFO, logger="rawproxy.access"):
        code, stdout, stderr, cwd = await run_codex(
            codex_bin, tmp_path, proxy.url, OPUS_4_8, "write the proof file", settings=REASONING_HIGH
        )
    described = f"codex exited {code}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert code == 0, described
    assert (cwd / "proof.txt").read_text().strip() == "made-by-codex-on-opus-4-8", described
    assert "The file is written." in stdout, described
    assert reasoning in stderr, described  # the first turn's thinking reached Codex, shown

    asked = codex_requests(caplog)
    assert len(asked) == 2, described
    assert [b["reasoning"]["effort"] for b in asked] == ["high", "high"]
    turns = assert_taken_by_opus_4_8(fake, described)
    assert len(turns) == 2, described
    first, second = turns
    assert "exec_command" in {t["name"] for t in first["tools"]}
    assert [m["role"] for m in first["messages"]] == ["user"], first["messages"]

    # The second turn: the assistant's first answer, then the command's result.
    assistant = next(
        m
        for m in second["messages"]
        if m["role"] == "assistant" and any(b.get("type") == "tool_use" for b in m["content"])
    )
    kinds = [b["type"] for b in assistant["content"]]
    call = next(b for b in assistant["content"] if b["type"] == "tool_use")
    assert call["name"] == "exec_command" and call["input"] == {"cmd": command}, call
    # Codex 0.171 sends its reasoning back (with its encrypted content, where the proxy keeps the
    # signature): it must reach Anthropic as the thinking block it was, signed, before the call.
    replayed = [item for item in asked[1]["input"] if item.get("type") == "reasoning"]
    assert replayed, f"Codex did not replay its reasoning: {[i.get('type') for i in asked[1]['input']]}"
    assert replayed[0].get("encrypted_content"), replayed[0]
    assert "thinking" in kinds, f"Codex replayed its reasoning, the upstream got none: {kinds}"
    assert kinds.index("thinking") < kinds.index("tool_use"), kinds
    thinking = assistant["content"][kinds.index("thinking")]
    assert thinking == {"type": "thinking", "thinking": reasoning, "signature": signature}, thinking
    results = [
        b
        for m in second["messages"]
        if m["role"] == "user"
        for b in m["content"]
        if isinstance(b, dict) and b.get("type") == "tool_result"
    ]
    assert [r["tool_use_id"] for r in results] == [call["id"]], results
    assert "ok" in str(results[0]["content"]), results


async def test_rs_09_codex_shell_turn_on_deepseek_gets_its_reasoning_back_through_encrypted_content(
    codex_bin: Path, proxy_factory: Any, fake: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 16, done when: Codex 0.171 (Responses in) on DeepSeek V4 in thinking mode (Chat Completions
    up), a shell tool turn with reasoning. DeepSeek refuses the next turn unless the assistant tool turn
    carries its ``reasoning_content``; Codex returns only the reasoning item's ``encrypted_content`` (and
    its summary), so the reasoning must come back through that field (router-for-me/CLIProxyAPI#3451
    called this pairing impossible)."""
    thought = "The user wants the proof file. I will run a shell command."
    command = "echo reasoned-through-rawproxy > proof.txt && echo ok"
    fake.provider = "deepseek"  # refuses a tool turn without its reasoning_content, in DeepSeek's words
    fake.enqueue(
        Script(
            text="", reasoning=thought, tool_calls=[ToolCall(name="exec_command", arguments={"cmd": command})]
        ),
        Script(text="The file is written."),
    )
    proxy = await proxy_factory(
        grace_seconds=1.0, openai_upstream=fake.url, openai_key="sk-upstream", log_bodies=True
    )
    with caplog.at_level(logging.INFO, logger="rawproxy.access"):
        code, stdout, stderr, cwd = await run_codex(
            codex_bin, tmp_path, proxy.url, "deepseek-v4-pro", "write the proof file", settings=REASONING_HIGH
        )
    described = f"codex exited {code}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert code == 0, described
    assert (cwd / "proof.txt").read_text().strip() == "reasoned-through-rawproxy", described
    assert "The file is written." in stdout, described
    turns = [r.body for r in fake.requests if r.method == "POST"]
    assert len(turns) == 2, described
    assert fake.lost == [], fake.lost
    assistant = next(m for m in turns[1]["messages"] if m["role"] == "assistant" and m.get("tool_calls"))
    assert assistant["reasoning_content"] == thought  # exactly what DeepSeek sent
    # and it travelled in Codex's own field: the reasoning item it sent back held the sealed envelope
    sent = codex_requests(caplog)[-1]["input"]
    reasoning = [i for i in sent if isinstance(i, dict) and i.get("type") == "reasoning"]
    assert reasoning and is_sealed(reasoning[-1].get("encrypted_content")), reasoning
