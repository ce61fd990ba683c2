"""What the runtime is told about one instance: the runtime's own type, not the daemon's.

The daemon builds these from its TOML file (checking every key and reporting
every problem at once); a library user builds them in code. Either way the
core's :class:`~vrrpy.core.config.RouterConfig` checks the protocol fields
again when the instance starts, so a hand-made spec cannot smuggle in a bad
value: each rule is written once, in the core, and :mod:`vrrpy.daemon.config`
reuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv6Interface
from typing import TypeAlias

from vrrpy.codec.vrrp import ChecksumForm, IPAddress
from vrrpy.core.config import RouterConfig

__all__ = ["InstanceSpec", "VirtualAddress"]

VirtualAddress: TypeAlias = IPv4Interface | IPv6Interface
"""A virtual address with the prefix it is added with (``/32`` or ``/128`` when omitted)."""


@dataclass(frozen=True)
class InstanceSpec:
    """One ``[[instance]]``: a virtual router, one VRID on one interface, one address family.

    vrrpyd builds these with :func:`vrrpy.daemon.config.parse_config`, which has
    checked every field and every combination; a spec built by hand skips those
    checks, but the core's own still run in :meth:`router_config` when the
    instance starts.

    The times are seconds. Announcements follow keepalived's defaults: on
    becoming Master, ``garp_repeat`` gratuitous ARPs / unsolicited neighbour
    advertisements go out ``garp_interval`` apart (keepalived's
    ``garp_master_repeat`` and ``vrrp_garp_interval``), and the same burst again
    ``garp_delay`` seconds later (``garp_master_delay``, 0: no second burst);
    while Master, ``garp_refresh_repeat`` more every ``garp_refresh`` seconds
    (``garp_master_refresh`` / ``garp_master_refresh_repeat``, 0: never). An
    empty ``unicast_peers`` means adverts go to the VRRP multicast group.

    ``protocol = "carp"`` makes it a CARP virtual host instead: ``vrid`` is its
    VHID, ``advbase`` / ``advskew`` set its advert interval (advbase + advskew
    / 256 s, the lower the better), ``demote`` its starting demotion, and the
    HMAC key comes from ``password`` as the ``carp_profile`` (``openbsd``,
    ``freebsd`` or ``ucarp``) derives it; ``replay_protection`` turns on the
    opt-in per-peer counter check (docs/carp.md). The VRRP-only fields
    (``version``, ``priority``, ``advert_interval``, ``auth_pass``...) are not
    used; ``priority`` stays the base that tracking weights move, and for CARP
    what moves is the demotion (each point of priority lost is a point of
    demotion).
    """

    name: str
    interface: str
    vrid: int
    virtual_addresses: tuple[VirtualAddress, ...]
    protocol: str = "vrrp"
    version: int = 3
    priority: int = 100
    advert_interval: float = 1.0
    preempt: bool = True
    preempt_delay: float = 0.0
    accept: bool = False
    unicast_peers: tuple[IPAddress, ...] = ()
    use_vmac: bool = False
    auth_pass: str = ""
    garp_repeat: int = 5
    garp_interval: float = 0.0
    garp_refresh: float = 0.0
    garp_delay: float = 5.0
    garp_refresh_repeat: int = 1
    higher_prio_send_advert: bool = False
    v3_checksum: ChecksumForm = ChecksumForm.PSEUDO_HEADER
    advbase: int = 1
    advskew: int = 0
    demote: int = 0
    password: str = ""
    carp_profile: str = "openbsd"
    replay_protection: bool = False

    @property
    def family(self) -> int:
        """4 or 6: the family of the virtual addresses (and of the peers)."""
        return self.virtual_addresses[0].version

    @property
    def is_owner(self) -> bool:
        """True for priority 255, which claims the addresses are the interface's own."""
        return self.priority == 255

    @property
    def is_carp(self) -> bool:
        """True for a CARP virtual host, False for a VRRP virtual router."""
        return self.protocol == "carp"

    @property
    def unicast(self) -> bool:
        """True when adverts go to ``unicast_peers`` rather than to the multicast group."""
        return bool(self.unicast_peers)

    def router_config(self, primary_address: IPAddress) -> RouterConfig:
        """The core's configuration of this virtual router, sending from ``primary_address``.

        ``primary_address`` is the interface's own address (for IPv6 its
        link-local one), known only at run time, hence a parameter. The core
        takes bare virtual addresses: prefixes matter only when adding them.

        Raises :class:`vrrpy.core.ConfigError` only for a bad ``primary_address``
        (wrong family, or an IPv6 address that is not link-local): everything
        else was checked when the file was loaded.
        """
        return RouterConfig(
            vrid=self.vrid,
            primary_address=primary_address,
            virtual_addresses=tuple(vip.ip for vip in self.virtual_addresses),
            priority=self.priority,
            version=self.version,
            advert_interval=self.advert_interval,
            preempt=self.preempt,
            preempt_delay=self.preempt_delay,
            accept=self.accept,
            auth_pass=self.auth_pass,
            checksum_form=self.v3_checksum,
            name=self.name,
            peers=self.unicast_peers,
            higher_prio_send_advert=self.higher_prio_send_advert,
        )
