"""Load the recorded upstream transcripts of ``tests/fixtures/transcripts/`` (``HERE``).

Stdlib only, so it works on a fresh clone with nothing but Python.  See that directory's PROVENANCE.md
for where the files come from and what the wire-format quirks are.

    from tests.support.transcripts import load       # or put tests/support on sys.path
    for t in load("openai_chat"):
        if "tool-calls" in t.features and t.is_sse: ...

``dialect`` is the sub-directory name: ``"openai_chat"`` or ``"anthropic_messages"``.
``python tests/support/transcripts.py openai_chat`` prints one markdown line per file.

Feature names are detected from the recorded bodies (never guessed from file names); see
``_openai_features`` / ``_anthropic_features`` for the exact rules.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
DIALECTS = ("openai_chat", "anthropic_messages")

__all__ = ["DIALECTS", "SseEvent", "Transcript", "get", "load", "split_sse"]


@dataclass(frozen=True)
class Transcript:
    name: str  # file name without ".json"
    provider: str  # "openai", "openrouter", "groq", ..., or "anthropic"
    model: str  # request body "model" (falls back to the response's)
    stream: bool  # the *request* asked for a stream (a 401/404 answer to it is still plain JSON)
    status: int
    content_type: str  # response content-type as recorded
    request_body: dict[str, Any] = field(hash=False, compare=False, repr=False)
    body: bytes = field(repr=False)  # response body_text encoded as UTF-8
    features: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_sse(self) -> bool:
        """The response body is an SSE stream (content-type text/event-stream)."""
        return "text/event-stream" in self.content_type.lower()

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        """The parsed body of a non-SSE response."""
        return json.loads(self.body)

    def events(self) -> list[SseEvent]:
        """The SSE events of a streamed response."""
        return split_sse(self.text)

    def data_payloads(self) -> list[Any]:
        """Parsed JSON of every ``data:`` field, in order; ``[DONE]`` is returned as the string."""
        out: list[Any] = []
        for ev in self.events():
            if ev.data is None:
                continue
            out.append(ev.data if ev.data == "[DONE]" else json.loads(ev.data))
        return out


@dataclass(frozen=True)
class SseEvent:
    event: str | None
    data: str | None  # several data: lines joined with "\n"
    comments: tuple[str, ...] = ()


def split_sse(text: str) -> list[SseEvent]:
    """Split an SSE body per the WHATWG rules (LF, CRLF or CR line ends; ':' lines are comments)."""
    events: list[SseEvent] = []
    ev_name: str | None = None
    data: str | None = None
    comments: list[str] = []
    for line in re.split(r"\r\n|\n|\r", text):
        if line == "":
            if ev_name is not None or data is not None or comments:
                events.append(SseEvent(ev_name, data, tuple(comments)))
            ev_name, data, comments = None, None, []
            continue
        if line.startswith(":"):
            comments.append(line[1:])
            continue
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            ev_name = value
        elif name == "data":
            data = value if data is None else data + "\n" + value
    if ev_name is not None or data is not None or comments:
        events.append(SseEvent(ev_name, data, tuple(comments)))
    return events


# ----------------------------------------------------------------------------------------- features
def _common_features(rec: dict[str, Any], is_sse: bool) -> set[str]:
    f: set[str] = set()
    resp = rec["response"]
    text: str = resp["body_text"]
    status: int = resp["status"]
    f.add("sse" if is_sse else "json")
    if status >= 400:
        f.add(f"http-{status}")
    if "\r" in text:
        f.add("crlf")
    if any("json.dumps" in n for n in rec["source"].get("notes", [])):
        f.add("reserialized")  # body_text is json.dumps of a parsed body: not byte-exact
    return f


def _msg_features(msg: dict[str, Any], f: set[str]) -> None:
    """Features of one delta (streams) or message (non-streaming); shared field names."""
    if msg.get("content"):
        f.add("text")
    for key in ("reasoning_content", "reasoning", "reasoning_details"):
        if msg.get(key):
            f.add(key)
    if msg.get("refusal"):
        f.add("refusal")
    if msg.get("function_call"):
        f.add("function-call")
    if msg.get("annotations"):
        f.add("annotations")


def _openai_features(rec: dict[str, Any], is_sse: bool) -> set[str]:
    f = _common_features(rec, is_sse)
    req: dict[str, Any] = rec["request"]["body"]
    if req.get("tools") or req.get("functions"):
        f.add("tools-declared")
    if (req.get("stream_options") or {}).get("include_usage"):
        f.add("include-usage-requested")
    text: str = rec["response"]["body_text"]

    if not is_sse:
        try:
            body = json.loads(text)
        except ValueError:
            return f
        if not isinstance(body, dict):
            return f
        if "error" in body:
            f.add("error")
        for ch in body.get("choices") or []:
            msg = ch.get("message") or {}
            _msg_features(msg, f)
            calls = msg.get("tool_calls") or []
            if calls:
                f.add("tool-calls")
            if len(calls) > 1:
                f.add("parallel-tool-calls")
            if ch.get("finish_reason"):
                f.add(f"finish_reason:{ch['finish_reason']}")
        if body.get("usage"):
            f.add("usage")
        return f

    # tool-call key -> number of deltas that carried a non-empty arguments fragment
    arg_fragments: dict[object, int] = {}
    for ev in split_sse(text):
        if ev.comments:
            f.add("sse-comment")
        if ev.event is not None:
            f.add("event-field")
            if ev.event == "error":
                f.add("in-band-error")
        if ev.data is None:
            continue
        if ev.data == "[DONE]":
            f.add("done")
            continue
        chunk = json.loads(ev.data)
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk:
            f.add("in-band-error")
        if "choices" not in chunk:
            continue  # e.g. Groq's {"error": {...}} payload: not a chunk
        if not chunk.get("id"):
            f.add("chunk-without-id")
        if "obfuscation" in chunk:
            f.add("obfuscation")
        if "p" in chunk:
            f.add("p-padding")
        if (chunk.get("x_groq") or {}).get("usage"):
            f.add("x_groq-usage")
        choices = chunk["choices"] or []
        if not choices:
            f.add("usage-chunk" if chunk.get("usage") else "empty-choices-chunk")
        elif chunk.get("usage"):
            finishing = any(ch.get("finish_reason") for ch in choices)
            f.add("usage-with-finish" if finishing else "usage-no-finish-choices")
        for ch in choices:
            delta = ch.get("delta") or {}
            _msg_features(delta, f)
            if ch.get("finish_reason"):
                f.add(f"finish_reason:{ch['finish_reason']}")
            if ch.get("stop_reason") is not None:
                f.add("choice-stop_reason")
            for pos, tc in enumerate(delta.get("tool_calls") or []):
                f.add("tool-calls")
                if "index" not in tc:
                    f.add("tool-call-no-index")
                if tc.get("id") == "":
                    f.add("tool-call-empty-id")
                if ("id" in tc or "name" in (tc.get("function") or {})) and "type" not in tc:
                    f.add("tool-call-no-type")
                key: object = tc["index"] if "index" in tc else (tc.get("id") or pos)
                frag = (tc.get("function") or {}).get("arguments")
                arg_fragments.setdefault(key, 0)
                if frag:
                    arg_fragments[key] += 1
    if "done" not in f:
        f.add("no-done")
    if len(arg_fragments) > 1:
        f.add("parallel-tool-calls")
    if any(n > 1 for n in arg_fragments.values()):
        f.add("tool-args-split")
    elif arg_fragments:
        f.add("tool-args-whole")
    return f


def _anthropic_features(rec: dict[str, Any], is_sse: bool) -> set[str]:
    f = _common_features(rec, is_sse)
    req: dict[str, Any] = rec["request"]["body"]
    if req.get("tools"):
        f.add("tools-declared")
    if req.get("thinking"):
        f.add("thinking-requested")
    text: str = rec["response"]["body_text"]

    def block(b: dict[str, Any]) -> None:
        btype = b.get("type")
        if btype == "text" and b.get("text"):
            f.add("text")
        elif btype in ("thinking", "redacted_thinking", "tool_use"):
            f.add(str(btype).replace("_", "-"))
        elif isinstance(btype, str) and btype != "text":
            f.add("server-block")  # server_tool_use, *_tool_result, mcp_*, ...

    if not is_sse:
        try:
            body = json.loads(text)
        except ValueError:
            return f
        if isinstance(body, dict):
            if body.get("type") == "error":
                f.add("error")
                f.add(f"error-type:{(body.get('error') or {}).get('type')}")
            for b in body.get("content") or []:
                block(b)
            if body.get("stop_reason"):
                f.add(f"stop_reason:{body['stop_reason']}")
        return f

    if re.search(r" +}\s*$", text, re.M):
        f.add("space-padded-json")
    for ev in split_sse(text):
        if ev.comments:
            f.add("sse-comment")
        if ev.data is None:
            continue
        obj = json.loads(ev.data)
        etype = obj.get("type")
        if etype == "ping":
            f.add("ping")
        elif etype == "error":
            f.add("in-band-error")
        elif etype == "content_block_start":
            block(obj.get("content_block") or {})
        elif etype == "content_block_delta":
            dtype = (obj.get("delta") or {}).get("type")
            if dtype in ("input_json_delta", "signature_delta", "citations_delta"):
                f.add(str(dtype).replace("_", "-"))
            elif dtype == "text_delta" and obj["delta"].get("text"):
                f.add("text")
        elif etype == "message_delta":
            sr = (obj.get("delta") or {}).get("stop_reason")
            if sr:
                f.add(f"stop_reason:{sr}")
    return f


# --------------------------------------------------------------------------------------------- load
def _read(path: Path, dialect: str) -> Transcript:
    rec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    req_body: dict[str, Any] = rec["request"]["body"]
    resp: dict[str, Any] = rec["response"]
    content_type: str = resp["headers"].get("content-type") or ""
    is_sse = "text/event-stream" in content_type.lower()
    if dialect == "openai_chat":
        features = _openai_features(rec, is_sse)
    else:
        features = _anthropic_features(rec, is_sse)
    model = req_body.get("model")
    if not isinstance(model, str):
        model = ""
    return Transcript(
        name=path.stem,
        provider=str(rec["provider"]),
        model=model,
        stream=req_body.get("stream") is True,
        status=int(resp["status"]),
        content_type=content_type,
        request_body=req_body,
        body=str(resp["body_text"]).encode("utf-8"),
        features=frozenset(features),
    )


@functools.cache
def _load(dialect: str) -> tuple[Transcript, ...]:
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {DIALECTS}")
    return tuple(_read(p, dialect) for p in sorted((HERE / dialect).glob("*.json")))


def load(dialect: str) -> list[Transcript]:
    """Every transcript of ``dialect`` ("openai_chat" or "anthropic_messages"), sorted by name."""
    return list(_load(dialect))


def get(dialect: str, name: str) -> Transcript:
    """One transcript by file name (with or without ".json")."""
    stem = name.removesuffix(".json")
    for t in _load(dialect):
        if t.name == stem:
            return t
    raise KeyError(f"{dialect}/{name}")


def _markdown_lines(dialect: str) -> list[str]:
    lines = []
    for t in load(dialect):
        shown = sorted(x for x in t.features if x not in ("sse", "json"))
        lines.append(
            f"- `{t.name}.json`: {t.provider}, {t.model or '?'}, stream {'yes' if t.stream else 'no'}, "
            f"{t.status}; {', '.join(shown) or '-'}"
        )
    return lines


if __name__ == "__main__":
    for d in sys.argv[1:] or ["openai_chat"]:
        print("\n".join(_markdown_lines(d)))
