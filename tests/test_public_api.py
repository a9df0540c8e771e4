"""The public surface: ``__all__`` lists exactly the documented names (httpx's public-API test)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys

import rawproxy

PUBLIC = {"Config", "Proxy", "serve", "__version__"}


def test_all_is_the_documented_public_api() -> None:
    assert sorted(rawproxy.__all__) == sorted(PUBLIC)
    assert len(rawproxy.__all__) == len(set(rawproxy.__all__))


def test_public_names_importable() -> None:
    for name in rawproxy.__all__:
        assert getattr(rawproxy, name) is not None
    from rawproxy import Config, __version__, serve

    assert inspect.isclass(Config)
    assert inspect.iscoroutinefunction(serve)
    assert re.fullmatch(r"\d+\.\d+\.\d+([.-]?\w+)*", __version__)


def test_config_is_the_config_module_class() -> None:
    from rawproxy.config import Config

    assert rawproxy.Config is Config


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        rawproxy.no_such_name  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("rawproxy.no_such_name should raise AttributeError")


def test_version_flag() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rawproxy", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"rawproxy {rawproxy.__version__}"
