"""Sans-IO protocol cores: events and the current time in, actions and one deadline out.

Nothing in this package opens a socket, reads a clock or sleeps.
"""

from vrrpy.core.actions import (
    Action,
    AddAddresses,
    Announce,
    RemoveAddresses,
    SendAdvertisement,
    Transition,
)
from vrrpy.core.carp import CarpConfig, CarpRouter
from vrrpy.core.config import ConfigError, RouterConfig
from vrrpy.core.counters import Counters
from vrrpy.core.router import RouterCore, Rule
from vrrpy.core.state import Event, State
from vrrpy.core.syncgroup import Step, SyncGroup
from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.core.vrrp import TRANSITIONS, VirtualRouter

__all__ = [
    "TRANSITIONS",
    "Action",
    "AddAddresses",
    "Announce",
    "CarpConfig",
    "CarpRouter",
    "ConfigError",
    "Counters",
    "Event",
    "RemoveAddresses",
    "RouterConfig",
    "RouterCore",
    "Rule",
    "SendAdvertisement",
    "State",
    "Step",
    "SyncGroup",
    "Transition",
    "VirtualRouter",
    "master_down_interval",
    "skew_time",
]
