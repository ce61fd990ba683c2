"""The batched socket read (``recvmmsg``, :mod:`vrrpy.runtime.mmsg`) against ``recvmsg``.

The batched reader must hand over exactly what the ``recvmsg`` loop did. The
kernel checks that here: two ``VRRPSocket``s in one namespace host, one of each
kind, are joined to the group on the same interface, so every advert another
host sends reaches both as clones of one packet (the same kernel stamp too),
and their items and counters must be equal -- IPv4 and IPv6, adverts on both
queues, short ones, oversize ones (truncated alike), IPv4 options, a batch
longer than the ``mmsghdr`` array, an empty queue, a closed socket. What the
kernel never sends (an IPv4 header the decoder refuses, control messages in
another order) is written into a reader's buffer by hand and checked against
:func:`vrrpy.codec.ip.parse_ipv4` and the generic control walk.

The test process opens its sockets inside the lab's namespaces from threads
that ``setns(2)`` first: a socket keeps the namespace it was made in.
"""

from __future__ import annotations

import errno
import socket
import struct
import time
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

import vrrpy.runtime.sockets as sockets_module
from support import require_root
from vrrpy.codec import Advertisement, encode_vrrp
from vrrpy.codec.errors import DecodeError
from vrrpy.codec.ip import parse_ipv4
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4, VRRP_MULTICAST_V6, PacketInfo
from vrrpy.lab import Lab, in_netns
from vrrpy.runtime import mmsg
from vrrpy.runtime.sockets import URGENT_VLEN, VRRPSocket


@pytest.fixture(scope="module")
def hosts() -> Iterator[Lab]:
    require_root()
    if not mmsg.available():
        pytest.fail("recvmmsg is not available (Linux with glibc has it)")
    with Lab(hosts=2) as lab:
        yield lab


