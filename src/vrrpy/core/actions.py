"""What a core asks its caller to do: the only way a core affects the world.

Actions are small frozen objects returned, in order, by every event method of a
core. The runtime performs them (send on a socket, call netlink, send
gratuitous ARP); the simulator records and delivers them; a test asserts on
them. They are protocol-neutral so that CARP's core can return the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from vrrpy.codec.carp import CarpAdvertisement
from vrrpy.codec.vrrp import Advertisement, IPAddress
from vrrpy.core.state import State


@dataclass(frozen=True, slots=True)
class SendAdvertisement:
    """Send ``advert`` now: to the multicast group, or to each unicast peer.

    A VRRP core gives an :class:`~vrrpy.codec.vrrp.Advertisement`; CARP's core a
    :class:`~vrrpy.codec.carp.CarpAdvertisement` already signed (its ``hmac``
    filled), so the runtime only adds the checksum (``encode_carp(advert)``).
    """

    advert: Advertisement | CarpAdvertisement


@dataclass(frozen=True, slots=True)
class AddAddresses:
    """Install the virtual addresses (this router just became Master)."""

    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class RemoveAddresses:
    """Withdraw the virtual addresses (this router left Master)."""

    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class Announce:
    """Tell the LAN who owns the addresses now: gratuitous ARP (IPv4) or unsolicited NA (IPv6).

    The core asks once per takeover; repeats and periodic refreshes are the
    runtime's policy (keepalived's garp_master_repeat / delay / refresh).
    """

    addresses: tuple[IPAddress, ...]


@dataclass(frozen=True, slots=True)
class Transition:
    """The state changed from ``old`` to ``new``; ``reason`` says why, for humans and logs."""

    old: State
    new: State
    reason: str


Action: TypeAlias = SendAdvertisement | AddAddresses | RemoveAddresses | Announce | Transition
