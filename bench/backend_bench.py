"""Advert timing with backends: a 10 ms Master with a hung, a CPU-burning and no backend.

Issue 15: "Backends never delay an advert". The transition pipeline runs each
backend call as an asyncio task beside the protocol loop, under the backend's
timeout (docs/backends.md). This measures what that holds on the wire for a
backend that never returns and for one that burns CPU in Python.

Each run builds a fresh three-host lab (``vrrpy.lab.Lab``): h1 is vrrpyd with
two instances, h2 vrrpyd with the same two, h3 captures the wire
(``vrrpy.lab.Capture``: kernel receive timestamps).

* ``VI_1`` (VRID 51, 192.0.2.100) is the measured one: h1 Master at priority
  200, adverts every 10 ms; h2 Backup at 100.
* ``VI_2`` (VRID 52, 192.0.2.101, adverts every 50 ms) exists to make h1's
  backends run: h1 has priority 100 for it, h2 50 plus a ``[[track_file]]``
  (weight 1) whose file the bench rewrites every ``--flip`` seconds (0.5),
  alternately 100 and 0. h2's effective priority thus swings between 150 and
  50: h2 takes VI_2 over (a Backup that preempts), then h1 takes it back, so
  h1's VI_2 goes Master -> Backup -> Master about once a second, and each of
  those transitions calls h1's backends. Real transitions of a real
  instance, through the daemon's own path (track file, election, pipeline),
  with nothing added to h1 but its backends; the tracking agent that reads
  the file is h2's. VI_2 flips in every kind of run, so the only difference
  between the runs is the backend.

The kinds of run (h1's ``VI_2`` has ``backends = [...]`` naming one
``[[backend]] type = "python"`` table built from this very module, see below):

* ``none``: no backend;
* ``sleeper``: :class:`Sleeper`, whose ``transition`` is ``await
  asyncio.sleep(1e9)``: it never returns; the pipeline cancels it at its
  ``--timeout`` (1 s) or when a transition leaving Master arrives;
* ``burner``: :class:`Burner`, whose ``transition`` spins for ``--burn`` ms
  (50) in pure Python without awaiting, *on the event loop* (``thread =
  false`` in its table). asyncio cannot preempt a coroutine that never
  awaits: this is the user bug the pipeline cannot help with, measured to
  show what it costs;
* ``offloop``: the same :class:`Burner` as vrrpyd runs a Python backend by
  default (``thread = true``): :class:`~vrrpy.backends.offloop.OffLoop`
  runs its coroutines on a loop of their own in a thread;
* ``thread``: :class:`ThreadBurner`, the same spin through ``await
  asyncio.to_thread(...)``: the remedy (vrrpyd's default executor runs its
  threads one real-time priority below the loop, and the GIL switch interval
  is 0.2 ms, so the loop takes the GIL back quickly).

How vrrpyd finds the classes: the lab starts vrrpyd as ``ip netns exec NS
python -m vrrpy.daemon``, which inherits the bench's environment, so the
bench puts its own directory at the front of ``PYTHONPATH`` and names
``object = "backend_bench:Sleeper"`` (and so on). The module imports only
the standard library and ``vrrpy.backends`` at the top, so the daemon loads
nothing of the bench machinery.

Once h1 is Master of both instances and h2 Backup of VI_1, the flipping
starts; ``--settle`` seconds later (2) h1's VI_1 adverts are recorded for
``--seconds`` (30). With ``--runs`` above 1 the kinds alternate, so that
drift in the machine hits them alike.

Printed per run: h1's VI_1 adverts seen and expected, the gaps between them
(median, p99, p99.9, largest, how many over 15 ms), h2's VI_1 adverts (any
is a flap: the Backup believed the Master dead), VI_2 handovers seen on the
wire in the window, vrrpyd's CPU (h1, every thread, over the window), the
host's steal time, and h1's backend counters from its state file
(``instances.VI_2.backends``: calls, timeouts, cancelled, failures, over
the window: the file is refreshed with SIGUSR1 at both ends). The
verdict: the median over runs of each kind's largest gap, minus the same for
``none``: "backends moved the largest gap by X ms".

It is a report: it exits 0 whatever the figures (2 without root). Hold
``flock /tmp/vrrpy-heavy.lock`` around it on a shared machine.

    python bench/backend_bench.py [--seconds 30] [--runs 1] [--settle 2]
        [--flip 0.5] [--burn 50] [--timeout 1]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vrrpy.backends import Backend, TransitionEvent

if TYPE_CHECKING:
    from vrrpy.lab import Daemon, Lab

# ---------------------------------------------------------------- the backends (vrrpyd's)


def burn(seconds: float) -> int:
    """Spin in pure Python for ``seconds``, never yielding; returns the loop count."""
    end = time.perf_counter() + seconds
    spins = 0
    while time.perf_counter() < end:
        spins += 1
    return spins


class Sleeper(Backend):
    """Hangs forever in every transition (the pipeline cancels it at its timeout)."""

    async def transition(self, event: TransitionEvent) -> None:
        await asyncio.sleep(1e9)


class Burner(Backend):
    """Burns ``ms`` of CPU in Python on the event loop at every transition (a user bug)."""

    def __init__(self, ms: float = 50.0) -> None:
        self.seconds = ms / 1000

    async def transition(self, event: TransitionEvent) -> None:
        burn(self.seconds)


class ThreadBurner(Burner):
    """The same burn, in a worker thread: the remedy."""

    async def transition(self, event: TransitionEvent) -> None:
        await asyncio.to_thread(burn, self.seconds)


# ---------------------------------------------------------------- the bench

INTERVAL = 0.01
FLIP_INTERVAL = 0.05  # VI_2's adverts
LATE = 0.015  # a gap over this is counted: 1.5 intervals
TICKS = os.sysconf("SC_CLK_TCK")
KINDS = ("none", "sleeper", "burner", "offloop", "thread")
BACKEND_CLASS = {
    "sleeper": "Sleeper",
    "burner": "Burner",
    "offloop": "Burner",
    "thread": "ThreadBurner",
}
VRID1, VRID2 = 51, 52
HIGH, LOW = "100", "0"  # h2's track file: +100 (150 > h1's 100) or +0 (50)
COUNTERS = ("calls", "timeouts", "cancelled", "failures")


def instances(host: str, kind: str) -> list[Mapping[str, Any]]:
    """The two instances of ``host`` (h1 or h2) for a run of ``kind``."""
    vi1 = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": VRID1,
        "version": 3,
        "priority": 200 if host == "h1" else 100,
        "advert_interval": INTERVAL,
        "virtual_addresses": ["192.0.2.100/24"],
    }
    vi2: dict[str, Any] = {
        "name": "VI_2",
        "interface": "eth0",
        "vrid": VRID2,
        "version": 3,
        "priority": 100 if host == "h1" else 50,
        "advert_interval": FLIP_INTERVAL,
        "virtual_addresses": ["192.0.2.101/24"],
    }
    if host == "h2":
        vi2["track_file"] = ["flip"]
    elif kind != "none":
        vi2["backends"] = [kind]
    return [vi1, vi2]


def tables(host: str, kind: str, args: argparse.Namespace, flip_file: Path) -> dict[str, Any]:
    if host == "h2":
        return {"track_file": [{"name": "flip", "file": str(flip_file), "weight": 1}]}
    if kind == "none":
        return {}
    backend: dict[str, Any] = {
        "name": kind,
        "type": "python",
        "object": f"backend_bench:{BACKEND_CLASS[kind]}",
        "timeout": args.timeout,
    }
    if kind in ("burner", "offloop", "thread"):
        backend["params"] = {"ms": args.burn}
    # On the protocol loop, as written, except "offloop" (vrrpyd's default).
    backend["thread"] = kind == "offloop"
    return {"backend": [backend]}


def write_flip(path: Path, value: str) -> None:
    """Replace the track file by a rename (never read half-written)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    tmp.rename(path)


