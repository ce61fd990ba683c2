"""CPU per received advert of ``VRRPSocket.read``: ``recvmsg`` against ``recvmmsg``.

What a Backup spends on each advert before its instance sees it: the read of
the two queues, the parse of the IP facts (IPv4 header; IPv6 ancillary data),
the merge by arrival time and the hand-over to ``deliver`` (here a function
that only counts). Decoding and the instance's work are not included.

The setup: two network namespaces made here (``vrbA<hex>``, ``vrbB<hex>``),
joined by one veth pair (``eth0`` in each: 192.0.2.1/24 and 2001:db8::1/64
in A, 192.0.2.2/24 and 2001:db8::2/64 in B; no DAD). This process opens its
sockets inside them from short-lived threads that ``setns(2)`` first (a
socket stays in the namespace it was made in): a raw protocol-112 sender in
A (TTL / hop limit 255) and a ``VRRPSocket`` in B on ``eth0`` joined to the
group. Nothing is sent outside the two namespaces; both are deleted at the
end, whatever happens (no process is started but ``ip``).

The measurement, per family, per mode and per batch size: send ``batch``
VRRPv3 adverts (``encode_vrrp``, VRIDs 1..200 round-robin, priority 100: all
go to the bulk queue, as a Backup's do), wait (untimed, ``select``) until the
socket is readable, then ``read()``; repeat until ``--packets`` adverts were
delivered. The sends come from the main thread, the reads from a thread made
for the measurement, whose CPU time (``CLOCK_THREAD_CPUTIME_ID``: exact) is
summed over its ``read()`` calls only and divided by the adverts delivered;
``getrusage(RUSAGE_THREAD)`` over that thread's life gives a user / sys split
(Linux splits a thread's exact total in the ratio of the clock ticks it
sampled in each, so over the few ticks a figure lasts the split is rough,
and it includes the thread's waits, printed beside it). ``--repeat`` figures
per mode and batch, interleaved across the modes, give the median and the
range. The batch sizes stand for how a Backup reads: the runtime reads every
interface's queues whenever a Backup's timer is due, a few to hundreds of
adverts per queue; 1 is the worst case. Also printed: the CPU of a ``read()``
that finds both queues empty, as most do on an interface whose adverts came
in another burst.

Modes: ``recvmsg`` (``USE_RECVMMSG`` off when the socket is opened: the
per-packet loop of ``VRRPSocket._collect``; the rest of ``read()`` is
today's, so this is slightly faster than the code before ``recvmmsg``) and
``recvmmsg`` (the batched reader of :mod:`vrrpy.runtime.mmsg`); their items
are checked equal (but for the stamps) before anything is timed. ``--vlen
16,64,256`` also times the batched reader with other batch lengths;
``--micro`` times reading the headers of a filled buffer with ctypes
attributes against ``struct``.

Run (root; hold the heavy lock)::

    flock /tmp/vrrpy-heavy.lock python bench/recv_bench.py            # about 3 minutes
    python bench/recv_bench.py --packets 4000 --batches 1,256 --repeat 1   # a quick look

The script exits 0 unless the setup fails or the modes' items differ: it is a report,
not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import resource
import secrets
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import timeit
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import source_revision
from vrrpy.codec import Advertisement, encode_vrrp
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4, VRRP_MULTICAST_V6, PacketInfo
from vrrpy.lab import in_netns
from vrrpy.runtime import mmsg, sockets
from vrrpy.runtime.sockets import VRRPSocket


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def namespace_pair() -> Iterator[tuple[str, str]]:
    """Two namespaces on one veth pair, deleted on the way out (with the veth)."""
    tag = secrets.token_hex(2)
    a, b = f"vrbA{tag}", f"vrbB{tag}"
    made: list[str] = []
    try:
        for netns in (a, b):
            ip("netns", "add", netns)
            made.append(netns)
            for conf in ("all", "default"):
                ip("netns", "exec", netns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0")
        ip("link", "add", f"vrb{tag}a", "type", "veth", "peer", "name", f"vrb{tag}b")
        ip("link", "set", f"vrb{tag}a", "netns", a)
        ip("link", "set", f"vrb{tag}b", "netns", b)
        for number, (netns, name) in enumerate(((a, f"vrb{tag}a"), (b, f"vrb{tag}b")), 1):
            ip("-n", netns, "link", "set", name, "name", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            ip("-n", netns, "addr", "add", f"192.0.2.{number}/24", "dev", "eth0")
            ip("-n", netns, "addr", "add", f"2001:db8::{number}/64", "dev", "eth0", "nodad")
        yield a, b
    finally:
        for netns in made:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, timeout=30)
        for end in "ab":  # still here only if the setup failed half-way
            subprocess.run(["ip", "link", "del", f"vrb{tag}{end}"], capture_output=True, timeout=30)


def link_local(netns: str) -> IPv6Address:
    out = subprocess.run(
        ["ip", "-n", netns, "-o", "-6", "addr", "show", "dev", "eth0", "scope", "link"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return IPv6Address(out.split("inet6", 1)[1].split()[0].split("/")[0])


def sender(family: int) -> tuple[socket.socket, Any]:
    """A raw protocol-112 socket on eth0 sending to the VRRP group with TTL 255."""
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    sock = socket.socket(af, socket.SOCK_RAW, 112)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    index = socket.if_nametoindex("eth0")
    if family == 4:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        mreqn = struct.pack("4s4si", VRRP_MULTICAST_V4.packed, b"\0\0\0\0", index)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        return sock, (str(VRRP_MULTICAST_V4), 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    return sock, (str(VRRP_MULTICAST_V6), 0, 0, index)


def adverts(family: int, source: IPv4Address | IPv6Address) -> list[bytes]:
    """200 VRRPv3 adverts (VRIDs 1..200, priority 100, one address each), as the sender sends."""
    group = VRRP_MULTICAST_V4 if family == 4 else VRRP_MULTICAST_V6
    out = []
    for vrid in range(1, 201):
        address = ip_address(f"198.51.100.{vrid}" if family == 4 else f"2001:db8:1::{vrid:x}")
        out.append(encode_vrrp(Advertisement(3, vrid, 100, 10, (address,)), source, group))
    return out


def receiver(family: int, batched: bool) -> VRRPSocket:
    source = ip_address("192.0.2.2") if family == 4 else link_local_b
    sockets.USE_RECVMMSG = batched
    try:
        return VRRPSocket("eth0", socket.if_nametoindex("eth0"), family, source)
    finally:
        sockets.USE_RECVMMSG = True


link_local_b = IPv6Address("::")


class Run:
    """One receiving socket fed by the sender: timed ``read()`` calls."""

    def __init__(self, tx: socket.socket, dest: Any, rx: VRRPSocket, packets: list[bytes]) -> None:
        self.tx, self.dest, self.rx, self.packets = tx, dest, rx, packets
        self.count = 0
        self.items: list[tuple[bytes, PacketInfo]] = []
        self.keep = False

    def deliver(self, data: bytes, info: PacketInfo, arrival: float | None) -> None:
        self.count += 1
        if self.keep:
            self.items.append((data, info))

    def send(self, n: int, start: int = 0) -> None:
        packets, tx, dest = self.packets, self.tx, self.dest
        for i in range(start, start + n):
            tx.sendto(packets[i % len(packets)], dest)

    def empty(self, calls: int = 20000) -> float:
        """CPU per ``read()`` of two empty queues, in us (what most reads of a Backup find
        on most of its interfaces: it reads them all whenever one of its timers is due)."""
        self.drain()
        read, deliver = self.rx.read, self.deliver
        start = time.thread_time_ns()
        for _ in range(calls):
            read(deliver)
        return (time.thread_time_ns() - start) / calls / 1000

    def drain(self) -> None:
        while select.select([self.rx.bulk, self.rx.sock], [], [], 0.05)[0]:
            self.rx.read(self.deliver)

    def measure(self, batch: int, total: int) -> Figures:
        """Read ``total`` adverts ``batch`` at a time in a thread of its own (:class:`Figures`).

        This thread sends each batch; the reader waits for it (``select``, then a
        pipe byte), reads until it has it all and says so.
        """
        self.drain()
        figures = Figures()
        go_r, go_w = os.pipe()
        done_r, done_w = os.pipe()
        bulk = self.rx.bulk
        assert bulk is not None

        def reader() -> None:
            delivered = 0
            read, deliver, clock = self.rx.read, self.deliver, time.thread_time_ns
            start = resource.getrusage(resource.RUSAGE_THREAD)
            while delivered < total:
                w0 = clock()
                want = delivered + int.from_bytes(os.read(go_r, 4), "little")
                w1 = clock()
                figures.wait += w1 - w0
                while self.count < want:
                    w0 = clock()
                    if not select.select([bulk], [], [], 1.0)[0]:
                        figures.lost = want - self.count
                        os.write(done_w, b"x")
                        return
                    t0 = clock()
                    read(deliver)
                    t1 = clock()
                    figures.wait += t0 - w0
                    figures.cpu += t1 - t0
                delivered = self.count
                os.write(done_w, b".")
            end = resource.getrusage(resource.RUSAGE_THREAD)
            figures.user = end.ru_utime - start.ru_utime
            figures.system = end.ru_stime - start.ru_stime
            figures.adverts = delivered

        self.count = 0
        thread = threading.Thread(target=reader)
        thread.start()
        try:
            sent = 0
            while sent < total:
                n = min(batch, total - sent)
                self.send(n, sent)
                sent += n
                os.write(go_w, n.to_bytes(4, "little"))
                if os.read(done_r, 1) == b"x":
                    break
        finally:
            thread.join()
            for fd in (go_r, go_w, done_r, done_w):
                os.close(fd)
        if figures.lost:
            raise RuntimeError(f"lost adverts: {figures.lost} never came")
        return figures


class Figures:
    """One measurement: ``cpu`` is the reading thread's CPU time in ``read()`` alone
    (``CLOCK_THREAD_CPUTIME_ID``, ns: exact); ``user`` and ``system`` (s) are its
    ``getrusage`` over the thread's whole life, which includes its waits (``wait``,
    ns: mostly system time) -- Linux splits a thread's exact total in the ratio of
    the ticks it sampled as user or system, so the split is only known over a
    whole thread, and only roughly over a short one."""

    def __init__(self) -> None:
        self.cpu = 0
        self.wait = 0
        self.user = 0.0
        self.system = 0.0
        self.adverts = 0
        self.lost = 0


def sample(run: Run, n: int = 64) -> list[tuple[bytes, PacketInfo]]:
    run.drain()
    run.items, run.keep = [], True
    run.send(n)
    deadline = time.monotonic() + 2
    while len(run.items) < n and time.monotonic() < deadline:
        select.select([run.rx.bulk], [], [], 0.1)
        run.rx.read(run.deliver)
    run.keep = False
    return run.items


def micro() -> None:
    """Reading 64 filled headers: ctypes attribute access against struct, per message."""
    reader = mmsg.MmsgReader(6, 64)
    headers = (mmsg._MMsgHdr * 64).from_buffer(reader._buffer)
    view = reader._view
    stride = reader._stride
    fields = mmsg._HEADER_V6

    def by_ctypes() -> int:
        total = 0
        for i in range(64):
            h = headers[i]
            total += h.msg_hdr.msg_namelen + h.msg_hdr.msg_controllen + h.msg_len
        return total

    def by_struct() -> int:
        total = 0
        for namelen, controllen, length in fields.iter_unpack(view[: 64 * stride]):
            total += namelen + controllen + length
        return total

    class Cmsg(ctypes.Structure):
        _fields_ = (("len", ctypes.c_size_t), ("level", ctypes.c_int), ("type", ctypes.c_int))

    class Slot(ctypes.Structure):
        _fields_ = (
            ("name", ctypes.c_ubyte * 8),
            ("src", ctypes.c_ubyte * 16),
            ("pad", ctypes.c_ubyte * 8),
            ("h1", Cmsg),
            ("sec", ctypes.c_long),
            ("nsec", ctypes.c_long),
            ("h2", Cmsg),
            ("dst", ctypes.c_ubyte * 16),
            ("index", ctypes.c_int),
            ("pad2", ctypes.c_int),
            ("h3", Cmsg),
            ("hop", ctypes.c_int),
        )

    control = mmsg._STAMP_HEADER + bytes(16) + mmsg._PKTINFO_HEADER + bytes(24)
    control += mmsg._HOP_HEADER + struct.pack("=i", 255) + bytes(4)
    for start in reader._starts:  # the usual IPv6 control messages, as the kernel writes them
        view[start + mmsg._NAME : start + mmsg._NAME + len(control)] = control
    slots = [Slot.from_buffer(reader._buffer, start) for start in reader._starts]

    def slot_ctypes() -> int:
        total = 0
        for s in slots:
            h1, h2, h3 = s.h1, s.h2, s.h3
            if (
                h1.len == 32
                and h1.level == 1
                and h1.type == 35
                and h2.len == 36
                and h2.level == 41
                and h2.type == 50
                and h3.len == 20
                and h3.level == 41
                and h3.type == 52
            ):
                key = (bytes(s.src), bytes(s.dst), s.hop)
                total += s.sec * 1_000_000_000 + s.nsec + len(key)
        return total

    def slot_unpack_from() -> int:
        total = 0
        fast = mmsg._SLOT_V6.unpack_from  # a whole slot: the buffer has it
        h1_, h2_, h3_ = mmsg._STAMP_HEADER, mmsg._PKTINFO_HEADER, mmsg._HOP_HEADER
        for at in reader._starts:
            src, h1, sec, nsec, h2, dst, h3, hop = fast(view, at)
            if h1 == h1_ and h2 == h2_ and h3 == h3_:
                key = (src, dst, hop)
                total += sec * 1_000_000_000 + nsec + len(key)
        return total

    def slot_iter_unpack() -> int:
        total = 0
        h1_, h2_, h3_ = mmsg._STAMP_HEADER, mmsg._PKTINFO_HEADER, mmsg._HOP_HEADER
        base = reader._starts[0]
        for src, h1, sec, nsec, h2, dst, h3, hop in mmsg._SLOT_V6.iter_unpack(
            view[base : base + 64 * mmsg._SLOT]
        ):
            if h1 == h1_ and h2 == h2_ and h3 == h3_:
                key = (src, dst, hop)
                total += sec * 1_000_000_000 + nsec + len(key)
        return total

    assert slot_ctypes() == slot_unpack_from() == slot_iter_unpack() > 0

    print("\nmicro: reading a filled buffer, ns per message (best of 5)")
    for name, fn in (
        ("mmsghdr fields, ctypes attributes", by_ctypes),
        ("mmsghdr fields, struct.iter_unpack", by_struct),
        ("IPv6 slot (address, 3 cmsgs), ctypes", slot_ctypes),
        ("IPv6 slot, struct.unpack_from", slot_unpack_from),
        ("IPv6 slot, struct.iter_unpack (used)", slot_iter_unpack),
    ):
        best = min(timeit.repeat(fn, number=2000, repeat=5)) / 2000 / 64
        print(f"  {name:40s} {best * 1e9:7.0f}")


def main() -> int:
    global link_local_b
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--packets", type=int, default=40000, help="adverts per figure")
    parser.add_argument("--repeat", type=int, default=3, help="figures per mode and batch")
    parser.add_argument("--batches", default="1,16,256,2000", help="adverts per read()")
    parser.add_argument("--families", default="4,6")
    parser.add_argument("--vlen", default="", help="also time these recvmmsg lengths")
    parser.add_argument("--micro", action="store_true", help="ctypes vs struct micro-timing")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("recv_bench: needs root (namespaces, raw sockets)", file=sys.stderr)
        return 2
    batches = [int(b) for b in args.batches.split(",")]
    families = [int(f) for f in args.families.split(",")]
    vlens = [int(v) for v in args.vlen.split(",") if v]
    print(f"vrrpy {source_revision()}; Python {platform.python_version()}; {platform.platform()}")
    print(f"recvmmsg available: {mmsg.available()}; VLEN {mmsg.VLEN}")
    if args.micro:
        micro()
    with namespace_pair() as (a, b):
        link_local_b = link_local(b)
        source_a = {4: IPv4Address("192.0.2.1"), 6: link_local(a)}
        for family in families:
            tx, dest = in_netns(a, lambda family=family: sender(family))  # type: ignore[misc]
            packets = adverts(family, source_a[family])
            modes: list[tuple[str, VRRPSocket]] = []
            for name, batched in (("recvmsg", False), ("recvmmsg", True)):
                rx = in_netns(b, lambda f=family, m=batched: receiver(f, m))  # type: ignore[misc]
                modes.append((name, rx))
            for vlen in vlens:
                rx = in_netns(b, lambda f=family: receiver(f, True))  # type: ignore[misc]
                rx._readers = {s: mmsg.MmsgReader(family, vlen) for s in (rx.sock, rx.bulk)}
                modes.append((f"recvmmsg vlen {vlen}", rx))
            time.sleep(0.2)
            runs = [(name, Run(tx, dest, rx, packets)) for name, rx in modes]
            reference = sample(runs[0][1])
            for name, run in runs[1:]:
                got = sample(run)
                if got != reference:
                    print(f"IPv{family} {name}: items differ from recvmsg's!")
                    print(f"  recvmsg: {reference[:2]}\n  {name}: {got[:2]}")
                    return 1
            print(f"\nIPv{family}: {len(reference)} sample items equal in every mode")
            print(f"  read() of empty queues, us per call (median of {args.repeat}):")
            for name, run in runs:
                empty = [run.empty() for _ in range(args.repeat)]
                print(f"    {name:20s} {statistics.median(empty):6.2f}")
            print(
                f"  CPU per advert, us (median of {args.repeat}, and the range); the thread's"
                " user / sys split (tick-sampled: rough) and its waits"
            )
            print(
                f"    {'mode':20s} {'batch':>6s} {'median':>7s} {'range':>13s}"
                f"  {'user':>6s} {'sys':>6s} {'wait':>6s}"
            )
            for batch in batches:
                figures: dict[str, list[Figures]] = {name: [] for name, _ in runs}
                for _ in range(args.repeat):  # interleaved: drifts of the machine hit all modes
                    for name, run in runs:
                        gc.collect()
                        figures[name].append(run.measure(batch, args.packets))
                for name, _ in runs:
                    figs = sorted(figures[name], key=lambda f: f.cpu / f.adverts)
                    fig = figs[len(figs) // 2]
                    low, high = (f.cpu / f.adverts / 1000 for f in (figs[0], figs[-1]))
                    n = fig.adverts
                    print(
                        f"    {name:20s} {batch:6d} {fig.cpu / n / 1000:7.2f}"
                        f" {low:6.2f}..{high:<5.2f}"
                        f"  {fig.user / n * 1e6:6.2f} {fig.system / n * 1e6:6.2f}"
                        f" {fig.wait / n / 1000:6.2f}"
                    )
            for _, rx in modes:
                rx.close()
            tx.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
