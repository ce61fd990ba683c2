"""Gratuitous ARP and unsolicited Neighbor Advertisements: telling the LAN who is Master now.

When a router becomes Master it announces every virtual address so that hosts
and switches move their neighbour entries (and forwarding tables) to it at once
(RFC 9568 sections 6.4.1 and 6.4.2, with verified errata EID 7947 and 7949;
section 8.1.2). The core asks for this with an ``Announce`` action; the Linux
runtime builds the frames here and sends them on an ``AF_PACKET`` socket.

Frames are packed with :mod:`struct`, once per (address, MAC), and cached as
bytes. They used to be crafted with scapy, which took about 0.4 s to import
and 0.6-0.8 ms per frame here (struct: 6-9 us); a takeover must pay for
neither, so this module imports only light standard modules and vrrpy's
checksum, and the bytes are the very ones scapy builds (the tests keep scapy
as the oracle).

**The takeover path.** A new Master's first advert, its addresses and its
first announcement should leave back to back: a client moves its neighbour
entry on the announcement, not on the advert. So the runtime builds an
instance's frames once, at start (:meth:`Announcer.frames`), and on takeover
hands the tuple to :meth:`Announcer.send_frames`, which only loops over
``socket.send`` on the socket opened at start: no MAC parsing, no lookups, no
import, no thread hop. Measured with ``bench/announce_bench.py``.

**IPv4: gratuitous ARP** (:func:`garp_frame`). An ARP *request* (op 1),
Ethernet broadcast, as keepalived (``keepalived/vrrp/vrrp_arp.c``) and the
Linux kernel send it, with sender and target protocol address both the virtual
address and sender hardware address the MAC being announced (also the
Ethernet source). The one field implementations disagree on is the target
hardware address, which receivers ignore in a request (RFC 826; Linux's
``arp_process`` looks only at ``tip == sip`` for a request):

* keepalived puts the broadcast address ff:ff:ff:ff:ff:ff there;
* the kernel's own gratuitous ARP, and RFC 5227's announcements, put zeros;
* RFC 9568 6.4.1/6.4.2 as corrected by EID 7947/7949 asks for the virtual
  router MAC, which is also what a gratuitous ARP *reply* needs for Linux to
  treat it as gratuitous (``tha == sha``).

vrrpy follows the RFC: the target hardware address is the announced MAC by
default; ``target_mac=`` picks another value (zeros to look like the kernel,
broadcast to look like keepalived).

**IPv6: unsolicited Neighbor Advertisement** (:func:`unsolicited_na_frame`).
Ethernet to 33:33:00:00:00:01, IPv6 to ff02::1 with hop limit 255, ICMPv6
type 136 with Router (R) set, Solicited (S) clear, Override (O) set, target the
virtual address, and a Target Link-Layer Address option carrying the MAC
(RFC 9568 6.4.1/6.4.2, RFC 4861 7.2.6). The IPv6 source is the virtual address
itself by default, as both keepalived (``keepalived/vrrp/vrrp_ndisc.c``) and
the Linux kernel (``ndisc_send_unsolicited_na``) do; RFC 4861 only asks for an
address assigned to the sending interface, which the virtual address is once
the Master has installed it. keepalived sets R only when IPv6 forwarding is on
for the interface; vrrpy sets it by default, since RFC 9568 says so and a
virtual router is a router (``router=False`` clears it).

**Repeats.** Nothing here waits or schedules: :class:`Announcer` sends one
frame per address per call. The runtime repeats the burst (keepalived's
``garp_master_repeat``, default 5, with ``vrrp_garp_interval`` spacing, and a
second burst after ``garp_master_delay``, default 5 s) and refreshes
periodically (``garp_master_refresh``, default off). :func:`schedule` gives the
send times of one burst so that the runtime and its tests agree.
"""

from __future__ import annotations

import math
import socket
import string
import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import Final, TypeAlias

from vrrpy.codec.checksum import internet_checksum, pseudo_header_sum

