"""The runtime's timerfd scheduler: order, cancellation, re-arming from callbacks, precision."""

from __future__ import annotations

import asyncio
import time

from vrrpy.runtime.timers import TimerfdTimers, make_timers


def test_callbacks_run_in_deadline_order_and_cancelled_ones_do_not() -> None:
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        timers = TimerfdTimers(loop)
        ran: list[str] = []
        now = loop.time()
        timers.call_at(now + 0.030, lambda: ran.append("c"))
        timers.call_at(now + 0.010, lambda: ran.append("a"))
        timers.call_at(now + 0.020, lambda: ran.append("b")).cancel()
        timers.call_at(now + 0.015, lambda: ran.append("b2"))
        await asyncio.sleep(0.05)
        timers.close()
        return ran

    assert asyncio.run(scenario()) == ["a", "b2", "c"]


def test_a_callback_can_schedule_the_next_one_and_deadlines_are_met_closely() -> None:
    async def scenario() -> list[float]:
        loop = asyncio.get_running_loop()
        timers = TimerfdTimers(loop)
        late: list[float] = []
        done = loop.create_future()

        def tick(when: float) -> None:
            late.append(loop.time() - when)
            if len(late) == 50:
                done.set_result(None)
                return
            nxt = when + 0.002
            timers.call_at(nxt, lambda: tick(nxt))

        start = loop.time() + 0.002
        timers.call_at(start, lambda: tick(start))
        await asyncio.wait_for(done, 5)
        timers.close()
        return late

    late = asyncio.run(scenario())
    assert len(late) == 50
    assert min(late) >= 0
    late.sort()
    assert late[len(late) // 2] < 0.001  # asyncio's own call_at is ~1 ms late here


def test_make_timers_prefers_the_timerfd() -> None:
    async def scenario() -> str:
        timers = make_timers(asyncio.get_running_loop())
        kind = type(timers).__name__
        timers.close()
        return kind

    assert asyncio.run(scenario()) == TimerfdTimers.__name__  # Linux: CI and every user


def test_stall_is_the_time_the_process_did_not_run_not_a_deadline_already_past() -> None:
    async def scenario() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        timers = TimerfdTimers(loop)
        seen: list[float] = []
        now = loop.time()
        timers.call_at(now + 0.005, lambda: seen.append(timers.stall))
        time.sleep(0.04)  # stopped: nothing of ours runs for 40 ms
        await asyncio.sleep(0.01)
        timers.call_at(loop.time() - 0.02, lambda: seen.append(timers.stall))  # due already
        await asyncio.sleep(0.01)
        timers.close()
        return seen[0], seen[1]

    stopped, past = asyncio.run(scenario())
    assert stopped >= 0.03
    assert past < 0.01
