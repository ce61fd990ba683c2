"""Decode errors: the only exceptions a decoder may raise, whatever the bytes.

Every class carries a ``reason``: a short, stable, snake_case string that the
core uses as a counter key and the runtime as a log tag. Catching
:class:`DecodeError` catches every protocol's decode failure; catching
:class:`VRRPDecodeError` catches VRRP's only, :class:`CARPDecodeError` CARP's
only (whose reasons all start with ``carp_``).
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Base of every decode failure in :mod:`vrrpy.codec`: the peer sent bytes we must drop."""

    reason: str = "malformed"

    def __init__(self, detail: str = "") -> None:
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)
        self.detail = detail


class VRRPDecodeError(DecodeError):
    """Base of every VRRP (v2 and v3) decode failure."""

    reason = "vrrp_malformed"


class Truncated(VRRPDecodeError):
    """Shorter than the fixed header, the advertised addresses or the v2 authentication data."""

    reason = "truncated"


class BadVersion(VRRPDecodeError):
    """Version field is not 2 or 3, or not the version the caller expects."""

    reason = "bad_version"


class BadType(VRRPDecodeError):
    """Type field is not 1 (ADVERTISEMENT), the only type RFC 9568 and RFC 3768 define."""

    reason = "bad_type"


class BadVRID(VRRPDecodeError):
    """VRID 0: virtual router identifiers are 1..255."""

    reason = "bad_vrid"


class BadAddressCount(VRRPDecodeError):
    """Count of addresses is zero (RFC 9568 5.2.5: at least one)."""

    reason = "bad_address_count"


class FamilyMismatch(VRRPDecodeError):
    """The message does not fit the IP version it arrived over (e.g. VRRPv2 over IPv6)."""

    reason = "family_mismatch"


class BadChecksum(VRRPDecodeError):
    """Checksum matches neither the pseudo-header form nor (IPv4 v3) the VRRP-only form."""

    reason = "bad_checksum"


class BadTTL(VRRPDecodeError):
    """IPv4 TTL or IPv6 hop limit is not 255: the packet may have crossed a router."""

    reason = "bad_ttl"


class SourceNotLinkLocal(VRRPDecodeError):
    """An IPv6 advertisement whose source is not a link-local address (RFC 9568 5.1.2.1)."""

    reason = "source_not_link_local"


class BadInterval(VRRPDecodeError):
    """An advertisement interval of zero: no timer can be derived from it."""

    reason = "bad_interval"


ALL_VRRP_ERRORS: tuple[type[VRRPDecodeError], ...] = (
    Truncated,
    BadVersion,
    BadType,
    BadVRID,
    BadAddressCount,
    FamilyMismatch,
    BadChecksum,
    BadTTL,
    SourceNotLinkLocal,
    BadInterval,
)


class CARPDecodeError(DecodeError):
    """Base of every CARP decode or authentication failure (:mod:`vrrpy.codec.carp`).

    CARP shares IP protocol 112 and even the first byte (``0x21``) with VRRPv2,
    so its reasons are prefixed ``carp_``: a counter named ``bad_checksum``
    always means VRRP, ``carp_bad_checksum`` always CARP.
    """

    reason = "carp_malformed"


class CarpTruncated(CARPDecodeError):
    """Shorter than the 36-byte CARP header."""

    reason = "carp_truncated"


class CarpWrongLength(CARPDecodeError):
    """Longer than 36 bytes: every implementation sends exactly the header.

    The BSDs ignore trailing bytes; we refuse them, because the exact length
    (with ``authlen``) is what tells CARP from VRRPv2 (see ``docs/carp.md``).
    """

    reason = "carp_wrong_length"


class CarpBadVersion(CARPDecodeError):
    """Version nibble is not 2 (the only CARP version)."""

    reason = "carp_bad_version"


class CarpBadType(CARPDecodeError):
    """Type nibble is not 1 (ADVERTISEMENT), the only type any implementation sends."""

    reason = "carp_bad_type"


class CarpBadAuthLen(CARPDecodeError):
    """``authlen`` is not 7 (counter and HMAC in 32-bit words), the value every sender uses."""

    reason = "carp_bad_authlen"


class CarpBadVHID(CARPDecodeError):
    """VHID 0: virtual host identifiers are 1..255 in OpenBSD, FreeBSD and ucarp."""

    reason = "carp_bad_vhid"


class CarpBadChecksum(CARPDecodeError):
    """The Internet checksum over the 36-byte header (no pseudo-header) does not verify."""

    reason = "carp_bad_checksum"


class CarpBadTTL(CARPDecodeError):
    """IPv4 TTL or IPv6 hop limit is not 255: the packet may have crossed a router."""

    reason = "carp_bad_ttl"


class CarpBadHMAC(CARPDecodeError):
    """The HMAC-SHA1 does not match the key, VHID and addresses we are configured with.

    Raised by :func:`vrrpy.codec.carp_auth.verify_carp`, not by the decoder:
    checking it needs configuration.
    """

    reason = "carp_bad_hmac"


class CarpReplay(CARPDecodeError):
    """A counter the opt-in :class:`vrrpy.codec.carp_auth.ReplayWindow` refuses.

    Either a counter this peer sent recently (a copy of an advert), or, for a
    peer seen counting up, a single jump off its sequence (see ``docs/carp.md``).
    """

    reason = "carp_replay"


ALL_CARP_ERRORS: tuple[type[CARPDecodeError], ...] = (
    CarpTruncated,
    CarpWrongLength,
    CarpBadVersion,
    CarpBadType,
    CarpBadAuthLen,
    CarpBadVHID,
    CarpBadChecksum,
    CarpBadTTL,
)
"""What :func:`vrrpy.codec.carp.decode_carp` may raise (``carp_auth`` adds the last two)."""
