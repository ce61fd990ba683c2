"""The outage as the client sees it: vrrpyd beside keepalived, same lab, same run, IPv4 and IPv6.

``failover_bench.py`` times the gap between adverts; a client does not read
adverts. It keeps sending to the MAC address in its neighbour entry for the
virtual address until a gratuitous ARP (IPv4) or an unsolicited Neighbor
Advertisement (IPv6) moves that entry to the new Master. What the client lives
through ends when its kernel moves the entry, so this bench measures up to
there, and the schedule of announcements after it.

The lab (``vrrpy.lab.Lab``, fresh for every run): h1 (priority 200) and h2
(priority 100) route one VRRPv3 virtual router (VRID 51; 192.0.2.100/24 or
2001:db8::100/64), h3 is the client and watches. Each implementation runs
with its defaults for announcements (vrrpyd: ``garp_*`` unset; keepalived:
``garp_master_repeat`` 5, ``garp_master_delay`` 5 s, no refresh) and the same
instance as the other (keepalived: ``native_ipv6`` for IPv6; it warns that the
first IPv6 address is not link-local, as expected). Runs alternate between the
implementations so that drift in the machine hits both alike.

What is not the same by default, and is printed per run: scheduling. vrrpyd
runs its loop at SCHED_RR 10 unless told otherwise; keepalived 2.2.7 is
time-shared unless given ``vrrp_rt_priority`` (``--keepalived-rt-priority N``
gives it that). keepalived is started as ``failover_bench.py`` starts it, plus
``-G`` (no syslog; see :class:`ConsoleFreeKeepalived`: without it, on a
machine with no ``/dev/log``, each log line is written to the serial console
between keepalived's first advert and its first announcement;
``--keepalived-syslog`` puts that back).

One run:

1. h3 starts two watchers (below), then both routers start; wait until h1 is
   Master (vrrpyd: both state files; keepalived: h1 adverting alone at
   priority 200 for ``--quiet-for`` intervals) and holds the address;
2. the client learns the address: h3 sends one UDP datagram to it (port 9),
   which makes its kernel resolve the address (ARP request / Neighbor
   Solicitation answered by h1's kernel); the entry must then hold h1's MAC
   and be REACHABLE or STALE (anything else fails the run). The datagram does
   what a ping would for the entry, without the ``ping`` binary and without
   depending on vrrpyd's Accept_Mode (``accept = false`` by default: vrrpyd
   drops traffic to the address, not the resolution). Then 1.1 s pass: past
   the kernel's ``locktime`` (1 s), which otherwise keeps a fresh IPv4 entry
   from being overridden by a non-gratuitous ARP;
3. the Master dies as in ``failover_bench.py``: every process of h1's router
   is stopped (SIGSTOP) then SIGKILLed (keepalived: parent first stopped, then
   its VRRP child and the parent killed, so the child cannot resign with
   priority 0 and the parent cannot respawn it), and h1's link is set down;
4. h3 watches for ``--observe`` seconds (6) after h2's first advert, so that
   keepalived's later bursts show; then the entry must hold h2's MAC.

The watchers in h3, each a small stdlib script in its own process:

* a sniffer: an AF_PACKET socket on ``eth0`` with the kernel's receive
  timestamps (SO_TIMESTAMPNS), printing VRRP adverts (source MAC, priority)
  and announcements of the address: ARP with sender = target = the address
  (a gratuitous request or reply) and Neighbor Advertisements for it with the
  Solicited flag clear; the answers to the client's own resolution (a plain
  ARP reply, a solicited NA) are not announcements. IPv6 adverts come from
  link-local addresses, so everything is told apart by source MAC;
* a neighbour listener: a raw NETLINK_ROUTE socket joined to RTNLGRP_NEIGH
  (the kernel's neighbour notifications, IPv4 and IPv6 alike; there is no
  IPv6-only neighbour group), printing every RTM_NEWNEIGH / RTM_DELNEIGH for
  the address with its link-layer address and state.

Figures, from h3's point of view (milliseconds):

* gap: h2's first advert - h1's last advert (priority above 0), on the wire;
* first announcement: h2's first GARP / unsolicited NA - h2's first advert;
* client switch: the first notification giving the address h2's MAC - h2's
  first advert;
* notify lag: that notification - the first announcement (the client
  kernel's ARP / NDP processing plus the listener's wake-up; a check that
  the first announcement is what moved the entry);
* client-visible outage: the notification - h1's last advert. The outage
  really starts when h1 dies, somewhere within one interval after its last
  advert; the last advert is the latest instant the wire shows;
* schedule: h2's announcements over the window, grouped into bursts (frames
  less than 50 ms apart are one burst): when each burst starts, relative to
  h2's first advert, and how many frames it holds.

Clocks and limits. Netlink has no receive timestamp, so the listener stamps
each notification with ``time.time_ns()`` (CLOCK_REALTIME) as ``recv``
returns; the sniffer's SO_TIMESTAMPNS stamps are CLOCK_REALTIME too, taken
when the frame entered h3's receive path. The kernel moves the entry and
queues the notification synchronously while it processes the frame (softirq),
so the notification lands a few microseconds after the frame's stamp plus the
listener's wake-up, which a loaded machine stretches: ``notify lag`` shows
it, and it is the same for both implementations. The listener runs in
SCHED_FIFO 50 (``--no-rt-listener`` for plain time-sharing), above both
routers: it sleeps in ``recv`` but for a handful of notifications a run, and
time-shared on a busy 2-core machine it woke up to 0.5 ms late (seen here), as
much as the differences being measured; at vrrpyd's own priority it would
wait behind a vrrpyd running on its CPU. The sniffer needs no priority: its
stamps are the kernel's, taken whenever it is scheduled. Everything h3
stamps went through the same veth, bridge and veth, so differences between
stamps are differences between send times, to within the path's jitter. A
clock step (NTP) between two stamps would show in both implementations' runs
alike and is not corrected.

``--cross-check`` runs, beside the watchers, ``dumpcap`` on h3's ``eth0`` and
``ip -ts monitor neigh`` in h3, and after each run recomputes the gap, the
first announcement and the announcement count from tshark's reading of the
pcap, and the client switch from ``ip monitor``'s lines (microsecond stamps
taken by a third process), printing the differences: an independent dissector
and an independent listener.

Printed: the command line, the machine, keepalived's version, vrrpy's git
revision and the Python version, one line per run, then per interval and
family a table (median [min .. max]) of vrrpy beside keepalived, the burst
schedules, and the targets:

1. vrrpy's client-visible outage no later than keepalived's (median), every
   interval and family;
2. vrrpy's first announcement within 0.2 ms of its first advert (median;
   the worst run is printed beside).

A report, not a test: exit 0 whatever the figures, 1 when the lab could not be
built, 2 without root. Run as root, on a shared machine under ``flock
/tmp/vrrpy-heavy.lock``: ``python bench/outage_bench.py`` (about 6 minutes;
``--intervals``, ``--families``, ``--runs``, ``--observe``, ``--impl``,
``--keepalived-rt-priority``, ``--keepalived-syslog``, ``--cross-check``).
It reuses ``failover_bench.py``'s keepalived wrapper and header (same
directory).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from failover_bench import (
    Keepalived,
    LabError,
    RunError,
    built_lab,
    print_header,
    root_and_impls,
    vrrpyd_complaints,
    wait_elected,
)
from vrrpy.core.timers import master_down_interval
from vrrpy.lab import Daemon, Host, Lab, stop_process, wait_for

VRID = 51
VIPS = {4: "192.0.2.100", 6: "2001:db8::100"}
PREFIX = {4: 24, 6: 64}
PRIORITIES = {"h1": 200, "h2": 100}
IMPLS = ("vrrpy", "keepalived")
DEFAULT_INTERVALS = (0.01, 0.1)
BURST_GAP = 0.05  # s: announcements closer than this belong to one burst
LOCKTIME = 1.1  # s: past the kernel's neigh locktime (1 s) after the client learns the entry
LISTENER_PRIORITY = 50  # SCHED_FIFO: above both routers' (vrrpyd's default SCHED_RR 10)
TARGET_ANNOUNCE = 0.0002  # s: first announcement within 0.2 ms of the first advert
NS = 1_000_000_000
NUD = {
    0x01: "INCOMPLETE",
    0x02: "REACHABLE",
    0x04: "STALE",
    0x08: "DELAY",
    0x10: "PROBE",
    0x20: "FAILED",
    0x40: "NOARP",
    0x80: "PERMANENT",
}

LINK_LOCAL = re.compile(r"\bfe80::[0-9a-f:]+", re.IGNORECASE)  # folded in log lines: new per run
Record = dict[str, Any]

# ---------------------------------------------------------------- the watchers in h3

# Sniffer: ARGV ifname, address. One JSON line per VRRP advert and per ARP / NA
# for the address, "t" the kernel's receive time (CLOCK_REALTIME, integer ns).
_SNIFFER = r"""
import json, socket, struct, sys, time
ifname, vip_text = sys.argv[1], sys.argv[2]
six = ":" in vip_text
vip = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, vip_text)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((ifname, 0))
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
s.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
print(json.dumps({"kind": "ready"}), flush=True)
while True:
    data, anc, _, addr = s.recvmsg(2048, 64)
    if addr[2] == 4:  # PACKET_OUTGOING: the client's own frames
        continue
    t = None
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == 35:
            sec, nsec = struct.unpack("qq", value[:16])
            t = sec * 1_000_000_000 + nsec
    etype = data[12:14]
    rec = None
    if etype == b"\x08\x00" and len(data) >= 38 and data[23] == 112:
        p = 14 + (data[14] & 15) * 4
        rec = {"kind": "advert", "vrid": data[p + 1], "priority": data[p + 2]}
    elif etype == b"\x86\xdd" and len(data) >= 58 and data[20] == 112:
        rec = {"kind": "advert", "vrid": data[55], "priority": data[56]}
    elif etype == b"\x08\x06" and len(data) >= 42 and data[28:32] == vip:
        rec = {"kind": "arp", "op": data[21], "sha": data[22:28].hex(":"),
               "gratuitous": data[38:42] == vip}
    elif (etype == b"\x86\xdd" and len(data) >= 78 and data[20] == 58 and data[54] == 136
          and data[62:78] == vip):
        flags = data[58]
        tlla = None
        o = 78
        while o + 8 <= len(data) and data[o + 1]:
            if data[o] == 2:
                tlla = data[o + 2:o + 8].hex(":")
            o += data[o + 1] * 8
        rec = {"kind": "na", "router": bool(flags & 0x80), "solicited": bool(flags & 0x40),
               "override": bool(flags & 0x20), "tlla": tlla}
    if rec is not None:
        rec["t"] = t if t is not None else time.time_ns()
        rec["stamped"] = t is not None
        rec["src"] = data[6:12].hex(":")
        print(json.dumps(rec), flush=True)
