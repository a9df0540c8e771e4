"""End to end, issue 17: a whole Codex 0.171.0 session through rawproxy, with both configurations users
have, to an Anthropic upstream and to an OpenAI-compatible Chat Completions upstream.

- ``custom``: a ``[model_providers.rawproxy]`` entry named "OpenAI" (that name is what gives a custom
  provider Codex's remote compaction) with ``model_catalog_url`` pointing at the proxy's catalog;
- ``builtin``: the built-in provider with ``openai_base_url``, which never fetches a catalog in 0.171,
  and ``model_catalog_json``: the proxy's catalog saved to a file, as the README says.
(tests/fixtures/research/codex_2026.md, observed with 0.171.0.)

A text turn, then one ``codex exec`` run that does everything else the issue lists: a shell turn, an
``apply_patch`` edit of an existing file (the freeform tool, CX-04), a compaction forced by
``model_auto_compact_token_limit``
(CX-02: the model's first answer reports 5 000 input tokens), after which the session goes on and
finishes; the first POST reaches the upstream within 1 s of the start (the WebSocket probe answered 426,
CX-01); and no "Model metadata ... not found" warning (CX-03). The fake upstream answers by what the
conversation holds so far, whatever order Codex sends its requests in.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.dialects.openai_responses.compaction import INSTRUCTION
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall

from .test_codex import codex_bin, exec_codex

pytestmark = pytest.mark.e2e

__all__ = ["codex_bin"]  # the fixture, shared

MODEL = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-5.2"}
SHELL = "echo shell-ok > shell.txt && echo shell-ok"
ORIGINAL = "greeting = 'hello'\n"
PATCH = "*** Begin Patch\n*** Update File: app.py\n@@\n-greeting = 'hello'\n+greeting = 'patched by codex'\n*** End Patch\n"
SUMMARY = "SUMMARY-OK: shell.txt was written by the shell; app.py still needs its greeting patched."
FINAL = "Session finished after the compaction."

CUSTOM = """model = "{model}"
model_provider = "rawproxy"
model_auto_compact_token_limit = 2000

[model_providers.rawproxy]
name = "OpenAI"
base_url = "{url}/v1"
model_catalog_url = "{url}/v1/models"
wire_api = "responses"
env_key = "OPENAI_API_KEY"
"""
BUILTIN = """model = "{model}"
openai_base_url = "{url}/v1"
model_catalog_json = "{catalog}"
model_auto_compact_token_limit = 2000
"""


def conversation_text(body: dict[str, Any]) -> str:
    """Everything the upstream was sent in its messages, as one string (either protocol)."""
    return str(body.get("messages", ""))


def last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            texts = [p.get("text", "") for p in content or [] if isinstance(p, dict)]
            return "".join(t for t in texts if t)
    return ""


def plan(body: Any) -> Script:
    """The model's next move, from what the conversation holds so far."""
    if INSTRUCTION in last_user_text(body):
        return Script(text=SUMMARY)  # the compaction's summary
    seen = conversation_text(body)
    if "Success. Updated the following files" in seen or "patched by codex" in seen:
        return Script(text=FINAL)
    if "shell-ok" in seen or "SUMMARY-OK" in seen:
        return Script(text="", tool_calls=[ToolCall(name="apply_patch", arguments={"input": PATCH})])
    # the first answer: a shell call, and more input tokens than the compaction limit
    return Script(
        text="", tool_calls=[ToolCall(name="exec_command", arguments={"cmd": SHELL})], prompt_tokens=5000
    )


async def watch_first_post(fake: FakeUpstream, started: float) -> float:
    while not any(r.method == "POST" for r in fake.requests):
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def codex_session(
    codex: Path, home: Path, cwd: Path, fake: FakeUpstream, prompt: str
) -> tuple[int, str, float]:
    """The run, its output (stdout and stderr), and how long after its start the first POST came."""
    started = time.monotonic()
    watcher = asyncio.create_task(watch_first_post(fake, started))
    code, stdout, stderr = await exec_codex(
        codex, home, cwd, prompt, {"OPENAI_API_KEY": "sk-dummy-rawproxy-e2e"}
    )
    first_post = watcher.result() if watcher.done() else -1.0
    watcher.cancel()
    return code, stdout + stderr, first_post


