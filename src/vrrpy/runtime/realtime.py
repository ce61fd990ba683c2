"""Real-time scheduling, locked memory and a CPU-time bound for a daemon's event loop.

Why. A Master at 10 ms must send every 10 ms whatever else the machine does.
As an ordinary time-shared process, vrrpyd's largest advert gap on a 2-core
machine was 24 ms under ``stress-ng --cpu 8`` and 53.6 ms under ``stress-ng
--vm 4 --vm-bytes 1G --io 2``: eight busy processes get the CPU before the
loop's timer wake-up does. A real-time thread (``SCHED_RR``) preempts every
time-shared one at once, so the loop runs when its timer fires.

What :func:`apply` does, in the thread that runs the event loop, before any
other thread exists (threads created before it are not touched):

* ``mlockall``: every page mapped now is faulted in and locked, and later
  mappings are locked as they are touched (``MCL_ONFAULT``: a thread's 8 MiB
  stack is not filled in). Even without swap, the kernel drops file-backed
  pages (the interpreter's and extensions' code) under memory pressure and
  reads them back from disk on their next use: a takeover must not wait for
  the disk of a machine busy writing.
* ``RLIMIT_RTTIME`` and a ``SIGXCPU`` handler (``signal.signal``: Python runs
  it between two bytecodes of the main thread even when the event loop is
  stuck in a callback, which a loop-registered handler would wait for). A
  thread that runs ``rlimit_rttime / 2`` microseconds at real-time priority
  without sleeping gets ``SIGXCPU``; the handler drops every real-time thread
  of the process to ``SCHED_OTHER``, logs an error, counts it, and puts them
  back after a back-off (10 s, doubling to 10 min) if a loop was attached with
  :meth:`Realtime.attach`. At ``rlimit_rttime`` (when even the handler could
  not run: the thread is stuck in C code) the kernel kills the process. So a
  bug cannot hold a core for ever, as keepalived's ``vrrp_rlimit_rttime`` does.
* ``sched_setscheduler(SCHED_RR | SCHED_RESET_ON_FORK, priority)``. With
  ``SCHED_RESET_ON_FORK`` every thread and process this thread creates starts
  as an ordinary one (the kernel resets the policy for threads too): a child
  such as ``nft`` never runs at real-time priority, and no library thread
  inherits the loop's priority by accident.
* ``sys.setswitchinterval(SWITCH_INTERVAL)``: see below.

The GIL is not priority-aware. A thread holding it while the loop waits
delays the loop, and a thread the loop waits for (the netlink worker) delays
it directly. Measured with ``bench/starvation_bench.py --part threads`` (a
real-time loop ticking every 10 ms while a worker thread serialises a
500-instance state document every 30 ms, on 2 cores, under eight CPU hogs):
a worker at ``SCHED_OTHER`` is preempted by the hogs while holding the GIL
and the real-time loop waits behind it (priority inversion: 390 of 1,000
ticks over 5 ms late, the worst 122 ms); ``nice -20`` barely helps (299),
because niceness only orders threads within one autogroup or cgroup; a child
process spares the loop but starves (93 of 333 writes done); a worker one
real-time priority below the loop gets the CPU back at once and releases the
GIL when asked (0 late, worst 0.5 ms, every write done), which CPython does
only after the waiter has waited a whole switch interval (5 ms by default,
hence :data:`SWITCH_INTERVAL`). So the worker threads of the runtime call
:func:`worker_initializer` first: real-time, one priority below the loop,
with ``SCHED_RESET_ON_FORK``, under the same CPU-time bound.

Failing to get any of this (no ``CAP_SYS_NICE`` and ``RLIMIT_RTPRIO`` 0, a
cgroup without a real-time budget, a ``RLIMIT_MEMLOCK`` too small) is a
warning, never fatal: the daemon runs as before.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "DEFAULT_PRIORITY",
    "DEFAULT_RLIMIT_RTTIME",
    "SWITCH_INTERVAL",
    "Realtime",
    "RealtimeSettings",
    "apply",
    "current",
    "worker_initializer",
]

logger = logging.getLogger("vrrpy.realtime")

DEFAULT_PRIORITY: Final = 10
"""``SCHED_RR`` priority of the event loop (its workers run at one below).

