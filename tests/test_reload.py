"""Issue 5, hot reload (rawproxy/reload.py): SIGHUP and a changed ``--config`` file switch new requests
to the new configuration while streams in flight finish on the old one; a bad file changes nothing. Which
settings a reload applies is the SETTINGS table's ``live``: a live one is in effect at once, a change to
any other is logged by name as needing a restart."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rawproxy.config import Config
from rawproxy.config import logs as config_logs
from rawproxy.reload import Reloader
from rawproxy.routing import Upstream
from rawproxy.service import serve
from rawproxy.testing.fake_upstream import FakeUpstream, Script

pytestmark = pytest.mark.integration

STREAMS = 50
WORDS = "one two three four five six seven eight"


def config_text(upstream: FakeUpstream, model: str, *, extra: str = "", top: str = "") -> str:
    return f"""
reload_interval = 0.05
{top}

[[upstreams]]
name = "main"
protocol = "openai"
base_url = "{upstream.url}"
api_key = "sk-main"

[[routes]]
match = "claude-*"
upstream = "main"
model = "{model}"
{extra}
"""


class Running:
    def __init__(self, path: Path, argv: tuple[str, ...] = ("--port", "0")) -> None:
        self.path = path
        self.argv = argv
        self.url = ""
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def build(self) -> Config:
        return Config.from_env(["--config", str(self.path), *self.argv], environ={}, dotenv=None)

    async def start(self) -> None:
        ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(
            serve(
                self.build(),
                ready=lambda h, p: ready.set_result((h, p)),
                stop=self.stop,
                rebuild=self.build,
            )
        )
        host, port = await asyncio.wait_for(ready, 5)
        self.url = f"http://{host}:{port}"


@pytest.fixture
async def second() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture
async def running(tmp_path: Path, fake: FakeUpstream) -> AsyncIterator[Running]:
    path = tmp_path / "rawproxy.toml"
    path.write_text(config_text(fake, "old-model"))
    proxy = Running(path)
    await proxy.start()
    yield proxy
    proxy.stop.set()
    assert proxy.task is not None
    await asyncio.wait_for(proxy.task, 10)


def client(proxy: Running) -> Any:
    anthropic = pytest.importorskip("anthropic")
    return anthropic.AsyncAnthropic(base_url=proxy.url, api_key="sk-client", max_retries=0, timeout=20)


async def stream_text(api: Any, prompt: str = "hi") -> tuple[str, str]:
    """(the text, the model the message reports) of one streamed request."""
    async with api.messages.stream(
        model="claude-sonnet-4-6", max_tokens=100, messages=[{"role": "user", "content": prompt}]
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        message = await stream.get_final_message()
    return text, message.model


def rewrite(path: Path, text: str) -> None:
    """A new file whose stamp (size, mtime) differs even within one clock tick."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


async def wait_for(predicate: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


def last_models(upstream: FakeUpstream, count: int) -> list[str]:
    posts = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    return [r.body["model"] for r in posts[-count:]]


def reloaded(caplog: pytest.LogCaptureFixture) -> int:
    return sum("configuration reloaded" in r.getMessage() for r in caplog.records)


def refused(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "configuration not reloaded" in r.getMessage()]


def restart_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "on restart only" in r.getMessage()]


