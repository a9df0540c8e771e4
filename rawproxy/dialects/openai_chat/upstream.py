"""OpenAI Chat Completions, the upstream role: IR -> a request for an OpenAI-compatible upstream, and its
answers (errors, whole completions, chunk streams) -> IR.

Requests: the message list is rebuilt turn by turn. The rules that OpenAI enforces and Anthropic does not
are repaired on the way (CONFORMANCE.md A2O-R*): tool messages come right after the assistant message
that called them, in call order; a call with no result gets a synthetic error result and a result with no
call becomes user text (decision 4); images found inside tool results follow as a user message, because a
tool message carries text only.

Streams: ``StreamDecoder`` is a small state machine over chunks. It opens a block lazily when content of
a new kind arrives, maps each ``tool_calls[i].index`` to a block of its own, starts a tool block as soon
as its name is known (a streamed tool call is as fast as streamed text), holds the arguments of a second
call while the first is still open (blocks cannot interleave), and ends with ``message_delta`` once usage
is known or the stream says ``[DONE]``. A stream that stops without a finish reason ends in an error
event, never in a fake ``end_turn`` (A2O-S13).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import orjson

from ... import ir
from ...errors import UpstreamError, UpstreamProtocolError
from ...profiles import is_reasoning_model
from ...sse import SSEEvent
from ...toolcalls import client_tool_id, parse_arguments, upstream_tool_id, wire_tool_name

UPSTREAM_PATH: Final = "/chat/completions"  # relative to a base URL that includes /v1
MISSING_RESULT_TEXT: Final = "no result was recorded for this tool call"

log = logging.getLogger("rawproxy")

# ------------------------------------------------------------------------------- request (IR -> wire)

_GEMINI_DROPPED_KEYS = frozenset(
    {
        "$schema",
        "additionalProperties",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "propertyNames",
        "const",
        "$id",
    }
)


def sanitize_schema(schema: Any) -> Any:
    """Remove JSON Schema keywords that Gemini-class upstreams reject (A2O-R21)."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key in _GEMINI_DROPPED_KEYS:
                continue
            if key == "format" and value not in ("enum", "date-time"):
                continue
            out[key] = (
                sanitize_schema(value)
                if key != "properties"
                else {k: sanitize_schema(v) for k, v in value.items()}
            )
        return out
    if isinstance(schema, list):
        return [sanitize_schema(v) for v in schema]
    return schema


def _effort(thinking: ir.ThinkingConfig) -> str | None:
    """A2O-R27: a budget becomes a reasoning effort bucket (claude-code-router's thresholds)."""
    if thinking.effort:
        return {"max": "high", "xhigh": "high"}.get(thinking.effort, thinking.effort)
    if thinking.type == "adaptive":
        return "medium"
    if thinking.budget_tokens is None:
        return "medium"
    if thinking.budget_tokens <= 1024:
        return "low"
    return "medium" if thinking.budget_tokens <= 8192 else "high"


def _image_part(block: ir.ImageBlock) -> dict[str, Any]:
    url = block.url if block.url is not None else f"data:{block.media_type};base64,{block.data}"
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: ir.DocumentBlock, ctx: ir.Context) -> dict[str, Any]:
    title = block.title or "document"
    if block.text is not None:
        return {"type": "text", "text": f"Document: {title}\n{block.text}"}
    if block.url is not None:
        return {"type": "text", "text": f"Document: {title} ({block.url})"}
    if ctx.profile.documents == "file":
        media = block.media_type or "application/pdf"
        return {
            "type": "file",
            "file": {"filename": f"{title}.pdf", "file_data": f"data:{media};base64,{block.data}"},
        }
    return {
        "type": "text",
        "text": f"[document {title!r} ({block.media_type}) omitted: this upstream takes no files]",
    }


def _user_parts(blocks: list[Any], ctx: ir.Context) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, ir.TextBlock):
            if block.text.strip():  # empty and whitespace-only text is rejected by strict upstreams (A2O-R03)
                parts.append({"type": "text", "text": block.text})
        elif isinstance(block, ir.ImageBlock):
            parts.append(_image_part(block))
        elif isinstance(block, ir.DocumentBlock):
            parts.append(_document_part(block, ctx))
    return parts


