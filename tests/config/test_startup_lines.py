"""Issue 18: at start the proxy says which upstreams are active, at which URL, and where each setting
came from (an exported ANTHROPIC_API_KEY silently added api.anthropic.com, and nothing said so); and it
warns about a base URL that looks wrong (an OpenAI-compatible server's bare host: its 404 "Invalid URL
(POST /chat/completions)"; a whole endpoint, whose path doubles)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from rawproxy.config import Config
from rawproxy.config.startup import upstream_lines, url_warnings


def config(argv: list[str], environ: dict[str, str], dotenv: Path | None = None) -> Config:
    return Config.from_env(["--port", "0", *argv], environ=environ, dotenv=dotenv)


def test_issue18_an_exported_anthropic_key_is_named_as_what_added_the_upstream() -> None:
    lines = upstream_lines(config([], {"ANTHROPIC_API_KEY": "sk-ant-secret", "OPENAI_API_KEY": "sk-open"}))
    assert lines == [
        "upstream openai (openai): https://api.openai.com/v1 (URL: default; key: environment OPENAI_API_KEY)",
        "upstream anthropic (anthropic): https://api.anthropic.com (URL: default; key: environment ANTHROPIC_API_KEY)",
    ]
    assert not any("secret" in line or "sk-open" in line for line in lines)


def test_issue18_each_source_is_named_flag_environment_dotenv_and_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("OPENAI_API_KEY=sk-from-dotenv\n")
    flagged = config(["--openai-upstream", "http://127.0.0.1:9/v1"], {}, dotenv)
    assert upstream_lines(flagged) == [
        "upstream openai (openai): http://127.0.0.1:9/v1 (URL: flag --openai-upstream; key: .env OPENAI_API_KEY)"
    ]
    toml = tmp_path / "rawproxy.toml"
    toml.write_text('[[upstreams]]\nname = "corp"\nprotocol = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    filed = config(["--config", str(toml)], {"RAWPROXY_OPENAI_UPSTREAM": "http://127.0.0.1:8/v1"})
    assert upstream_lines(filed) == [
        f"upstream corp (openai): http://127.0.0.1:9/v1 (from the file {toml})",
        "upstream openai (openai): http://127.0.0.1:8/v1 (URL: environment RAWPROXY_OPENAI_UPSTREAM; key: none)",
    ]


@pytest.mark.parametrize(
    ("argv", "warned"),
    [
        (
            ["--openai-upstream", "http://localhost:8000"],
            "has no path: OpenAI-compatible servers answer under /v1",
        ),
        (["--openai-upstream", "http://localhost:8000/"], "has no path"),
        (
            ["--openai-upstream", "http://h/v1/chat/completions"],
            "ends in /chat/completions, a whole endpoint",
        ),
        (["--anthropic-upstream", "http://h/v1/messages"], "ends in /v1/messages, a whole endpoint"),
    ],
)
def test_issue18_a_base_url_that_looks_wrong_is_warned_about(argv: list[str], warned: str) -> None:
    (warning,) = url_warnings(config(argv, {}))
    assert warned in warning


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "https://openrouter.ai/api/v1",
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "https://r.openai.azure.com/openai/deployments/gpt",
        "https://my-resource.openai.azure.com",  # Azure: the deployment path is the proxy's
    ],
)
def test_issue18_right_base_urls_get_no_warning(url: str) -> None:
    assert url_warnings(config(["--openai-upstream", url], {})) == []


async def test_issue18_the_lines_are_logged_at_start(
    proxy_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="rawproxy"):
        await proxy_factory(openai_upstream="http://127.0.0.1:9")
    said = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "rawproxy"]
    assert any(
        level == "INFO" and m.startswith("upstream openai (openai): http://127.0.0.1:9 (")
        for level, m in said
    )
    assert any(level == "WARNING" and "has no path" in message for level, message in said)