async def test_issue5_reload_under_50_streams_drops_none(
    running: Running, fake: FakeUpstream, second: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """50 streams in flight on the old configuration; the file changes to send the model elsewhere.
    Every stream completes, whole, on the old upstream; requests after the reload go to the new one."""
    caplog.set_level(logging.INFO, logger="rawproxy")
    fake.default = Script(text=WORDS, token_interval=0.08)  # over half a second a stream
    api = client(running)
    try:
        streams = [asyncio.create_task(stream_text(api)) for _ in range(STREAMS)]
        await wait_for(lambda: fake.streams_started >= STREAMS)
        rewrite(running.path, config_text(second, "new-model"))
        await wait_for(lambda: reloaded(caplog) == 1)
        assert fake.streams_completed < STREAMS, "the reload came too late to prove anything"
        after = await stream_text(api, "after")  # while the old streams still run
        results = await asyncio.gather(*streams)
    finally:
        await api.close()
    assert [text for text, _ in results] == [WORDS] * STREAMS
    assert fake.streams_completed == STREAMS and fake.streams_cancelled == 0
    assert last_models(fake, STREAMS + 1) == ["old-model"] * STREAMS  # and nothing after the reload
    assert after[0] == "Hello from the fake upstream."  # the second fake's default answer
    assert last_models(second, 1) == ["new-model"]


async def test_issue5_sighup_reloads(
    running: Running, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy")
    api = client(running)
    try:
        await stream_text(api)
        # Same size and a restored mtime: only the signal can tell the proxy to look again.
        stamp = running.path.stat()
        running.path.write_text(config_text(fake, "new-model"))  # as long as "old-model"
        os.utime(running.path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        await asyncio.sleep(0.2)
        assert reloaded(caplog) == 0
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for(lambda: reloaded(caplog) == 1)
        await stream_text(api)
    finally:
        await api.close()
    assert last_models(fake, 2) == ["old-model", "new-model"]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("[[upstreams]\nname = ", "not valid TOML"),
        ('[[upstreams]]\nname = "x"\nprotocol = "grpc"\nbase_url = "http://127.0.0.1:1"', "protocol must be"),
        ('[[routes]]\nmatch = "*"\nupstream = "nowhere"', "no upstream is named 'nowhere'"),
        ("bogus_setting = 1", "unknown setting 'bogus_setting'"),
    ],
)
async def test_issue5_bad_reload_keeps_the_old_configuration_serving(
    running: Running, fake: FakeUpstream, caplog: pytest.LogCaptureFixture, bad: str, says: str
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy")
    api = client(running)
    try:
        rewrite(running.path, bad)
        await wait_for(lambda: len(refused(caplog)) == 1)
        text, _ = await stream_text(api)
        # and a good file after the bad one is taken
        rewrite(running.path, config_text(fake, "fixed-model"))
        await wait_for(lambda: reloaded(caplog) == 1)
        await stream_text(api)
    finally:
        await api.close()
    (message,) = refused(caplog)
    assert says in message and str(running.path) in message
    assert text == "Hello from the fake upstream."
    assert last_models(fake, 2) == ["old-model", "fixed-model"]


# ------------------------------------------------------------------------------------ the reload rules


async def test_live_settings_changed_by_a_reload_are_in_effect_and_not_called_restart_only(
    running: Running, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """max_connections is live: after the reload, one connection open is the new maximum and a second
    is refused with 503 by the running server."""
    caplog.set_level(logging.INFO, logger="rawproxy")
    rewrite(running.path, config_text(fake, "old-model", top="max_connections = 1\nretry_backoff = 0.25"))
    await wait_for(lambda: reloaded(caplog) == 1)
    assert restart_warnings(caplog) == []
    host, port = running.url.removeprefix("http://").rsplit(":", 1)
    _, held = await asyncio.open_connection(host, int(port))  # counted: the new maximum
    try:
        await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET / HTTP/1.1\r\nhost: proxy\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
    finally:
        held.close()
    assert status.split()[1] == b"503"


async def test_a_restart_only_setting_changed_by_a_reload_is_logged_by_name(
    tmp_path: Path, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy")
    path = tmp_path / "rawproxy.toml"
    path.write_text(config_text(fake, "old-model", top="port = 0"))
    proxy = Running(path, argv=())  # the port from the file alone
    await proxy.start()
    try:
        rewrite(path, config_text(fake, "new-model", top="port = 18999\nworkers = 2\nretry_backoff = 0.25"))
        await wait_for(lambda: reloaded(caplog) == 1)
    finally:
        proxy.stop.set()
        assert proxy.task is not None
        await asyncio.wait_for(proxy.task, 10)
    assert restart_warnings(caplog) == ["changed settings that take effect on restart only: port, workers"]


class StubApp:
    """What the Reloader drives (reload.Reloadable), without a server."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.upstreams: dict[str, Upstream] = config.router().upstreams

    def use(self, config: Config) -> None:
        self.upstreams = config.router().upstreams
        self.config = config


def test_the_reloader_takes_a_live_setting_without_a_restart_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy")
    app = StubApp(Config.from_flags("--port", "0"))
    new = Config.from_flags("--port", "0", "--max-connections", "7", "--head-timeout", "3")
    assert Reloader(app, lambda: new).reload("test")
    assert (app.config.max_connections, app.config.head_timeout) == (7, 3)
    assert restart_warnings(caplog) == []


def test_the_reloader_names_each_restart_only_setting_changed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="rawproxy")
    app = StubApp(Config.from_flags("--port", "0"))
    new = Config.from_flags("--port", "9", "--timeout", "5", "--inspect", "--log-bodies")
    assert Reloader(app, lambda: new).reload("test")
    assert restart_warnings(caplog) == [
        "changed settings that take effect on restart only: port, timeout, inspect"
    ]


def test_a_reload_applies_a_changed_log_format_and_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """The logging ``python -m rawproxy`` set up (config/logs.py) follows log_level and log_format."""
    root = logging.getLogger()
    saved = (root.level, [(h, h.formatter) for h in root.handlers])
    monkeypatch.setitem(config_logs._state, "configured", True)
    app = StubApp(Config.from_flags("--port", "0"))
    new = Config.from_flags("--port", "0", "--log-level", "debug", "--log-format", "json")
    try:
        assert Reloader(app, lambda: new).reload("test")
        assert root.level == logging.DEBUG
        assert root.handlers and all(
            isinstance(h.formatter, config_logs.JSONFormatter) for h in root.handlers
        )
    finally:
        root.setLevel(saved[0])
        for handler, formatter in saved[1]:
            handler.setFormatter(formatter)


def test_without_its_own_logging_setup_a_reload_leaves_the_logging_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(config_logs._state, "configured", False)  # embedded: the program's logging
    level = logging.getLogger().level
    assert config_logs.apply_logging("debug", "json") is False
    assert logging.getLogger().level == level
