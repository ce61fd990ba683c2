"""The transition pipeline: an instance's backends, run in order, beside the protocol loop.

The runtime hands each transition of an instance to its :class:`Pipeline`
and goes on at once: the pipeline runs the backends as an asyncio task, each
call under the backend's timeout, so nothing a backend does (a script that
hangs, a DRBD promotion that takes seconds, Python that burns CPU in
``await``-free stretches aside) holds an advert. What it guarantees:

* **Order.** Becoming Master, every backend's ``prepare`` runs first, in
  configuration order; the runtime adds and announces the addresses only
  when all of them agreed (:meth:`Pipeline.prepare`), then every backend's
  ``transition`` runs, in configuration order. Leaving Master, the runtime
  has withdrawn the addresses already, and the backends' ``transition`` runs
  in *reverse* order (the service stops before DRBD is demoted).
* **Serialised, the latest wins.** One transition of an instance runs at a
  time. A transition that arrives while another runs is queued; a later one
  replaces it in the queue (the steps of a state the instance has already
  left are not worth running). A transition that *leaves* Master cancels a
  run that is still taking the node *to* Master: the service never stays up
  on a node that is no longer Master.
* **Failures cost only themselves.** A call that raises or times out is
  logged with its backend's name, counted (:meth:`Pipeline.status`), and the
  next backend still runs. ``prepare`` is the exception: a refusal
  (:class:`~vrrpy.backends.base.Refused`), an error or a timeout there keeps
  the node out of Master, because serving without what ``prepare`` guards (a
  DRBD disk, say) is worse than not serving.
* **Checks before the election.** A backend with a ``check_interval`` is
  asked :meth:`~vrrpy.backends.base.Backend.check` on that period, in every
  state (:meth:`Pipeline.start_checks`); the runtime holds the instance in
  FAULT while a check says why not, so a node that would refuse never
  preempts a healthy Master first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vrrpy.backends.base import Backend, Refused, TransitionEvent, implements
from vrrpy.core.state import State

__all__ = ["BackendStats", "Pipeline"]

logger = logging.getLogger("vrrpy.backends")


@dataclass
class BackendStats:
    """What one backend of one instance has done (the state file shows it)."""

    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    refusals: int = 0
    cancelled: int = 0
    last_error: str = ""
    last_phase: str = ""
    last_seconds: float = 0.0
    last_state: str = ""
    checks: int = 0
    check_failures: int = 0
    last_check: str = ""
    """"ok", or why this node may not stand for Master (the last check's answer)."""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


class Pipeline:
    """The backends of one instance (see the module)."""

    def __init__(
        self,
        name: str,
        backends: Sequence[Backend],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.name = name
        self.backends = list(backends)
        self.loop = loop
        self.stats = {self._key(b): BackendStats() for b in self.backends}
        self._task: asyncio.Task[None] | None = None
        self._running: TransitionEvent | None = None
        self._queued: TransitionEvent | None = None
        self._preparing: asyncio.Task[None] | None = None
        self._side: set[asyncio.Task[str | None]] = set()
        self._checks: list[asyncio.Task[None]] = []
        self._check_generation = 0
        self.check_reasons: dict[str, str] = {}
        """The fault reason each checking backend holds now, by backend name."""
        self.on_failure: Callable[[str], None] | None = None
        """Called with a reason when a backend with ``fault_on_failure`` fails on the
        way to Master (the runtime puts the instance in FAULT, as after a refusal)."""

    @staticmethod
    def _key(backend: Backend) -> str:
        return getattr(backend, "name", type(backend).__name__)

    @property
    def prepares(self) -> bool:
        """Whether any backend takes part in becoming Master before the addresses."""
        return any(implements(b, "prepare") for b in self.backends)

    # ----------------------------------------------------------------- prepare

    def prepare(self, event: TransitionEvent, then: Callable[[str | None], None]) -> None:
        """Run every backend's ``prepare`` for ``event``, then call ``then(None)`` if all
        agreed, else ``then(reason)``. Returns at once; a newer :meth:`prepare` or a
        transition leaving Master cancels this one (``then`` is not called then)."""
        self.cancel_prepare()
        self._preparing = self.loop.create_task(self._prepare(event, then))

    def cancel_prepare(self) -> None:
        """Forget a ``prepare`` still running (the node left the way to Master)."""
        if self._preparing is not None and not self._preparing.done():
            self._preparing.cancel()
        self._preparing = None

    async def _prepare(self, event: TransitionEvent, then: Callable[[str | None], None]) -> None:
        refusal: str | None = None
        for backend in self.backends:
            if not implements(backend, "prepare"):
                continue
            outcome = await self._call(backend, "prepare", backend.prepare, event)
            if outcome is not None:
                refusal = f"backend {self._key(backend)} refused Master: {outcome}"
                break
        self._preparing = None
        then(refusal)

    # -------------------------------------------------------------- transition

    def transition(self, event: TransitionEvent) -> None:
        """Run every backend's ``transition`` for ``event`` (queued behind a running one;
        see the module for the rules). Returns at once."""
        if event.leaving_master:
            self.cancel_prepare()
        running = self._running
        if running is not None and self._task is not None and not self._task.done():
            if running.becoming_master and event.leaving_master:
                # Still starting the service on a node that is no longer Master: stop
                # that now and run the leaving steps next.
                self._task.cancel()
            self._queued = event
            return
        self._start(event)

    def _start(self, event: TransitionEvent) -> None:
        self._running = event
        self._task = self.loop.create_task(self._run(event))
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running = None
        self._task = None
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: the transition pipeline failed: %s", self.name, task.exception())
        queued, self._queued = self._queued, None
        if queued is not None:
            self._start(queued)

    async def _run(self, event: TransitionEvent) -> None:
        order = reversed(self.backends) if event.leaving_master else iter(self.backends)
        for backend in order:
            why = await self._call(backend, "transition", backend.transition, event)
            if (
                why is not None
                and event.new is State.MASTER
                and getattr(backend, "fault_on_failure", False)
                and self.on_failure is not None
            ):
                # The user asked for it (keepalived's track_script weight 0): a service
                # that failed to start takes the node out of Master.
                self.on_failure(f"backend {self._key(backend)} failed: {why}")
                return

    # ------------------------------------------------------------------ checks

    def start_checks(self, report: Callable[[str | None, str | None], None]) -> None:
        """Ask every backend with a ``check_interval`` whether this node may stand for
        Master, on that period, until :meth:`stop_checks`. ``report(new, old)`` is
        called when a backend's answer changes: ``new`` is the fault reason to hold
        now (None: none), ``old`` the one to let go (None: none)."""
        self.stop_checks()
        generation = self._check_generation
        for backend in self.backends:
            interval = float(getattr(backend, "check_interval", 0.0) or 0.0)
            if interval > 0 and implements(backend, "check"):
                watch = self._watch(backend, interval, report, generation)
                self._checks.append(self.loop.create_task(watch))

    def stop_checks(self) -> list[str]:
        """Stop the checks; returns the fault reasons they held (the caller lets them go)."""
        # (The generation, besides the cancel: Python < 3.12's wait_for can swallow a
        # cancellation that arrives as the check returns.)
        self._check_generation += 1
        for task in self._checks:
            task.cancel()
        self._checks.clear()
        held = list(self.check_reasons.values())
        self.check_reasons.clear()
        return held

    async def _watch(
        self,
        backend: Backend,
        interval: float,
        report: Callable[[str | None, str | None], None],
        generation: int,
    ) -> None:
        key = self._key(backend)
        stats = self.stats[key]
        timeout = float(getattr(backend, "timeout", 30.0))
        while generation == self._check_generation:
            stats.checks += 1
            why: str | None
            try:
                why = await asyncio.wait_for(backend.check(), timeout)
            except TimeoutError:
                why = f"check timed out after {timeout:g} s"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a check that cannot answer says "no"
                why = f"check failed: {type(exc).__name__}: {exc}"
            if generation != self._check_generation:
                return  # stopped meanwhile: the answer is nobody's
            if why is not None:
                stats.check_failures += 1
            stats.last_check = why or "ok"
            reason = None if why is None else f"backend {key}: {why}"
            held = self.check_reasons.get(key)
            if reason != held:
                if reason is None:
                    del self.check_reasons[key]
                    logger.info("%s: backend %s may stand for Master again", self.name, key)
                else:
                    self.check_reasons[key] = reason
                    logger.warning("%s: %s: not standing for Master", self.name, reason)
                report(reason, held)
            await asyncio.sleep(interval)

    def master_rx_lower_pri(self, event: TransitionEvent) -> None:
        """A Master heard a lower-priority advert (keepalived's
        ``notify_master_rx_lower_pri``): every backend that has the method is called,
        beside any transition (not queued behind one), under its timeout."""
        self._side_call("master_rx_lower_pri", event)

    def priority_changed(self, event: TransitionEvent) -> None:
        """The effective priority changed (tracking; keepalived's
        ``notify_priority_changes``): ``priority_changed(event)`` on every backend that
        has it, beside any transition."""
        self._side_call("priority_changed", event)

    def _side_call(self, method_name: str, event: TransitionEvent) -> None:
        for backend in self.backends:
            method = getattr(backend, method_name, None)
            if method is not None:
                task = self.loop.create_task(self._call(backend, method_name, method, event))
                self._side.add(task)
                task.add_done_callback(self._side.discard)

    # ------------------------------------------------------------------ calls

    async def _call(
        self,
        backend: Backend,
        phase: str,
        method: Callable[[TransitionEvent], Awaitable[None]],
        event: TransitionEvent,
    ) -> str | None:
        """One call under the backend's timeout; None if it went well, else why not."""
        stats = self.stats[self._key(backend)]
        stats.calls += 1
        stats.last_phase = phase
        stats.last_state = event.new.value
        started = time.monotonic()
        timeout = float(getattr(backend, "timeout", 30.0))
        why: str | None = None
        try:
            await asyncio.wait_for(method(event), timeout)
        except asyncio.CancelledError:
            stats.cancelled += 1
            stats.last_seconds = time.monotonic() - started
            logger.warning(
                "%s: backend %s %s (%s) cancelled: a newer transition came",
                self.name,
                self._key(backend),
                phase,
                event.new.value,
            )
            raise
        except Refused as exc:
            stats.refusals += 1
            why = str(exc) or "refused"
        except TimeoutError:
            stats.timeouts += 1
            why = f"timed out after {timeout:g} s"
        except Exception as exc:  # a backend's bug is counted, never the loop's problem
            stats.failures += 1
            why = f"{type(exc).__name__}: {exc}"
        stats.last_seconds = time.monotonic() - started
        if why is not None:
            stats.last_error = why
            logger.error(
                "%s: backend %s %s (%s -> %s) failed: %s",
                self.name,
                self._key(backend),
                phase,
                event.old.value,
                event.new.value,
                why,
            )
        return why

    # ----------------------------------------------------------------- status

    @property
    def busy(self) -> bool:
        """A transition or a prepare is running."""
        return (self._task is not None and not self._task.done()) or self._preparing is not None

    def status(self) -> dict[str, Any]:
        """For the state file: each backend's counters and its last call, and under
        ``"status"`` what the backend says of itself when it has a ``status()`` method
        (an IPVS pool: its real servers' health)."""
        out: dict[str, Any] = {name: stats.as_dict() for name, stats in self.stats.items()}
        for backend in self.backends:
            own = getattr(backend, "status", None)
            if not callable(own):
                continue
            try:
                out[self._key(backend)]["status"] = own()
            except Exception as exc:  # the state file must be written whatever a backend does
                out[self._key(backend)]["status"] = {"error": f"{type(exc).__name__}: {exc}"}
        return out

    async def close(self) -> None:
        """Let the running transition and the one queued behind it finish (within their
        timeouts: a Master's stop steps, a group's STOP), then close every backend."""
        self.stop_checks()
        while (task := self._task) is not None:
            await asyncio.gather(task, return_exceptions=True)
            if self._task is task:
                await asyncio.sleep(0)  # its done callback starts the queued one
        if self._side:
            await asyncio.gather(*self._side, return_exceptions=True)
        for backend in self.backends:
            try:
                await asyncio.wait_for(backend.close(), getattr(backend, "timeout", 30.0))
            except Exception as exc:
                logger.error("%s: closing backend %s: %s", self.name, self._key(backend), exc)
