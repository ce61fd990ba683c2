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
from vrrpy.core.config import ConfigError, RouterConfig
from vrrpy.core.counters import Counters
from vrrpy.core.state import State
from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.core.vrrp import VirtualRouter

__all__ = [
    "Action",
    "AddAddresses",
    "Announce",
    "ConfigError",
    "Counters",
    "RemoveAddresses",
    "RouterConfig",
    "SendAdvertisement",
    "State",
    "Transition",
    "VirtualRouter",
    "master_down_interval",
    "skew_time",
]
