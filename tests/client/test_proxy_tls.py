"""Company networks (NET-01, NET-02), proved through the real proxy with real client requests: an
outbound HTTP proxy (CONNECT for https upstreams, absolute form for http ones, ``NO_PROXY``, the
per-upstream ``proxy`` setting, ``--no-env-proxy``, credentials) and TLS to the upstream (``SSL_CERT_FILE``,
``SSL_CERT_DIR``, ``ca_file``, mutual TLS, ``verify = false``, an untrusted CA).

Everything is on 127.0.0.1: tests/support/netproxy.py's recording proxy, and a TLS front for the fake
upstream with a certificate of a CA made here by ``trustme`` (https://trustme.readthedocs.io).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rawproxy import Proxy
from rawproxy.config import Config
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.netproxy import ConnectProxy, TLSFront
from tests.support.rawhttp import ANTHROPIC, HTTPConnection, Response, T, messages_body

trustme = pytest.importorskip("trustme")

pytestmark = pytest.mark.integration

SECRET = "s3cr%40t-pass"  # percent-encoded "s3cr@t-pass" in the URL


@pytest.fixture
def ca() -> Any:
    return trustme.CA()


@pytest.fixture
async def tls_fake(fake: FakeUpstream, ca: Any) -> AsyncIterator[TLSFront]:
    async with TLSFront(ca, fake.port) as front:
        yield front


@pytest.fixture
async def corp() -> AsyncIterator[ConnectProxy]:
    async with ConnectProxy() as proxy:
        yield proxy


@pytest.fixture
def ca_file(ca: Any, tmp_path: Path) -> str:
    path = tmp_path / "corp-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def running() -> AsyncIterator[list[Proxy]]:
    started: list[Proxy] = []
    yield started
    await asyncio.wait_for(asyncio.gather(*(p.stop() for p in started)), 10)


async def serve(running: list[Proxy], argv: list[str], environ: dict[str, str]) -> Proxy:
    """rawproxy as the command line and the environment describe it (no .env)."""
    config = Config.from_env(["--port", "0", "--openai-key", "sk-up", *argv], environ=environ, dotenv=None)
    proxy = await asyncio.wait_for(Proxy(config, free_port=False).start(), 5)
    running.append(proxy)
    return proxy


def toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rawproxy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


async def ask(proxy: Proxy) -> Response:
    """One Anthropic Messages request from a client, on a connection of its own."""
    async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
        return await conn.request("POST", "/v1/messages", ANTHROPIC, messages_body(), timeout=T)


# ------------------------------------------------------------------------------------- NET-01


async def test_net01_https_upstream_through_https_proxy_by_connect(
    running: list[Proxy], corp: ConnectProxy, tls_fake: TLSFront, fake: FakeUpstream, ca_file: str
) -> None:
    """HTTPS_PROXY: a CONNECT tunnel to the upstream, then TLS inside it; the request succeeds."""
    proxy = await serve(
        running,
        ["--openai-upstream", tls_fake.url],
        {"HTTPS_PROXY": corp.url, "SSL_CERT_FILE": ca_file},
    )
    resp = await ask(proxy)
    assert resp.status == 200, resp.body
    assert corp.lines == [f"CONNECT 127.0.0.1:{tls_fake.port} HTTP/1.1"]
    assert fake.requests, "the request reached the upstream through the tunnel"
    assert (await ask(proxy)).status == 200
    assert len(corp.lines) == 1, "the tunnelled connection is pooled and reused"


async def test_net01_http_upstream_through_http_proxy_in_absolute_form(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream
) -> None:
    proxy = await serve(running, ["--openai-upstream", fake.url], {"HTTP_PROXY": corp.url})
    resp = await ask(proxy)
    assert resp.status == 200, resp.body
    assert corp.lines == [f"POST http://127.0.0.1:{fake.port}/v1/chat/completions HTTP/1.1"]


@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.0/8", "127.0.0.1:{port}"])
async def test_net01_no_proxy_bypasses_the_proxy(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream, no_proxy: str
) -> None:
    """NO_PROXY by host, ``*``, an IP network and host:port: the upstream is reached directly."""
    env = {"HTTP_PROXY": corp.url, "NO_PROXY": no_proxy.format(port=fake.port)}
    proxy = await serve(running, ["--openai-upstream", fake.url], env)
    assert (await ask(proxy)).status == 200
    assert corp.lines == []


async def test_net01_no_proxy_by_domain_suffix(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream
) -> None:
    """``.localhost``-style suffixes: ``localhost`` names the upstream here, ``NO_PROXY=.localhost``
    matches it (a leading dot is optional, as curl's), ``NO_PROXY=otherhost`` does not."""
    url = f"http://localhost:{fake.port}/v1"
    proxy = await serve(
        running, ["--openai-upstream", url], {"HTTP_PROXY": corp.url, "NO_PROXY": ".localhost"}
    )
    assert (await ask(proxy)).status == 200
    assert corp.lines == []
    proxy = await serve(
        running, ["--openai-upstream", url], {"HTTP_PROXY": corp.url, "NO_PROXY": "otherhost"}
    )
    assert (await ask(proxy)).status == 200
    assert corp.lines == [f"POST http://localhost:{fake.port}/v1/chat/completions HTTP/1.1"]


async def test_net01_lower_case_variables_win(running: list[Proxy], fake: FakeUpstream) -> None:
    async with ConnectProxy() as lower, ConnectProxy() as upper:
        env = {"http_proxy": lower.url, "HTTP_PROXY": upper.url}
        proxy = await serve(running, ["--openai-upstream", fake.url], env)
        assert (await ask(proxy)).status == 200
        assert len(lower.lines) == 1 and upper.lines == []


async def test_net01_all_proxy_is_the_fallback(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream
) -> None:
    proxy = await serve(running, ["--openai-upstream", fake.url], {"ALL_PROXY": corp.url})
    assert (await ask(proxy)).status == 200
    assert len(corp.lines) == 1


async def test_net01_per_upstream_proxy_overrides_the_environment(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream, tmp_path: Path
) -> None:
    """The file's ``proxy`` wins over HTTP_PROXY; ``proxy = ""`` is direct whatever the environment.
    Both on one base URL: each call carries its upstream's own route (no lookup by URL that one of
    them would win)."""
    direct = fake.url
    async with ConnectProxy() as env_proxy:
        path = toml(
            tmp_path,
            f'[[upstreams]]\nname = "own"\nprotocol = "openai"\nbase_url = "{fake.url}"\nproxy = "{corp.url}"\n'
            f'[[upstreams]]\nname = "direct"\nprotocol = "openai"\nbase_url = "{direct}"\nproxy = ""\n'
            '[[routes]]\nmatch = "claude-haiku*"\nupstream = "direct"\n',
        )
        proxy = await serve(
            running, ["--config", path, "--default-model", "own:gpt-4o"], {"HTTP_PROXY": env_proxy.url}
        )
        assert (await ask(proxy)).status == 200
        assert len(corp.lines) == 1 and env_proxy.lines == []
        async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
            body = messages_body(model="claude-haiku-4-5")
            assert (await conn.request("POST", "/v1/messages", ANTHROPIC, body, timeout=T)).status == 200
        assert len(corp.lines) == 1 and env_proxy.lines == [], "the direct upstream used no proxy"


async def test_net01_upstream_proxy_flag_overrides_the_environment(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream
) -> None:
    async with ConnectProxy() as env_proxy:
        argv = ["--openai-upstream", fake.url, "--upstream-proxy", corp.url]
        proxy = await serve(running, argv, {"HTTP_PROXY": env_proxy.url})
        assert (await ask(proxy)).status == 200
        assert len(corp.lines) == 1 and env_proxy.lines == []


@pytest.mark.parametrize("how", [["--no-env-proxy"], ["RAWPROXY_NO_ENV_PROXY"], ["file"]])
async def test_net01_no_env_proxy_ignores_the_environment(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream, tmp_path: Path, how: list[str]
) -> None:
    env = {"HTTP_PROXY": corp.url, "HTTPS_PROXY": corp.url}
    argv = ["--openai-upstream", fake.url]
    if how == ["--no-env-proxy"]:
        argv += how
    elif how == ["file"]:
        argv += ["--config", toml(tmp_path, "env_proxy = false\n")]
    else:
        env["RAWPROXY_NO_ENV_PROXY"] = "1"
    proxy = await serve(running, argv, env)
    assert (await ask(proxy)).status == 200
    assert corp.lines == []


async def test_net01_credentials_are_sent_and_never_shown(
    running: list[Proxy], corp: ConnectProxy, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """user:password@ (percent-decoded) -> Proxy-Authorization: Basic; never in the repr or the summary."""
    url = corp.url_with(f"corp%5Cjo:{SECRET}")
    proxy = await serve(running, ["--openai-upstream", fake.url], {"HTTP_PROXY": url})
    assert (await ask(proxy)).status == 200
    assert corp.authorizations == ["Basic " + base64.b64encode(b"corp\\jo:s3cr@t-pass").decode()]
    config = Config.from_env(["--openai-upstream", fake.url], environ={"HTTP_PROXY": url}, dotenv=None)
    for shown in (repr(config), str(config.summary()), repr(config.router().upstreams["openai"].route)):
        assert "s3cr" not in shown and "jo:" not in shown
    assert "s3cr" not in caplog.text


@pytest.mark.parametrize("status", [407, 403])
async def test_net01_a_refused_connect_is_a_502_naming_upstream_and_status_never_the_password(
    running: list[Proxy],
    fake: FakeUpstream,
    tls_fake: TLSFront,
    ca_file: str,
    caplog: pytest.LogCaptureFixture,
    status: int,
) -> None:
    caplog.set_level(logging.INFO)
    async with ConnectProxy(refuse=status) as corp:
        env = {"HTTPS_PROXY": corp.url_with(f"jo:{SECRET}"), "SSL_CERT_FILE": ca_file}
        proxy = await serve(running, ["--openai-upstream", tls_fake.url], env)
        resp = await ask(proxy)
        assert corp.authorizations and corp.authorizations[0] is not None  # the credentials were offered
    assert resp.status == 502
    message = resp.json()["error"]["message"]
    assert resp.json()["type"] == "error"  # the Anthropic client's own error shape
    assert "'openai'" in message and f"answered {status}" in message and "hint:" in message, message
    assert f"http://127.0.0.1:{corp.port}" in message
    for text in (resp.body.decode(), caplog.text):
        assert "s3cr" not in text and "jo:" not in text
    assert f"answered {status}" in caplog.text


async def test_net01_a_407_to_an_absolute_form_request_is_a_502_too(
    running: list[Proxy], fake: FakeUpstream
) -> None:
    async with ConnectProxy(refuse=407) as corp:
        proxy = await serve(
            running, ["--openai-upstream", fake.url], {"HTTP_PROXY": corp.url_with(f"jo:{SECRET}")}
        )
        resp = await ask(proxy)
    assert resp.status == 502
    assert "answered 407" in resp.json()["error"]["message"] and "s3cr" not in resp.body.decode()


async def test_net01_an_unreachable_proxy_is_named(running: list[Proxy], fake: FakeUpstream) -> None:
    async with ConnectProxy() as gone:
        url = gone.url_with(f"jo:{SECRET}")
    proxy = await serve(running, ["--openai-upstream", fake.url], {"HTTP_PROXY": url})
    resp = await ask(proxy)
    assert resp.status == 502
    message = resp.json()["error"]["message"]
    assert "cannot reach the proxy" in message and "'openai'" in message and "s3cr" not in message


# ------------------------------------------------------------------------------------- NET-02


async def test_net02_ssl_cert_file_is_honoured(
    running: list[Proxy], tls_fake: TLSFront, ca_file: str
) -> None:
    proxy = await serve(running, ["--openai-upstream", tls_fake.url], {"SSL_CERT_FILE": ca_file})
    assert (await ask(proxy)).status == 200


@pytest.mark.skipif(shutil.which("openssl") is None, reason="c_rehash needs the openssl command")
async def test_net02_ssl_cert_dir_is_honoured(
    running: list[Proxy], tls_fake: TLSFront, ca: Any, tmp_path: Path
) -> None:
    """SSL_CERT_DIR: a directory of certificates named by their subject hash (``openssl rehash``)."""
    directory = tmp_path / "certs"
    directory.mkdir()
    ca.cert_pem.write_to_path(str(directory / "corp.pem"))
    subprocess.run(["openssl", "rehash", str(directory)], check=True, capture_output=True, timeout=30)
    proxy = await serve(running, ["--openai-upstream", tls_fake.url], {"SSL_CERT_DIR": str(directory)})
    assert (await ask(proxy)).status == 200


async def test_net02_an_untrusted_ca_is_a_502_with_the_name_and_a_hint(
    running: list[Proxy], tls_fake: TLSFront, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = await serve(running, ["--openai-upstream", tls_fake.url], {})
    resp = await ask(proxy)
    assert resp.status == 502 and resp.json()["type"] == "error"
    message = resp.json()["error"]["message"]
    assert "upstream 'openai'" in message and "does not trust" in message
    assert "hint: set ca_file" in message and "SSL_CERT_FILE" in message
    assert "hint: set ca_file" in caplog.text


async def test_net02_ca_file_per_upstream(
    running: list[Proxy], tls_fake: TLSFront, ca_file: str, tmp_path: Path
) -> None:
    path = toml(
        tmp_path,
        f'[[upstreams]]\nname = "corp"\nprotocol = "openai"\nbase_url = "{tls_fake.url}"\nca_file = "{ca_file}"\n',
    )
    proxy = await serve(running, ["--config", path], {})
    assert (await ask(proxy)).status == 200


async def test_net02_mutual_tls(
    running: list[Proxy], fake: FakeUpstream, ca: Any, ca_file: str, tmp_path: Path
) -> None:
    """A server that requires a client certificate: without one a 502 with a hint, with one a 200."""
    clients = trustme.CA()
    async with TLSFront(ca, fake.port, client_ca=clients) as front:
        path = toml(
            tmp_path,
            f'[[upstreams]]\nname = "mtls"\nprotocol = "openai"\nbase_url = "{front.url}"\nca_file = "{ca_file}"\n',
        )
        proxy = await serve(running, ["--config", path], {})
        resp = await ask(proxy)
        assert resp.status == 502, resp.body
        message = resp.json()["error"]["message"]
        assert "upstream 'mtls'" in message and "client certificate" in message and "cert_file" in message
        cert = clients.issue_cert("rawproxy-client")
        cert_file, key_file = tmp_path / "client.pem", tmp_path / "client.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        path = toml(
            tmp_path,
            f'[[upstreams]]\nname = "mtls"\nprotocol = "openai"\nbase_url = "{front.url}"\nca_file = "{ca_file}"\n'
            f'cert_file = "{cert_file}"\nkey_file = "{key_file}"\n',
        )
        proxy = await serve(running, ["--config", path], {})
        assert (await ask(proxy)).status == 200


async def test_net02_verify_false_works_and_warns_at_start(
    running: list[Proxy], tls_fake: TLSFront, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = toml(
        tmp_path,
        f'[[upstreams]]\nname = "lab"\nprotocol = "openai"\nbase_url = "{tls_fake.url}"\nverify = false\n',
    )
    proxy = await serve(running, ["--config", path], {})
    assert "upstream 'lab': TLS certificate verification is off" in caplog.text
    assert (await ask(proxy)).status == 200


async def test_net02_a_missing_ca_file_is_a_start_error(tmp_path: Path) -> None:
    from rawproxy.config import ConfigError

    path = toml(
        tmp_path,
        '[[upstreams]]\nname = "x"\nprotocol = "openai"\nbase_url = "https://h/v1"\nca_file = "/nope.pem"\n',
    )
    with pytest.raises(ConfigError, match=r"upstream 'x': cannot read /nope\.pem"):
        Config.from_env(["--config", path], environ={}, dotenv=None)


# ------------------------------------------------------------------------------ the README's recipe

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def readme_block(language: str, marker: str) -> str:
    """The fenced ``language`` block of the README that contains ``marker`` (as tests/test_readme.py)."""
    for block in re.findall(rf"```{language}\n(.*?)```", README, re.DOTALL):
        if marker in block:
            return block
    raise AssertionError(f"README has no {language} block with {marker!r}")


async def test_net01_net02_readme_company_networks_recipe_as_written(
    running: list[Proxy], fake: FakeUpstream, ca: Any, tmp_path: Path
) -> None:
    """The README's "Company networks" recipe, literally: its variables and its config file, with only
    the hosts, ports and file paths replaced by the test's (api.openai.com is reached through the
    recording proxy's tunnel, llm.corp.example directly with mutual TLS)."""
    shell = readme_block("sh", "export HTTPS_PROXY=")
    text = readme_block("toml", "# rawproxy.toml behind a company proxy")
    clients = trustme.CA()
    paths = {
        "/etc/ssl/corp-ca.pem": tmp_path / "corp-ca.pem",
        "/etc/ssl/rawproxy-client.pem": tmp_path / "client.pem",
        "/etc/ssl/rawproxy-client.key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["/etc/ssl/corp-ca.pem"]))
    cert = clients.issue_cert("rawproxy")
    cert.cert_chain_pems[0].write_to_path(str(paths["/etc/ssl/rawproxy-client.pem"]))
    cert.private_key_pem.write_to_path(str(paths["/etc/ssl/rawproxy-client.key"]))
    async with (
        TLSFront(ca, fake.port, names=("api.openai.com",)) as public,
        TLSFront(ca, fake.port, client_ca=clients) as internal,
        ConnectProxy(hosts={"api.openai.com:443": ("127.0.0.1", public.port)}) as corp,
    ):

        def local(s: str) -> str:
            s = s.replace("proxy.corp.example:3128", f"127.0.0.1:{corp.port}")
            s = s.replace("https://llm.corp.example/v1", f"https://localhost:{internal.port}/v1")
            for documented, real in paths.items():
                s = s.replace(documented, str(real))
            return s

        environ = {}
        argv: list[str] = []
        for line in shell.splitlines():
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").partition("=")
                environ[name] = local(value)
            elif line.startswith("python -m rawproxy "):
                argv = line.split()[3:]
        path = tmp_path / argv[argv.index("--config") + 1]
        path.write_text(local(text), encoding="utf-8")
        argv[argv.index("--config") + 1] = str(path)
        config = Config.from_env(["--port", "0", *argv], environ=environ, dotenv=None)
        proxy = await asyncio.wait_for(Proxy(config, free_port=False).start(), 5)
        running.append(proxy)
        resp = await ask(proxy)  # claude-sonnet: the first upstream, api.openai.com, through the tunnel
        assert resp.status == 200, resp.body
        assert corp.lines == ["CONNECT api.openai.com:443 HTTP/1.1"]
        assert corp.authorizations == ["Basic " + base64.b64encode(b"jo:secret").decode()]
        async with await HTTPConnection.open(proxy.host, proxy.port, timeout=T) as conn:
            body = messages_body(model="claude-haiku-4-5")  # the route to "internal": direct, mTLS
            assert (await conn.request("POST", "/v1/messages", ANTHROPIC, body, timeout=T)).status == 200
        assert len(corp.lines) == 1
        assert fake.requests[-1].body["model"] == "qwen3-coder"
