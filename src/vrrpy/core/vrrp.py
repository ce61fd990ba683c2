"""One VRRP virtual router as a sans-IO state machine (RFC 9568 section 6, RFC 3768 section 6).

Feed it events, each with the current time, and act on the actions it returns:

=============================  ===============================================
event (method)                 RFC 9568 trigger
=============================  ===============================================
``startup(now)``               Startup event (6.4.1)
``shutdown(now)``              Shutdown event (6.4.2, 6.4.3)
``receive_packet(data, info)`` an ADVERTISEMENT arrives (decoded and checked)
``receive_advert(adv, src)``   the same, already decoded
``handle_timer(now)``          Master_Down_Timer or Adver_Timer fires
``set_priority(p, now)``       a tracked object changed our priority
=============================  ===============================================

``get_timer()`` says when it next wants ``handle_timer``. The object never
reads a clock, sleeps or touches a socket, so the simulator and the tests drive
exactly the code the Linux runtime drives.

Timers are one deadline whose meaning depends on the state: Master_Down_Timer
in Backup, Adver_Timer in Master (the RFC never runs both at once).
"""

from __future__ import annotations

import logging
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
    Transition,
)
from vrrpy.core.config import RouterConfig
from vrrpy.core.counters import Counters
from vrrpy.core.droplog import DropLog
from vrrpy.core.state import State
from vrrpy.core.timers import master_down_interval, skew_time

logger = logging.getLogger("vrrpy.core")

_INIT = State.INITIALIZE
_BACKUP = State.BACKUP
_MASTER = State.MASTER
_FE80_SLASH_10 = 0x3FA  # the top 10 bits of an IPv6 link-local address (fe80::/10)


