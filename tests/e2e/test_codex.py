"""End to end: the real Codex CLI (pinned; it speaks only the Responses API) -> rawproxy -> the fake
upstream, with each of the two upstream protocols (issue 8).

``codex exec`` runs headless with a custom ``model_providers`` entry (``wire_api = "responses"``) pointing
at the proxy. The upstream is scripted to answer the first turn with a call of Codex's shell tool
(``exec_command``) and the second with text; the test checks that Codex ran the command (the file it
wrote), that the command's output reached the upstream as a tool result, and that Codex finished the
turn with the upstream's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.testing.fake_upstream import FakeUpstream, Script, ToolCall

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
    codex: Path, tmp: Path, base_url: str, model: str, prompt: str
) -> tuple[int, str, str, Path]:
    home, cwd = tmp / "home", tmp / "work"
    (home / ".codex").mkdir(parents=True)
    cwd.mkdir()
    (home / ".codex" / "config.toml").write_text(CONFIG.format(model=model, base_url=base_url))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "LANG": "C.UTF-8",
        "RAWPROXY_E2E_KEY": "sk-dummy-rawproxy-e2e",
        # anything that tried to leave the machine would meet a closed loopback port
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
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
    return proc.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"), cwd


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
