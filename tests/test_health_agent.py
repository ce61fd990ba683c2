"""The runner (many checks on one loop) and the agent (the runner in a child process).

Real servers on loopback only. Every process a test starts is stopped by its
own handle (HealthAgent.stop, or a kill by PID); none is looked up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from vrrpy.health.agent import AGENT_COMMAND, AgentConfig, HealthAgent, config_line
from vrrpy.health.model import CheckSpec, HttpCheck, MiscCheck, TcpCheck
from vrrpy.health.runner import HealthRunner
from vrrpy.health.state import CheckResult, ServerChange, ServerHealth


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Toggle:
    """An HTTP server on 127.0.0.1 whose answer (200 or 503) the test switches."""

    def __init__(self) -> None:
        self.healthy = True
        self.port = 0
        self.hits = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            self.hits += 1
            status = b"200 OK" if self.healthy else b"503 Unavailable"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def toggle_server() -> AsyncIterator[Toggle]:
    toggle = Toggle()
    server = await asyncio.start_server(toggle.handle, "127.0.0.1", 0)
    toggle.port = server.sockets[0].getsockname()[1]
    try:
        yield toggle
    finally:
        server.close()


def tcp(server: str, port: int, **kw: Any) -> TcpCheck:
    return TcpCheck(server=server, connect_ip="127.0.0.1", connect_port=port, **kw)


# --- the runner ------------------------------------------------------------------------------


def test_a_thousand_checks_are_spread_over_the_interval() -> None:
    """keepalived's warmup (default: the delay_loop) spreads the first attempts; later ones
    follow one delay_loop after the last one started (keepalived's rule), so the load
    stays even (no thousand-attempt bursts).

    Judged on the schedule the runner made, not on when a loaded machine ran it: the
    timing (how late attempts start under load) is bench/health_bench.py's business.
    """
    specs = [tcp(f"rs{i}", 80, delay_loop=1.0) for i in range(1000)]
    calls: dict[str, list[float]] = {}
    planned: dict[str, float] = {}

    async def main() -> float:
        loop = asyncio.get_running_loop()

        async def fake(spec: CheckSpec) -> CheckResult:
            calls.setdefault(spec.server, []).append(loop.time())
            return CheckResult(True, "fake")

        runner = HealthRunner(specs, check=fake, seed=7)
        started = loop.time()
        runner.start()
        for spec, checker in zip(specs, runner.checkers, strict=True):
            assert checker.next_run is not None
            planned[spec.server] = checker.next_run
        await asyncio.sleep(2.05)
        await runner.close()
        return started

    started = asyncio.run(main())
    first = sorted(t - started for t in planned.values())
    assert len(first) == 1000 and first[0] >= 0 and first[-1] < 1.0 + 1e-6
    bins = [sum(1 for t in first if k / 10 <= t < (k + 1) / 10) for k in range(10)]
    assert all(50 <= n <= 150 for n in bins), bins  # ~100 each: no burst
    assert calls, "no attempt ran"
    for server, times in calls.items():
        # Each attempt k is never before its phase: planned first run + k intervals.
        for k, at in enumerate(times):
            assert at >= planned[server] + k * 1.0 - 1e-6, (server, k, at)


def test_max_in_flight_queues_the_excess() -> None:
    specs = [tcp(f"rs{i}", 80, delay_loop=10.0, warmup=0.0) for i in range(40)]
    done: list[str] = []

    async def main() -> HealthRunner:
        async def slow(spec: CheckSpec) -> CheckResult:
            await asyncio.sleep(0.1)
            done.append(spec.server)
            return CheckResult(True, "slow")

        runner = HealthRunner(specs, check=slow, max_in_flight=5)
        runner.start()
        await until(lambda: len(done) == 40)
        await runner.close()
        return runner

    runner = asyncio.run(main())
    assert runner.peak_in_flight == 5 and runner.queued == 35


def test_a_check_that_raises_is_a_failure_and_the_runner_goes_on() -> None:
    changes: list[ServerChange] = []

    async def main() -> HealthRunner:
        async def broken(spec: CheckSpec) -> CheckResult:
            raise RuntimeError("bug")

        runner = HealthRunner(
            [tcp("rs", 80, delay_loop=0.05, warmup=0.0, retry=0)], changes.append, check=broken
        )
        runner.start()
        await until(lambda: runner.attempts >= 3)
        await runner.close()
        return runner

    asyncio.run(main())
    assert [c.up for c in changes] == [False]
    assert "internal error: RuntimeError('bug')" in changes[0].reason


def test_runner_against_a_real_server_follows_retry_and_delay_before_retry() -> None:
    """alpha: down until the first success; then 503s bring it down after retry + 1
    failures, the retries delay_before_retry apart; a refused port stays down quietly."""
    changes: list[tuple[float, ServerChange]] = []

    async def main() -> HealthRunner:
        loop = asyncio.get_running_loop()
        async with toggle_server() as toggle:
            timing: dict[str, Any] = {
                "delay_loop": 0.5,
                "delay_before_retry": 0.1,
                "retry": 2,
                "alpha": True,
                "warmup": 0.0,
                "connect_timeout": 0.5,
            }
            specs: list[CheckSpec] = [
                HttpCheck(
                    server="web",
                    connect_ip="127.0.0.1",
                    connect_port=toggle.port,
                    path="/",
                    receive="ok",
                    **timing,
                ),
                tcp("web", toggle.port, **timing),
                tcp("dead", closed_port(), **timing),
            ]
            runner = HealthRunner(specs, lambda c: changes.append((loop.time(), c)))
            runner.start()
            assert runner.health == {"web": ServerHealth(False), "dead": ServerHealth(False)}
            await until(lambda: len(changes) == 1)
            assert runner.health["web"].up
            toggle.healthy = False
            await until(lambda: len(changes) == 2)
            toggle.healthy = True
            await until(lambda: len(changes) == 3)
            await runner.close()
            return runner

    runner = asyncio.run(main())
    (_, up), (_, down), (_, again) = changes
    assert up.server == "web" and up.up and up.old == ServerHealth(False)
    assert down.server == "web" and not down.up
    assert down.reason.endswith("failed after 2 retries (status 503 (expected 200-299))")
    assert again.up and runner.health["dead"] == ServerHealth(False)
    checker = runner.servers["web"].checkers[0]
    failures = [e for e in checker.history if not e.ok]
    assert len(failures) == 3
    spacing = [b.started - a.finished for a, b in itertools.pairwise(failures)]
    assert all(0.09 <= s <= 0.4 for s in spacing), spacing  # delay_before_retry apart


def test_closing_the_runner_kills_a_running_misc_command(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    spec = MiscCheck(
        server="rs",
        command=f"/bin/sh -c 'echo $$ > {pidfile}; exec sleep 60'",
        delay_loop=100.0,
        warmup=0.0,
    )

    async def main() -> None:
        runner = HealthRunner([spec])
        runner.start()
        await until(lambda: pidfile.exists() and pidfile.read_text().endswith("\n"))
        await runner.close()

    asyncio.run(main())
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not gone(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the MISC command outlived the runner")
        time.sleep(0.01)


# --- the agent -------------------------------------------------------------------------------


def test_agent_end_to_end_initial_map_changes_status_and_stop() -> None:
    changes: list[ServerChange] = []
    timing: dict[str, Any] = {
        "delay_loop": 0.2,
        "delay_before_retry": 0.05,
        "retry": 1,
        "warmup": 0.0,
        "connect_timeout": 0.5,
    }

    async def main() -> HealthAgent:
        loop = asyncio.get_running_loop()
        async with toggle_server() as toggle:
            specs: list[CheckSpec] = [
                HttpCheck(server="web", connect_ip="127.0.0.1", connect_port=toggle.port, **timing),
                tcp("dead", closed_port(), **timing),
                MiscCheck(server="misc", command="/bin/sh -c 'exit 12'", dynamic=True, **timing),
            ]
            agent = HealthAgent(specs, changes.append, weights={"misc": 3})
            agent.start(loop)
            try:
                await until(lambda: agent.ready)
                # keepalived without alpha: every server starts up.
                assert set(agent.health) == {"web", "dead", "misc"}
                await until(lambda: len(changes) >= 2)
                by_server = {c.server: c for c in changes}
                assert not by_server["dead"].up
                assert by_server["dead"].reason.endswith("failed (connection refused)")
                assert by_server["misc"].health == ServerHealth(True, 10)
                assert abs(by_server["dead"].now - time.monotonic()) < 2  # same clock
                toggle.healthy = False
                await until(lambda: not agent.health["web"].up)
                toggle.healthy = True
                await until(lambda: agent.health["web"].up)
                agent.request_status()
                await until(lambda: bool(agent.status))
                web = agent.status["servers"]["web"]
                assert web["up"] and web["checks"][0]["history"]
                assert agent.status["runner"]["checks"] == 3
            finally:
                agent.stop()
            return agent

    agent = asyncio.run(main())
    assert agent.proc is not None and agent.proc.returncode == 0
    assert [c.server for c in changes].count("web") == 2


def test_agent_refuses_a_bad_config_with_exit_status_2_and_is_not_respawned() -> None:
    exits: list[str] = []

    async def main() -> HealthAgent:
        spec = MiscCheck(server="rs", command="/bin/true", user="no-such-user-here")
        agent = HealthAgent([spec], on_exit=exits.append, respawn=0.05)
        agent.start(asyncio.get_running_loop())
        await until(lambda: bool(exits))
        await asyncio.sleep(0.2)
        agent.stop()
        return agent

    agent = asyncio.run(main())
    assert agent.error is not None and "no user" in agent.error
    assert agent.proc is not None and agent.proc.returncode == 2 and agent.restarts == 0
    assert exits == [agent.error]


def test_a_dead_agent_is_respawned_carrying_the_health_over() -> None:
    changes: list[ServerChange] = []
    exits: list[str] = []

    async def main() -> tuple[int, int]:
        specs = [tcp("dead", closed_port(), delay_loop=0.2, warmup=0.0, retry=0)]
        agent = HealthAgent(specs, changes.append, on_exit=exits.append, respawn=0.1)
        agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: not agent.health.get("dead", ServerHealth(True)).up)
            first = agent.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            await until(lambda: agent.restarts == 1 and agent.ready)
            second = agent.pid
            assert second is not None and second != first
            await asyncio.sleep(0.5)  # the new agent keeps checking; nothing flaps
        finally:
            agent.stop()
        return first, second

    first, second = asyncio.run(main())
    assert exits == ["health agent ended (exit status -9)"]
    assert [c.up for c in changes] == [False]  # down once, never "up" again after the respawn
    assert gone(first) and gone(second)


def test_a_respawned_agent_carries_a_dynamic_weight_over(tmp_path: Path) -> None:
    """misc_dynamic after a respawn: the weight the dead agent reported stands (no flip
    back to the configured weight until the check runs); the next result moves it."""
    status = tmp_path / "status"
    status.write_text("7\n")
    changes: list[ServerChange] = []
    spec = MiscCheck(
        server="rs",
        command=f"/bin/sh -c 'exit $(cat {status})'",
        dynamic=True,
        delay_loop=0.2,
        warmup=0.0,
    )

    ready: list[ServerHealth] = []

    async def main() -> None:
        agent = HealthAgent(
            [spec],
            changes.append,
            weights={"rs": 3},
            respawn=0.1,
            on_ready=lambda: ready.append(agent.health["rs"]),
        )
        agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: agent.health.get("rs") == ServerHealth(True, 5))
            first = agent.pid
            assert first is not None
            status.write_text("11\n")  # what the next agent's first check will say
            os.kill(first, signal.SIGKILL)
            await until(lambda: agent.restarts == 1 and agent.health["rs"].weight == 9)
        finally:
            agent.stop()

    asyncio.run(main())
    # Each agent's initial map, when it said ready: the second one started at 5.
    assert ready == [ServerHealth(True, None), ServerHealth(True, 5)]
    # Changes: the weight 5 (from the configured 3), then 9 (in the second agent);
    # never the configured weight in between.
    assert [c.weight for c in changes] == [5, 9]


def test_runner_carries_an_initial_weight_on_its_dynamic_checks() -> None:
    misc = [MiscCheck(server="rs", command="x", dynamic=True) for _ in range(2)]
    specs: list[CheckSpec] = [*misc, tcp("rs", 9), tcp("plain", 9)]

    async def main() -> tuple[dict[str, ServerHealth], dict[str, ServerHealth]]:
        carried = HealthRunner(specs, weights={"rs": 4}, initial_weights={"rs": 6, "plain": 2})
        down = HealthRunner(
            specs, weights={"rs": 4}, initial={"rs": False}, initial_weights={"rs": 6}
        )
        carried.start()
        down.start()
        try:
            return carried.health, down.health
        finally:
            await carried.close()
            await down.close()

    carried, down = asyncio.run(main())
    # keepalived's sum over two dynamic checks (6 - 4) + (4 - 4) = 6; nothing to carry
    # for a server without a dynamic check, or one that starts down.
    assert carried == {"rs": ServerHealth(True, 6), "plain": ServerHealth(True, None)}
    assert down["rs"] == ServerHealth(False, None)


def test_a_thousand_checks_config_goes_through_the_pipe() -> None:
    """A config line of a few hundred KiB (more than a pipe holds) is written without blocking."""
    port = closed_port()
    specs = [
        tcp(f"rs{i}", port, delay_loop=3600.0, name=f"check {i:04d} " + "x" * 100)
        for i in range(1000)
    ]
    assert len(config_line(AgentConfig(tuple(specs)))) > 1 << 16

    async def main() -> HealthAgent:
        agent = HealthAgent(specs)
        agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: agent.ready, timeout=20)
            agent.request_status()
            await until(lambda: len(agent.status.get("servers", ())) == 1000, timeout=20)
            agent.request_status(details=False)
            await until(lambda: "summary" in agent.status)
        finally:
            agent.stop()
        return agent

    agent = asyncio.run(main())
    assert len(agent.health) == 1000 and all(h.up for h in agent.health.values())
    assert agent.status["summary"] == {"servers": 1000, "down": 0}
    assert agent.status["runner"]["checks"] == 1000


def test_agent_exits_when_its_stdin_closes() -> None:
    line = config_line(AgentConfig((tcp("rs", closed_port(), delay_loop=0.1),)))
    proc = subprocess.Popen(
        AGENT_COMMAND, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        out, _ = proc.communicate(line, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.splitlines()[-1] == b'{"type":"ready"}' or b'"type":"ready"' in out


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b'{"type":"config","version":9,"checks":[]}\n',
        b'{"type":"config","version":1,"checks":[{"kind":"tcp","server":"x"}]}\n',
        b'{"type":"config","version":1,"checks":[],"weights":{"a":-1}}\n',
    ],
)
def test_agent_answers_a_bad_first_line_with_an_error(line: bytes) -> None:
    proc = subprocess.run(AGENT_COMMAND, input=line, capture_output=True, timeout=10, check=False)
    assert proc.returncode == 2 and proc.stdout.startswith(b'{"type":"error"')
