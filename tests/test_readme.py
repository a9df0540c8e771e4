"""The README's client recipes, run as written against a live proxy: the docs must stay true.

Each recipe is taken from README.md by its opening line; only the port (8082 in the text) is changed to
the test proxy's. The proxy fronts the fake upstream, which speaks both APIs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rawproxy.config import DEFAULT_OPENAI_UPSTREAM

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
OPENAI_NPM = "openai@7.57.0"  # pinned: the JavaScript recipe is checked against this version


def recipe(language: str, marker: str) -> str:
    """The fenced ``language`` block of the README that contains ``marker``."""
    for block in re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL):
        if marker in block:
            return block
    raise AssertionError(f"README has no {language} block with {marker!r}")


async def start(proxy_factory, fake):
    return await proxy_factory(
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        anthropic_upstream=fake.anthropic_url,
        anthropic_key="sk-ant-test",
        api_keys=("my-proxy-key",),
        grace_seconds=1.0,
    )


async def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    import asyncio

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=60, cwd=cwd, env={**os.environ, "NO_PROXY": "*"}
        )

    return await asyncio.to_thread(call)  # the proxy keeps serving in this event loop meanwhile


async def test_python_openai_sdk_recipe(proxy_factory, fake) -> None:
    proxy = await start(proxy_factory, fake)
    code = recipe("python", "from openai import OpenAI").replace("8082", str(proxy.port))
    result = await run(sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert "Hello from the fake upstream." in result.stdout.replace("\n", "")  # streamed, then usage
    assert "prompt_tokens" in result.stdout
    assert fake.requests[-1].body["thinking"] == {"type": "adaptive"}  # Claude 4.6: adaptive, effort low
    assert fake.requests[-1].body["output_config"] == {"effort": "low"}


async def test_javascript_openai_sdk_recipe(proxy_factory, fake, tmp_path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the JavaScript recipe")
    modules = ROOT / ".e2e" / "js"
    if not (modules / "node_modules" / "openai").exists():
        install = await run(
            "npm", "install", "--prefix", str(modules), "--no-save", "--no-audit", "--no-fund", OPENAI_NPM
        )
        assert install.returncode == 0, install.stderr
    proxy = await start(proxy_factory, fake)
    script = modules / "recipe.mjs"  # beside node_modules, so that `import "openai"` resolves
    script.write_text(recipe("js", 'from "openai"').replace("8082", str(proxy.port)))
    result = await run("node", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Hello from the fake upstream."


async def test_curl_recipe(proxy_factory, fake) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    proxy = await start(proxy_factory, fake)
    command = recipe("sh", "curl http://127.0.0.1:8082/v1/chat/completions").replace("8082", str(proxy.port))
    result = await run("bash", "-c", command.replace("curl ", "curl -sS --fail-with-body ", 1))
    assert result.returncode == 0, result.stderr + result.stdout
    assert '"content":"Hello from the fake upstream."' in result.stdout


async def test_python_anthropic_sdk_recipe(proxy_factory, fake) -> None:
    proxy = await start(proxy_factory, fake)
    code = (
        recipe("python", "import anthropic")
        .replace("8082", str(proxy.port))
        .replace('api_key="anything"', 'api_key="my-proxy-key"')
    )
    result = await run(sys.executable, "-c", code + "\nprint(message.content[0].text)")
    assert result.returncode == 0, result.stderr
    assert "Hello from the fake upstream." in result.stdout


def test_issue5_readme_config_example_loads_and_routes_as_documented(tmp_path: Path) -> None:
    """The README's complete configuration file loads as written and routes as the README says."""
    from rawproxy.config import Config
    from rawproxy.routing import RequestFacts

    path = tmp_path / "rawproxy.toml"
    path.write_text(recipe("toml", "# rawproxy.toml:"))
    env = {"OPENAI_KEY_1": "k1", "OPENAI_KEY_2": "k2", "AZURE_OPENAI_KEY": "ka", "MY_ANTHROPIC_KEY": "kc"}
    config = Config.from_env(["--config", str(path)], environ=env, dotenv=None)
    router = config.router()
    assert list(router.upstreams) == ["openai", "local", "azure", "claude", "team-gateway"]

    def decide(model: str, **body: object) -> tuple[str, str, str]:
        data = {"model": model, "messages": [{"role": "user", "content": "hi"}], **body}
        decision = router.decide(model, RequestFacts(data, "anthropic"))
        return decision.upstream.name, decision.model, decision.why

    assert decide("claude-haiku-4-5") == ("local", "qwen3-coder", "rule:background")
    sonnet = router.decide("claude-sonnet-4-6", RequestFacts({"messages": []}, "anthropic"))
    assert (sonnet.upstream.name, sonnet.model) == ("claude", "claude-sonnet-4-6")
    assert [(up.name, model) for up, model in sonnet.fallbacks] == [
        ("openai", "gpt-4.1"),
        ("azure", "gpt-4o"),
    ]
    assert decide("claude-opus-4-8") == ("openai", "o3", "route:claude-opus-*")
    assert router.decide("claude-opus-4-8").overrides == (("max_tokens", 32000),)
    assert decide("claude-opus-4-8", thinking={"type": "enabled", "budget_tokens": 2048}) == (
        "openai",
        "o3",
        "rule:think",
    )
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
    assert decide("claude-sonnet-4-6", messages=[{"role": "user", "content": [image]}])[:2] == (
        "openai",
        "gpt-4o",
    )
    assert decide("gpt-4o-mini") == ("openai", "gpt-4o-mini", "default")  # by the upstream's models list
    assert router.upstreams["azure"].url("/chat/completions", "gpt-4o") == (
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    )


