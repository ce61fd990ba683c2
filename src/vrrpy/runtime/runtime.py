"""The Linux runtime: many instances, one event loop, one socket pair per interface and family.

Packets are demultiplexed by (interface, family, VRID) to the instance that
owns them; a VRID nobody configured is counted and dropped. Timers are
deadlines re-armed from each core's ``get_timer()`` on one timerfd, so an
advert leaves when its deadline comes, not when a polling loop next looks.

What wakes the loop is kept to what needs an answer now (wake-ups, not
packets, are what a daemon's CPU goes on): adverts for the VRIDs we are
Master of and priority-0 adverts wake it at once; the rest queue in the
kernel and are read, with their kernel arrival times, when a Backup checks
its Master_Down_Timer or at least every :data:`SWEEP_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vrrpy.backends.base import Backend, TransitionEvent
from vrrpy.backends.pipeline import Pipeline
from vrrpy.codec.vrrp import IPAddress, PacketInfo
from vrrpy.core.actions import Transition
from vrrpy.core.state import State
from vrrpy.core.syncgroup import SyncGroup
from vrrpy.net.acceptmode import AcceptFilter
from vrrpy.net.addresses import Netlink
from vrrpy.runtime.addressops import FastAddressOps
from vrrpy.runtime.attach import preflight
from vrrpy.runtime.instance import InstanceRunner, TransitionHook
from vrrpy.runtime.pacing import Beats, Watch
from vrrpy.runtime.realtime import worker_initializer
from vrrpy.runtime.refilter import SharedGrace
from vrrpy.runtime.sockets import VRRPSocket
from vrrpy.runtime.spec import InstanceSpec
from vrrpy.runtime.timers import TimerHandle, Timers, make_timers

logger = logging.getLogger("vrrpy.runtime")

SWEEP_INTERVAL = 1.0
"""Seconds between reads of the bulk queues when no Backup needs them sooner: counters
and master addresses are never older than this, and the queues never fill."""
DRAIN_REUSE = 0.0002
"""A Backup's early check reuses a read of the sockets made this recently (seconds):
the instances checked in one wake-up share one read."""
START_SLICE = 0.003
"""Seconds of instance start-ups between two turns of the loop (:meth:`Runtime.start_async`)."""
START_REST = 0.0005
"""The sleep between two slices of start-ups (seconds): the loop blocks, however briefly."""


def _freeze() -> None:
    """Move what the instances hold for their lifetime out of the garbage collector's way.

    With 2,000 instances a full collection walks about 128,000 objects: 120 ms
    with the loop stopped, every Master late at once. Frozen (``gc.freeze``,
    without collecting first: that collection would be the same stall), they
    are never walked again; what the runtime allocates afterwards is collected
    as usual. The collector is off while instances start (measured: 2,000
    starts went from 11.4 to 8.4 s), and on again afterwards.
    """
    gc.freeze()


def _job_result(job: asyncio.Future[bool]) -> bool:
    return not job.cancelled() and job.exception() is None and bool(job.result())


class _Reader:
    """Feeds one receiving socket pair to the VRID demultiplexer when its urgent queue wakes us.

    (The bulk queue is read by :meth:`Runtime.drain`; each read takes both.)
    Light traffic: one wake-up per packet, as it arrives. Heavy traffic (the
    next packet arrives within ``window`` of the last wake-up): the socket is
    polled every ``window`` instead, all queued packets at once, which turns a
    wake-up per advert into one per batch. ``window`` is 1/200 of the shortest
    advert interval on the socket (at most 1 ms). Processing late is harmless
    to the timers: each advert carries its kernel arrival time, and a Backup
    reads what is queued before it ever takes over.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timers: Timers,
        sock: VRRPSocket,
        deliver: Any,
        routes: dict[int, InstanceRunner],
    ) -> None:
        self.loop = loop
        self.timers = timers
        self.sock = sock
        self.deliver = deliver
        self.routes = routes
        self.fd = sock.fileno()
        self.last = 0.0
        self.polling = False
        self.closed = False
        self._handle: TimerHandle | None = None

    def window(self) -> float:
        intervals = [r.spec.advert_interval for r in self.routes.values()]
        return min(min(intervals, default=1.0) / 200.0, 0.001)

    def watch(self) -> None:
        self.polling = False
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        now = self.loop.time()
        self.sock.read(self.deliver)
        window = self.window()
        busy = now - self.last < window
        self.last = now
        if busy and not self.closed:
            self.loop.remove_reader(self.fd)
            self.polling = True
            self._handle = self.timers.call_at(now + window, self._poll)

    def _poll(self) -> None:
        self._handle = None
        if self.closed:
            return
        count = self.sock.read(self.deliver)
        now = self.loop.time()
        self.last = now
        if count >= 2:
            self._handle = self.timers.call_at(now + self.window(), self._poll)
        else:
            self.watch()

    def close(self) -> None:
        self.closed = True
        if self._handle is not None:
            self._handle.cancel()
        if not self.polling:
            self.loop.remove_reader(self.fd)


