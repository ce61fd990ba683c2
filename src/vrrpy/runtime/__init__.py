"""The Linux runtime: raw sockets, netlink, announcements and timers around the cores.

Importing :mod:`vrrpy.runtime` (or :mod:`vrrpy.runtime.spec`, the instance
description a daemon builds) costs nothing: the runtime's classes, and with
them asyncio and pyroute2, are loaded on first use of a name below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vrrpy.runtime.spec import InstanceSpec, VirtualAddress

if TYPE_CHECKING:
    from vrrpy.runtime.instance import InstanceRunner
    from vrrpy.runtime.runtime import Runtime
    from vrrpy.runtime.sockets import VRRPSocket

__all__ = ["InstanceRunner", "InstanceSpec", "Runtime", "VRRPSocket", "VirtualAddress"]

_LAZY = {
    "InstanceRunner": "vrrpy.runtime.instance",
    "Runtime": "vrrpy.runtime.runtime",
    "VRRPSocket": "vrrpy.runtime.sockets",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vrrpy.runtime' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
