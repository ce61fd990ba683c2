"""Ping targets (Heartbeat's ``ping`` nodes and ipfail), probed with ICMP echo over raw sockets.

Heartbeat learnt that a cluster node must check its own way out: a node whose
switch port died still sees itself as healthy. A ping group is a set of
addresses (the gateway, a core switch, a peer's upstream); each is sent one
ICMP echo request every ``interval`` seconds, a request unanswered after
``timeout`` seconds is lost, a target is unreachable after ``count`` losses in
a row (Heartbeat's ``deadping``) and reachable again at its next reply. The
group is up while at least ``quorum`` targets are reachable (default 1: down
only when every target is lost).

Before a target has answered or run out of its ``count``, it is *unknown*; the
group's first verdict comes as soon as it is certain (``quorum`` targets
answered, or too few can still answer), so a node with a dead uplink does not
start out believing in it.

No ``ping`` process: the packets are packed with :mod:`struct` and sent on one
raw socket per family and group (needs CAP_NET_RAW). ICMPv4's checksum is
ours (RFC 1071, RFC 792); for ICMPv6 the kernel fills it in (a raw
IPPROTO_ICMPV6 socket always computes it, RFC 3542 3.1). Each group has its
own identifier (raw sockets see every echo reply of the namespace) and each
round a new sequence number; a reply counts only if its source, identifier
and sequence match an outstanding request. A kernel filter (``ICMP_FILTER``,
``ICMP6_FILTER``) passes only echo replies to the sockets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any, Final

from vrrpy.codec.checksum import internet_checksum
from vrrpy.track.model import Kind, Verdict
from vrrpy.track.protocol import PingSpec

__all__ = ["PingCheck", "echo_request", "parse_echo_reply"]

log = logging.getLogger(__name__)

ICMP_ECHO_REPLY: Final = 0
ICMP_ECHO_REQUEST: Final = 8
ICMPV6_ECHO_REQUEST: Final = 128
ICMPV6_ECHO_REPLY: Final = 129
SOL_RAW: Final = 255
ICMP_FILTER: Final = 1
ICMP6_FILTER: Final = 1
PAYLOAD: Final = b"vrrpy-track-ping"
_ECHO = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


def echo_request(version: int, identifier: int, sequence: int) -> bytes:
    """An ICMP (``version`` 4) or ICMPv6 echo request; the v6 checksum is left to the kernel."""
    if version == 4:
        unsummed = _ECHO.pack(ICMP_ECHO_REQUEST, 0, 0, identifier, sequence) + PAYLOAD
        return (
            _ECHO.pack(ICMP_ECHO_REQUEST, 0, internet_checksum(unsummed), identifier, sequence)
            + PAYLOAD
        )
    return _ECHO.pack(ICMPV6_ECHO_REQUEST, 0, 0, identifier, sequence) + PAYLOAD


def parse_echo_reply(version: int, data: bytes) -> tuple[int, int] | None:
    """(identifier, sequence) of an echo reply, or None; v4 ``data`` starts with the IP header."""
    if version == 4:
        if len(data) < 20:
            return None
        data = data[(data[0] & 0x0F) * 4 :]
        wanted = ICMP_ECHO_REPLY
    else:
        wanted = ICMPV6_ECHO_REPLY
    if len(data) < _ECHO.size:
        return None
    kind, code, _sum, identifier, sequence = _ECHO.unpack_from(data)
    if kind != wanted or code != 0:
        return None
    return identifier, sequence


@dataclass
class Target:
    """One address of a group: reachable True / False, or None while unknown."""

    address: IPv4Address | IPv6Address
    sockaddr: tuple[Any, ...]
    reachable: bool | None = None
    lost: int = 0
    sent: int = 0
    received: int = 0
    rtt: float | None = None


def _open(version: int) -> socket.socket:
    if version == 4:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        # The filter's set bits are the types the kernel drops: keep echo replies only.
        sock.setsockopt(
            SOL_RAW, ICMP_FILTER, struct.pack("=I", ~(1 << ICMP_ECHO_REPLY) & 0xFFFFFFFF)
        )
    else:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        words = [0xFFFFFFFF] * 8
        words[ICMPV6_ECHO_REPLY >> 5] &= ~(1 << (ICMPV6_ECHO_REPLY & 31)) & 0xFFFFFFFF
        sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *words))
    sock.setblocking(False)
    return sock


class PingCheck:
    """One ping group, probing on its interval until :meth:`stop`."""

    def __init__(self, spec: PingSpec, report: Callable[[Verdict], None], identifier: int) -> None:
        self.spec = spec
        self._report = report
        self.identifier = identifier & 0xFFFF
        self.targets: dict[IPv4Address | IPv6Address, Target] = {}
        for text in spec.targets:
            address = ip_address(text)
            if isinstance(address, IPv6Address):
                scope = address.scope_id
                index = socket.if_nametoindex(scope) if scope and not scope.isdigit() else 0
                if scope and scope.isdigit():
                    index = int(scope)
                sockaddr: tuple[Any, ...] = (str(address).split("%")[0], 0, 0, index)
                address = IPv6Address(str(address).split("%")[0])
            else:
                sockaddr = (str(address), 0)
            self.targets[address] = Target(address, sockaddr)
        self.sockets: dict[int, socket.socket] = {
            v: _open(v) for v in {t.address.version for t in self.targets.values()}
        }
        self.sequence = int.from_bytes(os.urandom(2), "big")
        self._outstanding: dict[tuple[IPv4Address | IPv6Address, int], float] = {}
        self.verdict: Verdict | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for version, sock in self.sockets.items():
            self._loop.add_reader(sock.fileno(), self._readable, version)
        self._task = self._loop.create_task(self._rounds())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for sock in self.sockets.values():
            if self._loop is not None:
                self._loop.remove_reader(sock.fileno())
            sock.close()

    async def _rounds(self) -> None:
        assert self._loop is not None
        due = self._loop.time()
        while True:
            self._send_round()
            due += self.spec.interval
            now = self._loop.time()
            if due < now:
                due = now
            await asyncio.sleep(due - now)

    def _send_round(self) -> None:
        assert self._loop is not None
        self.sequence = (self.sequence + 1) & 0xFFFF
        sequence = self.sequence
        now = self._loop.time()
        for target in self.targets.values():
            packet = echo_request(target.address.version, self.identifier, sequence)
            target.sent += 1
            self._outstanding[(target.address, sequence)] = now
            try:
                self.sockets[target.address.version].sendto(packet, target.sockaddr)
            except OSError as exc:  # no route, link down: the probe is simply lost
                log.debug("ping %s: %s: %s", self.spec.name, target.address, exc)
        self._loop.call_later(self.spec.timeout, self._expire, sequence)

    def _readable(self, version: int) -> None:
        assert self._loop is not None
        sock = self.sockets[version]
        now = self._loop.time()
        changed = False
        while True:
            try:
                data, source = sock.recvfrom(2048)
            except BlockingIOError:
                break
            except OSError:
                break
            parsed = parse_echo_reply(version, data)
            if parsed is None or parsed[0] != self.identifier:
                continue
            try:
                address = ip_address(source[0].split("%")[0])
            except ValueError:
                continue
            sent = self._outstanding.pop((address, parsed[1]), None)
            if sent is None:
                continue
            target = self.targets[address]
            target.received += 1
            target.rtt = now - sent
            target.lost = 0
            if target.reachable is not True:
                target.reachable = True
                changed = True
        if changed:
            self._evaluate()

    def _expire(self, sequence: int) -> None:
        changed = False
        for target in self.targets.values():
            if self._outstanding.pop((target.address, sequence), None) is None:
                continue
            target.lost += 1
            if target.lost >= self.spec.count and target.reachable is not False:
                target.reachable = False
                changed = True
        if changed:
            self._evaluate()

    def _evaluate(self) -> None:
        reachable = [t for t in self.targets.values() if t.reachable]
        unknown = [t for t in self.targets.values() if t.reachable is None]
        total = len(self.targets)
        if len(reachable) >= self.spec.quorum:
            up: bool | None = True
        elif len(reachable) + len(unknown) < self.spec.quorum:
            up = False
        else:
            up = None
        if up is None or (self.verdict is not None and self.verdict.up == up):
            return
        lost = [str(t.address) for t in self.targets.values() if t.reachable is False]
        reason = (
            f"ping {self.spec.name}: {len(reachable)} of {total} targets reachable"
            f" (quorum {self.spec.quorum})"
        )
        if not up:
            reason += f"; unreachable: {', '.join(lost)}"
        self.verdict = Verdict(self.spec.name, Kind.PING, up, reason)
        self._report(self.verdict)

    def status(self) -> dict[str, Any]:
        return {
            "kind": "ping",
            "up": None if self.verdict is None else self.verdict.up,
            "reason": "no verdict yet" if self.verdict is None else self.verdict.reason,
            "targets": {
                str(t.address): {
                    "reachable": t.reachable,
                    "lost_in_a_row": t.lost,
                    "sent": t.sent,
                    "received": t.received,
                    "rtt": None if t.rtt is None else round(t.rtt, 6),
                }
                for t in self.targets.values()
            },
        }