class Runtime:
    """Runs VRRP instances on this host (in the network namespace it runs in)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.on_transition = on_transition
        self._workers = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="vrrpy-worker", initializer=worker_initializer
        )
        """Threads for waits the loop must not make (RCU grace periods, ``nft``): real-time
        one priority below the loop when the loop is (see :mod:`vrrpy.runtime.realtime`)."""
        self.netlink = Netlink(worker_initializer)
        self.address_ops = FastAddressOps(self.netlink)
        """Virtual addresses by raw rtnetlink, from the loop (see :mod:`.addressops`)."""
        self.loop.add_reader(self.address_ops.fileno(), self.address_ops.acks)
        self.instances: dict[str, InstanceRunner] = {}
        self.sync_groups: dict[str, tuple[str, ...]] = {}
        """Configured sync groups: name -> member instance names (see :meth:`set_sync_groups`)."""
        self.groups: dict[str, SyncGroup] = {}
        """The sync groups in force: those whose members all run."""
        self.backends: dict[str, list[Backend]] = {}
        """Each instance's backends, by instance name (:meth:`set_backends`)."""
        self._pipelines: list[Pipeline] = []
        self._group_pipelines: dict[str, Pipeline] = {}
        self._group_states: dict[str, State] = {}
        self._tracked: dict[str, tuple[dict[str, None], int | None]] = {}
        """Tracking's word on each instance (fault reasons, effective priority), kept for
        instances not started yet and across restarts."""
        self.sockets: dict[tuple[str, int], VRRPSocket] = {}
        self.unknown_vrid = 0
        self._routes: dict[tuple[str, int], dict[int, InstanceRunner]] = {}
        self._announcers: dict[str, Any] = {}
        self.accept_filter = AcceptFilter()
        self.timers = make_timers(self.loop)
        clock = self.loop.time
        if type(self.loop).time is asyncio.BaseEventLoop.time:
            clock = time.monotonic  # what loop.time() returns, without its Python frame
        self.beats = Beats(self.timers, clock)
        self.watch = Watch(self.timers, clock, self.drain)
        """The Backups' shared check (see :class:`~vrrpy.runtime.pacing.Watch`)."""
        """The Masters' shared wake-ups (see :class:`~vrrpy.runtime.pacing.Beats`)."""
        self._after_deliveries = SharedGrace(self.loop, self._workers)
        self._bulk = False
        self._nft: ThreadPoolExecutor | None = None
        self._nft_job: asyncio.Future[bool] | None = None
        self._nft_again = False
        self.accept_filter_errors = 0
        self._readers: dict[tuple[str, int], _Reader] = {}
        self._drained_at = -1.0
        self._sweep: TimerHandle | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self, specs: Iterable[InstanceSpec]) -> None:
        """Start every instance in ``specs`` (stopping the ones already started on failure)."""
        for _ in self._starting(specs):
            pass

    def _starting(self, specs: Iterable[InstanceSpec]) -> Iterator[None]:
        """Start ``specs`` one by one, yielding after each (the one body of both starts).

        One read of each interface serves the whole batch: its primary address,
        MAC and link-local do not change, and the virtual addresses found on it
        before we started are the only stale ones there can be. On failure, the
        instances already started are stopped again.
        """
        started: list[str] = []
        self._bulk = True
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self.netlink.cached():
                for spec in specs:
                    self.add(spec)
                    started.append(spec.name)
                    yield
        except BaseException:
            for name in started:
                self.remove(name)
            raise
        finally:
            self._bulk = False
            if collecting:
                gc.enable()
        self._regroup()
        _freeze()
        self._report_accept_filter(self.instances.values())

    def add(self, spec: InstanceSpec) -> InstanceRunner:
        """Start one instance."""
        if spec.name in self.instances:
            raise ValueError(f"instance {spec.name!r} is already running")
        runner = InstanceRunner(
            spec,
            self.loop,
            self.netlink,
            self._socket_for,
            self._announcer_for,
            self._transitioned,
            self.timers,
            self.drain,
            self.address_ops,
            self.beats,
            self.watch,
        )
        self.instances[spec.name] = runner  # before start: its first transition is reported
        backends = self.backends.get(spec.name)
        if backends:
            runner.pipeline = Pipeline(spec.name, backends, self.loop)
            self._pipelines.append(runner.pipeline)
        tracked = self._tracked.get(spec.name)
        if tracked is not None:
            runner.pending_faults = dict(tracked[0])
            runner.pending_priority = tracked[1]
        try:
            runner.start()
        except BaseException:
            del self.instances[spec.name]
            runner.stop()
            self._close_unused()
            raise
        for sock in {runner.rx_socket, runner.socket}:
            assert sock is not None
            self._routes.setdefault((sock.ifname, runner.family), {})[spec.vrid] = runner
        if spec.is_carp or (runner.router is not None and runner.router.state is State.MASTER):
            # An owner is Master before its routes existed; a CARP host's adverts wake us
            # from the start (its bow-out is not priority 0: see _set_urgent).
            self._update_urgent(runner)
        if not self._bulk:
            self._report_accept_filter([runner])
        return runner

    def remove(self, name: str) -> dict[str, object]:
        """Stop one instance as on SIGTERM: priority 0 if Master, addresses withdrawn.

        Returns the instance's final status (state INIT, its counters).
        """
        if self.instances[name].group is not None:
            self._ungroup(self.instances[name].group.name)  # type: ignore[union-attr]
        runner = self.instances.pop(name)
        sockets = {runner.rx_socket, runner.socket}
        runner.stop()
        final = runner.status()
        for sock in sockets:
            if sock is None:
                continue
            key = (sock.ifname, runner.family)
            routes = self._routes.get(key, {})
            routes.pop(runner.spec.vrid, None)
            if not routes:
                self._close_socket(key)
            else:
                self._set_urgent(key)
        if not self._bulk:
            self._update_accept_filter()
        return final

    async def start_async(self, specs: Iterable[InstanceSpec]) -> None:
        """:meth:`start`, handing the event loop back every :data:`START_SLICE` seconds.

        Starting 2,000 instances takes a fraction of a second of CPU; in
        between, the adverts of the instances already started must be received
        and sent, or they all time out together and elect themselves. Yielding
        after every instance made each start wait for a whole turn of a loop
        busy with the others' adverts (6.4 s for 2,000); slices of
        :data:`START_SLICE` keep both going. Each slice ends in a short real
        sleep (:data:`START_REST`): a real-time loop that never blocks would
        exhaust ``RLIMIT_RTTIME`` (500 ms) in a long start.
        """
        slice_end = self.loop.time() + START_SLICE
        for _ in self._starting(specs):
            if self.loop.time() >= slice_end:
                await asyncio.sleep(START_REST)
                slice_end = self.loop.time() + START_SLICE

    def drain(self, force: bool = True) -> None:
        """Process every advert already queued on the receiving sockets, now.

        ``force=False`` skips it if a read finished less than :data:`DRAIN_REUSE` ago.
        """
        now = self.loop.time()
        if not force and now - self._drained_at < DRAIN_REUSE:
            return
        for reader in list(self._readers.values()):
            reader.sock.read(reader.deliver)
        self._drained_at = self.loop.time()

    def _swept(self) -> None:
        self._sweep = None
        try:
            self.drain(False)
        finally:
            self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self._sweep is None and self._readers:
            # Half an interval of slack: the sweep rides on another wake-up if it can.
            when = self.loop.time() + SWEEP_INTERVAL
            self._sweep = self.timers.call_at(when, self._swept, SWEEP_INTERVAL / 2)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Add or remove many instances; the nftables table is rewritten once, at the end."""
        self._bulk = True
        try:
            yield
        finally:
            self._bulk = False
            self._update_accept_filter()

    def stop(self) -> None:
        """Stop every instance, then close sockets and netlink."""
        with self.batch():
            for name in list(self.instances):
                self.remove(name)
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for key in list(self.sockets):
            self._close_socket(key)
        if self._nft is not None:
            self._nft.shutdown(wait=True, cancel_futures=True)
            self._nft = None
        for announcer in self._announcers.values():
            announcer.close()
        self._announcers.clear()
        try:
            self.accept_filter.clear()
        except Exception:
            logger.exception("removing the nftables table inet vrrpy failed")
        self.timers.close()
        self.loop.remove_reader(self.address_ops.fileno())
        self.address_ops.close()
        self.netlink.close()
        self._workers.shutdown(wait=False, cancel_futures=True)

    def reload(self, specs: Iterable[InstanceSpec]) -> tuple[list[str], list[str], list[str]]:
        """Apply a new configuration, all or nothing: unchanged instances keep running untouched.

        Returns (added, removed, restarted) instance names. An instance whose
        configuration changed is stopped and started again.

        First every new or changed instance is checked against the host
        without changing anything (:func:`~vrrpy.runtime.attach.preflight`):
        a missing interface or address refuses the whole reload before any
        running instance is touched. Then the new instances start; should one
        still fail, the ones started are stopped again and the reload is
        refused. Only then are changed instances restarted and removed ones
        stopped; a changed instance that fails to start again is started with
        its old configuration, and the error is raised after every step has
        been undone that can be.
        """
        wanted = {spec.name: spec for spec in specs}
        removed = [name for name in self.instances if name not in wanted]
        restarted = [
            name
            for name, spec in wanted.items()
            if name in self.instances and self.instances[name].spec != spec
        ]
        added = [name for name in wanted if name not in self.instances]
        with self.netlink.cached():
            for name in restarted + added:
                preflight(wanted[name], self.netlink)
        old = {name: self.instances[name].spec for name in restarted}
        done: list[str] = []
        with self.batch():
            try:
                for name in added:
                    self.add(wanted[name])
                    done.append(name)
            except BaseException:
                for name in done:
                    self.remove(name)
                raise
            failure: BaseException | None = None
            for name in restarted:
                self.remove(name)
                try:
                    self.add(wanted[name])
                except Exception as exc:
                    logger.error("%s: restart failed (%s): back to its old settings", name, exc)
                    self.add(old[name])
                    failure = failure or exc
            for name in removed:
                self.remove(name)
            if failure is not None:
                raise failure
        self._regroup()
        _freeze()
        self._report_accept_filter([self.instances[name] for name in restarted + added])
        return added, removed, restarted

    # -------------------------------------------------------------- backends

    def set_backends(self, name: str, backends: list[Backend]) -> None:
        """Give instance ``name`` its backends (taking effect when it next starts)."""
        self.backends[name] = list(backends)

    def set_group_backends(self, name: str, backends: list[Backend]) -> None:
        """Give sync group ``name`` backends of its own, run once per *group* transition
        (events of kind ``GROUP``, priority 0, as keepalived's group notifies)."""
        pipeline = Pipeline(name, backends, self.loop)
        self._group_pipelines[name] = pipeline
        self._pipelines.append(pipeline)

    def _group_moved(self, group: SyncGroup, reason: str, new: State | None = None) -> None:
        """Tell the group's own backends when the group's state changed."""
        state = group.state if new is None else new
        last = self._group_states.get(group.name, State.INITIALIZE)
        if state is last:
            return
        self._group_states[group.name] = state
        pipeline = self._group_pipelines.get(group.name)
        if pipeline is not None:
            event = TransitionEvent(group.name, last, state, group.last_reason or reason, 0)
            pipeline.transition(dataclasses.replace(event, kind="GROUP"))

    async def close_backends(self) -> None:
        """After :meth:`stop`: let every pipeline finish its last transition (within the
        backends' timeouts: a Master's stop steps run), then close the backends."""
        pipelines, self._pipelines = self._pipelines, []
        await asyncio.gather(*(p.close() for p in pipelines), return_exceptions=True)

    # ------------------------------------------------------- tracking, groups

    def fault(self, name: str, reason: str) -> None:
        """Tracking: ``name`` holds the fault ``reason`` (FAULT while it holds any)."""
        faults, _ = self._tracked.setdefault(name, ({}, None))
        faults[reason] = None
        runner = self.instances.get(name)
        if runner is not None:
            runner.fault(reason)

    def recover(self, name: str, reason: str) -> None:
        """Tracking: the fault ``reason`` of ``name`` has cleared."""
        faults, _ = self._tracked.setdefault(name, ({}, None))
        faults.pop(reason, None)
        runner = self.instances.get(name)
        if runner is not None:
            runner.recover(reason)

    def set_priority(self, name: str, priority: int) -> None:
        """Tracking: ``name``'s effective priority is now ``priority``."""
        faults, _ = self._tracked.get(name, ({}, None))
        self._tracked[name] = (faults, priority)
        runner = self.instances.get(name)
        if runner is not None:
            runner.set_priority(priority)

    def set_sync_groups(self, groups: dict[str, tuple[str, ...]]) -> None:
        """Configure the sync groups (name -> member names); in force once all members run.

        Groups that changed are dissolved at once (their members stand alone,
        every fault the group made them hold is cleared); the new ones form at
        the end of the next start or reload, or now if their members run.
        """
        for name, members in self.sync_groups.items():
            if groups.get(name) != members and name in self.groups:
                self._ungroup(name)
        self.sync_groups = dict(groups)
        if not self._bulk:
            self._regroup()

    def _regroup(self) -> None:
        """Form every configured group whose members all run and that is not in force."""
        now = self.loop.time()
        for name, members in self.sync_groups.items():
            runners = [self.instances.get(m) for m in members]
            if name in self.groups or any(r is None or r.router is None for r in runners):
                continue
            group = SyncGroup(name, {r.spec.name: r.router for r in runners if r and r.router})
            self.groups[name] = group
            for member in members:
                self.instances[member].join_group(group, self.instances)
            # A member's fault of its own takes the others to FAULT now.
            first = self.instances[members[0]]
            first._steps(group.follow(members[0], [], now))
            self._group_moved(group, "sync group formed")
            logger.info(
                "sync group %s formed: %s (%s)", name, ", ".join(members), group.state.value
            )

    def _ungroup(self, name: str) -> None:
        """Dissolve a group: members stand alone, and the faults it issued are cleared."""
        group = self.groups.pop(name, None)
        if group is None:
            return
        self._group_moved(group, "sync group dissolved", State.INITIALIZE)
        self._group_states.pop(name, None)
        issued = f"sync group {name}:"
        for member in group.members:
            runner = self.instances.get(member)
            if runner is None:
                continue
            runner.leave_group()
            router = runner.router
            if router is None:
                continue
            for reason in [r for r in router.faults if r.startswith(issued)]:
                runner._perform(router.recover(reason, self.loop.time()))
        logger.info("sync group %s dissolved", name)

    def group_status(self) -> dict[str, dict[str, object]]:
        """Each sync group in force or configured: its state, members and last change."""
        out: dict[str, dict[str, object]] = {}
        for name, members in self.sync_groups.items():
            group = self.groups.get(name)
            out[name] = {
                "state": group.state.value if group is not None else "INIT",
                "members": list(members),
                "in_force": group is not None,
                "last_reason": group.last_reason if group is not None else "",
            }
        return out

    # --------------------------------------------------------------- status

    def status(self) -> dict[str, dict[str, object]]:
        """Per-instance status, as the state file shows it (queued adverts read first)."""
        self.drain(False)
        return {name: runner.status() for name, runner in self.instances.items()}

    # ------------------------------------------------------------ internals

    def _socket_for(
        self, ifname: str, ifindex: int, family: int, source: IPAddress, multicast: bool
    ) -> VRRPSocket:
        """The shared receiving socket of (``ifname``, ``family``), opened on first use.

        It feeds the VRID demultiplexer. It joins the VRRP multicast group only
        for a multicast instance: an interface whose instances all have unicast
        peers joins nothing (a stranger's multicast advert is then not even
        queued), and joins the group when a multicast instance arrives.
        """
        key = (ifname, family)
        sock = self.sockets.get(key)
        if sock is None:
            sock = VRRPSocket(
                ifname,
                ifindex,
                family,
                source,
                join=True,
                after_deliveries=self._after_deliveries,
                group=multicast,
            )
            self.sockets[key] = sock
            routes = self._routes.setdefault(key, {})
            reader = _Reader(self.loop, self.timers, sock, self._deliver_for(routes), routes)
            self._readers[key] = reader
            reader.watch()
            self._schedule_sweep()
        elif multicast:
            sock.join_group()
        return sock

    def _deliver_for(self, routes: dict[int, InstanceRunner]) -> Any:
        def deliver(data: bytes, info: PacketInfo, arrival: float | None) -> None:
            runner = routes.get(data[1]) if len(data) > 1 else None
            if runner is None:
                self.unknown_vrid += 1
                return
            runner.receive(data, info, arrival)

        return deliver

    def _transitioned(self, runner: InstanceRunner, transition: Transition) -> None:
        if State.MASTER in (transition.old, transition.new):
            # Only a Master's VRIDs wake us: the other transitions (a start as
            # Backup, a Backup's stop) leave the filters as they are.
            self._update_urgent(runner)
        if runner.group is not None:
            self._group_moved(runner.group, transition.reason)
        if self.on_transition is not None:
            self.on_transition(runner, transition)

    def _update_urgent(self, runner: InstanceRunner) -> None:
        """The VRIDs that wake us changed with ``runner``'s state: refilter its sockets."""
        for sock in {runner.rx_socket, runner.socket}:
            if sock is not None:
                self._set_urgent((sock.ifname, runner.family))

    def _set_urgent(self, key: tuple[str, int]) -> None:
        sock = self.sockets.get(key)
        routes = self._routes.get(key)
        if sock is None or routes is None:
            return
        # A CARP host's adverts always wake us: its resignation (the bow-out) is not
        # priority 0 but advbase 255, which the filters do not look for, and CARP
        # deployments are a few hosts, not hundreds.
        masters = frozenset(
            vrid
            for vrid, r in routes.items()
            if r.spec.is_carp or (r.router is not None and r.router.state is State.MASTER)
        )
        if masters - sock.urgent:
            # Adverts for a VRID that has just become urgent may already wait in
            # the bulk queue: read them soon, not at the next sweep (forced: the
            # read that led to this transition was a moment ago).
            self.loop.call_soon(self.drain, True)
        sock.set_urgent(masters)

    def _close_unused(self) -> None:
        """Close the sockets no instance uses (one opened for an instance that failed)."""
        for key in [k for k in self.sockets if not self._routes.get(k)]:
            self._close_socket(key)

    def _close_socket(self, key: tuple[str, int]) -> None:
        sock = self.sockets.pop(key, None)
        reader = self._readers.pop(key, None)
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()
        self._routes.pop(key, None)

    @staticmethod
    def _filtered(spec: InstanceSpec) -> bool:
        """RFC 9568 Accept_Mode False applies: not accepting, and not the address owner."""
        return not spec.accept and spec.priority != 255

    def _report_accept_filter(self, runners: Iterable[InstanceRunner]) -> None:
        """Bring the nftables table up to date, off the loop; warn if it cannot be enforced."""
        filtered = [r.spec.name for r in runners if self._filtered(r.spec)]

        def report(done: bool) -> None:
            if done:
                return
            for name in filtered:
                logger.warning(
                    "%s: accept = false is not enforced (%s): the virtual addresses "
                    "accept traffic as with accept = true",
                    name,
                    "no nft command" if not self.accept_filter.available else "nft failed",
                )

        self._update_accept_filter(report)

    def _update_accept_filter(self, then: Any = None) -> None:
        """Rewrite the ``inet vrrpy`` table in a worker thread (``nft`` is a process).

        The event loop never waits for it: requests made while one runs are
        folded into one more run with the addresses of that moment.
        """
        if self._nft_job is not None:
            self._nft_again = True
            if then is not None:
                self._nft_job.add_done_callback(lambda job: then(_job_result(job)))
            return
        addresses = [
            iface.ip
            for runner in self.instances.values()
            if self._filtered(runner.spec)
            for iface in runner.spec.virtual_addresses
        ]
        if self._nft is None:
            self._nft = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="vrrpy-nft", initializer=worker_initializer
            )
        job = self._nft_job = asyncio.wrap_future(
            self._nft.submit(self._apply_filter, addresses), loop=self.loop
        )

        def finished(job: asyncio.Future[bool]) -> None:
            self._nft_job = None
            if not _job_result(job):
                self.accept_filter_errors += 1
            if self._nft_again:
                self._nft_again = False
                self._update_accept_filter()

        job.add_done_callback(finished)
        if then is not None:
            job.add_done_callback(lambda job: then(_job_result(job)))

    def _apply_filter(self, addresses: list[IPAddress]) -> bool:
        try:
            return self.accept_filter.apply(addresses)
        except Exception:
            logger.exception("nft failed: Accept_Mode is not enforced")
            return False

    def _announcer_for(self, ifname: str) -> Any:
        announcer = self._announcers.get(ifname)
        if announcer is None:
            from vrrpy.net.announce import Announcer

            announcer = self._announcers[ifname] = Announcer(ifname)
        return announcer
