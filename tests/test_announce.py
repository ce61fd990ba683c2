"""Gratuitous ARP and unsolicited NA: the frame bytes, and what a Linux neighbour makes of them.

The pure tests check every field of the frames twice: against bytes built by
hand here with struct and against scapy, which built the frames before vrrpy
packed them itself and stays the oracle (byte-for-byte equality over addresses,
MACs and options drawn by hypothesis), plus tshark as a third opinion. The
namespace tests (root) send the frames from one lab host and check that the
other host's kernel moves its neighbour entries to the announced MAC, and that
the takeover path (prebuilt frames, ``send_frames``) sends without parsing or
raising.
"""

from __future__ import annotations

import itertools
import json
import struct
import subprocess
import sys
import textwrap
import time
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from support import require_root, require_tool
from vrrpy.lab import Host, Lab
from vrrpy.net.announce import (
    ALL_NODES,
    ALL_NODES_MAC,
    BROADCAST_MAC,
    ZERO_MAC,
    garp_frame,
    normalize_mac,
    schedule,
    unsolicited_na_frame,
)

VIP4 = IPv4Address("192.0.2.100")
VIP6 = IPv6Address("2001:db8::100")
VMAC4 = "00:00:5e:00:01:33"  # RFC 9568 7.3, VRID 51, IPv4
VMAC6 = "00:00:5e:00:02:33"  # RFC 9568 7.3, VRID 51, IPv6
STALE_MAC = "02:00:00:00:00:99"


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ref_checksum(data: bytes) -> int:
    """RFC 1071 checksum, word by word (independent of vrrpy and scapy)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def icmpv6_checksum_ok(frame: bytes) -> bool:
    """The ICMPv6 message of an Ethernet/IPv6 frame sums, with its pseudo-header, to -0."""
    ip6 = frame[14:54]
    payload = frame[54:]
    pseudo = ip6[8:40] + struct.pack("!I3xB", len(payload), 58)
    return ref_checksum(pseudo + payload) == 0


# ==========================================================================
# Import cost
# ==========================================================================


HEAVY = ("scapy", "pyroute2", "asyncio", "concurrent.futures")


def test_importing_vrrpy_net_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, vrrpy.net, vrrpy.net.announce\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_building_frames_imports_nothing() -> None:
    """The first frame is built at start; the takeover path must find nothing left to import."""
    code = (
        "import sys\n"
        "from ipaddress import IPv4Address, IPv6Address\n"
        "from vrrpy.net.announce import garp_frame, unsolicited_na_frame\n"
        "before = set(sys.modules)\n"
        "garp_frame(IPv4Address('192.0.2.1'), '02:00:00:00:00:01')\n"
        "zeros = '00:00:00:00:00:00'\n"
        "garp_frame(IPv4Address('192.0.2.1'), '02:00:00:00:00:01', target_mac=zeros)\n"
        "unsolicited_na_frame(IPv6Address('2001:db8::1'), '02:00:00:00:00:01')\n"
        "unsolicited_na_frame(IPv6Address('2001:db8::1'), '02:00:00:00:00:01',\n"
        "                     IPv6Address('fe80::1'), router=False)\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scapy_is_not_a_dependency_of_the_module() -> None:
    source = Path(__file__).parent.parent / "src" / "vrrpy" / "net" / "announce.py"
    code = "\n".join(
        line
        for line in source.read_text().splitlines()
        if line.lstrip().startswith(("import", "from"))
    )
    assert "scapy" not in code
    import vrrpy.net.announce as announce

    assert not hasattr(announce, "preload")


# ==========================================================================
# scapy, the oracle: what it builds is what vrrpy builds, byte for byte
# ==========================================================================


def scapy_garp(ip: IPv4Address, mac: str, target_mac: str | None = None) -> bytes:
    """The frame as vrrpy built it with scapy before it packed frames itself."""
    arp = ARP(
        hwtype=1, ptype=0x0800, hwlen=6, plen=4, op=1,
        hwsrc=mac, psrc=str(ip), hwdst=mac if target_mac is None else target_mac, pdst=str(ip),
    )  # fmt: skip
    return bytes(Ether(dst=BROADCAST_MAC, src=mac, type=0x0806) / arp)


def scapy_na(ip: IPv6Address, mac: str, source: IPv6Address | None, router: bool) -> bytes:
    src = ip if source is None else source
    return bytes(
        Ether(dst=ALL_NODES_MAC, src=mac, type=0x86DD)
        / IPv6(src=str(src), dst=str(ALL_NODES), hlim=255, nh=58)
        / ICMPv6ND_NA(code=0, R=int(router), S=0, O=1, res=0, tgt=str(ip))
        / ICMPv6NDOptDstLLAddr(lladdr=mac)
    )


def _mac(octets: bytes) -> str:
    return ":".join(f"{b:02x}" for b in octets)


# Unicast, not all zeros: what can be announced. Upper or lower case hex.
unicast_macs = (
    st.binary(min_size=6, max_size=6)
    .map(lambda b: bytes([b[0] & 0xFE]) + b[1:])
    .filter(lambda b: any(b))
    .flatmap(lambda b: st.sampled_from([_mac(b), _mac(b).upper()]))
)
any_macs = st.binary(min_size=6, max_size=6).map(_mac)
ipv4s = st.ip_addresses(v=4).filter(
    lambda a: not (a.is_multicast or a.is_unspecified or a == IPv4Address("255.255.255.255"))
)
ipv6s = st.ip_addresses(v=6).filter(lambda a: not (a.is_multicast or a.is_unspecified))


@settings(max_examples=500, deadline=None)
@given(
    ip=ipv4s,
    mac=unicast_macs,
    target=st.none() | st.sampled_from([ZERO_MAC, BROADCAST_MAC]) | any_macs,
)
def test_garp_is_what_scapy_builds(ip: IPv4Address, mac: str, target: str | None) -> None:
    expected = scapy_garp(ip, mac.lower(), target)
    assert garp_frame(ip, mac, target_mac=target) == expected


@settings(max_examples=500, deadline=None)
@given(ip=ipv6s, mac=unicast_macs, source=st.none() | ipv6s, router=st.booleans())
def test_unsolicited_na_is_what_scapy_builds(
    ip: IPv6Address, mac: str, source: IPv6Address | None, router: bool
) -> None:
    frame = unsolicited_na_frame(ip, mac, source, router=router)
    assert frame == scapy_na(ip, mac.lower(), source, router)
    assert icmpv6_checksum_ok(frame)


def test_an_na_whose_checksum_is_zero_matches_scapy() -> None:
    """The one-in-65535 case where the sum folds to 0xFFFF: the field is 0, as scapy writes it."""
    mac = "02:00:00:00:77:2d"  # found by search: this MAC makes VIP6's checksum 0x0000
    frame = unsolicited_na_frame(VIP6, mac)
    assert frame[56:58] == b"\0\0"
    assert frame == scapy_na(VIP6, mac, None, True)
    assert icmpv6_checksum_ok(frame)


# ==========================================================================
# Gratuitous ARP
# ==========================================================================


def expected_garp(ip: IPv4Address, mac: str, target_mac: str) -> bytes:
    """The frame built by hand: Ethernet broadcast, ARP request, spa = tpa = ip."""
    eth = mac_bytes(BROADCAST_MAC) + mac_bytes(mac) + b"\x08\x06"
    arp = struct.pack(
        "!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1,
        mac_bytes(mac), ip.packed, mac_bytes(target_mac), ip.packed,
    )  # fmt: skip
    return eth + arp


@pytest.mark.parametrize("mac", [VMAC4, "02:00:00:AB:cd:EF", "52:54:00:12:34:56"])
def test_garp_frame_every_field(mac: str) -> None:
    frame = garp_frame(VIP4, mac)
    lower = mac.lower()
    # Target hardware address = the announced MAC (RFC 9568 errata 7947/7949).
    assert frame == expected_garp(VIP4, lower, lower)
    assert len(frame) == 42

    packet = Ether(frame)
    assert packet.dst == BROADCAST_MAC
    assert packet.src == lower
    assert packet.type == 0x0806
    arp = packet[ARP]
    assert arp.hwtype == 1
    assert arp.ptype == 0x0800
    assert arp.hwlen == 6
    assert arp.plen == 4
    assert arp.op == 1  # request, as keepalived and the kernel send it
    assert arp.hwsrc == lower
    assert arp.psrc == str(VIP4)
    assert arp.hwdst == lower
    assert arp.pdst == str(VIP4)
    assert arp.payload.name == "NoPayload"


@pytest.mark.parametrize("target", [ZERO_MAC, BROADCAST_MAC])
def test_garp_target_hardware_address_can_look_like_the_kernel_or_keepalived(target: str) -> None:
    frame = garp_frame(VIP4, VMAC4, target_mac=target)
    assert frame == expected_garp(VIP4, VMAC4, target)
    assert Ether(frame)[ARP].hwdst == target


def test_garp_frames_differ_only_where_the_address_or_mac_does() -> None:
    a = garp_frame(IPv4Address("192.0.2.1"), VMAC4)
    b = garp_frame(IPv4Address("198.51.100.7"), VMAC4)
    assert a[:28] == b[:28] and a[32:38] == b[32:38]
    assert a[28:32] == a[38:42] == IPv4Address("192.0.2.1").packed
    assert b[28:32] == b[38:42] == IPv4Address("198.51.100.7").packed


# ==========================================================================
# Unsolicited Neighbor Advertisement
# ==========================================================================


def expected_na(ip: IPv6Address, mac: str, source: IPv6Address, router: bool = True) -> bytes:
    """The frame built by hand, checksum computed here."""
    eth = mac_bytes(ALL_NODES_MAC) + mac_bytes(mac) + b"\x86\xdd"
    flags = (0x80 if router else 0) | 0x20  # R, S = 0, O
    icmp = struct.pack("!BBHB3x16s", 136, 0, 0, flags, ip.packed)
    icmp += struct.pack("!BB6s", 2, 1, mac_bytes(mac))  # Target Link-Layer Address option
    pseudo = source.packed + ALL_NODES.packed + struct.pack("!I3xB", len(icmp), 58)
    icmp = icmp[:2] + ref_checksum(pseudo + icmp).to_bytes(2, "big") + icmp[4:]
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, source.packed, ALL_NODES.packed)
    return eth + ip6 + icmp


@pytest.mark.parametrize(
    ("ip", "mac", "source"),
    [
        (VIP6, VMAC6, None),  # default: the virtual address is its own source
        (VIP6, "02:00:00:00:00:0A", IPv6Address("fe80::1")),
        (IPv6Address("fe80::200:5eff:fe00:233"), VMAC6, None),  # a virtual link-local address
        (IPv6Address("2001:db8:ffff::1:2:3"), "52:54:00:12:34:56", IPv6Address("2001:db8::1")),
    ],
)
def test_unsolicited_na_every_field(ip: IPv6Address, mac: str, source: IPv6Address | None) -> None:
    frame = unsolicited_na_frame(ip, mac, source)
    lower = mac.lower()
    src = ip if source is None else source
    assert frame == expected_na(ip, lower, src)
    assert len(frame) == 14 + 40 + 24 + 8
    assert icmpv6_checksum_ok(frame)

    packet = Ether(frame)
    assert packet.dst == ALL_NODES_MAC
    assert packet.src == lower
    assert packet.type == 0x86DD
    ip6 = packet[IPv6]
    assert ip6.version == 6
    assert ip6.tc == 0
    assert ip6.fl == 0
    assert ip6.plen == 32
    assert ip6.nh == 58
    assert ip6.hlim == 255
    assert ip6.src == str(src)
    assert ip6.dst == "ff02::1"
    na = packet[ICMPv6ND_NA]
    assert na.type == 136
    assert na.code == 0
    assert (na.R, na.S, na.O, na.res) == (1, 0, 1, 0)
    assert na.tgt == str(ip)
    option = packet[ICMPv6NDOptDstLLAddr]
    assert option.type == 2  # Target Link-Layer Address
    assert option.len == 1  # units of 8 octets
    assert option.lladdr == lower
    assert option.payload.name == "NoPayload"

    # scapy recomputes the same checksum from scratch.
    received = na.cksum
    del packet[ICMPv6ND_NA].cksum
    rebuilt = bytes(packet)
    assert rebuilt == frame
    assert Ether(rebuilt)[ICMPv6ND_NA].cksum == received


def test_unsolicited_na_without_router_flag() -> None:
    frame = unsolicited_na_frame(VIP6, VMAC6, router=False)
    assert frame == expected_na(VIP6, VMAC6, VIP6, router=False)
    na = Ether(frame)[ICMPv6ND_NA]
    assert (na.R, na.S, na.O) == (0, 0, 1)
    assert icmpv6_checksum_ok(frame)


def test_a_corrupted_na_fails_the_checksum_check() -> None:
    frame = bytearray(unsolicited_na_frame(VIP6, VMAC6))
    frame[-1] ^= 0x01
    assert not icmpv6_checksum_ok(bytes(frame))


# ==========================================================================
# tshark, a third opinion
# ==========================================================================

TSHARK_FIELDS = [
    "eth.dst",
    "eth.src",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.hw_mac",
    "arp.dst.proto_ipv4",
    "arp.isgratuitous",
    "ipv6.src",
    "ipv6.dst",
    "ipv6.hlim",
    "icmpv6.type",
    "icmpv6.code",
    "icmpv6.checksum.status",
    "icmpv6.nd.na.flag.r",
    "icmpv6.nd.na.flag.s",
    "icmpv6.nd.na.flag.o",
    "icmpv6.nd.na.target_address",
    "icmpv6.opt.type",
    "icmpv6.opt.linkaddr",
]


def write_pcap(path: Path, frames: list[bytes]) -> None:
    """Classic libpcap file: microsecond timestamps, linktype 1 (Ethernet)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, frame in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def test_tshark_reads_the_frames_as_announcements(tmp_path: Path) -> None:
    tshark = require_tool("tshark")
    pcap = tmp_path / "announce.pcap"
    write_pcap(pcap, [garp_frame(VIP4, VMAC4), unsolicited_na_frame(VIP6, VMAC6)])
    command = [tshark, "-n", "-r", str(pcap), "-T", "fields", "-E", "separator=,"]
    for field in TSHARK_FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    rows = [
        dict(zip(TSHARK_FIELDS, line.split(","), strict=True))
        for line in result.stdout.splitlines()
    ]
    assert len(rows) == 2
    true = {"1", "True"}
    garp, na = rows
    assert garp["eth.dst"] == BROADCAST_MAC and garp["eth.src"] == VMAC4
    assert garp["arp.opcode"] == "1"
    assert garp["arp.src.hw_mac"] == garp["arp.dst.hw_mac"] == VMAC4
    assert garp["arp.src.proto_ipv4"] == garp["arp.dst.proto_ipv4"] == str(VIP4)
    assert garp["arp.isgratuitous"] in true
    assert na["eth.dst"] == ALL_NODES_MAC and na["eth.src"] == VMAC6
    assert (na["ipv6.src"], na["ipv6.dst"], na["ipv6.hlim"]) == (str(VIP6), "ff02::1", "255")
    assert (na["icmpv6.type"], na["icmpv6.code"]) == ("136", "0")
    assert na["icmpv6.checksum.status"] == "1"  # good
    assert na["icmpv6.nd.na.flag.r"] in true
    assert na["icmpv6.nd.na.flag.s"] not in true
    assert na["icmpv6.nd.na.flag.o"] in true
    assert na["icmpv6.nd.na.target_address"] == str(VIP6)
    assert (na["icmpv6.opt.type"], na["icmpv6.opt.linkaddr"]) == ("2", VMAC6)