Any real-time priority preempts every time-shared process, so the number
only orders vrrpyd among real-time threads: low enough to stay below the
interrupt threads of a PREEMPT_RT kernel (50), which carry our own packets,
and below the clock and cluster daemons that ask for high ones (ptp4l,
corosync at 99); above keepalived's automatic priority, which starts at 1."""

DEFAULT_RLIMIT_RTTIME: Final = 1_000_000
"""Microseconds a real-time thread may run without sleeping before the kernel kills the process.

``SIGXCPU`` comes at half (500 ms), and the handler drops real-time
scheduling then, so the kill is only for a thread stuck where Python cannot
run the handler. The longest legitimate runs without a sleep measured with
500 instances: 212 ms (the event loop finishing a reload that restarts all
of them), 167 ms (the netlink worker reading their addresses back), 63 ms
(parsing the file): half a second leaves room for twice that, and a runaway
thread is back to time-sharing within half a second. keepalived's default is
10 ms, for C code that never parses a file or a netlink dump in one go."""

SWITCH_INTERVAL: Final = 0.0002
"""Seconds (``sys.setswitchinterval``) a thread waits for the GIL before asking its holder.

CPython's default is 5 ms: a real-time loop woken while a worker holds the
GIL waits that long before the worker is even asked to let go. With a busy
real-time worker on an idle machine, 133 of 1,000 wake-ups were over 5 ms
late at the default (worst 14.5 ms), none at 0.2 ms (worst 0.55 ms).
Switches cost only when two threads want the GIL at once, which in vrrpyd is
rare and brief."""

RESTORE_FIRST: Final = 10.0
"""Seconds after a ``SIGXCPU`` before real-time scheduling is tried again (doubling each time)."""
RESTORE_MAX: Final = 600.0
RESTORE_NAP: Final = 0.0001
"""Seconds of sleep after a restore: it zeroes the kernel's count (see :meth:`Realtime.restore`)."""

_MCL_CURRENT: Final = 1
_MCL_FUTURE: Final = 2
_MCL_ONFAULT: Final = 4
_RR: Final = os.SCHED_RR
_RESET_ON_FORK: Final = os.SCHED_RESET_ON_FORK
_REAL_TIME: Final = frozenset({os.SCHED_RR, os.SCHED_FIFO})


@dataclass(frozen=True)
class RealtimeSettings:
    """What to ask for.

    ``priority`` 0 keeps the loop time-sharing (then ``rlimit_rttime``, which
    bounds only real-time threads, is not set either, and the switch interval
    stays Python's). ``lock_memory`` is independent of it, as keepalived's
    ``vrrp_no_swap`` is of ``vrrp_rt_priority``. ``rlimit_rttime`` is in
    microseconds, as keepalived's ``vrrp_rlimit_rttime`` (and the kernel's
    ``RLIMIT_RTTIME``); 0 sets no limit.
    """

    priority: int = DEFAULT_PRIORITY
    lock_memory: bool = True
    rlimit_rttime: int = DEFAULT_RLIMIT_RTTIME

    @property
    def worker_priority(self) -> int:
        """The priority of worker threads: one below the loop (1 at the least)."""
        return max(1, self.priority - 1)


