"""Thousands of health checks on one asyncio loop, spread over their intervals.

:class:`HealthRunner` owns one :class:`~vrrpy.health.state.CheckerState` per
check and one :class:`~vrrpy.health.state.ServerState` per real server, and
does the I/O the sans-IO states ask for:

* **timers, not sleeping tasks**: each check waits as one ``loop.call_at``
  handle (asyncio keeps them in a heap), and a task exists only while an
  attempt runs: a thousand idle checks cost a thousand heap entries;
* **spread**: the first attempt of each check is at a random fraction of its
  ``warmup`` (keepalived's, default the ``delay_loop``), and later ones are a
  ``delay_loop`` after the previous start, so a thousand checks at 1 s stay a
  thousand evenly spread attempts a second instead of a thousand at once;
* **bounded concurrency**: at most ``max_in_flight`` attempts run at once
  (each holds a socket or a child process); one due beyond that waits its
  turn in a queue, and its timeout starts when it starts;
* **changes out**: ``on_change`` gets each :class:`~vrrpy.health.state.ServerChange`
  (a real server went up or down, or its dynamic weight moved), with the
  loop's clock (``CLOCK_MONOTONIC``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from vrrpy.health.checks import run_check
from vrrpy.health.model import CheckSpec, MiscCheck
from vrrpy.health.state import (
    HISTORY,
    CheckerState,
    CheckResult,
    ServerChange,
    ServerHealth,
    ServerState,
    health_map,
)

__all__ = ["HealthRunner"]

log = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 1024


class HealthRunner:
    """Every check of ``specs`` on the running loop, from :meth:`start` to :meth:`close`.

    ``weights``: each real server's configured weight (for ``misc_dynamic``
    arithmetic; keepalived's default 1). ``initial``: a server's state to start
    from instead of ``alpha``'s rule (a restarted agent carries the last health
    over: every check of a server given as down starts down); ``initial_weights``:
    the ``misc_dynamic`` weight an up server had (carried over likewise, until its
    dynamic checks report: :meth:`ServerState.carry_weight
    <vrrpy.health.state.ServerState.carry_weight>`). ``check`` performs
    one attempt (a test or a benchmark may pass its own). ``seed`` makes the
    warmup spread reproducible.
    """

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        on_change: Callable[[ServerChange], None] | None = None,
        *,
        weights: Mapping[str, int] | None = None,
        initial: Mapping[str, bool] | None = None,
        initial_weights: Mapping[str, int] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        history: int = HISTORY,
        seed: int | None = None,
        check: Callable[[CheckSpec], Awaitable[CheckResult]] = run_check,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        self.specs = list(specs)
        self._on_change = on_change
        self.weights = dict(weights or {})
        self.initial = dict(initial or {})
        self.initial_weights = dict(initial_weights or {})
        self.max_in_flight = max_in_flight
        self._history = history
        self._rng = random.Random(seed)
        self._check = check
        self.checkers: list[CheckerState] = []
        self._owner: list[ServerState] = []
        self.servers: dict[str, ServerState] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: list[asyncio.TimerHandle | None] = []
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._queue: deque[int] = deque()
        self._stopped = False
        self.in_flight = 0
        self.peak_in_flight = 0
        self.attempts = 0
        self.queued = 0
        self.max_lag = 0.0
        """The largest delay between an attempt's due time and its start (loop load, queueing)."""

    @property
    def health(self) -> dict[str, ServerHealth]:
        """The health map: real-server key -> up and weight (None: as configured)."""
        return health_map(self.servers)

    def start(self) -> None:
        """Build the states and arm every check's first attempt (call on the running loop)."""
        loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        by_server: dict[str, list[int]] = {}
        for i, spec in enumerate(self.specs):
            self.checkers.append(
                CheckerState(
                    spec.timing(),
                    now,
                    label=spec.label,
                    warmup_fraction=self._rng.random(),
                    history=self._history,
                    initial_up=self.initial.get(spec.server),
                )
            )
            by_server.setdefault(spec.server, []).append(i)
        for server, indexes in by_server.items():
            self.servers[server] = ServerState(
                server, [self.checkers[i] for i in indexes], self.weights.get(server)
            )
            carried = self.initial_weights.get(server)
            if carried is not None:
                dynamic = [
                    self.checkers[i]
                    for i in indexes
                    if isinstance(spec := self.specs[i], MiscCheck) and spec.dynamic
                ]
                self.servers[server].carry_weight(carried, dynamic)
        self._owner = [self.servers[spec.server] for spec in self.specs]
        self._timers = [None] * len(self.specs)
        for i in range(len(self.specs)):
            self._arm(i)

    def _arm(self, i: int) -> None:
        assert self._loop is not None
        when = self.checkers[i].next_run
        if when is not None:
            self._timers[i] = self._loop.call_at(when, self._due, i)

    def _due(self, i: int) -> None:
        self._timers[i] = None
        if self.in_flight >= self.max_in_flight:
            self.queued += 1
            self._queue.append(i)
            return
        self._launch(i)

    def _launch(self, i: int) -> None:
        assert self._loop is not None
        checker = self.checkers[i]
        now = self._loop.time()
        if checker.next_run is not None:
            self.max_lag = max(self.max_lag, now - checker.next_run)
        checker.begin(now)
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        self.attempts += 1
        self._tasks[i] = self._loop.create_task(self._attempt(i))

    async def _attempt(self, i: int) -> None:
        spec = self.specs[i]
        try:
            result = await self._check(spec)
        except asyncio.CancelledError:
            self.in_flight -= 1
            raise
        except Exception as exc:  # a bug in a check must not stop the others: a failure
            log.exception("health %s: check raised", spec.label)
            result = CheckResult(False, f"internal error: {exc!r}")
        self.in_flight -= 1
        self._tasks.pop(i, None)
        assert self._loop is not None
        now = self._loop.time()
        change = self.checkers[i].record(result, now)
        server_change = self._owner[i].update(change, now)
        if server_change is not None:
            log.info(
                "real server %s %s: %s",
                server_change.server,
                "up" if server_change.up else "down",
                server_change.reason,
            )
            if self._on_change is not None:
                try:
                    self._on_change(server_change)
                except Exception:
                    log.exception("health: on_change raised")
        if self._stopped:
            return
        self._arm(i)
        while self._queue and self.in_flight < self.max_in_flight:
            self._launch(self._queue.popleft())

    def status(self) -> dict[str, Any]:
        """Every server's health and checks (history, last error), and the runner's counters."""
        return {
            "servers": {key: state.status() for key, state in self.servers.items()},
            "runner": {
                "checks": len(self.specs),
                "attempts": self.attempts,
                "in_flight": self.in_flight,
                "peak_in_flight": self.peak_in_flight,
                "queued": self.queued,
                "max_lag": round(self.max_lag, 6),
            },
        }

    def stop(self) -> None:
        """Cancel every timer and running attempt (a MISC command's process group is killed)."""
        self._stopped = True
        for handle in self._timers:
            if handle is not None:
                handle.cancel()
        self._timers = [None] * len(self._timers)
        self._queue.clear()
        for task in self._tasks.values():
            task.cancel()

    async def close(self) -> None:
        """:meth:`stop`, then wait until every cancelled attempt has ended."""
        self.stop()
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
