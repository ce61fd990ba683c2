"""Wire codecs: bytes in, typed advertisements out (and back), nothing else.

No sockets, no clocks, no scapy: struct and one big-integer checksum. Every
decoder raises only :class:`DecodeError` subclasses, whatever the bytes.
"""

from vrrpy.codec.errors import DecodeError, VRRPDecodeError
from vrrpy.codec.vrrp import (
    IPPROTO_VRRP,
    VRRP_MULTICAST_V4,
    VRRP_MULTICAST_V6,
    Advertisement,
    ChecksumForm,
    IPAddress,
    PacketInfo,
    decode_vrrp,
    encode_vrrp,
)

__all__ = [
    "IPPROTO_VRRP",
    "VRRP_MULTICAST_V4",
    "VRRP_MULTICAST_V6",
    "Advertisement",
    "ChecksumForm",
    "DecodeError",
    "IPAddress",
    "PacketInfo",
    "VRRPDecodeError",
    "decode_vrrp",
    "encode_vrrp",
]