class VirtualRouter:
    """The RFC state machine for one VRID, one interface, one address family."""

    def __init__(self, config: RouterConfig) -> None:
        self.config = config
        self.state = _INIT
        self.priority = config.priority
        """Effective priority: the configured one, changed at runtime by :meth:`set_priority`."""
        self.master_adver_interval_cs = config.interval_cs
        """Master_Adver_Interval: learned from the Master's adverts (VRRPv3 only)."""
        self.master_address: IPAddress | None = None
        """Primary address of the router we believe is Master (ourselves when Master)."""
        self.master_priority: int | None = None
        self.counters = Counters()
        self._deadline: float | None = None
        self._started_at = 0.0
        self._resign_from: IPAddress | None = None
        self._next_assert = 0.0
        self._split_brain_until: float | None = None
        """While Master: when the current split-brain episode ends if no other Master is
        heard again (None: no episode)."""
        self._peers = frozenset(config.peers)
        self._adverts: dict[int, Advertisement] = {}
        self._last_data = b""
        self._last_info: PacketInfo | None = None
        self._vips = tuple(config.virtual_addresses)
        self._vip_set = frozenset(config.virtual_addresses)
        self._primary_int = int(config.primary_address)
        self._addr_type = type(config.primary_address)
        self._count_forms = config.version == 3 and config.family == 4
        self._droplog = DropLog(logger)
        self._warnlog = DropLog(logger, level=logging.WARNING, interval=60.0)
        self._log_prefix = f"[{config.name or 'vrid ' + str(config.vrid)}] "
        self._last_advert: Advertisement = self.advertisement()
        self._passed: tuple[Advertisement, IPAddress, list[tuple[Any, ...]]] | None = None

    # ----------------------------------------------------------------- queries

    def get_timer(self) -> float | None:
        """The time at which :meth:`handle_timer` must be called next, or None."""
        return self._deadline

    def split_brain(self, now: float) -> bool:
        """Whether a split-brain episode is going on: we are Master and another, weaker
        Master was heard less than Master_Down_Interval ago."""
        until = self._split_brain_until
        return until is not None and now < until

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

    def startup(self, now: float) -> list[Action]:
        """Startup event (RFC 9568 6.4.1): the address owner goes Master, anyone else Backup."""
        if self.state is not _INIT:
            return []
        self._started_at = now
        if self.priority == 255:
            return self._become_master(now, _INIT, "startup as address owner (priority 255)")
        self.master_adver_interval_cs = self.config.interval_cs
        self.master_address = None
        self.master_priority = None
        self._deadline = now + self.master_down_interval
        return [self._transition(_INIT, _BACKUP, "startup", now)]

    def shutdown(self, now: float) -> list[Action]:
        """Shutdown event: a Master resigns with a priority-0 advert and withdraws its addresses."""
        state = self.state
        self._deadline = None
        self._split_brain_until = None
        if state is _MASTER:
            actions: list[Action] = [self._send(0), RemoveAddresses(self._vips)]
            actions.append(self._transition(_MASTER, _INIT, "shutdown", now))
            return actions
        if state is _BACKUP:
            return [self._transition(_BACKUP, _INIT, "shutdown", now)]
        return []

    def handle_timer(self, now: float) -> list[Action]:
        """Fire whichever timer is due; calling early or with no timer set does nothing."""
        deadline = self._deadline
        if deadline is None or now < deadline:
            return []
        if self.state is _MASTER:
            # Adver_Timer: next deadline from the previous one, so a late wake-up
            # does not push every later advert back; after a long stall, restart
            # the cadence from now rather than firing a burst.
            interval = self.config.interval_cs / 100.0
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
        # Master_Down_Timer.
        resigned = self._resign_from
        if resigned is not None:
            reason = f"master {resigned} resigned (priority 0), Skew_Time elapsed"
        elif self.master_address is not None:
            reason = f"no advert from master {self.master_address} for Master_Down_Interval"
        else:
            reason = "no master heard for Master_Down_Interval"
        return self._become_master(now, _BACKUP, reason)

    def advance_advert(self, when: float, now: float) -> bool:
        """Bring a Master's next advert forward to ``when`` (never later, never before ``now``).

        For a runtime that puts many Masters' adverts on shared wake-ups: the
        cadence then continues from ``when``, one Advertisement_Interval apart.
        An advert that leaves early is harmless to every peer (their
        Master_Down_Interval is three intervals and more); one that leaves late
        is not, so this can only shorten the wait. Returns whether it moved.
        """
        deadline = self._deadline
        if self.state is not _MASTER or deadline is None:
            return False
        when = max(when, now)
        if when >= deadline:
            return False
        self._deadline = when
        return True

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
        return self.receive_advert(advert, info.source, now)

    def receive_advert(self, advert: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """A decoded advert from ``source``: apply the receive checks, then the state table.

        The checks depend only on the advert, its source and the configuration:
        when the same advert object (see :meth:`receive_packet`) comes again
        from the same source, their outcome is reused -- the anomalies they
        found are counted and logged again, as for a new packet.
        """
        if self.state is _INIT:
            self._drop("not_running", now, "")
            return []
        passed = self._passed
        if (
            passed is not None
            and advert is passed[0]
            and (source is passed[1] or source == passed[1])
        ):
            for reason, detail, *args in passed[2]:
                self._anomaly(reason, now, detail, *args)
        else:
            anomalies = self._check(advert, source, now)
            if anomalies is None:
                return []
            self._passed = (advert, source, anomalies)
        counters = self.counters
        counters.adverts_received += 1
        if self._count_forms:
            if advert.checksum_form is ChecksumForm.PSEUDO_HEADER:
                counters.checksum_pseudo_header += 1
            else:
                counters.checksum_vrrp_only += 1
        if advert.priority == 0:
            counters.priority_zero_received += 1
        if self.state is _BACKUP:
            return self._backup_receive(advert, source, now)
        return self._master_receive(advert, source, now)

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
                self._drop("auth_type_mismatch", now, "type %d from %s", advert.auth_type, source)
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

    def set_priority(self, priority: int, now: float) -> list[Action]:
        """Change the effective priority (tracking). It is carried by the next advert.

        A Backup that now outranks the Master (with preemption on) discards the
        Master's next adverts and takes over when Master_Down_Timer fires; a
        Master that now ranks below a preempting Backup is taken over the same
        way. Nothing is sent early, as the RFC has no such event.

        As in keepalived, 255 is reserved to the address owner and an owner's
        priority does not move: tracking cannot turn a router into the owner,
        nor the owner into something else (RFC 9568 6.1: 255 means "owns the
        addresses", a fact, not a preference).
        """
        if self.config.priority == 255:
            raise ValueError("the address owner's priority is fixed at 255")
        if not isinstance(priority, int) or not 1 <= priority <= 254:
            raise ValueError(f"priority must be 1..254, got {priority!r}")
        self.priority = priority
        return []

    # --------------------------------------------------------- state handlers

    def _backup_receive(self, advert: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """RFC 9568 6.4.2, "If an ADVERTISEMENT is received"."""
        if advert.priority == 0:
            self._resign_from = source
            self._deadline = now + self.skew_time
            return []
        if (
            advert.priority >= self.priority
            or not self.config.preempt
            or now < self._started_at + self.config.preempt_delay
        ):
            if self.config.version == 3:
                self.master_adver_interval_cs = advert.interval_cs
            self.master_address = source
            self.master_priority = advert.priority
            self._resign_from = None
            self._deadline = now + master_down_interval(
                self.priority, self.master_adver_interval_cs, self.config.version
            )
            return []
        # Preempt: ignore the weaker Master and let Master_Down_Timer run out.
        self.counters.lower_priority_discarded += 1
        return []

    def _master_receive(self, advert: Advertisement, source: IPAddress, now: float) -> list[Action]:
        """RFC 9568 6.4.3, "If an ADVERTISEMENT is received"."""
        if advert.priority == 0:
            # Someone resigned: assert ourselves at once so Backups do not race.
            self._deadline = now + self.config.interval_cs / 100.0
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
            actions.append(self._transition(_MASTER, _BACKUP, reason, now))
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
            self._next_assert = now + self.config.interval_cs / 100.0
            return [self._send(self.priority), Announce(self._vips)]
        return []

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

    def _become_master(self, now: float, old: State, reason: str) -> list[Action]:
        self._deadline = now + self.config.interval_cs / 100.0
        self.master_address = self.config.primary_address
        self.master_priority = self.priority
        self.master_adver_interval_cs = self.config.interval_cs
        self._resign_from = None
        return [
            self._send(self.priority),
            AddAddresses(self._vips),
            Announce(self._vips),
            self._transition(old, _MASTER, reason, now),
        ]

    def _send(self, priority: int) -> SendAdvertisement:
        counters = self.counters
        counters.adverts_sent += 1
        if priority == 0:
            counters.priority_zero_sent += 1
        return SendAdvertisement(self.advertisement(priority))

    def _transition(self, old: State, new: State, reason: str, now: float) -> Transition:
        self.state = new
        counters = self.counters
        counters.transitions += 1
        counters.last_transition = now
        counters.last_transition_reason = reason
        if new is _MASTER:
            counters.became_master += 1
        elif old is _MASTER:
            counters.released_master += 1
        return Transition(old, new, reason)

    def _drop(self, reason: str, now: float, detail: str, *args: object) -> None:
        self.counters.drop(reason)
        self._droplog.log(reason, now, self._log_prefix, "dropped advert: " + detail, *args)

    def _anomaly(self, reason: str, now: float, detail: str, *args: object) -> None:
        """A misconfiguration the RFC asks us to log but not to act on; the advert is processed."""
        anomalies = self.counters.anomalies
        anomalies[reason] = anomalies.get(reason, 0) + 1
        self._warnlog.log(reason, now, self._log_prefix, detail, *args)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"<VirtualRouter {cfg.name or cfg.vrid} v{cfg.version} IPv{cfg.family} "
            f"{self.state.value} prio={self.priority}>"
        )