# ==========================================================================
# Argument checks
# ==========================================================================


def test_normalize_mac() -> None:
    assert normalize_mac("00:00:5E:00:01:FF") == "00:00:5e:00:01:ff"
    for bad in ["", "00:00:5e:00:01", "00:00:5e:00:01:33:44", "0:0:5e:0:1:33", "00-00-5e-00-01-33",
                "00:00:5e:00:01:gg", "+1:00:5e:00:01:33", " 0:00:5e:00:01:33"]:  # fmt: skip
        with pytest.raises(ValueError):
            normalize_mac(bad)


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:12", BROADCAST_MAC, ZERO_MAC, "33:33:00:00:00:01"])
def test_group_and_zero_macs_cannot_be_announced(mac: str) -> None:
    with pytest.raises(ValueError):
        garp_frame(VIP4, mac)
    with pytest.raises(ValueError):
        unsolicited_na_frame(VIP6, mac)


def test_wrong_family_and_unannounceable_addresses_are_refused() -> None:
    with pytest.raises(TypeError):
        garp_frame(VIP6, VMAC4)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        unsolicited_na_frame(VIP4, VMAC6)  # type: ignore[arg-type]
    for ip4 in ["224.0.0.18", "0.0.0.0", "255.255.255.255"]:
        with pytest.raises(ValueError):
            garp_frame(IPv4Address(ip4), VMAC4)
    for ip6 in ["ff02::12", "::"]:
        with pytest.raises(ValueError):
            unsolicited_na_frame(IPv6Address(ip6), VMAC6)
    with pytest.raises(ValueError):
        unsolicited_na_frame(VIP6, VMAC6, IPv6Address("ff02::1"))


