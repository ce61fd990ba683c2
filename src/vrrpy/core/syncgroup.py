"""Sync groups (keepalived's ``vrrp_sync_group``): virtual routers that change state together.

The common case is an IPv4 and an IPv6 instance of one gateway, or the outside
and the inside address of one firewall pair: traffic that leaves through one
member's address comes back through the other's, so both must be on the same
host. A :class:`SyncGroup` holds its members (by name) and, for each event a
member is fed, returns what every member must do, the member's own actions first.

The rules, as keepalived 2.x applies them (vrrp_sync.c, vrrp_track.c):

1. **Fault**: while any member holds a fault of its own, every other member is
   in FAULT too, with the reason ``sync group <group>: <member> <reason>``. A
   Master member so faulted resigns with a priority-0 advert (keepalived's
   vrrp_sync_fault leaves Master towards FAULT, which sends one), so the peer
   group takes over after Skew_Time. When the last member's own faults clear,
   the others recover with it.
2. **Master together, or not at all**: a Backup member whose Master_Down_Timer
   runs out becomes Master only if every other member also wants to: is Master
   already, or is a Backup whose own timer has run out (held, or due now). If
   not, it is held (:meth:`VirtualRouter.hold_backup`) for another
   Master_Down_Interval. This is keepalived's vrrp_sync_can_goto_master
   ("prefer backup state to avoid thrashing"): without it, a member that cannot
   hear its peer would take the whole group to Master, the peer's other members
   would assert themselves, and the group would flap every Master_Down_Interval.
3. **One Master brings the others**: a member that becomes Master by any path
   (the timer above, an owner's startup or recovery, a caller that fed the
   member's timer directly) takes every Backup member to Master
   (:meth:`VirtualRouter.force_master`), keepalived's vrrp_sync_master.
4. **One leaving Master takes the others out**: a Master member that yields to
   a better Master takes the other Master members to Backup
   (:meth:`VirtualRouter.force_backup`), keepalived's vrrp_sync_backup. They
   send no priority-0 advert, as there: the peer group's member that won is
   bringing its own siblings to Master by rule 3 already.

Rules 3 and 4 act only on members not yet in the target state, and rule 1 only
on changes of a member's own faults, so following the group's own moves ends:
a forced Master makes no one else Master (they all are), a forced Backup no one
else Backup. The group keeps no state of its own beyond the fault reasons it
issued and the members it holds; its state (:attr:`SyncGroup.state`) is read
from the members.

A member stopped on its own (shutdown) does not move the others: keepalived
has no such rule either, and a stopped instance is usually being reconfigured.

Sans-IO as the cores are: the caller performs each returned (member, actions)
pair in order, as it performs a lone router's actions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from vrrpy.codec.vrrp import Advertisement, IPAddress, PacketInfo
from vrrpy.core.actions import Action, Transition
from vrrpy.core.carp import CarpRouter
from vrrpy.core.state import State
from vrrpy.core.vrrp import VirtualRouter

logger = logging.getLogger("vrrpy.core.syncgroup")

Step = tuple[str, list[Action]]
"""A member's name and the actions it returned, to be performed in order."""