"""

# Neighbour listener: ARGV address, rt (0/1), SCHED_FIFO priority. One JSON line per RTM_NEWNEIGH /
# RTM_DELNEIGH for the address, "t" = time.time_ns() when recv returned.
_LISTENER = r"""
import json, os, socket, struct, sys, time
vip_text, rt = sys.argv[1], sys.argv[2] == "1"
six = ":" in vip_text
vip = socket.inet_pton(socket.AF_INET6 if six else socket.AF_INET, vip_text)
sched = "SCHED_OTHER"
if rt:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(int(sys.argv[3])))
        sched = f"SCHED_FIFO {sys.argv[3]}"
    except OSError as exc:
        sched = f"SCHED_OTHER (SCHED_FIFO refused: {exc})"
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(socket.SOL_SOCKET, 33, 1 << 20)  # SO_RCVBUFFORCE
s.bind((0, 1 << (3 - 1)))  # RTMGRP_NEIGH = 1 << (RTNLGRP_NEIGH - 1): both families
print(json.dumps({"kind": "ready", "sched": sched}), flush=True)
while True:
    try:
        data = s.recv(1 << 16)
    except OSError as exc:  # ENOBUFS: notifications were lost
        print(json.dumps({"kind": "error", "t": time.time_ns(), "error": str(exc)}), flush=True)
        continue
    t = time.time_ns()
    off = 0
    while off + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if mtype in (28, 29) and length >= 28:  # RTM_NEWNEIGH, RTM_DELNEIGH
            family, ifindex, state, flags, ntype = struct.unpack_from("=B3xiHBB", data, off + 16)
            dst = lladdr = None
            a, end = off + 28, off + length
            while a + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype == 1:
                    dst = data[a + 4:a + alen]
                elif atype == 2:
                    lladdr = data[a + 4:a + alen].hex(":")
                a += (alen + 3) & ~3
            if dst == vip:
                print(json.dumps({"kind": "new" if mtype == 28 else "del", "t": t,
                                  "lladdr": lladdr, "state": state}), flush=True)
        off += (length + 3) & ~3
