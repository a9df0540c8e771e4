"""OpenAI Chat Completions, the client role, streams: IR stream events -> ``chat.completion.chunk`` SSE.

Streams end in ``data: [DONE]`` after a finish chunk, or after an ``{"error": ...}`` chunk when the
upstream failed.
"""

from __future__ import annotations

from typing import Any

import orjson

from ... import ir
from .._common import build_openai_error as build_error
from .client_response import (
    FINISH_REASONS,
    completion_id,
    created_now,
    sealed_call_id,
    thinking_state,
    usage_dict,
)


class StreamEncoder:
    """IR stream events -> ``chat.completion.chunk`` SSE, ending in ``data: [DONE]`` (O2A-S01).

    Tool calls are numbered among tool blocks only (O2A-S02); a tool with no argument deltas still
    gets ``"{}"`` (O2A-S04); thinking travels as ``delta.reasoning_content`` (O2A-S05); a failure is an
    ``{"error": ...}`` chunk followed by ``[DONE]`` (O2A-S07); a finish chunk always precedes ``[DONE]``
    otherwise (O2A-S09).
    """

    def __init__(self, ctx: ir.Context) -> None:
        self._ctx = ctx
        self._prefix = b""
        self._started = False
        self._stopped = False
        self._tools: dict[int, list[Any]] = {}  # block index -> [tool call index, arguments sent?]
        self._calls = 0  # tool calls numbered so far: a block index an upstream reuses is a new call
        self._json_blocks: dict[int, bool] = {}  # answer-tool block index -> content sent?
        self._usage = ir.Usage()
        self._finish: str | None = None
        self._thinking: list[dict[str, Any]] = []  # thinking blocks, for the first call's id to carry

    def _head(self, source_id: str | None) -> None:
        head = {
            "id": completion_id(source_id),
            "object": "chat.completion.chunk",
            "created": created_now(),
            "model": self._ctx.client_model,
        }
        self._prefix = orjson.dumps(head)[:-1] + b',"choices":'  # every chunk repeats id, created, model

    def _chunk(self, delta: bytes, finish: bytes = b"null") -> bytes:
        return b'data: %b[{"index":0,"delta":%b,"finish_reason":%b}]}\n\n' % (self._prefix, delta, finish)

    def start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        if not self._prefix:
            self._head(None)
        return self._chunk(b'{"role":"assistant","content":""}')

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if self._stopped:
            return b""
        t = type(ev)
        if t is ir.TextDelta:
            assert isinstance(ev, ir.TextDelta)
            if not ev.text:
                return self.start()  # an empty delta says nothing
            return self.start() + self._chunk(b'{"content":%b}' % orjson.dumps(ev.text))
        if t is ir.InputJsonDelta:
            assert isinstance(ev, ir.InputJsonDelta)
            if not ev.partial_json:
                return b""  # O2A-S03: an empty fragment says nothing
            if ev.index in self._json_blocks:
                self._json_blocks[ev.index] = True
                return self._chunk(b'{"content":%b}' % orjson.dumps(ev.partial_json))
            tool = self._tools.get(ev.index)
            if tool is None:
                return b""
            tool[1] = True
            return self._chunk(
                b'{"tool_calls":[{"index":%d,"function":{"arguments":%b}}]}'
                % (tool[0], orjson.dumps(ev.partial_json))
            )
        return self._encode_other(ev)

    def _encode_other(self, ev: ir.StreamEvent) -> bytes:
        if isinstance(ev, ir.MessageStart):
            if not self._started:
                self._head(ev.id)
            self._usage.merge(ev.usage)
            return self.start()
        if isinstance(ev, ir.StreamError):  # no opening chunk in front of a failure
            self._stopped = True
            _, body = build_error(ev.info)
            return b"data: %b\n\ndata: [DONE]\n\n" % body
        out = self.start()
        if isinstance(ev, ir.ThinkingDelta):
            if not ev.thinking:  # Anthropic sends empty thinking deltas; they say nothing
                return out
            if self._thinking and not self._calls:
                self._thinking[-1]["t"] += ev.thinking
            return out + self._chunk(b'{"reasoning_content":%b}' % orjson.dumps(ev.thinking))
        if isinstance(ev, ir.SignatureDelta):
            if self._thinking and not self._calls:
                self._thinking[-1]["s"] = ev.signature
            return out
        if isinstance(ev, ir.BlockStart) and isinstance(
            ev.block, ir.ThinkingBlock | ir.RedactedThinkingBlock
        ):
            if self._calls == 0:  # only the blocks before the turn's first call go back with it
                self._thinking.append(thinking_state(ev.block))
            return out
        if isinstance(ev, ir.BlockStart) and isinstance(ev.block, ir.ToolUseBlock):
            if self._ctx.json_tool is not None and ev.block.name == self._ctx.json_tool:
                self._json_blocks[ev.index] = False
                return out
            self._tools[ev.index] = [self._calls, False]
            self._calls += 1
            call_id = ev.block.id
            if self._calls == 1 and self._thinking:
                call_id = sealed_call_id(call_id, self._thinking, self._ctx)
            call = {
                "index": self._tools[ev.index][0],
                "id": call_id,
                "type": "function",
                "function": {"name": ev.block.name, "arguments": ""},
            }
            return out + self._chunk(b'{"tool_calls":[%b]}' % orjson.dumps(call))
        if isinstance(ev, ir.BlockStop):
            if self._json_blocks.get(ev.index) is False:  # an empty answer object (as the whole response)
                self._json_blocks[ev.index] = True
                return out + self._chunk(b'{"content":"{}"}')
            tool = self._tools.get(ev.index)
            if tool is not None and not tool[1]:
                tool[1] = True
                return out + self._chunk(
                    b'{"tool_calls":[{"index":%d,"function":{"arguments":"{}"}}]}' % tool[0]
                )
            return out
        if isinstance(ev, ir.MessageDelta):
            self._usage.merge(ev.usage)
            finish = FINISH_REASONS.get(ev.stop_reason, "stop")
            if self._json_blocks and finish == "tool_calls" and not self._tools:
                finish = "stop"
            self._finish = finish
            return out
        if isinstance(ev, ir.MessageStop):
            return out + self._end()
        return out  # pings (an SSE comment is sent by ping() instead), signatures, text block starts

    def _end(self) -> bytes:
        self._stopped = True
        out = self._chunk(b"{}", b'"%b"' % (self._finish or "stop").encode())
        if self._ctx.include_usage:  # O2A-R26: the usage chunk has no choices
            out += b'data: %b[],"usage":%b}\n\n' % (self._prefix, orjson.dumps(usage_dict(self._usage)))
        return out + b"data: [DONE]\n\n"

    def close(self) -> bytes:
        return b""

    def ping(self) -> bytes:
        """An SSE comment: OpenAI clients skip it, proxies and load balancers see traffic."""
        return b"" if self._stopped else b": ping\n\n"
