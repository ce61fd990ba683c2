"""What VRRP's and CARP's cores share: the state set, the event table, faults, counting.

The two protocols differ in their adverts, their timers and their elections
(:mod:`vrrpy.core.vrrp`, :mod:`vrrpy.core.carp`); everything around those is
one design and lives here once:

* the table: every (state, event) pair has a :class:`Rule` naming its handler,
  the states it may end in and where it comes from; :func:`bind_table` gives a
  core class its table, and the per-packet handlers (``ADVERT``, ``TIMER``)
  are looked up once per state change, never per packet;
* the events that only dispatch through the table (startup, shutdown, the
  timer, sync groups' moves), and the fault reasons (FAULT while any is held,
  keepalived's semantics, for both protocols);
* the one place the state changes (:meth:`RouterCore._transition`) and its
  counters; drops and anomalies counted by reason and logged rate-limited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple

from vrrpy.core.actions import Action, RemoveAddresses, SendAdvertisement, Transition
from vrrpy.core.counters import Counters
from vrrpy.core.droplog import DropLog
from vrrpy.core.state import Event, State

__all__ = ["RouterCore", "Rule", "bind_table", "rule"]

_MASTER = State.MASTER
Handler = Callable[..., "list[Action]"]


class Rule(NamedTuple):
    """One row of a core's ``TRANSITIONS`` table."""

    handler: Handler
    """Called as ``handler(router, reason, now)``; for ``ADVERT`` as
    ``handler(router, advert, source, now)``, for ``TIMER`` as
    ``handler(router, now, deadline)``."""
    targets: frozenset[State]
    """The states the router may be in afterwards (its own when nothing changes)."""
    why: str
    """Where the rule comes from."""


def rule(handler: Handler, why: str, *targets: State) -> Rule:
    """A :class:`Rule` (the targets as arguments, for a table that reads well)."""
    return Rule(handler, frozenset(targets), why)


def bind_table(cls: type[RouterCore], table: Mapping[tuple[State, Event], Rule]) -> None:
    """Give ``cls`` its table: every (state, event) pair must have a row."""
    missing = [(s, e) for s in State for e in Event if (s, e) not in table]
    if missing:
        raise AssertionError(f"{cls.__name__}: no rule for {missing}")
    cls._by_key = {key: row.handler for key, row in table.items()}
    cls._advert_handlers = {state: table[(state, Event.ADVERT)].handler for state in State}
    cls._timer_handlers = {state: table[(state, Event.TIMER)].handler for state in State}


