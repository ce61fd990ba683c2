"""A split brain heals for the client too: vrrpyd routers and a client in a namespace lab.

h1 (r1, priority 200) and h2 (r2, priority 100) run vrrpyd with 100 ms adverts; h3 is
the client. r1 is cut off from VRRP by an nftables table in its namespace that drops
protocol 112 both ways, so r2 takes over too, and its announcements move the client's
neighbour entry for the virtual address to r2's MAC. Then the table is deleted. r1,
still Master, hears r2's advert (lower priority: a split brain), asserts itself and
re-announces the address; r2 steps down. The client must be back on r1's MAC within
two advert intervals of the heal, not when its neighbour entry times out.

Two vrrpyd Masters with the same interval send on the same beat of the monotonic clock
(docs/conformance.md, decision (h)), so after the heal their adverts cross on the wire
and r1 hears r2's before r2 has stepped down. A weaker Master that hears the better one
before it sends again yields silently, and nothing re-announces: that gap is covered
by `test_sim.py::test_weaker_master_that_hears_the_better_one_first_yields_without_a_re_announce`.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from support import lab_instance, require_root, require_tool
from vrrpy.lab import Capture, Daemon, Lab, wait_for

INTERVAL = 0.1
VIPS = {4: ("192.0.2.100", "192.0.2.100/24"), 6: ("2001:db8::100", "2001:db8::100/64")}

CUT = """table inet vrrpcut {
  chain input {
    type filter hook input priority -200;
    meta l4proto 112 drop
  }
  chain output {
    type filter hook output priority -200;
    meta l4proto 112 drop
  }
}
"""

_EVENT = re.compile(r"^\[(?P<stamp>[0-9T:.-]+)\]\s+(?P<rest>.*)$")


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root()
    require_tool("nft")
    with Lab(hosts=3) as built:
        yield built


def instance(priority: int, vip: str) -> dict[str, Any]:
    return lab_instance(priority, advert_interval=INTERVAL, virtual_addresses=[vip], garp_repeat=2)


def state(daemon: Daemon) -> str:
    return str(daemon.instance()["state"])


def counters(daemon: Daemon) -> dict[str, Any]:
    daemon.refresh()
    return dict(daemon.instance()["counters"])


def neighbour_events(path: Path, address: str) -> list[tuple[float, str]]:
    """(wall-clock time, line) of each change to ``address`` that ``ip -ts monitor`` logged."""
    events = []
    for line in path.read_text().splitlines():
        match = _EVENT.match(line)
        if match and match["rest"].split(" ", 1)[0] == address:
            events.append((datetime.fromisoformat(match["stamp"]).timestamp(), match["rest"]))
    return events


@pytest.mark.parametrize("family", [4, 6])
def test_split_brain_heal_moves_the_client_back_to_the_better_master_within_two_intervals(
    lab: Lab, tmp_path: Path, family: int
) -> None:
    vip, vip_prefix = VIPS[family]
    h1, h2, client = lab["h1"], lab["h2"], lab["h3"]
    r1 = Daemon(h1, tmp_path, [instance(200, vip_prefix)])
    r2 = Daemon(h2, tmp_path, [instance(100, vip_prefix)])
    r1.start()
    r2.start()
    assert wait_for(lambda: state(r1) == "MASTER" and state(r2) == "BACKUP", 3)
    assert wait_for(lambda: counters(r2)["adverts_received"] > 0, 2)

    # The client talks to the virtual address, so it holds a neighbour entry for it.
    af = "AF_INET" if family == 4 else "AF_INET6"
    send = f"socket.socket(socket.{af}, socket.SOCK_DGRAM).sendto(b'x', ('{vip}', 9))"
    client.run([sys.executable, "-c", f"import socket; {send}"])

    def neighbour() -> str:
        return client.run(["ip", f"-{family}", "neigh", "show", vip]).stdout

    assert wait_for(lambda: h1.mac in neighbour(), 3), neighbour()

    # Cut r1 off from VRRP: r2 hears nobody and takes over; both are Master.
    h1.run(["nft", "-f", "-"], input=CUT)
    assert wait_for(lambda: state(r2) == "MASTER", 3)
    assert wait_for(lambda: h2.mac in neighbour(), 3), neighbour()
    assert state(r1) == "MASTER"
    assert counters(r1)["split_brains"] == 0  # r1 hears nothing while cut off
    time.sleep(3 * INTERVAL)

    monitor_log = tmp_path / "neigh-monitor.log"
    with open(monitor_log, "wb") as out:
        client.popen(["ip", "-ts", "monitor", "neigh"], stdout=out, stderr=subprocess.STDOUT)
    capture = Capture(client)
    time.sleep(0.2)  # the monitor is subscribed (the capture is bound once it returns)

    healed_at = time.time()  # before the command: the heal is no earlier than this
    h1.run(["nft", "delete", "table", "inet", "vrrpcut"])

    assert wait_for(lambda: h1.mac in neighbour(), 2), neighbour()
    assert wait_for(lambda: state(r2) == "BACKUP", 3)
    time.sleep(0.2)
    records = capture.stop()
    back = [
        t for t, rest in neighbour_events(monitor_log, vip) if h1.mac in rest and t >= healed_at
    ]
    assert back, monitor_log.read_text()
    elapsed = back[0] - healed_at
    r2_source = "192.0.2.12" if family == 4 else str(h2.link_local)
    heard = [r["t"] for r in records if r["kind"] == "vrrp" and r["src"] == r2_source]
    reaction = back[0] - max(t for t in heard if t <= back[0])
    print(
        f"IPv{family}: client back on r1's MAC {elapsed * 1000:.1f} ms after the heal, "
        f"{reaction * 1000:.1f} ms after the advert of r2 that r1 answered"
    )
    assert elapsed < 2 * INTERVAL, elapsed

    if family == 4:  # the capture parses ARP: r1's gratuitous ARP came just before
        garps = [
            r["t"]
            for r in records
            if r["kind"] == "arp" and r["sender_ip"] == vip and r["src_mac"] == h1.mac
        ]
        assert garps and healed_at <= garps[0] <= back[0], (garps, back)

    assert state(r1) == "MASTER"
    assert counters(r1)["split_brains"] == 1
    assert counters(r2)["split_brains"] == 0
