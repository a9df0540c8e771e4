"""Client identity presets (decision 7, O2A-M03, A2O-M05): the exact headers an Anthropic upstream gets
on every call (messages, streamed or not; count_tokens; models), overrides, beta merging, duplicates.

The expected sets are written out here on purpose, not read from ``rawproxy.profiles``: a wrong preset
must fail these tests.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from rawproxy import __version__
from rawproxy.config import DEFAULT_OPENAI_UPSTREAM
from rawproxy.testing.fake_upstream import FakeUpstream
from tests.support.rawhttp import call, start

pytestmark = pytest.mark.integration

ANTHROPIC_KEY = "sk-ant-upstream-secret"
CLIENT_KEY = "sk-client-must-not-leak"

# Headers every HTTP client adds for the connection and the body; not part of an identity.
TRANSPORT = frozenset(
    {"host", "content-length", "connection", "accept", "accept-encoding", "transfer-encoding"}
)

COMMON = {"x-api-key": ANTHROPIC_KEY, "content-type": "application/json"}
PRESETS: dict[str, dict[str, str]] = {
    "none": {
        "anthropic-version": "2023-06-01",
        "user-agent": f"rawproxy/{__version__}",
    },
    # codingplanproxy@8bf0c05 claudecode_headers.py (CONFORMANCE.md, "Claude Code masquerade header set")
    "claude-code": {
        "anthropic-version": "2026-04-14",
        "anthropic-beta": "prompt-caching-2026-04-14,computer-use-2026-04-14",
        "user-agent": "claude-code/2.1.107 (node/25.8.0; darwin; amd64)",
    },
    # the real Claude Code CLI 2.1.330 (captured), plus a per-process x-claude-code-session-id
    "claude-cli": {
        "user-agent": "claude-cli/2.1.330 (external, cli)",
        "x-app": "cli",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,effort-2025-11-24",
        "anthropic-dangerous-direct-browser-access": "true",
        "x-stainless-lang": "js",
        "x-stainless-package-version": "0.128.0",
        "x-stainless-os": "Linux",
        "x-stainless-arch": "x64",
        "x-stainless-runtime": "node",
        "x-stainless-runtime-version": "v26.12.1",
        "x-stainless-retry-count": "0",
        "x-stainless-timeout": "600",
    },
}
SESSION = "x-claude-code-session-id"
PROFILES = list(PRESETS)

# What the clients send of their own; none of it may reach the upstream as is.
OPENAI_CLIENT = [
    ("authorization", f"Bearer {CLIENT_KEY}"),
    ("content-type", "application/json"),
    ("user-agent", "OpenAI/Python 1.99.0"),
    ("x-stainless-lang", "python"),
    ("x-stainless-os", "MacOS"),
]
ANTHROPIC_CLIENT = [
    ("x-api-key", CLIENT_KEY),
    ("anthropic-version", "2023-06-01"),
    ("content-type", "application/json"),
    ("user-agent", "Anthropic/Python 0.99.0"),
    ("x-stainless-lang", "python"),
    ("x-stainless-retry-count", "3"),
]


async def anthropic_only(proxy_factory: Any, fake: FakeUpstream, **config: Any) -> Any:
    proxy = await start(
        proxy_factory,
        openai_upstream=DEFAULT_OPENAI_UPSTREAM,
        openai_key=None,
        anthropic_upstream=fake.anthropic_url,
        anthropic_key=ANTHROPIC_KEY,
        **config,
    )
    assert not proxy.config.openai_enabled
    return proxy


def chat(stream: bool) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-6", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


def anthropic_messages(stream: bool = False) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }


async def every_call(proxy: Any) -> None:
    """One of each upstream call: messages (whole, streamed), count_tokens, models."""
    await call(proxy, "POST", "/v1/chat/completions", OPENAI_CLIENT, chat(False))
    await call(proxy, "POST", "/v1/chat/completions", OPENAI_CLIENT, chat(True))
    count = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "count me"}]}
    await call(proxy, "POST", "/v1/messages/count_tokens", ANTHROPIC_CLIENT, count)
    await call(proxy, "GET", "/v1/models", OPENAI_CLIENT)


# The loop marks (NET-03, tests/exchange/test_loops.py): rawproxy's own, never on a presented identity.
LOOP_MARKS = frozenset({"via", "x-rawproxy-hops"})


def identity(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in TRANSPORT and k not in LOOP_MARKS}


def assert_single(raw: list[tuple[str, str]]) -> None:
    names = [name for name, _ in raw]
    assert len(names) == len(set(names)), raw  # no header sent twice


# ------------------------------------------------------------------------------- the exact presets


@pytest.mark.parametrize("profile", PROFILES)
async def test_o2a_m03_preset_on_every_upstream_call(
    proxy_factory: Any, fake: FakeUpstream, profile: str
) -> None:
    proxy = await anthropic_only(proxy_factory, fake, client_profile=profile)
    await every_call(proxy)

    calls = [(r.method, r.path) for r in fake.requests]
    assert calls == [
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/messages/count_tokens"),
        ("GET", "/v1/models"),
    ]
    assert [bool(r.body.get("stream")) for r in fake.requests[:2]] == [False, True]
    expected = {**PRESETS[profile], **COMMON}
    sessions = set()
    for recorded, raw in zip(fake.requests, fake.raw_headers, strict=True):
        got = identity(recorded.headers)
        if profile == "claude-cli":
            session = got.pop(SESSION, None)
            assert session is not None, (recorded.path, got)
            assert str(uuid.UUID(session)) == session.lower()
            sessions.add(session)
        assert got == expected, (recorded.method, recorded.path)
        assert_single(raw)
        marked = LOOP_MARKS & recorded.headers.keys()
        assert marked == (LOOP_MARKS if profile == "none" and recorded.method == "POST" else set()), marked
    if profile == "claude-cli":
        assert len(sessions) == 1  # one session id for the proxy's lifetime

    beta = "beta=true" if profile == "claude-cli" else ""
    assert [r.query for r in fake.requests[:3]] == [beta, beta, beta]
    assert "limit=" in fake.requests[3].query  # the models list is paginated (O2A-M01)


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stream", [False, True])
async def test_preset_on_passthrough_messages_too(
    proxy_factory: Any, fake: FakeUpstream, profile: str, stream: bool
) -> None:
    """An Anthropic client's own SDK headers give way to the preset; its version is the same as the
    presets' here and it sends no beta, so the upstream sees exactly the preset."""
    proxy = await anthropic_only(proxy_factory, fake, client_profile=profile)
    await call(proxy, "POST", "/v1/messages", ANTHROPIC_CLIENT, anthropic_messages(stream))
    (recorded,) = fake.requests
    got = identity(recorded.headers)
    assert (got.pop(SESSION, None) is not None) == (profile == "claude-cli")
    assert got == {**PRESETS[profile], **COMMON}
    assert recorded.query == ("beta=true" if profile == "claude-cli" else "")
    assert_single(fake.raw_headers[0])


