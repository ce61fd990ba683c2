"""The IPVS model and its netlink encoding, without a kernel.

The encoding is checked against pyroute2's parser both ways: the bytes
:mod:`vrrpy.ipvs.netlink` packs with :mod:`struct` are read back through
:class:`~vrrpy.ipvs.netlink.IpvsMessage` (pyroute2's nla machinery), and
messages pyroute2 builds are read by our decoder. The kernel's own word is in
``tests/test_ipvs_uml.py`` (``ipvsadm -Ln`` as the oracle).
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address, ip_address
from typing import Any

import pytest

from vrrpy.ipvs.model import (
    SCHEDULERS,
    Forwarding,
    Protocol,
    RealServer,
    ServiceKey,
    TunnelChecksum,
    TunnelType,
    VirtualService,
    check_declared,
)
from vrrpy.ipvs.netlink import (
    ATTR_DEST,
    ATTR_SERVICE,
    CMD_NEW_DEST,
    CMD_NEW_SERVICE,
    IpvsMessage,
    SyncDaemon,
    daemon_attrs,
    decode_counters,
    decode_daemon,
    decode_dest,
    decode_service,
    dest_payload,
    messages,
    operation_request,
    parse_attrs,
    request,
    service_payload,
)
from vrrpy.ipvs.reconcile import AddDest, AddService, DeleteDest, DeleteService, EditService

# ------------------------------------------------------------------ the model


def test_address_service_key_and_family_come_from_the_address() -> None:
    vs = VirtualService(address="2001:db8::10", port=443, protocol="udp")
    assert vs.family == 6
    assert vs.key == ServiceKey(6, Protocol.UDP, IPv6Address("2001:db8::10"), 443)
    assert vs.key == ServiceKey.of("udp", "2001:db8::10", 443)
    assert str(vs.key) == "UDP [2001:db8::10]:443"


def test_fwmark_service_is_keyed_by_mark_and_family() -> None:
    vs = VirtualService(fwmark=7, family=6)
    assert vs.key == ServiceKey.mark(7, 6)
    assert str(vs.key) == "FWM 7 IPv6"
    assert VirtualService(fwmark=7).family == 4


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "needs an address"),
        ({"address": "192.0.2.1", "fwmark": 3}, "not both"),
        ({"address": "192.0.2.1", "family": 6}, "not IPv6"),
        ({"address": "192.0.2.1", "port": 70000}, "port"),
        ({"address": "192.0.2.1", "scheduler": "Round Robin"}, "not a scheduler"),
        ({"address": "192.0.2.1", "scheduler_flags": {"sh-portt"}}, "unknown scheduler flags"),
        ({"address": "192.0.2.1", "persistence_granularity": 33}, "granularity"),
        ({"address": "2001:db8::1", "persistence_granularity": 0}, "granularity"),
        ({"address": "192.0.2.1", "quorum": 0}, "quorum"),
        ({"fwmark": 1, "family": 5}, "family"),
        ({"address": "192.0.2.1", "protocol": "icmp"}, "icmp"),
    ],
)
def test_virtual_service_refuses_what_the_kernel_would(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        VirtualService(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"upper_threshold": 5, "lower_threshold": 6}, "lower_threshold"),
        ({"forwarding": "tun", "tunnel_type": "gue"}, "tunnel_port"),
        ({"weight": -1}, "weight"),
        ({"forwarding": "masq"}, "masq"),
    ],
)
def test_real_server_refuses_what_the_kernel_would(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RealServer("198.51.100.1", 80, **kwargs)


def test_every_known_scheduler_is_accepted() -> None:
    for name in SCHEDULERS:
        assert VirtualService(address="192.0.2.1", port=80, scheduler=name).scheduler == name


def test_flags_and_netmask_are_the_kernels() -> None:
    vs = VirtualService(
        address="192.0.2.1",
        port=80,
        scheduler="sh",
        scheduler_flags={"sh-port", "sh-fallback"},
        one_packet=True,
        persistence_timeout=300,
        persistence_granularity=24,
    )
    # PERSISTENT 0x1, ONEPACKET 0x4, SCHED1 0x8, SCHED2 0x10.
    assert vs.flags == 0x1 | 0x4 | 0x8 | 0x10
    assert vs.netmask == 0xFFFFFF00
    v6 = VirtualService(address="2001:db8::1", port=80, persistence_timeout=60)
    assert v6.persistence_granularity == 128 and v6.netmask == 128
    assert VirtualService(address="192.0.2.1", port=80).netmask == 0xFFFFFFFF


def test_settings_ignore_what_the_kernel_ignores() -> None:
    # Persistence settings of a service that is not persistent, tunnel settings of
    # a server that is not tunnelled: not differences.
    a = VirtualService(address="192.0.2.1", port=80, persistence_granularity=24)
    b = VirtualService(address="192.0.2.1", port=80)
    assert a.settings() == b.settings()
    assert a.settings() != VirtualService(address="192.0.2.1", port=80, scheduler="rr").settings()
    r1 = RealServer("198.51.100.1", 80, tunnel_type=TunnelType.GRE)
    r2 = RealServer("198.51.100.1", 80)
    assert r1.settings() == r2.settings()
    t1 = RealServer("198.51.100.1", 80, forwarding="tun", tunnel_type="gre")
    t2 = RealServer("198.51.100.1", 80, forwarding="tun")
    assert t1.settings() != t2.settings()


def test_check_declared_refuses_duplicates_and_dr_port_changes() -> None:
    rs = RealServer("198.51.100.1", 80)
    vs = VirtualService(address="192.0.2.1", port=80, real_servers=(rs,))
    with pytest.raises(ValueError, match="declared twice"):
        check_declared([vs, vs])
    with pytest.raises(ValueError, match=r"real server 198\.51\.100\.1:80 declared twice"):
        check_declared([VirtualService(address="192.0.2.1", port=80, real_servers=(rs, rs))])
    with pytest.raises(ValueError, match="sorry server"):
        check_declared(
            [VirtualService(address="192.0.2.1", port=80, real_servers=(rs,), sorry_server=rs)]
        )
    dr = RealServer("198.51.100.1", 8080, forwarding="dr")
    with pytest.raises(ValueError, match="cannot change the port"):
        check_declared([VirtualService(address="192.0.2.1", port=80, real_servers=(dr,))])
    # A fwmark service's DR servers have no service port to keep.
    check_declared(
        [VirtualService(fwmark=1, real_servers=(RealServer("198.51.100.1", 0, forwarding="dr"),))]
    )


# ------------------------------------------------------------------ the codec against pyroute2


def _pyroute2(data: bytes) -> Any:
    msg = IpvsMessage(data)
    msg.decode()
    return msg


SAMPLES = [
    VirtualService(address="192.0.2.10", port=80, scheduler="rr"),
    VirtualService(
        address="2001:db8::10",
        port=443,
        protocol="udp",
        scheduler="wrr",
        one_packet=True,
        persistence_timeout=60,
        persistence_granularity=64,
    ),
    VirtualService(
        address="192.0.2.50", port=9, protocol="sctp", scheduler="mh", scheduler_flags={"mh-port"}
    ),
    VirtualService(fwmark=7, scheduler="sh", persistence_timeout=300, persistence_granularity=24),
    VirtualService(fwmark=8, family=6, scheduler="lblcr"),
    VirtualService(
        address="192.0.2.60",
        port=5060,
        protocol="udp",
        persistence_timeout=30,
        persistence_engine="sip",
    ),
]


@pytest.mark.parametrize("vs", SAMPLES, ids=lambda vs: str(vs.key))
def test_service_bytes_read_by_pyroute2_say_what_we_meant(vs: VirtualService) -> None:
    cmd, attrs, _ = operation_request(AddService(vs))
    msg = _pyroute2(request(30, cmd, attrs, 1, 7))
    assert msg["cmd"] == CMD_NEW_SERVICE and msg["header"]["sequence_number"] == 7
    svc = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    get = svc.get_attr
    assert get("IPVS_SVC_ATTR_AF") == (socket.AF_INET if vs.family == 4 else socket.AF_INET6)
    assert get("IPVS_SVC_ATTR_SCHED_NAME") == vs.scheduler
    assert get("IPVS_SVC_ATTR_FLAGS")["flags"] == vs.flags
    assert get("IPVS_SVC_ATTR_TIMEOUT") == vs.persistence_timeout
    mask = get("IPVS_SVC_ATTR_NETMASK")
    if vs.family == 4:
        assert struct.unpack("!I", mask)[0] == vs.netmask
    else:
        assert struct.unpack("=I", mask)[0] == vs.persistence_granularity
    if vs.fwmark:
        assert get("IPVS_SVC_ATTR_FWMARK") == vs.fwmark
        assert get("IPVS_SVC_ATTR_ADDR") is None
    else:
        assert vs.address is not None
        assert get("IPVS_SVC_ATTR_PROTOCOL") == vs.protocol.number
        assert get("IPVS_SVC_ATTR_PORT") == vs.port
        assert get("IPVS_SVC_ATTR_ADDR")[: len(vs.address.packed)] == vs.address.packed
    assert (get("IPVS_SVC_ATTR_PE_NAME") or "") == vs.persistence_engine


SERVERS = [
    RealServer("198.51.100.1", 80, weight=3, upper_threshold=10, lower_threshold=5),
    RealServer("2001:db8:1::2", 443, forwarding="dr", weight=0),
    RealServer("198.51.100.7", 9, forwarding="tun", tunnel_type="gre"),
    RealServer(
        "198.51.100.8",
        9,
        forwarding="tun",
        tunnel_type="gue",
        tunnel_port=6080,
        tunnel_checksum="remcsum",
    ),
    RealServer(
        "198.51.100.9",
        9,
        forwarding="tun",
        tunnel_type="gue",
        tunnel_port=6081,
        tunnel_checksum="csum",
    ),
]


@pytest.mark.parametrize("rs", SERVERS, ids=str)
def test_dest_bytes_read_by_pyroute2_say_what_we_meant(rs: RealServer) -> None:
    key = ServiceKey.of("tcp", "192.0.2.10", 80)
    cmd, attrs, _ = operation_request(AddDest(key, rs))
    msg = _pyroute2(request(30, cmd, attrs, 1, 8))
    assert msg["cmd"] == CMD_NEW_DEST
    dest = msg.get_attr("IPVS_CMD_ATTR_DEST")
    get = dest.get_attr
    assert ip_address(get("IPVS_DEST_ATTR_ADDR")[: len(rs.address.packed)]) == rs.address
    assert get("IPVS_DEST_ATTR_PORT") == rs.port
    assert get("IPVS_DEST_ATTR_FWD_METHOD") == {"nat": 0, "tun": 2, "dr": 3}[rs.forwarding.value]
    assert get("IPVS_DEST_ATTR_WEIGHT") == rs.weight
    assert get("IPVS_DEST_ATTR_U_THRESH") == rs.upper_threshold
    assert get("IPVS_DEST_ATTR_L_THRESH") == rs.lower_threshold
    if rs.forwarding is Forwarding.TUN:
        assert (
            get("IPVS_DEST_ATTR_TUN_TYPE") == {"ipip": 0, "gue": 1, "gre": 2}[rs.tunnel_type.value]
        )
        assert get("IPVS_DEST_ATTR_TUN_PORT") == rs.tunnel_port
        assert get("IPVS_DEST_ATTR_TUN_FLAGS") == rs.tunnel_checksum.code
    # The service part of a destination request is the key alone.
    svc = msg.get_attr("IPVS_CMD_ATTR_SERVICE")
    assert svc.get_attr("IPVS_SVC_ATTR_SCHED_NAME") is None
    assert svc.get_attr("IPVS_SVC_ATTR_PORT") == 80


def _kernel_service(vs: VirtualService, hashed: bool = True) -> bytes:
    """A service as the kernel dumps it, built by pyroute2: flags with HASHED and an
    all-ones mask, addresses as 16 bytes, statistics attached."""
    attrs: list[tuple[str, Any]] = [
        ("IPVS_SVC_ATTR_AF", socket.AF_INET if vs.family == 4 else socket.AF_INET6)
    ]
    if vs.fwmark:
        attrs.append(("IPVS_SVC_ATTR_FWMARK", vs.fwmark))
    else:
        assert vs.address is not None
        attrs += [
            ("IPVS_SVC_ATTR_PROTOCOL", vs.protocol.number),
            ("IPVS_SVC_ATTR_ADDR", vs.address.packed.ljust(16, b"\0")),
            ("IPVS_SVC_ATTR_PORT", vs.port),
        ]
    mask = struct.pack("!I" if vs.family == 4 else "=I", vs.netmask)
    attrs += [
        ("IPVS_SVC_ATTR_SCHED_NAME", vs.scheduler),
        ("IPVS_SVC_ATTR_FLAGS", {"flags": vs.flags | (0x2 if hashed else 0), "mask": 0xFFFFFFFF}),
        ("IPVS_SVC_ATTR_TIMEOUT", vs.persistence_timeout),
        ("IPVS_SVC_ATTR_NETMASK", mask),
        ("IPVS_SVC_ATTR_STATS", {"attrs": [("IPVS_STATS_ATTR_CONNS", 4)]}),
    ]
    if vs.persistence_engine:
        attrs.append(("IPVS_SVC_ATTR_PE_NAME", vs.persistence_engine))
    msg = IpvsMessage()
    msg["cmd"] = CMD_NEW_SERVICE
    msg["version"] = 1
    msg["attrs"] = [("IPVS_CMD_ATTR_SERVICE", {"attrs": attrs})]
    msg["header"]["type"] = 30
    msg.encode()
    return bytes(msg.data)


@pytest.mark.parametrize("vs", SAMPLES, ids=lambda vs: str(vs.key))
def test_a_kernel_dump_built_by_pyroute2_decodes_to_the_same_service(vs: VirtualService) -> None:
    data = _kernel_service(vs)
    (_, _, whole), *_ = messages(data)
    payload = parse_attrs(whole, 20)[ATTR_SERVICE]
    back = decode_service(payload)
    assert back.key == vs.key
    assert back.settings() == vs.settings()
    assert back.scheduler_flags == vs.scheduler_flags


def test_a_kernel_dest_dump_decodes_with_its_counters() -> None:
    msg = IpvsMessage()
    msg["cmd"] = CMD_NEW_DEST
    msg["version"] = 1
    msg["attrs"] = [
        (
            "IPVS_CMD_ATTR_DEST",
            {
                "attrs": [
                    ("IPVS_DEST_ATTR_ADDR", IPv4Address("198.51.100.8").packed.ljust(16, b"\0")),
                    ("IPVS_DEST_ATTR_PORT", 9),
                    ("IPVS_DEST_ATTR_FWD_METHOD", 2),
                    ("IPVS_DEST_ATTR_WEIGHT", 5),
                    ("IPVS_DEST_ATTR_U_THRESH", 100),
                    ("IPVS_DEST_ATTR_L_THRESH", 50),
                    ("IPVS_DEST_ATTR_ACTIVE_CONNS", 3),
                    ("IPVS_DEST_ATTR_INACT_CONNS", 2),
                    ("IPVS_DEST_ATTR_PERSIST_CONNS", 1),
                    ("IPVS_DEST_ATTR_ADDR_FAMILY", socket.AF_INET),
                    (
                        "IPVS_DEST_ATTR_STATS64",
                        {
                            "attrs": [
                                ("IPVS_STATS_ATTR_CONNS", 9),
                                ("IPVS_STATS_ATTR_INBYTES", 1234),
                            ]
                        },
                    ),
                    ("IPVS_DEST_ATTR_TUN_TYPE", 1),
                    ("IPVS_DEST_ATTR_TUN_PORT", 6080),
                    ("IPVS_DEST_ATTR_TUN_FLAGS", 2),
                ]
            },
        )
    ]
    msg["header"]["type"] = 30
    msg.encode()
    payload = parse_attrs(bytes(msg.data), 20)[ATTR_DEST]
    server, counters = decode_dest(payload, 4), decode_counters(payload)
    assert server == RealServer(
        "198.51.100.8",
        9,
        forwarding=Forwarding.TUN,
        weight=5,
        upper_threshold=100,
        lower_threshold=50,
        tunnel_type=TunnelType.GUE,
        tunnel_port=6080,
        tunnel_checksum=TunnelChecksum.REMCSUM,
    )
    assert (counters.active, counters.inactive, counters.persistent) == (3, 2, 1)
    assert (counters.connections, counters.in_bytes) == (9, 1234)


def test_delete_requests_carry_keys_only() -> None:
    key = ServiceKey.mark(9, 6)
    cmd, attrs, _ = operation_request(DeleteService(key))
    svc = parse_attrs(parse_attrs(request(30, cmd, attrs, 1, 1), 20)[ATTR_SERVICE])
    assert sorted(svc) == [1, 5]  # AF, FWMARK
    rs = RealServer("2001:db8:1::5", 0, weight=9)
    cmd, attrs, _ = operation_request(DeleteDest(key, rs))
    dest = parse_attrs(parse_attrs(request(30, cmd, attrs, 1, 1), 20)[ATTR_DEST])
    assert sorted(dest) == [1, 2, 11]  # ADDR, PORT, ADDR_FAMILY
    assert dest_payload(rs, full=False) == parse_attrs(request(30, cmd, attrs, 1, 1), 20)[ATTR_DEST]


def test_edit_service_sends_the_full_entry() -> None:
    vs = SAMPLES[1]
    cmd, attrs, _ = operation_request(EditService(vs, vs))
    assert parse_attrs(request(30, cmd, attrs, 1, 1), 20)[ATTR_SERVICE] == service_payload(vs)


def test_sync_daemon_request_is_pyroute2s_encoding() -> None:
    attrs = daemon_attrs(
        [
            ("IPVS_DAEMON_ATTR_STATE", 1),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "sync0"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", 7),
        ]
    )
    data = request(30, 11, attrs, 2, 3)
    daemon = decode_daemon(data)
    assert daemon == SyncDaemon("master", "sync0", 7)
    assert SyncDaemon("master", "sync0", 7).same_as(
        SyncDaemon("master", "sync0", 7, 1472, ip_address("224.0.0.81"), 8848, 1)
    )
    assert not SyncDaemon("master", "sync0", 7, port=9000).same_as(
        SyncDaemon("master", "sync0", 7, 1472, ip_address("224.0.0.81"), 8848, 1)
    )
    with pytest.raises(ValueError):
        SyncDaemon("primary", "sync0")
    with pytest.raises(ValueError):
        SyncDaemon("backup", "sync0", 300)


def test_pyroute2_ipvsservice_drops_an_unknown_scheduler_key() -> None:
    """The surprise in shared/README.md, pinned: pyroute2 0.9's IPVSService takes the
    scheduler as ``sched_name`` and silently installs ``wlc`` when given ``sched``.
    (vrrpy never uses IPVSService; if pyroute2 changes this, the docs must too.)"""
    ipvs = pytest.importorskip("pyroute2.ipvs")
    wrong = ipvs.IPVSService(addr="192.0.2.10", port=80, protocol=6, sched="rr").dump_nla()
    names = dict(wrong["attrs"])
    assert names["IPVS_SVC_ATTR_SCHED_NAME"] == "wlc"
    right = ipvs.IPVSService(addr="192.0.2.10", port=80, protocol=6, sched_name="rr").dump_nla()
    assert dict(right["attrs"])["IPVS_SVC_ATTR_SCHED_NAME"] == "rr"
