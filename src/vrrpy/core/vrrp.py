"""One VRRP virtual router as a sans-IO state machine (RFC 9568 section 6, RFC 3768 section 6).

Feed it events, each with the current time, and act on the actions it returns:

=================================  ===========================================
event (method)                     trigger
=================================  ===========================================
``startup(now)``                   RFC 9568 6.4.1 Startup
``shutdown(now)``                  RFC 9568 6.4.2 / 6.4.3 Shutdown
``receive_packet(data, info, …)``  an ADVERTISEMENT arrives (decoded, checked)
``receive_advert(adv, src, now)``  the same, already decoded
``handle_timer(now)``              Master_Down_Timer or Adver_Timer fires
``fault(reason, now)``             keepalived: a tracked object failed
``recover(reason, now)``           keepalived: that object is well again
``force_master(reason, now)``      keepalived sync group: follow a member to Master
``force_backup(reason, now)``      keepalived sync group: follow a member to Backup
``hold_backup(reason, now)``       keepalived sync group: not yet, wait again
``set_priority(p, now)``           tracking changed the effective priority
=================================  ===========================================

Which handler runs is decided by one table, :data:`TRANSITIONS`, keyed by
(state, event) in the manner of h2's connection state machine: each row names
the handler, the states the router may be in afterwards and the rule it comes
from, so the table can be read beside RFC 9568 section 6 and keepalived's FAULT
rules. Every pair has a row; a pair that does nothing says so.

``get_timer()`` says when it next wants ``handle_timer``. The object never
reads a clock, sleeps or touches a socket, so the simulator and the tests drive
exactly the code the Linux runtime drives.

Timers are one deadline whose meaning depends on the state: Master_Down_Timer
in Backup, Adver_Timer in Master (the RFC never runs both at once), none in
Initialize and Fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from ipaddress import IPv6Address
from typing import Any

from vrrpy.codec.errors import VRRPDecodeError
from vrrpy.codec.vrrp import Advertisement, ChecksumForm, IPAddress, PacketInfo, decode_vrrp
from vrrpy.core.actions import (
    Action,
    AddAddresses,
    Announce,
    RemoveAddresses,
    SendAdvertisement,
)
from vrrpy.core.config import RouterConfig
from vrrpy.core.router import RouterCore, Rule, bind_table, rule
from vrrpy.core.state import Event, State
from vrrpy.core.timers import master_down_interval, skew_time

logger = logging.getLogger("vrrpy.core")

_INIT = State.INITIALIZE
_BACKUP = State.BACKUP
_MASTER = State.MASTER
_FAULT = State.FAULT
_PSEUDO_HEADER = ChecksumForm.PSEUDO_HEADER
_FE80_SLASH_10 = 0x3FA  # the top 10 bits of an IPv6 link-local address (fe80::/10)


class VirtualRouter(RouterCore):
    """The RFC state machine for one VRID, one interface, one address family."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self._init_core(logger, config.name or f"vrid {config.vrid}")
        self.priority = config.priority
        """Effective priority: the configured one, changed at runtime by :meth:`set_priority`."""
        self.master_adver_interval_cs = config.interval_cs
        """Master_Adver_Interval: learned from the Master's adverts (VRRPv3 only)."""
        self._interval = config.interval_cs / 100.0
        self.master_address: IPAddress | None = None
        """Primary address of the router we believe is Master (ourselves when Master)."""
        self.master_priority: int | None = None
        self._started_at = 0.0
        self._resign_from: IPAddress | None = None
        self._next_assert = 0.0
        self._peers = frozenset(config.peers)
        self._adverts: dict[int, Advertisement] = {}
        self._sends: dict[int, SendAdvertisement] = {}
        self._last_data = b""
        self._last_info: PacketInfo | None = None
        self._vips = tuple(config.virtual_addresses)
        self._vip_set = frozenset(config.virtual_addresses)
        self._primary_int = int(config.primary_address)
        self._addr_type = type(config.primary_address)
        self._count_forms = config.version == 3 and config.family == 4
        self._last_advert: Advertisement = self.advertisement()
        self._passed: tuple[Advertisement, IPAddress, list[tuple[Any, ...]]] | None = None
        self._repeat: tuple[Advertisement, IPAddress, float, list[tuple[Any, ...]]] | None = None
        """Backup only: the Master's advert last accepted, its source and the
        Master_Down_Interval it set, when a repeat of it can only restart the timer
        (see :meth:`_backup_advert`). Cleared by anything else that happens."""

    # ----------------------------------------------------------------- queries

    @property
    def interval_cs(self) -> int:
        """Our advert interval, in centiseconds (CARP's core has the same property)."""
        return self.config.interval_cs

    @property
    def skew_time(self) -> float:
        """Skew_Time, in seconds, for our priority and the Master's interval."""
        return skew_time(self.priority, self.master_adver_interval_cs, self.config.version)

    @property
    def master_down_interval(self) -> float:
        """Master_Down_Interval, in seconds."""
        return master_down_interval(
            self.priority, self.master_adver_interval_cs, self.config.version
        )

    def advertisement(self, priority: int | None = None) -> Advertisement:
        """The advert we send, at our priority or the one given (0 on shutdown)."""
        prio = self.priority if priority is None else priority
        advert = self._adverts.get(prio)
        if advert is None:
            cfg = self.config
            advert = Advertisement(
                version=cfg.version,
                vrid=cfg.vrid,
                priority=prio,
                interval_cs=cfg.interval_cs,
                addresses=self._vips,
                auth_type=cfg.auth_type if cfg.version == 2 else 0,
                auth_data=cfg.auth_data if cfg.version == 2 else b"",
                checksum_form=cfg.checksum_form,
            )
            self._adverts[prio] = advert
        return advert

    # ------------------------------------------------------------------ events

    def receive_packet(self, data: bytes, info: PacketInfo, now: float) -> list[Action]:
        """An IP payload arrived for this VRID: decode it, check it, and process it.

        Anything malformed is counted under its reason, logged at debug
        (rate-limited) and dropped without touching state or timers.

        Decoding is pure, and a Master repeats the same bytes advert after
        advert: the last packet decoded is remembered, and an identical one
        (same bytes, same source, destination and TTL) reuses its decoding.
        Every check after decoding runs on every packet.
        """
        if data == self._last_data and info == self._last_info:
            advert = self._last_advert
        else:
            try:
                advert = decode_vrrp(data, info)
            except VRRPDecodeError as exc:
                self._drop(exc.reason, now, "%s", exc.detail)
                return []
            self._last_data, self._last_info, self._last_advert = data, info, advert
        return self._on_advert(self, advert, info.source, now)

    def heard(self, data: bytes, info: PacketInfo, now: float) -> float | None:
        """A Backup's repeat of its Master's advert: :meth:`receive_packet` when all it
        would do is count it and restart Master_Down_Timer, in one call.

        For a runtime that reads hundreds of adverts per wake-up (the Backup's
        side of :meth:`beat`). True: the packet is the bytes last decoded, from
        the same IP facts, and that decoded advert is the one last accepted as
        the Master's; it was counted (with its checksum form and its anomalies,
        which are logged again, rate-limited, as :meth:`receive_packet` does)
        and the timer restarted from ``now``: the new deadline is returned
        (what :meth:`get_timer` now says). None, with nothing changed: call
        :meth:`receive_packet`.
        """
        repeat = self._repeat
        if (
            repeat is None
            or self.state is not _BACKUP
            or data != self._last_data
            or info != self._last_info
            or self._last_advert is not repeat[0]
            or info.source is not repeat[1]
        ):
            return None
        counters = self.counters
        counters.adverts_received += 1
        if self._count_forms:
            if repeat[0].checksum_form is _PSEUDO_HEADER:
                counters.checksum_pseudo_header += 1
            else:
                counters.checksum_vrrp_only += 1
        for reason, detail, *args in repeat[3]:
            self._anomaly(reason, now, detail, *args)
        deadline = self._deadline = now + repeat[2]
        return deadline

    def receive_advert(self, advert: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """A decoded advert from ``source``: the receive checks, then the state's handler.

        Not running (Initialize) or in FAULT, the advert is dropped and counted
        (``not_running``, ``fault``) before any check: nothing about it can
        matter to a router that takes no part in the election.
        """
        return self._on_advert(self, advert, source, now)

    def set_priority(self, priority: int, now: float) -> list[Action]:
        """Change the effective priority (tracking). It is carried by the next advert.

        A Backup that now outranks the Master (with preemption on) discards the
        Master's next adverts and takes over when Master_Down_Timer fires; a
        Master that now ranks below a preempting Backup is taken over the same
        way. Nothing is sent early, as the RFC has no such event. The state does
        not change, so this is not a row of :data:`TRANSITIONS`.

        The caller computes the priority: keepalived's effective priority is
        the base priority plus the weights of the tracked objects, clamped to
        1..254 (vrrp_set_effective_priority); this method refuses anything
        outside 1..254 rather than clamping, so that a tracking bug shows.

        As in keepalived, 255 is reserved to the address owner and an owner's
        priority does not move: tracking cannot turn a router into the owner,
        nor the owner into something else (RFC 9568 6.1: 255 means "owns the
        addresses", a fact, not a preference). An owner is only ever faulted.
        """
        if self.config.priority == 255:
            raise ValueError("the address owner's priority is fixed at 255")
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 254:
            raise ValueError(f"priority must be 1..254, got {priority!r}")
        self.priority = priority
        self._repeat = None
        return []

    # ------------------------------------------------ handlers: Initialize (6.4.1)

    def _startup(self, _reason: str, now: float) -> list[Action]:
        self._started_at = now
        if self._faults:
            return [
                self._transition(
                    _INIT, _FAULT, f"startup; fault: {self._fault_text()}", now, "fault"
                )
            ]
        if self.priority == 255:
            return self._become_master(
                now, _INIT, "startup as address owner (priority 255)", "owner"
            )
        return self._enter_backup(now, _INIT, "startup", "startup")

    # ---------------------------------------------------- handlers: Backup (6.4.2)

    def _backup_advert(self, advert: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """RFC 9568 6.4.2, "If an ADVERTISEMENT is received".

        The Master repeats one advert (the same object, see
        :meth:`receive_packet`) from one source. Once such an advert has passed
        the checks without anomaly and been accepted as the Master's, with
        nothing happening since, a repeat of it can only count and restart
        Master_Down_Timer: that is the whole of the Backup's per-advert path.
        Every decision it skips (the checks, priority against ours,
        preemption) depends only on the advert, the source and our priority,
        which are all the same; anything else that happens clears it.
        """
        repeat = self._repeat
        if repeat is not None and advert is repeat[0] and source is repeat[1]:
            counters = self.counters
            counters.adverts_received += 1
            if self._count_forms:
                if advert.checksum_form is _PSEUDO_HEADER:
                    counters.checksum_pseudo_header += 1
                else:
                    counters.checksum_vrrp_only += 1
            for reason, detail, *args in repeat[3]:
                # What the checks found is counted (and logged, rate-limited) per packet.
                self._anomaly(reason, now, detail, *args)
            self._deadline = now + repeat[2]
            return []
        self._repeat = None
        anomalies = self._accept(advert, source, now)
        if anomalies is None:
            return []
        priority = advert.priority
        if priority == 0:
            self._resign_from = source
            self._deadline = now + self.skew_time
            return []
        cfg = self.config
        if (
            priority >= self.priority
            or not cfg.preempt
            or now < self._started_at + cfg.preempt_delay
        ):
            if cfg.version == 3:
                self.master_adver_interval_cs = advert.interval_cs
            self.master_address = source
            self.master_priority = priority
            self._resign_from = None
            mdi = master_down_interval(self.priority, self.master_adver_interval_cs, cfg.version)
            self._deadline = now + mdi
            if priority >= self.priority or not cfg.preempt:
                # Accepted whatever the time: a repeat needs no decision. (Anomalies, such
                # as keepalived's global first IPv6 address, are only logged: the
                # repeat counts them again.)
                self._repeat = (advert, source, mdi, anomalies)
            return []
        # Preempt: ignore the weaker Master and let Master_Down_Timer run out.
        self.counters.lower_priority_discarded += 1
        return []

    def _backup_timer(self, now: float, deadline: float) -> list[Action]:
        """Master_Down_Timer fired: RFC 9568 6.4.2, become Master."""
        resigned = self._resign_from
        self.master_down_at = deadline
        if resigned is not None:
            reason = f"master {resigned} resigned (priority 0), Skew_Time elapsed"
            code = "master_resigned"
        elif self.master_address is not None:
            reason = f"no advert from master {self.master_address} for Master_Down_Interval"
            code = "master_down"
        else:
            reason = "no master heard for Master_Down_Interval"
            code = "master_down"
        return self._become_master(now, _BACKUP, reason, code)

    # ---------------------------------------------------- handlers: Master (6.4.3)

    def _master_advert(self, advert: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """RFC 9568 6.4.3, "If an ADVERTISEMENT is received"."""
        if self._accept(advert, source, now) is None:
            return []
        if advert.priority == 0:
            # Someone resigned: assert ourselves at once so Backups do not race.
            self._deadline = now + self._interval
            return [self._send(self.priority)]
        if advert.priority > self.priority or (
            advert.priority == self.priority and int(source) > self._primary_int
        ):
            if self.config.version == 3:
                self.master_adver_interval_cs = advert.interval_cs
            self.master_address = source
            self.master_priority = advert.priority
            self._resign_from = None
            self._split_brain_until = None
            self._deadline = now + self.master_down_interval
            if advert.priority > self.priority:
                reason = f"higher priority {advert.priority} from {source}"
            else:
                reason = f"equal priority {advert.priority} from higher address {source}"
            actions: list[Action] = []
            if self.config.higher_prio_send_advert:
                # keepalived's option of the same name, off by default as there (RFC
                # 9568 6.4.3 yields silently): one last advert at our priority, so the
                # better Master hears a weaker one and re-announces the addresses --
                # hosts may have followed our announcements while we were both Master.
                actions.append(self._send(self.priority))
            actions.append(RemoveAddresses(self._vips))
            actions.append(self._transition(_MASTER, _BACKUP, reason, now, "preempted"))
            return actions
        # A weaker router claims Master: a split brain (a partition healing, or a Backup
        # that cannot hear us). Only a router that believes it is Master sends adverts.
        self.counters.lower_priority_discarded += 1
        self._split_brain(advert, source, now)
        if now >= self._next_assert:
            # RFC 9568 6.4.3 (new since RFC 5798): assert ourselves to the weaker router
            # at once, and refresh learning bridges. The Adver_Timer is kept. And
            # re-announce the addresses, as keepalived does ("forcing new election"):
            # hosts that followed the other Master's announcements come back now,
            # not when their neighbour entries expire. In v2 as well (keepalived
            # 2.2.7 does the same; RFC 3768 only discards). At most once per advert
            # interval: a Backup that cannot keep up (and so keeps claiming Master)
            # must not double the traffic it drowns in.
            self._next_assert = now + self._interval
            return [self._send(self.priority), Announce(self._vips)]
        return []

    def _master_timer(self, now: float, deadline: float) -> list[Action]:
        """Adver_Timer fired: RFC 9568 6.4.3, send an advert and restart the timer.

        The next deadline is reckoned from the previous one, so a late wake-up
        does not push every later advert back; after a long stall the cadence
        restarts from now rather than firing a burst.
        """
        interval = self._interval
        nxt = deadline + interval
        self._deadline = nxt if nxt > now else now + interval
        until = self._split_brain_until
        if until is not None and now >= until:
            self._split_brain_until = None
            logger.info(
                "%ssplit brain over: no other Master heard for Master_Down_Interval",
                self._log_prefix,
            )
        return [self._send(self.priority)]

    def _steady_advert(self) -> SendAdvertisement:
        action = self._sends.get(self.priority)
        if action is None:
            return self._send(self.priority)
        self.counters.adverts_sent += 1  # what _send counts (a Master's priority is never 0)
        return action

    # ----------------------------------------------------------- handlers: Fault

    def _fault_recover(self, reason: str, now: float) -> list[Action]:
        """keepalived (try_up_instance): the owner straight to Master, anyone else to
        Backup with Master_Adver_Interval reset to ours and a fresh Master_Down_Timer.
        A preempt_delay counts again from here, as from a startup."""
        self._started_at = now
        if self.priority == 255:
            return self._become_master(
                now, _FAULT, f"fault cleared: {reason} (address owner)", "fault_cleared"
            )
        return self._enter_backup(now, _FAULT, f"fault cleared: {reason}", "fault_cleared")

    # ---------------------------------------------------------- receive checks

    def _accept(
        self, advert: Advertisement, source: IPAddress, now: float
    ) -> list[tuple[Any, ...]] | None:
        """Run (or reuse) the receive checks and count a received advert: None if it
        is dropped, else the anomalies it showed (logged again for each packet).

        The checks depend only on the advert, its source and the configuration:
        when the same advert object (see :meth:`receive_packet`) comes again
        from the same source, their outcome is reused -- the anomalies they
        found are counted and logged again, as for a new packet.
        """
        passed = self._passed
        if (
            passed is not None
            and advert is passed[0]
            and (source is passed[1] or source == passed[1])
        ):
            anomalies = passed[2]
            for reason, detail, *args in anomalies:
                self._anomaly(reason, now, detail, *args)
        else:
            found = self._check(advert, source, now)
            if found is None:
                return None
            anomalies = found
            self._passed = (advert, source, anomalies)
        counters = self.counters
        counters.adverts_received += 1
        if self._count_forms:
            if advert.checksum_form is _PSEUDO_HEADER:
                counters.checksum_pseudo_header += 1
            else:
                counters.checksum_vrrp_only += 1
        if advert.priority == 0:
            counters.priority_zero_received += 1
        return anomalies

    def _check(
        self, advert: Advertisement, source: IPAddress, now: float
    ) -> list[tuple[Any, ...]] | None:
        """RFC 9568 7.1 / RFC 3768 7.1 receive checks: None if dropped, else the anomalies
        found, as (reason, detail, *args). Drops and anomalies are counted here."""
        cfg = self.config
        anomalies: list[tuple[Any, ...]] = []

        def note(reason: str, detail: str, *args: object) -> None:
            self._anomaly(reason, now, detail, *args)
            anomalies.append((reason, detail, *args))

        if advert.version != cfg.version:
            self._drop("version_mismatch", now, "v%d", advert.version)
            return None
        if advert.vrid != cfg.vrid:
            self._drop("vrid_mismatch", now, "%d", advert.vrid)
            return None
        if type(source) is not self._addr_type or type(advert.addresses[0]) is not self._addr_type:
            self._drop("family_mismatch", now, "%s", source)
            return None
        if source == cfg.primary_address:
            self._drop("own_advert", now, "%s", source)
            return None
        if self._peers and source not in self._peers:
            # Unicast peers configured: the router is closed to strangers (stricter than
            # keepalived, whose check_unicast_src is off unless set).
            self._drop("not_a_peer", now, "%s", source)
            return None
        if cfg.version == 2:
            if advert.interval_cs != cfg.interval_cs:
                # RFC 3768 7.1: MUST discard an advert whose interval differs from ours.
                self._drop("interval_mismatch", now, "%ss from %s", advert.interval, source)
                return None
            if advert.auth_type != cfg.auth_type:
                # keepalived tells a type it does not know (above 2, IP AH) from one it
                # knows but was not told to use; its exporter has a counter for each.
                why = "invalid_auth_type" if advert.auth_type > 2 else "auth_type_mismatch"
                self._drop(why, now, "type %d from %s", advert.auth_type, source)
                return None
            if cfg.auth_type and advert.auth_data != cfg.auth_data:
                self._drop("auth_failure", now, "from %s", source)
                return None
        elif advert.interval_cs != cfg.interval_cs:
            # RFC 9568 7.1: SHOULD log, and the Backup adopts the Master's interval.
            note("interval_mismatch", "%ss from %s", advert.interval, source)
        if advert.addresses != self._vips and frozenset(advert.addresses) != self._vip_set:
            if cfg.version == 2 and advert.priority != 255:
                # RFC 3768 7.1: a mismatching list from a non-owner MUST be dropped.
                self._drop("address_list_mismatch", now, "from %s", source)
                return None
            # RFC 9568 7.1: MAY verify, SHOULD log; the advert is still processed.
            note("address_list_mismatch", "from %s", source)
        if self.priority == 255:
            if cfg.version == 2:
                # RFC 3768 7.1: the address owner MUST discard adverts for its VRID.
                self._drop("owner_discard", now, "%s", source)
                return None
            # RFC 9568 7.1 as corrected by erratum 8298: an owner SHOULD log another
            # router's advert and process it, so the tie-break settles two owners.
            note("owner_conflict", "advert from %s while we own addresses", source)
        if self._addr_type is IPv6Address and int(advert.addresses[0]) >> 118 != _FE80_SLASH_10:
            # Erratum 8300 makes this a MUST-drop; keepalived and most deployments send
            # global addresses only, so dropping would elect two Masters. Counted instead.
            note("first_address_not_link_local", "from %s", source)
        return anomalies

    def _split_brain(self, advert: Advertisement, source: IPAddress, now: float) -> None:
        """Another Master, weaker than us, was heard while we are Master.

        An episode starts with the first such advert (counted, logged once at
        warning) and lasts while they keep coming: it ends when none has been
        heard for Master_Down_Interval (reckoned with the other's interval, as
        a Backup of it would), or when we leave Master.
        """
        until = self._split_brain_until
        if until is None or now >= until:
            self.counters.split_brains += 1
            logger.warning(
                "%ssplit brain: %s also acts as Master (priority %d, ours %d): "
                "asserting ourselves and re-announcing the addresses",
                self._log_prefix,
                source,
                advert.priority,
                self.priority,
            )
        self._split_brain_until = now + master_down_interval(
            self.priority, advert.interval_cs, self.config.version
        )

    # ---------------------------------------------------------------- helpers

    def _become_master(self, now: float, old: State, reason: str, code: str) -> list[Action]:
        self._deadline = now + self._interval
        self.master_address = self.config.primary_address
        self.master_priority = self.priority
        self.master_adver_interval_cs = self.config.interval_cs
        self._resign_from = None
        return [
            self._send(self.priority),
            AddAddresses(self._vips),
            Announce(self._vips),
            self._transition(old, _MASTER, reason, now, code),
        ]

    def _enter_backup(self, now: float, old: State, reason: str, code: str) -> list[Action]:
        """Backup with no Master known yet: our own interval, a fresh Master_Down_Timer."""
        self._forget_master()
        self.master_adver_interval_cs = self.config.interval_cs
        self._deadline = now + self.master_down_interval
        return [self._transition(old, _BACKUP, reason, now, code)]

    def _forget_master(self) -> None:
        self._deadline = None
        self.master_address = None
        self.master_priority = None
        self._resign_from = None

    def _resignation(self) -> SendAdvertisement:
        return self._send(0)

    def _send(self, priority: int) -> SendAdvertisement:
        counters = self.counters
        counters.adverts_sent += 1
        if priority == 0:
            counters.priority_zero_sent += 1
        action = self._sends.get(priority)
        if action is None:
            # Actions are values: a Master's every advert can be the same object.
            action = self._sends[priority] = SendAdvertisement(self.advertisement(priority))
        return action

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"<VirtualRouter {cfg.name or cfg.vrid} v{cfg.version} IPv{cfg.family} "
            f"{self.state.value} prio={self.priority}>"
        )


# ------------------------------------------------------------ the table


_V = VirtualRouter
_IGNORE = _V._ignore

TRANSITIONS: Mapping[tuple[State, Event], Rule] = {
    # ----------------------------------------------------------- Initialize
    (_INIT, Event.STARTUP): rule(
        _V._startup,
        "RFC 9568 6.4.1: owner to Master, else Backup; keepalived: a fault held -> FAULT",
        _MASTER,
        _BACKUP,
        _FAULT,
    ),
    (_INIT, Event.SHUTDOWN): rule(_IGNORE, "not running", _INIT),
    (_INIT, Event.ADVERT): rule(_V._drop_not_running, "not running: counted, dropped", _INIT),
    (_INIT, Event.TIMER): rule(_IGNORE, "no timer runs", _INIT),
    (_INIT, Event.FAULT): rule(_IGNORE, "remembered in faults: startup goes to FAULT", _INIT),
    (_INIT, Event.RECOVER): rule(_IGNORE, "forgotten: startup goes as usual", _INIT),
    (_INIT, Event.FORCE_MASTER): rule(_IGNORE, "not running", _INIT),
    (_INIT, Event.FORCE_BACKUP): rule(_IGNORE, "not running", _INIT),
    (_INIT, Event.HOLD_BACKUP): rule(_IGNORE, "not running", _INIT),
    # --------------------------------------------------------------- Backup
    (_BACKUP, Event.STARTUP): rule(_IGNORE, "running already", _BACKUP),
    (_BACKUP, Event.SHUTDOWN): rule(
        _V._backup_shutdown, "RFC 9568 6.4.2: cancel Master_Down_Timer", _INIT
    ),
    (_BACKUP, Event.ADVERT): rule(
        _V._backup_advert,
        "RFC 9568 6.4.2: priority 0 -> Skew_Time; a Master we accept -> restart the timer",
        _BACKUP,
    ),
    (_BACKUP, Event.TIMER): rule(
        _V._backup_timer, "RFC 9568 6.4.2: Master_Down_Timer fires -> Master", _MASTER
    ),
    (_BACKUP, Event.FAULT): rule(_V._backup_fault, "keepalived: stop listening", _FAULT),
    (_BACKUP, Event.RECOVER): rule(_IGNORE, "cannot happen: a Backup holds no fault", _BACKUP),
    (_BACKUP, Event.FORCE_MASTER): rule(
        _V._force_master, "keepalived vrrp_sync_master: the group goes Master", _MASTER
    ),
    (_BACKUP, Event.FORCE_BACKUP): rule(_IGNORE, "Backup already", _BACKUP),
    (_BACKUP, Event.HOLD_BACKUP): rule(
        _V._hold_backup, "keepalived vrrp_sync_can_goto_master: wait again", _BACKUP
    ),
    # --------------------------------------------------------------- Master
    (_MASTER, Event.STARTUP): rule(_IGNORE, "running already", _MASTER),
    (_MASTER, Event.SHUTDOWN): rule(
        _V._master_shutdown, "RFC 9568 6.4.3: priority 0, withdraw the addresses", _INIT
    ),
    (_MASTER, Event.ADVERT): rule(
        _V._master_advert,
        "RFC 9568 6.4.3: priority 0 -> assert; better -> Backup; weaker -> assert",
        _MASTER,
        _BACKUP,
    ),
    (_MASTER, Event.TIMER): rule(
        _V._master_timer, "RFC 9568 6.4.3: Adver_Timer fires -> send", _MASTER
    ),
    (_MASTER, Event.FAULT): rule(
        _V._master_fault,
        "keepalived vrrp_state_leave_master: priority 0, withdraw the addresses",
        _FAULT,
    ),
    (_MASTER, Event.RECOVER): rule(_IGNORE, "cannot happen: a Master holds no fault", _MASTER),
    (_MASTER, Event.FORCE_MASTER): rule(_IGNORE, "Master already", _MASTER),
    (_MASTER, Event.FORCE_BACKUP): rule(
        _V._force_backup,
        "keepalived vrrp_sync_backup: withdraw the addresses, no priority 0",
        _BACKUP,
    ),
    (_MASTER, Event.HOLD_BACKUP): rule(_IGNORE, "Master already", _MASTER),
    # ---------------------------------------------------------------- Fault
    (_FAULT, Event.STARTUP): rule(_IGNORE, "running already", _FAULT),
    (_FAULT, Event.SHUTDOWN): rule(_V._fault_shutdown, "nothing to resign from: no advert", _INIT),
    (_FAULT, Event.ADVERT): rule(_V._drop_fault, "keepalived: counted (fault), dropped", _FAULT),
    (_FAULT, Event.TIMER): rule(_IGNORE, "no timer runs", _FAULT),
    (_FAULT, Event.FAULT): rule(_IGNORE, "cannot happen: FAULT holds a fault", _FAULT),
    (_FAULT, Event.RECOVER): rule(
        _V._fault_recover,
        "keepalived try_up_instance: owner -> Master, else Backup with a fresh timer",
        _MASTER,
        _BACKUP,
    ),
    (_FAULT, Event.FORCE_MASTER): rule(_IGNORE, "the fault wins", _FAULT),
    (_FAULT, Event.FORCE_BACKUP): rule(_IGNORE, "the fault wins", _FAULT),
    (_FAULT, Event.HOLD_BACKUP): rule(_IGNORE, "no timer runs", _FAULT),
}
"""The state machine: what each event does in each state, and where the rule comes from.

Every (state, event) pair has a row. The two per-packet events (``ADVERT``,
``TIMER``) are looked up once per state change, not once per packet (see
:meth:`VirtualRouter._transition`), so the table costs the hot path nothing.
"""

bind_table(VirtualRouter, TRANSITIONS)