class RouterCore:
    """The shared part of a protocol core (see the module); a core subclasses it, sets
    its own attributes, calls :meth:`_init_core`, and is given its table by
    :func:`bind_table`."""

    _by_key: ClassVar[dict[tuple[State, Event], Handler]]
    _advert_handlers: ClassVar[dict[State, Handler]]
    _timer_handlers: ClassVar[dict[State, Handler]]

    state: State
    counters: Counters
    _deadline: float | None
    _faults: dict[str, None]
    _split_brain_until: float | None
    _interval: float
    """Our advert interval in seconds (each protocol keeps it current)."""
    _repeat: Any
    _on_advert: Handler
    _on_timer: Handler
    _log_prefix: str
    _vips: tuple[Any, ...]
    master_down_at: float | None

    def _init_core(self, log: logging.Logger, label: str) -> None:
        self.state = State.INITIALIZE
        self.counters = Counters()
        self._deadline = None
        self._faults = {}
        """The fault reasons held, in the order raised (a dict as an ordered set)."""
        self._split_brain_until = None
        """While Master: when the current split-brain episode ends if no other Master is
        heard again (None: no episode)."""
        self._repeat = None
        self.master_down_at = None
        """The Master_Down_Timer deadline (caller's clock) of the last takeover it made
        (a runtime measures from it to the first announcement); None before any."""
        self._log = log
        self._droplog = DropLog(log)
        self._warnlog = DropLog(log, level=logging.WARNING, interval=60.0)
        self._log_prefix = f"[{label}] "
        self._on_advert = self._advert_handlers[State.INITIALIZE]
        self._on_timer = self._timer_handlers[State.INITIALIZE]

    # ----------------------------------------------------------------- queries

    def get_timer(self) -> float | None:
        """The time at which :meth:`handle_timer` must be called next, or None."""
        return self._deadline

    @property
    def faults(self) -> tuple[str, ...]:
        """The fault reasons held, in the order raised: the router is in FAULT (or
        will be at startup) while this is not empty. For a state file or a status page."""
        return tuple(self._faults)

    def split_brain(self, now: float) -> bool:
        """Whether a split-brain episode is going on: we are Master and another, weaker
        Master was heard lately."""
        until = self._split_brain_until
        return until is not None and now < until

    # ------------------------------------------------------------------ events

    def startup(self, now: float) -> list[Action]:
        """The instance starts: Backup (or Master, for VRRP's address owner); FAULT if a
        fault is held already."""
        return self._by_key[(self.state, Event.STARTUP)](self, "startup", now)

    def shutdown(self, now: float) -> list[Action]:
        """The instance stops: a Master resigns (VRRP's priority 0, CARP's bow-out) and
        withdraws its addresses; a Backup or a faulted router just stops. Held faults
        are kept."""
        return self._by_key[(self.state, Event.SHUTDOWN)](self, "shutdown", now)

    def handle_timer(self, now: float) -> list[Action]:
        """Fire whichever timer is due; calling early or with no timer set does nothing."""
        deadline = self._deadline
        if deadline is None or now < deadline:
            return []
        return self._on_timer(self, now, deadline)

    def beat(self, now: float) -> SendAdvertisement | None:
        """The Master's advert on its cadence: :meth:`handle_timer` when that is all it
        would do, in one call.

        For a runtime that sends hundreds of adverts per wake-up, where the calls
        of the general path (the handler table, the list of actions) cost more
        than the advert. Same effect as ``handle_timer(now)`` returning one
        :class:`SendAdvertisement`: the next deadline one interval on, the advert
        counted. None, with nothing changed, whenever the timer would do anything
        else (not Master, not due, a stall restarting the cadence, a split brain
        to time out): then call :meth:`handle_timer`.
        """
        deadline = self._deadline
        if (
            self.state is not _MASTER
            or deadline is None
            or now < deadline
            or self._split_brain_until is not None
        ):
            return None
        nxt = deadline + self._interval
        if nxt <= now:
            return None
        self._deadline = nxt
        return self._steady_advert()

    def advance_advert(self, when: float, now: float) -> bool:
        """Bring a Master's next advert forward to ``when`` (never later, never before ``now``).

        For a runtime that puts many Masters' adverts on shared wake-ups: the
        cadence then continues from ``when``, one interval apart. An advert
        that leaves early is harmless to every peer (each waits three
        intervals and more); one that leaves late is not, so this can only
        shorten the wait. Returns whether it moved.
        """
        deadline = self._deadline
        if self.state is not _MASTER or deadline is None:
            return False
        when = max(when, now)
        if when >= deadline:
            return False
        self._deadline = when
        return True

    def fault(self, reason: str, now: float) -> list[Action]:
        """A tracked object failed: hold ``reason``, and go to FAULT if it is the first.

        keepalived's FAULT: a Master first resigns (so a Backup takes over at
        once rather than after its master-down interval) and withdraws its
        addresses; a Backup just stops listening. Raised before startup, the
        fault is remembered and startup goes to FAULT. Raising a reason already
        held does nothing.
        """
        if not isinstance(reason, str) or not reason:
            raise ValueError(f"a fault needs a reason, got {reason!r}")
        faults = self._faults
        if reason in faults:
            return []
        faults[reason] = None
        if len(faults) > 1:
            self._log.info(
                "%sfault also: %s (held: %s)", self._log_prefix, reason, "; ".join(faults)
            )
            return []
        return self._by_key[(self.state, Event.FAULT)](self, reason, now)

    def recover(self, reason: str, now: float) -> list[Action]:
        """The tracked object behind ``reason`` is well again: when no reason is left,
        leave FAULT (for Backup with a fresh master-down timer, or Master for VRRP's
        address owner), as keepalived does. A reason not held is ignored."""
        faults = self._faults
        if reason not in faults:
            return []
        del faults[reason]
        if faults:
            self._log.info(
                "%sfault cleared: %s (still held: %s)", self._log_prefix, reason, "; ".join(faults)
            )
            return []
        return self._by_key[(self.state, Event.RECOVER)](self, reason, now)

    def force_master(self, reason: str, now: float) -> list[Action]:
        """A Backup becomes Master now, without waiting for its master-down timer.

        Not a protocol event: keepalived's sync group uses it when another
        member of the group became Master (:mod:`vrrpy.core.syncgroup`);
        OpenBSD's ``ifconfig carpN state master`` does the same for CARP. Does
        nothing in any other state.
        """
        return self._by_key[(self.state, Event.FORCE_MASTER)](self, reason, now)

    def force_backup(self, reason: str, now: float) -> list[Action]:
        """A Master steps down to Backup now: it withdraws its addresses, sends no
        resignation (keepalived's vrrp_sync_backup does not either) and starts a fresh
        master-down timer. Does nothing in any other state."""
        return self._by_key[(self.state, Event.FORCE_BACKUP)](self, reason, now)

    def hold_backup(self, reason: str, now: float) -> list[Action]:
        """A Backup whose master-down timer ran out stays Backup for another interval:
        its sync group is not ready to be Master together (keepalived's "prefer backup
        state to avoid thrashing"). Nothing else."""
        return self._by_key[(self.state, Event.HOLD_BACKUP)](self, reason, now)

    # --------------------------------------------- what each protocol supplies

    @property
    def master_down_interval(self) -> float:
        """Seconds a Backup waits for the Master (each protocol's formula)."""
        raise NotImplementedError

    def _steady_advert(self) -> SendAdvertisement:
        """The Master's regular advert, counted (what its timer handler sends)."""
        raise NotImplementedError

    def _resignation(self) -> SendAdvertisement:
        """The advert a Master leaves with: VRRP's priority 0, CARP's bow-out."""
        raise NotImplementedError

    def _become_master(self, now: float, old: State, reason: str, code: str) -> list[Action]:
        raise NotImplementedError

    def _enter_backup(self, now: float, old: State, reason: str, code: str) -> list[Action]:
        raise NotImplementedError

    def _forget_master(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------ handlers shared

    def _backup_shutdown(self, reason: str, now: float) -> list[Action]:
        self._deadline = None
        return [self._transition(State.BACKUP, State.INITIALIZE, reason, now, "shutdown")]

    def _backup_fault(self, _reason: str, now: float) -> list[Action]:
        """keepalived: a Backup in FAULT stops listening; it has nothing to withdraw."""
        self._forget_master()
        return [
            self._transition(
                State.BACKUP, State.FAULT, f"fault: {self._fault_text()}", now, "fault"
            )
        ]

    def _force_master(self, reason: str, now: float) -> list[Action]:
        return self._become_master(now, State.BACKUP, reason, "sync_group")

    def _hold_backup(self, _reason: str, now: float) -> list[Action]:
        self._repeat = None
        self._deadline = now + self.master_down_interval
        return []

    def _master_shutdown(self, reason: str, now: float) -> list[Action]:
        """Stop as Master: the resignation advert, then the addresses go (RFC 9568
        6.4.3 Shutdown; OpenBSD's ``ifconfig carpN down``)."""
        self._deadline = None
        self._split_brain_until = None
        return [
            self._resignation(),
            RemoveAddresses(self._vips),
            self._transition(_MASTER, State.INITIALIZE, reason, now, "shutdown"),
        ]

    def _master_fault(self, _reason: str, now: float) -> list[Action]:
        """keepalived (vrrp_state_leave_master towards FAULT): resign as on shutdown."""
        self._split_brain_until = None
        self._forget_master()
        return [
            self._resignation(),
            RemoveAddresses(self._vips),
            self._transition(_MASTER, State.FAULT, f"fault: {self._fault_text()}", now, "fault"),
        ]

    def _force_backup(self, reason: str, now: float) -> list[Action]:
        """keepalived's vrrp_sync_backup: leave Master without a resignation advert."""
        self._split_brain_until = None
        return [
            RemoveAddresses(self._vips),
            *self._enter_backup(now, _MASTER, reason, "sync_group"),
        ]

    def _drop_not_running(self, _advert: object, _source: object, now: float) -> list[Action]:
        self._drop("not_running", now, "")
        return []

    def _drop_fault(self, _advert: object, _source: object, now: float) -> list[Action]:
        self._drop("fault", now, "")
        return []

    def _fault_shutdown(self, reason: str, now: float) -> list[Action]:
        """Nothing to resign from: a faulted router sends nothing and holds nothing."""
        return [self._transition(State.FAULT, State.INITIALIZE, reason, now, "shutdown")]

    def _ignore(self, *_args: object) -> list[Action]:
        return []

    # ---------------------------------------------------------------- helpers

    def _fault_text(self) -> str:
        return "; ".join(self._faults)

    def _transition(self, old: State, new: State, reason: str, now: float, code: str) -> Transition:
        """Enter ``new``: the one place the state changes, and where the per-advert
        and per-timer handlers of the new state are looked up in the table.

        ``code`` is one of :data:`~vrrpy.core.actions.TRANSITION_CODES`: ``reason``
        is for humans (addresses, priorities in it), the code for counting."""
        self.state = new
        self._on_advert = self._advert_handlers[new]
        self._on_timer = self._timer_handlers[new]
        self._repeat = None
        counters = self.counters
        counters.transitions += 1
        counters.last_transition = now
        counters.last_transition_reason = reason
        counters.count_transition(old.value, new.value, code)
        if new is _MASTER:
            counters.became_master += 1
        elif old is _MASTER:
            counters.released_master += 1
        return Transition(old, new, reason, code)

    def _drop(self, reason: str, now: float, detail: str, *args: object) -> None:
        self.counters.drop(reason)
        self._droplog.log(reason, now, self._log_prefix, "dropped advert: " + detail, *args)

    def _anomaly(self, reason: str, now: float, detail: str, *args: object) -> None:
        """A misconfiguration to log but not to act on; the advert is processed."""
        anomalies = self.counters.anomalies
        anomalies[reason] = anomalies.get(reason, 0) + 1
        self._warnlog.log(reason, now, self._log_prefix, detail, *args)
