"""vrrpyd against keepalived at scale: CPU per advert, advert spacing, start-up and stop.

For each instance count (50, 500 and 2,000 by default) and each
implementation, a fresh three-host lab (``vrrpy.lab.Lab``): h1 runs every
instance at priority 200 (the Master), h2 the same instances at priority 100
(the Backup), h3 records the adverts on the wire with their kernel
timestamps. Every VRRPv3 instance adverts every 100 ms.

The interfaces. VRIDs are 1..255 per interface and address family, so one
interface holds at most 500 of the benchmark's instances (255 IPv4 + 245
IPv6). A count is spread evenly over the fewest interfaces that hold it
(``--interfaces N`` to choose): 50 and 500 on ``eth0`` as before, 2,000 as 500
on each of ``eth0`` .. ``eth3``. The lab gives every host ``eth0`` on one
bridge; this script adds ``eth1`` .. ``ethN-1`` to each host itself, each on a
bridge of its own (a LAN of its own: the same VRIDs on two interfaces are two
virtual routers), holding 192.0.2.(10 + host + 20 k)/32 and the kernel's
link-local address (no DAD), and removes them after the lab's teardown.

The instances on each interface keep the 255 : 245 mix (50 = 26 IPv4 + 24
IPv6, the first VRIDs of each family), so per-advert costs compare across
counts. IPv4 VRID v has 198.51.100.v/24 (203.0.113.1/24 for VRID 255), IPv6
VRID v on ``eth``k has 2001:db8:(k+1)::v/64 (v in hex). The lab may use only
768 IPv4 addresses (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), fewer than
four interfaces' 1,020 IPv4 instances need: IPv4 virtual addresses repeat on
each interface (each is its own LAN; Linux allows it). Instances on ``eth0``
are named ``V4_12`` / ``V6_12`` as before, on ``eth``k ``V4_12_ek``.

* vrrpy: one vrrpyd per host with every instance (``log_level = "info"``: it
  logs transitions only, which time the start-up; gratuitous ARP / NA
  defaults), started like ``vrrpy.lab.Daemon`` does (``--gc-trace`` runs it
  under a wrapper that records every garbage collection).
* keepalived: one ``ip netns exec NS keepalived -n -l -f CONF -p PID -r
  VRRP_PID -c CHECK_PID`` per host (no ``-D``: detailed logging costs it most
  of a core at this scale), one ``vrrp_instance`` per virtual router
  (``version 3``, ``advert_int 0.1``, ``native_ipv6`` on the IPv6 ones), its
  own pid files and ``router_id`` per host. For IPv6 instances keepalived 2.2.7
  logs "the first IPv6 VIP address should be link local" (RFC 9568 asks for a
  link-local first address); the instances are kept the same as vrrpyd's
  (one global address), so that warning is expected.

The capture. h3 runs a small stdlib sniffer of its own (not
``vrrpy.lab.Capture``, which prints one JSON line per frame and, with the
default 208 KiB receive queue, cannot take 2,000 adverts in a few
milliseconds): one AF_PACKET socket on every interface of h3, a classic BPF
filter that keeps IP protocol 112 only (96 bytes of each), a 64 MiB queue
(SO_RCVBUFFORCE), kernel receive timestamps (SO_TIMESTAMPNS), records packed
in memory and written when it stops, and the kernel's count of the frames it
dropped (PACKET_STATISTICS). Its CPU is printed; if it dropped anything, the
spacing target is not judged (a dropped frame looks like a late advert).

Measurement: once both routers have started every instance (vrrpyd logs
"vrrpyd started", keepalived one "Entering BACKUP STATE (init)" per instance;
at most 120 s) and ``--settle`` seconds more (20), the capture starts; CPU time is
read from ``/proc/PID/stat`` (utime + stime, printed split as user / sys,
summed over every process of the implementation on that host: for keepalived
the parent and its VRRP child, for vrrpy the vrrpyd process with its
threads) at the start and the end of a ``--measure`` window (10 s), for the
Master host and the Backup host separately, and the adverts from h1 whose
kernel timestamp falls in the window are counted. ``/proc/PID/stat`` counts in
clock ticks (10 ms): over 10 s that is 0.1 % of a core, coarse for
keepalived's Backup; the scheduler's nanosecond count
(``/proc/PID/task/*/schedstat``) is printed beside it as a check. The whole
machine's busy time over the window is printed too (with the share the
hypervisor stole), and what of it was not this benchmark's: other processes,
the noise to note (softirq work lands there too; both sides are sampled in
ticks, so it is approximate and can come out slightly negative). Also printed:
the tick count behind each CPU figure (its precision: 1/ticks) and each
router's resident memory at the window's end.

Spacing: per virtual router (interface, family, VRID), the gaps between h1's
consecutive adverts in the window, from h3's kernel timestamps; the window's
edges count as adverts for the late check (a virtual router that falls
silent, or never adverts, is late too). Printed: percentiles, the tail
(counts over 110, 120, 150, 200, 300 ms), the count over 1.5 intervals and
the longest, and when the late ones happened (grouped when they end within
30 ms of each other: one stall of the sender delays many virtual routers at
once), with the garbage collections of the Master that overlap them under
``--gc-trace``.

Start and stop. vrrpyd logs each instance's INIT -> BACKUP with millisecond
timestamps: start-up is the first to the last of them (also printed: from
the process's spawn, and when the last instance of h1 became Master).
keepalived's log stamps whole seconds: its figures are +-1 s. After the
window, h2 (Backup) then h1 (Master) get SIGTERM, and the time to the
process's exit is measured (a Master resigns every instance with priority 0
and withdraws its addresses first).

Logs: everything keepalived logs beyond the lines of a normal start, and
everything vrrpyd logs above INFO, is printed grouped (instance names and
decimal numbers folded, so 245 alike lines are one), counted, and placed
before, in or after the measured window: state changes and keepalived's "A
thread timer expired N seconds ago" during settling are expected at 500
instances, in the window they are not. Both implementations warn once per
IPv6 instance that the first address is not link-local.

Printed per case: CPU % of one core and CPU microseconds per advert (sent by
the Master, received by the Backup: the same adverts), adverts per second on
the wire against the 10 per instance per second expected, whether every
instance was Mastered by h1 (virtual routers seen from h1, adverts from h2 in
the window), the spacing, start and stop; then a summary, vrrpy / keepalived
per advert, and per advert at the largest count / at the smallest. Targets
(judged on /proc/PID/stat figures, for vrrpy):

1. no advert spacing over 1.5 intervals, at any count;
2. CPU per advert at most keepalived's at 50 instances (the smallest count
   measured) in the same run, at every count, Master and Backup;
3. linear: per advert at the largest count within 1.2x of that at the
   smallest (each role);
4. start-up (first to last instance running) under 5 s, each host, each count;
5. SIGTERM to exit under 5 s, each host, each count.

It is a report, not a test: exit 0 whatever the figures, 1 only when the lab
could not be built (2 without root). Run as root: ``python
bench/scale_bench.py`` (about 5 minutes; ``--counts``, ``--interfaces``,
``--settle``, ``--measure``, ``--impl`` to change it; ``--gc-trace`` and
``--py-spy DIR`` to look inside vrrpyd (both over the window, and the
Master's first 15 s: its start-up), the latter perturbing the figures, so
no verdict is given then). It reuses the keepalived wrapper and header of
``failover_bench.py`` (same directory).
"""

from __future__ import annotations

import argparse
import atexit
import bisect
import functools
import itertools
import json
import math
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import vrrpy
from failover_bench import (
    Keepalived,
    LabError,
    RunError,
    built_lab,
    print_header,
    root_and_impls,
)
from vrrpy.lab import Daemon, Host, Lab, render, wait_for

