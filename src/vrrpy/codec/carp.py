"""CARP advertisements on the wire: the 36-byte header of OpenBSD, FreeBSD and ucarp.

The codec is pure, like :mod:`vrrpy.codec.vrrp`: bytes plus the IP-layer facts
(:class:`~vrrpy.codec.vrrp.PacketInfo`) in, a frozen :class:`CarpAdvertisement`
out, or one of the :class:`~vrrpy.codec.errors.CARPDecodeError` classes raised.
Nothing else escapes :func:`decode_carp`, whatever the bytes
(``tests/test_carp_fuzz.py``). The HMAC needs the key and the virtual
addresses, so it is checked apart, by :func:`vrrpy.codec.carp_auth.verify_carp`.

Layout (network byte order; IP protocol 112, TTL / hop limit 255, sent to
224.0.0.18 / ff02::12 or to a unicast peer)::

    0                   1                   2                   3
    |Version| Type  |     VHID      |    AdvSkew    |    AuthLen    |
    |    Demote     |    AdvBase    |           Checksum            |
    |                     Counter (64 bits)                         |
    |                     SHA-1 HMAC (160 bits) ...                 |

Byte 4 is OpenBSD's demotion counter; FreeBSD and ucarp call it reserved and
send 0 (FreeBSD demotes by raising advskew instead). The checksum is the
Internet checksum of these 36 bytes alone, over IPv6 too: no implementation
adds a pseudo-header (see ``docs/carp.md`` for the sources).

The first byte, ``0x21``, is VRRPv2's too, and both live on protocol 112. What
tells them apart is the length and byte 3: a CARP packet is exactly 36 bytes
with ``authlen`` 7, while a VRRPv2 packet of 36 bytes carries 5 addresses in
that byte, and one with 7 addresses is 44 bytes long. So this decoder refuses
any other length or ``authlen`` (the BSDs do not look at either, but every
sender puts 36 and 7), a VRRPv2 packet is never taken for CARP, and a CARP
packet given to :func:`~vrrpy.codec.vrrp.decode_vrrp` is always
:class:`~vrrpy.codec.errors.Truncated` (7 addresses need 44 bytes).
:func:`looks_like_carp` is that rule, for a receiver that demultiplexes.
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, NamedTuple

from vrrpy.codec.checksum import checksum_ok, internet_checksum
from vrrpy.codec.errors import (
    CarpBadAuthLen,
    CarpBadChecksum,
    CarpBadTTL,
    CarpBadType,
    CarpBadVersion,
    CarpBadVHID,
    CarpTruncated,
    CarpWrongLength,
)
from vrrpy.codec.vrrp import IPPROTO_VRRP, PacketInfo

if TYPE_CHECKING:
    from vrrpy.codec.carp_auth import CarpAuth

IPPROTO_CARP = IPPROTO_VRRP
"""IP protocol 112, shared with VRRP."""

CARP_MULTICAST_V4 = IPv4Address("224.0.0.18")
CARP_MULTICAST_V6 = IPv6Address("ff02::12")
CARP_TTL = 255
CARP_VERSION = 2
CARP_TYPE_ADVERTISEMENT = 1
CARP_AUTHLEN = 7
"""Counter and HMAC in 32-bit words (2 + 5): what every implementation sends."""
CARP_HEADER_LEN = 36
CARP_HMAC_LEN = 20
COUNTER_MAX = 2**64 - 1

_HEADER = struct.Struct("!BBBBBBHQ20s")
_FIRST = (CARP_VERSION << 4) | CARP_TYPE_ADVERTISEMENT
_TYPE = CARP_TYPE_ADVERTISEMENT
_CHECKSUM_SHIFT = 8 * (CARP_HEADER_LEN - 8)  # bytes 6-7 of 36, as bits from the right
_new_advert = tuple.__new__  # builds a CarpAdvertisement without the NamedTuple __new__ overhead


class CarpAdvertisement(NamedTuple):
    """One CARP advertisement, as its fields say (the fields a caller sets come first).

    ``counter`` is the 64-bit counter read big-endian (OpenBSD's is random
    bytes, so any reading is as good; ``counter.to_bytes(8, "big")`` gives the
    wire bytes back exactly). ``hmac`` is the 20-byte digest as received; on
    encode it is ignored when an authenticator signs the advert.
    """

    vhid: int
    advskew: int
    advbase: int
    counter: int
    hmac: bytes = b""
    demote: int = 0
    version: int = CARP_VERSION
    type: int = CARP_TYPE_ADVERTISEMENT
    authlen: int = CARP_AUTHLEN

    @property
    def interval(self) -> float:
        """The advertisement interval in seconds: advbase + advskew / 256 (all three agree)."""
        return self.advbase + self.advskew / 256.0

    @property
    def counter_bytes(self) -> bytes:
        """The counter as on the wire: the bytes the HMAC covers."""
        return self.counter.to_bytes(8, "big")


def looks_like_carp(data: bytes) -> bool:
    """True if ``data`` has CARP's shape (36 bytes, ``0x21``, ``authlen`` 7), not VRRPv2's.

    A cheap test for a receiver that demultiplexes protocol 112: it says which
    decoder to call, not that the packet is valid.
    """
    return len(data) == CARP_HEADER_LEN and data[0] == _FIRST and data[3] == CARP_AUTHLEN


def decode_carp(data: bytes, info: PacketInfo) -> CarpAdvertisement:
    """Decode and check one CARP message (the IP payload).

    Checks what needs no configuration: TTL / hop limit 255, length, version,
    type, ``authlen``, VHID not 0, checksum. Whether the VHID is ours, the
    HMAC (:func:`vrrpy.codec.carp_auth.verify_carp`) and the counter
    (:class:`vrrpy.codec.carp_auth.ReplayWindow`) are the caller's.

    Raises only subclasses of :class:`vrrpy.codec.errors.CARPDecodeError`.
    """
    if type(data) is not bytes:
        data = bytes(data)  # bytearray / memoryview from a socket API
    if info[2] != CARP_TTL:
        raise CarpBadTTL(f"ttl {info[2]}")
    size = len(data)
    if size != CARP_HEADER_LEN:
        if size < CARP_HEADER_LEN:
            raise CarpTruncated(f"{size} bytes")
        raise CarpWrongLength(f"{size} bytes, a CARP header is {CARP_HEADER_LEN}")
    vt, vhid, advskew, authlen, demote, advbase, _, counter, digest = _HEADER.unpack(data)
    if vt != _FIRST:
        if vt >> 4 != CARP_VERSION:
            raise CarpBadVersion(f"version {vt >> 4}")
        raise CarpBadType(f"type {vt & 0x0F}")
    if authlen != CARP_AUTHLEN:
        raise CarpBadAuthLen(f"authlen {authlen}")
    if vhid == 0:
        raise CarpBadVHID("vhid 0")
    if not checksum_ok(data):
        raise CarpBadChecksum("CARP header")
    return _new_advert(
        CarpAdvertisement,
        (vhid, advskew, advbase, counter, digest, demote, CARP_VERSION, _TYPE, CARP_AUTHLEN),
    )


def _check_for_encode(advert: CarpAdvertisement) -> None:
    """Refuse to build a packet our own decoder would drop (a caller error)."""
    vhid, advskew, advbase, counter, _, demote, version, type_, authlen = advert
    if (
        0 < vhid < 256
        and 0 <= advskew < 256
        and 0 <= advbase < 256
        and 0 <= demote < 256
        and 0 <= counter <= COUNTER_MAX
        and version == CARP_VERSION
        and type_ == CARP_TYPE_ADVERTISEMENT
        and authlen == CARP_AUTHLEN
    ):
        return
    if version != CARP_VERSION or type_ != CARP_TYPE_ADVERTISEMENT:
        raise ValueError("CARP version 2, type 1 (advertisement) only")
    if authlen != CARP_AUTHLEN:
        raise ValueError(f"authlen is {CARP_AUTHLEN} in every implementation")
    if not 1 <= vhid <= 255:
        raise ValueError(f"vhid must be 1..255, not {vhid}")
    for name, value in (("advskew", advskew), ("advbase", advbase), ("demote", demote)):
        if not 0 <= value <= 255:
            raise ValueError(f"{name} must be 0..255, not {value}")
    raise ValueError("counter is 64 bits")


def encode_carp(advert: CarpAdvertisement, auth: CarpAuth | None = None) -> bytes:
    """Build the 36-byte CARP message for ``advert``: checksum and HMAC included.

    With ``auth`` (a :class:`vrrpy.codec.carp_auth.CarpAuth` profile), the
    HMAC is computed over ``advert.counter``; without, ``advert.hmac`` is sent
    as it is and must be 20 bytes. The checksum covers the header only, so no
    addresses are needed, for IPv4 and IPv6 alike.
    """
    _check_for_encode(advert)
    vhid, advskew, advbase, counter, digest, demote = advert[:6]
    if auth is not None:
        digest = auth.sign(counter)
    elif len(digest) != CARP_HMAC_LEN:
        raise ValueError("an advert without auth= must carry its 20-byte hmac")
    raw = _HEADER.pack(_FIRST, vhid, advskew, CARP_AUTHLEN, demote, advbase, 0, counter, digest)
    # Written into bytes 6-7 by adding it to the header read as one integer: one pack.
    checksum = internet_checksum(raw)
    return (int.from_bytes(raw, "big") + (checksum << _CHECKSUM_SHIFT)).to_bytes(
        CARP_HEADER_LEN, "big"
    )
