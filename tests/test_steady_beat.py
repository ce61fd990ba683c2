"""A Master's steady advert: the cores' ``beat`` and the beat's short path in ``Beats``.

At 50 Masters on one beat the general path's calls (the handler table, a list
of actions per advert, the instance's send) cost more than the adverts'
``sendmsg``; ``beat`` and the short path in ``Beats._fire`` do the same in a
few calls. Each test here holds the short path to what the general one does.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from vrrpy.codec import Advertisement, ChecksumForm, PacketInfo, encode_vrrp
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4, VRRP_MULTICAST_V6
from vrrpy.core import RouterConfig, State, VirtualRouter
from vrrpy.core.actions import Action, SendAdvertisement
from vrrpy.core.carp import CarpConfig, CarpRouter
from vrrpy.runtime.pacing import Beats, Pacer

ME = IPv4Address("192.0.2.11")
VIP = (IPv4Address("192.0.2.100"),)


def vrrp_master(interval: float = 0.1) -> VirtualRouter:
    r = VirtualRouter(
        RouterConfig(
            vrid=51,
            priority=200,
            primary_address=ME,
            virtual_addresses=VIP,
            advert_interval=interval,
        )
    )
    r.startup(0.0)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    return r


def carp_master(counter: str = "constant") -> CarpRouter:
    r = CarpRouter(
        CarpConfig(
            vhid=7,
            primary_address=ME,
            virtual_addresses=VIP,
            password="secret",
            counter=counter,  # type: ignore[arg-type]
        )
    )
    r.startup(0.0)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    return r


def facts(r: VirtualRouter | CarpRouter) -> tuple[Any, ...]:
    return (r.state, r.get_timer(), r.counters.as_dict())


@pytest.mark.parametrize("make", [vrrp_master, carp_master], ids=["vrrp", "carp"])
def test_beat_does_what_handle_timer_does_on_the_cadence(make: Any) -> None:
    a, b = make(), make()
    for _ in range(5):
        due = a.get_timer()
        now = due + 0.0004  # a little late, as a wake-up is
        action = a.beat(now)
        actions = b.handle_timer(now)
        assert isinstance(action, SendAdvertisement)
        assert actions == [action]
        assert facts(a) == facts(b)


@pytest.mark.parametrize("make", [vrrp_master, carp_master], ids=["vrrp", "carp"])
def test_beat_declines_and_changes_nothing_off_the_cadence(make: Any) -> None:
    r = make()
    due = r.get_timer()
    before = facts(r)
    assert r.beat(due - 0.001) is None  # not due yet
    assert r.beat(due + 10.0) is None  # a stall: handle_timer restarts the cadence from now
    assert facts(r) == before
    r._split_brain_until = due + 5.0  # a split brain to time out: the general path's
    assert r.beat(due) is None
    assert facts(r) == before
    r._split_brain_until = None
    r.shutdown(due)
    assert r.beat(due) is None


def test_beat_declines_for_a_backup() -> None:
    r = VirtualRouter(
        RouterConfig(vrid=51, priority=100, primary_address=ME, virtual_addresses=VIP)
    )
    r.startup(0.0)
    before = facts(r)
    assert r.beat(r.get_timer() + 0.001) is None  # type: ignore[operator]
    assert facts(r) == before


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Heap:
    """Timers run in deadline order, every due one, as TimerfdTimers runs them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.entries: list[tuple[float, int, Any]] = []
        self.errors: list[Exception] = []
        self.n = 0

    def call_at(self, when: float, callback: Any, slack: float = 0.0, order: float = 0.0) -> Any:
        self.n += 1
        self.entries.append((when, self.n, callback))
        self.entries.sort(key=lambda e: (e[0], e[1]))
        return _Handle()

    def run_until(self, t: float) -> None:
        while self.entries and self.entries[0][0] <= t:
            when, _, callback = self.entries.pop(0)
            self.clock.now = max(self.clock.now, when) + 0.0002
            try:
                callback()
            except Exception as exc:
                self.errors.append(exc)

    @property
    def stall(self) -> float:
        return 0.0


class _Handle:
    def cancel(self) -> None:
        pass


class RawSocket:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.fail = fail

    def sendmsg(self, *args: Any) -> int:
        if self.fail:
            raise OSError(105, "No buffer space available")
        self.sent.append(args)
        return len(args[0][0])


class VSocket:
    """The parts of VRRPSocket the short path uses (without a sendmmsg batch)."""

    batch = None

    def __init__(self, fail: bool = False) -> None:
        self.sock = RawSocket(fail)
        self.sent = 0
        self.send_errors = 0


