"""The Linux runtime: raw sockets, netlink, announcements and timers around the cores.

Importing :mod:`vrrpy.runtime` is what pulls in asyncio and (lazily) pyroute2
and scapy; :mod:`vrrpy` itself never does.
"""

from vrrpy.runtime.instance import InstanceRunner
from vrrpy.runtime.runtime import Runtime
from vrrpy.runtime.sockets import VRRPSocket

__all__ = ["InstanceRunner", "Runtime", "VRRPSocket"]