"""


class Watcher:
    """A JSON-lines script in a lab host, read by a thread; returns once it said it is ready."""

    def __init__(self, host: Host, script: str, *args: str) -> None:
        self.proc = host.popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            raise RunError(f"a watcher in {host.name} failed to start")
        self.ready: Record = json.loads(first)
        self.records: list[Record] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.records.append(json.loads(line))

    def stop(self) -> list[Record]:
        """Stop the script (by its PID) and return everything it printed."""
        stop_process(self.proc)
        self._reader.join(timeout=5)
        return self.records


# ---------------------------------------------------------------- the routers


def keepalived_config(
    router_id: str, family: int, priority: int, interval: float, rt_priority: int = 0
) -> str:
    """One VRRPv3 instance with keepalived's default announcements, the same as vrrpyd's.

    ``rt_priority`` above 0 adds ``vrrp_rt_priority`` (SCHED_RR for the VRRP
    process), keepalived's counterpart of vrrpyd's default real-time loop.
    """
    native = "    native_ipv6\n" if family == 6 else ""
    rt = f"    vrrp_rt_priority {rt_priority}\n" if rt_priority else ""
    return (
        f"global_defs {{\n    router_id {router_id}\n{rt}}}\n\n"
        "vrrp_instance VI_1 {\n"
        "    state BACKUP\n"
        "    interface eth0\n"
        f"    virtual_router_id {VRID}\n"
        f"    priority {priority}\n"
        f"    advert_int {interval:g}\n"
        "    version 3\n"
        f"{native}"
        "    virtual_ipaddress {\n"
        f"        {VIPS[family]}/{PREFIX[family]}\n"
        "    }\n"
        "}\n"
    )


class ConsoleFreeKeepalived(Keepalived):
    """failover_bench's keepalived, plus ``-G`` (``--no-syslog``): its log goes to its file only.

    Why: with ``-l`` keepalived opens syslog with LOG_CONS, and where there is
    no ``/dev/log`` (this lab's machines run no syslog daemon) glibc's syslog()
    falls back to writing every line to ``/dev/console``, synchronously. Its
    "Entering MASTER STATE" line is logged between the first advert and the
    first announcement, and strace showed that write taking 0.33 ms (the
    console is a serial port here), more on a busy machine: a cost of this lab,
    not of keepalived as deployed (where syslog() is one datagram to journald).
    ``--keepalived-syslog`` keeps the console fallback, to see the difference.
    """

    def __init__(self, host: Host, workdir: Path, config: str, syslog: bool) -> None:
        super().__init__(host, workdir, config)
        self.syslog = syslog

    def argv(self) -> list[str]:
        return super().argv() + ([] if self.syslog else ["-G"])


def vrrpy_instance(family: int, priority: int, interval: float) -> dict[str, Any]:
    """The vrrpyd instance matching :func:`keepalived_config` (announcement settings unset)."""
    return {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": VRID,
        "version": 3,
        "priority": priority,
        "advert_interval": interval,
        "virtual_addresses": [f"{VIPS[family]}/{PREFIX[family]}"],
    }


def _holds(host: Host, vip: str) -> bool:
    out = host.run(["ip", "-o", "addr", "show", "dev", "eth0"], check=False).stdout
    return f" {vip}/" in out


def neigh_entry(host: Host, vip: str) -> tuple[str | None, str]:
    """(MAC, state) of ``host``'s neighbour entry for ``vip`` on eth0; (None, "") if none."""
    words = host.run(["ip", "neigh", "show", "to", vip, "dev", "eth0"], check=False).stdout.split()
    mac = words[words.index("lladdr") + 1] if "lladdr" in words else None
    return mac, (words[-1] if words else "")


def scheduling(pid: int) -> str:
    """``pid``'s scheduling policy and priority (vrrpyd's loop thread is its main thread)."""
    names = {
        os.SCHED_OTHER: "SCHED_OTHER",
        os.SCHED_FIFO: "SCHED_FIFO",
        os.SCHED_RR: "SCHED_RR",
        os.SCHED_BATCH: "SCHED_BATCH",
        os.SCHED_IDLE: "SCHED_IDLE",
    }
    try:
        policy = os.sched_getscheduler(pid) & ~0x40000000  # SCHED_RESET_ON_FORK
        priority = os.sched_getparam(pid).sched_priority
    except OSError as exc:
        return f"scheduling unknown ({exc.strerror})"
    name = names.get(policy, str(policy))
    return f"{name} {priority}" if priority else name


def learn(client: Host, family: int) -> None:
    """Make the client resolve the address: one UDP datagram to it (discard port)."""
    af = "AF_INET6" if family == 6 else "AF_INET"
    client.run(
        [
            sys.executable,
            "-c",
            f"import socket; socket.socket(socket.{af}, socket.SOCK_DGRAM)"
            f".sendto(b'outage bench', ('{VIPS[family]}', 9))",
        ]
    )


# ---------------------------------------------------------------- cross-check


class CrossCheck:
    """dumpcap on the client's eth0 and ``ip -ts monitor neigh`` in it, beside the watchers."""

    def __init__(self, host: Host, work: Path, rt: bool) -> None:
        self.pcap = work / "h3.pcapng"
        self.dumpcap = host.popen(
            ["dumpcap", "-q", "-i", "eth0", "-w", str(self.pcap)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.dumpcap.stderr is not None
        line = b""
        while b"Capturing on" not in line:  # dumpcap says so once its socket is bound
            line = self.dumpcap.stderr.readline()
            if not line:
                raise RunError("dumpcap did not start")
        chrt = ["chrt", "-f", str(LISTENER_PRIORITY)] if rt and shutil.which("chrt") else []
        self.monitor = host.popen(
            [*chrt, "ip", "-ts", "monitor", "neigh"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.2)  # ip monitor prints nothing when ready

    def stop(self) -> tuple[list[Record], list[str]]:
        """Stop both; (tshark's reading of the pcap, ip monitor's lines)."""
        stop_process(self.dumpcap, signal.SIGINT)
        stop_process(self.monitor)
        assert self.monitor.stdout is not None
        lines = self.monitor.stdout.read().decode(errors="replace").splitlines()
        fields = [
            "frame.time_epoch",
            "eth.src",
            "vrrp.prio",
            "arp.src.proto_ipv4",
            "arp.dst.proto_ipv4",
            "icmpv6.nd.na.target_address",
            "icmpv6.nd.na.flag.s",
        ]
        out = subprocess.run(
            ["tshark", "-r", str(self.pcap), "-T", "fields", "-E", "separator=\t"]
            + [arg for f in fields for arg in ("-e", f)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        frames: list[Record] = []
        for row in out.stdout.splitlines():
            cols = (row.split("\t") + [""] * len(fields))[: len(fields)]
            epoch, src, prio, arp_src, arp_dst, na_target, na_s = cols
            frame: Record = {"t": int(Decimal(epoch) * NS), "src": src}
            if prio:
                frame["kind"], frame["priority"] = "advert", int(prio)
            elif arp_src:
                frame["kind"], frame["gratuitous"] = "arp", arp_src == arp_dst
                frame["sender"] = arp_src
            elif na_target:
                frame["kind"], frame["target"] = "na", na_target
                frame["solicited"] = na_s in ("1", "True", "true")
            else:
                continue
            frames.append(frame)
        return frames, lines


def monitor_switch(lines: list[str], vip: str, mac: str) -> int | None:
    """When ``ip -ts monitor neigh`` first printed ``vip`` with ``mac`` (ns, CLOCK_REALTIME)."""
    for line in lines:
        words = line.split()
        if line.startswith("[") and vip in words and mac in words:
            stamp = datetime.fromisoformat(line[1 : line.index("]")])
            return round(stamp.timestamp() * 1e6) * 1000  # ip prints local time, microseconds
    return None


def tree_digest() -> str:
    """A short hash of the uncommitted state of ``src/`` (diff against HEAD + untracked files).

    ``+dirty`` says there are edits, not which: while vrrpyd is being changed,
    two reports of the same commit compare only if this digest matches too.
    """
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    try:
        diff = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD", "--", "src"],
            capture_output=True,
            timeout=10,
            check=True,
        ).stdout
        untracked = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--others", "--exclude-standard", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    digest.update(diff)
    for name in sorted(untracked):
        digest.update(name.encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12] if diff or untracked else "clean"


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    """One takeover from h3's point of view (seconds, CLOCK_REALTIME differences)."""

    gap: float
    first_announce: float  # first announcement - h2's first advert
    switch: float  # client's notification (h2's MAC) - h2's first advert
    notify_lag: float  # that notification - the first announcement
    outage: float  # that notification - h1's last advert
    bursts: list[tuple[float, int]]  # (start relative to h2's first advert, frames)
    entry_before: str  # the client's entry before the kill
    entry_after: str  # its state in the notification that moved it to h2's MAC
    notes: list[str] = field(default_factory=list)
    said: list[tuple[str, str]] = field(default_factory=list)
    cross: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    """What every run of one line of the report shares."""

    impl: str
    family: int
    interval: float
    observe: float
    quiet_for: int
    rt_listener: bool
    cross_check: bool
    keepalived_rt: int = 0
    keepalived_syslog: bool = False


def _h1_alone(adverts: list[Record], mac: str, interval: float, quiet_for: int) -> bool:
    """h1 (``mac``) has adverted alone at priority 200 for ``quiet_for`` intervals till now."""
    now = time.time_ns()
    recent = [r for r in adverts if r["t"] >= now - quiet_for * interval * NS]
    ours = [r for r in recent if r["src"] == mac and r["priority"] == PRIORITIES["h1"]]
    return (
        len(ours) >= quiet_for - 1
        and len(ours) == len(recent)
        and any(r["t"] >= now - 2 * interval * NS for r in ours)
    )


def is_announcement(rec: Record) -> bool:
    """A gratuitous ARP or an unsolicited NA (not an answer to the client's resolution)."""
    return (rec["kind"] == "arp" and rec["gratuitous"]) or (
        rec["kind"] == "na" and not rec["solicited"]
    )


def bursts_of(times: list[int], origin: int) -> list[tuple[float, int]]:
    """Group sorted send times (ns) into bursts (gaps under BURST_GAP); (start - origin, count)."""
    out: list[tuple[float, int]] = []
    last: int | None = None
    for t in times:
        if last is None or t - last >= BURST_GAP * NS:
            out.append(((t - origin) / NS, 0))
        start, n = out[-1]
        out[-1] = (start, n + 1)
        last = t
    return out


def run_once(case: Case) -> RunResult:
    """One takeover in a fresh lab; raises :class:`LabError` or :class:`RunError`."""
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-outage-") as tmp:
        lab = built_lab()
        try:
            return _run_in(lab, Path(tmp), case)
        finally:
            lab.down()


def _run_in(lab: Lab, work: Path, case: Case) -> RunResult:
    h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
    vip, interval = VIPS[case.family], case.interval
    mac1, mac2 = h1.mac, h2.mac
    sniffer = Watcher(h3, _SNIFFER, "eth0", vip)
    listener = Watcher(h3, _LISTENER, vip, "1" if case.rt_listener else "0", str(LISTENER_PRIORITY))
    cross = CrossCheck(h3, work, case.rt_listener) if case.cross_check else None

    def adverts() -> list[Record]:
        return [r for r in sniffer.records if r["kind"] == "advert" and r["vrid"] == VRID]

    keepalived: dict[str, Keepalived] = {}
    daemons: dict[str, Daemon] = {}
    start_timeout = 10 * interval + 5
    if case.impl == "keepalived":
        for host in (h1, h2):
            config = keepalived_config(
                f"outage_{host.name}",
                case.family,
                PRIORITIES[host.name],
                interval,
                case.keepalived_rt,
            )
            keepalived[host.name] = ConsoleFreeKeepalived(
                host, work, config, case.keepalived_syslog
            )
        for k in keepalived.values():
            k.start()
    else:
        for host in (h1, h2):
            instance = vrrpy_instance(case.family, PRIORITIES[host.name], interval)
            daemons[host.name] = Daemon(host, work, [instance])
        for d in daemons.values():
            d.start()
        wait_elected(daemons["h1"], daemons["h2"], start_timeout)
    if not wait_for(
        lambda: _h1_alone(adverts(), mac1, interval, case.quiet_for) and _holds(h1, vip),
        start_timeout + case.quiet_for * interval,
        step=min(interval / 2, 0.02),
    ):
        complaints = [line for k in keepalived.values() for line in k.complaints()]
        raise RunError(
            f"{case.impl}: h1 never adverted alone for {case.quiet_for} intervals holding {vip}"
            + ("; keepalived said:\n  " + "\n  ".join(complaints) if complaints else "")
        )

    # The client learns the address on h1's MAC.
    for _ in range(3):
        learn(h3, case.family)
        if wait_for(lambda: neigh_entry(h3, vip)[0] == mac1, 1.0, step=0.01):
            break
    time.sleep(LOCKTIME)
    mac, state = neigh_entry(h3, vip)
    if mac != mac1 or state not in ("REACHABLE", "STALE"):
        raise RunError(
            f"the client's entry for {vip} is {mac or 'absent'} {state} before the kill "
            f"(wanted h1's {mac1}, REACHABLE or STALE)"
        )
    entry_before = state

    backup = daemons["h2"].proc if daemons else None
    backup_sched = scheduling(keepalived["h2"].vrrp_pid if backup is None else backup.pid)
    killed_at = time.time_ns()
    if case.impl == "keepalived":
        keepalived["h1"].kill()  # SIGSTOP parent, SIGKILL VRRP child, SIGKILL parent
    else:
        daemons["h1"].signal(signal.SIGSTOP)
        daemons["h1"].kill()
    h1.link(False)

    predicted = master_down_interval(PRIORITIES["h2"], round(interval * 100))
    firsts: list[int] = []

    def h2_took_over() -> bool:
        new = [r["t"] for r in adverts() if r["src"] == mac2 and r["t"] > killed_at]
        firsts[:] = new[:1]
        return bool(new)

    if not wait_for(h2_took_over, 3 * predicted + 2, step=0.005):
        raise RunError(f"{case.impl}: no advert from h2 within {3 * predicted + 2:.1f} s")
    time.sleep(max(0.0, firsts[0] / NS + case.observe - time.time()))
    moved = wait_for(lambda: neigh_entry(h3, vip)[0] == mac2, 1.0)
    entry_after = " ".join(str(x) for x in neigh_entry(h3, vip))
    records = sniffer.stop()
    notices = listener.stop()
    checked = cross.stop() if cross is not None else None

    old = [r for r in records if r["kind"] == "advert" and r["src"] == mac1 and r["t"] <= killed_at]
    live_old = [r for r in old if r["priority"] > 0]
    new = [r for r in records if r["kind"] == "advert" and r["src"] == mac2 and r["t"] > killed_at]
    if not live_old or not new:
        raise RunError(f"{case.impl}: adverts missing (h1: {len(live_old)}, h2 after: {len(new)})")
    last_old, first_new = live_old[-1]["t"], new[0]["t"]
    window_end = first_new + round(case.observe * NS)
    announced = [
        r
        for r in records
        if is_announcement(r) and r["src"] == mac2 and killed_at < r["t"] <= window_end
    ]
    switched = [
        n for n in notices if n["kind"] == "new" and n["lladdr"] == mac2 and n["t"] > killed_at
    ]
    if not announced:
        raise RunError(f"{case.impl}: h2 never announced {vip} (the client entry: {entry_after})")
    if not switched:
        raise RunError(
            f"{case.impl}: no notification moved the client's entry for {vip} to h2's MAC "
            f"(the entry after the window: {entry_after})"
        )
    first_ann, switch_t = announced[0]["t"], switched[0]["t"]

    notes: list[str] = []
    zero = [r for r in old if r["priority"] == 0]
    if zero:
        notes.append(f"{len(zero)} PRIORITY-0 advert(s) from h1 (it was meant to die silently)")
    if not moved:
        notes.append(f"after the window the client's entry is {entry_after}, not h2's MAC")
    late_h1 = [r for r in records if r["src"] == mac1 and r["t"] > killed_at]
    if late_h1:
        notes.append(f"{len(late_h1)} frame(s) from h1 after the kill")
    if not all(r["stamped"] for r in records):
        notes.append("some frames had no kernel timestamp (stamped in user space)")
    if switch_t < first_ann:
        notes.append("the notification came before the first announcement: clocks disagree?")
    if first_ann < first_new:
        notes.append("h2 announced before its first advert")
    between = [
        n for n in notices if killed_at < n["t"] < switch_t and n["lladdr"] not in (mac1, None)
    ]
    if between:
        notes.append(f"{len(between)} other notification(s) for {vip} before the switch")
    errors = [n for n in notices if n["kind"] == "error"]
    if errors:
        notes.append(f"the listener lost notifications: {errors[0]['error']}")
    kinds = Counter(
        f"{r['kind']}{'/' + str(r['op']) if r['kind'] == 'arp' else ''}" for r in announced
    )
    if case.family == 6:
        flags = {("R" if r["router"] else "") + ("O" if r["override"] else "") for r in announced}
        notes.append(f"NA flags {'/'.join(sorted(flags))}; tlla {announced[0]['tlla']}")
    else:
        notes.append(
            "ARP " + ", ".join(f"{k.replace('arp/', 'op ')} x{n}" for k, n in kinds.items())
        )
    notes.append(f"h2's router {backup_sched}, listener {listener.ready['sched']}")

    said: list[tuple[str, str]] = []
    if case.impl == "keepalived":
        for name, k in keepalived.items():
            said += [(f"keepalived {name}", LINK_LOCAL.sub("fe80::*", ln)) for ln in k.complaints()]
    else:
        for name, d in daemons.items():
            said += [
                (f"vrrpyd {name}", LINK_LOCAL.sub("fe80::*", ln)) for ln in vrrpyd_complaints(d)
            ]

    result = RunResult(
        gap=(first_new - last_old) / NS,
        first_announce=(first_ann - first_new) / NS,
        switch=(switch_t - first_new) / NS,
        notify_lag=(switch_t - first_ann) / NS,
        outage=(switch_t - last_old) / NS,
        bursts=bursts_of([r["t"] for r in announced], first_new),
        entry_before=entry_before,
        entry_after=NUD.get(switched[0]["state"], hex(switched[0]["state"])),
        notes=notes,
        said=said,
    )
    if checked is not None:
        result.cross = cross_lines(result, checked, vip, mac1, mac2, killed_at, window_end)
    return result


def cross_lines(
    result: RunResult,
    checked: tuple[list[Record], list[str]],
    vip: str,
    mac1: str,
    mac2: str,
    killed_at: int,
    window_end: int,
) -> list[str]:
    """The run's figures again from tshark and ip monitor, beside ours (differences in us)."""
    frames, lines = checked
    old = [
        f
        for f in frames
        if f["kind"] == "advert" and f["src"] == mac1 and f["priority"] > 0 and f["t"] <= killed_at
    ]
    new = [f for f in frames if f["kind"] == "advert" and f["src"] == mac2 and f["t"] > killed_at]
    ann = [
        f
        for f in frames
        if f["src"] == mac2
        and killed_at < f["t"] <= window_end
        and (
            (f["kind"] == "arp" and f["gratuitous"] and f["sender"] == vip)
            or (f["kind"] == "na" and not f["solicited"])
        )
    ]
    if not old or not new or not ann:
        return [f"tshark: incomplete (h1 {len(old)}, h2 {len(new)}, announcements {len(ann)})"]
    gap = (new[0]["t"] - old[-1]["t"]) / NS
    first = (ann[0]["t"] - new[0]["t"]) / NS
    count = sum(n for _, n in result.bursts)
    out = [
        f"tshark: gap {gap * 1000:.3f} ms ({(gap - result.gap) * 1e6:+.1f} us), first "
        f"announcement {first * 1000:+.3f} ms ({(first - result.first_announce) * 1e6:+.1f} us), "
        f"{len(ann)} announcements ({len(ann) - count:+d}), "
        f"bursts {fmt_bursts(bursts_of([f['t'] for f in ann], new[0]['t']))}"
    ]
    seen = monitor_switch(lines, vip, mac2)
    if seen is None:
        out.append("ip monitor: no line gave the address h2's MAC")
    else:
        switch = (seen - new[0]["t"]) / NS
        out.append(
            f"ip monitor: client switch {switch * 1000:+.3f} ms "
            f"({(switch - result.switch) * 1e6:+.1f} us from the listener's)"
        )
    return out


# ---------------------------------------------------------------- report


def _ms(seconds: float, sign: bool = False) -> str:
    return f"{seconds * 1000:+.3f}" if sign else f"{seconds * 1000:.3f}"


def _label(interval: float) -> str:
    return f"{interval:g} s" if interval >= 1 else f"{interval * 1000:g} ms"


def fmt_bursts(bursts: Sequence[tuple[float, int]]) -> str:
    return ", ".join(f"{start:+.3f} s x{n}" for start, n in bursts) or "none"


METRICS: tuple[tuple[str, Callable[[RunResult], float]], ...] = (
    ("gap: h1 last advert -> h2 first", lambda r: r.gap),
    ("first announcement - h2 first advert", lambda r: r.first_announce),
    ("client switch - h2 first advert", lambda r: r.switch),
    ("notify lag: switch - announcement", lambda r: r.notify_lag),
    ("client-visible outage", lambda r: r.outage),
)


def spread(values: Sequence[float]) -> str:
    """``median [min .. max]`` in ms."""
    return f"{_ms(statistics.median(values))} [{_ms(min(values))} .. {_ms(max(values))}]"


def schedule_summary(results: Sequence[RunResult]) -> str:
    """Bursts by index over the runs: median start, frame counts, in how many runs."""
    parts = []
    for i in range(max(len(r.bursts) for r in results)):
        got = [r.bursts[i] for r in results if len(r.bursts) > i]
        counts = sorted({n for _, n in got})
        parts.append(
            f"#{i + 1} {statistics.median(s for s, _ in got):+.3f} s "
            f"x{'/'.join(str(n) for n in counts)} ({len(got)}/{len(results)} runs)"
        )
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per case, default 3")
    parser.add_argument(
        "--intervals",
        type=float,
        nargs="+",
        default=list(DEFAULT_INTERVALS),
        help="advert intervals in seconds (VRRPv3: multiples of 0.01), default 0.01 0.1",
    )
    parser.add_argument(
        "--families", type=int, nargs="+", choices=(4, 6), default=[4, 6], help="default 4 6"
    )
    parser.add_argument(
        "--observe",
        type=float,
        default=6.0,
        help="seconds watched after h2's first advert (announcement schedule), default 6",
    )
    parser.add_argument("--impl", choices=(*IMPLS, "both"), default="both")
    parser.add_argument(
        "--quiet-for",
        type=int,
        default=5,
        help="intervals h1 must advert alone before the client learns the entry, default 5",
    )
    parser.add_argument(
        "--rt-listener",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the neighbour listeners (and ip monitor) in SCHED_FIFO 10, so a busy machine "
        "delays their wake-up less; default on",
    )
    parser.add_argument(
        "--keepalived-rt-priority",
        type=int,
        default=0,
        metavar="N",
        help="give keepalived `vrrp_rt_priority N` (SCHED_RR), as vrrpyd's loop runs by default; "
        "default 0: keepalived's own default, time-shared",
    )
    parser.add_argument(
        "--keepalived-syslog",
        action="store_true",
        help="let keepalived log through syslog as failover_bench does (here: to /dev/console, "
        "synchronously, since there is no /dev/log); default -G, its log file only",
    )
    parser.add_argument(
        "--cross-check",
        action="store_true",
        help="also run dumpcap and `ip -ts monitor neigh` in h3; recompute each run with tshark",
    )
    args = parser.parse_args(argv)
    for interval in args.intervals:
        cs = round(interval * 100)
        if not 1 <= cs <= 4095 or abs(cs - interval * 100) > 1e-6:
            parser.error(f"--intervals: {interval:g} is not a VRRPv3 interval (0.01 .. 40.95)")
    if args.runs < 1 or args.observe <= 0:
        parser.error("--runs must be at least 1 and --observe positive")
    if args.cross_check and not (shutil.which("dumpcap") and shutil.which("tshark")):
        parser.error("--cross-check needs dumpcap and tshark (apt-get install -y tshark)")

    print_header("vrrpy outage bench: the takeover as the client sees it, vrrpy and keepalived")
    impls = root_and_impls(args.impl)
    if impls is None:
        return 2
    print(
        f"VRRPv3, VRID {VRID}, {VIPS[4]}/{PREFIX[4]} or {VIPS[6]}/{PREFIX[6]}, priorities h1 "
        f"{PRIORITIES['h1']} / h2 {PRIORITIES['h2']}; SIGSTOP + SIGKILL of h1's router, h1 link "
        f"down; h3 (client) sniffs with kernel timestamps and listens to RTNLGRP_NEIGH; "
        f"observe {args.observe:g} s; announcement defaults on both sides"
        + (
            f"; keepalived with vrrp_rt_priority {args.keepalived_rt_priority}"
            if args.keepalived_rt_priority
            else ""
        )
        + (
            "; keepalived logs through syslog (no /dev/log: to /dev/console)"
            if args.keepalived_syslog
            else "; keepalived -G (no syslog: its log file only)"
        )
        + ("; cross-checked with dumpcap/tshark and ip monitor" if args.cross_check else "")
    )
    print(f"src/ uncommitted state: {tree_digest()} (digest of git diff HEAD + untracked files)")
    print(f"CLOCK_REALTIME resolution {time.clock_getres(time.CLOCK_REALTIME) * 1e9:g} ns")

    began = time.monotonic()
    results: dict[tuple[float, int, str], list[RunResult]] = {}
    failures: Counter[tuple[float, int, str]] = Counter()
    said_in: Counter[tuple[str, str]] = Counter()
    for interval, family in itertools.product(args.intervals, args.families):
        predicted = master_down_interval(PRIORITIES["h2"], round(interval * 100))
        print(
            f"\n== interval {_label(interval)}, IPv{family}: predicted gap {_ms(predicted)} ms =="
        )
        for run in range(1, args.runs + 1):
            for impl in impls:
                key = (interval, family, impl)
                case = Case(
                    impl,
                    family,
                    interval,
                    args.observe,
                    args.quiet_for,
                    args.rt_listener,
                    args.cross_check,
                    args.keepalived_rt_priority,
                    args.keepalived_syslog,
                )
                try:
                    r = run_once(case)
                except LabError as exc:
                    print(f"the lab could not be built: {exc}")
                    return 1
                except Exception as exc:  # one failed run is reported; the others go on
                    failures[key] += 1
                    print(
                        f"  {impl:<10} run {run}/{args.runs}: FAILED: {type(exc).__name__}: {exc}"
                    )
                    continue
                results.setdefault(key, []).append(r)
                print(
                    f"  {impl:<10} run {run}/{args.runs}: gap {_ms(r.gap)} ms; first announcement "
                    f"{_ms(r.first_announce, True)}, client switch {_ms(r.switch, True)} "
                    f"(lag {_ms(r.notify_lag)}); outage {_ms(r.outage)} ms; entry before "
                    f"{r.entry_before}, moved as {r.entry_after}; bursts {fmt_bursts(r.bursts)}",
                    flush=True,
                )
                for line in r.notes + r.cross:
                    print(f"      {line}")
                for who, line in r.said:
                    if said_in[impl, line] == 0:
                        print(f"      log, {who}: {line}")
                said_in.update({(impl, line) for _, line in r.said})

    print(
        "\n== summary (ms, median [min .. max]; times relative to h2's first advert unless "
        "said; h3's kernel stamps and the listener's receipt, CLOCK_REALTIME) =="
    )
    verdicts: list[str] = []
    for interval, family in itertools.product(args.intervals, args.families):
        got = {impl: results.get((interval, family, impl), []) for impl in impls}
        print(f"\ninterval {_label(interval)}, IPv{family}")
        print(f"  {'':<38}" + "".join(f"{impl:<30}" for impl in impls))
        print(
            f"  {'runs':<38}"
            + "".join(
                f"{len(got[i])}/{len(got[i]) + failures[interval, family, i]:<28}" for i in impls
            )
        )
        for name, metric in METRICS:
            cells = [spread([metric(r) for r in got[i]]) if got[i] else "n/a" for i in impls]
            print(f"  {name:<38}" + "".join(f"{c:<30}" for c in cells))
        for impl in impls:
            if got[impl]:
                print(f"  announcement bursts, {impl}: {schedule_summary(got[impl])}")
        where = f"{_label(interval)} IPv{family}"
        if got.get("vrrpy") and got.get("keepalived"):
            v = statistics.median(r.outage for r in got["vrrpy"])
            k = statistics.median(r.outage for r in got["keepalived"])
            # The outage is the takeover gap plus the client switch; which one differs says
            # whether the timers or the announcement path made the difference.
            dgap = statistics.median(r.gap for r in got["vrrpy"]) - statistics.median(
                r.gap for r in got["keepalived"]
            )
            dswitch = statistics.median(r.switch for r in got["vrrpy"]) - statistics.median(
                r.switch for r in got["keepalived"]
            )
            print(
                f"  vrrpy - keepalived, medians: outage {(v - k) * 1000:+.3f} ms = gap "
                f"{dgap * 1000:+.3f} + client switch {dswitch * 1000:+.3f} (medians do not add "
                "exactly)"
            )
            verdicts.append(
                f"{'MET' if v <= k else 'NOT MET'}: 1. {where}: vrrpy's outage {_ms(v)} ms, "
                f"keepalived's {_ms(k)} ms ({(v - k) * 1000:+.3f}: gap {dgap * 1000:+.3f}, "
                f"client switch {dswitch * 1000:+.3f})"
            )
        if got.get("vrrpy"):
            firsts = [r.first_announce for r in got["vrrpy"]]
            med = statistics.median(firsts)
            over = sum(1 for f in firsts if f > TARGET_ANNOUNCE)
            verdicts.append(
                f"{'MET' if med <= TARGET_ANNOUNCE else 'NOT MET'}: 2. {where}: vrrpy's first "
                f"announcement {_ms(med, True)} ms after its first advert (worst "
                f"{_ms(max(firsts), True)}, {over} of {len(firsts)} runs over 0.2 ms)"
            )

    if said_in:
        print("\nlogs beyond routine lines, over all runs:")
        for (impl, line), n in said_in.items():
            total = sum(len(v) for (_, _, i), v in results.items() if i == impl)
            print(f"  {impl}: {line}  [in {n} of {total} runs]")

    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"\nwall time {time.monotonic() - began:.0f} s; load average {' '.join(load)} at the end "
        "(other work on the machine delays time-shared processes)"
    )

    print("\n== targets (vrrpy) ==")
    print(
        "  1. client-visible outage no later than keepalived's (median), each interval and family"
    )
    print(
        "  2. first GARP / unsolicited NA within 0.2 ms of the new Master's first advert (median)"
    )
    verdicts.sort(key=lambda v: v.split(": ", 1)[1][:1])
    for line in verdicts or ["(not judged: the runs needed are missing)"]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