INTERVAL = 0.1
PRIORITIES = {"h1": 200, "h2": 100}
IMPLS = ("vrrpy", "keepalived")
MAX_V4, MAX_V6 = 255, 245
PER_INTERFACE = MAX_V4 + MAX_V6  # the benchmark's instances one interface holds
MAX_INTERFACES = 8
DEFAULT_COUNTS = (50, 500, 2000)
LATE = 1.5  # intervals: an advert spacing above this is late (target 1: none)
TARGET_KEEPALIVED = 1.0  # vrrpy per advert at most 1x keepalived's at the smallest count
MIN_TICKS = 20  # one run's CPU figure on fewer clock ticks than this is no verdict alone
TARGET_LINEAR = 1.2  # vrrpy per advert at the largest count within 1.2x of the smallest
TARGET_START = 5.0  # seconds, first to last instance running
TARGET_STOP = 5.0  # seconds, SIGTERM to exit
TAIL_MS = (110, 120, 150, 200, 300)
CLUSTER = 0.03  # late spacings ending within 30 ms of each other: one stall
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTUP_TIMEOUT = 120.0  # seconds allowed for both routers to start every instance
INSTANCE_NAME = re.compile(r"\b(V[46]_)\d+(?:_e\d+)?\b")


# ---------------------------------------------------------------- the instances


@dataclass(frozen=True)
class VirtualRouter:
    """One virtual router of the benchmark, as both implementations are given it."""

    family: int
    vrid: int
    address: str  # with its prefix length
    interface: str = "eth0"

    @property
    def name(self) -> str:
        if self.interface == "eth0":
            return f"V{self.family}_{self.vrid}"
        return f"V{self.family}_{self.vrid}_e{self.interface[3:]}"

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.interface, self.family, self.vrid)


def interfaces_for(count: int, forced: int | None = None) -> int:
    """How many interfaces ``count`` instances are spread over: the fewest that hold them."""
    return forced or max(1, math.ceil(count / PER_INTERFACE))


def one_interface(count: int, index: int) -> list[VirtualRouter]:
    """``count`` (1..500) virtual routers on ``eth<index>``: IPv4 and IPv6 as 255 : 245."""
    if not 1 <= count <= PER_INTERFACE:
        raise ValueError(f"1..{PER_INTERFACE} instances on one interface")
    ifname = f"eth{index}"
    v4 = min(MAX_V4, max(count - MAX_V6, round(count * MAX_V4 / PER_INTERFACE)))
    routers = [
        VirtualRouter(4, vrid, f"198.51.100.{vrid}/24" if vrid < 255 else "203.0.113.1/24", ifname)
        for vrid in range(1, v4 + 1)
    ]
    routers += [
        VirtualRouter(6, vrid, f"2001:db8:{index + 1:x}::{vrid:x}/64", ifname)
        for vrid in range(1, count - v4 + 1)
    ]
    return routers


def virtual_routers(count: int, interfaces: int = 1) -> list[VirtualRouter]:
    """``count`` virtual routers spread evenly over ``eth0`` .. ``eth<interfaces-1>``."""
    if not 1 <= interfaces <= MAX_INTERFACES or not 1 <= count <= interfaces * PER_INTERFACE:
        raise ValueError(f"1..{PER_INTERFACE} instances per interface, 1..{MAX_INTERFACES} of them")
    base, extra = divmod(count, interfaces)
    routers: list[VirtualRouter] = []
    for index in range(interfaces):
        n = base + (1 if index < extra else 0)
        if n:
            routers += one_interface(n, index)
    return routers


def layout(routers: Sequence[VirtualRouter]) -> str:
    """Where the routers are: ``26 IPv4 + 24 IPv6 on eth0``, ``4 x (255 IPv4 + 245 IPv6) on
    eth0..eth3``."""
    per: dict[str, tuple[int, int]] = {}
    for vr in routers:
        v4, v6 = per.get(vr.interface, (0, 0))
        per[vr.interface] = (v4 + (vr.family == 4), v6 + (vr.family == 6))
    mixes = set(per.values())
    names = list(per)
    if len(mixes) == 1:
        v4, v6 = mixes.pop()
        where = names[0] if len(names) == 1 else f"{names[0]}..{names[-1]}"
        mix = f"{v4} IPv4 + {v6} IPv6"
        return f"{mix} on {where}" if len(names) == 1 else f"{len(names)} x ({mix}) on {where}"
    return ", ".join(f"{v4}+{v6} on {name}" for name, (v4, v6) in per.items())


def keepalived_config(router_id: str, priority: int, routers: list[VirtualRouter]) -> str:
    """keepalived.conf with one VRRPv3 instance per virtual router."""
    parts = [f"global_defs {{\n    router_id {router_id}\n}}\n"]
    for vr in routers:
        native = "    native_ipv6\n" if vr.family == 6 else ""
        parts.append(
            f"vrrp_instance {vr.name} {{\n"
            "    state BACKUP\n"
            f"    interface {vr.interface}\n"
            f"    virtual_router_id {vr.vrid}\n"
            f"    priority {priority}\n"
            f"    advert_int {INTERVAL:g}\n"
            "    version 3\n"
            f"{native}"
            "    virtual_ipaddress {\n"
            f"        {vr.address}\n"
            "    }\n"
            "}\n"
        )
    return "\n".join(parts)


def vrrpy_instances(priority: int, routers: list[VirtualRouter]) -> list[Mapping[str, Any]]:
    """vrrpyd's instances for the same virtual routers."""
    return [
        {
            "name": vr.name,
            "interface": vr.interface,
            "vrid": vr.vrid,
            "version": 3,
            "priority": priority,
            "advert_interval": INTERVAL,
            "virtual_addresses": [vr.address],
        }
        for vr in routers
    ]


# ---------------------------------------------------------------- more interfaces


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


_OPEN_LINKS: list[ExtraLinks] = []


class ExtraLinks:
    """``eth1`` .. ``eth<n-1>`` in every host of a lab, each interface on a bridge of its own.

    (The lab gives each host ``eth0`` only.) Host i's ``eth``k holds
    192.0.2.(10 + i + 20 k)/32 and the kernel's link-local address; the lab
    turned DAD off in every host, so it is usable at once. :meth:`down` (also
    at interpreter exit) deletes the bridges and the outer veth ends; the inner
    ends go with the lab's namespaces.
    """

    def __init__(self, lab: Lab, interfaces: int) -> None:
        self.lab = lab
        self.interfaces = interfaces
        self.bridges: list[str] = []
        self.veths: list[str] = []

    def up(self) -> None:
        _OPEN_LINKS.append(self)
        try:
            for k in range(1, self.interfaces):
                bridge = f"{self.lab.prefix}b{k}"
                _ip("link", "add", bridge, "type", "bridge")
                self.bridges.append(bridge)
                Path(f"/sys/class/net/{bridge}/bridge/multicast_snooping").write_text("0")
                _ip("link", "set", bridge, "up")
                for host in self.lab.hosts.values():
                    outside = f"{self.lab.prefix}{host.index}p{k}"
                    inside = f"eth{k}"
                    _ip(
                        "link",
                        "add",
                        outside,
                        "type",
                        "veth",
                        "peer",
                        "name",
                        inside,
                        "netns",
                        host.netns,
                    )
                    self.veths.append(outside)
                    _ip("link", "set", outside, "master", bridge, "up")
                    _ip("-n", host.netns, "link", "set", inside, "up")
                    _ip("-n", host.netns, "addr", "add", f"{ipv4_of(host, k)}/32", "dev", inside)
            for host in self.lab.hosts.values():
                for k in range(1, self.interfaces):
                    ready = functools.partial(link_local, host, f"eth{k}")
                    if not wait_for(ready, 5):
                        raise LabError(f"{host.name}: no link-local address on eth{k}")
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        for name in self.veths + self.bridges:
            _ip("link", "del", name, check=False)
        self.veths, self.bridges = [], []
        if self in _OPEN_LINKS:
            _OPEN_LINKS.remove(self)


@atexit.register
def _links_left() -> None:
    for links in list(_OPEN_LINKS):
        links.down()


def ipv4_of(host: Host, k: int) -> str:
    """The IPv4 address of ``eth<k>`` in ``host``."""
    return str(host.ipv4) if k == 0 else f"192.0.2.{10 + host.index + 20 * k}"


