"""Runtime pieces that need no kernel: the two-queue read and the Master's beat.

``VRRPSocket.read`` is run over fake sockets (``recvmsg`` returning canned
IPv6 datagrams with kernel timestamps), so its ordering rules can be pinned
exactly: the merge by arrival time, the twin a filter swap can make, the
urgent adverts held back when a flood keeps the bulk queue from emptying, and
a delivery that raises. The beat is checked on ``Pacer.on_grid``
with a real core and a fake clock.
"""

from __future__ import annotations

import socket
import struct
import time
from ipaddress import IPv6Address
from types import SimpleNamespace
from typing import Any

import pytest

import vrrpy.runtime.sockets as sockets_module
from vrrpy.codec import PacketInfo, encode_vrrp
from vrrpy.core import RouterConfig, State, VirtualRouter
from vrrpy.runtime.pacing import Pacer
from vrrpy.runtime.refilter import Refilter
from vrrpy.runtime.sockets import VRRPSocket

SO_TIMESTAMPNS = 35


class FakeSocket:
    """Hands out queued datagrams, then EAGAIN, as a non-blocking socket does."""

    def __init__(self) -> None:
        self.queue: list[tuple[bytes, list[Any], int, Any]] = []

    def push(self, vrid: int, priority: int, at_us: int) -> None:
        at_ns = at_us * 1000 + 1_700_000_000 * 10**9  # a realistic CLOCK_REALTIME stamp
        stamp = struct.pack("@qq", at_ns // 1_000_000_000, at_ns % 1_000_000_000)
        anc = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)]
        self.queue.append((bytes([0x31, vrid, priority, 0]), anc, 0, ("fe80::1%eth0", 0, 0, 2)))

    def recvmsg(self, size: int, ancsize: int) -> tuple[bytes, list[Any], int, Any]:
        if not self.queue:
            raise BlockingIOError
        return self.queue.pop(0)


def fake_pair() -> tuple[VRRPSocket, FakeSocket, FakeSocket]:
    sock = VRRPSocket.__new__(VRRPSocket)
    urgent, bulk = FakeSocket(), FakeSocket()
    sock.__dict__.update(
        ifname="eth0",
        family=6,
        sock=urgent,
        bulk=bulk,
        received=0,
        header_errors=0,
        delivery_errors=0,
        _reading=False,
        _held=[],
        _sources={},
        _destinations={},
        _v4={},
        _recent=None,
        _clean_at=0,
        refilter=Refilter(lambda urgent, vrids: None, lambda then: then()),
        clock_steps=0,
        mono_ns=time.monotonic_ns,
        wall_ns=time.time_ns,
        _offset=None,
        _offsets=(),
        _read_at=0,
        _window=(0, 0),
    )
    return sock, urgent, bulk


def read_all(sock: VRRPSocket) -> list[tuple[int, int]]:
    got: list[tuple[int, int]] = []
    sock.read(lambda data, info, arrival: got.append((data[1], data[2])))
    return got


def test_queues_are_merged_by_arrival_so_a_late_read_never_undoes_priority_0() -> None:
    sock, urgent, bulk = fake_pair()
    urgent.push(7, 0, 2_000)  # the Master resigns ...
    bulk.push(7, 200, 1_000)  # ... after this advert, read later from the bulk queue
    bulk.push(8, 100, 3_000)
    assert read_all(sock) == [(7, 200), (7, 0), (8, 100)]
    assert sock.received == 3


def test_a_packet_queued_on_both_sockets_during_a_swap_is_delivered_once() -> None:
    sock, urgent, bulk = fake_pair()
    sock.refilter.changes += 1  # the filters changed since the last read
    urgent.push(7, 200, 5_000)
    bulk.push(7, 200, 5_000)
    bulk.push(7, 200, 6_000)
    assert read_all(sock) == [(7, 200), (7, 200)]