def _content(parts: list[dict[str, Any]], ctx: ir.Context) -> str | list[dict[str, Any]]:
    """A single text part is sent as a plain string, which every backend accepts (A2O-R04); under a
    ``string_content`` profile (DeepSeek) so is any text-only list, joined by blank lines."""
    if len(parts) == 1 and parts[0]["type"] == "text":
        text: str = parts[0]["text"]
        return text
    if ctx.profile.string_content and all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _tool_result_text(block: ir.ToolResultBlock) -> str:
    texts: list[str] = []
    for part in block.content:
        text = part.text if isinstance(part, ir.TextBlock | ir.DocumentBlock) else None
        if text is not None:
            texts.append(text)
    return "\n".join(texts)


class _MessageBuilder:
    """Rebuilds the conversation for an OpenAI upstream, one IR message at a time."""

    def __init__(self, ctx: ir.Context) -> None:
        self.ctx = ctx
        self.out: list[dict[str, Any]] = []
        self.pending_calls: list[str] = []  # client ids of the last assistant turn's tool calls
        self.held_system: list[dict[str, Any]] = []  # system messages waiting for those results
        self.merge_next_user = False

    def _settle_pending(self, results: dict[str, ir.ToolResultBlock]) -> list[ir.ImageBlock]:
        """Emit tool messages for the previous turn's calls, in call order (A2O-R12, A2O-R14)."""
        images: list[ir.ImageBlock] = []
        for call_id in self.pending_calls:
            result = results.pop(call_id, None)
            if result is None:
                log.warning("tool call %s has no result; sending a synthetic error result", call_id)
                text = MISSING_RESULT_TEXT
            else:
                text = _tool_result_text(result)
                images.extend(p for p in result.content if isinstance(p, ir.ImageBlock))
            self.out.append({"role": "tool", "tool_call_id": upstream_tool_id(call_id), "content": text})
        self.pending_calls = []
        self.out.extend(self.held_system)
        self.held_system = []
        return images

    def user(self, blocks: list[ir.Block]) -> None:
        results = {b.tool_use_id: b for b in blocks if isinstance(b, ir.ToolResultBlock)}
        images = self._settle_pending(results)
        parts: list[dict[str, Any]] = []
        for orphan in results.values():  # results whose call is not in the previous turn (A2O-R15)
            log.warning("tool result %s matches no tool call; sending it as user text", orphan.tool_use_id)
            parts.append(
                {"type": "text", "text": f"[tool result {orphan.tool_use_id}] {_tool_result_text(orphan)}"}
            )
        if images:  # A2O-R07: tool messages carry text only, so the images follow as user content
            parts.append({"type": "text", "text": "(images returned by the tool calls above)"})
            parts.extend(_image_part(image) for image in images)
        parts.extend(_user_parts(blocks, self.ctx))
        if not parts:
            return
        last = self.out[-1] if self.out else None
        if (
            last is not None
            and last["role"] == "user"
            and (self.merge_next_user or self.ctx.profile.merge_user_turns)
        ):
            previous = last["content"]
            merged = ([{"type": "text", "text": previous}] if isinstance(previous, str) else previous) + parts
            last["content"] = _content(merged, self.ctx)
        else:
            self.out.append({"role": "user", "content": _content(parts, self.ctx)})
        self.merge_next_user = False

    def assistant(self, blocks: list[ir.Block]) -> None:
        self._settle_pending({})
        texts = [b.text for b in blocks if isinstance(b, ir.TextBlock) and b.text.strip()]
        calls = [b for b in blocks if isinstance(b, ir.ToolUseBlock)]
        message: dict[str, Any] = {"role": "assistant"}
        if texts:
            message["content"] = "\n".join(texts)
        elif calls:
            message["content"] = None if self.ctx.profile.empty_assistant_content == "null" else ""
        else:
            # Only thinking (or nothing) was left after stripping (A2O-R34): drop the turn and merge the
            # user turns around it, rather than send an empty assistant message.
            self.merge_next_user = True
            return
        if calls:
            message["tool_calls"] = [
                {
                    "id": upstream_tool_id(c.id),
                    "type": "function",
                    "function": {
                        "name": wire_tool_name(c.name),
                        "arguments": orjson.dumps(c.input if c.input is not None else {}).decode(),
                    },
                }
                for c in calls
            ]
            self.pending_calls = [c.id for c in calls]
        if self.ctx.profile.replay_reasoning:  # A2O-R16, DeepSeek thinking with tools
            thoughts = [b.thinking for b in blocks if isinstance(b, ir.ThinkingBlock) and b.thinking]
            if thoughts:
                message["reasoning_content"] = "\n".join(thoughts)
        self.out.append(message)

    def system(self, blocks: list[ir.Block]) -> None:
        # A system message inside `messages` (Claude Code puts the working directory there): in place,
        # unless tool calls await their results, which must come first: then right after them.
        text = "\n\n".join(b.text for b in blocks if isinstance(b, ir.TextBlock) and b.text.strip())
        if text:
            message = {"role": "system", "content": text}
            if self.pending_calls:
                self.held_system.append(message)
            else:
                self.out.append(message)

    def finish(self) -> list[dict[str, Any]]:
        self._settle_pending({})
        return self.out


