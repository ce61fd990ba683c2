"""VRRP advertisements on the wire: VRRPv3 (RFC 9568 section 5) and VRRPv2 (RFC 3768 section 5).

The codec is pure: bytes plus the IP-layer facts a receiver must check
(:class:`PacketInfo`) in, a frozen :class:`Advertisement` out, or one of the
:mod:`vrrpy.codec.errors` classes raised. Nothing else can escape
:func:`decode_vrrp`, whatever the bytes (``tests/test_codec_fuzz.py`` proves it
with hypothesis).

Wire layout shared by both versions (8 fixed bytes, then the addresses)::

    0                   1                   2                   3
    |Version| Type  | Virtual Rtr ID|   Priority    | Count IPvX Addr|
    v3: |(rsvd)|     Max Adver Int (12 bits, cs)  |       Checksum          |
    v2: |   Auth Type   | Adver Int (s) |          Checksum             |
    IPvX Address(es) ...
    v2 only: Authentication Data (8 bytes)

Checksums (RFC 9568 5.2.8, RFC 3768 5.3.8):

* VRRPv3 over IPv6: over the IPv6 pseudo-header (RFC 8200 8.1) and the message.
* VRRPv3 over IPv4: RFC 5798 was ambiguous; RFC 9568 (5.2.8, and 1.1 item 4)
  settles it as the VRRP message alone, without a pseudo-header. But what is
  deployed reads RFC 5798 the other way: keepalived (2.2.7 in Debian 12 always;
  later versions by default, ``v3_checksum_as_v2`` turning it off), FRR by
  default, and scapy's and Wireshark's dissectors all put the IPv4
  pseudo-header in. We send the pseudo-header form unless told otherwise
  (interoperability with what runs today), send the RFC 9568 form on request,
  accept either, and record which one matched in
  :attr:`Advertisement.checksum_form` so the core can count them.
* VRRPv2: over the VRRP message alone, authentication data included.
"""

from __future__ import annotations

import enum
import struct
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple, TypeAlias

from vrrpy.codec.checksum import checksum_ok, internet_checksum, pseudo_header_sum
from vrrpy.codec.errors import (
    BadAddressCount,
    BadChecksum,
    BadInterval,
    BadTTL,
    BadType,
    BadVersion,
    BadVRID,
    FamilyMismatch,
    SourceNotLinkLocal,
    Truncated,
)

IPPROTO_VRRP = 112
"""IP protocol number of VRRP (and of CARP, which shares it)."""

VRRP_MULTICAST_V4 = IPv4Address("224.0.0.18")
VRRP_MULTICAST_V6 = IPv6Address("ff02::12")
VRRP_TTL = 255
TYPE_ADVERTISEMENT = 1
AUTH_NONE = 0
AUTH_SIMPLE = 1
V2_AUTH_LEN = 8
V3_MAX_INTERVAL_CS = 0x0FFF  # 12 bits of centiseconds: 40.95 s

IPAddress: TypeAlias = IPv4Address | IPv6Address

_HEADER = struct.Struct("!BBBBHH")
_new_advert = tuple.__new__  # builds an Advertisement without the NamedTuple __new__ overhead


class ChecksumForm(enum.Enum):
    """Which bytes an IPv4 VRRPv3 checksum covers."""

    PSEUDO_HEADER = "pseudo-header"
    """The IPv4 pseudo-header and the VRRP message: keepalived's and FRR's default (ours too)."""
    VRRP_ONLY = "vrrp-only"
    """The VRRP message alone: RFC 9568 5.2.8 for IPv4 (keepalived's ``v3_checksum_as_v2``)."""


class PacketInfo(NamedTuple):
    """What the IP layer tells a receiver about a VRRP packet.

    ``ttl`` is the IPv4 TTL or the IPv6 hop limit. ``destination`` is needed for
    the pseudo-header checksum (224.0.0.18 / ff02::12, or our own address for
    unicast peers).
    """

    source: IPAddress
    destination: IPAddress
    ttl: int