def test_twins_are_found_even_with_another_packet_of_the_same_stamp_between() -> None:
    sock, urgent, bulk = fake_pair()
    sock.refilter.changes += 1
    urgent.push(7, 200, 5_000)
    urgent.push(8, 100, 5_000)  # another router's advert, stamped in the same batch
    bulk.push(7, 200, 5_000)
    assert sorted(read_all(sock)) == [(7, 200), (8, 100)]


def test_a_twin_read_reads_later_is_dropped_while_filters_change() -> None:
    # The kernel queued the packet on the bulk socket after we read the urgent one,
    # and on the urgent socket only after two more reads (a stalled delivery).
    sock, urgent, bulk = fake_pair()
    sock.refilter.busy = True  # a change in flight: a packet may see two filter states
    sock.refilter.changes += 1
    bulk.push(7, 200, 5_000)
    assert read_all(sock) == [(7, 200)]
    assert read_all(sock) == []
    urgent.push(7, 200, 5_000)
    urgent.push(7, 200, 6_000)  # the same bytes, another packet: delivered
    assert read_all(sock) == [(7, 200)]
    sock.refilter.busy = False
    urgent.push(7, 200, 6_000)  # still remembered, in the first read made at rest
    assert read_all(sock) == []
    urgent.push(7, 200, 6_000)  # at rest, read at rest since: nothing is compared
    assert read_all(sock) == [(7, 200)]


def test_arrival_times_are_monotonic_clock_times() -> None:
    sock, _, bulk = fake_pair()
    bulk.push(7, 200, 0)
    arrivals: list[float | None] = []
    sock.read(lambda data, info, arrival: arrivals.append(arrival))
    # Stamped at 1.7e9 s after the epoch: as long ago on the monotonic clock.
    expected = time.monotonic() - (time.time() - 1_700_000_000)
    assert arrivals[0] is not None and abs(arrivals[0] - expected) < 0.01


def test_the_read_returns_the_urgent_count_only() -> None:
    sock, urgent, bulk = fake_pair()
    urgent.push(1, 0, 1)
    for i in range(5):
        bulk.push(2, 100, 10 + i)
    assert sock.read(lambda *_: None) == 1


def test_urgent_adverts_newer_than_an_unfinished_bulk_read_are_held_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sockets_module, "_MAX_BULK", 2)
    sock, urgent, bulk = fake_pair()
    for at in (1_000, 2_000, 2_200):
        bulk.push(7, 200, at)
    urgent.push(7, 0, 2_500)  # newer than the third bulk advert, which this read leaves
    assert read_all(sock) == [(7, 200), (7, 200)]
    assert read_all(sock) == [(7, 200), (7, 0)]  # the third, then the held one


def test_a_delivery_that_raises_costs_only_its_own_advert(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sock, _, bulk = fake_pair()
    for vrid in (1, 2, 3):
        bulk.push(vrid, 100, vrid)
    got: list[int] = []

    def deliver(data: bytes, info: PacketInfo, arrival: float | None) -> None:
        if data[1] == 2:
            raise RuntimeError("bug in one instance")
        got.append(data[1])

    sock.read(deliver)
    assert got == [1, 3]
    assert sock.delivery_errors == 1
    assert "delivering an advert failed" in caplog.text


def test_packet_info_is_a_real_packet_info() -> None:
    sock, _, bulk = fake_pair()
    bulk.push(1, 100, 1)
    infos: list[PacketInfo] = []
    sock.read(lambda data, info, arrival: infos.append(info))
    assert infos == [PacketInfo(IPv6Address("fe80::1"), IPv6Address("ff02::12"), -1)]
    assert infos[0].source == IPv6Address("fe80::1")


# ------------------------------------------------------------------ the beat


def master_at(now: float, interval: float = 0.1) -> VirtualRouter:
    router = VirtualRouter(
        RouterConfig(
            vrid=1,
            priority=255,
            advert_interval=interval,
            primary_address=IPv6Address("fe80::1"),
            virtual_addresses=(IPv6Address("fe80::100"),),
        )
    )
    router.startup(now)  # the owner: Master at once, first advert now
    assert router.state is State.MASTER
    return router


def on_grid(router: VirtualRouter, now: float) -> float:
    pacer = SimpleNamespace(loop=SimpleNamespace(time=lambda: now))
    return Pacer.on_grid(pacer, router, router.get_timer())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("became_master", "second"),
    [
        (1000.03, 1000.1),  # the beat before the deadline
        (1000.0, 1000.1),  # on the beat already
        (1000.09, 1000.14),  # beat only 10 ms after: half an interval instead
    ],
)
def test_a_new_master_reaches_its_beat_never_late_never_sooner_than_half_an_interval(
    became_master: float, second: float
) -> None:
    router = master_at(became_master)
    got = on_grid(router, became_master)
    assert got == pytest.approx(second)
    router.handle_timer(got)
    third = on_grid(router, got)
    second = got
    assert third - second >= 0.05 - 1e-9
    assert third <= second + 0.1 + 1e-9
    router.handle_timer(third)
    assert on_grid(router, third) == pytest.approx(third + 0.1)  # on the beat, for good
    assert round(third / 0.1, 6) == round(third / 0.1)


