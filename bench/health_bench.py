"""CPU of real-server health checks: 1,000 HTTP servers checked every second by the health agent.

The real servers are ``--checks`` (1000) HTTP listeners on 127.0.0.1, each on
its own port, served by ``--processes`` (2) server processes (this script with
``--serve``: one asyncio loop each, a minimal ``asyncio.Protocol`` that answers
``200 OK`` with a 3-byte body and closes). The checker is the health agent
(``python -m vrrpy.health.agent``, started by
:class:`vrrpy.health.agent.HealthAgent` exactly as a daemon would), with one
``HTTP_GET`` per real server: ``delay_loop`` ``--interval`` (1 s), the
default ``warmup`` (the ``delay_loop``: the first attempts spread over a
second), ``connect_timeout`` 1 s, status 200-299 (``--digest``: also the
MD5 of the body, which makes the agent read it).

After ``--settle`` seconds (every server has had its first check) the CPU
time of each process is read from ``/proc/PID/stat`` (utime + stime) over
``--seconds``:

* the agent (the checks: connects, requests, parsing, scheduling);
* the server processes, separately (the other side of the same traffic);
* this process, the daemon's side: it reads the agent's pipe, which is
  silent while nothing changes (the line count is printed).

The agent's own counters (status request) give the attempts made in the
window, the largest lateness of an attempt against its schedule, and the
peak number of attempts in flight.

Not measured here: **the Master's largest advert gap at 10 ms adverts,
beside the same run without checks** (issue 17's target, as
``bench/tracking_bench.py`` does for tracking). It needs vrrpyd to start the
health agent from its configuration, which is not wired yet; see
:func:`advert_gap_hook`.

    python bench/health_bench.py [--checks 1000] [--processes 2] [--interval 1]
        [--seconds 10] [--settle 3] [--digest]

Hold ``flock /tmp/vrrpy-heavy.lock`` around it on a shared machine. It is a
report: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence

from common import source_revision
from vrrpy.health.agent import HealthAgent
from vrrpy.health.model import CheckSpec, HttpCheck
from vrrpy.health.state import ServerChange

TICKS = os.sysconf("SC_CLK_TCK")
BODY = b"ok\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\n" + BODY
)


# -- the server side ---------------------------------------------------------------------------


class _Responder(asyncio.Protocol):
    """Answers the first request head with RESPONSE and closes: as little server CPU as asyncio
    allows, so that the agent's figure is not hidden behind the servers'."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if b"\r\n\r\n" in self.buffer and self.transport is not None:
            self.transport.write(RESPONSE)
            self.transport.close()


async def _serve(count: int) -> None:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(_Responder, "127.0.0.1", 0, backlog=128) for _ in range(count)
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    done = loop.create_future()

    def stdin_readable() -> None:  # the bench closes our stdin to stop us
        if not os.read(0, 4096) and not done.done():
            done.set_result(None)

    loop.add_reader(0, stdin_readable)
    await done
    for server in servers:
        server.close()


# -- measuring ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def _sum(pids: list[int]) -> tuple[float, float]:
    times = [cpu_seconds(pid) for pid in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def advert_gap_hook(specs: Sequence[CheckSpec]) -> float | None:
    """TODO(lead, issue 17): the Master's largest advert gap at 10 ms adverts with these
    checks, minus the same run without them.

    Needs vrrpyd to start the health agent from its configuration (not wired
    yet). Then do as ``bench/tracking_bench.py``: a fresh three-host lab, h1
    vrrpyd Master (VRID 51, adverts every 10 ms) whose configuration carries
    ``specs`` (the real servers reachable from h1, e.g. these listeners in
    h1's namespace or on h3), h2 Backup, h3 capturing; alternate ``plain`` and
    ``health`` runs and compare the median largest gap (target: at most 1 ms
    more). Returns None until then.
    """
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--digest", action="store_true", help="check the body's MD5 too")
    parser.add_argument("--serve", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0

    print(f"vrrpy {source_revision()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    share, extra = divmod(args.checks, args.processes)
    per = [share + (i < extra) for i in range(args.processes)]
    servers: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for count in per:
            proc = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(count)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            servers.append(proc)
            assert proc.stdout is not None
            ports += json.loads(proc.stdout.readline())
        digest = hashlib.md5(BODY).hexdigest() if args.digest else None
        specs: list[CheckSpec] = [
            HttpCheck(
                server=f"127.0.0.1:{port}",
                connect_ip="127.0.0.1",
                connect_port=port,
                path="/health",
                delay_loop=args.interval,
                connect_timeout=1.0,
                digest=digest,
            )
            for port in ports
        ]
        asyncio.run(_measure(args, specs, [p.pid for p in servers]))
        gap = advert_gap_hook(specs)
        if gap is None:
            print(
                "advert gap beside the checks: not measured (TODO: vrrpyd wiring, advert_gap_hook)"
            )
        else:
            print(f"advert gap beside the checks: {gap * 1000:+.2f} ms")
    finally:
        for proc in servers:  # stdin EOF stops each; kill by PID if it does not
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
        for proc in servers:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return 0


async def _measure(
    args: argparse.Namespace, specs: list[CheckSpec], server_pids: list[int]
) -> None:
    changes: list[ServerChange] = []
    agent = HealthAgent(specs, changes.append, stderr=subprocess.DEVNULL)
    agent.start(asyncio.get_running_loop())
    try:
        await asyncio.sleep(args.settle)
        assert agent.pid is not None
        agent.request_status(details=False)
        await asyncio.sleep(0.2)
        before = agent.status.get("runner", {})
        seen = len(changes)
        wall0 = time.monotonic()
        agent0, servers0, own0 = cpu_seconds(agent.pid), _sum(server_pids), os.times()
        await asyncio.sleep(args.seconds)
        wall1 = time.monotonic()
        agent1, servers1, own1 = cpu_seconds(agent.pid), _sum(server_pids), os.times()
        lines = len(changes) - seen
        agent.request_status(details=False)
        await asyncio.sleep(0.3)
        after = agent.status.get("runner", {})
    finally:
        agent.stop()
    span = wall1 - wall0

    def pct(before: tuple[float, float], after: tuple[float, float]) -> str:
        user, system = (100 * (b - a) / span for a, b in zip(before, after, strict=True))
        return f"{user + system:5.1f} % of one core (user {user:.1f}, system {system:.1f})"

    attempts = after.get("attempts", 0) - before.get("attempts", 0)
    down = [k for k, h in agent.health.items() if not h.up]
    what = "status + MD5 digest" if args.digest else "status"
    print(
        f"{len(specs)} HTTP_GET checks ({what}) every {args.interval:g} s against "
        f"{len(specs)} listeners in {len(server_pids)} server processes; "
        f"measured over {span:.1f} s after {args.settle:g} s"
    )
    print(f"attempts in the window:        {attempts} ({attempts / span:.0f}/s)")
    print(f"agent CPU:                     {pct(agent0, agent1)}")
    print(f"server processes' CPU:         {pct(servers0, servers1)}, all together")
    print(f"this process (pipe reader):    {pct(own0[:2], own1[:2])}")
    print(f"health lines read in the window: {lines}; servers down at the end: {len(down)}")
    print(
        f"agent: largest lateness of an attempt {after.get('max_lag', 0) * 1000:.1f} ms,"
        f" peak attempts in flight {after.get('peak_in_flight')}"
    )


if __name__ == "__main__":
    sys.exit(main())
