"""When an instance wakes: the timer policy between a core's deadline and the shared timerfd.

The core says when it next wants :meth:`~vrrpy.core.vrrp.VirtualRouter.handle_timer`
(``get_timer()``); this module decides when the process actually wakes for it,
because wake-ups, not adverts, are what the daemon's CPU goes on:

* a Master's adverts are put on the beat of its interval (:data:`ADVERT_PHASES`),
  so Masters with the same interval share one wake-up, and one timer entry
  (:class:`Beats`): a beat of 2,000 Masters is one entry in the timerfd's heap,
  not 2,000, and each steady Master's advert is sent straight from it (the
  core's ``beat``, one ``sendmmsg`` per socket for many Masters);
* a Backup's Master_Down_Timer moves later with every advert: the Backups
  whose deadline is not near wait together behind one timer entry
  (:class:`Watch`), which may ride on another wake-up (slack of one
  interval); only one whose deadline is near gets a wake-up of its own;
* a takeover wakes :data:`TAKEOVER_LEAD` early and spins the last microseconds,
  so the new Master's first advert leaves at the deadline, not a wake-up
  latency after it; and it reads every queued advert first, so the Master is
  never declared dead while one of its adverts sits unread;
* a takeover that comes due while the process was stopped (see
  :data:`STALL_HOLD`) waits one more advert interval before acting.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from vrrpy.codec.carp import CarpAdvertisement
from vrrpy.codec.vrrp import Advertisement
from vrrpy.core.actions import Action, SendAdvertisement
from vrrpy.core.state import State
from vrrpy.runtime.cores import Core
from vrrpy.runtime.sendbatch import Batch, Prepared
from vrrpy.runtime.sockets import VRRPSocket
from vrrpy.runtime.timers import TimerHandle, Timers

ADVERT_PHASES = 1
"""On how many phases of its interval a Master's adverts may leave: 1 means on the beat.

Waking a sleeping process costs far more CPU than what it then does (40-60 us
on a virtual machine, against about 10 us to send one advert), so Masters
share wake-ups: when one becomes Master (or its cadence is reset) its next
advert is brought forward to the last beat before it -- a whole multiple of
its interval on the monotonic clock, at most one interval early, once. From
then on it keeps its cadence on the beat, and all the Masters with the same
interval send in one wake-up, each advert still exactly one interval after the
last. (keepalived's Masters, all elected together at startup, fall into step
the same way.) Measured with one process driving 50 Masters at 100 ms in a
lab namespace (user + system CPU per advert): 1 phase 22 us, 2 phases 31,
4 phases 41, 8 phases 48."""

TAKEOVER_LEAD = 0.0003
"""How early a Backup wakes before its Master_Down_Timer expires (seconds).

The last stretch is spent in a short busy wait, so the new Master's first advert
leaves at the deadline rather than a wake-up latency (50-150 us) after it. Only
a takeover pays this; adverts of a Master are timed by the timerfd alone."""

STALL_HOLD = True
"""A Backup whose Master_Down_Timer expired while the process was not running waits one
more Master_Adver_Interval, once, before it takes over.

On a virtual machine the hypervisor sometimes does not run the guest at all
for tens of milliseconds (steal; measured 50-100 ms freezes on the 2-CPU test
machines under load). When the guest runs again every timer is past due at
once: the Backup's Master_Down_Timer and the Master's Adver_Timer, when both
share the machine; or, on another machine, the Master's adverts are still in
the NIC and the kernel, not yet in our socket. Silence seen while we were not
running is no evidence that the Master died, and acting on it is a flap
(keepalived flaps so in the starvation bench). So when the wake-up that finds
the timer expired came a whole Master_Adver_Interval or more late (the
timerfd's :attr:`~vrrpy.runtime.timers.TimerfdTimers.stall`: how long the
process did not run), the takeover is held for one interval from the wake-up,
in which the Master's advert (sent as soon as it runs) cancels it. A stall
shorter than one interval cannot have hidden the Master's silence (the timer
needs three), so no takeover is delayed then. The cost: after a stall that
long, a real failover takes one interval more."""

LATENESS_KEPT = 256

BEAT_SLICE = 0.002
"""Seconds one beat sends before it lets any other timer that came due go first.

