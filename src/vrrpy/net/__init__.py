"""Linux link-layer helpers for the runtime: the frames a new Master sends.

:mod:`vrrpy.net.announce` builds gratuitous ARP requests (IPv4) and unsolicited
Neighbor Advertisements (IPv6) and sends them on an ``AF_PACKET`` socket.

Importing this package (or :mod:`vrrpy.net.announce`) is cheap: scapy is
imported only when the first frame is built (call
:func:`vrrpy.net.announce.preload` in a thread at startup to pay that cost
early), and nothing here imports pyroute2 or asyncio.
"""