class Twins:
    """A ``recvmsg`` and a ``recvmmsg`` VRRPSocket in h1, and a raw sender in h2."""

    def __init__(self, lab: Lab, family: int) -> None:
        self.family = family
        h1, h2 = lab["h1"], lab["h2"]
        source = h1.ipv4 if family == 4 else h1.link_local
        self.plain = in_netns(h1.netns, lambda: self._open(source, False))
        self.batched = in_netns(h1.netns, lambda: self._open(source, True))
        assert not self.plain._readers and len(self.batched._readers) == 2
        self.sender_address = h2.ipv4 if family == 4 else h2.link_local
        self.tx, self.dest = in_netns(h2.netns, self._sender)

    def _open(self, source: IPv4Address | IPv6Address, batched: bool) -> VRRPSocket:
        sockets_module.USE_RECVMMSG = batched
        try:
            return VRRPSocket("eth0", socket.if_nametoindex("eth0"), self.family, source)
        finally:
            sockets_module.USE_RECVMMSG = True

    def _sender(self) -> tuple[socket.socket, Any]:
        af = socket.AF_INET if self.family == 4 else socket.AF_INET6
        sock = socket.socket(af, socket.SOCK_RAW, 112)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        if self.family == 4:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
            return sock, (str(VRRP_MULTICAST_V4), 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        return sock, (str(VRRP_MULTICAST_V6), 0, 0, socket.if_nametoindex("eth0"))

    def advert(self, vrid: int, priority: int = 100) -> bytes:
        group = VRRP_MULTICAST_V4 if self.family == 4 else VRRP_MULTICAST_V6
        address = IPv4Address("198.51.100.1") if self.family == 4 else IPv6Address("2001:db8::1")
        advert = Advertisement(3, vrid, priority, 10, (address,))
        return encode_vrrp(advert, self.sender_address, group)

    def send(self, *payloads: bytes) -> None:
        for payload in payloads:
            self.tx.sendto(payload, self.dest)
        time.sleep(0.02)  # veth delivers at once; a margin for the softirq all the same

    def collect(self, bulk: bool, limit: int = 65536) -> tuple[list[Any], list[Any]]:
        """Both sockets' items from one queue (the recvmsg one's first)."""
        plain = self.plain.bulk if bulk else self.plain.sock
        batched = self.batched.bulk if bulk else self.batched.sock
        assert plain is not None and batched is not None
        return self.plain._collect(plain, limit), self.batched._collect(batched, limit)

    def counters(self) -> list[tuple[int, int]]:
        return [(s.received, s.header_errors) for s in (self.plain, self.batched)]

    def close(self) -> None:
        self.plain.close()
        self.batched.close()
        self.tx.close()


@pytest.fixture(params=[4, 6], ids=["v4", "v6"])
def twins(hosts: Lab, request: pytest.FixtureRequest) -> Iterator[Twins]:
    built = Twins(hosts, request.param)
    yield built
    built.close()


def test_the_items_are_the_recvmsg_ones_on_both_queues(twins: Twins) -> None:
    adverts = [twins.advert(vrid) for vrid in range(1, 21)]
    twins.send(*adverts, twins.advert(7, 0), b"\x31", b"\x31\x28", b"")
    plain, batched = twins.collect(bulk=False)
    assert batched == plain
    assert [item[1][:3] for item in batched] == [twins.advert(7, 0)[:3]]  # priority 0: urgent
    plain, batched = twins.collect(bulk=True)
    assert batched == plain
    assert [item[1] for item in batched] == [*adverts, b"\x31", b"\x31\x28", b""]
    info = batched[0][2]
    assert type(info) is PacketInfo and info.ttl == 255
    assert info.source == twins.sender_address
    assert info.destination == (VRRP_MULTICAST_V4 if twins.family == 4 else VRRP_MULTICAST_V6)
    assert twins.counters()[0] == twins.counters()[1] == (24, 0)


def test_every_advert_carries_the_kernel_receive_stamp(twins: Twins) -> None:
    before = time.time_ns()
    twins.send(*(twins.advert(vrid) for vrid in range(1, 6)))
    items = twins.collect(bulk=True)[1]
    stamps = [item[0] for item in items]
    assert len(stamps) == 5 and all(isinstance(s, int) for s in stamps)
    assert before <= stamps[0] <= stamps[-1] <= time.time_ns()


def test_an_oversize_datagram_arrives_cut_to_the_buffer(twins: Twins) -> None:
    big = twins.advert(9) + bytes(9000)  # fragmented on the wire, reassembled, then cut
    twins.send(big, twins.advert(10))
    plain, batched = twins.collect(bulk=True)
    assert batched == plain
    header = 20 if twins.family == 4 else 0  # an IPv4 raw socket reads the IP header too
    assert [len(item[1]) for item in batched] == [mmsg.RECEIVE_SIZE - header, len(twins.advert(10))]
    assert batched[0][1] == big[: mmsg.RECEIVE_SIZE - header]


def test_a_batch_longer_than_the_mmsghdr_array_is_read_in_several_calls(twins: Twins) -> None:
    count = mmsg.VLEN * 2 + 5
    twins.send(*(twins.advert(1 + i % 200, 0) for i in range(count)))  # all urgent
    reader = twins.batched._readers[twins.batched.sock]
    plain, batched = twins.collect(bulk=False, limit=count - 3)
    assert batched == plain and len(batched) == count - 3
    assert reader.calls == -(-(count - 3) // URGENT_VLEN)  # whole arrays, then the rest
    plain, batched = twins.collect(bulk=False)
    assert batched == plain and len(batched) == 3
    assert twins.counters()[0] == twins.counters()[1] == (count, 0)


def test_an_empty_queue_reads_nothing_and_counts_nothing(twins: Twins) -> None:
    readers = list(twins.batched._readers.values())
    got: list[Any] = []
    assert twins.batched.read(lambda *item: got.append(item)) == 0
    assert got == [] and [r.calls for r in readers] == [0, 0]  # polled: no recvmmsg at all
    assert twins.collect(bulk=False) == ([], [])  # recvmmsg itself: EAGAIN ends the batch
    assert [r.calls for r in readers] == [1, 0]
    assert twins.counters()[0] == twins.counters()[1] == (0, 0)


def test_only_the_queue_with_adverts_is_read_but_urgent_ones_drain_both(twins: Twins) -> None:
    readers = twins.batched._readers
    urgent, bulk = readers[twins.batched.sock], readers[twins.batched.bulk]
    twins.send(twins.advert(5))  # bulk
    got: list[Any] = []
    twins.batched.read(lambda *item: got.append(item))
    assert len(got) == 1 and (urgent.calls, bulk.calls) == (0, 1)
    twins.send(twins.advert(5, 0))  # urgent: the bulk queue is read after it, even empty
    twins.batched.read(lambda *item: got.append(item))
    assert len(got) == 2 and (urgent.calls, bulk.calls) == (1, 2)


def test_a_closed_socket_counts_a_header_error_like_recvmsg(twins: Twins) -> None:
    twins.plain.close()
    twins.batched.close()
    for sock in (twins.plain, twins.batched):
        assert sock.read(lambda *item: None) == 0
    assert twins.counters()[0] == twins.counters()[1] == (0, 2)  # both queues fail


def test_ipv4_options_are_skipped_to_the_payload(hosts: Lab) -> None:
    twins = Twins(hosts, 4)
    try:
        router_alert = b"\x94\x04\x00\x00"
        twins.tx.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, router_alert)
        twins.send(twins.advert(3))
        plain, batched = twins.collect(bulk=True)
        assert batched == plain and [item[1] for item in batched] == [twins.advert(3)]
    finally:
        twins.close()


def test_the_recvmsg_loop_is_kept_where_recvmmsg_is_missing(
    hosts: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mmsg, "_recvmmsg", False)
    assert not mmsg.available()
    twins = Twins.__new__(Twins)
    twins.family = 4
    h1 = hosts["h1"]
    sock = in_netns(h1.netns, lambda: twins._open(h1.ipv4, True))
    try:
        assert not sock._readers
    finally:
        sock.close()


# ----------------------------------------------- what the kernel does not send


def filled(family: int, messages: list[tuple[bytes, bytes, bytes]]) -> mmsg.MmsgReader:
    """A reader whose buffer holds ``messages`` (name, control, data) as recvmmsg leaves them."""
    reader = mmsg.MmsgReader(family, 16)
    view = reader._view
    for i, (name, control, data) in enumerate(messages):
        start = reader._starts[i]
        view[start : start + len(name)] = name
        at = start + mmsg._NAME
        view[at : at + len(control)] = control
        at += mmsg.CONTROL_SIZE
        view[at : at + len(data)] = data
        header = mmsg._MMsgHdr.from_buffer(reader._buffer, reader._stride * i)
        header.msg_hdr.msg_namelen = len(name)
        header.msg_hdr.msg_controllen = len(control)
        header.msg_len = len(data)
    reader.receive = lambda fd, count: len(messages)  # type: ignore[method-assign]
    return reader


def cmsg(level: int, kind: int, value: bytes) -> bytes:
    length = mmsg._CMSG_LEN + len(value)
    padded = value + bytes(-length % mmsg._ALIGN)
    return struct.pack("=Qii", length, level, kind) + padded


STAMP = cmsg(socket.SOL_SOCKET, 35, struct.pack("=qq", 1_700_000_000, 123))
DESTINATION6 = IPv6Address("2001:db8::2")  # a unicast peer's advert: not the default
PKTINFO = cmsg(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, DESTINATION6.packed + b"\2\0\0\0")
HOPS = cmsg(socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("=i", 255))
SOURCE6 = IPv6Address("fe80::1")
NAME6 = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, SOURCE6.packed, 2)


