"""A beat's adverts in one system call: ``sendmmsg(2)`` through ctypes.

Why: a steady Master's advert is the same bytes, to the same address, with
the same ``IP_PKTINFO`` / ``IPV6_PKTINFO`` every time, and a beat sends one
for each Master on it. ``socket.sendmsg`` parses its arguments anew on each
call (the buffer list, the control messages, the address) and each call is
a system call of its own. Here each advert's ``msghdr`` is built once, in
memory that stays put (:class:`Prepared`), and a beat hands the kernel all of
its adverts for one socket in one ``sendmmsg``: the headers are joined into
one array (one C call) and sent. The kernel's work per datagram is
unchanged; what goes is the Python around each, and a system call's entry and
exit per advert.

Optional, as :mod:`vrrpy.runtime.mmsg`: where libc or ``sendmmsg`` cannot be
found, :func:`available` is False and the beat sends each advert with
``sendmsg``.
"""

from __future__ import annotations

import ctypes
import errno
import socket
import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from vrrpy.runtime.mmsg import IOVec, MMsgHdr

_ENTRY = ctypes.sizeof(MMsgHdr)
_sendmmsg: Any = None


def available() -> bool:
    """Whether libc's ``sendmmsg`` could be bound (looked up once)."""
    global _sendmmsg
    if _sendmmsg is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            function = libc.sendmmsg
        except (OSError, AttributeError):
            _sendmmsg = False
        else:
            function.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int)
            function.restype = ctypes.c_int
            _sendmmsg = function
    return _sendmmsg is not False


class Prepared:
    """One datagram's ``mmsghdr``, made once: payload, destination and control message in
    buffers of their own, and the header pointing at them (:attr:`header`, its bytes)."""

    __slots__ = ("_control", "_iov", "_mmsg", "_name", "_payload", "header")

    def __init__(self, payload: bytes, name: bytes, control: bytes) -> None:
        self._payload = ctypes.create_string_buffer(payload, len(payload))
        self._name = ctypes.create_string_buffer(name, len(name))
        self._control = ctypes.create_string_buffer(control, len(control))
        self._iov = IOVec(ctypes.addressof(self._payload), len(payload))
        self._mmsg = MMsgHdr()
        hdr = self._mmsg.msg_hdr
        hdr.msg_name = ctypes.addressof(self._name)
        hdr.msg_namelen = len(name)
        hdr.msg_iov = ctypes.addressof(self._iov)
        hdr.msg_iovlen = 1
        hdr.msg_control = ctypes.addressof(self._control) if control else None
        hdr.msg_controllen = len(control)
        self.header = bytes(self._mmsg)
        """The ``mmsghdr`` as bytes: a beat joins these into the array it sends."""


def sockaddr(address: tuple[Any, ...]) -> bytes:
    """``struct sockaddr_in`` / ``sockaddr_in6`` for a ``sendmsg``-style address tuple."""
    if len(address) == 2:
        host, port = address
        return struct.pack("=HH4s8x", socket.AF_INET, socket.htons(port), IPv4Address(host).packed)
    host, port, flowinfo, scope = address
    packed = IPv6Address(host.split("%", 1)[0]).packed
    return struct.pack(
        "=HHI16sI", socket.AF_INET6, socket.htons(port), socket.htonl(flowinfo), packed, scope
    )


def control(ancillary: list[tuple[int, int, bytes]]) -> bytes:
    """The control area ``sendmsg`` would build from ``ancillary``."""
    out = b""
    for level, kind, data in ancillary:
        head = struct.pack("@Nii", socket.CMSG_LEN(len(data)), level, kind)
        out += (head + data).ljust(socket.CMSG_SPACE(len(data)), b"\0")
    return out


class Batch:
    """The adverts a beat sends on one socket: added as headers, sent by :meth:`flush`."""

    __slots__ = ("_array", "_capacity", "fd", "headers", "kept", "owner")

    def __init__(self, fd: int, owner: Any) -> None:
        self.fd = fd
        self.owner = owner
        """Whose ``sent`` and ``send_errors`` count what :meth:`flush` did (the socket)."""
        self.headers: list[bytes] = []
        """The :attr:`Prepared.header` of each datagram to send, in order."""
        self.kept: list[Prepared] = []
        """Their :class:`Prepared`, held until sent (the headers point into them)."""
        self._capacity = 0
        self._array: Any = None

    def add(self, prepared: Prepared) -> None:
        """Queue one datagram (a beat inlines this: two appends)."""
        self.headers.append(prepared.header)
        self.kept.append(prepared)

    def flush(self) -> int:
        """Send every header added, in order; returns how many the kernel took.

        ``sendmmsg`` stops at the first datagram the kernel refuses (a full queue,
        a vanished interface) and returns how many went before it; the refused
        one is counted in ``send_errors`` and skipped, as a refused ``sendmsg``
        would be, and the rest are sent.
        """
        headers = self.headers
        n = len(headers)
        if not n:
            return 0
        if n > self._capacity:
            self._capacity = max(n, 2 * self._capacity, 16)
            self._array = ctypes.create_string_buffer(self._capacity * _ENTRY)
        array = self._array
        ctypes.memmove(array, b"".join(headers), n * _ENTRY)
        headers.clear()
        kept = self.kept
        self.kept = []  # (alive until the call below returns)
        base = ctypes.addressof(array)
        done = 0
        sent = 0
        owner = self.owner
        while done < n:
            got = _sendmmsg(self.fd, base + done * _ENTRY, n - done, 0)
            if got < 0:
                code = ctypes.get_errno()
                if code == errno.EINTR:
                    continue
                owner.send_errors += 1
                done += 1
                if code == errno.EBADF:
                    break
                continue
            done += got
            sent += got
        owner.sent += sent
        del kept
        return sent


__all__ = ["Batch", "Prepared", "available", "control", "sockaddr"]
