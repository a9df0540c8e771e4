"""Issue 18, item 1: ``make demo`` and ``make test`` are the first commands on a fresh clone.

They must create ``.venv`` and install into it themselves (before, they failed with ``.venv/bin/python:
No such file``), once: an install stamp that depends on ``pyproject.toml`` keeps the next run fast and
reinstalls when the dependencies change. Checked with ``make -n`` (print, do not run) in a copy of the
Makefile without ``.venv``: cheap, no network. ``.ci/run`` proves the real thing on its fresh clone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
INSTALL = "-m pip install --quiet -e '.[fast]' --group test --group conformance --group lint"

pytestmark = pytest.mark.skipif(MAKE is None, reason="no make on this machine")


def dry_run(where: Path, target: str) -> list[str]:
    """The commands ``make <target>`` would run in ``where``."""
    assert MAKE is not None
    # Run by `make test`, this is a sub-make: without these it would print "Entering directory" lines
    # and take the outer make's flags (MAKEFLAGS, MAKELEVEL); PYTHON and VENV as the Makefile defaults them.
    outer = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "PYTHON", "VENV")
    env = {k: v for k, v in os.environ.items() if k not in outer}
    result = subprocess.run(
        [MAKE, "--no-print-directory", "-n", target],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.splitlines()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The Makefile and pyproject.toml as a fresh clone has them: no ``.venv``."""
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def installed(clone: Path) -> None:
    """A ``.venv`` as the first run leaves it (an interpreter and a stamp newer than pyproject.toml)."""
    python = clone / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    stamp = clone / ".venv" / ".installed"
    stamp.write_text("")
    old = (clone / "pyproject.toml").stat().st_mtime - 60
    os.utime(clone / "pyproject.toml", (old, old))


@pytest.mark.parametrize(
    ("target", "command"),
    [("demo", ".venv/bin/python -m rawproxy demo"), ("test", ".venv/bin/python -m pytest")],
)
def test_ops01_the_two_commands_install_first_on_a_fresh_clone(
    clone: Path, target: str, command: str
) -> None:
    lines = dry_run(clone, target)
    assert lines[0] == "python3 -m venv .venv", lines
    install = lines.index(f".venv/bin/python {INSTALL}")
    assert lines.index("touch .venv/.installed") == install + 1
    assert lines[-1] == command and lines.index(command) > install


@pytest.mark.parametrize("target", ["demo", "test", "check", "unit"])
def test_ops01_after_the_first_run_nothing_is_installed_again(clone: Path, target: str) -> None:
    installed(clone)
    lines = dry_run(clone, target)
    assert not any(line.startswith("python3 -m venv") or "pip install" in line for line in lines), lines


def test_ops01_a_changed_pyproject_installs_again(clone: Path) -> None:
    installed(clone)
    new = (clone / ".venv" / ".installed").stat().st_mtime + 60
    os.utime(clone / "pyproject.toml", (new, new))  # the dependencies changed since the install
    lines = dry_run(clone, "test")
    assert lines == [f".venv/bin/python {INSTALL}", "touch .venv/.installed", ".venv/bin/python -m pytest"]


def test_ops01_ci_runs_the_two_commands_without_make_install() -> None:
    """``.ci/run`` proves it on its fresh clone: ``make demo`` (in a venv of its own, so that it too starts
    from nothing) and ``make test`` run with no ``make install`` before them."""
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    commands = [line.split("#")[0].strip() for line in lines if line.strip().startswith("make ")]
    assert "make install" not in commands
    assert commands.index("make test") < commands.index("make check")  # test is the first to install
    assert any(c.startswith("make demo") for c in commands)
