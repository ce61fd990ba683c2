"""The VRRP codec cross-checked against two independent dissectors: scapy and tshark.

Findings pinned here (scapy 2.8, tshark/Wireshark 4.0):

* scapy's ``VRRPv3`` over IPv4 computes its checksum over the IPv4 pseudo-header
  plus the message (``in4_chksum``): RFC 5798's wording as keepalived reads it
  by default, *not* RFC 9568 section 5.2.8, which says the IPv4 checksum covers
  the VRRP message only. scapy never verifies checksums when dissecting.
  Without an IP/IPv6 underlayer it leaves the checksum 0.
* tshark, by default (``vrrp.v3_checksum_as_in_v2: FALSE``), also expects the
  pseudo-header form for IPv4 VRRPv3: it reports the RFC 9568 (VRRP-only) form
  as "Bad checksum [should be <pseudo-header checksum>]". With
  ``-o vrrp.v3_checksum_as_in_v2:TRUE`` it is the other way round.
* Both agree with us on VRRPv3 over IPv6 (pseudo-header) and VRRPv2 (message
  and authentication data, no pseudo-header).

scapy is imported only in this module.
"""

from __future__ import annotations

import struct
import subprocess
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Raw

from support import ref_checksum, ref_pseudo, require_tool
from vrrpy.codec import (
    IPPROTO_VRRP,
    VRRP_MULTICAST_V4,
    VRRP_MULTICAST_V6,
    Advertisement,
    ChecksumForm,
    IPAddress,
    PacketInfo,
    decode_vrrp,
    encode_vrrp,
)
from vrrpy.codec.errors import BadChecksum

PSEUDO = ChecksumForm.PSEUDO_HEADER
ONLY = ChecksumForm.VRRP_ONLY

SRC4 = IPv4Address("192.0.2.1")
DST4 = VRRP_MULTICAST_V4
SRC6 = IPv6Address("fe80::1")
DST6 = VRRP_MULTICAST_V6


def zeroed(wire: bytes) -> bytes:
    return wire[:6] + b"\0\0" + wire[8:]


def replace(advert: Advertisement, **changes: Any) -> Advertisement:
    """``advert`` with some fields changed (it is a NamedTuple)."""
    return advert._replace(**changes)


def info_from_scapy(packet: IP | IPv6) -> PacketInfo:
    ttl = packet.ttl if isinstance(packet, IP) else packet.hlim
    return PacketInfo(ip_address(packet.src), ip_address(packet.dst), ttl)


def v4(*addrs: str) -> tuple[IPv4Address, ...]:
    return tuple(IPv4Address(a) for a in addrs)


def v6(*addrs: str) -> tuple[IPv6Address, ...]:
    return tuple(IPv6Address(a) for a in addrs)


# ==========================================================================
# scapy
# ==========================================================================


@pytest.mark.parametrize(
    ("vrid", "priority", "adv", "addrs"),
    [
        (1, 100, 100, ["192.0.2.100"]),
        (255, 255, 4095, ["192.0.2.100", "198.51.100.7", "203.0.113.255"]),
        (42, 0, 1, [f"10.0.0.{i}" for i in range(1, 21)]),
    ],
)
def test_scapy_built_v3_ipv4_decodes(vrid: int, priority: int, adv: int, addrs: list[str]) -> None:
    raw = bytes(
        IP(src=str(SRC4), dst=str(DST4), ttl=255)
        / VRRPv3(vrid=vrid, priority=priority, adv=adv, addrlist=addrs)
    )
    packet = IP(raw)
    got = decode_vrrp(bytes(packet[VRRPv3]), info_from_scapy(packet))
    assert got == Advertisement(3, vrid, priority, adv, v4(*addrs), checksum_form=PSEUDO)


