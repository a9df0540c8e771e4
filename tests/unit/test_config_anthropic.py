"""The flags of the OpenAI-client / Anthropic-upstream path, and which upstreams are in use."""

from __future__ import annotations

from pathlib import Path

import pytest

from rawproxy.config import DEFAULT_ANTHROPIC_UPSTREAM, DEFAULT_OPENAI_UPSTREAM, Config, ConfigError


def load(argv: list[str], environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Config:
    return Config.from_env(argv, environ or {}, dotenv=dotenv)


def test_defaults() -> None:
    config = load([])
    assert config.anthropic_upstream == DEFAULT_ANTHROPIC_UPSTREAM
    assert config.anthropic_key is None
    assert config.client_profile == "none"
    assert config.upstream_headers == ()
    assert config.system_prompt is None
    assert config.default_max_tokens == 16384
    assert config.auto_cache is True


def test_every_flag() -> None:
    config = load(
        [
            "--anthropic-upstream", "https://plan.example.com/anthropic",
            "--anthropic-key", "sk-ant-flag",
            "--client-profile", "claude-cli",
            "--upstream-header", "X-One: 1",
            "--upstream-header", "anthropic-beta: a,b",
            "--system-prompt", "Be brief.",
            "--default-max-tokens", "2048",
            "--no-auto-cache",
        ]
    )  # fmt: skip
    assert config.anthropic_base == "https://plan.example.com/anthropic"
    assert config.anthropic_key == "sk-ant-flag"
    assert config.client_profile == "claude-cli"
    assert config.upstream_headers == (("X-One", "1"), ("anthropic-beta", "a,b"))
    assert config.system_prompt == "Be brief."
    assert config.default_max_tokens == 2048
    assert config.auto_cache is False


def test_environment_dotenv_and_fallback_key(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("RAWPROXY_CLIENT_PROFILE=claude-code\nANTHROPIC_API_KEY=sk-from-dotenv\n")
    config = load([], {"RAWPROXY_SYSTEM_PROMPT": "env prompt", "RAWPROXY_NO_AUTO_CACHE": "1"}, dotenv)
    assert config.client_profile == "claude-code"
    assert config.anthropic_key == "sk-from-dotenv"  # ANTHROPIC_API_KEY is the documented fallback
    assert config.system_prompt == "env prompt" and config.auto_cache is False
    # the RAWPROXY_ variable wins over the fallback, and a flag over both
    assert load([], {"ANTHROPIC_API_KEY": "a", "RAWPROXY_ANTHROPIC_KEY": "b"}).anthropic_key == "b"
    assert load(["--anthropic-key", "c"], {"RAWPROXY_ANTHROPIC_KEY": "b"}).anthropic_key == "c"


def test_upstream_headers_from_the_environment_one_per_line() -> None:
    config = load([], {"RAWPROXY_UPSTREAM_HEADER": "X-A: 1\nanthropic-beta: x,y\n"})
    assert config.upstream_headers == (("X-A", "1"), ("anthropic-beta", "x,y"))


@pytest.mark.parametrize(
    "argv",
    [
        ["--upstream-header", "no colon here"],
        ["--upstream-header", ": no name"],
        ["--default-max-tokens", "0"],
        ["--default-max-tokens", "many"],
        ["--anthropic-upstream", "ftp://x"],
        ["--port", "18999", "--anthropic-upstream", "http://127.0.0.1:18999"],
    ],
)
def test_bad_values_are_configuration_errors(argv: list[str]) -> None:
    with pytest.raises(ConfigError):
        load(argv)


def test_unknown_client_profile_is_refused() -> None:
    with pytest.raises(SystemExit):  # argparse choices
        load(["--client-profile", "claude-desktop"])
    with pytest.raises(ConfigError):
        Config(client_profile="claude-desktop")


@pytest.mark.parametrize(
    ("settings", "openai", "anthropic"),
    [
        ({}, True, False),  # nothing configured: the OpenAI default
        ({"openai_key": "k"}, True, False),
        ({"anthropic_key": "k"}, False, True),
        ({"anthropic_upstream": "http://127.0.0.1:9"}, False, True),
        ({"anthropic_key": "k", "openai_key": "k"}, True, True),
        ({"anthropic_key": "k", "openai_upstream": "http://127.0.0.1:9/v1"}, True, True),
    ],
)
def test_which_upstreams_are_in_use(settings: dict[str, str], openai: bool, anthropic: bool) -> None:
    config = Config(**settings)  # type: ignore[arg-type]
    assert (config.openai_enabled, config.anthropic_enabled) == (openai, anthropic)


def test_anthropic_base_tolerates_a_v1_suffix() -> None:
    assert Config(anthropic_upstream="https://x.example.com/v1/").anthropic_base == "https://x.example.com"


def test_summary_shows_the_new_settings_but_no_secret() -> None:
    config = Config(
        anthropic_key="sk-ant-SECRET", upstream_headers=(("x-token", "TOKEN-SECRET"),), system_prompt="p"
    )
    summary = str(config.summary())
    assert "SECRET" not in summary and "SECRET" not in repr(config)
    assert config.summary()["upstream_header_names"] == ["x-token"]
    assert config.summary()["anthropic_upstream"] == DEFAULT_ANTHROPIC_UPSTREAM
    assert config.summary()["openai_upstream"] is None
    assert DEFAULT_OPENAI_UPSTREAM not in summary
