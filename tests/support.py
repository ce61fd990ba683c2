"""What the tests share: the policy for tests that need root or a Debian package.

A test that needs one skips, with the reason, on a developer machine that lacks
it, and fails when ``CI=true``, so that CI can never go green by silently
skipping. (A module of its own, not conftest.py: ``tests/`` and ``interop/``
each have a conftest, and ``from conftest import ...`` would find either.)
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

from vrrpy.codec import IPPROTO_VRRP, IPAddress


def lab_instance(priority: int = 100, **overrides: Any) -> dict[str, Any]:
    """The lab tests' usual ``[[instance]]``: VI_1 on eth0, VRID 51, adverts every 100 ms,
    192.0.2.100/24; ``overrides`` replace or add keys."""
    return {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 51,
        "priority": priority,
        "advert_interval": 0.1,
        "virtual_addresses": ["192.0.2.100/24"],
        **overrides,
    }


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
        pytest.skip(f"{message}; install it to run this test")
    return path


def require_root() -> None:
    """Skip without root (fail in CI): these tests build namespaces and raw sockets."""
    require_tool("ip")
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("needs root (CI=true: tests must run as root)")
        pytest.skip("needs root")


# An independent reference for the codec tests: the RFC 1071 loop, and the
# pseudo-headers built byte by byte (vrrpy's codec never builds them).


def ref_checksum(data: bytes) -> int:
    """RFC 1071 checksum, word by word (independent of vrrpy.codec.checksum)."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ref_pseudo(src: IPAddress, dst: IPAddress, length: int) -> bytes:
    """The IPv4 (RFC 768) or IPv6 (RFC 8200 8.1) pseudo-header for a VRRP message."""
    if src.version == 4:
        return src.packed + dst.packed + bytes([0, IPPROTO_VRRP]) + length.to_bytes(2, "big")
    return src.packed + dst.packed + length.to_bytes(4, "big") + bytes([0, 0, 0, IPPROTO_VRRP])