def link_local(host: Host, ifname: str) -> str | None:
    """The (non-tentative) link-local address of ``ifname`` in ``host``, or None."""
    out = _ip(
        "-n", host.netns, "-o", "-6", "addr", "show", "dev", ifname, "scope", "link", check=False
    ).stdout
    if "inet6" not in out or "tentative" in out:
        return None
    return out.split("inet6", 1)[1].split()[0].split("/")[0]


def sources(host: Host, interfaces: int) -> set[str]:
    """Every address ``host`` sends adverts from (IPv4 primary and link-local, each interface)."""
    found = set()
    for k in range(interfaces):
        found.add(ipv4_of(host, k))
        ll = link_local(host, f"eth{k}")
        if ll is not None:
            found.add(ll)
    return found


# ---------------------------------------------------------------- the capture

# Runs in the capturing host. Standard library only. Records (time ns, interface,
# source, family, VRID, priority) in memory; on SIGTERM writes them and the kernel's
# drop count to ARGV[1].bin / ARGV[1].json.
_SNIFFER = r"""
import ctypes, json, os, signal, socket, struct, sys, time
out = sys.argv[1]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
prog = [(0x28, 0, 0, 12), (0x15, 0, 2, 0x0800), (0x30, 0, 0, 23), (0x15, 3, 4, 112),
        (0x15, 0, 3, 0x86DD), (0x30, 0, 0, 20), (0x15, 0, 1, 112), (0x06, 0, 0, 96),
        (0x06, 0, 0, 0)]  # IPv4 proto 112 or IPv6 next header 112: keep 96 bytes
code = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in prog))
s.setsockopt(socket.SOL_SOCKET, 26, struct.pack("HL", len(prog), ctypes.addressof(code)))
s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
s.setblocking(False)
while True:  # what queued before the filter
    try:
        s.recv(65536)
    except BlockingIOError:
        break
s.getsockopt(263, 6, 8)  # PACKET_STATISTICS: reset
s.setblocking(True)
class Stop(Exception):
    pass
def stop(*_):
    raise Stop
signal.signal(signal.SIGTERM, stop)
names, srcs = {}, {}
rec = bytearray()
pack = struct.Struct("<qHHBBB").pack
stamp = struct.Struct("qq").unpack_from
recvmsg = s.recvmsg
print("ready", flush=True)
try:
    while True:
        data, anc, _, addr = recvmsg(96, 64)
        if addr[2] == 4 or len(data) < 40:
            continue  # outgoing, or too short
        t = 0
        for level, kind, value in anc:
            if kind == 35:
                sec, nsec = stamp(value)
                t = sec * 1000000000 + nsec
        if data[12] == 0x08:
            p = 14 + (data[14] & 15) * 4
            src, fam = data[26:30], 4
        else:
            p, src, fam = 54, data[22:38], 6
        if len(data) < p + 3:
            continue
        i = names.get(addr[0])
        if i is None:
            i = names[addr[0]] = len(names)
        j = srcs.get(src)
        if j is None:
            j = srcs[src] = len(srcs)
        rec += pack(t, i, j, fam, data[p + 1], data[p + 2])
except Stop:
    pass
packets, drops = struct.unpack("II", s.getsockopt(263, 6, 8))
with open(out + ".bin", "wb") as f:
    f.write(rec)
with open(out + ".json", "w") as f:
    json.dump({"interfaces": sorted(names, key=names.get),
               "sources": [socket.inet_ntop(socket.AF_INET if len(k) == 4 else socket.AF_INET6, k)
                           for k in sorted(srcs, key=srcs.get)],
               "drops": drops, "packets": packets}, f)
"""
_RECORD = struct.Struct("<qHHBBB")


@dataclass(frozen=True)
class Advert:
    t: float  # kernel receive time in h3 (CLOCK_REALTIME, seconds)
    interface: str
    src: str
    family: int
    vrid: int
    priority: int


class Sniffer:
    """h3's view of the wire: every VRRP advert on every interface, with kernel timestamps."""

    def __init__(self, host: Host, workdir: Path) -> None:
        self.out = workdir / f"sniffer-{host.name}"
        self.err = workdir / f"sniffer-{host.name}.err"
        with open(self.err, "wb") as err:
            self.proc = host.popen(
                [sys.executable, "-c", _SNIFFER, str(self.out)], stdout=subprocess.PIPE, stderr=err
            )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise RunError(f"the sniffer did not start: {self.err.read_text(errors='replace')}")
        self.drops = 0
        self.packets = 0

    def stop(self) -> list[Advert]:
        """Stop capturing; every advert seen (:attr:`drops`: frames the kernel dropped)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired as exc:
            raise RunError("the sniffer did not stop") from exc
        try:
            meta = json.loads(Path(f"{self.out}.json").read_text())
            data = Path(f"{self.out}.bin").read_bytes()
        except (OSError, ValueError) as exc:
            raise RunError(f"the sniffer left no records ({exc}): {self.err.read_text()}") from exc
        self.drops, self.packets = meta["drops"], meta["packets"]
        names, srcs = meta["interfaces"], meta["sources"]
        return [
            Advert(t * 1e-9, names[i], srcs[j], fam, vrid, prio)
            for t, i, j, fam, vrid, prio in _RECORD.iter_unpack(data)
        ]


# ---------------------------------------------------------------- the routers

# vrrpyd under a wrapper that writes one line per garbage collection to ARGV[1]:
# wall-clock start, generation, duration (us), objects collected.
_GC_WRAPPER = r"""
import gc, sys, time
log = open(sys.argv[1], "w", buffering=1)
log.write(f"# thresholds {gc.get_threshold()}\n")
began = [0.0, 0.0]
def watch(phase, info):
    if phase == "start":
        began[0], began[1] = time.time(), time.perf_counter()
    else:
        took = (time.perf_counter() - began[1]) * 1e6
        log.write(f"{began[0]:.6f} {info['generation']} {took:.0f} {info['collected']}\n")
gc.callbacks.append(watch)
from vrrpy.daemon.main import main
sys.exit(main(sys.argv[2:]))
"""


class BenchDaemon(Daemon):
    """vrrpyd logging at INFO (transitions only: the start-up's timestamps), optionally under
    the garbage-collection wrapper; its spawn time kept."""

    gc_log: Path | None = None
    spy_start: Path | None = None
    """With ``--py-spy``: profile the Master's start-up (its first 15 s) into this file."""
    spawned = 0.0

    def write(self, instances: list[Mapping[str, Any]]) -> None:
        self.conf.write_text(render(self.state_file, instances, log_level="info"))

    def start(self) -> BenchDaemon:
        argv = [sys.executable, "-m", "vrrpy.daemon", "-c", str(self.conf)]
        if self.gc_log is not None:
            argv = [sys.executable, "-c", _GC_WRAPPER, str(self.gc_log), "-c", str(self.conf)]
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.spawned = time.time()
        self.proc = self.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc
        if self.spy_start is not None:
            _py_spy(self, self.spy_start, 15.0)
        wait_for(lambda: self.state_file.exists() or proc.poll() is not None, 30)
        if proc.poll() is not None:
            raise RunError(f"vrrpyd in {self.host.name} exited: {self.log.read_text()[-2000:]}")
        return self


class BenchKeepalived(Keepalived):
    """keepalived, its spawn time kept."""

    spawned = 0.0

    def start(self) -> BenchKeepalived:
        self.spawned = time.time()
        super().start()
        return self


Router = BenchDaemon | BenchKeepalived


def _start(
    impl: str, host: Host, work: Path, routers: list[VirtualRouter], gc_trace: bool
) -> Router:
    priority = PRIORITIES[host.name]
    if impl == "keepalived":
        return BenchKeepalived(
            host, work, keepalived_config(f"bench_{host.name}", priority, routers)
        )
    daemon = BenchDaemon(host, work, vrrpy_instances(priority, routers))
    if gc_trace:
        daemon.gc_log = daemon.dir / "gc.log"
    return daemon


def stop_time(router: Router, timeout: float = 60.0) -> float | None:
    """SIGTERM, then the seconds until the process exits (None: not within ``timeout``)."""
    proc = router.proc
    if proc is None or proc.poll() is not None:
        return None
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)  # keepalived: the parent (`ip netns exec` execs it)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None
    return time.monotonic() - t


