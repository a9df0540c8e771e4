"""CX-02, sans I/O: what a compaction item carries, and the bounds on what it may expand to."""

from __future__ import annotations

import base64
import zlib

import orjson
import pytest

from rawproxy import ir
from rawproxy.dialects.openai_responses.compaction import (
    CONTENT_PREFIX,
    SUMMARY_FRAME,
    compaction_item,
    summary_message,
)
from rawproxy.errors import ClientError


def packed(data: bytes) -> str:
    return CONTENT_PREFIX + base64.urlsafe_b64encode(zlib.compress(data)).rstrip(b"=").decode()


def test_cx02_the_summary_comes_back_whole_as_a_user_message() -> None:
    summary = "Goal: fix the bug in parser.py (line 42). Next: run pytest. ü " * 200
    message = summary_message(compaction_item(summary), "input[3]")
    assert message.role == "user"
    assert message.content == [ir.TextBlock(text=SUMMARY_FRAME + summary)]


def test_cx02_an_item_is_bounded_by_what_it_expands_to() -> None:
    """1 MiB of summary is the most an item may expand to: a small item of many zeros is refused."""
    limit = 1024 * 1024
    wrapper = len(orjson.dumps({"summary": ""}))
    fits = packed(orjson.dumps({"summary": "a" * (limit - wrapper)}))
    assert len(summary_message({"encrypted_content": fits}, "x").content[0].text) > limit - wrapper
    bomb = packed(orjson.dumps({"summary": "a" * (limit - wrapper + 1)}))
    assert len(bomb) < 4096  # small on the wire
    with pytest.raises(ClientError, match="does not decode"):
        summary_message({"encrypted_content": bomb}, "x")


@pytest.mark.parametrize(
    "content", [packed(b'{"summary": 5}'), packed(b"[]"), packed(b"not json"), CONTENT_PREFIX + "!!!"]
)
def test_cx02_content_that_is_not_a_summary_is_refused(content: str) -> None:
    with pytest.raises(
        ClientError, match=r"input\[2\]\.encrypted_content: a compaction item that does not decode"
    ):
        summary_message({"encrypted_content": content}, "input[2]")
