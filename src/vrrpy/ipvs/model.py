"""IPVS virtual services and real servers as plain values (no kernel, no I/O).

One type serves three roles, so that the pieces compare what they mean:

* what a user declares (:class:`VirtualService` with its real servers and its
  pool settings: ``sorry_server``, ``inhibit_on_failure``, ``alpha``...);
* what the kernel should hold (the *desired table*, :mod:`vrrpy.ipvs.pool`'s
  output: the same type, whose ``real_servers`` are exactly the destinations to
  install, at the weights to install);
* what the kernel holds (:mod:`vrrpy.ipvs.netlink`'s dump, decoded into the
  same type).

:mod:`vrrpy.ipvs.reconcile` compares the last two through
:meth:`VirtualService.settings` and :meth:`RealServer.settings`: the kernel's
attributes only, normalised as the kernel reports them (the pool's own
settings are not the kernel's business).

A virtual service is identified as the kernel identifies it
(:class:`ServiceKey`): by protocol, address and port, or by firewall mark and
address family. A real server within it is identified by address and port.

The kernel's words (``ipvsadm -Ln``) and keepalived's are used where they
exist: ``scheduler`` (``-s``, ``lvs_sched``), ``persistence_timeout`` (``-p``),
``persistence_granularity`` (``-M``), ``forwarding`` ``nat``/``dr``/``tun``
(``-m``/``-g``/``-i``, ``lvs_method``), ``upper_threshold`` /
``lower_threshold`` (``-x``/``-y``, ``uthreshold``/``lthreshold``).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv6Address

__all__ = [
    "SCHEDULERS",
    "SCHEDULER_FLAGS",
    "Address",
    "DestKey",
    "Forwarding",
    "Protocol",
    "RealServer",
    "ServiceKey",
    "Table",
    "TunnelChecksum",
    "TunnelType",
    "VirtualService",
    "check_declared",
]

Address = IPv4Address | IPv6Address

SCHEDULERS = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
)
"""The schedulers Linux ships (``ip_vs_NAME.ko``); which of them a kernel has is its
own business (Debian's 6.1 user-mode-linux kernel has all but ``twos``). The kernel
loads a missing one on demand where ``modprobe`` works; where it does not, adding a
service with it fails with ENOENT."""

SCHEDULER_FLAGS: Mapping[str, int] = {
    "flag-1": 0x0008,
    "flag-2": 0x0010,
    "flag-3": 0x0020,
    "sh-fallback": 0x0008,
    "sh-port": 0x0010,
    "mh-fallback": 0x0008,
    "mh-port": 0x0010,
}
"""``ipvsadm -b`` / keepalived's words for the kernel's ``IP_VS_SVC_F_SCHED1..3``: the
same three bits, named after what ``sh`` and ``mh`` do with them."""

SVC_F_PERSISTENT = 0x0001
SVC_F_HASHED = 0x0002
"""Set by the kernel on every service it has hashed: reported, never ours to set."""
SVC_F_ONEPACKET = 0x0004
SVC_F_SCHED_MASK = 0x0038
IPVS_SCHED_NAME_MAX = 15
"""``IP_VS_SCHEDNAME_MAXLEN`` is 16 with the NUL."""


class Protocol(enum.Enum):
    """A virtual service's transport protocol (the kernel's ``IPVS_SVC_ATTR_PROTOCOL``)."""

    TCP = "tcp"
    UDP = "udp"
    SCTP = "sctp"

    @property
    def number(self) -> int:
        return _PROTOCOL_NUMBERS[self]

    @classmethod
    def from_number(cls, number: int) -> Protocol:
        for protocol, value in _PROTOCOL_NUMBERS.items():
            if value == number:
                return protocol
        raise ValueError(f"IP protocol {number} is not one IPVS balances (tcp, udp, sctp)")


_PROTOCOL_NUMBERS = {Protocol.TCP: 6, Protocol.UDP: 17, Protocol.SCTP: 132}


class Forwarding(enum.Enum):
    """How packets reach a real server (``IP_VS_CONN_F_*``; ``ipvsadm -m / -g / -i``).

    ``nat`` rewrites the destination (replies must come back through the
    director); ``dr`` (direct routing) rewrites only the MAC address (the real
    server holds the virtual address, on the same link); ``tun`` encapsulates
    (IPIP, GUE or GRE). ``local`` is what the kernel reports for a destination
    that is one of the director's own addresses; it is read, not chosen.
    """

    NAT = "nat"
    LOCAL = "local"
    TUN = "tun"
    DR = "dr"

    @property
    def code(self) -> int:
        return _FORWARDING_CODES[self]

    @classmethod
    def from_code(cls, code: int) -> Forwarding:
        for method, value in _FORWARDING_CODES.items():
            if value == code:
                return method
        raise ValueError(f"unknown IPVS forwarding method {code}")


_FORWARDING_CODES = {Forwarding.NAT: 0, Forwarding.LOCAL: 1, Forwarding.TUN: 2, Forwarding.DR: 3}


class TunnelType(enum.Enum):
    """The encapsulation of a ``tun`` real server (``IP_VS_CONN_F_TUNNEL_TYPE_*``, Linux 5.2+)."""

    IPIP = "ipip"
    GUE = "gue"
    GRE = "gre"

    @property
    def code(self) -> int:
        return list(TunnelType).index(self)


class TunnelChecksum(enum.Enum):
    """Checksums in a GUE or GRE tunnel (``IP_VS_TUNNEL_ENCAP_FLAG_*``, Linux 5.3+)."""

    NOCSUM = "nocsum"
    CSUM = "csum"
    REMCSUM = "remcsum"

    @property
    def code(self) -> int:
        return {"nocsum": 0, "csum": 1, "remcsum": 2}[self.value]

    @classmethod
    def from_code(cls, code: int) -> TunnelChecksum:
        if code & 2:
            return cls.REMCSUM
        return cls.CSUM if code & 1 else cls.NOCSUM


def _address(value: object) -> Address:
    if isinstance(value, (IPv4Address, IPv6Address)):
        return value
    if isinstance(value, (str, bytes, int)):
        return ipaddress.ip_address(value)
    raise TypeError(f"not an IP address: {value!r}")


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{what} must be an integer in {low}..{high}, not {value!r}")


DestKey = tuple[Address, int]
"""A real server within a virtual service: its address and port."""


@dataclass(frozen=True)
class ServiceKey:
    """A virtual service as the kernel identifies it.

    ``protocol``, ``address`` and ``port`` for an address service; ``fwmark``
    (non-zero) and ``family`` for a firewall-mark service (``protocol`` and
    ``address`` are then None and ``port`` 0). Build one from a
    :class:`VirtualService` (``vs.key``), or with :meth:`of`.
    """

    family: int
    protocol: Protocol | None
    address: Address | None
    port: int
    fwmark: int = 0

    @classmethod
    def of(cls, protocol: str | Protocol, address: str | Address, port: int) -> ServiceKey:
        """The key of an address service: ``ServiceKey.of("tcp", "192.0.2.10", 80)``."""
        ip = _address(address)
        return cls(ip.version, Protocol(protocol), ip, port)

    @classmethod
    def mark(cls, fwmark: int, family: int = 4) -> ServiceKey:
        """The key of a firewall-mark service."""
        return cls(family, None, None, 0, fwmark)

    def sort_key(self) -> tuple[int, int, int, bytes, int]:
        """A total order (operations come out in it): fwmark services first, then by
        family, protocol number, address, port."""
        protocol = self.protocol.number if self.protocol is not None else 0
        packed = self.address.packed if self.address is not None else b""
        return (self.family, self.fwmark, protocol, packed, self.port)

    def __str__(self) -> str:
        if self.fwmark:
            return f"FWM {self.fwmark} IPv{self.family}"
        assert self.protocol is not None and self.address is not None
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{self.protocol.name} {host}:{self.port}"


@dataclass(frozen=True)
class RealServer:
    """One destination of a virtual service (``ipvsadm -a``; keepalived's ``real_server``).

    ``weight`` 0 keeps the server in the table but sends it no new connection
    (how ``inhibit_on_failure`` quiesces a failed server: its established
    connections live on). ``upper_threshold`` (``-x``) stops new connections
    to the server while it has that many; ``lower_threshold`` (``-y``) lets
    them in again below it; 0 is no limit.

    ``tunnel_type`` / ``tunnel_port`` / ``tunnel_checksum`` apply to ``tun``
    only (``tunnel_port`` is GUE's destination port); they are normalised away
    for any other method.

    For ``dr`` and ``tun`` the port cannot be changed on the way (the packet is
    not rewritten): declare the service's own port (:func:`check_declared`
    refuses anything else). A firewall-mark service's real servers may say
    port 0: the packet's own port.
    """

    address: Address
    port: int = 0
    forwarding: Forwarding = Forwarding.NAT
    weight: int = 1
    upper_threshold: int = 0
    lower_threshold: int = 0
    tunnel_type: TunnelType = TunnelType.IPIP
    tunnel_port: int = 0
    tunnel_checksum: TunnelChecksum = TunnelChecksum.NOCSUM

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", _address(self.address))
        object.__setattr__(self, "forwarding", Forwarding(self.forwarding))
        object.__setattr__(self, "tunnel_type", TunnelType(self.tunnel_type))
        object.__setattr__(self, "tunnel_checksum", TunnelChecksum(self.tunnel_checksum))
        _check_range("real server port", self.port, 0, 65535)
        _check_range("weight", self.weight, 0, 2**31 - 1)
        _check_range("upper_threshold", self.upper_threshold, 0, 2**32 - 1)
        _check_range("lower_threshold", self.lower_threshold, 0, 2**32 - 1)
        _check_range("tunnel_port", self.tunnel_port, 0, 65535)
        if self.upper_threshold and self.lower_threshold > self.upper_threshold:
            # The kernel refuses it too (EINVAL): say which server, here.
            raise ValueError(
                f"real server {self.address}: lower_threshold {self.lower_threshold} above "
                f"upper_threshold {self.upper_threshold}"
            )
        gue = self.forwarding is Forwarding.TUN and self.tunnel_type is TunnelType.GUE
        if gue and not self.tunnel_port:
            raise ValueError(f"real server {self.address}: a GUE tunnel needs tunnel_port")

    @property
    def key(self) -> DestKey:
        return (self.address, self.port)

    @property
    def family(self) -> int:
        return self.address.version

    def settings(self) -> tuple[object, ...]:
        """What the kernel holds for this destination, normalised: two servers with the
        same key and the same settings need no change."""
        tunnel: tuple[object, ...] = ()
        if self.forwarding is Forwarding.TUN:
            port = self.tunnel_port if self.tunnel_type is TunnelType.GUE else 0
            tunnel = (self.tunnel_type, port, self.tunnel_checksum)
        return (self.forwarding, self.weight, self.upper_threshold, self.lower_threshold, tunnel)

    def with_weight(self, weight: int) -> RealServer:
        return replace(self, weight=weight)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.family == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class VirtualService:
    """A virtual service, its real servers, and how the pool treats them.

    The kernel's side (``ipvsadm -A``):

    * identity: ``protocol`` (``tcp``, ``udp``, ``sctp``), ``address`` and
      ``port``; or ``fwmark`` (non-zero) with ``family`` (4 or 6; the
      family is the address's otherwise);
    * ``scheduler``: one of :data:`SCHEDULERS` (``wlc`` by default, as
      ``ipvsadm``); ``scheduler_flags``: names from :data:`SCHEDULER_FLAGS`
      (``sh-port``, ``mh-fallback``...); ``one_packet``: one-packet
      scheduling (``-o``, UDP);
    * ``persistence_timeout``: seconds a client sticks to its real server (0:
      not persistent); ``persistence_granularity``: the prefix length of the
      client addresses that stick together (``-M``; default the whole
      address: 32 or 128); ``persistence_engine``: ``sip``.

    The pool's side (:mod:`vrrpy.ipvs.pool`; keepalived's words and defaults):
    ``real_servers``; ``sorry_server``, installed while the quorum is lost
    (no healthy real server, by default); ``sorry_server_inhibit``, kept at
    weight 0 when not needed; ``inhibit_on_failure``, a failed real server
    kept at weight 0 instead of removed; ``alpha``, real servers count as
    failed until their first check succeeds; ``omega``, withdrawing the pool
    reports every live server down; ``quorum`` and ``hysteresis``, the live
    weight needed (and its dampener).
    """

    address: Address | None = None
    port: int = 0
    protocol: Protocol = Protocol.TCP
    fwmark: int = 0
    family: int = 0
    scheduler: str = "wlc"
    scheduler_flags: frozenset[str] = frozenset()
    one_packet: bool = False
    persistence_timeout: int = 0
    persistence_granularity: int | None = None
    persistence_engine: str = ""
    real_servers: tuple[RealServer, ...] = ()
    sorry_server: RealServer | None = None
    sorry_server_inhibit: bool = False
    inhibit_on_failure: bool = False
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    _key: ServiceKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "protocol", Protocol(self.protocol))
        set_(self, "real_servers", tuple(self.real_servers))
        set_(self, "scheduler_flags", frozenset(self.scheduler_flags))
        _check_range("fwmark", self.fwmark, 0, 2**32 - 1)
        if self.fwmark:
            if self.address is not None:
                raise ValueError("a virtual service has an address or a fwmark, not both")
            family = self.family or 4
            if family not in (4, 6):
                raise ValueError(f"family must be 4 or 6, not {self.family!r}")
            set_(self, "family", family)
            set_(self, "port", 0)
            key = ServiceKey(family, None, None, 0, self.fwmark)
        else:
            if self.address is None:
                raise ValueError("a virtual service needs an address (or a fwmark)")
            address = _address(self.address)
            set_(self, "address", address)
            if self.family and self.family != address.version:
                raise ValueError(f"address {address} is not IPv{self.family}")
            set_(self, "family", address.version)
            _check_range("port", self.port, 0, 65535)
            key = ServiceKey(address.version, self.protocol, address, self.port)
        set_(self, "_key", key)
        if not re.fullmatch(rf"[a-z0-9_]{{1,{IPVS_SCHED_NAME_MAX}}}", self.scheduler):
            raise ValueError(f"{key}: {self.scheduler!r} is not a scheduler name")
        unknown = self.scheduler_flags - SCHEDULER_FLAGS.keys()
        if unknown:
            known = sorted(SCHEDULER_FLAGS)
            raise ValueError(f"{key}: unknown scheduler flags {sorted(unknown)}; known: {known}")
        _check_range("persistence_timeout", self.persistence_timeout, 0, 2**32 - 1)
        full = 32 if self.family == 4 else 128
        granularity = full if self.persistence_granularity is None else self.persistence_granularity
        _check_range("persistence_granularity", granularity, 1 if self.family == 6 else 0, full)
        set_(self, "persistence_granularity", granularity)
        _check_range("quorum", self.quorum, 1, 2**63)
        _check_range("hysteresis", self.hysteresis, 0, 2**63)

    @property
    def key(self) -> ServiceKey:
        return self._key

    @property
    def flags(self) -> int:
        """The kernel's service flags (``IP_VS_SVC_F_*``) this service asks for."""
        bits = SVC_F_PERSISTENT if self.persistence_timeout else 0
        if self.one_packet:
            bits |= SVC_F_ONEPACKET
        for name in self.scheduler_flags:
            bits |= SCHEDULER_FLAGS[name]
        return bits

    @property
    def netmask(self) -> int:
        """The persistence granularity as the kernel takes it: a mask for IPv4 (host
        order), a prefix length for IPv6."""
        assert self.persistence_granularity is not None
        if self.family == 6:
            return self.persistence_granularity
        return (0xFFFFFFFF << (32 - self.persistence_granularity)) & 0xFFFFFFFF

    def settings(self) -> tuple[object, ...]:
        """What the kernel holds for this service besides its identity, normalised:
        persistence settings count only when the service is persistent."""
        if self.persistence_timeout:
            persistence: tuple[object, ...] = (
                self.persistence_timeout,
                self.persistence_granularity,
                self.persistence_engine,
            )
        else:
            persistence = ()
        return (self.scheduler, self.flags & ~SVC_F_PERSISTENT, persistence)

    def dests(self) -> dict[DestKey, RealServer]:
        """The real servers by key."""
        return {server.key: server for server in self.real_servers}

    def with_real_servers(self, servers: Iterable[RealServer]) -> VirtualService:
        """The same service with these destinations (and no pool settings: the
        desired table's form)."""
        return replace(
            self,
            real_servers=tuple(servers),
            sorry_server=None,
            sorry_server_inhibit=False,
            inhibit_on_failure=False,
            alpha=False,
            omega=False,
        )

    def __str__(self) -> str:
        return str(self.key)


Table = Mapping[ServiceKey, VirtualService]
"""A kernel table, or the part of it we want: each service with exactly its destinations."""


def check_declared(services: Iterable[VirtualService]) -> dict[ServiceKey, VirtualService]:
    """The declared services by key, after the checks the kernel would make later or
    not at all (each error names the service): no service declared twice, no real
    server twice in a service, the sorry server not one of the real servers, and
    ``dr`` / ``tun`` real servers on the service's own port (the kernel accepts
    another port and then ignores it: connections would go to the service's
    port, not the one declared)."""
    out: dict[ServiceKey, VirtualService] = {}
    for vs in services:
        if vs.key in out:
            raise ValueError(f"virtual service {vs.key} declared twice")
        seen: set[DestKey] = set()
        for server in vs.real_servers:
            if server.key in seen:
                raise ValueError(f"{vs.key}: real server {server} declared twice")
            seen.add(server.key)
        servers = list(vs.real_servers)
        if vs.sorry_server is not None:
            if vs.sorry_server.key in seen:
                raise ValueError(f"{vs.key}: sorry server {vs.sorry_server} is also a real server")
            servers.append(vs.sorry_server)
        for server in servers:
            if vs.fwmark or server.forwarding not in (Forwarding.DR, Forwarding.TUN):
                continue
            if server.port != vs.port:
                raise ValueError(
                    f"{vs.key}: real server {server} uses {server.forwarding.value}, which "
                    f"cannot change the port: declare port {vs.port}"
                )
        out[vs.key] = vs
    return out