class Advertisement(NamedTuple):
    """One VRRP advertisement, version 2 or 3, independent of its encoding.

    ``interval_cs`` is the (Max) Advertisement Interval in centiseconds for both
    versions, so timers never need to know which version they came from: a
    VRRPv2 interval of 1 s is 100 here. (A NamedTuple rather than a frozen
    dataclass: it is built once per received packet, and tuples build fastest.)
    """

    version: int
    vrid: int
    priority: int
    interval_cs: int
    addresses: tuple[IPAddress, ...]
    auth_type: int = AUTH_NONE
    auth_data: bytes = b""
    checksum_form: ChecksumForm = ChecksumForm.PSEUDO_HEADER

    @property
    def interval(self) -> float:
        """Advertisement interval in seconds."""
        return self.interval_cs / 100.0

    @property
    def family(self) -> int:
        """4 or 6, from the addresses carried."""
        return self.addresses[0].version


def _check_for_encode(
    advert: Advertisement, source: IPAddress, destination: IPAddress, family: int
) -> None:
    """Refuse to build a packet a conforming receiver would drop (a caller error)."""
    if advert.version not in (2, 3):
        raise ValueError(f"version must be 2 or 3, not {advert.version}")
    if not 1 <= advert.vrid <= 255:
        raise ValueError(f"vrid must be 1..255, not {advert.vrid}")
    if not 0 <= advert.priority <= 255:
        raise ValueError(f"priority must be 0..255, not {advert.priority}")
    if not 1 <= len(advert.addresses) <= 255:
        raise ValueError("an advertisement carries 1..255 addresses")
    if family != source.version:
        raise ValueError("addresses must be of the same family as the source address")
    if destination.version != source.version:
        raise ValueError("source and destination must be of the same family")
    if source.version == 6 and not source.is_link_local:
        raise ValueError("IPv6 adverts come from a link-local address (RFC 9568 5.1.2.1)")
    if advert.version == 3:
        if not 1 <= advert.interval_cs <= V3_MAX_INTERVAL_CS:
            raise ValueError(f"v3 interval must be 1..4095 cs, not {advert.interval_cs}")
    else:
        if source.version != 4:
            raise ValueError("VRRPv2 is IPv4 only")
        if advert.interval_cs % 100 or not 1 <= advert.interval_cs // 100 <= 255:
            raise ValueError("v2 interval must be a whole number of seconds, 1..255")
        if len(advert.auth_data) > V2_AUTH_LEN or not 0 <= advert.auth_type <= 255:
            raise ValueError("v2 authentication data is at most 8 bytes")


