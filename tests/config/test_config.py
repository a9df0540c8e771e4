"""Config.from_env: defaults, precedence (flag > RAWPROXY_* env > .env > OPENAI_API_KEY), validation, secrets;
the flags of the OpenAI-client / Anthropic-upstream path; and the SETTINGS table every setting is a row of.

Every test passes ``environ`` and ``dotenv`` explicitly, so neither the real environment nor a ``.env``
in the working directory can leak in.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from rawproxy import __version__
from rawproxy.config import (
    DEFAULT_ANTHROPIC_UPSTREAM,
    DEFAULT_OPENAI_UPSTREAM,
    LIMIT_FLAGS,
    SETTINGS,
    Config,
    ConfigError,
    build_parser,
    read_dotenv,
)
from rawproxy.config.file import _TOP as FILE_KEYS
from rawproxy.config.settings import NOT_IN_TABLE, restart_only
from rawproxy.reload import RESTART_ONLY


def make(
    argv: list[str] | None = None, env: dict[str, str] | None = None, dotenv: Path | None = None
) -> Config:
    return Config.from_env(argv or [], env or {}, dotenv=dotenv)


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / ".env"
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    config = make()
    assert config.host == "127.0.0.1"
    assert config.port == 8082
    assert config.openai_upstream == DEFAULT_OPENAI_UPSTREAM == "https://api.openai.com/v1"
    assert config.openai_key is None
    assert config.api_keys == ()
    assert config.max_output_tokens is None
    assert config.upstream_profile is None
    assert config.routes.model_map == {}
    assert config.routes.big is config.routes.middle is config.routes.small is config.routes.default is None


def test_missing_dotenv_file_is_fine(tmp_path: Path) -> None:
    assert make(dotenv=tmp_path / "nope.env").port == 8082


def test_openai_base_strips_trailing_slash() -> None:
    assert make(["--openai-upstream", "http://10.0.0.5:8000/v1/"]).openai_base == "http://10.0.0.5:8000/v1"


# --------------------------------------------------------------------------------------- precedence

UP_FLAG = "http://flag.example/v1"
UP_ENV = "http://env.example/v1"
UP_DOTENV = "http://dotenv.example/v1"


@pytest.mark.parametrize(
    ("flag", "env", "dotenv", "expected"),
    [
        (True, True, True, UP_FLAG),
        (False, True, True, UP_ENV),
        (False, False, True, UP_DOTENV),
        (True, False, True, UP_FLAG),
        (False, False, False, DEFAULT_OPENAI_UPSTREAM),
    ],
)
def test_upstream_precedence_flag_env_dotenv(
    tmp_path: Path, flag: bool, env: bool, dotenv: bool, expected: str
) -> None:
    argv = ["--openai-upstream", UP_FLAG] if flag else []
    environ = {"RAWPROXY_OPENAI_UPSTREAM": UP_ENV} if env else {}
    path = write_env(tmp_path, f"RAWPROXY_OPENAI_UPSTREAM={UP_DOTENV}\n" if dotenv else "")
    assert make(argv, environ, path).openai_upstream == expected


@pytest.mark.parametrize(
    ("argv", "environ", "dotenv_text", "expected"),
    [
        (
            ["--openai-key", "k-flag"],
            {"RAWPROXY_OPENAI_KEY": "k-env", "OPENAI_API_KEY": "k-oai"},
            "",
            "k-flag",
        ),
        (
            [],
            {"RAWPROXY_OPENAI_KEY": "k-env", "OPENAI_API_KEY": "k-oai"},
            "RAWPROXY_OPENAI_KEY=k-dot\n",
            "k-env",
        ),
        ([], {"OPENAI_API_KEY": "k-oai"}, "RAWPROXY_OPENAI_KEY=k-dot\n", "k-dot"),  # .env beats the fallback
        ([], {"OPENAI_API_KEY": "k-oai"}, "", "k-oai"),  # documented fallback
        ([], {}, "OPENAI_API_KEY=k-oai-dot\n", "k-oai-dot"),
        ([], {"ANTHROPIC_API_KEY": "sk-ant", "ANTHROPIC_AUTH_TOKEN": "tok"}, "", None),  # never Anthropic's
        ([], {}, "", None),
    ],
)
def test_openai_key_precedence(
    tmp_path: Path, argv: list[str], environ: dict[str, str], dotenv_text: str, expected: str | None
) -> None:
    assert make(argv, environ, write_env(tmp_path, dotenv_text)).openai_key == expected


def test_every_setting_reads_env_and_flags(tmp_path: Path) -> None:
    env = {
        "RAWPROXY_HOST": "0.0.0.0",
        "RAWPROXY_PORT": "9000",
        "RAWPROXY_UPSTREAM_PROFILE": "deepseek",
        "RAWPROXY_BIG_MODEL": "b",
        "RAWPROXY_MIDDLE_MODEL": "m",
        "RAWPROXY_SMALL_MODEL": "s",
        "RAWPROXY_DEFAULT_MODEL": "d",
        "RAWPROXY_MODEL_MAP": "x=y",
        "RAWPROXY_MAX_OUTPUT_TOKENS": "8192",
        "RAWPROXY_TIMEOUT": "30.5",
        "RAWPROXY_LOG_LEVEL": "debug",
    }
    config = make([], env)
    assert (config.host, config.port, config.upstream_profile) == ("0.0.0.0", 9000, "deepseek")
    assert (config.routes.big, config.routes.middle, config.routes.small, config.routes.default) == (
        "b",
        "m",
        "s",
        "d",
    )
    assert dict(config.routes.model_map) == {"x": "y"}
    assert (config.max_output_tokens, config.timeout, config.log_level) == (8192, 30.5, "debug")
    flagged = make(["--port", "9100", "--max-output-tokens", "4096", "--big-model", "B"], env)
    assert (flagged.port, flagged.max_output_tokens, flagged.routes.big) == (9100, 4096, "B")
    assert flagged.routes.middle == "m"


def test_dotenv_syntax(tmp_path: Path) -> None:
    path = write_env(
        tmp_path,
        "# comment\n"
        "\n"
        "export RAWPROXY_PORT=9001\n"
        "RAWPROXY_OPENAI_KEY='sk-quoted'\n"
        'RAWPROXY_BIG_MODEL="gpt-5"\n'
        "  RAWPROXY_SMALL_MODEL = gpt-4o-mini  \n"
        "not a setting\n",
    )
    assert read_dotenv(path) == {
        "RAWPROXY_PORT": "9001",
        "RAWPROXY_OPENAI_KEY": "sk-quoted",
        "RAWPROXY_BIG_MODEL": "gpt-5",
        "RAWPROXY_SMALL_MODEL": "gpt-4o-mini",
    }
    config = make([], {}, path)
    assert (config.port, config.openai_key, config.routes.big, config.routes.small) == (
        9001,
        "sk-quoted",
        "gpt-5",
        "gpt-4o-mini",
    )


# ------------------------------------------------------------------------------- ANTHROPIC_BASE_URL


def test_anthropic_base_url_is_never_the_upstream(tmp_path: Path) -> None:
    env = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8082", "ANTHROPIC_API_KEY": "sk-ant-x"}
    path = write_env(tmp_path, "ANTHROPIC_BASE_URL=http://example.com/anthropic\n")
    config = make([], env, path)
    assert config.openai_upstream == DEFAULT_OPENAI_UPSTREAM
    assert config.anthropic_upstream == DEFAULT_ANTHROPIC_UPSTREAM  # Claude Code's variable, not ours
    assert config.openai_key is None


def test_anthropic_base_url_does_not_override_a_configured_upstream() -> None:
    config = make([], {"ANTHROPIC_BASE_URL": "http://127.0.0.1:8082", "RAWPROXY_OPENAI_UPSTREAM": UP_ENV})
    assert config.openai_upstream == UP_ENV


# ------------------------------------------------------------------------------------- loop guard


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--openai-upstream", "http://127.0.0.1:8082/v1"], {}),
        (["--openai-upstream", "http://localhost:8082/v1"], {}),
        (["--openai-upstream", "http://LOCALHOST:8082"], {}),
        (["--openai-upstream", "http://0.0.0.0:8082/v1"], {}),
        (["--openai-upstream", "http://[::1]:8082/v1"], {}),
        (["--host", "0.0.0.0", "--openai-upstream", "http://127.0.0.1:8082/v1"], {}),
        (["--host", "localhost", "--openai-upstream", "http://127.0.0.1:8082/v1"], {}),
        (["--port", "9000", "--openai-upstream", "http://localhost:9000/v1"], {}),
        (["--port", "80", "--openai-upstream", "http://localhost/v1"], {}),  # default port of the scheme
        (["--host", "10.1.2.3", "--openai-upstream", "http://10.1.2.3:8082/v1"], {}),
        (["--host", "0.0.0.0", "--openai-upstream", "http://127.0.1.1:8082/v1"], {}),  # all of 127/8
        (["--host", "0.0.0.0", "--openai-upstream", f"http://{socket.gethostname()}:8082/v1"], {}),
        (["--host", "::", "--openai-upstream", "http://[::1]:8082/v1"], {}),
        (["--host", "0.0.0.0", "--anthropic-upstream", "http://localhost:8082"], {}),
        ([], {"RAWPROXY_OPENAI_UPSTREAM": "http://localhost:8082/v1"}),
        ([], {"RAWPROXY_PORT": "7000", "RAWPROXY_OPENAI_UPSTREAM": "http://127.0.0.1:7000"}),
    ],
)
def test_upstream_pointing_at_the_proxy_itself_is_rejected(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="points back"):
        make(argv, env)


@pytest.mark.parametrize(
    "argv",
    [
        ["--openai-upstream", "http://127.0.0.1:8083/v1"],
        ["--openai-upstream", "http://localhost:11434/v1"],
        ["--port", "9000", "--openai-upstream", "http://localhost:8082/v1"],
        ["--host", "10.1.2.3", "--openai-upstream", "http://10.1.2.4:8082/v1"],
    ],
)
def test_upstream_on_another_port_or_host_is_fine(argv: list[str]) -> None:
    make(argv)


# ------------------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--port", "abc"], {}),
        (["--port", "8082.5"], {}),
        (["--port", "70000"], {}),
        (["--port=-1"], {}),
        (["--timeout", "soon"], {}),
        (["--max-output-tokens", "12k"], {}),
        (["--max-output-tokens", "1.5"], {}),
        ([], {"RAWPROXY_PORT": "eighty"}),
        ([], {"RAWPROXY_TIMEOUT": "x"}),
        ([], {"RAWPROXY_MAX_OUTPUT_TOKENS": "lots"}),
    ],
)
def test_bad_numbers_raise_config_error(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        make(argv, env)


@pytest.mark.parametrize(
    "argv",
    [
        ["--max-output-tokens=-5"],
        ["--max-output-tokens=-1"],
        ["--timeout", "0"],
        ["--timeout=-1"],
    ],
)
def test_non_positive_limits_raise_config_error(argv: list[str]) -> None:
    # A negative cap is sent upstream as max_tokens (min(client, cap) = -5: a 400 on every request), and a
    # read timeout <= 0 makes every upstream read time out at once: bad numbers, to be refused at startup.
    # (A cap of 0 is left out: the proxy treats it as "no configured cap", which is harmless.)
    with pytest.raises(ConfigError):
        make(argv)


def test_bad_number_in_dotenv_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make([], {}, write_env(tmp_path, "RAWPROXY_PORT=not-a-port\n"))


@pytest.mark.parametrize("mapping", ["gpt-4o", "=b", "a=", "a=b,c", "claude-sonnet-4-6 gpt-4o"])
def test_bad_model_map_raises_config_error(mapping: str) -> None:
    with pytest.raises(ConfigError, match="--model-map"):
        make(["--model-map", mapping])


def test_bad_model_map_from_env_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="--model-map"):
        make([], {"RAWPROXY_MODEL_MAP": "nonsense"})


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "api.openai.com/v1", "http://", "not a url"])
def test_non_http_upstream_raises_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        make(["--openai-upstream", url])


def test_unknown_profile_from_env_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        make([], {"RAWPROXY_UPSTREAM_PROFILE": "mistral"})


def test_unknown_profile_flag_exits() -> None:
    with pytest.raises(SystemExit):
        make(["--upstream-profile", "mistral"])


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# ------------------------------------------------------------------------------------------- api keys


def test_api_key_flag_is_repeatable() -> None:
    assert make(["--api-key", "k1", "--api-key", "k2"]).api_keys == ("k1", "k2")


def test_api_key_env_is_comma_separated() -> None:
    assert make([], {"RAWPROXY_API_KEY": "k1, k2,,"}).api_keys == ("k1", "k2")


def test_api_key_flags_win_over_env() -> None:
    assert make(["--api-key", "flag"], {"RAWPROXY_API_KEY": "env1,env2"}).api_keys == ("flag",)


# -------------------------------------------------------------------------------------------- secrets

UPSTREAM_SECRET = "sk-upstream-SECRET-0123456789"
CLIENT_SECRETS = ("client-secret-AAAA", "client-secret-BBBB")


def test_secrets_never_in_repr_or_summary() -> None:
    config = make(
        ["--openai-key", UPSTREAM_SECRET, "--api-key", CLIENT_SECRETS[0], "--api-key", CLIENT_SECRETS[1]],
    )
    assert config.openai_key == UPSTREAM_SECRET
    assert config.api_keys == CLIENT_SECRETS
    summary = config.summary()
    dumped = json.dumps(summary)
    for secret in (UPSTREAM_SECRET, *CLIENT_SECRETS):
        assert secret not in repr(config)
        assert secret not in str(config)
        assert secret not in dumped
    assert summary["openai_key_set"] is True
    assert summary["client_auth"] == "required"


def test_secret_from_fallback_env_not_in_summary() -> None:
    config = make([], {"OPENAI_API_KEY": UPSTREAM_SECRET})
    assert UPSTREAM_SECRET not in json.dumps(config.summary())
    assert UPSTREAM_SECRET not in repr(config)


def test_summary_without_keys() -> None:
    summary = make().summary()
    assert summary["openai_key_set"] is False
    assert summary["client_auth"] == "open"
    assert summary["openai_upstream"] == DEFAULT_OPENAI_UPSTREAM


# --------------------------------------------------------------------------------------- --version/--help


def test_version_exits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        make(["--version"])
    assert excinfo.value.code in (0, None)
    assert __version__ in capsys.readouterr().out


def test_help_exits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        make(["--help"])
    assert excinfo.value.code in (0, None)
    out = capsys.readouterr().out
    assert "--openai-upstream" in out
    assert "RAWPROXY_" in out


def test_unknown_flag_exits() -> None:
    with pytest.raises(SystemExit) as excinfo:
        make(["--no-such-flag"])
    assert excinfo.value.code == 2


# ------------------------------------------------------------ OpenAI clients and Anthropic upstreams
# The flags of the OpenAI-client / Anthropic-upstream path, and which upstreams are in use.


def load(argv: list[str], environ: dict[str, str] | None = None, dotenv: Path | None = None) -> Config:
    return Config.from_env(argv, environ or {}, dotenv=dotenv)


def test_defaults_of_the_anthropic_side() -> None:
    config = load([])
    assert config.anthropic_upstream == DEFAULT_ANTHROPIC_UPSTREAM
    assert config.anthropic_key is None
    assert config.client_profile == "none"
    assert config.upstream_headers == ()
    assert config.system_prompt is None
    assert config.default_max_tokens == 16384
    assert config.auto_cache is True


def test_every_anthropic_side_flag() -> None:
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


# ------------------------------------------------------------------------------ the SETTINGS table
# Every setting is one row; these keep the table, the Config fields and what is built from them agreed,
# so a new setting cannot be half added.

ROWS = {setting.name: setting for setting in SETTINGS}
FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def test_every_config_field_is_a_row_or_listed_as_outside_the_table() -> None:
    parts = {setting.part_of for setting in SETTINGS if setting.part_of}
    outside = set(FIELDS) - set(ROWS)
    assert outside == set(NOT_IN_TABLE), "a Config field is neither a row of SETTINGS nor in NOT_IN_TABLE"
    assert parts <= set(NOT_IN_TABLE)
    assert len(NOT_IN_TABLE) <= 7  # a short list: a new setting belongs in the table
    for setting in SETTINGS:  # and every row sets a field, or a part of one
        assert setting.name in FIELDS or setting.part_of in FIELDS, setting.name
    assert len(ROWS) == len(SETTINGS), "two rows of one name"


def test_every_row_can_be_set_and_says_whether_a_reload_applies_it() -> None:
    for setting in SETTINGS:
        assert setting.flag or setting.env or setting.file, f"{setting.name}: no flag, variable or file key"
        assert isinstance(setting.live, bool), setting.name
        assert setting.help, setting.name
        assert setting.kind in ("value", "switch", "special"), setting.name
        if not setting.live:  # the reload compares restart-only settings field by field
            assert setting.part_of is None and setting.name in FIELDS, setting.name
    assert set(RESTART_ONLY) == set(restart_only()) == {s.name for s in SETTINGS if not s.live}
    assert {"host", "port", "timeout", "connect_timeout", "grace_seconds", "workers"} <= set(RESTART_ONLY)
    for live in ("head_timeout", "max_connections", "retry_backoff", "log_level", "log_format", "api_keys"):
        assert live not in RESTART_ONLY


def test_the_defaults_are_the_tables() -> None:
    config = Config()
    for setting in SETTINGS:
        if setting.part_of is None:
            assert getattr(config, setting.name) == setting.default, setting.name


def test_secret_rows_are_exactly_the_fields_kept_out_of_repr() -> None:
    hidden = {name for name, f in FIELDS.items() if not f.repr}
    assert hidden == {setting.name for setting in SETTINGS if setting.secret}


def test_the_parser_and_the_file_keys_are_built_from_the_table() -> None:
    flags = {a.dest: a.option_strings for a in build_parser()._actions if a.option_strings}
    for setting in SETTINGS:
        if setting.flag is None:
            assert setting.name not in flags
        else:
            assert flags[setting.name] == [setting.flag]
    assert set(FILE_KEYS) == {s.name for s in SETTINGS if s.file} - {"force_model"}  # a table of the file
    assert [name for name, _ in LIMIT_FLAGS] == [
        "connect_timeout",
        "idle_timeout",
        "head_timeout",
        "max_stream_seconds",
        "max_connections",
        "max_head_bytes",
        "max_body_bytes",
        "grace_seconds",
    ]


def test_each_check_of_the_table_refuses_its_bad_value() -> None:
    for setting in SETTINGS:
        if setting.check is None or setting.part_of is not None:
            continue
        bad: dict[str, Any] = {setting.name: {str: "no-such-choice", int: -1, float: -1.0}[setting.type]}
        if setting.name == "port":
            bad["port"] = 70000
        with pytest.raises(ConfigError):
            Config(**bad)
        assert setting.check(setting.default) is None, setting.name


def test_summary_shows_each_row_that_says_how_and_the_files_tables() -> None:
    summary = Config().summary()
    shown = [setting.shown[0] for setting in SETTINGS if setting.shown]
    assert list(summary) == [*shown, "upstreams", "routes", "rules"]
