"""The FAULT state, the sync-group events and the transition table of the VRRP core."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrpy.codec import Advertisement, PacketInfo, encode_vrrp
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4
from vrrpy.core import (
    AddAddresses,
    Announce,
    Event,
    RemoveAddresses,
    RouterConfig,
    SendAdvertisement,
    State,
    Transition,
    VirtualRouter,
    master_down_interval,
)
from vrrpy.core.vrrp import TRANSITIONS

ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.20")
VIP = (IPv4Address("192.0.2.100"),)


def make(priority: int = 100, **kw: object) -> VirtualRouter:
    return VirtualRouter(
        RouterConfig(vrid=51, primary_address=ME, virtual_addresses=VIP, priority=priority, **kw)  # type: ignore[arg-type]
    )


def advert(priority: int, interval_cs: int = 100) -> Advertisement:
    return Advertisement(3, 51, priority, interval_cs, VIP)


def backup(priority: int = 100, **kw: object) -> VirtualRouter:
    r = make(priority, **kw)
    r.startup(0.0)
    return r


def master(priority: int = 100, **kw: object) -> VirtualRouter:
    r = backup(priority, **kw)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    return r


def kinds(actions: list) -> list[type]:  # type: ignore[type-arg]
    return [type(a) for a in actions]


# ------------------------------------------------------------ entering FAULT


def test_master_entering_fault_resigns_with_priority_zero_then_withdraws_the_addresses() -> None:
    r = master()
    actions = r.fault("link eth0 down", 5.0)
    assert actions == [
        SendAdvertisement(r.advertisement(0)),
        RemoveAddresses(VIP),
        Transition(State.MASTER, State.FAULT, "fault: link eth0 down", "fault"),
    ]
    assert r.state is State.FAULT
    assert r.get_timer() is None
    assert r.faults == ("link eth0 down",)
    assert r.counters.priority_zero_sent == 1
    assert r.counters.released_master == 1
    assert r.master_address is None


def test_backup_entering_fault_just_transitions_and_stops_its_timer() -> None:
    r = backup()
    assert r.fault("script chk_nginx failed", 1.0) == [
        Transition(State.BACKUP, State.FAULT, "fault: script chk_nginx failed", "fault")
    ]
    assert r.get_timer() is None
    assert r.counters.last_transition_reason == "fault: script chk_nginx failed"


def test_in_fault_adverts_are_dropped_as_fault_and_nothing_moves() -> None:
    r = backup()
    r.fault("link eth0 down", 1.0)
    data = encode_vrrp(advert(200), PEER, VRRP_MULTICAST_V4)
    info = PacketInfo(PEER, VRRP_MULTICAST_V4, 255)
    assert r.receive_packet(data, info, 2.0) == []
    assert r.receive_advert(advert(0), PEER, 2.5) == []
    assert r.counters.drops == {"fault": 2}
    assert r.counters.adverts_received == 0
    assert (r.state, r.get_timer(), r.master_address) == (State.FAULT, None, None)
    assert r.handle_timer(100.0) == []


def test_fault_is_a_set_of_reasons_and_fault_lasts_while_any_is_held() -> None:
    r = master()
    r.fault("link eth0 down", 1.0)
    assert r.fault("link eth0 down", 1.1) == []  # held already
    assert r.fault("ping 192.0.2.1 lost", 1.2) == []  # FAULT already: no new transition
    assert r.faults == ("link eth0 down", "ping 192.0.2.1 lost")
    assert r.recover("link eth0 down", 2.0) == []
    assert r.state is State.FAULT
    assert r.recover("not held", 2.1) == []
    actions = r.recover("ping 192.0.2.1 lost", 3.0)
    assert actions == [
        Transition(State.FAULT, State.BACKUP, "fault cleared: ping 192.0.2.1 lost", "fault_cleared")
    ]
    assert r.faults == ()


@pytest.mark.parametrize("bad", ["", None, 3])
def test_a_fault_needs_a_reason(bad: object) -> None:
    with pytest.raises(ValueError):
        backup().fault(bad, 0.0)  # type: ignore[arg-type]


# ------------------------------------------------------------ leaving FAULT


def test_recovery_goes_backup_with_a_fresh_master_down_timer_and_our_own_interval() -> None:
    r = backup()
    r.receive_advert(advert(200, interval_cs=50), PEER, 1.0)
    assert r.master_adver_interval_cs == 50
    r.fault("link eth0 down", 2.0)
    r.recover("link eth0 down", 10.0)
    assert r.state is State.BACKUP
    assert r.master_adver_interval_cs == 100
    assert r.get_timer() == pytest.approx(10.0 + master_down_interval(100, 100))
    assert r.master_address is None
    assert kinds(r.handle_timer(r.get_timer())) == [  # type: ignore[arg-type]
        SendAdvertisement,
        AddAddresses,
        Announce,
        Transition,
    ]


def test_the_address_owner_recovers_straight_to_master() -> None:
    r = make(priority=255)
    r.startup(0.0)
    assert r.state is State.MASTER
    assert kinds(r.fault("link eth0 down", 1.0)) == [SendAdvertisement, RemoveAddresses, Transition]
    actions = r.recover("link eth0 down", 2.0)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    assert actions[-1] == Transition(
        State.FAULT, State.MASTER, "fault cleared: link eth0 down (address owner)", "fault_cleared"
    )


def test_preempt_delay_counts_again_from_recovery() -> None:
    r = backup(priority=150, preempt_delay=5.0)
    r.fault("link", 100.0)
    r.recover("link", 101.0)
    deadline_before = r.get_timer()
    r.receive_advert(advert(100), PEER, 102.0)  # weaker Master, within the delay: accepted
    assert r.get_timer() != deadline_before
    assert r.master_address == PEER


# ------------------------------------------------------- before and after running


def test_a_fault_raised_before_startup_is_remembered_and_startup_goes_to_fault() -> None:
    r = make()
    assert r.fault("link eth0 down", 0.0) == []
    assert r.state is State.INITIALIZE
    assert r.startup(1.0) == [
        Transition(State.INITIALIZE, State.FAULT, "startup; fault: link eth0 down", "fault")
    ]
    assert r.get_timer() is None
    assert r.recover("link eth0 down", 2.0)[-1].new is State.BACKUP  # type: ignore[union-attr]


def test_an_owner_with_a_fault_at_startup_does_not_go_master() -> None:
    r = make(priority=255)
    r.fault("link eth0 down", 0.0)
    assert kinds(r.startup(0.0)) == [Transition]
    assert r.state is State.FAULT


def test_a_fault_cleared_before_startup_is_forgotten() -> None:
    r = make()
    r.fault("link", 0.0)
    assert r.recover("link", 0.5) == []
    assert r.startup(1.0) == [Transition(State.INITIALIZE, State.BACKUP, "startup", "startup")]


def test_shutdown_from_fault_sends_nothing_and_keeps_the_faults() -> None:
    r = master()
    r.fault("link", 1.0)
    assert r.shutdown(2.0) == [Transition(State.FAULT, State.INITIALIZE, "shutdown", "shutdown")]
    assert r.faults == ("link",)
    assert r.startup(3.0)[-1].new is State.FAULT  # type: ignore[union-attr]


# ------------------------------------------------------------ sync-group events


def test_force_master_takes_a_backup_to_master_at_once() -> None:
    r = backup()
    actions = r.force_master("sync group gw: v6 became MASTER", 1.0)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    assert actions[-1].reason == "sync group gw: v6 became MASTER"  # type: ignore[union-attr]
    assert r.get_timer() == pytest.approx(2.0)


def test_force_backup_leaves_master_without_priority_zero() -> None:
    r = master()
    actions = r.force_backup("sync group gw: v6 left MASTER", 5.0)
    assert kinds(actions) == [RemoveAddresses, Transition]
    assert r.state is State.BACKUP
    assert r.get_timer() == pytest.approx(5.0 + master_down_interval(100, 100))
    assert r.counters.priority_zero_sent == 0


def test_hold_backup_restarts_master_down_timer_and_nothing_else() -> None:
    r = backup()
    assert r.hold_backup("sync group gw: waiting", 3.7) == []
    assert r.get_timer() == pytest.approx(3.7 + master_down_interval(100, 100))
    assert r.state is State.BACKUP


@pytest.mark.parametrize("state", ["init", "master", "fault"])
def test_force_master_and_hold_do_nothing_outside_backup(state: str) -> None:
    r = {"init": make, "master": master, "fault": backup}[state]()
    if state == "fault":
        r.fault("link", 0.5)
    before = (r.state, r.get_timer())
    assert r.force_master("x", 1.0) == []
    assert r.hold_backup("x", 1.0) == []
    assert (r.state, r.get_timer()) == before


def test_force_backup_does_nothing_outside_master() -> None:
    r = backup()
    assert r.force_backup("x", 1.0) == []
    r.fault("link", 1.0)
    assert r.force_backup("x", 2.0) == [] and r.state is State.FAULT


# ---------------------------------------------------------------- priority


def test_set_priority_refuses_to_move_the_owner_and_takes_only_1_to_254() -> None:
    with pytest.raises(ValueError):
        make(priority=255).set_priority(100, 0.0)
    with pytest.raises(ValueError):
        make().set_priority(True, 0.0)  # type: ignore[arg-type]
    r = master()
    r.set_priority(254, 1.0)
    assert r.handle_timer(r.get_timer())[0].advert.priority == 254  # type: ignore[arg-type,union-attr]


def test_a_master_whose_priority_drops_below_a_preempting_backup_is_taken_over() -> None:
    r = master(priority=200)
    r.set_priority(50, 1.0)
    actions = r.receive_advert(advert(100), PEER, 1.5)  # the preempting Backup's advert
    assert actions[-1] == Transition(
        State.MASTER, State.BACKUP, f"higher priority 100 from {PEER}", "preempted"
    )


# ------------------------------------------------------- the Backup's repeats


def test_repeated_adverts_are_each_counted_and_each_restart_the_timer() -> None:
    r = backup()
    data = encode_vrrp(advert(200, interval_cs=50), PEER, VRRP_MULTICAST_V4)
    info = PacketInfo(PEER, VRRP_MULTICAST_V4, 255)
    for i in range(5):
        r.receive_packet(data, info, 1.0 + i * 0.5)
    assert r.counters.adverts_received == 5
    assert r.counters.checksum_pseudo_header == 5
    assert r.counters.anomalies == {"interval_mismatch": 5}  # logged for each packet
    assert r.get_timer() == pytest.approx(3.0 + master_down_interval(100, 50))


def test_a_repeat_after_a_priority_raise_is_judged_again() -> None:
    r = backup(priority=100)
    a = advert(150)
    r.receive_advert(a, PEER, 1.0)
    r.set_priority(200, 1.5)
    deadline = r.get_timer()
    r.receive_advert(a, PEER, 2.0)  # now weaker than us: discarded, the timer runs on
    assert r.get_timer() == deadline
    assert r.counters.lower_priority_discarded == 1


def test_a_repeat_after_another_masters_advert_is_judged_again() -> None:
    r = backup(priority=100)
    a = advert(150)
    other = IPv4Address("192.0.2.30")
    r.receive_advert(a, PEER, 1.0)
    r.receive_advert(advert(160), other, 1.2)
    assert r.master_address == other
    r.receive_advert(a, PEER, 1.4)
    assert (r.master_address, r.master_priority) == (PEER, 150)
    r.receive_advert(advert(0), PEER, 1.5)
    r.receive_advert(a, PEER, 1.6)  # the resignation is forgotten by an advert since
    assert r.get_timer() == pytest.approx(1.6 + master_down_interval(100, 100))


# ---------------------------------------------------------------- the table


def test_the_table_has_a_row_for_every_state_and_event() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in State for e in Event}
    for (state, _event), rule in TRANSITIONS.items():
        assert rule.targets and rule.why
        if rule.handler is TRANSITIONS[(State.INITIALIZE, Event.SHUTDOWN)].handler:
            assert rule.targets == {state}  # a row that does nothing stays put


_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "startup",
                "shutdown",
                "advert",
                "timer",
                "fault",
                "recover",
                "force_master",
                "force_backup",
                "hold_backup",
                "priority",
            ]
        ),
        st.integers(0, 255),
        st.sampled_from(["link", "script"]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(owner=st.booleans(), events=_EVENTS)
def test_every_transition_is_one_the_table_allows_and_fault_holds_nothing(
    owner: bool, events: list[tuple[str, int, str]]
) -> None:
    """Property: whatever the events, each state change goes where TRANSITIONS says; in
    FAULT the router has no timer and asks for nothing but the priority-0 advert and the
    removal on its way in; it is in FAULT exactly while running with a fault held."""
    r = make(priority=255 if owner else 100)
    now = 0.0
    for name, number, reason in events:
        now += 0.25
        before = r.state
        event = {
            "startup": Event.STARTUP,
            "shutdown": Event.SHUTDOWN,
            "advert": Event.ADVERT,
            "timer": Event.TIMER,
            "fault": Event.FAULT,
            "recover": Event.RECOVER,
            "force_master": Event.FORCE_MASTER,
            "force_backup": Event.FORCE_BACKUP,
            "hold_backup": Event.HOLD_BACKUP,
        }.get(name)
        if name == "fault" and r.faults:
            event = None  # a further reason: the table's FAULT is the first one only
        if name == "recover" and r.faults != (reason,):
            event = None  # not the last reason: the table's RECOVER is the last one only
        if name == "startup":
            actions = r.startup(now)
        elif name == "shutdown":
            actions = r.shutdown(now)
        elif name == "advert":
            actions = r.receive_advert(advert(number), PEER, now)
        elif name == "timer":
            deadline = r.get_timer()
            actions = r.handle_timer(deadline if deadline is not None else now)
        elif name == "fault":
            actions = r.fault(reason, now)
        elif name == "recover":
            actions = r.recover(reason, now)
        elif name == "priority":
            if not owner and 1 <= number <= 254:
                r.set_priority(number, now)
            continue
        else:
            actions = getattr(r, name)("test", now)
        transitions = [a for a in actions if isinstance(a, Transition)]
        assert len(transitions) <= 1
        if event is not None:
            assert r.state in TRANSITIONS[(before, event)].targets, (before, name, r.state)
        if transitions:
            assert (transitions[0].old, transitions[0].new) == (before, r.state)
        else:
            assert r.state is before
        running = r.state is not State.INITIALIZE
        assert (r.state is State.FAULT) == (running and bool(r.faults))
        if r.state is State.FAULT:
            assert r.get_timer() is None
            if before is State.FAULT:
                assert actions == []
            else:
                sends = [a for a in actions if isinstance(a, SendAdvertisement)]
                assert all(a.advert.priority == 0 for a in sends)
                assert not any(isinstance(a, (AddAddresses, Announce)) for a in actions)