@pytest.mark.parametrize(
    ("src", "dst", "addrs"),
    [
        ("fe80::1", "ff02::12", ["fe80::1"]),
        ("fe80::abcd:1", "ff02::12", ["fe80::1", "2001:db8::1", "2001:db8::ffff"]),
        ("febf::1", "fe80::2", ["fe80::100"]),  # unicast peer
    ],
)
def test_scapy_built_v3_ipv6_decodes(src: str, dst: str, addrs: list[str]) -> None:
    raw = bytes(
        IPv6(src=src, dst=dst, hlim=255) / VRRPv3(vrid=9, priority=50, adv=75, addrlist=addrs)
    )
    packet = IPv6(raw)
    got = decode_vrrp(bytes(packet[VRRPv3]), info_from_scapy(packet))
    assert got == Advertisement(3, 9, 50, 75, v6(*addrs), checksum_form=PSEUDO)


@pytest.mark.parametrize(
    ("authtype", "password"),
    [(0, b"\0" * 8), (1, b"secret\0\0"), (1, b"12345678"), (2, b"\xde\xad\xbe\xef" * 2)],
)
def test_scapy_built_v2_decodes(authtype: int, password: bytes) -> None:
    auth1, auth2 = struct.unpack("!II", password)
    raw = bytes(
        IP(src=str(SRC4), dst=str(DST4), ttl=255)
        / VRRP(
            vrid=17,
            priority=254,
            adv=3,
            authtype=authtype,
            auth1=auth1,
            auth2=auth2,
            addrlist=["192.0.2.100", "192.0.2.101"],
        )
    )
    packet = IP(raw)
    assert isinstance(packet.payload, VRRP)
    got = decode_vrrp(bytes(packet[VRRP]), info_from_scapy(packet))
    want = Advertisement(2, 17, 254, 300, v4("192.0.2.100", "192.0.2.101"), authtype, password)
    assert got == replace(want, checksum_form=ONLY)


def test_scapy_v3_reserved_bits_ignored_by_us() -> None:
    raw = bytes(
        IP(src=str(SRC4), dst=str(DST4), ttl=255) / VRRPv3(res=0xF, adv=100, addrlist=["192.0.2.9"])
    )
    packet = IP(raw)
    assert raw[20 + 4] >> 4 == 0xF
    assert decode_vrrp(bytes(packet[VRRPv3]), info_from_scapy(packet)).interval_cs == 100


Case = tuple[Advertisement, IPAddress, IPAddress, ChecksumForm]
OUR_CASES: dict[str, Case] = {
    "v3-ipv4-pseudo": (Advertisement(3, 7, 200, 100, v4("192.0.2.100", "192.0.2.101")),
                       SRC4, DST4, PSEUDO),
    "v3-ipv4-vrrp-only": (Advertisement(3, 7, 200, 100, v4("192.0.2.100", "192.0.2.101")),
                          SRC4, DST4, ONLY),
    "v3-ipv4-unicast": (Advertisement(3, 255, 0, 4095, v4("10.1.1.1")),
                        IPv4Address("10.1.1.2"), IPv4Address("10.1.1.3"), PSEUDO),
    "v3-ipv6": (Advertisement(3, 8, 150, 50, v6("fe80::100", "2001:db8::1")), SRC6, DST6, PSEUDO),
    "v2-no-auth": (Advertisement(2, 9, 100, 300, v4("192.0.2.100")), SRC4, DST4, ONLY),
    "v2-password": (Advertisement(2, 10, 254, 100, v4("192.0.2.100", "192.0.2.200"), 1, b"secret"),
                    SRC4, DST4, ONLY),
}  # fmt: skip
OUR_ADVERTS = [pytest.param(*case, id=name) for name, case in OUR_CASES.items()]


def _wrap_for_scapy(wire: bytes, src: IPAddress, dst: IPAddress) -> IP | IPv6:
    """Our VRRP bytes inside a scapy-built IP header, re-dissected by scapy."""
    if src.version == 4:
        return IP(bytes(IP(src=str(src), dst=str(dst), ttl=255, proto=IPPROTO_VRRP) / Raw(wire)))
    return IPv6(bytes(IPv6(src=str(src), dst=str(dst), hlim=255, nh=IPPROTO_VRRP) / Raw(wire)))


