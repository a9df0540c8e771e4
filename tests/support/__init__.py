"""Helpers shared by the tests (no tests here); ``FIXTURES_DIR`` is the recorded data, ``tests/fixtures/``."""

from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures"