IPAddress: TypeAlias = IPv4Address | IPv6Address

BROADCAST_MAC: Final = "ff:ff:ff:ff:ff:ff"
ZERO_MAC: Final = "00:00:00:00:00:00"
ALL_NODES: Final = IPv6Address("ff02::1")
ALL_NODES_MAC: Final = "33:33:00:00:00:01"  # RFC 2464 section 7 mapping of ff02::1
ND_HOP_LIMIT: Final = 255

__all__ = [
    "ALL_NODES",
    "ALL_NODES_MAC",
    "BROADCAST_MAC",
    "ZERO_MAC",
    "Announcer",
    "IPAddress",
    "garp_frame",
    "normalize_mac",
    "schedule",
    "unsolicited_na_frame",
]

_ETH_P_ARP: Final = 0x0806
_ETH_P_IPV6: Final = 0x86DD
_IPPROTO_ICMPV6: Final = 58
_ND_NEIGHBOR_ADVERT: Final = 136
_ND_OPT_TARGET_LLADDR: Final = 2

_ETHERNET = struct.Struct("!6s6sH")  # destination, source, EtherType
# hardware type (1, Ethernet), protocol type (IPv4), hardware / protocol address
# lengths, operation, sender MAC, sender IPv4, target MAC, target IPv4 (RFC 826).
_ARP = struct.Struct("!HHBBH6s4s6s4s")
# version / traffic class / flow label, payload length, next header, hop limit,
# source, destination (RFC 8200 section 3).
_IPV6 = struct.Struct("!IHBB16s16s")
# type, code, checksum, R|S|O + reserved, target; then the Target Link-Layer
# Address option: type, length in units of 8 octets, MAC (RFC 4861 4.4, 4.6.1).
_NA = struct.Struct("!BBHI16sBB6s")

_NA_ROUTER: Final = 0x8000_0000
_NA_OVERRIDE: Final = 0x2000_0000  # Solicited (0x4000_0000) is always clear: unsolicited
_ALL_NODES_PACKED: Final = ALL_NODES.packed
_ALL_NODES_INT: Final = int(ALL_NODES)
_ALL_NODES_MAC_PACKED: Final = bytes.fromhex(ALL_NODES_MAC.replace(":", ""))
_BROADCAST_MAC_PACKED: Final = b"\xff" * 6
_BROADCAST_V4: Final = IPv4Address("255.255.255.255")
_HEXDIGITS: Final = frozenset(string.hexdigits)


def normalize_mac(mac: str) -> str:
    """``mac`` as six lower-case, colon-separated octets; ValueError if it is not a MAC."""
    parts = mac.split(":")
    if len(parts) != 6 or any(len(part) != 2 or not set(part) <= _HEXDIGITS for part in parts):
        raise ValueError(f"not a MAC address (want aa:bb:cc:dd:ee:ff): {mac!r}")
    return ":".join(parts).lower()


def _source_mac(mac: str) -> str:
    """A normalised MAC that can be a frame's source: unicast and not all zeros."""
    normal = normalize_mac(mac)
    if int(normal[:2], 16) & 1:
        raise ValueError(f"a group (multicast) MAC cannot be announced: {mac!r}")
    if normal == ZERO_MAC:
        raise ValueError("the all-zeros MAC cannot be announced")
    return normal


def _packed_mac(normal: str) -> bytes:
    """The six octets of a MAC already checked by :func:`normalize_mac`."""
    return bytes.fromhex(normal.replace(":", ""))


