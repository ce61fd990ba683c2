"""vrrpyd, the VRRP daemon: a TOML file in, virtual routers running on Linux interfaces.

Submodules are imported explicitly (``vrrpy.daemon.config`` and the runtime),
so that ``import vrrpy.daemon`` stays as cheap as ``import vrrpy``: nothing
here pulls in asyncio, sockets or netlink until a submodule is asked for.
"""
