"""What the bench checks in every response it counts: the status, and a body complete and correct for
its dialect, with the text (or tool call) the bench upstream sent for that request.

The expected answer is :func:`canned_upstream.answer` of the request's marker kind, the function the
upstream builds its events from, so the two cannot drift apart. Per client dialect:

* Anthropic SSE: ``message_start`` first; the text reassembled from the ``text_delta`` events (or the
  tool call's name and arguments from ``tool_use`` and ``input_json_delta``) equal to the expected; a
  ``message_delta`` with the expected ``stop_reason``; ``message_stop`` the terminal event; no ``error``.
* OpenAI Chat Completions SSE: the text from ``delta.content`` (or the tool call from
  ``delta.tool_calls``) equal to the expected; one chunk with the expected ``finish_reason``; ``data:
  [DONE]`` last; no ``error``.
* Non-streamed JSON (either dialect): the message's text and stop/finish reason.

The Responses API is not in the bench (the bench upstream speaks Chat Completions and Messages only).

The client keeps the body's bytes and checks them after the response was read (for the latency rounds,
after the batch; for the throughput loop, after the measured window), never while a first token is
awaited. :meth:`Expect.check` returns None for a good response, else one line saying what is wrong;
:class:`Tally` counts the verdicts per arm, with the first failure of each.

    python bench/validate.py   # a self-test: good bodies pass, broken ones are rejected
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from canned_upstream import TOOL_NAME, answer

STOP = {("anthropic", False): "end_turn", ("anthropic", True): "tool_use"}
FINISH = {("openai", False): "stop", ("openai", True): "tool_calls"}


class Invalid(ValueError):
    """A response that is not what the request should have got."""


@dataclass(frozen=True, slots=True)
class Expect:
    """What one request's response must hold: the client's dialect, streamed or not, the text, and the
    tool call's arguments (None when the answer is text)."""

    dialect: str  # "anthropic" or "openai": what the client speaks
    stream: bool
    text: str
    tool_args: str | None = None

    def check(self, status: int, body: bytes, chunked: bool) -> str | None:
        """None when the response is right, else what is wrong with it (one line)."""
        try:
            if status != 200:
                raise Invalid(f"status {status}: {body[:160]!r}")
            data = dechunk(body) if chunked else body
            if not self.stream:
                self._whole(orjson.loads(data))
            elif self.dialect == "anthropic":
                self._anthropic(data)
            else:
                self._openai(data)
        except Invalid as exc:
            return str(exc)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            return f"malformed body: {exc!r}"
        return None

    # ------------------------------------------------------------------------------------- checks

    def _same(self, text: str, name: str | None, args: str) -> None:
        if self.tool_args is None:
            if text != self.text:
                raise Invalid(f"text {_short(text)} != expected {_short(self.text)}")
            return
        if name != TOOL_NAME:
            raise Invalid(f"tool name {name!r} != {TOOL_NAME!r}")
        try:
            same = orjson.loads(args) == orjson.loads(self.tool_args)
        except orjson.JSONDecodeError:
            same = False
        if not same:
            raise Invalid(f"tool arguments {_short(args)} != expected {_short(self.tool_args)}")

    def _whole(self, msg: Any) -> None:
        tool = self.tool_args is not None
        if self.dialect == "anthropic":
            if msg.get("type") != "message":
                raise Invalid(f"not a message: {_short(msg)}")
            text = "".join(b["text"] for b in msg["content"] if b.get("type") == "text")
            reason = msg.get("stop_reason")
            want = STOP["anthropic", tool]
        else:
            choice = msg["choices"][0]
            text = choice["message"].get("content") or ""
            reason = choice.get("finish_reason")
            want = FINISH["openai", tool]
        self._same(text, None, "")  # non-streamed answers are text (canned_upstream.answer)
        if reason != want:
            raise Invalid(f"stop reason {reason!r} != {want!r}")

    def _anthropic(self, data: bytes) -> None:
        payloads = _payloads(data)
        events = _json_list(payloads)
        types = [e.get("type") for e in events]
        if not types:
            raise Invalid("no events")
        if [
            n.decode() for n in _EVENT.findall(data)
        ] != types:  # the SDKs dispatch on the event name: each must be there
            raise Invalid(f"event names do not match the data's types ({_tail(types)})")
        if types[0] != "message_start":
            raise Invalid(f"first event {types[0]!r}, not message_start")
        if types[-1] != "message_stop":
            raise Invalid(f"terminal event {types[-1]!r}, not message_stop (events: {_tail(types)})")
        if types.count("message_stop") != 1 or types.count("message_start") != 1:
            raise Invalid(f"message_start/message_stop not once each: {_tail(types)}")
        text: list[str] = []
        args: list[str] = []
        name = None
        reason = None
        for event, kind in zip(events, types, strict=True):
            if kind == "content_block_delta":
                delta = event["delta"]
                if delta["type"] == "text_delta":
                    text.append(delta["text"])
                elif delta["type"] == "input_json_delta":
                    args.append(delta["partial_json"])
            elif kind == "content_block_start":
                block = event["content_block"]
                if block["type"] == "tool_use":
                    name = block["name"]
            elif kind == "message_delta":
                reason = event["delta"].get("stop_reason")
            elif kind == "error":
                raise Invalid(f"error event: {_short(event)}")
        self._same("".join(text), name, "".join(args))
        want = STOP["anthropic", self.tool_args is not None]
        if reason != want:
            raise Invalid(f"stop_reason {reason!r} != {want!r}")

    def _openai(self, data: bytes) -> None:
        payloads = _payloads(data)
        if not payloads or payloads[-1] != b"[DONE]":
            raise Invalid(f"the last event is not data: [DONE] ({_short(payloads[-1] if payloads else b'')})")
        if payloads.count(b"[DONE]") != 1:
            raise Invalid("data: [DONE] before the end")
        text: list[str] = []
        args: list[str] = []
        name = None
        finishes = []
        for chunk in _json_list(payloads[:-1]):
            if "error" in chunk:
                raise Invalid(f"error chunk: {_short(chunk)}")
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    text.append(delta["content"])
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") or {}
                    name = fn.get("name") or name
                    args.append(fn.get("arguments") or "")
                if choice.get("finish_reason") is not None:
                    finishes.append(choice["finish_reason"])
        self._same("".join(text), name, "".join(args))
        want = FINISH["openai", self.tool_args is not None]
        if finishes != [want]:
            raise Invalid(f"finish_reason chunks {finishes} != [{want!r}]")


