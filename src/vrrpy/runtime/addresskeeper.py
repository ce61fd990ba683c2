"""Virtual addresses on the interface, kept where the core wants them, whatever the kernel says.

A Master whose address add failed is still the Master: it must keep
advertising (or the pair flaps) and keep trying to install the address. A
Backup whose remove failed must not forget the address: it would answer for
it beside the new Master. So the keeper holds the *wanted* state of each
virtual address, carries it out at once, and retries what failed with
exponential backoff until the kernel agrees or the wish changes. Every
failure is counted and logged (once per address and outage, then again when
it recovers); none of it ever reaches the protocol loop as an exception.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

from vrrpy.codec.vrrp import IPAddress
from vrrpy.net.addresses import Interface, Netlink

logger = logging.getLogger("vrrpy.runtime")

RETRY_FIRST = 0.05
"""Seconds before the first retry of a failed add or remove."""
RETRY_MAX = 5.0
"""The backoff's ceiling, in seconds."""


Failed = Callable[[IPAddress, bool, str], None]


class AddressOps(Protocol):
    """The kernel side of a keeper.

    ``add`` / ``remove`` raise on a failure known at once; one learnt later
    (an asynchronous ack) is reported through ``failed``. ``acks`` settles
    what has been answered since (a no-op for synchronous operations).
    """

    def add(self, ifindex: int, address: Interface, failed: Failed | None = None) -> None: ...

    def remove(self, ifindex: int, address: Interface, failed: Failed | None = None) -> None: ...

    def acks(self) -> None: ...


class SyncAddressOps:
    """pyroute2's synchronous calls as :class:`AddressOps` (each waits for the kernel's answer)."""

    def __init__(self, netlink: Netlink) -> None:
        self.netlink = netlink

    def add(self, ifindex: int, address: Interface, failed: Failed | None = None) -> None:
        self.netlink.add(ifindex, address)

    def remove(self, ifindex: int, address: Interface, failed: Failed | None = None) -> None:
        self.netlink.remove(ifindex, address)

    def acks(self) -> None:
        """Nothing is ever pending."""


class AddressKeeper:
    """The virtual addresses of one instance on one interface, with retries."""

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop,
        ops: AddressOps,
        ifindex: int,
        interfaces: dict[IPAddress, Interface],
    ) -> None:
        self.name = name
        self.loop = loop
        self.ops = ops
        self.ifindex = ifindex
        self.interfaces = interfaces
        self.add_failures = 0
        self.remove_failures = 0
        self._wanted: dict[IPAddress, bool] = {}
        self._pending: dict[IPAddress, None] = {}
        """Addresses not yet in their wanted state (insertion-ordered)."""
        self._failing: dict[IPAddress, str] = {}
        """The last error of each address that is failing now (logged once per outage)."""
        self._retry: asyncio.TimerHandle | None = None
        self._delay = RETRY_FIRST
        self._closed = False

    @property
    def pending(self) -> list[IPAddress]:
        """Addresses whose wanted state the kernel has not reached yet."""
        return list(self._pending)

    def install(self, addresses: Iterable[IPAddress]) -> None:
        """Want ``addresses`` on the interface (becoming Master)."""
        self._want(addresses, True)

    def withdraw(self, addresses: Iterable[IPAddress]) -> None:
        """Want ``addresses`` off the interface (leaving Master)."""
        self._want(addresses, False)

    def failed(self, address: IPAddress, present: bool, error: str) -> None:
        """A request sent earlier failed (reported later, e.g. by a netlink ack): retry it."""
        if self._wanted.get(address) is not present:
            return  # the wish changed since: the newer request stands
        self._note_failure(address, present, error)
        self._pending[address] = None
        if not self._closed:
            self._schedule()

    def _want(self, addresses: Iterable[IPAddress], present: bool) -> None:
        for address in addresses:
            self._wanted[address] = present
            self._pending[address] = None
        self._sync()

    def _sync(self) -> None:
        ops = self.ops
        ifindex = self.ifindex
        for address in list(self._pending):
            present = self._wanted[address]
            try:
                if present:
                    ops.add(ifindex, self.interfaces[address], self.failed)
                else:
                    ops.remove(ifindex, self.interfaces[address], self.failed)
            except Exception as exc:
                self._note_failure(address, present, f"{type(exc).__name__}: {exc}")
                continue
            del self._pending[address]
            self._recovered(address, present)
        self._schedule()

    def _note_failure(self, address: IPAddress, present: bool, error: str) -> None:
        if present:
            self.add_failures += 1
        else:
            self.remove_failures += 1
        if address not in self._failing:
            logger.error(
                "%s: could not %s %s (%s); retrying with backoff, the protocol goes on",
                self.name,
                "add" if present else "remove",
                self.interfaces[address],
                error,
            )
        self._failing[address] = error

    def _recovered(self, address: IPAddress, present: bool) -> None:
        if self._failing.pop(address, None) is not None:
            logger.warning(
                "%s: %s %s after earlier failures",
                self.name,
                "added" if present else "removed",
                self.interfaces[address],
            )

    def _schedule(self) -> None:
        if not self._pending:
            self._delay = RETRY_FIRST
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
            return
        if self._retry is None:
            self._retry = self.loop.call_later(self._delay, self._retry_now)
            self._delay = min(self._delay * 2, RETRY_MAX)

    def _retry_now(self) -> None:
        self._retry = None
        self._sync()

    def close(self) -> list[IPAddress]:
        """Stop retrying; return the addresses still not in their wanted state."""
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        return list(self._pending)