@pytest.mark.parametrize(("advert", "src", "dst", "form"), OUR_ADVERTS)
def test_our_bytes_dissected_by_scapy(
    advert: Advertisement, src: IPAddress, dst: IPAddress, form: ChecksumForm
) -> None:
    wire = encode_vrrp(advert, src, dst, form)
    packet = _wrap_for_scapy(wire, src, dst)
    layer = packet[VRRPv3] if advert.version == 3 else packet[VRRP]
    assert type(layer) is (VRRPv3 if advert.version == 3 else VRRP)
    assert bytes(layer) == wire
    assert (layer.version, layer.type, layer.vrid, layer.priority, layer.ipcount) == (
        advert.version,
        1,
        advert.vrid,
        advert.priority,
        len(advert.addresses),
    )
    assert [ip_address(a) for a in layer.addrlist] == list(advert.addresses)
    assert layer.chksum == int.from_bytes(wire[6:8], "big")
    if advert.version == 3:
        assert (layer.res, layer.adv) == (0, advert.interval_cs)
    else:
        assert layer.adv * 100 == advert.interval_cs
        assert layer.authtype == advert.auth_type
        assert struct.pack("!II", layer.auth1, layer.auth2) == advert.auth_data.ljust(8, b"\0")


@pytest.mark.parametrize(("advert", "src", "dst", "form"), OUR_ADVERTS)
def test_scapy_recomputed_checksum_vs_ours(
    advert: Advertisement, src: IPAddress, dst: IPAddress, form: ChecksumForm
) -> None:
    """Let scapy recompute the checksum of our packet: equal except for our VRRP-only form."""
    wire = encode_vrrp(advert, src, dst, form)
    packet = _wrap_for_scapy(wire, src, dst)
    layer = packet[VRRPv3] if advert.version == 3 else packet[VRRP]
    layer.chksum = None
    rebuilt = bytes(layer)
    if advert.version == 3 and src.version == 4 and form is ONLY:
        assert rebuilt != wire
        assert rebuilt == encode_vrrp(advert, src, dst, PSEUDO)
    else:
        assert rebuilt == wire


def test_scapy_vrrpv3_ipv4_checksum_uses_pseudo_header() -> None:
    """scapy 2.8 checksums IPv4 VRRPv3 over the pseudo-header (in4_chksum).

    That is RFC 5798 as keepalived reads it by default (and Wireshark's default),
    but RFC 9568 section 5.2.8 says the IPv4 checksum covers the VRRP message
    only, without the pseudo-header. We accept both and say which one matched.
    """
    packet = IP(
        bytes(
            IP(src="192.0.2.1", dst="224.0.0.18", ttl=255)
            / VRRPv3(vrid=7, priority=200, adv=100, addrlist=["192.0.2.100"])
        )
    )
    wire = bytes(packet[VRRPv3])
    assert wire == bytes.fromhex("3107c8010064a19dc0000264")
    pseudo = ref_checksum(ref_pseudo(SRC4, DST4, len(wire)) + zeroed(wire))
    rfc9568 = ref_checksum(zeroed(wire))
    assert packet[VRRPv3].chksum == pseudo == 0xA19D
    assert packet[VRRPv3].chksum != rfc9568 == 0x442E
    assert decode_vrrp(wire, info_from_scapy(packet)).checksum_form is PSEUDO
    # An RFC 9568 packet from scapy needs the checksum set by hand:
    manual = IP(src="192.0.2.1", dst="224.0.0.18", ttl=255) / VRRPv3(
        vrid=7, priority=200, adv=100, addrlist=["192.0.2.100"], chksum=rfc9568
    )
    got = decode_vrrp(bytes(manual[VRRPv3]), info_from_scapy(manual))
    assert got.checksum_form is ONLY
    assert bytes(manual[VRRPv3]) == encode_vrrp(got, SRC4, DST4, ONLY)


