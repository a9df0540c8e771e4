"""Identifiers that need only be unique: message, completion and tool-call ids.

From ``random``'s generator rather than ``os.urandom``: an id is not a secret, and ``os.urandom`` is a
``getrandom()`` system call each time, on every stream. ``random`` reseeds itself in a forked child, so
worker processes do not repeat one another's ids.
"""

from __future__ import annotations

from random import getrandbits

__all__ = ["random_hex"]


def random_hex(n: int) -> str:
    """``n`` random lowercase hex digits."""
    return f"{getrandbits(4 * n):0{n}x}"
