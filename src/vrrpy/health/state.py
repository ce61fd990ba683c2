"""Per-check and per-real-server health, sans-IO: results and ``now`` in, deadlines and changes out.

Nothing here reads a clock, opens a socket or sleeps: the runner
(:mod:`vrrpy.health.runner`) asks :class:`CheckerState` when the next attempt is
due (:attr:`CheckerState.next_run`), says when it starts (:meth:`~CheckerState.begin`,
which returns the attempt's deadline) and hands back the result
(:meth:`~CheckerState.record`, which returns a :class:`CheckerChange` when the
check went up or down, or its dynamic weight moved). A test drives days of
flapping with a number for a clock.

The rules are keepalived 2.x's (``check_tcp.c`` ``tcp_epilog``,
``check_http.c`` ``epilog``, ``check_misc.c``, ``check_data.c``), restated:

* a check starts **up**, or **down** with ``alpha`` (keepalived's
  ``set_checker_state(checker, false)`` for alpha checkers at start);
* **its first result decides at once**: keepalived starts ``retry_it`` at
  ``retry`` ("for non alpha mode, one failure is enough initially"), so the
  first failure brings a check down without retries, and the first success
  brings an alpha check up. vrrpy does the same for ``rise`` (the success
  counter starts at ``rise - 1``);
* once it has a result, an **up** check goes down after ``retry + 1``
  failures in a row: the failed attempt, then ``retry`` retries, each
  ``delay_before_retry`` after the failure; a success in between resets the
  count. A **down** check is tried every ``delay_loop`` and comes up at its
  first success (keepalived, ldirectord) or after ``rise`` successes in a row
  (vrrpy's extension, HAProxy's ``rise``);
* the regular attempts are ``delay_loop`` apart, measured from the start of
  the previous attempt (keepalived measures MISC_CHECK that way, TCP and HTTP
  from the end: a check's duration apart); a retry is ``delay_before_retry``
  after the failure; an attempt never overlaps the previous one of the same
  check;
* the first attempt is ``warmup * fraction`` after start, the fraction drawn
  by the caller in [0, 1] (keepalived's random ``warmup``, default the
  ``delay_loop``: it spreads a thousand checks over the interval);
* a **real server** is up while all its checks are up (keepalived's
  ``num_failed_checkers == 0``); one with no check is up. Its weight is
  unchanged (None) unless a ``misc_dynamic`` check reported one: then
  keepalived's arithmetic, ``weight + sum(dynamic - weight)`` (a single
  dynamic check sets the weight to ``exit status - 2``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from vrrpy.health.model import Timing

__all__ = [
    "HISTORY",
    "CheckResult",
    "CheckerChange",
    "CheckerState",
    "HistoryEntry",
    "ServerChange",
    "ServerHealth",
    "ServerState",
    "effective_weight",
    "health_map",
]

HISTORY: Final = 16
"""Results kept per check (a ring): enough to see a flap in the state file."""


@dataclass(frozen=True)
class CheckResult:
    """One attempt's outcome. ``detail`` says what was seen, in words for a log line
    (``"status 200"``, ``"connection refused"``, ``"timed out after 5 s"``);
    ``weight`` is a ``misc_dynamic`` check's weight (exit status - 2), else None."""

    ok: bool
    detail: str
    weight: int | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One result in a check's history ring (times on the runner's clock)."""

    started: float
    finished: float
    ok: bool
    detail: str
    weight: int | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "started": round(self.started, 6),
            "duration": round(self.finished - self.started, 6),
            "ok": self.ok,
            "detail": self.detail,
        }
        if self.weight is not None:
            doc["weight"] = self.weight
        return doc


@dataclass(frozen=True)
class CheckerChange:
    """A check went up or down, or (still up) its dynamic weight moved."""

    label: str
    old_up: bool
    up: bool
    weight: int | None
    reason: str
    now: float


def _retries(n: int) -> str:
    return "1 retry" if n == 1 else f"{n} retries"


class CheckerState:
    """The state machine of one check of one real server (see the module docstring).

    ``warmup_fraction`` (drawn by the caller in [0, 1]) places the first attempt
    within the ``warmup``. ``initial_up`` overrides ``alpha``'s start state: a
    restarted agent starts each check where its server was, so that a restart
    neither floods a pool with servers known down nor empties it.
    """

    def __init__(
        self,
        timing: Timing,
        now: float,
        *,
        label: str = "check",
        warmup_fraction: float = 0.0,
        history: int = HISTORY,
        initial_up: bool | None = None,
    ) -> None:
        if not 0.0 <= warmup_fraction <= 1.0:
            raise ValueError("warmup_fraction must be in [0, 1]")
        self.timing = timing
        self.label = label
        self.up = not timing.alpha if initial_up is None else initial_up
        self.has_run = False
        self.failures = timing.retry
        """Failures in a row while up; starts at ``retry`` so the first failure decides."""
        self.successes = timing.rise - 1
        """Successes in a row while down; starts at ``rise - 1`` so the first success decides."""
        self.weight: int | None = None
        self.next_run: float | None = now + warmup_fraction * timing.warmup
        """When the next attempt is due; None while one runs."""
        self.running_since: float | None = None
        self.history: deque[HistoryEntry] = deque(maxlen=history)
        self.last_error: HistoryEntry | None = None
        self.runs = 0
        self.failed = 0
        self.retries = 0
        self.since = now
        """When ``up`` last changed (or the start)."""

    @property
    def retrying(self) -> bool:
        """An up check with failures not yet enough to bring it down (a retry is due)."""
        return self.up and self.has_run and 0 < self.failures <= self.timing.retry

    def due(self, now: float) -> bool:
        return self.next_run is not None and now >= self.next_run

    def begin(self, now: float) -> float:
        """An attempt starts now; returns its deadline (the caller cancels it then)."""
        if self.running_since is not None:
            raise RuntimeError(f"{self.label}: an attempt is already running")
        self.running_since = now
        self.next_run = None
        return now + self.timing.timeout

    def record(self, result: CheckResult, now: float) -> CheckerChange | None:
        """The attempt begun by :meth:`begin` ended with ``result``; schedules the next one."""
        started = self.running_since if self.running_since is not None else now
        self.running_since = None
        entry = HistoryEntry(started, now, result.ok, result.detail, result.weight)
        self.history.append(entry)
        self.runs += 1
        first = not self.has_run
        self.has_run = True
        old_up, old_weight = self.up, self.weight
        reason = ""
        t = self.timing
        if result.ok:
            self.failures = 0
            if self.up:
                self.weight = result.weight
                reason = f"{self.label} succeeded ({result.detail})"
            else:
                self.successes += 1
                if self.successes >= t.rise:
                    self.up = True
                    self.weight = result.weight
                    self.successes = 0
                    reason = f"{self.label} succeeded ({result.detail})"
                    if t.rise > 1 and not first:
                        reason = f"{self.label} succeeded {t.rise} times ({result.detail})"
        else:
            self.failed += 1
            self.last_error = entry
            self.successes = 0
            if self.up:
                self.failures += 1
                if self.failures > t.retry:
                    self.up = False
                    self.weight = None
                    self.failures = 0
                    if t.retry and not first:
                        reason = f"{self.label} failed after {_retries(t.retry)} ({result.detail})"
                    else:
                        reason = f"{self.label} failed ({result.detail})"
                else:
                    self.retries += 1
        if self.retrying:
            self.next_run = now + t.delay_before_retry
        else:
            self.next_run = max(started + t.delay_loop, now)
        if self.up != old_up:
            self.since = now
            return CheckerChange(self.label, old_up, self.up, self.weight, reason, now)
        if self.up and self.weight != old_weight:
            why = f"{self.label}: weight {self.weight}" if self.weight is not None else reason
            return CheckerChange(self.label, old_up, self.up, self.weight, why, now)
        return None

    def status(self) -> dict[str, Any]:
        """For the state file: state, counters, the history ring and the last error."""
        doc: dict[str, Any] = {
            "check": self.label,
            "up": self.up,
            "has_run": self.has_run,
            "since": round(self.since, 6),
            "runs": self.runs,
            "failed": self.failed,
            "retries": self.retries,
            "failures_in_a_row": self.failures if self.up and self.has_run else None,
            "history": [e.to_json() for e in self.history],
            "last_error": self.last_error.to_json() if self.last_error else None,
        }
        if self.weight is not None:
            doc["weight"] = self.weight
        return doc


@dataclass(frozen=True)
class ServerHealth:
    """One entry of the health map: is the real server up, and its weight (None: as configured)."""

    up: bool
    weight: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"up": self.up, "weight": self.weight}


@dataclass(frozen=True)
class ServerChange:
    """A real server's health changed; ``reason`` is the check's that moved it."""

    server: str
    health: ServerHealth
    old: ServerHealth
    reason: str
    now: float
    check: str = ""

    @property
    def up(self) -> bool:
        return self.health.up

    @property
    def weight(self) -> int | None:
        return self.health.weight


def effective_weight(configured: int | None, dynamic: Iterable[int]) -> int | None:
    """keepalived's real-server weight with ``misc_dynamic`` checks (``check_misc.c``).

    Each dynamic check that passed with exit status ``s >= 2`` contributes
    ``s - 2 - configured``; the weight is ``configured`` plus those, at least 0.
    With one such check the weight is ``s - 2`` whatever was configured.
    None when no check reports a weight (the configured weight stands).
    ``configured`` None is keepalived's default real-server weight, 1.
    """
    values = list(dynamic)
    if not values:
        return None
    base = 1 if configured is None else configured
    return max(0, base + sum(v - base for v in values))


class ServerState:
    """A real server's checks combined: up while all are up (see the module docstring)."""

    def __init__(
        self, server: str, checkers: Iterable[CheckerState], weight: int | None = None
    ) -> None:
        self.server = server
        self.checkers = list(checkers)
        self.configured_weight = weight
        self.health = self._compute()

    def _compute(self) -> ServerHealth:
        up = all(c.up for c in self.checkers)
        dynamic = [c.weight for c in self.checkers if c.up and c.weight is not None]
        return ServerHealth(up, effective_weight(self.configured_weight, dynamic) if up else None)

    def carry_weight(self, weight: int, dynamic: Sequence[CheckerState]) -> None:
        """Start from a weight a previous agent reported (a respawn): ``dynamic``, this
        server's ``misc_dynamic`` checks, hold it until they report their own. The
        first holds it whole, the others the configured weight (contributing nothing
        to keepalived's sum), so :meth:`health` says ``weight`` at once, and a pool fed
        by this agent keeps the weight it had instead of flipping back to the
        configured one until the checks run. Nothing to carry for a server that starts
        down or has no such check."""
        if not dynamic or not all(c.up for c in self.checkers):
            return
        base = 1 if self.configured_weight is None else self.configured_weight
        dynamic[0].weight = weight
        for checker in dynamic[1:]:
            checker.weight = base
        self.health = self._compute()

    def update(self, change: CheckerChange | None, now: float) -> ServerChange | None:
        """Recompute after one of its checks changed; a :class:`ServerChange` if the health did."""
        if change is None:
            return None
        old, new = self.health, self._compute()
        if new == old:
            return None
        self.health = new
        return ServerChange(self.server, new, old, change.reason, now, change.label)

    def status(self) -> dict[str, Any]:
        return {**self.health.to_json(), "checks": [c.status() for c in self.checkers]}


def health_map(servers: Mapping[str, ServerState]) -> dict[str, ServerHealth]:
    """The health map the IPVS side consumes: real-server key -> :class:`ServerHealth`."""
    return {key: state.health for key, state in servers.items()}
