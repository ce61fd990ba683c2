"""The simulator: deterministic runs of real cores on a virtual LAN, and the election properties."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrrpy.codec import PacketInfo
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4
from vrrpy.core import State, master_down_interval
from vrrpy.core.actions import Announce, Transition
from vrrpy.sim import VirtualLAN

VIP = ["192.0.2.100"]


def build(priorities: list[int], interval: float = 1.0, seed: int = 0, **kw: object) -> VirtualLAN:
    lan = VirtualLAN(seed=seed)
    for i, prio in enumerate(priorities, start=1):
        lan.add_router(
            lan.add_node(f"r{i}"), 51, VIP, priority=prio, advert_interval=interval, **kw
        )
    return lan


def test_highest_priority_wins_and_holds_the_address() -> None:
    lan = build([100, 200, 150])
    lan.start()
    lan.run(10.0)
    assert lan.masters(51) == ["r2"]
    assert [n.name for n in lan.nodes.values() if n.addresses] == ["r2"]


def test_crash_of_master_fails_over_at_master_down_interval() -> None:
    lan = build([200, 150, 100])
    lan.start()
    lan.at(10.0, lan.crash, "r1")
    lan.run(20.0)
    takeover = [e for e in lan.transitions() if e.node == "r2" and e.new is State.MASTER]
    assert len(takeover) == 1
    last_advert = 3.21875 + 6  # r1 became Master at MDI(200) and sent every second since
    assert takeover[0].time == pytest.approx(
        last_advert + 0.0001 + master_down_interval(150, 100), abs=1e-9
    )


def test_graceful_stop_hands_over_after_skew_time() -> None:
    lan = build([200, 150, 100])
    lan.start()
    lan.at(10.0, lan.stop, "r1")
    lan.run(20.0)
    takeover = [e for e in lan.transitions() if e.node == "r2" and e.new is State.MASTER]
    assert takeover[0].time == pytest.approx(10.0 + 0.0001 + 106 / 256, abs=1e-9)
    assert lan.masters(51) == ["r2"]


def test_restarted_higher_priority_node_preempts() -> None:
    lan = build([200, 150])
    lan.start()
    lan.at(10.0, lan.crash, "r1")
    lan.at(20.0, lan.restart, "r1")
    lan.run(30.0)
    assert lan.masters(51) == ["r1"]


def test_no_preempt_keeps_the_current_master() -> None:
    lan = build([200, 150], preempt=False)
    lan.start()
    lan.at(10.0, lan.crash, "r1")
    lan.at(20.0, lan.restart, "r1")
    lan.run(40.0)
    assert lan.masters(51) == ["r2"]


def test_priority_change_moves_the_master() -> None:
    lan = build([200, 150])
    lan.start()
    lan.at(10.0, lan.set_priority, "r1", 51, 100)
    lan.run(20.0)
    assert lan.masters(51) == ["r2"]


def test_ipv6_and_v2_run_in_the_simulator() -> None:
    lan = VirtualLAN()
    for name, prio in (("a", 100), ("b", 120)):
        node = lan.add_node(name)
        lan.add_router(node, 7, ["2001:db8::100"], priority=prio)
        lan.add_router(node, 7, ["192.0.2.100"], priority=220 - prio, version=2, auth_pass="pw")
    lan.start()
    lan.run(10.0)
    assert lan.masters(7, family=6) == ["b"]
    assert lan.masters(7, family=4) == ["a"]


def test_partition_gives_two_masters_and_heal_gives_one() -> None:
    lan = build([200, 150, 100])
    lan.start()
    lan.at(10.0, lan.partition, ["r1"], ["r2", "r3"])
    lan.at(20.0, lan.heal)
    lan.run(19.0)
    assert sorted(lan.masters(51)) == ["r1", "r2"]
    lan.run(22.0)
    assert lan.masters(51) == ["r1"]


def _announces_after(lan: VirtualLAN, since: float) -> list[tuple[float, str]]:
    """(time, node) of every Announce any router returns from ``since`` on (filled as it runs)."""
    seen: list[tuple[float, str]] = []

    def watch(node, _router, action) -> None:  # type: ignore[no-untyped-def]
        if isinstance(action, Announce) and lan.now >= since:
            seen.append((lan.now, node.name))

    lan.observers.append(watch)
    return seen


def test_heal_makes_the_better_master_re_announce_when_it_hears_the_weaker_one() -> None:
    """r1 (200) cut off from r2 (150): both Master. Healed at 20.3, r2's advert (sent
    every second since it took over at ~12.63) reaches r1 first: r1 asserts itself and
    re-announces the address at once, so hosts that followed r2 come back; r2 steps down."""
    lan = build([200, 150])
    lan.start()
    lan.at(10.0, lan.partition, ["r1"], ["r2"])
    lan.at(20.3, lan.heal)
    lan.trace = True
    announces = _announces_after(lan, 20.3)
    lan.run(25.0)
    first = min(d.time for d in lan.deliveries if d.sender == "r2" and d.time > 20.3)
    assert announces == [(first, "r1")]  # once, the moment r1 hears r2
    assert lan.masters(51) == ["r1"]
    assert lan.nodes["r1"].router(51).counters.split_brains == 1


def test_weaker_master_that_hears_the_better_one_first_yields_without_a_re_announce() -> None:
    """The known gap (docs/conformance.md): healed at 20.0, r1's advert (20.21875) reaches
    r2 before r2 sends again (20.63). r2 steps down silently, as RFC 9568 6.4.3 says, so
    r1 never hears another Master and announces nothing: hosts that followed r2's
    announcements during the partition stay on r2's MAC until their entries expire.
    (``higher_prio_send_advert``, off by default, closes it: see the next test.)"""
    lan = build([200, 150])
    lan.start()
    lan.at(10.0, lan.partition, ["r1"], ["r2"])
    lan.at(20.0, lan.heal)
    announces = _announces_after(lan, 20.0)
    lan.run(25.0)
    assert lan.masters(51) == ["r1"]
    assert announces == []
    assert lan.nodes["r1"].router(51).counters.split_brains == 0


def test_higher_prio_send_advert_lets_the_better_master_re_announce_after_a_heal() -> None:
    """The same heal at 20.0 with keepalived's higher_prio_send_advert on: r2, yielding
    to r1's advert, first sends one of its own; r1 hears a weaker Master and re-announces."""
    lan = build([200, 150], higher_prio_send_advert=True)
    lan.start()
    lan.at(10.0, lan.partition, ["r1"], ["r2"])
    lan.at(20.0, lan.heal)
    announces = _announces_after(lan, 20.0)
    lan.run(25.0)
    assert lan.masters(51) == ["r1"]
    assert announces == [(pytest.approx(20.21875 + 2 * 0.0001), "r1")]
    assert lan.nodes["r1"].router(51).counters.split_brains == 1


