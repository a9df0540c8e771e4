"""Every ID of the conformance catalogue that applies so far has a test named after it.

The catalogue is ``tests/CONFORMANCE.md`` (copied from the project's shared notes, and kept here from now
on), so the check runs on a fresh clone. Every section is checked: M26 (issue 15), RS (issue 16), CX
(issue 17), NET and OPS (issue 18) joined ``CHECKED_PREFIXES`` when each of their IDs had its test.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "tests" / "CONFORMANCE.md"
CHECKED_PREFIXES = ("A2O-", "O2A-", "X-", "M26-", "RS-", "CX-", "NET-", "OPS-")


def catalogue_ids() -> list[str]:
    text = CATALOGUE.read_text(encoding="utf-8")
    ids = re.findall(
        r"\*\*((?:A2O|O2A)-[A-Z]\d{2}|X-\d{2}|M26-\d{2}|RS-\d{2}|CX-\d{2}|NET-\d{2}|OPS-\d{2})\b", text
    )
    return sorted({i for i in ids if i.startswith(CHECKED_PREFIXES)})


# A regex, not ``ast.parse``: CPython 3.11's AST validator can fail with "recursion depth mismatch"
# once hypothesis has changed the recursion limit earlier in the same session.
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)


def function_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names.update(name.lower() for name in _DEF.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_catalogue_id_has_a_named_test() -> None:
    names = function_names()
    missing = []
    for ident in catalogue_ids():
        prefix, number = ident.lower().split("-")
        token = rf"{prefix}_?{number}"  # a2o_r05 or x_01 / x01
        if not any(re.search(rf"(^|_){token}($|_)", name) for name in names):
            missing.append(ident)
    assert len(catalogue_ids()) > 100, "the catalogue's IDs were not found: has its format changed?"
    assert not missing, f"catalogue IDs without a test named after them: {missing}"


def test_every_id_the_package_names_is_in_the_catalogue() -> None:
    """A comment that cites a catalogue ID (``A2O-S13``) points at a case that exists."""
    known = set(re.findall(r"\*\*([A-Z0-9]+-[A-Z]?\d{2})\b", CATALOGUE.read_text(encoding="utf-8")))
    cited: set[str] = set()
    for path in (ROOT / "rawproxy").rglob("*.py"):
        cited.update(
            re.findall(
                r"\b((?:A2O|O2A)-[A-Z]\d{2}|X-\d{2}|M26-\d{2}|RS-\d{2}|CX-\d{2}|NET-\d{2}|OPS-\d{2})\b",
                path.read_text(),
            )
        )
    assert cited, "no catalogue ID is cited in the package"
    assert not cited - known, f"IDs cited in rawproxy/ that the catalogue lacks: {sorted(cited - known)}"
