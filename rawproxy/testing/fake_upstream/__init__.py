"""A scripted fake LLM server speaking OpenAI Chat Completions and Anthropic Messages, for tests, bench/,
the demo and users.

Run it with ``python -m rawproxy fake-upstream --port 18081`` and point any OpenAI client (or rawproxy's
``--openai-upstream http://127.0.0.1:18081/v1``) at ``http://127.0.0.1:18081/v1``, or any Anthropic client
(``base_url``) at ``http://127.0.0.1:18081``: no API key, no network.

Theory of operation. The path picks the dialect:

* OpenAI Chat Completions: ``POST .../chat/completions`` (streamed as ``data:`` chunks ending in
  ``[DONE]``), and ``GET .../models`` without Anthropic headers (``FakeUpstream.openai_models``: one
  ``fake-model`` unless a test lists other entries, with output-cap fields for instance).
* Anthropic Messages: ``POST .../v1/messages`` (``?beta=true`` too), streamed as the real API does it
  (``message_start``, ``content_block_start``, ``ping`` after the first block start, ``thinking_delta``s
  then one ``signature_delta``, ``input_json_delta``s starting with ``""``, ``content_block_stop``,
  ``message_delta`` with ``stop_reason`` and usage, ``message_stop``); ``POST .../v1/messages/count_tokens``
  (``{"input_tokens": len(body) // 4}``); ``GET .../v1/models`` with an ``anthropic-version`` or
  ``x-api-key`` header (Anthropic's paginated list over ``FakeUpstream.models``, honouring ``limit``,
  ``after_id`` and ``before_id``).

What it answers is a :class:`Script`, the same for both dialects, chosen in this order:
1. the next script queued by a test (``fake.enqueue(Script(...))``);
2. a keyword in the last user message, so that clients you cannot script (Claude Code) can still ask
   for a behaviour: ``MOCK:text``, ``MOCK:bash``, ``MOCK:parallel``, ``MOCK:think``, ``MOCK:429``,
   ``MOCK:midstream`` (see :data:`KEYWORDS`); after a tool result (an OpenAI ``tool`` message, or an
   Anthropic user message holding a ``tool_result`` block), a tool-calling keyword answers with its
   final text instead;
3. the default script (``--text``, ``--ttft-ms``, ``--token-interval-ms``).

In the Anthropic dialect ``reasoning`` becomes a ``thinking`` block signed with ``signature``, tool calls
become ``tool_use`` blocks (``interleave`` does not apply: Anthropic never interleaves blocks),
``finish_reason`` is the ``stop_reason`` (OpenAI names are mapped: ``length`` is ``max_tokens``),
``error_after`` sends ``event: error`` (``overloaded_error``) and ends the response, and an OpenAI-shaped
``error_body`` is rewritten into Anthropic's error envelope (use ``raw`` to send bytes untouched). Both
dialects count "content events" alike for ``error_after``, ``cut_after``, ``stall`` and
``chunks_written``: OpenAI content chunks, Anthropic ``content_block_delta`` events.

Before any answer, in both dialects, ``head_delay`` holds the response head back (an upstream slower
than the proxy's timeout), ``reset`` drops the connection with a TCP reset instead of answering, and
``wire`` writes exactly the given bytes, head and framing included, then closes (a broken server).

It records what it saw (``requests``: method, path, query, lower-case headers, parsed JSON body) and how
streams ended (``streams_cancelled`` counts streams whose client closed the connection before the end),
which the integration tests assert on. It is written on h11 directly, not on rawproxy's server, so a bug
there cannot hide itself in both arms of a test.

The modules: :mod:`.script` (the scenario model, keywords, script choice), :mod:`.state` (the queue,
the shared id sequence, the recordings and counters), :mod:`.wire` (one connection's writing, pacing
and faults, alike for both dialects), :mod:`.openai_chat` and :mod:`.anthropic_messages` (each
dialect's bodies, streams and errors) and :mod:`.server` (:class:`FakeUpstream`, routing, the command
line). ``python -m rawproxy.testing.fake_upstream`` runs it as ``rawproxy fake-upstream`` does.
"""

from __future__ import annotations

from .script import DEFAULT_MODELS, KEYWORDS, RecordedRequest, Script, ToolCall
from .server import FakeUpstream, build_parser, main

__all__ = [
    "DEFAULT_MODELS",
    "KEYWORDS",
    "FakeUpstream",
    "RecordedRequest",
    "Script",
    "ToolCall",
    "build_parser",
    "main",
]