# ==========================================================================
# schedule
# ==========================================================================


def test_schedule_is_the_burst_from_now() -> None:
    assert schedule(100.0, 5, 0.25, 0.0) == [100.0, 100.25, 100.5, 100.75, 101.0]
    assert schedule(7.0, 1, 1.0, 60.0) == [7.0]
    assert schedule(7.0, 0, 1.0, 60.0) == []
    assert schedule(7.0, 3, 0.0, 0.0) == [7.0, 7.0, 7.0]  # back to back, keepalived's default


def test_schedule_does_not_accumulate_rounding() -> None:
    times = schedule(1000.0, 1000, 0.1, 0.0)
    assert times[0] == 1000.0
    assert times[-1] == 1000.0 + 999 * 0.1
    assert all(b > a for a, b in itertools.pairwise(times))


@pytest.mark.parametrize(
    ("repeat", "interval", "refresh"),
    [
        (-1, 1.0, 0.0),
        (2, -0.1, 0.0),
        (2, 1.0, -1.0),
        (2, float("nan"), 0.0),
        (2, 1.0, float("inf")),
        (1.5, 1.0, 0.0),
        (True, 1.0, 0.0),
    ],
)
def test_schedule_refuses_bad_settings(repeat: int, interval: float, refresh: float) -> None:
    with pytest.raises(ValueError):
        schedule(0.0, repeat, interval, refresh)


