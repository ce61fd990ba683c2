"""One configured VRRP instance on Linux: a sans-IO core plus the I/O it asks for.

The :class:`InstanceRunner` feeds the core packets and timer expiries, and
performs its actions: adverts through the shared interface socket, addresses
through netlink, gratuitous ARP / unsolicited NA through the announcer. The
clock is the event loop's monotonic clock, handed to the core as ``now``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from ipaddress import IPv6Interface
from typing import TYPE_CHECKING, Any

from vrrpy.codec.vrrp import Advertisement, IPAddress, PacketInfo, encode_vrrp
from vrrpy.core.actions import (
    Action,
    AddAddresses,
    Announce,
    RemoveAddresses,
    SendAdvertisement,
    Transition,
)
from vrrpy.core.state import State
from vrrpy.core.vrrp import VirtualRouter
from vrrpy.net.addresses import ADDRESS_PROTO, Interface, Netlink, vmac_address
from vrrpy.runtime.sockets import VRRPSocket, default_destination
from vrrpy.runtime.timers import LoopTimers, TimerHandle, Timers

if TYPE_CHECKING:
    from vrrpy.daemon.config import InstanceConfig

logger = logging.getLogger("vrrpy.runtime")

TransitionHook = Callable[["InstanceRunner", Transition], None]

ADVERT_PHASES = 1
"""On how many phases of its interval a Master's adverts may leave: 1 means on the beat.

Waking a sleeping process costs far more CPU than what it then does (40-60 us
on a virtual machine, against about 10 us to send one advert), so Masters
share wake-ups: when one becomes Master (or its cadence is reset) its next
advert is brought forward to the last beat before it -- a whole multiple of
its interval on the monotonic clock, at most one interval early, once. From
then on it keeps its cadence on the beat, and all the Masters with the same
interval send in one wake-up, each advert still exactly one interval after the
last. (keepalived's Masters, all elected together at startup, fall into step
the same way.) Measured with one process driving 50 Masters at 100 ms in a
lab namespace (user + system CPU per advert): 1 phase 22 us, 2 phases 31,
4 phases 41, 8 phases 48."""

TAKEOVER_LEAD = 0.0003
"""How early a Backup wakes before its Master_Down_Timer expires (seconds).

