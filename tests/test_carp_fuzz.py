"""Property tests of the CARP codec with hypothesis, and of CARP against VRRP.

(a) :func:`decode_carp` on arbitrary bytes, on bytes shaped like CARP, and on
mutations of valid adverts raises nothing but ``CARPDecodeError`` subclasses,
and what it accepts re-encodes to the same bytes; (b) encode then decode
gives the advert back; (c) the two protocols on IP 112 start with the same
byte, so each decoder is fed the other's valid packets and must refuse every
one with its own documented errors, and the other's mutated packets raising
nothing else; (d) verification raises only ``CarpBadHMAC`` and accepts exactly
what was signed with the same profile.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from support import ref_checksum
from test_codec_fuzz import _mutate, adverts, packet_infos
from vrrpy.codec.carp import CARP_MULTICAST_V4, CarpAdvertisement, decode_carp, encode_carp
from vrrpy.codec.carp_auth import FreeBSDAuth, OpenBSDAuth, UcarpAuth, verify_carp
from vrrpy.codec.errors import (
    CarpBadHMAC,
    CARPDecodeError,
    CarpTruncated,
    Truncated,
    VRRPDecodeError,
)
from vrrpy.codec.vrrp import (
    Advertisement,
    ChecksumForm,
    IPAddress,
    PacketInfo,
    decode_vrrp,
    encode_vrrp,
)

INFO = PacketInfo(IPv4Address("192.0.2.11"), CARP_MULTICAST_V4, 255)

byte = st.integers(0, 255)
carp_adverts = st.builds(
    CarpAdvertisement,
    vhid=st.integers(1, 255),
    advskew=byte,
    advbase=byte,
    counter=st.integers(0, 2**64 - 1),
    hmac=st.binary(min_size=20, max_size=20),
    demote=byte,
    version=st.just(2),
    type=st.just(1),
    authlen=st.just(7),
)


def _decode(data: bytes, info: PacketInfo) -> CarpAdvertisement | None:
    try:
        advert = decode_carp(data, info)
    except CARPDecodeError as exc:
        event(f"rejected: {exc.reason}")
        return None
    event("accepted")
    return advert


def _check_decoded(advert: CarpAdvertisement, data: bytes, info: PacketInfo) -> None:
    """Invariants of anything decode_carp accepts: re-encoding gives the same bytes."""
    assert info.ttl == 255
    assert len(data) == 36
    assert (advert.version, advert.type, advert.authlen) == (2, 1, 7)
    assert 1 <= advert.vhid <= 255
    assert encode_carp(advert) == bytes(data)


@st.composite
def carp_shaped(draw: st.DrawFn) -> bytes:
    """36-ish bytes that often pass the field checks, often with a valid checksum."""
    first = draw(st.sampled_from([0x21, 0x21, 0x21, 0x31, 0x22, -1]))
    first = draw(byte) if first < 0 else first
    authlen = draw(st.sampled_from([7, 7, 7, 5, 0, -1]))
    authlen = draw(byte) if authlen < 0 else authlen
    body = draw(st.binary(min_size=32, max_size=32))
    header = bytes([first, draw(st.sampled_from([0, 1, 7, 255])), draw(byte), authlen]) + body
    size = draw(st.sampled_from([36, 36, 36, 35, 37, -1]))
    if size < 0:
        size = draw(st.integers(0, 60))
    header = (header + draw(st.binary(min_size=24, max_size=24)))[:size]
    if len(header) >= 8 and draw(st.booleans()):
        zeroed = header[:6] + b"\0\0" + header[8:]
        header = zeroed[:6] + ref_checksum(zeroed).to_bytes(2, "big") + zeroed[8:]
    return header


# --------------------------------------------------------------------------
# (a) only documented errors, whatever the bytes
# --------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80), packet_infos)
def test_decode_arbitrary_bytes_raises_only_carp_errors(data: bytes, info: PacketInfo) -> None:
    advert = _decode(data, info)
    if advert is not None:
        _check_decoded(advert, data, info)


@settings(max_examples=500, deadline=None)
@given(carp_shaped(), st.sampled_from([255, 255, 255, 254, 0]))
def test_decode_carp_shaped_bytes_raises_only_carp_errors(data: bytes, ttl: int) -> None:
    info = INFO._replace(ttl=ttl)
    advert = _decode(data, info)
    if advert is not None:
        _check_decoded(advert, data, info)


@settings(max_examples=400, deadline=None)
@given(carp_adverts, st.data())
def test_decode_mutated_adverts_raises_only_carp_errors(
    advert: CarpAdvertisement, data: st.DataObject
) -> None:
    mutated, steps = _mutate(data, encode_carp(advert))
    note("mutations: " + ", ".join(steps))
    got = _decode(mutated, INFO)
    if got is not None:
        _check_decoded(got, mutated, INFO)


@settings(max_examples=300, deadline=None)
@given(carp_adverts, st.integers(0, 36 * 8 - 1))
def test_every_single_bit_flip_is_refused(advert: CarpAdvertisement, bit: int) -> None:
    # A one-bit change moves the one's complement sum by 2**k, never by a multiple of 0xFFFF.
    wire = bytearray(encode_carp(advert))
    wire[bit // 8] ^= 1 << (bit % 8)
    assert _decode(bytes(wire), INFO) is None


@settings(max_examples=200, deadline=None)
@given(carp_adverts, st.integers(0, 35))
def test_every_strict_prefix_is_truncated(advert: CarpAdvertisement, size: int) -> None:
    try:
        decode_carp(encode_carp(advert)[:size], INFO)
    except CarpTruncated:
        return
    raise AssertionError(f"a prefix of {size} bytes was not reported as truncated")


# --------------------------------------------------------------------------
# (b) round trip
# --------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(carp_adverts, packet_infos)
def test_encode_decode_round_trip(advert: CarpAdvertisement, info: PacketInfo) -> None:
    wire = encode_carp(advert)
    zeroed = wire[:6] + b"\0\0" + wire[8:]
    assert int.from_bytes(wire[6:8], "big") == ref_checksum(zeroed)  # header only, any family
    info = info._replace(ttl=255)
    assert decode_carp(wire, info) == advert


# --------------------------------------------------------------------------
# (c) CARP and VRRP: each decoder against the other's packets
# --------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(adverts())
def test_no_valid_vrrp_packet_decodes_as_carp(
    case: tuple[Advertisement, IPAddress, IPAddress, ChecksumForm],
) -> None:
    advert, src, dst, form = case
    try:
        decode_carp(encode_vrrp(advert, src, dst, form), PacketInfo(src, dst, 255))
    except CARPDecodeError as exc:
        event(f"VRRPv{advert.version} refused by decode_carp: {exc.reason}")
        return
    raise AssertionError("a VRRP packet decoded as CARP")


@settings(max_examples=300, deadline=None)
@given(carp_adverts, packet_infos)
def test_no_valid_carp_packet_decodes_as_vrrp(advert: CarpAdvertisement, info: PacketInfo) -> None:
    info = info._replace(ttl=255)
    try:
        decode_vrrp(encode_carp(advert), info)
    except VRRPDecodeError as exc:
        event(f"refused by decode_vrrp: {exc.reason}")
        if info.source.version == 4 and info.destination.version == 4:
            assert isinstance(exc, Truncated)  # authlen 7 read as 7 addresses
        return
    raise AssertionError("a CARP packet decoded as VRRP")


@settings(max_examples=300, deadline=None)
@given(adverts(), st.data())
def test_mutated_vrrp_packets_raise_only_carp_errors(
    case: tuple[Advertisement, IPAddress, IPAddress, ChecksumForm], data: st.DataObject
) -> None:
    advert, src, dst, form = case
    mutated, steps = _mutate(data, encode_vrrp(advert, src, dst, form))
    note("mutations: " + ", ".join(steps))
    info = PacketInfo(src, dst, 255)
    got = _decode(mutated, info)
    if got is not None:
        _check_decoded(got, mutated, info)


@settings(max_examples=300, deadline=None)
@given(carp_adverts, st.data(), packet_infos)
def test_mutated_carp_packets_raise_only_vrrp_errors(
    advert: CarpAdvertisement, data: st.DataObject, info: PacketInfo
) -> None:
    mutated, steps = _mutate(data, encode_carp(advert))
    note("mutations: " + ", ".join(steps))
    try:
        decode_vrrp(mutated, info._replace(ttl=255))
    except VRRPDecodeError as exc:
        event(f"refused by decode_vrrp: {exc.reason}")


# --------------------------------------------------------------------------
# (d) verification
# --------------------------------------------------------------------------

addresses4 = st.lists(st.builds(IPv4Address, st.integers(1, 2**32 - 2)), min_size=1, max_size=4)
passwords = st.binary(min_size=1, max_size=19).filter(lambda p: b"\0" not in p)


@st.composite
def profiles(draw: st.DrawFn) -> OpenBSDAuth | FreeBSDAuth | UcarpAuth:
    vhid = draw(st.integers(1, 255))
    password = draw(passwords)
    kind = draw(st.sampled_from(["openbsd", "freebsd", "ucarp"]))
    if kind == "ucarp":
        return UcarpAuth(vhid, draw(addresses4)[0], password)
    cls = OpenBSDAuth if kind == "openbsd" else FreeBSDAuth
    return cls(vhid, draw(addresses4), password)


@settings(max_examples=300, deadline=None)
@given(profiles(), carp_adverts, st.booleans())
def test_verify_accepts_what_was_signed_and_raises_only_bad_hmac(
    auth: OpenBSDAuth | FreeBSDAuth | UcarpAuth, advert: CarpAdvertisement, signed: bool
) -> None:
    advert = advert._replace(vhid=auth.vhid)
    wire = encode_carp(advert, auth) if signed else encode_carp(advert)
    got = decode_carp(wire, INFO)
    try:
        verify_carp(got, auth)
    except CarpBadHMAC:
        assert not signed
        return
    assert signed or advert.hmac == auth.sign(advert.counter)
