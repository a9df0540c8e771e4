"""The core is sans-I/O: importing it loads neither asyncio, h11 nor httpx (DESIGN.md, principle 1).

Checked in a fresh interpreter, because this test process has long since imported all three.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_MODULES = ("asyncio", "h11", "httpx", "httpcore", "anyio")

CORE = (
    "rawproxy.sse",
    "rawproxy.ir",
    "rawproxy.dialects",
    "rawproxy.dialects.anthropic_messages",
    "rawproxy.dialects.openai_chat",
    "rawproxy.dialects.openai_responses",
    "rawproxy._types",
    "rawproxy.errors",
    "rawproxy.observe.metrics",
    "rawproxy.observe.redact",
    "rawproxy.translate",
    "rawproxy.tokens",
    "rawproxy.toolcalls",
    "rawproxy.routing",
    "rawproxy.profiles",
    "rawproxy.http1",
)


def loaded_after(*modules: str) -> list[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps(sorted(m for m in {list(IO_MODULES)!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    result: list[str] = json.loads(proc.stdout)
    return result


def test_core_imports_no_io() -> None:
    assert loaded_after(*CORE) == []


@pytest.mark.parametrize("module", CORE)
def test_each_core_module_imports_no_io(module: str) -> None:
    assert loaded_after(module) == []


def test_package_import_is_light() -> None:
    assert loaded_after("rawproxy") == []


def test_config_lookup_is_light() -> None:
    # rawproxy.Config is resolved lazily; building a Config must not pull in the network stack either.
    code = (
        "import json, sys, rawproxy\n"
        "rawproxy.Config\n"
        f"print(json.dumps(sorted(m for m in {list(IO_MODULES)!r} if m in sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
