"""A minimal raw rtnetlink client for the takeover path: add and remove one address, now.

Why not pyroute2 here. A new Master sends its first advert, installs its
virtual addresses, then announces them; a client moves its neighbour entry on
the announcement. Through pyroute2 the middle step cost a hop to the worker
thread pyroute2 needs (it runs its own event loop, which cannot live inside
the runtime's) plus its Python message building and parsing, and the first
gratuitous ARP left about 0.9 ms after the advert where keepalived's leaves
0.15 ms after. This module packs the one request with :mod:`struct` and sends
it on a socket opened at start, from the event loop's own thread.

Why nothing waits for the answer. rtnetlink requests are not queued for later:
``sendmsg`` on a ``NETLINK_ROUTE`` socket addressed to the kernel goes through
``netlink_unicast`` to ``netlink_unicast_kernel``, which calls the kernel
socket's input function, ``rtnetlink_rcv``, in the sender's own context,
under the RTNL lock; that runs ``inet_rtm_newaddr`` / ``inet6_rtm_newaddr``
to the end and queues the acknowledgement on our socket before ``sendmsg``
returns. So when :meth:`AddressSocket.send_add` returns, the address is on the
interface (or the request failed) and the announcement can follow at once; the
ack only reports the outcome, and the event loop reads it later
(:meth:`AddressSocket.read_acks`, the socket's :meth:`~AddressSocket.fileno`
is pollable). ``tests/test_rtnl.py`` checks this: the address is visible
before any ack is read.

One IPv6 nuance (the same through pyroute2 or ``ip``): the address is on the
interface's list at once, not tentative (``IFA_F_NODAD``), so neighbour
solicitations for it are answered; but the kernel finishes installing it (its
``local`` route, which delivers packets addressed to it, and the RTM_NEWADDR
notification) from its ``addrconf`` work queue, not inside ``sendmsg``. On a
loaded 2-CPU virtual machine the local route was missing right after the send
in about one case in five, and polled for, it came within 54 us in 90 % of 500
tries but took up to 16 ms when the kernel worker waited for a CPU: packets a
client sends to the address that early are not delivered. keepalived's order
(add, then announce) has the same window; waiting for the notification instead
would delay every NA by the worker's latency. IPv4 installs everything inside
``sendmsg``.

The addresses come out the same as through :class:`vrrpy.net.addresses.Netlink`
(the tests compare ``ip -d addr show`` and a netlink dump): scope global, IPv6
with ``nodad``, stamped with IFA_PROTO :data:`~vrrpy.net.addresses.ADDRESS_PROTO`
where the kernel keeps it, the interface's name as IPv4 label. Each add costs
the kernel 50-70 us here (remove: about 20), so with several addresses the
runtime gets its first announcement out soonest by announcing each address
right after adding it.
"""

from __future__ import annotations

import errno
import socket
import struct
from types import TracebackType
from typing import Final

from vrrpy.net.addresses import ADDRESS_PROTO, IFA_F_NODAD, Interface, kernel_marks_addresses

__all__ = ["AddressSocket", "address_request", "parse_acks"]

# <linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_addr.h>
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
NLMSG_ERROR: Final = 2
NLM_F_REQUEST: Final = 0x01
NLM_F_ACK: Final = 0x04
NLM_F_EXCL: Final = 0x200
NLM_F_CREATE: Final = 0x400
IFA_ADDRESS: Final = 1
IFA_LOCAL: Final = 2
IFA_FLAGS: Final = 8
IFA_PROTO: Final = 11
SO_RCVBUFFORCE: Final = 33  # <asm-generic/socket.h>; Python's socket module lacks it
SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
"""Error acks carry only the request's header, not the whole request back."""

_NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, ifindex
_NLMSGERR = struct.Struct("=i")  # error: 0 or -errno, then the request's header
_RTA = struct.Struct("=HH")  # length (unpadded), type
_U32_ATTR = struct.Struct("=HHI")
_U8_ATTR = struct.Struct("=HHB3x")  # length 5, padded to 8
_ADD_FLAGS: Final = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
_REMOVE_FLAGS: Final = NLM_F_REQUEST | NLM_F_ACK
_RCVBUF: Final = 1 << 20
"""The kernel doubles it: room for about 2,500 unread acks (each costs its skb, ~830 bytes)."""


def _attribute(kind: int, payload: bytes) -> bytes:
    """One rtattr: header, payload, zero padding to 4 bytes."""
    length = _RTA.size + len(payload)
    return _RTA.pack(length, kind) + payload + b"\0" * (-length & 3)


def _parse(data: bytes) -> tuple[list[tuple[int, int]], bool]:
    """The (sequence, errno) of every ack in one datagram, and whether it was all well formed."""
    acks: list[tuple[int, int]] = []
    clean = True
    offset = 0
    end = len(data)
    while end - offset >= _NLMSGHDR.size:
        length, kind, _flags, seq, _port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or length > end - offset:
            return acks, False
        if kind == NLMSG_ERROR:
            if length >= _NLMSGHDR.size + _NLMSGERR.size:
                (error,) = _NLMSGERR.unpack_from(data, offset + _NLMSGHDR.size)
                if error <= 0:
                    acks.append((seq, -error))
                else:
                    clean = False
            else:
                clean = False
        offset += (length + 3) & ~3
    return acks, clean and offset >= end


def address_request(
    add: bool, seq: int, ifindex: int, interface: Interface, *, marks: bool
) -> bytes:
    """One RTM_NEWADDR (``add``) or RTM_DELADDR request for ``interface`` on ``ifindex``.

    nlmsghdr (NLM_F_REQUEST | NLM_F_ACK, plus NLM_F_CREATE | NLM_F_EXCL to
    add; port id 0, the kernel fills in ours), ifaddrmsg (family, prefix
    length, scope universe: the kernel scopes IPv6 by the address itself),
    then IFA_LOCAL and IFA_ADDRESS both holding the address (equal: no
    peer). An add also carries IFA_F_NODAD for IPv6 (in ifaddrmsg and as
    IFA_FLAGS, as ``ip`` sends it: a Master's address must be usable at once,
    and a duplicate is what VRRP itself rules out) and, with ``marks``,
    IFA_PROTO :data:`~vrrpy.net.addresses.ADDRESS_PROTO`. A remove matches
    address and prefix length.
    """
    address = interface.ip.packed
    v6 = interface.version == 6
    nodad = IFA_F_NODAD if add and v6 else 0
    attributes = _attribute(IFA_LOCAL, address) + _attribute(IFA_ADDRESS, address)
    if nodad:
        attributes += _U32_ATTR.pack(_RTA.size + 4, IFA_FLAGS, nodad)
    if add and marks:
        attributes += _U8_ATTR.pack(_RTA.size + 1, IFA_PROTO, ADDRESS_PROTO)
    family = socket.AF_INET6 if v6 else socket.AF_INET
    length = _NLMSGHDR.size + _IFADDRMSG.size + len(attributes)
    kind, flags = (RTM_NEWADDR, _ADD_FLAGS) if add else (RTM_DELADDR, _REMOVE_FLAGS)
    return (
        _NLMSGHDR.pack(length, kind, flags, seq, 0)
        + _IFADDRMSG.pack(family, interface.network.prefixlen, nodad, 0, ifindex)
        + attributes
    )


def parse_acks(data: bytes) -> list[tuple[int, int]]:
    """The (sequence, errno) pairs of the netlink acks in ``data``; errno 0 is success.

    Never raises: a message too short, too long for the buffer or with a
    positive error code is skipped (with everything after a broken length).
    Other message types (NLMSG_DONE, NLMSG_NOOP, ...) are ignored.
    """
    return _parse(data)[0]


