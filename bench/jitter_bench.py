"""Send jitter of a Master at a 10 ms advert interval, on the wire, vrrpy beside keepalived.

A lab of two hosts: h1 runs the Master (VRID 51, priority 200, 10 ms), h2
captures. The intervals between consecutive adverts as h2's kernel timestamps
them are compared with the configured 10 ms: median, p99 and worst deviation.
Run with ``--busy N`` to add N more instances at 100 ms to the same daemon, so
the loop has other work while the 10 ms instance must keep its cadence.

    python bench/jitter_bench.py [--seconds 10] [--busy 200] [--impl vrrpy,keepalived]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vrrpy.lab import Capture, Daemon, Lab


def _instances(busy: int) -> list[dict[str, Any]]:
    main = {
        "name": "FAST",
        "interface": "eth0",
        "vrid": 51,
        "priority": 200,
        "advert_interval": 0.01,
        "virtual_addresses": ["192.0.2.100/24"],
    }
    extra = [
        {
            "name": f"B{vrid}",
            "interface": "eth0",
            "vrid": vrid,
            "priority": 200,
            "advert_interval": 0.1,
            "virtual_addresses": [f"198.51.100.{vrid}/24" if vrid < 255 else "203.0.113.1/24"],
        }
        for vrid in [v for v in range(1, 256) if v != 51][:busy]
    ]
    return [main, *extra]


def _keepalived_conf(busy: int) -> str:
    out = ["global_defs {", "  router_id bench", "}"]
    for inst in _instances(busy):
        out += [
            f"vrrp_instance {inst['name']} {{",
            "  state BACKUP",
            "  interface eth0",
            f"  virtual_router_id {inst['vrid']}",
            "  priority 200",
            f"  advert_int {inst['advert_interval']}",
            "  version 3",
            "  virtual_ipaddress {",
            f"    {inst['virtual_addresses'][0]}",
            "  }",
            "}",
        ]
    return "\n".join(out) + "\n"


def _measure(lab: Lab, seconds: float) -> list[float]:
    cap = Capture(lab["h2"])
    time.sleep(seconds)
    records = cap.stop()
    times = [r["t"] for r in records if r["kind"] == "vrrp" and r["vrid"] == 51]
    return [b - a for a, b in itertools.pairwise(times)]


def _report(name: str, gaps: list[float]) -> dict[str, float]:
    if len(gaps) < 10:
        print(f"{name:12} too few adverts ({len(gaps)})")
        return {}
    dev = sorted(abs(g - 0.01) * 1000 for g in gaps)
    stats = {
        "n": len(gaps),
        "mean_ms": statistics.mean(gaps) * 1000,
        "stdev_ms": statistics.pstdev(gaps) * 1000,
        "median_dev_ms": statistics.median(dev),
        "p99_dev_ms": dev[int(len(dev) * 0.99) - 1],
        "max_dev_ms": dev[-1],
    }
    print(
        f"{name:12} {stats['n']:6d} {stats['mean_ms']:8.3f} {stats['stdev_ms']:8.3f} "
        f"{stats['median_dev_ms']:10.3f} {stats['p99_dev_ms']:8.3f} {stats['max_dev_ms']:8.3f}"
    )
    return stats


def run_vrrpy(seconds: float, busy: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=2) as lab:
        inst = _instances(busy)
        daemon = Daemon(lab["h1"], Path(tmp), inst)
        daemon.conf.write_text(daemon.conf.read_text().replace('"info"', '"warning"'))
        daemon.start()
        time.sleep(1.0 + 0.5 * busy / 100)
        return _measure(lab, seconds)


def run_keepalived(seconds: float, busy: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=2) as lab:
        work = Path(tmp)
        conf = work / "keepalived.conf"
        conf.write_text(_keepalived_conf(busy))
        log = open(work / "keepalived.log", "wb")  # noqa: SIM115 - owned by the child
        lab["h1"].popen(
            [
                "keepalived",
                "-n",
                "-l",
                "-f",
                str(conf),
                "-p",
                str(work / "k.pid"),
                "-r",
                str(work / "v.pid"),
                "-c",
                str(work / "c.pid"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        time.sleep(1.5 + 0.5 * busy / 100)
        return _measure(lab, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--busy", type=int, default=0)
    parser.add_argument("--impl", default="vrrpy,keepalived")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 2
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    print(
        f"command: {' '.join(sys.argv)}; vrrpy {rev.stdout.strip()}; nproc {os.cpu_count()}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(f"Master at 10 ms, {args.busy} other instances at 100 ms, {args.seconds:g} s on the wire")
    print(
        f"{'impl':12} {'gaps':>6} {'mean ms':>8} {'stdev':>8} {'median|dev|':>10} "
        f"{'p99|dev|':>8} {'max|dev|':>8}"
    )
    impls = args.impl.split(",")
    if "vrrpy" in impls:
        _report("vrrpy", run_vrrpy(args.seconds, args.busy))
    if "keepalived" in impls:
        if shutil.which("keepalived") is None:
            print("keepalived       not installed (apt-get install keepalived)")
        else:
            _report("keepalived", run_keepalived(args.seconds, args.busy))
    return 0


if __name__ == "__main__":
    sys.exit(main())