A beat holds every Master of one interval due at one instant: 1,999 Masters at
1 s took 20 ms of one pass of the loop, and a 10 ms Master on the same loop was
held back 20 ms, every second (bench/scrape_bench.py ``--aligned``; its Backup
took over). Sliced, the rest of the beat goes back into the timers' heap as due
*now*: whatever came due meanwhile (that Master's next advert) is earlier, so it
goes first, and the beat's last adverts leave a few milliseconds later instead,
which at a 1 s interval nobody can see."""


FLUSH_EVERY = 64
"""Masters of a beat whose adverts are queued before the beat sends them (one ``sendmmsg``
per socket): an advert leaves at most this many Masters' work (about 0.2 ms) after its
turn, which is when its lateness is read. A multiple of 16 (where a beat checks its time)."""


class Beats:
    """The Masters due at one instant, woken by one timer entry.

    Masters keep their cadence on the beat (:data:`ADVERT_PHASES`), so at
    2,000 instances a beat holds hundreds of adverts. Each used to be a timer
    entry of its own: an object, a push and a pop on the heap, a handle
    cancelled and re-created per advert. Here an instant (to the microsecond,
    with the interval: shorter intervals go first) is one entry, the Masters
    due then are a list, and each is handed the beat in turn
    (:meth:`Pacer._on_beat`). A Master that leaves the beat (a transition, a
    reset cadence) is not searched for: its place in the list is stale, and
    skipped when the beat comes.
    """

    def __init__(self, timers: Timers, clock: Callable[[], float] = time.monotonic) -> None:
        self.timers = timers
        self.clock = clock
        """The loop's clock (``loop.time``): how long a beat has been sending."""
        self._due: dict[tuple[float, float], tuple[tuple[float, float], list[Pacer]]] = {}
        self.slices = 0
        """Beats that sent for :data:`BEAT_SLICE` and let what else was due go first."""

    def join(self, pacer: Pacer, when: float, interval_cs: float) -> tuple[float, float]:
        """Put ``pacer`` on the beat at ``when``; returns the beat's key (one object per beat:
        a Master is on the beat it names by identity, so a stale place never fires)."""
        key = (round(when, 6), interval_cs)
        entry = self._due.get(key)
        if entry is None:
            entry = self._due[key] = (key, [])
            self.timers.call_at(when, functools.partial(self._fire, key, 0), 0.0, interval_cs)
        entry[1].append(pacer)
        return entry[0]

    def _fire(self, key: tuple[float, float], start: int) -> None:
        """Send the beat's adverts from the ``start``-th Master on, for :data:`BEAT_SLICE`
        at most; the rest is put back behind every other timer due by then.

        The steady Master (on this beat exactly, its advert's bytes made already,
        the core's :meth:`~vrrpy.core.vrrp.VirtualRouter.beat` answering with that
        advert) is handled here, in a few calls: at 50 Masters on one beat the
        general path's calls cost more than the adverts' ``sendmsg``. The steady
        ones move to the next beat together, without a lookup each. Anything else
        goes through :meth:`Pacer._on_beat`.
        """
        entry = self._due.get(key)
        if entry is None:
            return
        beat, pacers = entry
        clock = self.clock
        until = clock() + BEAT_SLICE
        failed: Exception | None = None
        interval_cs = key[1]
        nxt_when = -1.0
        nxt_beat: tuple[float, float] | None = None
        nxt_pacers: list[Pacer] = []
        batches: list[Batch] = []
        n = start
        while n < len(pacers):  # a Master elected meanwhile onto this beat is appended
            pacer = pacers[n]
            n += 1
            if pacer.beat is not beat:
                pass  # left the beat (a stale place)
            elif (wire := pacer.wire) is None or not pacer._gridded:
                try:
                    pacer._on_beat(None)
                except Exception as exc:  # one Master's fault must not silence the rest
                    failed = failed or exc
            else:
                try:
                    router = pacer.router
                    now = clock()
                    action = None if router is None else router.beat(now)
                    if action is None or action.advert is not wire[0]:
                        pacer._on_beat(action, now)
                    else:
                        due = pacer._timer_at
                        if due is not None:
                            pacer.lateness.append(now - due)
                        prepared = wire[4]
                        batch = wire[1].batch
                        if prepared is not None and batch is not None:
                            if not batch.headers:
                                batches.append(batch)
                            batch.headers.append(prepared.header)  # (Batch.add, inline)
                            batch.kept.append(prepared)
                        else:
                            try:
                                wire[2](*wire[3])
                                wire[1].sent += 1
                            except OSError:
                                wire[1].send_errors += 1
                        nxt = router.get_timer()  # type: ignore[union-attr]
                        if nxt == nxt_when:
                            nxt_pacers.append(pacer)
                            pacer.beat = nxt_beat
                        elif nxt is not None:
                            pacer.beat = nxt_beat = self.join(pacer, nxt, interval_cs)
                            nxt_pacers = self._due[nxt_beat][1]
                            nxt_when = nxt
                        pacer._timer_at = nxt
                except Exception as exc:
                    failed = failed or exc
                if pacer.beat is beat:  # a fault above: never leave a Master unarmed
                    pacer.beat = None
                    pacer._timer_at = None
                    try:
                        pacer.arm()
                    except Exception as exc:
                        failed = failed or exc
            if n % 16 == 0:
                if batches and n % FLUSH_EVERY == 0:
                    failed = self._flush(batches) or failed
                if n < len(pacers) and clock() >= until:
                    self.slices += 1
                    self.timers.call_at(clock(), functools.partial(self._fire, key, n), 0.0, key[1])
                    break
        else:
            del self._due[key]
        if batches:
            failed = self._flush(batches) or failed
        if failed is not None:
            raise failed  # the timers report it (after the whole slice went out)

    @staticmethod
    def _flush(batches: list[Batch]) -> Exception | None:
        """Send what the beat queued on each socket (every :data:`FLUSH_EVERY` Masters, and
        at the end of a slice)."""
        failed: Exception | None = None
        for batch in batches:
            try:
                batch.flush()
            except Exception as exc:  # a socket's fault must not keep the others' adverts
                failed = failed or exc
                batch.headers.clear()
                batch.kept.clear()
        batches.clear()
        return failed


class Watch:
    """The Backups' Master_Down_Timers, checked together: one timer entry for all of them.

    A Backup's deadline moves later with every advert it hears, so a wake-up
    armed for it mostly finds it moved: a check, not a takeover. One timer
    entry per Backup made each of those checks a call chain of its own (read
    the queues, look, cancel, re-arm, a heap push): at 50 Backups at 100 ms,
    about 170 a second and half of what the Backup process spent. Here the
    Backups whose deadline is not near wait in one set, and one entry is armed
    for the earliest of them; when it fires the queues are read once, and each
    Backup is a comparison. One whose deadline is within its Master's interval
    is handed its own precise wake-up (:meth:`Pacer.arm`), and one due now is
    fired at once: a takeover is timed exactly as before.
    """

    def __init__(
        self,
        timers: Timers,
        clock: Callable[[], float] = time.monotonic,
        drain: Callable[[bool], None] | None = None,
    ) -> None:
        self.timers = timers
        self.clock = clock
        self.drain = drain
        """Reads every queued advert first (``drain(False)``: a read made a moment ago
        does)."""
        self._pacers: dict[Pacer, None] = {}
        self._handle: TimerHandle | None = None
        self.at = math.inf
        """The deadline the entry is armed for (it wakes :data:`TAKEOVER_LEAD` before): a
        watched Backup whose deadline is this or later needs nothing (:meth:`covers`)."""
        self.checks = 0
        """Times the entry fired."""

    def __len__(self) -> int:
        return len(self._pacers)

    def add(self, pacer: Pacer, deadline: float, slack: float) -> None:
        """Watch ``pacer``, whose deadline is ``deadline``; wake for it if it is the earliest
        (``slack``: how much earlier the wake-up may come, riding on another)."""
        self._pacers[pacer] = None
        if deadline < self.at:
            self._arm(deadline, slack)

    def discard(self, pacer: Pacer) -> None:
        """Stop watching ``pacer`` (the entry stays: an early wake-up finds nothing due)."""
        self._pacers.pop(pacer, None)

    def covers(self, deadline: float) -> bool:
        """Whether the entry wakes in time for ``deadline``."""
        return deadline >= self.at

    def _arm(self, deadline: float, slack: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.at = deadline
        self._handle = self.timers.call_at(deadline - TAKEOVER_LEAD, self._fire, slack, 0.0)

    def _fire(self) -> None:
        self._handle = None
        self.checks += 1
        if self.drain is not None:
            # (With the old deadline still in at: an advert read now that moves a
            # Backup's deadline later asks nothing; an earlier one arms anew.)
            self.drain(False)
        if self._handle is None:
            self.at = math.inf
        now = self.clock()
        soonest = math.inf
        slack = 0.0
        near: list[Pacer] = []
        failed: Exception | None = None
        for pacer in list(self._pacers):
            router = pacer.router
            deadline = None if router is None else router.get_timer()
            if deadline is None or router is None or router.state is not State.BACKUP:
                near.append(pacer)  # not a waiting Backup any more: it arms for itself
                continue
            interval = router.master_adver_interval_cs / 100.0
            if deadline - now <= interval:
                near.append(pacer)
            elif deadline < soonest:
                soonest = deadline
                slack = interval
        for pacer in near:
            self._pacers.pop(pacer, None)
            pacer.watched = False
            pacer._timer_at = None
            try:
                router = pacer.router
                deadline = None if router is None else router.get_timer()
                if deadline is not None and deadline - now <= 2 * TAKEOVER_LEAD:
                    pacer._on_timer()  # due: the takeover path, now
                else:
                    pacer.precise = True  # its own wake-up, exactly at its deadline
                    pacer.arm()
            except Exception as exc:  # one Backup's fault must not cost the others theirs
                failed = failed or exc
        if soonest < self.at:
            self._arm(soonest, slack)
        if failed is not None:
            raise failed


class Pacer:
    """Keeps one timerfd entry armed for one core's deadline (see the module)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timers: Timers,
        perform: Callable[[list[Action]], None],
        drain: Callable[[bool], None] | None = None,
        beats: Beats | None = None,
        send: Callable[[Advertisement | CarpAdvertisement], None] | None = None,
        watch: Watch | None = None,
    ) -> None:
        self.loop = loop
        self.timers = timers
        self.perform = perform
        clock = self._now  # (the loop's clock, read each time: a test may replace it)
        self.beats = beats if beats is not None else Beats(timers, clock)
        """Where a Master's adverts wait for their beat (shared by every instance of a runtime)."""
        self.watch = watch if watch is not None else Watch(timers, clock, drain)
        """Where a Backup waits while its deadline is not near (shared like :attr:`beats`)."""
        self.watched = False
        """In :attr:`watch` (``_timer_at``: the deadline it was added with)."""
        self.send = send
        """Sends an advert, nothing else: a Master's regular advert goes this way, without
        the general action path (``perform``), when it is the only thing the core asked."""
        self.beat: tuple[float, float] | None = None
        """The key of the beat this Master waits on, or None."""
        self.wire: (
            tuple[object, VRRPSocket, Callable[..., int], tuple[Any, ...], Prepared | None] | None
        ) = None
        """The Master's advert as it last went out to its one destination: (the advert,
        the socket, then what :meth:`~vrrpy.runtime.sockets.VRRPSocket.prepared` made).
        Set by whoever sends (``send``); :class:`Beats` sends the steady beat's advert
        from it when the core gives that same advert (to several unicast peers: None)."""
        self.fire: Callable[[float], list[Action]] | None = None
        """Fires the core's timer instead of ``router.handle_timer`` (a sync group's member:
        its Backup's takeover goes through the group)."""
        self._gridded = False
        """The Master's wake-up is on its beat (not the half-interval step onto it)."""
        self.drain = drain
        """Reads every advert already queued on our sockets (see :meth:`_on_timer`);
        ``drain(False)`` may reuse a read made a moment ago for another instance."""
        self.router: Core | None = None
        self.lateness: deque[float] = deque(maxlen=LATENESS_KEPT)
        """How late each scheduled advert left, in seconds (the last :data:`LATENESS_KEPT`:
        a bounded ring, so 2,000 Masters do not grow the process by the minute)."""
        self.precise = False
        """The Backup's deadline did not move at its last check: wake exactly then."""
        self._timer: TimerHandle | None = None
        self._timer_at: float | None = None
        self._held: float | None = None
        """The Master_Down_Timer deadline whose takeover was held after a stall (once each)."""
        self.stall_holds = 0
        """Takeovers held for one interval because the process had been stopped."""

    def _now(self) -> float:
        return self.loop.time()

    def arm(self) -> None:
        """Bring the wake-up in line with the core's deadline (cheap when nothing moved)."""
        router = self.router
        deadline = None if router is None else router.get_timer()
        state = None if router is None else router.state
        if router is not None and deadline is not None and state is State.MASTER:
            deadline = self.on_grid(router, deadline)
        current = self._timer_at
        if self.beat is not None and current == deadline:
            return
        if self.watched and deadline is not None and state is State.BACKUP:
            if self.watch.covers(deadline):
                return  # the watch wakes in time (and re-checks then)
        elif self._timer is not None and current is not None and deadline is not None:
            if current == deadline:
                return
            if current < deadline and router is not None:
                # A Backup's Master_Down_Timer moves later with every advert: keep the
                # earlier wake-up (it re-arms itself) instead of cancelling and
                # re-creating a timer handle per advert.
                return
        self.cancel()
        if deadline is not None and router is not None:
            self._timer_at = deadline
            wake = deadline
            slack = 0.0
            order = 0.0  # a Backup's check or takeover goes first
            if state is State.BACKUP:
                wake -= TAKEOVER_LEAD
                if not self.precise:
                    # Until a check finds it standing, the deadline is a stale one
                    # (adverts wait unread): checked with the other Backups (Watch),
                    # on any wake-up within one advert interval, sharing its read.
                    self.watched = True
                    self.watch.add(self, deadline, router.master_adver_interval_cs / 100.0)
                    return
            elif state is State.MASTER:
                interval_cs = router.interval_cs
                k = deadline * ADVERT_PHASES * 100.0 / interval_cs
                self._gridded = abs(k - round(k)) < 1e-6
                self.beat = self.beats.join(self, deadline, interval_cs)
                return
            self._timer = self.timers.call_at(wake, self._on_timer, slack, order)

    def rearm(self) -> None:
        """:meth:`arm` after an advert a Backup accepted: nothing to do in the common case.

        The advert moved Master_Down_Timer later (or left it), and the wake-up
        armed for the earlier deadline stays, to re-check then: that is one
        comparison per advert, not a call into :meth:`arm`.
        """
        router = self.router
        if router is not None:
            if self.watched:
                deadline = router.get_timer()
                if deadline is not None and deadline >= self.watch.at:  # (Watch.covers)
                    return
            elif self._timer is not None and (at := self._timer_at) is not None:
                deadline = router.get_timer()
                if deadline is not None and deadline >= at:
                    return
        self.arm()

    def on_grid(self, router: Core, deadline: float) -> float:
        """The Master's next advert, brought forward onto its grid (see :data:`ADVERT_PHASES`).

        Never less than half an interval after the advert before it (``deadline``
        minus one interval): when the grid point is closer than that, the advert
        goes half an interval after the last one, and the next one onto the grid.
        """
        interval = router.interval_cs / 100.0
        step = interval / ADVERT_PHASES
        k = deadline / step
        if abs(k - round(k)) < 1e-6:
            return deadline  # on the grid already
        aligned = max(math.floor(k) * step, deadline - interval / 2)
        now = self.loop.time()
        if aligned > now and router.advance_advert(aligned, now):
            return router.get_timer() or deadline
        return deadline

    def cancel(self) -> None:
        """Forget the wake-up (the instance stops, or a new one replaces it)."""
        if self._timer is not None:
            self._timer.cancel()
        if self.watched:
            self.watch.discard(self)
            self.watched = False
        self._timer = None
        self._timer_at = None
        self.beat = None

    def _on_beat(self, taken: SendAdvertisement | None = None, at: float = 0.0) -> None:
        """The Master's beat came: its advert, straight to the socket when that is all.

        The same steps as :meth:`_on_timer` for a Master, without the general
        path when the core asks for one advert and nothing else (every beat in
        the steady state); any other answer goes through ``perform``. A fault
        here is the loop's to log, and the Master is put back on its beat
        whatever happened. ``taken``: the advert the core's ``beat`` gave at
        ``at`` already (its timer has fired: it is not fired again).
        """
        self.beat = None
        due = self._timer_at
        self._timer_at = None
        router = self.router
        send = self.send
        if router is None:
            return
        try:
            if taken is None:
                now = self.loop.time()
                actions = router.handle_timer(now)
            else:
                now = at
                actions = [taken]
            if send is None or len(actions) != 1 or type(actions[0]) is not SendAdvertisement:
                if due is not None and actions and type(actions[0]) is SendAdvertisement:
                    self.lateness.append(now - due)
                self.perform(actions)
                return  # perform re-arms
            if due is not None:
                self.lateness.append(now - due)
            send(actions[0].advert)
            if self._gridded and due is not None and router.state is State.MASTER:
                # The steady beat: this advert left on the beat, so the next one, one
                # interval later, is on it too (the core restarts its cadence from now
                # only after a stall: then the general path puts it back on the beat).
                interval_cs = router.interval_cs
                nxt = router.get_timer()
                if nxt is not None and nxt == due + interval_cs / 100.0:
                    self._timer_at = nxt
                    self.beat = self.beats.join(self, nxt, interval_cs)
        finally:
            if self.beat is None and self._timer is None:
                self.arm()

    def _on_timer(self) -> None:
        self._timer = None
        router = self.router
        if router is None:
            return
        due = self._timer_at
        backup = router.state is State.BACKUP
        drain = self.drain
        if backup and drain is not None:
            # A Backup's adverts wait in the bulk queue until it needs them: now.
            drain(False)
            if self.router is not router or router.state is not State.BACKUP:
                return
        now = self.loop.time()
        deadline = router.get_timer()
        if deadline is not None and deadline > now:
            if not backup or deadline - now > 2 * TAKEOVER_LEAD:
                # A check (early, with another instance's wake-up): the deadline has
                # moved with the adverts just read, or it stands and we wake exactly.
                self.precise = backup and deadline == due
                self._timer_at = None
                self.arm()
                return
            # Woken TAKEOVER_LEAD early for a takeover: wait out the last
            # microseconds here, so the wake-up latency is not added to it.
            while (now := self.loop.time()) < deadline:
                pass
        if backup and drain is not None:
            # Never declare the Master dead while one of its adverts sits unread in
            # our sockets (a busy loop, a burst of work): read what is queued first.
            drain(True)
            if self.router is not router or (router.get_timer() or now) > now:
                self._timer_at = None
                self.arm()
                return
        if backup and STALL_HOLD and deadline is not None and self._held != deadline:
            interval = router.master_adver_interval_cs / 100.0
            if self.timers.stall >= interval:
                # The process did not run for an interval or more: the silence is ours.
                self._held = deadline
                self.stall_holds += 1
                self._timer_at = deadline
                self._timer = self.timers.call_at(now + interval, self._on_timer)
                return
        fire = self.fire
        actions = router.handle_timer(now) if fire is None else fire(now)
        if due is not None and actions and isinstance(actions[0], SendAdvertisement):
            self.lateness.append(now - due)
        self.perform(actions)
