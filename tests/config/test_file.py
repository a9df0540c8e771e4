"""The ``--config FILE`` TOML file: rawproxy/config/file.py (load, parse, parse_target) and how
Config.from_env merges it (flag > RAWPROXY_* env > .env > file > default) and lists upstreams.

Every test passes ``environ`` and ``dotenv`` explicitly, so neither the real environment nor a ``.env``
in the working directory can leak in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from rawproxy.config import Config, ConfigError
from rawproxy.config import file as config_file
from rawproxy.config.file import DEFAULT_LONG_CONTEXT, Route, Rules, Target, UpstreamSpec, parse_target
from rawproxy.routing import RequestFacts
from tests.support.config_examples import ISSUE5_EXAMPLE as EXAMPLE

# One valid upstream and one valid route, for the mistake table to extend.
UP = '[[upstreams]]\nname = "a"\nprotocol = "openai"\nbase_url = "http://127.0.0.1:18081/v1"\n'
ROUTE = '[[routes]]\nmatch = "gpt-*"\nupstream = "a"\n'

# Claude Code's every turn (CONFORMANCE.md, "Claude Code traffic profile"): adaptive thinking, medium effort.
CLAUDE_CODE_TURN = {
    "max_tokens": 32000,
    "messages": [{"role": "user", "content": "hi"}],
    "thinking": {"type": "adaptive", "display": "omitted"},
    "output_config": {"effort": "medium"},
}


def write(tmp_path: Path, text: str, name: str = "rawproxy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def from_file(
    tmp_path: Path,
    text: str,
    argv: Sequence[str] = (),
    environ: dict[str, str] | None = None,
    dotenv: Path | None = None,
) -> Config:
    path = write(tmp_path, text)
    return Config.from_env(["--config", str(path), *argv], environ=environ or {}, dotenv=dotenv)


# ------------------------------------------------------------------------------- the example file


def test_issue_example_file_loads_with_its_upstreams_routes_and_rules(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE)
    config = Config.from_env(["--config", str(path)], environ={"MY_ANTHROPIC_KEY": "k"}, dotenv=None)
    assert config.config_file == str(path)
    assert config.upstreams == (
        UpstreamSpec(
            name="cheap", protocol="openai", base_url="http://127.0.0.1:18081/v1", api_keys=("sk-cheap",)
        ),
        UpstreamSpec(
            name="claude",
            protocol="anthropic",
            base_url="http://127.0.0.1:18082",
            api_keys=("k",),
            client_profile="claude-cli",
        ),
    )
    assert config.route_table == (
        Route(match="claude-*haiku*", upstream="cheap", model="small-model"),
        Route(match="gpt-*", upstream="cheap"),
    )
    assert config.rules == Rules(
        think=Target("cheap", "reasoner-model"),
        long_context=Target("cheap", "long-model"),
        long_context_threshold=60000,
    )
    assert config.force_model is None
    assert [spec.name for spec in config.upstream_list()] == ["cheap", "claude"]


@pytest.mark.parametrize(
    ("dialect", "body", "model", "expected"),
    [
        pytest.param(
            "anthropic",
            CLAUDE_CODE_TURN,
            "claude-haiku-4-5-20251001",
            ("cheap", "small-model", "route:claude-*haiku*"),
            id="haiku_to_cheap_small_model",
        ),
        pytest.param(
            "anthropic",
            CLAUDE_CODE_TURN,
            "claude-sonnet-4-6",
            ("claude", "claude-sonnet-4-6", "default"),
            id="adaptive_medium_is_no_think_turn_so_sonnet_stays_on_claude",
        ),
        pytest.param(
            "anthropic",
            {**CLAUDE_CODE_TURN, "output_config": {"effort": "high"}},
            "claude-opus-4-8",
            ("cheap", "reasoner-model", "rule:think"),
            id="adaptive_high_effort_is_think",
        ),
        pytest.param(
            "anthropic",
            {**CLAUDE_CODE_TURN, "messages": [{"role": "user", "content": "word " * 50_000}]},
            "claude-sonnet-4-6",
            ("cheap", "long-model", "rule:long_context"),
            id="over_60000_tokens_is_long_context",
        ),
        pytest.param(
            "openai",
            {"messages": [{"role": "user", "content": "hi"}]},
            "gpt-4o",
            ("cheap", "gpt-4o", "route:gpt-*"),
            id="gpt_to_cheap_unchanged",
        ),
    ],
)
def test_a2o_r32_issue_example_file_routes_as_written(
    tmp_path: Path, dialect: Any, body: dict[str, Any], model: str, expected: tuple[str, str, str]
) -> None:
    config = from_file(tmp_path, EXAMPLE, environ={"MY_ANTHROPIC_KEY": "k"})
    decision = config.router().decide(model, RequestFacts({**body, "model": model}, dialect))
    assert (decision.upstream.name, decision.model, decision.why) == expected


def test_issue_example_file_upstreams_carry_their_keys_urls_and_identity(tmp_path: Path) -> None:
    router = from_file(tmp_path, EXAMPLE, environ={"MY_ANTHROPIC_KEY": "k"}).router()
    cheap, claude = router.upstreams["cheap"], router.upstreams["claude"]
    assert cheap.url("/chat/completions", "small-model") == "http://127.0.0.1:18081/v1/chat/completions"
    assert ("authorization", "Bearer sk-cheap") in cheap.call_headers()
    assert claude.url("/v1/messages") == "http://127.0.0.1:18082/v1/messages?beta=true"  # claude-cli
    headers = dict(claude.call_headers())
    assert headers["x-api-key"] == "k"
    assert headers["user-agent"].startswith("claude-cli/")


# ------------------------------------------------------------------------------------ the mistakes

MISTAKES = [
    # top level
    pytest.param('colour = "red"\n' + UP, {}, ["unknown setting 'colour'"], id="unknown_top_level_key"),
    pytest.param('port = "8080"\n' + UP, {}, ["port: expected an integer", "'8080'"], id="port_string"),
    pytest.param("port = true\n" + UP, {}, ["port: expected an integer, got a boolean"], id="port_boolean"),
    pytest.param("port = 80.5\n" + UP, {}, ["port: expected an integer", "float"], id="port_float"),
    pytest.param("timeout = false\n" + UP, {}, ["timeout: ", "got a boolean"], id="timeout_boolean"),
    pytest.param(
        'timeout = "slow"\n' + UP, {}, ["timeout: expected an integer or a number"], id="timeout_str"
    ),
    pytest.param(
        "default_max_tokens = true\n" + UP, {}, ["default_max_tokens: ", "boolean"], id="max_tokens_bool"
    ),
    pytest.param("auto_cache = 1\n" + UP, {}, ["auto_cache: expected true or false"], id="auto_cache_int"),
    pytest.param('api_keys = "k"\n' + UP, {}, ["api_keys: expected a list"], id="api_keys_string"),
    pytest.param('api_keys = [""]\n' + UP, {}, ["api_keys: ", "non-empty strings"], id="api_keys_empty_item"),
    pytest.param("model_map = { x = 1 }\n" + UP, {}, ["model_map.x: expected a string"], id="model_map_int"),
    pytest.param(
        '[upstreams]\nname = "a"\n', {}, ["upstreams must be an array of tables"], id="upstreams_table"
    ),
    pytest.param('routes = "gpt-*"\n' + UP, {}, ["routes must be an array of tables"], id="routes_string"),
    pytest.param('force_model = ""\n' + UP, {}, ["force_model: ''"], id="force_model_empty"),
    pytest.param("force_model = 5\n" + UP, {}, ["force_model: expected a string"], id="force_model_int"),
    pytest.param(
        'force_model = "a:"\n' + UP,
        {},
        ["force_model: 'a:' has no model after the colon"],
        id="force_no_model",
    ),
    # upstreams
    pytest.param(
        UP + 'apikey = "x"\n', {}, ["upstream 'a': unknown key 'apikey'"], id="unknown_upstream_key"
    ),
    pytest.param(
        '[[upstreams]]\nprotocol = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n',
        {},
        ["upstreams[0]: name is required"],
        id="missing_name",
    ),
    pytest.param(
        UP + '[[upstreams]]\nprotocol = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n',
        {},
        ["upstreams[1]: name is required"],
        id="missing_name_of_second_entry",
    ),
    pytest.param(
        '[[upstreams]]\nname = ""\nprotocol = "openai"\nbase_url = "http://x/v1"\n',
        {},
        ["upstreams[0]: name must not be empty"],
        id="empty_name",
    ),
    pytest.param(
        '[[upstreams]]\nname = 5\nprotocol = "openai"\nbase_url = "http://x/v1"\n',
        {},
        ["upstreams[0]: name: expected a string"],
        id="name_int",
    ),
    pytest.param(
        '[[upstreams]]\nname = "a"\nbase_url = "http://x/v1"\n',
        {},
        ["upstream 'a': protocol is required"],
        id="missing_protocol",
    ),
    pytest.param(
        '[[upstreams]]\nname = "a"\nprotocol = "openai"\n',
        {},
        ["upstream 'a': base_url is required"],
        id="missing_base_url",
    ),
    pytest.param(
        '[[upstreams]]\nname = "a"\nprotocol = "grpc"\nbase_url = "http://x/v1"\n',
        {},
        ["upstream 'a': protocol must be 'openai' or 'anthropic'", "'grpc'"],
        id="bad_protocol",
    ),
    pytest.param(UP + UP, {}, ["two upstreams are named 'a'"], id="duplicate_names"),
    pytest.param(
        UP + 'api_key_env = "NOT_SET_ANYWHERE"\n',
        {},
        ["upstream 'a': api_key_env names 'NOT_SET_ANYWHERE', which is not set"],
        id="api_key_env_unset",
    ),
    pytest.param(
        UP + 'api_key_env = "EMPTY_KEY"\n',
        {"EMPTY_KEY": ""},
        ["upstream 'a': api_key_env names 'EMPTY_KEY'"],
        id="api_key_env_empty",
    ),
    pytest.param(
        UP + 'api_key_env = ["SET_KEY", "UNSET_KEY"]\n',
        {"SET_KEY": "k"},
        ["upstream 'a': api_key_env names 'UNSET_KEY'"],
        id="api_key_env_second_of_list_unset",
    ),
    pytest.param(
        UP + 'api_key = ""\n', {}, ["upstream 'a': api_key: expected a string or"], id="api_key_empty"
    ),
    pytest.param(UP + "api_key = 5\n", {}, ["upstream 'a': api_key: expected a string or"], id="api_key_int"),
    pytest.param(
        UP + 'profile = "bedrock"\n',
        {},
        ["upstream 'a': profile must be one of", "'bedrock'"],
        id="bad_profile",
    ),
    pytest.param(
        UP + 'profile = ["openai"]\n', {}, ["upstream 'a': profile: expected a string"], id="profile_list"
    ),
    pytest.param(
        UP + 'client_profile = "curl"\n', {}, ["upstream 'a': client_profile must be one of"], id="bad_client"
    ),
    pytest.param(
        UP + "client_profile = {}\n",
        {},
        ["upstream 'a': client_profile: expected a string"],
        id="client_table",
    ),
    pytest.param(UP + 'headers = "X: y"\n', {}, ["upstream 'a': headers must be a table"], id="headers_str"),
    pytest.param(
        UP + "headers = { X-Team = 1 }\n",
        {},
        ["upstream 'a': headers.X-Team: expected a string"],
        id="header_int",
    ),
    pytest.param(
        UP + "timeout = -1\n", {}, ["upstream 'a': timeout must be positive"], id="timeout_negative"
    ),
    pytest.param(
        UP + "timeout = true\n", {}, ["upstream 'a': timeout: ", "boolean"], id="timeout_boolean_up"
    ),
    pytest.param(
        UP + "max_output_tokens = true\n",
        {},
        ["upstream 'a': max_output_tokens: ", "boolean"],
        id="cap_boolean",
    ),
    pytest.param(
        UP + "max_output_tokens = 0\n",
        {},
        ["upstream 'a': max_output_tokens must be at least 1"],
        id="cap_zero",
    ),
    pytest.param(UP + "retries = true\n", {}, ["upstream 'a': retries: ", "boolean"], id="retries_boolean"),
    pytest.param(
        UP + "retries = 11\n", {}, ["upstream 'a': retries must be between 0 and 10"], id="retries_11"
    ),
    pytest.param(
        UP + "retries = -1\n", {}, ["upstream 'a': retries must be between 0 and 10"], id="retries_neg"
    ),
    pytest.param(UP + "models = [1]\n", {}, ["upstream 'a': models: expected a string or"], id="models_int"),
    pytest.param(
        UP + 'forward_client_key = "yes"\n',
        {},
        ["upstream 'a': forward_client_key: expected true or false"],
        id="forward_client_key_string",
    ),
    pytest.param(
        UP + "api_version = 2024\n", {}, ["upstream 'a': api_version: expected a string"], id="apiver"
    ),
    # routes
    pytest.param(
        UP + ROUTE + 'modle = "x"\n', {}, ["routes[0]: unknown key 'modle'"], id="unknown_route_key"
    ),
    pytest.param(
        UP + '[[routes]]\nupstream = "a"\n', {}, ["routes[0]: match is required"], id="route_no_match"
    ),
    pytest.param(
        UP + '[[routes]]\nmatch = "gpt-*"\n',
        {},
        ["route 'gpt-*': upstream is required"],
        id="route_no_upstream",
    ),
    pytest.param(
        UP + '[[routes]]\nmatch = "gpt-*"\nupstream = "nowhere"\n',
        {},
        ["route 'gpt-*': no upstream is named 'nowhere'"],
        id="route_to_unknown_upstream",
    ),
    pytest.param(
        UP + ROUTE + "model = 5\n", {}, ["route 'gpt-*': model: expected a string"], id="route_model"
    ),
    pytest.param(
        UP + ROUTE + 'fallbacks = ["nowhere:m"]\n',
        {},
        ["route 'gpt-*': fallbacks: 'nowhere:m' does not name an upstream", "known: a"],
        id="fallback_unknown_upstream",
    ),
    pytest.param(
        UP + ROUTE + 'fallbacks = ["some-model"]\n',
        {},
        ["route 'gpt-*': fallbacks: 'some-model' does not name an upstream"],
        id="fallback_bare_model",
    ),
    pytest.param(
        UP + ROUTE + 'fallbacks = ["a:"]\n',
        {},
        ["route 'gpt-*': fallbacks: 'a:' has no model after the colon"],
        id="fallback_no_model_after_colon",
    ),
    pytest.param(
        UP + ROUTE + "fallbacks = [1]\n",
        {},
        ["route 'gpt-*': fallbacks: expected a string"],
        id="fallback_int",
    ),
    pytest.param(
        UP + ROUTE + "max_tokens = true\n",
        {},
        ["route 'gpt-*': max_tokens: ", "boolean"],
        id="route_max_bool",
    ),
    pytest.param(
        UP + ROUTE + "max_tokens = 1.5\n",
        {},
        ["route 'gpt-*': max_tokens: expected an integer"],
        id="max_float",
    ),
    pytest.param(
        UP + ROUTE + "top_k = false\n", {}, ["route 'gpt-*': top_k: ", "boolean"], id="route_top_k_boolean"
    ),
    pytest.param(
        UP + ROUTE + 'temperature = "hot"\n',
        {},
        ["route 'gpt-*': temperature: expected an integer or a number"],
        id="route_temperature_string",
    ),
    pytest.param(
        UP + ROUTE + "compact = 1\n", {}, ["route 'gpt-*': compact: expected true or false"], id="compact_int"
    ),
    # rules
    pytest.param('rules = "a"\n' + UP, {}, ["[rules] must be a table"], id="rules_not_a_table"),
    pytest.param(
        UP + '[rules]\nthinking = "a"\n', {}, ["[rules]: unknown key 'thinking'"], id="unknown_rule"
    ),
    pytest.param(
        UP + '[rules]\nthink = "reasoner"\n',
        {},
        ["rules.think: 'reasoner' does not name an upstream (known: a)"],
        id="rule_target_bare_model",
    ),
    pytest.param(
        UP + '[rules]\nimage = "qwen2.5:7b"\n',
        {},
        ["rules.image: 'qwen2.5:7b' does not name an upstream"],
        id="rule_target_colon_model_of_no_upstream",
    ),
    pytest.param(
        UP + "[rules]\nweb_search = 1\n", {}, ["rules.web_search: expected a string"], id="rule_int"
    ),
    pytest.param(
        UP + '[rules]\nbackground = "a:"\n', {}, ["rules.background: 'a:' has no model"], id="rule_no_model"
    ),
    pytest.param(
        UP + "[rules]\nlong_context_threshold = -1\n",
        {},
        ["rules.long_context_threshold must be at least 1"],
        id="threshold_negative",
    ),
    pytest.param(
        UP + "[rules]\nlong_context_threshold = 0\n",
        {},
        ["rules.long_context_threshold must be at least 1"],
        id="threshold_zero",
    ),
    pytest.param(
        UP + "[rules]\nlong_context_threshold = true\n",
        {},
        ["rules.long_context_threshold: expected an integer, got a boolean"],
        id="threshold_boolean",
    ),
    pytest.param(
        UP + "[rules]\nlong_context_threshold = 1.5\n",
        {},
        ["rules.long_context_threshold: expected an integer", "float"],
        id="threshold_float",
    ),
    # the file itself
    pytest.param("port = \n", {}, ["not valid TOML"], id="invalid_toml"),
    pytest.param("port = 1\nport = 2\n", {}, ["not valid TOML"], id="duplicate_key"),
]


@pytest.mark.parametrize(("text", "environ", "fragments"), MISTAKES)
def test_every_mistake_is_a_config_error_naming_the_file_and_the_entry_and_key(
    tmp_path: Path, text: str, environ: dict[str, str], fragments: list[str]
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config_file.load(path, environ)
    message = str(info.value)
    assert message.startswith(f"--config {path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_config_error_from_the_file_reaches_config_from_env_with_the_file_named(tmp_path: Path) -> None:
    path = write(tmp_path, UP + ROUTE.replace('"a"', '"nowhere"'))
    for argv, environ in (([f"--config={path}"], {}), ([], {"RAWPROXY_CONFIG": str(path)})):
        with pytest.raises(ConfigError, match="no upstream is named 'nowhere'") as info:
            Config.from_env(argv, environ=environ, dotenv=None)
        assert str(path) in str(info.value)


def test_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as info:
        Config.from_env(["--config", str(path)], environ={}, dotenv=None)
    assert str(info.value) == f"--config {path}: cannot read it: No such file or directory"


def test_a_directory_as_the_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it") as info:
        config_file.load(tmp_path, {})
    assert str(tmp_path) in str(info.value)


def test_file_that_is_not_utf8_is_a_config_error_not_a_unicode_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('system_prompt = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        config_file.load(path, {})
    assert str(path) in str(info.value)


def test_empty_file_gives_empty_settings_and_default_rules(tmp_path: Path) -> None:
    settings = config_file.load(write(tmp_path, ""), {})
    assert settings == config_file.FileSettings()
    assert settings.rules.long_context_threshold == DEFAULT_LONG_CONTEXT == 60000
    assert not settings.rules.any


# ---------------------------------------------------------------------- "upstream:model" targets


@pytest.mark.parametrize(
    ("text", "bare_model", "expected"),
    [
        pytest.param("cheap:qwen2.5:7b", False, Target("cheap", "qwen2.5:7b"), id="colons_kept_in_model"),
        pytest.param("cheap:small-model", False, Target("cheap", "small-model"), id="upstream_and_model"),
        pytest.param("cheap", False, Target("cheap", None), id="bare_upstream_keeps_model"),
        pytest.param("cheap", True, Target("cheap", None), id="force_bare_upstream_name_is_upstream"),
        pytest.param("qwen2.5:7b", True, Target(None, "qwen2.5:7b"), id="force_bare_model_with_colon"),
        pytest.param("gpt-4o", True, Target(None, "gpt-4o"), id="force_bare_model"),
        pytest.param("claude:x:y:z", True, Target("claude", "x:y:z"), id="force_upstream_and_colon_model"),
    ],
)
def test_parse_target_splits_at_the_first_colon_only_after_an_upstream_name(
    text: str, bare_model: bool, expected: Target
) -> None:
    assert parse_target("where", text, frozenset({"cheap", "claude"}), bare_model=bare_model) == expected


@pytest.mark.parametrize("text", ["qwen2.5:7b", "gpt-4o", "nowhere:model", ""])
def test_parse_target_outside_force_model_must_name_an_upstream(text: str) -> None:
    with pytest.raises(ConfigError, match=r"^rules\.think: .* does not name an upstream"):
        parse_target("rules.think", text, frozenset({"cheap"}))


def test_targets_in_the_file_keep_colons_in_model_names(tmp_path: Path) -> None:
    text = (
        'force_model = "qwen2.5:7b"\n'
        + UP.replace('"a"', '"cheap"')
        + '[[routes]]\nmatch = "qwen*"\nupstream = "cheap"\nmodel = "qwen2.5:14b"\n'
        + 'fallbacks = ["cheap:qwen2.5:7b", "cheap"]\n'
        + '[rules]\nthink = "cheap:deepseek-r1:70b"\n'
    )
    settings = config_file.load(write(tmp_path, text), {})
    assert settings.force_model == Target(None, "qwen2.5:7b")
    assert settings.routes[0].fallbacks == (Target("cheap", "qwen2.5:7b"), Target("cheap", None))
    assert settings.rules.think == Target("cheap", "deepseek-r1:70b")


def test_route_overrides_fallbacks_and_compact_are_read(tmp_path: Path) -> None:
    text = (
        UP
        + UP.replace('"a"', '"b"')
        + ROUTE
        + 'model = "m"\nmax_tokens = 4096\ntemperature = 0.2\ntop_p = 1\ntop_k = 40\n'
        + 'fallbacks = "b:other"\ncompact = true\n'
    )
    (route,) = config_file.load(write(tmp_path, text), {}).routes
    assert route == Route(
        match="gpt-*",
        upstream="a",
        model="m",
        overrides=(("max_tokens", 4096), ("temperature", 0.2), ("top_p", 1), ("top_k", 40)),
        fallbacks=(Target("b", "other"),),
        compact=True,
    )


def test_upstream_optional_settings_are_read(tmp_path: Path) -> None:
    text = UP + (
        'profile = "deepseek"\nheaders = { X-Team = "core" }\ntimeout = 30\nmax_output_tokens = 8192\n'
        'models = "deepseek-*"\nforward_client_key = true\nretries = 2\napi_version = "2025-01-01"\n'
    )
    (spec,) = config_file.load(write(tmp_path, text), {}).upstreams
    assert spec == UpstreamSpec(
        name="a",
        protocol="openai",
        base_url="http://127.0.0.1:18081/v1",
        profile="deepseek",
        headers=(("X-Team", "core"),),
        timeout=30.0,
        max_output_tokens=8192,
        models=("deepseek-*",),
        forward_client_key=True,
        retries=2,
        api_version="2025-01-01",
    )
    assert isinstance(spec.timeout, float)


# ---------------------------------------------------------------------------------- several keys


@pytest.mark.parametrize(
    ("lines", "environ", "expected"),
    [
        pytest.param('api_key = ["k1", "k2", "k3"]\n', {}, ("k1", "k2", "k3"), id="api_key_list"),
        pytest.param(
            'api_key_env = ["KEY_A", "KEY_B"]\n', {"KEY_A": "a", "KEY_B": "b"}, ("a", "b"), id="env_list"
        ),
        pytest.param(
            'api_key_env = "KEYS"\n',
            {"KEYS": " k1, k2,,k3 ,"},
            ("k1", "k2", "k3"),
            id="comma_separated_env_var",
        ),
        pytest.param(
            'api_key = "file-key"\napi_key_env = "KEYS"\n',
            {"KEYS": "e1,e2"},
            ("file-key", "e1", "e2"),
            id="api_key_then_api_key_env",
        ),
        pytest.param("", {}, (), id="no_key"),
    ],
)
def test_an_upstream_takes_several_keys(
    tmp_path: Path, lines: str, environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    (spec,) = config_file.load(write(tmp_path, UP + lines), environ).upstreams
    assert spec.api_keys == expected


def test_api_key_env_reads_the_env_passed_in_and_dotenv_through_from_env(tmp_path: Path) -> None:
    dotenv = write(tmp_path, "DOTENV_KEY=from-dotenv\n", name=".env")
    config = from_file(tmp_path, UP + 'api_key_env = "DOTENV_KEY"\n', dotenv=dotenv)
    assert config.upstreams[0].api_keys == ("from-dotenv",)
    config = from_file(
        tmp_path, UP + 'api_key_env = "DOTENV_KEY"\n', environ={"DOTENV_KEY": "env"}, dotenv=dotenv
    )
    assert config.upstreams[0].api_keys == ("env",)


# ------------------------------------------------------------------- precedence: flag > env > file

CHEAP_UP = UP.replace('"a"', '"cheap"')
PRECEDENCE: list[Any] = [
    pytest.param(
        "port = 9001",
        "RAWPROXY_PORT",
        "9002",
        ["--port", "9003"],
        lambda c: c.port,
        (9001, 9002, 9003),
        id="port",
    ),
    pytest.param(
        "timeout = 30",
        "RAWPROXY_TIMEOUT",
        "45.5",
        ["--timeout", "60"],
        lambda c: c.timeout,
        (30.0, 45.5, 60.0),
        id="timeout",
    ),
    pytest.param(
        'api_keys = ["file-1", "file-2"]',
        "RAWPROXY_API_KEY",
        "env-1, env-2",
        ["--api-key", "flag-1", "--api-key", "flag-2"],
        lambda c: c.api_keys,
        (("file-1", "file-2"), ("env-1", "env-2"), ("flag-1", "flag-2")),
        id="api_keys",
    ),
    pytest.param(
        'default_model = "file-model"',
        "RAWPROXY_DEFAULT_MODEL",
        "env-model",
        ["--default-model", "flag-model"],
        lambda c: c.routes.default,
        ("file-model", "env-model", "flag-model"),
        id="default_model",
    ),
    pytest.param(
        'small_model = "file-small"',
        "RAWPROXY_SMALL_MODEL",
        "env-small",
        ["--small-model", "flag-small"],
        lambda c: c.routes.small,
        ("file-small", "env-small", "flag-small"),
        id="small_model",
    ),
    pytest.param(
        "max_output_tokens = 1000",
        "RAWPROXY_MAX_OUTPUT_TOKENS",
        "2000",
        ["--max-output-tokens", "3000"],
        lambda c: c.max_output_tokens,
        (1000, 2000, 3000),
        id="max_output_tokens",
    ),
    pytest.param(
        'force_model = "cheap:file:model"',
        "RAWPROXY_FORCE_MODEL",
        "cheap:qwen2.5:7b",
        ["--force-model", "flag-model"],
        lambda c: c.force_model,
        (Target("cheap", "file:model"), Target("cheap", "qwen2.5:7b"), Target(None, "flag-model")),
        id="force_model",
    ),
]


@pytest.mark.parametrize(("line", "var", "env_value", "flag", "get", "expected"), PRECEDENCE)
def test_top_level_setting_flag_beats_env_beats_file(
    tmp_path: Path,
    line: str,
    var: str,
    env_value: str,
    flag: list[str],
    get: Callable[[Config], Any],
    expected: tuple[Any, Any, Any],
) -> None:
    text = line + "\n" + CHEAP_UP
    assert get(from_file(tmp_path, text)) == expected[0]
    assert get(from_file(tmp_path, text, environ={var: env_value})) == expected[1]
    assert get(from_file(tmp_path, text, argv=flag, environ={var: env_value})) == expected[2]


def test_dotenv_sits_between_the_environment_and_the_file(tmp_path: Path) -> None:
    dotenv = write(tmp_path, "RAWPROXY_PORT=9004\n", name=".env")
    text = "port = 9001\n" + CHEAP_UP
    assert from_file(tmp_path, text).port == 9001
    assert from_file(tmp_path, text, dotenv=dotenv).port == 9004
    assert from_file(tmp_path, text, environ={"RAWPROXY_PORT": "9002"}, dotenv=dotenv).port == 9002


def test_a_setting_absent_everywhere_keeps_its_default(tmp_path: Path) -> None:
    config = from_file(tmp_path, CHEAP_UP)
    assert (config.port, config.timeout, config.api_keys, config.force_model) == (8082, 600.0, (), None)


def test_file_model_map_merges_with_the_flag_map_which_wins_per_name(tmp_path: Path) -> None:
    text = 'model_map = { a = "file-a", b = "file-b" }\n' + CHEAP_UP
    assert dict(from_file(tmp_path, text).routes.model_map) == {"a": "file-a", "b": "file-b"}
    config = from_file(tmp_path, text, argv=["--model-map", "b=flag-b,c=flag-c"])
    assert dict(config.routes.model_map) == {"a": "file-a", "b": "flag-b", "c": "flag-c"}


def test_file_auto_cache_false_holds_and_no_auto_cache_flag_beats_file_true(tmp_path: Path) -> None:
    assert from_file(tmp_path, "auto_cache = false\n" + CHEAP_UP).auto_cache is False
    assert from_file(tmp_path, "auto_cache = true\n" + CHEAP_UP, argv=["--no-auto-cache"]).auto_cache is False
    assert from_file(tmp_path, "auto_cache = true\n" + CHEAP_UP).auto_cache is True


def test_file_only_settings_are_read_with_their_types(tmp_path: Path) -> None:
    text = "connect_timeout = 3\nping_interval = 2.5\nmax_body_bytes = 1024\nretry_backoff = 1\n" + CHEAP_UP
    config = from_file(tmp_path, text)
    assert (config.connect_timeout, config.ping_interval, config.max_body_bytes, config.retry_backoff) == (
        3.0,
        2.5,
        1024,
        1.0,
    )


def test_force_model_flag_may_name_a_flag_upstream(tmp_path: Path) -> None:
    argv = ["--force-model", "openai:gpt-4o", "--openai-upstream", "http://127.0.0.1:9/v1"]
    config = from_file(tmp_path, CHEAP_UP, argv=argv)
    assert config.force_model == Target("openai", "gpt-4o")


def test_force_model_flag_naming_an_upstream_that_is_not_configured_is_a_config_error(tmp_path: Path) -> None:
    """With file upstreams and no --openai-upstream there is no upstream named openai: a clear error at
    start, not a crash when the router is built."""
    with pytest.raises(ConfigError, match="force_model: no upstream is named 'openai'"):
        from_file(tmp_path, CHEAP_UP, argv=["--force-model", "openai:gpt-4o"])


# ---------------------------------------------------------------------------------- upstream_list


def names(config: Config) -> list[str]:
    return [spec.name for spec in config.upstream_list()]


def test_upstream_list_is_the_files_when_only_api_keys_lie_in_the_environment(tmp_path: Path) -> None:
    environ = {"MY_ANTHROPIC_KEY": "k", "OPENAI_API_KEY": "sk-env", "ANTHROPIC_API_KEY": "sk-ant-env"}
    assert names(from_file(tmp_path, EXAMPLE, environ=environ)) == ["cheap", "claude"]


def test_without_a_file_openai_api_key_gives_the_openai_flag_upstream() -> None:
    config = Config.from_env([], environ={"OPENAI_API_KEY": "sk-env"}, dotenv=None)
    (spec,) = config.upstream_list()
    assert (spec.name, spec.protocol, spec.base_url, spec.api_keys) == (
        "openai",
        "openai",
        "https://api.openai.com/v1",
        ("sk-env",),
    )


@pytest.mark.parametrize(
    ("argv", "environ", "added", "base_url"),
    [
        pytest.param(
            ["--openai-upstream", "http://127.0.0.1:9999/v1"],
            {},
            "openai",
            "http://127.0.0.1:9999/v1",
            id="flag",
        ),
        pytest.param(
            [],
            {"RAWPROXY_OPENAI_UPSTREAM": "http://127.0.0.1:9999/v1/"},
            "openai",
            "http://127.0.0.1:9999/v1",
            id="env",
        ),
        pytest.param(
            ["--anthropic-upstream", "http://127.0.0.1:9998/v1"],
            {},
            "anthropic",
            "http://127.0.0.1:9998",
            id="anthropic_flag",
        ),
    ],
)
def test_upstream_list_adds_a_flag_upstream_when_its_url_is_set_explicitly(
    tmp_path: Path, argv: list[str], environ: dict[str, str], added: str, base_url: str
) -> None:
    config = from_file(tmp_path, EXAMPLE, argv=argv, environ={"MY_ANTHROPIC_KEY": "k", **environ})
    specs = config.upstream_list()
    assert [spec.name for spec in specs] == ["cheap", "claude", added]
    assert specs[-1].base_url == base_url


def test_upstream_list_flag_upstream_carries_the_flag_key(tmp_path: Path) -> None:
    config = from_file(
        tmp_path,
        CHEAP_UP,
        argv=["--openai-upstream", "http://127.0.0.1:9999/v1"],
        environ={"OPENAI_API_KEY": "sk-env"},
    )
    assert config.upstream_list()[-1].api_keys == ("sk-env",)


def test_upstream_list_flag_upstream_replaces_the_file_upstream_of_the_same_name(tmp_path: Path) -> None:
    text = UP.replace('"a"', '"openai"').replace("18081", "18090") + CHEAP_UP
    kept = from_file(tmp_path, text).upstream_list()
    assert [(s.name, s.base_url) for s in kept] == [
        ("openai", "http://127.0.0.1:18090/v1"),
        ("cheap", "http://127.0.0.1:18081/v1"),
    ]
    replaced = from_file(
        tmp_path, text, argv=["--openai-upstream", "http://127.0.0.1:9999/v1"]
    ).upstream_list()
    assert [(s.name, s.base_url) for s in replaced] == [
        ("cheap", "http://127.0.0.1:18081/v1"),
        ("openai", "http://127.0.0.1:9999/v1"),
    ]