def test_scapy_vrrpv3_checksum_over_ipv6_and_v2_match_rfc() -> None:
    six = IPv6(bytes(IPv6(src="fe80::1", dst="ff02::12", hlim=255) / VRRPv3(addrlist=["fe80::1"])))
    wire = bytes(six[VRRPv3])
    assert six[VRRPv3].chksum == ref_checksum(ref_pseudo(SRC6, DST6, len(wire)) + zeroed(wire))
    two = IP(
        bytes(
            IP(src="192.0.2.1", dst="224.0.0.18", ttl=255)
            / VRRP(addrlist=["192.0.2.9"], authtype=1, auth1=0x41424344)
        )
    )
    wire = bytes(two[VRRP])
    assert two[VRRP].chksum == ref_checksum(zeroed(wire))  # message + auth data, no pseudo-header


def test_scapy_vrrpv3_without_ip_layer_leaves_checksum_zero() -> None:
    """Documented scapy behaviour: a bare VRRPv3 (no IP/IPv6 underlayer) gets checksum 0."""
    wire = bytes(VRRPv3(vrid=7, ipcount=1, addrlist=IPv4Address("192.0.2.100").packed))
    assert wire[6:8] == b"\0\0"
    with pytest.raises(BadChecksum):
        decode_vrrp(wire, PacketInfo(SRC4, DST4, 255))


@st.composite
def scapy_cases(draw: st.DrawFn) -> tuple[Advertisement, IPAddress, IPAddress]:
    kind = draw(st.sampled_from(["v3-ipv4", "v3-ipv6", "v2"]))
    n = draw(st.integers(1, 20))
    vrid, priority = draw(st.integers(1, 255)), draw(st.integers(0, 255))
    if kind == "v3-ipv6":
        addrs = draw(st.lists(st.integers(0, 2**128 - 1).map(IPv6Address), min_size=n, max_size=n))
        src = IPv6Address((0xFE80 << 112) | draw(st.integers(0, 2**64 - 1)))
        return Advertisement(3, vrid, priority, draw(st.integers(1, 4095)), tuple(addrs)), src, DST6
    addrs4 = draw(st.lists(st.integers(0, 2**32 - 1).map(IPv4Address), min_size=n, max_size=n))
    src4 = IPv4Address(draw(st.integers(0, 2**32 - 1)))
    dst4 = draw(st.one_of(st.just(DST4), st.integers(0, 2**32 - 1).map(IPv4Address)))
    if kind == "v3-ipv4":
        return (
            Advertisement(3, vrid, priority, draw(st.integers(1, 4095)), tuple(addrs4)),
            src4,
            dst4,
        )
    auth = draw(st.binary(min_size=8, max_size=8))
    interval = draw(st.integers(1, 255)) * 100
    return (
        Advertisement(2, vrid, priority, interval, tuple(addrs4), draw(st.integers(0, 255)), auth),
        src4,
        dst4,
    )


@settings(max_examples=200, deadline=None)
@given(scapy_cases())
def test_scapy_and_ours_build_identical_bytes(
    case: tuple[Advertisement, IPAddress, IPAddress],
) -> None:
    advert, src, dst = case
    addrlist = [str(a) for a in advert.addresses]
    if advert.version == 3:
        under = (
            IP(src=str(src), dst=str(dst), ttl=255)
            if src.version == 4
            else IPv6(src=str(src), dst=str(dst), hlim=255)
        )
        built = under / VRRPv3(
            vrid=advert.vrid, priority=advert.priority, adv=advert.interval_cs, addrlist=addrlist
        )
        layer = VRRPv3
    else:
        auth1, auth2 = struct.unpack("!II", advert.auth_data)
        built = IP(src=str(src), dst=str(dst), ttl=255) / VRRP(
            vrid=advert.vrid,
            priority=advert.priority,
            adv=advert.interval_cs // 100,
            authtype=advert.auth_type,
            auth1=auth1,
            auth2=auth2,
            addrlist=addrlist,
        )
        layer = VRRP
    theirs = bytes(built[layer])
    # scapy's form for IPv4 VRRPv3 is the pseudo-header (see above).
    assert theirs == encode_vrrp(advert, src, dst, PSEUDO)
    got = decode_vrrp(theirs, PacketInfo(src, dst, 255))
    assert got.addresses == advert.addresses
    assert (got.vrid, got.priority, got.interval_cs) == (
        advert.vrid,
        advert.priority,
        advert.interval_cs,
    )


