"""IPVS (the Linux Virtual Server): virtual services through netlink, reconciled, as a backend.

The pieces, each usable alone (see ``docs/ipvs.md``):

* :mod:`vrrpy.ipvs.model`: virtual services and real servers as frozen values;
* :mod:`vrrpy.ipvs.pool`: the desired table given the health checks'
  verdicts (keepalived's ``inhibit_on_failure``, ``sorry_server``,
  ``alpha``, ``omega``, quorum) -- pure;
* :mod:`vrrpy.ipvs.reconcile`: desired table + the kernel's -> ordered
  operations, touching only what is ours -- pure;
* :mod:`vrrpy.ipvs.netlink`: the kernel's table and sync daemons through
  generic netlink (never ``ipvsadm``);
* :mod:`vrrpy.ipvs.backend`: :class:`IpvsBackend`, the pool following a VRRP
  instance and its health checks.

Importing this package costs the pure modules only: the netlink handle and
the backend (and with them sockets, threads and pyroute2) load on first use
of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrrpy.ipvs.model import (
    Forwarding,
    Protocol,
    RealServer,
    ServiceKey,
    TunnelChecksum,
    TunnelType,
    VirtualService,
)
from vrrpy.ipvs.pool import Pool, PoolEvent, plan
from vrrpy.ipvs.reconcile import Operation, reconcile

if TYPE_CHECKING:
    from vrrpy.ipvs.backend import IpvsBackend
    from vrrpy.ipvs.netlink import IpvsError, IpvsNetlink, SyncDaemon

__all__ = [
    "Forwarding",
    "IpvsBackend",
    "IpvsError",
    "IpvsNetlink",
    "Operation",
    "Pool",
    "PoolEvent",
    "Protocol",
    "RealServer",
    "ServiceKey",
    "SyncDaemon",
    "TunnelChecksum",
    "TunnelType",
    "VirtualService",
    "plan",
    "reconcile",
]

_LAZY = {
    "IpvsBackend": "vrrpy.ipvs.backend",
    "IpvsError": "vrrpy.ipvs.netlink",
    "IpvsNetlink": "vrrpy.ipvs.netlink",
    "SyncDaemon": "vrrpy.ipvs.netlink",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vrrpy.ipvs' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
