"""CPU of the tracking agent: 100 scripts (``/bin/true``) at 1 s and 20 ping targets.

A lab of two hosts: h1 runs the agent (``python -m vrrpy.track.agent``, what
the daemon starts), h2 carries the 20 targets, 10 IPv4 (198.51.100.1-10) and
10 IPv6 (2001:db8:1::1-a) addresses on its ``eth0``, probed every second.
After ``--settle`` seconds the agent's CPU time is read from
``/proc/PID/stat`` over ``--seconds``: its own (utime + stime: the loop,
spawning, reaping, ping) and with its reaped children (cutime + cstime: the
100 ``/bin/true`` a second themselves). The issue's advert-gap benchmark
runs the same agent beside a 10 ms Master; this script only measures the
agent, so the lead can integrate it there.

    python bench/track_bench.py [--seconds 10] [--settle 3] [--scripts 100] [--targets 20]

Hold ``flock /tmp/vrrpy-heavy.lock`` around it on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time

from common import source_revision
from vrrpy.lab import Lab
from vrrpy.track.client import AGENT_COMMAND, TrackingAgent
from vrrpy.track.model import Verdict
from vrrpy.track.protocol import CheckSpec, PingSpec, ScriptSpec

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(own, own + reaped children) CPU seconds of ``pid``."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICKS, (utime + stime + cutime + cstime) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--scripts", type=int, default=100)
    parser.add_argument("--targets", type=int, default=20)
    args = parser.parse_args()
    print(f"vrrpy {source_revision()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")

    with Lab(hosts=2) as lab:
        h1, h2 = lab["h1"], lab["h2"]
        v4 = [f"198.51.100.{i}" for i in range(1, args.targets // 2 + 1)]
        v6 = [f"2001:db8:1::{i:x}" for i in range(1, args.targets - len(v4) + 1)]
        for address in v4:
            h2.run(["ip", "addr", "add", f"{address}/24", "dev", "eth0"])
        for address in v6:
            h2.run(["ip", "addr", "add", f"{address}/64", "dev", "eth0", "nodad"])
        h1.run(["ip", "route", "add", "198.51.100.0/24", "dev", "eth0"])
        h1.run(["ip", "-6", "route", "add", "2001:db8:1::/64", "dev", "eth0"])
        specs: list[CheckSpec] = [
            ScriptSpec(f"chk{i}", "/bin/true", interval=1.0) for i in range(args.scripts)
        ]
        specs.append(PingSpec("targets", tuple(v4 + v6), interval=1.0, timeout=1.0))
        verdicts: list[Verdict] = []

        async def run() -> None:
            agent = TrackingAgent(
                specs,
                lambda v, t: verdicts.append(v),
                command=h1.command(AGENT_COMMAND),
                stderr=subprocess.DEVNULL,
            )
            agent.start(asyncio.get_running_loop())
            try:
                await asyncio.sleep(args.settle)
                assert agent.pid is not None
                wall0, (own0, all0) = time.monotonic(), cpu_times(agent.pid)
                await asyncio.sleep(args.seconds)
                wall1, (own1, all1) = time.monotonic(), cpu_times(agent.pid)
                agent.request_status()
                await asyncio.sleep(0.3)
                status = agent.status
            finally:
                agent.stop()
            span = wall1 - wall0
            runs = sum(o.get("runs", 0) for o in status.values() if o.get("kind") == "script")
            targets = status.get("targets", {}).get("targets", {})
            reachable = sum(1 for t in targets.values() if t["reachable"])
            print(
                f"{args.scripts} scripts at 1 s, {len(v4) + len(v6)} ping targets at 1 s,"
                f" measured over {span:.1f} s after {args.settle:g} s"
            )
            print(f"agent CPU (own):             {100 * (own1 - own0) / span:5.1f} % of one core")
            print(f"agent CPU (with its scripts): {100 * (all1 - all0) / span:5.1f} % of one core")
            print(f"script runs so far: {runs}; ping targets reachable: {reachable}/{len(targets)}")
            print(f"verdict lines read by the parent: {len(verdicts)}")

        asyncio.run(run())


if __name__ == "__main__":
    sys.exit(main())
