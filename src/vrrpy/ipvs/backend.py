"""IPVS as a backend: the pool follows the instance, and the health checks.

:class:`IpvsBackend` holds a declaration (virtual services with their real
servers, :mod:`vrrpy.ipvs.model`) and keeps the kernel's table to it:

* **Becoming Master** it installs the pool: the kernel's table is read, and
  every declared service is brought exactly to its plan
  (:mod:`vrrpy.ipvs.pool` for what the health map asks,
  :mod:`vrrpy.ipvs.reconcile` for the operations). This happens in
  ``transition``, after the virtual addresses are up, not in ``prepare``:
  the addresses are not held back while a large table is read (0.6-0.9 s
  for 1,000 services in a UML guest), and until the pool is in, a
  connection to a virtual address is refused, as it was a moment before on
  no director at all. A pool the kernel refuses is a failed transition
  (logged, counted; with ``fault_on_failure`` the node leaves Master).
* ``install="always"`` installs it in every state but stopped (Backup and
  FAULT too), as keepalived does: the connections a Backup's sync daemon
  receives then find their services and are bound to their real servers
  (counted, scheduled around); with the default, a connection synced before
  the pool is in works but is bound to no server.
* **Leaving Master** (Backup or FAULT) it keeps the pool by default
  (``on_leave="keep"``), as keepalived does -- its checker process keeps the
  virtual servers whatever the VRRP state, so that a Backup whose sync
  daemon holds the Master's connections can take them over with the services
  already there. ``on_leave="remove"`` deletes the services it owns.
  **Stopping** (the instance goes to INIT) removes them by default
  (``on_stop="remove"``: keepalived deletes its virtual servers when it
  stops); ``on_stop="keep"`` leaves them.
* **While installed** (Master, or kept), a health change
  (:meth:`IpvsBackend.set_health`: up or down, and a healthy server's dynamic
  weight, keepalived's ``misc_dynamic``) re-plans and reconciles the services it
  changed; :meth:`IpvsBackend.reconcile` re-reads and repairs the whole
  declared table (a service someone edited behind our back).
* **Ownership.** Only declared services are touched (and services declared
  before and dropped by :meth:`IpvsBackend.set_services`, which are
  deleted). Any other service in the kernel is left alone.
* **Connection sync.** With ``sync_interface`` set, the kernel's sync daemon
  follows the state, as keepalived's ``lvs_sync_daemon IF INSTANCE`` does:
  ``master`` while Master, ``backup`` otherwise (Backup, FAULT), none once
  stopped. A Backup's kernel thus holds the Master's connections, and a
  takeover keeps them working.

Every kernel call, and the planning (thousands of servers are milliseconds
of Python), runs in a worker thread (:func:`asyncio.to_thread`): the protocol
loop never waits for netlink. The work is done by one *converge* step at a
time, which brings the kernel to the latest wanted state (installed or not,
which sync daemon, the latest health): a transition or a health change only
says what is wanted and asks for a converge, so the latest always wins, even
when a call is cancelled while its thread finishes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Protocol

from vrrpy.backends.base import Backend, BackendError, TransitionEvent
from vrrpy.core.state import State
from vrrpy.ipvs.model import DestKey, RealServer, ServiceKey, VirtualService, check_declared
from vrrpy.ipvs.netlink import IpvsError, IpvsNetlink, SyncDaemon
from vrrpy.ipvs.pool import HealthKey, Pool, PoolEvent, changes, plan, withdrawal_events
from vrrpy.ipvs.reconcile import DeleteService, Operation, reconcile, withdraw

__all__ = ["IpvsBackend", "Kernel"]

logger = logging.getLogger("vrrpy.ipvs")

_MAX_WEIGHT = 2**31 - 1
"""The kernel's destination weight is a signed 32-bit integer (``IPVS_DEST_ATTR_WEIGHT``)."""


