"""The simulator: N hosts on one broadcast segment, a virtual clock, a fault schedule.

Every host runs real :class:`vrrpy.core.VirtualRouter` objects (and
:class:`vrrpy.core.CarpRouter` ones, :meth:`VirtualLAN.add_carp_router`); every
advert really goes through :func:`vrrpy.codec.encode_vrrp` (or
:func:`~vrrpy.codec.carp.encode_carp`) and the core's checks, so the simulator
exercises the same code as the Linux runtime, with time that only moves when
the simulator says so. Both protocols share IP protocol 112 and the ID byte:
one host has one router per (family, ID), VRRP or CARP; a packet of the other
protocol reaching it is a counted drop, as on a real LAN.

Faults: per-link loss, delay and jitter (:meth:`VirtualLAN.link`), partitions
(:meth:`VirtualLAN.partition`, :meth:`VirtualLAN.heal`), crash without a word
(:meth:`VirtualLAN.crash`, as SIGKILL plus link down), restart
(:meth:`VirtualLAN.restart`), graceful stop (:meth:`VirtualLAN.stop`),
priority changes (:meth:`VirtualLAN.set_priority`) and a host's tracked objects
failing and recovering (:meth:`VirtualLAN.fault`, :meth:`VirtualLAN.recover`:
keepalived's FAULT state), each either now or at a virtual time
(:meth:`VirtualLAN.at`). A host may run several VRIDs as one sync group
(:meth:`VirtualLAN.sync_group`).

The run is a pure function of the setup and the seed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, cast

from vrrpy.codec.carp import (
    CARP_MULTICAST_V4,
    CARP_MULTICAST_V6,
    CARP_TTL,
    CarpAdvertisement,
    decode_carp,
    encode_carp,
)
from vrrpy.codec.errors import DecodeError
from vrrpy.codec.vrrp import (
    VRRP_MULTICAST_V4,
    VRRP_MULTICAST_V6,
    VRRP_TTL,
    Advertisement,
    IPAddress,
    PacketInfo,
    decode_vrrp,
    encode_vrrp,
)
from vrrpy.core.actions import Action, AddAddresses, RemoveAddresses, SendAdvertisement, Transition
from vrrpy.core.carp import CarpConfig, CarpRouter
from vrrpy.core.config import RouterConfig
from vrrpy.core.state import State
from vrrpy.core.syncgroup import Step, SyncGroup
from vrrpy.core.vrrp import VirtualRouter

Router = VirtualRouter | CarpRouter
"""Either core: the simulator drives both through the same interface."""

_TIMER = 0
_DELIVER = 1
_CALL = 2
_WIRE_KEPT = 256
"""Encoded adverts kept per host (routers reuse one object per priority, so a few)."""
_Advert = Advertisement | CarpAdvertisement


@dataclass(frozen=True)
class LinkProfile:
    """How a packet fares from one host to another: lost with probability ``loss``,
    else delivered after ``delay`` plus a uniform extra in ``[0, jitter]`` seconds."""

    loss: float = 0.0
    delay: float = 0.0001
    jitter: float = 0.0


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the timeline: a state change (``kind="transition"``) or a fault."""

    time: float
    node: str
    kind: str
    detail: str
    vrid: int = 0
    old: State | None = None
    new: State | None = None


@dataclass(frozen=True)
class Delivery:
    """One advert handed to a host (kept only when ``VirtualLAN.trace`` is on)."""

    time: float
    sender: str
    receiver: str
    vrid: int
    priority: int
    source: IPAddress


