"""The states of a virtual router and the inputs that move it (RFC 9568 6.4, keepalived).

Shared by every protocol core (VRRP now, CARP later): a runtime, a state file
or a notify script reads the same four states whatever the protocol.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """A virtual router's state.

    RFC 9568 renamed Master to *Active*; vrrpy keeps ``MASTER`` because that is
    what keepalived, FRR and every operator's notify script say. The values are
    the strings keepalived prints.

    ``FAULT`` is not in the RFC: it is keepalived's state for a router whose
    tracked objects (its interface, a script, a ping target...) say it must not
    serve. It sends nothing, holds no address and has no timer, so that for the
    other routers it is as if it had stopped; it leaves FAULT for BACKUP (or
    MASTER if it owns the addresses) when its last fault clears.
    """

    INITIALIZE = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
    FAULT = "FAULT"


class Event(enum.Enum):
    """The inputs of a core's transition table: one per row of RFC 9568 6.4, plus
    keepalived's FAULT and sync-group inputs.

    ``FAULT`` is the first fault reason raised (from none to some) and
    ``RECOVER`` the last one cleared (from some to none): further reasons
    raised or cleared while others are held change no state.
    """

    STARTUP = "startup"
    """RFC 9568 6.4.1: the router is enabled."""
    SHUTDOWN = "shutdown"
    """RFC 9568 6.4.2 / 6.4.3: the router is disabled."""
    ADVERT = "advert"
    """An ADVERTISEMENT arrives (decoded; the receive checks of 7.1 come first)."""
    TIMER = "timer"
    """Master_Down_Timer (Backup) or Adver_Timer (Master) fires."""
    FAULT = "fault"
    """keepalived: a tracked object failed (the first fault reason is raised)."""
    RECOVER = "recover"
    """keepalived: every fault reason has cleared."""
    FORCE_MASTER = "force_master"
    """keepalived sync group: another member became Master; this one follows."""
    FORCE_BACKUP = "force_backup"
    """keepalived sync group: another member left Master for Backup; this one follows."""
    HOLD_BACKUP = "hold_backup"
    """keepalived sync group: Master_Down_Timer ran out, but the group is not ready
    to be Master together; stay Backup and wait another Master_Down_Interval."""
