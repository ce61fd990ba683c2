"""Raw IP protocol 112 sockets: one per interface and address family, shared by its VRIDs.

Sends with TTL / hop limit 255 and multicast loopback off (our own adverts never
come back to us); joins 224.0.0.18 or ff02::12 on the interface; receives the
facts the decoder must check: the IPv4 TTL from the IP header, the IPv6 hop limit
and destination from ancillary data (IPV6_RECVHOPLIMIT, IPV6_RECVPKTINFO). The
source of every advert is pinned with IP_PKTINFO / IPV6_PKTINFO, so the primary
address (IPv4) or the link-local address (IPv6) is used whatever else the
interface holds, virtual addresses included.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address

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

Receiver = Callable[[bytes, PacketInfo, "float | None"], None]
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_TIMESPEC = struct.Struct("@qq")
_ANC_SIZE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(20) + socket.CMSG_SPACE(16)
_MAX_BATCH = 8192
_IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # <linux/in.h>; Python does not export it


class VRRPSocket:
    """A raw socket for protocol 112 on one interface, for one address family."""

    def __init__(
        self, ifname: str, ifindex: int, family: int, source: IPAddress, join: bool = True
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
        af = socket.AF_INET if family == 4 else socket.AF_INET6
        sock = socket.socket(af, socket.SOCK_RAW, IPPROTO_VRRP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
            _grow_receive_buffer(sock)
            if family == 4:
                self._setup_v4(sock)
            else:
                self._setup_v6(sock)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self.sock = sock

    def _setup_v4(self, sock: socket.socket) -> None:
        mreqn = struct.pack("4s4si", VRRP_MULTICAST_V4.packed, b"\0\0\0\0", self.ifindex)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
        if self.join:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        self._pktinfo = [
            (
                socket.IPPROTO_IP,
                _IP_PKTINFO,
                struct.pack("i4s4s", self.ifindex, self.source.packed, b"\0\0\0\0"),
            )
        ]

    def _setup_v6(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, VRRP_TTL)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.ifindex)
        if self.join:
            mreq = VRRP_MULTICAST_V6.packed + struct.pack("@I", self.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        self._pktinfo = [
            (
                socket.IPPROTO_IPV6,
                socket.IPV6_PKTINFO,
                self.source.packed + struct.pack("@I", self.ifindex),
            )
        ]

    def fileno(self) -> int:
        """The socket's file descriptor, for the event loop."""
        return self.sock.fileno()

    def close(self) -> None:
        """Close the socket (leaving the group with it)."""
        self.sock.close()

    def send(self, payload: bytes, destination: IPAddress) -> bool:
        """Send one VRRP message; False (and counted) if the kernel refused it."""
        try:
            if self.family == 4:
                self.sock.sendmsg([payload], self._pktinfo, 0, (str(destination), 0))
            else:
                self.sock.sendmsg(
                    [payload], self._pktinfo, 0, (str(destination), 0, 0, self.ifindex)
                )
        except OSError:
            self.send_errors += 1
            return False
        self.sent += 1
        return True

    def read(self, deliver: Receiver) -> int:
        """Read what is queued (up to a batch) and hand each VRRP message to ``deliver``.

        Each message comes with its arrival time on the monotonic clock, from the
        kernel's receive timestamp (SO_TIMESTAMPNS): a Backup's Master_Down_Timer
        then runs from when the advert reached the host, not from when the event
        loop got round to it.
        """
        sock = self.sock
        offset = time.monotonic() - time.time()
        count = 0
        for _ in range(_MAX_BATCH):
            try:
                data, anc, _flags, addr = sock.recvmsg(65535, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                return count
            except OSError:
                self.header_errors += 1
                return count
            self.received += 1
            count += 1
            arrival: float | None = None
            hop_limit = -1
            dst6 = VRRP_MULTICAST_V6
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET:
                    if kind == _SO_TIMESTAMPNS and len(value) >= 16:
                        sec, nsec = _TIMESPEC.unpack_from(value)
                        arrival = sec + nsec * 1e-9 + offset
                elif level == socket.IPPROTO_IPV6:
                    if kind == socket.IPV6_HOPLIMIT and len(value) >= 4:
                        hop_limit = struct.unpack("@i", value[:4])[0]
                    elif kind == socket.IPV6_PKTINFO and len(value) >= 16:
                        dst6 = IPv6Address(value[:16])
            if self.family == 4:
                try:
                    src4, dst4, ttl, _proto, payload = parse_ipv4(data)
                except DecodeError:
                    self.header_errors += 1
                    continue
                deliver(payload, PacketInfo(src4, dst4, ttl), arrival)
                continue
            src6 = IPv6Address(addr[0].split("%", 1)[0])
            deliver(data, PacketInfo(src6, dst6, hop_limit), arrival)
        return count


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
