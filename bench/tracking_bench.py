"""Advert timing while tracking: a 10 ms Master with and without 100 scripts and 20 ping targets.

Issue 14's target: tracking must not move the Master's largest advert gap by
more than 1 ms. Every check runs in the tracking agent, a child process of
vrrpyd at normal priority (docs/tracking.md); this measures whether that
separation holds on the wire, and what the tracking costs in CPU.

Each run builds a fresh three-host lab (``vrrpy.lab.Lab``): h1 is vrrpyd as
Master (VRID 51, priority 200, adverts every 10 ms), h2 its Backup (priority
100), h3 captures the wire (``vrrpy.lab.Capture``: kernel receive
timestamps) and answers the pings. Two kinds of run, the same length:

* ``plain``: h1 tracks nothing (its own interface only, in-process);
* ``tracking``: h1 tracks ``--scripts`` (100) ``[[track_script]]`` entries,
  each ``/bin/true`` every second (even ones with weight 0, odd ones -1: a
  FAULT and a priority track, neither of which ever fires), and one
  ``[[track_ping]]`` group (weight 0) of ``--targets`` (20) addresses that
  h3 carries on its ``eth0``, half IPv4 (198.51.100.0/24, 203.0.113.0/24),
  half IPv6 (2001:db8:1::/64), each probed every second.

Once h1 is Master and h2 Backup (and, tracking, every object has its first
verdict), ``--settle`` seconds pass, then h1's adverts are recorded for
``--seconds``. With ``--runs`` above 1 the two kinds alternate, so that drift
in the machine hits both alike.

Printed per run: h1's adverts seen and expected, the gaps between them
(median, p99, p99.9, largest, how many over 15 ms), h2's adverts (any at all
is a flap: the Backup believed the Master dead), vrrpyd's own CPU (all its
threads, ``/proc/PID/stat`` utime + stime over the window) and the tracking
agent's: its own, and with the scripts it reaped (cutime + cstime: each
``/bin/true`` is the agent's child, reaped by it, so its CPU lands there).
The machine's own stalls are printed beside them: the host's steal time over
the window (the test machines are virtual: while the hypervisor does not run
a virtual CPU nothing in the guest runs, whatever its priority) and, with
``--watch``, ``starvation_bench.FreezeWatch`` (one ``SCHED_FIFO`` 99 watcher
pinned to each CPU): a gap over 15 ms that is under 15 ms once the longest
freeze across it is taken out is counted as frozen, not as the router's. The
watchers' wake-ups are scheduling points of their own, so they are off unless
asked for.

Then the verdict: the median over runs of each kind's largest gap, tracking
minus plain (with one run of each, simply the difference of the two largest
gaps). The median, because a single stall of the machine in one run would
otherwise decide it either way; the worst gap of each kind is printed too.

It is a report: it exits 0 whatever the figures (2 without root). Hold
``flock /tmp/vrrpy-heavy.lock`` around it on a shared machine.

    python bench/tracking_bench.py [--seconds 30] [--runs 1] [--settle 2]
        [--scripts 100] [--targets 20] [--watch]
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from failover_bench import print_header, vrrpy_instance, vrrpyd_complaints
from starvation_bench import FreezeWatch, print_notes, run_cases, steal_per_cpu
from vrrpy.lab import Capture, Daemon, Host, Lab, wait_for

INTERVAL = 0.01
LATE = 0.015  # a gap over this is counted: 1.5 intervals
TARGET = 0.001  # tracking may move the largest gap by at most this much
PRIORITIES = {"h1": 200, "h2": 100}
TICKS = os.sysconf("SC_CLK_TCK")
KINDS = ("plain", "tracking")
SCRIPT_NAME = re.compile(r"\bchk\d+\b")


# ---------------------------------------------------------------- what h1 tracks


def ping_targets(count: int) -> list[str]:
    """``count`` addresses for h3 to answer: half IPv4 (two documentation nets), half IPv6."""
    v4 = [
        f"{net}.{i // 2 + 1}"
        for i, net in zip(range(count // 2), itertools.cycle(("198.51.100", "203.0.113")))
    ]
    v6 = [f"2001:db8:1::{i:x}" for i in range(1, count - len(v4) + 1)]
    return v4 + v6


def add_targets(h1: Host, h3: Host, targets: list[str]) -> None:
    """Put ``targets`` on h3's ``eth0`` and make them on-link for h1."""
    for address in targets:
        if ":" in address:
            h3.run(["ip", "addr", "add", f"{address}/128", "dev", "eth0", "nodad"])
        else:
            h3.run(["ip", "addr", "add", f"{address}/32", "dev", "eth0"])
    for net in ("198.51.100.0/24", "203.0.113.0/24"):
        h1.run(["ip", "route", "add", net, "dev", "eth0"])
    h1.run(["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "eth0"])


def tracking_config(scripts: int, targets: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(h1's instance keys, the tables) for the tracking run."""
    script_tables = [
        {"name": f"chk{i}", "script": "/bin/true", "interval": 1.0, "weight": 0 if i % 2 else -1}
        for i in range(scripts)
    ]
    ping = {"name": "targets", "targets": targets, "interval": 1.0, "timeout": 1.0, "weight": 0}
    keys = {
        "track_script": [t["name"] for t in script_tables],
        "track_ping": ["targets"] if targets else [],
    }
    tables = {"track_script": script_tables, "track_ping": [ping] if targets else []}
    return keys, tables


# ---------------------------------------------------------------- CPU


def cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children) CPU seconds of ``pid``, every thread included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS


def agent_pid(daemon_pid: int) -> int | None:
    """The tracking agent: the child of vrrpyd running ``vrrpy.track.agent``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != daemon_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"vrrpy.track.agent" in f.read():
                    return int(entry)
        except (OSError, ValueError, IndexError):
            continue
    return None


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    kind: str
    adverts: int
    expected: int
    gaps: list[float]
    backup_adverts: int
    span: float  # seconds of the window
    vrrpyd_cpu: float  # seconds over the window
    agent_cpu: float | None
    agent_children_cpu: float | None
    steal: float  # seconds the host stole from the guest (all CPUs) during the window
    frozen: int | None  # gaps over LATE that a CPU freeze accounts for (--watch only)
    notes: list[str] = field(default_factory=list)


def tracking_ready(daemon: Daemon) -> bool:
    """Every tracked object of h1's instance has its first verdict, and none is down."""
    tracks = daemon.state().get("tracking", {}).get("VI_1", {}).get("tracks", {})
    return bool(tracks) and all(t["up"] is True for t in tracks.values())


def run_once(kind: str, args: argparse.Namespace) -> RunResult:
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-tracking-") as tmp, Lab(hosts=3) as lab:
        return _run_in(lab, Path(tmp), kind, args)


def _run_in(lab: Lab, work: Path, kind: str, args: argparse.Namespace) -> RunResult:
    h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
    notes: list[str] = []
    keys: dict[str, Any] = {}
    tables: dict[str, Any] = {}
    if kind == "tracking":
        targets = ping_targets(args.targets)
        add_targets(h1, h3, targets)
        keys, tables = tracking_config(args.scripts, targets)
    capture = Capture(h3)
    d1 = Daemon(h1, work, [{**vrrpy_instance(PRIORITIES["h1"], INTERVAL), **keys}], tables)
    d2 = Daemon(h2, work, [vrrpy_instance(PRIORITIES["h2"], INTERVAL)])
    d1.start()
    d2.start()
    if not wait_for(
        lambda: d1.instance()["state"] == "MASTER" and d2.instance()["state"] == "BACKUP", 15
    ):
        notes.append(f"not elected: h1 {d1.instance()['state']}, h2 {d2.instance()['state']}")
    agent: int | None = None
    if kind == "tracking":
        assert d1.proc is not None
        if not wait_for(lambda: tracking_ready(d1), 10, step=0.1):
            notes.append("tracking: not every object was up before the window")
        agent = agent_pid(d1.proc.pid)
        if agent is None:
            notes.append("tracking agent not found among vrrpyd's children")
    watch = FreezeWatch() if args.watch else None
    try:
        time.sleep(args.settle)
        assert d1.proc is not None
        own0, _ = cpu(d1.proc.pid)
        agent0 = cpu(agent) if agent else (0.0, 0.0)
        steal0 = sum(steal_per_cpu())
        wall0, begin = time.monotonic(), time.time()
        time.sleep(args.seconds)
        wall1, end = time.monotonic(), time.time()
        own1, _ = cpu(d1.proc.pid)
        agent1 = cpu(agent) if agent else (0.0, 0.0)
        stolen = (sum(steal_per_cpu()) - steal0) / TICKS
        time.sleep(0.05)  # the last advert's frame through the sniffer
    finally:
        if watch is not None:
            watch.stop()
    records = capture.stop()

    if kind == "tracking":
        d1.refresh()  # SIGUSR1: the agent's details (runs) land in the state file
        wait_for(lambda: _script_runs(d1) > 0, 3, step=0.1)
        status = d1.state().get("tracking", {}).get("VI_1", {})
        ping = status.get("tracks", {}).get("targets", {}).get("agent", {}).get("targets", {})
        reachable = sum(1 for t in ping.values() if t.get("reachable"))
        notes.append(
            f"after the window: {_script_runs(d1)} script runs in all, "
            f"{reachable}/{len(ping)} ping targets reachable, effective priority "
            f"{status.get('effective_priority')}, faults {status.get('faults')}"
        )
    notes += [f"h1: {line}" for line in said(d1)]
    notes += [f"h2: {line}" for line in said(d2)]

    vrrp = [r for r in records if r["kind"] == "vrrp" and begin <= r["t"] <= end]
    mine = [r["t"] for r in vrrp if r["src"] == str(h1.ipv4) and r["priority"] > 0]
    backup = [r for r in vrrp if r["src"] == str(h2.ipv4)]
    late = [(a, b) for a, b in itertools.pairwise(mine) if b - a > LATE]
    frozen = None
    if watch is not None:
        frozen = sum(1 for a, b in late if b - a - watch.frozen(a, b) < LATE)
    span = wall1 - wall0
    return RunResult(
        kind=kind,
        adverts=len(mine),
        expected=round((end - begin) / INTERVAL),
        gaps=[b - a for a, b in itertools.pairwise(mine)],
        backup_adverts=len(backup),
        span=span,
        vrrpyd_cpu=own1 - own0,
        agent_cpu=(agent1[0] - agent0[0]) if agent else None,
        agent_children_cpu=(agent1[1] - agent0[1]) if agent else None,
        steal=stolen,
        frozen=frozen,
        notes=notes,
    )


def said(daemon: Daemon) -> list[str]:
    """What vrrpyd (and its agent, whose log is vrrpyd's) logged above INFO, counted; the
    100 scripts' lines count as one (``chk*``), or they would bury anything else."""
    counts = Counter(SCRIPT_NAME.sub("chk*", line) for line in vrrpyd_complaints(daemon))
    return [line + (f"  (x{n})" if n > 1 else "") for line, n in counts.items()]


def _script_runs(daemon: Daemon) -> int:
    tracks = daemon.state().get("tracking", {}).get("VI_1", {}).get("tracks", {})
    return sum(
        int(t.get("agent", {}).get("runs", 0)) for t in tracks.values() if t["kind"] == "script"
    )


# ---------------------------------------------------------------- report


def _pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def _percent(seconds: float | None, span: float) -> str:
    return "      -" if seconds is None else f"{100 * seconds / span:6.2f}%"


def report(result: RunResult) -> None:
    gaps = sorted(result.gaps)
    if len(gaps) < 10:
        print(f"{result.kind:9} too few adverts ({result.adverts})", flush=True)
        return
    flap = f"FLAP x{result.backup_adverts}" if result.backup_adverts else "none"
    print(
        f"{result.kind:9} {result.adverts:5d}/{result.expected:<5d} "
        f"{statistics.median(gaps) * 1000:7.2f} {_pct(gaps, 0.99) * 1000:7.2f} "
        f"{_pct(gaps, 0.999) * 1000:7.2f} {gaps[-1] * 1000:7.2f} "
        f"{sum(1 for g in gaps if g > LATE):5d} {flap:>7} "
        f"{_percent(result.vrrpyd_cpu, result.span)} {_percent(result.agent_cpu, result.span)} "
        f"{_percent(result.agent_children_cpu, result.span)} {result.steal * 1000:6.0f} "
        f"{'-' if result.frozen is None else result.frozen:>6}",
        flush=True,
    )


def verdict(results: list[RunResult]) -> str:
    """The median of each kind's per-run largest gap, tracking minus plain, against TARGET."""
    largest = {kind: [max(r.gaps) for r in results if r.kind == kind and r.gaps] for kind in KINDS}
    if not largest["plain"] or not largest["tracking"]:
        return "no verdict: a kind of run is missing"
    plain, tracking = (statistics.median(largest[kind]) for kind in KINDS)
    moved = tracking - plain
    met = "MET" if moved <= TARGET else "NOT MET"
    worst = ", ".join(f"{kind} {max(largest[kind]) * 1000:.2f} ms" for kind in KINDS)
    return (
        f"tracking moved the largest gap by {moved * 1000:+.2f} ms "
        f"(target <= {TARGET * 1000:g} ms): {met}. Largest gap, median over "
        f"{len(largest['plain'])} + {len(largest['tracking'])} runs: plain "
        f"{plain * 1000:.2f} ms, tracking {tracking * 1000:.2f} ms; worst of any run: {worst}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--runs", type=int, default=1, help="runs of each kind, interleaved")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--scripts", type=int, default=100)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument(
        "--watch", action="store_true", help="watch for CPU freezes (starvation_bench)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.seconds <= 0 or not 0 <= args.targets <= 200:
        parser.error("--runs >= 1, --seconds > 0, --targets 0..200")
    print_header("vrrpy tracking bench: a 10 ms Master's adverts with and without tracking")
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets, real-time priorities)")
        return 2
    print(
        f"h1 Master at {INTERVAL * 1000:g} ms (priority {PRIORITIES['h1']}), h2 Backup, h3 "
        f"captures; tracking: {args.scripts} x /bin/true at 1 s (weights 0 / -1), "
        f"{args.targets} ping targets at 1 s (weight 0); {args.seconds:g} s per run after "
        f"{args.settle:g} s"
    )
    print(
        f"{'run':9} {'adverts':>11} {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7} "
        f"{'>15ms':>5} {'Backup':>7} {'vrrpyd':>7} {'agent':>7} {'scripts':>7} {'steal':>6} "
        f"{'frozen':>6}"
    )
    print(
        f"{'':9} {'/expected':>11} {'ms':>7} {'ms':>7} {'ms':>7} {'ms':>7} {'':>5} "
        f"{'adverts':>7} {'CPU':>7} {'CPU':>7} {'CPU':>7} {'ms':>6} {'>15ms':>6}"
    )
    results: list[RunResult] = run_cases(
        (kind for _, kind in itertools.product(range(args.runs), KINDS)),
        lambda kind: run_once(kind, args),
        report,
        lambda kind: f"{kind:9}",
    )
    print_notes("notes", results, lambda r: r.kind)
    print(
        "\nCPU: % of one core over the window. vrrpyd: the daemon's own (every thread); "
        "agent: the tracking agent's own; scripts: what the agent's reaped children "
        "(the /bin/true runs) used. steal: what the host took from the guest, all CPUs; "
        "frozen: gaps over 15 ms that a CPU freeze across them accounts for (--watch)."
    )
    print(verdict(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
