"""What a core asks its caller to do: the only way a core affects the world.

Actions are small frozen objects returned, in order, by every event method of a
core. The runtime performs them (send on a socket, call netlink, send
gratuitous ARP); the simulator records and delivers them; a test asserts on
them. They are protocol-neutral so that CARP's core can return the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

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
    """The state changed from ``old`` to ``new``; ``reason`` says why, for humans and logs.

    ``code`` says why in one of :data:`TRANSITION_CODES`, for counting and
    alerting: the reason has addresses and priorities in it, so a metric
    labelled with it would grow a new series with every peer.
    """

    old: State
    new: State
    reason: str
    code: str = "other"


TRANSITION_CODES: Final = {
    "startup": "INIT to BACKUP at the start",
    "owner": "the address owner (priority 255) to MASTER at the start",
    "master_down": "a Backup heard no Master for Master_Down_Interval (or heard only weaker ones "
    "and preempted)",
    "master_resigned": "a Backup became MASTER after the Master resigned (priority 0, CARP's "
    "bow-out)",
    "preempt": "a CARP Backup took over from a Master it may preempt (demoted, slower)",
    "preempted": "a Master stepped down for a better one it heard",
    "fault": "a tracked object, backend check or refusal holds the instance in FAULT",
    "fault_cleared": "every fault reason cleared",
    "sync_group": "a sync group moved its member with the others",
    "shutdown": "the instance stopped (to INIT)",
    "other": "anything else (a transition made outside the cores)",
}
"""The stable reason codes of :class:`Transition`, each with what it means."""


Action: TypeAlias = SendAdvertisement | AddAddresses | RemoveAddresses | Announce | Transition
