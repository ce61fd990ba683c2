"""What a backend is: the steps a transition takes besides the protocol's own.

A virtual address that moves is half of a failover: the service behind it
must follow, in order, and never run on two nodes at once. A *backend* is
one participant in that: a DRBD resource, a notify script, a user's own
Python. The runtime's transition pipeline (:mod:`vrrpy.backends.pipeline`)
calls every backend of an instance at fixed *phases*, in this order:

Becoming Master (Backup or FAULT -> Master):

1. ``prepare`` (every backend, in configuration order): before the virtual
   addresses are added -- DRBD must be Primary before the service starts and
   before traffic arrives. A backend may *refuse* (raise :class:`Refused`): a
   DRBD disk that is not UpToDate. The instance is then kept out of Master
   (FAULT, the refusal as its reason) instead of serving without its data.
2. the runtime adds the addresses and announces them (not a backend);
3. ``transition`` (every backend): the instance is Master -- start the
   service, run ``notify_master``.

Leaving Master (Master -> Backup, FAULT or INIT): the reverse order,
addresses first:

1. the runtime withdraws the addresses (not a backend: traffic stops first);
2. ``transition`` (every backend, in reverse configuration order): stop the
   service, demote DRBD, run ``notify_backup`` / ``notify_fault`` /
   ``notify_stop``.

Any other transition (INIT -> Backup, Backup -> FAULT, ...) runs
``transition`` only.

Standing for Master: a refusal in ``prepare`` comes late -- the node has
already won the election, and if it preempted a healthy Master, that Master
stepped down for nothing. A backend that can tell *beforehand* sets
``check_interval`` and implements ``check``: while ``check`` says why not,
the instance is held in FAULT with that reason (it sends no adverts, so it
neither preempts nor is elected) and it stands again once ``check`` says
None. DRBD's check is "the local disk is UpToDate and not a resync target".

Backends never delay an advert: each call runs as a task beside the
protocol loop, under its own timeout; a hung or crashing one is cancelled at
its timeout, logged, counted, and the protocol keeps its timing. Transitions
of one instance are serialised, and when several are queued only the latest
is run: the service never stays up on a node that is no longer Master.

A backend is any object with these methods (subclass :class:`Backend` and
override what you need)::

    class Touch(Backend):
        async def transition(self, event: TransitionEvent) -> None:
            Path(f"/run/{event.instance}.state").write_text(event.new.value)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface

from vrrpy.core.state import State

__all__ = ["Backend", "BackendError", "Refused", "TransitionEvent", "implements"]


@dataclass(frozen=True)
class TransitionEvent:
    """One transition, as a backend sees it (keepalived's notify arguments and more).

    ``kind`` is ``"INSTANCE"`` or ``"GROUP"`` (a sync group's transition, with
    ``instance`` the group's name), as keepalived passes it to notify scripts.
    ``priority`` is the effective priority. ``at`` is wall time, for humans.
    """

    instance: str
    old: State
    new: State
    reason: str
    priority: int
    kind: str = "INSTANCE"
    interface: str = ""
    vrid: int = 0
    family: int = 4
    addresses: tuple[IPv4Interface | IPv6Interface, ...] = ()
    at: float = field(default_factory=time.time)

    @property
    def becoming_master(self) -> bool:
        return self.new is State.MASTER and self.old is not State.MASTER

    @property
    def leaving_master(self) -> bool:
        return self.old is State.MASTER and self.new is not State.MASTER


class BackendError(Exception):
    """A backend failed (counted and logged; the protocol goes on)."""


class Refused(BackendError):
    """Raised from :meth:`Backend.prepare`: this node must not become Master (the reason
    is the message: it becomes the instance's fault reason)."""


class Backend:
    """Does nothing at every phase: override what your backend needs.

    ``name`` names it in logs, counters and the state file; ``timeout`` bounds
    each call (seconds); past it the call is cancelled and counted as failed.
    """

    name: str = "backend"
    timeout: float = 30.0
    fault_on_failure: bool = False
    """When ``transition`` fails (raises or times out) on the way to Master, take the
    node out of Master: FAULT with the reason for ``REFUSAL_HOLD``, then it is asked
    again (keepalived's ``track_script`` with weight 0, for a service that will not start)."""

    check_interval: float = 0.0
    """Seconds between calls of :meth:`check`; 0 never calls it."""

    async def check(self) -> str | None:
        """Whether this node may stand for Master now: None if it may, else why not
        (a short, stable sentence: it becomes the instance's fault reason while it
        holds). Called every ``check_interval`` seconds in every state, under
        ``timeout``; an exception or a timeout counts as "may not"."""
        return None

    async def prepare(self, event: TransitionEvent) -> None:
        """Before the addresses are added, on the way to Master; raise :class:`Refused` to
        keep the node out of Master."""

    async def transition(self, event: TransitionEvent) -> None:
        """After the protocol's own steps of ``event`` (addresses added or withdrawn)."""

    async def close(self) -> None:
        """The daemon stops: release what the backend holds (not a transition)."""


def implements(backend: object, method: str) -> bool:
    """Whether ``backend`` (or the backend it wraps, as :class:`~vrrpy.backends.offloop.OffLoop`
    does) has its own ``method`` rather than :class:`Backend`'s, which does nothing.

    The pipeline skips what does nothing: an instance whose backends have no
    ``prepare`` adds its addresses in the same instant as it becomes Master."""
    inner = getattr(backend, "wrapped", backend)
    own = getattr(type(inner), method, None)
    return own is not None and own is not getattr(Backend, method, None)
