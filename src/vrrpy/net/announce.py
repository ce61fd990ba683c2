"""Gratuitous ARP and unsolicited Neighbor Advertisements: telling the LAN who is Master now.

When a router becomes Master it announces every virtual address so that hosts
and switches move their neighbour entries (and forwarding tables) to it at once
(RFC 9568 sections 6.4.1 and 6.4.2, with verified errata EID 7947 and 7949;
section 8.1.2). The core asks for this with an ``Announce`` action; the Linux
runtime builds the frames here and sends them on an ``AF_PACKET`` socket.

Frames are crafted with scapy, once per (address, MAC), and cached as bytes.
scapy is imported lazily, on the first frame built, because importing it takes
a large fraction of a second; a runtime can call :func:`preload` in a thread at
startup so that the first takeover does not pay for it.

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
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import Final, TypeAlias

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
    "preload",
    "schedule",
    "unsolicited_na_frame",
]


def preload() -> None:
    """Import the scapy layers the frame builders need (slow: call it in a thread at startup)."""
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401


def normalize_mac(mac: str) -> str:
    """``mac`` as six lower-case, colon-separated octets; ValueError if it is not a MAC."""
    parts = mac.split(":")
    if len(parts) != 6 or any(
        len(part) != 2 or not set(part) <= set(string.hexdigits) for part in parts
    ):
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
    if ip.is_multicast or ip.is_unspecified or ip == IPv4Address("255.255.255.255"):
        raise ValueError(f"{ip} cannot be announced")
    source = _source_mac(mac)
    target = source if target_mac is None else normalize_mac(target_mac)
    from scapy.layers.l2 import ARP, Ether

    arp = ARP(
        hwtype=1,  # Ethernet
        ptype=0x0800,  # IPv4
        hwlen=6,
        plen=4,
        op=1,  # request
        hwsrc=source,
        psrc=str(ip),
        hwdst=target,
        pdst=str(ip),
    )
    return bytes(Ether(dst=BROADCAST_MAC, src=source, type=0x0806) / arp)


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
    Link-Layer Address option holding ``mac``. scapy computes the checksum.
    """
    if not isinstance(ip, IPv6Address):
        raise TypeError(f"unsolicited NA is for IPv6 addresses, not {ip!r}")
    if ip.is_multicast or ip.is_unspecified:
        raise ValueError(f"{ip} cannot be announced")
    src = ip if source is None else source
    if not isinstance(src, IPv6Address) or src.is_multicast or src.is_unspecified:
        raise ValueError(f"not a usable IPv6 source address: {src!r}")
    lladdr = _source_mac(mac)
    from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
    from scapy.layers.l2 import Ether

    frame = (
        Ether(dst=ALL_NODES_MAC, src=lladdr, type=0x86DD)
        / IPv6(src=str(src), dst=str(ALL_NODES), hlim=ND_HOP_LIMIT, nh=58)
        / ICMPv6ND_NA(code=0, R=int(router), S=0, O=1, res=0, tgt=str(ip))
        / ICMPv6NDOptDstLLAddr(lladdr=lladdr)  # option type 2: Target Link-Layer Address
    )
    return bytes(frame)


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
    Frames are built on first use and cached per (address, MAC).

        with Announcer("eth0") as announcer:
            announcer.send([IPv4Address("192.0.2.100")], "00:00:5e:00:01:01")
    """

    def __init__(self, ifname: str, *, router: bool = True) -> None:
        self.ifname = ifname
        self.router = router
        #: The error of the last frame that could not be sent (None if none failed yet).
        self.last_error: OSError | None = None
        self._frames: dict[tuple[IPAddress, str], bytes] = {}
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.bind((ifname, 0))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock: socket.socket | None = sock

    def frame(self, address: IPAddress, mac: str) -> bytes:
        """The (cached) frame announcing ``address`` at ``mac``."""
        key = (address, normalize_mac(mac))
        frame = self._frames.get(key)
        if frame is None:
            if isinstance(address, IPv4Address):
                frame = garp_frame(address, key[1])
            else:
                frame = unsolicited_na_frame(address, key[1], router=self.router)
            self._frames[key] = frame
        return frame

    def send(self, addresses: Iterable[IPAddress], mac: str) -> int:
        """Send one frame per address (ARP for IPv4, NA for IPv6); return how many went out.

        A frame the kernel refuses (interface down, queue full, ...) is skipped
        and its error kept in :attr:`last_error`; the other frames still go.
        Raises ValueError if the announcer is closed or ``mac`` is unusable.
        """
        if self._sock is None:
            raise ValueError("the announcer is closed")
        mac = _source_mac(mac)
        sent = 0
        for address in addresses:
            frame = self.frame(address, mac)
            try:
                self._sock.send(frame)
            except OSError as exc:
                self.last_error = exc
                continue
            sent += 1
        return sent

    def close(self) -> None:
        """Close the socket (idempotent); the frame cache is dropped."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._frames.clear()

    @property
    def closed(self) -> bool:
        return self._sock is None

    def __enter__(self) -> Announcer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
