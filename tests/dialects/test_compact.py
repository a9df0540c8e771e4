"""Issue 5 item 7 (prompt compression): rawproxy/dialects/_compact.py and each dialect's ``compact_body``. Pure.

Opt-in compaction of very long system prompts for small local models: whitespace squeezed and a short,
documented list of Claude Code boilerplate lines dropped, never tool schemas or user messages.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, cast

import orjson
import pytest

from rawproxy.dialects import openai_responses
from rawproxy.dialects._compact import DEFAULT_THRESHOLD, compact_text
from rawproxy.dialects.anthropic_messages import compact_body as compact_anthropic_body
from rawproxy.dialects.openai_chat import compact_body as compact_openai_body
from rawproxy.dialects.openai_responses import compact_body as compact_responses_body
from tests.support import FIXTURES_DIR

FIXTURES = FIXTURES_DIR / "claude_code"
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))

BILLING = "x-anthropic-billing-header: cc_version=2.1.330.a8c; cc_entrypoint=sdk-cli;"
ENVIRONMENT = (
    "# Environment\n"
    " - The most recent Claude models are the Claude 5 family. Model IDs — Opus 5.5: 'claude-opus-5-5'.\n"
    " - Claude Code is available as a CLI in the terminal, desktop app (Mac/Windows), web app.\n"
    " - Fast mode for Claude Code gives faster output on this session's model. It can be toggled with /fast.\n"
)
MODEL_LINE = "You are powered by the model named Opus 5.5. The exact model ID is claude-opus-5-5."
HELP = (
    " - If the user asks for help or wants to give feedback inform them of the following:\n"
    "  - /help: Get help with using Claude Code\n"
    "  - To give feedback, users should report the issue at https://github.com/anthropics/claude-code/issues\n"
)
# What the rules may remove from a real capture: the lines above (by their documented prefix) and the
# "# Environment" heading they leave empty.
BOILERPLATE_PREFIXES = (
    "x-anthropic-billing-header:",
    "- The most recent Claude models are the Claude ",
    "- Claude Code is available as a CLI in the terminal",
    "- Fast mode for Claude Code ",
    "You are powered by the model ",
    "# Environment",
)
INSTRUCTION = "Prefer the dedicated file/search tools over shell commands when one fits."
FILLER = "Read the file before you edit it, and keep the change as small as the request allows.\n"


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def norm(line: str) -> str:
    return " ".join(line.split())


def long_prompt(extra: str = "") -> str:
    """A system prompt over the threshold on its own, already compact apart from ``extra``."""
    body = FILLER * (DEFAULT_THRESHOLD // len(FILLER) + 1)
    return extra + body.rstrip("\n")


def system_texts(body: dict[str, Any]) -> list[str]:
    texts: list[str] = []
    system = body.get("system")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, list):
        texts.extend(block["text"] for block in system)
    for message in body["messages"]:
        if message["role"] == "system":
            content = message["content"]
            if isinstance(content, str):
                texts.append(content)
            else:
                texts.extend(part["text"] for part in content if part.get("type") == "text")
    return texts


def removed_lines(original: str, compacted: str) -> list[str]:
    """Lines of ``original`` missing from ``compacted``; fails unless the result is a subsequence of it.

    Compared after squeezing whitespace and ignoring blank lines, so it proves that the result invents,
    rewrites and reorders nothing: it only keeps or drops the original's lines.
    """
    kept = [norm(line) for line in compacted.split("\n") if line.strip()]
    position = 0
    removed: list[str] = []
    for line in original.split("\n"):
        if not line.strip():
            continue
        if position < len(kept) and norm(line) == kept[position]:
            position += 1
        else:
            removed.append(norm(line))
    assert position == len(kept), f"not a subsequence of the original: {kept[position]!r}"
    return removed


def load_fixture(path: Path) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(path.read_text(encoding="utf-8")))


# -------------------------------------------------------------------------------------- whitespace


def test_runs_of_spaces_and_tabs_inside_a_line_become_one_space() -> None:
    assert compact_text("Use  the\t\tRead   tool.") == "Use the Read tool."


def test_leading_indentation_is_kept_so_nested_lists_stay_nested() -> None:
    text = "- outer\n  - inner   item\n\t- tabbed  item"
    assert compact_text(text) == "- outer\n  - inner item\n\t- tabbed item"


def test_trailing_whitespace_is_stripped() -> None:
    assert compact_text("one  \ntwo\t\nthree \r") == "one\ntwo\nthree"


def test_runs_of_blank_lines_become_one_and_the_ends_are_trimmed() -> None:
    assert compact_text("\n\nfirst\n\n\n\nsecond\n \t\n\nthird\n\n") == "first\n\nsecond\n\nthird"


def test_inline_code_spans_keep_their_spaces() -> None:
    assert compact_text("Run   `git  log   -1`  now.") == "Run `git  log   -1` now."


def test_text_with_nothing_to_do_is_returned_unchanged() -> None:
    text = "# Harness\n - " + INSTRUCTION + "\n\nReference code as `file_path:line_number`."
    assert compact_text(text) == text


# ---------------------------------------------------------------------------------- fenced code


def test_fenced_code_is_kept_verbatim() -> None:
    fenced = "```python\ndef  f( x ):   \n\n\n\n    return  x\t\n```"
    text = "Example:   \n\n\n" + fenced + "\n\n\n\nAfter   it."
    assert compact_text(text) == "Example:\n\n" + fenced + "\n\nAfter it."


def test_tilde_fences_and_longer_fences_are_honoured() -> None:
    fenced = "~~~~\n```\ninner   ```  still  code\n~~~\n~~~~"
    assert compact_text(fenced + "\nafter   text") == fenced + "\nafter text"


def test_an_unclosed_fence_keeps_the_rest_verbatim() -> None:
    text = "intro  text\n```\ncode   line  \n\n\n\n" + BILLING + "\n"
    assert compact_text(text) == "intro text\n```\ncode   line  \n\n\n\n" + BILLING + "\n"


def test_boilerplate_inside_a_fence_is_kept() -> None:
    text = "```\n" + BILLING + "\n" + ENVIRONMENT + "```"
    assert compact_text(text) == text


# ----------------------------------------------------------------------------------- boilerplate


def test_the_billing_header_line_is_dropped() -> None:
    assert compact_text(BILLING) == ""
    assert compact_text(BILLING + "\nYou are a helpful agent.") == "You are a helpful agent."


def test_anthropic_product_lines_and_the_heading_they_leave_empty_are_dropped() -> None:
    text = "# Harness\n - " + INSTRUCTION + "\n\n" + ENVIRONMENT + "\n# Context management\nAct when ready."
    assert compact_text(text) == "# Harness\n - " + INSTRUCTION + "\n\n# Context management\nAct when ready."


def test_a_heading_that_keeps_other_content_is_kept() -> None:
    text = ENVIRONMENT + " - Platform: linux\n"
    assert compact_text(text) == "# Environment\n - Platform: linux"


def test_a_parent_heading_emptied_by_its_subsections_goes_in_the_same_pass() -> None:
    text = "# Outer\n\n## Inner\n" + BILLING + "\n\n# Next\nkept"
    assert compact_text(text) == "# Next\nkept"


def test_a_heading_that_was_empty_in_the_input_is_kept() -> None:
    text = "# Notes\n\n# Rules\nBe brief."
    assert compact_text(text) == text


def test_the_model_identity_line_is_dropped() -> None:
    text = (
        "# Environment\n - Platform: linux\n\n" + MODEL_LINE + " Assistant knowledge cutoff is June 2026.\n"
    )
    assert compact_text(text) == "# Environment\n - Platform: linux"


def test_the_help_and_feedback_paragraph_is_dropped_with_its_items() -> None:
    text = " - Keep changes small.\n" + HELP + "\n# Executing actions with care\nConfirm first."
    assert compact_text(text) == " - Keep changes small.\n\n# Executing actions with care\nConfirm first."


def test_help_items_without_the_lead_line_are_kept() -> None:
    text = "Commands:\n- /help: Get help with using Claude Code"
    assert compact_text(text) == text


def test_tool_usage_instructions_are_kept() -> None:
    text = (
        "# Harness\n"
        " - " + INSTRUCTION + " Independent tool calls can run in parallel in one response.\n"
        " - When the user types `/<skill-name>`, invoke it via Skill.\n"
        'Use ToolSearch with query "select:<name>[,<name>...]" to load tool schemas before calling them:\n'
        "WebFetch\n"
        "WebSearch"
    )
    assert compact_text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n\n",
        "a  b\n\n\n\nc  ",
        BILLING + "\n" + ENVIRONMENT + MODEL_LINE + "\n" + HELP,
        "# Outer\n\n## Inner\n" + BILLING + "\n\n# Next\nkept",
        "```\nunclosed   \n\n\n",
        " - Keep.\n" + HELP + HELP + "after",
    ],
)
def test_compacting_twice_is_compacting_once(text: str) -> None:
    once = compact_text(text)
    assert compact_text(once) == once


# ----------------------------------------------------------------------------- Anthropic bodies


def anthropic_body() -> dict[str, Any]:
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": BILLING},
            {"type": "text", "text": "You are a helpful agent.", "cache_control": {"type": "ephemeral"}},
            {
                "type": "text",
                "text": long_prompt("\n" + MODEL_LINE + "\n\n\n") + "\n\n" + ENVIRONMENT,
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": BILLING + "\nkeep   my  spaces\n\n\n"}]},
            {"role": "system", "content": "# Environment\n - Platform: linux   \n\n" + MODEL_LINE},
            {"role": "assistant", "content": "Sure.   " + MODEL_LINE},
            {"role": "user", "content": "  and  mine  too  \n" + ENVIRONMENT},
        ],
        "tools": [
            {
                "name": "Bash",
                "description": BILLING + "\nRun   a  command.\n\n\n" + ENVIRONMENT,
                "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
            }
        ],
    }


def test_anthropic_system_blocks_are_compacted_keeping_their_other_keys() -> None:
    body = anthropic_body()
    assert compact_anthropic_body(body) is True
    assert body["system"] == [
        {"type": "text", "text": "You are a helpful agent.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": long_prompt(), "cache_control": {"type": "ephemeral"}},
    ]
    assert body["messages"][1] == {"role": "system", "content": "# Environment\n - Platform: linux"}


def test_anthropic_user_and_assistant_messages_and_tools_are_byte_identical() -> None:
    body = anthropic_body()
    before = copy.deepcopy(body)
    assert compact_anthropic_body(body) is True
    assert dumps(body["tools"]) == dumps(before["tools"])
    others = [m for m in body["messages"] if m["role"] != "system"]
    assert dumps(others) == dumps([m for m in before["messages"] if m["role"] != "system"])
    assert {k: v for k, v in body.items() if k not in ("system", "messages")} == {
        k: v for k, v in before.items() if k not in ("system", "messages")
    }


def test_anthropic_system_as_a_string() -> None:
    body: dict[str, Any] = {"system": long_prompt(BILLING + "\n\n\n"), "messages": []}
    assert compact_anthropic_body(body) is True
    assert body["system"] == long_prompt()


def test_anthropic_system_message_content_as_blocks() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": BILLING},
                    {
                        "type": "text",
                        "text": long_prompt(MODEL_LINE + "\n"),
                        "cache_control": {"type": "ephemeral"},
                    },
                ],
            },
        ]
    }
    assert compact_anthropic_body(body) is True
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": long_prompt(), "cache_control": {"type": "ephemeral"}}
    ]


def test_anthropic_system_left_with_nothing_is_removed() -> None:
    body: dict[str, Any] = {"system": [{"type": "text", "text": BILLING}], "messages": []}
    assert compact_anthropic_body(body, threshold=1) is True
    assert "system" not in body


def test_anthropic_threshold_counts_system_messages_too() -> None:
    half = FILLER * (DEFAULT_THRESHOLD // len(FILLER) // 2 + 1)
    body: dict[str, Any] = {
        "system": [{"type": "text", "text": BILLING + "\n" + half}],
        "messages": [{"role": "system", "content": half}],
    }
    assert len(body["system"][0]["text"]) < DEFAULT_THRESHOLD
    assert compact_anthropic_body(body) is True
    assert body["system"] == [{"type": "text", "text": half.rstrip("\n")}]


def test_anthropic_below_threshold_is_untouched() -> None:
    body = anthropic_body()
    before = dumps(body)
    assert compact_anthropic_body(body, threshold=10**9) is False
    assert dumps(body) == before


def test_anthropic_over_threshold_with_nothing_to_do_reports_no_change() -> None:
    body: dict[str, Any] = {"system": long_prompt(), "messages": [{"role": "user", "content": "a  b"}]}
    before = dumps(body)
    assert compact_anthropic_body(body) is False
    assert dumps(body) == before


# -------------------------------------------------------------------------------- OpenAI bodies


def openai_body() -> dict[str, Any]:
    return {
        "model": "qwen3-8b",
        "messages": [
            {"role": "system", "content": long_prompt(BILLING + "\n\n\n")},
            {
                "role": "developer",
                "content": [{"type": "text", "text": "# Environment\n" + MODEL_LINE + "\n - Shell:  bash"}],
            },
            {"role": "user", "content": [{"type": "text", "text": BILLING + "\nkeep   my  spaces\n\n\n"}]},
            {"role": "assistant", "content": "Ok.  " + MODEL_LINE, "tool_calls": []},
            {"role": "tool", "tool_call_id": "call_1", "content": ENVIRONMENT + "\n\n\n"},
            {"role": "system", "content": BILLING},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "Bash",
                    "description": BILLING + "\nRun   it.",
                    "parameters": {"type": "object"},
                },
            }
        ],
    }


def test_openai_system_and_developer_messages_are_compacted() -> None:
    body = openai_body()
    assert compact_openai_body(body) is True
    assert body["messages"][0] == {"role": "system", "content": long_prompt()}
    assert body["messages"][1] == {
        "role": "developer",
        "content": [{"type": "text", "text": "# Environment\n - Shell: bash"}],
    }
    # the trailing system message was nothing but the billing line
    assert [m["role"] for m in body["messages"]] == ["system", "developer", "user", "assistant", "tool"]


def test_openai_user_assistant_and_tool_messages_and_tools_are_byte_identical() -> None:
    body = openai_body()
    before = copy.deepcopy(body)
    assert compact_openai_body(body) is True
    assert dumps(body["tools"]) == dumps(before["tools"])
    roles = ("user", "assistant", "tool")
    assert dumps([m for m in body["messages"] if m["role"] in roles]) == dumps(
        [m for m in before["messages"] if m["role"] in roles]
    )


def test_openai_below_threshold_is_untouched() -> None:
    body = openai_body()
    before = dumps(body)
    assert compact_openai_body(body, threshold=10**9) is False
    assert dumps(body) == before


def test_openai_threshold_ignores_user_text() -> None:
    body: dict[str, Any] = {
        "messages": [
            {"role": "system", "content": BILLING + "\nshort"},
            {"role": "user", "content": long_prompt()},
        ]
    }
    before = dumps(body)
    assert compact_openai_body(body) is False
    assert dumps(body) == before


# ------------------------------------------------------------------------- OpenAI Responses bodies
#
# The Codex CLI's system text is ``instructions`` plus ``developer`` message items whose parts are
# ``input_text``; before compaction lived in the dialects, a compact route shortened nothing here.

CODEX_FIXTURE = Path(__file__).parents[1] / "conformance" / "fixtures" / "codex-0.171.0-request.json"


def responses_body() -> dict[str, Any]:
    return {
        "model": "gpt-5-codex",
        "instructions": long_prompt(BILLING + "\n\n\n") + "\n\n\n",
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [
                    {"type": "input_text", "text": "# Environment\n" + MODEL_LINE + "\n - Shell:  bash"}
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": BILLING + "\nkeep   my  spaces\n\n\n"}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": '{"cmd":  "ls"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": ENVIRONMENT + "\n\n\n"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": BILLING + "  x"}]},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Ok.  " + MODEL_LINE}],
            },
            {"role": "system", "content": BILLING},  # an item without a type is a message
        ],
        "tools": [
            {
                "type": "function",
                "name": "shell",
                "description": BILLING + "\nRun   it.",
                "parameters": {"type": "object"},
            },
            {"type": "web_search"},
        ],
        "store": False,
        "include": ["reasoning.encrypted_content"],
    }


def test_responses_instructions_and_developer_items_are_compacted() -> None:
    body = responses_body()
    assert compact_responses_body(body) is True
    assert body["instructions"] == long_prompt()
    assert body["input"][0] == {
        "type": "message",
        "role": "developer",
        "content": [{"type": "input_text", "text": "# Environment\n - Shell: bash"}],
    }
    # the trailing system item was nothing but the billing line
    assert [item.get("role", item.get("type")) for item in body["input"]] == [
        "developer",
        "user",
        "function_call",
        "function_call_output",
        "reasoning",
        "assistant",
    ]


def test_responses_user_assistant_and_function_items_and_tools_are_byte_identical() -> None:
    body = responses_body()
    before = copy.deepcopy(body)
    assert compact_responses_body(body) is True
    assert dumps(body["tools"]) == dumps(before["tools"])
    kept = [item for item in before["input"] if item.get("role") not in ("developer", "system")]
    assert dumps(
        [item for item in body["input"] if item.get("role") not in ("developer", "system")]
    ) == dumps(kept)
    assert {k: v for k, v in body.items() if k not in ("instructions", "input")} == {
        k: v for k, v in before.items() if k not in ("instructions", "input")
    }


def test_responses_below_threshold_is_untouched() -> None:
    body = responses_body()
    before = dumps(body)
    assert compact_responses_body(body, threshold=10**9) is False
    assert dumps(body) == before


def test_responses_threshold_counts_instructions_and_developer_items_together() -> None:
    half = FILLER * (DEFAULT_THRESHOLD // len(FILLER) // 2 + 1)
    developer = {"role": "developer", "content": [{"type": "input_text", "text": half + "a  b"}]}
    body: dict[str, Any] = {"instructions": half + "c  d", "input": [developer]}
    assert len(body["instructions"]) < DEFAULT_THRESHOLD
    assert compact_responses_body(body) is True
    assert body["instructions"].endswith("\nc d")
    assert body["input"][0]["content"][0]["text"].endswith("\na b")


def test_responses_threshold_ignores_user_text() -> None:
    body: dict[str, Any] = {"instructions": BILLING + "\nshort", "input": long_prompt(BILLING + "\n")}
    before = dumps(body)
    assert compact_responses_body(body) is False
    assert dumps(body) == before


def test_responses_string_input_is_the_users_and_is_left_alone() -> None:
    body: dict[str, Any] = {"instructions": long_prompt(BILLING + "\n"), "input": BILLING + "\nfix   it"}
    assert compact_responses_body(body) is True
    assert body == {"instructions": long_prompt(), "input": BILLING + "\nfix   it"}


def test_responses_instructions_left_with_nothing_are_removed() -> None:
    developer = {"type": "message", "role": "developer", "content": long_prompt()}
    body: dict[str, Any] = {"instructions": BILLING, "input": [developer]}
    assert compact_responses_body(body) is True
    assert body == {"input": [developer]}


def test_a_real_codex_request_is_compacted_keeping_tools_and_user_items() -> None:
    original = load_fixture(CODEX_FIXTURE)["body"]
    body = copy.deepcopy(original)
    assert compact_responses_body(body) is True
    assert len(dumps(body)) < len(dumps(original))
    assert dumps(body["tools"]) == dumps(original["tools"])
    users = [item for item in original["input"] if item.get("role") == "user"]
    assert dumps([item for item in body["input"] if item.get("role") == "user"]) == dumps(users)
    for before, after in zip(original["input"], body["input"], strict=True):
        if before.get("role") == "developer":
            for old, new in zip(before["content"], after["content"], strict=True):
                assert removed_lines(old["text"], new["text"]) == []  # whitespace only: nothing dropped
    again = copy.deepcopy(body)
    assert compact_responses_body(again) is False  # idempotent
    assert again == body
    # what is left is still a request the dialect reads
    assert openai_responses.parse_request_data(body).messages


# ------------------------------------------------------------------------ real Claude Code captures


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_a_real_claude_code_prompt_gets_measurably_shorter_without_invented_text(path: Path) -> None:
    original = load_fixture(path)
    body = copy.deepcopy(original)
    assert compact_anthropic_body(body) is True

    before = sum(map(len, system_texts(original)))
    after = sum(map(len, system_texts(body)))
    assert before >= DEFAULT_THRESHOLD
    # Measured on the three fixtures: 16 423-16 435 characters down to 15 599-15 611 (about 95.0 %).
    assert after <= 0.96 * before
    assert before - after >= 750

    # The billing block is gone; the identity block and the main prompt keep their cache_control.
    assert len(body["system"]) == len(original["system"]) - 1
    assert [{k: v for k, v in b.items() if k != "text"} for b in body["system"]] == [
        {k: v for k, v in b.items() if k != "text"} for b in original["system"][1:]
    ]

    removed: list[str] = []
    for old, new in zip(system_texts(original)[1:], system_texts(body), strict=True):
        removed += removed_lines(old, new)
    removed += removed_lines(original["system"][0]["text"], "")
    assert removed, "nothing was dropped"
    assert all(line.startswith(BOILERPLATE_PREFIXES) for line in removed), removed
    assert any(INSTRUCTION in text for text in system_texts(body))


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_a_real_claude_code_capture_keeps_tools_and_user_messages_byte_identical(path: Path) -> None:
    original = load_fixture(path)
    body = copy.deepcopy(original)
    assert compact_anthropic_body(body) is True
    assert dumps(body["tools"]) == dumps(original["tools"])
    non_system = [m for m in original["messages"] if m["role"] != "system"]
    assert dumps([m for m in body["messages"] if m["role"] != "system"]) == dumps(non_system)
    assert [m["role"] for m in body["messages"]] == [m["role"] for m in original["messages"]]


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_a_real_claude_code_capture_compacts_idempotently(path: Path) -> None:
    body = load_fixture(path)
    assert compact_anthropic_body(body) is True
    once = dumps(body)
    assert compact_anthropic_body(body, threshold=0) is False
    assert dumps(body) == once
    for text in system_texts(body):
        assert compact_text(text) == text


# ------------------------------------------------------------------------------------- malformed


MALFORMED_SYSTEMS: list[Any] = [
    None,
    123,
    {"type": "text", "text": BILLING},
    [1, None, "a   string", ["nested"]],
    [{"type": "text", "text": 5}, {"type": "text"}, {"text": BILLING}, {"type": "image", "text": BILLING}],
]


@pytest.mark.parametrize("system", MALFORMED_SYSTEMS)
def test_malformed_anthropic_system_is_left_as_is(system: Any) -> None:
    # a valid, already compact system message puts the body over the threshold, so the walk runs
    messages = [{"role": "user", "content": "hi"}, {"role": "system", "content": long_prompt()}]
    body: dict[str, Any] = {"system": system, "messages": messages}
    before = dumps(body)
    assert compact_anthropic_body(body, threshold=0) is False
    assert dumps(body) == before


@pytest.mark.parametrize(
    "messages",
    [
        "not a list",
        None,
        [1, None, "system", ["system"]],
        [{"role": "system"}, {"role": "system", "content": None}, {"role": "system", "content": 7}],
        [{"role": "system", "content": [{"type": "text"}, {"type": "text", "text": None}, 3]}],
        [{"content": BILLING}, {"role": None, "content": BILLING}],
    ],
)
def test_malformed_messages_are_left_as_is(messages: Any) -> None:
    for compact in (compact_anthropic_body, compact_openai_body):
        body: dict[str, Any] = {"system": long_prompt(), "messages": copy.deepcopy(messages)}
        before = dumps(body)
        assert compact(body, threshold=0) is False
        assert dumps(body) == before
    # the Responses API: its already compact instructions run the walk over the same items, as system
    # items and as developer ones
    developer = (
        [
            {**m, "role": "developer"} if isinstance(m, dict) and m.get("role") == "system" else m
            for m in messages
        ]
        if isinstance(messages, list)
        else messages
    )
    for items in (messages, developer):
        body = {"instructions": long_prompt(), "input": copy.deepcopy(items)}
        before = dumps(body)
        assert compact_responses_body(body, threshold=0) is False
        assert dumps(body) == before


def test_malformed_parts_survive_next_to_compacted_ones() -> None:
    junk: list[Any] = [7, {"type": "text", "text": None}, {"type": "image", "source": {}}]
    body: dict[str, Any] = {
        "system": [*junk, {"type": "text", "text": long_prompt(BILLING + "\n")}],
        "messages": [{"role": "system", "content": [*junk, {"type": "text", "text": BILLING}]}, 5],
    }
    assert compact_anthropic_body(body) is True
    assert body["system"] == [*junk, {"type": "text", "text": long_prompt()}]
    assert body["messages"] == [{"role": "system", "content": junk}, 5]


@pytest.mark.parametrize("compact", [compact_anthropic_body, compact_openai_body, compact_responses_body])
@pytest.mark.parametrize("data", [None, [], "body", 3])
def test_a_body_that_is_not_a_dict_is_left_alone(compact: Any, data: Any) -> None:
    assert compact(cast(dict[str, Any], data), threshold=0) is False
