"""CARP failover gap on the wire: vrrpyd against ucarp, same lab, same run, same settings.

For each pair (Master implementation / Backup implementation: vrrpy/vrrpy,
ucarp/ucarp, and the two mixed pairs by default), every run builds a fresh
three-host lab (``vrrpy.lab.Lab``): h1 and h2 run one CARP virtual host (vhid
7, 192.0.2.50/24, password ``s3cret``, advbase 1, advskew 0 on h1 and 100 on
h2, no preemption), vrrpyd with ``protocol = "carp"`` and ``carp_profile =
"ucarp"``, ucarp from the same settings (``interop/ucarp.py``: foreground,
``-f none -D``, up and down scripts that move the address); h3 watches the
wire with ``vrrpy.lab.Capture`` (kernel receive timestamps), from before the
routers start.

One run:

1. start h1, then h2; wait until h1 is Master and h2 Backup and has accepted an
   advert, then until h1 has advertised alone for a few adverts;
2. SIGKILL h1's router and set h1's link down (``Router.kill``);
3. wait for h2's first advert, stop the capture.

gap = h2's first advert - h1's last, both as seen by h3. Printed beside CARP's
master down for the Backup taking over, ``3 x advbase + advskew / 256``
(3.3906 s here). A ucarp Backup is also printed beside what it really does
(``ucarp.master_down_as_run``): it looks at its timer only when ``poll``
returns, every ``advbase + advskew / 256`` s with nothing arriving, so it takes
over at the first multiple of that past the timer (4.17 s here) after the
last advert it *processed*; libpcap hands it each advert up to a second late
(TPACKET_V3 blocks retired by a 1000 ms timer); and it runs its up script, and
waits for it, before its first advert. For a ucarp Backup each run splits its
gap into those three parts, from its own log (``sc_tv(local)``, the line it
prints for an accepted advert, and ``Switching to state: MASTER``).

It is a report, not a test: it exits 0 whatever the figures, 1 when the lab
cannot be built, 2 without root or ucarp. Run as root (about 11 s a run):
``python bench/carp_failover_bench.py`` (``--runs``, ``--pairs``,
``--advskew``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "interop"))

from routers import Router
from ucarp import PCAP_LATENCY, master_down_as_run

from common import source_revision
from vrrpy.codec.carp import looks_like_carp
from vrrpy.core.carp import carp_master_down
from vrrpy.lab import Capture, Lab, wait_for

VIP = "192.0.2.50"
VHID = 7
ADVBASE = 1
MASTER_SKEW = 0
DEFAULT_BACKUP_SKEW = 100
PAIRS = ("vrrpy/vrrpy", "ucarp/ucarp", "vrrpy/ucarp", "ucarp/vrrpy")
"""Master implementation / Backup implementation."""
DEFAULT_RUNS = 5
QUIET_ADVERTS = 3


class LabError(Exception):
    """The namespace lab could not be built: the only failure that makes the script exit 1."""


class RunError(Exception):
    """One run went wrong (no election, no takeover): reported, not fatal."""


def instance(advskew: int) -> dict[str, Any]:
    """One CARP virtual host, as vrrpyd reads it and the ucarp harness translates it."""
    return {
        "name": "VI_1",
        "protocol": "carp",
        "interface": "eth0",
        "vhid": VHID,
        "advbase": ADVBASE,
        "advskew": advskew,
        "password": "s3cret",
        "carp_profile": "ucarp",
        "virtual_addresses": [f"{VIP}/24"],
    }


# ---------------------------------------------------------------- the machine


def ucarp_version() -> str | None:
    """Debian's package version and ucarp's own banner, or None when it is not installed."""
    if shutil.which("ucarp") is None:
        return None
    banner = subprocess.run(
        ["ucarp", "--help"], capture_output=True, text=True, timeout=10, check=False
    )
    first = next((line for line in (banner.stdout + banner.stderr).splitlines() if line), "")
    package = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "ucarp"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.strip()
    return f"{first.strip()} (Debian package {package or 'unknown'})"


def print_header(title: str) -> None:
    print(title)
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"machine: {platform.node()}, {platform.machine()}, nproc {os.cpu_count()}, "
        f"load average {' '.join(load)} (before starting), Linux {platform.release()}"
    )
    print(f"ucarp: {ucarp_version() or 'NOT INSTALLED'}")
    print(f"vrrpy: {source_revision()}, Python {platform.python_version()}")


# ---------------------------------------------------------------- one run


@dataclass
class RunResult:
    """One failover on the wire (seconds; kernel timestamps seen by h3)."""

    gap: float
    last_old: float  # h1's last advert, relative to the kill
    first_new: float  # h2's first advert, relative to the kill
    late_by: float | None = None  # ucarp Backup: h1's last advert, processed this late
    timer: float | None = None  # ucarp Backup: from processing it to "Switching to MASTER"
    to_wire: float | None = None  # ucarp Backup: from that switch to its first advert
    notes: list[str] = field(default_factory=list)


def adverts(records: list[dict[str, Any]], src: str) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["kind"] == "vrrp"
        and r["src"] == src
        and not r["outgoing"]
        and looks_like_carp(bytes.fromhex(r["payload"]))
    ]


def heard(router: Router) -> int:
    if router.ucarp is not None:
        return router.ucarp.accepted()
    return int(router.counters()["adverts_received"])


def run_once(master: str, backup: str, advskew: int) -> RunResult:
    """One failover in a fresh lab; raises :class:`LabError` or :class:`RunError`."""
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-carp-failover-") as tmp:
        lab = Lab(hosts=3)
        try:
            lab.up()
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            raise LabError(f"{type(exc).__name__}: {exc}") from exc
        try:
            return _run_in(lab, Path(tmp), master, backup, advskew)
        finally:
            lab.down()


def _run_in(lab: Lab, work: Path, master: str, backup: str, advskew: int) -> RunResult:
    h1, h2 = lab["h1"], lab["h2"]
    capture = Capture(lab["h3"])
    try:
        r1 = Router(master, h1, work, [instance(MASTER_SKEW)]).start()
        r2 = Router(backup, h2, work, [instance(advskew)]).start()
        if not wait_for(
            lambda: r1.state() == "MASTER" and r2.state() == "BACKUP" and heard(r2) > 0,
            15,
            step=0.05,
        ):
            raise RunError(f"no election: h1 {r1.state()}, h2 {r2.state()}")
        src1, src2 = str(h1.ipv4), str(h2.ipv4)
        counted = len(adverts(capture.records, src1))
        if not wait_for(
            lambda: len(adverts(capture.records, src1)) >= counted + QUIET_ADVERTS, 10, step=0.05
        ):
            raise RunError("h1 stopped advertising before the kill")
        if r2.state() != "BACKUP":
            raise RunError(f"h2 is {r2.state()} before the kill")
        time.sleep(0.3)
        killed_at = time.time()
        r1.kill()
        formula = carp_master_down(ADVBASE, advskew)
        limit = master_down_as_run(ADVBASE, advskew) + PCAP_LATENCY + 3
        if not wait_for(
            lambda: any(r["t"] > killed_at for r in adverts(capture.records, src2)), limit
        ):
            raise RunError(f"no advert from h2 within {limit:.1f} s of the kill")
        time.sleep(0.2)
    finally:
        records = capture.stop()
    old = [r for r in adverts(records, src1) if r["t"] <= killed_at]
    new = [r for r in adverts(records, src2) if r["t"] > killed_at]
    result = RunResult(
        gap=new[0]["t"] - old[-1]["t"],
        last_old=old[-1]["t"] - killed_at,
        first_new=new[0]["t"] - killed_at,
    )
    early = [r for r in adverts(records, src2) if r["t"] <= killed_at]
    if early:
        result.notes.append(f"{len(early)} h2 advert(s) before the kill (start-up)")
    if r2.ucarp is not None:
        processed = [t for t in r2.ucarp.stamped("sc_tv(local)") if t <= killed_at + 1.5]
        switched = [t for t in r2.ucarp.stamped("Switching to state: MASTER") if t > killed_at]
        if processed and switched:
            result.late_by = processed[-1] - old[-1]["t"]
            result.timer = switched[0] - processed[-1]
            result.to_wire = new[0]["t"] - switched[0]
    if abs(result.gap - formula) > 2.5:
        result.notes.append("far from any prediction: check the logs")
    return result


# ---------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per pair, default 5")
    parser.add_argument(
        "--pairs",
        nargs="+",
        choices=PAIRS,
        default=list(PAIRS),
        help="MASTER/BACKUP implementations, default all four",
    )
    parser.add_argument(
        "--advskew",
        type=int,
        default=DEFAULT_BACKUP_SKEW,
        help="the Backup's advskew (1..254; h1 has 0), default 100",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if not 1 <= args.advskew <= 254:
        parser.error("--advskew: 1..254 (h1, the Master, has 0)")

    print_header("vrrpy CARP failover bench: the gap on the wire, vrrpy against ucarp")
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets)")
        return 2
    missing = [tool for tool in ("ucarp", "stdbuf") if shutil.which(tool) is None]
    if missing:
        print(f"needs {', '.join(missing)} (apt-get install ucarp)")
        return 2
    formula = carp_master_down(ADVBASE, args.advskew)
    as_run = master_down_as_run(ADVBASE, args.advskew)
    print(
        f"CARP vhid {VHID}, {VIP}/24, advbase {ADVBASE}, advskew h1 {MASTER_SKEW} / h2 "
        f"{args.advskew}, no preemption; SIGKILL of h1's router + h1 link down; capture in h3"
    )
    print(
        f"CARP formula, master down of the Backup = 3 x advbase + advskew/256 = {_ms(formula)} ms"
    )
    print(
        f"ucarp as run: {_ms(as_run)} ms after the last advert it processed (its poll "
        f"timeout, {ADVBASE} s + {args.advskew * 1000 // 256} ms, times the first multiple "
        f"past the timer), + libpcap's latency (0..{_ms(PCAP_LATENCY)} ms) + its up script"
    )

    results: dict[str, list[RunResult]] = {}
    failures: dict[str, int] = {}
    for run in range(1, args.runs + 1):
        for pair in args.pairs:  # interleaved: drift in the machine hits all alike
            master, backup = pair.split("/")
            try:
                result = run_once(master, backup, args.advskew)
            except LabError as exc:
                print(f"the lab could not be built: {exc}")
                return 1
            except Exception as exc:  # one failed run is reported; the others go on
                failures[pair] = failures.get(pair, 0) + 1
                print(f"  {pair:<12} run {run}/{args.runs}: FAILED: {type(exc).__name__}: {exc}")
                continue
            results.setdefault(pair, []).append(result)
            parts = ""
            if result.late_by is not None:
                parts = (
                    f"; ucarp: got h1's last advert {_ms(result.late_by)} ms late, switched "
                    f"{_ms(result.timer)} ms after, advert {_ms(result.to_wire)} ms later"
                )
            print(
                f"  {pair:<12} run {run}/{args.runs}: gap {_ms(result.gap)} ms "
                f"({(result.gap - formula) * 1000:+.1f} vs CARP); h1 last "
                f"{_ms(result.last_old)} ms, h2 first {_ms(result.first_new)} ms from the kill"
                + parts
            )
            for note in result.notes:
                print(f"      note: {note}")

    print(f"\n== summary (ms; gap = h2's first advert - h1's last; CARP {_ms(formula)}) ==")
    print(
        f"  {'master/backup':<14} {'runs':>5} {'min':>8} {'median':>8} {'max':>8} "
        f"{'med-CARP':>9} | ucarp Backup: {'pcap late':>9} {'timer':>7} {'to wire':>7}"
    )
    for pair in args.pairs:
        got = results.get(pair, [])
        total = len(got) + failures.get(pair, 0)
        if not got:
            print(f"  {pair:<14} {0:>2}/{total:<2} (no successful run)")
            continue
        gaps = [r.gap for r in got]
        median = statistics.median(gaps)
        split = ""
        late = [r.late_by for r in got if r.late_by is not None]
        if late:
            timers = [r.timer for r in got if r.timer is not None]
            wires = [r.to_wire for r in got if r.to_wire is not None]
            split = (
                f" | {'':13} {_ms(statistics.median(late)):>9} "
                f"{_ms(statistics.median(timers)):>7} {_ms(statistics.median(wires)):>7}"
            )
        print(
            f"  {pair:<14} {len(got):>2}/{total:<2} {_ms(min(gaps)):>8} {_ms(median):>8} "
            f"{_ms(max(gaps)):>8} {(median - formula) * 1000:>+9.1f}{split}"
        )
    print("  (ucarp Backup columns: medians; its timer as run should be " + _ms(as_run) + ")")
    print("\n== the Backup taking over, vrrpy against ucarp (median gap over its runs) ==")
    for backup in ("vrrpy", "ucarp"):
        gaps = [r.gap for pair, got in results.items() if pair.endswith("/" + backup) for r in got]
        if gaps:
            median = statistics.median(gaps)
            print(
                f"  {backup} Backup: {_ms(median)} ms over {len(gaps)} runs "
                f"({(median - formula) * 1000:+.1f} vs CARP's {_ms(formula)}; "
                f"min {_ms(min(gaps))}, max {_ms(max(gaps))})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
