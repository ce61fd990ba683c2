"""Batched reads of a raw VRRP socket: ``recvmmsg(2)`` through ctypes.

Why: a Backup receives every advert of every virtual router on its LAN, and
one ``socket.recvmsg`` per advert cost it more than anything else on its
receive path -- a system call per packet (and one more, failing, to find the
queue empty), then Python objects for the ancillary list (a tuple per control
message, bytes for each value) and, for IPv6, the source address formatted
as text. ``recvmmsg`` fills many messages in one call; a call that fills
fewer than it asked for found the queue empty, so no failing call follows.

The kernel writes the messages into one buffer per socket, made once
(anonymous memory: resident only where written): the ``mmsghdr`` array
(which the kernel wants contiguous), the ``iovec`` array, then one *slot* per
message -- socket address, control area and data in a row -- so that one
``struct.iter_unpack`` over the slots reads each IPv6 message's address and
control messages, or each IPv4 one's stamp and IP header, in a single C loop,
and another over the ``mmsghdr`` array their lengths. :mod:`struct` rather
than ctypes attributes: a ctypes field read builds objects per field and
costs several times an unpack that returns the lot (``bench/recv_bench.py
--micro``). Every pointer and capacity is set once; the kernel writes back
``msg_namelen``, ``msg_controllen`` and ``msg_len``, so the headers a call
used are restored from a pristine copy before the next call (one copy).

Control messages are walked by their lengths, in whatever order and number
they come (:func:`walk_control`). The kernel has written the same layout for
years (IPv6: the receive stamp, then IPV6_PKTINFO, then IPV6_HOPLIMIT; IPv4:
the stamp alone), so each message is first tried against that layout --
the control length and every header compared with what they must be -- and
walked only if anything differs: no order is assumed, only guessed and
checked.

What comes out is exactly what :meth:`VRRPSocket._collect` built from
``recvmsg``: ``(kernel stamp ns | None, payload bytes, PacketInfo)``; a
datagram longer than :data:`RECEIVE_SIZE` arrives cut to it (and fails the
decoder's length checks); an IPv4 header that :func:`vrrpy.codec.ip.parse_ipv4`
would refuse is counted, not returned. PacketInfos are cached by what they
are made of (peers are few), so most adverts build none. The reader is
optional: where libc or ``recvmmsg`` cannot be found, :func:`available` is
False and the sockets keep their ``recvmsg`` loop.
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import socket
import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from vrrpy.codec.vrrp import VRRP_MULTICAST_V6, PacketInfo

RECEIVE_SIZE = 8192
"""Bytes read per datagram: the largest VRRP packet (IPv6, 255 addresses) is 4,088
bytes of VRRP; anything longer arrives truncated and fails the decoder's checks."""
CONTROL_SIZE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20) + socket.CMSG_SPACE(16)
"""Control bytes per message: a hop limit, an ``in6_pktinfo`` and a ``timespec``."""
VLEN = 64
"""Messages per ``recvmmsg`` call. Past a few dozen the call's fixed cost is lost in the
per-message work (``bench/recv_bench.py --vlen``); each message costs
:data:`RECEIVE_SIZE` bytes of address space (an advert makes a page or two resident)."""
CACHE = 4096
"""PacketInfos kept per socket by (source, destination, TTL): peers are few; the bound
is for a LAN that sends us junk from random addresses."""