class Loop:
    def __init__(self, clock: Clock) -> None:
        self.time = clock


def pacer_for(
    router: VirtualRouter | CarpRouter, beats: Beats, timers: Heap, clock: Clock, vsock: VSocket
) -> tuple[Pacer, list[Any], list[list[Action]]]:
    sent: list[Any] = []
    performed: list[list[Action]] = []
    pacer: Pacer

    def send(advert: Any) -> None:  # the instance's _send: general path, then the wire
        sent.append(advert)
        args = ([b"advert"], [], 0, ("224.0.0.18", 0))
        pacer.wire = (advert, vsock, vsock.sock.sendmsg, args, None)  # type: ignore[assignment]

    def perform(actions: list[Action]) -> None:
        performed.append(actions)
        pacer.arm()

    pacer = Pacer(Loop(clock), timers, perform, None, beats, send)  # type: ignore[arg-type]
    pacer.router = router
    return pacer, sent, performed


def test_a_steady_master_goes_the_short_path_with_the_same_cadence_and_counts() -> None:
    clock = Clock()
    timers = Heap(clock)
    beats = Beats(timers, clock)  # type: ignore[arg-type]
    router = vrrp_master()  # 100 ms; its deadline is on the grid from 0.0
    vsock = VSocket()
    pacer, sent, performed = pacer_for(router, beats, timers, clock, vsock)
    pacer.arm()
    timers.run_until(1.0)
    # The first beat went the general way (and left the wire); the rest, the short one.
    assert len(sent) == 1
    assert len(vsock.sock.sent) == router.counters.adverts_sent - 1 - 1  # (startup's advert)
    assert vsock.sent == len(vsock.sock.sent) and vsock.send_errors == 0
    assert not performed and not timers.errors
    assert router.get_timer() == pytest.approx(1.1)
    assert pacer.beat is not None  # on the next beat
    assert len(pacer.lateness) == len(sent) + vsock.sent
    assert all(late == pytest.approx(0.0002) for late in pacer.lateness)


def test_a_send_error_on_the_short_path_is_counted_and_the_master_keeps_its_beat() -> None:
    clock = Clock()
    timers = Heap(clock)
    beats = Beats(timers, clock)  # type: ignore[arg-type]
    router = vrrp_master()
    vsock = VSocket(fail=True)
    pacer, _, _ = pacer_for(router, beats, timers, clock, vsock)
    pacer.arm()
    timers.run_until(1.05)
    assert vsock.send_errors >= 5 and vsock.sent == 0
    assert pacer.beat is not None and not timers.errors
    assert router.get_timer() == pytest.approx(1.1)


def test_a_fault_on_the_short_path_never_leaves_the_master_unarmed() -> None:
    clock = Clock()
    timers = Heap(clock)
    beats = Beats(timers, clock)  # type: ignore[arg-type]
    router = vrrp_master()
    vsock = VSocket()
    pacer, _, _ = pacer_for(router, beats, timers, clock, vsock)
    pacer.arm()
    timers.run_until(0.75)
    broken = {"n": 0}

    def raises(*args: Any) -> int:
        broken["n"] += 1
        raise RuntimeError("a bug of ours")

    assert pacer.wire is not None
    pacer.wire = (*pacer.wire[:2], raises, *pacer.wire[3:])
    timers.run_until(0.85)
    assert broken["n"] == 1 and [str(e) for e in timers.errors] == ["a bug of ours"]
    # Re-armed through the general path: the next advert still leaves on time.
    assert pacer.beat is not None or pacer._timer is not None
    assert router.get_timer() == pytest.approx(0.9)


def test_an_advert_the_wire_does_not_hold_goes_the_general_way() -> None:
    # CARP with replay protection signs each advert anew: never the short path.
    clock = Clock()
    timers = Heap(clock)
    beats = Beats(timers, clock)  # type: ignore[arg-type]
    router = carp_master(counter="increment")
    vsock = VSocket()
    pacer, sent, _ = pacer_for(router, beats, timers, clock, vsock)
    pacer.arm()
    timers.run_until(router.get_timer() + 4.5)  # type: ignore[operator]
    assert len(sent) >= 4 and not vsock.sock.sent
    assert len({id(a) for a in sent}) == len(sent)  # a new advert each time, each sent


