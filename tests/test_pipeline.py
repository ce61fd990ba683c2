"""The transition pipeline: order, serialisation, failures that cost only themselves.

:class:`Pipeline` is driven on a real event loop with small Python backends
that record what they were called with; the runner-level tests use the fake
host parts of ``test_instance_faults`` (no root): addresses wait for
``prepare``, a refusal keeps the node out of Master, and a hung backend never
holds the protocol's timers.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from ipaddress import IPv4Address

import pytest

from test_instance_faults import VIP, loop, runner_for
from vrrpy.backends import Backend, Pipeline, Refused, TransitionEvent
from vrrpy.codec import VRRP_MULTICAST_V4, Advertisement, PacketInfo, encode_vrrp
from vrrpy.core import State
from vrrpy.runtime import instance as instance_module

__all__ = ["loop"]


class Recorder(Backend):
    """Appends (name, phase, new state) to a shared log; may hang, fail or refuse."""

    def __init__(
        self,
        name: str,
        log: list[tuple[str, str, str]],
        delay: float = 0.0,
        fail: bool = False,
        refuse: bool = False,
        timeout: float = 1.0,
    ) -> None:
        self.name = name
        self.log = log
        self.delay = delay
        self.fail = fail
        self.refuse = refuse
        self.timeout = timeout

    async def prepare(self, event: TransitionEvent) -> None:
        self.log.append((self.name, "prepare", event.new.value))
        if self.refuse:
            raise Refused("disk Outdated")

    async def transition(self, event: TransitionEvent) -> None:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("bug")
        self.log.append((self.name, "transition", event.new.value))


class Hung(Backend):
    """Takes no part in becoming Master; its transition step never ends."""

    name = "hung"
    timeout = 30.0

    async def transition(self, event: TransitionEvent) -> None:
        await asyncio.sleep(60)


def finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the runner left running on the test's loop, and let it unwind."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()

    async def unwound() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)

    loop.run_until_complete(unwound())


def event(old: State, new: State) -> TransitionEvent:
    return TransitionEvent("VI_1", old, new, "test", 100)


async def settle(pipeline: Pipeline) -> None:
    for _ in range(200):
        if not pipeline.busy:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the pipeline did not settle")


def test_backends_run_in_order_and_in_reverse_when_leaving_master() -> None:
    async def scenario() -> list[tuple[str, str, str]]:
        log: list[tuple[str, str, str]] = []
        pipeline = Pipeline(
            "VI_1", [Recorder("a", log), Recorder("b", log)], asyncio.get_running_loop()
        )
        pipeline.transition(event(State.BACKUP, State.MASTER))
        await settle(pipeline)
        pipeline.transition(event(State.MASTER, State.BACKUP))
        await settle(pipeline)
        return log

    assert asyncio.run(scenario()) == [
        ("a", "transition", "MASTER"),
        ("b", "transition", "MASTER"),
        ("b", "transition", "BACKUP"),
        ("a", "transition", "BACKUP"),
    ]


def test_a_failing_or_hung_backend_is_counted_and_the_next_one_still_runs() -> None:
    async def scenario() -> tuple[list[tuple[str, str, str]], dict[str, dict[str, object]]]:
        log: list[tuple[str, str, str]] = []
        backends = [
            Recorder("bug", log, fail=True),
            Recorder("hung", log, delay=60, timeout=0.05),
            Recorder("ok", log),
        ]
        pipeline = Pipeline("VI_1", backends, asyncio.get_running_loop())
        pipeline.transition(event(State.BACKUP, State.MASTER))
        await settle(pipeline)
        return log, pipeline.status()

    log, status = asyncio.run(scenario())
    assert log == [("ok", "transition", "MASTER")]
    assert status["bug"]["failures"] == 1 and "RuntimeError" in str(status["bug"]["last_error"])
    assert status["hung"]["timeouts"] == 1


def test_transitions_are_serialised_and_the_latest_queued_wins() -> None:
    async def scenario() -> list[tuple[str, str, str]]:
        log: list[tuple[str, str, str]] = []
        pipeline = Pipeline("VI_1", [Recorder("slow", log, delay=0.05)], asyncio.get_running_loop())
        pipeline.transition(event(State.INITIALIZE, State.BACKUP))
        pipeline.transition(event(State.BACKUP, State.FAULT))  # replaced in the queue
        pipeline.transition(event(State.FAULT, State.BACKUP))
        await settle(pipeline)
        return log

    assert asyncio.run(scenario()) == [("slow", "transition", "BACKUP")] * 2


def test_leaving_master_cancels_a_service_start_still_running() -> None:
    async def scenario() -> tuple[list[tuple[str, str, str]], dict[str, dict[str, object]]]:
        log: list[tuple[str, str, str]] = []
        pipeline = Pipeline(
            "VI_1", [Recorder("svc", log, delay=0.2, timeout=5)], asyncio.get_running_loop()
        )
        pipeline.transition(event(State.BACKUP, State.MASTER))
        await asyncio.sleep(0.02)
        pipeline.transition(event(State.MASTER, State.BACKUP))
        await settle(pipeline)
        return log, pipeline.status()

    log, status = asyncio.run(scenario())
    assert log == [("svc", "transition", "BACKUP")]  # the start never completed
    assert status["svc"]["cancelled"] == 1


# --------------------------------------------------------- in the runner


def test_addresses_wait_for_prepare_and_a_refusal_keeps_the_node_out_of_master(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instance_module, "REFUSAL_HOLD", 0.05)
    log: list[tuple[str, str, str]] = []
    runner, ops, sock, _, _ = runner_for(loop, monkeypatch, priority=255)
    runner.pipeline = Pipeline("VI_1", [Recorder("drbd", log, refuse=True)], loop)
    runner.start()  # the owner: Master at once, but the addresses wait for prepare
    assert runner.router is not None and runner.router.state is State.MASTER
    assert VIP not in ops.on
    loop.run_until_complete(asyncio.sleep(0.01))
    assert runner.router.state is State.FAULT
    assert VIP not in ops.on
    assert sock.payloads[-1][2] == 0  # resigned with priority 0
    assert runner.status()["faults"] == ["backend drbd refused Master: disk Outdated"]
    # The disk is good now: after the hold the node is asked again and takes over.
    runner.pipeline.backends[0].refuse = False  # type: ignore[attr-defined]
    loop.run_until_complete(asyncio.sleep(0.1))
    assert runner.router.state is State.MASTER
    assert VIP in ops.on
    assert ("drbd", "transition", "MASTER") in log
    finish(loop)


def test_a_hung_backend_never_holds_the_protocol_timers(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, ops, _, _, _ = runner_for(loop, monkeypatch, priority=255)
    runner.pipeline = Pipeline("VI_1", [Hung()], loop)
    runner.start()
    assert VIP in ops.on  # no prepare phase: the addresses go at once
    ticks: list[float] = []

    async def ticking() -> None:
        for _ in range(20):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.002)

    loop.run_until_complete(ticking())
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.05
    assert runner.pipeline.busy  # still waiting on the hung backend, beside the loop
    finish(loop)


class RxLower(Backend):
    name = "rx"

    def __init__(self) -> None:
        self.events: list[TransitionEvent] = []

    async def master_rx_lower_pri(self, event: TransitionEvent) -> None:
        self.events.append(event)


def test_a_master_hearing_a_weaker_router_calls_master_rx_lower_pri(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _, _, _, _ = runner_for(loop, monkeypatch, priority=255)
    backend = RxLower()
    runner.pipeline = Pipeline("VI_1", [backend], loop)
    runner.start()
    peer = IPv4Address("192.0.2.12")
    weaker = Advertisement(3, 51, 100, 10, (VIP.ip,))
    data = encode_vrrp(weaker, peer, VRRP_MULTICAST_V4)
    runner.receive(data, PacketInfo(peer, VRRP_MULTICAST_V4, 255))
    loop.run_until_complete(asyncio.sleep(0.01))
    assert [e.reason for e in backend.events] == ["lower priority advert from 192.0.2.12"]
    assert backend.events[0].old is State.MASTER and backend.events[0].new is State.MASTER
    finish(loop)


class Failing(Backend):
    name = "svc"
    timeout = 1.0
    fault_on_failure = True

    def __init__(self) -> None:
        self.fail = True

    async def transition(self, event: TransitionEvent) -> None:
        if self.fail and event.new is State.MASTER:
            raise RuntimeError("the service did not start")


def test_a_failing_backend_with_fault_on_failure_takes_the_node_out_of_master(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(instance_module, "REFUSAL_HOLD", 0.05)
    runner, ops, sock, _, _ = runner_for(loop, monkeypatch, priority=255)
    backend = Failing()
    runner.pipeline = Pipeline("VI_1", [backend], loop)
    runner.start()
    loop.run_until_complete(asyncio.sleep(0.01))
    assert runner.router is not None and runner.router.state is State.FAULT
    assert runner.status()["faults"] == [
        "backend svc failed: RuntimeError: the service did not start"
    ]
    assert VIP not in ops.on and sock.payloads[-1][2] == 0
    backend.fail = False
    loop.run_until_complete(asyncio.sleep(0.1))
    assert runner.router.state is State.MASTER and VIP in ops.on
    finish(loop)


class Priorities(Backend):
    name = "prio"

    def __init__(self) -> None:
        self.seen: list[tuple[int, str]] = []

    async def priority_changed(self, event: TransitionEvent) -> None:
        self.seen.append((event.priority, event.new.value))


def test_a_priority_change_is_told_to_the_backends_that_want_it(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _, _, _, _ = runner_for(loop, monkeypatch, priority=100)
    backend = Priorities()
    runner.pipeline = Pipeline("VI_1", [backend], loop)
    runner.start()
    runner.set_priority(70)
    runner.set_priority(70)  # no change: nothing told
    loop.run_until_complete(asyncio.sleep(0.01))
    assert backend.seen == [(70, "BACKUP")]
    finish(loop)


class Standing(Backend):
    """A check whose answer the test sets (a DRBD disk that is Outdated, then UpToDate)."""

    name = "disk"
    timeout = 1.0
    check_interval = 0.01

    def __init__(self) -> None:
        self.why: str | None = "local disk is Outdated"
        self.prepared = 0

    async def check(self) -> str | None:
        return self.why

    async def prepare(self, event: TransitionEvent) -> None:
        self.prepared += 1


def test_a_failing_check_holds_the_node_in_fault_before_any_election(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _, sock, _, _ = runner_for(loop, monkeypatch, priority=200)
    backend = Standing()
    runner.pipeline = Pipeline("VI_1", [backend], loop)
    runner.start()
    loop.run_until_complete(asyncio.sleep(0.05))
    assert runner.router is not None and runner.router.state is State.FAULT
    assert runner.status()["faults"] == ["backend disk: local disk is Outdated"]
    assert sock.payloads == []  # never stood: no advert, so no healthy Master is preempted
    assert backend.prepared == 0
    # A changed reason is taken before the old one goes: it never passes Backup.
    backend.why = "this node is a resync target"
    loop.run_until_complete(asyncio.sleep(0.05))
    assert runner.status()["faults"] == ["backend disk: this node is a resync target"]
    assert runner.router.state is State.FAULT
    backend.why = None
    loop.run_until_complete(asyncio.sleep(0.05))
    assert runner.router.state is State.BACKUP and runner.status()["faults"] == []
    stats = runner.pipeline.status()["disk"]
    assert stats["last_check"] == "ok" and stats["check_failures"] >= 2
    # Stopping lets the check's reasons go: a restart asks anew.
    backend.why = "local disk is Outdated"
    loop.run_until_complete(asyncio.sleep(0.05))
    runner.stop()
    assert runner.pending_faults == {}
    finish(loop)


def test_a_check_that_raises_or_hangs_means_may_not_stand() -> None:
    class Broken(Backend):
        timeout = 0.02
        check_interval = 0.01

        def __init__(self, name: str, hang: bool) -> None:
            self.name = name
            self.hang = hang

        async def check(self) -> str | None:
            if self.hang:
                await asyncio.sleep(60)
            raise OSError("no such resource")

    async def scenario() -> list[tuple[str | None, str | None]]:
        reports: list[tuple[str | None, str | None]] = []
        backends = [Broken("broken", False), Broken("hung", True)]
        pipeline = Pipeline("VI_1", backends, asyncio.get_running_loop())
        pipeline.start_checks(lambda new, old: reports.append((new, old)))
        await asyncio.sleep(0.1)
        await pipeline.close()
        return reports

    reports = asyncio.run(scenario())
    assert ("backend broken: check failed: OSError: no such resource", None) in reports
    assert ("backend hung: check timed out after 0.02 s", None) in reports
    assert len(reports) == 2  # an unchanged answer is not reported again


class Burner(Backend):
    """Computes for a while without awaiting, and says which thread it ran in."""

    name = "burner"
    timeout = 5.0

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.threads: list[str] = []

    async def transition(self, event: TransitionEvent) -> None:
        import threading

        self.threads.append(threading.current_thread().name)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            pass


def test_off_loop_runs_a_cpu_burning_backend_beside_the_loop_not_on_it() -> None:
    from vrrpy.backends import OffLoop

    async def scenario() -> tuple[float, list[str], dict[str, object]]:
        burner = Burner(0.3)
        pipeline = Pipeline("VI_1", [OffLoop(burner)], asyncio.get_running_loop())
        pipeline.transition(event(State.BACKUP, State.MASTER))
        ticks = [time.monotonic()]
        while pipeline.busy:
            await asyncio.sleep(0.002)
            ticks.append(time.monotonic())
        await pipeline.close()
        worst = max(b - a for a, b in itertools.pairwise(ticks))
        return worst, burner.threads, pipeline.status()["burner"]

    worst, threads, stats = asyncio.run(scenario())
    assert threads == ["vrrpy-backend-burner"]
    assert stats["failures"] == 0 and stats["calls"] == 1
    # The loop kept ticking while the backend burned 0.3 s (on the loop it would
    # have stopped for all of it; the GIL hands over within a switch interval).
    assert worst < 0.25


def test_off_loop_cancels_across_threads_at_the_timeout() -> None:
    from vrrpy.backends import OffLoop

    class Sleeper(Backend):
        name = "sleeper"
        timeout = 0.05

        def __init__(self) -> None:
            self.cancelled = False

        async def transition(self, event: TransitionEvent) -> None:
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                self.cancelled = True
                raise

    async def scenario() -> tuple[bool, dict[str, object], OffLoop]:
        sleeper = Sleeper()
        wrapped = OffLoop(sleeper)
        pipeline = Pipeline("VI_1", [wrapped], asyncio.get_running_loop())
        pipeline.transition(event(State.BACKUP, State.MASTER))
        await settle(pipeline)
        await asyncio.sleep(0.05)
        await pipeline.close()
        return sleeper.cancelled, pipeline.status()["sleeper"], wrapped

    cancelled, stats, wrapped = asyncio.run(scenario())
    assert stats["timeouts"] == 1
    assert cancelled  # the task on the backend's own loop was cancelled too
    assert wrapped._thread is None  # close stopped its thread


def test_off_loop_keeps_a_backend_without_prepare_out_of_the_prepare_phase() -> None:
    from vrrpy.backends import OffLoop, implements

    assert not implements(OffLoop(Hung()), "prepare")
    assert implements(OffLoop(Standing()), "prepare") and implements(OffLoop(Standing()), "check")
    loop = asyncio.new_event_loop()
    try:
        assert not Pipeline("x", [OffLoop(Hung())], loop).prepares
    finally:
        loop.close()