class Kernel(Protocol):
    """What the backend needs of a kernel table: :class:`~vrrpy.ipvs.netlink.IpvsNetlink`,
    or a test's stand-in."""

    def table(
        self, keys: Iterable[ServiceKey] | None = None, *, dests: bool = True
    ) -> dict[ServiceKey, VirtualService]: ...

    def apply(self, ops: list[Operation]) -> list[tuple[Operation, IpvsError]]: ...

    def daemons(self) -> list[SyncDaemon]: ...

    def start_daemon(self, daemon: SyncDaemon) -> None: ...

    def stop_daemon(self, state: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Counters:
    converges: int = 0
    operations: int = 0
    failures: int = 0
    last_error: str | None = None
    last_seconds: float = 0.0
    last_operations: int = 0
    last_at: float = 0.0


@dataclass
class _Wanted:
    """What the kernel should look like (set on the loop, read by the converge step)."""

    installed: bool = False
    sync: str | None = None
    full: bool = True
    """Read every declared service from the kernel (installing, :meth:`IpvsBackend.reconcile`)."""
    replan: bool = True
    """Plan every service again (a new declaration); else only ``dirty`` ones."""
    dirty: set[ServiceKey] = field(default_factory=set)
    """Services whose health changed (or whose last operations failed)."""


class IpvsBackend(Backend):
    """The IPVS pool of one instance (see the module).

    ``services``: the declared virtual services. ``netns``: the namespace whose
    IPVS table is managed (None: the daemon's). ``install``: ``"master"``
    (on becoming Master) or ``"always"`` (in every state but stopped, as
    keepalived's checker keeps its virtual servers on every node).
    ``on_leave`` / ``on_stop``: ``"keep"`` or ``"remove"``. ``sync_interface``, ``syncid`` and
    ``sync_options`` (``maxlen``, ``group``, ``port``, ``ttl``: see
    :class:`~vrrpy.ipvs.netlink.SyncDaemon`): the connection-sync daemon,
    none without an interface. ``on_event``: called on the event loop with
    each :class:`~vrrpy.ipvs.pool.PoolEvent` (a real server up or down, a
    quorum gained or lost). ``kernel``: how to open the kernel's table (a
    test passes a stand-in).
    """

    def __init__(
        self,
        services: Iterable[VirtualService],
        *,
        name: str = "ipvs",
        netns: str | None = None,
        install: str = "master",
        on_leave: str = "keep",
        on_stop: str = "remove",
        sync_interface: str | None = None,
        syncid: int = 0,
        sync_options: dict[str, Any] | None = None,
        on_event: Callable[[PoolEvent], None] | None = None,
        timeout: float = 30.0,
        fault_on_failure: bool = False,
        kernel: Callable[[], Kernel] | None = None,
    ) -> None:
        for what, value in (("on_leave", on_leave), ("on_stop", on_stop)):
            if value not in ("keep", "remove"):
                raise ValueError(f"{what} must be 'keep' or 'remove', not {value!r}")
        if install not in ("master", "always"):
            raise ValueError(f"install must be 'master' or 'always', not {install!r}")
        if install == "always" and on_leave == "remove":
            raise ValueError("install='always' keeps the pool in every state: on_leave='remove'?")
        self.install = install
        self.name = name
        self.timeout = timeout
        self.fault_on_failure = fault_on_failure
        self.netns = netns
        self.on_leave = on_leave
        self.on_stop = on_stop
        self.on_event = on_event
        self._sync_template: SyncDaemon | None = None
        if sync_interface is not None:
            self._sync_template = SyncDaemon(
                "master", sync_interface, syncid, **dict(sync_options or {})
            )
        self._open_kernel = kernel or (lambda: IpvsNetlink(netns))
        self._kernel: Kernel | None = None
        # Loop side and converge side share these, under _state.
        self._state = threading.Lock()
        self._declared = check_declared(services)
        self._retired: set[ServiceKey] = set()
        self._health: dict[HealthKey, bool] = {}
        self._weights: dict[HealthKey, int] = {}
        self._wanted = _Wanted()
        # Converge side only (under _work).
        self._work = threading.Lock()
        self._pool: Pool | None = None
        self._applied: dict[ServiceKey, VirtualService] = {}
        self._installed = False
        self._sync_running: str | None = None
        self._counters = _Counters()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: asyncio.Task[None] | None = None
        self._again = False

    # ------------------------------------------------------------ what is wanted

    @property
    def services(self) -> dict[ServiceKey, VirtualService]:
        """The declared services by key."""
        with self._state:
            return dict(self._declared)

    def set_services(self, services: Iterable[VirtualService]) -> None:
        """Replace the declaration (a reload). Services no longer declared are deleted
        from the kernel at the next converge if we had installed them; the others are
        brought to their new declaration."""
        declared = check_declared(services)
        with self._state:
            self._retired |= self._declared.keys() - declared.keys()
            self._retired -= declared.keys()
            self._declared = declared
            self._wanted.replan = True
        self._kick()

    def set_health(
        self,
        server: RealServer | DestKey | tuple[str, int],
        healthy: bool,
        service: ServiceKey | None = None,
        weight: int | None = None,
    ) -> bool:
        """Record a health check's verdict for a real server, in ``service`` or (None)
        in every declared service that has it; reconcile what it changes (in the
        background, if the pool is installed). Returns whether anything changed.

        ``weight``: the weight a healthy server should carry instead of its declared
        one (keepalived's ``misc_dynamic``: a MISC_CHECK's exit status - 2); None
        gives it back its declared weight. Ignored while the server is failed.

        Cheap and non-blocking: callable from the protocol loop, for every check."""
        key = _dest_key(server)
        if weight is not None and not 0 <= weight <= _MAX_WEIGHT:
            raise ValueError(f"weight must be 0..{_MAX_WEIGHT}, not {weight}")
        dynamic = weight if healthy else None
        changed: set[ServiceKey] = set()
        with self._state:
            targets = [service] if service is not None else list(self._declared)
            for svc in targets:
                vs = self._declared.get(svc)
                if vs is None or all(rs.key != key for rs in vs.real_servers):
                    continue
                if self._health.get((svc, key)) is not healthy:
                    self._health[(svc, key)] = healthy
                    changed.add(svc)
                if self._weights.get((svc, key)) != dynamic:
                    if dynamic is None:
                        del self._weights[(svc, key)]
                    else:
                        self._weights[(svc, key)] = dynamic
                    changed.add(svc)
            self._wanted.dirty |= changed
        if changed:
            self._kick()
        return bool(changed)

    def health(self) -> dict[HealthKey, bool]:
        """The verdicts recorded so far."""
        with self._state:
            return dict(self._health)

    def weights(self) -> dict[HealthKey, int]:
        """The dynamic weights recorded so far (healthy servers with a weight of a check's)."""
        with self._state:
            return dict(self._weights)

    # ------------------------------------------------------------ phases

    async def transition(self, event: TransitionEvent) -> None:
        if event.new is State.MASTER:
            self._want(installed=True, sync="master")
        elif event.new is State.INITIALIZE:
            self._want(installed=False if self.on_stop == "remove" else None, sync=None)
        elif self.install == "always":
            self._want(installed=True, sync="backup")
        else:
            installed = False if (event.old is State.MASTER and self.on_leave == "remove") else None
            self._want(installed=installed, sync="backup")
        await self._converge()

    async def reconcile(self) -> None:
        """Re-read every declared service from the kernel and repair it (when the pool
        is installed), as at installation."""
        with self._state:
            self._wanted.full = True
        await self._converge()

    async def settle(self) -> None:
        """Wait until the health changes recorded so far are in the kernel."""
        while self._background is not None and not self._background.done():
            await asyncio.gather(self._background, return_exceptions=True)

    async def close(self) -> None:
        """Let a running converge end, then close the netlink handle (the table and the
        sync daemons stay as the last transition left them)."""
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        await asyncio.to_thread(self._close_kernel)

    def _close_kernel(self) -> None:
        with self._work:
            if self._kernel is not None:
                self._kernel.close()
                self._kernel = None

    def _want(self, *, installed: bool | None, sync: str | None) -> None:
        with self._state:
            if installed is not None:
                if installed and not self._wanted.installed:
                    self._wanted.full = True
                self._wanted.installed = installed
            self._wanted.sync = sync if self._sync_template is not None else None

    # ------------------------------------------------------------ converging

    def _kick(self) -> None:
        """Converge in the background (health changes, a new declaration): at most one
        background run at a time, re-run once if asked again meanwhile."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next transition converges
        self._loop = loop
        if self._background is not None and not self._background.done():
            self._again = True
            return
        self._background = loop.create_task(self._background_run(), name=f"{self.name}-converge")

    async def _background_run(self) -> None:
        while True:
            self._again = False
            try:
                await self._converge()
            except BackendError as exc:
                logger.error("%s: %s", self.name, exc)
            if not self._again:
                return

    async def _converge(self) -> None:
        self._loop = asyncio.get_running_loop()
        events, error = await asyncio.to_thread(self._converge_step)
        for event in events:
            self._emit(event)
        if error is not None:
            raise BackendError(error)

    def _emit(self, event: PoolEvent) -> None:
        logger.info("%s: %s", self.name, event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("%s: on_event hook failed", self.name)

    def _converge_step(self) -> tuple[list[PoolEvent], str | None]:
        """One converge, in a worker thread: plan, read what is needed, apply, and
        move the sync daemons. Returns the pool events and an error (or None)."""
        with self._work:
            started = time.monotonic()
            with self._state:
                declared = dict(self._declared)
                retired = set(self._retired)
                health = dict(self._health)
                weights = dict(self._weights)
                want_installed = self._wanted.installed
                want_sync = self._wanted.sync
                full = self._wanted.full
                replan = self._wanted.replan
                dirty = set(self._wanted.dirty)
                self._wanted.full = self._wanted.replan = False
                self._wanted.dirty.clear()
            errors: list[str] = []
            events: list[PoolEvent] = []
            ops_done = 0
            try:
                before = self._pool
                pool = plan(declared.values(), health, before, None if replan else dirty, weights)
                self._pool = pool
                events += changes(before, pool)
                if want_installed:
                    full = full or not self._installed
                    ops_done, failed = self._install(pool, retired, full, dirty)
                    errors += failed
                elif self._installed:
                    ops_done, failed = self._withdraw(declared)
                    errors += failed
                    events += withdrawal_events(pool, declared)
                errors += self._sync(want_sync)
            except (IpvsError, OSError, ValueError) as exc:
                errors.append(str(exc))
                with self._state:  # read and plan everything again next time
                    self._wanted.full = self._wanted.replan = True
            counters = self._counters
            counters.converges += 1
            counters.operations += ops_done
            counters.last_operations = ops_done
            counters.failures += len(errors)
            counters.last_seconds = time.monotonic() - started
            counters.last_at = time.time()
            if errors:
                counters.last_error = "; ".join(errors[:3]) + (
                    f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
                )
                return events, counters.last_error
            return events, None

    def _kernel_handle(self) -> Kernel:
        if self._kernel is None:
            self._kernel = self._open_kernel()
        return self._kernel

    def _install(
        self, pool: Pool, retired: set[ServiceKey], full: bool, dirty: set[ServiceKey]
    ) -> tuple[int, list[str]]:
        desired = pool.table
        if full:
            keys = set(desired)
        else:
            # Only what the plan changed since it was last applied (and what failed).
            keys = {key for key, vs in desired.items() if self._applied.get(key) != vs} | (
                dirty & desired.keys()
            )
        if not keys and not retired:
            self._installed = True
            return 0, []
        kernel = self._kernel_handle()
        current = kernel.table(keys | retired)
        wanted = {key: desired[key] for key in keys}
        ops = reconcile(wanted, current, retired)
        failures = kernel.apply(ops) if ops else []
        failed_keys = {_op_key(op) for op, _ in failures}
        for key in keys:
            if key in failed_keys:
                self._applied.pop(key, None)
            else:
                self._applied[key] = desired[key]
        gone = {op.key for op in ops if isinstance(op, DeleteService)} - failed_keys
        with self._state:
            self._retired -= gone | (retired - current.keys())
            if failed_keys:
                self._wanted.dirty |= failed_keys & desired.keys()
        self._installed = True
        if ops:
            logger.info("%s: %d IPVS operations, %d refused", self.name, len(ops), len(failures))
        return len(ops) - len(failures), [str(error) for _, error in failures]

    def _withdraw(self, declared: dict[ServiceKey, VirtualService]) -> tuple[int, list[str]]:
        kernel = self._kernel_handle()
        owned = set(declared) | set(self._applied)
        current = kernel.table(owned, dests=False)  # deleting a service deletes its servers
        ops = withdraw(owned, current)
        failures = kernel.apply(ops) if ops else []
        self._applied.clear()
        self._installed = bool(failures)
        if ops:
            logger.info("%s: pool withdrawn (%d services)", self.name, len(ops) - len(failures))
        return len(ops) - len(failures), [str(error) for _, error in failures]

    def _sync(self, want: str | None) -> list[str]:
        """Bring the sync daemons to ``want`` (master, backup, or none): ours only --
        a daemon with another interface or syncid is not ours, unless it is in the
        way of ours (the kernel runs one master and one backup per namespace)."""
        template = self._sync_template
        if template is None or want == self._sync_running:
            return []
        errors = []
        kernel = self._kernel_handle()
        running = {daemon.state: daemon for daemon in kernel.daemons()}
        target = None
        if want is not None:
            target = SyncDaemon(
                want, template.interface, template.syncid, template.maxlen,
                template.group, template.port, template.ttl,
            )  # fmt: skip
        for state, daemon in running.items():
            ours = SyncDaemon(state, template.interface, template.syncid).same_as(daemon)
            in_the_way = target is not None and state == target.state and not target.same_as(daemon)
            if (ours and state != want) or in_the_way:
                try:
                    kernel.stop_daemon(state)
                    logger.info("%s: %s sync daemon stopped", self.name, state)
                except IpvsError as exc:
                    errors.append(str(exc))
        if target is not None and not (
            target.state in running and target.same_as(running[target.state])
        ):
            try:
                kernel.start_daemon(target)
                logger.info(
                    "%s: %s sync daemon on %s (syncid %d)",
                    self.name, target.state, target.interface, target.syncid,
                )  # fmt: skip
            except IpvsError as exc:
                errors.append(str(exc))
        if not errors:
            self._sync_running = want
        return errors

    # ------------------------------------------------------------ state file

    def status(self) -> dict[str, Any]:
        """For the state file: installed or not, the pool's shape, the sync daemon,
        the converge counters, and the dynamic weights in force (``dynamic_weights``,
        present when a check set one)."""
        with self._state:
            declared = dict(self._declared)
            wanted = self._wanted.installed
            weights = dict(self._weights)
        pool = self._pool
        counters = self._counters
        doc: dict[str, Any] = {
            "installed": self._installed,
            "wanted": wanted,
            "services": len(declared),
            "sync_daemon": self._sync_running,
            "converges": counters.converges,
            "operations": counters.operations,
            "failures": counters.failures,
            "last_error": counters.last_error,
            "last_seconds": round(counters.last_seconds, 6),
            "last_operations": counters.last_operations,
        }
        if weights:
            doc["dynamic_weights"] = {
                f"{service} -> {_dest_text(dest)}": weight
                for (service, dest), weight in sorted(
                    weights.items(), key=lambda item: (str(item[0][0]), _dest_text(item[0][1]))
                )
            }
        if pool is not None:
            entries = pool.services.values()
            doc["real_servers"] = sum(
                len(vs.real_servers) for e in entries if (vs := declared.get(e.service.key))
            )
            doc["alive"] = sum(len(e.alive) for e in entries)
            doc["quorum_lost"] = sorted(str(e.service.key) for e in entries if not e.quorum_up)
            doc["sorry"] = sorted(str(e.service.key) for e in entries if e.sorry)
        return doc


def _dest_key(server: RealServer | DestKey | tuple[str, int]) -> DestKey:
    if isinstance(server, RealServer):
        return server.key
    address, port = server
    return (ip_address(address), int(port))


def _dest_text(dest: DestKey) -> str:
    address, port = dest
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def _op_key(op: Operation) -> ServiceKey:
    return op.key
