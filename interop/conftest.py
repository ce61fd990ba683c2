"""Fixtures for the keepalived interop suite: a lab, and routers of either implementation."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))

from support import in_ci
from vrrpy.lab import Lab


@pytest.fixture
def lab() -> Iterator[Lab]:
    """h1, h2: routers; h3: client and capture."""
    missing = [tool for tool in ("ip", "keepalived", "nft") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        message = f"interop needs {', '.join(missing)}"
        if in_ci():
            pytest.fail(message + " (CI=true: install it, run as root)")
        pytest.skip(message)
    with Lab(hosts=3) as built:
        yield built


MEASURED: list[tuple[str, str, float]] = []


@pytest.fixture
def measured(request: pytest.FixtureRequest) -> Any:
    """Record a measured figure (name, value in ms) for the run's summary."""

    def record(what: str, seconds: float) -> None:
        MEASURED.append((request.node.name, what, seconds * 1000))

    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print every takeover time the interop scenarios measured on the wire."""
    if not MEASURED:
        return
    terminalreporter.section("interop: measured on the wire (ms)")
    for test, what, value in MEASURED:
        terminalreporter.write_line(f"{value:9.1f}  {what:32}  {test}")
