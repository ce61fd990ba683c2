"""A flood of bad adverts: packets a VRRP router must drop, as fast as one sender goes.

Each forged advert claims the instance's VRID at priority 255, so believed it
would take the address at once; each has one defect a receiver is required
to catch (RFC 9568 7.1, RFC 3768 7.1): a wrong checksum, a TTL that says it
crossed a router, the other protocol version, a wrong VRRPv2 password, a
stranger's address where unicast peers are configured, a truncated packet. A
well-behaved pair drops every one and goes on as before: the drill proves it
by the client's probes (no outage), the Master's adverts (on their beat) and
the routers' counters (drops by reason, no transition).

The packets are built here with vrrpy's codec and sent by a small script in
the attacker's namespace (a process of its own, so that the drill's own
process keeps its time).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from vrrpy.codec.vrrp import AUTH_NONE, AUTH_SIMPLE, Advertisement, IPAddress, encode_vrrp

__all__ = ["FLOOD_SCRIPT", "Forged", "forged_adverts"]

GROUPS: dict[int, IPAddress] = {4: IPv4Address("224.0.0.18"), 6: IPv6Address("ff02::12")}


@dataclass(frozen=True)
class Forged:
    """One forged packet: what is wrong with it, the VRRP bytes, how it is sent."""

    defect: str
    payload: bytes
    source: IPAddress
    destination: IPAddress
    interface: str
    ttl: int = 255

    def to_json(self) -> dict[str, object]:
        return {
            "family": self.source.version,
            "src": str(self.source),
            "dst": str(self.destination),
            "if": self.interface,
            "ttl": self.ttl,
            "hex": self.payload.hex(),
        }


def forged_adverts(
    *,
    version: int,
    vrid: int,
    interval_cs: int,
    addresses: Sequence[IPAddress],
    source: IPAddress,
    interface: str,
    auth_pass: str = "",
    peers: Sequence[IPAddress] = (),
) -> list[Forged]:
    """The bad adverts for one instance, sent from ``source`` on the attacker's
    ``interface``: to the multicast group, or to each of ``peers`` (unicast)."""
    family = source.version
    addresses = tuple(addresses)
    destinations: Sequence[IPAddress] = list(peers) or [GROUPS[family]]
    auth = (AUTH_SIMPLE, auth_pass.encode()) if auth_pass else (AUTH_NONE, b"")
    packets: list[Forged] = []

    def advert(
        destination: IPAddress, ver: int = version, auth_type: int = auth[0], data: bytes = auth[1]
    ) -> bytes:
        interval = interval_cs if ver == 3 else max(100, interval_cs // 100 * 100)
        return encode_vrrp(
            Advertisement(ver, vrid, 255, interval, addresses, auth_type, data),
            source,
            destination,
        )

    for destination in destinations:
        good = advert(destination)
        bad_sum = good[:6] + bytes([good[6] ^ 0xFF, good[7] ^ 0x5A]) + good[8:]
        packets.append(Forged("bad checksum", bad_sum, source, destination, interface))
        packets.append(Forged("TTL 64", good, source, destination, interface, ttl=64))
        if family == 4:
            other = advert(destination, ver=5 - version, auth_type=AUTH_NONE, data=b"")
            packets.append(Forged(f"VRRPv{5 - version}", other, source, destination, interface))
        if version == 2 and auth_pass:
            wrong = advert(destination, data=b"forged!!")
            packets.append(Forged("wrong password", wrong, source, destination, interface))
        if peers:
            packets.append(Forged("not a peer", good, source, destination, interface))
        packets.append(Forged("truncated", good[:5], source, destination, interface))
    return packets


FLOOD_SCRIPT = r"""
import json, socket, sys, time
packets = json.loads(sys.argv[1]); rate = float(sys.argv[2]); duration = float(sys.argv[3])
socks = {}
prepared = []
for p in packets:
    key = (p["family"], p["src"], p["if"])
    if key not in socks:
        fam = socket.AF_INET if p["family"] == 4 else socket.AF_INET6
        s = socket.socket(fam, socket.SOCK_RAW, 112)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, p["if"].encode())
        if p["family"] == 4:
            s.bind((p["src"], 0))
        else:
            s.bind((p["src"], 0, 0, socket.if_nametoindex(p["if"])))
        socks[key] = s
    s = socks[key]
    multicast = p["dst"].startswith(("224.", "ff02"))
    if p["family"] == 4:
        opt = (socket.IPPROTO_IP, socket.IP_MULTICAST_TTL if multicast else socket.IP_TTL)
        dest = (p["dst"], 0)
    else:
        opt = (socket.IPPROTO_IPV6,
               socket.IPV6_MULTICAST_HOPS if multicast else socket.IPV6_UNICAST_HOPS)
        dest = (p["dst"], 0, 0, socket.if_nametoindex(p["if"]))
    prepared.append((s, opt, p["ttl"], bytes.fromhex(p["hex"]), dest))
print(json.dumps({"k": "ready"}), flush=True)
sent = errors = 0
start = time.monotonic()
while (now := time.monotonic()) < start + duration:
    if sent > (now - start) * rate:
        time.sleep(0.0005)
        continue
    for s, opt, ttl, payload, dest in prepared:
        try:
            s.setsockopt(opt[0], opt[1], ttl)
            s.sendto(payload, dest)
            sent += 1
        except OSError:
            errors += 1
print(json.dumps({"k": "done", "sent": sent, "errors": errors,
                  "seconds": time.monotonic() - start}), flush=True)
"""
