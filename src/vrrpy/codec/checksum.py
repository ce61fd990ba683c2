"""The Internet checksum (RFC 1071) and the pseudo-headers VRRP and CARP use.

Shared by every codec in :mod:`vrrpy.codec`. The sum is computed with one
big-integer reduction instead of a loop over 16-bit words: because
``2**16 == 1 (mod 0xFFFF)``, the one's complement sum of the words of a buffer
is the buffer read as one big-endian integer, reduced modulo ``0xFFFF``. That
keeps the per-packet path in C (``int.from_bytes`` and ``%``), which is what
makes the codec fast without an extension module.
"""

from __future__ import annotations

import struct

_PSEUDO_TAIL4 = struct.Struct("!BBH")  # zero, protocol, upper-layer length
_PSEUDO_TAIL6 = struct.Struct("!IxxxB")  # upper-layer length, 3 zero bytes, next header


def ones_complement_sum(data: bytes) -> int:
    """Return the 16-bit one's complement sum of ``data`` (padded to even length).

    A non-zero buffer never sums to ``0x0000``: in one's complement arithmetic
    its zero is ``0xFFFF``, exactly as the end-around-carry loop of RFC 1071
    would produce.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    folded = value % 0xFFFF
    if folded == 0 and value:
        return 0xFFFF
    return folded


def internet_checksum(data: bytes, initial: int = 0) -> int:
    """Return the RFC 1071 checksum of ``data`` (checksum field zeroed).

    ``initial`` is added to the sum first: pass :func:`pseudo_header_sum` to
    cover a pseudo-header without building it.
    """
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big") + initial
    folded = value % 0xFFFF
    if folded == 0 and value:
        folded = 0xFFFF
    return ~folded & 0xFFFF


def checksum_ok(data: bytes, initial: int = 0) -> bool:
    """True if ``data`` (checksum field included) plus ``initial`` sums to one's complement zero."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big") + initial
    return value % 0xFFFF == 0 and value != 0


def pseudo_header_sum(source: int, destination: int, protocol: int, length: int) -> int:
    """What a pseudo-header contributes to the sum, from the addresses as integers.

    Both layouts, IPv4's (RFC 768: source, destination, zero, protocol, 16-bit
    length) and IPv6's (RFC 8200 8.1: source, destination, 32-bit length, zeros,
    next header), reduce modulo ``0xFFFF`` to ``source + destination + protocol
    + length``: every 16-bit word of an address is worth the same as the address
    read as one integer. So the pseudo-header never has to be built.
    """
    return source + destination + protocol + length


def pseudo_header_v4(source: bytes, destination: bytes, protocol: int, length: int) -> bytes:
    """IPv4 pseudo-header as in RFC 768: source, destination, zero, protocol, length."""
    return source + destination + _PSEUDO_TAIL4.pack(0, protocol, length)


def pseudo_header_v6(source: bytes, destination: bytes, protocol: int, length: int) -> bytes:
    """IPv6 pseudo-header as in RFC 8200 section 8.1: addresses, 32-bit length, next header."""
    return source + destination + _PSEUDO_TAIL6.pack(length, protocol)
