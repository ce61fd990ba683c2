"""The kernel side of the address keepers: raw rtnetlink on the loop, acks read afterwards.

On a takeover the order is advert, addresses, announcement, and the client
moves on the announcement: every microsecond between the advert and the
announcement is outage. :class:`FastAddressOps` sends each add or remove as
one struct-built rtnetlink request on a socket opened at start
(:mod:`vrrpy.net.rtnl`): the kernel applies it inside ``sendmsg``, so the
announcement can follow at once, and the acknowledgement, already queued when
``sendmsg`` returns, is read right after the actions of that turn (and by the
event loop whenever the socket is readable). An error in an ack is handed
back to the keeper that asked, which retries; ``EEXIST`` on an add means the
address was there before us: it is then not recorded as ours, exactly as
:meth:`vrrpy.net.addresses.Netlink.add` does, so it is never removed.

If the socket cannot take a request (its queue full: ``EAGAIN`` /
``ENOBUFS``), the request goes through pyroute2 (:class:`Netlink`), which
waits for its answer: slower, never lost.
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable

from vrrpy.codec.vrrp import IPAddress
from vrrpy.net.addresses import Interface, Netlink
from vrrpy.net.rtnl import AddressSocket

logger = logging.getLogger("vrrpy.runtime")

Failed = Callable[[IPAddress, bool, str], None]
"""``failed(address, present, error)``: the keeper's retry entry point."""

_GONE = (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV)


class FastAddressOps:
    """Add and remove addresses with raw rtnetlink; results come back through :meth:`acks`."""

    def __init__(self, netlink: Netlink, sock: AddressSocket | None = None) -> None:
        self.netlink = netlink
        self.sock = sock if sock is not None else AddressSocket(marks=netlink.marks)
        self.fallbacks = 0
        """Requests the socket could not take, done through pyroute2 instead."""
        self.unexpected_acks = 0
        self._waiting: dict[int, tuple[bool, int, Interface, Failed | None]] = {}

    def fileno(self) -> int:
        """The socket to watch for acks."""
        return self.sock.fileno()

    def add(self, ifindex: int, address: Interface, failed: Failed | None = None) -> None:
        """Install ``address``; recorded as ours until an ack says otherwise."""
        try:
            seq = self.sock.send_add(ifindex, address)
        except OSError:
            self.fallbacks += 1
            self.netlink.add(ifindex, address)
            return
        self.netlink.added[(ifindex, address)] = None
        self._waiting[seq] = (True, ifindex, address, failed)

    def remove(self, ifindex: int, address: Interface, failed: Failed | None = None) -> None:
        """Withdraw ``address`` if it is ours; it stays recorded until the kernel confirms."""
        if (ifindex, address) not in self.netlink.added:
            return
        try:
            seq = self.sock.send_remove(ifindex, address)
        except OSError:
            self.fallbacks += 1
            self.netlink.remove(ifindex, address)
            return
        self._waiting[seq] = (False, ifindex, address, failed)

    def acks(self) -> None:
        """Read every queued ack and settle its request (never blocks, never raises)."""
        if not self._waiting:
            return
        for seq, code in self.sock.read_acks():
            request = self._waiting.pop(seq, None)
            if request is None:
                self.unexpected_acks += 1
                continue
            present, ifindex, address, failed = request
            key = (ifindex, address)
            if present:
                if code == 0:
                    continue
                self.netlink.added.pop(key, None)
                if code == errno.EEXIST:
                    continue  # there before us: not ours, never removed by us
            else:
                if code == 0 or code in _GONE:
                    self.netlink.added.pop(key, None)
                    continue
            error = f"{errno.errorcode.get(code, str(code))}: {os.strerror(code)}"
            if failed is not None:
                failed(address.ip, present, error)
            else:
                logger.error("%s %s failed: %s", "add" if present else "remove", address, error)

    def close(self) -> None:
        """Settle what is queued, then close the socket."""
        self.acks()
        self.sock.close()