def encode_vrrp(
    advert: Advertisement,
    source: IPAddress,
    destination: IPAddress,
    checksum_form: ChecksumForm | None = None,
) -> bytes:
    """Build the VRRP message (the IP payload) for ``advert`` from ``source`` to ``destination``.

    ``checksum_form`` only matters for VRRPv3 over IPv4; ``None`` means the
    advert's own :attr:`Advertisement.checksum_form` (pseudo-header by default).
    """
    family, body = _address_body(advert.addresses)
    _check_for_encode(advert, source, destination, family)
    count = len(advert.addresses)
    vrid = advert.vrid
    priority = advert.priority
    if advert.version == 3:
        vt, word, tail = 0x31, advert.interval_cs, body
        form = checksum_form or advert.checksum_form
        if family == 6 or form is ChecksumForm.PSEUDO_HEADER:
            initial = pseudo_header_sum(int(source), int(destination), IPPROTO_VRRP, 8 + len(tail))
        else:
            initial = 0
    else:
        vt, word = 0x21, (advert.auth_type << 8) | (advert.interval_cs // 100)
        tail = body + advert.auth_data.ljust(V2_AUTH_LEN, b"\x00")
        initial = 0
    checksum = internet_checksum(_HEADER.pack(vt, vrid, priority, count, word, 0) + tail, initial)
    return _HEADER.pack(vt, vrid, priority, count, word, checksum) + tail


def decode_vrrp(data: bytes, info: PacketInfo) -> Advertisement:
    """Decode and validate one VRRP message (the IP payload).

    Checks everything RFC 9568 7.1 and RFC 3768 7.1 ask of a receiver that does
    not depend on local configuration: TTL / hop limit 255, version, type, VRID,
    address count against length, family against IP version, IPv6 link-local
    source, interval, checksum. Configuration-dependent checks (is this VRID
    ours, does the v2 interval or password match, are we the address owner)
    belong to :class:`vrrpy.core.VirtualRouter`.

    Raises only subclasses of :class:`vrrpy.codec.errors.VRRPDecodeError`.
    """
    if type(data) is not bytes:
        data = bytes(data)  # bytearray / memoryview from a socket API: hashable, appendable
    source, destination, ttl = info
    if ttl != VRRP_TTL:
        raise BadTTL(f"ttl {info.ttl}")
    size = len(data)
    if size < 8:
        raise Truncated(f"{size} bytes")
    vt, vrid, priority, count, word, _ = _HEADER.unpack_from(data)
    version = vt >> 4
    if version != 3 and version != 2:
        raise BadVersion(f"version {version}")
    if vt & 0x0F != TYPE_ADVERTISEMENT:
        raise BadType(f"type {vt & 0x0F}")
    if vrid == 0:
        raise BadVRID("vrid 0")
    if count == 0:
        raise BadAddressCount("no addresses")
    if type(source) is IPv6Address:
        if version == 2:
            raise FamilyMismatch("VRRPv2 over IPv6")
        if int(source) >> 118 != 0x3FA:  # fe80::/10
            raise SourceNotLinkLocal(str(source))
        alen = 16
    else:
        alen = 4
    if type(destination) is not type(source):
        raise FamilyMismatch("source and destination of different families")
    end = 8 + count * alen
    needed = end + V2_AUTH_LEN if version == 2 else end
    if size < needed:
        raise Truncated(f"{size} bytes for {count} addresses, need {needed}")

    if version == 3:
        interval_cs = word & V3_MAX_INTERVAL_CS
        pseudo = pseudo_header_sum(int(source), int(destination), IPPROTO_VRRP, size)
        if checksum_ok(data, pseudo):
            form = ChecksumForm.PSEUDO_HEADER
        elif alen == 4 and checksum_ok(data):
            form = ChecksumForm.VRRP_ONLY
        else:
            raise BadChecksum("IPv6" if alen == 16 else "neither pseudo-header nor VRRP-only form")
        auth_type = AUTH_NONE
        auth_data = b""
    else:
        interval_cs = (word & 0xFF) * 100
        if not checksum_ok(data):
            raise BadChecksum("VRRPv2")
        form = ChecksumForm.VRRP_ONLY
        auth_type = word >> 8
        auth_data = bytes(data[end:needed])
    if interval_cs == 0:
        raise BadInterval("interval 0")

    addresses = _address_list(data[8:end], alen)
    return _new_advert(
        Advertisement,
        (version, vrid, priority, interval_cs, addresses, auth_type, auth_data, form),
    )


_CACHE_MAX = 4096
_LISTS: tuple[dict[bytes, tuple[IPAddress, ...]], dict[bytes, tuple[IPAddress, ...]]] = ({}, {})
_BODIES: dict[int, tuple[tuple[IPAddress, ...], int, bytes]] = {}


def _address_list(raw: bytes, alen: int) -> tuple[IPAddress, ...]:
    """The address tuple carried in ``raw``, memoised: a VRID's list repeats in every advert.

    Returning the same tuple object for the same bytes also lets a receiver
    compare lists by identity before it compares them by value.
    """
    cache = _LISTS[alen == 16]
    found = cache.get(raw)
    if found is None:
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        make = IPv4Address if alen == 4 else IPv6Address
        found = cache[raw] = tuple(make(raw[o : o + alen]) for o in range(0, len(raw), alen))
    return found


def _address_body(addresses: tuple[IPAddress, ...]) -> tuple[int, bytes]:
    """(family, packed bytes) of an address tuple, memoised by identity for repeated sends."""
    entry = _BODIES.get(id(addresses))
    if entry is None or entry[0] is not addresses:
        family = addresses[0].version if addresses else 0
        if any(a.version != family for a in addresses):
            family = 0
        if len(_BODIES) >= _CACHE_MAX:
            _BODIES.clear()
        entry = _BODIES[id(addresses)] = (
            addresses,
            family,
            b"".join(a.packed for a in addresses),
        )
    return entry[1], entry[2]
