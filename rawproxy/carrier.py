"""The sealed carrier: upstream state a later request must send back, packed into an opaque field the
client's own protocol round-trips, and opened exactly on the way back. Pure; no server-side state.

An OpenAI-compatible upstream that thinks (DeepSeek, Kimi, vLLM...) wants its reasoning back on the next
assistant tool turn, in the field it came in; an Anthropic client only sends back what Anthropic's
protocol has room for: a thinking block, whose ``signature`` it returns untouched. So the signature is
this envelope (issue 16; CONFORMANCE.md RS):

    rp1.<payload>.<mac>     base64url without padding, both

``payload`` is JSON ``{"u": upstream, "m": model, "s": state}``; ``mac`` is the first 16 bytes of
HMAC-SHA256 over ``rp1.<payload>`` with the proxy's key (``--carrier-key``; one generated per process
group when unset, so set it when several machines serve the same clients). An envelope opens only with
that key and only for the upstream and model it was sealed for: a forged or altered one is ignored with a
log line, one from another upstream or model (the client switched) is dropped quietly, and nothing in
either can reach an upstream. The state is bounded (``MAX_STATE`` bytes of JSON).

State that belongs to one tool call (Gemini's ``thought_signature``) rides in that call's id instead,
``toolu_rp1<payload><mac>`` (``seal_id``/``open_id``), the only field of a call every client returns: the
upstream's own id is inside, given back to it with the state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson

__all__ = [
    "GROUP_KEY_VARIABLE",
    "ID_PREFIX",
    "MAX_STATE",
    "PREFIX",
    "Carrier",
    "digest",
    "foreign_call_id",
    "is_sealed",
]

log = logging.getLogger("rawproxy")

PREFIX: Final = "rp1."
GROUP_KEY_VARIABLE: Final = "RAWPROXY_GROUP_CARRIER_KEY"  # the key workers.py hands its workers
MAX_STATE: Final = 256 * 1024  # bytes of JSON: more is not sealed (the turn goes back without it)
_MAC_BYTES: Final = 16
_MAC_CHARS: Final = 22  # 16 bytes in base64url without padding
# A tool-use id that carries a call's state (Gemini's thought signature, RS-03): only the characters an
# Anthropic tool id may have ([A-Za-z0-9_-]), the MAC a fixed-length tail. The original id is inside.
ID_PREFIX: Final = "toolu_rp1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_sealed(value: str | None) -> bool:
    """Whether ``value`` is one of rawproxy's envelopes (not an Anthropic signature: never send it there)."""
    return value is not None and value.startswith(PREFIX)


def foreign_call_id(tool_id: str) -> str:
    """A short stand-in, the same every time, for a sealed tool-call id this upstream and model cannot
    open (the client switched models): the envelope is long, and providers cap ids (OpenAI answered
    "string too long. Expected a string with maximum length 40" for a while: openclaw/openclaw#875;
    others cap at 64). Calls and their results get the same stand-in, so they still pair."""
    return "call_" + digest(tool_id)


def digest(text: str) -> str:
    """A short fingerprint of a text the client sends back beside the envelope (the thinking itself):
    the envelope holds this instead of a second copy, and the text must match it to be restored."""
    return _b64(hashlib.sha256(text.encode()).digest()[:12])


@dataclass(frozen=True, slots=True)
class Carrier:
    """Seals and opens state for one upstream and model with the proxy's key."""

    key: bytes
    upstream: str
    model: str

    def _mac(self, body: str) -> bytes:
        return hmac.new(self.key, (PREFIX + body).encode("ascii"), hashlib.sha256).digest()[:_MAC_BYTES]

    def _verified(self, signed: str, body: str, mac: str, what: str) -> dict[str, Any] | None:
        """The payload ``body`` when ``mac`` is this key's for ``signed``; None, logged, otherwise."""
        try:
            genuine = hmac.compare_digest(_unb64(mac), self._mac(signed))
            data = orjson.loads(_unb64(body)) if genuine else None
        except (ValueError, orjson.JSONDecodeError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("s"), dict):
            log.warning("%s that this proxy did not seal (forged, altered or another key) is ignored", what)
            return None
        return data

    def _payload(self, what: str, **fields: Any) -> str | None:
        """The payload for ``fields``, bound to this upstream and model; None when over ``MAX_STATE``."""
        payload = orjson.dumps({"u": self.upstream, "m": self.model, **fields})
        if len(payload) > MAX_STATE:
            log.warning("%s of %d bytes is over the carrier's %d: not sealed", what, len(payload), MAX_STATE)
            return None
        return _b64(payload)

    def seal(self, state: dict[str, Any]) -> str | None:
        """The envelope for ``state``; None when it is over ``MAX_STATE`` (logged)."""
        body = self._payload("upstream state", s=state)
        return None if body is None else f"{PREFIX}{body}.{_b64(self._mac(body))}"

    def open(self, envelope: str) -> dict[str, Any] | None:
        """The state sealed in ``envelope`` for this upstream and model, or None: not an envelope, not
        sealed by this key (logged: forged or altered), or sealed for another upstream or model."""
        if not is_sealed(envelope):
            return None
        body, _, mac = envelope[len(PREFIX) :].partition(".")
        data = self._verified(body, body, mac, "a reasoning envelope")
        if data is None:
            return None
        if data.get("u") != self.upstream or data.get("m") != self.model:
            log.debug(
                "a reasoning envelope for %s %s is not sent to %s %s",
                data.get("u"),
                data.get("m"),
                self.upstream,
                self.model,
            )
            return None
        state: dict[str, Any] = data["s"]
        return state

    def seal_id(self, call_id: str, state: dict[str, Any]) -> str | None:
        """A tool-use id that carries ``state`` for the call the upstream named ``call_id``; None when
        over ``MAX_STATE`` (logged)."""
        body = self._payload("tool call state", i=call_id, s=state)
        return None if body is None else f"{ID_PREFIX}{body}{_b64(self._mac(ID_PREFIX + body))}"

    def open_id(self, tool_id: str) -> tuple[str, dict[str, Any]] | None:
        """(the upstream's id, the call's state) from a sealed tool-use id for this upstream and model;
        None for any other id, forged or altered ones logged."""
        if not tool_id.startswith(ID_PREFIX) or len(tool_id) <= len(ID_PREFIX) + _MAC_CHARS:
            return None
        body, mac = tool_id[len(ID_PREFIX) : -_MAC_CHARS], tool_id[-_MAC_CHARS:]
        data = self._verified(ID_PREFIX + body, body, mac, "a tool call id")
        if data is None:
            return None
        if (
            data.get("u") != self.upstream
            or data.get("m") != self.model
            or not isinstance(data.get("i"), str)
        ):
            return None
        return data["i"], data["s"]