def ipv4(payload: bytes, vihl: int = 0x45, total: int | None = None, options: bytes = b"") -> bytes:
    size = 20 + len(options) + len(payload) if total is None else total
    header = struct.pack(
        "!BBHHHBBH4s4s", vihl, 0, size, 0, 0, 255, 112, 0, b"\xc0\0\2\1", b"\xe0\0\0\x12"
    )
    return header + options + payload


def test_ipv4_headers_are_judged_as_parse_ipv4_judges_them() -> None:
    datagrams = [
        ipv4(b"\x31\x01\x64\x00"),
        ipv4(b"\x31\x02", options=b"\x94\x04\x00\x00", vihl=0x46),
        ipv4(b"\x31\x03\x64\x00" + bytes(6), total=24),  # Ethernet padding cut off
        ipv4(b"\x31\x04", total=200),  # longer than what came: cut at what came
        ipv4(b"\x31\x05", vihl=0x65),  # IPv6 version
        ipv4(b"\x31\x06", vihl=0x44),  # IHL 16 bytes
        ipv4(b"\x31\x07", vihl=0x4F),  # IHL past the data
        ipv4(b"\x31\x08", total=10),  # total shorter than the header
        ipv4(b"")[:19],  # no whole header
        b"",
    ]
    reader = filled(4, [(b"", STAMP, d) for d in datagrams])
    items, errors, failed = reader.collect_v4(-1, 100, {}, {})
    expected = []
    for datagram in datagrams:
        try:
            src, dst, ttl, _, payload = parse_ipv4(datagram)
        except DecodeError:
            continue
        expected.append((1_700_000_000 * 10**9 + 123, payload, PacketInfo(src, dst, ttl)))
    assert items == expected and len(items) == 4
    assert (errors, failed) == (len(datagrams) - 4, False)


