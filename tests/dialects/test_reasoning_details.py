"""RS-04: a streamed ``reasoning_details`` array is rebuilt as OpenRouter's own SDK rebuilds it, so that
the array that goes back is the one the upstream sent (``merge_details``)."""

from __future__ import annotations

from typing import Any

from rawproxy.dialects.openai_chat.upstream_response import merge_details


def merged(*deltas: list[Any], carried: int = 0, into: list[Any] | None = None) -> list[Any]:
    whole: list[Any] = into if into is not None else []
    for delta in deltas:
        merge_details(whole, delta, carried)
    return whole


def test_rs_04_text_pieces_join_and_keep_the_signature_that_came_last() -> None:
    head = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0}
    whole = merged(
        [{**head, "text": "Let "}], [{**head, "text": "me"}], [{**head, "text": ".", "signature": "s1"}]
    )
    assert whole == [{**head, "text": "Let me.", "signature": "s1"}]


def test_rs_04_other_entries_and_other_indexes_stay_apart() -> None:
    one = {"type": "reasoning.text", "text": "a", "index": 0}
    two = {"type": "reasoning.text", "text": "b", "index": 1}
    secret = {"type": "reasoning.encrypted", "data": "ZmFrZQ==", "index": 2}
    assert merged([one], [two], [secret], [dict(secret)]) == [one, two, secret, secret]


def test_rs_04_an_entry_already_sealed_is_never_merged_into() -> None:
    sealed = {"type": "reasoning.text", "text": "a", "index": 0}
    whole = merged([{"type": "reasoning.text", "text": "b", "index": 0}], carried=1, into=[dict(sealed)])
    assert whole == [sealed, {"type": "reasoning.text", "text": "b", "index": 0}]