def test_issue7_readme_single_file_program_runs_as_written(tmp_path: Path) -> None:
    """The README's PEP 723 program, run as a file by a fresh interpreter, against the fake upstream."""
    program = tmp_path / "embed.py"
    program.write_text(recipe("python", "# /// script"))
    fake = subprocess.Popen(
        [sys.executable, "-m", "rawproxy", "fake-upstream", "--port", "0", "--text", "embedded hello"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = re.search(r"http://\S+/v1", fake.stdout.readline())
        assert url is not None
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RAWPROXY_", "OPENAI_", "ANTHROPIC_"))
        }
        result = subprocess.run(
            [sys.executable, str(program)],
            env={**env, "UPSTREAM": url.group(0), "MODEL": "fake-model"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        fake.terminate()
        fake.communicate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "embedded hello"


def _dist(name: str) -> str:
    """A distribution name as PyPI compares them (PEP 503: runs of ``-_.`` are one ``-``, case-folded)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(text: str) -> list[str]:
    """The distribution names a snippet tells its reader to install: the arguments of ``pip install``,
    ``pipx install``, ``uv pip install``, ``uv add``, ``uv tool install``, ``--with``; the package
    ``uvx``/``pipx run`` fetch to run a command (its ``--from``/``--spec``, else the command's name); a
    PEP 723 ``dependencies`` list (https://peps.python.org/pep-0723/). Paths, URLs and options are no names."""
    found: list[str] = []
    words = r"((?:[ \t]+(?!#)[^\s`;&|]+)+)"  # the rest of the command, up to a comment or a shell operator
    for match in re.finditer(rf"(?:(?:pip3?|pipx|uv pip|uv tool) install|uv add){words}", text):
        found += match.group(1).split()
    for match in re.finditer(rf"(?:uvx|uv tool run|pipx run){words}", text):
        args = match.group(1).split()
        spec = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--from", "--spec")]
        found += spec or [a for a in args if not a.startswith("-")][:1]
    found += [m.group(1) for m in re.finditer(r"--with[ =]([^\s`]+)", text)]
    for block in re.findall(r"^# dependencies = \[(.*?)\]$", text, re.MULTILINE | re.DOTALL):
        found += re.findall(r"[\"']([^\"']+)[\"']", block)
    names = []
    for arg in (a.strip("'\"") for a in found):
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", arg)
        if name and not arg.startswith(("-", ".", "/")) and "://" not in arg and not arg.endswith(".py"):
            names.append(_dist(name.group(0)))
    return names


def test_ops02_no_readme_snippet_installs_the_bare_pypi_name() -> None:
    """Issue 18: ``rawproxy`` on PyPI is an unrelated project (0.0.8), so the distribution is named
    otherwise (pyproject's ``[project] name``) and no command or PEP 723 script of the README may ask for
    the bare name; they name ours."""
    import tomllib

    ours = _dist(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"])
    assert ours != "rawproxy"
    snippets = "\n".join(
        re.findall(r"```\w*\n(.*?)```", README, re.DOTALL) + re.findall(r"`([^`\n]+)`", README)
    )
    names = _requirements(snippets)
    assert "rawproxy" not in names, names
    assert ours in _requirements(recipe("python", "# /// script"))  # the PEP 723 program needs it
    assert names.count(ours) >= 2  # and the Install section names it


def test_ops02_the_requirement_finder_sees_the_bare_name() -> None:
    """The check above would catch the old README's lines."""
    assert _requirements('# dependencies = ["rawproxy", "anthropic"]') == ["rawproxy", "anthropic"]
    assert _requirements("pip install 'rawproxy[fast]'  # uvloop") == ["rawproxy"]
    assert _requirements("uv add Raw_Proxy\npip install . -e '.[fast]'") == ["raw-proxy"]
    assert set(_requirements("uv tool install --with rawproxy-llm python")) == {"rawproxy-llm", "python"}
    assert _requirements("uvx rawproxy --port 8082\npipx run embed.py") == ["rawproxy"]
    assert _requirements("uvx --from rawproxy-llm rawproxy") == ["rawproxy-llm"]
