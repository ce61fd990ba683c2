"""Protocol timers with sub-millisecond precision: a Linux timerfd driven by the event loop.

asyncio's own ``call_at`` wakes through ``epoll_wait``, whose timeout is whole
milliseconds rounded up: a deadline is met up to ~1 ms late, and at a 10 ms
advert interval that is visible as jitter on the wire and as extra failover
time. A ``timerfd`` armed at the absolute deadline (CLOCK_MONOTONIC, the clock
behind ``loop.time()``) wakes the loop within tens of microseconds instead.

One timerfd serves every instance: a heap of deadlines, the fd always armed at
the earliest. Where timerfd is unavailable (not Linux), :func:`make_timers`
falls back to the loop's ``call_at``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import heapq
import itertools
import os
from collections.abc import Callable
from typing import Protocol

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = os.O_CLOEXEC
_TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


class _Itimerspec(ctypes.Structure):
    _fields_ = (("it_interval", _Timespec), ("it_value", _Timespec))


class TimerHandle(Protocol):
    """What a scheduled callback gives back: it can be cancelled."""

    def cancel(self) -> None: ...


class Timers(Protocol):
    """Schedules callbacks at absolute ``loop.time()`` deadlines."""

    def call_at(
        self, when: float, callback: Callable[[], object], slack: float = 0.0, order: float = 0.0
    ) -> TimerHandle: ...

    def close(self) -> None: ...

    @property
    def stall(self) -> float:
        """How long the process was not running before the current wake-up (seconds)."""
        ...


class _Entry:
    __slots__ = ("callback", "cancelled", "slack", "when")

    def __init__(self, when: float, callback: Callable[[], object], slack: float) -> None:
        self.when = when
        self.callback = callback
        self.slack = slack
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class TimerfdTimers:
    """Callbacks at absolute deadlines, woken by one timerfd registered with the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        self._settime = libc.timerfd_settime
        self._settime.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        )
        fd = libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self._fd = fd
        self._loop = loop
        self._heap: list[tuple[float, float, int, _Entry]] = []
        self._seq = itertools.count()
        self._armed: float | None = None
        self._armed_at = 0.0
        self._stall = 0.0
        self._firing = False
        self._spec = _Itimerspec()
        loop.add_reader(fd, self._fire)

    def call_at(
        self, when: float, callback: Callable[[], object], slack: float = 0.0, order: float = 0.0
    ) -> TimerHandle:
        """Run ``callback`` when ``loop.time()`` reaches ``when``.

        With ``slack``, the callback may run up to that much earlier if the
        timerfd is awake anyway for another deadline: checks that can be made
        early then share one wake-up instead of paying one each. Callbacks due
        at the same time run by ascending ``order`` (then first come, first
        served): a 10 ms Master's advert goes before a hundred 1 s ones.
        """
        entry = _Entry(when, callback, slack)
        # Ordered to the microsecond: two deadlines computed differently for the same
        # instant (a beat of 10 ms and one of 100 ms) may differ in the last bits.
        heapq.heappush(self._heap, (round(when, 6), order, next(self._seq), entry))
        if not self._firing and (self._armed is None or when < self._armed):
            self._arm(when)
        return entry

    @property
    def stall(self) -> float:
        """How late the current wake-up came, counted only from when it could have come.

        The timerfd wakes a running process within tens of microseconds: more
        means the process (or the whole machine: a virtual machine whose CPU the
        hypervisor did not run) was stopped. A deadline already past when it was
        armed (the loop was busy with other work) is not a stall, so lateness is
        counted from the later of the deadline and the moment it was armed.
        """
        return self._stall

    def _arm(self, when: float) -> None:
        self._armed = when
        self._armed_at = self._loop.time()
        if when <= 0:
            when = 1e-9
        sec = int(when)
        spec = self._spec
        spec.it_value.tv_sec = sec
        spec.it_value.tv_nsec = max(1, int((when - sec) * 1e9))
        if self._settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def _fire(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._fd, 8)
        now = self._loop.time()
        armed = self._armed
        self._stall = 0.0 if armed is None else max(0.0, now - max(armed, self._armed_at))
        self._armed = None
        self._firing = True  # callbacks re-arm through call_at: one settime at the end
        heap = self._heap
        while heap and heap[0][3].when - heap[0][3].slack <= now:
            entry = heapq.heappop(heap)[3]
            if not entry.cancelled:
                try:
                    entry.callback()
                except Exception as exc:  # one instance's bug must not stop the others
                    self._loop.call_exception_handler(
                        {"message": "vrrpy timer callback failed", "exception": exc}
                    )
            now = self._loop.time()
        self._firing = False
        while heap and heap[0][3].cancelled:
            heapq.heappop(heap)
        if heap:
            self._arm(heap[0][3].when)

    def close(self) -> None:
        """Stop watching and close the timerfd."""
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._heap.clear()


class LoopTimers:
    """The portable fallback: the event loop's own ``call_at`` (millisecond wake-ups)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def call_at(
        self, when: float, callback: Callable[[], object], slack: float = 0.0, order: float = 0.0
    ) -> TimerHandle:
        """Run ``callback`` at ``when`` (loop time); ``slack`` and ``order`` are not used here."""
        return self._loop.call_at(when, callback)

    @property
    def stall(self) -> float:
        """Not measured here (the loop's wake-ups are millisecond-coarse): always 0."""
        return 0.0

    def close(self) -> None:
        """Nothing to release."""


def make_timers(loop: asyncio.AbstractEventLoop) -> Timers:
    """A timerfd-based scheduler on Linux, else the loop's own."""
    try:
        return TimerfdTimers(loop)
    except (OSError, AttributeError):
        return LoopTimers(loop)
