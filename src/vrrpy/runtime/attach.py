"""Where an instance lives: its interface, its own address, its MAC, its VMAC and its sockets.

Setting up an instance is the part that talks to the host before any protocol
runs, and the part that can fail because of the host (no such interface, no
address on it yet, a link of the VMAC's name that someone else made). Each
failure is an :class:`~vrrpy.runtime.errors.InstanceStartError` naming the
configuration key that points at the problem, so a daemon reports it like a
configuration error. :func:`preflight` runs the same checks without changing
anything, so that a reload can refuse a bad file before it touches a running
instance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Interface

from vrrpy.codec.vrrp import IPAddress
from vrrpy.net.addresses import ADDRESS_PROTO, Netlink, VmacError, vmac_address
from vrrpy.runtime.errors import InstanceStartError
from vrrpy.runtime.sockets import VRRPSocket
from vrrpy.runtime.spec import InstanceSpec

logger = logging.getLogger("vrrpy.runtime")

SocketFor = Callable[[str, int, int, IPAddress, bool], VRRPSocket]
"""``socket_for(ifname, ifindex, family, source, multicast)``: the runtime's shared socket."""


@dataclass
class Attachment:
    """What an instance was given on the host: filled in by :func:`attach`."""

    ifindex: int
    """The configured interface (adverts arrive there)."""
    primary: IPAddress
    """Our own address on it: the adverts' source and the election's tie-breaker."""
    addr_ifindex: int
    addr_ifname: str
    """Where the virtual addresses go: the interface, or the VMAC made on it."""
    mac: str
    """The MAC the announcements carry: the interface's, or the virtual MAC."""
    socket: VRRPSocket | None = None
    """The socket adverts leave by: the interface's, or the VMAC's."""
    rx_socket: VRRPSocket | None = None
    """The interface's socket; with a VMAC, adverts also arrive by :attr:`socket`."""
    vmac_created: bool = False


def vmac_name(spec: InstanceSpec) -> str:
    """The VMAC link's name, as keepalived names it (``vrrp.VRID``, with the family);
    ``carpF.VHID`` for CARP."""
    return f"{'carp' if spec.is_carp else 'vrrp'}{spec.family}.{spec.vrid}"


def vmac_for(spec: InstanceSpec) -> str:
    """The virtual MAC: VRRP's 00:00:5e:00:01:VRID (IPv4) or 00:00:5e:00:02:VRID (IPv6);
    CARP's is 00:00:5e:00:01:VHID for both families, as carp(4) and ucarp use it."""
    return vmac_address(spec.vrid, 4 if spec.is_carp else spec.family)


def preflight(spec: InstanceSpec, netlink: Netlink) -> tuple[int, IPAddress]:
    """Check that ``spec`` can start on this host, changing nothing: (ifindex, primary).

    Raises :class:`InstanceStartError` for a missing interface, an interface
    without a usable own address, or an owner (priority 255) whose addresses
    are not on its interface.
    """
    name = spec.name
    try:
        ifindex = netlink.index(spec.interface)
    except KeyError:
        raise InstanceStartError(
            name, "interface", f"no interface {spec.interface} in this network namespace"
        ) from None
    vips = {iface.ip for iface in spec.virtual_addresses}
    primary: IPAddress | None
    if spec.family == 4:
        primary = netlink.primary_ipv4(ifindex, vips)  # type: ignore[arg-type]
    else:
        primary = netlink.link_local(ifindex)
    if primary is None:
        what = "IPv4 address" if spec.family == 4 else "usable IPv6 link-local address"
        raise InstanceStartError(name, "interface", f"{spec.interface} has no {what}")
    if spec.priority == 255:
        if spec.use_vmac:
            raise InstanceStartError(
                name,
                "use_vmac",
                "not supported for the address owner (priority 255): its addresses stay "
                "where they are configured",
            )
        present = {iface.ip for iface in netlink.addresses(ifindex)}
        missing = sorted(str(a) for a in vips if a not in present)
        if missing:
            raise InstanceStartError(
                name,
                "priority",
                f"255 means address owner, but {', '.join(missing)} is not configured "
                f"on {spec.interface}",
            )
    return ifindex, primary


