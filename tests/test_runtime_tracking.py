"""Tracking and sync groups in the runtime: FAULT carried out, and members moved together.

:class:`InstanceRunner` objects are driven with a real core and the fake host
parts of ``test_instance_faults`` (a socket that records what it sends,
address operations that remember what is on, timers that record what is
armed), so the runtime's side of FAULT is pinned without root: a Master in
FAULT resigns with priority 0 and withdraws its addresses, a fault known
before start makes the instance start in FAULT, and two runners in a sync
group fault, recover and take over together.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from test_instance_faults import VIP, Announcer, Ops, Sock, Timers, loop, runner_for
from vrrpy.core import State
from vrrpy.core.syncgroup import SyncGroup
from vrrpy.runtime.instance import InstanceRunner

__all__ = ["loop"]  # the fixture, imported for pytest


def priorities(sock: Sock) -> list[int]:
    return [payload[2] for payload in sock.payloads]


def test_a_master_in_fault_resigns_with_priority_0_withdraws_and_arms_nothing(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, ops, sock, timers, _ = runner_for(loop, monkeypatch, priority=255)
    runner.start()
    assert runner.router is not None and runner.router.state is State.MASTER
    assert VIP in ops.on
    runner.fault("link eth0 down")
    assert runner.router.state is State.FAULT
    assert priorities(sock)[-1] == 0
    assert VIP not in ops.on
    # FAULT runs no timer: what is still armed (the Master's next beat, shared and
    # never cancelled) finds nothing to do.
    assert runner.router.get_timer() is None
    sent = len(sock.payloads)
    for _, fire in list(timers.armed):
        fire()
    assert len(sock.payloads) == sent
    status = runner.status()
    assert status["state"] == "FAULT" and status["faults"] == ["link eth0 down"]
    runner.recover("link eth0 down")
    assert runner.router.state is State.MASTER  # the owner goes straight back
    assert VIP in ops.on and priorities(sock)[-1] == 255


def test_a_fault_known_before_start_starts_the_instance_in_fault(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, ops, sock, timers, _ = runner_for(loop, monkeypatch, priority=100)
    runner.fault("script chk_nginx: no verdict yet")
    runner.start()
    assert runner.router is not None and runner.router.state is State.FAULT
    assert sock.payloads == [] and ops.on == set() and timers.armed == []
    runner.recover("script chk_nginx: no verdict yet")
    assert runner.router.state is State.BACKUP
    assert timers.armed, "a Backup's Master_Down_Timer runs again"


def test_tracking_priority_is_applied_at_start_and_carried_by_the_adverts(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, _, _, _, _ = runner_for(loop, monkeypatch, priority=100)
    runner.set_priority(80)
    runner.start()
    assert runner.router is not None and runner.router.priority == 80
    runner.set_priority(120)
    assert runner.router.priority == 120


def pair(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, InstanceRunner], dict[str, Any]]:
    """Two runners (VI_4, VI_6) of one host in one sync group, each with its fake parts."""
    runners: dict[str, InstanceRunner] = {}
    parts: dict[str, Any] = {}
    for name in ("VI_4", "VI_6"):
        runner, ops, sock, timers, announcer = runner_for(loop, monkeypatch, priority=100)
        runner.spec = type(runner.spec)(**{**vars(runner.spec), "name": name})
        timers.stall = 0.0  # type: ignore[attr-defined]
        runner.start()
        runners[name] = runner
        parts[name] = (ops, sock, timers, announcer)
    group = SyncGroup("gw", {n: r.router for n, r in runners.items() if r.router})
    for runner in runners.values():
        runner.join_group(group, runners)
    return runners, parts


def test_one_member_in_fault_takes_its_group_to_fault_and_back(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runners, _ = pair(loop, monkeypatch)
    runners["VI_6"].fault("link eth1 down")
    assert {n: r.router.state for n, r in runners.items() if r.router} == {
        "VI_4": State.FAULT,
        "VI_6": State.FAULT,
    }
    assert runners["VI_4"].status()["faults"] == ["sync group gw: VI_6 link eth1 down"]
    runners["VI_6"].recover("link eth1 down")
    assert all(r.router and r.router.state is State.BACKUP for r in runners.values())


def test_a_member_taking_over_brings_the_other_to_master(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runners, parts = pair(loop, monkeypatch)
    # No Master heard: VI_4's Master_Down_Timer fires (VI_6's has run out too, so the
    # group may go Master together); VI_6 is brought along without waiting for its own.
    later = max(r.router.get_timer() or 0.0 for r in runners.values() if r.router) + 0.01
    for r in runners.values():
        r.loop.time = lambda: later  # type: ignore[method-assign]
    _, fire = parts["VI_4"][2].armed[-1]
    fire()
    assert all(r.router and r.router.state is State.MASTER for r in runners.values())
    assert all(VIP in parts[n][0].on for n in runners)
    assert priorities(parts["VI_6"][1]) == [100]  # its takeover advert, sent by the group


def test_ops_and_announcer_fakes_are_reused() -> None:
    # The fakes come from test_instance_faults: keep the import honest for linters.
    assert Ops and Announcer and Timers
