"""vrrpy: keep an IP address alive when the machine serving it dies.

The package is layered (see ``docs/architecture.md``):

* :mod:`vrrpy.codec` turns bytes into typed advertisements and back;
* :mod:`vrrpy.core` holds the sans-IO state machines (bytes and deadlines in,
  actions out, the clock passed in by the caller);
* :mod:`vrrpy.sim` runs the real cores on a virtual LAN with a virtual clock.

Importing :mod:`vrrpy` is deliberately cheap: nothing here imports scapy,
pyroute2 or asyncio, so a tool that only needs the codec pays for the codec.
"""

from vrrpy.codec import (
    Advertisement,
    ChecksumForm,
    DecodeError,
    PacketInfo,
    VRRPDecodeError,
    decode_vrrp,
    encode_vrrp,
)
from vrrpy.core import (
    Action,
    AddAddresses,
    Announce,
    RemoveAddresses,
    RouterConfig,
    SendAdvertisement,
    State,
    Transition,
    VirtualRouter,
)

__version__ = "0.1.0"

__all__ = [
    "Action",
    "AddAddresses",
    "Advertisement",
    "Announce",
    "ChecksumForm",
    "DecodeError",
    "PacketInfo",
    "RemoveAddresses",
    "RouterConfig",
    "SendAdvertisement",
    "State",
    "Transition",
    "VRRPDecodeError",
    "VirtualRouter",
    "__version__",
    "decode_vrrp",
    "encode_vrrp",
]
