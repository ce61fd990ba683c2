"""``python3 -m vrrpy.demo``: a live failover between network namespaces, as a client sees it.

Three hosts on one bridge: h1 (priority 200) and h2 (priority 100) run vrrpyd
for 192.0.2.100; h3 is a client that talks to 192.0.2.100 and watches the wire.
The demo kills h1's vrrpyd with SIGKILL and takes its link down, then prints:
the gap on the wire between h1's last advert and h2's first, what RFC 9568
predicts for it, and when the client's ARP entry for 192.0.2.100 moved to h2's
MAC. Needs root (namespaces, raw sockets); leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from vrrpy.core.timers import master_down_interval
from vrrpy.lab import Capture, Daemon, Lab, wait_for

VIP = "192.0.2.100"


def _instance(priority: int, interval: float) -> dict[str, Any]:
    return {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 51,
        "priority": priority,
        "advert_interval": interval,
        "virtual_addresses": [f"{VIP}/24"],
    }


def _neigh_mac(lab: Lab) -> str:
    out = lab["h3"].run(["ip", "neigh", "show", VIP]).stdout.split()
    return out[out.index("lladdr") + 1] if "lladdr" in out else "-"


def _monitor_times(lines: list[str], mac: str) -> float | None:
    """Time of the first ``ip -ts monitor neigh`` line giving 192.0.2.100 the MAC ``mac``."""
    for line in lines:
        if VIP in line and mac in line and line.startswith("["):
            stamp = line[1 : line.index("]")]
            return datetime.fromisoformat(stamp).timestamp()
    return None


def run(interval: float) -> int:
    """Build the lab, fail over once, print what happened; 0 if it matched the RFC."""
    cs = round(interval * 100)
    predicted = master_down_interval(100, cs)
    print(f"vrrpy live failover: VRRPv3, VRID 51, {VIP}, advert interval {interval * 1000:g} ms")
    with tempfile.TemporaryDirectory(prefix="vrrpy-demo-") as tmp, Lab(hosts=3) as lab:
        work = Path(tmp)
        h1, h2, client = lab["h1"], lab["h2"], lab["h3"]
        mac1, mac2 = h1.mac, h2.mac
        print(
            f"  h1 {h1.ipv4} {mac1} priority 200 | h2 {h2.ipv4} {mac2} priority 100 | "
            f"h3 {client.ipv4} client"
        )
        d1 = Daemon(h1, work, [_instance(200, interval)]).start()
        d2 = Daemon(h2, work, [_instance(100, interval)]).start()
        if not wait_for(lambda: d1.instance()["state"] == "MASTER", 10 * interval + 5):
            print("h1 did not become Master; its log:\n" + d1.log.read_text())
            return 1
        wait_for(lambda: d2.instance()["state"] == "BACKUP", 5)
        print(
            f"\n[t0] h1 is {d1.instance()['state']}, h2 is {d2.instance()['state']}; {VIP} is on h1"
        )
        client.run(
            [
                sys.executable,
                "-c",
                "import socket; socket.socket(socket.AF_INET, "
                f"socket.SOCK_DGRAM).sendto(b'hello', ('{VIP}', 9))",
            ]
        )
        wait_for(lambda: _neigh_mac(lab) == mac1, 3)
        print(f"     client's ARP entry for {VIP}: {_neigh_mac(lab)} (h1)")

        capture = Capture(client)
        monitor = client.popen(["ip", "-ts", "monitor", "neigh"], stdout=subprocess.PIPE)
        time.sleep(max(3 * interval, 0.5))
        killed_at = time.time()
        d1.signal(signal.SIGKILL)
        h1.link(False)
        print("\n[kill] SIGKILL to h1's vrrpyd, h1's link down")
        wait_for(lambda: d2.instance()["state"] == "MASTER", 10 * interval + 5)
        wait_for(lambda: _neigh_mac(lab) == mac2, 5)
        time.sleep(max(interval, 0.3))
        records = capture.stop()
        monitor.send_signal(signal.SIGTERM)
        lines = monitor.communicate(timeout=5)[0].decode().splitlines()

    old = [r for r in records if r["kind"] == "vrrp" and r["src"] == str(h1.ipv4)]
    new = [r for r in records if r["kind"] == "vrrp" and r["src"] == str(h2.ipv4)]
    garps = [r for r in records if r["kind"] == "arp" and r["sender_ip"] == VIP]
    if not old or not new:
        print("no failover seen on the wire")
        return 1
    gap = new[0]["t"] - old[-1]["t"]
    moved = _monitor_times(lines, mac2)
    print(
        f"\n[wire, seen by h3] h1's last advert  {old[-1]['t'] - killed_at:+9.4f} s from the kill"
    )
    print(f"                   h2's first advert {new[0]['t'] - killed_at:+9.4f} s")
    print(
        f"                   gap {gap * 1000:.1f} ms; RFC 9568 predicts {predicted * 1000:.1f} ms "
        f"(3 x {interval * 1000:g} ms + Skew_Time for priority 100)"
    )
    if garps:
        print(
            f"                   {len(garps)} gratuitous ARP(s) for {VIP} from "
            f"{garps[0]['sender_mac']}, the first {garps[0]['t'] - new[0]['t']:+.4f} s "
            "after h2's first advert"
        )
    if moved is not None:
        print(
            f"[client] ARP entry for {VIP} moved to {mac2} (h2) "
            f"{moved - killed_at:+.4f} s from the kill, {moved - new[0]['t']:+.4f} s after "
            "h2's first advert"
        )
    else:
        print(f"[client] ARP entry for {VIP} is now {mac2} (h2)")
    ok = abs(gap - predicted) < max(0.05, 0.05 * predicted)
    print(
        f"\nresult: {'matches' if ok else 'DOES NOT match'} the RFC prediction "
        f"(difference {(gap - predicted) * 1000:+.1f} ms); the lab is gone."
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the demo."""
    parser = argparse.ArgumentParser(
        prog="python3 -m vrrpy.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--interval", type=float, default=1.0, help="advert interval in seconds")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("the live demo needs root (network namespaces, raw sockets)", file=sys.stderr)
        return 2
    return run(args.interval)


if __name__ == "__main__":
    sys.exit(main())
