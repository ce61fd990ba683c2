"""vrrpy.net.rtnl: raw rtnetlink address requests, their acks, and what the kernel makes of them.

Pure tests: the request bytes field by field (packed by hand here, and decoded
by pyroute2's own message class as a second opinion), and the ack parser,
which must never raise whatever it reads (hypothesis). Namespace tests (root):
code runs inside a lab host (``ip netns exec``) and checks the addresses with
a netlink dump parsed here, independent of the module: the same address as
the pyroute2 path, the errors, the IFA_PROTO stamp, a thousand requests queued
before their acks are read, lost acks, and the claim the takeover path rests
on: when ``send_add`` returns, the address is already on the interface.
"""

from __future__ import annotations

import errno
import json
import socket
import struct
import subprocess
import sys
import textwrap
from ipaddress import IPv4Interface, IPv6Interface, ip_interface

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import require_root
from vrrpy.lab import Lab
from vrrpy.net.addresses import ADDRESS_PROTO, Interface, kernel_marks_addresses
from vrrpy.net.rtnl import AddressSocket, address_request, parse_acks

# ==========================================================================
# Import cost
# ==========================================================================


def test_importing_rtnl_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, vrrpy.net.rtnl\n"
        "heavy = [m for m in ('scapy', 'pyroute2', 'asyncio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ==========================================================================
# Requests, byte by byte
# ==========================================================================


def attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + bytes(-length & 3)


def expected_request(add: bool, seq: int, ifindex: int, iface: Interface, marks: bool) -> bytes:
    """The request as <linux/rtnetlink.h> lays it out, packed by hand."""
    v6 = iface.version == 6
    nodad = 0x02 if add and v6 else 0
    body = attr(2, iface.ip.packed) + attr(1, iface.ip.packed)  # IFA_LOCAL, IFA_ADDRESS
    if nodad:
        body += attr(8, struct.pack("=I", nodad))  # IFA_FLAGS
    if add and marks:
        body += attr(11, bytes([112]))  # IFA_PROTO
    ifa = struct.pack("=BBBBI", 10 if v6 else 2, iface.network.prefixlen, nodad, 0, ifindex)
    kind = 20 if add else 21  # RTM_NEWADDR, RTM_DELADDR
    flags = 0x01 | 0x04 | (0x400 | 0x200 if add else 0)  # REQUEST|ACK (+CREATE|EXCL)
    return struct.pack("=IHHII", 16 + len(ifa) + len(body), kind, flags, seq, 0) + ifa + body


REQUESTS = [
    IPv4Interface("192.0.2.100/24"),
    IPv4Interface("198.51.100.7/32"),
    IPv6Interface("2001:db8::100/64"),
    IPv6Interface("fe80::200:5eff:fe00:233/64"),
    IPv6Interface("2001:db8:ffff::1/128"),
]


@pytest.mark.parametrize("iface", REQUESTS, ids=str)
@pytest.mark.parametrize("add", [True, False], ids=["add", "remove"])
@pytest.mark.parametrize("marks", [True, False], ids=["marks", "nomarks"])
def test_request_bytes(iface: Interface, add: bool, marks: bool) -> None:
    message = address_request(add, 0xDEADBEEF, 7, iface, marks=marks)
    assert message == expected_request(add, 0xDEADBEEF, 7, iface, marks)
    assert len(message) % 4 == 0


@pytest.mark.parametrize("iface", REQUESTS, ids=str)
def test_pyroute2_reads_the_request_as_meant(iface: Interface) -> None:
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg

    msg = ifaddrmsg(address_request(True, 42, 3, iface, marks=True))
    msg.decode()
    assert msg["header"]["type"] == 20
    assert msg["header"]["sequence_number"] == 42
    assert msg["family"] == (10 if iface.version == 6 else 2)
    assert msg["prefixlen"] == iface.network.prefixlen
    assert msg["index"] == 3
    assert msg["scope"] == 0
    assert msg.get_attr("IFA_LOCAL") == msg.get_attr("IFA_ADDRESS") == str(iface.ip)
    assert msg.get_attr("IFA_PROTO") == ADDRESS_PROTO
    assert msg.get_attr("IFA_FLAGS") == (0x02 if iface.version == 6 else None)


# ==========================================================================
# Acks: parsed, never raising
# ==========================================================================


def ack(seq: int, error: int, extra: bytes = b"", kind: int = 2) -> bytes:
    """An NLMSG_ERROR message as the kernel sends it with NETLINK_CAP_ACK (request header only)."""
    payload = struct.pack("=i", error) + struct.pack("=IHHII", 40, 20, 0x605, seq, 0) + extra
    length = 16 + len(payload)
    return struct.pack("=IHHII", length, kind, 0x100, seq, 0) + payload + bytes(-length & 3)