The last stretch is spent in a short busy wait, so the new Master's first advert
leaves at the deadline rather than a wake-up latency (50-150 us) after it. Only
a takeover pays this; adverts of a Master are timed by the timerfd alone."""


class InstanceRunner:
    """Drives one :class:`VirtualRouter` on one interface (or its VMAC)."""

    def __init__(
        self,
        spec: InstanceConfig,
        loop: asyncio.AbstractEventLoop,
        netlink: Netlink,
        socket_for: Callable[[str, int, int, IPAddress, bool], VRRPSocket],
        announcer_for: Callable[[str], Any],
        on_transition: TransitionHook | None = None,
        timers: Timers | None = None,
        drain: Callable[[bool], None] | None = None,
    ) -> None:
        self.spec = spec
        self.loop = loop
        self.netlink = netlink
        self._socket_for = socket_for
        self._announcer_for = announcer_for
        self.on_transition = on_transition
        self.timers: Timers = timers or LoopTimers(loop)
        self._drain = drain
        """Reads every advert already queued on our sockets (see :meth:`_on_timer`);
        ``drain(False)`` may reuse a read made a moment ago for another instance."""
        self._precise = False
        """The Backup's deadline did not move at its last check: wake exactly then."""
        self.family = spec.virtual_addresses[0].version
        self.router: VirtualRouter | None = None
        self.since = time.time()
        self.lateness: list[float] = []
        """How late each scheduled advert left, in seconds (the last 10,000)."""
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._announce_handles: list[asyncio.TimerHandle] = []
        self._wire: dict[int, tuple[Advertisement, list[tuple[bytes, IPAddress]]]] = {}
        self._by_address: dict[IPAddress, Interface] = {
            iface.ip: iface for iface in spec.virtual_addresses
        }
        self.ifindex = 0
        self.addr_ifindex = 0
        self.addr_ifname = spec.interface
        self.mac = ""
        self.socket: VRRPSocket | None = None
        """The socket adverts leave by: the interface's, or the VMAC's."""
        self.rx_socket: VRRPSocket | None = None
        """The interface's socket (joined to the group); with a VMAC, adverts also arrive
        by :attr:`socket`."""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Resolve the interface, clean stale addresses, open the sockets, start the core."""
        spec = self.spec
        nl = self.netlink
        self.ifindex = nl.index(spec.interface)
        vips = set(self._by_address)
        if self.family == 4:
            primary: IPAddress | None = nl.primary_ipv4(self.ifindex, vips)  # type: ignore[arg-type]
        else:
            primary = nl.link_local(self.ifindex)
        if primary is None:
            what = "IPv4 address" if self.family == 4 else "usable IPv6 link-local address"
            raise RuntimeError(f"{spec.name}: interface {spec.interface} has no {what}")
        if spec.priority == 255:
            if spec.use_vmac:
                raise RuntimeError(
                    f"{spec.name}: use_vmac is not supported for the address owner "
                    "(priority 255): its addresses stay where they are configured"
                )
            present = {iface.ip for iface in nl.addresses(self.ifindex)}
            missing = [str(a) for a in vips if a not in present]
            if missing:
                raise RuntimeError(
                    f"{spec.name}: priority 255 means address owner, but "
                    f"{', '.join(missing)} is not configured on {spec.interface}"
                )
        self.addr_ifindex, self.addr_ifname = self.ifindex, spec.interface
        self.mac = nl.mac(self.ifindex)
        if spec.use_vmac:
            self.addr_ifname = f"vrrp{self.family}.{spec.vrid}"
            self.mac = vmac_address(spec.vrid, self.family)
            self.addr_ifindex = nl.add_vmac(self.ifindex, self.addr_ifname, self.mac)
            if self.family == 4:
                # The parent must not answer ARP for the virtual addresses with its own
                # MAC (keepalived sets the same), nor for its own through the macvlan.
                nl.hold_sysctl(4, spec.interface, "arp_ignore", 1)
                nl.hold_sysctl(4, spec.interface, "arp_filter", 1)
            else:
                # Adverts leave the macvlan from the parent's link-local address.
                nl.add(self.addr_ifindex, IPv6Interface(f"{primary}/64"))
        if spec.priority != 255:
            self._clean_stale(vips)
        self.rx_socket = self._socket_for(spec.interface, self.ifindex, self.family, primary, True)
        if spec.use_vmac:
            # Also a receiving socket: a frame whose source MAC is the virtual MAC of
            # our own macvlan (another router of the group, Master, sending from the
            # same VMAC) is handed by the kernel to that macvlan, never to the parent.
            self.socket = self._socket_for(
                self.addr_ifname, self.addr_ifindex, self.family, primary, True
            )
        else:
            self.socket = self.rx_socket
        self.router = VirtualRouter(spec.router_config(primary))
        self._perform(self.router.startup(self.loop.time()))

    def _clean_stale(self, vips: set[IPAddress]) -> None:
        """Remove virtual addresses an earlier run left behind (we start as Backup).

        On kernels that keep an address's protocol (Linux >= 6.3) only addresses
        stamped by vrrpy are removed; one the administrator configured is left
        alone, with a warning. Older kernels cannot tell them apart: there, as
        keepalived does at startup, any virtual address found is removed.
        """
        nl = self.netlink
        name = self.spec.name
        for iface, proto in nl.addresses_with_proto(self.addr_ifindex).items():
            if iface.ip not in vips:
                continue
            if nl.marks and proto != ADDRESS_PROTO:
                logger.warning(
                    "%s: %s is on %s but vrrpy did not put it there: left alone; this host "
                    "answers for it in every state (priority 255 declares the owner)",
                    name,
                    iface,
                    self.addr_ifname,
                )
                continue
            nl.remove(self.addr_ifindex, iface, force=True)
            logger.warning(
                "%s: removed %s from %s, left by an earlier run (we start as Backup)",
                name,
                iface,
                self.addr_ifname,
            )

    def stop(self) -> None:
        """Resign (priority 0 if Master), withdraw addresses, remove the VMAC, stop timers."""
        router = self.router
        if router is not None:
            self._perform(router.shutdown(self.loop.time()))
        self._cancel_timer()
        self._cancel_announces()
        for key in [k for k in self.netlink.added if k[0] == self.addr_ifindex]:
            self.netlink.remove(*key)
        if self.spec.use_vmac and self.addr_ifname != self.spec.interface:
            self.netlink.remove_link(self.addr_ifname)
            if self.family == 4:
                self.netlink.release_sysctl(4, self.spec.interface, "arp_ignore")
                self.netlink.release_sysctl(4, self.spec.interface, "arp_filter")
        self.router = None

    # --------------------------------------------------------------- events

    def receive(self, data: bytes, info: PacketInfo, arrival: float | None = None) -> None:
        """A packet for our VRID arrived on our interface (at ``arrival``, loop time)."""
        router = self.router
        if router is not None:
            now = self.loop.time()
            if arrival is not None and arrival < now:
                now = arrival
            actions = router.receive_packet(data, info, now)
            if actions:
                self._perform(actions)
            else:
                self._arm()  # a Backup's deadline moved (later, or to Skew_Time)

    def set_priority(self, priority: int) -> None:
        """Tracking changed our priority."""
        if self.router is not None:
            self._perform(self.router.set_priority(priority, self.loop.time()))

    def _on_timer(self) -> None:
        self._timer = None
        router = self.router
        if router is None:
            return
        due = self._timer_at
        backup = router.state is State.BACKUP
        if backup and self._drain is not None:
            # A Backup's adverts wait in the bulk queue until it needs them: now.
            self._drain(False)
            if self.router is not router or router.state is not State.BACKUP:
                return
        now = self.loop.time()
        deadline = router.get_timer()
        if deadline is not None and deadline > now:
            if not backup or deadline - now > 2 * TAKEOVER_LEAD:
                # A check (early, with another instance's wake-up): the deadline has
                # moved with the adverts just read, or it stands and we wake exactly.
                self._precise = backup and deadline == due
                self._timer_at = None
                self._arm()
                return
            # Woken TAKEOVER_LEAD early for a takeover: wait out the last
            # microseconds here, so the wake-up latency is not added to it.
            while (now := self.loop.time()) < deadline:
                pass
        if backup and self._drain is not None:
            # Never declare the Master dead while one of its adverts sits unread in
            # our sockets (a busy loop, a burst of work): read what is queued first.
            self._drain(True)
            if self.router is not router or (router.get_timer() or now) > now:
                self._timer_at = None
                self._arm()
                return
        actions = router.handle_timer(now)
        if due is not None and actions and isinstance(actions[0], SendAdvertisement):
            self.lateness.append(now - due)
            if len(self.lateness) > 10_000:
                del self.lateness[:5_000]
        self._perform(actions)

    # -------------------------------------------------------------- actions

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendAdvertisement):
                self._send(action.advert)
            elif isinstance(action, AddAddresses):
                for address in action.addresses:
                    self.netlink.add(self.addr_ifindex, self._by_address[address])
            elif isinstance(action, RemoveAddresses):
                self._cancel_announces()
                for address in action.addresses:
                    self.netlink.remove(self.addr_ifindex, self._by_address[address])
            elif isinstance(action, Announce):
                self._announce(action.addresses)
            elif isinstance(action, Transition):
                self.since = time.time()
                self._precise = False
                logger.info(
                    "%s: %s -> %s (%s)",
                    self.spec.name,
                    action.old.value,
                    action.new.value,
                    action.reason,
                )
                if self.on_transition is not None:
                    self.on_transition(self, action)
        self._arm()

    def _send(self, advert: Advertisement) -> None:
        sock = self.socket
        if sock is None:
            return
        cached = self._wire.get(id(advert))
        if cached is None or cached[0] is not advert:
            peers = self.spec.unicast_peers or (default_destination(self.family),)
            packets = [(encode_vrrp(advert, sock.source, peer), peer) for peer in peers]
            cached = self._wire[id(advert)] = (advert, packets)
        for payload, peer in cached[1]:
            sock.send(payload, peer)

    def _announce(self, addresses: tuple[IPAddress, ...]) -> None:
        from vrrpy.net.announce import schedule

        self._cancel_announces()
        spec = self.spec
        announcer = self._announcer_for(self.addr_ifname)
        now = self.loop.time()
        for at in schedule(now, spec.garp_repeat, spec.garp_interval, spec.garp_refresh):
            if at <= now:
                announcer.send(addresses, self.mac)
            else:
                self._announce_handles.append(
                    self.loop.call_at(at, announcer.send, addresses, self.mac)
                )
        if spec.garp_refresh > 0:
            self._announce_handles.append(
                self.loop.call_at(now + spec.garp_refresh, self._refresh, addresses)
            )

    def _refresh(self, addresses: tuple[IPAddress, ...]) -> None:
        if self.router is not None and self.router.state is State.MASTER:
            self._announce(addresses)

    # ---------------------------------------------------------------- timers

    def _arm(self) -> None:
        router = self.router
        deadline = None if router is None else router.get_timer()
        state = None if router is None else router.state
        if router is not None and deadline is not None and state is State.MASTER:
            deadline = self._on_grid(router, deadline)
        current = self._timer_at
        if self._timer is not None and current is not None and deadline is not None:
            if current == deadline:
                return
            if current < deadline and router is not None:
                # A Backup's Master_Down_Timer moves later with every advert: keep the
                # earlier wake-up (it re-arms itself) instead of cancelling and
                # re-creating a timer handle per advert.
                return
        self._cancel_timer()
        if deadline is not None and router is not None:
            self._timer_at = deadline
            wake = deadline
            slack = 0.0
            order = 0.0  # a Backup's check or takeover goes first
            if state is State.BACKUP:
                wake -= TAKEOVER_LEAD
                if not self._precise:
                    # Until a check finds it standing, the deadline is a stale one
                    # (adverts wait unread): check it with any wake-up within one
                    # advert interval, sharing that wake-up's read of the sockets.
                    slack = router.master_adver_interval_cs / 100.0
            elif state is State.MASTER:
                order = router.config.interval_cs  # shorter intervals first
            self._timer = self.timers.call_at(wake, self._on_timer, slack, order)

    def _on_grid(self, router: VirtualRouter, deadline: float) -> float:
        """The Master's next advert, brought forward onto its grid (see :data:`ADVERT_PHASES`).

        Never less than half an interval after the advert before it (``deadline``
        minus one interval): when the grid point is closer than that, the advert
        goes half an interval after the last one, and the next one onto the grid.
        """
        interval = router.config.interval_cs / 100.0
        step = interval / ADVERT_PHASES
        k = deadline / step
        if abs(k - round(k)) < 1e-6:
            return deadline  # on the grid already
        aligned = max(math.floor(k) * step, deadline - interval / 2)
        now = self.loop.time()
        if aligned > now and router.advance_advert(aligned, now):
            return router.get_timer() or deadline
        return deadline

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _cancel_announces(self) -> None:
        for handle in self._announce_handles:
            handle.cancel()
        self._announce_handles.clear()

    # ---------------------------------------------------------------- status

    def status(self) -> dict[str, object]:
        """What the state file says about this instance."""
        router = self.router
        spec = self.spec
        return {
            "state": router.state.value if router else State.INITIALIZE.value,
            "priority": spec.priority,
            "effective_priority": router.priority if router else spec.priority,
            "vrid": spec.vrid,
            "interface": spec.interface,
            "since": self.since,
            "master_address": str(router.master_address)
            if router and router.master_address
            else None,
            "counters": router.counters.as_dict() if router else {},
        }
