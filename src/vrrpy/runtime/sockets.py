"""Raw IP protocol 112 sockets: one per interface and address family, shared by its VRIDs.

Sends with TTL / hop limit 255 and multicast loopback off (our own adverts never
come back to us); joins 224.0.0.18 or ff02::12 on the interface; receives the
facts the decoder must check: the IPv4 TTL from the IP header, the IPv6 hop limit
and destination from ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO). The
source of every advert is pinned with IP_PKTINFO / IPV6_PKTINFO, so the primary
address (IPv4) or the link-local address (IPv6) is used whatever else the
interface holds, virtual addresses included. Adverts are read in batches, many per
system call (``recvmmsg``, :mod:`vrrpy.runtime.mmsg`), where libc allows.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import time
from collections.abc import Callable, Mapping
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import Any

from vrrpy.codec.errors import DecodeError
from vrrpy.codec.ip import parse_ipv4
from vrrpy.codec.vrrp import (
    IPPROTO_VRRP,
    VRRP_MULTICAST_V4,
    VRRP_MULTICAST_V6,
    VRRP_TTL,
    IPAddress,
    PacketInfo,
)
from vrrpy.runtime import mmsg, sendbatch, vridfilter
from vrrpy.runtime.refilter import AfterDeliveries, Refilter, wait_inline
from vrrpy.runtime.vridfilter import ALL_URGENT

logger = logging.getLogger("vrrpy.runtime")
Receiver = Callable[[bytes, PacketInfo, "float | None"], None]
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_TIMESPEC = struct.Struct("@qq")
_ANC_SIZE = mmsg.CONTROL_SIZE
_MAX_BATCH = 8192
_MAX_BULK = 65536  # more than a 4 MiB queue holds: read until empty, bounded under a flood
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # <linux/in.h>; Python does not export it


class VRRPSocket:
    """Raw protocol-112 sockets on one interface, for one address family.

    A receiving socket is a pair (see :mod:`vrrpy.runtime.vridfilter`): the
    *urgent* one, which the event loop watches and adverts leave by, takes
    priority-0 adverts and those of the VRIDs in :attr:`urgent`; the *bulk* one
    takes everything else; :meth:`read` reads both, when the urgent one wakes
    the loop or when the runtime needs to be up to date (before a Backup acts).

    Each receiving socket is read with ``recvmmsg`` (:mod:`vrrpy.runtime.mmsg`)
    where libc has it and :data:`USE_RECVMMSG` is true when it is opened, with
    ``recvmsg`` otherwise; the items are the same either way.
    """

    _readers: Mapping[Any, mmsg.MmsgReader] = MappingProxyType({})
    """The batch reader of each socket; none (the ``recvmsg`` loop) unless set up."""
    _poll: Callable[[int], list[tuple[int, int]]] | None = None
    """``poll`` over the two sockets, where they have readers (see :meth:`_pending`)."""

    def __init__(
        self,
        ifname: str,
        ifindex: int,
        family: int,
        source: IPAddress,
        join: bool = True,
        after_deliveries: AfterDeliveries = wait_inline,
        group: bool | None = None,
    ) -> None:
        self.ifname = ifname
        self.ifindex = ifindex
        self.family = family
        self.source = source
        self.received = 0
        self.sent = 0
        self.send_errors = 0
        self.header_errors = 0
        self.join = join
        """A receiving socket (a pair, feeding the VRID demultiplexer); else send-only."""
        self.group = join if group is None else group and join
        """Joined to the VRRP multicast group: a unicast-only interface joins nothing."""
        self.refilter = Refilter(self._attach_filter, after_deliveries, ifname)
        """Moves VRIDs between the two queues (see :mod:`vrrpy.runtime.refilter`)."""
        self._af = socket.AF_INET if family == 4 else socket.AF_INET6
        self._reading = False
        self._held: list[_Received] = []
        self._recent: set[_Received] | None = None
        self._clean_at = 0  # the filter-change count at the last read made at rest
        self.delivery_errors = 0
        self.clock_steps = 0
        """Reads that found the wall clock stepped since the previous one."""
        self.mono_ns = time.monotonic_ns
        self.wall_ns = time.time_ns
        """The two clocks, injectable for tests: arrival times are kernel wall-clock
        stamps, placed on the monotonic clock with their offset."""
        self._offset: int | None = None
        self._offsets: tuple[int, ...] = ()
        self._read_at = 0
        self._window = (0, 0)
        self._sockaddrs: dict[IPAddress, tuple[str, int] | tuple[str, int, int, int]] = {}
        self._sources: dict[str, IPv6Address] = {}
        self._v4: dict[bytes, IPv4Address] = {}
        self._destinations: dict[bytes, IPv6Address] = {}
        self._v6: dict[bytes, IPv6Address] = {}
        self._infos: dict[Any, PacketInfo] = {}
        first = vridfilter.program(family, (), True) if join else vridfilter.DROP_ALL
        self.sock = self._open(first, send=True)
        self.bulk: socket.socket | None = None
        if join:
            try:
                self.bulk = self._open(vridfilter.program(family, (), False), send=False)
            except OSError:
                self.sock.close()
                raise
        self._sockets = [self.sock] if self.bulk is None else [self.sock, self.bulk]
        self.batch = (
            sendbatch.Batch(self.sock.fileno(), self)
            if USE_SENDMMSG and sendbatch.available()
            else None
        )
        """A beat's adverts on this socket, sent in one ``sendmmsg`` (see :meth:`prepared`)."""
        if join and USE_RECVMMSG and mmsg.available():
            # The urgent queue holds a few adverts between wake-ups, the bulk one
            # up to a sweep's worth: a smaller batch for the first saves memory.
            readers = {self.sock: mmsg.MmsgReader(family, URGENT_VLEN)}
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            if self.bulk is not None:
                readers[self.bulk] = mmsg.MmsgReader(family)
                poller.register(self.bulk, select.POLLIN)
            self._readers = readers
            self._poll = poller.poll
            self._urgent_fd = self.sock.fileno()

    def _open(self, insns: list[vridfilter.Insn], send: bool) -> socket.socket:
        sock = socket.socket(self._af, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            # Nothing queued until bound to the interface (a raw socket takes every
            # protocol-112 packet from the moment it exists), then the real filter.
            vridfilter.attach(sock, vridfilter.DROP_ALL)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.ifname.encode())
            vridfilter.attach(sock, insns)
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            if self.join:
                _grow_receive_buffer(sock)
            if self.family == 4:
                self._setup_v4(sock, send)
            else:
                self._setup_v6(sock, send)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def join_group(self) -> None:
        """Join the VRRP multicast group now (a multicast instance joined a unicast socket)."""
        if self.group or not self.join:
            return
        for sock in self._sockets:
            self._join(sock)
        self.group = True

    def _join(self, sock: socket.socket) -> None:
        if self.family == 4:
            mreqn = struct.pack("4s4si", VRRP_MULTICAST_V4.packed, b"\0\0\0\0", self.ifindex)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        else:
            mreq = VRRP_MULTICAST_V6.packed + struct.pack("@I", self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)

    def _setup_v4(self, sock: socket.socket, send: bool) -> None:
        mreqn = struct.pack("4s4si", VRRP_MULTICAST_V4.packed, b"\0\0\0\0", self.ifindex)
        if self.group:
            self._join(sock)
        if not send:
            return
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        self._pktinfo = [
            (
                socket.IPPROTO_IP,
                _IP_PKTINFO,
                struct.pack("i4s4s", self.ifindex, self.source.packed, b"\0\0\0\0"),
            )
        ]

    def _setup_v6(self, sock: socket.socket, send: bool) -> None:
        if self.group:
            self._join(sock)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        if not send:
            return
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
        self._pktinfo = [
            (
                socket.IPPROTO_IPV6,
                socket.IPV6_PKTINFO,
                self.source.packed + struct.pack("@I", self.ifindex),
            )
        ]

    @property
    def urgent(self) -> frozenset[int]:
        """VRIDs whose adverts wake the loop at once now (those we are Master of, and
        for a few milliseconds after a change those we were)."""
        return self.refilter.urgent

    def set_urgent(self, vrids: frozenset[int]) -> None:
        """Make the adverts of ``vrids`` (and priority 0) wake the loop; the rest wait.

        The urgent filter takes new VRIDs at once; the rest of the change is
        made step by step, a grace period apart, so that no advert is lost on
        the way (:mod:`vrrpy.runtime.refilter`). If the kernel refuses a filter
        (memory), every advert is made urgent: correct, at the cost of a
        wake-up per packet; the next call tries again.
        """
        if self.bulk is not None:
            self.refilter.request(vrids)

    def _attach_filter(self, urgent: bool, vrids: frozenset[int]) -> None:
        family = self.family
        if vrids == ALL_URGENT:
            insns = vridfilter.ACCEPT_ALL if urgent else vridfilter.DROP_ALL
        else:
            insns = vridfilter.program(family, vrids, urgent)
        target = self.sock if urgent else self.bulk
        if target is not None:
            vridfilter.attach(target, insns)

    def fileno(self) -> int:
        """The socket's file descriptor, for the event loop."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the sockets (leaving the group with them)."""
        self.refilter.close()
        self._poll = None  # a read after this fails on each socket, as it always did
        self._readers = {}  # (by recvmsg) and the buffers go
        for sock in self._sockets:
            sock.close()

    def send(self, payload: bytes, destination: IPAddress) -> bool:
        """Send one VRRP message; False (and counted) if the kernel refused it."""
        address = self._sockaddrs.get(destination)
        if address is None:
            address = self._sockaddr(destination)
        return self.send_to(payload, address)

    def sockaddr(self, destination: IPAddress) -> tuple[str, int] | tuple[str, int, int, int]:
        """The socket address :meth:`send_to` takes for ``destination`` (made once: a
        Master keeps it with its advert's bytes, and hashes no address per advert)."""
        return self._sockaddrs.get(destination) or self._sockaddr(destination)

    def prepared(
        self, payload: bytes, address: tuple[str, int] | tuple[str, int, int, int]
    ) -> tuple[Callable[..., int], tuple[Any, ...], sendbatch.Prepared | None]:
        """What :meth:`send_to` would do, made once: (a function, its arguments) and, where
        :attr:`batch` is, the datagram's ``mmsghdr`` (:class:`~.sendbatch.Prepared`).

        A steady Master's advert goes out from :class:`~vrrpy.runtime.pacing.Beats`
        without this object's frame: added to :attr:`batch`, which the beat
        flushes, or as ``function(*arguments)``, which the caller counts in
        :attr:`sent` (an ``OSError`` in :attr:`send_errors`) as :meth:`send_to`
        does."""
        ancillary = self._pktinfo
        header = None
        if self.batch is not None:
            name = sendbatch.sockaddr(address)
            header = sendbatch.Prepared(payload, name, sendbatch.control(ancillary))
        return self.sock.sendmsg, ([payload], ancillary, 0, address), header

    def send_to(self, payload: bytes, address: tuple[str, int] | tuple[str, int, int, int]) -> bool:
        """:meth:`send` to an address made by :meth:`sockaddr`: a Master's per-advert path."""
        try:
            self.sock.sendmsg([payload], self._pktinfo, 0, address)
        except OSError:
            self.send_errors += 1
            return False
        self.sent += 1
        return True

    def read(self, deliver: Receiver) -> int:
        """Read both queues and hand each VRRP message to ``deliver``, oldest first.

        Each message comes with its arrival time on the monotonic clock, from the
        kernel's receive timestamp (SO_TIMESTAMPNS): a Backup's Master_Down_Timer
        then runs from when the advert reached the host, not from when the event
        loop got round to it. The two queues are merged by that time, so a
        Master's advert read late from the bulk queue can never undo its
        priority-0 advert that came after it: the urgent queue is read first,
        then the bulk queue until it is empty, so that nothing left unread is
        older than what is delivered. (Should a flood keep the bulk queue from
        emptying, the urgent adverts newer than the last bulk one read are held
        back for the next read.)

        A delivery that raises is logged and counted (``delivery_errors``); the
        rest of the batch is still delivered. Returns how many adverts came from
        the urgent queue: what decides whether the runtime keeps polling.
        """
        if self._reading:
            return 0  # called back from a delivery: the outer read goes on, in order
        self._reading = True
        try:
            return self._read(deliver)
        finally:
            self._reading = False

    def _read(self, deliver: Receiver) -> int:
        # Items carry the kernel's CLOCK_REALTIME stamp in integer nanoseconds, turned
        # into monotonic seconds as they are delivered: exact, so that the twins of a
        # filter change stay equal across reads, and twins of nothing else.
        mono = self.mono_ns()
        offset = mono - self.wall_ns()
        urgent_queued, bulk_queued = self._pending()
        urgent = self._held + self._collect(self.sock, _MAX_BATCH) if urgent_queued else self._held
        self._held = []
        bulk: list[_Received] = []
        if self.bulk is not None and bulk_queued:
            bulk = self._collect(self.bulk, _MAX_BULK)
            if len(bulk) >= _MAX_BULK and urgent:
                newest = _arrival(bulk[-1])
                self._held = [item for item in urgent if _arrival(item) > newest]
                urgent = [item for item in urgent if _arrival(item) <= newest]
        count = len(urgent)
        merged = sorted(urgent + bulk, key=_arrival) if urgent and bulk else urgent or bulk
        placing = self._clock(mono, offset)
        refilter = self.refilter
        recent = self._recent
        if recent is None and self._clean_at == refilter.changes and not refilter.overlapping:
            # At rest, and read at rest since the filters last changed: the programs
            # are exact complements and no twin can be queued.
            if placing is None:
                for item in merged:
                    self._deliver(deliver, item, placing)
                return count
            # What _deliver does, inline: the usual read skips a method call per advert.
            high = self._window[1]
            for stamp, payload, info in merged:
                if stamp is None:
                    arrival = None
                else:
                    stamp += placing
                    arrival = (stamp if stamp < high else high) * 1e-9
                try:
                    deliver(payload, info, arrival)
                except Exception:  # one instance's bug must not cost the others their adverts
                    self._failed()
            return count
        # A filter change is in flight, or ended since the last read: a packet may
        # sit on both queues (its twins then meet here), or one copy may have been
        # read before and the other only now (queued between our reads).
        if recent is None:
            recent = set()
        for item in merged:
            if item[0] is not None:  # (always stamped on Linux; unstamped, never twinned)
                if item in recent:
                    continue
                recent.add(item)
            self._deliver(deliver, item, placing)
        if refilter.overlapping or self._held:
            if len(recent) > _RECENT and merged:
                cutoff = _arrival(merged[-1]) - 1_000_000_000  # no delivery stalls a second
                recent = {item for item in recent if _arrival(item) >= cutoff}
            self._recent = recent
        else:
            self._recent = None
            self._clean_at = refilter.changes
        return count

    def _pending(self) -> tuple[bool, bool]:
        """Whether to read (the urgent queue, the bulk queue), from one ``poll``.

        A read of an empty queue costs a system call that fails; a Backup's reads
        (one per interface and family, each time a Backup checks its timer) mostly
        find one queue or both empty, and one ``poll`` of both costs a fifth of one
        such call. The bulk queue is read whenever the urgent one is: it must then
        be read until empty *after* the urgent one (see :meth:`read`), whatever it
        held when polled. Without a poll (no readers, or closed): both.
        """
        poll = self._poll
        if poll is None:
            return True, True
        ready = poll(0)
        if not ready:
            return False, False
        urgent = self._urgent_fd
        for fd, _events in ready:
            if fd == urgent:
                return True, True
        return False, True

    def _clock(self, mono: int, offset: int) -> int | None:
        """The realtime-to-monotonic offset for this read's stamps; None after a clock step.

        Kernel receive stamps are CLOCK_REALTIME. Converted with the offset
        between the two clocks at read time, they are exact as long as the
        wall clock did not step (NTP, an administrator) between the packet's
        arrival and the read. Slewing moves the offset by at most 0.5 ms a
        second; a step is any larger move (:data:`CLOCK_STEP_NS`) seen between
        the previous read and the end of this one. Then each stamp is placed
        by :meth:`_placed` instead.
        """
        after = self.mono_ns()
        end_offset = after - self.wall_ns()
        prev = self._offset
        self._window = (self._read_at - CLOCK_STEP_NS, after)
        self._offsets = (offset, end_offset) if prev is None else (prev, offset, end_offset)
        self._offset = end_offset
        self._read_at = mono
        if max(self._offsets) - min(self._offsets) > CLOCK_STEP_NS:
            self.clock_steps += 1
            logger.warning(
                "%s: the wall clock stepped by %.3f s: this read's arrival times are "
                "placed by their bounds (never earlier than the last read)",
                self.ifname,
                (min(self._offsets) - max(self._offsets)) * 1e-9,
            )
            return None
        return end_offset

    def _placed(self, stamp: int) -> int:
        """The monotonic arrival of ``stamp`` read across a clock step.

        The packet arrived after the previous read began and before this read
        ended: of the offsets seen around the step, the stamps they give inside
        that window are the candidates, and the latest one is taken. A later
        arrival can only postpone a Backup's Master_Down_Timer, by at most the
        step, within the window: never a takeover because of the clock.
        """
        low, high = self._window
        best: int | None = None
        for offset in self._offsets:
            when = stamp + offset
            if low <= when <= high and (best is None or when > best):
                best = when
        return high if best is None else best

    def _deliver(self, deliver: Receiver, item: _Received, offset: int | None) -> None:
        stamp = item[0]
        if stamp is not None:
            if offset is None:
                stamp = self._placed(stamp)
            else:
                stamp += offset
                if stamp > self._window[1]:
                    stamp = self._window[1]  # never later than the read itself
        try:
            deliver(item[1], item[2], None if stamp is None else stamp * 1e-9)
        except Exception:  # one instance's bug must not cost the others their adverts
            self._failed()

    def _failed(self) -> None:
        """Count and log the delivery that just raised (called in its ``except``)."""
        self.delivery_errors += 1
        logger.exception("%s: delivering an advert failed", self.ifname)

    def _collect(self, sock: socket.socket, limit: int) -> list[_Received]:
        """Everything queued on ``sock`` (up to a batch), as (kernel stamp, payload, info).

        The per-packet path of a Backup: batched by ``recvmmsg`` where the socket
        has a reader, else one ``recvmsg`` per packet (names bound to locals);
        counters added once per batch either way.
        """
        reader = self._readers.get(sock)
        if reader is not None:
            fd = sock.fileno()
            if self.family == 4:
                out, errors, failed = reader.collect_v4(fd, limit, self._infos, self._v4)
            else:
                out, errors, failed = reader.collect_v6(fd, limit, self._infos, self._v6)
            self.received += len(out) + errors
            self.header_errors += errors + int(failed)
            return out
        out = []
        append = out.append
        recvmsg = sock.recvmsg
        v4 = self.family == 4
        sources = self._sources
        destinations = self._destinations
        v4_cache = self._v4
        info_of = _packet_info
        errors = 0
        for _ in range(limit):
            try:
                data, anc, _flags, addr = recvmsg(_RECEIVE_SIZE, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.header_errors += 1
                break
            arrival: int | None = None
            hop_limit = -1
            dst6 = VRRP_MULTICAST_V6
            for level, kind, value in anc:
                if level == _SOL_SOCKET:
                    if kind == _SO_TIMESTAMPNS and len(value) >= 16:
                        sec, nsec = _TIMESPEC.unpack_from(value)
                        arrival = sec * 1_000_000_000 + nsec
                elif level == _IPPROTO_IPV6:
                    if kind == _IPV6_HOPLIMIT and len(value) >= 4:
                        hop_limit = _INT.unpack_from(value)[0]
                    elif kind == _IPV6_PKTINFO and len(value) >= 16:
                        key = value[:16]
                        dst6 = destinations.get(key) or self._destination(key)
            if v4:
                try:
                    src4, dst4, ttl, _proto, payload = parse_ipv4(data, v4_cache)
                except DecodeError:
                    errors += 1
                    continue
                append((arrival, payload, info_of((src4, dst4, ttl))))
                continue
            src6 = sources.get(addr[0])
            if src6 is None:
                src6 = IPv6Address(addr[0].split("%", 1)[0])
                if len(sources) < _CACHE:
                    sources[addr[0]] = src6
            append((arrival, data, info_of((src6, dst6, hop_limit))))
        self.received += len(out) + errors
        self.header_errors += errors
        return out

    def _sockaddr(self, destination: IPAddress) -> tuple[str, int] | tuple[str, int, int, int]:
        """The socket address of ``destination`` (formatting an IPv6 address costs microseconds:
        made once per peer, not per advert)."""
        if self.family == 4:
            address: tuple[str, int] | tuple[str, int, int, int] = (str(destination), 0)
        else:
            address = (str(destination), 0, 0, self.ifindex)
        if len(self._sockaddrs) < _CACHE:
            self._sockaddrs[destination] = address
        return address

    def _destination(self, packed: bytes) -> IPv6Address:
        address = IPv6Address(packed)
        if len(self._destinations) < _CACHE:
            self._destinations[packed] = address
        return address


_SOL_SOCKET = socket.SOL_SOCKET
_IPPROTO_IPV6 = socket.IPPROTO_IPV6
_IPV6_HOPLIMIT = socket.IPV6_HOPLIMIT
_IPV6_PKTINFO = socket.IPV6_PKTINFO
_RECEIVE_SIZE = mmsg.RECEIVE_SIZE


def _packet_info(fields: tuple[IPAddress, IPAddress, int]) -> PacketInfo:
    """``PacketInfo(*fields)`` without the Python-level ``__new__`` of a NamedTuple."""
    return tuple.__new__(PacketInfo, fields)


_CACHE = 4096
"""Parsed IPv6 sources and destinations kept per socket (peers are few; the bound is for
a LAN that sends us junk from random addresses)."""
USE_RECVMMSG = True
"""Read with ``recvmmsg`` where libc has it (sockets opened while this is true); false
keeps the ``recvmsg`` loop (benchmarks and tests compare the two)."""
URGENT_VLEN = 16
"""Messages per ``recvmmsg`` on the urgent queue (the bulk one takes :data:`mmsg.VLEN`)."""
USE_SENDMMSG = True
"""A beat sends its steady adverts with ``sendmmsg`` where libc has it (sockets opened
while this is true); false: one ``sendmsg`` each (benchmarks and tests compare)."""
_Received = tuple["int | None", bytes, PacketInfo]
_RECENT = 4096
"""Remembered deliveries (for twins) beyond which those over a second old are forgotten."""
_INT = struct.Struct("@i")
CLOCK_STEP_NS = 2_000_000
"""A change of the wall-to-monotonic offset larger than this (2 ms) between two reads is a
step of the wall clock, not NTP's slewing (at most 0.5 ms per second)."""


def _arrival(item: _Received) -> int:
    return item[0] or 0


RECEIVE_BUFFER = 4 << 20
"""Bytes of receive queue per socket: hundreds of instances' adverts (each costs about
1 KiB of kernel memory queued) must survive the loop being busy for a second."""


def _grow_receive_buffer(sock: socket.socket) -> None:
    """SO_RCVBUFFORCE (root may exceed net.core.rmem_max), else the capped SO_RCVBUF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, RECEIVE_BUFFER)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)


def default_destination(family: int) -> IPv4Address | IPv6Address:
    """The VRRP multicast group of ``family``."""
    return VRRP_MULTICAST_V4 if family == 4 else VRRP_MULTICAST_V6