def test_acks_are_parsed() -> None:
    assert parse_acks(ack(5, 0)) == [(5, 0)]
    assert parse_acks(ack(6, -errno.EEXIST)) == [(6, errno.EEXIST)]
    # several in one datagram, an odd-length one padded, other types ignored
    done = struct.pack("=IHHII", 20, 3, 2, 9, 0) + bytes(4)  # NLMSG_DONE
    data = ack(1, 0) + ack(2, -errno.ENODEV, b"x") + done + ack(3, -errno.EADDRNOTAVAIL)
    assert parse_acks(data) == [(1, 0), (2, errno.ENODEV), (3, errno.EADDRNOTAVAIL)]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0" * 15,
        ack(1, 0)[:19],  # too short for the error code
        struct.pack("=IHHII", 8, 2, 0, 1, 0),  # length below a header
        struct.pack("=IHHII", 1000, 2, 0, 1, 0) + bytes(4),  # length past the end
        ack(1, 5),  # a positive error code: not something the kernel sends
    ],
)
def test_malformed_acks_yield_nothing(data: bytes) -> None:
    assert parse_acks(data) == []


def test_a_broken_message_keeps_the_acks_before_it() -> None:
    assert parse_acks(ack(1, 0) + struct.pack("=IHHII", 999, 2, 0, 2, 0)) == [(1, 0)]


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    for seq, error in parse_acks(data):
        assert 0 <= seq < 2**32 and 0 <= error <= 2**31


acks_strategy = st.lists(
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 4095), st.binary(max_size=9)), max_size=8
)


