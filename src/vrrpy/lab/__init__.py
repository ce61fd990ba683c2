"""The namespace lab: test hosts on a bridge, a sniffer, and vrrpyd processes in them.

One place for multi-host setups (runtime tests, the live demo, benchmarks,
interop). Needs root and iproute2; nothing here is imported by ``import vrrpy``.
"""

from vrrpy.lab.capture import Capture
from vrrpy.lab.daemon import Daemon, render, running, wait_for
from vrrpy.lab.netns import Host, Lab, in_netns, stop_process

__all__ = [
    "Capture",
    "Daemon",
    "Host",
    "Lab",
    "in_netns",
    "render",
    "running",
    "stop_process",
    "wait_for",
]
