"""OpenAI Chat Completions, the client role: an OpenAI client's request -> IR, and IR -> its answer.

Requests are validated as they are parsed (a ``ClientError`` naming the field, in OpenAI's error shape).
What Anthropic cannot do is refused with a 400 that says why (``n > 1``, logprobs, audio), never
silently dropped (decision 8); parameters with no Anthropic meaning (penalties, seed...) are dropped.
``response_format`` json_schema travels as a forced tool whose input is shown as the message content.

Answers repeat the client's model name; usage counts cached prompt tokens in ``prompt_tokens`` and apart
in ``prompt_tokens_details.cached_tokens`` (O2A-N05). Streams end in ``data: [DONE]`` after a finish
chunk, or after an ``{"error": ...}`` chunk when the upstream failed.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import time
from typing import Any, Final

import orjson

from ... import ir
from ...errors import ClientError
from ...ids import random_hex
from ...toolcalls import parse_arguments

log = logging.getLogger("rawproxy")

_OPENAI_ERROR_CODES = {
    ir.ErrorType.RATE_LIMIT: "rate_limit_exceeded",
    ir.ErrorType.AUTHENTICATION: "invalid_api_key",
    ir.ErrorType.NOT_FOUND: "not_found",
    ir.ErrorType.REQUEST_TOO_LARGE: "request_too_large",
}


def build_error(err: ir.ErrorInfo) -> tuple[int, bytes]:
    """OpenAI's error shape; Anthropic's 529 becomes 503, which OpenAI clients know (decision 6)."""
    status = 503 if err.status == 529 else err.status
    body = {
        "error": {
            "message": err.message,
            "type": err.type.value,
            "param": None,
            "code": _OPENAI_ERROR_CODES.get(err.type),
        }
    }
    return status, orjson.dumps(body)


def created_now() -> int:
    return int(time.time())


# ========================================================================= client role: OpenAI -> IR

JSON_TOOL_NAME: Final = "json_answer"
JSON_OBJECT_INSTRUCTION: Final = "Respond with a single valid JSON object and nothing else."
# reasoning_effort -> thinking budget (LiteLLM's defaults; minimal is Anthropic's floor).
EFFORT_BUDGETS: Final = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192}
IMAGE_MEDIA_TYPES: Final = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_DATA_URL = re.compile(r"^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$", re.DOTALL)
_EMAIL_OR_PHONE = re.compile(r"@|^\+?[\d\s().-]{7,}$")
# Rejected with a 400 that says why (decision 8): silently ignoring them would change the answer.
_UNSUPPORTED = {
    "logprobs": "logprobs are not available from an Anthropic upstream",
    "top_logprobs": "logprobs are not available from an Anthropic upstream",
    "audio": "audio output is not available from an Anthropic upstream",
}


_MAX_NESTING: Final = 254  # the deepest orjson serialises


def _shown(value: Any, *, quoted: bool = True) -> str:
    """A client value in an error message, cut short: an answer never echoes megabytes back."""
    text = repr(value) if quoted else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _image_block(url: Any, where: str) -> ir.ImageBlock:
    if not isinstance(url, str) or not url:
        raise ClientError(f"{where}.image_url.url: expected a URL")
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise ClientError(f"{where}.image_url.url: a data URL must be base64 (data:<type>;base64,...)")
        media_type = match.group(1).lower()
        if media_type not in IMAGE_MEDIA_TYPES:
            raise ClientError(
                f"{where}: image type {_shown(media_type, quoted=False)} is not supported (png, jpeg, gif or webp)"
            )
        return ir.ImageBlock(media_type=media_type, data=match.group(2))
    return ir.ImageBlock(url=url)  # O2A-R08: Anthropic fetches http(s) images itself


def _file_block(part: dict[str, Any], where: str) -> ir.DocumentBlock:
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    assert isinstance(file, dict)
    data = file.get("file_data")
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if match is None:
        raise ClientError(
            f"{where}.file: only inline file_data (a base64 data URL) is supported, not file ids"
        )
    name = file.get("filename")
    title = name.rsplit(".", 1)[0] if isinstance(name, str) and name else None
    media_type = match.group(1).lower()
    if media_type == "application/pdf":
        return ir.DocumentBlock(media_type=media_type, data=match.group(2), title=title)
    if media_type.startswith("text/"):  # Anthropic takes plain text documents as text, not base64
        try:
            text = base64.b64decode(match.group(2), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ClientError(f"{where}.file: file_data is not base64-encoded UTF-8 text") from None
        return ir.DocumentBlock(media_type="text/plain", text=text, title=title)
    raise ClientError(
        f"{where}.file: {_shown(media_type, quoted=False)} files are not supported (PDF or text only)"
    )


def _parse_parts(content: Any, where: str) -> list[ir.Block]:
    if content is None:
        return []
    if isinstance(content, str):
        return [ir.TextBlock(text=content)]
    if not isinstance(content, list):
        raise ClientError(f"{where}.content: expected a string or a list of parts")
    blocks: list[ir.Block] = []
    for i, part in enumerate(content):
        pwhere = f"{where}.content[{i}]"
        if not isinstance(part, dict):
            raise ClientError(f"{pwhere}: expected an object")
        kind = part.get("type")
        if kind in ("text", "input_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise ClientError(f"{pwhere}.text: expected a string")
            cache = part.get("cache_control")  # LiteLLM's extension, passed through (O2A-R29)
            blocks.append(ir.TextBlock(text=text, cache_control=cache if isinstance(cache, dict) else None))
        elif kind == "image_url":
            image = part.get("image_url")
            blocks.append(_image_block(image.get("url") if isinstance(image, dict) else image, pwhere))
        elif kind == "file":
            blocks.append(_file_block(part, pwhere))
        elif kind == "refusal":
            blocks.append(ir.TextBlock(text=str(part.get("refusal") or "")))
        elif kind == "input_audio":
            raise ClientError(f"{pwhere}: audio input is not supported by an Anthropic upstream")
        else:
            raise ClientError(f"{pwhere}.type: unsupported content part {_shown(kind)}")
    return blocks


def _parse_tool_calls(calls: Any, where: str) -> list[ir.Block]:
    if not isinstance(calls, list):
        raise ClientError(f"{where}.tool_calls: expected a list")
    blocks: list[ir.Block] = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ClientError(f"{where}.tool_calls[{i}].function.name: field required")
        call_id = str(call.get("id") or f"call_{i}")
        arguments = function.get("arguments")
        tool_input = parse_arguments(arguments, call_id)
        if isinstance(arguments, str) and arguments.count("[") + arguments.count("{") > _MAX_NESTING:
            # JSON inside a string may nest deeper than orjson writes back (254 levels); the body's
            # own nesting is caught where it fails (App.handle), this is only seen once parsed.
            try:
                orjson.dumps(tool_input)
            except orjson.JSONEncodeError:
                where_args = f"{where}.tool_calls[{i}].function.arguments"
                raise ClientError(f"{where_args}: nests deeper than {_MAX_NESTING} levels") from None
        blocks.append(ir.ToolUseBlock(id=call_id, name=function["name"], input=tool_input))
    return blocks


def _parse_chat_messages(value: Any) -> list[ir.Message]:
    if not isinstance(value, list) or not value:
        raise ClientError("messages: field required (a non-empty list)")
    out: list[ir.Message] = []
    for i, raw in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(raw, dict):
            raise ClientError(f"{where}: expected an object")
        role = raw.get("role")
        content = raw.get("content")
        if role in ("system", "developer"):
            out.append(ir.Message(role="system", content=_parse_parts(content, where)))
        elif role == "user":
            blocks = _parse_parts(content, where)
            if (
                out
                and out[-1].role == "user"
                and any(isinstance(b, ir.ToolResultBlock) for b in out[-1].content)
            ):
                out[-1].content.extend(blocks)  # text after tool results joins their turn (O2A-R13)
            else:
                out.append(ir.Message(role="user", content=blocks))
        elif role == "assistant":
            blocks = _parse_parts(content, where)
            if raw.get("tool_calls"):
                blocks += _parse_tool_calls(raw["tool_calls"], where)
            out.append(ir.Message(role="assistant", content=blocks))
        elif role in ("tool", "function"):
            call_id = raw.get("tool_call_id") if role == "tool" else raw.get("name")
            if not isinstance(call_id, str) or not call_id:
                raise ClientError(f"{where}.tool_call_id: field required")
            parts = [
                b
                for b in _parse_parts(content, where)
                if isinstance(b, ir.TextBlock | ir.ImageBlock | ir.DocumentBlock)
            ]
            result = ir.ToolResultBlock(tool_use_id=call_id, content=parts)
            if (
                out
                and out[-1].role == "user"
                and all(isinstance(b, ir.ToolResultBlock) for b in out[-1].content)
            ):
                out[-1].content.append(result)  # consecutive tool messages: one user turn (O2A-R13)
            else:
                out.append(ir.Message(role="user", content=[result]))
        else:
            raise ClientError(f"{where}.role: unknown role {_shown(role)}")
    return out


def tool_schema(schema: Any, where: str) -> dict[str, Any]:
    """A function tool's parameters as the input schema both upstreams take: none is an empty object;
    a top-level oneOf, anyOf or allOf is refused, as Anthropic refuses it (O2A-R16)."""
    if schema is None:
        return {"type": "object", "properties": {}}
    if not isinstance(schema, dict):
        raise ClientError(f"{where}: expected an object")
    if any(key in schema for key in ("oneOf", "anyOf", "allOf")):
        raise ClientError(f"{where}: oneOf, anyOf and allOf are not supported at the top level")
    return schema


def _parse_chat_tools(value: Any) -> list[ir.Tool]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ClientError("tools: expected a list")
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else None
            raise ClientError(f"tools[{i}].type: only function tools are supported, got {_shown(kind)}")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ClientError(f"tools[{i}].function.name: field required")
        schema = tool_schema(function.get("parameters"), f"tools[{i}].function.parameters")
        description = function.get("description")
        tools.append(
            ir.Tool(
                name=function["name"],
                description=description if isinstance(description, str) else None,
                input_schema=schema,
            )
        )
    return tools


def _parse_chat_tool_choice(value: Any, parallel: Any) -> ir.ToolChoice | None:
    disable_parallel = parallel is False  # O2A-R17
    if value is None:
        return ir.ToolChoice(type="auto", disable_parallel=True) if disable_parallel else None
    if value in ("auto", "required", "none"):
        kind = {"auto": "auto", "required": "any", "none": "none"}[value]
        return ir.ToolChoice(type=kind, disable_parallel=disable_parallel)  # type: ignore[arg-type]
    if (
        isinstance(value, dict)
        and isinstance(value.get("function"), dict)
        and isinstance(value["function"].get("name"), str)
    ):
        return ir.ToolChoice(type="tool", name=value["function"]["name"], disable_parallel=disable_parallel)
    raise ClientError(
        "tool_choice: expected 'auto', 'required', 'none' or {'type': 'function', 'function': {'name': ...}}"
    )


def _reasoning(effort: Any) -> ir.ThinkingConfig | None:
    """O2A-R20: ``reasoning_effort`` -> an extended-thinking budget; ``none`` turns it off."""
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in EFFORT_BUDGETS:
        raise ClientError(f"reasoning_effort: expected one of none, {', '.join(EFFORT_BUDGETS)}")
    return ir.ThinkingConfig(type="enabled", budget_tokens=EFFORT_BUDGETS[effort], effort=str(effort))


def _number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClientError(f"{key}: expected a number")
    return float(value)


def parse_request(body: bytes, *, count_tokens: bool = False) -> ir.Request:
    """Parse and validate an OpenAI Chat Completions request. Raises ClientError (400); others are bugs."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ClientError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ClientError("request body must be a JSON object")
    return parse_request_data(data, count_tokens=count_tokens)