# ==========================================================================
# On the wire, in a namespace lab (root)
# ==========================================================================


@pytest.fixture
def _root_and_iproute2() -> None:
    require_root()


root = pytest.mark.usefixtures("_root_and_iproute2")


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


CAPTURE = textwrap.dedent(
    """
    import socket, sys, time
    want, timeout = int(sys.argv[1]), float(sys.argv[2])
    source, vip4, vip6 = (bytes.fromhex(a) for a in sys.argv[3:6])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))  # ETH_P_ALL
    s.bind(("eth0", 0))
    s.settimeout(0.1)
    print("ready", flush=True)
    got, deadline = 0, time.monotonic() + timeout
    while got < want and time.monotonic() < deadline:
        try:
            data, addr = s.recvfrom(65535)
        except TimeoutError:
            continue
        if data[6:12] != source or addr[2] == socket.PACKET_OUTGOING:
            continue
        etype = int.from_bytes(data[12:14], "big")
        arp = etype == 0x0806 and data[28:32] == vip4
        na = etype == 0x86DD and data[20] == 58 and data[54] == 136 and data[62:78] == vip6
        if arp or na:
            print(data.hex(), flush=True)
            got += 1
    """
)

SEND = textwrap.dedent(
    """
    import json, sys
    from ipaddress import ip_address
    from vrrpy.net.announce import Announcer
    mac, repeat = sys.argv[1], int(sys.argv[2])
    addresses = [ip_address(a) for a in sys.argv[3:]]
    with Announcer("eth0") as announcer:
        counts = [announcer.send(addresses, mac) for _ in range(repeat)]
        frames = [announcer.frame(a, mac).hex() for a in addresses]
    print(json.dumps({"counts": counts, "frames": frames}))
    """
)


