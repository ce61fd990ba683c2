"""Fault schedules and sync groups in the simulator, and the election properties under them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrrpy.core import State, master_down_interval, skew_time
from vrrpy.sim import VirtualLAN

VIP4 = ["192.0.2.100"]
VIP6 = ["fe80::1:100", "2001:db8::100"]
DELAY = 0.0001


def build(priorities: list[int], interval: float = 1.0, **kw: object) -> VirtualLAN:
    lan = VirtualLAN()
    for i, prio in enumerate(priorities, start=1):
        lan.add_router(
            lan.add_node(f"r{i}"), 51, VIP4, priority=prio, advert_interval=interval, **kw
        )
    return lan


def grouped(priorities: list[int], interval: float = 1.0) -> VirtualLAN:
    """Each host runs an IPv4 and an IPv6 router for VRID 1, as one sync group."""
    lan = VirtualLAN()
    for i, prio in enumerate(priorities, start=1):
        node = lan.add_node(f"r{i}")
        lan.add_router(node, 1, VIP4, priority=prio, advert_interval=interval)
        lan.add_router(node, 1, VIP6, priority=prio, advert_interval=interval)
        lan.sync_group(node, "gw", [(4, 1), (6, 1)])
    return lan


def takeovers(lan: VirtualLAN, node: str) -> list[float]:
    return [e.time for e in lan.transitions() if e.node == node and e.new is State.MASTER]


def test_masters_tracked_link_down_hands_over_at_skew_time_and_it_returns_as_backup() -> None:
    lan = build([200, 150])
    lan.start()
    lan.at(10.0, lan.fault, "r1", "link eth0 down")
    lan.at(20.0, lan.recover, "r1", "link eth0 down")
    lan.run(19.0)
    assert takeovers(lan, "r2") == [pytest.approx(10.0 + DELAY + skew_time(150, 100))]
    r1 = lan.nodes["r1"]
    assert r1.router(51).state is State.FAULT and not r1.addresses
    assert lan.masters(51) == ["r2"]
    lan.run(20.0)
    assert r1.router(51).state is State.BACKUP
    lan.run(30.0)  # and, preempting, Master again after its Master_Down_Interval
    assert takeovers(lan, "r1")[-1] == pytest.approx(20.0 + master_down_interval(200, 100))
    assert lan.masters(51) == ["r1"]


def test_a_fault_survives_a_crash_and_the_restarted_host_starts_in_fault() -> None:
    lan = build([200, 150])
    lan.start()
    lan.at(5.0, lan.fault, "r1", "link eth0 down")
    lan.at(6.0, lan.crash, "r1")
    lan.at(7.0, lan.restart, "r1")
    lan.run(10.0)
    r1 = lan.nodes["r1"].router(51)
    assert r1.state is State.FAULT and r1.faults == ("link eth0 down",)
    assert lan.masters(51) == ["r2"]


def test_a_fault_on_one_vrid_leaves_the_hosts_other_vrids_alone() -> None:
    lan = build([200, 150])
    for name in ("r1", "r2"):
        lan.add_router(
            name, 52, ["192.0.2.101"], priority=lan.nodes[name].configs[(4, 51)].priority
        )
    lan.start()
    lan.at(5.0, lan.fault, "r1", "script chk failed", 51)
    lan.run(10.0)
    assert lan.masters(51) == ["r2"]
    assert lan.masters(52) == ["r1"]


def test_a_sync_group_moves_as_one_when_either_member_faults() -> None:
    lan = grouped([200, 150])
    lan.start()
    lan.run(5.0)
    assert lan.masters(1, 4) == lan.masters(1, 6) == ["r1"]
    lan.fault("r1", "link eth1 down", vrid=1, family=6)
    lan.run(8.0)
    assert lan.states(1, 4) == lan.states(1, 6) == {"r1": State.FAULT, "r2": State.MASTER}
    assert lan.nodes["r1"].router(1, 4).faults == ("sync group gw: IPv6/1 link eth1 down",)
    # Both of r2's members took over at Skew_Time: r1 resigned on both families.
    r2_up = [e.time for e in lan.transitions() if e.node == "r2" and e.new is State.MASTER]
    assert r2_up == [pytest.approx(5.0 + DELAY + skew_time(150, 100))] * 2
    lan.recover("r1", "link eth1 down", vrid=1, family=6)
    lan.run(12.0)
    assert lan.masters(1, 4) == lan.masters(1, 6) == ["r1"]


def test_the_simulator_timeline_shows_faults_and_recoveries() -> None:
    lan = build([200, 150])
    lan.start()
    lan.at(1.0, lan.fault, "r2", "ping lost")
    lan.at(2.0, lan.recover, "r2", "ping lost")
    lan.run(3.0)
    kinds = [(e.node, e.kind, e.detail) for e in lan.timeline if e.kind in ("fault", "recover")]
    assert kinds == [
        ("r2", "fault", "every router: ping lost"),
        ("r2", "recover", "every router: ping lost"),
    ]


def test_a_reason_raised_for_the_host_and_for_one_vrid_holds_until_both_clear() -> None:
    lan = build([200, 100])
    lan.start()
    lan.run(5.0)
    lan.fault("r1", "link")
    lan.fault("r1", "link", vrid=51)
    lan.recover("r1", "link")
    assert lan.nodes["r1"].router(51).state is State.FAULT
    lan.recover("r1", "link", vrid=51)
    assert lan.nodes["r1"].router(51).state is State.BACKUP


def test_a_sync_group_names_known_routers_each_in_one_group() -> None:
    lan = grouped([200, 100])
    with pytest.raises(ValueError):
        lan.sync_group("r1", "other", [(4, 1)])
    with pytest.raises(ValueError):
        lan.sync_group("r1", "gw2", [7])


def test_a_grouped_host_restarted_with_a_fault_starts_its_whole_group_in_fault() -> None:
    lan = grouped([200, 100])
    lan.start()
    lan.at(3.0, lan.fault, "r1", "link eth0 down", 1, 4)
    lan.at(4.0, lan.crash, "r1")
    lan.at(5.0, lan.restart, "r1")
    lan.run(10.0)
    assert lan.states(1, 4)["r1"] is lan.states(1, 6)["r1"] is State.FAULT
    assert lan.masters(1, 4) == lan.masters(1, 6) == ["r2"]
    restarted = [e for e in lan.transitions() if e.node == "r1" and e.time == 5.0]
    assert {e.new for e in restarted} == {State.FAULT}  # never through Backup


# ------------------------------------------------------------- properties


@dataclass
class Change:
    time: float
    kind: str
    node: int
    reason: str = "link"
    scope: int = 0
    arg: int = 100


def bound(interval: float) -> float:
    """Master_Down_Interval at priority 1, plus one advert interval, plus delivery slack."""
    return master_down_interval(1, round(interval * 100)) + interval + 0.01


changes = st.lists(
    st.builds(
        Change,
        time=st.floats(0.0, 30.0),
        kind=st.sampled_from(["fault", "recover", "recover", "priority"]),
        node=st.integers(0, 4),
        reason=st.sampled_from(["link", "script"]),
        scope=st.integers(0, 2),
        arg=st.integers(1, 254),
    ),
    max_size=10,
)


def schedule(
    lan: VirtualLAN, plan: list[Change], interval: float, vrids: list[tuple[int, int]]
) -> float:
    """Put ``plan`` on the calendar (times scaled to the interval); return the last time.

    ``scope`` 0 is the whole host (a tracked interface), else one of ``vrids``; a
    priority change applies to every router of the host (a tracked weight shared by
    a sync group's members, as keepalived's group-level track_script)."""
    names = list(lan.nodes)
    last = 0.0
    for change in sorted(plan, key=lambda c: c.time):
        at = change.time * interval
        name = names[change.node % len(names)]
        last = at
        if change.kind == "priority":

            def reprioritise(n: str = name, p: int = change.arg) -> None:
                for family, vrid in vrids:
                    if lan.nodes[n].configs[(family, vrid)].priority != 255:
                        lan.set_priority(n, vrid, p, family)

            lan.at(at, reprioritise)
            continue
        family, vrid = vrids[(change.scope - 1) % len(vrids)]
        scope = {} if change.scope == 0 else {"vrid": vrid, "family": family}
        func = lan.fault if change.kind == "fault" else lan.recover
        lan.at(at, lambda f=func, n=name, r=change.reason, s=scope: f(n, r, **s))
    return last


def check_election(lan: VirtualLAN, vrid: int, family: int) -> None:
    """Exactly one non-FAULT router is Master, the one of highest effective priority, and
    only it holds the address; with every router in FAULT, none is."""
    live = {
        name: router
        for name, node in lan.nodes.items()
        if (router := node.routers.get((family, vrid))) is not None
    }
    candidates = {n: r.priority for n, r in live.items() if r.state is not State.FAULT}
    masters = lan.masters(vrid, family)
    vip = lan.nodes[next(iter(live))].configs[(family, vrid)].virtual_addresses[0]
    holders = [n for n, node in lan.nodes.items() if vip in node.addresses]
    if not candidates:
        assert masters == [] and holders == []
        return
    best = max(candidates.values())
    assert len(masters) == 1, (masters, lan.timeline[-12:])
    assert candidates[masters[0]] == best, (masters, candidates)
    assert holders == masters


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    priorities=st.lists(st.integers(1, 255), min_size=2, max_size=4, unique=True),
    interval=st.sampled_from([0.05, 0.1, 1.0]),
    plan=changes,
)
def test_after_any_fault_schedule_one_non_fault_router_is_master_the_highest_priority(
    priorities: list[int], interval: float, plan: list[Change]
) -> None:
    """Property: with any fault schedule and no loss, once the last change has settled
    exactly one non-FAULT router is Master, the one with the highest effective priority
    (distinct priorities: the address tie-break settles two Masters, not a Backup that
    accepts an equal-priority Master, RFC 9568 6.4.2)."""
    lan = build(priorities, interval=interval)
    lan.start()
    last = schedule(lan, plan, interval, [(4, 51)])
    lan.run(last + bound(interval))
    check_election(lan, 51, 4)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    priorities=st.lists(st.integers(1, 254), min_size=2, max_size=3, unique=True),
    interval=st.sampled_from([0.05, 1.0]),
    plan=changes,
)
def test_a_sync_groups_members_end_in_the_same_state_after_any_fault_schedule(
    priorities: list[int], interval: float, plan: list[Change]
) -> None:
    """Property: with IPv4 + IPv6 sync groups on every host and any fault schedule, no
    loss, once settled each host's members are in the same state, and each family has
    one Master, the non-FAULT host of highest priority."""
    lan = grouped(priorities, interval=interval)
    lan.start()
    last = schedule(lan, plan, interval, [(4, 1), (6, 1)])
    lan.run(last + 2 * bound(interval))
    for name, node in lan.nodes.items():
        states = {router.state for router in node.routers.values()}
        assert len(states) == 1, (name, states, lan.timeline[-12:])
    check_election(lan, 1, 4)
    check_election(lan, 1, 6)
