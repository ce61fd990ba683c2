"""The namespace lab: hosts can talk over the bridge, and nothing survives teardown."""

from __future__ import annotations

import os
import subprocess

import pytest

from support import in_ci, require_tool
from vrrpy.lab import Lab


@pytest.fixture(autouse=True)
def _root_and_iproute2() -> None:
    require_tool("ip")
    if os.geteuid() != 0:
        if in_ci():
            pytest.fail("the namespace lab needs root (CI=true: tests must run as root)")
        pytest.skip("the namespace lab needs root")


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


def test_hosts_reach_each_other_over_ipv4_and_ipv6() -> None:
    with Lab(hosts=2) as lab:
        lab.wait_for_dad()
        code = (
            "import socket,sys\n"
            "for fam, dst in ((socket.AF_INET, '192.0.2.12'), (socket.AF_INET6, '2001:db8::c')):\n"
            "    s = socket.socket(fam, socket.SOCK_DGRAM)\n"
            "    s.connect((dst, 9))\n"
            "    print(s.getsockname()[0])\n"
        )
        out = lab["h1"].run(["python3", "-c", code]).stdout.split()
        assert out == ["192.0.2.11", "2001:db8::b"]
        # Layer 2 really works: the kernel resolves the peer's MAC over the bridge.
        lab["h1"].run(
            [
                "python3",
                "-c",
                "import socket; s=socket.socket(socket.AF_INET, "
                "socket.SOCK_DGRAM); s.sendto(b'x', ('192.0.2.12', 9))",
            ]
        )
        for _ in range(50):
            neigh = lab["h1"].run(["ip", "neigh", "show", "192.0.2.12"]).stdout
            if lab["h2"].mac in neigh:
                break
            subprocess.run(["sleep", "0.05"], check=True)
        assert lab["h2"].mac in neigh
        assert lab["h1"].link_local.is_link_local


def test_teardown_removes_namespaces_links_and_processes_even_on_error() -> None:
    before = _netns_names()
    proc = None
    with pytest.raises(RuntimeError), Lab(hosts=2) as lab:
        proc = lab["h1"].popen(["sleep", "300"])
        assert {h.netns for h in lab.hosts.values()} <= _netns_names()
        raise RuntimeError("a test failed in the middle")
    assert proc is not None and proc.poll() is not None
    assert _netns_names() == before
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert lab.bridge not in links


def test_link_down_and_up() -> None:
    with Lab(hosts=1) as lab:
        host = lab["h1"]
        host.link(False)
        assert "state DOWN" in host.run(["ip", "link", "show", "eth0"]).stdout
        host.link(True)
        assert "DOWN" not in host.run(["ip", "-br", "link", "show", "eth0"]).stdout.split()[1]
