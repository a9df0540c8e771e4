"""``python -m rawproxy.testing.fake_upstream``: the same as ``python -m rawproxy fake-upstream``."""

from __future__ import annotations

import sys

from .server import main

sys.exit(main())