class Flipper(threading.Thread):
    """Rewrites h2's track file every ``period`` seconds, alternately HIGH and LOW."""

    def __init__(self, path: Path, period: float) -> None:
        super().__init__(daemon=True)
        self.path, self.period = path, period
        self.done = threading.Event()
        self.flips = 0

    def run(self) -> None:
        high = True
        next_at = time.monotonic()
        while not self.done.is_set():
            write_flip(self.path, HIGH if high else LOW)
            self.flips += 1
            high = not high
            next_at += self.period
            self.done.wait(max(0.0, next_at - time.monotonic()))
        write_flip(self.path, LOW)


def cpu(pid: int) -> float:
    """CPU seconds of ``pid``, every thread included."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class RunResult:
    kind: str
    adverts: int
    expected: int
    gaps: list[float]
    backup_adverts: int
    handovers: int  # VI_2 Master changes seen on the wire in the window
    span: float
    vrrpyd_cpu: float
    steal: float
    backends: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def run_once(kind: str, args: argparse.Namespace) -> RunResult:
    from vrrpy.lab import Lab

    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-backend-") as tmp, Lab(hosts=3) as lab:
        return _run_in(lab, Path(tmp), kind, args)


def _run_in(lab: Lab, work: Path, kind: str, args: argparse.Namespace) -> RunResult:
    from starvation_bench import steal_per_cpu
    from vrrpy.lab import Capture, Daemon, wait_for

    h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
    notes: list[str] = []
    flip_dir = work / "flip"
    flip_dir.mkdir()
    flip_file = flip_dir / "value"
    write_flip(flip_file, LOW)
    capture = Capture(h3)
    d1 = Daemon(h1, work, instances("h1", kind), tables("h1", kind, args, flip_file))
    d2 = Daemon(h2, work, instances("h2", kind), tables("h2", kind, args, flip_file))
    d1.start()
    d2.start()

    def elected() -> bool:
        return bool(
            d1.instance()["state"] == "MASTER"
            and d1.instance("VI_2")["state"] == "MASTER"
            and d2.instance()["state"] == "BACKUP"
        )

    if not wait_for(elected, 15):
        notes.append(
            f"not elected: h1 {d1.instance()['state']}/{d1.instance('VI_2')['state']}, "
            f"h2 {d2.instance()['state']}"
        )
    flipper = Flipper(flip_file, args.flip)
    flipper.start()
    try:
        time.sleep(args.settle)
        assert d1.proc is not None
        d1.refresh()  # the backend counters at the window's start
        calls0 = d1.instance("VI_2").get("backends", {})
        own0 = cpu(d1.proc.pid)
        steal0 = sum(steal_per_cpu())
        wall0, begin = time.monotonic(), time.time()
        time.sleep(args.seconds)
        wall1, end = time.monotonic(), time.time()
        own1 = cpu(d1.proc.pid)
        stolen = (sum(steal_per_cpu()) - steal0) / TICKS
        time.sleep(0.05)  # the last advert's frame through the sniffer
    finally:
        flipper.done.set()
        flipper.join(5)
    records = capture.stop()
    d1.refresh()
    backends = {
        name: {
            key: value - calls0.get(name, {}).get(key, 0)
            for key, value in stats.items()
            if key in COUNTERS
        }
        for name, stats in d1.instance("VI_2").get("backends", {}).items()
    }
    notes += [f"h1: {line}" for line in said(d1)]
    notes += [f"h2: {line}" for line in said(d2) if "flip/value holds" not in line]

    vrrp = [r for r in records if r["kind"] == "vrrp" and begin <= r["t"] <= end]
    mine = [
        r["t"]
        for r in vrrp
        if r["vrid"] == VRID1 and r["src"] == str(h1.ipv4) and r["priority"] > 0
    ]
    backup = [r for r in vrrp if r["vrid"] == VRID1 and r["src"] == str(h2.ipv4)]
    vi2 = [r["src"] for r in vrrp if r["vrid"] == VRID2 and r["priority"] > 0]
    handovers = sum(1 for a, b in itertools.pairwise(vi2) if a != b)
    gaps = [(b - a, a) for a, b in itertools.pairwise(mine)]
    if gaps and max(gaps)[0] > 1.1 * INTERVAL:
        notes.append(nearest_log_line(d1, *max(gaps)))
    return RunResult(
        kind=kind,
        adverts=len(mine),
        expected=round((end - begin) / INTERVAL),
        gaps=[b - a for a, b in itertools.pairwise(mine)],
        backup_adverts=len(backup),
        handovers=handovers,
        span=wall1 - wall0,
        vrrpyd_cpu=own1 - own0,
        steal=stolen,
        backends=backends,
        notes=notes,
    )


def nearest_log_line(daemon: Daemon, gap: float, start: float) -> str:
    """Where the largest gap was, beside the h1 log line (any level) closest to its start:
    to tell a gap that follows a backend's timeout or a VI_2 transition from the machine's."""
    best: tuple[float, str] | None = None
    for line in daemon.log.read_text(errors="replace").splitlines():
        try:
            stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
            at = stamp + int(line[20:23]) / 1000
        except ValueError:
            continue
        if best is None or abs(at - start) < abs(best[0] - start):
            best = (at, line.split(": ", 1)[-1])
    where = time.strftime("%H:%M:%S", time.localtime(start)) + f".{int(start * 1000) % 1000:03d}"
    if best is None:
        return f"largest gap {gap * 1000:.2f} ms from {where}; h1 logged nothing"
    return (
        f"largest gap {gap * 1000:.2f} ms from {where}; the nearest h1 log line is "
        f"{(best[0] - start) * 1000:+.0f} ms from its start: {best[1]}"
    )


def said(daemon: Daemon) -> list[str]:
    """What vrrpyd logged above INFO, each line once with its count (at most 12 lines)."""
    from failover_bench import vrrpyd_complaints

    lines = vrrpyd_complaints(daemon)
    return lines[:12] + ([f"... and {len(lines) - 12} more kinds"] if len(lines) > 12 else [])


# ---------------------------------------------------------------- report


def _pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def _counters(backends: dict[str, Any]) -> str:
    if not backends:
        return "-"
    return "; ".join(
        f"{name}: {s.get('calls', 0)} calls, {s.get('timeouts', 0)} timeouts, "
        f"{s.get('cancelled', 0)} cancelled, {s.get('failures', 0)} failures"
        for name, s in backends.items()
    )


def report(result: RunResult) -> None:
    gaps = sorted(result.gaps)
    if len(gaps) < 10:
        print(f"{result.kind:8} too few adverts ({result.adverts})", flush=True)
        return
    flap = f"FLAP x{result.backup_adverts}" if result.backup_adverts else "none"
    print(
        f"{result.kind:8} {result.adverts:5d}/{result.expected:<5d} "
        f"{statistics.median(gaps) * 1000:7.2f} {_pct(gaps, 0.99) * 1000:7.2f} "
        f"{_pct(gaps, 0.999) * 1000:7.2f} {gaps[-1] * 1000:7.2f} "
        f"{sum(1 for g in gaps if g > LATE):5d} {flap:>9} {result.handovers:5d} "
        f"{100 * result.vrrpyd_cpu / result.span:6.2f}% {result.steal * 1000:6.0f}  "
        f"{_counters(result.backends)}",
        flush=True,
    )


def verdict(results: list[RunResult]) -> list[str]:
    """Per backend kind: the median of its per-run largest gaps minus that of ``none``."""
    largest = {kind: [max(r.gaps) for r in results if r.kind == kind and r.gaps] for kind in KINDS}
    if not largest["none"]:
        return ["no verdict: no run without backends"]
    base = statistics.median(largest["none"])
    lines = []
    for kind in KINDS[1:]:
        if not largest[kind]:
            lines.append(f"{kind}: no verdict, no run")
            continue
        median = statistics.median(largest[kind])
        lines.append(
            f"{kind}: backends moved the largest gap by {(median - base) * 1000:+.2f} ms "
            f"(median of {len(largest[kind])} runs' largest gaps {median * 1000:.2f} ms, "
            f"none {base * 1000:.2f} ms; worst of any run {max(largest[kind]) * 1000:.2f} ms, "
            f"none {max(largest['none']) * 1000:.2f} ms)"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    from failover_bench import print_header
    from starvation_bench import print_notes, run_cases  # bench machinery: not at import

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--runs", type=int, default=1, help="runs of each kind, interleaved")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--flip", type=float, default=0.5, help="h2's track file period, s")
    parser.add_argument("--burn", type=float, default=50.0, help="ms burnt per backend call")
    parser.add_argument("--timeout", type=float, default=1.0, help="the backends' timeout, s")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"comma-separated, of {','.join(KINDS)}"
    )
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if args.runs < 1 or args.seconds <= 0 or args.flip < 0.2 or not set(kinds) <= set(KINDS):
        parser.error(f"--runs >= 1, --seconds > 0, --flip >= 0.2, --kinds of {KINDS}")
    print_header("vrrpy backend bench: a 10 ms Master's adverts with and without backends")
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets, real-time priorities)")
        return 2
    # vrrpyd inherits the environment through `ip netns exec`: it imports this module.
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    )
    print(
        f"h1 VI_1 Master at {INTERVAL * 1000:g} ms (priority 200), h2 Backup (100), h3 "
        f"captures; h1 VI_2 (100, {FLIP_INTERVAL * 1000:g} ms) handed to h2 and back by h2's "
        f"track file flipping every {args.flip:g} s; backends on h1 VI_2, timeout "
        f"{args.timeout:g} s, burn {args.burn:g} ms; {args.seconds:g} s per run after "
        f"{args.settle:g} s"
    )
    print(
        f"{'run':8} {'adverts':>11} {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7} "
        f"{'>15ms':>5} {'Backup':>9} {'VI_2':>5} {'vrrpyd':>7} {'steal':>6}  backend counters"
    )
    print(
        f"{'':8} {'/expected':>11} {'ms':>7} {'ms':>7} {'ms':>7} {'ms':>7} {'':>5} "
        f"{'adverts':>9} {'moves':>5} {'CPU':>7} {'ms':>6}  (h1 state file, VI_2)"
    )
    results: list[RunResult] = run_cases(
        (kind for _, kind in itertools.product(range(args.runs), kinds)),
        lambda kind: run_once(kind, args),
        report,
        lambda kind: f"{kind:8}",
    )
    print_notes("notes", results, lambda r: r.kind)
    print(
        "\nCPU: h1's vrrpyd, % of one core over the window, every thread. steal: what the "
        "host took from the guest, all CPUs. VI_2 moves: Master changes of VRID 52 on the wire."
    )
    for line in verdict(results):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