async def test_claude_cli_session_id_is_stable_across_calls_and_streams(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await anthropic_only(proxy_factory, fake, client_profile="claude-cli")
    await every_call(proxy)
    await call(proxy, "POST", "/v1/chat/completions", OPENAI_CLIENT, chat(True))
    ids = {r.headers.get(SESSION) for r in fake.requests}
    assert len(fake.requests) == 5 and len(ids) == 1 and None not in ids


# ------------------------------------------------------------------------ --upstream-header overrides


@pytest.mark.parametrize("profile", PROFILES)
async def test_o2a_m03_upstream_headers_override_and_extend_any_preset(
    proxy_factory: Any, fake: FakeUpstream, profile: str
) -> None:
    proxy = await anthropic_only(
        proxy_factory,
        fake,
        client_profile=profile,
        upstream_headers=(("anthropic-version", "2099-01-01"), ("x-extra", "1")),
    )
    await every_call(proxy)

    expected = {**PRESETS[profile], **COMMON, "anthropic-version": "2099-01-01", "x-extra": "1"}
    assert len(fake.requests) == 4
    for recorded, raw in zip(fake.requests, fake.raw_headers, strict=True):
        got = identity(recorded.headers)
        got.pop(SESSION, None)
        assert got == expected, (recorded.method, recorded.path)
        assert_single(raw)


async def test_upstream_header_override_beats_a_passthrough_clients_version(
    proxy_factory: Any, fake: FakeUpstream
) -> None:
    proxy = await anthropic_only(proxy_factory, fake, upstream_headers=(("Anthropic-Version", "2099-01-01"),))
    await call(proxy, "POST", "/v1/messages", ANTHROPIC_CLIENT, anthropic_messages())
    (raw,) = fake.raw_headers
    assert [v for k, v in raw if k == "anthropic-version"] == ["2099-01-01"]


# ----------------------------------------------------------------------- passthrough: betas, versions


def betas(raw: list[tuple[str, str]]) -> list[str]:
    values = [v for k, v in raw if k == "anthropic-beta"]
    assert len(values) <= 1, raw  # one header line, not one per source
    return [b.strip() for b in values[0].split(",")] if values else []


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
async def test_o2a_m03_client_betas_merged_with_the_presets_without_duplicates(
    proxy_factory: Any, fake: FakeUpstream, profile: str, path: str
) -> None:
    proxy = await anthropic_only(proxy_factory, fake, client_profile=profile)
    preset = [b for b in PRESETS[profile].get("anthropic-beta", "").split(",") if b]
    # one beta the preset already has (when it has any), one new, and the new one twice
    client = ([preset[-1]] if preset else []) + ["my-beta-2025-01-01", "my-beta-2025-01-01"]
    headers = [*ANTHROPIC_CLIENT, ("anthropic-beta", " , ".join(client))]
    body = anthropic_messages()
    if path.endswith("count_tokens"):
        del body["max_tokens"], body["stream"]
    await call(proxy, "POST", path, headers, body)

    (raw,) = fake.raw_headers
    sent = betas(raw)
    assert len(sent) == len(set(sent)), sent
    assert set(sent) == {*preset, "my-beta-2025-01-01"}
    assert "" not in sent
    version = [v for k, v in raw if k == "anthropic-version"]
    # A preset that presents an identity keeps its version; without one the client's own is sent.
    assert version == [PRESETS[profile]["anthropic-version"] if profile != "none" else "2023-06-01"]
    assert fake.requests[0].headers["x-api-key"] == ANTHROPIC_KEY


@pytest.mark.parametrize("profile", PROFILES)
async def test_client_beta_header_lines_are_all_kept(
    proxy_factory: Any, fake: FakeUpstream, profile: str
) -> None:
    """Two ``anthropic-beta`` lines from a client are one comma list (RFC 9110 5.3): neither is lost."""
    proxy = await anthropic_only(proxy_factory, fake, client_profile=profile)
    headers = [
        *ANTHROPIC_CLIENT,
        ("anthropic-beta", "first-beta-2025-01-01"),
        ("Anthropic-Beta", "second-beta-2025-01-01"),
    ]
    await call(proxy, "POST", "/v1/messages", headers, anthropic_messages())

    (raw,) = fake.raw_headers
    preset = [b for b in PRESETS[profile].get("anthropic-beta", "").split(",") if b]
    sent = betas(raw)
    assert set(sent) == {*preset, "first-beta-2025-01-01", "second-beta-2025-01-01"}, sent
    assert len(sent) == len(set(sent)), sent


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stream", [False, True])
async def test_duplicate_client_anthropic_version_is_not_doubled(
    proxy_factory: Any, fake: FakeUpstream, profile: str, stream: bool
) -> None:
    """decolua/9router #1227: a doubled header became ``2023-06-01, 2023-06-01`` and a 400 (A2O-M05)."""
    proxy = await anthropic_only(proxy_factory, fake, client_profile=profile)
    headers = [
        ("anthropic-version", "2023-06-01"),
        ("Anthropic-Version", "2023-06-01"),
        *[(k, v) for k, v in ANTHROPIC_CLIENT if k != "anthropic-version"],
    ]
    await call(proxy, "POST", "/v1/messages", headers, anthropic_messages(stream))
    await call(
        proxy, "POST", "/v1/messages/count_tokens", headers, {"model": "claude-sonnet-4-6", "messages": []}
    )

    expected = PRESETS[profile]["anthropic-version"] if profile != "none" else "2023-06-01"
    assert len(fake.raw_headers) == 2
    for raw in fake.raw_headers:
        assert [v for k, v in raw if k == "anthropic-version"] == [expected], raw
        assert_single(raw)
