"""Accept_Mode on Linux: a Master that is not the address owner refuses traffic to the VIPs.

RFC 9568 6.4.3: a Master "MUST accept packets addressed to the IPvX address(es)
associated with the Virtual Router if it is the IPvX address owner or if
Accept_Mode is True. Otherwise, it MUST NOT accept these packets", and (6.1)
IPv6 Neighbor Solicitations and Advertisements MUST NOT be dropped.

Linux delivers locally whatever is addressed to an address on an interface,
so vrrpy enforces Accept_Mode False with one nftables table of its own,
``inet vrrpy``: an input-hook chain that drops packets whose destination is in
the set of virtual addresses of non-owner instances with ``accept = false``,
letting ICMPv6 neighbour solicitations and advertisements through. ARP is not
IP and is untouched, so the Master still answers ARP for the VIPs and
forwards traffic sent to the virtual MAC, as the RFC wants. With
``accept = true`` (keepalived's default behaviour outside ``vrrp_strict``),
or for the owner, nothing is filtered.

The table is rewritten atomically (``nft -f``) whenever the set changes and
deleted when the runtime stops. Without the ``nft`` command the filter cannot
be installed: the runtime then logs a warning per instance and runs as if
``accept = true``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

logger = logging.getLogger("vrrpy.net")

TABLE = "vrrpy"


def ruleset(addresses: Iterable[IPv4Address | IPv6Address]) -> str:
    """The nft script that replaces the ``inet vrrpy`` table with one dropping ``addresses``."""
    v4 = sorted({a for a in addresses if a.version == 4})
    v6 = sorted({a for a in addresses if a.version == 6})
    lines = [
        f"table inet {TABLE}",
        f"delete table inet {TABLE}",
        f"table inet {TABLE} {{",
        "  set vips4 { type ipv4_addr; "
        + (f"elements = {{ {', '.join(map(str, v4))} }}; " if v4 else "")
        + "}",
        "  set vips6 { type ipv6_addr; "
        + (f"elements = {{ {', '.join(map(str, v6))} }}; " if v6 else "")
        + "}",
        "  chain input {",
        "    type filter hook input priority -10; policy accept;",
        "    ip daddr @vips4 counter drop",
        "    ip6 daddr @vips6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept",
        "    ip6 daddr @vips6 counter drop",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class AcceptFilter:
    """The ``inet vrrpy`` nftables table, kept equal to the addresses it is given."""

    def __init__(self) -> None:
        self.nft = shutil.which("nft")
        self._current: frozenset[IPv4Address | IPv6Address] | None = None

    @property
    def available(self) -> bool:
        """True if the ``nft`` command exists here."""
        return self.nft is not None

    def apply(self, addresses: Iterable[IPv4Address | IPv6Address]) -> bool:
        """Drop traffic to exactly ``addresses`` (an empty set removes the table). True if done."""
        wanted = frozenset(addresses)
        if wanted == self._current:
            return True
        if not wanted:
            self.clear()
            return True
        if self.nft is None:
            return False
        result = subprocess.run(
            [self.nft, "-f", "-"], input=ruleset(wanted), capture_output=True, text=True, timeout=10
        )
        if result.returncode != 0:
            logger.error("nft refused the accept-mode table: %s", result.stderr.strip())
            return False
        self._current = wanted
        return True

    def clear(self) -> None:
        """Remove the table (nothing if it is not there)."""
        if self.nft is not None and self._current:
            subprocess.run(
                [self.nft, "delete", "table", "inet", TABLE], capture_output=True, timeout=10
            )
        self._current = frozenset()