def parse_request_data(data: dict[str, Any], *, count_tokens: bool = False) -> ir.Request:
    """:func:`parse_request` for a body that is already parsed JSON."""
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ClientError("model: expected a string")
    model = model or ""
    for key, why in _UNSUPPORTED.items():
        if data.get(key):
            raise ClientError(f"{key}: {why}")
    n = data.get("n")
    if n not in (None, 1):
        raise ClientError("n: only one choice per request is supported by an Anthropic upstream")
    messages = _parse_chat_messages(data.get("messages"))
    tools = _parse_chat_tools(data.get("tools"))
    tool_choice = _parse_chat_tool_choice(data.get("tool_choice"), data.get("parallel_tool_calls"))
    for key in ("max_completion_tokens", "max_tokens"):  # each checked: a 0 is no "none given"
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ClientError("max_completion_tokens: expected a positive integer")
    max_tokens = data.get("max_completion_tokens") or data.get("max_tokens")  # O2A-R19
    stop = data.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else None
    if (stop is not None and stops is None) or not all(isinstance(s, str) for s in stops or ()):
        raise ClientError("stop: expected a string or a list of strings")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise ClientError(f"stream: expected a boolean, got {type(stream).__name__}")
    user = data.get("user")
    json_tool = None
    response_format = data.get("response_format")
    if response_format is not None and (
        not isinstance(response_format, dict)
        or response_format.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise ClientError("response_format: expected {'type': 'text'|'json_object'|'json_schema', ...}")
    if isinstance(response_format, dict):  # O2A-R23
        kind = response_format.get("type")
        if kind == "json_schema":
            spec = (
                response_format.get("json_schema")
                if isinstance(response_format.get("json_schema"), dict)
                else {}
            )
            assert isinstance(spec, dict)
            schema: dict[str, Any] = (
                spec["schema"] if isinstance(spec.get("schema"), dict) else {"type": "object"}
            )
            json_tool = JSON_TOOL_NAME
            tools.append(
                ir.Tool(
                    name=json_tool, description="Give the answer as this tool's input.", input_schema=schema
                )
            )
            tool_choice = ir.ToolChoice(type="tool", name=json_tool)
        elif kind == "json_object":
            messages.insert(
                0, ir.Message(role="system", content=[ir.TextBlock(text=JSON_OBJECT_INSTRUCTION)])
            )
    if isinstance(data.get("web_search_options"), dict):  # O2A-R28
        tools.append(
            ir.Tool(
                name="web_search",
                server_type="web_search_20250305",
                raw={"type": "web_search_20250305", "name": "web_search"},
            )
        )
    options = data.get("stream_options")
    return ir.Request(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens,
        temperature=_number(data, "temperature"),
        top_p=_number(data, "top_p"),
        stop=stops or [],
        stream=bool(stream),
        thinking=_reasoning(data.get("reasoning_effort")),
        user_id=user
        if isinstance(user, str) and user and not _EMAIL_OR_PHONE.search(user)
        else None,  # O2A-R24
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        json_tool=json_tool,
    )


# ========================================================================= client role: IR -> OpenAI

# O2A-N04: Anthropic stop reasons -> OpenAI finish reasons.
FINISH_REASONS: Final = {
    ir.StopReason.END_TURN: "stop",
    ir.StopReason.STOP_SEQUENCE: "stop",
    ir.StopReason.MAX_TOKENS: "length",
    ir.StopReason.TOOL_USE: "tool_calls",
    ir.StopReason.REFUSAL: "content_filter",
    ir.StopReason.MODEL_CONTEXT_WINDOW_EXCEEDED: "length",
    ir.StopReason.PAUSE_TURN: "stop",
    ir.StopReason.COMPACTION: "length",
}


def usage_dict(usage: ir.Usage) -> dict[str, Any]:
    """O2A-N05: prompt tokens include the cached ones, which are also reported apart."""
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
    }


