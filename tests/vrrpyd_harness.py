"""Test-side helpers for lab tests: the root policy, and re-exports of vrrpy.lab's daemon tools."""

from __future__ import annotations

import os

import pytest

from conftest import in_ci, require_tool
from vrrpy.lab import Daemon, wait_for

__all__ = ["Daemon", "require_root", "wait_for"]


def require_root() -> None:
    """Skip without root (fail in CI): these tests build namespaces and raw sockets."""
    require_tool("ip")
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("needs root (CI=true: tests must run as root)")
        pytest.skip("needs root")
