"""From the kernel's table to the desired one: an ordered list of operations (pure).

:func:`reconcile` compares the desired table (:mod:`vrrpy.ipvs.pool`'s output)
with the kernel's current one (:mod:`vrrpy.ipvs.netlink`'s dump) and returns
what to do, in the order to do it. It never reads the kernel and never
writes it, so every rule below is tested without root in microseconds.

The rules:

1. **Ownership.** Only services that are *declared* (keys of ``desired``) or
   *retired* (declared before, no longer) are ever touched. A service in the
   kernel that is neither -- another tool's, ``ipvsadm``'s, another pool's --
   is never edited, never deleted, and its destinations are never read as
   ours.
2. **A declared service is brought exactly to its declaration**: added if
   absent; edited in place if its scheduler, flags or persistence differ
   (``IPVS_CMD_SET_SERVICE``: the service, its destinations and the
   connections through it survive); each destination added, edited (weight,
   thresholds, forwarding, tunnel) or deleted so that the kernel's set is
   exactly the desired set. A destination the kernel has but the declaration
   has not is deleted, whoever added it: a declared service is ours whole.
3. **A retired service** present in the kernel is deleted (the kernel drops
   its destinations with it).
4. **Order**: retired services go first; then, service by service (in
   :meth:`~vrrpy.ipvs.model.ServiceKey.sort_key` order), the service itself
   (add or edit), its new destinations, its edited ones, its removed ones
   last. Adding before removing means a service whose server is replaced
   always has somewhere to send a new connection (the sorry server arrives
   before the last real server leaves, and leaves after the first one is
   back).

The same inputs always give the same list; an already reconciled table gives
an empty one.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from vrrpy.ipvs.model import RealServer, ServiceKey, VirtualService

__all__ = [
    "AddDest",
    "AddService",
    "DeleteDest",
    "DeleteService",
    "EditDest",
    "EditService",
    "Operation",
    "reconcile",
    "withdraw",
]


@dataclass(frozen=True)
class AddService:
    """``ipvsadm -A``: add the service (its destinations follow as :class:`AddDest`)."""

    service: VirtualService

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    def __str__(self) -> str:
        return f"add service {self.key} ({self.service.scheduler})"


@dataclass(frozen=True)
class EditService:
    """``ipvsadm -E``: change scheduler, flags or persistence in place."""

    service: VirtualService
    before: VirtualService

    @property
    def key(self) -> ServiceKey:
        return self.service.key

    def __str__(self) -> str:
        return f"edit service {self.key} ({self.service.scheduler})"


@dataclass(frozen=True)
class DeleteService:
    """``ipvsadm -D``: delete the service and, with it, its destinations."""

    key: ServiceKey

    def __str__(self) -> str:
        return f"delete service {self.key}"


@dataclass(frozen=True)
class AddDest:
    """``ipvsadm -a``."""

    key: ServiceKey
    dest: RealServer

    def __str__(self) -> str:
        return f"add real server {self.dest} to {self.key} (weight {self.dest.weight})"


@dataclass(frozen=True)
class EditDest:
    """``ipvsadm -e``: weight, thresholds, forwarding method, tunnel."""

    key: ServiceKey
    dest: RealServer
    before: RealServer

    def __str__(self) -> str:
        return f"edit real server {self.dest} of {self.key} (weight {self.dest.weight})"


@dataclass(frozen=True)
class DeleteDest:
    """``ipvsadm -d``."""

    key: ServiceKey
    dest: RealServer

    def __str__(self) -> str:
        return f"delete real server {self.dest} from {self.key}"


Operation = AddService | EditService | DeleteService | AddDest | EditDest | DeleteDest


def _dest_order(server: RealServer) -> tuple[int, bytes, int]:
    return (server.family, server.address.packed, server.port)


def reconcile(
    desired: Mapping[ServiceKey, VirtualService],
    current: Mapping[ServiceKey, VirtualService],
    retired: Collection[ServiceKey] = (),
) -> list[Operation]:
    """The operations that take ``current`` to ``desired`` for the services we own
    (``desired``'s keys and ``retired``), in order (see the module).

    ``desired`` maps each declared service to itself with exactly the
    destinations to install (pool settings are ignored); ``current`` is the
    kernel's table, with each service's destinations (other services may be
    in it, without theirs: they are not looked at).
    """
    ops: list[Operation] = []
    for key in sorted(retired, key=ServiceKey.sort_key):
        if key in current and key not in desired:
            ops.append(DeleteService(key))
    for key in sorted(desired, key=ServiceKey.sort_key):
        want = desired[key]
        have = current.get(key)
        if have is None:
            ops.append(AddService(want))
            ops.extend(AddDest(key, d) for d in sorted(want.real_servers, key=_dest_order))
            continue
        if want.settings() != have.settings():
            ops.append(EditService(want, have))
        wanted = want.dests()
        held = have.dests()
        for dest_key in sorted(wanted.keys() - held.keys(), key=lambda k: _dest_order(wanted[k])):
            ops.append(AddDest(key, wanted[dest_key]))
        for dest_key in sorted(wanted.keys() & held.keys(), key=lambda k: _dest_order(wanted[k])):
            if wanted[dest_key].settings() != held[dest_key].settings():
                ops.append(EditDest(key, wanted[dest_key], held[dest_key]))
        for dest_key in sorted(held.keys() - wanted.keys(), key=lambda k: _dest_order(held[k])):
            ops.append(DeleteDest(key, held[dest_key]))
    return ops


def withdraw(
    owned: Collection[ServiceKey], current: Mapping[ServiceKey, VirtualService]
) -> list[Operation]:
    """Delete the services we own that the kernel holds (leaving Master with
    ``on_leave="remove"``, or stopping so): nothing else."""
    return reconcile({}, current, owned)
