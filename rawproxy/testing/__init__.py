"""Code for tests, the demo and the bench: never imported by the proxy's serving path.

``rawproxy.testing.fake_upstream`` is a scripted fake LLM server (OpenAI Chat Completions and Anthropic
Messages) that the integration tests, ``python -m rawproxy demo``, ``python -m rawproxy fake-upstream``
and users' own tests run the proxy against. It imports nothing of the proxy (a bug there must not hide
itself in both arms of a test), and the proxy imports nothing of it, so serving never loads a line of it.
"""

from __future__ import annotations
