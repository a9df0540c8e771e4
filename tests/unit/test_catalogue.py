"""Every ID of the conformance catalogue that applies so far has a test named after it.

The catalogue lives in the project's shared notes (``../shared/CONFORMANCE.md`` beside the checkout), which
a fresh clone does not have: the check then skips.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT.parent / "shared" / "CONFORMANCE.md"
CHECKED_PREFIXES = ("A2O-", "O2A-", "X-")


def catalogue_ids() -> list[str]:
    text = CATALOGUE.read_text(encoding="utf-8")
    ids = re.findall(r"\*\*((?:A2O|O2A)-[A-Z]\d{2}|X-\d{2})\b", text)
    return sorted({i for i in ids if i.startswith(CHECKED_PREFIXES)})


# A regex, not ``ast.parse``: CPython 3.11's AST validator can fail with "recursion depth mismatch"
# once hypothesis has changed the recursion limit earlier in the same session.
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)


def function_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.update(name.lower() for name in _DEF.findall(path.read_text(encoding="utf-8")))
    return names


@pytest.mark.skipif(not CATALOGUE.exists(), reason="../shared/CONFORMANCE.md is not beside this checkout")
def test_every_catalogue_id_has_a_named_test() -> None:
    names = function_names()
    missing = []
    for ident in catalogue_ids():
        prefix, number = ident.lower().split("-")
        token = rf"{prefix}_?{number}"  # a2o_r05 or x_01 / x01
        if not any(re.search(rf"(^|_){token}($|_)", name) for name in names):
            missing.append(ident)
    assert not missing, f"catalogue IDs without a test named after them: {missing}"
