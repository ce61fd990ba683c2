"""pytest configuration for tests/. Shared helpers live in support.py (see its docstring)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support import require_root
from vrrpy.lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Three namespace hosts on a bridge (h1, h2: routers; h3: client and capture); root."""
    require_root()
    with Lab(hosts=3) as built:
        yield built
