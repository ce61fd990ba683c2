"""CARP's state machine (vrrpy.core.carp), driven event by event with a fake clock."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from vrrpy.codec import PacketInfo, encode_vrrp
from vrrpy.codec.carp import CARP_MULTICAST_V4, CarpAdvertisement, decode_carp, encode_carp
from vrrpy.codec.carp_auth import CarpAuth, FreeBSDAuth, OpenBSDAuth, UcarpAuth, verify_carp
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4, Advertisement
from vrrpy.core import (
    AddAddresses,
    Announce,
    CarpConfig,
    CarpRouter,
    ConfigError,
    Event,
    RemoveAddresses,
    SendAdvertisement,
    State,
    SyncGroup,
    Transition,
)
from vrrpy.core.carp import TRANSITIONS, carp_interval_cs, carp_master_down

ME = IPv4Address("192.0.2.11")
PEER_LOW = IPv4Address("192.0.2.5")
PEER_HIGH = IPv4Address("192.0.2.20")
VIP = (IPv4Address("192.0.2.100"),)
VHID = 7
PASSWORD = "secret"
AUTH = OpenBSDAuth(VHID, VIP, PASSWORD)


def make(advskew: int = 0, **kw: Any) -> CarpRouter:
    kw.setdefault("vhid", VHID)
    kw.setdefault("primary_address", ME)
    kw.setdefault("virtual_addresses", VIP)
    kw.setdefault("password", PASSWORD)
    return CarpRouter(CarpConfig(advskew=advskew, **kw))


def backup(now: float = 0.0, **kw: Any) -> CarpRouter:
    r = make(**kw)
    r.startup(now)
    assert r.state is State.BACKUP
    return r


def master(now: float = 0.0, **kw: Any) -> CarpRouter:
    r = backup(now, **kw)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    return r


def advert(
    advskew: int = 0,
    advbase: int = 1,
    demote: int = 0,
    counter: int = 0x0123456789ABCDEF,
    auth: CarpAuth = AUTH,
    vhid: int = VHID,
) -> CarpAdvertisement:
    return CarpAdvertisement(vhid, advskew, advbase, counter, auth.sign(counter), demote)


def packet(adv: CarpAdvertisement, source: Any = PEER_HIGH, ttl: int = 255) -> tuple[bytes, Any]:
    return encode_carp(adv), PacketInfo(source, CARP_MULTICAST_V4, ttl)


def kinds(actions: list[Any]) -> list[type]:
    return [type(a) for a in actions]


def snapshot(r: CarpRouter) -> tuple[Any, ...]:
    return (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"vhid": 0}, "vhid"),
        ({"vhid": 256}, "vhid"),
        ({"advskew": 255}, "advskew"),
        ({"advskew": -1}, "advskew"),
        ({"advbase": 256}, "advbase"),
        ({"advbase": 0}, "advbase"),  # with advskew 0: an interval of 0
        ({"profile": "netbsd"}, "profile"),
        ({"profile": "ucarp", "password": ""}, "password"),
        ({"profile": "ucarp", "password": "x" * 20}, "password"),
        (
            {"profile": "ucarp", "virtual_addresses": (*VIP, IPv4Address("192.0.2.101"))},
            "virtual_addresses",
        ),
        ({"virtual_addresses": ()}, "virtual_addresses"),
        ({"virtual_addresses": (IPv6Address("2001:db8::1"),)}, "virtual_addresses"),
        ({"dead_ratio": 0}, "dead_ratio"),
        ({"tie_break": "coin"}, "tie_break"),
        ({"counter": "random"}, "counter"),
        ({"counter_start": -1}, "counter_start"),
        ({"counter_start": 2**64}, "counter_start"),
        ({"peers": (ME,)}, "peers"),
        ({"peers": (IPv6Address("fe80::1"),)}, "peers"),
        ({"key": b"k" * 21}, "key"),
        ({"primary_address": "192.0.2.11"}, "primary_address"),
    ],
)
def test_config_refuses_bad_values_naming_the_key(kw: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        make(**kw)
    assert info.value.key == key


def test_config_derives_interval_auth_and_vrid_alias() -> None:
    cfg = make(advskew=128, advbase=2).config
    assert cfg.interval_cs == pytest.approx(250.0)
    assert cfg.vrid == VHID and cfg.family == 4
    assert cfg.auth.profile == "openbsd"
    assert make(profile="ucarp").config.auth.profile == "ucarp"
    assert make(profile="freebsd").config.auth.profile == "freebsd"
    assert make(advbase=0, advskew=1).config.interval_cs == pytest.approx(100 / 256)


def test_timer_formulas_follow_ucarp_and_the_bsds() -> None:
    assert carp_interval_cs(1, 0) == 100.0
    assert carp_interval_cs(1, 128) == 150.0
    assert carp_master_down(1, 0) == 3.0
    assert carp_master_down(1, 100) == pytest.approx(3 + 100 / 256)
    assert carp_master_down(2, 10, dead_ratio=5) == pytest.approx(10 + 10 / 256)
    # advbase 0: the ratio applies to the skew (OpenBSD), not one interval (ucarp).
    assert carp_master_down(0, 10) == pytest.approx(30 / 256)


def test_every_state_event_pair_has_a_rule() -> None:
    assert set(TRANSITIONS) == {(s, e) for s in State for e in Event}


# ------------------------------------------------------------------ startup


def test_startup_goes_backup_with_our_master_down_timer() -> None:
    r = make(advskew=100)
    actions = r.startup(10.0)
    assert actions == [Transition(State.INITIALIZE, State.BACKUP, "startup", "startup")]
    assert r.get_timer() == pytest.approx(10.0 + 3 + 100 / 256)
    assert r.master_adver_interval_cs == pytest.approx(100 + 100 * 100 / 256)


def test_startup_with_a_fault_held_goes_to_fault_without_a_timer() -> None:
    r = make()
    assert r.fault("link down", 0.0) == []
    assert r.faults == ("link down",)
    actions = r.startup(1.0)
    assert kinds(actions) == [Transition] and actions[0].new is State.FAULT
    assert r.get_timer() is None


def test_master_down_makes_master_in_the_vrrp_order_with_a_signed_advert() -> None:
    r = backup(counter_start=42)
    actions = r.handle_timer(3.0)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    sent = actions[0].advert
    assert isinstance(sent, CarpAdvertisement)
    assert (sent.vhid, sent.advbase, sent.advskew, sent.demote, sent.counter) == (VHID, 1, 0, 0, 42)
    # Signed already: the runtime only adds the checksum, and any peer profile verifies it.
    wire = encode_carp(sent)
    verify_carp(decode_carp(wire, PacketInfo(ME, CARP_MULTICAST_V4, 255)), AUTH)
    verify_carp(sent, UcarpAuth(VHID, VIP[0], PASSWORD))
    verify_carp(sent, FreeBSDAuth(VHID, VIP, PASSWORD))
    assert actions[1] == AddAddresses(VIP) and actions[2] == Announce(VIP)
    assert r.get_timer() == 4.0 and r.master_address == ME


def test_handle_timer_early_or_without_a_timer_does_nothing() -> None:
    r = backup()
    assert r.handle_timer(2.9) == [] and r.state is State.BACKUP
    assert make().handle_timer(100.0) == []


# ------------------------------------------------------------------- Master


def test_master_advertises_every_interval_reusing_one_advert_object() -> None:
    r = master(advskew=128)
    first = r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    deadline = r.get_timer()
    second = r.handle_timer(deadline)  # type: ignore[arg-type]
    assert kinds(first) == kinds(second) == [SendAdvertisement]
    assert first[0] is second[0]  # the runtime encodes it once
    assert r.get_timer() == pytest.approx(deadline + 1.5)  # type: ignore[operator]
    assert r.counters.adverts_sent == 3


def test_master_cadence_restarts_from_now_after_a_stall() -> None:
    r = master()
    r.handle_timer(50.0)
    assert r.get_timer() == 51.0


def test_increment_policy_counts_up_and_wraps() -> None:
    r = master(counter="increment", counter_start=2**64 - 2)
    sent = [r.advertisement()]
    for _ in range(3):
        (action,) = r.handle_timer(r.get_timer())  # type: ignore[arg-type]
        assert isinstance(action, SendAdvertisement)
        sent.append(action.advert)  # type: ignore[arg-type]
    # The first advert (at takeover) carried 2**64 - 2; the next ones 2**64 - 1, 0, 1.
    assert [a.counter for a in sent[1:]] == [2**64 - 1, 0, 1]
    for adv in sent[1:]:
        verify_carp(adv, AUTH)
    assert len({id(a) for a in sent[1:]}) == 3


def test_master_yields_to_a_more_frequent_advert_with_one_last_advert() -> None:
    r = master(advskew=100, now=0.0)
    actions = r.receive_packet(*packet(advert(advskew=50)), 5.0)
    assert kinds(actions) == [SendAdvertisement, RemoveAddresses, Transition]
    assert actions[0].advert.advskew == 100  # ours: the better Master hears a weaker one
    assert r.state is State.BACKUP and r.master_address == PEER_HIGH
    assert r.get_timer() == pytest.approx(5.0 + 3 + 100 / 256)
    assert r.master_adver_interval_cs == pytest.approx(100 + 50 * 100 / 256)


def test_master_yields_silently_without_yield_advert() -> None:
    r = master(advskew=100, yield_advert=False)
    actions = r.receive_packet(*packet(advert(advskew=50)), 5.0)
    assert kinds(actions) == [RemoveAddresses, Transition]


def test_master_asserts_once_per_interval_against_a_weaker_master() -> None:
    r = master(advskew=10)
    actions = r.receive_packet(*packet(advert(advskew=20)), 5.0)
    assert kinds(actions) == [SendAdvertisement, Announce]
    assert r.split_brain(5.0) and r.counters.split_brains == 1
    assert r.counters.lower_priority_discarded == 1
    assert r.receive_packet(*packet(advert(advskew=20)), 5.5) == []  # rate-limited
    assert r.receive_packet(*packet(advert(advskew=20)), 6.1) != []
    assert r.counters.split_brains == 1  # one episode
    # The episode lasts while the other's adverts keep coming: dead_ratio of its intervals.
    assert r.split_brain(6.1 + 3 * (1 + 20 / 256) - 0.01)
    assert not r.split_brain(6.1 + 3 * (1 + 20 / 256) + 0.01)


def test_master_hearing_a_bow_out_asserts_itself_and_never_yields() -> None:
    r = master(advskew=10)
    r.set_demote(5, 1.0)
    actions = r.receive_packet(*packet(advert(advskew=255, advbase=255, demote=0)), 2.0)
    assert r.state is State.MASTER and SendAdvertisement in kinds(actions)
    assert r.counters.priority_zero_received == 1 and r.counters.split_brains == 0


@pytest.mark.parametrize(
    ("tie_break", "peer", "yields"),
    [
        ("ucarp", PEER_LOW, True),
        ("ucarp", PEER_HIGH, False),
        ("numeric", PEER_LOW, True),
        ("numeric", PEER_HIGH, False),
        ("yield", PEER_LOW, True),
        ("yield", PEER_HIGH, True),
    ],
)
def test_a_tie_between_masters_is_broken_as_configured(
    tie_break: str, peer: IPv4Address, yields: bool
) -> None:
    r = master(advskew=10, tie_break=tie_break)
    r.receive_packet(*packet(advert(advskew=10), source=peer), 5.0)
    assert (r.state is State.BACKUP) is yields
    assert r.counters.anomalies == {"advskew_tie": 1}


def test_ucarp_tie_break_compares_addresses_as_ucarp_does_on_little_endian_hosts() -> None:
    me, peer = IPv4Address("10.0.1.5"), IPv4Address("10.0.2.3")
    # ucarp compares s_addr as a host integer: the last byte weighs most on x86, so
    # 10.0.2.3 is "lower" than 10.0.1.5 there, though higher by value.
    r = master(primary_address=me, tie_break="ucarp")
    r.receive_packet(*packet(advert(), source=peer), 5.0)
    assert r.state is State.BACKUP
    r = master(primary_address=me, tie_break="numeric")
    r.receive_packet(*packet(advert(), source=peer), 5.0)
    assert r.state is State.MASTER


def test_master_compares_the_demote_count_before_the_interval() -> None:
    # A less demoted advert wins even when slower; a more demoted one loses even when faster.
    r = master(advskew=10)
    r.set_demote(2, 1.0)
    r.receive_packet(*packet(advert(advskew=200, demote=1)), 2.0)
    assert r.state is State.BACKUP
    r = master(advskew=100, demote_advskew=False)
    r.receive_packet(*packet(advert(advskew=0, demote=1)), 2.0)
    assert r.state is State.MASTER


# ------------------------------------------------------------------- Backup


def test_backup_restarts_its_own_master_down_timer_on_each_advert() -> None:
    r = backup(advskew=100)
    assert r.receive_packet(*packet(advert(advskew=20, advbase=2)), 2.0) == []
    # Our master-down interval, whatever the Master's interval (all three do so).
    assert r.get_timer() == pytest.approx(2.0 + 3 + 100 / 256)
    assert r.master_address == PEER_HIGH
    assert r.master_adver_interval_cs == pytest.approx(200 + 20 * 100 / 256)
    data, info = packet(advert(advskew=20, advbase=2))
    r.receive_packet(data, info, 4.0)
    r.receive_packet(data, info, 6.0)  # the repeat path
    assert r.get_timer() == pytest.approx(6.0 + 3 + 100 / 256)
    assert r.counters.adverts_received == 3


def test_backup_without_preempt_keeps_a_slower_master() -> None:
    r = backup(advskew=10)
    assert r.receive_packet(*packet(advert(advskew=200)), 1.0) == []
    assert r.state is State.BACKUP


def test_backup_with_preempt_takes_over_from_a_slower_master_at_once() -> None:
    r = backup(advskew=10, preempt=True)
    actions = r.receive_packet(*packet(advert(advskew=200)), 1.0)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    assert "preempting" in actions[-1].reason
    # Never at a tie, nor against a faster one.
    for skew in (10, 5):
        r = backup(advskew=10, preempt=True)
        assert r.receive_packet(*packet(advert(advskew=skew)), 1.0) == []


def test_backup_with_preempt_does_not_preempt_a_less_demoted_master() -> None:
    r = backup(advskew=10, preempt=True)
    r.set_demote(1, 0.5)
    assert r.receive_packet(*packet(advert(advskew=200, demote=0)), 1.0) == []


def test_backup_takes_over_from_a_more_demoted_master_even_without_preempt() -> None:
    r = backup(advskew=100)
    actions = r.receive_packet(*packet(advert(advskew=0, demote=1)), 1.0)
    assert r.state is State.MASTER and "demoted" in actions[-1].reason
    assert actions[-1].code == "preempt"


def test_backup_takes_over_from_a_master_slower_than_its_master_down_interval() -> None:
    r = backup()  # master down 3 s
    actions = r.receive_packet(*packet(advert(advbase=4)), 1.0)
    assert r.state is State.MASTER and "slower than our master-down" in actions[-1].reason
    assert actions[-1].code == "preempt"


def test_backup_takes_over_at_once_on_a_bow_out_whatever_its_advbase() -> None:
    for advbase in (1, 100):  # OpenBSD's slower-than-3x rule misses the second
        r = backup(advbase=advbase)
        actions = r.receive_packet(*packet(advert(advskew=255, advbase=255)), 1.0)
        assert r.state is State.MASTER and "bowed out" in actions[-1].reason
        assert actions[-1].code == "master_resigned"
        assert r.counters.priority_zero_received == 1


# -------------------------------------------------------- demote, advskew


def test_set_priority_sets_the_advskew_carried_by_the_next_advert() -> None:
    r = master(advskew=10)
    assert r.set_priority(50, 0.5) == []
    assert r.priority == 50 and r.interval_cs == pytest.approx(100 + 50 * 100 / 256)
    due = r.get_timer()
    (action,) = r.handle_timer(due)  # type: ignore[arg-type]
    assert action.advert.advskew == 50  # type: ignore[union-attr]
    assert r.get_timer() == pytest.approx(due + 1 + 50 / 256)  # type: ignore[operator]
    for bad in (255, -1, True, 1.5):
        with pytest.raises(ValueError):
            r.set_priority(bad, 1.0)  # type: ignore[arg-type]


def test_set_demote_on_a_master_advertises_at_once_in_byte_4_and_the_advskew() -> None:
    r = master(advskew=10)
    actions = r.set_demote(3, 0.5)
    assert kinds(actions) == [SendAdvertisement]
    sent = actions[0].advert
    assert (sent.demote, sent.advskew) == (3, 13)
    assert r.priority == 13 and r.get_timer() == pytest.approx(0.5 + 1 + 13 / 256)
    assert r.set_demote(3, 0.6) == []  # unchanged: nothing
    # Capped: byte 4 at 255, the advskew at 240 (FreeBSD's CARP_MAXSKEW).
    sent = r.set_demote(1000, 1.0)[0].advert  # type: ignore[union-attr]
    assert (sent.demote, sent.advskew) == (255, 240)
    assert r.set_demote(0, 2.0)[0].advert.advskew == 10  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        r.set_demote(-1, 3.0)


def test_demote_never_lowers_a_high_advskew_and_can_stay_out_of_it() -> None:
    r = master(advskew=250)
    r.set_demote(1, 0.5)
    assert r.priority == 250
    r = master(advskew=10, demote_advskew=False)
    sent = r.set_demote(4, 0.5)[0].advert  # type: ignore[union-attr]
    assert (sent.demote, sent.advskew) == (4, 10)


def test_set_demote_on_a_backup_sends_nothing() -> None:
    r = backup()
    assert r.set_demote(2, 1.0) == [] and r.demote == 2 and r.priority == 2


# ------------------------------------------------- shutdown, fault, groups


def test_master_shutdown_bows_out_then_withdraws() -> None:
    r = master()
    actions = r.shutdown(1.0)
    assert kinds(actions) == [SendAdvertisement, RemoveAddresses, Transition]
    bow = actions[0].advert
    assert (bow.advbase, bow.advskew) == (255, 255)
    verify_carp(bow, AUTH)
    assert r.state is State.INITIALIZE and r.get_timer() is None
    assert r.counters.priority_zero_sent == 1


def test_backup_and_fault_shutdowns_send_nothing() -> None:
    r = backup()
    assert kinds(r.shutdown(1.0)) == [Transition] and r.get_timer() is None
    r = backup()
    r.fault("x", 1.0)
    assert kinds(r.shutdown(2.0)) == [Transition] and r.faults == ("x",)


def test_master_fault_bows_out_and_recovery_returns_to_backup() -> None:
    r = master()
    actions = r.fault("link eth0 down", 1.0)
    assert kinds(actions) == [SendAdvertisement, RemoveAddresses, Transition]
    assert actions[0].advert.advbase == 255 and r.state is State.FAULT
    assert r.get_timer() is None
    assert r.fault("ping lost", 1.5) == []
    before = snapshot(r)
    assert r.receive_packet(*packet(advert()), 2.0) == []
    assert snapshot(r) == before and r.counters.drops == {"fault": 1}
    assert r.recover("link eth0 down", 3.0) == []
    actions = r.recover("ping lost", 4.0)
    assert actions == [
        Transition(State.FAULT, State.BACKUP, "fault cleared: ping lost", "fault_cleared")
    ]
    assert r.get_timer() == 7.0


def test_force_master_force_backup_and_hold_backup() -> None:
    r = backup()
    r.hold_backup("wait", 2.0)
    assert r.get_timer() == 5.0 and r.state is State.BACKUP
    actions = r.force_master("group", 2.5)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    actions = r.force_backup("group", 3.0)
    assert kinds(actions) == [RemoveAddresses, Transition]  # no bow-out
    assert r.get_timer() == 6.0
    assert r.force_backup("again", 3.0) == []


def test_a_sync_group_drives_carp_routers_through_the_same_interface() -> None:
    v4 = make(name="a")
    other = make(name="b", vhid=8, virtual_addresses=(IPv4Address("192.0.2.101"),))
    group = SyncGroup("gw", {"a": v4, "b": other})
    group.startup(0.0)
    steps = group.handle_timer("a", 3.0)
    assert [name for name, _ in steps] == ["a", "b"]
    assert v4.state is other.state is State.MASTER


def test_advance_advert_only_brings_a_masters_advert_earlier() -> None:
    r = backup()
    assert not r.advance_advert(1.0, 0.5)
    r = master()
    assert r.get_timer() == 4.0
    assert not r.advance_advert(5.0, 3.5)
    assert r.advance_advert(3.0, 3.5) and r.get_timer() == 3.5


# ---------------------------------------------------------------- bad input


def vrrp_v2_packet(count: int) -> tuple[bytes, PacketInfo]:
    addrs = tuple(IPv4Address(f"192.0.2.{100 + i}") for i in range(count))
    adv = Advertisement(2, VHID, 100, 100, addrs)
    data = encode_vrrp(adv, PEER_HIGH, VRRP_MULTICAST_V4)
    return data, PacketInfo(PEER_HIGH, VRRP_MULTICAST_V4, 255)


def bad_inputs() -> list[tuple[str, bytes, PacketInfo]]:
    good, info = packet(advert())
    flipped = bytearray(good)
    flipped[2] ^= 0x01
    v2_5 = vrrp_v2_packet(5)
    v2_1 = vrrp_v2_packet(1)
    other_key = OpenBSDAuth(VHID, VIP, "not-the-password")
    other_vhid = OpenBSDAuth(9, VIP, PASSWORD)
    v6 = IPv6Address("fe80::20")
    return [
        ("carp_truncated", b"\x21\x07", info),
        ("carp_bad_checksum", bytes(flipped), info),
        ("carp_bad_ttl", good, info._replace(ttl=64)),
        ("carp_bad_authlen", v2_5[0], v2_5[1]),  # a VRRPv2 packet of CARP's length
        ("carp_truncated", v2_1[0], v2_1[1]),
        ("carp_bad_hmac", packet(advert(auth=other_key))[0], info),
        ("vhid_mismatch", packet(advert(auth=other_vhid, vhid=9))[0], info),
        ("own_advert", good, info._replace(source=ME)),
        ("family_mismatch", good, PacketInfo(v6, IPv6Address("ff02::12"), 255)),
    ]


@pytest.mark.parametrize("state", ["backup", "master"])
def test_every_bad_packet_is_a_counted_drop_that_changes_neither_state_nor_timer(
    state: str,
) -> None:
    for reason, data, info in bad_inputs():
        r = backup(advskew=50) if state == "backup" else master(advskew=50)
        before = snapshot(r)
        assert r.receive_packet(data, info, 1.0) == [], reason
        assert snapshot(r) == before, reason
        assert r.counters.drops == {reason: 1}, (reason, r.counters.drops)


def test_a_stranger_is_dropped_when_unicast_peers_are_configured() -> None:
    r = backup(peers=(PEER_LOW,))
    before = snapshot(r)
    assert r.receive_packet(*packet(advert(), source=PEER_HIGH), 1.0) == []
    assert snapshot(r) == before and r.counters.drops == {"not_a_peer": 1}
    r.receive_packet(*packet(advert(), source=PEER_LOW), 1.0)
    assert r.master_address == PEER_LOW


def test_not_running_drops_before_any_check() -> None:
    r = make()
    assert r.receive_packet(*packet(advert()), 1.0) == []
    assert r.counters.drops == {"not_running": 1}
    assert r.receive_packet(b"junk", PacketInfo(PEER_HIGH, CARP_MULTICAST_V4, 255), 1.0) == []
    assert r.counters.drops == {"not_running": 1, "carp_truncated": 1}


def test_replay_window_refuses_a_counting_peers_replay_and_keeps_state() -> None:
    r = backup(advskew=50, replay_window=True)
    for i, counter in enumerate((100, 101, 102)):
        r.receive_packet(*packet(advert(counter=counter)), 1.0 + i)
    deadline = r.get_timer()
    assert r.receive_packet(*packet(advert(counter=101)), 3.5) == []
    assert r.get_timer() == deadline and r.counters.drops == {"carp_replay": 1}
    # A constant counter (OpenBSD's cookie) from a peer never seen counting is fine.
    r = backup(replay_window=True)
    data, info = packet(advert(counter=7))
    for t in (1.0, 2.0, 3.0):
        r.receive_packet(data, info, t)
    assert r.counters.drops == {} and r.get_timer() == 6.0


def test_receive_advert_runs_the_same_checks_as_receive_packet() -> None:
    r = backup()
    other = OpenBSDAuth(VHID, VIP, "nope")
    assert r.receive_advert(advert(auth=other), PEER_HIGH, 1.0) == []
    assert r.counters.drops == {"carp_bad_hmac": 1}
    r.receive_advert(advert(), PEER_HIGH, 1.0)
    assert r.master_address == PEER_HIGH