async def configured(
    proxy_factory: Any, fake: FakeUpstream, tmp: Path, upstream: str, configuration: str
) -> Path:
    """A proxy to ``upstream`` and a Codex home set up the ``configuration`` way; the home."""
    # the upstream lists the model, as a real one does: the catalog lists what the upstreams list
    fake.openai_models = [{"id": MODEL["openai"], "object": "model", "created": 0, "owned_by": "fake"}]
    if upstream == "anthropic":
        settings: dict[str, Any] = {
            "anthropic_upstream": fake.anthropic_url,
            "anthropic_key": "sk-ant-test",
            "openai_upstream": DEFAULT_OPENAI_UPSTREAM,
            "openai_key": None,
        }
    else:
        settings = {"openai_upstream": fake.url, "openai_key": "sk-upstream"}
    proxy = await proxy_factory(grace_seconds=1.0, **settings)
    home = tmp / "home"
    (home / ".codex").mkdir(parents=True)
    model = MODEL[upstream]
    if configuration == "custom":
        config = CUSTOM.format(model=model, url=proxy.url)
    else:  # the catalog saved to a file, as the README's recipe does with curl
        from tests.exchange.test_endpoints import call

        catalog = home / ".codex" / "rawproxy-models.json"
        catalog.write_bytes((await call(proxy, "GET", "/v1/models?client_version=0.171.0", [])).body)
        config = BUILTIN.format(model=model, url=proxy.url, catalog=catalog)
    (home / ".codex" / "config.toml").write_text(config)
    return home


def described(code: int, output: str, fake: FakeUpstream) -> str:
    return f"codex exited {code}\n{output[-4000:]}\nupstream requests: {[r.path for r in fake.requests]}"


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
@pytest.mark.parametrize("configuration", ["custom", "builtin"])
async def test_cx01_cx03_a_text_turn(
    codex_bin: Path, proxy_factory: Any, fake: FakeUpstream, tmp_path: Path, upstream: str, configuration: str
) -> None:
    fake.choose = lambda body: Script(text="A plain answer through rawproxy.")  # type: ignore[method-assign]
    home = await configured(proxy_factory, fake, tmp_path, upstream, configuration)
    (cwd := tmp_path / "work").mkdir()
    code, output, first_post = await codex_session(codex_bin, home, cwd, fake, "Say something.")
    said = described(code, output, fake)
    assert code == 0 and "A plain answer through rawproxy." in output, said
    assert 0 <= first_post < 1.0, f"first POST after {first_post:.2f} s\n{said}"
    assert "Model metadata for" not in output, said


@pytest.mark.parametrize("upstream", ["anthropic", "openai"])
@pytest.mark.parametrize("configuration", ["custom", "builtin"])
async def test_cx01_cx02_cx03_cx04_a_codex_session_shell_patch_compaction_and_on(
    codex_bin: Path, proxy_factory: Any, fake: FakeUpstream, tmp_path: Path, upstream: str, configuration: str
) -> None:
    fake.choose = plan  # type: ignore[method-assign]
    home = await configured(proxy_factory, fake, tmp_path, upstream, configuration)
    (cwd := tmp_path / "work").mkdir()
    (cwd / "app.py").write_text(ORIGINAL)
    prompt = "Write shell.txt with the shell, then patch app.py's greeting."
    code, output, first_post = await codex_session(codex_bin, home, cwd, fake, prompt)
    said = described(code, output, fake)
    assert code == 0, said
    assert (cwd / "shell.txt").read_text().strip() == "shell-ok", said  # the shell turn
    assert (cwd / "app.py").read_text() == "greeting = 'patched by codex'\n", said  # apply_patch
    posts = [r.body for r in fake.requests if r.method == "POST"]
    compactions = [b for b in posts if INSTRUCTION in last_user_text(b)]
    assert len(compactions) == 1, said  # the compaction ran, through the upstream model
    after = posts[posts.index(compactions[0]) + 1 :]
    assert after and any("SUMMARY-OK" in conversation_text(b) for b in after), said  # and went on
    assert FINAL in output, said  # to the end of the task
    assert 0 <= first_post < 1.0, f"first POST after {first_post:.2f} s\n{said}"
    assert "Model metadata for" not in output, said
