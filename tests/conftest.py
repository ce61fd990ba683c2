"""Shared test helpers.

Policy for external tools (tshark, ...): a test that needs one skips, with the
reason, when it is missing on a developer machine, and fails when ``CI=true``,
so that CI can never go green by silently skipping its oracles.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """True when the environment says we run in CI (``CI=true``, any case)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def require_tool(name: str) -> str:
    """Return the path of executable ``name``; skip the test if absent (fail in CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name!r} not found on PATH"
        if in_ci():
            pytest.fail(f"{message} (CI=true: required tools must be installed)")
        pytest.skip(f"{message}; install it to run this oracle test")
    return path