def test_control_messages_are_found_in_any_order() -> None:
    data = b"\x31\x01\x64\x00"
    other = cmsg(socket.IPPROTO_IPV6, 99, b"x" * 5)  # something we never asked for
    controls = [
        STAMP + PKTINFO + HOPS,  # the kernel's order: the fast path
        HOPS + STAMP + PKTINFO,
        PKTINFO + HOPS + STAMP,
        other + HOPS + STAMP,  # no destination: the group is assumed, as before
        HOPS,  # no stamp
        (STAMP + PKTINFO + HOPS)[:-8],  # cut short: the hop limit's value is not whole
    ]
    reader = filled(6, [(NAME6, control, data) for control in controls])
    items, errors, failed = reader.collect_v6(-1, 100, {}, {})
    stamp = 1_700_000_000 * 10**9 + 123
    assert items[:3] == [(stamp, data, PacketInfo(SOURCE6, DESTINATION6, 255))] * 3
    assert items[3] == (stamp, data, PacketInfo(SOURCE6, VRRP_MULTICAST_V6, 255))
    assert items[4] == (None, data, PacketInfo(SOURCE6, VRRP_MULTICAST_V6, 255))
    assert items[5] == (stamp, data, PacketInfo(SOURCE6, DESTINATION6, -1))
    assert (errors, failed) == (0, False)
    walked = mmsg.walk_control(memoryview(other + HOPS), 0, len(other + HOPS))
    assert walked == (None, 255, None)


def test_a_message_without_a_source_address_is_counted_not_returned() -> None:
    reader = filled(6, [(b"", STAMP + PKTINFO + HOPS, b"\x31"), (NAME6, HOPS, b"\x31")])
    items, errors, failed = reader.collect_v6(-1, 100, {}, {})
    assert [item[1] for item in items] == [b"\x31"] and (errors, failed) == (1, False)


def test_a_failing_read_ends_the_batch_and_says_so() -> None:
    reader = mmsg.MmsgReader(4, 4)
    with pytest.raises(OSError) as failure:
        reader.receive(-1, 4)  # EBADF: not the end of a queue
    assert failure.value.errno == errno.EBADF
    assert reader.collect_v4(-1, 10, {}, {}) == ([], 0, True)
    assert mmsg.MmsgReader(6, 4).collect_v6(-1, 10, {}, {}) == ([], 0, True)
