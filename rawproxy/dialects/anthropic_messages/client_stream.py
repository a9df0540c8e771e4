"""Anthropic Messages, the client role, streams: IR stream events -> Anthropic SSE bytes.

The stream encoder writes each event from a byte template rather than building a dict and dumping it:
only the variable parts (text, ids) go through orjson. It opens with a made-up ``message_start`` when the
source did not provide one, ends a failed stream with ``event: error`` and no ``message_stop``, and never
emits a ``signature_delta`` it was not given (decision 1).
"""

from __future__ import annotations

from typing import Any

import orjson

from ... import ir
from .client_response import block_dict, build_error, message_id, usage_dict

_dumps = orjson.dumps


class StreamEncoder:
    """IR stream events -> Anthropic SSE bytes, one ``encode`` per event."""

    __slots__ = ("_ctx", "_open", "_started", "_stopped")

    def __init__(self, ctx: ir.Context) -> None:
        self._ctx = ctx
        self._started = False
        self._stopped = False
        self._open: int | None = None  # index of the open content block

    def _message_start(self, msg_id: str | None, usage: ir.Usage | None) -> bytes:
        self._started = True
        usage = usage or ir.Usage()
        message: dict[str, Any] = {
            "id": message_id(msg_id),
            "type": "message",
            "role": "assistant",
            "model": self._ctx.client_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                # The upstream reports input tokens only at the end: show the estimate meanwhile (A2O-S02).
                "input_tokens": usage.input_tokens or self._ctx.input_tokens,
                "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                "cache_read_input_tokens": usage.cache_read_input_tokens,
                "output_tokens": usage.output_tokens,
            },
        }
        return b'event: message_start\ndata: {"type":"message_start","message":%b}\n\n' % _dumps(message)

    def encode(self, ev: ir.StreamEvent) -> bytes:
        if self._stopped:
            return b""
        t = type(ev)
        if t is ir.TextDelta:
            assert isinstance(ev, ir.TextDelta)
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"text_delta","text":%b}}\n\n' % (ev.index, _dumps(ev.text))
            )
        if t is ir.InputJsonDelta:
            assert isinstance(ev, ir.InputJsonDelta)
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"input_json_delta","partial_json":%b}}\n\n'
                % (ev.index, _dumps(ev.partial_json))
            )
        if t is ir.MessageStart:
            assert isinstance(ev, ir.MessageStart)
            return b"" if self._started else self._message_start(ev.id, ev.usage)
        if self._started or t is ir.StreamError:
            return self._encode_other(ev)
        return self._message_start(None, None) + self._encode_other(ev)

    def start(self) -> bytes:
        """The opening frame, sent as soon as the upstream accepted the request (first byte early)."""
        return b"" if self._started else self._message_start(None, None)

    def _encode_other(self, ev: ir.StreamEvent) -> bytes:
        if isinstance(ev, ir.ThinkingDelta):
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"thinking_delta","thinking":%b}}\n\n' % (ev.index, _dumps(ev.thinking))
            )
        if isinstance(ev, ir.BlockStart):
            self._open = ev.index
            block = block_dict(ev.block)
            if isinstance(ev.block, ir.ToolUseBlock):
                block = {"type": "tool_use", "id": ev.block.id, "name": ev.block.name, "input": {}}
            elif isinstance(ev.block, ir.TextBlock):
                block = {"type": "text", "text": ""}
            elif isinstance(ev.block, ir.ThinkingBlock):
                block = {"type": "thinking", "thinking": "", "signature": ""}
            return (
                b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,'
                b'"content_block":%b}\n\n' % (ev.index, _dumps(block))
            )
        if isinstance(ev, ir.BlockStop):
            self._open = None
            return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % ev.index
        if isinstance(ev, ir.SignatureDelta):
            return (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"signature_delta","signature":%b}}\n\n' % (ev.index, _dumps(ev.signature))
            )
        if isinstance(ev, ir.MessageDelta):
            delta = {"stop_reason": ev.stop_reason.value, "stop_sequence": ev.stop_sequence}
            return b'event: message_delta\ndata: {"type":"message_delta","delta":%b,"usage":%b}\n\n' % (
                _dumps(delta),
                _dumps(usage_dict(ev.usage)),
            )
        if isinstance(ev, ir.MessageStop):
            self._stopped = True
            return b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        if isinstance(ev, ir.Ping):
            return b'event: ping\ndata: {"type":"ping"}\n\n'
        if isinstance(ev, ir.StreamError):
            # `event: error` with the open block left open, and no message_stop: what Anthropic itself
            # sends. Measured with Claude Code 2.1.330 (tests/e2e): it then retries the turn without
            # streaming. Closing the block first (as decision 2 of CONFORMANCE.md words it) makes it
            # keep the partial text as a finished turn and ask the model to resume: a broken stream
            # taken as a success, which decision 2 exists to prevent.
            self._stopped = True
            self._open = None
            _, body = build_error(ev.info)
            return b"event: error\ndata: %b\n\n" % body
        return b""

    def close(self) -> bytes:
        return b""

    def ping(self) -> bytes:
        """A keep-alive frame for a silent upstream (A2O-S16); nothing once the message has ended."""
        return b"" if self._stopped else b'event: ping\ndata: {"type":"ping"}\n\n'