def test_forged_and_malformed_packets_change_nothing() -> None:
    lan = build([200, 150])
    lan.start()
    lan.run(10.0)
    backup = lan.nodes["r2"].router(51)
    deadline_before = backup.get_timer()
    info = PacketInfo(IPv4Address("192.0.2.99"), VRRP_MULTICAST_V4, 255)
    for i in range(200):
        lan.inject("r2", bytes([0x31, 51, 255, 1]) + bytes(i % 7), info)
        lan.inject("r2", bytes([0x31, 51]) + bytes(range(i % 40)), info._replace(ttl=1))
    lan.run(10.0)
    assert backup.get_timer() == deadline_before
    assert backup.state is State.BACKUP
    assert backup.counters.dropped == 400
    lan.run(30.0)
    assert lan.masters(51) == ["r1"]


def test_same_seed_same_run() -> None:
    def run() -> list[tuple[float, str, str]]:
        lan = build([200, 150, 100], seed=7)
        lan.link("r1", "r2", loss=0.3, jitter=0.01)
        lan.start()
        lan.at(5.0, lan.crash, "r1")
        lan.at(9.0, lan.restart, "r1")
        lan.run(30.0)
        return [(e.time, e.node, e.kind) for e in lan.timeline]

    assert run() == run()


# ------------------------------------------------------------- properties


@dataclass
class Fault:
    time: float
    kind: str
    node: int
    arg: int = 0


def best(lan: VirtualLAN, vrid: int = 51) -> tuple[int, set[str]]:
    """(highest priority of a live router not in FAULT, names of the nodes with it)."""
    live = [
        (n.router(vrid).priority, n.name)
        for n in lan.nodes.values()
        if n.up and n.routers and n.router(vrid).state is not State.FAULT
    ]
    top = max(p for p, _ in live)
    return top, {name for p, name in live if p == top}


def bound(interval: float) -> float:
    """Master_Down_Interval at priority 1, plus one advert interval, plus delivery slack."""
    return master_down_interval(1, round(interval * 100)) + interval + 0.01


faults = st.lists(
    st.builds(
        Fault,
        time=st.floats(0.0, 30.0),
        kind=st.sampled_from(
            ["crash", "restart", "stop", "priority", "partition", "heal", "fault", "recover"]
        ),
        node=st.integers(0, 4),
        arg=st.integers(1, 254),
    ),
    max_size=8,
)


