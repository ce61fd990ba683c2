"""The loop's gate (vrrpy.runtime.gate) and the pacer that waits at it (vrrpy.observe.threads).

Why it exists is in the gate's docstring: a helper thread rendering in Python
took the GIL at each of the loop's system calls. These tests check the
mechanism (order of events, never durations): a helper waiting at the gate
returns only once the loop's work is done and it waits for the kernel again.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable

import pytest

from vrrpy.observe.control import ControlServer
from vrrpy.observe.server import MetricsServer
from vrrpy.observe.threads import MAX_NAP, SLICE, Pacer, paced
from vrrpy.runtime.gate import LoopGate


def test_a_gate_whose_loop_never_ran_is_open() -> None:
    gate = LoopGate()
    assert not gate.closed
    assert gate.wait_idle(0.0) is False
    assert gate.waits == 0


def test_a_helper_waits_until_the_loops_work_is_done() -> None:
    gate = LoopGate()
    inside = threading.Event()
    seen: list[object] = []
    finished = []

    def helper() -> None:
        inside.wait(5)
        seen.append(gate.closed)
        seen.append(gate.wait_idle(5.0))
        seen.append(bool(finished))  # the callback had ended when the wait did

    async def main() -> None:
        loop = asyncio.get_running_loop()
        thread = threading.Thread(target=helper)
        thread.start()

        def work() -> None:
            inside.set()
            time.sleep(0.1)  # the loop is working (the GIL is free, the gate is not)
            finished.append(True)

        loop.call_soon(work)
        await asyncio.sleep(0.2)
        await loop.run_in_executor(None, thread.join)

    gate.run(main())
    assert seen == [True, True, True]
    assert gate.waits == 1 and gate.timeouts == 0
    assert not gate.closed  # the loop's selector opened it when it closed


def test_a_loop_busy_for_longer_than_the_wait_delays_the_helper_but_does_not_hold_it() -> None:
    gate = LoopGate()
    inside = threading.Event()
    result: list[bool] = []
    finished = []

    def helper() -> None:
        inside.wait(5)
        result.append(gate.wait_idle(0.01))
        result.append(bool(finished))

    async def main() -> None:
        thread = threading.Thread(target=helper)
        thread.start()
        inside.set()
        time.sleep(0.3)
        finished.append(True)
        await asyncio.get_running_loop().run_in_executor(None, thread.join)

    gate.run(main())
    assert result == [True, False]  # it waited, then went on while the loop still worked
    assert gate.timeouts == 1


def test_a_loop_not_built_by_the_gate_never_closes_it() -> None:
    gate = LoopGate()

    async def main() -> bool:
        return gate.closed

    assert asyncio.run(main()) is False


def held_at_the_gate(pause: Callable[[], None], pacer: Pacer, gate: LoopGate) -> None:
    """``pause()`` in a thread blocks while the gate is closed and returns once it opens
    (judged by order, not time: the wait is allowed 5 s, far beyond any test)."""
    pacer.max_wait = 5.0
    gate._close()  # as the loop does when its wait ends
    done = threading.Event()
    thread = threading.Thread(target=lambda: (pause(), done.set()))
    thread.start()
    deadline = time.monotonic() + 5
    while gate.waits == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert gate.waits == 1  # it is waiting at the gate
    assert not done.is_set()
    gate._open()
    assert done.wait(5)
    thread.join()
    assert gate.timeouts == 0


def test_the_pacer_waits_at_the_gate_and_naps_only_when_real_time() -> None:
    gate = LoopGate()
    pacer = Pacer(gate)
    held_at_the_gate(pacer, pacer, gate)

    plain = Pacer()
    spin_until = time.monotonic() + 2 * SLICE
    while time.monotonic() < spin_until:
        pass
    plain()
    assert plain.naps == 0  # a time-shared thread is preempted by the kernel anyway
    plain.real_time = True
    spin_until = time.monotonic() + 2 * SLICE
    while time.monotonic() < spin_until:
        pass
    plain()
    assert plain.naps >= 1
    assert MAX_NAP >= SLICE


@pytest.mark.parametrize("count", [0, 1, 31, 32, 33, 100])
def test_paced_calls_its_pause_every_so_many_items(count: int) -> None:
    calls: list[int] = []
    items = list(range(count))
    out = []
    for item in paced(items, lambda: calls.append(len(out)), 32):
        out.append(item)
    assert out == items
    assert calls == [32 * (n + 1) for n in range(count // 32)]
    assert list(paced(items, None)) == items


def test_the_metrics_server_pauses_at_its_gate() -> None:
    gate = LoopGate()
    server = MetricsServer(lambda: None, gate=gate)  # type: ignore[arg-type,return-value]
    held_at_the_gate(server.pause, server.pacer, gate)


def test_a_large_status_is_encoded_instance_by_instance_and_reads_back_whole() -> None:
    server = ControlServer.__new__(ControlServer)
    pauses: list[int] = []
    server.pacer = lambda: pauses.append(1)  # type: ignore[assignment]
    doc = {
        "ok": True,
        "daemon": {"pid": 1, "name": 'quote " and \\'},
        "instances": {
            f"VI_{n}": {"state": "MASTER", "vrid": n, "x": [1, 2.5, None]} for n in range(100)
        },
    }
    data = server._encode(doc)
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert json.loads(data) == doc
    assert len(pauses) == 12  # one every 8 instances
    small = {"ok": True, "instances": {"VI_1": {}}}
    assert json.loads(server._encode(small)) == small
    only = {"instances": {f"VI_{n}": {} for n in range(20)}}
    assert json.loads(server._encode(only)) == only
