"""Beats (vrrpy.runtime.pacing): one timer entry per instant for the Masters due then, sliced.

A beat of 1,999 Masters at 1 s took 20 ms of one pass of the loop and held a
10 ms Master on the same loop back by as much. These tests drive ``Beats``
with a heap of timers run as ``TimerfdTimers._fire`` runs them, and a clock
that moves a little with every reading, so a beat's time runs out.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from vrrpy.runtime.pacing import BEAT_SLICE, Beats


class Clock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Heap:
    """Timers as TimerfdTimers runs them: by (deadline, order, arrival), every due one."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.heap: list[tuple[float, float, int, float, Callable[[], object]]] = []
        self.seq = itertools.count()
        self.errors: list[Exception] = []

    def call_at(
        self, when: float, callback: Callable[[], object], slack: float = 0.0, order: float = 0.0
    ) -> Any:
        heapq.heappush(self.heap, (round(when, 6), order, next(self.seq), when, callback))

    def run_until(self, t: float) -> None:
        self.clock.now = max(self.clock.now, t)
        while self.heap and self.heap[0][3] <= self.clock.now:
            callback = heapq.heappop(self.heap)[4]
            try:
                callback()
            except Exception as exc:
                self.errors.append(exc)

    @property
    def stall(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


class Master:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail = fail
        self.beat: tuple[float, float] | None = None
        self.wire = None  # never the steady path: Beats hands each one to _on_beat
        self._gridded = False

    def _on_beat(self, taken: object = None, at: float = 0.0) -> None:
        self.beat = None
        self.log.append(self.name)
        if self.fail:
            raise RuntimeError(self.name)


def one_beat(
    count: int, step: float, when: float = 1.0, fail: int | None = None
) -> tuple[Heap, Beats, list[str], list[Master]]:
    """``count`` Masters on one beat at ``when`` (100 cs), a clock moving ``step`` a reading."""
    clock = Clock(step=step)
    timers = Heap(clock)
    beats = Beats(timers, clock)  # type: ignore[arg-type]
    log: list[str] = []
    masters = [Master(f"m{n}", log, fail=(n == fail)) for n in range(count)]
    for m in masters:
        m.beat = beats.join(m, when, 100.0)  # type: ignore[arg-type]
    return timers, beats, log, masters


def test_a_long_beat_lets_a_short_interval_master_due_meanwhile_go_first() -> None:
    # Each reading of the clock (every 16 adverts) is 0.5 ms later.
    timers, beats, log, masters = one_beat(200, BEAT_SLICE / 4)
    fast = Master("fast", log)
    timers.call_at(1.0, lambda: log.append("fast@1.0"), 0.0, 1.0)
    timers.call_at(1.0 + BEAT_SLICE, fast._on_beat, 0.0, 1.0)  # its next advert
    timers.run_until(1.0)
    assert log[0] == "fast@1.0"  # shorter interval first at the same instant
    assert sorted(log[1:]) == sorted([m.name for m in masters] + ["fast"])
    position = log.index("fast")
    assert 1 < position < len(log) - 1, position  # within the beat, not after all of it
    assert beats.slices >= 1
    assert [x for x in log if x.startswith("m")] == [m.name for m in masters]  # in order
    assert not beats._due  # the beat is done and forgotten


def test_a_beat_that_never_runs_out_of_time_goes_in_one_pass() -> None:
    # A fake clock that stands still: the whole beat at once.
    timers, beats, log, masters = one_beat(100, 0.0, when=2.0)
    timers.run_until(2.0)
    assert log == [m.name for m in masters]
    assert beats.slices == 0


@pytest.mark.parametrize("step", [0.0, BEAT_SLICE / 10])
def test_one_masters_fault_does_not_silence_the_others_on_its_beat(step: float) -> None:
    timers, _, log, masters = one_beat(50, step, fail=3)
    timers.run_until(1.0)
    assert log == [m.name for m in masters]
    assert [str(e) for e in timers.errors] == ["m3"]  # reported, once


def test_a_master_that_left_the_beat_is_skipped() -> None:
    timers, _, log, (a, _) = one_beat(2, 0.0)
    a.beat = None  # a transition took it off the beat
    timers.run_until(1.0)
    assert log == ["m1"]