def garp_frame(ip: IPv4Address, mac: str, *, target_mac: str | None = None) -> bytes:
    """One gratuitous ARP request announcing that ``ip`` is at ``mac``, as Ethernet bytes.

    Ethernet broadcast from ``mac``; ARP op 1 (request), sender and target
    protocol address ``ip``, sender hardware address ``mac``. The target
    hardware address is ``mac`` too (RFC 9568 errata 7947/7949) unless
    ``target_mac`` says otherwise. 42 bytes: the NIC pads to the Ethernet
    minimum, as for keepalived's and the kernel's own ARP frames.
    """
    if not isinstance(ip, IPv4Address):
        raise TypeError(f"gratuitous ARP is for IPv4 addresses, not {ip!r}")
    if ip.is_multicast or ip.is_unspecified or ip == _BROADCAST_V4:
        raise ValueError(f"{ip} cannot be announced")
    source = _packed_mac(_source_mac(mac))
    target = source if target_mac is None else _packed_mac(normalize_mac(target_mac))
    address = ip.packed
    ethernet = _ETHERNET.pack(_BROADCAST_MAC_PACKED, source, _ETH_P_ARP)
    arp = _ARP.pack(1, 0x0800, 6, 4, 1, source, address, target, address)
    return ethernet + arp


def unsolicited_na_frame(
    ip: IPv6Address,
    mac: str,
    source: IPv6Address | None = None,
    *,
    router: bool = True,
) -> bytes:
    """One unsolicited Neighbor Advertisement announcing that ``ip`` is at ``mac``.

    Ethernet from ``mac`` to 33:33:00:00:00:01; IPv6 from ``source`` (default:
    ``ip`` itself, as keepalived and the kernel do) to ff02::1, hop limit 255;
    ICMPv6 NA with R = ``router``, S = 0, O = 1, target ``ip``, and a Target
    Link-Layer Address option holding ``mac``. 86 bytes. The checksum covers
    the IPv6 pseudo-header (RFC 4443 2.3), added as a sum, never built.
    """
    if not isinstance(ip, IPv6Address):
        raise TypeError(f"unsolicited NA is for IPv6 addresses, not {ip!r}")
    if ip.is_multicast or ip.is_unspecified:
        raise ValueError(f"{ip} cannot be announced")
    src = ip if source is None else source
    if not isinstance(src, IPv6Address) or src.is_multicast or src.is_unspecified:
        raise ValueError(f"not a usable IPv6 source address: {src!r}")
    lladdr = _packed_mac(_source_mac(mac))
    flags = _NA_OVERRIDE | (_NA_ROUTER if router else 0)
    target = ip.packed
    length = _NA.size
    unsummed = _NA.pack(_ND_NEIGHBOR_ADVERT, 0, 0, flags, target, _ND_OPT_TARGET_LLADDR, 1, lladdr)
    pseudo = pseudo_header_sum(int(src), _ALL_NODES_INT, _IPPROTO_ICMPV6, length)
    checksum = internet_checksum(unsummed, pseudo)
    icmp = _NA.pack(
        _ND_NEIGHBOR_ADVERT, 0, checksum, flags, target, _ND_OPT_TARGET_LLADDR, 1, lladdr
    )
    ethernet = _ETHERNET.pack(_ALL_NODES_MAC_PACKED, lladdr, _ETH_P_IPV6)
    ipv6 = _IPV6.pack(6 << 28, length, _IPPROTO_ICMPV6, ND_HOP_LIMIT, src.packed, _ALL_NODES_PACKED)
    return ethernet + ipv6 + icmp