@settings(max_examples=500, deadline=None)
@given(acks_strategy, st.data())
def test_acks_round_trip_and_mutations_never_raise(
    acks: list[tuple[int, int, bytes]], data: st.DataObject
) -> None:
    wire = b"".join(ack(seq, -error, extra) for seq, error, extra in acks)
    assert parse_acks(wire) == [(seq, error) for seq, error, _ in acks]
    if wire:
        mutated = bytearray(wire)
        for _ in range(data.draw(st.integers(1, 8))):
            mutated[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
        cut = data.draw(st.integers(0, len(wire)))
        parse_acks(bytes(mutated))
        parse_acks(bytes(mutated[:cut]))


def test_sequence_numbers_wrap_and_skip_zero() -> None:
    with AddressSocket() as sock:
        sock._seq = 2**32 - 2
        assert sock._next_seq() == 2**32 - 1
        assert sock._next_seq() == 1  # 0 is the kernel's own notifications' seq


def test_a_closed_socket_reads_nothing_and_refuses_requests() -> None:
    sock = AddressSocket()
    sock.close()
    sock.close()
    assert sock.closed
    assert sock.read_acks() == []
    with pytest.raises(OSError):
        sock.send_add(1, IPv4Interface("192.0.2.100/24"))


# ==========================================================================
# In a namespace (root): what the kernel does with the requests
# ==========================================================================

# An address dump parsed here, independent of vrrpy.net.rtnl.
PRELUDE = textwrap.dedent(
    """
    import json, os, select, socket, struct, subprocess, sys
    from ipaddress import ip_address, ip_interface
    from vrrpy.net.rtnl import AddressSocket
    IFINDEX = socket.if_nametoindex("eth0")

    def dump():
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        s.send(struct.pack("=IHHII", 24, 22, 0x301, 1, 0) + bytes(8))  # RTM_GETADDR dump
        found = {}
        while True:
            data, offset = s.recv(1 << 20), 0
            while offset < len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == 3:  # NLMSG_DONE
                    s.close()
                    return found
                family, plen, flags, scope, index = struct.unpack_from("=BBBBI", data, offset + 16)
                attrs, at = {}, offset + 24
                while at + 4 <= offset + length:
                    alen, atype = struct.unpack_from("=HH", data, at)
                    attrs[atype] = data[at + 4 : at + alen]
                    at += (alen + 3) & ~3
                raw = attrs.get(2, attrs.get(1))  # IFA_LOCAL, else IFA_ADDRESS
                if 8 in attrs:
                    flags = struct.unpack("=I", attrs[8])[0]  # IFA_FLAGS: all 32 bits
                found[f"{ip_address(raw)}/{plen}"] = {
                    "index": index,
                    "scope": scope,
                    "flags": flags,
                    "proto": attrs.get(11, b"\\0")[0],
                    "label": attrs.get(3, b"").rstrip(b"\\0").decode(),
                }
                offset += (length + 3) & ~3

    def ip_line(address):
        out = subprocess.run(["ip", "-d", "-o", "addr", "show", "dev", "eth0"],
                             capture_output=True, text=True, check=True).stdout
        lines = [line.split("\\\\")[0] for line in out.splitlines()
                 if f" {address} " in line]
        return lines[0] if lines else None
    """
)


def run_in_lab(body: str, *args: str) -> dict[str, object]:
    """Run PRELUDE + ``body`` in a fresh one-host lab; its last line of output, as JSON."""
    require_root()
    with Lab(hosts=1) as lab:
        out = lab["h1"].run([sys.executable, "-c", PRELUDE + textwrap.dedent(body), *args])
        namespace = lab["h1"].netns
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert namespace not in listed.stdout.split()
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


SAME_AS_PYROUTE2 = """
    from vrrpy.net.addresses import Netlink
    nl, sock, report = Netlink(), AddressSocket(), {}
    for text in sys.argv[1:]:
        iface = ip_interface(text)
        key = str(iface)
        nl.add(IFINDEX, iface)
        before = (dump().get(key), ip_line(key))
        assert nl.remove(IFINDEX, iface)
        assert key not in dump()
        seq = sock.send_add(IFINDEX, iface)
        after = (dump().get(key), ip_line(key))
        acks = sock.read_acks()
        seq2 = sock.send_remove(IFINDEX, iface)
        gone = key not in dump()
        report[key] = {"pyroute2": before, "rtnl": after, "gone": gone,
                       "acks": acks == [(seq, 0)] and sock.read_acks() == [(seq2, 0)]}
    nl.close()
    print(json.dumps(report))
"""


@pytest.mark.system
def test_the_address_is_the_one_the_pyroute2_path_adds() -> None:
    addresses = ["192.0.2.100/24", "198.51.100.7/32", "2001:db8::100/64", "2001:db8:1::5/128"]
    report = run_in_lab(SAME_AS_PYROUTE2, *addresses)
    marks = kernel_marks_addresses()
    for address in addresses:
        entry = report[address]
        assert isinstance(entry, dict)
        assert entry["acks"] and entry["gone"]
        assert entry["rtnl"] == entry["pyroute2"], address
        seen, line = entry["rtnl"]
        assert seen["scope"] == 0  # global
        assert seen["proto"] == (ADDRESS_PROTO if marks else 0)
        if ip_interface(address).version == 6:
            assert seen["flags"] == 0x82  # nodad, permanent; not tentative
            assert "nodad" in line and "tentative" not in line
        else:
            # permanent; secondary in the subnet of the host's own 192.0.2.11/24
            secondary = 0x01 if address.startswith("192.0.2.") else 0
            assert seen["flags"] == 0x80 | secondary and seen["label"] == "eth0"
            assert line.rstrip().endswith("eth0")  # the label, as ip shows it


VISIBLE_AT_ONCE = """
    sock, rounds, report = AddressSocket(), int(sys.argv[1]), {"late": 0, "lingering": 0}
    for n in range(rounds):
        iface = ip_interface("192.0.2.100/24" if n % 2 else "2001:db8::100/64")
        seq = sock.send_add(IFINDEX, iface)
        # No sleep, no ack read: the address must be there, and its ack already queued
        # (both happen inside sendmsg, in this thread).
        queued = select.select([sock], [], [], 0)[0] == [sock]
        present = str(iface) in dump()
        report["late"] += not (queued and present)
        assert sock.read_acks() == [(seq, 0)]
        seq = sock.send_remove(IFINDEX, iface)
        report["lingering"] += str(iface) in dump()
        assert sock.read_acks() == [(seq, 0)]
    # Once more, seen from outside the process by ip(8), the ack still unread.
    seq = sock.send_add(IFINDEX, ip_interface("192.0.2.100/24"))
    print("added", flush=True)
    sys.stdin.readline()
    report["acks_after_ip"] = sock.read_acks() == [(seq, 0)]
    print(json.dumps(report))
"""


@pytest.mark.system
def test_send_add_returns_with_the_address_already_on_the_interface() -> None:
    require_root()
    with Lab(hosts=1) as lab:
        host = lab["h1"]
        proc = host.popen(
            [sys.executable, "-c", PRELUDE + textwrap.dedent(VISIBLE_AT_ONCE), "400"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline().strip() == b"added"
        seen = subprocess.run(
            ["ip", "-n", host.netns, "-4", "-o", "addr", "show", "dev", "eth0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        out, _ = proc.communicate(b"go\n", timeout=30)
    assert " 192.0.2.100/24 " in seen
    assert json.loads(out.decode().splitlines()[-1]) == {
        "late": 0,
        "lingering": 0,
        "acks_after_ip": True,
    }


ERRORS = """
    sock, outcome = AddressSocket(), {}
    def ask(name, send, index, text):
        outcome[name] = send(index, ip_interface(text))
    for v, text in (("4", "192.0.2.100/24"), ("6", "2001:db8::100/64")):
        ask("add" + v, sock.send_add, IFINDEX, text)
        ask("again" + v, sock.send_add, IFINDEX, text)
        ask("remove" + v, sock.send_remove, IFINDEX, text)
        ask("absent" + v, sock.send_remove, IFINDEX, text)
        ask("nodev_add" + v, sock.send_add, 99999, text)
        ask("nodev_remove" + v, sock.send_remove, 99999, text)
    errors = dict(sock.read_acks())
    print(json.dumps({name: errors.get(seq) for name, seq in outcome.items()}))
"""


@pytest.mark.system
def test_errors_come_back_in_the_acks() -> None:
    report = run_in_lab(ERRORS)
    for v in "46":
        assert report["add" + v] == 0
        assert report["again" + v] == errno.EEXIST
        assert report["remove" + v] == 0
        assert report["absent" + v] == errno.EADDRNOTAVAIL
        assert report["nodev_add" + v] == errno.ENODEV
        assert report["nodev_remove" + v] == errno.ENODEV


PROTO = """
    report = {}
    for marks in (None, True, False):
        with AddressSocket(marks=marks) as sock:
            for text in ("192.0.2.100/24", "2001:db8::100/64"):
                sock.send_add(IFINDEX, ip_interface(text))
                report[f"{marks}{text}"] = dump()[text]["proto"]
                sock.send_remove(IFINDEX, ip_interface(text))
            assert [error for _, error in sock.read_acks()] == [0] * 4
    print(json.dumps(report))
"""


@pytest.mark.system
def test_added_addresses_carry_the_proto_stamp() -> None:
    report = run_in_lab(PROTO)
    marks = kernel_marks_addresses()
    for text in ("192.0.2.100/24", "2001:db8::100/64"):
        assert report[f"None{text}"] == (ADDRESS_PROTO if marks else 0)
        assert report[f"False{text}"] == 0
        if marks:
            assert report[f"True{text}"] == ADDRESS_PROTO


MANY = """
    sock = AddressSocket()
    ifaces = [ip_interface(f"203.0.113.{n}/32") for n in range(1, 251)]
    ifaces += [ip_interface(f"2001:db8:1::{n:x}/64") for n in range(1, 751)]
    seqs = [sock.send_add(IFINDEX, iface) for iface in ifaces]
    present = sum(str(iface) in dump() for iface in ifaces[::50])
    added = sock.read_acks()
    removed_seqs = [sock.send_remove(IFINDEX, iface) for iface in ifaces]
    removed = sock.read_acks()
    print(json.dumps({
        "added": added == [(seq, 0) for seq in seqs],
        "present": present,
        "removed": removed == [(seq, 0) for seq in removed_seqs],
        "left": sum(str(iface) in dump() for iface in ifaces),
        "overruns": sock.overruns,
        "malformed": sock.malformed,
    }))
"""


@pytest.mark.system
def test_a_thousand_requests_queued_then_their_acks_read_at_once() -> None:
    report = run_in_lab(MANY)
    assert report == {
        "added": True,
        "present": 20,
        "removed": True,
        "left": 0,
        "overruns": 0,
        "malformed": 0,
    }


OVERRUN = """
    sock = AddressSocket()
    # Shrink the receive queue (through a second descriptor of the same socket) so
    # that acks are dropped: the kernel says so with ENOBUFS on the next read.
    shrink = socket.socket(fileno=os.dup(sock.fileno()))
    shrink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    shrink.close()  # the duplicate only: the socket stays open
    ifaces = [ip_interface(f"203.0.113.{n}/32") for n in range(1, 201)]
    seqs = [sock.send_add(IFINDEX, iface) for iface in ifaces]
    acks = sock.read_acks()
    print(json.dumps({
        "acks": len(acks),
        "ok": all(error == 0 for _, error in acks) and {s for s, _ in acks} <= set(seqs),
        "overruns": sock.overruns,
        "present": sum(str(iface) in dump() for iface in ifaces),
        "again": sock.read_acks(),
    }))
"""


@pytest.mark.system
def test_lost_acks_are_counted_and_the_requests_were_processed_all_the_same() -> None:
    report = run_in_lab(OVERRUN)
    assert isinstance(report["acks"], int) and report["acks"] < 200
    assert report["ok"] is True
    assert report["overruns"] == 1
    assert report["present"] == 200
    assert report["again"] == []


@pytest.mark.system
def test_the_ack_socket_reads_only_the_kernel() -> None:
    """A datagram from another netlink socket (not the kernel) is not taken for an ack."""
    require_root()
    with AddressSocket() as sock:
        spoof = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        try:
            spoof.bind((0, 0))
            spoof.sendto(ack(77, 0), (sock._sock.getsockname()[0], 0))
        finally:
            spoof.close()
        assert sock.read_acks() == []
        assert sock.malformed == 1
