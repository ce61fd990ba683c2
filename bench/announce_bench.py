"""From a new Master's first advert to its first gratuitous ARP / unsolicited NA, on the wire.

A client moves its neighbour entry on the announcement, not on the advert, so
what a takeover costs the LAN ends when the first GARP (IPv4) or unsolicited
NA (IPv6) leaves. Between the two the runtime installs the virtual address.
This bench times that stretch for the two ways of doing it, alternately, in
one process on lab host h1, while h2 captures with kernel timestamps:

* ``pyroute2``: the path vrrpyd took until now: ``Netlink.add`` (a hop to
  pyroute2's worker thread, its message building and ack parsing), then
  ``Announcer.send`` (frames cached, MAC checked per call);
* ``rtnl``: ``AddressSocket.send_add`` (one ``send`` of a struct-packed
  request; the ack is read later, untimed) then ``Announcer.send_frames`` with
  the frames built at start.

Each trial sends a VRRP-sized advert (VRID 51 for pyroute2, 52 for rtnl) on
a raw IP protocol 112 socket, then adds the virtual address and announces it;
the address is removed (untimed) before the next trial. Reported: the gap from
the advert to the announcement as h2 saw them (median, p99, max), and the same
gap inside the sender (from the advert's ``send`` returning to the
announcement's), in microseconds. Needs root and iproute2.

    python bench/announce_bench.py [--trials 500] [--family 4,6] [--spacing 0.01]

Wrap it in ``flock /tmp/vrrpy-heavy.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_interface
from typing import Any

from common import source_revision

PATHS = {51: "pyroute2", 52: "rtnl"}
VIP = {4: "192.0.2.100/24", 6: "2001:db8::100/64"}
VMAC = {4: "00:00:5e:00:01:33", 6: "00:00:5e:00:02:33"}
WARMUP = 20

# A stdlib-only sniffer for h2: VRRP adverts (VRID) and announcements of the
# virtual address, with the kernel's receive timestamps; one JSON list at EOF on stdin.
CAPTURE = r"""
import json, select, socket, struct, sys
vip = bytes.fromhex(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
s.setsockopt(socket.SOL_SOCKET, 33, 1 << 22)  # SO_RCVBUFFORCE
records = []
print("ready", flush=True)
while True:
    ready = select.select([s, sys.stdin], [], [], 1.0)[0]
    if sys.stdin in ready:
        break
    if s not in ready:
        continue
    data, anc, _, _ = s.recvmsg(2048, 64)
    stamp = None
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == 35:
            sec, nsec = struct.unpack("qq", value[:16])
            stamp = sec * 1_000_000_000 + nsec
    etype = data[12:14]
    if etype == b"\x08\x00" and data[23] == 112:
        records.append((stamp, "advert", data[14 + (data[14] & 15) * 4 + 1]))
    elif etype == b"\x86\xdd" and data[20] == 112:
        records.append((stamp, "advert", data[55]))
    elif etype == b"\x08\x06" and data[28:32] == vip:
        records.append((stamp, "announce", 0))
    elif etype == b"\x86\xdd" and data[20] == 58 and data[54] == 136 and data[62:78] == vip:
        records.append((stamp, "announce", 0))
print(json.dumps(records), flush=True)
"""


def sender(family: int, trials: int, spacing: float, source: str) -> None:
    """Run in h1: WARMUP + ``trials`` rounds of each path, alternating; print sender timings."""
    from vrrpy.codec.vrrp import Advertisement, encode_vrrp
    from vrrpy.net.addresses import Netlink
    from vrrpy.net.announce import Announcer
    from vrrpy.net.rtnl import AddressSocket

    ifindex = socket.if_nametoindex("eth0")
    vip = ip_interface(VIP[family])
    mac = VMAC[family]
    if family == 4:
        group: tuple[Any, ...] = ("224.0.0.18", 0)
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        raw.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        destination: IPv4Address | IPv6Address = IPv4Address("224.0.0.18")
    else:
        group = ("ff02::12", 0, 0, ifindex)
        raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 112)
        raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        raw.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        destination = IPv6Address("ff02::12")
    adverts = {
        vrid: encode_vrrp(
            Advertisement(3, vrid, 100, 1, (vip.ip,)), ip_address(source), destination
        )
        for vrid in PATHS
    }
    netlink = Netlink()
    rtnl = AddressSocket()
    announcer = Announcer("eth0")
    frames = announcer.frames([vip.ip], mac)
    raw_send = raw.sendto
    gaps: dict[int, list[int]] = {vrid: [] for vrid in PATHS}
    clock = time.perf_counter_ns
    for trial in range(WARMUP + trials):
        for vrid in PATHS if trial % 2 else reversed(PATHS):
            advert = adverts[vrid]
            if vrid == 51:
                raw_send(advert, group)
                t0 = clock()
                netlink.add(ifindex, vip)
                announcer.send([vip.ip], mac)
                t1 = clock()
                netlink.remove(ifindex, vip)
            else:
                raw_send(advert, group)
                t0 = clock()
                rtnl.send_add(ifindex, vip)
                announcer.send_frames(frames)
                t1 = clock()
                rtnl.send_remove(ifindex, vip)
                acks = rtnl.read_acks()
                if [error for _, error in acks] != [0, 0]:
                    raise SystemExit(f"rtnl acks: {acks}")
            if trial >= WARMUP:
                gaps[vrid].append(t1 - t0)
            time.sleep(spacing)
    netlink.close()
    rtnl.close()
    announcer.close()
    print(json.dumps({"sender": gaps, "send_errors": announcer.send_errors}), flush=True)


def _stats(values_ns: list[int]) -> str:
    if not values_ns:
        return f"{'-':>8} {'-':>8} {'-':>8}"
    us = sorted(v / 1000 for v in values_ns)
    p99 = us[max(0, int(len(us) * 0.99) - 1)]
    return f"{statistics.median(us):8.1f} {p99:8.1f} {us[-1]:8.1f}"


def _wire_gaps(records: list[list[Any]]) -> tuple[dict[int, list[int]], int]:
    """Advert -> next announcement, per VRID, skipping each VRID's warm-up; and misses."""
    records.sort(key=lambda r: r[0])
    gaps: dict[int, list[int]] = {vrid: [] for vrid in PATHS}
    seen = dict.fromkeys(PATHS, 0)
    missed = 0
    pending: tuple[int, int] | None = None
    for stamp, kind, vrid in records:
        if kind == "advert" and vrid in PATHS:
            if pending is not None:
                missed += 1
            seen[vrid] += 1
            pending = (stamp, vrid) if seen[vrid] > WARMUP else None
        elif kind == "announce" and pending is not None:
            gaps[pending[1]].append(stamp - pending[0])
            pending = None
    return gaps, missed


def run(family: int, trials: int, spacing: float) -> None:
    from vrrpy.lab import Lab

    with Lab(hosts=2) as lab:
        h1, h2 = lab["h1"], lab["h2"]
        lab.wait_for_dad()
        source = str(h1.ipv4 if family == 4 else h1.link_local)
        vip = ip_interface(VIP[family]).ip.packed.hex()
        capture = h2.popen(
            [sys.executable, "-c", CAPTURE, vip],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert capture.stdin is not None and capture.stdout is not None
        if capture.stdout.readline().strip() != b"ready":
            raise SystemExit("the capture did not start")
        argv = [sys.executable, __file__, "--sender", str(family), str(trials), str(spacing)]
        out = h1.run([*argv, source], timeout=60 + trials * (spacing + 0.01) * 4).stdout
        time.sleep(0.2)
        captured, _ = capture.communicate(b"stop\n", timeout=60)
    report = json.loads(out.splitlines()[-1])
    sender_gaps = {int(k): v for k, v in report["sender"].items()}
    wire, missed = _wire_gaps(json.loads(captured.decode().splitlines()[-1]))
    kind = "GARP" if family == 4 else "unsolicited NA"
    print(f"\nIPv{family}: advert -> first {kind}, microseconds ({trials} trials per path)")
    print(f"{'path':10} {'on the wire (h2)':>26}   {'in the sender':>26}")
    print(f"{'':10} {'median':>8} {'p99':>8} {'max':>8}   {'median':>8} {'p99':>8} {'max':>8}")
    for vrid, name in PATHS.items():
        row = f"{name:10} {_stats(wire[vrid])}   {_stats(sender_gaps[vrid])}"
        print(f"{row}   (n={len(wire[vrid])})")
    if missed or report["send_errors"]:
        print(f"adverts with no announcement seen: {missed}; send errors: {report['send_errors']}")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        family, trials, spacing, source = sys.argv[2:6]
        sender(int(family), int(trials), float(spacing), source)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=500, help="per path and family")
    parser.add_argument("--family", default="4,6", help="4, 6 or 4,6")
    parser.add_argument("--spacing", type=float, default=0.01, help="seconds between trials")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (namespaces, raw sockets)", file=sys.stderr)
        return 2
    print(
        f"command: {' '.join(sys.argv)}; python {platform.python_version()}; "
        f"vrrpy {source_revision()}; kernel {platform.release()}; nproc {os.cpu_count()}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    for name in args.family.split(","):
        run(int(name), args.trials, args.spacing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
