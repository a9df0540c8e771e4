"""The package's imports flow one way: no cycle, and no import that climbs a layer.

Layers, lowest first (DESIGN.md, "Where the house goes next"): a module may import its own layer's
modules and any lower layer's, never a higher one. Every import counts, those inside functions and under
``TYPE_CHECKING`` too: a lazy import is still a dependency. ``rawproxy/__init__.py`` is the public facade
(its names load on first use) and is not part of the graph; ``from .. import __version__`` is a leaf's.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "rawproxy"

# unit -> layer; a unit is a top-level module or subpackage of rawproxy
LAYERS: dict[str, int] = {
    # 0: leaves, sans-I/O or plain data
    **dict.fromkeys(
        [
            "_types",
            "ids",
            "ir",
            "sse",
            "http1",
            "errors",
            "timers",
            "profiles",
            "models",
            "tokens",
            "toolcalls",
            "carrier",
        ],
        0,
    ),
    "dialects": 1,  # the only owner of dialect knowledge
    "translate": 2,  # glue between two dialects
    **dict.fromkeys(["routing", "client", "observe"], 3),
    "config": 4,  # builds the routing specs
    "exchange": 5,
    **dict.fromkeys(["server", "reload"], 6),
    "service": 7,  # the composition root
    **dict.fromkeys(["embed", "demo", "doctor", "workers", "__main__", "testing"], 8),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py") if p != PACKAGE / "__init__.py"}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The rawproxy modules ``name`` imports (a ``from pkg import sub`` names the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("rawproxy"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    found.add(sub)
                elif target in known:
                    found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
    found.discard(name)
    return found


def _unit(module: str) -> str:
    return module.split(".")[1]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_every_unit_has_a_layer() -> None:
    units = {_unit(m) for m in _modules()}
    assert units <= set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


def test_no_import_climbs_a_layer() -> None:
    climbs = [
        f"{module} (layer {LAYERS[_unit(module)]}) imports {target} (layer {LAYERS[_unit(target)]})"
        for module, targets in _graph().items()
        for target in targets
        if LAYERS[_unit(target)] > LAYERS[_unit(module)]
    ]
    assert not climbs, "\n".join(climbs)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph``, as its nodes in order, or None (a depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_cycle_between_units() -> None:
    units: dict[str, set[str]] = {}
    for module, targets in _graph().items():
        units.setdefault(_unit(module), set()).update(_unit(t) for t in targets if _unit(t) != _unit(module))
    assert _cycle(units) is None, " -> ".join(_cycle(units) or [])


def test_no_cycle_between_modules() -> None:
    """Inside a unit too, but for a package's ``__init__`` re-exporting its own modules (which import
    nothing back from it)."""
    graph = _graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


@pytest.mark.parametrize(
    "graph, cyclic",
    [
        ({"a": {"b"}, "b": {"a"}}, True),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"b"}, "b": set()}, False),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], cyclic: bool) -> None:
    assert (_cycle(graph) is not None) == cyclic