def build_messages(req: ir.Request, ctx: ir.Context) -> list[dict[str, Any]]:
    builder = _MessageBuilder(ctx)
    system = "\n\n".join(b.text for b in req.system if b.text.strip())  # A2O-R02: one message, "\n\n"
    if system:
        builder.out.append({"role": "system", "content": system})
    for message in req.messages:
        getattr(builder, message.role)(message.content)
    return builder.finish()


_DROPPED_SERVER_TOOLS: set[str] = set()


def _tools(req: ir.Request, ctx: ir.Context) -> list[dict[str, Any]]:
    tools = []
    for tool in req.tools:
        if tool.server_type is not None:
            # Anthropic server tools are not functions the model can call here (A2O-R19). Said once a
            # process per kind: a client such as the Codex CLI sends its web search on every request.
            if tool.server_type not in _DROPPED_SERVER_TOOLS:
                _DROPPED_SERVER_TOOLS.add(tool.server_type)
                log.warning(
                    "dropping the %s tool (%s): an OpenAI-compatible upstream cannot run it",
                    tool.name,
                    tool.server_type,
                )
            continue
        schema = sanitize_schema(tool.input_schema) if ctx.profile.sanitize_schema else tool.input_schema
        function: dict[str, Any] = {"name": wire_tool_name(tool.name)}
        if tool.description:
            function["description"] = tool.description
        function["parameters"] = schema
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(choice: ir.ToolChoice) -> Any:
    if choice.type == "any":
        return "required"
    if choice.type == "tool" and choice.name:
        return {"type": "function", "function": {"name": wire_tool_name(choice.name)}}
    return "none" if choice.type == "none" else "auto"


def build_request(req: ir.Request, ctx: ir.Context) -> tuple[str, bytes]:
    """IR -> (path relative to the base URL, JSON body)."""
    profile = ctx.profile
    model = ctx.upstream_model
    reasoning_model = is_reasoning_model(model)
    body: dict[str, Any] = {"model": model, "messages": build_messages(req, ctx)}
    if req.max_tokens is not None:
        max_tokens = req.max_tokens
        if ctx.max_output_tokens is not None:
            max_tokens = min(max_tokens, ctx.max_output_tokens)  # clamp to the cap, never below (A2O-R24)
        key = (
            "max_completion_tokens"
            if profile.reasoning_models_use_max_completion_tokens and reasoning_model
            else "max_tokens"
        )
        body[key] = max_tokens
    if req.temperature is not None and not (
        profile.drop_temperature_for_reasoning_models and reasoning_model
    ):
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None and profile.allow_top_k:
        body["top_k"] = req.top_k
    stop = [s for s in req.stop if s]
    if stop:
        body["stop"] = stop[: profile.max_stop_sequences] if profile.max_stop_sequences else stop
    tools = _tools(req, ctx)
    if tools:
        body["tools"] = tools
        choice = req.tool_choice
        sent = {t["function"]["name"] for t in tools}
        if choice is not None and choice.type == "tool" and wire_tool_name(choice.name or "") not in sent:
            # A2O-R23: the named tool was not sent (a server tool); naming it would earn a 400.
            log.warning("tool_choice names %r, which is not sent to this upstream; using auto", choice.name)
            choice = ir.ToolChoice(type="auto", disable_parallel=choice.disable_parallel)
        if choice is not None:  # A2O-R23: never a tool_choice without tools
            body["tool_choice"] = _tool_choice(choice)
            if choice.disable_parallel:
                body["parallel_tool_calls"] = False
    wants_reasoning = req.thinking is not None and req.thinking.enabled and profile.reasoning_param != "none"
    if wants_reasoning and (reasoning_model or not profile.reasoning_effort_only_for_reasoning_models):
        assert req.thinking is not None
        effort = _effort(req.thinking)
        if profile.reasoning_param == "reasoning_effort":
            body["reasoning_effort"] = effort
        else:
            body["reasoning"] = {"effort": effort}
    if req.user_id and profile.forward_user:
        body["user"] = req.user_id[:64]
    if req.stream:
        body["stream"] = True
        if profile.stream_usage:
            body["stream_options"] = {"include_usage": True}
    return UPSTREAM_PATH, orjson.dumps(body)


