"""OpenAI Chat Completions, the upstream role, requests: IR -> a request for an OpenAI-compatible
upstream, and the map of tool names that had to change on the way.

The message list is rebuilt turn by turn. The rules that OpenAI enforces and Anthropic does not are
repaired on the way (CONFORMANCE.md A2O-R*): tool messages come right after the assistant message that
called them, in call order; a call with no result gets a synthetic error result and a result with no
call becomes user text (decision 4, with the rule both upstream dialects share:
``_common.pair_tool_results``); images found inside tool results follow as a user message, because a
tool message carries text only. Schemas are sanitised for Gemini-class upstreams when the profile says
so (A2O-R21); tool names are made valid for OpenAI (A2O-R20).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Final

import orjson

from ... import ir
from ...carrier import ID_PREFIX, digest, foreign_call_id
from ...models import ModelFamily, family_of, openai_effort
from ...toolcalls import upstream_tool_id, wire_tool_name
from .._common import MISSING_RESULT_TEXT, orphan_result_text, pair_tool_results
from .upstream_response import REASONING_FIELDS

UPSTREAM_PATH: Final = "/chat/completions"  # relative to a base URL that includes /v1

log = logging.getLogger("rawproxy")

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


def _effort(thinking: ir.ThinkingConfig, family: ModelFamily) -> str:
    """A2O-R27: the asked effort, or a budget's bucket (claude-code-router's thresholds), on the model's
    own ``reasoning_effort`` scale (M26-04: max is xhigh on gpt-5.2, high on gpt-5.1)."""
    if thinking.effort:
        asked = thinking.effort
    elif thinking.type == "adaptive" or thinking.budget_tokens is None:
        asked = "medium"
    elif thinking.budget_tokens <= 1024:
        asked = "low"
    else:
        asked = "medium" if thinking.budget_tokens <= 8192 else "high"
    return openai_effort(asked, family)


def _response_format(schema: ir.ResponseSchema, family: ModelFamily) -> dict[str, Any]:
    """M26-07 the other way: the answer's schema as ``response_format``; a model known to take no schema
    (DeepSeek's) gets JSON mode, the nearest it has."""
    if family.protocol == "openai" and not family.json_schema:
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": schema.name, "schema": schema.schema}
    if schema.strict is not None:
        spec["strict"] = schema.strict
    return {"type": "json_schema", "json_schema": spec}


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
        self.sealed_ids: dict[str, str] = {}  # a client's sealed call id -> the upstream's own (RS-03)
        # reasoning state the turn's call ids carried: (field, text) or ("reasoning_details", [...])
        self.unshown: list[tuple[str, Any]] = []

    def _call_id(self, client_id: str) -> str:
        known = self.sealed_ids.get(client_id)
        if known is not None:
            return known
        if client_id.startswith(ID_PREFIX):  # another upstream's or model's envelope (the client switched)
            return foreign_call_id(client_id)
        return upstream_tool_id(client_id)

    def _tool_call(self, call: ir.ToolUseBlock) -> dict[str, Any]:
        """One tool call of an assistant turn; a call whose id carries its state (Gemini's thought
        signature) gets it back, under the upstream's own id (RS-03, carrier.open_id)."""
        opened = self.ctx.carrier.open_id(call.id) if self.ctx.carrier is not None else None
        if opened is not None:
            self.sealed_ids[call.id] = opened[0]
        out: dict[str, Any] = {
            "id": self._call_id(call.id),
            "type": "function",
            "function": {
                "name": wire_tool_name(call.name),
                "arguments": orjson.dumps(call.input if call.input is not None else {}).decode(),
            },
        }
        if opened is not None and isinstance(opened[1].get("x"), dict):
            out["extra_content"] = opened[1]["x"]
        state = opened[1] if opened is not None else {}
        carried = state.get("r")
        if isinstance(carried, list) and len(carried) == 2 and carried[0] in REASONING_FIELDS:
            self.unshown.append((str(carried[0]), str(carried[1])))
        if isinstance(state.get("rd"), list):  # RS-04: as it came, unchanged
            self.unshown.append(("reasoning_details", state["rd"]))
        return out

    def _settle_pending(
        self, results: dict[str, ir.ToolResultBlock]
    ) -> tuple[list[ir.ImageBlock], list[ir.ToolResultBlock]]:
        """Emit tool messages for the previous turn's calls, in call order (A2O-R12, A2O-R14). Returns
        the images their results held, and the results whose call is not in that turn (A2O-R15)."""
        if not self.pending_calls and not results:  # the common turn: no tool call to answer
            if self.held_system:
                self.out.extend(self.held_system)
                self.held_system = []
            return [], []
        turn = pair_tool_results(self.pending_calls, list(results.items()))
        answered = dict(turn.answered)
        images: list[ir.ImageBlock] = []
        for call_id in self.pending_calls:
            result = answered.pop(call_id, None)
            if result is None:
                text = MISSING_RESULT_TEXT
            else:
                text = _tool_result_text(result)
                images.extend(p for p in result.content if isinstance(p, ir.ImageBlock))
            self.out.append({"role": "tool", "tool_call_id": self._call_id(call_id), "content": text})
        self.pending_calls = []
        self.out.extend(self.held_system)
        self.held_system = []
        return images, [orphan for _, orphan in turn.orphans]

    def user(self, blocks: list[ir.Block]) -> None:
        results = {b.tool_use_id: b for b in blocks if isinstance(b, ir.ToolResultBlock)}
        images, orphans = self._settle_pending(results)
        parts: list[dict[str, Any]] = [
            {"type": "text", "text": orphan_result_text(orphan.tool_use_id, _tool_result_text(orphan))}
            for orphan in orphans
        ]
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
            message["tool_calls"] = [self._tool_call(c) for c in calls]
            self.pending_calls = [c.id for c in calls]
        thinking = [b for b in blocks if isinstance(b, ir.ThinkingBlock) and b.thinking]
        restored = [r for block in thinking for r in self._restored(block)] + self.unshown
        self.unshown = []  # carried by the turn's first call id, when thinking was off (RS-01)
        if restored:  # RS-07: the reasoning this upstream sent, in the field it came in
            for field, value in restored:
                if field == "reasoning_details":
                    message.setdefault(field, []).extend(value)
                else:
                    message[field] = message[field] + "\n" + value if field in message else value
        elif thinking and self.ctx.profile.replay_reasoning:  # A2O-R16: reasoning of unknown origin
            message["reasoning_content"] = "\n".join(b.thinking for b in thinking)
        self.out.append(message)

    def _restored(self, block: ir.ThinkingBlock) -> list[tuple[str, Any]]:
        """What a thinking block this upstream and model sent gives back, as its sealed signature says
        (RS-07): (field, text) for the field its text came in, ("reasoning_details", [...]) for the
        array that came with it (RS-04). Nothing for any other block, nor for one whose text is not what
        was sealed (logged)."""
        carrier = self.ctx.carrier
        state = carrier.open(block.signature) if carrier is not None and block.signature else None
        if state is None:
            return []
        field, details = state.get("f"), state.get("rd")
        valid_field = field in REASONING_FIELDS or (field is None and isinstance(details, list))
        if not valid_field or state.get("d") != digest(block.thinking):
            log.warning("a thinking block whose text is not what the upstream sent is not sent back")
            return []
        restored: list[tuple[str, Any]] = [(str(field), block.thinking)] if field is not None else []
        if isinstance(details, list):
            restored.append(("reasoning_details", details))
        return restored

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
    family = ctx.family or family_of(model)
    reasoning_model = family.reasoning
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
        effort = _effort(req.thinking, family)
        if profile.reasoning_param == "reasoning_effort":
            body["reasoning_effort"] = effort
        else:
            body["reasoning"] = {"effort": effort}
    if req.thinking is not None and req.thinking.enabled and profile.thinking_fields:
        body.update(_fields(profile.thinking_fields))  # RS-06: the provider's own switch
    if profile.request_fields:
        body.update(_fields(profile.request_fields))
    if req.response_schema is not None:
        body["response_format"] = _response_format(req.response_schema, family)
    if req.user_id and profile.forward_user:
        body["user"] = req.user_id[:64]
    if req.stream:
        body["stream"] = True
        if profile.stream_usage:
            body["stream_options"] = {"include_usage": True}
    return UPSTREAM_PATH, orjson.dumps(body)


@functools.lru_cache(maxsize=32)
def _fields(text: str) -> dict[str, Any]:
    """A profile's extra top-level fields, parsed once per text (a frozen profile holds JSON text, not a
    dict); the caller copies them into the body with ``update``, and never changes a nested value."""
    fields: dict[str, Any] = orjson.loads(text)
    return fields


def json_tool(req: ir.Request, ctx: ir.Context) -> str | None:
    """Never a tool: an OpenAI-compatible upstream takes the answer's schema as ``response_format``."""
    return None


def tool_name_map(req: ir.Request) -> dict[str, str]:
    """Upstream wire name -> client name, for every name that had to change (A2O-R20)."""
    names = {tool.name for tool in req.tools}
    for message in req.messages:
        names.update(b.name for b in message.content if isinstance(b, ir.ToolUseBlock))
    return {wire: name for name in names if (wire := wire_tool_name(name)) != name}
