"""The cores the runtime drives: VRRP's :class:`VirtualRouter` and CARP's :class:`CarpRouter`.

One runtime for both protocols: the two cores share one interface (the
events and queries of ``docs/architecture.md``, the same actions, the same
states), so the runner, the pacer, the sync groups and the backends never
ask which protocol an instance speaks. What differs is gathered here:

* which core an :class:`~vrrpy.runtime.spec.InstanceSpec` makes, and from
  what (:func:`make_core`; CARP's counter starts at a random 64-bit value
  read here, since a core never reads randomness);
* how an advert becomes bytes (:func:`encoder_for`): VRRP's checksum may
  cover the IP addresses (a pseudo-header), so it is encoded per source and
  destination; CARP's covers its 36 bytes alone and the core has signed it;
* how tracking moves the router (:func:`apply_priority`): a VRRP router's
  priority, a CARP host's demotion.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeAlias

from vrrpy.codec.carp import CarpAdvertisement, encode_carp
from vrrpy.codec.vrrp import Advertisement, IPAddress, encode_vrrp
from vrrpy.core.actions import Action
from vrrpy.core.carp import CarpConfig, CarpRouter
from vrrpy.core.vrrp import VirtualRouter
from vrrpy.runtime.spec import InstanceSpec

__all__ = ["Core", "Encoder", "apply_priority", "demote_for", "encoder_for", "make_core"]

Core: TypeAlias = VirtualRouter | CarpRouter
"""A protocol core: both have the interface the runtime uses."""
Encoder: TypeAlias = Callable[[Advertisement | CarpAdvertisement, IPAddress, IPAddress], bytes]
"""(advert, source, destination) -> the IP payload."""


def make_core(spec: InstanceSpec, primary: IPAddress) -> Core:
    """The core for ``spec``, sending from ``primary`` (the interface's own address)."""
    if not spec.is_carp:
        return VirtualRouter(spec.router_config(primary))
    config = CarpConfig(
        vhid=spec.vrid,
        primary_address=primary,
        virtual_addresses=tuple(vip.ip for vip in spec.virtual_addresses),
        advskew=spec.advskew,
        advbase=spec.advbase,
        password=spec.password,
        profile=spec.carp_profile,  # type: ignore[arg-type]
        preempt=spec.preempt,
        counter_start=secrets.randbits(64),
        # With replay protection on, our counter moves on each advert so that the
        # peer's window has something to check (a constant cookie otherwise, as
        # OpenBSD's: cheapest, and its bytes are cached).
        counter="increment" if spec.replay_protection else "constant",
        replay_window=spec.replay_protection,
        peers=spec.unicast_peers,
        name=spec.name,
    )
    router = CarpRouter(config)
    if spec.demote:
        router.set_demote(spec.demote, 0.0)  # before startup: nothing to send yet
    return router


def _encode_vrrp(
    advert: Advertisement | CarpAdvertisement, src: IPAddress, dst: IPAddress
) -> bytes:
    assert isinstance(advert, Advertisement)
    return encode_vrrp(advert, src, dst)


def _encode_carp(advert: Advertisement | CarpAdvertisement, _s: IPAddress, _d: IPAddress) -> bytes:
    assert isinstance(advert, CarpAdvertisement)
    return encode_carp(advert)  # signed by the core already: the checksum is added here


def encoder_for(spec: InstanceSpec) -> Encoder:
    """How ``spec``'s adverts become bytes (see the module)."""
    return _encode_carp if spec.is_carp else _encode_vrrp


def demote_for(spec: InstanceSpec, priority: int) -> int:
    """CARP's demotion for a tracked priority: each point below the base is one point
    of demotion, on top of the configured ``demote`` (never below 0)."""
    return max(0, spec.demote + spec.priority - priority)


def apply_priority(spec: InstanceSpec, router: Core, priority: int, now: float) -> list[Action]:
    """Move ``router`` to the tracked ``priority``: VRRP's priority, CARP's demotion."""
    if isinstance(router, CarpRouter):
        return router.set_demote(demote_for(spec, priority), now)
    return router.set_priority(priority, now)