# ==========================================================================
# tshark
# ==========================================================================

TSHARK_FIELDS = [
    "frame.number",
    "eth.src",
    "ip.ttl",
    "ipv6.hlim",
    "ip.checksum.status",
    "vrrp.version",
    "vrrp.type",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.addr_count",
    "vrrp.checksum",
    "vrrp.checksum.status",
    "vrrp.ip_addr",
    "vrrp.ipv6_addr",
    "vrrp.short_adver_int",
    "vrrp.adver_int",
    "vrrp.auth_type",
    "vrrp.auth_string",
    "_ws.expert.message",
]
GOOD, BAD = "1", "0"  # tshark's checksum status values (2 would be "unverified")
V2_PREF = "vrrp.v3_checksum_as_in_v2"


def _zero_checksum_advert() -> Advertisement:
    """An IPv4 VRRPv3 advert whose VRRP-only checksum is 0x0000 (message sums to -0)."""
    for vrid in range(1, 256):
        for priority in range(256):
            advert = Advertisement(3, vrid, priority, 100, v4("192.0.2.100"))
            if encode_vrrp(advert, SRC4, DST4, ONLY)[6:8] == b"\0\0":
                return advert
    raise AssertionError("no advert with a zero checksum")


def _checksum_ffff(wire: bytes) -> bytes:
    """The same packet with checksum 0xFFFF instead of 0x0000 (the other one's complement zero)."""
    assert wire[6:8] == b"\0\0"
    return wire[:6] + b"\xff\xff" + wire[8:]


def _corrupt(wire: bytes) -> bytes:
    return wire[:7] + bytes([wire[7] ^ 0x40]) + wire[8:]


TsharkCase = tuple[str, Advertisement, IPAddress, IPAddress, bytes]  # name, ..., wire


def _tshark_cases() -> list[TsharkCase]:
    cases: list[TsharkCase] = []
    for name, (advert, src, dst, form) in OUR_CASES.items():
        cases.append((name, advert, src, dst, encode_vrrp(advert, src, dst, form)))
    big6 = Advertisement(
        3, 255, 255, 4095, (SRC6, *v6(*(f"2001:db8::{i:x}" for i in range(1, 20))))
    )
    cases.append(("v3-ipv6-big", big6, SRC6, DST6, encode_vrrp(big6, SRC6, DST6)))
    full = Advertisement(2, 200, 1, 25500, v4("192.0.2.100"), 1, b"12345678")
    cases.append(("v2-password-8", full, SRC4, DST4, encode_vrrp(full, SRC4, DST4)))
    zero = _zero_checksum_advert()
    wire = encode_vrrp(zero, SRC4, DST4, ONLY)
    cases.append(("v3-ipv4-only-cksum-0000", zero, SRC4, DST4, wire))
    cases.append(("v3-ipv4-only-cksum-ffff", zero, SRC4, DST4, _checksum_ffff(wire)))
    for name in ("v3-ipv4-pseudo", "v3-ipv6", "v2-password"):
        advert, src, dst, form = OUR_CASES[name]
        bad = _corrupt(encode_vrrp(advert, src, dst, form))
        cases.append(
            (name.replace("-pseudo", "").replace("-password", "") + "-bad", advert, src, dst, bad)
        )
    return cases


