"""The loop's gate: helper threads doing long work in Python wait while the event loop works.

Why: the GIL convoy
===================

CPython's GIL is not priority-aware and it is released around every system
call. While a helper thread renders (a scrape of 2,000 instances: some
300 ms of Python), each ``sendmsg`` of the loop hands the GIL to it, and the
loop gets it back only when it asks again and the helper is told to drop it,
one switch interval later (:data:`vrrpy.runtime.realtime.SWITCH_INTERVAL`).
Measured (``perf trace`` of vrrpyd's loop thread, bench/scrape_bench.py,
2,000 instances, scraped every second): each advert the loop sent then cost
0.35 ms instead of 0.03, a pass of the loop with a few dozen adverts due took
up to 96 ms, and the 10 ms Master on the same loop had gaps of 36 to 60 ms:
its Backup took over several times in 10 s.

How: the loop holds a lock while it works
=========================================

:meth:`LoopGate.new_loop` builds an asyncio event loop whose selector
releases the gate's lock just before it waits for the kernel (the loop is
idle) and takes it back as soon as the wait ends (the loop works). A helper
calls :meth:`LoopGate.wait_idle` often (every few dozen samples of a
render): free, it costs one uncontended lock acquisition; while the loop
works, it blocks on the lock *without the GIL*, so the loop's pass runs
without a convoy, and it is woken when the loop goes back to its wait. The
loop pays two uncontended lock operations per pass.

A helper that never calls it is not held back: the gate is advisory. A loop
not built by :meth:`new_loop` never closes the gate, so ``wait_idle``
returns at once (tests, embedders with their own loop).
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

T = TypeVar("T")

__all__ = ["MAX_WAIT", "LoopGate"]

MAX_WAIT: Final = 0.05
"""Seconds a helper waits at most for one pass of the loop: a loop busy for longer (a
start of 2,000 instances) delays a scrape, it does not starve it."""


class LoopGate:
    """Closed while the event loop works, open while it waits for the kernel."""

    __slots__ = ("_held", "_lock", "timeouts", "waits")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held = False  # touched only by the loop's thread
        self.waits = 0
        """Calls of :meth:`wait_idle` that found the loop working and waited."""
        self.timeouts = 0
        """Of those, waits that ended at their timeout, the loop still working."""

    def new_loop(self) -> asyncio.AbstractEventLoop:
        """An event loop that closes the gate while it works (``asyncio.Runner``'s
        ``loop_factory``)."""
        return asyncio.SelectorEventLoop(_GatedSelector(self))

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """``asyncio.run(main)`` on a loop of :meth:`new_loop`."""
        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=self.new_loop) as runner:
                return runner.run(main)
        asyncio.set_event_loop_policy(_GatedPolicy(self))  # pragma: no cover - 3.10
        return asyncio.run(main)  # pragma: no cover - 3.10

    @property
    def closed(self) -> bool:
        """Whether the loop is working now."""
        return self._lock.locked()

    def wait_idle(self, timeout: float = MAX_WAIT) -> bool:
        """Return when the loop is waiting for the kernel, or after ``timeout`` seconds;
        True if it had to wait (the GIL was free meanwhile)."""
        lock = self._lock
        if lock.acquire(blocking=False):
            lock.release()
            return False
        self.waits += 1
        if lock.acquire(timeout=timeout):
            lock.release()
        else:
            self.timeouts += 1
        return True

    # The loop's side (its selector, in its thread).

    def _open(self) -> None:
        if self._held:
            self._held = False
            self._lock.release()

    def _close(self) -> None:
        if not self._held:
            self._lock.acquire()
            self._held = True


class _GatedSelector(selectors.EpollSelector):
    """``epoll``, with the gate open exactly while the loop waits in it."""

    def __init__(self, gate: LoopGate) -> None:
        super().__init__()
        self._gate = gate

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        gate = self._gate
        gate._open()
        try:
            return super().select(timeout)
        finally:
            gate._close()

    def close(self) -> None:
        self._gate._open()
        super().close()


class _GatedPolicy(asyncio.DefaultEventLoopPolicy):  # pragma: no cover - 3.10 only
    """Python 3.10 has no ``asyncio.Runner``: ``asyncio.run`` asks the policy for its loop."""

    def __init__(self, gate: LoopGate) -> None:
        super().__init__()
        self._gate = gate

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return self._gate.new_loop()
