"""Health checks of 1,000 HTTP real servers every second: their CPU, and a 10 ms Master beside them.

Issue 17's benchmark: "Health checking 1,000 real servers over HTTP every
second: the CPU it costs, and the Master's largest advert gap at 10 ms
adverts while it runs, beside the same run without checks." Two parts
(``--part cpu``, ``--part gap``; both by default):

**cpu** (no root, loopback): the health agent alone, started by the library.
The real servers are ``--checks`` (1000) HTTP listeners on 127.0.0.1, each
on its own port, served by ``--processes`` (2) server processes (this script
with ``--serve``: one asyncio loop each, a minimal ``asyncio.Protocol`` that
answers ``200 OK`` with a 3-byte body and closes). The checker is the health
agent (``python -m vrrpy.health.agent``, started by
:class:`vrrpy.health.agent.HealthAgent` exactly as vrrpyd starts it), with
one ``HTTP_GET`` per real server: ``delay_loop`` ``--interval`` (1 s), the
default ``warmup`` (the ``delay_loop``: the first attempts spread over a
second), ``connect_timeout`` 1 s, status 200-299 (``--digest``: also the MD5
of the body, which makes the agent read it). After ``--settle`` seconds the
CPU time (``/proc/PID/stat`` utime + stime) of the agent, of the server
processes and of this process (the daemon's side: the agent's pipe, silent
while nothing changes) is read over ``--seconds``, with the agent's own
counters (attempts, largest lateness of an attempt, peak in flight).

**gap** (root, network namespaces): the same checks in vrrpyd, configured as
a user would, beside a 10 ms Master; modelled on ``bench/tracking_bench.py``.
Each run builds a fresh lab (``vrrpy.lab.Lab``) of four hosts on one bridge:

* h1: vrrpyd, Master of VI_1 (VRID 51, priority 200, adverts every 10 ms);
* h2: vrrpyd, its Backup (priority 100);
* h3: captures the wire (``vrrpy.lab.Capture``: kernel receive timestamps);
* h4: the real servers: ``--addresses`` (10) addresses 198.51.100.1.. on its
  ``eth0``, and ``--processes`` (2) listener processes (the same
  ``--serve`` as above) bound to 0.0.0.0 on ports 8000.., so that every
  (address, port) pair is a real server answering ``200 OK``. h1 reaches
  198.51.100.0/24 on-link through its ``eth0``, the interface its adverts
  leave by: the checks are real TCP connections over the lab's wire, not
  loopback. They are on a host of their own because h3's sniffer reads
  every frame that reaches h3 in Python; the bridge does not flood h1-h4
  unicast to h3, so the capture does the same work in both kinds of run.

Two kinds of run, the same length (``--seconds``, 30), alternating
(``--runs`` rounds, 3), each in a fresh lab:

* ``plain``: h1's file has the instance only (h4's listeners run, idle);
* ``health``: h1's file adds ``--checks`` real servers as vrrpyd's
  ``[[virtual_server]]`` tables: ``ceil(checks / addresses)`` virtual
  services (TCP 192.0.2.100:8000.., NAT, following VI_1), each with one
  real server per address on the service's port, each with ``HTTP_GET = {
  url = [{ path = "/health", status_code = 200 }], connect_timeout = 1 }``,
  ``delay_loop`` ``--interval``: one HTTP check per real server per
  second, run by vrrpyd's own health agent (its child process, started by
  ``vrrpy.daemon.lvs.Lvs`` from the file).

**No IPVS on this host.** The kernel here has no ``ip_vs``; what vrrpyd does
then was checked before writing this: it starts, its health agent runs every
check and feeds the pool's backend, and VI_1 becomes and stays Master; the
IPVS backend's transition to Master fails ("no IPVS generic netlink family
here ... is the ip_vs module loaded?", one ERROR line, counted as a failed
backend call in the state file), which does not fault the instance (a
``[[virtual_server]]`` pool has no ``fault_on_failure``). So this runs
vrrpyd's real configuration path, unchanged, and what it cannot do is write
the table: a director with IPVS reads and installs its 100 services when it
becomes Master (before the window here) and reconciles once per health
*change* in a worker thread; with every server up for the whole window
there is none, so the window differs from a real director's only in that
nothing at all touches netlink. (keepalived 2.2.7 cannot be run beside it:
without IPVS its checker child exits "IPVS: Can't initialize ipvs" with a
fatal status and takes the whole daemon down, VRRP included.)

The window starts once h1 is Master and h2 Backup and (``health``) the
agent is ready and every real server has had at least one check (one
``delay_loop`` after ready, then checked through SIGUSR1, which makes vrrpyd
ask the agent for every server's history), plus ``--settle`` seconds (2).
Printed per run: h1's adverts seen and expected, the gaps between them
(median, p99, p99.9, largest, how many over 15 ms), h2's adverts (any is a
flap), CPU as a percentage of one core over the window (``/proc/PID/stat``):
vrrpyd's own (all threads), its health agent's (found through the state
file), h4's listener processes' (all together), the host's steal time, and
the checks made per second (the state file's per-server ``runs``, between
the last readiness poll and the one after the window). After the window, and
still capturing, one more SIGUSR1: the largest gap in the two seconds around
it, and h2's adverts then, are printed in the notes and beside the
comparison. Why: in ``health`` the agent's answer is every server's check
history, a line of about a megabyte; vrrpyd keeps it raw and decodes it when
the state file's snapshot asks for it, and that snapshot is taken on the
protocol loop (``StateFile._flush``); the worker thread then encodes an
instance entry of a megabyte in one call of the C JSON encoder, which holds
the GIL throughout. Both are outside the window (nothing writes the state
file while no server changes), so they do not move the comparison; they are
what an operator's SIGUSR1 costs a 1,000-server Master.
For each run with gaps over 15 ms, a note on each of the three largest: the
line of h1's log nearest to its start, and with ``--watch``
(``starvation_bench.FreezeWatch``, as in ``tracking_bench.py``: a
``SCHED_FIFO`` 99 watcher per CPU) the longest freeze of a CPU across it,
with ``--gc-trace`` (h1's vrrpyd under a wrapper that logs every full
garbage collection and any other over 2 ms) the collections in it; a full
collection walks every object not frozen by the runtime, and the health
side's (the agent's health map, the pool's plan, a decoded status answer)
are made after the runtime froze its own. ``--gc-trace`` also counts h1's
full collections in the window. Both are off by default: the watchers'
wake-ups are scheduling points of their own, and the wrapper runs Python
in every collection.

Then the comparison: the median over runs of each kind's largest gap,
``health`` minus ``plain`` (target: at most 1 ms more, as for tracking), the
worst gap of each kind, and the CPU medians side by side.

    python bench/health_bench.py [--part both|cpu|gap] [--checks 1000]
        [--processes 2] [--interval 1] [--seconds 10 (cpu) / 30 (gap)]
        [--settle 3 (cpu) / 2 (gap)] [--digest] [--runs 3] [--addresses 10]
        [--watch] [--gc-trace]

Hold ``flock /tmp/vrrpy-heavy.lock`` around it on a shared machine. It is a
report: it exits 0 whatever the figures (2 when the gap part is asked for
without root).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import source_revision
from failover_bench import VIP, vrrpy_instance, vrrpyd_complaints
from starvation_bench import FreezeWatch, print_notes, run_cases, steal_per_cpu
from vrrpy.health.agent import HealthAgent
from vrrpy.health.model import CheckSpec, HttpCheck
from vrrpy.health.state import ServerChange
from vrrpy.lab import Capture, Daemon, Lab, wait_for

TICKS = os.sysconf("SC_CLK_TCK")
BODY = b"ok\n"
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\n" + BODY
)

INTERVAL = 0.01  # h1's advert interval in the gap part
LATE = 0.015  # a gap over this is counted: 1.5 intervals
TARGET = 0.001  # the checks may move the largest gap by at most this much
PRIORITIES = {"h1": 200, "h2": 100}
KINDS = ("plain", "health")
FIRST_PORT = 8000
SERVER_NET = "198.51.100"
REAL_SERVER = re.compile(r"\b\d+\.\d+\.\d+\.\d+:\d+\b")


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


async def _serve(host: str, first: int, count: int) -> None:
    """Listen on ``count`` ports of ``host``: ``first``, ``first + 1``... (``first`` 0: ports the
    kernel picks); print them as one JSON line, serve until stdin closes."""
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(_Responder, host, first + i if first else 0, backlog=128)
        for i in range(count)
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


def _serve_command(host: str, first: int, count: int) -> list[str]:
    return [sys.executable, __file__, "--serve", host, "--first", str(first), "--count", str(count)]


def _shares(total: int, parts: int) -> list[int]:
    share, extra = divmod(total, parts)
    return [share + (i < extra) for i in range(parts) if share + (i < extra)]


def _stop_servers(servers: Sequence[subprocess.Popen[bytes]]) -> None:
    """Close each server's stdin (it stops), and kill by PID any that does not."""
    for proc in servers:
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
    for proc in servers:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- measuring ---------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime) of ``pid`` (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def _sum(pids: list[int]) -> tuple[float, float]:
    times = [cpu_seconds(pid) for pid in pids]
    return sum(t[0] for t in times), sum(t[1] for t in times)


def _own(pids: list[int]) -> float:
    """utime + stime of ``pids`` together, in seconds (0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += sum(cpu_seconds(pid))
    return total


# -- part cpu: the agent alone, on loopback ----------------------------------------------------


def part_cpu(args: argparse.Namespace) -> None:
    print(f"\n== cpu: the health agent alone, {args.checks} HTTP servers on 127.0.0.1 ==")
    servers: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for count in _shares(args.checks, args.processes):
            proc = subprocess.Popen(
                _serve_command("127.0.0.1", 0, count),
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
    finally:
        _stop_servers(servers)


async def _measure(
    args: argparse.Namespace, specs: list[CheckSpec], server_pids: list[int]
) -> None:
    seconds = args.seconds if args.seconds is not None else 10.0
    settle = args.settle if args.settle is not None else 3.0
    changes: list[ServerChange] = []
    agent = HealthAgent(specs, changes.append, stderr=subprocess.DEVNULL)
    agent.start(asyncio.get_running_loop())
    try:
        await asyncio.sleep(settle)
        assert agent.pid is not None
        agent.request_status(details=False)
        await asyncio.sleep(0.2)
        before = agent.status.get("runner", {})
        seen = len(changes)
        wall0 = time.monotonic()
        agent0, servers0, own0 = cpu_seconds(agent.pid), _sum(server_pids), os.times()
        await asyncio.sleep(seconds)
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
        f"measured over {span:.1f} s after {settle:g} s"
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


# -- part gap: vrrpyd's own checks beside a 10 ms Master ---------------------------------------


def real_servers(checks: int, addresses: int) -> list[tuple[str, int]]:
    """``checks`` (address, port) pairs: one real server per address on each service's port."""
    per = min(addresses, checks)
    return [(f"{SERVER_NET}.{i % per + 1}", FIRST_PORT + i // per) for i in range(checks)]


def pool_tables(
    servers: list[tuple[str, int]], vip: str, interval: float, digest: str | None
) -> list[Mapping[str, Any]]:
    """h1's ``[[virtual_server]]`` tables: one TCP service per port, following VI_1."""
    url: dict[str, Any] = {"path": "/health", "status_code": 200}
    if digest is not None:
        url["digest"] = digest
    by_port: dict[int, list[str]] = {}
    for address, port in servers:
        by_port.setdefault(port, []).append(address)
    return [
        {
            "instance": "VI_1",
            "address": vip,
            "port": port,
            "protocol": "TCP",
            "lb_algo": "wlc",
            "lb_kind": "NAT",
            "delay_loop": interval,
            "real_server": [
                {
                    "address": address,
                    "port": port,
                    "weight": 1,
                    "HTTP_GET": {"url": [url], "connect_timeout": 1},
                }
                for address in addresses
            ],
        }
        for port, addresses in sorted(by_port.items())
    ]


@dataclass
class PoolProgress:
    """The pool's checks as h1's state file shows them (after a SIGUSR1)."""

    servers: int = 0
    checked: int = 0  # servers whose every check has run at least once
    runs: int = 0
    failed: int = 0
    down: int = 0


def pool_progress(state: dict[str, Any]) -> PoolProgress:
    ipvs = state.get("instances", {}).get("VI_1", {}).get("backends", {}).get("ipvs", {})
    health = ipvs.get("status", {}).get("health", {})
    out = PoolProgress(servers=len(health))
    for entry in health.values():
        checks = entry.get("checks") or []
        if checks and all(c.get("has_run") for c in checks):
            out.checked += 1
        out.runs += sum(int(c.get("runs", 0)) for c in checks)
        out.failed += sum(int(c.get("failed", 0)) for c in checks)
        out.down += entry.get("up") is False
    return out


# vrrpyd under a wrapper that writes one line per long garbage collection to ARGV[1]
# (every full one, and any other over 2 ms): wall-clock start, generation, seconds, collected.
_GC_WRAPPER = r"""
import gc, sys, time
log = open(sys.argv[1], "w", buffering=1)
began = [0.0, 0.0]
def note(phase, info):
    if phase == "start":
        began[0], began[1] = time.time(), time.perf_counter()
        return
    took = time.perf_counter() - began[1]
    if info["generation"] == 2 or took > 0.002:
        log.write(f"{began[0]:.6f} {info['generation']} {took:.6f} {info['collected']}\n")
gc.callbacks.append(note)
from vrrpy.daemon.main import main
sys.exit(main(sys.argv[2:]))
"""


class TracedDaemon(Daemon):
    """vrrpyd, under :data:`_GC_WRAPPER` when ``gc_log`` is set (``--gc-trace``)."""

    gc_log: Path | None = None

    def start(self) -> TracedDaemon:
        if self.gc_log is None:
            super().start()
            return self
        argv = [sys.executable, "-c", _GC_WRAPPER, str(self.gc_log), "-c", str(self.conf)]
        with open(self.log, "ab") as log:
            self.proc = proc = self.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.state_file.exists() or proc.poll() is not None, 10)
        if proc.poll() is not None:
            raise AssertionError(f"vrrpyd exited: {self.log.read_text()}")
        return self

    def collections(self) -> list[tuple[float, int, float]]:
        """(start, generation, seconds) of each logged collection."""
        if self.gc_log is None or not self.gc_log.exists():
            return []
        out = []
        for line in self.gc_log.read_text().splitlines():
            with contextlib.suppress(ValueError, IndexError):
                start, gen, took, _ = line.split()
                out.append((float(start), int(gen), float(took)))
        return out


_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def log_lines(daemon: Daemon) -> list[tuple[float, str]]:
    """(wall-clock time, text) of each timestamped line of vrrpyd's log."""
    out = []
    with contextlib.suppress(OSError):
        for line in daemon.log.read_text(errors="replace").splitlines():
            match = _LOG_TIME.match(line)
            if match:
                stamp = time.mktime(time.strptime(match[1][:19], "%Y-%m-%d %H:%M:%S"))
                out.append((stamp + int(match[1][20:]) / 1000, line[match.end() :]))
    return out


def explain(
    gap: tuple[float, float],
    lines: list[tuple[float, str]],
    gcs: list[Any],
    watch: FreezeWatch | None,
) -> str:
    """What h1 logged nearest to a late gap's start, the longest CPU freeze across it
    (``--watch``) and h1's collections that overlap it (``--gc-trace``)."""
    a, b = gap
    text = f"gap of {(b - a) * 1000:.1f} ms at {time.strftime('%H:%M:%S', time.localtime(a))}"
    text += f".{int(a * 1000) % 1000:03d}"
    if watch is not None:
        text += f"; longest CPU freeze across it {watch.frozen(a, b) * 1000:.1f} ms"
    if lines:
        t, line = min(lines, key=lambda item: abs(item[0] - a))
        text += f"; nearest h1 log line {(t - a) * 1000:+.0f} ms: {REAL_SERVER.sub('RS', line)}"
    near = [g for g in gcs if a - 0.001 <= g[0] <= b]
    if near:
        text += "; collections in it: " + ", ".join(
            f"gen {gen} {took * 1000:.1f} ms" for _, gen, took in near
        )
    return text


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
    servers_cpu: float
    steal: float  # seconds the host stole from the guest (all CPUs) during the window
    frozen: int | None  # gaps over LATE that a CPU freeze accounts for (--watch only)
    checks_per_second: float | None
    usr1_gap: float | None  # largest gap around the SIGUSR1 after the window
    usr1_backup: int  # h2's adverts around it (any: h2 took over for a moment)
    notes: list[str] = field(default_factory=list)


def run_once(kind: str, args: argparse.Namespace) -> RunResult:
    # The directory outlives the lab: processes killed at teardown may still write there.
    with tempfile.TemporaryDirectory(prefix="vrrpy-health-") as tmp, Lab(hosts=4) as lab:
        return _run_in(lab, Path(tmp), kind, args)


def _run_in(lab: Lab, work: Path, kind: str, args: argparse.Namespace) -> RunResult:
    h1, h2, h3, h4 = lab["h1"], lab["h2"], lab["h3"], lab["h4"]
    notes: list[str] = []
    servers = real_servers(args.checks, args.addresses)
    for address in sorted({a for a, _ in servers}):
        h4.run(["ip", "addr", "add", f"{address}/32", "dev", "eth0"])
    h1.run(["ip", "route", "add", f"{SERVER_NET}.0/24", "dev", "eth0"])
    ports = sorted({p for _, p in servers})
    listeners: list[subprocess.Popen[bytes]] = []
    try:
        first = ports[0]
        for count in _shares(len(ports), args.processes):
            proc = h4.popen(
                _serve_command("0.0.0.0", first, count),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            listeners.append(proc)
            assert proc.stdout is not None
            json.loads(proc.stdout.readline())  # bound: the ports are ready
            first += count
        tables: dict[str, list[Mapping[str, Any]]] | None = None
        if kind == "health":
            digest = hashlib.md5(BODY).hexdigest() if args.digest else None
            tables = {"virtual_server": pool_tables(servers, VIP, args.interval, digest)}
        capture = Capture(h3)
        d1 = TracedDaemon(h1, work, [vrrpy_instance(PRIORITIES["h1"], INTERVAL)], tables)
        if args.gc_trace:
            d1.gc_log = d1.dir / "gc.log"
        d2 = Daemon(h2, work, [vrrpy_instance(PRIORITIES["h2"], INTERVAL)])
        d1.start()
        d2.start()
        if not wait_for(
            lambda: d1.instance()["state"] == "MASTER" and d2.instance()["state"] == "BACKUP",
            15,
        ):
            notes.append(f"not elected: h1 {d1.instance()['state']}, h2 {d2.instance()['state']}")
        assert d1.proc is not None
        agent: int | None = None
        progress0 = PoolProgress()
        t0 = 0.0
        if kind == "health":
            # Every real server checked at least once: the agent is ready, its first attempts
            # spread over one delay_loop (warmup); then SIGUSR1 gets every server's history.
            # Each SIGUSR1 holds h1's loop for tens of ms (see the module), so poll seldom.
            if not wait_for(lambda: d1.state().get("health_agent", {}).get("ready"), 10):
                notes.append("health agent not ready after 10 s")
            time.sleep(args.interval + 0.5)
            deadline = time.monotonic() + 10 + 2 * args.interval
            while True:
                t0 = time.monotonic()
                d1.signal(signal.SIGUSR1)
                time.sleep(1.0)
                progress0 = pool_progress(d1.state())
                if progress0.checked == len(servers) or time.monotonic() > deadline:
                    break
            if progress0.checked < len(servers):
                notes.append(
                    f"only {progress0.checked}/{len(servers)} real servers checked "
                    "before the window"
                )
            agent = d1.state().get("health_agent", {}).get("pid")
            if agent is None:
                notes.append("health agent not found in h1's state file")
        watch = FreezeWatch() if args.watch else None
        pids = [p.pid for p in listeners]
        try:
            time.sleep(args.settle)
            own0 = _own([d1.proc.pid])
            agent0 = _own([agent]) if agent else 0.0
            servers0 = _own(pids)
            steal0 = sum(steal_per_cpu())
            wall0, begin = time.monotonic(), time.time()
            time.sleep(args.seconds)
            wall1, end = time.monotonic(), time.time()
            own1 = _own([d1.proc.pid])
            agent1 = _own([agent]) if agent else 0.0
            servers1 = _own(pids)
            stolen = (sum(steal_per_cpu()) - steal0) / TICKS
        finally:
            if watch is not None:
                watch.stop()
        # Still capturing: one SIGUSR1 (in health, every server's history from the agent).
        time.sleep(0.3)
        usr1_at = time.time()
        t1 = time.monotonic()
        d1.signal(signal.SIGUSR1)
        time.sleep(1.0)
        usr1_end = time.time()
        time.sleep(0.05)  # the last advert's frame through the sniffer
        records = capture.stop()
        progress1 = progress0
        if kind == "health":  # the agent's answer (it was asked at t1)
            wait_for(lambda: pool_progress(d1.state()).runs > progress0.runs, 5, step=0.2)
            progress1 = pool_progress(d1.state())
        state = d1.state()
    finally:
        _stop_servers(listeners)

    checks_per_second = None
    if kind == "health":
        checks_per_second = (progress1.runs - progress0.runs) / (t1 - t0)
        summary = state.get("health_agent", {})
        ipvs = state.get("instances", {}).get("VI_1", {}).get("backends", {}).get("ipvs", {})
        notes.append(
            f"after the window: {progress1.servers} real servers, {progress1.checked} checked, "
            f"{progress1.down} down, {progress1.failed} failed checks in all; agent "
            f"restarts {summary.get('restarts')}; IPVS backend: {ipvs.get('calls')} calls, "
            f"{ipvs.get('failures')} failed ({ipvs.get('last_error')})"
        )
    notes += [f"h1: {line}" for line in said(d1)]
    notes += [f"h2: {line}" for line in said(d2)]

    vrrp = [r for r in records if r["kind"] == "vrrp"]
    mine_all = [r["t"] for r in vrrp if r["src"] == str(h1.ipv4) and r["priority"] > 0]
    mine = [t for t in mine_all if begin <= t <= end]
    backup = [r for r in vrrp if r["src"] == str(h2.ipv4) and begin <= r["t"] <= end]
    late = [(a, b) for a, b in itertools.pairwise(mine) if b - a > LATE]
    gcs = d1.collections()
    if args.gc_trace:
        full = [took for t, gen, took in gcs if gen == 2 and begin <= t <= end]
        notes.append(
            f"h1's full collections in the window: {len(full)}"
            + (f", longest {max(full) * 1000:.1f} ms" if full else "")
        )
    if late:
        lines = log_lines(d1)
        worst_first = sorted(late, key=lambda g: g[0] - g[1])[:3]
        notes += [explain(gap, lines, gcs, watch) for gap in worst_first]
    frozen = None
    if watch is not None:
        frozen = sum(1 for a, b in late if b - a - watch.frozen(a, b) < LATE)
    around = [t for t in mine_all if usr1_at - 0.5 <= t <= usr1_end]
    usr1_gap = max((b - a for a, b in itertools.pairwise(around)), default=None)
    usr1_backup = sum(1 for r in vrrp if r["src"] == str(h2.ipv4) and usr1_at <= r["t"] <= usr1_end)
    if usr1_gap is not None and usr1_gap > LATE:
        worst = max(itertools.pairwise(around), key=lambda g: g[1] - g[0])
        notes.append("after the window's SIGUSR1: " + explain(worst, log_lines(d1), gcs, None))
    return RunResult(
        kind=kind,
        adverts=len(mine),
        expected=round((end - begin) / INTERVAL),
        gaps=[b - a for a, b in itertools.pairwise(mine)],
        backup_adverts=len(backup),
        span=wall1 - wall0,
        vrrpyd_cpu=own1 - own0,
        agent_cpu=(agent1 - agent0) if agent else None,
        servers_cpu=servers1 - servers0,
        steal=stolen,
        frozen=frozen,
        checks_per_second=checks_per_second,
        usr1_gap=usr1_gap,
        usr1_backup=usr1_backup,
        notes=notes,
    )


def said(daemon: Daemon) -> list[str]:
    """What vrrpyd (and its agent, whose stderr is vrrpyd's log) logged above INFO, counted;
    real servers' addresses are folded (``RS``), or a thousand of them would bury the rest."""
    counts = Counter(REAL_SERVER.sub("RS", line) for line in vrrpyd_complaints(daemon))
    return [line + (f"  (x{n})" if n > 1 else "") for line, n in counts.items()]


# -- report ------------------------------------------------------------------------------------


def _pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def _percent(seconds: float | None, span: float) -> str:
    return "      -" if seconds is None else f"{100 * seconds / span:6.2f}%"


def report(result: RunResult) -> None:
    gaps = sorted(result.gaps)
    if len(gaps) < 10:
        print(f"{result.kind:7} too few adverts ({result.adverts})", flush=True)
        return
    flap = f"FLAP x{result.backup_adverts}" if result.backup_adverts else "none"
    rate = "-" if result.checks_per_second is None else f"{result.checks_per_second:.0f}"
    print(
        f"{result.kind:7} {result.adverts:5d}/{result.expected:<5d} "
        f"{statistics.median(gaps) * 1000:7.2f} {_pct(gaps, 0.99) * 1000:7.2f} "
        f"{_pct(gaps, 0.999) * 1000:7.2f} {gaps[-1] * 1000:7.2f} "
        f"{sum(1 for g in gaps if g > LATE):5d} {flap:>7} "
        f"{_percent(result.vrrpyd_cpu, result.span)} {_percent(result.agent_cpu, result.span)} "
        f"{_percent(result.servers_cpu, result.span)} {rate:>7} {result.steal * 1000:6.0f} "
        f"{'-' if result.frozen is None else result.frozen:>6}",
        flush=True,
    )


def _median_pct(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} %" if values else "-"


def verdict(results: list[RunResult]) -> list[str]:
    """Each kind's largest gap (median over runs, and the worst), side by side, the
    difference against TARGET, and the CPU medians."""
    largest = {kind: [max(r.gaps) for r in results if r.kind == kind and r.gaps] for kind in KINDS}
    if not largest["plain"] or not largest["health"]:
        return ["no comparison: a kind of run is missing"]
    lines = [
        f"{'':7} {'runs':>4} {'largest gap, median':>20} {'worst':>8} {'>15 ms':>7} "
        f"{'vrrpyd CPU':>11} {'agent CPU':>10} {'servers CPU':>12}  SIGUSR1 after: gap, h2 adverts"
    ]
    for kind in KINDS:
        mine = [r for r in results if r.kind == kind and r.gaps]

        def cpu(pick: Any, runs: list[RunResult] = mine) -> str:
            values = [100 * pick(r) / r.span for r in runs if pick(r) is not None]
            return _median_pct(values)

        lines.append(
            f"{kind:7} {len(mine):4d} {statistics.median(largest[kind]) * 1000:17.2f} ms "
            f"{max(largest[kind]) * 1000:5.2f} ms "
            f"{sum(sum(1 for g in r.gaps if g > LATE) for r in mine):7d} "
            f"{cpu(lambda r: r.vrrpyd_cpu):>11} {cpu(lambda r: r.agent_cpu):>10} "
            f"{cpu(lambda r: r.servers_cpu):>12}  "
            + ", ".join(f"{r.usr1_gap * 1000:.1f} ms" for r in mine if r.usr1_gap is not None)
            + f"; {sum(r.usr1_backup for r in mine)}"
        )
    plain, health = (statistics.median(largest[kind]) for kind in KINDS)
    moved = health - plain
    met = "MET" if moved <= TARGET else "NOT MET"
    lines.append(
        f"the checks moved the Master's largest gap by {moved * 1000:+.2f} ms "
        f"(medians over runs; target <= {TARGET * 1000:g} ms): {met}"
    )
    return lines


def part_gap(args: argparse.Namespace) -> None:
    print(
        f"\n== gap: h1 vrrpyd Master at {INTERVAL * 1000:g} ms (priority {PRIORITIES['h1']}), "
        f"h2 Backup, h3 captures, h4 serves; health: {args.checks} HTTP_GET real servers "
        f"({args.addresses} addresses x {math.ceil(args.checks / args.addresses)} ports) "
        f"every {args.interval:g} s in h1's [[virtual_server]] tables; "
        f"{args.seconds:g} s per run after {args.settle:g} s =="
    )
    print(
        f"{'run':7} {'adverts':>11} {'median':>7} {'p99':>7} {'p99.9':>7} {'max':>7} "
        f"{'>15ms':>5} {'Backup':>7} {'vrrpyd':>7} {'agent':>7} {'servers':>7} "
        f"{'checks':>7} {'steal':>6} {'frozen':>6}"
    )
    print(
        f"{'':7} {'/expected':>11} {'ms':>7} {'ms':>7} {'ms':>7} {'ms':>7} {'':>5} "
        f"{'adverts':>7} {'CPU':>7} {'CPU':>7} {'CPU':>7} {'/s':>7} {'ms':>6} {'>15ms':>6}"
    )
    results: list[RunResult] = run_cases(
        (kind for _, kind in itertools.product(range(args.runs), KINDS)),
        lambda kind: run_once(kind, args),
        report,
        lambda kind: f"{kind:7}",
    )
    print_notes("notes", results, lambda r: r.kind)
    for result in results:
        if result.usr1_gap is not None:
            print(
                f"  {result.kind}: SIGUSR1 after the window (state file"
                f"{', every server history' if result.kind == 'health' else ''}): "
                f"largest gap around it {result.usr1_gap * 1000:.2f} ms, "
                f"h2 adverts then {result.usr1_backup}"
            )
    print(
        "\nCPU: % of one core over the window. vrrpyd: h1's daemon (every thread); agent: "
        "its health agent (a child at normal priority); servers: h4's listeners, all "
        "together; checks/s: the agent's runs from the state file; steal: what the host "
        "took from the guest, all CPUs; frozen: gaps over 15 ms that a CPU freeze across "
        "them accounts for (--watch)."
    )
    print()
    for line in verdict(results):
        print(line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--part", choices=("both", "cpu", "gap"), default="both")
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="server processes")
    parser.add_argument("--interval", type=float, default=1.0, help="delay_loop, seconds")
    parser.add_argument(
        "--seconds", type=float, default=None, help="measured seconds (cpu 10, gap 30 per run)"
    )
    parser.add_argument(
        "--settle", type=float, default=None, help="seconds before measuring (cpu 3, gap 2)"
    )
    parser.add_argument("--digest", action="store_true", help="check the body's MD5 too")
    parser.add_argument("--runs", type=int, default=3, help="gap: runs of each kind, alternating")
    parser.add_argument("--addresses", type=int, default=10, help="gap: real-server addresses")
    parser.add_argument(
        "--watch", action="store_true", help="gap: watch for CPU freezes (starvation_bench)"
    )
    parser.add_argument(
        "--gc-trace",
        action="store_true",
        help="gap: run h1's vrrpyd under a wrapper that logs its long garbage collections",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve, args.first, args.count))
        return 0
    if (
        args.checks < 1
        or args.processes < 1
        or args.runs < 1
        or not 1 <= args.addresses <= 250
        or args.checks > args.addresses * 1000
    ):
        parser.error(
            "--checks >= 1, --processes >= 1, --runs >= 1, --addresses 1..250, "
            "at most 1000 ports per address"
        )

    print(f"vrrpy {source_revision()}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"load average before starting: {' '.join(load)}")
    if args.part in ("both", "cpu"):
        part_cpu(args)
    if args.part in ("both", "gap"):
        if os.geteuid() != 0:
            print("\ngap: needs root (network namespaces, raw sockets, real-time priorities)")
            return 2
        if args.seconds is None:
            args.seconds = 30.0
        if args.settle is None:
            args.settle = 2.0
        part_gap(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
