"""The Backups' shared check (vrrpy.runtime.pacing.Watch), with real cores and a fake clock.

A Backup's Master_Down_Timer moves later with every advert, so its wake-ups
are mostly checks that find it moved. The watch holds every Backup whose
deadline is not near behind one timer entry; these tests hold it to the
per-Backup timers it replaced: a takeover at the deadline, exactly; an
earlier deadline (a priority-0 advert) waking earlier; nothing for a Backup
that stopped.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import pytest

from test_steady_beat import Clock, Heap, Loop
from vrrpy.codec import Advertisement
from vrrpy.core import RouterConfig, State, VirtualRouter
from vrrpy.core.actions import Action
from vrrpy.runtime.pacing import TAKEOVER_LEAD, Beats, Pacer, Watch

ME = IPv4Address("192.0.2.12")
MASTER = IPv4Address("192.0.2.11")
VIP = (IPv4Address("192.0.2.100"),)


class TickingClock(Clock):
    """Moves 10 us with every reading: a takeover's last microseconds are a busy wait."""

    def __call__(self) -> float:
        self.now += 0.00001
        return self.now


def advert(vrid: int, priority: int = 200) -> Advertisement:
    return Advertisement(3, vrid, priority, 10, VIP)


class Backups:
    """``count`` Backups (VRIDs 1..count, 100 ms) in one watch, on one fake clock."""

    def __init__(self, count: int) -> None:
        self.clock = TickingClock()
        self.timers = Heap(self.clock)
        self.drains = 0
        self.watch = Watch(self.timers, self.clock, self._drain)  # type: ignore[arg-type]
        beats = Beats(self.timers, self.clock)  # type: ignore[arg-type]
        self.inbox: list[tuple[int, int, float]] = []
        """Adverts waiting to be read: (vrid, priority, arrival)."""
        self.routers: list[VirtualRouter] = []
        self.pacers: list[Pacer] = []
        self.performed: list[tuple[int, list[Action]]] = []
        for vrid in range(1, count + 1):
            router = VirtualRouter(
                RouterConfig(
                    vrid=vrid,
                    priority=100,
                    primary_address=ME,
                    virtual_addresses=VIP,
                    advert_interval=0.1,
                )
            )
            pacer = Pacer(
                Loop(self.clock),  # type: ignore[arg-type]
                self.timers,  # type: ignore[arg-type]
                self._performer(vrid),
                self._drain,
                beats,
                None,
                self.watch,
            )
            pacer.router = router
            router.startup(0.0)
            pacer.arm()
            self.routers.append(router)
            self.pacers.append(pacer)

    def _performer(self, vrid: int) -> Any:
        def perform(actions: list[Action]) -> None:
            self.performed.append((vrid, actions))
            self.pacers[vrid - 1].arm()

        return perform

    def _drain(self, force: bool) -> None:
        self.drains += 1
        inbox, self.inbox = self.inbox, []
        for vrid, priority, arrival in inbox:
            router = self.routers[vrid - 1]
            router.receive_advert(advert(vrid, priority), MASTER, arrival)
            self.pacers[vrid - 1].rearm()

    def hear(self, until: float, silent: tuple[int, ...] = ()) -> None:
        """Every Master but ``silent`` advertises every 100 ms up to ``until``; the adverts
        are read when the watch (or a Backup) drains, as the runtime reads its queues."""
        t = self.clock.now
        while t + 0.1 <= until:
            t = round(t + 0.1, 6)
            self.timers.run_until(t)
            self.clock.now = max(self.clock.now, t)
            heard = [vrid for vrid in range(1, len(self.routers) + 1) if vrid not in silent]
            self.inbox += [(vrid, 200, t) for vrid in heard]
        self.timers.run_until(until)

    def states(self) -> list[State]:
        return [r.state for r in self.routers]


def test_backups_that_hear_their_masters_share_one_entry_and_stay_backup() -> None:
    lab = Backups(50)
    assert len(lab.watch) == 50 and len(lab.timers.entries) == 1
    lab.hear(10.0)
    assert lab.states() == [State.BACKUP] * 50
    assert not lab.performed
    assert len(lab.timers.entries) == 1  # still one entry for all fifty
    # About one check every (Master_Down_Interval - one interval) s, not one per Backup.
    assert 20 <= lab.watch.checks <= 45, lab.watch.checks
    assert not lab.timers.errors


def test_a_silent_master_is_taken_over_at_its_deadline_exactly() -> None:
    lab = Backups(20)
    lab.hear(2.0)
    lab.hear(4.0, silent=(7,))
    assert lab.states()[6] is State.MASTER
    assert [s for i, s in enumerate(lab.states()) if i != 6] == [State.BACKUP] * 19
    vrid, actions = lab.performed[0]
    assert vrid == 7 and actions
    # The takeover came at its deadline: the last advert read, plus Master_Down_Interval.
    router = lab.routers[6]
    took = router.counters.as_dict()["last_transition"]
    heard_last = 2.0  # the last advert before the silence (read by then)
    assert took == pytest.approx(heard_last + router.master_down_interval, abs=0.001)
    assert not lab.timers.errors


def test_the_takeover_spins_only_the_lead_and_leaves_at_the_deadline() -> None:
    lab = Backups(1)
    deadline = lab.routers[0].get_timer()
    assert deadline is not None
    lab.timers.run_until(deadline)
    assert lab.states() == [State.MASTER]
    took = lab.routers[0].counters.as_dict()["last_transition"]
    assert deadline <= took <= deadline + TAKEOVER_LEAD + 0.001


def test_a_priority_zero_advert_wakes_the_watch_earlier() -> None:
    lab = Backups(3)
    lab.hear(1.0)
    router = lab.routers[1]
    lab.inbox.append((2, 0, lab.clock.now))  # VRID 2's Master resigns
    lab._drain(False)
    deadline = router.get_timer()
    assert deadline is not None and deadline == pytest.approx(1.0 + router.skew_time)
    lab.hear(1.0 + router.skew_time + 0.05, silent=(2,))
    assert lab.states() == [State.BACKUP, State.MASTER, State.BACKUP]


def test_a_stopped_backup_leaves_the_watch() -> None:
    lab = Backups(2)
    pacer = lab.pacers[0]
    pacer.cancel()
    pacer.router = None
    assert len(lab.watch) == 1 and not pacer.watched
    lab.hear(3.0, silent=(1,))
    assert lab.states()[0] is State.BACKUP  # never fired: it is not running
    assert not lab.timers.errors


def test_one_backups_fault_is_reported_and_the_others_still_checked() -> None:
    lab = Backups(3)
    lab.hear(1.0)
    broken = lab.pacers[0]

    def raises() -> None:
        raise RuntimeError("a bug of ours")

    broken._on_timer = raises  # type: ignore[method-assign]
    lab.hear(2.0, silent=(1, 3))
    assert [str(e) for e in lab.timers.errors][:1] == ["a bug of ours"]
    assert lab.states()[2] is State.MASTER  # VRID 3 was still taken over
