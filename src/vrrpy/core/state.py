"""The three states of a virtual router (RFC 9568 6.4, RFC 3768 6.4)."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """A virtual router's state.

    RFC 9568 renamed Master to *Active*; vrrpy keeps ``MASTER`` because that is
    what keepalived, FRR and every operator's notify script say. The values are
    the strings keepalived prints.
    """

    INITIALIZE = "INIT"
    BACKUP = "BACKUP"
    MASTER = "MASTER"
