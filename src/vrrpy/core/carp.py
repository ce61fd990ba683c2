"""One CARP virtual host (a VHID) as a sans-IO state machine, beside VRRP's.

:class:`CarpRouter` is driven exactly as :class:`vrrpy.core.vrrp.VirtualRouter`
is: the same event methods, each taking ``now`` and returning the same
actions, one deadline from :meth:`CarpRouter.get_timer`, the same states,
counters, drop log and FAULT. A runtime, the simulator or a sync group can
hold either.

What CARP changes (``docs/carp.md``, "State machine", has the sources):

* **The interval is the priority.** A Master advertises every
  ``advbase + advskew / 256`` seconds, and the more frequent advert wins.
  :attr:`CarpRouter.priority` is the advskew advertised (lower is better):
  :meth:`CarpRouter.set_priority` sets it.
* **Master down** is ours, not the Master's: ``dead_ratio * advbase +
  advskew / 256`` (ucarp's ``--deadratio``, 3 as in both BSDs), whatever the
  Master advertises.
* **Preemption** (off by default, as in all three) takes over *at once* from a
  slower Master; without it a Backup waits for the Master to fall silent. A
  Backup takes over at once from an advert slower than its own master-down
  interval (it would time out anyway), and from a bow-out.
* **Demotion** (OpenBSD's ``carpdemote``), moved by :meth:`CarpRouter.set_demote`:
  sent in byte 4 and compared before the interval (a lower count wins, a
  higher one is taken over even without preemption); also added to the advskew
  sent (FreeBSD's way, capped at 240) so that ucarp and FreeBSD, which ignore
  byte 4, see it too.
* **The bow-out**: a Master that stops or faults sends advbase 255 / advskew
  255 (OpenBSD's), CARP's priority 0.
* **Authentication**: every advert is signed with the configured profile
  (:mod:`vrrpy.codec.carp_auth`); an advert whose HMAC does not verify is a
  counted drop, like any malformed packet. The counter policy is
  :attr:`CarpConfig.counter`.

Pure as the VRRP core: no sockets, no clock reads, no randomness (the
counter's first value comes in :attr:`CarpConfig.counter_start`), no global
state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Literal, get_args

from vrrpy.codec.carp import (
    CARP_AUTHLEN,
    CARP_TYPE_ADVERTISEMENT,
    CARP_VERSION,
    COUNTER_MAX,
    CarpAdvertisement,
    decode_carp,
)
from vrrpy.codec.carp_auth import (
    CarpAuth,
    FreeBSDAuth,
    OpenBSDAuth,
    ReplayWindow,
    UcarpAuth,
    verify_carp,
)
from vrrpy.codec.errors import CarpBadHMAC, CARPDecodeError, CarpReplay
from vrrpy.codec.vrrp import IPAddress, PacketInfo
from vrrpy.core.actions import (
    Action,
    AddAddresses,
    Announce,
    RemoveAddresses,
    SendAdvertisement,
)
from vrrpy.core.config import ConfigError, address_problem, virtual_addresses_problems
from vrrpy.core.router import RouterCore, Rule, bind_table, rule
from vrrpy.core.state import Event, State

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger("vrrpy.core.carp")

TieBreak = Literal["ucarp", "numeric", "yield"]
CounterPolicy = Literal["constant", "increment"]
Profile = Literal["openbsd", "freebsd", "ucarp"]

BOW_OUT_ADVBASE = 255
BOW_OUT_ADVSKEW = 255
"""OpenBSD's bow-out advert (``sc_bow_out``): a Master going down advertises the
slowest interval there is, so that every Backup takes over without waiting."""
MAX_DEMOTED_ADVSKEW = 240
"""The highest advskew demotion may raise ours to: FreeBSD's ``CARP_MAXSKEW`` in
``DEMOTE_ADVSKEW``, ucarp's ``CARP_BULK_UPDATE_MIN_DELAY`` while its sends fail."""
MAX_DEMOTE = 255
"""Byte 4 is one byte: OpenBSD's ``carp_group_demote_count`` caps the sum at 255."""

_INIT = State.INITIALIZE
_BACKUP = State.BACKUP
_MASTER = State.MASTER
_FAULT = State.FAULT
_BOW_OUT_RANK = BOW_OUT_ADVBASE * 256 + BOW_OUT_ADVSKEW


# ------------------------------------------------------------------ timers


def carp_interval_cs(advbase: int, advskew: int) -> float:
    """The advert interval ``advbase + advskew / 256`` seconds, in centiseconds.

    All three implementations advertise at this interval (OpenBSD with 1/256 s
    for advbase 0 and advskew 0, which :class:`CarpConfig` refuses as ucarp does).
    One expression, used for the configuration and the timers alike, so the
    same floats come out wherever it is computed.
    """
    return (advbase * 256 + advskew) * 100 / 256


