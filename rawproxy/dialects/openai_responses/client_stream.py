"""The Responses API, client role, streams: IR stream events -> Responses API events.

A stream sends the whole event sequence with ``sequence_number``s (the order the official ``openai``
SDK's ``responses.stream()`` accumulator checks: every output item added before its deltas and done
before the end) and always ends with ``response.completed``, ``response.incomplete`` or
``response.failed``.

A custom tool's call (CX-04) streams as a ``custom_tool_call`` item whose input comes whole when the call
ends, as one ``response.custom_tool_call_input.delta`` and ``response.custom_tool_call_input.done`` (the
SDK's ``ResponseCustomToolCallInputDeltaEvent`` and ``...DoneEvent``; Codex reads the deltas, and acts
on ``response.output_item.done``): the ``{"input": ...}`` wrapper and a code fence around the input can
only be taken off once the arguments are whole. Shell, local shell and tool search calls (CX-05) have
no deltas: their items are added, then done with the arguments.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from ... import ir
from ...ids import random_hex
from .client_request import REDACTED_PREFIX
from .client_response import (
    function_call_item,
    message_item,
    reasoning_item,
    response_object,
    status_of,
    usage_dict,
)
from .compaction import compaction_item
from .items import CALLS, call_item, new_item_id


class _Item:
    """An output item being streamed: its place, id, kind, and what its deltas have said so far."""

    __slots__ = ("call_id", "encrypted", "id", "index", "kind", "name", "parts")

    def __init__(self, index: int, item_id: str, kind: str) -> None:
        self.index = index
        self.id = item_id
        self.kind = kind  # "message", "reasoning", "function_call", "web_search_call", or a tool kind
        self.parts: list[str] = []
        self.name = ""
        self.call_id = ""
        self.encrypted: str | None = None


class StreamEncoder:
    """IR stream events -> Responses API events (``event: <type>`` and its JSON, numbered).

    One output item per content block (a run of text is one message with one ``output_text`` part);
    ``response.created`` and ``response.in_progress`` open the stream, ``response.completed`` (or
    ``response.incomplete``) ends it with the whole response, ``response.failed`` when the upstream
    failed, with what was finished until then.
    """

    def __new__(cls, ctx: ir.Context) -> StreamEncoder:
        """A compaction's stream (CX-02) is written by :class:`CompactionStreamEncoder`: chosen once
        here, so the common stream's ``encode`` never asks."""
        if cls is StreamEncoder and ctx.echo.get("compaction"):
            return super().__new__(CompactionStreamEncoder)
        return super().__new__(cls)

    def __init__(self, ctx: ir.Context) -> None:
        self._ctx = ctx
        self._seq = 0
        self._started = False
        self._stopped = False
        self._blocks: dict[int, _Item] = {}  # IR block index -> its output item
        self._done: dict[int, dict[str, Any]] = {}  # output index -> its finished item
        self._next_index = 0
        self._usage = ir.Usage()
        self._stop: ir.StopReason | None = None
        self._thinking_chars = 0

    def _event(self, kind: str, body: dict[str, Any]) -> bytes:
        body = {"type": kind, "sequence_number": self._seq, **body}
        self._seq += 1
        return b"event: %b\ndata: %b\n\n" % (kind.encode(), orjson.dumps(body))

    def start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = response_object(self._ctx, "in_progress", [], None)
        return self._event("response.created", {"response": response}) + self._event(
            "response.in_progress", {"response": response}
        )

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if self._stopped:
            return b""
        t = type(ev)
        if t is ir.TextDelta:
            assert isinstance(ev, ir.TextDelta)
            return self.start() + self._delta(ev.index, ev.text)
        if t is ir.InputJsonDelta:
            assert isinstance(ev, ir.InputJsonDelta)
            return self.start() + self._delta(ev.index, ev.partial_json)
        if isinstance(ev, ir.StreamError):
            return self._fail(ev.info)
        out = self.start()
        if isinstance(ev, ir.BlockStart):
            return out + self._open(ev.index, ev.block)
        if isinstance(ev, ir.ThinkingDelta):
            return out + self._delta(ev.index, ev.thinking)
        if isinstance(ev, ir.SignatureDelta):
            item = self._blocks.get(ev.index)
            if item is not None:
                item.encrypted = (item.encrypted or "") + ev.signature
            return out
        if isinstance(ev, ir.BlockStop):
            return out + self._close(ev.index)
        if isinstance(ev, ir.MessageStart):
            self._usage.merge(ev.usage)
            return out
        if isinstance(ev, ir.MessageDelta):
            self._usage.merge(ev.usage)
            self._stop = ev.stop_reason
            return out
        if isinstance(ev, ir.MessageStop):
            return out + self._end()
        return out  # pings: ping() sends an SSE comment instead

    # ------------------------------------------------------------------------------- items

    def _new(self, block_index: int, prefix: str, kind: str) -> _Item:
        item = _Item(
            self._next_index, new_item_id(kind) if kind in _TOOL_KINDS else prefix + random_hex(48), kind
        )
        self._next_index += 1
        self._blocks[block_index] = item
        return item

    def _open(self, index: int, block: Any) -> bytes:
        if index in self._blocks:
            return b""  # a block index opened twice: the first item stands
        json_answer = isinstance(block, ir.ToolUseBlock) and block.name == self._ctx.json_tool
        if isinstance(block, ir.TextBlock) or json_answer:
            item = self._new(index, "msg_", "message")
            added = message_item(item.id, [], "in_progress")
            part = {"type": "output_text", "text": "", "annotations": []}
            return self._event("response.output_item.added", {"output_index": item.index, "item": added}) + (
                self._event(
                    "response.content_part.added",
                    {"item_id": item.id, "output_index": item.index, "content_index": 0, "part": part},
                )
            )
        if isinstance(block, ir.ThinkingBlock | ir.RedactedThinkingBlock):
            item = self._new(index, "rs_", "reasoning")
            if isinstance(block, ir.RedactedThinkingBlock):
                item.encrypted = REDACTED_PREFIX + block.data
            elif block.signature:
                item.encrypted = block.signature
            added = {"id": item.id, "type": "reasoning", "summary": []}
            # its summary part is added with the first thinking text (none: the item has no summary)
            return self._event("response.output_item.added", {"output_index": item.index, "item": added})
        if isinstance(block, ir.ToolUseBlock):
            kind = self._ctx.echo.get("tool_kinds", {}).get(block.name)
            if kind is not None:  # a custom, shell, local shell or tool search call: its own item
                item = self._new(index, "", kind)
                item.name, item.call_id = block.name, block.id
                added = call_item(kind, item.id, item.call_id, item.name, "", "in_progress", self._ctx)
                return self._event("response.output_item.added", {"output_index": item.index, "item": added})
            item = self._new(index, "fc_", "function_call")
            item.name, item.call_id = block.name, block.id
            added = function_call_item(item.id, item.call_id, item.name, "", "in_progress", self._ctx)
            return self._event("response.output_item.added", {"output_index": item.index, "item": added})
        if isinstance(block, ir.OtherBlock) and block.type == "server_tool_use":
            item = self._new(index, "ws_", "web_search_call")
            raw_input = block.raw.get("input")
            item.name = str(raw_input.get("query") or "") if isinstance(raw_input, dict) else ""
            # ``action`` is required by the SDK's ResponseFunctionWebSearch; the query may come later
            action: dict[str, Any] = {"type": "search"} | ({"query": item.name} if item.name else {})
            added = {"id": item.id, "type": "web_search_call", "status": "in_progress", "action": action}
            return self._event("response.output_item.added", {"output_index": item.index, "item": added})
        return b""  # web search results and other server blocks: not output items of this API

    def _delta(self, index: int, text: str) -> bytes:
        item = self._blocks.get(index)
        if item is None or not text:
            return b""
        first = not item.parts
        item.parts.append(text)
        where = {"item_id": item.id, "output_index": item.index}
        if item.kind == "message":
            return self._event(
                "response.output_text.delta", {**where, "content_index": 0, "delta": text, "logprobs": []}
            )
        if item.kind == "reasoning":
            self._thinking_chars += len(text)
            out = b""
            if first:
                part = {"type": "summary_text", "text": ""}
                out = self._event(
                    "response.reasoning_summary_part.added", {**where, "summary_index": 0, "part": part}
                )
            return out + self._event(
                "response.reasoning_summary_text.delta", {**where, "summary_index": 0, "delta": text}
            )
        if item.kind == "function_call":
            return self._event("response.function_call_arguments.delta", {**where, "delta": text})
        return b""

    def _finished(self, item: _Item, status: str = "completed") -> dict[str, Any]:
        text = "".join(item.parts)
        if item.kind == "message":
            return message_item(item.id, [text], status)
        if item.kind == "reasoning":
            return reasoning_item(item.id, text, item.encrypted, self._ctx) | (
                {"status": status} if status != "completed" else {}
            )
        if item.kind == "function_call":
            return function_call_item(item.id, item.call_id, item.name, text or "{}", status, self._ctx)
        if item.kind in _TOOL_KINDS:
            return call_item(item.kind, item.id, item.call_id, item.name, text, status, self._ctx)
        return {
            "id": item.id,
            "type": "web_search_call",
            "status": status,
            "action": {"type": "search", "query": _search_query(item)},
        }

    def _close(self, index: int) -> bytes:
        item = self._blocks.pop(index, None)
        if item is None:
            return b""
        where = {"item_id": item.id, "output_index": item.index}
        text = "".join(item.parts)
        done = self._finished(item)
        out = b""
        if item.kind == "message":
            part = {"type": "output_text", "text": text, "annotations": []}
            out += self._event(
                "response.output_text.done", {**where, "content_index": 0, "text": text, "logprobs": []}
            )
            out += self._event("response.content_part.done", {**where, "content_index": 0, "part": part})
        elif item.kind == "reasoning" and text:  # a summary part was added (never for redacted thinking)
            part = {"type": "summary_text", "text": text}
            out += self._event(
                "response.reasoning_summary_text.done", {**where, "summary_index": 0, "text": text}
            )
            out += self._event(
                "response.reasoning_summary_part.done", {**where, "summary_index": 0, "part": part}
            )
        elif item.kind == "function_call":
            out += self._event("response.function_call_arguments.done", {**where, "arguments": text or "{}"})
        elif item.kind == "custom":
            if done["input"]:
                out += self._event("response.custom_tool_call_input.delta", {**where, "delta": done["input"]})
            out += self._event("response.custom_tool_call_input.done", {**where, "input": done["input"]})
        self._done[item.index] = done
        return out + self._event("response.output_item.done", {"output_index": item.index, "item": done})

    # ------------------------------------------------------------------------------ the end

    def _end(self) -> bytes:
        out = b"".join(self._close(index) for index in sorted(self._blocks))  # blocks left open: ended here
        self._stopped = True
        status, details = status_of(self._stop)
        output = [self._done[i] for i in sorted(self._done)]  # in output_index order, as they were added
        self._ctx.echo["output"] = output  # for the store of recent responses (previous_response_id)
        response = response_object(self._ctx, status, output, usage_dict(self._usage, self._thinking_chars))
        response["incomplete_details"] = details
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": response})

    def _fail(self, info: ir.ErrorInfo) -> bytes:
        """The upstream failed: ``response.failed``, with the items finished so far (those still open
        are shown incomplete), so a client never sees a stream without its end."""
        if self._stopped:
            return b""
        out = self.start()
        self._stopped = True
        items = self._done | {
            item.index: self._finished(item, "incomplete") for item in self._blocks.values()
        }
        error = {"code": _ERROR_CODES.get(info.type, "server_error"), "message": info.message}
        response = response_object(
            self._ctx,
            "failed",
            [items[i] for i in sorted(items)],
            usage_dict(self._usage, self._thinking_chars),
        )
        response["error"] = error
        return out + self._event("response.failed", {"response": response})

    def close(self) -> bytes:
        return b""

    def ping(self) -> bytes:
        """An SSE comment: clients skip it, proxies and load balancers see traffic."""
        return b"" if self._stopped else b": ping\n\n"


