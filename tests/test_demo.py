"""`python -m rawproxy demo` (make demo) runs both directions and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_streams_both_directions_and_reports_ttft() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rawproxy", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "message_start" in out and "message_stop" in out and '"tool_use"' in out  # Anthropic client
    assert '"tool_calls"' in out and "data: [DONE]" in out and '"reasoning_content"' in out  # OpenAI client
    assert "Anthropic client -> OpenAI upstream" in out and "OpenAI client -> Anthropic upstream" in out
    assert "overhead" in out