def ethernet_frame(wire: bytes, vrid: int, src: IPAddress, dst: IPAddress) -> bytes:
    """Ethernet + IPv4/IPv6 header (TTL / hop limit 255, protocol 112) around ``wire``."""
    if src.version == 4:
        dst_mac = bytes.fromhex("01005e000012")
        src_mac = bytes.fromhex("00005e0001") + bytes([vrid])  # RFC 9568 7.3, IPv4
        header = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(wire), 0, 0, 255, IPPROTO_VRRP, 0,
            src.packed, dst.packed,
        )  # fmt: skip
        header = header[:10] + ref_checksum(header).to_bytes(2, "big") + header[12:]
        return dst_mac + src_mac + b"\x08\x00" + header + wire
    dst_mac = bytes.fromhex("333300000012")
    src_mac = bytes.fromhex("00005e0002") + bytes([vrid])  # RFC 9568 7.3, IPv6
    header = struct.pack(
        "!IHBB16s16s", 0x6 << 28, len(wire), IPPROTO_VRRP, 255, src.packed, dst.packed
    )
    return dst_mac + src_mac + b"\x86\xdd" + header + wire


def write_pcap(path: Path, frames: list[bytes]) -> None:
    """Classic libpcap file: microsecond timestamps, linktype 1 (Ethernet)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def run_tshark(pcap: Path, *prefs: str) -> list[dict[str, str]]:
    tshark = require_tool("tshark")
    command = [tshark, "-n", "-r", str(pcap), "-o", "ip.check_checksum:TRUE"]
    for pref in prefs:
        command += ["-o", pref]
    command += ["-T", "fields", "-E", "separator=,", "-E", "aggregator=;", "-E", "header=y"]
    for field in TSHARK_FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = lines[0].split(",")
    assert header == TSHARK_FIELDS
    return [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


@pytest.fixture(scope="module")
def tshark_pcap(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[TsharkCase]]:
    cases = _tshark_cases()
    pcap = tmp_path_factory.mktemp("tshark") / "vrrp.pcap"
    write_pcap(
        pcap, [ethernet_frame(wire, advert.vrid, src, dst) for _, advert, src, dst, wire in cases]
    )
    return pcap, cases


def _expected_fields(advert: Advertisement, src: IPAddress, wire: bytes) -> dict[str, str]:
    fields = {
        "vrrp.version": str(advert.version),
        "vrrp.type": "1",
        "vrrp.virt_rtr_id": str(advert.vrid),
        "vrrp.prio": str(advert.priority),
        "vrrp.addr_count": str(len(advert.addresses)),
        "vrrp.checksum": f"0x{int.from_bytes(wire[6:8], 'big'):04x}",
    }
    joined = ";".join(str(a) for a in advert.addresses)
    fields["vrrp.ip_addr"] = joined if src.version == 4 else ""
    fields["vrrp.ipv6_addr"] = joined if src.version == 6 else ""
    if advert.version == 3:
        fields.update({"vrrp.short_adver_int": str(advert.interval_cs), "vrrp.adver_int": ""})
        fields.update({"vrrp.auth_type": "", "vrrp.auth_string": ""})
    else:
        fields.update(
            {"vrrp.short_adver_int": "", "vrrp.adver_int": str(advert.interval_cs // 100)}
        )
        fields["vrrp.auth_type"] = str(advert.auth_type)
        password = advert.auth_data.rstrip(b"\0").decode() if advert.auth_type == 1 else ""
        fields["vrrp.auth_string"] = password
    if src.version == 4:
        fields.update({"ip.ttl": "255", "ipv6.hlim": "", "ip.checksum.status": GOOD})
        fields["eth.src"] = f"00:00:5e:00:01:{advert.vrid:02x}"
    else:
        fields.update({"ip.ttl": "", "ipv6.hlim": "255", "ip.checksum.status": ""})
        fields["eth.src"] = f"00:00:5e:00:02:{advert.vrid:02x}"
    return fields


def test_tshark_fields_match(tshark_pcap: tuple[Path, list[TsharkCase]]) -> None:
    require_tool("tshark")
    pcap, cases = tshark_pcap
    rows = run_tshark(pcap)
    assert len(rows) == len(cases)
    for row, (name, advert, src, dst, wire) in zip(rows, cases, strict=True):
        expected = _expected_fields(advert, src, wire)
        assert {k: row[k] for k in expected} == expected, name
        ours_ok = True
        try:
            decode_vrrp(wire, PacketInfo(src, dst, 255))
        except BadChecksum:
            ours_ok = False
        assert ours_ok == (not name.endswith("-bad")), name


def test_tshark_checksum_status_default_prefs(
    tshark_pcap: tuple[Path, list[TsharkCase]],
) -> None:
    """tshark's default: IPv4 VRRPv3 checksums include the pseudo-header (like scapy, keepalived).

    So our RFC 9568 (VRRP-only) form is "Bad" in tshark's view, and tshark names
    the pseudo-header checksum as the one it expected. Everything else is Good.
    """
    require_tool("tshark")
    pcap, cases = tshark_pcap
    rows = run_tshark(pcap)
    status = {
        name: row["vrrp.checksum.status"] for row, (name, *_) in zip(rows, cases, strict=True)
    }
    assert status == {
        "v3-ipv4-pseudo": GOOD,
        "v3-ipv4-vrrp-only": BAD,  # RFC 9568 form, rejected by tshark's default
        "v3-ipv4-unicast": GOOD,
        "v3-ipv6": GOOD,
        "v2-no-auth": GOOD,
        "v2-password": GOOD,
        "v3-ipv6-big": GOOD,
        "v2-password-8": GOOD,
        "v3-ipv4-only-cksum-0000": BAD,
        "v3-ipv4-only-cksum-ffff": BAD,
        "v3-ipv4-bad": BAD,
        "v3-ipv6-bad": BAD,
        "v2-bad": BAD,
    }
    by_name = {name: row for row, (name, *_) in zip(rows, cases, strict=True)}
    advert, src, dst, _form = OUR_CASES["v3-ipv4-vrrp-only"]
    pseudo_value = int.from_bytes(encode_vrrp(advert, src, dst, PSEUDO)[6:8], "big")
    assert f"should be 0x{pseudo_value:04x}" in by_name["v3-ipv4-vrrp-only"]["_ws.expert.message"]
    assert by_name["v3-ipv4-pseudo"]["_ws.expert.message"] == ""


def test_tshark_checksum_status_v3_checksum_as_in_v2(
    tshark_pcap: tuple[Path, list[TsharkCase]],
) -> None:
    """With ``vrrp.v3_checksum_as_in_v2:TRUE`` tshark expects the RFC 9568 IPv4 form instead.

    Its zero edge agrees with ours: a message summing to -0 verifies with the
    checksum field 0x0000 and with 0xFFFF (both one's complement zeros).
    """
    tshark = require_tool("tshark")
    prefs = subprocess.run(
        [tshark, "-G", "defaultprefs"], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    if V2_PREF not in prefs:
        pytest.skip(f"this tshark has no {V2_PREF} preference")
    pcap, cases = tshark_pcap
    rows = run_tshark(pcap, f"{V2_PREF}:TRUE")
    status = {
        name: row["vrrp.checksum.status"] for row, (name, *_) in zip(rows, cases, strict=True)
    }
    assert status == {
        "v3-ipv4-pseudo": BAD,  # now the pseudo-header form is the odd one out
        "v3-ipv4-vrrp-only": GOOD,
        "v3-ipv4-unicast": BAD,
        "v3-ipv6": GOOD,  # IPv6 always uses the pseudo-header
        "v2-no-auth": GOOD,
        "v2-password": GOOD,
        "v3-ipv6-big": GOOD,
        "v2-password-8": GOOD,
        "v3-ipv4-only-cksum-0000": GOOD,
        "v3-ipv4-only-cksum-ffff": GOOD,
        "v3-ipv4-bad": BAD,
        "v3-ipv6-bad": BAD,
        "v2-bad": BAD,
    }
    # ...and we accept both zero encodings too, as the VRRP-only form.
    for name, _advert, src, dst, wire in cases:
        if "cksum-" in name:
            assert decode_vrrp(wire, PacketInfo(src, dst, 255)).checksum_form is ONLY, name