@dataclass(eq=False)
class Node:
    """A simulated host: its addresses, whether it is up, and its virtual routers by VRID."""

    name: str
    ipv4: IPv4Address
    ipv6_link_local: IPv6Address
    up: bool = True
    group: int = 0
    configs: dict[tuple[int, int], RouterConfig | CarpConfig] = field(default_factory=dict)
    routers: dict[tuple[int, int], Router] = field(default_factory=dict)
    addresses: set[IPAddress] = field(default_factory=set)
    """Virtual addresses currently installed on this host (what AddAddresses did)."""
    unknown_vrid: int = 0
    faults: dict[tuple[int, int] | None, dict[str, None]] = field(default_factory=dict)
    """Faults raised on this host's tracked objects, by router key (None: every router
    of the host). They outlive a crash: a host restarted with its link still down
    starts in FAULT."""
    sync_group_members: dict[str, tuple[tuple[int, int], ...]] = field(default_factory=dict)
    """Sync group name -> the (family, VRID) keys of its members."""
    sync_groups: dict[str, SyncGroup] = field(default_factory=dict)
    """The running sync groups (rebuilt, like the routers, at every start)."""
    _wire: dict[int, tuple[_Advert, bytes, PacketInfo, _Advert | None]] = field(
        default_factory=dict
    )
    """Encoded adverts by ``id(advert)`` (routers reuse one object per priority)."""

    def router(self, vrid: int, family: int = 4) -> Router:
        """The virtual router for ``vrid`` (or CARP VHID) in ``family`` (4 or 6)."""
        return self.routers[(family, vrid)]


