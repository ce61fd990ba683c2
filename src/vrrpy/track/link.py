"""Interface tracking: link state from rtnetlink notifications (RTNLGRP_LINK), never polled.

How keepalived judges a link: up when both ``IFF_UP`` (the administrator set
it up) and ``IFF_RUNNING`` are set (``FLAGS_UP`` in ``vrrp_if.h``). The kernel
sets ``IFF_RUNNING`` in what it reports exactly when the operational state is
UP or UNKNOWN (``dev_get_flags`` / ``netif_oper_up``), so a pulled cable (no
carrier: operstate DOWN or LOWERLAYERDOWN), ``ip link set down`` and a missing
interface all count as down. The reason names what failed
(``"link eth1 down (admin down)"``, ``"link eth1 down (no carrier, operstate
LOWERLAYERDOWN)"``, ``"link eth1 missing"``).

Why a raw socket with :mod:`struct` and not pyroute2: the agent needs two
things, one dump and a subscription, and parses three fields. pyroute2's
synchronous API runs an event loop of its own (it refuses to run inside the
agent's asyncio loop, see docs/runtime.md) and costs about 0.3 s of import;
a socket bound to ``RTMGRP_LINK`` is a file descriptor asyncio watches
directly, in the network namespace the agent was started in (a netlink
socket belongs to its creator's namespace).

Order: the socket subscribes before it asks for the dump, so no change is lost
between the two; a notification and the dump may say the same thing twice,
and the watcher only reports changes. On ``ENOBUFS`` (the kernel dropped
notifications because we were slow) it dumps again.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from vrrpy.track.model import Kind, Verdict

__all__ = ["LinkState", "LinkWatcher", "link_verdict", "parse_link_messages"]

RTMGRP_LINK: Final = 1
RTM_NEWLINK: Final = 16
RTM_DELLINK: Final = 17
RTM_GETLINK: Final = 18
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x01
NLM_F_DUMP: Final = 0x300
IFLA_IFNAME: Final = 3
IFLA_OPERSTATE: Final = 16
IFF_UP: Final = 0x1
IFF_RUNNING: Final = 0x40
OPERSTATES: Final = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
_RTA = struct.Struct("=HH")


@dataclass(frozen=True)
class LinkState:
    """One interface as the kernel reported it (``present`` False after RTM_DELLINK)."""

    name: str
    index: int
    flags: int
    operstate: str
    present: bool = True

    @property
    def up(self) -> bool:
        """keepalived's ``FLAGS_UP``: IFF_UP and IFF_RUNNING both set."""
        return self.present and self.flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING


def parse_link_messages(data: bytes) -> Iterator[LinkState | int]:
    """The links in one netlink datagram; an int is NLMSG_DONE (0) or an error (-errno).

    Malformed messages end the parse (the rest of the datagram is dropped).
    """
    offset = 0
    while len(data) - offset >= _NLMSGHDR.size:
        length, kind, _flags, _seq, _port = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size or length > len(data) - offset:
            return
        body = offset + _NLMSGHDR.size
        end = offset + length
        if kind == NLMSG_DONE:
            yield 0
        elif kind == NLMSG_ERROR and end - body >= 4:
            yield struct.unpack_from("=i", data, body)[0]
        elif kind in (RTM_NEWLINK, RTM_DELLINK) and end - body >= _IFINFOMSG.size:
            _family, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
            name, operstate = "", "UNKNOWN"
            pos = body + _IFINFOMSG.size
            while end - pos >= _RTA.size:
                alen, atype = _RTA.unpack_from(data, pos)
                if alen < _RTA.size or pos + alen > end:
                    break
                payload = data[pos + _RTA.size : pos + alen]
                if atype == IFLA_IFNAME:
                    name = payload.split(b"\0", 1)[0].decode(errors="replace")
                elif atype == IFLA_OPERSTATE and payload:
                    operstate = OPERSTATES[payload[0]] if payload[0] < len(OPERSTATES) else "?"
                pos += (alen + 3) & ~3
            if name:
                yield LinkState(name, index, flags, operstate, kind == RTM_NEWLINK)
        offset += (length + 3) & ~3


def link_verdict(check: str, interface: str, state: LinkState | None) -> Verdict:
    """The verdict for ``interface`` (tracked as ``check``), with its reason."""
    if state is None or not state.present:
        return Verdict(check, Kind.INTERFACE, False, f"link {interface} missing")
    detail = {"flags": state.flags, "operstate": state.operstate, "ifindex": state.index}
    if state.up:
        return Verdict(check, Kind.INTERFACE, True, f"link {interface} up", detail=detail)
    why = "admin down" if not state.flags & IFF_UP else f"no carrier, operstate {state.operstate}"
    return Verdict(check, Kind.INTERFACE, False, f"link {interface} down ({why})", detail=detail)


class LinkWatcher:
    """The links of this network namespace, kept current from RTNLGRP_LINK.

    ``on_change(name, state)`` is called for every link whose up/down, flags or
    presence changed (``state`` None: deleted). :meth:`fileno` is for the
    agent's loop; call :meth:`read` when it is readable.
    """

    def __init__(self, on_change: Callable[[str, LinkState | None], None]) -> None:
        self._on_change = on_change
        self.links: dict[str, LinkState] = {}
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            socket.NETLINK_ROUTE,
        )  # fmt: skip
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, RTMGRP_LINK))
        self._seq = 0
        self._dumping = False
        self._seen: set[str] = set()
        self.dump()

    def fileno(self) -> int:
        return self._sock.fileno()

    def close(self) -> None:
        self._sock.close()

    def dump(self) -> None:
        """Ask for every link (the answer arrives through :meth:`read`)."""
        self._seq += 1
        request = _NLMSGHDR.pack(
            _NLMSGHDR.size + _IFINFOMSG.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, self._seq, 0
        ) + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        self._sock.send(request)
        self._dumping = True
        self._seen = set()

    def read_blocking_dump(self) -> None:
        """At start: wait (briefly, blocking) until the first dump is complete."""
        self._sock.setblocking(True)
        self._sock.settimeout(5.0)
        try:
            while self._dumping:
                self._handle(self._sock.recv(1 << 16))
        finally:
            self._sock.setblocking(False)

    def read(self) -> None:
        """Everything queued on the socket."""
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.dump()
                    continue
                raise
            self._handle(data)

    def _handle(self, data: bytes) -> None:
        for item in parse_link_messages(data):
            if isinstance(item, int):
                if self._dumping:
                    self._dumping = False
                    for gone in set(self.links) - self._seen:
                        del self.links[gone]
                        self._on_change(gone, None)
                continue
            if self._dumping:
                self._seen.add(item.name)
            old = self.links.get(item.name)
            if not item.present:
                if old is not None and old.index == item.index:
                    del self.links[item.name]
                    self._on_change(item.name, None)
                continue
            # A rename shows up as the old index under a new name: forget the old name.
            for other, state in list(self.links.items()):
                if state.index == item.index and other != item.name:
                    del self.links[other]
                    self._on_change(other, None)
            self.links[item.name] = item
            if old is None or old.flags != item.flags or old.operstate != item.operstate:
                self._on_change(item.name, item)
