"""Failover gap on the wire: vrrpy's vrrpyd against keepalived, same lab, same run, same settings.

For each advert interval (1 s, 100 ms, 10 ms by default) and each
implementation, every run builds a fresh three-host lab (``vrrpy.lab.Lab``):
h1 and h2 are routers for one VRRPv3 virtual router (VRID 51, 192.0.2.100/24,
priorities 200 and 100, preemption on, both started at the same moment) and
h3 watches the wire with ``vrrpy.lab.Capture`` (kernel receive timestamps).
The capture runs from before the routers start: it is also how keepalived's
mastery is seen.

One run:

1. start both routers; wait until h1 is Master (vrrpy: h1's state file says
   MASTER and h2's BACKUP; keepalived has no state file, so: the capture shows
   h1 adverting alone, priority 200, for a few intervals), then let it run a
   few more intervals;
2. SIGKILL the Master and set h1's link down (``Host.link(False)``).
   vrrpy: one SIGKILL to vrrpyd. keepalived: the parent is stopped (SIGSTOP),
   then the VRRP child (PID from its pid file) and the parent are SIGKILLed,
   in that order. Measured on keepalived 2.2.7 here: a SIGKILLed parent makes
   the VRRP child shut down cleanly (it sends a priority-0 advert, so the
   Backup takes over at once), and a SIGKILLed child alone is respawned by a
   running parent; stopping the parent first avoids both;
3. wait for h2's first advert, stop the capture.

gap = h2's first advert - h1's last advert (priority > 0), both as seen by h3.
Predicted: ``master_down_interval(100, round(interval * 100))`` (RFC 9568:
3 x interval + Skew_Time for priority 100). Each run also reports h1's advert
spacing before the kill (a late or lost advert shows there) and any
priority-0 advert from h1 (there should be none: nothing shuts down cleanly).

keepalived is run as ``ip netns exec NS keepalived -n -l -f CONF -p PID -r
VRRP_PID -c CHECK_PID`` (no ``-D``: detailed logging costs it CPU), with its
own pid files and ``router_id`` per host, its console log in the run's
temporary directory; whatever it says beyond the usual start and state lines
is printed. vrrpyd is started by ``vrrpy.lab.Daemon`` (log level ``info``, as
in the demo: it logs only transitions).

Printed: the command line, the machine (nproc, load average), keepalived's
version and vrrpy's git revision, one line per run, then per interval a table
(runs, min / median / max gap, median - predicted) and vrrpy against
keepalived (difference and ratio of the medians). Targets:

* at 10 ms, vrrpy's median gap within 2 ms of the prediction;
* vrrpy never slower than keepalived: at every interval, vrrpy's median gap
  is not larger than keepalived's.

It is a report, not a test: it exits 0 whatever the figures, and 1 only when
the lab could not be built (2 without root). Run as root:
``python bench/failover_bench.py`` (a few minutes; ``--runs``,
``--intervals``, ``--impl`` to narrow it).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import source_revision
from vrrpy.core.timers import master_down_interval
from vrrpy.lab import Capture, Daemon, Host, Lab, wait_for

VIP = "192.0.2.100"
VRID = 51
PRIORITIES = {"h1": 200, "h2": 100}
IMPLS = ("vrrpy", "keepalived")
DEFAULT_INTERVALS = (1.0, 0.1, 0.01)
DEFAULT_RUNS = {1.0: 3, 0.1: 5, 0.01: 5}
TARGET_INTERVAL = 0.01
TARGET_TOLERANCE = 0.002  # seconds: the median gap at 10 ms within 2 ms of the prediction


class LabError(Exception):
    """The namespace lab could not be built: the only failure that makes the script exit 1."""


class RunError(Exception):
    """One run went wrong (a router did not start or did not fail over): reported, not fatal."""


def wait_elected(d1: Daemon, d2: Daemon, start_timeout: float) -> None:
    """Wait until vrrpyd ``d1`` is Master and ``d2`` Backup; RunError with h1's log if not."""
    if not wait_for(
        lambda: d1.instance()["state"] == "MASTER" and d2.instance()["state"] == "BACKUP",
        start_timeout,
    ):
        raise RunError(
            f"vrrpy: h1 is {d1.instance()['state']}, h2 {d2.instance()['state']} after "
            f"{start_timeout:g} s; h1's log:\n{d1.log.read_text(errors='replace')}"
        )


# ---------------------------------------------------------------- the machine