def schedule(lan: VirtualLAN, names: list[str], plan: list[Fault], interval: float) -> float:
    """Put ``plan`` on the LAN's calendar (times scaled to the interval); return the last time."""
    last = 0.0
    for fault in sorted(plan, key=lambda f: f.time):
        at = fault.time * interval
        name = names[fault.node % len(names)]
        last = at
        if fault.kind == "crash":
            lan.at(at, lambda n=name: lan.nodes[n].up and lan.crash(n))
        elif fault.kind in ("restart", "stop"):
            func = lan.restart if fault.kind == "restart" else lan.stop

            def act(n: str = name, f=func, up: bool = fault.kind == "stop") -> None:  # type: ignore[no-untyped-def]
                if lan.nodes[n].up == up:
                    f(n)

            lan.at(at, act)
        elif fault.kind == "priority":
            lan.at(at, lambda n=name, p=fault.arg: lan.nodes[n].up and lan.set_priority(n, 51, p))
        elif fault.kind == "fault":
            lan.at(at, lan.fault, name, f"track {fault.arg % 2}")
        elif fault.kind == "recover":
            lan.at(at, lan.recover, name, f"track {fault.arg % 2}")
        elif fault.kind == "partition":
            lan.at(at, lan.partition, [name])
        else:
            lan.at(at, lan.heal)
    return last


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    priorities=st.lists(st.integers(1, 254), min_size=2, max_size=5, unique=True),
    interval=st.sampled_from([0.05, 0.1, 1.0, 2.5]),
    plan=faults,
    send_on_yield=st.booleans(),
)
def test_one_master_with_the_highest_priority_after_faults_settle(
    priorities: list[int], interval: float, plan: list[Fault], send_on_yield: bool
) -> None:
    """Property: with no loss, within Master_Down_Interval + one advert interval after the
    last fault (or heal), exactly one live router not in FAULT is Master, and it has the
    highest priority (with or without higher_prio_send_advert); with all in FAULT, none."""
    lan = build(priorities, interval=interval, higher_prio_send_advert=send_on_yield)
    names = list(lan.nodes)
    lan.start()
    last = schedule(lan, names, plan, interval)
    lan.at(last + 1e-6, lan.heal)
    lan.run(last + bound(interval))
    if not any(n.up for n in lan.nodes.values()):
        return
    masters = lan.masters(51)
    if all(n.router(51).state is State.FAULT for n in lan.nodes.values() if n.up):
        assert masters == [] and not any(n.addresses for n in lan.nodes.values() if n.up)
        return
    _top, winners = best(lan)
    assert len(masters) == 1, (masters, lan.timeline[-10:])
    assert masters[0] in winners
    # The address follows the Master and nobody else holds it.
    assert [n.name for n in lan.nodes.values() if n.up and n.addresses] == masters


@settings(max_examples=60, deadline=None)
@given(
    priority=st.integers(1, 254),
    interval=st.sampled_from([0.05, 1.0]),
    count=st.integers(2, 5),
)
def test_equal_priorities_started_together_elect_the_highest_address(
    priority: int, interval: float, count: int
) -> None:
    """Property: routers of equal priority started together elect the highest primary address.

    (Later arrivals of equal priority stay Backup: RFC 9568 6.4.2 makes a Backup accept an
    equal-priority Master, so the address tie-break only acts between two Masters.)"""
    lan = build([priority] * count, interval=interval)
    lan.start()
    lan.run(bound(interval) * 2)
    assert lan.masters(51) == [f"r{count}"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    priorities=st.lists(st.integers(1, 254), min_size=2, max_size=4, unique=True),
    interval=st.sampled_from([0.05, 1.0]),
    loss=st.floats(0.0, 0.4),
    plan=st.lists(
        st.builds(
            Fault,
            time=st.floats(0.0, 30.0),
            kind=st.sampled_from(
                ["crash", "restart", "stop", "partition", "heal", "fault", "recover"]
            ),
            node=st.integers(0, 4),
        ),
        max_size=6,
    ),
    preempt=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_backup_never_takes_over_while_hearing_a_higher_priority_master(
    priorities: list[int],
    interval: float,
    loss: float,
    plan: list[Fault],
    preempt: bool,
    seed: int,
) -> None:
    """Property: whatever the loss and faults, a Backup that received an advert of higher
    priority less than Master_Down_Interval ago does not become Master, unless a priority-0
    advert (a Master resigning) arrived after it."""
    lan = build(priorities, interval=interval, seed=seed, preempt=preempt)
    lan.default = type(lan.default)(loss=loss)
    lan.trace = True
    takeovers: list[tuple[float, str, int, float]] = []

    def watch(node, router, action) -> None:  # type: ignore[no-untyped-def]
        if (
            isinstance(action, Transition)
            and action.new is State.MASTER
            and action.old is State.BACKUP
        ):
            takeovers.append((lan.now, node.name, router.priority, router.master_down_interval))

    lan.observers.append(watch)
    lan.start()
    last = schedule(lan, list(lan.nodes), plan, interval)
    lan.run(last + 10 * interval)
    for time, name, prio, mdi in takeovers:
        mine = [d for d in lan.deliveries if d.receiver == name and d.time <= time]
        heard = [
            d
            for d in mine
            if d.priority > prio
            and time - mdi + 1e-9 < d.time
            # A priority-0 advert since then (from any Master: with loss, two may coexist)
            # legitimately cuts the wait to Skew_Time (RFC 9568 6.4.2).
            and not any(z.priority == 0 and z.time > d.time for z in mine)
        ]
        assert not heard, (name, time, heard)
