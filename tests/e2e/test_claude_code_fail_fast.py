"""End to end, NET-04: the real Claude Code CLI (pinned) with a wrong proxy key gives up at once.

The proxy's 401 says ``x-should-retry: false``; Claude Code's Anthropic SDK obeys the header before its
own rules. Without it, Claude Code 2.1.332 was found still retrying the 401 after a minute. The run uses Claude Code's own retry settings (the other e2e tests turn retries off with
``CLAUDE_CODE_MAX_RETRIES=0``; this one must not, or it would prove nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from rawproxy.testing.fake_upstream import FakeUpstream

from .conftest import claude_env

pytestmark = pytest.mark.e2e

LIMIT = 10.0  # seconds: the brief's bound for a wrong key to end the run


async def test_net04_claude_code_with_a_wrong_proxy_key_fails_within_10s(
    fake: FakeUpstream, proxy_factory: Any, claude_bin: Path, tmp_path: Path
) -> None:
    proxy = await proxy_factory(api_keys=["sk-the-proxys-own-key"])
    env = claude_env(tmp_path, proxy.url)  # its ANTHROPIC_API_KEY is not the proxy's key
    del env["CLAUDE_CODE_MAX_RETRIES"]  # Claude Code's default retries, as a user has them
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(claude_bin),
        "-p",
        "Say hello.",
        "--output-format",
        "json",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 3 * LIMIT)
    except TimeoutError:
        pytest.fail(f"Claude Code was still retrying a wrong key after {3 * LIMIT:.0f} s", pytrace=False)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    seconds = time.monotonic() - began
    out = stdout.decode(errors="replace") + stderr.decode(errors="replace")
    assert proc.returncode != 0 or '"is_error":true' in out.replace(" ", ""), out[-3000:]
    assert "invalid API key" in out or "401" in out, out[-3000:]
    assert seconds < LIMIT, f"Claude Code took {seconds:.1f} s to give up on a wrong key\n{out[-3000:]}"
    assert fake.requests == []  # nothing reached the upstream
