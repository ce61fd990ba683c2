"""What the observability threads (``/metrics``, the control socket) share about themselves."""

from __future__ import annotations

import contextlib
import ctypes
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from vrrpy.runtime.gate import LoopGate

__all__ = [
    "MAX_NAP",
    "PACE",
    "REAL_TIME_POLICIES",
    "SLICE",
    "Pacer",
    "is_real_time",
    "name_thread",
    "paced",
]

T = TypeVar("T")

SLICE: Final = 0.001
"""Seconds a real-time helper works before it naps (see :class:`Pacer`)."""
MAX_NAP: Final = 0.005
"""Seconds it naps at most (it naps as long as it worked since the last nap)."""
PACE: Final = 32
"""Items of a long loop between two calls of a pacer (:func:`paced`): tens of
microseconds of Python, well inside the interpreter's switch interval."""

REAL_TIME_POLICIES: Final = frozenset({os.SCHED_FIFO, os.SCHED_RR})
_PR_SET_NAME: Final = 15


def name_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel too (``top -H``, ``/proc/*/task/*/comm``):
    Python's thread names stay inside Python before 3.14. Names are cut at 15 bytes."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)


def is_real_time() -> bool:
    """Whether the calling thread runs under a real-time policy now."""
    try:
        return os.sched_getscheduler(0) in REAL_TIME_POLICIES
    except OSError:  # pragma: no cover - reading one's own policy always works
        return False


class Pacer:
    """What a helper thread calls often during long work (a render, a dump) so that it
    keeps off the event loop's way.

    * **The loop's gate** (:class:`vrrpy.runtime.gate.LoopGate`): while the
      loop works, the call waits, without the GIL, until it goes back to its
      wait for the kernel. Without this, every system call of the loop's pass
      handed the GIL to the helper for a switch interval (the convoy measured
      in :mod:`vrrpy.runtime.gate`).
    * **Naps** (real-time helpers only): after :data:`SLICE` of work, it sleeps
      as long as it worked (at most :data:`MAX_NAP`). The kernel counts a
      real-time thread's time without a sleep against ``RLIMIT_RTTIME``, and a
      real-time thread rendering 2,000 instances (some 300 ms of CPU) without
      a pause would starve what runs time-shared (the kernel's soft-interrupt
      threads that carry adverts between namespaces among them). Half a CPU
      at most: a long render takes twice as long, never more CPU.

    ``real_time`` is set by the helper's thread once its policy is known.
    """

    __slots__ = ("_woke", "gate", "max_wait", "naps", "real_time")

    def __init__(self, gate: LoopGate | None = None) -> None:
        self.gate = gate
        self.max_wait = 0.05
        """Seconds one call waits at most for the loop (``LoopGate.wait_idle``'s timeout)."""
        self.real_time = False
        self.naps = 0
        self._woke = time.monotonic()

    def __call__(self) -> None:
        gate = self.gate
        if gate is not None and gate.wait_idle(self.max_wait):
            self._woke = time.monotonic()  # it slept at the gate
            return
        if self.real_time:
            worked = time.monotonic() - self._woke
            if worked >= SLICE:
                self.naps += 1
                time.sleep(min(MAX_NAP, worked))
                self._woke = time.monotonic()


def paced(items: Iterable[T], pause: Callable[[], None] | None, every: int = PACE) -> Iterator[T]:
    """``items``, with ``pause()`` called after every ``every`` of them (none: as they are)."""
    if pause is None:
        yield from items
        return
    n = 0
    for item in items:
        yield item
        n += 1
        if n == every:
            n = 0
            pause()