def carp_master_down(advbase: int, advskew: int, dead_ratio: int = 3) -> float:
    """Seconds a Backup waits for an advert before it takes over.

    ``dead_ratio * advbase + advskew / 256``: ucarp's formula (``--deadratio``,
    3 by default), FreeBSD's and OpenBSD's up to at least 1.270 (which fix the
    ratio at 3). With advbase 0 the ratio applies to the skew
    (``dead_ratio * advskew / 256``, OpenBSD's rule: ucarp's formula would
    time out after one interval). OpenBSD 1.370 waits ``3 * (advbase +
    advskew / 256)`` instead; see ``docs/carp.md``.
    """
    if advbase:
        return dead_ratio * advbase + advskew / 256
    return dead_ratio * advskew / 256


# ------------------------------------------------------------ configuration


def _address_key(address: IPAddress, tie_break: TieBreak) -> int:
    """The number a tie compares, lower winning: see :attr:`CarpConfig.tie_break`."""
    if tie_break == "ucarp":
        return int.from_bytes(address.packed, "little")
    return int(address)


@dataclass(frozen=True)
class CarpConfig:
    """Configuration of one CARP virtual host (one VHID on one interface, one family).

    Validated at construction, like :class:`vrrpy.core.config.RouterConfig`: a
    bad value raises :class:`~vrrpy.core.config.ConfigError` naming the field.

    ``primary_address`` is the address our adverts leave from (it tells our
    own adverts apart, and breaks ties). ``advbase`` (seconds, 0..255) and
    ``advskew`` (0..254) make the interval, ``advbase + advskew / 256``: the
    lower, the more preferred. advbase 0 needs an advskew (ucarp refuses both
    0, "You must supply an advertisement time base").

    ``profile`` names whose HMAC input and key derivation to use (``openbsd``,
    ``freebsd``, ``ucarp``: :mod:`vrrpy.codec.carp_auth`), with ``password``,
    or ``key`` for a raw key of at most 20 bytes. ucarp hashes one IPv4
    address, so that profile needs exactly one.

    ``preempt`` takes over at once from a slower Master (OpenBSD's
    ``net.inet.carp.preempt``, FreeBSD's sysctl of that name, ucarp's ``-P``;
    off in all three). ``dead_ratio`` is ucarp's ``--deadratio``: adverts
    missed before a Backup takes over (3, the BSDs' fixed value).

    ``tie_break`` settles two Masters with the same demote count and interval:

    * ``"ucarp"`` (default): the lower source address stays Master, compared
      as ucarp compares ``s_addr`` on a little-endian host (the last byte
      weighs most: for two addresses in one /24, plain numeric order). ucarp
      on x86 and ARM does exactly this; comparing otherwise could leave a
      ucarp peer and us both Master for ever.
    * ``"numeric"``: the lower address by value (ucarp on a big-endian host).
    * ``"yield"``: OpenBSD and FreeBSD: a Master steps down for any advert at
      least as good as its own, equal included; the first one whose
      master-down timer runs out then wins.

    ``counter`` is the counter policy: ``"constant"`` (default: OpenBSD's
    cookie, ``counter_start`` in every advert, so one signed advert object
    serves until something in it changes, and the runtime encodes it once) or
    ``"increment"`` (``counter_start``, then +1 per advert: what
    :class:`~vrrpy.codec.carp_auth.ReplayWindow` protects best, at about 4 µs
    per advert to sign and encode). ``counter_start`` is the first value: the
    runtime passes a random 64-bit number (the core draws none).
    ``replay_window`` checks the counters of every peer (opt-in; useful when
    the peers count, that is vrrpy peers with ``counter = "increment"``).

    ``demote_advskew`` adds the demote count (:meth:`CarpRouter.set_demote`) to
    the advskew sent, up to 240, as FreeBSD does with its ``demotion`` sysctl:
    byte 4 carries it too, but ucarp and FreeBSD ignore byte 4.
    ``yield_advert`` (ucarp's behaviour, on by default): a Master that yields
    sends one last advert, so that the better Master hears a weaker one and
    re-announces the addresses (keepalived's ``higher_prio_send_advert``).

    ``peers``, when not empty, are the only sources heard (a stranger's advert
    is dropped as ``not_a_peer``): OpenBSD's ``carppeer``, FreeBSD's unicast
    ``peer``. The runtime sends to them instead of the group.
    """

    vhid: int
    primary_address: IPAddress
    virtual_addresses: tuple[IPAddress, ...]
    advskew: int = 0
    advbase: int = 1
    password: str | bytes = ""
    profile: Profile = "openbsd"
    key: bytes | None = None
    preempt: bool = False
    dead_ratio: int = 3
    tie_break: TieBreak = "ucarp"
    counter: CounterPolicy = "constant"
    counter_start: int = 0
    replay_window: bool = False
    demote_advskew: bool = True
    yield_advert: bool = True
    peers: tuple[IPAddress, ...] = ()
    name: str = ""
    interval_cs: float = field(init=False)
    """The configured advert interval, ``(advbase + advskew / 256) * 100``: what the
    runtime paces a Master by (the router's :attr:`CarpRouter.interval_cs` is the
    current one, which :meth:`CarpRouter.set_priority` and demotion move)."""
    auth: CarpAuth = field(init=False, repr=False, compare=False)
    """The profile built from ``profile``, ``password`` / ``key`` and the addresses."""

    def __post_init__(self) -> None:
        problems = carp_problems(
            vhid=self.vhid,
            primary_address=self.primary_address,
            virtual_addresses=self.virtual_addresses,
            advskew=self.advskew,
            advbase=self.advbase,
            profile=self.profile,
            preempt=self.preempt,
            dead_ratio=self.dead_ratio,
            tie_break=self.tie_break,
            counter=self.counter,
            counter_start=self.counter_start,
            peers=self.peers,
        )
        if problems:
            raise problems[0]
        object.__setattr__(self, "virtual_addresses", tuple(self.virtual_addresses))
        object.__setattr__(self, "peers", tuple(self.peers))
        object.__setattr__(self, "interval_cs", carp_interval_cs(self.advbase, self.advskew))
        object.__setattr__(self, "auth", self._build_auth())

    def _build_auth(self) -> CarpAuth:
        key = self.key
        if key is not None and (not isinstance(key, bytes) or len(key) > 20):
            raise ConfigError("key", "a raw CARP key is at most 20 bytes")
        if not isinstance(self.password, (str, bytes)):
            raise ConfigError("password", "must be a string")
        try:
            if self.profile == "ucarp":
                vaddr = self.virtual_addresses[0]
                assert isinstance(vaddr, IPv4Address)  # carp_problems made sure
                return UcarpAuth(self.vhid, vaddr, self.password, key=key)
            if self.profile == "freebsd":
                return FreeBSDAuth(self.vhid, self.virtual_addresses, self.password, key=key)
            return OpenBSDAuth(self.vhid, self.virtual_addresses, self.password, key=key)
        except ValueError as exc:
            raise ConfigError("password", str(exc)) from None

    @property
    def vrid(self) -> int:
        """The VHID, under VRRP's name (for code that handles both kinds of router)."""
        return self.vhid

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.primary_address.version


