"""carrier.py, the sealed envelope upstream state travels in (CONFORMANCE.md RS-07, issue 16): it opens
only with the key that sealed it and only for the upstream and model it was sealed for; anything else is
ignored, the forged or altered with a log line."""

from __future__ import annotations

import logging

import pytest

from rawproxy.carrier import MAX_STATE, PREFIX, Carrier, digest, is_sealed

KEY = b"k" * 32
STATE = {"f": "reasoning_content", "d": digest("Two plus two.")}
CARRIER = Carrier(KEY, "deepseek", "deepseek-reasoner")


def test_rs_07_a_sealed_state_opens_as_it_was() -> None:
    envelope = CARRIER.seal(STATE)
    assert envelope is not None and is_sealed(envelope) and envelope.startswith(PREFIX)
    assert set(envelope[len(PREFIX) :].replace(".", "")) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )  # a signature, a tool id or encrypted_content carries it as it is
    assert CARRIER.open(envelope) == STATE
    # another process (a second worker, another machine) with the same key opens it too
    assert Carrier(bytes(KEY), "deepseek", "deepseek-reasoner").open(envelope) == STATE


def _flip(text: str, at: int) -> str:
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]


@pytest.mark.parametrize("where", ["payload", "mac"])
def test_rs_07_an_altered_envelope_is_ignored_and_logged(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    envelope = CARRIER.seal(STATE)
    assert envelope is not None
    at = len(PREFIX) + 3 if where == "payload" else len(envelope) - 3
    caplog.set_level(logging.WARNING, logger="rawproxy")
    assert CARRIER.open(_flip(envelope, at)) is None
    assert any("did not seal" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "forged",
    [
        PREFIX,
        PREFIX + ".",
        PREFIX + "e30.",  # {} with no MAC
        PREFIX + "e30.AAAAAAAAAAAAAAAAAAAAAA",  # {} with a made-up MAC
        PREFIX + "!!!.???",
        PREFIX + "e30",
    ],
)
def test_rs_07_a_forged_envelope_is_ignored_and_logged(forged: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rawproxy")
    assert CARRIER.open(forged) is None
    assert any("did not seal" in r.getMessage() for r in caplog.records)


def test_rs_07_another_key_cannot_open_it() -> None:
    envelope = Carrier(b"another key", "deepseek", "deepseek-reasoner").seal(STATE)
    assert envelope is not None and CARRIER.open(envelope) is None


@pytest.mark.parametrize(
    ("upstream", "model"), [("kimi", "deepseek-reasoner"), ("deepseek", "deepseek-chat")]
)
def test_rs_07_state_of_another_upstream_or_model_is_dropped_quietly(
    upstream: str, model: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The client switched models: genuine state for somebody else is not an attack, and not sent."""
    envelope = Carrier(KEY, upstream, model).seal(STATE)
    assert envelope is not None
    caplog.set_level(logging.WARNING, logger="rawproxy")
    assert CARRIER.open(envelope) is None
    assert not caplog.records


@pytest.mark.parametrize("value", ["", "EqQBCkgIBhABGAIiQ", "anthropic-signature:xyz", "rp2.x.y"])
def test_rs_07_what_is_not_an_envelope_is_left_alone_silently(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An Anthropic signature, or anything else a client sends in that field, is not ours to judge."""
    caplog.set_level(logging.DEBUG, logger="rawproxy")
    assert not is_sealed(value) and CARRIER.open(value) is None
    assert not caplog.records


def test_rs_07_the_state_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rawproxy")
    room = MAX_STATE - len(b'{"u":"deepseek","m":"deepseek-reasoner","s":{"x":""}}')
    assert CARRIER.seal({"x": "a" * room}) is not None  # exactly the bound
    assert CARRIER.seal({"x": "a" * (room + 1)}) is None  # one byte over
    assert any("not sealed" in r.getMessage() for r in caplog.records)


def test_rs_07_digest_tells_texts_apart() -> None:
    assert digest("Two plus two.") == digest("Two plus two.")
    assert digest("Two plus two.") != digest("Two plus two")


CALL_STATE = {"x": {"google": {"thought_signature": "EjQKMgEMOdbHQ3y7"}}}


def test_rs_03_a_call_id_carries_its_state_and_its_upstream_id() -> None:
    sealed = CARRIER.seal_id("call/with odd chars", CALL_STATE)
    assert sealed is not None and sealed.startswith("toolu_rp1")
    assert set(sealed) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )  # ^[a-zA-Z0-9_-]+$
    assert CARRIER.open_id(sealed) == ("call/with odd chars", CALL_STATE)


@pytest.mark.parametrize("at", [len("toolu_rp1") + 2, -3])
def test_rs_03_an_altered_call_id_is_ignored_and_logged(at: int, caplog: pytest.LogCaptureFixture) -> None:
    sealed = CARRIER.seal_id("call_1", CALL_STATE)
    assert sealed is not None
    caplog.set_level(logging.WARNING, logger="rawproxy")
    assert CARRIER.open_id(_flip(sealed, at % len(sealed))) is None
    assert any("did not seal" in r.getMessage() for r in caplog.records)


def test_rs_03_call_ids_of_others_are_not_opened() -> None:
    assert CARRIER.open_id("call_1") is None and CARRIER.open_id("toolu_01abc") is None
    assert CARRIER.open_id("toolu_rp1") is None
    other = Carrier(KEY, "gemini", "gemini-3-pro").seal_id("call_1", CALL_STATE)
    assert other is not None and CARRIER.open_id(other) is None
    assert CARRIER.seal_id("call_1", {"x": "a" * MAX_STATE}) is None
