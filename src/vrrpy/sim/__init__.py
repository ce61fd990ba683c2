"""A deterministic virtual LAN with a virtual clock, driving the real cores.

Users test their own setups with it; vrrpy's property tests use it. See
:class:`VirtualLAN`.
"""

from vrrpy.sim.lan import LinkProfile, Node, TimelineEntry, VirtualLAN

__all__ = ["LinkProfile", "Node", "TimelineEntry", "VirtualLAN"]