class SyncGroup:
    """Members that change state together; feed their events through it.

    ``members`` maps a name (the instance's, as in logs and the state file) to
    its router. Every event method returns the steps to perform: the member's
    own actions first, then what the group made the others do. A caller that
    feeds a member directly (the per-advert path, say) hands what it got to
    :meth:`follow` instead; an advert a Backup accepts changes no state and
    needs nothing from the group. Only a Backup's Master_Down_Timer must come
    through :meth:`handle_timer`, where rule 2 is applied.
    """

    def __init__(self, name: str, members: Mapping[str, VirtualRouter | CarpRouter]) -> None:
        if not members:
            raise ValueError(f"sync group {name!r} has no members")
        if len({id(router) for router in members.values()}) != len(members):
            raise ValueError(f"sync group {name!r} lists one router twice")
        self.name = name
        self.members: dict[str, VirtualRouter | CarpRouter] = dict(members)
        self.last_reason = ""
        """Why the group last changed state (which member, and why)."""
        self._issued: dict[str, str] = {}
        """Member in a fault of its own -> the reason the others hold because of it."""
        self._held: dict[str, float | None] = {}
        """Backup members held by rule 2 -> the deadline the hold set (a member whose
        deadline has moved since has heard a Master, and no longer wants to take over)."""
        self._state = self.state

    # ----------------------------------------------------------------- queries

    @property
    def state(self) -> State:
        """FAULT if any member is; MASTER or BACKUP if all are; INIT if none runs;
        else BACKUP (members on their way to one state)."""
        states = {router.state for router in self.members.values()}
        if State.FAULT in states:
            return State.FAULT
        if len(states) == 1:
            return next(iter(states))
        return State.BACKUP

    def own_faults(self, name: str) -> tuple[str, ...]:
        """The fault reasons ``name`` holds of its own (not issued by the group)."""
        issued = {reason for member, reason in self._issued.items() if member != name}
        return tuple(r for r in self.members[name].faults if r not in issued)

    # ------------------------------------------------------------------ events

    def startup(self, now: float) -> list[Step]:
        """Start every member (a fault held by one takes them all to FAULT).

        The faults are shared out first, so a member that starts in FAULT because of
        another never passes through Backup; every member is started before any is
        followed, so an owner starting as Master finds the others in Backup to bring.
        """
        steps = self._sync_faults(now)
        started = [(name, router.startup(now)) for name, router in self.members.items()]
        steps.extend(step for step in started if step[1])
        for name, actions in started:
            if actions:
                steps.extend(self.follow(name, actions, now))
        return steps

    def shutdown(self, now: float) -> list[Step]:
        """Stop every member."""
        steps: list[Step] = []
        for name, router in self.members.items():
            actions = router.shutdown(now)
            if actions:
                steps.append((name, actions))
        self._held.clear()
        self.last_reason = "shutdown"
        self._log_change()
        return steps

    def handle_timer(self, name: str, now: float) -> list[Step]:
        """``name``'s timer: a Backup's takeover waits for the whole group (rule 2)."""
        router = self.members[name]
        deadline = router.get_timer()
        if (
            router.state is State.BACKUP
            and deadline is not None
            and now >= deadline
            and not self._others_want_master(name, now)
        ):
            router.hold_backup(f"sync group {self.name}: waiting for the other members", now)
            self._held[name] = router.get_timer()
            logger.debug(
                "sync group %s: %s held in Backup: not every member wants Master",
                self.name,
                name,
            )
            return []
        self._held.pop(name, None)
        return self._run(name, router.handle_timer(now), now)

    def receive_packet(self, name: str, data: bytes, info: PacketInfo, now: float) -> list[Step]:
        """An advert for ``name`` (see :meth:`VirtualRouter.receive_packet`)."""
        return self._run(name, self.members[name].receive_packet(data, info, now), now)

    def receive_advert(
        self, name: str, advert: Advertisement, source: IPAddress, now: float
    ) -> list[Step]:
        """A decoded advert for ``name`` (see :meth:`VirtualRouter.receive_advert`)."""
        router = self.members[name]
        assert isinstance(router, VirtualRouter)  # a decoded advert is VRRP's (simulator)
        return self._run(name, router.receive_advert(advert, source, now), now)

    def fault(self, name: str, reason: str, now: float) -> list[Step]:
        """A tracked object of ``name`` failed: the whole group goes to FAULT (rule 1)."""
        return self._run(name, self.members[name].fault(reason, now), now)

    def recover(self, name: str, reason: str, now: float) -> list[Step]:
        """``name``'s tracked object is well: the group leaves FAULT when no member
        holds a fault of its own."""
        return self._run(name, self.members[name].recover(reason, now), now)

    def set_priority(self, name: str, priority: int, now: float) -> list[Step]:
        """``name``'s effective priority changed (see :meth:`VirtualRouter.set_priority`)."""
        return self._run(name, self.members[name].set_priority(priority, now), now)

    def moved(self, name: str, actions: list[Action], now: float) -> list[Step]:
        """``name`` was moved by its caller (a CARP member's demotion, say) and returned
        ``actions``, not yet performed: its step first, then what the others must do."""
        return self._run(name, actions, now)

    def follow(self, name: str, actions: list[Action], now: float) -> list[Step]:
        """What the other members must do after ``name`` returned ``actions`` (already
        performed by the caller). Empty unless a state or a fault changed."""
        steps = self._sync_faults(now)
        queue = [(name, a) for a in actions if isinstance(a, Transition)]
        for other, done in steps:
            queue.extend((other, a) for a in done if isinstance(a, Transition))
        self._sync_states(steps, queue, now)
        self._log_change()
        return steps

    # --------------------------------------------------------------- internals

    def _run(self, name: str, actions: list[Action], now: float) -> list[Step]:
        steps: list[Step] = [(name, actions)] if actions else []
        if actions or name in self._issued or self.members[name].faults:
            steps.extend(self.follow(name, actions, now))
        return steps

    def _others_want_master(self, name: str, now: float) -> bool:
        """keepalived's vrrp_sync_can_goto_master: every other member is Master, or a
        Backup whose own Master_Down_Timer has run out (held, or due now)."""
        for other, router in self.members.items():
            if other == name:
                continue
            state = router.state
            if state is State.MASTER:
                continue
            if state is not State.BACKUP:
                return False
            deadline = router.get_timer()
            if deadline is not None and deadline <= now:
                continue
            if other in self._held and self._held[other] == deadline:
                continue
            return False
        return True

    def _sync_faults(self, now: float) -> list[Step]:
        """Rule 1: each member in a fault of its own faults the others; each no longer
        in one clears what it caused."""
        steps: list[Step] = []
        for name in self.members:
            own = self.own_faults(name)
            if own and name not in self._issued:
                reason = f"sync group {self.name}: {name} {'; '.join(own)}"
                self._issued[name] = reason
                self._held.pop(name, None)
                self.last_reason = f"{name} in FAULT ({'; '.join(own)})"
                logger.info(
                    "sync group %s: %s: the group goes to FAULT", self.name, self.last_reason
                )
                for other, router in self.members.items():
                    if other != name:
                        self._held.pop(other, None)
                        actions = router.fault(reason, now)
                        if actions:
                            steps.append((other, actions))
            elif not own and name in self._issued:
                reason = self._issued.pop(name)
                self.last_reason = f"{name} left FAULT"
                logger.info("sync group %s: %s", self.name, self.last_reason)
                for other, router in self.members.items():
                    if other != name:
                        actions = router.recover(reason, now)
                        if actions:
                            steps.append((other, actions))
        return steps

    def _sync_states(
        self, steps: list[Step], queue: list[tuple[str, Transition]], now: float
    ) -> None:
        """Rules 3 and 4 for every transition in ``queue``, including those they cause."""
        while queue:
            origin, action = queue.pop(0)
            if action.new is State.MASTER:
                target, move = State.BACKUP, "force_master"
                why = f"{origin} became MASTER ({action.reason})"
            elif action.old is State.MASTER and action.new is State.BACKUP:
                target, move = State.MASTER, "force_backup"
                why = f"{origin} left MASTER ({action.reason})"
            else:
                continue
            reason = f"sync group {self.name}: {why}"
            moved = False
            for other, router in self.members.items():
                if other == origin or router.state is not target:
                    continue
                self._held.pop(other, None)
                actions = getattr(router, move)(reason, now)
                if actions:
                    moved = True
                    steps.append((other, actions))
                    queue.extend((other, a) for a in actions if isinstance(a, Transition))
            if moved:
                self.last_reason = why

    def _log_change(self) -> None:
        state = self.state
        if state is not self._state:
            logger.info(
                "sync group %s: %s -> %s (%s)",
                self.name,
                self._state.value,
                state.value,
                self.last_reason,
            )
            self._state = state

    def __repr__(self) -> str:
        return f"<SyncGroup {self.name} {self.state.value} {list(self.members)}>"
