"""Moving VRIDs between the urgent and the bulk queue without losing an advert.

The kernel hands one VRRP packet to each of our two raw sockets in turn, in one
loop, and runs each socket's filter as it gets there. Replacing the two
filters takes two system calls; if a packet's turn at the first socket came
before them and its turn at the second after them, both filters could refuse
it, and the advert would be lost. CI saw it happen: one advert lost in a test
that swaps the filters hundreds of times under 4,000 adverts (most likely a
virtual CPU descheduled in the middle of that loop).

The loop runs inside an RCU read-side critical section (``rcu_read_lock`` in
``raw_v4_input`` and ``ipv6_raw_deliver``, and softirq context itself), so an
RCU grace period waits for every delivery that had started. Linux offers one
to user space: ``membarrier(MEMBARRIER_CMD_GLOBAL)`` is ``synchronize_rcu()``
(8-18 ms on the 2-CPU test machines). :class:`Refilter` changes one filter
at a time and lets a grace period pass before the next change, so that a
packet sees only states installed since the last completed grace period --
one step and its predecessor, plus any widenings of the urgent filter made
in between -- and keeps every mix of those covering every packet:

1. widen the urgent filter to the new VRIDs (always safe: it only accepts more);
2. set the bulk filter to leave exactly the new VRIDs to the urgent one (the
   urgent filter already takes all of them);
3. narrow the urgent filter to the new VRIDs (the bulk filter already takes the rest).

Between the steps some packets are queued on both sockets; the read drops
those twins (:meth:`VRRPSocket.read`), which is why :attr:`Refilter.overlapping`
exists. A new request during a change widens the urgent filter at once (a new
Master's conflicts must wake us now) and restarts the grace period; the steps
then go on towards the latest request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import os
import platform
import struct
import time
from collections.abc import Callable

from vrrpy.runtime.vridfilter import ALL_URGENT

logger = logging.getLogger("vrrpy.runtime")

_MEMBARRIER_CMD_GLOBAL = 1
_SYSCALL_MEMBARRIER = {
    # (kernel machine, bytes per pointer of this Python): the number in *this* ABI's
    # table (a 32-bit Python on a 64-bit kernel makes 32-bit system calls).
    ("x86_64", 8): 324,
    ("aarch64", 8): 283,
    ("riscv64", 8): 283,
    ("ppc64le", 8): 365,
    ("s390x", 8): 356,
    ("x86_64", 4): 375,  # i386 Python (an x32 one also has 4-byte pointers: not listed)
    ("i686", 4): 375,
    ("i386", 4): 375,
    ("aarch64", 4): 389,  # 32-bit ARM Python
    ("armv7l", 4): 389,
}
FALLBACK_WAIT = 0.05
"""Seconds to wait instead, where membarrier is unavailable (seccomp, nohz_full, an
architecture not listed): far longer than the kernel's loop over a packet's
sockets takes -- unless the CPU running it is stolen for that long, so this is
best effort, not the guarantee a grace period gives."""

_libc: ctypes.CDLL | None = None
_membarrier: int | None = -1  # -1: not looked up yet; None: unavailable


def _membarrier_number() -> int | None:
    machine = platform.machine()
    number = _SYSCALL_MEMBARRIER.get((machine, struct.calcsize("P")))
    if number is None:
        logger.warning(
            "no membarrier system call known for %s (%d-bit Python): filter changes "
            "wait %.0f ms instead of a grace period",
            machine,
            struct.calcsize("P") * 8,
            FALLBACK_WAIT * 1000,
        )
    return number


def wait_for_deliveries() -> None:
    """Block until every packet the kernel is handing to sockets right now has been queued.

    Runs an RCU grace period through ``membarrier(MEMBARRIER_CMD_GLOBAL)``
    (with one CPU online the kernel skips it: a delivery then runs with bottom
    halves disabled and cannot interleave with our system calls, except on a
    PREEMPT_RT kernel); falls back to sleeping :data:`FALLBACK_WAIT` where that
    is refused. Meant for a worker thread: it takes milliseconds (8-18 ms
    measured on the 2-CPU test machines).
    """
    global _libc, _membarrier
    if _membarrier == -1:
        _membarrier = _membarrier_number()
    number = _membarrier
    if number is not None:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        if _libc.syscall(number, _MEMBARRIER_CMD_GLOBAL, 0, 0) == 0:
            return
        _membarrier = None
        logger.warning(
            "membarrier refused (%s): filter changes wait %.0f ms instead of a grace period",
            os.strerror(ctypes.get_errno()),
            FALLBACK_WAIT * 1000,
        )
    time.sleep(FALLBACK_WAIT)


def wait_inline(then: Callable[[], None]) -> None:
    """A grace-period scheduler that blocks the caller (scripts, tests): wait, then ``then()``."""
    wait_for_deliveries()
    then()


Attach = Callable[[bool, frozenset[int]], None]
"""``attach(urgent, vrids)``: install the urgent filter taking ``vrids`` (``urgent=True``)
or the bulk filter leaving them (``urgent=False``); :data:`ALL_URGENT` means everything."""
AfterDeliveries = Callable[[Callable[[], None]], None]
"""Call the given function once every delivery in progress now has finished."""


class Refilter:
    """The filter-change state machine of one socket pair (no I/O of its own).

    ``urgent`` is the set the urgent filter takes now, ``left`` the set the bulk
    filter leaves to it. At rest they are equal and the programs are exact
    complements. Invariant at every moment: ``left <= urgent``.
    """

    def __init__(self, attach: Attach, after_deliveries: AfterDeliveries, name: str = "") -> None:
        self._attach = attach
        self._after = after_deliveries
        self.name = name
        self.urgent: frozenset[int] = frozenset()
        self.left: frozenset[int] = frozenset()
        self.target: frozenset[int] = frozenset()
        self.busy = False
        """A change was made and its grace period has not ended: packets may see two states."""
        self.changes = 0
        self.closed = False
        self._regrace = False

    @property
    def overlapping(self) -> bool:
        """Whether a packet may be queued on both sockets (the read must look for twins)."""
        return self.busy or self.urgent != self.left

    def request(self, vrids: frozenset[int]) -> None:
        """Make ``vrids`` (and priority 0) wake the loop, the rest wait: now or step by step."""
        if self.closed:
            return
        self.target = vrids
        if self.busy:
            if not vrids <= self.urgent:
                # Not waiting for the steps in flight: a conflict must wake us now.
                self._install(True, self.urgent | vrids)
                self._regrace = True
            return
        self._step()

    def close(self) -> None:
        """Stop changing filters (the sockets are closing)."""
        self.closed = True

    def _step(self) -> None:
        """Make the next change towards ``target``, then wait out its deliveries."""
        self.busy = False
        if self.closed:
            return
        if self._regrace:
            self._regrace = False
            self._wait()
            return
        target = self.target
        if not target <= self.urgent:
            changed = self._install(True, self.urgent | target)
        elif self.left != target:
            changed = self._install(False, target)
        elif self.urgent != self.left:
            changed = self._install(True, self.left)
        else:
            return
        if changed:
            self._wait()

    def _wait(self) -> None:
        self.busy = True
        self._after(self._step)

    def _install(self, urgent: bool, vrids: frozenset[int]) -> bool:
        try:
            self._attach(urgent, vrids)
        except OSError as exc:
            return self._fall_back(exc)
        self.changes += 1
        if urgent:
            self.urgent = vrids
        else:
            self.left = vrids
        return True

    def _fall_back(self, exc: OSError) -> bool:
        """The kernel refused a filter (memory): every advert urgent, reached by the same steps."""
        logger.warning(
            "%s: cannot install a receive filter (%s): every advert wakes the loop",
            self.name,
            exc,
        )
        self.target = ALL_URGENT  # until the next request tries again
        if self.urgent == ALL_URGENT:
            return False  # even the bulk filter's tiny drop-all was refused: stay as we are
        try:
            self._attach(True, ALL_URGENT)
        except OSError:
            logger.error("%s: cannot install any receive filter; left as it was", self.name)
            return False
        self.changes += 1
        self.urgent = ALL_URGENT
        return True


class SharedGrace:
    """One grace period at a time for every socket pair of an event loop.

    Each function handed in runs on the loop after the first grace period that
    *began* after it was handed in (the wait runs in the loop's default
    executor). Hundreds of socket pairs changing filters together at start-up
    then share each wait instead of queueing for the executor's threads.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, executor: concurrent.futures.Executor | None = None
    ) -> None:
        self.loop = loop
        self.executor = executor
        """Where the wait runs (None: the loop's default executor)."""
        self._waiting: list[Callable[[], None]] = []
        self._running = False
        self._dispatching = False

    def __call__(self, then: Callable[[], None]) -> None:
        self._waiting.append(then)
        if not self._running and not self._dispatching:
            self._start()

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        self._running = True
        try:
            future = self.loop.run_in_executor(self.executor, wait_for_deliveries)
        except RuntimeError:  # the executor is shut down: the loop is ending
            self._later(batch)
            return
        future.add_done_callback(lambda done: self._done(batch, done))

    def _done(self, batch: list[Callable[[], None]], future: asyncio.Future[None]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._later(batch)  # no grace period was had: wait it out by the clock
            return
        self._run(batch)

    def _later(self, batch: list[Callable[[], None]]) -> None:
        try:
            self.loop.call_later(FALLBACK_WAIT, self._run, batch)
        except RuntimeError:  # the loop is closed: nothing will read these sockets again
            self._running = False

    def _run(self, batch: list[Callable[[], None]]) -> None:
        self._running = False
        self._dispatching = True  # the next steps of the whole batch share the next wait
        try:
            for then in batch:
                try:
                    then()
                except Exception:
                    logger.exception("a filter change step failed")
        finally:
            self._dispatching = False
        if self._waiting:
            self._start()
