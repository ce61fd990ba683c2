"""``python -m vrrpy.drill CONFIG``: the failover drill (:mod:`vrrpy.drill.cli`)."""

from __future__ import annotations

import sys

from vrrpy.drill.cli import main, vrrpy_main

__all__ = ["main", "vrrpy_main"]

if __name__ == "__main__":
    sys.exit(main())
