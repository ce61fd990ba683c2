"""CARP routers in the simulator, alone and beside VRRP routers on one virtual LAN."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Any

import pytest

from vrrpy.codec import PacketInfo
from vrrpy.codec.carp import CARP_MULTICAST_V4, CarpAdvertisement, encode_carp
from vrrpy.codec.carp_auth import OpenBSDAuth
from vrrpy.core import CarpRouter, State
from vrrpy.core.carp import carp_master_down
from vrrpy.sim import VirtualLAN

VIP = ["192.0.2.100"]
VHID = 7
DELAY = 0.0001


def build(advskews: list[int], **kw: Any) -> VirtualLAN:
    lan = VirtualLAN()
    for i, skew in enumerate(advskews, start=1):
        lan.add_carp_router(lan.add_node(f"r{i}"), VHID, VIP, advskew=skew, **kw)
    return lan


def takeovers(lan: VirtualLAN, node: str) -> list[float]:
    return [e.time for e in lan.transitions() if e.node == node and e.new is State.MASTER]


def holders(lan: VirtualLAN) -> list[str]:
    return [n.name for n in lan.nodes.values() if n.up and n.addresses]


def test_the_lowest_advskew_is_elected_and_holds_the_address() -> None:
    lan = build([100, 0, 50])
    lan.start()
    lan.run(10.0)
    assert lan.masters(VHID) == ["r2"] and holders(lan) == ["r2"]
    # Started together, the lowest advskew's master-down timer runs out first.
    assert takeovers(lan, "r2") == [pytest.approx(3.0)]
    assert all(isinstance(n.router(VHID), CarpRouter) for n in lan.nodes.values())


def test_crash_of_the_master_fails_over_after_the_backups_own_master_down_interval() -> None:
    lan = build([0, 50, 100])
    lan.start()
    lan.run(10.0)
    last_advert = 3.0 + 7 * 1.0  # r1 advertises every second from 3.0
    lan.crash("r1")
    lan.run(20.0)
    assert lan.masters(VHID) == ["r2"]
    assert takeovers(lan, "r2") == [pytest.approx(last_advert + DELAY + carp_master_down(1, 50))]


def test_graceful_stop_bows_out_and_a_backup_takes_over_at_once() -> None:
    lan = build([0, 50])
    lan.start()
    lan.run(10.0)
    lan.stop("r1")
    lan.run(10.5)
    assert lan.masters(VHID) == ["r2"]
    assert takeovers(lan, "r2") == [pytest.approx(10.0 + DELAY)]


def test_with_preemption_a_restarted_preferred_host_takes_over_at_once() -> None:
    lan = build([0, 50], preempt=True)
    lan.start()
    lan.run(10.0)
    lan.crash("r1")
    lan.run(20.0)
    lan.restart("r1")
    lan.run(30.0)
    assert lan.masters(VHID) == ["r1"] and holders(lan) == ["r1"]
    # It heard r2's first advert as a Backup and preempted it then, not at its timer.
    assert takeovers(lan, "r1")[-1] < 20.0 + carp_master_down(1, 0)


def test_without_preemption_the_current_master_stays() -> None:
    lan = build([0, 50])
    lan.start()
    lan.run(10.0)
    lan.crash("r1")
    lan.run(20.0)
    lan.restart("r1")
    lan.run(40.0)
    assert lan.masters(VHID) == ["r2"]


def test_demoting_the_master_hands_over_at_once_even_without_preemption() -> None:
    lan = build([0, 50])
    lan.start()
    lan.run(10.0)
    lan.at(10.25, lan.set_demote, "r1", VHID, 1)
    lan.run(12.0)
    assert lan.masters(VHID) == ["r2"]
    assert takeovers(lan, "r2") == [pytest.approx(10.25 + DELAY)]
    lan.at(15.0, lan.set_demote, "r1", VHID, 0)
    lan.run(25.0)  # r2 (demote 0 now as r1) keeps it: no preemption
    assert lan.masters(VHID) == ["r2"]


def test_two_masters_at_a_tie_settle_on_the_lower_address() -> None:
    lan = build([10, 10, 10])
    lan.partition(["r1"], ["r2"], ["r3"])
    lan.start()
    lan.run(5.0)
    assert sorted(lan.masters(VHID)) == ["r1", "r2", "r3"]
    lan.heal()
    lan.run(10.0)
    assert lan.masters(VHID) == ["r1"] and holders(lan) == ["r1"]
    lan.run(30.0)
    assert lan.masters(VHID) == ["r1"]


def test_counting_senders_with_replay_windows_elect_cleanly() -> None:
    lan = build([0, 50, 100], counter="increment", replay_window=True)
    lan.start()
    lan.run(20.0)
    assert lan.masters(VHID) == ["r1"]
    for node in lan.nodes.values():
        assert node.router(VHID).counters.drops == {}


def test_carp_and_vrrp_share_the_lan_and_each_drops_the_others_packets() -> None:
    lan = VirtualLAN()
    r1, r2, r3 = (lan.add_node(n) for n in ("r1", "r2", "r3"))
    # VRRP VRID 51 on every host; CARP VHID 7 on r1 and r2; VRRP VRID 7 on r3.
    for node, prio in ((r1, 100), (r2, 200), (r3, 150)):
        lan.add_router(node, 51, ["192.0.2.51"], priority=prio)
    lan.add_carp_router(r1, VHID, VIP, advskew=0)
    lan.add_carp_router(r2, VHID, VIP, advskew=100)
    lan.add_router(r3, VHID, ["192.0.2.7"], priority=100, version=2)
    lan.start()
    lan.run(10.0)
    assert lan.masters(51) == ["r2"]
    assert lan.masters(VHID) == ["r1", "r3"]  # two protocols that share ID 7
    # r3's VRRPv2 router drops r1's CARP adverts (7 "addresses" need 44 bytes) and r2
    # drops r3's VRRPv2 adverts for ID 7 (one address: too short for CARP).
    assert r3.router(VHID).counters.drops.get("truncated", 0) > 0
    assert r2.router(VHID).counters.drops.get("carp_truncated", 0) > 0
    assert "192.0.2.100" in {str(a) for a in r1.addresses}


def test_forged_carp_packets_change_nothing() -> None:
    lan = build([0, 50])
    lan.start()
    lan.run(10.0)
    forged = OpenBSDAuth(VHID, [ip_address(VIP[0])], "guess")
    advert = CarpAdvertisement(VHID, 0, 1, 1, forged.sign(1), demote=0)
    info = PacketInfo(lan.nodes["r1"].ipv4, CARP_MULTICAST_V4, 255)
    for t in range(20):
        lan.at(10.0 + t * 0.1, lan.inject, "r2", encode_carp(advert), info)
    lan.run(20.0)
    assert lan.masters(VHID) == ["r1"]
    assert lan.nodes["r2"].router(VHID).counters.drops == {"carp_bad_hmac": 20}


def test_ipv6_carp_runs_in_the_simulator() -> None:
    lan = VirtualLAN()
    for i, skew in enumerate((20, 10), start=1):
        lan.add_carp_router(lan.add_node(f"r{i}"), 3, ["2001:db8::100"], advskew=skew)
    lan.start()
    lan.run(10.0)
    assert lan.masters(3, family=6) == ["r2"]