def keepalived_version() -> str | None:
    """The first line of ``keepalived --version``, or None when it is not installed."""
    if shutil.which("keepalived") is None:
        return None
    out = subprocess.run(
        ["keepalived", "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def print_header(title: str) -> None:
    """Command line, machine, keepalived and vrrpy versions: what a reader needs to compare runs."""
    print(title)
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"machine: {platform.node()}, {platform.machine()}, nproc {os.cpu_count()}, "
        f"load average {' '.join(load)} (before starting), Linux {platform.release()}"
    )
    print(f"keepalived: {keepalived_version() or 'NOT INSTALLED'}")
    print(f"vrrpy: {source_revision()}, Python {platform.python_version()}")


# ---------------------------------------------------------------- keepalived

# Lines keepalived prints on every normal start, state change and stop.
KEEPALIVED_ROUTINE = re.compile(
    r"Starting Keepalived|Running on Linux|Command line:|^\s+'|Configuration file|"
    r"Starting VRRP child process|Startup complete|Entering (BACKUP|MASTER) STATE|"
    r"received lower priority .* discarding|Stopping|Stopped|"
    r"Master received advert .* with higher priority|"
    r"Received advert .* with lower priority .* forcing new election"
)
KEEPALIVED_TIMESTAMP = re.compile(r"^\w{3} \w{3} +\d+ [\d:]+ \d{4}: ")
INSTANCE_NAME = re.compile(r"\b(V[46]_)\d+\b")


class Keepalived:
    """keepalived in one lab host: its own config, pid files and console log in ``workdir``."""

    def __init__(self, host: Host, workdir: Path, config: str) -> None:
        self.host = host
        self.dir = workdir / host.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.conf.write_text(config)
        self.pid_file = self.dir / "keepalived.pid"
        self.vrrp_pid_file = self.dir / "vrrp.pid"
        self.check_pid_file = self.dir / "checkers.pid"
        self.log = self.dir / "keepalived.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        return [
            "keepalived",
            "-n",
            "-l",
            "-f",
            str(self.conf),
            "-p",
            str(self.pid_file),
            "-r",
            str(self.vrrp_pid_file),
            "-c",
            str(self.check_pid_file),
        ]

    def start(self) -> Keepalived:
        """Start it; return once the VRRP child has written its pid file."""
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = self.host.popen(self.argv(), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc
        wait_for(lambda: self._pid(self.vrrp_pid_file) is not None or proc.poll() is not None, 10)
        if proc.poll() is not None or self._pid(self.vrrp_pid_file) is None:
            raise RunError(
                f"keepalived in {self.host.name} did not start (exit {proc.poll()}); its log:\n"
                + self.log.read_text(errors="replace")
            )
        return self

    @staticmethod
    def _pid(path: Path) -> int | None:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    @property
    def parent_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid  # `ip netns exec` execs keepalived: the same process

    @property
    def vrrp_pid(self) -> int:
        pid = self._pid(self.vrrp_pid_file)
        if pid is None:
            raise RunError(f"keepalived in {self.host.name}: no VRRP pid file")
        return pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL parent and VRRP child, with no clean shutdown and no respawn (see the docstring).

        The parent is stopped first: killed first, it makes the child shut down
        cleanly (priority 0); alive, it respawns a killed child.
        """
        parent, child = self.parent_pid, self.vrrp_pid
        os.kill(parent, signal.SIGSTOP)
        os.kill(child, signal.SIGKILL)
        os.kill(parent, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(5)

    def complaints(self) -> list[str]:
        """What keepalived logged beyond routine start, state-change and stop lines, counted."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        texts = (KEEPALIVED_TIMESTAMP.sub("", line) for line in lines)
        return _counted(text for text in texts if not KEEPALIVED_ROUTINE.search(text))


def _counted(lines: Iterable[str]) -> list[str]:
    """Distinct non-blank lines, in order, each with its count when above one.

    Instance names of the form ``V4_12`` / ``V6_7`` (``scale_bench.py``'s) count as one:
    ``V6_*``.
    """
    counts = Counter(INSTANCE_NAME.sub(r"\1*", line) for line in lines if line.strip())
    return [text + (f"  (x{n})" if n > 1 else "") for text, n in counts.items()]


def vrrpyd_complaints(daemon: Daemon) -> list[str]:
    """What vrrpyd logged above INFO (warnings, errors, tracebacks)."""
    try:
        lines = daemon.log.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return _counted(
        line.split(": ", 1)[-1] if " vrrpyd[" in line else line
        for line in lines
        if " INFO " not in line and " DEBUG " not in line
    )


def keepalived_config(router_id: str, priority: int, interval: float) -> str:
    """A minimal keepalived.conf: one VRRPv3 instance, the same as vrrpyd's."""
    return f"""global_defs {{
    router_id {router_id}
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface eth0
    virtual_router_id {VRID}
    priority {priority}
    advert_int {interval:g}
    version 3
    virtual_ipaddress {{
        {VIP}/24
    }}
}}
"""


def vrrpy_instance(priority: int, interval: float) -> dict[str, Any]:
    """The vrrpyd instance matching :func:`keepalived_config`."""
    return {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": VRID,
        "version": 3,
        "priority": priority,
        "advert_interval": interval,
        "virtual_addresses": [f"{VIP}/24"],
    }


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    """What one failover looked like on the wire (seconds, kernel timestamps seen by h3)."""

    gap: float
    last_old: float  # h1's last advert, relative to the kill
    first_new: float  # h2's first advert, relative to the kill
    spacing_median: float  # h1's advert spacing before the kill
    spacing_max: float
    late: int  # h1 spacings over 1.5 intervals (a late or lost advert)
    zero_priority: int  # priority-0 adverts from h1 (there should be none)
    notes: list[str] = field(default_factory=list)
    said: list[tuple[str, str]] = field(default_factory=list)  # (who, line): logs beyond routine


def _adverts(records: list[dict[str, Any]], src: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "vrrp" and r["src"] == src and not r["outgoing"]]


def _h1_alone(records: list[dict[str, Any]], src: str, interval: float, quiet_for: int) -> bool:
    """``src`` has adverted alone (priority 200, h2 silent) for ``quiet_for`` intervals till now."""
    now = time.time()
    since = now - quiet_for * interval
    recent = [r for r in records if r["kind"] == "vrrp" and r["t"] >= since]
    ours = [r for r in recent if r["src"] == src and r["priority"] == PRIORITIES["h1"]]
    return (
        len(ours) >= quiet_for - 1
        and len(ours) == len(recent)
        and any(r["t"] >= now - 2 * interval for r in ours)
    )


def _spacing(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


def built_lab() -> Lab:
    """A three-host lab, up; :class:`LabError` if it cannot be built."""
    lab = Lab(hosts=3)
    try:
        lab.up()
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:  # lab: RuntimeError
        raise LabError(f"{type(exc).__name__}: {exc}") from exc
    return lab


def run_once(impl: str, interval: float, quiet_for: int) -> RunResult:
    """One failover in a fresh lab; raises :class:`LabError` or :class:`RunError`."""
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-failover-") as tmp:
        lab = built_lab()
        try:
            return _run_in(lab, Path(tmp), impl, interval, quiet_for)
        finally:
            lab.down()


def _run_in(lab: Lab, work: Path, impl: str, interval: float, quiet_for: int) -> RunResult:
    h1, h2, h3 = lab["h1"], lab["h2"], lab["h3"]
    capture = Capture(h3)
    keepalived: dict[str, Keepalived] = {}
    daemons: dict[str, Daemon] = {}
    start_timeout = 10 * interval + 5
    if impl == "keepalived":
        for host in (h1, h2):
            config = keepalived_config(f"bench_{host.name}", PRIORITIES[host.name], interval)
            keepalived[host.name] = Keepalived(host, work, config)
        for k in keepalived.values():
            k.start()
    else:
        for host in (h1, h2):
            daemons[host.name] = Daemon(
                host, work, [vrrpy_instance(PRIORITIES[host.name], interval)]
            )
        for d in daemons.values():
            d.start()
        wait_elected(daemons["h1"], daemons["h2"], start_timeout)
    if not wait_for(
        lambda: _h1_alone(capture.records, str(h1.ipv4), interval, quiet_for),
        start_timeout + quiet_for * interval,
        step=min(interval / 2, 0.02),
    ):
        complaints = [line for k in keepalived.values() for line in k.complaints()]
        raise RunError(
            f"{impl}: h1 never adverted alone for {quiet_for} intervals"
            + ("; keepalived said:\n  " + "\n  ".join(complaints) if complaints else "")
        )
    time.sleep(max(3 * interval, 0.3))

    killed_at = time.time()
    if impl == "keepalived":
        keepalived["h1"].kill()
    else:
        daemons["h1"].kill()
    h1.link(False)

    predicted = master_down_interval(PRIORITIES["h2"], round(interval * 100))
    new_src = str(h2.ipv4)

    def h2_took_over() -> bool:
        return any(r["t"] > killed_at for r in _adverts(capture.records, new_src))

    if not wait_for(h2_took_over, 3 * predicted + 2):
        capture.stop()
        raise RunError(f"{impl}: no advert from h2 within {3 * predicted + 2:.1f} s of the kill")
    time.sleep(max(2 * interval, 0.05))
    records = capture.stop()

    old = _adverts(records, str(h1.ipv4))
    seen_new = _adverts(records, new_src)
    new = [r for r in seen_new if r["t"] > killed_at]
    live_old = [r for r in old if r["priority"] > 0]
    zero = [r for r in old if r["priority"] == 0]
    # h1's spacing over its steady stretch before the kill (the last quiet_for + 3 intervals).
    steady = [r["t"] for r in live_old if r["t"] >= killed_at - (quiet_for + 3) * interval]
    spacing = _spacing(steady) or [float("nan")]
    notes: list[str] = []
    before_new = [r for r in seen_new if r["t"] <= killed_at]
    if before_new:
        notes.append(
            f"{len(before_new)} h2 advert(s) before the kill, the last "
            f"{(before_new[-1]['t'] - killed_at) * 1000:.0f} ms from it (start-up election)"
        )
    if any(r["priority"] != PRIORITIES["h2"] for r in new):
        notes.append(f"h2 priorities seen: {sorted({r['priority'] for r in new})}")
    said: list[tuple[str, str]] = []
    if impl == "keepalived":
        if not keepalived["h2"].alive():
            notes.append("keepalived in h2 exited")
        for name, k in keepalived.items():
            said += [(f"keepalived {name}", line) for line in k.complaints()]
    else:
        if daemons["h2"].proc is not None and daemons["h2"].proc.poll() is not None:
            notes.append("vrrpyd in h2 exited")
        for name, d in daemons.items():
            said += [(f"vrrpyd {name}", line) for line in vrrpyd_complaints(d)]
    return RunResult(
        gap=new[0]["t"] - live_old[-1]["t"],
        last_old=live_old[-1]["t"] - killed_at,
        first_new=new[0]["t"] - killed_at,
        spacing_median=statistics.median(spacing),
        spacing_max=max(spacing),
        late=sum(1 for s in spacing if s > 1.5 * interval),
        zero_priority=len(zero),
        notes=notes,
        said=said,
    )


# ---------------------------------------------------------------- report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _label(interval: float) -> str:
    return f"{interval:g} s" if interval >= 1 else f"{interval * 1000:g} ms"


def root_and_impls(choice: str) -> list[str] | None:
    """The implementations to measure ("both" or one), or None (said why) without root."""
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)")
        return None
    impls = list(IMPLS) if choice == "both" else [choice]
    if "keepalived" in impls and keepalived_version() is None:
        print("keepalived is not installed: measuring vrrpy alone")
        impls.remove("keepalived")
    return impls


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per interval and implementation (default: 3 at 1 s, 5 below)",
    )
    parser.add_argument(
        "--intervals",
        type=float,
        nargs="+",
        default=list(DEFAULT_INTERVALS),
        help="advert intervals in seconds (VRRPv3: multiples of 0.01), default 1.0 0.1 0.01",
    )
    parser.add_argument(
        "--impl",
        choices=(*IMPLS, "both"),
        default="both",
        help="which implementation(s) to run, default both",
    )
    parser.add_argument(
        "--quiet-for",
        type=int,
        default=5,
        help="intervals h1 must advert alone before the kill counts as steady, default 5",
    )
    args = parser.parse_args(argv)
    for interval in args.intervals:
        cs = round(interval * 100)
        if not 1 <= cs <= 4095 or abs(cs - interval * 100) > 1e-6:
            parser.error(f"--intervals: {interval:g} is not a VRRPv3 interval (0.01 .. 40.95)")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")

    print_header("vrrpy failover bench: the gap on the wire, vrrpy against keepalived")
    impls = root_and_impls(args.impl)
    if impls is None:
        return 2
    print(
        f"VRRPv3, VRID {VRID}, {VIP}/24, priorities h1 {PRIORITIES['h1']} / h2 "
        f"{PRIORITIES['h2']}; SIGKILL of h1's router + h1 link down; capture in h3"
    )

    results: dict[tuple[float, str], list[RunResult]] = {}
    failures: dict[tuple[float, str], int] = {}
    said_in: Counter[tuple[str, str]] = Counter()  # (impl, log line): in how many runs
    for interval in args.intervals:
        runs = args.runs or DEFAULT_RUNS.get(interval, 5)
        predicted = master_down_interval(PRIORITIES["h2"], round(interval * 100))
        print(f"\n== interval {_label(interval)}: predicted gap {_ms(predicted)} ms ==")
        for run in range(1, runs + 1):
            for impl in impls:  # interleaved, so that drift in the machine hits both alike
                key = (interval, impl)
                try:
                    result = run_once(impl, interval, args.quiet_for)
                except LabError as exc:
                    print(f"the lab could not be built: {exc}")
                    return 1
                except Exception as exc:  # one failed run is reported; the others go on
                    failures[key] = failures.get(key, 0) + 1
                    print(f"  {impl:<10} run {run}/{runs}: FAILED: {type(exc).__name__}: {exc}")
                    continue
                results.setdefault(key, []).append(result)
                print(
                    f"  {impl:<10} run {run}/{runs}: gap {_ms(result.gap)} ms "
                    f"({(result.gap - predicted) * 1000:+.2f}); h1 last {_ms(result.last_old)} ms, "
                    f"h2 first {_ms(result.first_new)} ms from the kill; h1 spacing median "
                    f"{_ms(result.spacing_median)} max {_ms(result.spacing_max)} ms"
                    + (f", {result.late} late" if result.late else "")
                    + (f", {result.zero_priority} PRIORITY-0" if result.zero_priority else "")
                )
                for note in result.notes:
                    print(f"      note: {note}")
                for who, line in result.said:  # printed the first time, counted in the summary
                    if said_in[impl, line] == 0:
                        print(f"      log, {who}: {line}")
                said_in.update({(impl, line) for _, line in result.said})

    print("\n== summary (ms; gap = h2's first advert - h1's last, seen by h3) ==")
    verdicts: list[str] = []
    for interval in args.intervals:
        predicted = master_down_interval(PRIORITIES["h2"], round(interval * 100))
        print(f"\ninterval {_label(interval)}, predicted {_ms(predicted)} ms")
        print(
            f"  {'impl':<10} {'runs':>5} {'min':>9} {'median':>9} {'max':>9} {'med-pred':>9} "
            f"{'late':>5} {'prio0':>5}"
        )
        medians: dict[str, float] = {}
        for impl in impls:
            got = results.get((interval, impl), [])
            total = len(got) + failures.get((interval, impl), 0)
            if not got:
                print(f"  {impl:<10} {0:>2}/{total:<2} (no successful run)")
                continue
            gaps = [r.gap for r in got]
            medians[impl] = median = statistics.median(gaps)
            print(
                f"  {impl:<10} {len(got):>2}/{total:<2} {_ms(min(gaps)):>9} {_ms(median):>9} "
                f"{_ms(max(gaps)):>9} {(median - predicted) * 1000:>+9.2f} "
                f"{sum(r.late for r in got):>5} {sum(r.zero_priority for r in got):>5}"
            )
        if "vrrpy" in medians and "keepalived" in medians:
            v, k = medians["vrrpy"], medians["keepalived"]
            print(
                f"  vrrpy vs keepalived: median {(v - k) * 1000:+.2f} ms, ratio {v / k:.4f} "
                f"({'not slower' if v <= k else 'SLOWER'})"
            )
            verdicts.append(
                f"{'MET' if v <= k else 'NOT MET'}: at {_label(interval)} vrrpy's median "
                f"{_ms(v)} ms vs keepalived's {_ms(k)} ms ({(v - k) * 1000:+.2f} ms)"
            )
        if abs(interval - TARGET_INTERVAL) < 1e-9 and "vrrpy" in medians:
            off = medians["vrrpy"] - predicted
            ok = abs(off) <= TARGET_TOLERANCE
            verdicts.insert(
                0,
                f"{'MET' if ok else 'NOT MET'}: at 10 ms vrrpy's median gap is "
                f"{off * 1000:+.2f} ms from the prediction "
                f"(target within {TARGET_TOLERANCE * 1000:g} ms)",
            )

    if said_in:
        print("\nlogs beyond routine lines (start, state changes, stop), over all runs:")
        for (impl, line), n in said_in.items():
            runs = sum(len(got) for (_, i), got in results.items() if i == impl)
            print(f"  {impl}: {line}  [in {n} of {runs} runs]")

    print("\n== targets ==")
    print("  1. at 10 ms, vrrpy's median gap within 2 ms of the prediction")
    print("  2. vrrpy never slower than keepalived (median gap, at every interval)")
    for line in verdicts or ["(not judged: the runs needed are missing)"]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