class CompactionStreamEncoder(StreamEncoder):
    """The stream of a compaction (CX-02): the summary's text is gathered, never shown as a message;
    at the end, exactly one ``compaction`` output item (added, done) and ``response.completed``, which
    is all Codex accepts. A failure, or an upstream that wrote no summary, is ``response.failed``."""

    def __init__(self, ctx: ir.Context) -> None:
        super().__init__(ctx)
        self._summary: list[str] = []

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if self._stopped:
            return b""
        if isinstance(ev, ir.StreamError):
            return self._fail(ev.info)
        out = self.start()
        if isinstance(ev, ir.TextDelta):
            self._summary.append(ev.text)
        elif isinstance(ev, ir.MessageStart | ir.MessageDelta):
            self._usage.merge(ev.usage)
        elif isinstance(ev, ir.MessageStop):
            return out + self._compacted()
        return out

    def _compacted(self) -> bytes:
        summary = "".join(self._summary).strip()
        if not summary:
            info = ir.ErrorInfo(
                status=502, type=ir.ErrorType.API, message="the upstream wrote no summary for the compaction"
            )
            return self._fail(info)
        self._stopped = True
        item = compaction_item(summary)
        out = self._event("response.output_item.added", {"output_index": 0, "item": item})
        out += self._event("response.output_item.done", {"output_index": 0, "item": item})
        self._ctx.echo["output"] = [item]
        response = response_object(self._ctx, "completed", [item], usage_dict(self._usage, 0))
        return out + self._event("response.completed", {"response": response})


def _search_query(item: _Item) -> str:
    """A streamed web search's query: from its input, which Anthropic streams as ``input_json_delta``
    after an empty start, else from the input its start carried."""
    if item.parts:
        try:
            value = orjson.loads("".join(item.parts))
        except orjson.JSONDecodeError:
            value = None
        query = value.get("query") if isinstance(value, dict) else None
        if isinstance(query, str):
            return query
    return item.name


_TOOL_KINDS: Final = frozenset(CALLS.values())  # the tool kinds whose calls are items of their own
_ERROR_CODES: Final = {
    ir.ErrorType.RATE_LIMIT: "rate_limit_exceeded",
    ir.ErrorType.TIMEOUT: "server_error",
    ir.ErrorType.OVERLOADED: "server_error",
    ir.ErrorType.API: "server_error",
    ir.ErrorType.INVALID_REQUEST: "invalid_prompt",
}
