"""One configured instance on Linux: a sans-IO core plus the I/O it asks for.

The :class:`InstanceRunner` feeds its core packets and timer expiries and
carries out the actions it returns. Each concern lives in its own module:

* :mod:`vrrpy.runtime.attach`: the interface, our own address, the VMAC, the sockets;
* :mod:`vrrpy.runtime.addresskeeper`: virtual addresses, retried until the kernel agrees;
* :mod:`vrrpy.runtime.announcing`: gratuitous ARP / unsolicited NA on keepalived's schedule;
* :mod:`vrrpy.runtime.pacing`: when the process wakes for the core's deadline.

Carrying out actions is isolated per action: an action that fails (netlink
refuses an address, a transition hook raises) is counted and logged, and the
ones after it still run -- above all the timer is always re-armed, so a fault
of ours never silences a Master. The clock is the event loop's monotonic
clock, handed to the core as ``now``; wall time appears only in the status,
for humans.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from vrrpy.backends.base import TransitionEvent
from vrrpy.backends.pipeline import Pipeline
from vrrpy.codec.carp import CarpAdvertisement
from vrrpy.codec.vrrp import Advertisement, PacketInfo
from vrrpy.core.actions import (
    Action,
    AddAddresses,
    Announce,
    RemoveAddresses,
    SendAdvertisement,
    Transition,
)
from vrrpy.core.droplog import DropLog
from vrrpy.core.state import State
from vrrpy.core.syncgroup import SyncGroup
from vrrpy.net.addresses import Netlink
from vrrpy.observe.histogram import ADVERT_INTERARRIVAL_BUCKETS, TAKEOVER_BUCKETS, Histogram
from vrrpy.runtime.addresskeeper import AddressKeeper, AddressOps, SyncAddressOps
from vrrpy.runtime.announcing import Announcements
from vrrpy.runtime.attach import Attachment, SocketFor, attach, detach
from vrrpy.runtime.cores import Core, apply_priority, encoder_for, make_core
from vrrpy.runtime.pacing import Beats, Pacer, Watch
from vrrpy.runtime.sockets import VRRPSocket, default_destination
from vrrpy.runtime.spec import InstanceSpec
from vrrpy.runtime.timers import LoopTimers, Timers

logger = logging.getLogger("vrrpy.runtime")

RECENT_TRANSITIONS = 10
"""How many transitions each instance remembers for the status page and vrrpctl."""

TransitionHook = Callable[["InstanceRunner", Transition], None]

REFUSAL_HOLD = 10.0
"""Seconds a node stays in FAULT after a backend refused Master (a DRBD disk not
UpToDate): then it becomes a Backup again, and may take over again if still needed,
asking its backends anew."""


class InstanceRunner:
    """Drives one core (:class:`~vrrpy.core.vrrp.VirtualRouter` or
    :class:`~vrrpy.core.carp.CarpRouter`, :mod:`vrrpy.runtime.cores`) on one interface
    (or its VMAC)."""

    def __init__(
        self,
        spec: InstanceSpec,
        loop: asyncio.AbstractEventLoop,
        netlink: Netlink,
        socket_for: SocketFor,
        announcer_for: Callable[[str], Any],
        on_transition: TransitionHook | None = None,
        timers: Timers | None = None,
        drain: Callable[[bool], None] | None = None,
        address_ops: AddressOps | None = None,
        beats: Beats | None = None,
        watch: Watch | None = None,
    ) -> None:
        self.spec = spec
        self.loop = loop
        self.netlink = netlink
        self._socket_for = socket_for
        self._announcer_for = announcer_for
        self._address_ops: AddressOps = address_ops or SyncAddressOps(netlink)
        self.on_transition = on_transition
        self.pacer = Pacer(
            loop, timers or LoopTimers(loop), self._perform, drain, beats, self._send, watch
        )
        self.family = spec.family
        self.router: Core | None = None
        self._encode = encoder_for(spec)
        self.attachment: Attachment | None = None
        self.addresses: AddressKeeper | None = None
        self.announcements: Announcements | None = None
        self.since = time.time()
        """Wall time of the last transition (for humans: the state file shows it)."""
        self._since_mono = loop.time()
        self.action_errors = 0
        """Actions that raised (each logged); the protocol went on regardless."""
        self._errlog = DropLog(logger, level=logging.ERROR, interval=10.0)
        self._wire: dict[
            int,
            tuple[
                Advertisement | CarpAdvertisement,
                VRRPSocket,
                list[tuple[bytes, Any]],
                tuple[object, VRRPSocket, Callable[..., int], tuple[Any, ...], Any] | None,
            ],
        ] = {}
        self._by_address = {iface.ip: iface for iface in spec.virtual_addresses}
        self._vips = tuple(self._by_address)
        self.pending_faults: dict[str, None] = {}
        """Fault reasons tracking holds for this instance (applied at start, kept across
        a restart of the instance)."""
        self.pending_priority: int | None = None
        """The effective priority tracking computed (None: the configured one)."""
        self.pipeline: Pipeline | None = None
        """This instance's backends (see :mod:`vrrpy.backends.pipeline`), or None."""
        self._refusals: dict[str, asyncio.TimerHandle] = {}
        self.group: SyncGroup | None = None
        """The sync group this instance moves with, once all its members run."""
        self._peers: Mapping[str, InstanceRunner] | None = None
        self.takeover = Histogram(TAKEOVER_BUCKETS)
        """Seconds from each Master_Down_Timer expiry that made us Master to the first
        announcement of the addresses (a backend's ``prepare`` included)."""
        self.interarrival = Histogram(ADVERT_INTERARRIVAL_BUCKETS)
        """Seconds between two adverts heard as Backup (kernel arrival times)."""
        self.recent: deque[tuple[float, str, str, str, str]] = deque(maxlen=RECENT_TRANSITIONS)
        """The last transitions, oldest first: (wall time, old, new, code, reason). Shown by
        the status page and vrrpctl, not in the state file (it would grow by ~1.5 kB each)."""
        self._timed_down: float | None = None
        self._last_heard: float | None = None

    # The attachment's facts, under the names the runtime and the tests use.

    @property
    def socket(self) -> VRRPSocket | None:
        """The socket adverts leave by: the interface's, or the VMAC's."""
        return self.attachment.socket if self.attachment else None

    @property
    def rx_socket(self) -> VRRPSocket | None:
        """The interface's socket (with a VMAC, adverts also arrive by :attr:`socket`)."""
        return self.attachment.rx_socket if self.attachment else None

    @property
    def addr_ifname(self) -> str:
        """Where the virtual addresses go: the interface, or its VMAC."""
        return self.attachment.addr_ifname if self.attachment else self.spec.interface

    @property
    def mac(self) -> str:
        """The MAC the announcements carry."""
        return self.attachment.mac if self.attachment else ""

    @property
    def lateness(self) -> deque[float]:
        """How late each recent scheduled advert left, in seconds (a bounded ring)."""
        return self.pacer.lateness

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Set up on the interface, then start the core (as Backup, or Master if owner).

        Raises :class:`~vrrpy.runtime.errors.InstanceStartError` when the host
        does not fit the configuration (nothing is left behind then).
        """
        spec = self.spec
        att = self.attachment = attach(spec, self.netlink, self._socket_for)
        self.addresses = AddressKeeper(
            spec.name, self.loop, self._address_ops, att.addr_ifindex, self._by_address
        )
        self.announcements = Announcements(
            spec,
            self.loop,
            self._announcer_for(att.addr_ifname),
            att.mac,
            self._is_master,
        )
        self.announcements.prepare(self._vips)
        router = make_core(spec, att.primary)
        self.router = self.pacer.router = router
        self.pacer.wire = None
        if self.pipeline is not None:
            self.pipeline.on_failure = self._hold_out_of_master
            self.pipeline.start_checks(self._check_changed)
        now = self.loop.time()
        # What tracking already knows is the router's before it starts: a fault
        # held now makes it start in FAULT, never pass through Backup.
        for reason in self.pending_faults:
            router.fault(reason, now)
        if self.pending_priority is not None and spec.priority != 255:
            apply_priority(spec, router, self.pending_priority, now)
        self._perform(router.startup(now))

    def stop(self) -> None:
        """Resign (priority 0 if Master), withdraw addresses, remove the VMAC, stop timers."""
        router = self.router
        if router is not None:
            self._perform(router.shutdown(self.loop.time()))
        self.pacer.cancel()
        self.pacer.router = None
        self.pacer.wire = None
        if self.pipeline is not None:
            # A check's reason is the check's to hold: a restart asks anew.
            for reason in self.pipeline.stop_checks():
                self.pending_faults.pop(reason, None)
        for handle in self._refusals.values():
            handle.cancel()
        self._refusals.clear()
        if self.announcements is not None:
            self.announcements.cancel()
        keeper = self.addresses
        att = self.attachment
        if keeper is not None and att is not None:
            # Whatever we added and still hold goes (a Backup's failed removal included).
            ours = [
                ip
                for ip, iface in self._by_address.items()
                if (att.addr_ifindex, iface) in self.netlink.added
            ]
            keeper.withdraw(ours)
            self._address_ops.acks()
            left = keeper.close()
            if left:
                logger.error(
                    "%s: could not remove %s on stop: remove by hand, or the next start "
                    "removes what vrrpy stamped",
                    self.spec.name,
                    ", ".join(str(self._by_address[ip]) for ip in left),
                )
        if att is not None:
            try:
                detach(self.spec, self.netlink, att)
            except Exception:
                logger.exception("%s: removing the VMAC failed", self.spec.name)
        self.router = None

    def _is_master(self) -> bool:
        router = self.router
        return router is not None and router.state is State.MASTER

    # --------------------------------------------------------------- events

    def receive(self, data: bytes, info: PacketInfo, arrival: float | None = None) -> None:
        """A packet for our VRID arrived on our interface (at ``arrival``: loop time, never
        later than now; None: now)."""
        router = self.router
        if router is not None:
            # The socket places each arrival no later than the end of its read, so no
            # later than now: only an unstamped packet needs the clock.
            now = self.loop.time() if arrival is None else arrival
            deadline = router.heard(data, info, now)
            if deadline is not None:
                # A Backup's repeat of its Master's advert: counted, its timer restarted.
                last = self._last_heard
                self._last_heard = now
                if last is not None:
                    self.interarrival.observe(now - last)
                pacer = self.pacer
                if not (pacer.watched and deadline >= pacer.watch.at):
                    pacer.rearm()  # (watched, and the watch wakes in time: nothing to do)
                return
            state = router.state
            if state is State.MASTER and self.pipeline is not None:
                self._master_receive(router, data, info, now)
                return
            counters = router.counters
            heard = counters.adverts_received
            actions = router.receive_packet(data, info, now)
            if counters.adverts_received != heard and state is State.BACKUP:
                last = self._last_heard
                self._last_heard = now
                if last is not None:
                    self.interarrival.observe(now - last)
            if actions:
                self._perform(actions)
            else:
                self.pacer.rearm()  # a Backup's deadline moved (later, or to Skew_Time)

    def _master_receive(self, router: Core, data: bytes, info: PacketInfo, now: float) -> None:
        """A Master with backends: keepalived's ``notify_master_rx_lower_pri`` when the
        advert was a weaker router's (a Master hears few adverts: no per-advert cost)."""
        before = router.counters.lower_priority_discarded
        actions = router.receive_packet(data, info, now)
        if actions:
            self._perform(actions)
        else:
            self.pacer.rearm()
        pipeline = self.pipeline
        if (
            pipeline is not None
            and router.counters.lower_priority_discarded != before
            and router.state is State.MASTER
        ):
            event = TransitionEvent(
                instance=self.spec.name,
                old=State.MASTER,
                new=State.MASTER,
                reason=f"lower priority advert from {info.source}",
                priority=router.priority,
                interface=self.spec.interface,
                vrid=self.spec.vrid,
                family=self.spec.family,
                addresses=tuple(self.spec.virtual_addresses),
            )
            pipeline.master_rx_lower_pri(event)

    def set_priority(self, priority: int) -> None:
        """Tracking changed our effective priority (never an owner's: 255 does not move)."""
        self.pending_priority = priority
        router = self.router
        if router is None or self.spec.priority == 255:
            return
        now = self.loop.time()
        before = (router.priority, getattr(router, "demote", 0))
        actions = apply_priority(self.spec, router, priority, now)
        changed = (router.priority, getattr(router, "demote", 0)) != before
        if self.group is not None:
            self._steps(self.group.moved(self.spec.name, actions, now))
        else:
            self._perform(actions)
        if changed and self.pipeline is not None:
            state = router.state
            self.pipeline.priority_changed(
                self._event(Transition(state, state, f"priority {priority}"))
            )

    def fault(self, reason: str) -> None:
        """A tracked object failed: ``reason`` held until :meth:`recover` (FAULT while any is)."""
        self.pending_faults[reason] = None
        router = self.router
        if router is None:
            return
        now = self.loop.time()
        if self.group is not None:
            self._steps(self.group.fault(self.spec.name, reason, now))
        else:
            self._perform(router.fault(reason, now))

    def recover(self, reason: str) -> None:
        """The tracked object behind ``reason`` is well again."""
        self.pending_faults.pop(reason, None)
        router = self.router
        if router is None:
            return
        now = self.loop.time()
        if self.group is not None:
            self._steps(self.group.recover(self.spec.name, reason, now))
        else:
            self._perform(router.recover(reason, now))

    # ---------------------------------------------------------- sync groups

    def join_group(self, group: SyncGroup, peers: Mapping[str, InstanceRunner]) -> None:
        """Become a member of ``group`` (``peers``: every runner, by name, for its steps)."""
        self.group = group
        self._peers = peers
        self.pacer.fire = self._group_timer

    def leave_group(self) -> None:
        """Stand alone again (the group was dissolved: a member stopped or a reload)."""
        self.group = None
        self._peers = None
        self.pacer.fire = None

    def _group_timer(self, now: float) -> list[Action]:
        """A grouped Backup's Master_Down_Timer goes through the group (Master together or
        not at all); every step is carried out here, so the pacer gets nothing to do."""
        router = self.router
        group = self.group
        if router is None or group is None or router.state is not State.BACKUP:
            return router.handle_timer(now) if router is not None else []
        self._steps(group.handle_timer(self.spec.name, now))
        return []

    def _steps(self, steps: list[tuple[str, list[Action]]]) -> None:
        """Carry out a sync group's steps: each member's actions by that member's runner."""
        peers = self._peers or {}
        for name, actions in steps:
            runner = self if name == self.spec.name else peers.get(name)
            if runner is not None:
                runner._perform(actions, follow=False)

    # -------------------------------------------------------------- actions

    def _perform(self, actions: list[Action], follow: bool = True) -> None:
        """Carry out ``actions`` in order, each on its own: a failure costs only itself.

        A member of a sync group then tells the group (unless these actions are
        the group's own steps, already followed): a transition of one member may
        move the others.

        With backends that take part in becoming Master (``prepare``: DRBD must
        be Primary first), the addresses of a takeover wait for them: the
        advert and the transition go now, the addresses and their announcement
        when every backend agreed (:meth:`_prepared`).
        """
        pipeline = self.pipeline
        if pipeline is not None and pipeline.prepares:
            becoming = next(
                (a for a in actions if type(a) is Transition and a.new is State.MASTER), None
            )
            if becoming is not None:
                held = [a for a in actions if type(a) in (AddAddresses, Announce)]
                actions = [a for a in actions if type(a) not in (AddAddresses, Announce)]
                event = self._event(becoming)
                pipeline.prepare(event, lambda refusal: self._prepared(event, held, refusal))
        try:
            self._perform_each(actions)
        finally:
            group = self.group
            if follow and group is not None and actions and self.router is not None:
                try:
                    if any(type(a) is Transition for a in actions) or self.router.faults:
                        self._steps(group.follow(self.spec.name, actions, self.loop.time()))
                except Exception as exc:
                    self.action_errors += 1
                    logger.error("%s: sync group %s failed: %s", self.spec.name, group.name, exc)

    def _perform_each(self, actions: list[Action]) -> None:
        try:
            for action in actions:
                try:
                    self._do(action)
                except Exception as exc:
                    self.action_errors += 1
                    self._errlog.log(
                        type(action).__name__,
                        self.loop.time(),
                        f"[{self.spec.name}] ",
                        "%s failed: %s",
                        type(action).__name__,
                        exc,
                    )
                    logger.debug("%s: %s failed", self.spec.name, action, exc_info=exc)
        finally:
            self.pacer.arm()
            # The kernel answered each address request inside its sendmsg: settle the
            # answers now, after the announcement has left.
            self._address_ops.acks()

    def _do(self, action: Action) -> None:
        kind = type(action)
        if kind is SendAdvertisement:
            self._send(action.advert)  # type: ignore[union-attr]
        elif kind is AddAddresses:
            assert self.addresses is not None
            self.addresses.install(action.addresses)  # type: ignore[union-attr]
        elif kind is Announce:
            assert self.announcements is not None
            self.announcements.start(action.addresses)  # type: ignore[union-attr]
            router = self.router
            down = router.master_down_at if router is not None else None
            if down is not None and down != self._timed_down:
                # The first announcement since that Master_Down_Timer (a split brain's
                # re-announcement, or a sync group's, has none of its own).
                self._timed_down = down
                self.takeover.observe(max(0.0, self.loop.time() - down))
        elif kind is RemoveAddresses:
            assert self.addresses is not None and self.announcements is not None
            self.announcements.cancel()
            self.addresses.withdraw(action.addresses)  # type: ignore[union-attr]
        elif kind is Transition:
            self._transitioned(action)  # type: ignore[arg-type]

    def _event(self, action: Transition) -> TransitionEvent:
        spec = self.spec
        router = self.router
        return TransitionEvent(
            instance=spec.name,
            old=action.old,
            new=action.new,
            reason=action.reason,
            priority=router.priority if router is not None else spec.priority,
            interface=spec.interface,
            vrid=spec.vrid,
            family=spec.family,
            addresses=tuple(spec.virtual_addresses),
        )

    def _prepared(self, event: TransitionEvent, held: list[Action], refusal: str | None) -> None:
        """Every backend's ``prepare`` is over: add and announce the addresses (still Master),
        or keep the node out of Master for :data:`REFUSAL_HOLD` seconds."""
        router = self.router
        if router is None or router.state is not State.MASTER:
            return  # left Master meanwhile: nothing to add
        if refusal is not None:
            self._hold_out_of_master(refusal)
            return
        self._perform(held, follow=False)
        if self.pipeline is not None:
            self.pipeline.transition(event)

    def _hold_out_of_master(self, reason: str) -> None:
        """A backend refused or failed on the way to Master: FAULT with ``reason`` for
        :data:`REFUSAL_HOLD` seconds, then Backup again (and asked again if elected)."""
        if reason in self._refusals:
            return
        self.fault(reason)
        self._refusals[reason] = self.loop.call_later(
            REFUSAL_HOLD, self._retry_after_refusal, reason
        )

    def _check_changed(self, new: str | None, old: str | None) -> None:
        """A backend's check changed its answer: hold ``new`` (FAULT), let ``old`` go
        (the new reason is taken first, so a changed reason never passes Backup)."""
        if new is not None:
            self.fault(new)
        if old is not None:
            self.recover(old)

    def _retry_after_refusal(self, reason: str) -> None:
        self._refusals.pop(reason, None)
        self.recover(reason)

    def _transitioned(self, action: Transition) -> None:
        pipeline = self.pipeline
        if pipeline is not None and not (action.new is State.MASTER and pipeline.prepares):
            # (Becoming Master with a prepare phase: the transition step runs once the
            # addresses are in, from _prepared.)
            pipeline.transition(self._event(action))
        self.since = time.time()
        self._since_mono = self.loop.time()
        self.recent.append(
            (self.since, action.old.value, action.new.value, action.code, action.reason)
        )
        self._last_heard = None  # an inter-arrival spans one stay in Backup
        self.pacer.precise = False
        logger.info(
            "%s: %s -> %s (%s)", self.spec.name, action.old.value, action.new.value, action.reason
        )
        if self.on_transition is not None:
            self.on_transition(self, action)

    def _send(self, advert: Advertisement | CarpAdvertisement) -> None:
        sock = self.socket
        if sock is None:
            return
        cached = self._wire.get(id(advert))
        if cached is None or cached[0] is not advert or cached[1] is not sock:
            peers = self.spec.unicast_peers or (default_destination(self.family),)
            encode = self._encode
            packets = [(encode(advert, sock.source, peer), sock.sockaddr(peer)) for peer in peers]
            if len(self._wire) > 16:
                self._wire.clear()  # a core that signs each advert anew (CARP's counter)
            cached = self._wire[id(advert)] = (advert, sock, packets, None)
            if len(packets) == 1:
                # To one destination, the next beats send these bytes without this call
                # (pacing.Beats). Made after this pass of the loop: a new Master's first
                # advert and its announcement must not wait for it (~0.15 ms).
                self.loop.call_soon(self._prepare_wire, advert)
        send_to = sock.send_to
        for payload, address in cached[2]:
            send_to(payload, address)
        self.pacer.wire = cached[3]

    def _prepare_wire(self, advert: Advertisement | CarpAdvertisement) -> None:
        """Make the beat's form of ``advert`` (see :meth:`_send`); an advert signed anew
        each time (CARP's counter) never matches the core's next one and is never used."""
        cached = self._wire.get(id(advert))
        if cached is None or cached[0] is not advert or cached[3] is not None:
            return
        sock = cached[1]
        wire = (advert, sock, *sock.prepared(*cached[2][0]))
        self._wire[id(advert)] = (advert, sock, cached[2], wire)
        if self.socket is sock and self.router is not None:
            self.pacer.wire = wire

    # ---------------------------------------------------------------- status

    def status(self) -> dict[str, object]:
        """What the state file says about this instance.

        Times for humans are wall-clock seconds since the epoch (``since``,
        ``last_transition``); durations are measured on the monotonic clock
        (``in_state_seconds``), so a clock step never makes them negative.
        """
        router = self.router
        spec = self.spec
        now = self.loop.time()
        counters: dict[str, object] = router.counters.as_dict() if router else {}
        last = counters.get("last_transition")
        if isinstance(last, float):
            counters["last_transition"] = time.time() - (now - last)
        keeper = self.addresses
        announcements = self.announcements
        status: dict[str, object] = {
            "state": router.state.value if router else State.INITIALIZE.value,
            "faults": list(router.faults) if router else list(self.pending_faults),
            "sync_group": self.group.name if self.group is not None else None,
            "backends": self.pipeline.status() if self.pipeline is not None else {},
            "priority": spec.priority,
            "effective_priority": router.priority if router else spec.priority,
            "vrid": spec.vrid,
            "interface": spec.interface,
            "since": self.since,
            "in_state_seconds": round(now - self._since_mono, 6),
            "master_address": str(router.master_address)
            if router and router.master_address
            else None,
            "counters": counters,
            "histograms": {
                "takeover_seconds": self.takeover.as_dict(),
                "advert_interarrival_seconds": self.interarrival.as_dict(),
            },
            "runtime": {
                "action_errors": self.action_errors,
                "address_add_failures": keeper.add_failures if keeper else 0,
                "address_remove_failures": keeper.remove_failures if keeper else 0,
                "addresses_pending": [str(a) for a in keeper.pending] if keeper else [],
                "announcements_sent": announcements.sent if announcements else 0,
                "announcements_failed": announcements.failed if announcements else 0,
                "stall_holds": self.pacer.stall_holds,
            },
        }
        if spec.is_carp and router is not None:
            # CARP's own: "priority" above is the notional base tracking moves.
            status["protocol"] = "carp"
            status["carp"] = {
                "vhid": spec.vrid,
                "advbase": spec.advbase,
                "advskew": getattr(router, "advskew", spec.advskew),
                "advskew_sent": router.priority,
                "demote": getattr(router, "demote", 0),
                "profile": spec.carp_profile,
            }
        else:
            status["protocol"] = spec.protocol
        return status
