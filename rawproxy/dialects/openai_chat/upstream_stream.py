"""OpenAI Chat Completions, the upstream role, streams: ``chat.completion.chunk`` SSE events -> IR events.

``StreamDecoder`` is a small state machine over chunks. It opens a block lazily when content of a new
kind arrives, maps each ``tool_calls[i].index`` to a block of its own, starts a tool block as soon as
its name is known (a streamed tool call is as fast as streamed text), holds the arguments of a second
call while the first is still open (blocks cannot interleave), and ends with ``message_delta`` once
usage is known or the stream says ``[DONE]``. A stream that stops without a finish reason ends in an
error event, never in a fake ``end_turn`` (A2O-S13).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ... import ir
from ...errors import UpstreamProtocolError
from ...sse import SSEEvent
from ...toolcalls import StreamedJson
from .._common import SHAPE_ERRORS, stream_ended_early
from .upstream_response import (
    FINISH_REASONS,
    call_id_for_client,
    call_input,
    content_parts,
    matched_stop,
    merge_details,
    parse_usage,
    reasoning_field,
    reasoning_state,
    reasoning_text,
    stream_error,
)

log = logging.getLogger("rawproxy")


class _Call:
    __slots__ = ("args", "block", "closed", "emitted", "extra", "id", "name", "order")

    def __init__(self, order: int) -> None:
        self.order = order
        self.id: str | None = None
        self.name: str | None = None
        self.args = StreamedJson()  # everything received, in pieces
        self.emitted = 0  # how many of those pieces the client has seen
        self.block: int | None = None
        self.closed = False
        self.extra: dict[str, Any] | None = None  # extra_content to give back with the call (RS-03)


def _call_order(call: _Call) -> int:
    return call.order


def _new_in_snapshot(args: str, received: str) -> str:
    """What is new in ``args`` when it repeats everything received so far (a cumulative snapshot)."""
    return args[len(received) :] if args.startswith(received) else args


class StreamDecoder:
    """OpenAI ``chat.completion.chunk`` SSE events -> IR stream events. See the module docstring."""

    def __init__(self, ctx: ir.Context) -> None:
        self.ctx = ctx
        self.usage: ir.Usage | None = None
        self._started = False
        self._next_index = 0
        self._open_kind: str | None = None  # "text" | "thinking" | "tool"
        self._open_call: _Call | None = None
        self._calls: dict[int, _Call] = {}
        self._unstarted = 0  # calls without a block yet: usually none, asked on every fragment
        self._finish: ir.StopReason | None = None
        self._stop_sequence: str | None = None
        self._done = False
        self._refused = False  # the upstream sent a refusal: the stop reason is "refusal" (A2O-N11)
        self._out_chars = 0  # for an output estimate when the upstream reports no usage
        self._buffer_args = ctx.profile.buffer_tool_args
        self._thought: list[str] = []  # the open thinking block's text, sealed at its end (RS-07)
        self._thought_field: str | None = None  # the field it came in
        self._details: list[Any] = []  # the answer's reasoning_details, merged as they come (RS-04)
        self._details_carried = 0  # how many of them a signature or a call id already carries

    # ---- block helpers

    def _close_open(self, out: list[ir.StreamEvent]) -> None:
        if self._open_kind is None:
            return
        call = self._open_call
        if call is not None:
            if self._buffer_args and call.args.size:  # A2O-S22: all of them, repaired, before the stop
                name = self.ctx.tool_names.get(call.name or "", call.name or "")
                fixed = orjson.dumps(call_input(call.args.text(), call.id or "", name, self.ctx)).decode()
                out.append(ir.InputJsonDelta(call.block or 0, fixed))
                call.emitted = len(call.args.parts)
            elif call.emitted == 0:  # a client JSON-parses "" as an error: send the empty object
                out.append(ir.InputJsonDelta(call.block or 0, "{}"))
            call.closed = True
            self._open_call = None
        elif self._open_kind == "thinking" and self._thought:
            self._seal_thought(out)
        out.append(ir.BlockStop(self._next_index - 1))
        self._open_kind = None

    def _seal_thought(self, out: list[ir.StreamEvent]) -> None:
        """The thinking block's signature: the sealed state that brings it back in its field (RS-07)."""
        details = self._details[self._details_carried :]
        signature = reasoning_state(self._thought_field, "".join(self._thought), self.ctx, details)
        if signature is not None:
            out.append(ir.SignatureDelta(self._next_index - 1, signature))
            self._details_carried = len(self._details)
        self._thought, self._thought_field = [], None

    def _open(self, kind: str, block: Any, out: list[ir.StreamEvent]) -> int:
        self._close_open(out)
        index = self._next_index
        self._next_index += 1
        self._open_kind = kind
        out.append(ir.BlockStart(index, block))
        return index

    def _start_call(self, call: _Call, out: list[ir.StreamEvent]) -> None:
        name = call.name or ""
        block = ir.ToolUseBlock(
            id=self._client_id(call),
            name=self.ctx.tool_names.get(name, name),
            input={},
        )
        call.block = self._open("tool", block, out)
        self._unstarted -= 1
        self._open_call = call
        self._emit_args(call, out)

    def _client_id(self, call: _Call) -> str:
        """The call's id for the client; the turn's first call also carries the reasoning state the
        client did not see (thinking off), for the upstream that wants it back (RS-01, RS-04)."""
        unshown: dict[str, Any] = {}
        if self._thought and not self.ctx.thinking and self._thought_field is not None:
            unshown["r"] = [self._thought_field, "".join(self._thought)]
            self._thought, self._thought_field = [], None
        if len(self._details) > self._details_carried:
            unshown["rd"] = self._details[self._details_carried :]
            self._details_carried = len(self._details)
        return call_id_for_client(call.id, call.extra, self.ctx, unshown)

    def _emit_args(self, call: _Call, out: list[ir.StreamEvent]) -> None:
        if self._buffer_args or call.emitted == len(call.args.parts):
            return
        out.append(ir.InputJsonDelta(call.block or 0, call.args.since(call.emitted)))
        call.emitted = len(call.args.parts)

    def _pending(self) -> list[_Call]:
        """Calls not started yet, in the order they first appeared (asked on every argument fragment:
        usually there are none)."""
        if not self._unstarted:
            return []
        pending = [c for c in self._calls.values() if c.block is None]
        if len(pending) > 1:
            pending.sort(key=_call_order)
        return pending

    def _open_call_complete(self) -> bool:
        call = self._open_call
        return call is None or call.args.whole()  # linear however the arguments are cut (issue 19)

    def _advance_calls(self, out: list[ir.StreamEvent]) -> None:
        """Start waiting calls whose name is known, one at a time, when nothing incomplete is open."""
        for call in self._pending():
            if call.name is None or not self._open_call_complete():
                return
            self._start_call(call, out)

    def _flush_calls(self, out: list[ir.StreamEvent]) -> None:
        """End of message: every call reaches the client, in index order, complete."""
        for call in self._pending():
            if call.name is None:
                log.warning("tool call %s never received a name", call.id or "?")
                call.name = "unknown_tool"
            self._start_call(call, out)

    # ---- chunk handling

    def _tool_delta(self, position: int, tc: dict[str, Any], out: list[ir.StreamEvent]) -> None:
        index = tc.get("index")
        if not isinstance(index, int):  # Mistral sends whole calls without an index
            tc_id = tc.get("id")
            match = next((k for k, c in self._calls.items() if tc_id and c.id == tc_id), None)
            index = (
                match
                if match is not None
                else (len(self._calls) if tc_id or not self._calls else max(self._calls))
            )
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(len(self._calls))
            self._unstarted += 1
        tc_id = tc.get("id")
        if tc_id and isinstance(tc_id, str) and call.id is None:  # kept: used again at the end
            call.id = tc_id
        extra = tc.get("extra_content")
        if isinstance(extra, dict) and call.extra is None:  # Gemini's, with the whole call
            call.extra = extra
        function = tc.get("function") or {}
        name = function.get("name")
        if name and isinstance(name, str) and call.name is None:
            call.name = name
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = orjson.dumps(args).decode()
        if args:
            if call.args.size > 1 and len(args) >= call.args.size and call.args.parts[0][0] == "{":
                args = _new_in_snapshot(args, call.args.text())  # A2O-S07
            if call.closed:
                log.warning("dropping late arguments for closed tool call %s", call.id or "?")
                return
            if args:
                call.args.append(args)
                self._out_chars += len(args)
        if call is self._open_call:
            if not self._buffer_args and call.emitted < len(call.args.parts):  # _emit_args, inline: hot
                out.append(ir.InputJsonDelta(call.block or 0, call.args.since(call.emitted)))
                call.emitted = len(call.args.parts)
            if self._unstarted and self._open_call_complete():
                self._advance_calls(out)
        elif call.block is None:
            self._advance_calls(out)

    def _text(self, kind: str, text: str, out: list[ir.StreamEvent]) -> None:
        if self._open_kind != kind:
            self._settle_calls_before_content(out)
            if kind == "text":
                self._open("text", ir.TextBlock(text=""), out)
            else:
                self._open("thinking", ir.ThinkingBlock(thinking="", signature=None), out)
        index = self._next_index - 1
        out.append(ir.TextDelta(index, text) if kind == "text" else ir.ThinkingDelta(index, text))
        self._out_chars += len(text)

    def _settle_calls_before_content(self, out: list[ir.StreamEvent]) -> None:
        if self._open_kind == "tool" and self._pending():
            self._flush_calls(out)

    def _finish_reason(self, choice: dict[str, Any], reason: str, out: list[ir.StreamEvent]) -> None:
        if self._finish is not None:
            return  # a second finish_reason (A2O-S21)
        self._flush_calls(out)
        self._close_open(out)
        stop = FINISH_REASONS.get(reason, ir.StopReason.END_TURN)
        if self._calls and stop is ir.StopReason.END_TURN:
            stop = ir.StopReason.TOOL_USE
        self._stop_sequence = matched_stop(choice, self.ctx)
        if self._stop_sequence is not None and stop is ir.StopReason.END_TURN:
            stop = ir.StopReason.STOP_SEQUENCE
        self._finish = stop

    def _final(self, out: list[ir.StreamEvent]) -> None:
        # Content that came after the finish reason (before usage or [DONE]) opened a block again: it
        # ends before message_delta, as every block must.
        self._flush_calls(out)
        self._close_open(out)
        usage = self.usage or ir.Usage(
            input_tokens=self.ctx.input_tokens, output_tokens=(self._out_chars + 3) // 4
        )
        out.append(ir.MessageDelta(self._finish or ir.StopReason.END_TURN, self._stop_sequence, usage))
        out.append(ir.MessageStop())
        self._done = True

    def _fail(self, info: ir.ErrorInfo, out: list[ir.StreamEvent]) -> list[ir.StreamEvent]:
        # The open block stays open: a StreamError ends the message where it stands. How a client
        # dialect shows that is the encoder's business (see anthropic_messages.StreamEncoder).
        out.append(ir.StreamError(info))
        self._done = True
        return out

    def feed(self, event: SSEEvent) -> list[ir.StreamEvent]:
        """One SSE event -> IR events. Raises UpstreamProtocolError on a chunk that is not JSON, or whose
        fields have the wrong types (``"delta": "x"``, ``"prompt_tokens": "many"``...)."""
        out: list[ir.StreamEvent] = []
        if self._done:
            return out
        data = event.data
        if data == b"[DONE]":
            return self.close()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream sent a stream chunk that is not JSON") from None
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError("upstream sent a stream chunk that is not a JSON object")
        try:
            if not self._started:
                self._started = True
                out.append(
                    ir.MessageStart(str(chunk.get("id") or ""), str(chunk.get("model") or ""), ir.Usage())
                )
            if chunk.get("error") or event.event == "error":
                return self._fail(stream_error(chunk), out)
            usage = chunk.get("usage")
            if usage is None and isinstance(chunk.get("x_groq"), dict):
                usage = chunk["x_groq"].get("usage")
            if usage:
                self.usage = parse_usage(usage)
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                reasoning = reasoning_text(delta)
                details = delta.get("reasoning_details")
                if details and isinstance(details, list):
                    merge_details(self._details, details, self._details_carried)
                if reasoning:
                    if self.ctx.thinking:
                        self._text("thinking", reasoning, out)
                    self._thought.append(reasoning)  # shown or not, it may have to go back (RS-07)
                    self._thought_field = reasoning_field(delta)
                content = delta.get("content")
                if isinstance(content, str):
                    if content:
                        self._text("text", content, out)
                elif content:
                    for kind, piece in content_parts(content):
                        if kind == "text" or self.ctx.thinking:
                            self._text(kind, piece, out)
                refusal = delta.get("refusal")
                if isinstance(refusal, str) and refusal:
                    self._text("text", refusal, out)
                    self._refused = True
                calls = delta.get("tool_calls")
                if calls:
                    if self._open_kind in ("text", "thinking"):
                        self._close_open(out)
                    for position, tc in enumerate(calls):
                        if isinstance(tc, dict):
                            self._tool_delta(position, tc, out)
                legacy = delta.get("function_call")
                if isinstance(legacy, dict):
                    self._tool_delta(0, {"index": 0, "function": legacy}, out)
                reason = choice.get("finish_reason")
                if reason == "error":
                    return self._fail(stream_error(chunk), out)
                if reason:
                    self._finish_reason(choice, "content_filter" if self._refused else reason, out)
            if self._finish is not None and self.usage is not None:
                self._final(out)  # usage known: no need to wait for [DONE] (A2O-S12)
        except SHAPE_ERRORS as exc:  # a field of the wrong type: as broken as a chunk that is not JSON
            log.warning("upstream stream chunk of an unexpected shape (%s: %s)", type(exc).__name__, exc)
            raise UpstreamProtocolError("upstream sent a stream chunk of an unexpected shape") from None
        return out

    def close(self) -> list[ir.StreamEvent]:
        """``[DONE]`` or EOF. Without a finish reason, EOF is an error (A2O-S13); ``[DONE]`` is not."""
        out: list[ir.StreamEvent] = []
        if self._done:
            return out
        if not self._started:
            self._started = True
            out.append(ir.MessageStart("", "", ir.Usage()))
        if self._finish is None:
            self._flush_calls(out)
            self._close_open(out)
            self._finish = ir.StopReason.TOOL_USE if self._calls else ir.StopReason.END_TURN
        self._final(out)
        return out

    def eof(self) -> list[ir.StreamEvent]:
        """The upstream connection ended. Complete if it said how the message ended, else an error."""
        if self._done:
            return []
        if self._finish is not None:
            return self.close()
        return self._fail(stream_ended_early(), [])