class AddressSocket:
    """A non-blocking ``NETLINK_ROUTE`` socket that adds and removes addresses.

    Opened in the caller's network namespace (as every vrrpy socket), needs
    ``CAP_NET_ADMIN`` for the requests to succeed. Each request returns its
    sequence number at once; its outcome arrives as an ack that
    :meth:`read_acks` returns later, as ``(seq, errno)``. Typical errnos:
    EEXIST (add: the address is already there), EADDRNOTAVAIL (remove: it is
    not), ENODEV (no interface with that index), EPERM (no CAP_NET_ADMIN).

        sock = AddressSocket()
        seq = sock.send_add(ifindex, IPv4Interface("192.0.2.100/24"))
        announcer.send_frames(frames)           # the address is already there
        ...
        for seq, error in sock.read_acks():     # later, from the event loop
            ...
    """

    def __init__(self, *, marks: bool | None = None) -> None:
        self.marks = kernel_marks_addresses() if marks is None else marks
        """Whether added addresses carry IFA_PROTO :data:`ADDRESS_PROTO`."""
        self.overruns = 0
        """How many times acks were lost because the receive queue was full (ENOBUFS)."""
        self.malformed = 0
        """Datagrams that were not a clean run of netlink messages from the kernel."""
        self._seq = 0
        sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )
        try:
            sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, _RCVBUF)
            except OSError:  # no CAP_NET_ADMIN: as much as rmem_max allows
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            sock.bind((0, 0))
        except BaseException:
            sock.close()
            raise
        self._sock = sock

    # ------------------------------------------------------------ requests

    def _next_seq(self) -> int:
        seq = self._seq = (self._seq + 1) & 0xFFFF_FFFF
        if not seq:  # 0 is what the kernel's notifications carry: never ours
            seq = self._seq = 1
        return seq

    def send_add(self, ifindex: int, interface: Interface) -> int:
        """Ask the kernel to add ``interface`` (address/prefix) to ``ifindex``; return the seq.

        RTM_NEWADDR with NLM_F_CREATE | NLM_F_EXCL (an existing address is
        left alone and acked with EEXIST). When this returns without raising,
        the kernel has processed the request (see the module docstring).
        Raises OSError if the kernel did not take the request at all (EAGAIN,
        ENOBUFS under memory pressure, the socket closed): nothing was done,
        the caller may retry.
        """
        seq = self._next_seq()
        self._sock.send(address_request(True, seq, ifindex, interface, marks=self.marks))
        return seq

    def send_remove(self, ifindex: int, interface: Interface) -> int:
        """Ask the kernel to remove ``interface`` from ``ifindex``; return the seq.

        RTM_DELADDR matching address and prefix length. Raises as
        :meth:`send_add`.
        """
        seq = self._next_seq()
        self._sock.send(address_request(False, seq, ifindex, interface, marks=self.marks))
        return seq

    # ---------------------------------------------------------------- acks

    def fileno(self) -> int:
        """The socket's descriptor, readable when acks are queued (for ``loop.add_reader``)."""
        return self._sock.fileno()

    def read_acks(self) -> list[tuple[int, int]]:
        """Every ack queued now, as ``(seq, errno)`` (0 = success), in arrival order.

        Never blocks. Never raises on what it reads: datagrams from anyone but
        the kernel and malformed messages are skipped and counted in
        :attr:`malformed`; acks lost to a full receive queue (ENOBUFS) are
        counted in :attr:`overruns` (their requests were processed all the
        same). A closed socket reads as nothing. Raises OSError only for a
        receive error the kernel has no business returning here.
        """
        acks: list[tuple[int, int]] = []
        if self.closed:
            return acks
        recvfrom = self._sock.recvfrom
        while True:
            try:
                data, (port, _groups) = recvfrom(65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.overruns += 1
                    continue
                raise
            if port != 0:
                self.malformed += 1
                continue
            found, clean = _parse(data)
            acks.extend(found)
            if not clean:
                self.malformed += 1
        return acks

    def close(self) -> None:
        """Close the socket (idempotent); acks not read yet are lost."""
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() == -1

    def __enter__(self) -> AddressSocket:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