_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SOL_SOCKET = socket.SOL_SOCKET
_IPPROTO_IPV6 = socket.IPPROTO_IPV6
_IPV6_HOPLIMIT = socket.IPV6_HOPLIMIT
_IPV6_PKTINFO = socket.IPV6_PKTINFO
_EAGAIN = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class _IOVec(ctypes.Structure):
    _fields_ = (("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t))


class _MsgHdr(ctypes.Structure):
    _fields_ = (
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    )


class _MMsgHdr(ctypes.Structure):
    _fields_ = (("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint))


IOVec = _IOVec
MMsgHdr = _MMsgHdr
"""The kernel's ``iovec`` and ``mmsghdr``, for :mod:`vrrpy.runtime.sendbatch` too."""


def _code(size: int) -> str:
    """The standard-size :mod:`struct` code of an unsigned C integer of ``size`` bytes."""
    return {4: "I", 8: "Q"}[size]


_SIZE_T = _code(ctypes.sizeof(ctypes.c_size_t))
_LONG = _code(ctypes.sizeof(ctypes.c_long)).lower()
_ALIGN = ctypes.sizeof(ctypes.c_size_t)
"""``CMSG_ALIGN``: control messages start on ``size_t`` boundaries."""
_CMSG = struct.Struct("=" + _SIZE_T + "ii")
_CMSG_LEN = _CMSG.size
_TIMESPEC = struct.Struct("=" + _LONG + _LONG)  # time_t and long: both a C long on Linux
_INT = struct.Struct("=i")
_ADDR16 = struct.Struct("=16s")
_SOCKADDR_IN6 = 28
_NAME = 32
"""Bytes of a slot's socket address: a ``sockaddr_in6`` (28), to the next 8."""


def _fields(*names: str) -> struct.Struct:
    """A Struct over one ``mmsghdr`` that picks the fields ``names`` (in layout order)."""
    spots: list[tuple[int, int]] = []
    for name in names:
        if name == "msg_len":
            field = _MMsgHdr.msg_len
            offset = field.offset
        else:
            field = getattr(_MsgHdr, name)
            offset = _MMsgHdr.msg_hdr.offset + field.offset
        spots.append((offset, field.size))
    fmt, at = "=", 0
    for offset, size in spots:
        fmt += f"{offset - at}x{_code(size)}"
        at = offset + size
    return struct.Struct(fmt + f"{ctypes.sizeof(_MMsgHdr) - at}x")


_HEADER_V6 = _fields("msg_namelen", "msg_controllen", "msg_len")
_HEADER_V4 = _fields("msg_controllen", "msg_len")


def _cmsg(level: int, kind: int, size: int) -> tuple[bytes, int]:
    """The header bytes the kernel writes for a control message, and the message's space."""
    space = (_CMSG_LEN + size + _ALIGN - 1) & -_ALIGN
    return _CMSG.pack(_CMSG_LEN + size, level, kind), space


_STAMP_HEADER, _STAMP_SPACE = _cmsg(_SOL_SOCKET, _SO_TIMESTAMPNS, _TIMESPEC.size)
_PKTINFO_HEADER, _PKTINFO_SPACE = _cmsg(_IPPROTO_IPV6, _IPV6_PKTINFO, 20)
_HOP_HEADER, _HOP_SPACE = _cmsg(_IPPROTO_IPV6, _IPV6_HOPLIMIT, 4)
_USUAL_V6 = _STAMP_SPACE + _PKTINFO_SPACE + _HOP_SPACE
"""The control bytes of an IPv6 advert as the kernel writes them: stamp, pktinfo, hop limit."""
_SLOT = _NAME + CONTROL_SIZE + RECEIVE_SIZE
"""Bytes per message: its socket address, control area and data, in a row."""


def _slot(fmt: str) -> struct.Struct:
    """A Struct of ``fmt`` padded to a whole slot, for ``iter_unpack`` over the slots."""
    return struct.Struct(f"{fmt}{_SLOT - struct.calcsize(fmt)}x")


_SLOT_V6 = _slot(
    f"=8x16s{_NAME - 24}x"  # sockaddr_in6: family, port, flowinfo; the address; scope id
    f"{_CMSG_LEN}s{_TIMESPEC.format[1:]}{_STAMP_SPACE - _CMSG_LEN - _TIMESPEC.size}x"
    f"{_CMSG_LEN}s16s{_PKTINFO_SPACE - _CMSG_LEN - 16}x"  # in6_pktinfo: address (, ifindex)
    f"{_CMSG_LEN}si{_HOP_SPACE - _CMSG_LEN - 4}x"
)
"""An IPv6 slot read the usual way: source, the three control headers and their values."""
_SLOT_V4 = _slot(
    f"={_NAME}x{_CMSG_LEN}s{_TIMESPEC.format[1:]}{CONTROL_SIZE - _STAMP_SPACE}x"
    "BxBB4xB3xQ"  # the IP header: version and IHL, total length (two bytes), TTL, addresses
)
"""An IPv4 slot read the usual way: the stamp's header and value, then the IP header
fields :func:`vrrpy.codec.ip.parse_ipv4` checks (big-endian ones read as bytes, so that
one native-order unpack takes both; source and destination as one integer, a cheap key)."""
_ADDRESSES = struct.Struct("=Q")


def walk_control(view: Any, start: int, length: int) -> tuple[int | None, int, bytes | None]:
    """(stamp ns, hop limit, packed IPv6 destination) from the control area at ``start``.

    Walks the ``cmsghdr`` chain by length as ``CMSG_NXTHDR`` does, taking the
    three kinds a VRRP socket asks for wherever they are and skipping any other;
    a value shorter than its kind needs is ignored, as the ``recvmsg`` path
    ignored it. Absent: None, -1, None.
    """
    stamp: int | None = None
    hop = -1
    destination: bytes | None = None
    at = start
    end = start + length
    while at + _CMSG_LEN <= end:
        size, level, kind = _CMSG.unpack_from(view, at)
        if size < _CMSG_LEN:
            break
        value = min(size, end - at) - _CMSG_LEN
        if level == _SOL_SOCKET:
            if kind == _SO_TIMESTAMPNS and value >= _TIMESPEC.size:
                sec, nsec = _TIMESPEC.unpack_from(view, at + _CMSG_LEN)
                stamp = sec * 1_000_000_000 + nsec
        elif level == _IPPROTO_IPV6:
            if kind == _IPV6_HOPLIMIT and value >= 4:
                hop = _INT.unpack_from(view, at + _CMSG_LEN)[0]
            elif kind == _IPV6_PKTINFO and value >= 16:
                destination = _ADDR16.unpack_from(view, at + _CMSG_LEN)[0]
        at += (size + _ALIGN - 1) & -_ALIGN
    return stamp, hop, destination


_Received = tuple["int | None", bytes, PacketInfo]
_recvmmsg: Any = None


def available() -> bool:
    """Whether libc's ``recvmmsg`` could be bound (looked up once)."""
    global _recvmmsg
    if _recvmmsg is None:
        try:
            function = ctypes.CDLL(None, use_errno=True).recvmmsg
        except (OSError, AttributeError):
            _recvmmsg = False
        else:
            function.argtypes = (
                ctypes.c_int,
                ctypes.c_void_p,
                ctypes.c_uint,
                ctypes.c_int,
                ctypes.c_void_p,
            )
            function.restype = ctypes.c_int
            _recvmmsg = function
    return _recvmmsg is not False


class MmsgReader:
    """The ``recvmmsg`` buffers of one socket, and the loops that turn them into items.

    ``family`` is 4 or 6: an IPv4 raw socket hands over the whole datagram (its
    header parsed here), an IPv6 one the payload with the source in the socket
    address and the rest in control messages. Requires :func:`available`.
    """

    def __init__(self, family: int, vlen: int = VLEN) -> None:
        if not available():
            raise OSError(errno.ENOSYS, "recvmmsg is not available")
        self.family = family
        self.vlen = vlen
        self.calls = 0
        """``recvmmsg`` calls made (for tests and benchmarks)."""
        stride = ctypes.sizeof(_MMsgHdr)
        iovecs = stride * vlen
        base = (iovecs + ctypes.sizeof(_IOVec) * vlen + 63) & -64
        slot = _SLOT
        self._stride = stride
        self._base = base
        # Anonymous memory: pages are only made resident as the kernel first writes to
        # them (the first of each data area, for adverts), where a ctypes array is
        # zeroed, and resident, whole.
        self._memory = mmap.mmap(-1, base + slot * vlen)
        self._buffer = (ctypes.c_char * (base + slot * vlen)).from_buffer(self._memory)
        address = ctypes.addressof(self._buffer)
        self._address = address
        self._view = memoryview(self._buffer).cast("B")
        self._starts = range(base, base + slot * vlen, slot)
        """Where each message's slot begins: its address, control area and data, in a row,
        so that ``iter_unpack`` over the slots reads an IPv6 message's address and control
        messages, or an IPv4 one's stamp and IP header, all in one C loop."""
        for i, start in enumerate(self._starts):
            iov = _IOVec.from_buffer(self._buffer, iovecs + ctypes.sizeof(_IOVec) * i)
            iov.iov_base = address + start + _NAME + CONTROL_SIZE
            iov.iov_len = RECEIVE_SIZE
            header = _MMsgHdr.from_buffer(self._buffer, stride * i).msg_hdr
            if family == 6:  # IPv4's source is in the IP header: no address wanted
                header.msg_name = address + start
                header.msg_namelen = _SOCKADDR_IN6
            header.msg_iov = ctypes.addressof(iov)
            header.msg_iovlen = 1
            header.msg_control = address + start + _NAME
            header.msg_controllen = CONTROL_SIZE
        self._pristine = memoryview(bytes(self._view[:iovecs]))
        self._dirty = 0

    def receive(self, fd: int, count: int) -> int:
        """Fill up to ``count`` (at most ``vlen``) messages from ``fd``; how many came.

        0 when nothing is queued (EAGAIN) or the call was interrupted: the end of
        the queue either way, as for ``recvmsg``. Any other failure raises OSError.
        """
        if self._dirty:  # the kernel wrote back lengths: restore the capacities
            self._view[: self._dirty] = self._pristine[: self._dirty]
            self._dirty = 0
        self.calls += 1
        got: int = _recvmmsg(fd, self._address, count, 0, None)
        if got < 0:
            code = ctypes.get_errno()
            if code in _EAGAIN:
                return 0
            raise OSError(code, os.strerror(code))
        self._dirty = got * self._stride
        return got

    def collect_v6(
        self,
        fd: int,
        limit: int,
        infos: dict[Any, PacketInfo],
        addresses: dict[bytes, IPv6Address],
    ) -> tuple[list[_Received], int, bool]:
        """Up to ``limit`` IPv6 messages from ``fd``, until the queue is empty.

        ``infos`` caches PacketInfos by (packed source, packed destination, hop
        limit), ``addresses`` IPv6 addresses by their bytes (both filled up to
        :data:`CACHE`). Returns the items, the count of messages without a
        source address (never seen from Linux) and whether a read failed (not
        EAGAIN).
        """
        out: list[_Received] = []
        append = out.append
        view = self._view
        buffer: Any = self._buffer  # slices of a c_char array are bytes: the fastest copy
        slots = _SLOT_V6.iter_unpack
        base = self._base
        header = _HEADER_V6.iter_unpack
        stride = self._stride
        starts = self._starts
        usual, stamp_h, pktinfo_h, hop_h = _USUAL_V6, _STAMP_HEADER, _PKTINFO_HEADER, _HOP_HEADER
        skip = _NAME + CONTROL_SIZE
        new_info = tuple.__new__
        errors = 0
        while len(out) + errors < limit:
            want = min(self.vlen, limit - len(out) - errors)
            try:
                got = self.receive(fd, want)
            except OSError:
                return out, errors, True
            for (namelen, controllen, length), fields, at in zip(
                header(view[: got * stride]),
                slots(view[base : base + got * _SLOT]),
                starts,
                strict=False,
            ):
                if namelen < 24:  # no source address: nothing to check it against
                    errors += 1
                    continue
                src, h1, sec, nsec, h2, dst, h3, hop = fields
                if controllen == usual and h1 == stamp_h and h2 == pktinfo_h and h3 == hop_h:
                    stamp: int | None = sec * 1_000_000_000 + nsec
                    key = (src, dst, hop)
                else:
                    stamp, hop, packed = walk_control(view, at + _NAME, controllen)
                    key = (src, packed, hop)
                info = infos.get(key)
                if info is None:
                    info = new_info(PacketInfo, (_v6(addresses, src), _v6(addresses, key[1]), hop))
                    if len(infos) < CACHE:
                        infos[key] = info
                at += skip
                append((stamp, buffer[at : at + length], info))
            if got < want:
                break
        return out, errors, False

    def collect_v4(
        self,
        fd: int,
        limit: int,
        infos: dict[Any, PacketInfo],
        addresses: dict[bytes, IPv4Address],
    ) -> tuple[list[_Received], int, bool]:
        """Up to ``limit`` IPv4 datagrams from ``fd``, until the queue is empty.

        The IP header is checked as :func:`vrrpy.codec.ip.parse_ipv4` checks it
        (a datagram it would refuse is counted, not returned) and the payload cut
        at the header's total length. ``infos`` caches PacketInfos by source and
        destination (the one of the last TTL seen from that pair: checked, not
        trusted), ``addresses`` IPv4 addresses by their bytes. Returns the items,
        the count of bad headers and whether a read failed (not EAGAIN).
        """
        out: list[_Received] = []
        append = out.append
        view = self._view
        buffer: Any = self._buffer  # slices of a c_char array are bytes: the fastest copy
        slots = _SLOT_V4.iter_unpack
        base = self._base
        header = _HEADER_V4.iter_unpack
        stride = self._stride
        starts = self._starts
        stamp_h, stamp_space = _STAMP_HEADER, _STAMP_SPACE
        skip = _NAME + CONTROL_SIZE
        new_info = tuple.__new__
        errors = 0
        while len(out) + errors < limit:
            want = min(self.vlen, limit - len(out) - errors)
            try:
                got = self.receive(fd, want)
            except OSError:
                return out, errors, True
            for (controllen, length), (h1, sec, nsec, vihl, high, low, ttl, pair), at in zip(
                header(view[: got * stride]),
                slots(view[base : base + got * _SLOT]),
                starts,
                strict=False,
            ):
                total = high << 8 | low
                data = at + skip
                if vihl == 0x45 and total == length >= 20:  # no options, nothing cut: the usual
                    payload = buffer[data + 20 : data + length]
                else:
                    ihl = (vihl & 0x0F) * 4
                    if length < 20 or vihl >> 4 != 4 or ihl < 20 or total < ihl or length < ihl:
                        errors += 1
                        continue
                    payload = buffer[data + ihl : data + (total if total < length else length)]
                if controllen == stamp_space and h1 == stamp_h:
                    stamp: int | None = sec * 1_000_000_000 + nsec
                else:
                    stamp = walk_control(view, at + _NAME, controllen)[0]
                info = infos.get(pair)
                if info is None or info[2] != ttl:
                    packed = _ADDRESSES.pack(pair)
                    source, destination = _v4(addresses, packed[:4]), _v4(addresses, packed[4:])
                    info = new_info(PacketInfo, (source, destination, ttl))
                    if len(infos) < CACHE or pair in infos:
                        infos[pair] = info
                append((stamp, payload, info))
            if got < want:
                break
        return out, errors, False


def _v6(addresses: dict[bytes, IPv6Address], packed: bytes | None) -> IPv6Address:
    """The address of ``packed`` (the VRRP group when the kernel gave no destination)."""
    if packed is None:
        return VRRP_MULTICAST_V6
    address = addresses.get(packed)
    if address is None:
        address = IPv6Address(packed)
        if len(addresses) < CACHE:
            addresses[packed] = address
    return address


def _v4(addresses: dict[bytes, IPv4Address], packed: bytes) -> IPv4Address:
    address = addresses.get(packed)
    if address is None:
        address = IPv4Address(packed)
        if len(addresses) < CACHE:
            addresses[packed] = address
    return address