# ---------------------------------------------------------------- CPU accounting


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def stat_ticks(pid: int) -> tuple[int, int] | None:
    """(utime, stime) of a process (all its threads), in clock ticks; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)


def sched_ns(pid: int) -> int | None:
    """Time on a CPU of every thread of a process, in nanoseconds; None if it is gone."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError):
        return None
    return total


def machine_busy() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    steal = values[7] if len(values) > 7 else 0
    return sum(values) - idle, sum(values), steal


@dataclass
class Usage:
    """CPU used by a set of processes over the window, in seconds."""

    stat: float  # utime + stime
    sched: float
    per_pid: dict[int, float]  # /proc/PID/stat seconds per process
    lost: list[int]  # processes that went away during the window
    user: float = 0.0
    sys: float = 0.0


Snapshot = dict[int, tuple[tuple[int, int] | None, int | None]]


def usage(before: Snapshot, pids: Sequence[int]) -> Usage:
    per_pid: dict[int, float] = {}
    sched = user = system = 0.0
    lost = []
    for pid in pids:
        t0, n0 = before[pid]
        t1, n1 = stat_ticks(pid), sched_ns(pid)
        if t0 is None or t1 is None or n0 is None or n1 is None:
            lost.append(pid)
            continue
        user += (t1[0] - t0[0]) / CLK_TCK
        system += (t1[1] - t0[1]) / CLK_TCK
        per_pid[pid] = (sum(t1) - sum(t0)) / CLK_TCK
        sched += (n1 - n0) / 1e9
    return Usage(sum(per_pid.values()), sched, per_pid, lost, user, system)


