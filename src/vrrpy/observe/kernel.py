"""What the kernel really has: the addresses on each interface, read by one netlink dump.

A takeover that half-failed (the advert went out, the address did not go on)
is the failure a HA daemon must not hide: the runtime's own view says what it
asked for, so the metrics and the status page compare the desired addresses
against what this dump finds. One ``RTM_GETADDR`` dump per scrape, parsed
with :mod:`struct` (pyroute2 would parse every attribute of every address
into objects: ten times the CPU for the same answer, in a thread that shares
the GIL with the protocol loop).

Runs in the calling thread's network namespace (vrrpyd's, since it enters
``[global] netns`` before starting any thread).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Callable
from typing import Final

__all__ = ["NetlinkDumpError", "read_addresses"]

_RTM_GETADDR: Final = 22
_NLM_F_REQUEST: Final = 0x1
_NLM_F_DUMP: Final = 0x300
_NLMSG_ERROR: Final = 2
_NLMSG_DONE: Final = 3
_IFA_ADDRESS: Final = 1
_IFA_LOCAL: Final = 2
_NLMSGHDR: Final = struct.Struct("=IHHII")
_IFADDRMSG: Final = struct.Struct("=BBBBI")
_RTATTR: Final = struct.Struct("=HH")
_MAX_BYTES: Final = 64 << 20
"""A dump larger than this is not an address table we can use (and not read to the end)."""


class NetlinkDumpError(OSError):
    """The dump could not be made or read to its end."""


def read_addresses(
    timeout: float = 2.0, pause: Callable[[], None] | None = None
) -> dict[int, set[str]]:
    """Every address of every interface: ``{ifindex: {"192.0.2.100", "2001:db8::1", ...}}``.

    Addresses are in :mod:`ipaddress`'s spelling without a prefix. An IPv4
    address is its ``IFA_LOCAL`` (``IFA_ADDRESS`` is the peer's on a
    point-to-point link); IPv6 has only ``IFA_ADDRESS``. ``pause`` is called
    every 32 addresses and between two datagrams of the dump. Raises :class:`NetlinkDumpError`.
    """
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    except OSError as exc:
        raise NetlinkDumpError(exc.errno, f"netlink: {exc.strerror}") from exc
    with sock:
        sock.settimeout(timeout)
        seq = os.getpid() & 0xFFFF
        request = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(request), _RTM_GETADDR, _NLM_F_REQUEST | _NLM_F_DUMP, seq, 0
        )
        try:
            sock.sendto(header + request, (0, 0))
            return _collect(sock, seq, pause)
        except (OSError, struct.error) as exc:
            if isinstance(exc, NetlinkDumpError):
                raise
            raise NetlinkDumpError(f"netlink address dump: {exc}") from exc


def _collect(
    sock: socket.socket, seq: int, pause: Callable[[], None] | None
) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    total = 0
    while True:
        data = sock.recv(1 << 16)
        total += len(data)
        if not data or total > _MAX_BYTES:
            raise NetlinkDumpError("netlink address dump: truncated or too large")
        offset = 0
        parsed = 0
        while offset + _NLMSGHDR.size <= len(data):
            length, kind, _flags, got_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
            if length < _NLMSGHDR.size or offset + length > len(data):
                raise NetlinkDumpError("netlink address dump: a malformed message")
            if got_seq == seq:
                if kind == _NLMSG_DONE:
                    return out
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
                    if code:
                        raise NetlinkDumpError(-code, f"netlink: {os.strerror(-code)}")
                else:
                    _one(data, offset + _NLMSGHDR.size, offset + length, out)
                    parsed += 1
                    if pause is not None and parsed % 32 == 0:
                        pause()  # a datagram holds some 700 addresses: milliseconds of Python
            offset += (length + 3) & ~3
        if pause is not None:
            pause()


def _one(data: bytes, start: int, end: int, out: dict[int, set[str]]) -> None:
    family, _prefix, _flags, _scope, index = _IFADDRMSG.unpack_from(data, start)
    if family == socket.AF_INET:
        size = 4
    elif family == socket.AF_INET6:
        size = 16
    else:
        return
    address = local = None
    at = start + _IFADDRMSG.size
    while at + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, at)
        if length < _RTATTR.size or at + length > end:
            break
        if length - _RTATTR.size == size:
            if kind == _IFA_LOCAL:
                local = data[at + _RTATTR.size : at + length]
            elif kind == _IFA_ADDRESS:
                address = data[at + _RTATTR.size : at + length]
        at += (length + 3) & ~3
    raw = local if local is not None else address
    if raw is not None:
        out.setdefault(index, set()).add(socket.inet_ntop(family, raw))