class VirtualLAN:
    """A broadcast LAN of simulated hosts with a virtual clock.

    >>> lan = VirtualLAN(seed=1)
    >>> for name, prio in (("r1", 200), ("r2", 100)):
    ...     _ = lan.add_router(lan.add_node(name), vrid=51, priority=prio,
    ...                        virtual_addresses=["192.0.2.100"])
    >>> lan.start()
    >>> lan.run(until=10.0)
    >>> lan.masters(51)
    ['r1']
    """

    def __init__(self, seed: int = 0, default: LinkProfile | None = None) -> None:
        self.now = 0.0
        self.default = default or LinkProfile()
        self.nodes: dict[str, Node] = {}
        self.timeline: list[TimelineEntry] = []
        self.trace = False
        """When true, every delivered advert is appended to :attr:`deliveries`."""
        self.deliveries: list[Delivery] = []
        self.events = 0
        """Events processed so far (timers, deliveries, scheduled calls)."""
        self.observers: list[Callable[[Node, Router, Action], None]] = []
        """Called with every action any router returns, after the simulator applied it."""
        self._links: dict[tuple[str, str], LinkProfile] = {}
        self._rng = random.Random(seed)
        self._queue: list[tuple[float, int, int, Any]] = []
        self._seq = 0
        self._armed: dict[Router, float] = {}
        self._live: set[Router] = set()
        self._grouped: dict[Router, tuple[SyncGroup, str]] = {}

    # ------------------------------------------------------------------ setup

    def add_node(
        self, name: str, ipv4: str | None = None, ipv6_link_local: str | None = None
    ) -> Node:
        """Add a host; by default host number i gets 192.0.2.(10+i) and fe80::(10+i)."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} exists")
        index = len(self.nodes) + 1
        node = Node(
            name,
            IPv4Address(ipv4 or f"192.0.2.{10 + index}"),
            IPv6Address(ipv6_link_local or f"fe80::{10 + index:x}"),
        )
        self.nodes[name] = node
        return node

    def add_router(
        self,
        node: Node | str,
        vrid: int,
        virtual_addresses: Iterable[str | IPAddress],
        **options: Any,
    ) -> RouterConfig:
        """Configure a virtual router on ``node``; ``options`` are :class:`RouterConfig` fields.

        The primary address is the node's IPv4 address or IPv6 link-local
        address, by the family of ``virtual_addresses``.
        """
        host = self._node(node)
        vips = tuple(ip_address(a) if isinstance(a, str) else a for a in virtual_addresses)
        primary: IPAddress = host.ipv4 if vips and vips[0].version == 4 else host.ipv6_link_local
        options.setdefault("name", f"{host.name}/{vrid}")
        config = RouterConfig(vrid=vrid, primary_address=primary, virtual_addresses=vips, **options)
        host.configs[(config.family, vrid)] = config
        return config

    def add_carp_router(
        self,
        node: Node | str,
        vhid: int,
        virtual_addresses: Iterable[str | IPAddress],
        **options: Any,
    ) -> CarpConfig:
        """Configure a CARP virtual host on ``node``; ``options`` are :class:`CarpConfig`
        fields (``password`` defaults to ``"sim"``). It takes the place of any VRRP
        router of the same family and ID on that host (both live on protocol 112).
        """
        host = self._node(node)
        vips = tuple(ip_address(a) if isinstance(a, str) else a for a in virtual_addresses)
        primary: IPAddress = host.ipv4 if vips and vips[0].version == 4 else host.ipv6_link_local
        options.setdefault("name", f"{host.name}/carp{vhid}")
        options.setdefault("password", "sim")
        config = CarpConfig(vhid=vhid, primary_address=primary, virtual_addresses=vips, **options)
        host.configs[(config.family, vhid)] = config
        return config

    def link(
        self, a: str, b: str, loss: float = 0.0, delay: float = 0.0001, jitter: float = 0.0
    ) -> None:
        """Set the profile of the link between hosts ``a`` and ``b`` (both directions)."""
        profile = LinkProfile(loss, delay, jitter)
        self._links[(a, b)] = profile
        self._links[(b, a)] = profile

    # ------------------------------------------------------------------ faults

    def at(self, time: float, func: Callable[..., object], *args: Any) -> None:
        """Call ``func(*args)`` when the virtual clock reaches ``time``."""
        self._push(time, _CALL, (func, args))

    def sync_group(
        self, node: Node | str, name: str, vrids: Iterable[int | tuple[int, int]]
    ) -> None:
        """Make routers of ``node`` one sync group (keepalived's vrrp_sync_group), from its
        next start on. ``vrids`` are VRIDs (IPv4) or (family, VRID) pairs, for an
        IPv4 and an IPv6 instance of one VRID. Members are named ``IPv<family>/<vrid>``."""
        host = self._node(node)
        keys = tuple((4, v) if isinstance(v, int) else v for v in vrids)
        for key in keys:
            if key not in host.configs:
                raise ValueError(f"{host.name} has no router IPv{key[0]} VRID {key[1]}")
            for other, members in host.sync_group_members.items():
                if key in members and other != name:
                    raise ValueError(f"IPv{key[0]} VRID {key[1]} is in sync group {other!r}")
        host.sync_group_members[name] = keys

    def start(self, node: Node | str | None = None) -> None:
        """Start the routers of ``node`` (or of every node) now, faults still held first."""
        for host in [self._node(node)] if node is not None else list(self.nodes.values()):
            host.up = True
            fresh: dict[tuple[int, int], Router] = {}
            for key, config in host.configs.items():
                router: Router = (
                    CarpRouter(config) if isinstance(config, CarpConfig) else VirtualRouter(config)
                )
                old = host.routers.get(key)
                if old is not None:
                    self._live.discard(old)
                    self._grouped.pop(old, None)
                host.routers[key] = fresh[key] = router
                self._live.add(router)
                for reason in {**host.faults.get(None, {}), **host.faults.get(key, {})}:
                    router.fault(reason, self.now)  # remembered: startup goes to FAULT
            host.sync_groups.clear()
            grouped: set[tuple[int, int]] = set()
            for name, keys in host.sync_group_members.items():
                group = SyncGroup(name, {_member(key): fresh[key] for key in keys})
                host.sync_groups[name] = group
                for key in keys:
                    self._grouped[fresh[key]] = (group, _member(key))
                grouped.update(keys)
                self._perform_steps(host, group, group.startup(self.now))
            for key, router in fresh.items():
                if key not in grouped:
                    self._apply(host, router, router.startup(self.now))

    def crash(self, node: Node | str) -> None:
        """The host dies without a word (SIGKILL and link down): no priority 0, state lost."""
        host = self._node(node)
        self._note(host, "crash", "killed, link down")
        host.up = False
        self._forget(host)
        host.addresses.clear()

    def restart(self, node: Node | str) -> None:
        """Bring a crashed or stopped host back with fresh routers from its configuration."""
        host = self._node(node)
        self._note(host, "restart", "routers start afresh")
        self.start(host)

    def stop(self, node: Node | str) -> None:
        """Graceful stop: routers shut down (a Master sends priority 0), then the host leaves."""
        host = self._node(node)
        self._note(host, "stop", "graceful shutdown")
        for router in list(host.routers.values()):
            self._apply(host, router, router.shutdown(self.now))
        host.up = False
        self._forget(host)

    def set_priority(self, node: Node | str, vrid: int, priority: int, family: int = 4) -> None:
        """Change a router's priority at run time, as tracking would."""
        host = self._node(node)
        self._note(host, "priority", f"vrid {vrid} priority -> {priority}")
        router = host.routers[(family, vrid)]
        self._apply(host, router, router.set_priority(priority, self.now))

    def set_demote(self, node: Node | str, vhid: int, demote: int, family: int = 4) -> None:
        """Change a CARP router's demote count at run time (OpenBSD's ``carpdemote``)."""
        host = self._node(node)
        self._note(host, "demote", f"vhid {vhid} demote -> {demote}")
        router = host.routers[(family, vhid)]
        if not isinstance(router, CarpRouter):
            raise TypeError(f"{host.name}: IPv{family} ID {vhid} is a VRRP router")
        self._apply(host, router, router.set_demote(demote, self.now))

    def fault(
        self, node: Node | str, reason: str, vrid: int | None = None, family: int = 4
    ) -> None:
        """A tracked object of ``node`` fails: its routers (or the one for ``vrid``) go to
        FAULT, and their sync groups with them. Held across crashes and restarts."""
        self._track(node, reason, vrid, family, up=False)

    def recover(
        self, node: Node | str, reason: str, vrid: int | None = None, family: int = 4
    ) -> None:
        """Undo :meth:`fault` for the same ``reason`` (and ``vrid``, ``family``)."""
        self._track(node, reason, vrid, family, up=True)

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the LAN: hosts hear only hosts of their own group (unlisted hosts form group 0)."""
        for host in self.nodes.values():
            host.group = 0
        for number, names in enumerate(groups, start=1):
            for name in names:
                self.nodes[name].group = number
        self.timeline.append(TimelineEntry(self.now, "*", "partition", repr(groups)))

    def heal(self) -> None:
        """Undo :meth:`partition`."""
        for host in self.nodes.values():
            host.group = 0
        self.timeline.append(TimelineEntry(self.now, "*", "heal", "partition healed"))

    # --------------------------------------------------------------- queries

    def states(self, vrid: int, family: int = 4) -> dict[str, State]:
        """The state of each live host's router for ``vrid``."""
        return {
            host.name: router.state
            for host in self.nodes.values()
            if host.up and (router := host.routers.get((family, vrid))) is not None
        }

    def masters(self, vrid: int, family: int = 4) -> list[str]:
        """Names of the live hosts whose router for ``vrid`` is Master."""
        return [
            host.name
            for host in self.nodes.values()
            if host.up
            and (router := host.routers.get((family, vrid))) is not None
            and router.state is State.MASTER
        ]

    def transitions(self) -> list[TimelineEntry]:
        """The state changes so far, in order."""
        return [entry for entry in self.timeline if entry.kind == "transition"]

    # ----------------------------------------------------------------- engine

    def run(self, until: float) -> None:
        """Process every event up to and including virtual time ``until``."""
        queue = self._queue
        pop = heapq.heappop
        live = self._live
        while queue and queue[0][0] <= until:
            time, _, kind, payload = pop(queue)
            self.now = time
            self.events += 1
            if kind == _DELIVER:
                hosts, data, info, advert, sender = payload
                key = (4 if type(info.source) is IPv4Address else 6, data[1] if data[1:] else -1)
                for host in hosts:
                    if not host.up:
                        continue
                    router = host.routers.get(key)
                    if router is None:
                        host.unknown_vrid += 1
                        continue
                    if self.trace and len(data) > 2:
                        self.deliveries.append(
                            Delivery(time, sender, host.name, data[1], data[2], info.source)
                        )
                    # The decoding done once per packet is handed to a router of the
                    # packet's protocol; any other router decodes the bytes itself.
                    # (Two branches, not one "or": each narrows its own types.)
                    if type(advert) is Advertisement and type(router) is VirtualRouter:  # noqa: SIM114
                        actions = router.receive_advert(advert, info.source, time)
                    elif type(advert) is CarpAdvertisement and type(router) is CarpRouter:
                        actions = router.receive_advert(advert, info.source, time)
                    else:
                        actions = router.receive_packet(data, info, time)
                    if actions:
                        self._apply(host, router, actions)
                    else:
                        self._arm(router, host)
            elif kind == _TIMER:
                due, owner = cast("tuple[Router, Node]", payload)
                if self._armed.get(due) != time:
                    continue
                del self._armed[due]
                if due not in live:
                    continue
                deadline = due.get_timer()
                if deadline is not None and deadline > time:
                    # A Backup's Master_Down_Timer was pushed back by an advert since
                    # this wake-up was queued: just queue the new one.
                    self._arm(due, owner)
                    continue
                membership = self._grouped.get(due) if self._grouped else None
                if membership is not None:
                    # Through the group: a Backup's takeover waits for its siblings.
                    group, name = membership
                    self._perform_steps(owner, group, group.handle_timer(name, time))
                    self._arm(due, owner)
                else:
                    self._apply(owner, due, due.handle_timer(time))
            else:
                func, args = payload
                func(*args)
        if until > self.now:
            self.now = until

    def inject(self, node: Node | str, data: bytes, info: PacketInfo, delay: float = 0.0) -> None:
        """Hand arbitrary bytes to ``node`` as if they arrived from the wire (forgeries, fuzz)."""
        self._push(self.now + delay, _DELIVER, ([self._node(node)], data, info, None, "inject"))

    # --------------------------------------------------------------- internals

    def _apply(self, host: Node, router: Router, actions: list[Action]) -> None:
        """Perform ``actions`` of ``router``; a sync group then moves its siblings."""
        self._perform(host, router, actions)
        if actions and self._grouped:
            membership = self._grouped.get(router)
            if membership is not None:
                group, name = membership
                self._perform_steps(host, group, group.follow(name, actions, self.now))

    def _perform_steps(self, host: Node, group: SyncGroup, steps: list[Step]) -> None:
        for name, actions in steps:
            self._perform(host, group.members[name], actions)

    def _track(
        self, node: Node | str, reason: str, vrid: int | None, family: int, up: bool
    ) -> None:
        host = self._node(node)
        key = None if vrid is None else (family, vrid)
        what = "every router" if key is None else f"IPv{family} VRID {vrid}"
        held = host.faults.setdefault(key, {})
        if up:
            held.pop(reason, None)
        else:
            held[reason] = None
        self._note(host, "recover" if up else "fault", f"{what}: {reason}")
        if not host.up:
            return
        for router_key, router in list(host.routers.items()):
            if key is not None and router_key != key:
                continue
            if up and (
                reason in host.faults.get(None, {}) or reason in host.faults.get(router_key, {})
            ):
                continue  # the same reason still holds for this router, raised the other way
            membership = self._grouped.get(router)
            if membership is not None:
                group, name = membership
                event = group.recover if up else group.fault
                self._perform_steps(host, group, event(name, reason, self.now))
                self._arm(router, host)
            else:
                event2 = router.recover if up else router.fault
                self._apply(host, router, event2(reason, self.now))

    def _forget(self, host: Node) -> None:
        for router in host.routers.values():
            self._live.discard(router)
            self._grouped.pop(router, None)
        host.routers.clear()
        host.sync_groups.clear()

    def _perform(self, host: Node, router: Router, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendAdvertisement):
                self._broadcast(host, router, action.advert)
            elif isinstance(action, Transition):
                self.timeline.append(
                    TimelineEntry(
                        self.now,
                        host.name,
                        "transition",
                        action.reason,
                        router.config.vrid,
                        action.old,
                        action.new,
                    )
                )
            elif isinstance(action, AddAddresses):
                host.addresses.update(action.addresses)
            elif isinstance(action, RemoveAddresses):
                host.addresses.difference_update(action.addresses)
            for observer in self.observers:
                observer(host, router, action)
        self._arm(router, host)

    def _arm(self, router: Router, host: Node) -> None:
        deadline = router.get_timer()
        if deadline is None:
            return
        armed = self._armed.get(router)
        if armed is None or deadline < armed:
            self._armed[router] = deadline
            self._push(deadline, _TIMER, (router, host))

    def _broadcast(self, sender: Node, router: Router, advert: _Advert) -> None:
        wire = sender._wire.get(id(advert))
        if wire is None or wire[0] is not advert:
            source = router.config.primary_address
            data, info = _wire_form(advert, source)
            # Decoding is a pure function of (bytes, IP facts), the same for every
            # receiver: do it once per distinct packet, not once per delivery.
            decoded: _Advert | None
            try:
                decoded = (
                    decode_carp(data, info)
                    if type(advert) is CarpAdvertisement
                    else decode_vrrp(data, info)
                )
            except DecodeError:
                decoded = None
            if len(sender._wire) >= _WIRE_KEPT:
                sender._wire.clear()  # a counting CARP sender makes a new advert each time
            wire = sender._wire[id(advert)] = (advert, data, info, decoded)
        _, data, info, decoded = wire
        now = self.now
        rng = self._rng
        links = self._links
        default = self.default
        groups: dict[float, list[Node]] = {}
        for host in self.nodes.values():
            if host is sender or not host.up or host.group != sender.group:
                continue
            profile = links.get((sender.name, host.name), default) if links else default
            if profile.loss and rng.random() < profile.loss:
                continue
            delay = profile.delay
            if profile.jitter:
                delay += rng.random() * profile.jitter
            groups.setdefault(now + delay, []).append(host)
        for time, hosts in groups.items():
            self._push(time, _DELIVER, (hosts, data, info, decoded, sender.name))

    def _push(self, time: float, kind: int, payload: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, payload))

    def _node(self, node: Node | str) -> Node:
        return node if isinstance(node, Node) else self.nodes[node]

    def _note(self, host: Node, kind: str, detail: str) -> None:
        self.timeline.append(TimelineEntry(self.now, host.name, kind, detail))


def _wire_form(advert: _Advert, source: IPAddress) -> tuple[bytes, PacketInfo]:
    """The bytes and IP facts of ``advert`` sent from ``source`` to its protocol's group."""
    if type(advert) is CarpAdvertisement:
        dest: IPAddress = CARP_MULTICAST_V4 if source.version == 4 else CARP_MULTICAST_V6
        return encode_carp(advert), PacketInfo(source, dest, CARP_TTL)
    assert type(advert) is Advertisement
    dest = VRRP_MULTICAST_V4 if source.version == 4 else VRRP_MULTICAST_V6
    return encode_vrrp(advert, source, dest), PacketInfo(source, dest, VRRP_TTL)


def _member(key: tuple[int, int]) -> str:
    """A sync group member's name in the simulator: ``IPv4/51``."""
    return f"IPv{key[0]}/{key[1]}"
