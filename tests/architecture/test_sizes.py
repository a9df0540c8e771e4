"""Small modules with one job each: no module over 600 lines, no class over 400 (h11's largest module is
659 lines, httpcore's 592, wsproto's 698); and no wire path named outside ``dialects/`` and the endpoint
table, so that each kind of change has one home."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rawproxy"
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 400
# A string literal that is an API path: /v1/..., or an OpenAI-compatible path under a /v1 base.
WIRE_PATH = re.compile(r"^/(v1(/|$)|chat/completions|models|responses|messages)")
PATH_OWNERS = ("dialects/", "exchange/endpoints.py", "testing/")  # testing/: the fake upstream serves them


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_module_over_600_lines() -> None:
    """The package's modules and the bench's (bench/run.py had grown to 1 047 lines unseen)."""
    long = {
        str(p.relative_to(ROOT)): n
        for p in [*_sources(), *sorted((ROOT / "bench").glob("*.py"))]
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, long


def test_no_class_over_400_lines() -> None:
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                size = node.end_lineno - node.lineno + 1
                if size > MAX_CLASS_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = size
    assert not long, long


def _wire_paths(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and WIRE_PATH.match(node.value)
    ]


def test_no_wire_path_outside_the_dialects_and_the_endpoint_table() -> None:
    found = {}
    for path in _sources():
        where = str(path.relative_to(PACKAGE))
        if where.startswith(PATH_OWNERS):
            continue
        if paths := _wire_paths(path):
            found[where] = paths
    assert not found, found


def test_the_wire_path_check_sees_paths() -> None:
    assert _wire_paths(PACKAGE / "exchange" / "endpoints.py"), (
        "the endpoint table names paths: none were found"
    )
