"""The CARP header codec: layout, checksum, every receive check, and VRRPv2's look-alike.

Offsets and values come from the ``struct carp_header`` of OpenBSD, FreeBSD
and ucarp (``docs/carp.md``); the checksum is checked against the RFC 1071
loop of ``support.ref_checksum``, never against vrrpy's own.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from support import ref_checksum
from vrrpy.codec import errors
from vrrpy.codec.carp import (
    CARP_HEADER_LEN,
    CARP_MULTICAST_V4,
    CARP_MULTICAST_V6,
    CarpAdvertisement,
    decode_carp,
    encode_carp,
    looks_like_carp,
)
from vrrpy.codec.carp_auth import UcarpAuth
from vrrpy.codec.errors import (
    ALL_CARP_ERRORS,
    ALL_VRRP_ERRORS,
    CarpBadAuthLen,
    CarpBadChecksum,
    CarpBadTTL,
    CarpBadType,
    CarpBadVersion,
    CarpBadVHID,
    CARPDecodeError,
    CarpTruncated,
    CarpWrongLength,
    DecodeError,
    Truncated,
)
from vrrpy.codec.vrrp import (
    AUTH_SIMPLE,
    Advertisement,
    ChecksumForm,
    PacketInfo,
    decode_vrrp,
    encode_vrrp,
)

INFO4 = PacketInfo(IPv4Address("192.0.2.11"), CARP_MULTICAST_V4, 255)
INFO6 = PacketInfo(IPv6Address("fe80::11"), CARP_MULTICAST_V6, 255)
DIGEST = bytes(range(100, 120))
ADVERT = CarpAdvertisement(
    vhid=7, advskew=10, advbase=1, counter=0x0123456789ABCDEF, hmac=DIGEST, demote=3
)

# A packet captured from Debian's ucarp 1.5.2 (vhid 7, advbase 1, advskew 10,
# --pass secret, --addr 192.0.2.200), as tests/test_carp_ucarp_kat.py captures live.
UCARP_CAPTURE = bytes.fromhex(
    "21070a070001b58bc8490b925eae2228ebf6096b52e69e443c4463fec3c31934de0c88de"
)


def with_checksum(header: bytes) -> bytes:
    """``header`` with bytes 6-7 set to its RFC 1071 checksum (the reference loop)."""
    zeroed = header[:6] + b"\0\0" + header[8:]
    return zeroed[:6] + ref_checksum(zeroed).to_bytes(2, "big") + zeroed[8:]


def test_the_wire_layout_is_the_bsd_struct_carp_header() -> None:
    wire = encode_carp(ADVERT)
    assert len(wire) == CARP_HEADER_LEN == 36
    assert wire[0] == 0x21  # version 2 in the high nibble, type 1 in the low one
    assert (wire[1], wire[2], wire[3], wire[4], wire[5]) == (7, 10, 7, 3, 1)
    assert wire[8:16] == bytes.fromhex("0123456789abcdef")  # counter, big-endian
    assert wire[16:] == DIGEST
    assert wire == with_checksum(wire)


def test_the_checksum_covers_the_header_alone_over_ipv4_and_ipv6() -> None:
    # No pseudo-header in any implementation: the same bytes are valid whatever the addresses.
    wire = encode_carp(ADVERT)
    assert decode_carp(wire, INFO4) == ADVERT
    assert decode_carp(wire, INFO6) == ADVERT
    unicast = PacketInfo(IPv4Address("198.51.100.1"), IPv4Address("198.51.100.2"), 255)
    assert decode_carp(wire, unicast) == ADVERT


def test_a_live_ucarp_packet_decodes_and_encodes_back_byte_for_byte() -> None:
    advert = decode_carp(UCARP_CAPTURE, INFO4)
    assert advert[:3] == (7, 10, 1)
    assert (advert.demote, advert.version, advert.type, advert.authlen) == (0, 2, 1, 7)
    assert advert.counter_bytes == UCARP_CAPTURE[8:16]
    auth = UcarpAuth(7, IPv4Address("192.0.2.200"), "secret")
    assert encode_carp(advert, auth) == UCARP_CAPTURE
    assert encode_carp(advert) == UCARP_CAPTURE


def test_encode_with_a_profile_signs_the_counter() -> None:
    auth = UcarpAuth(7, IPv4Address("192.0.2.200"), "secret")
    unsigned = ADVERT._replace(hmac=b"")
    wire = encode_carp(unsigned, auth)
    assert wire[16:] == auth.sign(ADVERT.counter)
    assert decode_carp(wire, INFO4).hmac == auth.sign(ADVERT.counter)


def test_interval_is_advbase_plus_advskew_over_256() -> None:
    assert ADVERT.interval == 1 + 10 / 256
    assert ADVERT._replace(advbase=0, advskew=40).interval == 40 / 256


def test_bytearray_and_memoryview_are_accepted() -> None:
    wire = encode_carp(ADVERT)
    assert decode_carp(bytearray(wire), INFO4) == ADVERT
    assert decode_carp(memoryview(wire), INFO4) == ADVERT


@pytest.mark.parametrize("ttl", [0, 1, 64, 254, 256])
def test_a_ttl_other_than_255_is_dropped(ttl: int) -> None:
    with pytest.raises(CarpBadTTL):
        decode_carp(encode_carp(ADVERT), INFO4._replace(ttl=ttl))


@pytest.mark.parametrize("size", [0, 1, 8, 35])
def test_short_packets_are_truncated(size: int) -> None:
    with pytest.raises(CarpTruncated) as caught:
        decode_carp(encode_carp(ADVERT)[:size], INFO4)
    assert caught.value.reason == "carp_truncated"


def test_trailing_bytes_are_a_wrong_length() -> None:
    # The BSDs would ignore them; no sender adds any, and the length is what tells CARP
    # from VRRPv2 (module docstring).
    with pytest.raises(CarpWrongLength):
        decode_carp(encode_carp(ADVERT) + b"\0\0", INFO4)


@pytest.mark.parametrize(
    ("offset", "value", "error"),
    [
        (0, 0x31, CarpBadVersion),
        (0, 0x11, CarpBadVersion),
        (0, 0x22, CarpBadType),
        (0, 0x20, CarpBadType),
        (3, 5, CarpBadAuthLen),
        (3, 0, CarpBadAuthLen),
        (1, 0, CarpBadVHID),
    ],
)
def test_each_header_check_has_its_own_error(
    offset: int, value: int, error: type[CARPDecodeError]
) -> None:
    wire = bytearray(encode_carp(ADVERT))
    wire[offset] = value
    # A valid checksum, so that the field check is what refuses it.
    with pytest.raises(error):
        decode_carp(with_checksum(bytes(wire)), INFO4)


def test_a_wrong_checksum_is_dropped() -> None:
    wire = bytearray(encode_carp(ADVERT))
    wire[20] ^= 0x01  # inside the HMAC: only the checksum can notice
    with pytest.raises(CarpBadChecksum):
        decode_carp(bytes(wire), INFO4)


def test_fields_the_decoder_does_not_judge_pass_through() -> None:
    # advbase 0 (OpenBSD's sub-second adverts), 255/255 (OpenBSD's bow-out), any demote.
    for advert in (
        ADVERT._replace(advbase=0, advskew=0),
        ADVERT._replace(advbase=255, advskew=255, demote=255),
        ADVERT._replace(counter=0),
        ADVERT._replace(counter=2**64 - 1, vhid=255),
    ):
        assert decode_carp(encode_carp(advert), INFO4) == advert


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vhid": 0}, "vhid"),
        ({"vhid": 256}, "vhid"),
        ({"advskew": -1}, "advskew"),
        ({"advbase": 256}, "advbase"),
        ({"demote": 300}, "demote"),
        ({"counter": 2**64}, "counter"),
        ({"counter": -1}, "counter"),
        ({"version": 3}, "version"),
        ({"type": 2}, "type"),
        ({"authlen": 5}, "authlen"),
        ({"hmac": b"short"}, "hmac"),
    ],
)
def test_encode_refuses_what_a_receiver_would_drop(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_carp(ADVERT._replace(**change))


def test_every_carp_reason_is_distinct_and_prefixed() -> None:
    carp = [cls.reason for cls in (*ALL_CARP_ERRORS, errors.CarpBadHMAC, errors.CarpReplay)]
    assert all(reason.startswith("carp_") for reason in carp)
    assert len(set(carp)) == len(carp)
    assert not set(carp) & {cls.reason for cls in ALL_VRRP_ERRORS}
    assert all(issubclass(cls, CARPDecodeError) for cls in ALL_CARP_ERRORS)
    assert issubclass(CARPDecodeError, DecodeError)
    assert not issubclass(CARPDecodeError, errors.VRRPDecodeError)


# --------------------------------------------------------------------------
# VRRPv2 shares the first byte: each decoder must refuse the other's packets
# --------------------------------------------------------------------------


def _vrrp2(count: int) -> bytes:
    addresses = tuple(IPv4Address(f"192.0.2.{100 + i}") for i in range(count))
    advert = Advertisement(
        2, 7, 100, 100, addresses, AUTH_SIMPLE, b"pass", checksum_form=ChecksumForm.VRRP_ONLY
    )
    return encode_vrrp(advert, INFO4.source, INFO4.destination)


@pytest.mark.parametrize("count", [1, 4, 5, 6, 7, 8])
def test_a_vrrpv2_packet_is_never_taken_for_carp(count: int) -> None:
    packet = _vrrp2(count)
    assert packet[0] == 0x21
    assert not looks_like_carp(packet)
    with pytest.raises(CARPDecodeError) as caught:
        decode_carp(packet, INFO4)
    # 5 addresses make exactly 36 bytes with a valid checksum: authlen (here 5) refuses it.
    expected = CarpBadAuthLen if count == 5 else (CarpTruncated, CarpWrongLength)
    assert isinstance(caught.value, expected)


def test_a_carp_packet_is_truncated_vrrpv2_for_decode_vrrp() -> None:
    wire = encode_carp(ADVERT)
    assert looks_like_carp(wire)
    with pytest.raises(Truncated):  # authlen 7 read as 7 addresses: 44 bytes needed
        decode_vrrp(wire, INFO4)
    with pytest.raises(errors.VRRPDecodeError):
        decode_vrrp(wire, INFO6)