def schedule(now: float, repeat: int, interval: float, refresh: float) -> list[float]:
    """Send times of the initial burst: ``repeat`` times, at ``now``, ``now + interval``, ...

    Each time is computed from ``now`` (no accumulated rounding). ``repeat`` 0
    gives no sends. ``refresh`` is the period of the runtime's own refresh job
    (0 = no refresh, keepalived's default); it does not change the burst and is
    only validated here, so that the runtime checks all three settings in one
    place. Raises ValueError on a negative or non-finite value.
    """
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
        raise ValueError(f"repeat must be an integer >= 0, not {repeat!r}")
    for name, value in (("now", now), ("interval", interval), ("refresh", refresh)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, not {value!r}")
    if interval < 0:
        raise ValueError(f"interval must be >= 0, not {interval!r}")
    if refresh < 0:
        raise ValueError(f"refresh must be >= 0 (0 = no refresh), not {refresh!r}")
    return [now + k * interval for k in range(repeat)]


class Announcer:
    """Send gratuitous ARP / unsolicited NA frames on one interface.

    Opens an ``AF_PACKET``/``SOCK_RAW`` socket (protocol 0: it never receives)
    bound to ``ifname`` in the caller's network namespace; needs
    ``CAP_NET_RAW``. The socket is non-blocking: a frame the kernel cannot take
    at once is counted as not sent rather than stalling the runtime.

    Two ways to use it. The convenient one builds (and caches, per address and
    MAC) what it sends::

        with Announcer("eth0") as announcer:
            announcer.send([IPv4Address("192.0.2.100")], "00:00:5e:00:01:01")

    The runtime's: build an instance's frames once when it starts, where a bad
    address or MAC is an error worth raising, and send the tuple at takeover,
    where nothing may be parsed, looked up or raised::

        frames = announcer.frames(addresses, mac)     # at start
        announcer.send_frames(frames)                 # on becoming Master
    """

    def __init__(self, ifname: str, *, router: bool = True) -> None:
        self.ifname = ifname
        self.router = router
        """The R flag of the NAs built here (see the module docstring)."""
        #: The error of the last frame that could not be sent (None if none failed yet).
        self.last_error: OSError | None = None
        self.send_errors = 0
        """How many frames the kernel refused (or came after :meth:`close`)."""
        self._frames: dict[tuple[IPAddress, str], bytes] = {}
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.bind((ifname, 0))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        # The bound method, looked up once: after close() it fails with EBADF,
        # which send_frames counts like any other refusal.
        self._send = sock.send

    def frame(self, address: IPAddress, mac: str) -> bytes:
        """The (cached) frame announcing ``address`` at ``mac``.

        Raises TypeError for something that is not an IP address, ValueError
        for an address or MAC that cannot be announced.
        """
        key = (address, normalize_mac(mac))
        frame = self._frames.get(key)
        if frame is None:
            if isinstance(address, IPv4Address):
                frame = garp_frame(address, key[1])
            elif isinstance(address, IPv6Address):
                frame = unsolicited_na_frame(address, key[1], router=self.router)
            else:
                raise TypeError(f"not an IP address: {address!r}")
            self._frames[key] = frame
        return frame

    def frames(self, addresses: Iterable[IPAddress], mac: str) -> tuple[bytes, ...]:
        """The frames announcing ``addresses`` at ``mac``, in order: what :meth:`send_frames` takes.

        Meant to be called once per instance at start (about 10 us a frame),
        so that a takeover only sends. Raises like :meth:`frame`.
        """
        mac = _source_mac(mac)
        return tuple(self.frame(address, mac) for address in addresses)

    def send_frames(self, frames: Iterable[bytes]) -> int:
        """Send prebuilt frames, in order; return how many the kernel took. Never raises.

        The takeover path: a loop over ``send`` on the socket opened at start.
        A frame the kernel refuses (interface down, queue full, announcer
        closed, ...) is skipped, counted in :attr:`send_errors` and its error
        kept in :attr:`last_error`; the frames after it still go.
        """
        send = self._send
        sent = 0
        for frame in frames:
            try:
                send(frame)
            except OSError as exc:
                self.last_error = exc
                self.send_errors += 1
            else:
                sent += 1
        return sent

    def send(self, addresses: Iterable[IPAddress], mac: str) -> int:
        """Send one frame per address (ARP for IPv4, NA for IPv6); return how many went out.

        A frame the kernel refuses (interface down, queue full, ...) is skipped
        and its error kept in :attr:`last_error`; the other frames still go.
        Raises ValueError if the announcer is closed or ``mac`` is unusable.
        """
        if self.closed:
            raise ValueError("the announcer is closed")
        return self.send_frames(self.frames(addresses, mac))

    def close(self) -> None:
        """Close the socket (idempotent); the frame cache is dropped."""
        self._sock.close()
        self._frames.clear()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() == -1

    def __enter__(self) -> Announcer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
