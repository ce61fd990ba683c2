"""The IPv4 header, as a raw IPv4 socket hands it to us on receive.

A raw ``AF_INET`` socket returns the whole IP datagram; the receiver needs its
source, destination, TTL and payload for :func:`vrrpy.codec.decode_vrrp`. (An
``AF_INET6`` raw socket returns only the payload, the hop limit and destination
coming as ancillary data, so IPv6 needs nothing here.)
"""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from vrrpy.codec.errors import DecodeError

_IPV4 = struct.Struct("!BBHHHBBH4s4s")


class IPHeaderError(DecodeError):
    """The bytes do not start with a usable IPv4 header."""

    reason = "bad_ip_header"


def parse_ipv4(
    datagram: bytes, addresses: dict[bytes, IPv4Address] | None = None
) -> tuple[IPv4Address, IPv4Address, int, int, bytes]:
    """Split an IPv4 datagram into (source, destination, ttl, protocol, payload).

    The payload is cut at the header's total length, so Ethernet padding never
    reaches the VRRP decoder. Raises :class:`IPHeaderError` only.

    ``addresses``, if given, is the caller's cache of address objects by their
    four bytes (a receiver sees the same few peers and groups over and over:
    building an ``IPv4Address`` costs more than the rest of the parse). It is
    filled up to :data:`ADDRESS_CACHE` entries.
    """
    if len(datagram) < 20:
        raise IPHeaderError(f"{len(datagram)} bytes")
    vihl, _, total, _, _, ttl, proto, _, src, dst = _IPV4.unpack_from(datagram)
    if vihl >> 4 != 4:
        raise IPHeaderError(f"version {vihl >> 4}")
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or total < ihl or len(datagram) < ihl:
        raise IPHeaderError(f"header length {ihl}, total length {total}")
    end = min(total, len(datagram))
    if addresses is None:
        return IPv4Address(src), IPv4Address(dst), ttl, proto, bytes(datagram[ihl:end])
    source = addresses.get(src) or _cached(addresses, src)
    destination = addresses.get(dst) or _cached(addresses, dst)
    return source, destination, ttl, proto, bytes(datagram[ihl:end])


ADDRESS_CACHE = 4096


def _cached(addresses: dict[bytes, IPv4Address], packed: bytes) -> IPv4Address:
    address = IPv4Address(packed)
    if len(addresses) < ADDRESS_CACHE:
        addresses[packed] = address
    return address