@dataclass
class Realtime:
    """What :func:`apply` obtained for this process, and what has happened since.

    One per process (:func:`current`). ``exceeded`` counts the ``SIGXCPU``
    signals handled; ``dropped`` is true between one and the restore.
    """

    settings: RealtimeSettings
    active: bool = False
    """The loop thread got its real-time priority."""
    memory_locked: bool = False
    rttime_limit: tuple[int, int] | None = None
    """(soft, hard) RLIMIT_RTTIME as set, in microseconds; None when not set."""
    exceeded: int = 0
    dropped: bool = False
    problems: list[str] = field(default_factory=list)
    """Why something asked for was not obtained (each also logged as a warning)."""
    loop_thread: int | None = None
    _threads: dict[int, int] = field(default_factory=dict)
    # Reentrant: the SIGXCPU handler runs in the main thread, possibly in the middle of
    # a restore that holds it there.
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _loop: asyncio.AbstractEventLoop | None = None
    _restore: asyncio.TimerHandle | None = None
    _left: bool = False

    # ------------------------------------------------------------------ reporting

    @property
    def policy(self) -> str:
        """The loop thread's policy now: ``SCHED_RR`` or ``SCHED_OTHER``."""
        return "SCHED_RR" if self.active and not self.dropped else "SCHED_OTHER"

    def status(self) -> dict[str, object]:
        """A JSON-able summary, for the state file."""
        return {
            "policy": self.policy,
            "priority": self.settings.priority if self.active and not self.dropped else 0,
            "worker_priority": self.settings.worker_priority if self.active else 0,
            "memory_locked": self.memory_locked,
            "rlimit_rttime": self.rttime_limit[1] if self.rttime_limit else 0,
            "rttime_exceeded": self.exceeded,
        }

    def describe(self) -> str:
        """One log line: what runs how."""
        parts = []
        if self.active:
            parts.append(
                f"SCHED_RR priority {self.settings.priority} "
                f"(workers {self.settings.worker_priority})"
            )
        else:
            parts.append("time-sharing (SCHED_OTHER)")
        parts.append("memory locked" if self.memory_locked else "memory not locked")
        if self.rttime_limit:
            soft, hard = self.rttime_limit
            parts.append(f"RLIMIT_RTTIME {soft // 1000}/{hard // 1000} ms")
        return ", ".join(parts)

    # ------------------------------------------------------------------ threads

    def register_worker(self) -> None:
        """Make the calling thread a worker: real-time one priority below the loop."""
        if not self.active:
            return
        tid = threading.get_native_id()
        priority = self.settings.worker_priority
        with self._lock:
            self._threads[tid] = priority
            if self.dropped:
                return  # the restore will raise it with the others
        try:
            os.sched_setscheduler(0, _RR | _RESET_ON_FORK, os.sched_param(priority))
        except OSError as exc:
            logger.warning(
                "worker thread %s stays time-sharing: %s", threading.current_thread().name, exc
            )
            with self._lock:
                self._threads.pop(tid, None)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Let a ``SIGXCPU`` drop be undone later, by a timer on ``loop`` (None: never)."""
        self._loop = loop

    def detach(self) -> None:
        """Forget the loop (it is closing); cancel a pending restore."""
        if self._restore is not None:
            self._restore.cancel()
            self._restore = None
        self._loop = None

    def leave(self) -> None:
        """Drop every real-time thread to time-sharing for good: call it before exiting.

        Tearing down the event loop and the interpreter is CPU work without a
        sleep (tens of milliseconds, more with many instances) that needs no
        priority and must not count against ``RLIMIT_RTTIME``; and during it
        CPython puts ``SIGXCPU`` back to its default action (killing). vrrpyd
        calls it when its loop has ended; :func:`apply` also registers it with
        :mod:`atexit`, for programs that do not. Calling it twice is harmless.
        """
        self.detach()
        with self._lock:
            self.dropped = True  # nothing restores it any more, and new workers stay ordinary
            self._left = True
        if self.active:
            self._set_all(real_time=False)

    @contextlib.contextmanager
    def relaxed(self) -> Iterator[None]:
        """Run the body time-sharing: a long burst of set-up work is not real-time work.

        Starting 2,000 instances (or a reload that adds hundreds) keeps the loop
        busy for a second or more with hardly a sleep: at real-time priority
        that would exhaust ``RLIMIT_RTTIME`` (the watchdog would fire on a
        healthy daemon) and hold a core against everything else on the machine.
        So every thread of ours is time-sharing for the body, and real-time
        again after it, unless :meth:`leave` was called meanwhile.
        """
        with self._lock:
            ours = self.active and not self.dropped
            if ours:
                self.dropped = True
        if ours:
            self._set_all(real_time=False)
        try:
            yield
        finally:
            if ours:
                with self._lock:
                    again = not self._left
                    if again:
                        self.dropped = False
                if again:
                    self._set_all(real_time=True)

    def _on_sigxcpu(self, signum: int, frame: FrameType | None) -> None:
        """Drop every real-time thread of ours to ``SCHED_OTHER`` (runs in the main thread)."""
        self.exceeded += 1
        with self._lock:
            self.dropped = True
        dropped = self._set_all(real_time=False)
        delay = min(RESTORE_MAX, RESTORE_FIRST * 2 ** (self.exceeded - 1))
        soft = self.rttime_limit[0] if self.rttime_limit else 0
        when = f"tried again in {delay:g} s" if self._loop is not None else "not restored"
        logger.error(
            "a thread ran %d ms at real-time priority without sleeping (SIGXCPU #%d, "
            "rlimit_rttime): %d thread(s) dropped to SCHED_OTHER, real-time %s",
            soft // 1000,
            self.exceeded,
            dropped,
            when,
        )
        loop = self._loop
        if loop is not None:
            # call_soon_threadsafe only appends to a deque and writes the loop's wake-up
            # pipe: safe from a signal handler that interrupted the loop's own thread.
            with contextlib.suppress(RuntimeError):  # the loop is closed
                loop.call_soon_threadsafe(self._arm_restore, delay)

    def _arm_restore(self, delay: float) -> None:
        if self._loop is None:
            return
        if self._restore is not None:
            self._restore.cancel()
        self._restore = self._loop.call_later(delay, self.restore)

    def restore(self) -> None:
        """Put the dropped threads back to real time (and the soft limit the kernel raised)."""
        self._restore = None
        if not self.dropped:
            return
        if self.rttime_limit is not None:
            # At each SIGXCPU the kernel raises the soft limit by a second (so that the
            # next one comes a second later); put ours back.
            with contextlib.suppress(OSError, ValueError):
                resource.setrlimit(resource.RLIMIT_RTTIME, self.rttime_limit)
        with self._lock:
            self.dropped = False
        count = self._set_all(real_time=True)
        # The kernel's count of real-time time without a sleep (``rt.timeout``) is
        # zeroed only when a real-time thread wakes, and this thread (the loop's, that
        # usually was the one spinning) last slept while time-sharing: its count is
        # still past the soft limit we just put back, so the next tick that found it
        # running would send SIGXCPU again at once (one restore in tens, CI saw it).
        # A real sleep now, as a real-time thread, zeroes it: 0.1 ms, once per restore.
        time.sleep(RESTORE_NAP)
        logger.warning("real-time scheduling restored for %d thread(s)", count)

    def _set_all(self, real_time: bool) -> int:
        """Set every registered thread to its real-time priority, or to ``SCHED_OTHER``."""
        with self._lock:
            threads = dict(self._threads)
        changed = 0
        for tid, priority in threads.items():
            if not os.path.exists(f"/proc/self/task/{tid}"):
                with self._lock:
                    self._threads.pop(tid, None)
                continue
            policy = _RR if real_time else os.SCHED_OTHER
            try:
                os.sched_setscheduler(
                    tid, policy | _RESET_ON_FORK, os.sched_param(priority if real_time else 0)
                )
            except OSError:
                continue  # gone in between, or refused: nothing better to do here
            changed += 1
        return changed


_current: Realtime | None = None


def current() -> Realtime | None:
    """What :func:`apply` set up in this process, or None if it was never called."""
    return _current


def worker_initializer() -> None:
    """``ThreadPoolExecutor(initializer=...)`` for every pool whose threads take the GIL.

    Raises the new worker to real-time one priority below the event loop when
    :func:`apply` obtained real-time for the loop; does nothing otherwise (a
    library user who never called :func:`apply` sees no change). Workers the
    loop waits for (netlink), and any that hold the GIL for long (JSON
    encoding), would otherwise be preempted by ordinary processes while the
    real-time loop waits for them.
    """
    state = _current
    if state is not None:
        state.register_worker()


def apply(settings: RealtimeSettings) -> Realtime:
    """Set up real time for the calling thread (the event loop's) and this process.

    Call it once, in the thread that will run the event loop, before any
    other thread is started. Each failure is logged as a warning and listed
    in ``problems``; nothing raises.
    """
    global _current
    state = Realtime(settings)
    _current = state
    if settings.lock_memory:
        _lock_memory(state)
    if settings.priority <= 0:
        return state
    if settings.rlimit_rttime > 0:
        _limit_rttime(state)
    try:
        os.sched_setscheduler(0, _RR | _RESET_ON_FORK, os.sched_param(settings.priority))
    except OSError as exc:
        _problem(state, f"no real-time scheduling: {_why_not_rt(exc, settings.priority)}")
    else:
        state.active = True
        state.loop_thread = threading.get_native_id()
        state._threads[state.loop_thread] = settings.priority
        # At exit CPython puts SIGXCPU back to its default action (killing) while this
        # thread, still real-time, runs the interpreter's teardown without sleeping:
        # past the soft limit that would end a clean stop with SIGXCPU. Time-sharing
        # first, then nothing counts against RLIMIT_RTTIME any more.
        atexit.register(state.leave)
    sys.setswitchinterval(SWITCH_INTERVAL)
    return state


def _problem(state: Realtime, message: str) -> None:
    state.problems.append(message)
    logger.warning("%s", message)


def _lock_memory(state: Realtime) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    # Two calls: fault in and lock what is mapped now, then lock what comes later only
    # as it is touched (a locked mapping is otherwise filled in whole when created).
    if libc.mlockall(_MCL_CURRENT) != 0 or libc.mlockall(_MCL_FUTURE | _MCL_ONFAULT) != 0:
        code = ctypes.get_errno()
        hint = ""
        if code in (errno.ENOMEM, errno.EPERM):
            soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
            limit = "unlimited" if soft == resource.RLIM_INFINITY else f"{soft // 1024} KiB"
            hint = (
                f" (RLIMIT_MEMLOCK is {limit} and we lack CAP_IPC_LOCK: "
                "raise LimitMEMLOCK= or set lock_memory = false)"
            )
        libc.munlockall()
        _problem(state, f"memory not locked: {os.strerror(code)}{hint}")
        return
    state.memory_locked = True


def _limit_rttime(state: Realtime) -> None:
    hard = state.settings.rlimit_rttime
    try:
        _, current_hard = resource.getrlimit(resource.RLIMIT_RTTIME)
        if current_hard != resource.RLIM_INFINITY and current_hard < hard:
            hard = current_hard  # lowered by whoever started us: only root may raise it
        limit = (hard // 2, hard)
        signal.signal(signal.SIGXCPU, state._on_sigxcpu)
        resource.setrlimit(resource.RLIMIT_RTTIME, limit)
    except (OSError, ValueError) as exc:
        _problem(state, f"no RLIMIT_RTTIME: {exc}")
        return
    state.rttime_limit = limit


def _why_not_rt(exc: OSError, priority: int) -> str:
    """The likely reason a real-time policy was refused, with what to change."""
    if exc.errno != errno.EPERM:
        return str(exc)
    soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
    if os.geteuid() != 0 and (soft != resource.RLIM_INFINITY and soft < priority):
        return (
            f"not permitted: no CAP_SYS_NICE and RLIMIT_RTPRIO is {soft} "
            f"(raise LimitRTPRIO= to {priority} or more, or set realtime_priority = 0)"
        )
    budget = _cgroup_rt_budget()
    if budget is not None and budget[1] == 0:
        return (
            f"not permitted: the cgroup {budget[0]} has no real-time budget "
            "(cpu.rt_runtime_us = 0; give it one, or set realtime_priority = 0)"
        )
    return (
        "not permitted (no CAP_SYS_NICE, RLIMIT_RTPRIO too low, or a cgroup without a "
        "real-time budget; set realtime_priority = 0 to silence this)"
    )


def _cgroup_rt_budget() -> tuple[str, int] | None:
    """(path, cpu.rt_runtime_us) of this process's cgroup-v1 cpu group, if it has the file."""
    try:
        with open("/proc/self/cgroup") as lines:
            for line in lines:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                if "cpu" in controllers.split(","):
                    for base in ("/sys/fs/cgroup/" + controllers, "/sys/fs/cgroup/cpu"):
                        runtime = os.path.join(base + path, "cpu.rt_runtime_us")
                        if os.path.exists(runtime):
                            with open(runtime) as f:
                                return path, int(f.read().strip())
    except (OSError, ValueError):
        return None
    return None