def rss_mib(pids: Iterable[int]) -> float:
    """Resident memory of the processes, in MiB (0 for those gone)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total / 1024


def snapshot(pids: Sequence[int]) -> Snapshot:
    return {pid: (stat_ticks(pid), sched_ns(pid)) for pid in pids}


# ---------------------------------------------------------------- logs

# keepalived's lines for a normal start and stop; everything else is summarised.
_KEEPALIVED_START = re.compile(
    r"Starting Keepalived|Running on Linux|Command line:|^\s+'|Configuration file|"
    r"Starting VRRP child process|Startup complete|Entering BACKUP STATE \(init\)|"
    r"Stopping|Stopped"
)
_KEEPALIVED_LINE = re.compile(r"^(\w{3} \w{3} +\d+ [\d:]+ \d{4}): (.*)$")
_KEEPALIVED_STATE = re.compile(r"\((V[46]_[\w]+)\) Entering (BACKUP|MASTER) STATE")
_VRRPYD_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) vrrpyd\[\d+\] (\w+) [\w.]+: (.*)$"
)
_VRRPYD_TRANSITION = re.compile(r"^(\S+): (INIT|BACKUP|MASTER) -> (INIT|BACKUP|MASTER) ")
_DECIMAL = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")


def keepalived_all(path: Path) -> list[tuple[float | None, str]]:
    """(time, text) of every line of keepalived's console log (whole seconds)."""
    out: list[tuple[float | None, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        m = _KEEPALIVED_LINE.match(line)
        stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp() if m else None
        out.append((stamp, m.group(2) if m else line))
    return out


def keepalived_lines(path: Path) -> list[tuple[float | None, str]]:
    """(time, text) of keepalived's console log, without the lines of a normal start."""
    return [
        (stamp, text)
        for stamp, text in keepalived_all(path)
        if text.strip() and not _KEEPALIVED_START.search(text)
    ]


def vrrpyd_all(path: Path) -> list[tuple[float | None, str, str]]:
    """(time, level, text) of every line of vrrpyd's log (tracebacks: untimed, level "")."""
    out: list[tuple[float | None, str, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        m = _VRRPYD_LINE.match(line)
        if m is None:
            if line.strip():
                out.append((None, "", line))
            continue
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        out.append((stamp + int(m.group(2)) / 1000, m.group(3), m.group(4)))
    return out


def vrrpyd_lines(path: Path) -> list[tuple[float | None, str]]:
    """(time, "LEVEL text") of vrrpyd's log above INFO (tracebacks included, untimed)."""
    return [
        (stamp, f"{level} {text}" if level else text)
        for stamp, level, text in vrrpyd_all(path)
        if level not in ("DEBUG", "INFO")
    ]


def summarise(lines: list[tuple[float | None, str]], t0: float, t1: float) -> list[str]:
    """Lines grouped (instance names and decimals folded), counted, placed against the window.

    keepalived stamps whole seconds: a line stamped in the second the window starts
    in counts as in the window.
    """
    groups: dict[str, list[tuple[float | None, list[float]]]] = {}
    for stamp, text in lines:
        folded = INSTANCE_NAME.sub(r"\1*", text)
        values = [float(v) for v in _DECIMAL.findall(folded)]
        groups.setdefault(_DECIMAL.sub("N", folded), []).append((stamp, values))
    out = []
    for key, items in groups.items():
        before = sum(1 for st, _ in items if st is not None and st < int(t0))
        after = sum(1 for st, _ in items if st is not None and st > t1)
        during = sum(1 for st, _ in items if st is not None) - before - after
        values = [v for _, vs in items for v in vs]
        parts = [f"x{len(items)}"]
        if values:
            parts.append(f"N {min(values):g}..{max(values):g}")
        if before == len(items):
            parts.append("all before the window")
        else:
            parts.append(f"{before} before the window, {during} in it, {after} after")
        out.append(f"{key}  ({'; '.join(parts)})")
    return out


@dataclass
class StartStop:
    """One router's start-up and stop, in seconds (None: not seen)."""

    first: float | None = None  # spawn -> the first instance running (INIT -> BACKUP)
    last: float | None = None  # spawn -> the last one running
    running: int = 0  # instances seen running
    all_master: float | None = None  # spawn -> the last instance Master (h1)
    masters: int = 0
    resolution: float = 0.001  # of the log's timestamps
    stop: float | None = None  # SIGTERM -> exit

    @property
    def span(self) -> float | None:
        """First to last instance running: the start-up target's figure."""
        return None if self.first is None or self.last is None else self.last - self.first


def start_figures(router: Router) -> StartStop:
    """When the instances came up, from the router's log."""
    up: dict[str, float] = {}
    master: dict[str, float] = {}
    if isinstance(router, BenchKeepalived):
        res = StartStop(resolution=1.0)
        for stamp, text in keepalived_all(router.log):
            m = _KEEPALIVED_STATE.search(text)
            if m is None or stamp is None:
                continue
            target = up if m.group(2) == "BACKUP" else master
            target.setdefault(m.group(1), stamp)
    else:
        res = StartStop()
        for stamp, level, text in vrrpyd_all(router.log):
            m = _VRRPYD_TRANSITION.match(text) if level == "INFO" else None
            if m is None or stamp is None:
                continue
            if m.group(2) == "INIT" and m.group(3) == "BACKUP":
                up.setdefault(m.group(1), stamp)
            elif m.group(3) == "MASTER":
                master.setdefault(m.group(1), stamp)
    if up:
        res.first, res.last = min(up.values()) - router.spawned, max(up.values()) - router.spawned
        res.running = len(up)
    if master:
        res.all_master, res.masters = max(master.values()) - router.spawned, len(master)
    return res


def started(router: Router, count: int) -> bool:
    """Whether ``router`` has started all its ``count`` instances (or exited)."""
    if router.proc is None or router.proc.poll() is not None:
        return True
    try:
        text = router.log.read_text(errors="replace")
    except OSError:
        return False
    if isinstance(router, BenchKeepalived):
        return text.count("Entering BACKUP STATE (init)") >= count
    return "vrrpyd started:" in text


def gc_events(path: Path | None) -> list[tuple[float, int, float, int]]:
    """(wall start, generation, seconds, collected) of every collection the wrapper saw."""
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        t, gen, us, collected = line.split()
        out.append((float(t), int(gen), int(us) / 1e6, int(collected)))
    return out


# ---------------------------------------------------------------- spacing


@dataclass
class Spacing:
    """h1's advert spacing per virtual router over the window (seconds)."""

    gaps: int = 0  # between two adverts of one virtual router, both in the window
    late: int = 0  # of them over LATE intervals
    edge_late: int = 0  # the window's start to the first advert, or the last to its end
    silent: int = 0  # virtual routers with no advert in the window at all
    max: float = float("nan")  # the longest gap (edges included)
    min: float = float("nan")
    p50: float = float("nan")
    p99: float = float("nan")
    p999: float = float("nan")
    tail: dict[int, int] = field(default_factory=dict)  # ms -> gaps over it
    clusters: list[str] = field(default_factory=list)


def _pct(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def spacing_of(
    by_vr: Mapping[tuple[str, int, int], list[float]],
    expected: Iterable[tuple[str, int, int]],
    t0: float,
    t1: float,
    gc: Sequence[tuple[float, int, float, int]] = (),
) -> Spacing:
    res = Spacing()
    limit = LATE * INTERVAL
    gaps: list[float] = []
    late: list[tuple[float, float, tuple[str, int, int]]] = []  # (from, to, virtual router)
    for key in expected:
        times = by_vr.get(key, [])
        if not times:
            res.silent += 1
            late.append((t0, t1, key))
            continue
        for a, b in itertools.pairwise(times):
            gaps.append(b - a)
            if b - a > limit:
                late.append((a, b, key))
        for a, b in ((t0, times[0]), (times[-1], t1)):
            if b - a > limit:
                res.edge_late += 1
                late.append((a, b, key))
    gaps.sort()
    res.gaps = len(gaps)
    res.late = sum(1 for g in gaps if g > limit)
    res.max = max([*gaps[-1:], *(b - a for a, b, _ in late)], default=float("nan"))
    res.min = gaps[0] if gaps else float("nan")
    res.p50, res.p99, res.p999 = _pct(gaps, 0.5), _pct(gaps, 0.99), _pct(gaps, 0.999)
    for ms in TAIL_MS:
        res.tail[ms] = len(gaps) - bisect.bisect_right(gaps, ms / 1000)
    # When: late gaps ending close together are one stall of the sender.
    late.sort(key=lambda item: item[1])
    groups: list[list[tuple[float, float, tuple[str, int, int]]]] = []
    for item in late:
        if groups and item[1] - groups[-1][-1][1] <= CLUSTER:
            groups[-1].append(item)
        else:
            groups.append([item])
    groups.sort(key=lambda g: -len(g))
    for g in groups[:8]:
        start, end = min(a for a, _, _ in g), max(b for _, b, _ in g)
        longest = max(b - a for a, b, _ in g)
        where: dict[str, int] = {}
        for _, _, (ifname, family, _vrid) in g:
            label = f"{ifname}/v{family}"
            where[label] = where.get(label, 0) + 1
        text = (
            f"ending +{g[0][1] - t0:.3f}..+{end - t0:.3f} s: {len(g)} virtual router(s), "
            f"gap up to {longest * 1000:.1f} ms ({', '.join(f'{k} {v}' for k, v in where.items())})"
        )
        hits = [e for e in gc if e[0] <= end and e[0] + e[2] >= start - INTERVAL]
        if hits:
            text += "; GC " + ", ".join(
                f"gen{gen} {dur * 1000:.1f} ms at +{t - t0:.3f}" for t, gen, dur, _ in hits[:4]
            )
        res.clusters.append(text)
    if len(groups) > 8:
        res.clusters.append(f"... and {len(groups) - 8} more stall(s)")
    return res


# ---------------------------------------------------------------- one case


@dataclass
class CaseResult:
    """One implementation at one instance count."""

    impl: str
    count: int
    interfaces: int
    window: float
    window_start: float  # time.time()
    adverts: int  # from h1, in the window, seen by h3
    seen: int  # distinct virtual routers from h1 in the window
    h2_adverts: int  # from h2 in the window (there should be none)
    master: Usage
    backup: Usage
    master_pids: dict[int, str]  # pid -> role name (keepalived: parent / VRRP child)
    capture_cpu: float  # seconds: the sniffer in h3
    capture_drops: int  # frames the sniffer's socket dropped (kernel count)
    capture_packets: int
    bench_cpu: float  # seconds: this script
    machine_busy: float  # fraction of all CPUs busy over the window
    steal: float  # fraction of all CPUs' time the hypervisor took over the window
    started_after: float  # seconds from h1's spawn until both routers had started everything
    machine_cpu: float  # CPU-seconds busy over the window, all CPUs
    spacing: Spacing
    start: dict[str, StartStop]  # "h1" / "h2"
    hosts: str  # the routers' addresses, to read the logs by
    rss: dict[str, float] = field(default_factory=dict)  # MiB at the window's end
    gc: dict[str, list[tuple[float, int, float, int]]] = field(default_factory=dict)
    profiles: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)

    @property
    def others(self) -> float:
        """CPU-seconds the machine spent on anything but this benchmark (noise, softirq)."""
        ours = self.master.stat + self.backup.stat + self.capture_cpu + self.bench_cpu
        return self.machine_cpu - ours


@dataclass
class Options:
    settle: float
    window: float
    interfaces: int | None
    gc_trace: bool
    py_spy: Path | None
    perf: Path | None = None


def measure_case(impl: str, count: int, opts: Options) -> CaseResult:
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-scale-") as tmp:
        routers = virtual_routers(count, interfaces_for(count, opts.interfaces))
        interfaces = len({vr.interface for vr in routers})
        lab = built_lab()
        links = ExtraLinks(lab, interfaces)
        try:
            links.up()
            return _measure_in(lab, Path(tmp), impl, routers, interfaces, opts)
        finally:
            try:
                lab.down()
            finally:
                links.down()


def _py_spy(router: Router, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if router.proc is None or not Path(exe).exists():
        return None
    argv = [
        exe,
        "record",
        "--pid",
        str(router.proc.pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _perf(pids: list[int], out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """``perf record`` of these processes (every thread, kernel and user stacks) for the
    window: the kernel's share (sendmsg, the wake-up) beside the interpreter's."""
    argv = ["perf", "record", "-q", "-e", "cpu-clock", "-F", "4000", "-g", "-o", str(out)]
    argv += ["-p", ",".join(str(p) for p in pids), "--", "sleep", f"{seconds:g}"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _measure_in(
    lab: Lab,
    work: Path,
    impl: str,
    routers: list[VirtualRouter],
    interfaces: int,
    opts: Options,
) -> CaseResult:
    count = len(routers)
    h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
    r1 = _start(impl, h1, work, routers, opts.gc_trace)
    r2 = _start(impl, h2, work, routers, opts.gc_trace)
    if opts.py_spy is not None and isinstance(r1, BenchDaemon):
        opts.py_spy.mkdir(parents=True, exist_ok=True)
        r1.spy_start = opts.py_spy / f"vrrpy-{count}-master-start.txt"
    r1.start()
    r2.start()
    # Settle from when both have started every instance (or gave up trying), not from spawn:
    # the window must see the steady state, whatever the start-up costs.
    up = wait_for(lambda: started(r1, count) and started(r2, count), STARTUP_TIMEOUT, step=0.5)
    started_after = time.time() - r1.spawned
    time.sleep(opts.settle)
    for router in (r1, r2):
        if router.proc is None or router.proc.poll() is not None:
            raise RunError(f"{impl} in {router.host.name} exited during the settling time")

    sniffer = Sniffer(h3, work)
    time.sleep(0.5)
    master_pids = descendants(r1.proc.pid)  # type: ignore[union-attr]
    backup_pids = descendants(r2.proc.pid)  # type: ignore[union-attr]
    capture_pids = descendants(sniffer.proc.pid)  # the sniffer's own cost, for context
    spies: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    if opts.py_spy is not None and impl == "vrrpy":
        opts.py_spy.mkdir(parents=True, exist_ok=True)
        for router, role in ((r1, "master"), (r2, "backup")):
            out = opts.py_spy / f"vrrpy-{count}-{role}.txt"
            spy = _py_spy(router, out, opts.window)
            if spy is not None:
                spies[role] = (spy, out)
    perfs: list[tuple[subprocess.Popen[bytes], Path]] = []
    if opts.perf is not None:
        opts.perf.mkdir(parents=True, exist_ok=True)
        for pids, role in ((master_pids, "master"), (backup_pids, "backup")):
            out = opts.perf / f"{impl}-{count}-{role}.data"
            perfs.append((_perf(pids, out, opts.window), out))
    before = snapshot([*master_pids, *backup_pids, *capture_pids])
    bench0 = os.times()
    busy0, total0, steal0 = machine_busy()
    t0 = time.time()
    time.sleep(opts.window)
    t1 = time.time()
    busy1, total1, steal1 = machine_busy()
    bench1 = os.times()
    master = usage(before, master_pids)
    backup = usage(before, backup_pids)
    capture_use = usage(before, capture_pids)
    rss = {"h1": rss_mib(master_pids), "h2": rss_mib(backup_pids)}
    time.sleep(0.3)
    records = sniffer.stop()
    for spy, _ in [*spies.values(), *perfs]:
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()

    h1_src, h2_src = sources(h1, interfaces), sources(h2, interfaces)
    in_window = [r for r in records if t0 <= r.t < t1]
    ours = [r for r in in_window if r.src in h1_src]
    theirs = [r for r in in_window if r.src not in h1_src]
    by_vr: dict[tuple[str, int, int], list[float]] = {}
    for r in ours:
        by_vr.setdefault((r.interface, r.family, r.vrid), []).append(r.t)
    for times in by_vr.values():
        times.sort()

    notes: list[str] = []
    said: list[str] = []
    if not up:
        notes.append(
            f"not every instance had started {STARTUP_TIMEOUT:g} s after the spawn: the window "
            "may see the start-up"
        )
    if theirs:
        vrs = sorted({(r.interface, r.family, r.vrid) for r in theirs})
        who = "h2" if all(r.src in h2_src for r in theirs) else "h2 or unknown sources"
        notes.append(
            f"{who} adverted {len(theirs)} times in the window, for {len(vrs)} virtual "
            "router(s): " + ", ".join(f"{i} IPv{f} {v}" for i, f, v in vrs[:10])
        )
    priorities = {r.priority for r in ours}
    if priorities - {PRIORITIES["h1"]}:
        notes.append(f"h1 advertised priorities {sorted(priorities)}")
    if sniffer.drops:
        notes.append(
            f"the capture dropped {sniffer.drops} of {sniffer.packets} frames: adverts and "
            "spacing undercounted"
        )

    # After the window: fresh state (vrrpy), then stop Backup and Master, then the logs.
    if isinstance(r1, BenchDaemon) and isinstance(r2, BenchDaemon):
        names = {r1.proc.pid: "vrrpyd"}  # type: ignore[union-attr]
        for d, role in ((r1, "MASTER"), (r2, "BACKUP")):
            try:
                d.refresh()
                states = [i["state"] for i in d.state()["instances"].values()]
                wrong = len(states) - states.count(role)
                if wrong:
                    notes.append(f"{d.host.name}: {wrong} of {len(states)} instances not {role}")
            except (AssertionError, OSError) as exc:
                notes.append(f"{d.host.name}: no fresh state file ({exc})")
    else:
        assert isinstance(r1, BenchKeepalived)
        names = {r1.parent_pid: "parent", r1.vrrp_pid: "VRRP child"}
    start = {"h1": start_figures(r1), "h2": start_figures(r2)}
    start["h2"].stop = stop_time(r2)
    start["h1"].stop = stop_time(r1)
    for name, router in (("h1", r1), ("h2", r2)):
        if start[name].stop is None:
            notes.append(f"{name}: {impl} did not exit within 60 s of SIGTERM")
        if isinstance(router, BenchKeepalived):
            lines = keepalived_lines(router.log)
        else:
            lines = vrrpyd_lines(router.log)
        said += [f"{name}: {x}" for x in summarise(lines, t0, t1)]
    gc = {}
    for name, router in (("h1", r1), ("h2", r2)):
        if isinstance(router, BenchDaemon) and router.gc_log is not None:
            gc[name] = gc_events(router.gc_log)
    for u, name in ((master, "h1"), (backup, "h2")):
        if u.lost:
            notes.append(f"{name}: process(es) {u.lost} went away during the window")
    spacing = spacing_of(by_vr, [vr.key for vr in routers], t0, t1, gc.get("h1", ()))
    return CaseResult(
        impl=impl,
        count=count,
        interfaces=interfaces,
        window=t1 - t0,
        window_start=t0,
        adverts=len(ours),
        seen=len(by_vr),
        h2_adverts=len(theirs),
        master=master,
        backup=backup,
        master_pids={pid: names.get(pid, "child") for pid in master_pids},
        capture_cpu=capture_use.stat,
        capture_drops=sniffer.drops,
        capture_packets=sniffer.packets,
        bench_cpu=(bench1.user + bench1.system) - (bench0.user + bench0.system),
        machine_busy=(busy1 - busy0) / max(1, total1 - total0),
        steal=(steal1 - steal0) / max(1, total1 - total0),
        started_after=started_after,
        machine_cpu=(busy1 - busy0) / CLK_TCK,
        spacing=spacing,
        start=start,
        hosts=f"h1 {h1.ipv4} / {h1.link_local}, h2 {h2.ipv4} / {h2.link_local} (on eth0)",
        rss=rss,
        gc=gc,
        profiles={role: out for role, (_, out) in spies.items() if out.exists()},
        notes=notes,
        said=said,
    )


# ---------------------------------------------------------------- report


def _ratio(a: float, b: float) -> float:
    """a / b; NaN when b is 0 or NaN (too little CPU to count, or a case missing)."""
    return a / b if b == b and b != 0 else float("nan")


def _times(value: float) -> str:
    return f"{value:.2f}x" if value == value else "n/a"


def _s(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def per_advert_us(seconds: float, adverts: int) -> float:
    return seconds / adverts * 1e6 if adverts else float("nan")


def top_functions(path: Path, limit: int = 12) -> list[str]:
    """py-spy's raw (collapsed) stacks: the functions with the most samples on top (own time),
    and the share of samples each top-level callback spends below it (inclusive)."""
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        leaf = re.sub(r":\d+\)$", ")", stack.split(";")[-1])
        own[leaf] = own.get(leaf, 0) + int(n)
        total += int(n)
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:limit]
    return [f"{n / total:6.1%}  {name}" for name, n in ranked] if total else []


def print_case(res: CaseResult) -> None:
    expected = res.count / INTERVAL * res.window
    sp = res.spacing
    print(
        f"  wire: {res.adverts:,} adverts from h1 in {res.window:.2f} s = "
        f"{res.adverts / res.window:,.0f}/s (expected {res.count / INTERVAL:,.0f}/s, "
        f"{res.adverts / expected:.1%}); virtual routers seen from h1: {res.seen}/{res.count}; "
        f"adverts from h2: {res.h2_adverts}; capture: {res.capture_packets:,} frames, "
        f"{res.capture_drops} dropped"
    )
    for role, u, host in (("Master", res.master, "h1"), ("Backup", res.backup, "h2")):
        print(
            f"  {role}: CPU {u.stat / res.window:6.2%} of a core "
            f"({per_advert_us(u.stat, res.adverts):6.2f} us/advert: user "
            f"{per_advert_us(u.user, res.adverts):.2f}, "
            f"sys {per_advert_us(u.sys, res.adverts):.2f})"
            f"; schedstat {u.sched / res.window:6.2%} "
            f"({per_advert_us(u.sched, res.adverts):6.2f} us/advert); "
            f"{round(u.stat * CLK_TCK)} ticks; RSS {res.rss.get(host, 0):.0f} MiB"
        )
    if len(res.master.per_pid) > 1:
        parts = [
            f"{res.master_pids.get(pid, pid)} {s / res.window:.2%}"
            for pid, s in res.master.per_pid.items()
        ]
        print(f"  Master by process: {', '.join(parts)}")
    print(
        f"  spacing (h1, per virtual router, h3's kernel timestamps): {sp.gaps:,} gaps, min "
        f"{sp.min * 1000:.1f} / p50 {sp.p50 * 1000:.1f} / p99 {sp.p99 * 1000:.1f} / p99.9 "
        f"{sp.p999 * 1000:.1f} / max {sp.max * 1000:.1f} ms; tail: "
        + ", ".join(f">{ms} ms {n}" for ms, n in sp.tail.items())
    )
    print(
        f"  over {LATE:g} intervals: {sp.late} of {sp.gaps:,} gaps"
        + (f", plus {sp.edge_late} at the window's edges" if sp.edge_late else "")
        + (f", {sp.silent} virtual router(s) silent all window" if sp.silent else "")
    )
    for line in sp.clusters:
        print(f"    late, {line}")
    for name in ("h1", "h2"):
        st = res.start[name]
        role = "Master" if name == "h1" else "Backup"
        res_note = " (log stamps whole seconds)" if st.resolution >= 1 else ""
        line = (
            f"  {name} ({role}): start-up {_s(st.span)} s, first to last of {st.running} "
            f"instances running (+{_s(st.first)} .. +{_s(st.last)} s from spawn){res_note}"
        )
        if st.masters:
            line += f"; {st.masters} Master by +{_s(st.all_master)} s"
        line += f"; SIGTERM to exit {_s(st.stop)} s"
        print(line)
    for name, events in res.gc.items():
        by_gen: dict[int, list[float]] = {}
        for _, gen, dur, _ in events:
            by_gen.setdefault(gen, []).append(dur)
        parts = [
            f"gen{g} x{len(d)} (max {max(d) * 1000:.2f} ms, total {sum(d) * 1000:.1f} ms)"
            for g, d in sorted(by_gen.items())
        ]
        print(f"  GC in {name}'s vrrpyd, whole run: {', '.join(parts) or 'none'}")
        t0 = res.window_start
        slow = [e for e in events if t0 <= e[0] <= t0 + res.window and e[2] >= 0.005]
        if slow:
            print(
                "    in the window, over 5 ms: "
                + ", ".join(f"gen{g} {d * 1000:.1f} ms at +{t - t0:.3f} s" for t, g, d, _ in slow)
            )
    print(
        f"  context: every instance started {res.started_after:.1f} s after h1's spawn; "
        f"machine {res.machine_busy:.0%} busy (all {os.cpu_count()} CPUs, "
        f"{res.steal:.1%} stolen by the hypervisor), "
        f"the capture in h3 {res.capture_cpu / res.window:.1%} of a core, this script "
        f"{res.bench_cpu / res.window:.1%}, the rest (other processes, softirq) "
        f"{res.others / res.window:.1%}"
    )
    for role, path in res.profiles.items():
        print(f"  py-spy, {role} ({path}), own time:")
        for line in top_functions(path):
            print(f"    {line}")
    for note in res.notes:
        print(f"  NOTE: {note}")
    if res.said:
        print(f"  logs ({res.hosts}):")
    for line in res.said:
        print(f"    {line}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--counts",
        type=int,
        nargs="+",
        default=list(DEFAULT_COUNTS),
        help="instance counts, default 50 500 2000 (at most 500 per interface)",
    )
    parser.add_argument(
        "--interfaces",
        type=int,
        default=None,
        help=f"spread every count over this many interfaces (1..{MAX_INTERFACES}); default: "
        f"the fewest that hold it ({PER_INTERFACE} instances each)",
    )
    parser.add_argument("--settle", type=float, default=20.0, help="settling seconds, default 20")
    parser.add_argument(
        "--measure", type=float, default=10.0, help="measured window in seconds, default 10"
    )
    parser.add_argument("--impl", choices=(*IMPLS, "both"), default="both")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure every count and implementation this many times, alternating; the CPU "
        "per advert is then the median of the runs (default 1)",
    )
    parser.add_argument(
        "--gc-trace",
        action="store_true",
        help="run vrrpyd under a wrapper that logs every garbage collection (gc.callbacks); "
        "the collections are printed and set against the late adverts",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="profile both vrrpyd processes over the window, and the Master's first 15 s "
        "(start-up), with py-spy (raw stacks to DIR, top functions printed); the profiler "
        "costs CPU, so no target is judged",
    )
    parser.add_argument(
        "--perf",
        type=Path,
        metavar="DIR",
        help="record both implementations' processes over the window with perf (cpu-clock, "
        "kernel and user stacks; DIR/IMPL-COUNT-ROLE.data, read with perf report); no target "
        "is judged",
    )
    args = parser.parse_args(argv)
    if args.interfaces is not None and not 1 <= args.interfaces <= MAX_INTERFACES:
        parser.error(f"--interfaces: 1..{MAX_INTERFACES}")
    for n in args.counts:
        most = (args.interfaces or MAX_INTERFACES) * PER_INTERFACE
        if not 1 <= n <= most:
            parser.error(f"--counts: {n}: 1..{most} ({PER_INTERFACE} per interface)")
    if args.measure <= 0 or args.settle < 0:
        parser.error("--measure must be positive and --settle not negative")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    opts = Options(
        args.settle, args.measure, args.interfaces, args.gc_trace, args.py_spy, args.perf
    )

    # SIGTERM / SIGHUP end the run through the teardowns (lab, extra links), not around them.
    def interrupted(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    print_header("vrrpy scale bench: CPU per advert, spacing, start, stop; vrrpy and keepalived")
    impls = root_and_impls(args.impl)
    if impls is None:
        return 2
    print(f"vrrpy imported from {Path(vrrpy.__file__).parent}")
    print(
        f"VRRPv3 at {INTERVAL * 1000:g} ms; h1 priority {PRIORITIES['h1']} (Master), "
        f"h2 {PRIORITIES['h2']} (Backup), h3 captures; settle {args.settle:g} s, measure "
        f"{args.measure:g} s; /proc/PID/stat ticks of {1000 / CLK_TCK:g} ms"
        + ("; vrrpyd under the GC wrapper" if args.gc_trace else "")
        + ("; PROFILED with py-spy (figures perturbed)" if args.py_spy else "")
    )

    results: dict[tuple[int, str], CaseResult] = {}
    runs: dict[tuple[int, str], list[CaseResult]] = {}
    for round_ in range(1, args.repeat + 1):
        for count in args.counts:
            routers = virtual_routers(count, interfaces_for(count, args.interfaces))
            for impl in impls:
                which = f", run {round_} of {args.repeat}" if args.repeat > 1 else ""
                print(f"\n== {count} instances ({layout(routers)}), {impl}{which} ==", flush=True)
                try:
                    res = measure_case(impl, count, opts)
                except LabError as exc:
                    print(f"the lab could not be built: {exc}")
                    return 1
                except Exception as exc:  # one failed run is reported; the others go on
                    print(f"  FAILED: {type(exc).__name__}: {exc}")
                    continue
                results[count, impl] = res  # the tables show the last run of each
                runs.setdefault((count, impl), []).append(res)
                print_case(res)

    print("\n== summary (CPU from /proc/PID/stat; us/advert = CPU time / adverts from h1) ==")
    print(
        f"  {'inst':>5} {'impl':<10} {'adverts/s':>9} {'Master %':>9} {'us/adv':>7} "
        f"{'(u+s)':>11} {'Backup %':>9} {'us/adv':>7} {'(u+s)':>11}"
    )
    for (count, impl), res in results.items():
        m, b, n = res.master, res.backup, res.adverts
        print(
            f"  {count:>5} {impl:<10} {res.adverts / res.window:>9,.0f} "
            f"{m.stat / res.window:>9.2%} {per_advert_us(m.stat, n):>7.2f} "
            f"{per_advert_us(m.user, n):>5.1f}+{per_advert_us(m.sys, n):<5.1f} "
            f"{b.stat / res.window:>9.2%} {per_advert_us(b.stat, n):>7.2f} "
            f"{per_advert_us(b.user, n):>5.1f}+{per_advert_us(b.sys, n):<5.1f}"
        )
    print(
        "\n  spacing of h1's adverts (per virtual router), start-up (first to last instance "
        "running) and SIGTERM to exit:"
    )
    print(
        f"  {'inst':>5} {'impl':<10} {'gaps':>7} {f'>{LATE:g} iv':>7} {'max ms':>7} "
        f"{'p99.9':>6} {'drops':>5} {'start h1':>8} {'h2':>6} {'stop h1':>8} {'h2':>6} "
        f"{'others':>6}"
    )
    for (count, impl), res in results.items():
        sp, s1, s2 = res.spacing, res.start["h1"], res.start["h2"]
        print(
            f"  {count:>5} {impl:<10} {sp.gaps:>7,} {sp.late + sp.edge_late:>7} "
            f"{sp.max * 1000:>7.1f} {sp.p999 * 1000:>6.1f} {res.capture_drops:>5} "
            f"{_s(s1.span):>8} {_s(s2.span):>6} {_s(s1.stop):>8} {_s(s2.stop):>6} "
            f"{res.others / res.window:>6.0%}"
        )
    print(
        "  (others: CPU the machine spent outside this benchmark's processes, of one core; "
        "tick-sampled, approximate)"
    )

    def cost(count: int, impl: str, role: str, sched: bool = False) -> float:
        """CPU per advert, the median of the runs (ticks, or the scheduler's nanoseconds)."""
        done = runs.get((count, impl))
        if not done:
            return float("nan")
        return statistics.median(
            per_advert_us(
                (r.master if role == "Master" else r.backup).sched
                if sched
                else (r.master if role == "Master" else r.backup).stat,
                r.adverts,
            )
            for r in done
        )

    def ticks(count: int, impl: str, role: str) -> int:
        """The fewest clock ticks any run's figure rests on (its precision: 1/ticks)."""
        done = runs.get((count, impl)) or []
        return min(
            (round((r.master if role == "Master" else r.backup).stat * CLK_TCK) for r in done),
            default=0,
        )

    if args.repeat > 1:
        print(f"\n== CPU per advert, every run (us; schedstat), {args.repeat} runs each ==")
        for (count, impl), done in runs.items():
            for role in ("Master", "Backup"):
                each = [
                    per_advert_us((r.master if role == "Master" else r.backup).sched, r.adverts)
                    for r in done
                ]
                print(
                    f"  {count:>5} {impl:<10} {role}: "
                    + " / ".join(f"{v:.2f}" for v in each)
                    + f"  median {cost(count, impl, role, True):.2f}"
                )

    verdicts: list[str] = []
    small, large = min(args.counts), max(args.counts)
    if set(impls) == set(IMPLS):
        print("\nvrrpy / keepalived, CPU per advert (schedstat in brackets), same count:")
        for count in args.counts:
            for role in ("Master", "Backup"):
                ratio = _ratio(cost(count, "vrrpy", role), cost(count, "keepalived", role))
                check = _ratio(
                    cost(count, "vrrpy", role, True), cost(count, "keepalived", role, True)
                )
                print(f"  {count:>5} {role}: {_times(ratio)}  [{_times(check)}]")
        print(f"\nvrrpy / keepalived at {small} instances, CPU per advert:")
        for count in args.counts:
            for role in ("Master", "Backup"):
                ratio = _ratio(cost(count, "vrrpy", role), cost(small, "keepalived", role))
                check = _ratio(
                    cost(count, "vrrpy", role, True), cost(small, "keepalived", role, True)
                )
                print(f"  vrrpy at {count:>5} {role}: {_times(ratio)}  [{_times(check)}]")
                # Judged on the scheduler's nanoseconds: a tick figure of a few dozen
                # ticks moves by a tenth from one run to the next.
                fewest = min(ticks(count, "vrrpy", role), ticks(small, "keepalived", role))
                if check == check:
                    rough = (
                        f"; one run of {fewest} ticks: keepalived's figure moves by a third "
                        "between runs here, judge with --measure 30 --repeat 3"
                        if fewest < MIN_TICKS and args.repeat == 1
                        else ""
                    )
                    verdicts.append(
                        f"{'MET' if check <= TARGET_KEEPALIVED else 'NOT MET'}: 2. {count} "
                        f"instances, {role}: vrrpy {cost(count, 'vrrpy', role, True):.2f} "
                        f"us/advert = {check:.2f}x keepalived's at {small} "
                        f"({cost(small, 'keepalived', role, True):.2f}; schedstat"
                        + (f", median of {args.repeat} runs" if args.repeat > 1 else "")
                        + f"){rough}"
                    )
    if small != large:
        print(f"\nper advert at {large} / at {small} (schedstat in brackets):")
        for impl in impls:
            for role in ("Master", "Backup"):
                growth = _ratio(cost(large, impl, role), cost(small, impl, role))
                check = _ratio(cost(large, impl, role, True), cost(small, impl, role, True))
                print(f"  {impl:<10} {role}: {_times(growth)}  [{_times(check)}]")
                if impl == "vrrpy" and growth == growth:
                    verdicts.append(
                        f"{'MET' if growth <= TARGET_LINEAR else 'NOT MET'}: 3. vrrpy {role} per "
                        f"advert at {large} is {growth:.2f}x that at {small}"
                    )
    for (count, impl), res in ((key, one) for key, done in runs.items() for one in done):
        if impl != "vrrpy":
            continue
        sp = res.spacing
        late = sp.late + sp.edge_late
        if res.capture_drops:
            verdicts.append(
                f"NOT JUDGED: 1. {count} instances: the capture dropped {res.capture_drops} frames "
                f"({late} spacings over {LATE:g} intervals seen, max {sp.max * 1000:.1f} ms)"
            )
        else:
            verdicts.append(
                f"{'MET' if late == 0 else 'NOT MET'}: 1. {count} instances: {late} advert "
                f"spacings over {LATE:g} intervals, the longest {sp.max * 1000:.1f} ms"
            )
        for name in ("h1", "h2"):
            st = res.start[name]
            span, stop = st.span, st.stop
            ok = span is not None and span < TARGET_START and st.running == count
            verdicts.append(
                f"{'MET' if ok else 'NOT MET'}: 4. {count} instances, {name}: start-up "
                f"{_s(span)} s ({st.running} instances seen starting)"
            )
            ok = stop is not None and stop < TARGET_STOP
            verdicts.append(
                f"{'MET' if ok else 'NOT MET'}: 5. {count} instances, {name}: SIGTERM to exit "
                f"{_s(stop)} s"
            )

    print("\n== targets (vrrpy) ==")
    print(f"  1. no advert spacing over {LATE:g} intervals, at any count")
    print(
        f"  2. CPU per advert at most keepalived's at {small} instances, same run "
        "(each count, Master and Backup)"
    )
    if small != large:
        print(f"  3. linear: per advert at {large} within {TARGET_LINEAR:g}x of that at {small}")
    print(f"  4. start-up, first to last instance running, under {TARGET_START:g} s")
    print(f"  5. SIGTERM to exit under {TARGET_STOP:g} s")
    if args.py_spy is not None or args.perf is not None:
        print("  (not judged: profiled, and the profiler takes CPU of its own)")
        return 0
    order = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4}
    verdicts.sort(key=lambda v: order.get(v.split(": ", 1)[1][:1], 9))
    for line in verdicts or ["(not judged: the cases needed are missing)"]:
        print(f"  {line}")
    if verdicts:
        met = sum(1 for v in verdicts if v.startswith("MET"))
        print(f"  {met} of {len(verdicts)} met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
