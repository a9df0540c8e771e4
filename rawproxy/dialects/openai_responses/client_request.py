"""The Responses API, client role, requests: a Responses request -> IR, and its system text (``instructions``
and system and developer input items) compacted in place for a ``compact`` route.

Request mapping:
- ``instructions`` and ``system``/``developer`` messages are the system prompt; ``input`` is a string
  or a list of items: messages (``input_text``, ``input_image``, ``input_file``, ``output_text``,
  ``refusal`` parts), ``function_call``, ``function_call_output`` and ``reasoning`` items. A reasoning
  item opens the assistant turn that follows it; its ``encrypted_content`` carries an Anthropic
  thinking signature back (``anthropic-signature:`` + signature, ``anthropic-redacted:`` + data for a
  redacted block), so a turn replayed to an Anthropic upstream keeps its thinking; any other encrypted
  content is not a signature and is not sent as one.
- The Codex CLI's other items (CX-04, CX-05): ``custom_tool_call``, ``tool_search_call``,
  ``local_shell_call``, ``shell_call`` and their outputs are tool calls and results (``items``);
  ``additional_tools`` and ``tool_search_output`` items declare tools. Any other item is a 400 that names
  its type and index, never dropped unsaid; a ``web_search_call`` alone is left out (OpenAI ran that
  search: no call or result of it can be replayed to another model).
- Tools (``tools``): function tools as they are; ``namespace`` tools flattened to ``<namespace>__<name>``
  and named back in the output (``name`` and ``namespace``); custom (free-form) tools, ``local_shell``,
  ``shell`` and a client-run ``tool_search`` as functions whose calls go back as their own items; the
  hosted ``web_search`` tool becomes Anthropic's web search server tool (an OpenAI-compatible upstream
  drops it, with a warning); any other hosted tool is a 400 that names it.
- ``reasoning.effort`` is a thinking budget as for Chat Completions; ``text.format`` json_schema is the
  request's ``response_schema`` (native upstream, or a forced answer tool shown as the message text); ``max_output_tokens``,
  ``temperature``, ``top_p``, ``tool_choice``, ``parallel_tool_calls``. ``store``, ``include``,
  ``prompt_cache_key``, ``client_metadata``, ``metadata``, ``truncation`` and ``service_tier`` are
  accepted; what the answer echoes is kept in ``Context.echo``.

What Chat Completions reads the same way (content parts, tool schemas, the ``tool_choice`` words,
efforts, the answer tool) is in ``dialects._common``; tools and ``tool_choice`` are read in ``tools``,
content parts and the tool-call items beyond function calls in ``items``; the answer is built in
``client_response``, the event stream in ``client_stream``.
"""

from __future__ import annotations

import time
from typing import Any, Final

from ... import ir
from ...carrier import is_sealed
from ...errors import ClientError
from ...ids import random_hex
from ...toolcalls import parse_arguments
from .._common import (
    EFFORT_BUDGETS,
    JSON_OBJECT_INSTRUCTION,
    answer_schema,
    load_json_object,
    number,
    optional_bool,
    optional_str,
    positive_int,
    safe_user_id,
    shown,
)
from .._compact import DEFAULT_THRESHOLD, compact_messages, compact_text, role_text_length, text_length
from . import compaction, items
from .items import content_parts as _parts
from .items import result_parts
from .tools import NAMESPACE_SEPARATOR, ToolSet, allowed_tools, parse_tool_choice

# What a reasoning item's encrypted_content carries, said in it: an Anthropic thinking block's signature,
# or a redacted block's data. Anything else (OpenAI's own encrypted reasoning, say) is no signature and
# is never sent to an Anthropic upstream as one.
SIGNATURE_PREFIX: Final = "anthropic-signature:"
REDACTED_PREFIX: Final = "anthropic-redacted:"
EFFORTS: Final = EFFORT_BUDGETS  # reasoning.effort -> thinking budget: Chat Completions' table
# Items of a conversation's history that record a hosted tool's work: nothing to replay upstream.
_HISTORY_ONLY: Final = frozenset({"web_search_call"})
_UNSUPPORTED_FIELDS: Final = {
    "background": "background responses are not supported by this proxy",
    "conversation": "conversations are not supported by this proxy; send the input items",
    "prompt": "prompt templates are not supported by this proxy",
    "top_logprobs": "logprobs are not available through this proxy",
}