def tool_name_map(req: ir.Request) -> dict[str, str]:
    """Upstream wire name -> client name, for every name that had to change (A2O-R20)."""
    names = {tool.name for tool in req.tools}
    for message in req.messages:
        names.update(b.name for b in message.content if isinstance(b, ir.ToolUseBlock))
    return {wire: name for name in names if (wire := wire_tool_name(name)) != name}


# ----------------------------------------------------------------------------- response (wire -> IR)

_FINISH_REASONS = {
    "stop": ir.StopReason.END_TURN,
    "length": ir.StopReason.MAX_TOKENS,
    "tool_calls": ir.StopReason.TOOL_USE,
    "function_call": ir.StopReason.TOOL_USE,
    "content_filter": ir.StopReason.REFUSAL,
}


def parse_usage(data: Any) -> ir.Usage | None:
    """OpenAI usage -> IR usage: cached prompt tokens are counted apart, never twice (A2O-N10)."""
    if not isinstance(data, dict):
        return None
    prompt = data.get("prompt_tokens") or 0
    details = data.get("prompt_tokens_details")
    cached = (
        (details.get("cached_tokens") if isinstance(details, dict) else None)
        or data.get("prompt_cache_hit_tokens")
        or 0
    )
    completion = data.get("completion_tokens_details")
    reasoning = completion.get("reasoning_tokens") if isinstance(completion, dict) else None
    return ir.Usage(
        input_tokens=max(int(prompt) - int(cached), 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cache_read_input_tokens=int(cached),
        reasoning_tokens=int(reasoning or 0),
    )


def _reasoning_text(message: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    details = message.get("reasoning_details")
    if isinstance(details, list):
        return "".join(d.get("text") or d.get("summary") or "" for d in details if isinstance(d, dict))
    return ""


def _stop_sequence(choice: dict[str, Any], ctx: ir.Context) -> str | None:
    """A2O-N07: only vLLM (``stop_reason``) and SGLang (``matched_stop``) say which stop matched."""
    for key in ("stop_reason", "matched_stop"):
        value = choice.get(key)
        if isinstance(value, str) and value in ctx.stop:
            return value
    return None


_THINK_TAGS = re.compile(r"^\s*<think>(.*?)</think>\s*", re.DOTALL)


def parse_response(body: bytes, ctx: ir.Context) -> ir.Response:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamProtocolError("upstream returned a response that is not JSON") from None
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        raise UpstreamError(parse_error(502, body))
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise UpstreamProtocolError("upstream response has no choices")  # A2O-N12
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[ir.Block] = []
    reasoning = _reasoning_text(message)
    text = message.get("content")
    if isinstance(text, list):  # content parts, thinking among them (Mistral's Magistral)
        pieces = content_parts(text)
        reasoning = reasoning or "".join(t for kind, t in pieces if kind == "thinking")
        text = "".join(t for kind, t in pieces if kind == "text")
    if isinstance(text, str) and ctx.profile.split_think_tags and (m := _THINK_TAGS.match(text)):
        reasoning, text = reasoning or m.group(1).strip(), text[m.end() :]
    if reasoning and ctx.thinking:  # decision 1: first, unsigned, only when the client asked for it
        content.append(ir.ThinkingBlock(thinking=reasoning, signature=None))
    if isinstance(text, str) and text:
        content.append(ir.TextBlock(text=text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(ir.TextBlock(text=refusal))
    calls = message.get("tool_calls") or []
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls = [*calls, {"id": None, "function": legacy}]
    for call in calls:
        function = call.get("function") or {}
        name = function.get("name") or ""
        content.append(
            ir.ToolUseBlock(
                id=client_tool_id(call.get("id")),
                name=ctx.tool_names.get(name, name),
                input=parse_arguments(function.get("arguments"), call.get("id") or ""),
            )
        )
    stop_reason = _FINISH_REASONS.get(str(choice.get("finish_reason")), ir.StopReason.END_TURN)
    if calls and stop_reason is ir.StopReason.END_TURN:
        stop_reason = ir.StopReason.TOOL_USE  # A2O-N03: vLLM, Ollama and SGLang say "stop" here
    if isinstance(refusal, str) and refusal:
        stop_reason = ir.StopReason.REFUSAL
    stop_sequence = _stop_sequence(choice, ctx)
    if stop_sequence is not None and stop_reason is ir.StopReason.END_TURN:
        stop_reason = ir.StopReason.STOP_SEQUENCE
    usage = parse_usage(data.get("usage")) or ir.Usage(input_tokens=ctx.input_tokens)
    return ir.Response(
        id=str(data.get("id") or ""),
        model=ctx.client_model,
        content=content,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage,
    )


# ------------------------------------------------------------------------------------------- errors

# A2O-E01 and decision 6: upstream status -> (client status, canonical type).
_STATUS_MAP: dict[int, tuple[int, ir.ErrorType]] = {
    400: (400, ir.ErrorType.INVALID_REQUEST),
    401: (401, ir.ErrorType.AUTHENTICATION),
    402: (402, ir.ErrorType.BILLING),
    403: (403, ir.ErrorType.PERMISSION),
    404: (404, ir.ErrorType.NOT_FOUND),
    408: (504, ir.ErrorType.TIMEOUT),
    409: (409, ir.ErrorType.INVALID_REQUEST),
    413: (413, ir.ErrorType.REQUEST_TOO_LARGE),
    422: (400, ir.ErrorType.INVALID_REQUEST),
    429: (429, ir.ErrorType.RATE_LIMIT),
    500: (500, ir.ErrorType.API),
    502: (502, ir.ErrorType.API),
    503: (529, ir.ErrorType.OVERLOADED),
    504: (504, ir.ErrorType.TIMEOUT),
    529: (529, ir.ErrorType.OVERLOADED),
}

_TAGS = re.compile(r"<[^>]+>")
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def map_status(status: int) -> tuple[int, ir.ErrorType]:
    if status in _STATUS_MAP:
        return _STATUS_MAP[status]
    if status >= 500:
        return status, ir.ErrorType.API
    return status, ir.ErrorType.INVALID_REQUEST


def _error_message(status: int, body: bytes) -> str:
    """The upstream's own words, from whichever error shape it uses (A2O-E02)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        for value in (err, data.get("detail"), data.get("message")):
            if isinstance(value, str) and value:
                return value
            if value is not None and not isinstance(value, str):
                return orjson.dumps(value).decode()[:2000]
    text = body.decode("utf-8", "replace").strip()
    if "<" in text and ">" in text:  # an HTML error page from a gateway
        title = _TITLE.search(text)
        text = (title.group(1) if title else _TAGS.sub(" ", text)).strip()
        text = " ".join(text.split())
    return text[:2000] or f"upstream returned HTTP {status}"


def parse_error(status: int, body: bytes) -> ir.ErrorInfo:
    client_status, etype = map_status(status)
    return ir.ErrorInfo(status=client_status, type=etype, message=_error_message(status, body))


def _stream_error(data: dict[str, Any]) -> ir.ErrorInfo:
    """An in-band error (OpenRouter chunk with ``error``, Groq ``event: error``) (A2O-S14).

    The status comes from an integer ``code`` (OpenRouter) or ``status_code`` (Groq, whose ``code`` is a
    string such as ``tool_use_failed``); without either, the upstream broke mid-stream: 502.
    """
    err = data.get("error")
    message = "upstream reported an error mid-stream"
    status = 502
    if isinstance(err, dict):
        message = str(err.get("message") or message)
        for key in ("code", "status_code", "status"):
            code = err.get(key)
            if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
                status = code
                break
    elif isinstance(err, str) and err:
        message = err
    client_status, etype = map_status(status)
    return ir.ErrorInfo(status=client_status, type=etype, message=message)


def content_parts(content: Any) -> list[tuple[str, str]]:
    """``(kind, text)`` pieces of a content value: a string, or a list of parts as Mistral sends them
    (``{"type": "text"}`` and ``{"type": "thinking", "thinking": [{"type": "text", ...}]}``)."""
    if isinstance(content, str):
        return [("text", content)] if content else []
    if not isinstance(content, list):
        return []
    pieces = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "thinking":
            inner = part.get("thinking")
            text = (
                inner
                if isinstance(inner, str)
                else "".join(
                    p.get("text", "")
                    for p in inner or ()
                    if isinstance(p, dict) and isinstance(p.get("text"), str)
                )
            )
            if text:
                pieces.append(("thinking", text))
        elif isinstance(part.get("text"), str) and part["text"]:
            pieces.append(("text", part["text"]))
    return pieces


# ------------------------------------------------------------------------------ stream (wire -> IR)


# What a chunk with a field of the wrong type raises in the code below (``"delta": 1`` -> AttributeError...).
_SHAPE_ERRORS = (AttributeError, LookupError, TypeError, ValueError)


class _Call:
    __slots__ = ("args", "block", "closed", "emitted", "id", "name", "order")

    def __init__(self, order: int) -> None:
        self.order = order
        self.id: str | None = None
        self.name: str | None = None
        self.args = ""  # everything received
        self.emitted = 0  # how much of `args` the client has seen
        self.block: int | None = None
        self.closed = False


def _call_order(call: _Call) -> int:
    return call.order


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

    # ---- block helpers

    def _close_open(self, out: list[ir.StreamEvent]) -> None:
        if self._open_kind is None:
            return
        call = self._open_call
        if call is not None:
            if self._buffer_args and call.args:  # A2O-S22: the whole, repaired arguments, before the stop
                fixed = orjson.dumps(parse_arguments(call.args, call.id or "")).decode()
                out.append(ir.InputJsonDelta(call.block or 0, fixed))
                call.emitted = len(call.args)
            elif call.emitted == 0:  # a client JSON-parses "" as an error: send the empty object
                out.append(ir.InputJsonDelta(call.block or 0, "{}"))
            call.closed = True
            self._open_call = None
        out.append(ir.BlockStop(self._next_index - 1))
        self._open_kind = None

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
            id=client_tool_id(call.id), name=self.ctx.tool_names.get(name, name), input={}
        )
        call.block = self._open("tool", block, out)
        self._unstarted -= 1
        self._open_call = call
        self._emit_args(call, out)

    def _emit_args(self, call: _Call, out: list[ir.StreamEvent]) -> None:
        if self._buffer_args or call.emitted == len(call.args):
            return
        out.append(ir.InputJsonDelta(call.block or 0, call.args[call.emitted :]))
        call.emitted = len(call.args)

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
        if call is None:
            return True
        try:
            orjson.loads(call.args)
        except orjson.JSONDecodeError:
            return False
        return True

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
        function = tc.get("function") or {}
        name = function.get("name")
        if name and isinstance(name, str) and call.name is None:
            call.name = name
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = orjson.dumps(args).decode()
        if args:
            if len(call.args) > 1 and call.args[0] == "{" and args.startswith(call.args):
                args = args[len(call.args) :]  # a cumulative snapshot: keep only what is new (A2O-S07)
            if call.closed:
                log.warning("dropping late arguments for closed tool call %s", call.id or "?")
                return
            call.args += args
            self._out_chars += len(args)
        if call is self._open_call:
            if not self._buffer_args and call.emitted < len(call.args):  # _emit_args, inline: hot
                out.append(ir.InputJsonDelta(call.block or 0, call.args[call.emitted :]))
                call.emitted = len(call.args)
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
        stop = _FINISH_REASONS.get(reason, ir.StopReason.END_TURN)
        if self._calls and stop is ir.StopReason.END_TURN:
            stop = ir.StopReason.TOOL_USE
        self._stop_sequence = _stop_sequence(choice, self.ctx)
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
                return self._fail(_stream_error(chunk), out)
            usage = chunk.get("usage")
            if usage is None and isinstance(chunk.get("x_groq"), dict):
                usage = chunk["x_groq"].get("usage")
            if usage:
                self.usage = parse_usage(usage)
            for choice in chunk.get("choices") or ():
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta") or {}
                if self.ctx.thinking:
                    reasoning = _reasoning_text(delta)
                    if reasoning:
                        self._text("thinking", reasoning, out)
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
                    return self._fail(_stream_error(chunk), out)
                if reason:
                    self._finish_reason(choice, "content_filter" if self._refused else reason, out)
            if self._finish is not None and self.usage is not None:
                self._final(out)  # usage known: no need to wait for [DONE] (A2O-S12)
        except _SHAPE_ERRORS as exc:  # a field of the wrong type: as broken as a chunk that is not JSON
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
        info = ir.ErrorInfo(status=502, type=ir.ErrorType.API, message="upstream stream ended prematurely")
        return self._fail(info, [])


def event_usage(data: Any) -> ir.Usage | None:
    """The usage a chunk (or a whole completion) reports, for the access log of a passthrough."""
    if not isinstance(data, dict):
        return None
    usage = data.get("usage")
    if usage is None and isinstance(data.get("x_groq"), dict):
        usage = data["x_groq"].get("usage")
    return parse_usage(usage)