_DATA = re.compile(rb"^data: ?(.*)$", re.MULTILINE)
_EVENT = re.compile(rb"^event: ?(.*)$", re.MULTILINE)


def _payloads(data: bytes) -> list[bytes]:
    """The ``data:`` of every event of an SSE body, in order (one data line an event, as every server
    under test writes them); a body that does not end an event is cut short."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if not data.endswith(b"\n\n"):
        raise Invalid(f"SSE body cut short: ends {data[-40:]!r}")
    return cast(list[bytes], _DATA.findall(data))


def _json_list(payloads: list[bytes]) -> list[Any]:
    """The events' JSON, parsed in one call (a list of them); each must be an object."""
    events = orjson.loads(b"[" + b",".join(payloads) + b"]")
    if not all(isinstance(e, dict) for e in events):
        raise Invalid("an event's data is not a JSON object")
    return cast(list[Any], events)


@dataclass(slots=True)
class Tally:
    """Responses checked and failed (no response, a wrong status, a wrong body), per arm, with the
    first failure of each arm."""

    checked: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)

    def record(self, arm: str, why: str | None, n: int = 1) -> bool:
        """Count ``n`` responses of ``arm`` with this verdict; True when they were right."""
        self.checked += n
        if why is None:
            return True
        self.failed[arm] = self.failed.get(arm, 0) + n
        self.first.setdefault(arm, why)
        return False

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def summary(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "failures": self.failures,
            "failed_by_arm": dict(self.failed),
            "first_failure_by_arm": dict(self.first),
        }


def expect(dialect: str, kind: str, stream: bool) -> Expect:
    """What the response to a request with the marker ``bench:<kind>:...`` must hold, for a client of
    ``dialect``."""
    text, args = answer(kind, stream)
    return Expect(dialect, stream, text, args)


def dechunk(raw: bytes) -> bytes:
    """A whole ``Transfer-Encoding: chunked`` body (up to and including the terminating chunk) decoded;
    :class:`Invalid` (a ValueError) when it is cut short or malformed.

    Fast path: chunk data holds no CRLF here (SSE lines end in LF, JSON escapes CR), so splitting at CRLF
    gives size, data, size, data, ..., ``0``, ``""``, ``""``, every size checked against its data. Anything
    else (a CRLF in the data, chunk extensions, a defect) takes the parse chunk by chunk."""
    parts = raw.split(b"\r\n")
    if len(parts) % 2 == 1 and parts[-3:] == [b"0", b"", b""]:
        sizes, chunks = parts[0:-3:2], parts[1:-3:2]
        try:
            if all(int(n, 16) == len(c) for n, c in zip(sizes, chunks, strict=True)):
                return b"".join(chunks)
        except ValueError:
            pass
    return _dechunk_slowly(raw)


def _dechunk_slowly(raw: bytes) -> bytes:
    out: list[bytes] = []
    pos, n = 0, len(raw)
    while True:
        eol = raw.find(b"\r\n", pos)
        if eol < 0:
            raise Invalid("chunked body cut short (no terminating chunk)")
        size = int(raw[pos:eol].split(b";")[0], 16)
        if size == 0:
            if raw[eol:] != b"\r\n\r\n":
                raise Invalid("chunked body: no end after the terminating chunk")
            return b"".join(out)
        start = eol + 2
        if start + size + 2 > n or raw[start + size : start + size + 2] != b"\r\n":
            raise Invalid("chunked body cut short (a chunk incomplete)")
        out.append(raw[start : start + size])
        pos = start + size + 2


