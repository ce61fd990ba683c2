"""Sync groups (keepalived's vrrp_sync_group) on the sans-IO cores, driven by hand."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv6Address

import pytest

from vrrpy.codec import Advertisement
from vrrpy.core import (
    RemoveAddresses,
    RouterConfig,
    SendAdvertisement,
    State,
    Step,
    SyncGroup,
    Transition,
    VirtualRouter,
    master_down_interval,
)

V4 = IPv4Address("192.0.2.11")
V6 = IPv6Address("fe80::11")
PEER4 = IPv4Address("192.0.2.20")
PEER6 = IPv6Address("fe80::20")
VIP4 = (IPv4Address("192.0.2.100"),)
VIP6 = (IPv6Address("fe80::1:100"), IPv6Address("2001:db8::100"))


def pair(
    prio4: int = 100, prio6: int = 100, **kw: object
) -> tuple[SyncGroup, VirtualRouter, VirtualRouter]:
    v4 = VirtualRouter(
        RouterConfig(vrid=1, primary_address=V4, virtual_addresses=VIP4, priority=prio4, **kw)
    )  # type: ignore[arg-type]
    v6 = VirtualRouter(
        RouterConfig(vrid=1, primary_address=V6, virtual_addresses=VIP6, priority=prio6, **kw)
    )  # type: ignore[arg-type]
    return SyncGroup("gw", {"v4": v4, "v6": v6}), v4, v6


def transitions(steps: list[Step]) -> list[tuple[str, State, State, str]]:
    return [
        (name, a.old, a.new, a.reason)
        for name, actions in steps
        for a in actions
        if isinstance(a, Transition)
    ]


def both_master(g: SyncGroup, v4: VirtualRouter, v6: VirtualRouter) -> None:
    g.startup(0.0)
    g.handle_timer("v4", v4.get_timer())  # type: ignore[arg-type]
    assert (v4.state, v6.state) == (State.MASTER, State.MASTER)


def test_members_become_master_together_when_both_timers_run_out() -> None:
    g, v4, _v6 = pair()
    g.startup(0.0)
    steps = g.handle_timer("v4", v4.get_timer())  # type: ignore[arg-type]
    assert transitions(steps) == [
        ("v4", State.BACKUP, State.MASTER, "no master heard for Master_Down_Interval"),
        (
            "v6",
            State.BACKUP,
            State.MASTER,
            "sync group gw: v4 became MASTER (no master heard for Master_Down_Interval)",
        ),
    ]
    assert g.state is State.MASTER
    assert g.last_reason.startswith("v4 became MASTER")


def test_a_member_is_held_in_backup_while_its_sibling_still_hears_a_master() -> None:
    """keepalived's vrrp_sync_can_goto_master: prefer Backup to thrashing."""
    g, v4, v6 = pair()
    g.startup(0.0)
    g.receive_advert("v6", Advertisement(3, 1, 200, 100, VIP6), PEER6, 3.0)
    due = v4.get_timer()
    assert due is not None
    assert g.handle_timer("v4", due) == []
    assert v4.state is State.BACKUP
    assert v4.get_timer() == pytest.approx(due + master_down_interval(100, 100))
    # The v6 Master goes silent: v6's timer runs out, v4 is held and wants Master: both go.
    steps = g.handle_timer("v6", v6.get_timer())  # type: ignore[arg-type]
    assert [(n, new) for n, _, new, _ in transitions(steps)] == [
        ("v6", State.MASTER),
        ("v4", State.MASTER),
    ]


def test_a_held_member_that_hears_a_master_again_no_longer_wants_master() -> None:
    g, v4, v6 = pair()
    g.startup(0.0)
    g.receive_advert("v6", Advertisement(3, 1, 200, 100, VIP6), PEER6, 3.0)
    g.handle_timer("v4", v4.get_timer())  # type: ignore[arg-type]  # held
    g.receive_advert("v4", Advertisement(3, 1, 200, 100, VIP4), PEER4, 4.0)  # heard again
    v6_due = v6.get_timer()
    assert v6_due is not None
    assert g.handle_timer("v6", v6_due) == []  # v4 does not want Master: v6 held too
    assert g.state is State.BACKUP


