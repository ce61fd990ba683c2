"""Linux host helpers for the runtime: addresses, VMACs, announcements, Accept_Mode.

* :mod:`vrrpy.net.addresses`: pyroute2 for set-up (interfaces, VMAC macvlans, stale
  addresses) and the bookkeeping of which addresses are vrrpy's;
* :mod:`vrrpy.net.rtnl`: raw rtnetlink, struct-built, for the takeover path (an address
  added inside one ``sendmsg``, its ack read afterwards);
* :mod:`vrrpy.net.announce`: gratuitous ARP requests (IPv4) and unsolicited Neighbor
  Advertisements (IPv6), packed with struct and sent on an ``AF_PACKET`` socket;
* :mod:`vrrpy.net.acceptmode`: RFC 9568 Accept_Mode with an nftables table of vrrpy's own.

Importing this package is cheap: nothing here imports scapy (a test oracle only),
and pyroute2 is imported when a :class:`~vrrpy.net.addresses.Netlink` is opened.
"""