# ------------------------------------------------------------ wall-clock steps


class SteppingClocks:
    """A monotonic clock and a wall clock that an administrator (or NTP) can step."""

    def __init__(self) -> None:
        self.mono = 5_000 * 10**9
        self.wall = 1_800_000_000 * 10**9

    def advance(self, seconds: float) -> None:
        self.mono += round(seconds * 1e9)
        self.wall += round(seconds * 1e9)

    def step(self, seconds: float) -> None:
        self.wall += round(seconds * 1e9)


def stamped(queue: FakeSocket, wall_ns: int) -> None:
    stamp = struct.pack("@qq", wall_ns // 10**9, wall_ns % 10**9)
    anc = [(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)]
    queue.queue.append((bytes([0x31, 51, 200, 0]), anc, 0, ("fe80::2%eth0", 0, 0, 2)))


@pytest.mark.parametrize("step", [3600.0, -3600.0, 7.5, -7.5, 0.05, -0.05])
@pytest.mark.parametrize("read_every", [0.03, 0.25, 1.0])
def test_wall_clock_steps_cause_no_takeover_and_no_advert_looks_old(
    step: float, read_every: float
) -> None:
    """A Backup hears a live Master every 100 ms while the wall clock steps by up to an hour
    either way: no read places an advert before the previous read or after its own, and the
    Master_Down_Timer (from the delivered arrivals) never expires."""
    clocks = SteppingClocks()
    sock, _, bulk = fake_pair()
    sock.mono_ns = lambda: clocks.mono  # type: ignore[method-assign]
    sock.wall_ns = lambda: clocks.wall  # type: ignore[method-assign]
    router = VirtualRouter(
        RouterConfig(
            vrid=51,
            priority=100,
            advert_interval=0.1,
            primary_address=IPv6Address("fe80::1"),
            virtual_addresses=(IPv6Address("2001:db8::100"),),
        )
    )
    advert = router.advertisement(200)
    router.startup(clocks.mono * 1e-9)
    master = IPv6Address("fe80::2")
    arrivals: list[tuple[float, float]] = []  # (delivered, true)
    true_arrivals: list[float] = []

    def deliver(data: bytes, info: PacketInfo, arrival: float | None) -> None:
        assert arrival is not None
        arrivals.append((arrival, true_arrivals[len(arrivals)]))
        router.receive_advert(advert, master, arrival)

    last_read = clocks.mono * 1e-9
    next_read = last_read + read_every
    elapsed = 0.0
    stepped = False
    while elapsed < 4.0:
        clocks.advance(0.01)
        elapsed += 0.01
        if not stepped and elapsed >= 1.55:
            clocks.step(step)
            stepped = True
        if round(elapsed * 100) % 10 == 0:  # the Master's advert, every 100 ms
            stamped(bulk, clocks.wall)
            true_arrivals.append(clocks.mono * 1e-9)
        now = clocks.mono * 1e-9
        if now >= next_read:
            sock.read(deliver)
            assert router.handle_timer(now) == [], f"takeover at {elapsed:.2f} s"
            assert router.state is State.BACKUP
            last_read, next_read = now, now + read_every
    assert len(arrivals) == len(true_arrivals) - len(bulk.queue)
    for delivered, true in arrivals:
        # Never earlier than the truth (that could fire a takeover), and later by at most
        # the time between two reads (plus the step's own size when it is smaller).
        assert delivered >= true - 1e-9
        assert delivered - true <= read_every + min(abs(step), read_every) + 0.02
    assert sock.clock_steps == (1 if abs(step) * 1e9 > sockets_module.CLOCK_STEP_NS else 0)


# --------------------------------------------------------- a stopped process


class FakeTimers:
    """Records the pacer's wake-ups; ``stall`` says how long the process was not running."""

    def __init__(self) -> None:
        self.stall = 0.0
        self.calls: list[tuple[float, Any]] = []

    def call_at(self, when: float, callback: Any, slack: float = 0.0, order: float = 0.0) -> Any:
        self.calls.append((when, callback))
        return SimpleNamespace(cancel=lambda: None)


def backup_pacer() -> tuple[Pacer, VirtualRouter, FakeTimers, list[Any], SimpleNamespace]:
    clock = SimpleNamespace(now=100.0)
    loop = SimpleNamespace(time=lambda: clock.now)
    timers = FakeTimers()
    performed: list[Any] = []
    pacer = Pacer(loop, timers, performed.extend, lambda force: None)  # type: ignore[arg-type]
    router = VirtualRouter(
        RouterConfig(
            vrid=1,
            priority=100,
            advert_interval=0.01,
            primary_address=IPv6Address("fe80::2"),
            virtual_addresses=(IPv6Address("fe80::100"),),
        )
    )
    router.startup(clock.now)
    pacer.router = router
    pacer.arm()
    return pacer, router, timers, performed, clock


def fire_last(timers: FakeTimers, clock: SimpleNamespace, at: float) -> None:
    clock.now = at
    timers.calls[-1][1]()


def test_a_takeover_due_while_the_process_was_stopped_waits_one_interval_once() -> None:
    pacer, router, timers, performed, clock = backup_pacer()
    deadline = router.get_timer()
    assert deadline is not None
    timers.stall = 0.05  # the whole machine did not run for 50 ms (five intervals)
    fire_last(timers, clock, deadline + 0.04)
    assert router.state is State.BACKUP and performed == []
    assert timers.calls[-1][0] == pytest.approx(clock.now + 0.01)
    assert pacer.stall_holds == 1
    timers.stall = 0.0
    fire_last(timers, clock, timers.calls[-1][0])  # still nothing heard: take over now
    assert router.state is State.MASTER


def test_the_masters_advert_in_the_held_interval_cancels_the_takeover() -> None:
    pacer, router, timers, performed, clock = backup_pacer()
    deadline = router.get_timer()
    assert deadline is not None
    timers.stall = 0.05
    fire_last(timers, clock, deadline + 0.04)
    held_wake = timers.calls[-1][0]
    clock.now += 0.001  # the Master runs again and its advert arrives
    advert = router.advertisement(200)
    data = encode_vrrp(advert, IPv6Address("fe80::1"), IPv6Address("ff02::12"))
    info = PacketInfo(IPv6Address("fe80::1"), IPv6Address("ff02::12"), 255)
    assert router.receive_packet(data, info, clock.now) == []
    pacer.arm()
    timers.stall = 0.0
    fire_last(timers, clock, held_wake)
    assert router.state is State.BACKUP and performed == []


def test_a_short_stall_delays_no_takeover() -> None:
    _, router, timers, _, clock = backup_pacer()
    deadline = router.get_timer()
    assert deadline is not None
    timers.stall = 0.009  # under one interval: cannot have hidden the Master's silence
    fire_last(timers, clock, deadline + 0.009)
    assert router.state is State.MASTER