def _neigh(host: Host, address: str) -> str:
    return host.run(["ip", "neigh", "show", address, "dev", "eth0"]).stdout.strip()


def _wait_for_lladdr(host: Host, address: str, mac: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = _neigh(host, address)
        if f"lladdr {mac} " in line + " " or time.monotonic() > deadline:
            return line
        time.sleep(0.05)


@root
@pytest.mark.system
@pytest.mark.parametrize("which_mac", ["vmac", "eth0"])
def test_announcements_move_a_stale_neighbour_entry_to_the_new_mac(which_mac: str) -> None:
    with Lab(hosts=2) as lab:
        h1, h2 = lab["h1"], lab["h2"]
        lab.wait_for_dad()
        mac = VMAC4 if which_mac == "vmac" else h1.mac
        # Linux only updates an existing entry on a gratuitous ARP (arp_accept=0), and an
        # unsolicited NA only an existing one too: plant stale entries pointing elsewhere.
        h2.run(["sysctl", "-qw", "net.ipv4.conf.eth0.arp_accept=0"])
        for vip in (VIP4, VIP6):
            h2.run(
                ["ip", "neigh", "add", str(vip), "lladdr", STALE_MAC, "dev", "eth0", "nud", "stale"]
            )
        assert f"lladdr {STALE_MAC}" in _neigh(h2, str(VIP4))
        assert f"lladdr {STALE_MAC}" in _neigh(h2, str(VIP6))

        repeat = 3
        capture = h2.popen(
            [
                *(sys.executable, "-c", CAPTURE, str(2 * repeat), "10"),
                *(mac.replace(":", ""), VIP4.packed.hex(), VIP6.packed.hex()),
            ],
            stdout=subprocess.PIPE,
        )
        assert capture.stdout is not None
        assert capture.stdout.readline().strip() == b"ready"

        sent = h1.run([sys.executable, "-c", SEND, mac, str(repeat), str(VIP4), str(VIP6)])
        result = json.loads(sent.stdout)
        assert result["counts"] == [2] * repeat
        assert result["frames"] == [
            garp_frame(VIP4, mac).hex(),
            unsolicited_na_frame(VIP6, mac).hex(),
        ]

        out, _ = capture.communicate(timeout=15)
        received = out.decode().split()
        # What h2 received is byte for byte what was built (the bridge changes nothing).
        assert received == result["frames"] * repeat

        line4 = _wait_for_lladdr(h2, str(VIP4), mac)
        assert f"lladdr {mac} " in line4 + " ", line4
        line6 = _wait_for_lladdr(h2, str(VIP6), mac)
        assert f"lladdr {mac} " in line6 + " ", line6
        assert " router" in line6, line6  # R flag: the neighbour is a router now
        namespaces = {h.netns for h in lab.hosts.values()}
    # Only this lab's namespaces: other labs may come and go concurrently.
    assert not namespaces & _netns_names()


FAILURES = textwrap.dedent(
    """
    import json
    from ipaddress import ip_address
    from vrrpy.net.announce import Announcer
    report = {}
    try:
        Announcer("vynosuch0")
    except OSError as exc:
        report["missing"] = exc.errno
    announcer = Announcer("eth0")
    report["cached"] = announcer.frame(ip_address("192.0.2.100"), "00:00:5E:00:01:33") is (
        announcer.frame(ip_address("192.0.2.100"), "00:00:5e:00:01:33"))
    report["empty"] = announcer.send([], "00:00:5e:00:01:33")
    try:
        announcer.send([ip_address("192.0.2.100")], "ff:ff:ff:ff:ff:ff")
    except ValueError:
        report["bad_mac"] = True
    import subprocess
    subprocess.run(["ip", "link", "set", "eth0", "down"], check=True)
    report["down"] = announcer.send([ip_address("192.0.2.100"), ip_address("2001:db8::100")],
                                    "00:00:5e:00:01:33")
    report["down_error"] = announcer.last_error is not None
    subprocess.run(["ip", "link", "set", "eth0", "up"], check=True)
    announcer.close()
    announcer.close()
    report["closed"] = announcer.closed
    try:
        announcer.send([ip_address("192.0.2.100")], "00:00:5e:00:01:33")
    except ValueError:
        report["send_after_close"] = "ValueError"
    print(json.dumps(report))
    """
)


@root
@pytest.mark.system
def test_announcer_caches_reports_failures_and_closes() -> None:
    import errno

    with Lab(hosts=1) as lab:
        out = lab["h1"].run([sys.executable, "-c", FAILURES]).stdout
    assert lab["h1"].netns not in _netns_names()
    report = json.loads(out)
    assert report == {
        "missing": errno.ENODEV,
        "cached": True,
        "empty": 0,
        "bad_mac": True,
        "down": 0,
        "down_error": True,
        "closed": True,
        "send_after_close": "ValueError",
    }


HOT_PATH = textwrap.dedent(
    """
    import json, subprocess
    from ipaddress import ip_address
    import vrrpy.net.announce as announce
    mac = "00:00:5e:00:01:33"
    addresses = [ip_address("192.0.2.100"), ip_address("2001:db8::100")]
    announcer = announce.Announcer("eth0")
    frames = announcer.frames(addresses, mac.upper())
    report = {
        "frames": [f.hex() for f in frames],
        "type": type(frames).__name__,
        "same": list(frames) == [announcer.frame(a, mac) for a in addresses],
    }
    # Whatever is wrong surfaces here, at start, not at takeover.
    for bad_mac in ("01:00:5e:00:00:12", "00:00:00:00:00:00", "nonsense"):
        try:
            announcer.frames(addresses, bad_mac)
        except ValueError:
            report.setdefault("bad_macs", 0)
            report["bad_macs"] += 1
    try:
        announcer.frames(["192.0.2.100"], mac)
    except TypeError:
        report["not_an_address"] = "TypeError"

    def refuse(*args, **kwargs):
        raise AssertionError("the hot path parsed or built something")

    # The takeover path must only send: make everything else impossible.
    for name in ("normalize_mac", "_source_mac", "garp_frame", "unsolicited_na_frame"):
        setattr(announce, name, refuse)
    report["sent"] = announcer.send_frames(frames)
    report["empty"] = announcer.send_frames(())
    subprocess.run(["ip", "link", "set", "eth0", "down"], check=True)
    report["down"] = announcer.send_frames(frames)
    report["errors_down"] = announcer.send_errors
    report["errno_down"] = announcer.last_error.errno
    subprocess.run(["ip", "link", "set", "eth0", "up"], check=True)
    # Until the kernel's link watcher has activated the device's queue (up to a second
    # on a busy machine), frames are accepted and silently dropped: wait for it.
    import time
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open("/sys/class/net/eth0/operstate") as state:
            if state.read().strip() == "up":
                break
        time.sleep(0.01)
    time.sleep(0.05)
    report["up"] = announcer.send_frames(iter(frames))
    announcer.close()
    report["after_close"] = announcer.send_frames(frames)
    report["errors"] = announcer.send_errors
    report["errno_closed"] = announcer.last_error.errno
    print(json.dumps(report))
    """
)


@root
@pytest.mark.system
def test_prebuilt_frames_are_sent_as_they_are_and_failures_are_counted_not_raised() -> None:
    import errno

    with Lab(hosts=2) as lab:
        h1, h2 = lab["h1"], lab["h2"]
        lab.wait_for_dad()
        mac = "00:00:5e:00:01:33"
        capture = h2.popen(
            [
                *(sys.executable, "-c", CAPTURE, "4", "10"),
                *(mac.replace(":", ""), VIP4.packed.hex(), VIP6.packed.hex()),
            ],
            stdout=subprocess.PIPE,
        )
        assert capture.stdout is not None
        assert capture.stdout.readline().strip() == b"ready"
        report = json.loads(h1.run([sys.executable, "-c", HOT_PATH]).stdout)
        out, _ = capture.communicate(timeout=15)
    frames = [garp_frame(VIP4, mac).hex(), unsolicited_na_frame(VIP6, mac).hex()]
    assert report == {
        "frames": frames,
        "type": "tuple",
        "same": True,
        "bad_macs": 3,
        "not_an_address": "TypeError",
        "sent": 2,
        "empty": 0,
        "down": 0,
        "errors_down": 2,
        "errno_down": errno.ENETDOWN,
        "up": 2,
        "after_close": 0,
        "errors": 4,
        "errno_closed": errno.EBADF,
    }
    # Sent before the link went down and after it came back: the same bytes, twice.
    assert out.decode().split() == frames * 2
