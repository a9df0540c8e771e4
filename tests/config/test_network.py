"""Company-network settings, sans-I/O: which proxy each upstream is resolved to at start (NET-01), TLS
settings and their start errors (NET-02), and ``.env`` inline comments (NET-07).

The rules of the environment's variables are curl's and Python's (routing/reach.py cites them); the
``.env`` rules are python-dotenv's (``parse_unquoted_value``: ``re.sub(r"\\s+#.*", "", part)``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rawproxy.config import Config, ConfigError, read_dotenv
from rawproxy.routing.reach import ProxyEnvironment, bypass, parse_proxy


def proxies(argv: list[str], environ: dict[str, str]) -> dict[str, str | None]:
    config = Config.from_env(argv, environ=environ, dotenv=None)
    return {spec.name: spec.proxy for spec in config.router_spec().upstreams}


OPENAI_HTTPS = ["--openai-upstream", "https://api.corp.example/v1"]


# ------------------------------------------------------------------------------------- NET-01


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypassed"),
    [
        ("api.corp.example", 443, "corp.example", True),  # a domain matches what is below it
        ("api.corp.example", 443, ".corp.example", True),  # a leading dot is optional (curl)
        ("api.corp.example", 443, "*.corp.example", True),
        ("corp.example", 443, ".corp.example", True),
        ("mycorp.example", 443, "corp.example", False),  # never in the middle of a label
        ("api.corp.example", 443, "*", True),
        ("api.corp.example", 443, "other.example, api.corp.example", True),
        ("api.corp.example", 443, "other.example api.corp.example", True),  # spaces separate too
        ("API.Corp.Example.", 443, "api.corp.example", True),  # case and a trailing dot
        ("10.1.2.3", 443, "10.0.0.0/8", True),  # CIDR (curl 7.86)
        ("10.1.2.3", 443, "10.1.2.3", True),
        ("10.1.2.3", 443, "11.0.0.0/8", False),
        ("::1", 443, "::1", True),
        ("10.1.2.3", 443, "corp.example", False),  # names never match an address
        ("api.corp.example", 8443, "api.corp.example:8443", True),  # a port: that port only
        ("api.corp.example", 443, "api.corp.example:8443", False),
        ("::1", 8443, "[::1]:8443", True),
        ("api.corp.example", 443, "", False),
    ],
)
def test_net01_no_proxy_rules(host: str, port: int, no_proxy: str, bypassed: bool) -> None:
    assert bypass(host, port, no_proxy) is bypassed


def test_net01_the_schemes_variable_then_all_proxy() -> None:
    env = {"HTTPS_PROXY": "http://s:1", "HTTP_PROXY": "http://p:1", "ALL_PROXY": "http://a:1"}
    assert proxies(OPENAI_HTTPS, env) == {"openai": "http://s:1"}
    assert proxies(["--openai-upstream", "http://api.corp.example/v1"], env) == {"openai": "http://p:1"}
    assert proxies(OPENAI_HTTPS, {"ALL_PROXY": "http://a:1"}) == {"openai": "http://a:1"}
    assert proxies(OPENAI_HTTPS, {"HTTP_PROXY": "http://p:1"}) == {"openai": None}  # not for https


def test_net01_lower_case_wins_even_when_empty() -> None:
    """As urllib.request.getproxies_environment: a lower-case variable set to "" disables the upper."""
    env = {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:1"}
    assert proxies(OPENAI_HTTPS, env) == {"openai": "http://low:1"}
    assert proxies(OPENAI_HTTPS, {"https_proxy": "", "HTTPS_PROXY": "http://up:1"}) == {"openai": None}
    env = {"HTTPS_PROXY": "http://up:1", "NO_PROXY": "corp.example", "no_proxy": "other.example"}
    assert proxies(OPENAI_HTTPS, env) == {"openai": "http://up:1"}


def test_net01_per_upstream_proxy_flag_and_no_env_proxy() -> None:
    env = {"HTTPS_PROXY": "http://env:1"}
    assert proxies([*OPENAI_HTTPS, "--upstream-proxy", "http://own:2"], env) == {"openai": "http://own:2"}
    assert proxies([*OPENAI_HTTPS, "--no-env-proxy"], env) == {"openai": None}
    assert proxies(OPENAI_HTTPS, {**env, "RAWPROXY_UPSTREAM_PROXY": "http://own:3"}) == {
        "openai": "http://own:3"
    }


def test_net01_file_proxy_keys(tmp_path: Path) -> None:
    path = tmp_path / "rawproxy.toml"
    path.write_text(
        "env_proxy = false\n"
        '[[upstreams]]\nname = "a"\nprotocol = "openai"\nbase_url = "https://a.example/v1"\n'
        'proxy = "http://corp:3128"\n'
        '[[upstreams]]\nname = "b"\nprotocol = "openai"\nbase_url = "https://b.example/v1"\n',
        encoding="utf-8",
    )
    assert proxies(["--config", str(path)], {"HTTPS_PROXY": "http://env:1"}) == {
        "a": "http://corp:3128",
        "b": None,
    }


def test_net01_proxy_url_credentials_are_percent_decoded_and_never_shown() -> None:
    proxy = parse_proxy("http://corp%5Cjo:p%40ss%3Aword@corp:3128")
    assert proxy.authorization == b"Basic " + __import__("base64").b64encode(b"corp\\jo:p@ss:word")
    assert (proxy.host, proxy.port) == ("corp", 3128)
    assert "p%40ss" not in repr(proxy) and "jo" not in repr(proxy) and str(proxy) == "http://corp:3128"
    assert parse_proxy("corp:8080").shown == "http://corp:8080"  # no scheme: http://, as curl
    env = ProxyEnvironment.of({"HTTPS_PROXY": "http://jo:secret@corp:1"})
    assert "secret" not in repr(env) and "corp:1" in repr(env)


@pytest.mark.parametrize(
    "environ",
    [{"HTTPS_PROXY": "socks5://jo:secret@corp:1080"}, {"HTTPS_PROXY": "https://jo:secret@corp:443"}],
)
def test_net01_an_unsupported_proxy_is_a_start_error_naming_the_variable(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(OPENAI_HTTPS, environ=environ, dotenv=None)
    message = str(caught.value)
    assert "https_proxy" in message and "only http:// proxies" in message and "--no-env-proxy" in message
    assert "secret" not in message


def test_net01_a_bad_file_proxy_never_shows_its_password(tmp_path: Path) -> None:
    path = tmp_path / "rawproxy.toml"
    path.write_text(
        '[[upstreams]]\nname = "a"\nprotocol = "openai"\nbase_url = "https://a.example/v1"\n'
        'proxy = "ftp://jo:secret@corp:21"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="upstream 'a'") as caught:
        Config.from_env(["--config", str(path)], environ={}, dotenv=None)
    assert "secret" not in str(caught.value)


def test_net01_env_proxy_is_shown_redacted_in_the_summary() -> None:
    config = Config.from_env(OPENAI_HTTPS, environ={"HTTPS_PROXY": "http://jo:secret@corp:1"}, dotenv=None)
    summary = config.summary()
    assert summary["upstreams"][0]["proxy"] == "http://***@corp:1"
    assert "secret" not in repr(config) and "secret" not in str(summary)


# ------------------------------------------------------------------------------------- NET-02


def test_net02_ssl_cert_file_and_dir_are_every_upstreams_default_trust(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    own, corp, corp_dir = tmp_path / "own.pem", tmp_path / "corp.pem", tmp_path / "corp.d"
    trustme.CA().cert_pem.write_to_path(str(own))
    trustme.CA().cert_pem.write_to_path(str(corp))
    corp_dir.mkdir()
    path = tmp_path / "rawproxy.toml"
    path.write_text(
        '[[upstreams]]\nname = "own"\nprotocol = "openai"\nbase_url = "https://a.example/v1"\n'
        f'ca_file = "{own}"\n'
        '[[upstreams]]\nname = "env"\nprotocol = "openai"\nbase_url = "https://b.example/v1"\n',
        encoding="utf-8",
    )
    env = {"SSL_CERT_FILE": str(corp), "SSL_CERT_DIR": str(corp_dir)}
    config = Config.from_env(["--config", str(path)], environ=env, dotenv=None)
    specs = {spec.name: spec for spec in config.reached()}
    assert (specs["env"].ca_file, specs["env"].ca_dir) == (str(corp), str(corp_dir))
    assert (specs["own"].ca_file, specs["own"].ca_dir) == (str(own), None)  # its own replaces both
    with pytest.raises(ConfigError, match="SSL_CERT_DIR"):
        Config.from_env(["--config", str(path)], environ={"SSL_CERT_DIR": "/no/such/dir"}, dotenv=None)


def test_net02_a_key_file_without_cert_file_is_a_start_error(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_text("x", encoding="utf-8")
    path = tmp_path / "rawproxy.toml"
    path.write_text(
        f'[[upstreams]]\nname = "a"\nprotocol = "openai"\nbase_url = "https://a/v1"\nkey_file = "{key}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="upstream 'a': key_file needs cert_file"):
        Config.from_env(["--config", str(path)], environ={}, dotenv=None)


def test_net02_verify_must_be_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "rawproxy.toml"
    path.write_text(
        '[[upstreams]]\nname = "a"\nprotocol = "openai"\nbase_url = "https://a/v1"\nverify = "no"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="verify: expected true or false"):
        Config.from_env(["--config", str(path)], environ={}, dotenv=None)


# ------------------------------------------------------------------------------------- NET-07


def test_net07_dotenv_inline_comments(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "OPENAI_API_KEY=sk-abc   # my key\n"
        'QUOTED="sk-#def"  # a comment after the quotes\n'
        "SINGLE='a # b'\n"
        "NO_SPACE=sk-ab#c\n"
        "TAB=value\t# tab before\n",
        encoding="utf-8",
    )
    assert read_dotenv(path) == {
        "OPENAI_API_KEY": "sk-abc",
        "QUOTED": "sk-#def",
        "SINGLE": "a # b",
        "NO_SPACE": "sk-ab#c",
        "TAB": "value",
    }
    config = Config.from_env([], environ={}, dotenv=path)
    assert config.openai_key == "sk-abc"