def attach(spec: InstanceSpec, netlink: Netlink, socket_for: SocketFor) -> Attachment:
    """Set the instance up on the host: VMAC, stale addresses, sockets.

    On failure, whatever this call made is undone (see :func:`detach`) and the
    error is raised.
    """
    ifindex, primary = preflight(spec, netlink)
    att = Attachment(
        ifindex=ifindex,
        primary=primary,
        addr_ifindex=ifindex,
        addr_ifname=spec.interface,
        mac=netlink.mac(ifindex),
    )
    multicast = not spec.unicast_peers
    try:
        if spec.use_vmac:
            _make_vmac(spec, netlink, att)
        if spec.priority != 255:
            clean_stale(spec, netlink, att)
        att.rx_socket = socket_for(spec.interface, ifindex, spec.family, primary, multicast)
        if spec.use_vmac:
            # Also a receiving socket: a frame whose source MAC is the virtual MAC of
            # our own macvlan (another router of the group, Master, sending from the
            # same VMAC) is handed by the kernel to that macvlan, never to the parent.
            att.socket = socket_for(
                att.addr_ifname, att.addr_ifindex, spec.family, primary, multicast
            )
        else:
            att.socket = att.rx_socket
    except BaseException:
        detach(spec, netlink, att)
        raise
    return att


def _make_vmac(spec: InstanceSpec, netlink: Netlink, att: Attachment) -> None:
    name = vmac_name(spec)
    try:
        att.addr_ifindex, att.vmac_created = netlink.add_vmac(att.ifindex, name, vmac_for(spec))
    except VmacError as exc:  # a conflicting link, or one the kernel would not make
        raise InstanceStartError(spec.name, "use_vmac", str(exc)) from None
    att.addr_ifname = name
    att.mac = vmac_for(spec)
    if spec.family == 4:
        # The parent must not answer ARP for the virtual addresses with its own
        # MAC (keepalived sets the same), nor for its own through the macvlan.
        netlink.hold_sysctl(4, spec.interface, "arp_ignore", 1)
        netlink.hold_sysctl(4, spec.interface, "arp_filter", 1)
    else:
        # Adverts leave the macvlan from the parent's link-local address.
        netlink.add(att.addr_ifindex, IPv6Interface(f"{att.primary}/64"))


def detach(spec: InstanceSpec, netlink: Netlink, att: Attachment) -> None:
    """Undo :func:`attach`: the VMAC (only if this run made it) and its sysctl holds.

    The sockets are the runtime's (shared by the interface's instances); the
    virtual addresses are the address keeper's.
    """
    if not spec.use_vmac or att.addr_ifname == spec.interface:
        return
    if att.vmac_created:
        netlink.remove_link(att.addr_ifname)
    if spec.family == 4:
        netlink.release_sysctl(4, spec.interface, "arp_ignore")
        netlink.release_sysctl(4, spec.interface, "arp_filter")


def clean_stale(spec: InstanceSpec, netlink: Netlink, att: Attachment) -> None:
    """Remove virtual addresses an earlier run left behind (we start as Backup).

    On kernels that keep an address's protocol (Linux >= 6.3) only addresses
    stamped by vrrpy are removed; one the administrator configured is left
    alone, with a warning. Older kernels cannot tell them apart: there, as
    keepalived does at startup, any virtual address found is removed.
    """
    vips = {iface.ip for iface in spec.virtual_addresses}
    for iface, proto in netlink.addresses_with_proto(att.addr_ifindex).items():
        if iface.ip not in vips:
            continue
        if netlink.marks and proto != ADDRESS_PROTO:
            logger.warning(
                "%s: %s is on %s but vrrpy did not put it there: left alone; this host "
                "answers for it in every state (priority 255 declares the owner)",
                spec.name,
                iface,
                att.addr_ifname,
            )
            continue
        netlink.remove(att.addr_ifindex, iface, force=True)
        logger.warning(
            "%s: removed %s from %s, left by an earlier run (we start as Backup)",
            spec.name,
            iface,
            att.addr_ifname,
        )
