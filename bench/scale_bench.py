"""CPU per advert at scale: vrrpy's vrrpyd against keepalived, same lab, same run, same instances.

For 50 and 500 VRRPv3 instances at a 100 ms advert interval on one interface
(``eth0``), and for each implementation, a fresh three-host lab
(``vrrpy.lab.Lab``): h1 runs every instance at priority 200 (the Master), h2
the same instances at priority 100 (the Backup), h3 counts the adverts on the
wire with ``vrrpy.lab.Capture``.

The instances. VRIDs are 1..255 per interface and address family, so 500
instances are 255 IPv4 (VRID 1..255, one virtual address each:
198.51.100.VRID/24, and 203.0.113.1/24 for VRID 255) plus 245 IPv6 (VRID
1..245, 2001:db8:1::VRID/64, the VRID in hex). Smaller counts keep that mix
(50 = 26 IPv4 + 24 IPv6, the first VRIDs of each family), so the per-advert
costs at 50 and at 500 are comparable.

* vrrpy: one vrrpyd per host with every instance (``log_level = "warning"``,
  gratuitous ARP / NA defaults), started by ``vrrpy.lab.Daemon``.
* keepalived: one ``ip netns exec NS keepalived -n -l -f CONF -p PID -r
  VRRP_PID -c CHECK_PID`` per host (no ``-D``: detailed logging costs it most
  of a core at this scale), one ``vrrp_instance`` per virtual router
  (``version 3``, ``advert_int 0.1``, ``native_ipv6`` on the IPv6 ones), its
  own pid files and ``router_id`` per host. For IPv6 instances keepalived 2.2.7
  logs "the first IPv6 VIP address should be link local" (RFC 9568 asks for a
  link-local first address); the instances are kept the same as vrrpyd's
  (one global address), so that warning is expected.

Measurement: after ``--settle`` seconds (20) the capture starts; CPU time is
read from ``/proc/PID/stat`` (utime + stime, summed over every process of the
implementation on that host: for keepalived the parent and its VRRP child,
for vrrpy the vrrpyd process) at the start and the end of a ``--measure``
window (10 s), for the Master host and the Backup host separately, and the
adverts from h1 whose kernel timestamp falls in the window are counted.
``/proc/PID/stat`` counts in clock ticks (10 ms): over 10 s that is 0.1 % of
a core, coarse for keepalived's Backup; the scheduler's nanosecond count
(``/proc/PID/task/*/schedstat``) is printed beside it as a check. The
whole machine's busy time over the window is printed too (the capture and
both routers share it).

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
instance was Mastered by h1 (VRIDs seen from h1, adverts from h2 in the
window); then vrrpy / keepalived per advert, and per advert at the largest
count / at the smallest. Targets (judged on /proc/PID/stat figures):

* vrrpy costs at most 2x keepalived's CPU per advert (each count, each role);
* vrrpy is linear in the number of instances: its per-advert cost at 500 is
  within 1.5x of its cost at 50 (each role).

It is a report, not a test: exit 0 whatever the figures, 1 only when the lab
could not be built (2 without root). Run as root: ``python
bench/scale_bench.py`` (about 2.5 minutes; ``--counts``, ``--settle``,
``--measure``, ``--impl`` to change it). It reuses the keepalived wrapper and
header of ``failover_bench.py`` (same directory).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from failover_bench import (
    INSTANCE_NAME,
    Keepalived,
    LabError,
    RunError,
    built_lab,
    print_header,
    root_and_impls,
)
from vrrpy.lab import Capture, Daemon, Host, Lab, render

INTERVAL = 0.1
PRIORITIES = {"h1": 200, "h2": 100}
IMPLS = ("vrrpy", "keepalived")
MAX_V4, MAX_V6 = 255, 245
TARGET_RATIO = 2.0  # vrrpy's CPU per advert at most 2x keepalived's
TARGET_LINEAR = 1.5  # vrrpy's per-advert cost at the largest count within 1.5x of the smallest
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the instances


@dataclass(frozen=True)
class VirtualRouter:
    """One virtual router of the benchmark, as both implementations are given it."""

    family: int
    vrid: int
    address: str  # with its prefix length

    @property
    def name(self) -> str:
        return f"V{self.family}_{self.vrid}"


def virtual_routers(count: int) -> list[VirtualRouter]:
    """``count`` (1..500) virtual routers: IPv4 and IPv6 in the proportion 255 : 245."""
    if not 1 <= count <= MAX_V4 + MAX_V6:
        raise ValueError(f"1..{MAX_V4 + MAX_V6} instances on one interface")
    v4 = min(MAX_V4, max(count - MAX_V6, round(count * MAX_V4 / (MAX_V4 + MAX_V6))))
    routers = [
        VirtualRouter(4, vrid, f"198.51.100.{vrid}/24" if vrid < 255 else "203.0.113.1/24")
        for vrid in range(1, v4 + 1)
    ]
    routers += [
        VirtualRouter(6, vrid, f"2001:db8:1::{vrid:x}/64") for vrid in range(1, count - v4 + 1)
    ]
    return routers


def keepalived_config(router_id: str, priority: int, routers: list[VirtualRouter]) -> str:
    """keepalived.conf with one VRRPv3 instance per virtual router."""
    parts = [f"global_defs {{\n    router_id {router_id}\n}}\n"]
    for vr in routers:
        native = "    native_ipv6\n" if vr.family == 6 else ""
        parts.append(
            f"vrrp_instance {vr.name} {{\n"
            "    state BACKUP\n"
            "    interface eth0\n"
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
            "interface": "eth0",
            "vrid": vr.vrid,
            "version": 3,
            "priority": priority,
            "advert_interval": INTERVAL,
            "virtual_addresses": [vr.address],
        }
        for vr in routers
    ]


class QuietDaemon(Daemon):
    """vrrpyd logging warnings only (keepalived without -D logs little more)."""

    def write(self, instances: list[Mapping[str, Any]]) -> None:
        self.conf.write_text(render(self.state_file, instances, log_level="warning"))


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


def stat_ticks(pid: int) -> int | None:
    """utime + stime of a process (all its threads), in clock ticks; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def sched_ns(pid: int) -> int | None:
    """Time on a CPU of every thread of a process, in nanoseconds; None if it is gone."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    except (OSError, ValueError):
        return None
    return total


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


@dataclass
class Usage:
    """CPU used by a set of processes over the window, in seconds."""

    stat: float
    sched: float
    per_pid: dict[int, float]  # /proc/PID/stat seconds per process
    lost: list[int]  # processes that went away during the window


def usage(before: Mapping[int, tuple[int | None, int | None]], pids: Sequence[int]) -> Usage:
    per_pid: dict[int, float] = {}
    sched = 0.0
    lost = []
    for pid in pids:
        t0, n0 = before[pid]
        t1, n1 = stat_ticks(pid), sched_ns(pid)
        if t0 is None or t1 is None or n0 is None or n1 is None:
            lost.append(pid)
            continue
        per_pid[pid] = (t1 - t0) / CLK_TCK
        sched += (n1 - n0) / 1e9
    return Usage(sum(per_pid.values()), sched, per_pid, lost)


def snapshot(pids: Sequence[int]) -> dict[int, tuple[int | None, int | None]]:
    return {pid: (stat_ticks(pid), sched_ns(pid)) for pid in pids}


# ---------------------------------------------------------------- logs

# keepalived's lines for a normal start and stop; everything else is summarised.
_KEEPALIVED_START = re.compile(
    r"Starting Keepalived|Running on Linux|Command line:|^\s+'|Configuration file|"
    r"Starting VRRP child process|Startup complete|Entering BACKUP STATE \(init\)|"
    r"Stopping|Stopped"
)
_KEEPALIVED_LINE = re.compile(r"^(\w{3} \w{3} +\d+ [\d:]+ \d{4}): (.*)$")
_VRRPYD_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) vrrpyd\[\d+\] (\w+) [\w.]+: (.*)$"
)
_DECIMAL = re.compile(r"(?<![\d.])\d+\.\d+(?![\d.])")


def keepalived_lines(path: Path) -> list[tuple[float | None, str]]:
    """(time, text) of keepalived's console log, without the lines of a normal start."""
    out: list[tuple[float | None, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        m = _KEEPALIVED_LINE.match(line)
        stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y").timestamp() if m else None
        text = m.group(2) if m else line
        if text.strip() and not _KEEPALIVED_START.search(text):
            out.append((stamp, text))
    return out


def vrrpyd_lines(path: Path) -> list[tuple[float | None, str]]:
    """(time, "LEVEL text") of vrrpyd's log above INFO (tracebacks included, untimed)."""
    out: list[tuple[float | None, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        m = _VRRPYD_LINE.match(line)
        if m is None:
            if line.strip():
                out.append((None, line))
            continue
        if m.group(3) in ("DEBUG", "INFO"):
            continue
        stamp = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        out.append((stamp + int(m.group(2)) / 1000, f"{m.group(3)} {m.group(4)}"))
    return out


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


# ---------------------------------------------------------------- one case


@dataclass
class CaseResult:
    """One implementation at one instance count."""

    impl: str
    count: int
    window: float
    adverts: int  # from h1, in the window, seen by h3
    v4_seen: int  # distinct IPv4 VRIDs from h1 in the window
    v6_seen: int
    v4_expected: int
    v6_expected: int
    h2_adverts: int  # from h2 in the window (there should be none)
    master: Usage
    backup: Usage
    master_pids: dict[int, str]  # pid -> role name (keepalived: parent / VRRP child)
    capture_cpu: float  # seconds: the sniffer in h3
    machine_busy: float  # fraction of all CPUs busy over the window
    spacing_max: float  # the longest gap between two adverts of one VRID from h1
    hosts: str  # the routers' addresses, to read the logs by
    notes: list[str] = field(default_factory=list)
    said: list[str] = field(default_factory=list)


def measure_case(impl: str, count: int, settle: float, window: float) -> CaseResult:
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-scale-") as tmp:
        lab = built_lab()
        try:
            return _measure_in(lab, Path(tmp), impl, count, settle, window)
        finally:
            lab.down()


def _start(impl: str, host: Host, work: Path, routers: list[VirtualRouter]) -> Daemon | Keepalived:
    priority = PRIORITIES[host.name]
    if impl == "keepalived":
        return Keepalived(host, work, keepalived_config(f"bench_{host.name}", priority, routers))
    return QuietDaemon(host, work, vrrpy_instances(priority, routers))


def _measure_in(
    lab: Lab, work: Path, impl: str, count: int, settle: float, window: float
) -> CaseResult:
    h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
    routers = virtual_routers(count)
    r1, r2 = _start(impl, h1, work, routers), _start(impl, h2, work, routers)
    r1.start()
    r2.start()
    time.sleep(settle)
    for router in (r1, r2):
        if router.proc is None or router.proc.poll() is not None:
            raise RunError(f"{impl} in {router.host.name} exited during the settling time")

    capture = Capture(h3)
    time.sleep(0.5)
    master_pids = descendants(r1.proc.pid)  # type: ignore[union-attr]
    backup_pids = descendants(r2.proc.pid)  # type: ignore[union-attr]
    capture_pids = descendants(capture._proc.pid)  # the sniffer's own cost, for context
    before = snapshot([*master_pids, *backup_pids, *capture_pids])
    busy0, total0 = machine_busy()
    t0 = time.time()
    time.sleep(window)
    t1 = time.time()
    busy1, total1 = machine_busy()
    master = usage(before, master_pids)
    backup = usage(before, backup_pids)
    capture_use = usage(before, capture_pids)
    time.sleep(0.3)
    records = capture.stop()

    src4, src6 = str(h1.ipv4), str(h1.link_local)
    in_window = [
        r for r in records if r["kind"] == "vrrp" and t0 <= r["t"] < t1 and not r["outgoing"]
    ]
    ours = [r for r in in_window if r["src"] in (src4, src6)]
    theirs = [r for r in in_window if r["src"] not in (src4, src6)]
    by_vr: dict[tuple[str, int], list[float]] = {}
    for r in ours:
        by_vr.setdefault((r["src"], r["vrid"]), []).append(r["t"])
    spacing = [b - a for times in by_vr.values() for a, b in itertools.pairwise(times)]

    notes: list[str] = []
    said: list[str] = []
    late = sum(1 for gap in spacing if gap > 1.5 * INTERVAL)
    if late:
        notes.append(f"{late} of {len(spacing)} advert spacings from h1 over 1.5 intervals")
    if theirs:
        vrids = sorted({(":" in r["src"], r["vrid"]) for r in theirs})
        notes.append(
            f"h2 adverted {len(theirs)} times in the window, for {len(vrids)} VRID(s): "
            + ", ".join(f"IPv{6 if v6 else 4} {vrid}" for v6, vrid in vrids[:10])
        )
    priorities = {r["priority"] for r in ours}
    if priorities - {PRIORITIES["h1"]}:
        notes.append(f"h1 advertised priorities {sorted(priorities)}")
    if isinstance(r1, Keepalived) and isinstance(r2, Keepalived):
        names = {r1.parent_pid: "parent", r1.vrrp_pid: "VRRP child"}
        for k in (r1, r2):
            said += [f"{k.host.name}: {x}" for x in summarise(keepalived_lines(k.log), t0, t1)]
    else:
        assert isinstance(r1, Daemon) and isinstance(r2, Daemon)
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
            said += [f"{d.host.name}: {x}" for x in summarise(vrrpyd_lines(d.log), t0, t1)]
    for u, name in ((master, "h1"), (backup, "h2")):
        if u.lost:
            notes.append(f"{name}: process(es) {u.lost} went away during the window")
    v4 = sum(1 for vr in routers if vr.family == 4)
    return CaseResult(
        impl=impl,
        count=count,
        window=t1 - t0,
        adverts=len(ours),
        v4_seen=len({vrid for src, vrid in by_vr if src == src4}),
        v6_seen=len({vrid for src, vrid in by_vr if src == src6}),
        v4_expected=v4,
        v6_expected=count - v4,
        h2_adverts=len(theirs),
        master=master,
        backup=backup,
        master_pids={pid: names.get(pid, "child") for pid in master_pids},
        capture_cpu=capture_use.stat,
        machine_busy=(busy1 - busy0) / max(1, total1 - total0),
        spacing_max=max(spacing, default=float("nan")),
        hosts=f"h1 {src4} / {src6}, h2 {h2.ipv4} / {h2.link_local}",
        notes=notes,
        said=said,
    )


# ---------------------------------------------------------------- report


def _ratio(a: float, b: float) -> float:
    """a / b; NaN when b is 0 or NaN (too little CPU to count, or a case missing)."""
    return a / b if b == b and b != 0 else float("nan")


def _times(value: float) -> str:
    return f"{value:.2f}x" if value == value else "n/a"


def per_advert_us(seconds: float, adverts: int) -> float:
    return seconds / adverts * 1e6 if adverts else float("nan")


def print_case(res: CaseResult) -> None:
    expected = res.count / INTERVAL * res.window
    print(
        f"  wire: {res.adverts:,} adverts from h1 in {res.window:.2f} s = "
        f"{res.adverts / res.window:,.0f}/s (expected {res.count / INTERVAL:,.0f}/s, "
        f"{res.adverts / expected:.1%}); VRIDs seen from h1: IPv4 {res.v4_seen}/{res.v4_expected}"
        f", IPv6 {res.v6_seen}/{res.v6_expected}; adverts from h2: {res.h2_adverts}; longest "
        f"gap between two adverts of one VRID {res.spacing_max * 1000:.1f} ms"
    )
    for role, u in (("Master", res.master), ("Backup", res.backup)):
        print(
            f"  {role}: CPU {u.stat / res.window:6.2%} of a core "
            f"({per_advert_us(u.stat, res.adverts):6.2f} us/advert); schedstat "
            f"{u.sched / res.window:6.2%} ({per_advert_us(u.sched, res.adverts):6.2f} us/advert)"
        )
    if len(res.master.per_pid) > 1:
        parts = [
            f"{res.master_pids.get(pid, pid)} {s / res.window:.2%}"
            for pid, s in res.master.per_pid.items()
        ]
        print(f"  Master by process: {', '.join(parts)}")
    print(
        f"  context: machine {res.machine_busy:.0%} busy (all {os.cpu_count()} CPUs), "
        f"the capture in h3 {res.capture_cpu / res.window:.1%} of a core"
    )
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
        default=[50, 500],
        help=f"instance counts (1..{MAX_V4 + MAX_V6}), default 50 500",
    )
    parser.add_argument("--settle", type=float, default=20.0, help="settling seconds, default 20")
    parser.add_argument(
        "--measure", type=float, default=10.0, help="measured window in seconds, default 10"
    )
    parser.add_argument("--impl", choices=(*IMPLS, "both"), default="both")
    args = parser.parse_args(argv)
    if any(not 1 <= n <= MAX_V4 + MAX_V6 for n in args.counts):
        parser.error(f"--counts: 1..{MAX_V4 + MAX_V6} instances on one interface")
    if args.measure <= 0 or args.settle < 0:
        parser.error("--measure must be positive and --settle not negative")

    print_header("vrrpy scale bench: CPU per advert, vrrpy against keepalived")
    impls = root_and_impls(args.impl)
    if impls is None:
        return 2
    print(
        f"VRRPv3 at {INTERVAL * 1000:g} ms on eth0; h1 priority {PRIORITIES['h1']} (Master), "
        f"h2 {PRIORITIES['h2']} (Backup); settle {args.settle:g} s, measure {args.measure:g} s; "
        f"/proc/PID/stat ticks of {1000 / CLK_TCK:g} ms"
    )

    results: dict[tuple[int, str], CaseResult] = {}
    for count in args.counts:
        routers = virtual_routers(count)
        v4 = sum(1 for vr in routers if vr.family == 4)
        for impl in impls:
            print(f"\n== {count} instances ({v4} IPv4 + {count - v4} IPv6), {impl} ==", flush=True)
            try:
                res = measure_case(impl, count, args.settle, args.measure)
            except LabError as exc:
                print(f"the lab could not be built: {exc}")
                return 1
            except Exception as exc:  # one failed run is reported; the others go on
                print(f"  FAILED: {type(exc).__name__}: {exc}")
                continue
            results[count, impl] = res
            print_case(res)

    print("\n== summary (CPU from /proc/PID/stat; us/advert = CPU time / adverts from h1) ==")
    print(
        f"  {'inst':>5} {'impl':<10} {'adverts/s':>9} {'Master %':>9} {'us/adv':>7} "
        f"{'Backup %':>9} {'us/adv':>7}"
    )
    for (count, impl), res in results.items():
        print(
            f"  {count:>5} {impl:<10} {res.adverts / res.window:>9,.0f} "
            f"{res.master.stat / res.window:>9.2%} "
            f"{per_advert_us(res.master.stat, res.adverts):>7.2f} "
            f"{res.backup.stat / res.window:>9.2%} "
            f"{per_advert_us(res.backup.stat, res.adverts):>7.2f}"
        )

    def cost(count: int, impl: str, role: str, sched: bool = False) -> float:
        res = results.get((count, impl))
        if res is None:
            return float("nan")
        u = res.master if role == "Master" else res.backup
        return per_advert_us(u.sched if sched else u.stat, res.adverts)

    verdicts: list[str] = []
    if set(impls) == set(IMPLS):
        print("\nvrrpy / keepalived, CPU per advert (schedstat in brackets):")
        for count in args.counts:
            for role in ("Master", "Backup"):
                ratio = _ratio(cost(count, "vrrpy", role), cost(count, "keepalived", role))
                check = _ratio(
                    cost(count, "vrrpy", role, True), cost(count, "keepalived", role, True)
                )
                print(f"  {count:>5} {role}: {_times(ratio)}  [{_times(check)}]")
                if ratio == ratio:  # not NaN
                    verdicts.append(
                        f"{'MET' if ratio <= TARGET_RATIO else 'NOT MET'}: {count} instances, "
                        f"{role}: vrrpy {ratio:.2f}x keepalived per advert "
                        f"(target <= {TARGET_RATIO:g}x)"
                    )
    small, large = min(args.counts), max(args.counts)
    if small != large:
        print(f"\nper advert at {large} / at {small} (schedstat in brackets):")
        for impl in impls:
            for role in ("Master", "Backup"):
                growth = _ratio(cost(large, impl, role), cost(small, impl, role))
                check = _ratio(cost(large, impl, role, True), cost(small, impl, role, True))
                print(f"  {impl:<10} {role}: {_times(growth)}  [{_times(check)}]")
                if impl == "vrrpy" and growth == growth:
                    verdicts.append(
                        f"{'MET' if growth <= TARGET_LINEAR else 'NOT MET'}: vrrpy {role} per "
                        f"advert at {large} is {growth:.2f}x that at {small} "
                        f"(target <= {TARGET_LINEAR:g}x)"
                    )

    print("\n== targets ==")
    print(f"  1. vrrpy's CPU per advert at most {TARGET_RATIO:g}x keepalived's (each count, role)")
    if small != large:
        print(
            f"  2. linear: vrrpy's per-advert cost at {large} within {TARGET_LINEAR:g}x of "
            f"that at {small}"
        )
    for line in verdicts or ["(not judged: the cases needed are missing)"]:
        print(f"  {line}")
    if verdicts:
        met = sum(1 for v in verdicts if v.startswith("MET"))
        print(f"  {met} of {len(verdicts)} met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