# =============================================================================== request -> IR


def parse_request(body: bytes, *, count_tokens: bool = False) -> ir.Request:
    return parse_request_data(load_json_object(body), count_tokens=count_tokens)


class _Conversation:
    """Input items -> IR messages: consecutive items of one turn are gathered into one message."""

    def __init__(self) -> None:
        self.messages: list[ir.Message] = []

    def _last(self, role: ir.Role) -> ir.Message:
        if self.messages and self.messages[-1].role == role:
            return self.messages[-1]
        message = ir.Message(role=role, content=[])
        self.messages.append(message)
        return message

    def message(self, item: dict[str, Any], where: str) -> None:
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            self.messages.append(ir.Message(role="system", content=_parts(content, f"{where}.content")))
        elif role == "user":
            blocks = _parts(content, f"{where}.content")
            last = self.messages[-1] if self.messages else None
            if (
                last is not None
                and last.role == "user"
                and any(isinstance(b, ir.ToolResultBlock) for b in last.content)
            ):
                last.content.extend(blocks)  # text after tool results joins their turn (as O2A-R13)
            else:
                self.messages.append(ir.Message(role="user", content=blocks))
        elif role == "assistant":
            self._last("assistant").content.extend(_parts(content, f"{where}.content"))
        else:
            raise ClientError(f"{where}.role: unknown role {shown(role)}")

    def function_call(self, item: dict[str, Any], where: str) -> None:
        name = item.get("name")
        call_id = item.get("call_id")
        if not isinstance(name, str) or not name:
            raise ClientError(f"{where}.name: field required")
        if not isinstance(call_id, str) or not call_id:
            raise ClientError(f"{where}.call_id: field required")
        namespace = item.get("namespace")
        if isinstance(namespace, str) and namespace:
            name = namespace + NAMESPACE_SEPARATOR + name
        self.call(
            ir.ToolUseBlock(id=call_id, name=name, input=parse_arguments(item.get("arguments"), call_id))
        )

    def call(self, block: ir.ToolUseBlock) -> None:
        self._last("assistant").content.append(block)

    def function_output(self, item: dict[str, Any], where: str) -> None:
        call_id = item.get("call_id")
        if not isinstance(call_id, str) or not call_id:
            raise ClientError(f"{where}.call_id: field required")
        self.result(
            ir.ToolResultBlock(
                tool_use_id=call_id, content=result_parts(item.get("output"), f"{where}.output")
            )
        )

    def result(self, result: ir.ToolResultBlock) -> None:
        last = self.messages[-1] if self.messages else None
        if (
            last is not None
            and last.role == "user"
            and all(isinstance(b, ir.ToolResultBlock) for b in last.content)
        ):
            last.content.append(result)  # parallel calls' outputs: one user turn
        else:
            self.messages.append(ir.Message(role="user", content=[result]))

    def reasoning(self, item: dict[str, Any], where: str) -> None:
        summary = item.get("summary") or []
        if not isinstance(summary, list):
            raise ClientError(f"{where}.summary: expected a list")
        texts = [str(p["text"]) for p in summary if isinstance(p, dict) and isinstance(p.get("text"), str)]
        content = item.get("content")
        if not texts and isinstance(content, list):  # the full reasoning text, sent without a summary
            texts = [
                str(p["text"]) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
        encrypted = item.get("encrypted_content")
        block: ir.Block
        if isinstance(encrypted, str) and encrypted.startswith(REDACTED_PREFIX):
            block = ir.RedactedThinkingBlock(data=encrypted[len(REDACTED_PREFIX) :])
        else:
            signature = None
            if isinstance(encrypted, str) and encrypted.startswith(SIGNATURE_PREFIX):
                signature = encrypted[len(SIGNATURE_PREFIX) :]
            elif isinstance(encrypted, str) and is_sealed(encrypted):  # an upstream's state (RS-07)
                signature = encrypted
            block = ir.ThinkingBlock(thinking="\n\n".join(texts), signature=signature)
        # A reasoning item opens the assistant turn it belongs to: a new one, after anything else.
        last = self.messages[-1] if self.messages else None
        if last is not None and last.role == "assistant" and not last.content:
            last.content.append(block)
        else:
            self.messages.append(ir.Message(role="assistant", content=[block]))


def _parse_input(value: Any, declared: list[tuple[Any, str]]) -> tuple[list[ir.Message], bool]:
    """The input items as messages, and whether the last one asked for a compaction (CX-02); the tool
    lists items declare are added to ``declared`` (with where they are), for :class:`tools.ToolSet`."""
    if isinstance(value, str):
        return [ir.Message(role="user", content=[ir.TextBlock(text=value)])], False
    if not isinstance(value, list):
        raise ClientError("input: field required (a string or a list of items)")
    conversation = _Conversation()
    search_id: str | None = None  # the last tool search call's id
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise ClientError(f"{where}: expected an object")
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            conversation.message(item, where)
        elif kind == "function_call":
            conversation.function_call(item, where)
        elif kind == "function_call_output":
            conversation.function_output(item, where)
        elif kind == "reasoning":
            conversation.reasoning(item, where)
        elif kind in items.CALLS:
            block = items.call_block(kind, item, where)
            conversation.call(block)
            search_id = block.id if kind == "tool_search_call" else search_id
        elif kind in items.OUTPUTS:
            conversation.result(items.result_block(kind, item, where, search_id))
            if kind == "tool_search_output":
                declared.append((item["tools"], f"{where}.tools"))
        elif kind == "additional_tools":
            if not isinstance(item.get("tools"), list):
                raise ClientError(f"{where}.tools: expected a list")
            declared.append((item["tools"], f"{where}.tools"))
        elif kind == "compaction":  # the summary of the turns it replaced (CX-02)
            conversation.messages.append(compaction.summary_message(item, where))
        elif kind == "compaction_trigger":
            if i != len(value) - 1:
                raise ClientError(f"{where}: compaction_trigger must be the last input item")
            return _nonempty(conversation.messages), True
        elif kind in _HISTORY_ONLY:
            continue
        elif kind == "item_reference":
            raise ClientError(f"{where}: item references are not supported by this proxy; send the items")
        else:
            raise ClientError(f"{where}.type: unsupported input item {shown(kind)}")
    return _nonempty(conversation.messages), False


def _nonempty(messages: list[ir.Message]) -> list[ir.Message]:
    if not messages:
        raise ClientError("input: at least one item is required")
    return messages


def _reasoning(value: Any) -> ir.ThinkingConfig | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ClientError("reasoning: expected an object")
    effort = value.get("effort")
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in EFFORTS:
        raise ClientError(f"reasoning.effort: expected one of none, {', '.join(EFFORTS)}")
    return ir.ThinkingConfig(type="enabled", budget_tokens=EFFORTS[effort], effort=effort)


def parse_request_data(data: dict[str, Any], *, count_tokens: bool = False) -> ir.Request:
    """:func:`parse_request` for a body that is already parsed JSON (``previous_response_id`` already
    resolved into ``input`` by the proxy)."""
    model = optional_str(data, "model")
    for key, why in _UNSUPPORTED_FIELDS.items():
        if data.get(key):
            raise ClientError(f"{key}: {why}")
    instructions = data.get("instructions")
    system: list[ir.TextBlock] = []
    if isinstance(instructions, str):
        if instructions:
            system.append(ir.TextBlock(text=instructions))
    elif instructions is not None:
        raise ClientError("instructions: expected a string")
    declared: list[tuple[Any, str]] = []
    compact_endpoint = data.pop(compaction.COMPACT_ENDPOINT_MARK, None) is True
    messages, compacting = _parse_input(data.get("input"), declared)
    toolset = ToolSet()
    toolset.add(data.get("tools"), "tools")
    for value, where in declared:  # after the request's own: additional_tools, tools a search loaded
        toolset.add(value, where)
    tools = toolset.tools
    choice = data.get("tool_choice")
    tool_choice = parse_tool_choice(choice, data.get("parallel_tool_calls"))
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        tools = allowed_tools(choice, tools)
    max_tokens = positive_int(data.get("max_output_tokens"), "max_output_tokens")
    stream = optional_bool(data, "stream")
    text = data.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is not None and (
        not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema")
    ):
        raise ClientError("text.format: expected {'type': 'text'|'json_object'|'json_schema', ...}")
    response_schema = None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        response_schema = answer_schema(fmt.get("schema"), fmt.get("name"), fmt.get("strict"))
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        system.append(ir.TextBlock(text=JSON_OBJECT_INSTRUCTION))
    include = data.get("include")
    user = data.get("safety_identifier") or data.get("user")
    reasoning = data.get("reasoning")
    echo: dict[str, Any] = {
        "id": "resp_" + random_hex(48),
        "created_at": int(time.time()),
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": max_tokens,
        "metadata": data.get("metadata") if isinstance(data.get("metadata"), dict) else {},
        "parallel_tool_calls": data.get("parallel_tool_calls") is not False,
        "previous_response_id": data.get("previous_response_id"),
        "reasoning": {
            "effort": reasoning.get("effort") if isinstance(reasoning, dict) else None,
            "summary": reasoning.get("summary") if isinstance(reasoning, dict) else None,
        },
        "store": data.get("store") is not False,
        "temperature": data.get("temperature"),
        "text": {"format": fmt if isinstance(fmt, dict) else {"type": "text"}},
        "tool_choice": data.get("tool_choice") if data.get("tool_choice") is not None else "auto",
        "tools": data.get("tools") if isinstance(data.get("tools"), list) else [],
        "top_p": data.get("top_p"),
        "truncation": data.get("truncation") if isinstance(data.get("truncation"), str) else "disabled",
        "user": data.get("user") if isinstance(data.get("user"), str) else None,
        "prompt_cache_key": data.get("prompt_cache_key"),
        # what the encoder needs and the proxy stores, not echoed as such
        "namespaces": toolset.namespaces,
        "tool_kinds": toolset.kinds,  # the tools whose calls go back as their own items (CX-04, CX-05)
        "encrypted_reasoning": isinstance(include, list) and "reasoning.encrypted_content" in include,
    }
    request = ir.Request(
        model=model or "",
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=tool_choice,
        max_tokens=max_tokens,
        temperature=number(data, "temperature"),
        top_p=number(data, "top_p"),
        stream=bool(stream) and not count_tokens,
        thinking=_reasoning(reasoning),
        user_id=safe_user_id(user),
        response_schema=response_schema,
        echo=echo,
    )
    if compacting:
        compaction.for_compaction(request)
        request.echo["compact_endpoint"] = compact_endpoint
    return request


# ---------------------------------------------------------------------------------------- compaction

_SYSTEM_ROLES: Final = ("system", "developer")
# A system or developer message's parts: ``input_text`` (what the Codex CLI sends), or plain ``text``.
_TEXT_PARTS: Final = ("input_text", "text")


def compact_body(data: dict[str, Any], threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Compact the system text of a Responses request in place; True when anything changed.

    The system text of this API is the ``instructions`` string and the ``system`` and ``developer``
    message items of ``input`` (the Codex CLI sends both: about 20 000 characters together). The
    threshold is compared with their total text length, as ``anthropic_messages.compact_body`` does;
    ``instructions`` left with nothing is removed, and so is a message item. A string ``input`` is the
    user's, and user, assistant, function call and reasoning items and ``tools`` are never touched;
    anything malformed is left as it is.
    """
    if not isinstance(data, dict):
        return False
    items = data.get("input")
    instructions = data.get("instructions")
    total = text_length(instructions) if isinstance(instructions, str) else 0
    total += role_text_length(items, _SYSTEM_ROLES, _TEXT_PARTS)
    if total == 0 or total < threshold:
        return False
    changed = False
    if isinstance(instructions, str):
        compacted = compact_text(instructions)
        if compacted != instructions:
            changed = True
            if compacted:
                data["instructions"] = compacted
            else:
                del data["instructions"]
    if isinstance(items, list):
        kept, did = compact_messages(items, _SYSTEM_ROLES, _TEXT_PARTS)
        if did:
            changed = True
            data["input"] = kept
    return changed