def test_masters_on_one_beat_move_to_the_next_together() -> None:
    clock = Clock()
    timers = Heap(clock)
    beats = Beats(timers, clock)  # type: ignore[arg-type]
    pacers = []
    for _ in range(40):
        router = vrrp_master()
        pacer, _, _ = pacer_for(router, beats, timers, clock, VSocket())
        pacer.arm()
        pacers.append(pacer)
    timers.run_until(0.75)
    keys = {p.beat for p in pacers}
    assert len(keys) == 1 and len(beats._due) == 1  # one entry for all forty
    assert len(timers.entries) == 1


def test_the_runtime_reads_the_monotonic_clock_directly() -> None:
    from vrrpy.runtime.runtime import Runtime

    loop = asyncio.new_event_loop()
    try:
        runtime = Runtime(loop)
        try:
            import time

            assert runtime.beats.clock is time.monotonic
        finally:
            runtime.stop()
    finally:
        loop.close()


# ------------------------------------------------------------------ a Backup's repeats


def vrrp_backup(**kw: Any) -> VirtualRouter:
    r = VirtualRouter(
        RouterConfig(vrid=51, priority=100, primary_address=ME, virtual_addresses=VIP, **kw)
    )
    r.startup(0.0)
    return r


def master_packet(priority: int = 200, form: Any = None, **kw: Any) -> tuple[bytes, PacketInfo]:
    advert = Advertisement(3, 51, priority, 100, VIP, **kw)
    source = IPv4Address("192.0.2.20")
    if form is None:
        data = encode_vrrp(advert, source, VRRP_MULTICAST_V4)
    else:
        data = encode_vrrp(advert, source, VRRP_MULTICAST_V4, form)
    return data, PacketInfo(source, VRRP_MULTICAST_V4, 255)


@pytest.mark.parametrize("form", [None, ChecksumForm.VRRP_ONLY], ids=["pseudo", "vrrp-only"])
def test_heard_does_what_receive_packet_does_for_the_masters_repeats(form: Any) -> None:
    a, b = vrrp_backup(), vrrp_backup()
    data, info = master_packet(form=form)
    assert a.heard(data, info, 0.1) is None  # nothing accepted yet: the general path
    a.receive_packet(data, info, 0.1)
    b.receive_packet(data, info, 0.1)
    for n in range(2, 6):
        now = n / 10
        copy = bytes(bytearray(data))  # a new packet, the same bytes
        assert a.heard(copy, info, now) == a.get_timer()
        assert b.receive_packet(copy, info, now) == []
        assert facts(a) == facts(b)
        assert a.master_address == b.master_address


def test_heard_counts_and_logs_a_repeats_anomalies_as_receive_packet_does() -> None:
    # An IPv6 Master whose first address is not link-local: keepalived's warning, per packet.
    me, peer = IPv6Address("fe80::12"), IPv6Address("fe80::20")
    vips = (IPv6Address("2001:db8::100"),)
    a, b = (
        VirtualRouter(
            RouterConfig(vrid=51, priority=100, primary_address=me, virtual_addresses=vips)
        )
        for _ in range(2)
    )
    for r in (a, b):
        r.startup(0.0)
    data = encode_vrrp(Advertisement(3, 51, 200, 100, vips), peer, VRRP_MULTICAST_V6)
    info = PacketInfo(peer, VRRP_MULTICAST_V6, 255)
    a.receive_packet(data, info, 0.1)
    b.receive_packet(data, info, 0.1)
    assert a.counters.anomalies  # the check found it
    for n in range(2, 6):
        assert a.heard(data, info, n / 10) is not None
        b.receive_packet(data, info, n / 10)
        assert facts(a) == facts(b)


def test_heard_declines_anything_but_the_accepted_repeat() -> None:
    r = vrrp_backup()
    data, info = master_packet()
    r.receive_packet(data, info, 0.1)
    before = facts(r)
    other, _ = master_packet(priority=150)  # another advert: decided afresh
    assert r.heard(other, info, 0.2) is None
    assert r.heard(data, PacketInfo(info.source, info.destination, 254), 0.2) is None  # TTL
    assert r.heard(data, PacketInfo(IPv4Address("192.0.2.21"), info.destination, 255), 0.2) is None
    assert facts(r) == before
    r.set_priority(120, 0.2)  # our priority moved: the decision is made again
    assert r.heard(data, info, 0.3) is None
    assert facts(r)[1] == before[1]


def test_heard_declines_for_a_master_and_for_carp() -> None:
    m = vrrp_master()
    data, info = master_packet(priority=100)
    assert m.heard(data, info, 1.0) is None
    assert carp_master().heard(data, info, 1.0) is None
