"""Decode errors: the only exceptions a decoder may raise, whatever the bytes.

Every class carries a ``reason``: a short, stable, snake_case string that the
core uses as a counter key and the runtime as a log tag. Catching
:class:`DecodeError` catches every protocol's decode failure; catching
:class:`VRRPDecodeError` catches VRRP's only (CARP will get its own subclass
tree beside it).
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
