"""Anthropic Messages, the upstream role, streams: an Anthropic upstream's SSE events -> IR events,
nearly one to one."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from ... import ir
from ...errors import UpstreamProtocolError
from ...sse import SSEEvent
from .._common import SHAPE_ERRORS, stream_ended_early
from .upstream_response import STOP_REASONS, error_info, ir_block, parse_usage

log = logging.getLogger("rawproxy")


class StreamDecoder:
    """Anthropic SSE events -> IR events: nearly one to one. Keyed on the JSON ``type``, not on the
    ``event:`` line (O2A-S11); unknown event and delta types are ignored (O2A-S06). An event that is not
    JSON, or whose fields have the wrong types (``"delta": 1``), raises UpstreamProtocolError."""

    def __init__(self, ctx: ir.Context) -> None:
        self.ctx = ctx
        self.usage: ir.Usage | None = None
        self._done = False
        self._started = False

    def _merge_usage(self, data: Any) -> None:
        update = parse_usage(data)
        if update is None:
            return
        if self.usage is None:
            self.usage = update
        else:
            self.usage.merge(update)

    def feed(self, event: SSEEvent) -> list[ir.StreamEvent]:
        if self._done:
            return []
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise UpstreamProtocolError("upstream sent a stream event that is not JSON") from None
        if not isinstance(data, dict):
            return []
        try:
            kind = data.get("type")
            if kind == "content_block_delta":
                delta = data.get("delta") or {}
                index = int(data.get("index") or 0)
                dtype = delta.get("type")
                if dtype == "text_delta":
                    return [ir.TextDelta(index, str(delta.get("text") or ""))]
                if dtype == "input_json_delta":
                    return [ir.InputJsonDelta(index, str(delta.get("partial_json") or ""))]
                if dtype == "thinking_delta":
                    return [ir.ThinkingDelta(index, str(delta.get("thinking") or ""))]
                if dtype == "signature_delta":
                    return [ir.SignatureDelta(index, str(delta.get("signature") or ""))]
                return []  # citations_delta and future delta types
            if kind == "content_block_start":
                block = ir_block(data.get("content_block") or {})
                if isinstance(block, ir.ToolUseBlock):
                    block.input = {}
                elif isinstance(block, ir.ImageBlock | ir.DocumentBlock | ir.ToolResultBlock):
                    return []
                return [ir.BlockStart(int(data.get("index") or 0), block)]
            if kind == "content_block_stop":
                return [ir.BlockStop(int(data.get("index") or 0))]
            if kind == "message_start":
                message = data.get("message") or {}
                self._started = True
                self._merge_usage(message.get("usage"))
                return [
                    ir.MessageStart(
                        str(message.get("id") or ""),
                        str(message.get("model") or ""),
                        self.usage or ir.Usage(),
                    )
                ]
            if kind == "message_delta":
                delta = data.get("delta") or {}
                self._merge_usage(data.get("usage"))
                stop = STOP_REASONS.get(str(delta.get("stop_reason")), ir.StopReason.END_TURN)
                sequence = delta.get("stop_sequence")
                sequence = sequence if isinstance(sequence, str) else None
                return [ir.MessageDelta(stop, sequence, self.usage or ir.Usage())]
            if kind == "message_stop":
                self._done = True
                return [ir.MessageStop()]
            if kind == "ping":
                return [ir.Ping()]
            if kind == "error":
                self._done = True
                return [ir.StreamError(error_info(data, 500, keep_status=False))]
            return []
        except SHAPE_ERRORS as exc:  # a field of the wrong type: as broken as an event that is not JSON
            log.warning("upstream stream event of an unexpected shape (%s: %s)", type(exc).__name__, exc)
            raise UpstreamProtocolError("upstream sent a stream event of an unexpected shape") from None

    def close(self) -> list[ir.StreamEvent]:
        return self.eof()

    def eof(self) -> list[ir.StreamEvent]:
        """The upstream ended without message_stop: an error, never a silent truncation (O2A-S10)."""
        if self._done:
            return []
        self._done = True
        return [ir.StreamError(stream_ended_early())]