def completion_id(source_id: str | None) -> str:
    return "chatcmpl-" + (source_id.removeprefix("msg_") if source_id else random_hex(24))


def build_response(resp: ir.Response, ctx: ir.Context) -> bytes:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    finish = FINISH_REASONS.get(resp.stop_reason, "stop")
    json_answer = False
    for block in resp.content:
        if isinstance(block, ir.TextBlock):
            texts.append(block.text)
        elif isinstance(block, ir.ThinkingBlock):
            thoughts.append(block.thinking)  # O2A-N03; redacted thinking is dropped
        elif isinstance(block, ir.ToolUseBlock):
            arguments = orjson.dumps(block.input).decode()
            if ctx.json_tool is not None and block.name == ctx.json_tool:
                texts.append(arguments)  # response_format json_schema: the answer is the tool input
                json_answer = True
            else:
                calls.append(
                    {
                        "id": block.id,
                        "type": "function",
                        "function": {"name": block.name, "arguments": arguments},
                    }
                )
    if json_answer and not calls:
        finish = "stop"  # the forced answer tool is the answer, not a call to make
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    return orjson.dumps(
        {
            "id": completion_id(resp.id),
            "object": "chat.completion",
            "created": created_now(),
            "model": ctx.client_model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage_dict(resp.usage),
        }
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
            return out + self._chunk(b'{"reasoning_content":%b}' % orjson.dumps(ev.thinking))
        if isinstance(ev, ir.BlockStart) and isinstance(ev.block, ir.ToolUseBlock):
            if self._ctx.json_tool is not None and ev.block.name == self._ctx.json_tool:
                self._json_blocks[ev.index] = False
                return out
            self._tools[ev.index] = [self._calls, False]
            self._calls += 1
            call = {
                "index": self._tools[ev.index][0],
                "id": ev.block.id,
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
