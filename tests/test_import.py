"""``import vrrpy`` stays cheap: no scapy, no pyroute2, no asyncio on the import path."""

from __future__ import annotations

import subprocess
import sys


def test_import_vrrpy_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, vrrpy, vrrpy.sim\n"
        "heavy = [m for m in ('scapy', 'pyroute2', 'asyncio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