def sse_events(data: bytes) -> list[tuple[str, bytes]]:
    """(event name, data) of each event of an SSE body; the name is the ``event:`` field or, without
    one, the data's ``type`` (empty for OpenAI chunks). A body that does not end an event is cut short."""
    data = data.replace(b"\r\n", b"\n")
    if data and not data.endswith(b"\n\n"):
        raise Invalid(f"SSE body cut short: ends {data[-40:]!r}")
    out: list[tuple[str, bytes]] = []
    for block in data.split(b"\n\n"):
        name = ""
        lines = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                lines.append(line[5:].removeprefix(b" "))
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if not lines:
            continue  # a comment, a blank
        payload = b"\n".join(lines)
        if not name and payload.startswith(b'{"type"'):
            name = str(orjson.loads(payload)["type"])
        out.append((name, payload))
    return out


def _short(v: Any, n: int = 60) -> str:
    s = repr(v)
    return s if len(s) <= n else s[: n - 5] + "...'" + f" ({len(s)} chars)"


def _tail(kinds: list[str]) -> str:
    return ", ".join(kinds[:3]) + (
        " ... " + ", ".join(kinds[-3:]) if len(kinds) > 6 else ", ".join(kinds[3:])
    )


# ---------------------------------------------------------------------------------------- self-test


def self_test() -> list[str]:
    """Each dialect's good bodies (the bench upstream's own bytes) pass, and broken ones (cut short, no
    terminal event, a token lost or changed, a wrong status) are rejected; returns what went wrong."""
    import canned_upstream as cu

    problems = []

    def want(ok: bool, label: str, e: Expect, body: bytes, chunked: bool = True, status: int = 200) -> None:
        why = e.check(status, body, chunked)
        if (why is None) != ok:
            problems.append(f"{label}: expected {'pass' if ok else 'reject'}, got {why or 'pass'}")

    def whole_body(dialect: str) -> bytes:
        return cu.WHOLE[dialect].split(b"\r\n\r\n", 1)[1]

    for dialect in ("anthropic", "openai"):
        for kind in cu.KINDS:
            e = expect(dialect, kind, True)
            body = b"".join(cu.STREAMS[dialect, kind])
            paced = b"".join(cu.PACED[dialect, kind])
            events = sse_events(dechunk(body))
            label = f"{dialect} {kind}"
            want(True, label, e, body)
            want(True, label + " paced", e, paced)
            want(True, label + " not chunked", e, dechunk(body), chunked=False)
            want(False, label + " status 502", e, body, status=502)
            want(False, label + " cut short", e, body[: len(body) // 2])
            want(False, label + " without its terminating chunk", e, body[: -len(b"0\r\n\r\n")])
            # the framing intact, the stream's last event (message_stop / [DONE]) missing
            want(False, label + " without its terminal event", e, _rechunk(events[:-1], dialect))
            # one token (text or argument fragment) lost in the middle
            middle = next(i for i in range(len(events) // 2, len(events)) if _is_token(events[i][1]))
            want(False, label + " a token lost", e, _rechunk(events[:middle] + events[middle + 1 :], dialect))
            other = "short" if kind == "stream200" else "stream200"
            want(False, f"{label} checked as {other}", expect(dialect, other, True), body)
        e = expect(dialect, "short", False)
        whole = whole_body(dialect)
        want(True, f"{dialect} non-streamed", e, whole, chunked=False)
        want(
            False,
            f"{dialect} non-streamed, text changed",
            e,
            whole.replace(b"bench", b"bunch"),
            chunked=False,
        )
        want(False, f"{dialect} non-streamed, cut short", e, whole[:-10], chunked=False)
        want(False, f"{dialect} non-streamed, a streamed body", e, b"".join(cu.STREAMS[dialect, "short"]))
    return problems


_TOKEN = re.compile(rb'"(?:text|partial_json|content|arguments)": ?"[^"]')


def _is_token(payload: bytes) -> bool:
    """A text event or a non-empty argument fragment (not the empty openers)."""
    return _TOKEN.search(payload) is not None


def _rechunk(events: list[tuple[str, bytes]], dialect: str) -> bytes:
    """SSE events back into a chunked body, one chunk each, with the terminating chunk."""
    frames = []
    for name, payload in events:
        event = (b"event: " + name.encode() + b"\n" if dialect == "anthropic" else b"") + b"data: " + payload
        frames.append(b"%x\r\n%b\n\n\r\n" % (len(event) + 2, event))
    return b"".join(frames) + b"0\r\n\r\n"


def main() -> int:
    problems = self_test()
    for p in problems:
        print("FAIL", p)
    print("validate self-test:", "ok" if not problems else f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
