"""`python -m rawproxy demo` (make demo) runs the whole path and exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_streams_a_tool_call_and_reports_ttft() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rawproxy", "demo"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "message_start" in out and "message_stop" in out and '"tool_use"' in out
    assert "direct:" in out and "through proxy:" in out and "overhead:" in out
