"""Property tests of the VRRP codec with hypothesis.

(a) :func:`decode_vrrp` on arbitrary bytes and arbitrary :class:`PacketInfo`
raises nothing but :class:`VRRPDecodeError` subclasses; (b) likewise for
mutations of valid packets; (c) encode then decode gives the advertisement back.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from support import ref_checksum, ref_pseudo
from vrrpy.codec import (
    VRRP_MULTICAST_V4,
    VRRP_MULTICAST_V6,
    Advertisement,
    ChecksumForm,
    IPAddress,
    PacketInfo,
    VRRPDecodeError,
    decode_vrrp,
    encode_vrrp,
)
from vrrpy.codec.errors import Truncated

PSEUDO = ChecksumForm.PSEUDO_HEADER
ONLY = ChecksumForm.VRRP_ONLY
LINK_LOCAL_PREFIX = 0x3FA << 118  # fe80::/10


def replace(advert: Advertisement, **changes: Any) -> Advertisement:
    """``advert`` with some fields changed (it is a NamedTuple)."""
    return advert._replace(**changes)


# --------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------

addr4 = st.builds(IPv4Address, st.integers(0, 2**32 - 1))
addr6 = st.builds(IPv6Address, st.integers(0, 2**128 - 1))
link_local6 = st.builds(IPv6Address, st.integers(0, 2**118 - 1).map(LINK_LOCAL_PREFIX.__or__))
any_addr = st.one_of(addr4, addr6, link_local6)
ttls = st.one_of(st.just(255), st.integers(-3, 300))
mostly_255 = st.sampled_from([255, 255, 255, 255, 255, 254, 64, 1, 0])

packet_infos = st.one_of(
    # consistent families, the interesting case
    st.builds(PacketInfo, addr4, st.one_of(st.just(VRRP_MULTICAST_V4), addr4), ttls),
    st.builds(
        PacketInfo,
        st.one_of(link_local6, addr6),
        st.one_of(st.just(VRRP_MULTICAST_V6), addr6),
        ttls,
    ),
    # anything at all
    st.builds(PacketInfo, any_addr, any_addr, ttls),
)


@st.composite
def plausible_payloads(draw: st.DrawFn, info: PacketInfo) -> bytes:
    """Bytes that often get past the header checks, often with a checksum valid for ``info``."""
    # Valid values most of the time, so that the checks past the header get exercised.
    first = draw(st.sampled_from([0x21, 0x31, 0x31, 0x31, 0x21, -1]))
    first = draw(st.integers(0, 255)) if first < 0 else first
    vrid = draw(st.sampled_from([1, 7, 255, 255, 0, -1]))
    vrid = draw(st.integers(0, 255)) if vrid < 0 else vrid
    count = draw(st.sampled_from([1, 1, 2, 3, 12, 0, -1]))
    count = draw(st.integers(0, 255)) if count < 0 else count
    word = draw(st.sampled_from([100, 1, 0x0FFF, 0xF064, 0, -1]))
    word = draw(st.integers(0, 0xFFFF)) if word < 0 else word
    alen = 4 if info.source.version == 4 else 16
    body_len = count * alen + (8 if first >> 4 == 2 else 0)
    if draw(st.integers(0, 4)) == 0:
        body_len = draw(st.integers(0, body_len + 20))
    body = draw(st.binary(min_size=min(body_len, 300), max_size=min(body_len, 300)))
    message = bytes([first, vrid, draw(st.integers(0, 255)), count]) + word.to_bytes(2, "big")
    message += b"\0\0" + body
    how = draw(st.sampled_from(["message", "pseudo", "pseudo", "random"]))
    if how == "random":
        return message[:6] + draw(st.binary(min_size=2, max_size=2)) + message[8:]
    prefix = b""
    if how == "pseudo" and info.source.version == info.destination.version:
        prefix = ref_pseudo(info.source, info.destination, len(message))
    value = ref_checksum(prefix + message)
    return message[:6] + value.to_bytes(2, "big") + message[8:]


@st.composite
def adverts(draw: st.DrawFn) -> tuple[Advertisement, IPAddress, IPAddress, ChecksumForm]:
    """A valid advertisement with a source, a destination and an IPv4 v3 checksum form."""
    version = draw(st.sampled_from([2, 3]))
    family = 4 if version == 2 else draw(st.sampled_from([4, 6]))
    n = draw(st.integers(1, 20))
    addrs = tuple(draw(st.lists(addr4 if family == 4 else addr6, min_size=n, max_size=n)))
    vrid = draw(st.integers(1, 255))
    priority = draw(st.integers(0, 255))
    if version == 3:
        interval = draw(st.integers(1, 4095))
        auth_type, auth_data = 0, b""
    else:
        interval = draw(st.integers(1, 255)) * 100
        auth_type = draw(st.integers(0, 255))
        auth_data = draw(st.binary(max_size=8))
    form = draw(st.sampled_from(list(ChecksumForm)))
    if family == 4:
        src: IPAddress = draw(addr4)
        dst: IPAddress = draw(st.one_of(st.just(VRRP_MULTICAST_V4), addr4))
    else:
        src = draw(link_local6)
        dst = draw(st.one_of(st.just(VRRP_MULTICAST_V6), addr6))
    advert = Advertisement(
        version, vrid, priority, interval, addrs, auth_type, auth_data, checksum_form=form
    )
    return advert, src, dst, form


def _check_decoded(advert: Advertisement, data: bytes, info: PacketInfo) -> None:
    """Invariants of anything decode_vrrp accepts, and re-encoding is stable."""
    assert info.ttl == 255
    assert advert.version in (2, 3)
    assert 1 <= advert.vrid <= 255
    assert 0 <= advert.priority <= 255
    assert len(advert.addresses) == data[3] >= 1
    assert all(a.version == info.source.version for a in advert.addresses)
    assert advert.interval_cs > 0
    if advert.version == 3:
        assert advert.interval_cs <= 4095
        assert (advert.auth_type, advert.auth_data) == (0, b"")
    else:
        assert info.source.version == 4
        assert advert.interval_cs % 100 == 0
        assert len(advert.auth_data) == 8
        assert advert.checksum_form is ONLY
    if info.source.version == 6:
        assert advert.checksum_form is PSEUDO
        assert int(info.source) >> 118 == 0x3FA
    wire = encode_vrrp(advert, info.source, info.destination, advert.checksum_form)
    assert len(wire) <= len(data)
    assert wire[:4] == data[:4]
    assert wire[8:] == data[8 : len(wire)]
    if advert.version == 3:  # the reserved nibble is ignored, and sent as zero
        assert (wire[4], wire[5]) == (data[4] & 0x0F, data[5])
    else:
        assert wire[4:6] == data[4:6]
    again = decode_vrrp(wire, info)
    # The form may differ only if the trailing bytes of ``data`` changed which one matched.
    assert replace(again, checksum_form=advert.checksum_form) == advert


def _decode(data: bytes, info: PacketInfo) -> Advertisement | None:
    try:
        advert = decode_vrrp(data, info)
    except VRRPDecodeError as exc:
        event(f"rejected: {exc.reason}")
        return None
    event(f"accepted: v{advert.version} {advert.checksum_form.value}")
    return advert


# --------------------------------------------------------------------------
# (a) arbitrary bytes
# --------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600), packet_infos)
def test_decode_arbitrary_bytes_raises_only_decode_errors(data: bytes, info: PacketInfo) -> None:
    advert = _decode(data, info)
    if advert is not None:
        _check_decoded(advert, data, info)


plausible_infos = st.one_of(
    st.builds(PacketInfo, addr4, st.one_of(st.just(VRRP_MULTICAST_V4), addr4), mostly_255),
    st.builds(PacketInfo, link_local6, st.one_of(st.just(VRRP_MULTICAST_V6), addr6), mostly_255),
    st.builds(PacketInfo, any_addr, any_addr, mostly_255),
)


@settings(max_examples=500, deadline=None)
@given(st.data(), plausible_infos)
def test_decode_plausible_bytes_raises_only_decode_errors(
    data: st.DataObject, info: PacketInfo
) -> None:
    payload = data.draw(plausible_payloads(info))
    advert = _decode(payload, info)
    if advert is not None:
        _check_decoded(advert, payload, info)


# --------------------------------------------------------------------------
# (b) mutations of valid packets
# --------------------------------------------------------------------------


def _mutate(data: st.DataObject, wire: bytes) -> tuple[bytes, list[str]]:
    steps = []
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "overwrite"]))
        if kind in ("flip", "overwrite") and not wire:
            continue
        if kind == "flip":
            i = data.draw(st.integers(0, len(wire) - 1))
            bit = data.draw(st.integers(0, 7))
            wire = wire[:i] + bytes([wire[i] ^ (1 << bit)]) + wire[i + 1 :]
            steps.append(f"flip {i}.{bit}")
        elif kind == "truncate":
            n = data.draw(st.integers(0, len(wire)))
            wire = wire[:n]
            steps.append(f"truncate {n}")
        elif kind == "extend":
            tail = data.draw(st.binary(min_size=1, max_size=40))
            wire = wire + tail
            steps.append(f"extend {tail.hex()}")
        else:
            i = data.draw(st.integers(0, len(wire) - 1))
            value = data.draw(st.integers(0, 255))
            wire = wire[:i] + bytes([value]) + wire[i + 1 :]
            steps.append(f"overwrite {i}={value}")
    return wire, steps


@settings(max_examples=400, deadline=None)
@given(adverts(), st.data())
def test_decode_mutated_packets_raises_only_decode_errors(
    case: tuple[Advertisement, IPAddress, IPAddress, ChecksumForm], data: st.DataObject
) -> None:
    advert, src, dst, form = case
    info = PacketInfo(src, dst, 255)
    mutated, steps = _mutate(data, encode_vrrp(advert, src, dst, form))
    note("mutations: " + ", ".join(steps))
    got = _decode(mutated, info)
    if got is not None:
        _check_decoded(got, mutated, info)


@settings(max_examples=300, deadline=None)
@given(adverts(), st.data())
def test_single_bit_flip_is_always_detected(
    case: tuple[Advertisement, IPAddress, IPAddress, ChecksumForm], data: st.DataObject
) -> None:
    # A one-bit change moves the one's complement sum by +-2**k, never by a multiple
    # of 0xFFFF, so the form that was sent can never match again. Only IPv4 VRRPv3,
    # which accepts two forms, can (rarely) match the *other* form instead.
    advert, src, dst, form = case
    wire = encode_vrrp(advert, src, dst, form)
    i = data.draw(st.integers(0, len(wire) - 1))
    flipped = wire[:i] + bytes([wire[i] ^ (1 << data.draw(st.integers(0, 7)))]) + wire[i + 1 :]
    got = _decode(flipped, PacketInfo(src, dst, 255))
    if got is not None:
        assert advert.version == 3
        assert src.version == 4
        assert got.checksum_form is not form


@settings(max_examples=200, deadline=None)
@given(adverts(), st.data())
def test_every_strict_prefix_is_truncated(
    case: tuple[Advertisement, IPAddress, IPAddress, ChecksumForm], data: st.DataObject
) -> None:
    advert, src, dst, form = case
    wire = encode_vrrp(advert, src, dst, form)
    n = data.draw(st.integers(0, len(wire) - 1))
    try:
        decode_vrrp(wire[:n], PacketInfo(src, dst, 255))
    except Truncated:
        return
    raise AssertionError(f"prefix of {n}/{len(wire)} bytes not reported as Truncated")


# --------------------------------------------------------------------------
# (c) round trip
# --------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(adverts())
def test_encode_decode_round_trip(
    case: tuple[Advertisement, IPAddress, IPAddress, ChecksumForm],
) -> None:
    advert, src, dst, form = case
    wire = encode_vrrp(advert, src, dst, form)
    alen = 4 if src.version == 4 else 16
    assert len(wire) == 8 + alen * len(advert.addresses) + (8 if advert.version == 2 else 0)
    # The checksum is right by the independent reference, for the form asked for.
    zeroed = wire[:6] + b"\0\0" + wire[8:]
    if advert.version == 3 and (src.version == 6 or form is PSEUDO):
        covered = ref_pseudo(src, dst, len(wire)) + zeroed
    else:
        covered = zeroed
    assert int.from_bytes(wire[6:8], "big") == ref_checksum(covered)

    got = decode_vrrp(wire, PacketInfo(src, dst, 255))
    if advert.version == 2:
        want = replace(advert, auth_data=advert.auth_data.ljust(8, b"\0"), checksum_form=ONLY)
    elif src.version == 6:
        want = replace(advert, checksum_form=PSEUDO)
    elif form is ONLY and ref_checksum(ref_pseudo(src, dst, len(wire))) == 0:
        # The pseudo-header sums to -0: both forms give the same bytes (see test_codec).
        want = replace(advert, checksum_form=PSEUDO)
    else:
        want = advert
    assert got == want
    assert encode_vrrp(got, src, dst, form) == wire