def _integer(value: object, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return f"must be an integer {low}..{high}, got {value!r}"
    return None


def carp_problems(
    *,
    vhid: int,
    primary_address: IPAddress,
    virtual_addresses: Sequence[IPAddress],
    advskew: int = 0,
    advbase: int = 1,
    profile: str = "openbsd",
    preempt: bool = False,
    dead_ratio: int = 3,
    tie_break: str = "ucarp",
    counter: str = "constant",
    counter_start: int = 0,
    peers: Sequence[IPAddress] = (),
) -> list[ConfigError]:
    """Every problem of one CARP virtual host's settings, each keyed as :class:`CarpConfig`'s
    field (a loader reports them all at once; the class raises the first)."""
    found: list[ConfigError] = []

    def check(key: str, problem: str | None) -> None:
        if problem:
            found.append(ConfigError(key, problem))

    check("vhid", _integer(vhid, 1, 255))
    if not isinstance(primary_address, (IPv4Address, IPv6Address)):
        found.append(ConfigError("primary_address", "must be an IPv4Address or IPv6Address"))
        return found
    family = primary_address.version
    vip_problems = virtual_addresses_problems(virtual_addresses)
    for problem in vip_problems:
        check("virtual_addresses", problem)
    if not vip_problems:
        for address in virtual_addresses:
            if address.version != family:
                check(
                    "virtual_addresses",
                    f"{address} is not of the primary address's family (IPv{family})",
                )
                break
    if advskew == BOW_OUT_ADVSKEW and not isinstance(advskew, bool):
        check("advskew", "255 is the bow-out advert's; 0..254")
    else:
        check("advskew", _integer(advskew, 0, 254))
    check("advbase", _integer(advbase, 0, 255))
    if advbase == 0 and advskew == 0:
        check("advbase", "advbase 0 needs an advskew of 1 or more (an interval of 0 s)")
    if profile not in get_args(Profile):
        check("profile", f"must be one of {', '.join(get_args(Profile))}, got {profile!r}")
    elif (
        profile == "ucarp"
        and not vip_problems
        and (len(virtual_addresses) != 1 or virtual_addresses[0].version != 4)
    ):
        check("virtual_addresses", "the ucarp profile hashes exactly one IPv4 address")
    if not isinstance(preempt, bool):
        check("preempt", f"must be true or false, got {preempt!r}")
    check("dead_ratio", _integer(dead_ratio, 1, 255))
    if tie_break not in get_args(TieBreak):
        check("tie_break", f"must be one of {', '.join(get_args(TieBreak))}, got {tie_break!r}")
    if counter not in get_args(CounterPolicy):
        check("counter", f"must be one of {', '.join(get_args(CounterPolicy))}, got {counter!r}")
    check("counter_start", _integer(counter_start, 0, COUNTER_MAX))
    if isinstance(peers, (str, bytes)) or not isinstance(peers, (tuple, list)):
        check("peers", "must be a tuple of IP addresses")
    else:
        for peer in peers:
            if not isinstance(peer, (IPv4Address, IPv6Address)):
                check("peers", f"{peer!r} is not an IP address")
            elif peer.version != family:
                check("peers", f"{peer} is IPv{peer.version}, the instance is IPv{family}")
            elif peer == primary_address:
                check("peers", f"{peer} is our own primary address")
            elif (why := address_problem(peer)) is not None:
                check("peers", f"{peer} {why}")
    return found


# ------------------------------------------------------------------ router


class CarpRouter(RouterCore):
    """CARP's state machine for one VHID, one interface, one address family.

    The interface of :class:`vrrpy.core.vrrp.VirtualRouter`, with CARP's rules
    (module docstring). Two additions: :meth:`set_demote` and :attr:`demote`.
    """

    def __init__(self, config: CarpConfig) -> None:
        self.config = config
        self._init_core(logger, config.name or f"vhid {config.vhid}")
        self.advskew = config.advskew
        """The advskew set by configuration or :meth:`set_priority` (before demotion)."""
        self.demote = 0
        """OpenBSD's demote count, sent in byte 4 (:meth:`set_demote`)."""
        self.priority = config.advskew
        """The advskew advertised now (lower is preferred): :attr:`advskew`, raised by
        the demote count when ``demote_advskew`` is on (up to 240)."""
        self.master_adver_interval_cs = config.interval_cs
        """The current Master's interval as heard, in centiseconds (ours when Master,
        or when no Master is known)."""
        self.master_address: IPAddress | None = None
        """Source address of the router we believe is Master (ourselves when Master)."""
        self._auth = config.auth
        self._replay = ReplayWindow() if config.replay_window else None
        self._counter = config.counter_start
        self._counting = config.counter == "increment"
        self._next_assert = 0.0
        self._peers = frozenset(config.peers)
        self._vips = config.virtual_addresses
        self._primary = config.primary_address
        self._addr_type = type(config.primary_address)
        self._my_key = _address_key(config.primary_address, config.tie_break)
        self._adverts: dict[tuple[int, int, int], CarpAdvertisement] = {}
        self._sends: dict[tuple[int, int, int], SendAdvertisement] = {}
        self._last_data = b""
        self._last_info: PacketInfo | None = None
        self._last_advert: CarpAdvertisement | None = None
        self._passed: tuple[CarpAdvertisement, IPAddress] | None = None
        """The last advert (object) and source whose checks and HMAC passed: a repeat
        of it needs neither again (both depend on nothing else)."""
        self._repeat: tuple[CarpAdvertisement, IPAddress] | None = None
        """Backup only: the Master's advert last accepted, when a repeat of it can only
        restart the timer. Cleared by anything else that happens."""
        self._interval_cs = config.interval_cs
        self._interval = config.interval_cs / 100.0
        self._master_down = carp_master_down(config.advbase, config.advskew, config.dead_ratio)

    # ----------------------------------------------------------------- queries

    @property
    def interval_cs(self) -> float:
        """Our advert interval now, in centiseconds: ``advbase + priority / 256`` s."""
        return self._interval_cs

    @property
    def master_down_interval(self) -> float:
        """Seconds a Backup waits for the Master: ``dead_ratio * advbase + priority / 256``."""
        return self._master_down

    def advertisement(self, bow_out: bool = False) -> CarpAdvertisement:
        """The signed advert we would send now (the bow-out with ``bow_out``).

        With the constant counter it is the very object sent, reused while
        advbase, advskew and demote stay; with ``increment`` each send makes a
        new one with the next counter, and this shows the next.
        """
        if bow_out:
            shape = (BOW_OUT_ADVBASE, BOW_OUT_ADVSKEW, self.demote)
        else:
            shape = (self.config.advbase, self.priority, self.demote)
        if self._counting:
            return self._sign(shape, self._counter)
        advert = self._adverts.get(shape)
        if advert is None:
            advert = self._adverts[shape] = self._sign(shape, self._counter)
        return advert

    # ------------------------------------------------------------------ events

    def receive_packet(self, data: bytes, info: PacketInfo, now: float) -> list[Action]:
        """An IP payload arrived for this VHID: decode it, check it, process it.

        Anything malformed (a VRRP packet included), or failing a check or the
        HMAC, is counted under its reason, logged at debug (rate-limited) and
        dropped, changing neither state nor timer. Identical bytes from the
        same source (a Master repeats one advert) reuse the last decoding.
        """
        if data == self._last_data and info == self._last_info:
            advert = self._last_advert
            if advert is None:
                return []
        else:
            try:
                advert = decode_carp(data, info)
            except CARPDecodeError as exc:
                self._drop(exc.reason, now, "%s", exc.detail)
                return []
            self._last_data, self._last_info, self._last_advert = data, info, advert
        return self._on_advert(self, advert, info.source, now)

    def receive_advert(
        self, advert: CarpAdvertisement, source: IPAddress, now: float
    ) -> list[Action]:
        """A decoded advert from ``source``: the checks (VHID, family, own, peers, HMAC,
        replay), then the state's handler. In INIT or FAULT it is dropped first
        (``not_running``, ``fault``)."""
        return self._on_advert(self, advert, source, now)

    def set_priority(self, priority: int, now: float) -> list[Action]:
        """Set the advskew (0..254; lower is preferred). The next advert carries it.

        Nothing is sent early (OpenBSD's ``ifconfig advskew`` only reschedules):
        a Backup that now outranks the Master preempts at its next advert (with
        preemption on); a Master now outranked is taken over the same way.
        Anything outside 0..254 is refused, not clamped, so that a caller's bug
        shows; 255 is the bow-out.
        """
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 254:
            raise ValueError(f"advskew must be 0..254, got {priority!r}")
        self.advskew = priority
        self._reprice()
        return []

    def set_demote(self, demote: int, now: float) -> list[Action]:
        """Set OpenBSD's demote count (tracking: the number of things that failed).

        Sent in byte 4 (capped at 255, as OpenBSD caps it) and, with
        ``demote_advskew``, added to the advskew sent (up to 240). A Master
        whose demote count changes advertises at once and restarts its cadence
        from now, as both BSDs do, so that a Backup now preferred takes over
        without waiting. Negative counts are refused.
        """
        if isinstance(demote, bool) or not isinstance(demote, int) or demote < 0:
            raise ValueError(f"a demote count is an integer >= 0, got {demote!r}")
        demote = min(demote, MAX_DEMOTE)
        if demote == self.demote:
            return []
        self.demote = demote
        self._reprice()
        if self.state is not _MASTER:
            return []
        self._deadline = now + self._interval
        return [self._send()]

    # ------------------------------------------------ handlers: INIT

    def _startup(self, _reason: str, now: float) -> list[Action]:
        if self._faults:
            return [
                self._transition(
                    _INIT, _FAULT, f"startup; fault: {self._fault_text()}", now, "fault"
                )
            ]
        return self._enter_backup(now, _INIT, "startup", "startup")

    # ------------------------------------------------ handlers: BACKUP

    def _backup_advert(
        self, advert: CarpAdvertisement, source: IPAddress, now: float
    ) -> list[Action]:
        """OpenBSD's ``carp_proto_input_c`` in BACKUP, rule by rule (ucarp's and
        FreeBSD's are the same without the demote count)."""
        repeat = self._repeat
        if repeat is not None and advert is repeat[0] and source == repeat[1]:
            if self._replay is not None and not self._replay_ok(advert, source, now):
                return []
            self.counters.adverts_received += 1
            self._deadline = now + self._master_down
            return []
        self._repeat = None
        if not self._accept(advert, source, now):
            return []
        advbase = advert.advbase
        advskew = advert.advskew
        if advbase == BOW_OUT_ADVBASE and advskew == BOW_OUT_ADVSKEW:
            # OpenBSD's rule below ("guaranteed to time out") catches the bow-out for
            # advbase < 86; for longer ones it is taken as what it says all the same.
            return self._become_master(
                now, _BACKUP, f"master {source} bowed out", "master_resigned"
            )
        mine = self.demote
        if advert.demote > mine:
            return self._become_master(
                now,
                _BACKUP,
                f"master {source} is demoted ({advert.demote} > {mine})",
                "preempt",
            )
        theirs = advbase * 256 + advskew
        if (
            self.config.preempt
            and advert.demote == mine
            and theirs > self.config.advbase * 256 + self.priority
        ):
            return self._become_master(
                now,
                _BACKUP,
                f"preempting slower master {source} (advbase {advbase} advskew {advskew})",
                "preempt",
            )
        interval_cs = carp_interval_cs(advbase, advskew)
        if interval_cs / 100.0 > self._master_down:
            return self._become_master(
                now,
                _BACKUP,
                f"master {source} advertises every {interval_cs / 100.0:g}s, "
                f"slower than our master-down interval",
                "preempt",
            )
        self.master_address = source
        self.master_adver_interval_cs = interval_cs
        self._deadline = now + self._master_down
        self._repeat = (advert, source)
        return []

    def _backup_timer(self, now: float, deadline: float) -> list[Action]:
        self.master_down_at = deadline
        if self.master_address is not None:
            reason = f"no advert from master {self.master_address} for the master-down interval"
        else:
            reason = "no master heard for the master-down interval"
        return self._become_master(now, _BACKUP, reason, "master_down")

    # ------------------------------------------------ handlers: MASTER

    def _master_advert(
        self, advert: CarpAdvertisement, source: IPAddress, now: float
    ) -> list[Action]:
        """OpenBSD's ``carp_proto_input_c`` in MASTER: step down for an advert at least
        as good (lower demote, then a shorter interval; a tie as ``tie_break`` says),
        else assert ourselves as ucarp does."""
        if not self._accept(advert, source, now):
            return []
        advbase = advert.advbase
        advskew = advert.advskew
        theirs = advbase * 256 + advskew
        if theirs == _BOW_OUT_RANK:
            # Another Master resigned (we were both Master). Never yield to a bow-out,
            # whatever its demote count says (OpenBSD would, for a lower one).
            self._split_brain_until = None
            return self._assert(now)
        mine = self.demote
        ours = self.config.advbase * 256 + self.priority
        better = advert.demote < mine or (advert.demote == mine and theirs < ours)
        reason = ""
        if better:
            if advert.demote < mine:
                reason = f"master {source} is less demoted ({advert.demote} < {mine})"
            else:
                reason = f"more frequent advert from {source} (advbase {advbase} advskew {advskew})"
        elif advert.demote == mine and theirs == ours:
            self._anomaly(
                "advskew_tie",
                now,
                "%s advertises our very interval (advbase %d advskew %d): give one an advskew",
                source,
                advbase,
                advskew,
            )
            tie_break = self.config.tie_break
            if tie_break == "yield":
                better, reason = True, f"equal advert from {source} (tie: yield)"
            elif _address_key(source, tie_break) < self._my_key:
                better, reason = True, f"equal advert from lower address {source}"
        if better:
            self.master_address = source
            self.master_adver_interval_cs = carp_interval_cs(advbase, advskew)
            self._split_brain_until = None
            self._deadline = now + self._master_down
            actions: list[Action] = []
            if self.config.yield_advert:
                actions.append(self._send())
            actions.append(RemoveAddresses(self._vips))
            actions.append(self._transition(_MASTER, _BACKUP, reason, now, "preempted"))
            return actions
        self.counters.lower_priority_discarded += 1
        self._split_brain(source, advert, now)
        return self._assert(now)

    def _assert(self, now: float) -> list[Action]:
        """Advertise at once and re-announce the addresses (ucarp re-announces; the
        advert makes the other Master step down now): once per interval at most."""
        if now < self._next_assert:
            return []
        self._next_assert = now + self._interval
        return [self._send(), Announce(self._vips)]

    def _master_timer(self, now: float, deadline: float) -> list[Action]:
        """Send, and keep the cadence from the previous deadline (after a stall,
        restart it from now rather than sending a burst)."""
        interval = self._interval
        nxt = deadline + interval
        self._deadline = nxt if nxt > now else now + interval
        until = self._split_brain_until
        if until is not None and now >= until:
            self._split_brain_until = None
            logger.info("%ssplit brain over: no other Master heard lately", self._log_prefix)
        return [self._send()]

    def heard(self, data: bytes, info: PacketInfo, now: float) -> float | None:
        """The VRRP core's :meth:`~vrrpy.core.vrrp.VirtualRouter.heard`: always None here
        (call :meth:`receive_packet`). A CARP Backup checks each advert's counter
        and HMAC again, and CARP deployments are a few hosts, not hundreds."""
        return None

    def _steady_advert(self) -> SendAdvertisement:
        return self._send()

    # ------------------------------------------------ handlers: FAULT

    def _fault_recover(self, reason: str, now: float) -> list[Action]:
        return self._enter_backup(now, _FAULT, f"fault cleared: {reason}", "fault_cleared")

    # ---------------------------------------------------------- receive checks

    def _accept(self, advert: CarpAdvertisement, source: IPAddress, now: float) -> bool:
        """The receive checks, the HMAC and (opt-in) the counter; counts what passes.

        The checks and the HMAC depend only on the advert and its source (and
        the configuration), so a repeat of the same advert object from the
        same source passed them already; the counter check runs every time.
        """
        passed = self._passed
        if passed is None or advert is not passed[0] or source != passed[1]:
            if advert.vhid != self.config.vhid:
                self._drop("vhid_mismatch", now, "vhid %d from %s", advert.vhid, source)
                return False
            if (
                advert.version != CARP_VERSION
                or advert.type != CARP_TYPE_ADVERTISEMENT
                or advert.authlen != CARP_AUTHLEN
            ):
                self._drop("carp_malformed", now, "version/type/authlen from %s", source)
                return False
            if type(source) is not self._addr_type:
                self._drop("family_mismatch", now, "%s", source)
                return False
            if source == self._primary:
                self._drop("own_advert", now, "%s", source)
                return False
            if self._peers and source not in self._peers:
                self._drop("not_a_peer", now, "%s", source)
                return False
            try:
                verify_carp(advert, self._auth)
            except CarpBadHMAC as exc:
                self._drop(exc.reason, now, "from %s: %s", source, exc.detail)
                return False
            self._passed = (advert, source)
        if self._replay is not None and not self._replay_ok(advert, source, now):
            return False
        counters = self.counters
        counters.adverts_received += 1
        if advert.advbase == BOW_OUT_ADVBASE and advert.advskew == BOW_OUT_ADVSKEW:
            counters.priority_zero_received += 1
        return True

    def _replay_ok(self, advert: CarpAdvertisement, source: IPAddress, now: float) -> bool:
        assert self._replay is not None
        try:
            self._replay.check(source, advert.counter)
        except CarpReplay as exc:
            self._drop(exc.reason, now, "from %s: %s", source, exc.detail)
            return False
        return True

    def _split_brain(self, source: IPAddress, advert: CarpAdvertisement, now: float) -> None:
        until = self._split_brain_until
        if until is None or now >= until:
            self.counters.split_brains += 1
            logger.warning(
                "%ssplit brain: %s also acts as Master (advbase %d advskew %d demote %d; "
                "ours advbase %d advskew %d demote %d): asserting ourselves",
                self._log_prefix,
                source,
                advert.advbase,
                advert.advskew,
                advert.demote,
                self.config.advbase,
                self.priority,
                self.demote,
            )
        heard = carp_interval_cs(advert.advbase, advert.advskew) / 100.0
        self._split_brain_until = now + max(self._master_down, self.config.dead_ratio * heard)

    # ---------------------------------------------------------------- helpers

    def _reprice(self) -> None:
        """Recompute what follows from the advskew and the demote count."""
        advskew = self.advskew
        if self.config.demote_advskew and self.demote:
            advskew = max(advskew, min(advskew + self.demote, MAX_DEMOTED_ADVSKEW))
        self.priority = advskew
        cfg = self.config
        self._interval_cs = carp_interval_cs(cfg.advbase, advskew)
        self._interval = self._interval_cs / 100.0
        self._master_down = carp_master_down(cfg.advbase, advskew, cfg.dead_ratio)
        if self.state is _MASTER:
            self.master_adver_interval_cs = self._interval_cs
        self._repeat = None

    def _sign(self, shape: tuple[int, int, int], counter: int) -> CarpAdvertisement:
        advbase, advskew, demote = shape
        return CarpAdvertisement(
            vhid=self.config.vhid,
            advskew=advskew,
            advbase=advbase,
            counter=counter,
            hmac=self._auth.sign(counter),
            demote=demote,
        )

    def _send(self, bow_out: bool = False) -> SendAdvertisement:
        counters = self.counters
        counters.adverts_sent += 1
        if bow_out:
            counters.priority_zero_sent += 1
            shape = (BOW_OUT_ADVBASE, BOW_OUT_ADVSKEW, self.demote)
        else:
            shape = (self.config.advbase, self.priority, self.demote)
        if self._counting:
            counter = self._counter
            self._counter = 0 if counter == COUNTER_MAX else counter + 1
            return SendAdvertisement(self._sign(shape, counter))
        action = self._sends.get(shape)
        if action is None:
            # Actions are values: a Master's every advert is the same object, so the
            # runtime encodes it once.
            action = self._sends[shape] = SendAdvertisement(self.advertisement(bow_out))
        return action

    def _become_master(self, now: float, old: State, reason: str, code: str) -> list[Action]:
        """OpenBSD's ``carp_master_down``: advertise, then the addresses, then announce
        them (the order of the VRRP core's ``_become_master``)."""
        self._deadline = now + self._interval
        self.master_address = self._primary
        self.master_adver_interval_cs = self._interval_cs
        return [
            self._send(),
            AddAddresses(self._vips),
            Announce(self._vips),
            self._transition(old, _MASTER, reason, now, code),
        ]

    def _enter_backup(self, now: float, old: State, reason: str, code: str) -> list[Action]:
        """Backup with no Master known yet: a fresh master-down timer."""
        self._forget_master()
        self.master_adver_interval_cs = self._interval_cs
        self._deadline = now + self._master_down
        return [self._transition(old, _BACKUP, reason, now, code)]

    def _forget_master(self) -> None:
        self._deadline = None
        self.master_address = None

    def _resignation(self) -> SendAdvertisement:
        return self._send(bow_out=True)

    def __repr__(self) -> str:
        cfg = self.config
        return (
            f"<CarpRouter {cfg.name or cfg.vhid} IPv{cfg.family} {self.state.value} "
            f"advbase={cfg.advbase} advskew={self.priority} demote={self.demote}>"
        )


# ------------------------------------------------------------ the table


_C = CarpRouter
_IGNORE = _C._ignore

TRANSITIONS: Mapping[tuple[State, Event], Rule] = {
    # ----------------------------------------------------------------- INIT
    (_INIT, Event.STARTUP): rule(
        _C._startup, "carp_setrun: INIT -> BACKUP; a fault held -> FAULT", _BACKUP, _FAULT
    ),
    (_INIT, Event.SHUTDOWN): rule(_IGNORE, "not running", _INIT),
    (_INIT, Event.ADVERT): rule(_C._drop_not_running, "INIT: counted, dropped", _INIT),
    (_INIT, Event.TIMER): rule(_IGNORE, "no timer runs", _INIT),
    (_INIT, Event.FAULT): rule(_IGNORE, "remembered: startup goes to FAULT", _INIT),
    (_INIT, Event.RECOVER): rule(_IGNORE, "forgotten: startup goes as usual", _INIT),
    (_INIT, Event.FORCE_MASTER): rule(_IGNORE, "not running", _INIT),
    (_INIT, Event.FORCE_BACKUP): rule(_IGNORE, "not running", _INIT),
    (_INIT, Event.HOLD_BACKUP): rule(_IGNORE, "not running", _INIT),
    # --------------------------------------------------------------- BACKUP
    (_BACKUP, Event.STARTUP): rule(_IGNORE, "running already", _BACKUP),
    (_BACKUP, Event.SHUTDOWN): rule(_C._backup_shutdown, "stop the master-down timer", _INIT),
    (_BACKUP, Event.ADVERT): rule(
        _C._backup_advert,
        "carp_proto_input_c BACKUP: bow-out, higher demote, preempt a slower master, "
        "slower than master-down -> MASTER now; else restart the timer",
        _BACKUP,
        _MASTER,
    ),
    (_BACKUP, Event.TIMER): rule(_C._backup_timer, "carp_master_down: BACKUP -> MASTER", _MASTER),
    (_BACKUP, Event.FAULT): rule(_C._backup_fault, "stop listening", _FAULT),
    (_BACKUP, Event.RECOVER): rule(_IGNORE, "cannot happen: a Backup holds no fault", _BACKUP),
    (_BACKUP, Event.FORCE_MASTER): rule(
        _C._force_master, "sync group; OpenBSD ifconfig state master", _MASTER
    ),
    (_BACKUP, Event.FORCE_BACKUP): rule(_IGNORE, "Backup already", _BACKUP),
    (_BACKUP, Event.HOLD_BACKUP): rule(_C._hold_backup, "sync group: wait again", _BACKUP),
    # --------------------------------------------------------------- MASTER
    (_MASTER, Event.STARTUP): rule(_IGNORE, "running already", _MASTER),
    (_MASTER, Event.SHUTDOWN): rule(
        _C._master_shutdown, "OpenBSD SIOCSIFFLAGS down: bow out, withdraw", _INIT
    ),
    (_MASTER, Event.ADVERT): rule(
        _C._master_advert,
        "carp_proto_input_c MASTER: better or tie lost -> BACKUP; weaker -> assert (ucarp)",
        _MASTER,
        _BACKUP,
    ),
    (_MASTER, Event.TIMER): rule(_C._master_timer, "carp_send_ad: advertise", _MASTER),
    (_MASTER, Event.FAULT): rule(
        _C._master_fault, "as the VRRP core: bow out, withdraw, FAULT", _FAULT
    ),
    (_MASTER, Event.RECOVER): rule(_IGNORE, "cannot happen: a Master holds no fault", _MASTER),
    (_MASTER, Event.FORCE_MASTER): rule(_IGNORE, "Master already", _MASTER),
    (_MASTER, Event.FORCE_BACKUP): rule(
        _C._force_backup, "sync group; OpenBSD ifconfig state backup: no bow-out", _BACKUP
    ),
    (_MASTER, Event.HOLD_BACKUP): rule(_IGNORE, "Master already", _MASTER),
    # ---------------------------------------------------------------- FAULT
    (_FAULT, Event.STARTUP): rule(_IGNORE, "running already", _FAULT),
    (_FAULT, Event.SHUTDOWN): rule(_C._fault_shutdown, "nothing to resign from", _INIT),
    (_FAULT, Event.ADVERT): rule(_C._drop_fault, "counted (fault), dropped", _FAULT),
    (_FAULT, Event.TIMER): rule(_IGNORE, "no timer runs", _FAULT),
    (_FAULT, Event.FAULT): rule(_IGNORE, "cannot happen: FAULT holds a fault", _FAULT),
    (_FAULT, Event.RECOVER): rule(
        _C._fault_recover, "the last fault cleared: BACKUP with a fresh timer", _BACKUP
    ),
    (_FAULT, Event.FORCE_MASTER): rule(_IGNORE, "the fault wins", _FAULT),
    (_FAULT, Event.FORCE_BACKUP): rule(_IGNORE, "the fault wins", _FAULT),
    (_FAULT, Event.HOLD_BACKUP): rule(_IGNORE, "no timer runs", _FAULT),
}
"""CARP's state machine: what each event does in each state, and where it comes from
(the OpenBSD function names; ucarp's and FreeBSD's have the same names)."""

bind_table(CarpRouter, TRANSITIONS)