def test_one_member_in_fault_takes_the_group_to_fault_and_the_masters_resign() -> None:
    g, v4, v6 = pair()
    both_master(g, v4, v6)
    steps = g.fault("v6", "link eth1 down", 10.0)
    assert [(n, [type(a) for a in acts]) for n, acts in steps] == [
        ("v6", [SendAdvertisement, RemoveAddresses, Transition]),
        ("v4", [SendAdvertisement, RemoveAddresses, Transition]),
    ]
    assert all(
        a.advert.priority == 0
        for _, acts in steps
        for a in acts
        if isinstance(a, SendAdvertisement)
    )
    assert transitions(steps)[1][3] == "fault: sync group gw: v6 link eth1 down"
    assert v4.faults == ("sync group gw: v6 link eth1 down",)
    assert g.own_faults("v4") == () and g.own_faults("v6") == ("link eth1 down",)
    assert g.state is State.FAULT
    assert g.last_reason == "v6 in FAULT (link eth1 down)"


def test_the_group_leaves_fault_when_no_member_holds_a_fault_of_its_own() -> None:
    g, v4, v6 = pair()
    both_master(g, v4, v6)
    g.fault("v6", "link eth1 down", 10.0)
    g.fault("v4", "script chk_fw failed", 11.0)
    assert g.recover("v6", "link eth1 down", 12.0) == []  # v4's own fault still holds
    assert (v4.state, v6.state) == (State.FAULT, State.FAULT)
    assert v6.faults == ("sync group gw: v4 script chk_fw failed",)
    steps = g.recover("v4", "script chk_fw failed", 13.0)
    assert [(n, old, new) for n, old, new, _ in transitions(steps)] == [
        ("v4", State.FAULT, State.BACKUP),
        ("v6", State.FAULT, State.BACKUP),
    ]
    assert v4.faults == v6.faults == ()
    assert v4.get_timer() == v6.get_timer() == pytest.approx(13.0 + master_down_interval(100, 100))


def test_a_fault_before_startup_starts_the_whole_group_in_fault() -> None:
    g, v4, v6 = pair()
    g.fault("v4", "link eth0 down", 0.0)
    assert (v4.state, v6.state) == (State.INITIALIZE, State.INITIALIZE)
    steps = g.startup(1.0)
    assert [(n, new) for n, _, new, _ in transitions(steps)] == [
        ("v4", State.FAULT),
        ("v6", State.FAULT),
    ]
    steps = g.recover("v4", "link eth0 down", 2.0)
    assert {n: new for n, _, new, _ in transitions(steps)} == {
        "v4": State.BACKUP,
        "v6": State.BACKUP,
    }


def test_a_master_member_that_yields_takes_the_other_to_backup_without_priority_zero() -> None:
    g, v4, v6 = pair()
    both_master(g, v4, v6)
    steps = g.receive_advert("v4", Advertisement(3, 1, 200, 100, VIP4), PEER4, 5.0)
    assert transitions(steps)[1] == (
        "v6",
        State.MASTER,
        State.BACKUP,
        f"sync group gw: v4 left MASTER (higher priority 200 from {PEER4})",
    )
    assert not any(isinstance(a, SendAdvertisement) for _, acts in steps for a in acts)
    assert g.state is State.BACKUP


def test_an_owner_member_starting_as_master_brings_the_other_along() -> None:
    g, _v4, _v6 = pair(prio4=255)
    steps = g.startup(0.0)
    assert {n: new for n, _, new, _ in transitions(steps)} == {
        "v4": State.MASTER,
        "v6": State.MASTER,
    }


def test_following_the_groups_own_moves_again_does_nothing() -> None:
    """No loop: the moves a group returns, fed back, cause nothing more."""
    g, v4, _v6 = pair()
    g.startup(0.0)
    steps = g.handle_timer("v4", v4.get_timer())  # type: ignore[arg-type]
    for name, actions in steps:
        assert g.follow(name, actions, 4.0) == []
    steps = g.fault("v4", "link", 5.0)
    for name, actions in steps:
        assert g.follow(name, actions, 5.0) == []
    steps = g.recover("v4", "link", 6.0)
    for name, actions in steps:
        assert g.follow(name, actions, 6.0) == []


def test_a_group_needs_members_each_once() -> None:
    _, v4, _ = pair()
    with pytest.raises(ValueError):
        SyncGroup("empty", {})
    with pytest.raises(ValueError):
        SyncGroup("twice", {"a": v4, "b": v4})


def test_the_groups_transitions_are_logged_with_the_member_and_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    g, v4, v6 = pair()
    both_master(g, v4, v6)
    with caplog.at_level(logging.INFO, logger="vrrpy.core.syncgroup"):
        g.fault("v6", "link eth1 down", 10.0)
        g.recover("v6", "link eth1 down", 11.0)
    lines = [r.getMessage() for r in caplog.records]
    assert "sync group gw: MASTER -> FAULT (v6 in FAULT (link eth1 down))" in lines
    assert "sync group gw: FAULT -> BACKUP (v6 left FAULT)" in lines
