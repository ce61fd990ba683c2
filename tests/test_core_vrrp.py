"""The RFC 9568 / RFC 3768 state machine, driven event by event with a fake clock."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrpy.codec import Advertisement, ChecksumForm, PacketInfo, encode_vrrp
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4
from vrrpy.core import (
    AddAddresses,
    Announce,
    ConfigError,
    RemoveAddresses,
    RouterConfig,
    SendAdvertisement,
    State,
    Transition,
    VirtualRouter,
    master_down_interval,
    skew_time,
)

ME = IPv4Address("192.0.2.11")
PEER_LOW = IPv4Address("192.0.2.5")
PEER_HIGH = IPv4Address("192.0.2.20")
VIP = (IPv4Address("192.0.2.100"),)


def make(priority: int = 100, **kw: object) -> VirtualRouter:
    kw.setdefault("vrid", 51)
    kw.setdefault("primary_address", ME)
    kw.setdefault("virtual_addresses", VIP)
    return VirtualRouter(RouterConfig(priority=priority, **kw))  # type: ignore[arg-type]


def advert(
    priority: int,
    interval_cs: int = 100,
    vrid: int = 51,
    version: int = 3,
    addresses: tuple = VIP,
    **kw: object,
) -> Advertisement:  # type: ignore[type-arg]
    return Advertisement(version, vrid, priority, interval_cs, addresses, **kw)  # type: ignore[arg-type]


def kinds(actions: list) -> list[type]:  # type: ignore[type-arg]
    return [type(a) for a in actions]


def master(now: float = 0.0, **kw: object) -> VirtualRouter:
    r = make(**kw)  # type: ignore[arg-type]
    r.startup(now)
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    return r


# ------------------------------------------------------------------ timers


def test_timer_formulas_match_rfc_9568_and_the_shared_reference_figures() -> None:
    assert skew_time(100, 100) == pytest.approx(0.609375)
    assert master_down_interval(100, 100) == pytest.approx(3.609375)
    assert master_down_interval(100, 10) == pytest.approx(0.3609375)
    assert master_down_interval(100, 1) == pytest.approx(0.03609375)
    # VRRPv2: the skew is (256 - priority) / 256 seconds, whatever the interval.
    assert skew_time(100, 300, version=2) == pytest.approx(156 / 256)
    assert master_down_interval(100, 300, version=2) == pytest.approx(9 + 156 / 256)


# ---------------------------------------------------------------- startup


def test_startup_non_owner_goes_backup_with_master_down_timer() -> None:
    r = make(priority=100)
    actions = r.startup(10.0)
    assert actions == [Transition(State.INITIALIZE, State.BACKUP, "startup", "startup")]
    assert r.get_timer() == pytest.approx(10.0 + 3.609375)


def test_startup_owner_goes_master_at_once_and_sends_announces() -> None:
    r = make(priority=255)
    actions = r.startup(0.0)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    assert actions[0].advert.priority == 255  # type: ignore[union-attr]
    assert r.state is State.MASTER
    assert r.get_timer() == pytest.approx(1.0)


def test_startup_twice_is_ignored() -> None:
    r = make()
    r.startup(0.0)
    assert r.startup(1.0) == []


# ----------------------------------------------------------------- backup


def test_backup_becomes_master_when_master_down_timer_fires() -> None:
    r = make(priority=100)
    r.startup(0.0)
    assert r.handle_timer(3.0) == []  # early call: nothing
    actions = r.handle_timer(3.609375)
    assert kinds(actions) == [SendAdvertisement, AddAddresses, Announce, Transition]
    assert actions[1] == AddAddresses(VIP)
    assert r.state is State.MASTER
    assert r.counters.became_master == 1


def test_backup_hearing_higher_priority_resets_timer_and_learns_interval() -> None:
    r = make(priority=100)
    r.startup(0.0)
    r.receive_advert(advert(200, interval_cs=50), PEER_HIGH, 2.0)
    assert r.master_adver_interval_cs == 50
    assert r.get_timer() == pytest.approx(2.0 + 1.5 + 156 * 50 / 25600)
    assert r.master_address == PEER_HIGH
    assert r.counters.anomalies == {"interval_mismatch": 1}


def test_backup_with_preempt_ignores_lower_priority_master_and_takes_over() -> None:
    r = make(priority=150)
    r.startup(0.0)
    deadline = r.get_timer()
    r.receive_advert(advert(100), PEER_HIGH, 1.0)
    assert r.get_timer() == deadline
    assert r.counters.lower_priority_discarded == 1
    assert r.handle_timer(deadline)[-1].new is State.MASTER  # type: ignore[union-attr]


def test_backup_without_preempt_accepts_lower_priority_master() -> None:
    r = make(priority=150, preempt=False)
    r.startup(0.0)
    r.receive_advert(advert(100), PEER_HIGH, 1.0)
    assert r.get_timer() == pytest.approx(1.0 + master_down_interval(150, 100))


def test_preempt_delay_holds_preemption_after_startup_only() -> None:
    r = make(priority=150, preempt_delay=10.0)
    r.startup(0.0)
    r.receive_advert(advert(100), PEER_HIGH, 5.0)  # inside the delay: accepted
    assert r.get_timer() == pytest.approx(5.0 + master_down_interval(150, 100))
    r.receive_advert(advert(100), PEER_HIGH, 10.5)  # after it: discarded
    assert r.get_timer() == pytest.approx(5.0 + master_down_interval(150, 100))


def test_backup_equal_priority_resets_timer() -> None:
    r = make(priority=100)
    r.startup(0.0)
    r.receive_advert(advert(100), PEER_LOW, 1.0)
    assert r.get_timer() == pytest.approx(1.0 + 3.609375)


def test_backup_priority_zero_sets_timer_to_skew_time() -> None:
    r = make(priority=100)
    r.startup(0.0)
    r.receive_advert(advert(200), PEER_HIGH, 1.0)
    r.receive_advert(advert(0), PEER_HIGH, 2.0)
    assert r.get_timer() == pytest.approx(2.0 + 0.609375)
    assert r.counters.priority_zero_received == 1
    actions = r.handle_timer(2.609375)
    assert "resigned" in actions[-1].reason  # type: ignore[union-attr]


def test_backup_shutdown_goes_initialize_silently() -> None:
    r = make()
    r.startup(0.0)
    assert r.shutdown(1.0) == [Transition(State.BACKUP, State.INITIALIZE, "shutdown", "shutdown")]
    assert r.get_timer() is None


# ----------------------------------------------------------------- master


def test_master_sends_on_schedule_without_drift() -> None:
    r = master(priority=100)
    t0 = r.get_timer()
    assert t0 is not None
    actions = r.handle_timer(t0 + 0.004)  # woke 4 ms late
    assert kinds(actions) == [SendAdvertisement]
    assert r.get_timer() == pytest.approx(t0 + 1.0)  # cadence kept


def test_master_after_long_stall_restarts_cadence_from_now() -> None:
    r = master(priority=100)
    t0 = r.get_timer()
    assert t0 is not None
    r.handle_timer(t0 + 5.0)
    assert r.get_timer() == pytest.approx(t0 + 6.0)


def test_advance_advert_only_brings_a_masters_next_advert_forward() -> None:
    r = master(priority=100)
    t0 = r.get_timer()
    assert t0 is not None
    assert not r.advance_advert(t0 + 0.1, t0 - 0.5)  # later: refused
    assert r.get_timer() == t0
    assert r.advance_advert(t0 - 0.25, t0 - 0.5)
    assert r.get_timer() == t0 - 0.25
    assert kinds(r.handle_timer(t0 - 0.25)) == [SendAdvertisement]
    assert r.get_timer() == pytest.approx(t0 + 0.75)  # cadence continues from there
    assert r.advance_advert(0.0, t0 + 0.5)  # never before now
    assert r.get_timer() == t0 + 0.5
    backup = make()
    backup.startup(0.0)
    deadline = backup.get_timer()
    assert not backup.advance_advert(0.1, 0.0)  # a Backup's Master_Down_Timer is not touched
    assert backup.get_timer() == deadline


def test_master_steps_down_for_higher_priority() -> None:
    r = master(priority=100)
    actions = r.receive_advert(advert(200, interval_cs=200), PEER_LOW, 10.0)
    assert kinds(actions) == [RemoveAddresses, Transition]
    assert r.state is State.BACKUP
    assert r.master_adver_interval_cs == 200
    assert r.get_timer() == pytest.approx(10.0 + 6.0 + 156 * 200 / 25600)
    assert r.counters.released_master == 1


def test_master_tie_break_on_higher_primary_address() -> None:
    r = master(priority=100)
    assert r.receive_advert(advert(100), PEER_LOW, 10.0) == [
        SendAdvertisement(r.advertisement()),
        Announce(VIP),
    ]
    assert r.state is State.MASTER
    actions = r.receive_advert(advert(100), PEER_HIGH, 10.5)
    assert "higher address" in actions[-1].reason  # type: ignore[union-attr]
    assert r.state is State.BACKUP


@pytest.mark.parametrize("version", [3, 2])
def test_master_answers_lower_priority_with_an_advert_and_a_re_announce_in_both_versions(
    version: int,
) -> None:
    r = master(priority=200, version=version)
    deadline = r.get_timer()
    actions = r.receive_advert(advert(100, version=version), PEER_HIGH, 5.0)
    assert actions == [SendAdvertisement(r.advertisement()), Announce(VIP)]
    assert r.get_timer() == deadline  # the Adver_Timer keeps its cadence
    assert r.state is State.MASTER
    assert r.counters.lower_priority_discarded == 1


def test_master_answers_priority_zero_at_once_and_resets_adver_timer() -> None:
    r = master(priority=100)
    actions = r.receive_advert(advert(0), PEER_HIGH, 5.5)
    assert kinds(actions) == [SendAdvertisement]
    assert r.get_timer() == pytest.approx(6.5)


def test_master_shutdown_sends_priority_zero_and_removes_addresses() -> None:
    r = master(priority=100)
    actions = r.shutdown(7.0)
    assert kinds(actions) == [SendAdvertisement, RemoveAddresses, Transition]
    assert actions[0].advert.priority == 0  # type: ignore[union-attr]
    assert r.counters.priority_zero_sent == 1
    assert r.state is State.INITIALIZE and r.get_timer() is None


def test_owner_processes_other_owner_adverts_per_erratum_8298() -> None:
    r = make(priority=255)
    r.startup(0.0)
    actions = r.receive_advert(advert(255), PEER_HIGH, 1.0)
    assert r.state is State.BACKUP
    assert kinds(actions) == [RemoveAddresses, Transition]
    assert r.counters.anomalies["owner_conflict"] == 1


# --------------------------------------------------------------- priority


def test_priority_change_is_carried_by_the_next_advert() -> None:
    r = master(priority=100)
    assert r.set_priority(50, 1.5) == []
    actions = r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert actions[0].advert.priority == 50  # type: ignore[union-attr]


def test_priority_raise_lets_a_backup_preempt() -> None:
    r = make(priority=100)
    r.startup(0.0)
    r.receive_advert(advert(150), PEER_HIGH, 1.0)
    r.set_priority(200, 1.5)
    deadline = r.get_timer()
    r.receive_advert(advert(150), PEER_HIGH, 2.0)  # now weaker than us: discarded
    assert r.get_timer() == deadline
    assert r.handle_timer(deadline)[-1].new is State.MASTER  # type: ignore[union-attr,arg-type]


@pytest.mark.parametrize("bad", [0, 255, 256, -1, "100"])
def test_priority_change_rejects_out_of_range(bad: object) -> None:
    with pytest.raises(ValueError):
        make().set_priority(bad, 0.0)  # type: ignore[arg-type]


# ------------------------------------------------------ receive validation


def _unchanged(r: VirtualRouter, action: object) -> None:
    before = (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs)
    assert action == []
    assert (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs) == before


@pytest.mark.parametrize(
    ("adv", "reason"),
    [
        (advert(200, vrid=52), "vrid_mismatch"),
        (advert(200, version=2), "version_mismatch"),
        (advert(200, addresses=(IPv6Address("2001:db8::1"),)), "family_mismatch"),
    ],
)
def test_foreign_adverts_are_dropped_and_counted(adv: Advertisement, reason: str) -> None:
    r = make()
    r.startup(0.0)
    _unchanged(r, r.receive_advert(adv, PEER_HIGH, 1.0))
    assert r.counters.drops == {reason: 1}


def test_own_advert_is_dropped() -> None:
    r = master()
    _unchanged(r, r.receive_advert(advert(200), ME, 1.0))
    assert r.counters.drops == {"own_advert": 1}


def test_adverts_before_startup_are_dropped() -> None:
    r = make()
    assert r.receive_advert(advert(200), PEER_HIGH, 1.0) == []
    assert r.counters.drops == {"not_running": 1}


def test_v2_interval_mismatch_is_dropped_per_rfc_3768() -> None:
    r = make(version=2, advert_interval=1)
    r.startup(0.0)
    _unchanged(r, r.receive_advert(advert(200, interval_cs=200, version=2), PEER_HIGH, 1.0))
    assert r.counters.drops == {"interval_mismatch": 1}


def test_v2_password_checked() -> None:
    r = make(version=2, auth_pass="secret")
    r.startup(0.0)
    good = advert(200, version=2, auth_type=1, auth_data=b"secret\0\0")
    wrong = advert(200, version=2, auth_type=1, auth_data=b"guess\0\0\0")
    none = advert(200, version=2)
    _unchanged(r, r.receive_advert(wrong, PEER_HIGH, 1.0))
    _unchanged(r, r.receive_advert(none, PEER_HIGH, 1.0))
    assert r.counters.drops == {"auth_failure": 1, "auth_type_mismatch": 1}
    r.receive_advert(good, PEER_HIGH, 1.0)
    assert r.master_address == PEER_HIGH


def test_address_list_mismatch_v2_drops_unless_owner_v3_processes() -> None:
    other = (IPv4Address("192.0.2.200"),)
    v2 = make(version=2)
    v2.startup(0.0)
    _unchanged(v2, v2.receive_advert(advert(200, version=2, addresses=other), PEER_HIGH, 1.0))
    assert v2.counters.drops == {"address_list_mismatch": 1}
    v2.receive_advert(advert(255, version=2, addresses=other), PEER_HIGH, 1.0)
    assert v2.master_address == PEER_HIGH
    v3 = make()
    v3.startup(0.0)
    v3.receive_advert(advert(200, addresses=other), PEER_HIGH, 1.0)
    assert v3.master_address == PEER_HIGH
    assert v3.counters.anomalies == {"address_list_mismatch": 1}


def test_same_addresses_in_another_order_are_not_a_mismatch() -> None:
    vips = (IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101"))
    r = make(virtual_addresses=vips)
    r.startup(0.0)
    r.receive_advert(advert(200, addresses=vips[::-1]), PEER_HIGH, 1.0)
    assert r.counters.anomalies == {}


def test_malformed_bytes_are_counted_by_reason_and_change_nothing() -> None:
    r = make()
    r.startup(0.0)
    r.receive_advert(advert(200), PEER_HIGH, 1.0)
    good = encode_vrrp(advert(250), PEER_HIGH, VRRP_MULTICAST_V4)
    info = PacketInfo(PEER_HIGH, VRRP_MULTICAST_V4, 255)
    for _ in range(1000):
        _unchanged(r, r.receive_packet(good[:-1], info, 2.0))
        _unchanged(r, r.receive_packet(good[:6] + b"\0\0" + good[8:], info, 2.0))
        _unchanged(r, r.receive_packet(good, info._replace(ttl=64), 2.0))
    assert r.counters.drops == {"truncated": 1000, "bad_checksum": 1000, "bad_ttl": 1000}
    assert r.counters.adverts_received == 1


def test_a_repeated_packet_is_decoded_once_and_checked_every_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import vrrpy.core.vrrp as core

    calls = []
    real = core.decode_vrrp
    monkeypatch.setattr(core, "decode_vrrp", lambda d, i: calls.append(1) or real(d, i))
    r = make()
    r.startup(0.0)
    good = encode_vrrp(advert(250), PEER_HIGH, VRRP_MULTICAST_V4)
    info = PacketInfo(PEER_HIGH, VRRP_MULTICAST_V4, 255)
    for i in range(100):
        r.receive_packet(good, info, 1.0 + i * 0.1)
    assert len(calls) == 1
    assert r.counters.adverts_received == 100
    assert r.get_timer() == pytest.approx(10.9 + r.master_down_interval)
    # The same bytes with another TTL are another packet: decoded, and dropped.
    _unchanged(r, r.receive_packet(good, info._replace(ttl=64), 20.0))
    assert r.counters.drops == {"bad_ttl": 1}
    r.shutdown(21.0)
    r.receive_packet(good, info, 22.0)  # the checks after decoding still run
    assert r.counters.drops == {"bad_ttl": 1, "not_running": 1}


def test_a_repeated_advert_counts_its_anomalies_and_drops_every_time() -> None:
    r = make()
    r.startup(0.0)
    other = (IPv4Address("192.0.2.200"),)
    weird = advert(250, interval_cs=200, addresses=other)
    for i in range(5):
        r.receive_advert(weird, PEER_HIGH, 1.0 + i)
    assert r.counters.anomalies == {"interval_mismatch": 5, "address_list_mismatch": 5}
    assert r.counters.adverts_received == 5
    v2 = make(version=2, auth_pass="secret")
    v2.startup(0.0)
    forged = advert(250, version=2, auth_type=1, auth_data=b"guess\0\0\0")
    for i in range(5):
        _unchanged(v2, v2.receive_advert(forged, PEER_HIGH, 1.0 + i))
    assert v2.counters.drops == {"auth_failure": 5}


def test_drops_are_logged_at_debug_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    r = make()
    r.startup(0.0)
    info = PacketInfo(PEER_HIGH, VRRP_MULTICAST_V4, 255)
    with caplog.at_level(logging.DEBUG, logger="vrrpy.core"):
        for i in range(500):
            r.receive_packet(b"\x31", info, 1.0 + i * 0.01)
        r.receive_packet(b"\x31", info, 20.0)
    lines = [rec for rec in caplog.records if "truncated" in rec.getMessage()]
    assert len(lines) == 2
    assert "more since last report" in lines[1].getMessage()


def test_checksum_forms_are_counted() -> None:
    r = make()
    r.startup(0.0)
    info = PacketInfo(PEER_HIGH, VRRP_MULTICAST_V4, 255)
    for form in (ChecksumForm.PSEUDO_HEADER, ChecksumForm.VRRP_ONLY, ChecksumForm.VRRP_ONLY):
        r.receive_packet(encode_vrrp(advert(200), PEER_HIGH, VRRP_MULTICAST_V4, form), info, 1.0)
    assert (r.counters.checksum_pseudo_header, r.counters.checksum_vrrp_only) == (1, 2)


def test_ipv6_router_counts_non_link_local_first_address() -> None:
    ll = IPv6Address("fe80::11")
    vip = (IPv6Address("2001:db8::100"),)
    r = VirtualRouter(RouterConfig(vrid=1, primary_address=ll, virtual_addresses=vip))
    r.startup(0.0)
    r.receive_advert(advert(200, vrid=1, addresses=vip), IPv6Address("fe80::20"), 1.0)
    assert r.master_address == IPv6Address("fe80::20")
    assert r.counters.anomalies == {"first_address_not_link_local": 1}


def test_repeats_of_an_advert_with_an_anomaly_take_the_fast_path_and_count_it_each_time() -> None:
    ll = IPv6Address("fe80::11")
    vip = (IPv6Address("2001:db8::100"),)
    r = VirtualRouter(RouterConfig(vrid=1, primary_address=ll, virtual_addresses=vip))
    r.startup(0.0)
    master = IPv6Address("fe80::20")
    info = PacketInfo(master, IPv6Address("ff02::12"), 255)
    data = encode_vrrp(advert(200, vrid=1, addresses=vip), master, IPv6Address("ff02::12"))
    for i in range(3):
        r.receive_packet(data, info, 1.0 + i)
    assert r._repeat is not None  # the repeat's shortcut is taken despite the anomaly
    assert r.counters.anomalies == {"first_address_not_link_local": 3}
    assert r.counters.adverts_received == 3
    assert r.get_timer() == pytest.approx(3.0 + r.master_down_interval)


# ------------------------------------------------------------------ config


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"vrid": 0}, "vrid"),
        ({"vrid": 256}, "vrid"),
        ({"priority": 0}, "priority"),
        ({"version": 4}, "version"),
        ({"advert_interval": 0.0}, "advert_interval"),
        ({"advert_interval": 41.0}, "advert_interval"),
        ({"advert_interval": 0.015}, "advert_interval"),
        ({"version": 2, "advert_interval": 1.5}, "advert_interval"),
        ({"virtual_addresses": ()}, "virtual_addresses"),
        ({"virtual_addresses": (ip_address("2001:db8::1"),)}, "virtual_addresses"),
        ({"auth_pass": "x"}, "auth_pass"),
        ({"version": 2, "auth_pass": "longer-than-8"}, "auth_pass"),
        ({"preempt_delay": -1.0}, "preempt_delay"),
        (
            {
                "primary_address": ip_address("2001:db8::1"),
                "virtual_addresses": (ip_address("2001:db8::100"),),
            },
            "primary_address",
        ),
    ],
)
def test_bad_config_names_the_key(changes: dict[str, object], key: str) -> None:
    base: dict[str, object] = {"vrid": 1, "primary_address": ME, "virtual_addresses": VIP}
    base.update(changes)
    with pytest.raises(ConfigError) as info:
        RouterConfig(**base)  # type: ignore[arg-type]
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_owner_priority_cannot_be_changed() -> None:
    with pytest.raises(ValueError, match="owner"):
        make(priority=255).set_priority(200, 0.0)


def test_v2_owner_discards_adverts_per_rfc_3768() -> None:
    r = make(priority=255, version=2)
    r.startup(0.0)
    _unchanged(r, r.receive_advert(advert(255, version=2), PEER_HIGH, 1.0))
    assert r.counters.drops == {"owner_discard": 1}
    assert r.state is State.MASTER


def test_v2_without_password_ignores_authentication_bytes() -> None:
    r = make(version=2)
    r.startup(0.0)
    r.receive_advert(advert(200, version=2, auth_data=b"junk\0\0\0\0"), PEER_HIGH, 1.0)
    assert r.master_address == PEER_HIGH
    assert r.counters.drops == {}


def test_v2_priority_zero_sets_timer_to_v2_skew_time() -> None:
    r = make(priority=100, version=2)
    r.startup(0.0)
    r.receive_advert(advert(200, version=2), PEER_HIGH, 1.0)
    r.receive_advert(advert(0, version=2), PEER_HIGH, 2.0)
    assert r.get_timer() == pytest.approx(2.0 + 156 / 256)


def test_configured_vrrp_only_checksum_form_reaches_the_wire() -> None:
    r = make(priority=255, checksum_form=ChecksumForm.VRRP_ONLY)
    send = r.startup(0.0)[0]
    assert isinstance(send, SendAdvertisement)
    data = encode_vrrp(send.advert, ME, VRRP_MULTICAST_V4)
    receiver = make(primary_address=PEER_HIGH)
    receiver.startup(0.0)
    receiver.receive_packet(data, PacketInfo(ME, VRRP_MULTICAST_V4, 255), 0.1)
    assert receiver.counters.checksum_vrrp_only == 1
    assert receiver.counters.checksum_pseudo_header == 0


def test_anomalies_are_logged_at_warning_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    r = make()
    r.startup(0.0)
    other = (IPv4Address("192.0.2.200"),)
    with caplog.at_level(logging.WARNING, logger="vrrpy.core"):
        for i in range(100):
            r.receive_advert(advert(200, addresses=other), PEER_HIGH, 1.0 + i * 0.1)
        r.receive_advert(advert(200, addresses=other), PEER_HIGH, 70.0)
    lines = [rec for rec in caplog.records if "address_list_mismatch" in rec.getMessage()]
    assert [rec.levelno for rec in lines] == [logging.WARNING, logging.WARNING]
    assert r.counters.anomalies == {"address_list_mismatch": 101}


def test_immediate_assert_to_a_weaker_router_is_at_most_once_per_interval() -> None:
    r = master(priority=200)
    answers = [kinds(r.receive_advert(advert(100), PEER_HIGH, 5.0 + i * 0.01)) for i in range(150)]
    assert answers[0] == [SendAdvertisement, Announce]
    # At 5.0 and again once a full interval has passed; nothing in between.
    assert [i for i, kind in enumerate(answers) if kind] == [0, 100]
    assert answers[100] == [SendAdvertisement, Announce]
    assert r.counters.lower_priority_discarded == 150
    assert r.counters.split_brains == 1  # one episode: the adverts never stopped


# ------------------------------------------------------------- split brain


def test_split_brain_is_counted_and_logged_once_per_episode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = master(priority=200)
    episode = master_down_interval(200, 100)  # the other Master's 1 s interval
    with caplog.at_level(logging.WARNING, logger="vrrpy.core"):
        for i in range(10):  # the other Master keeps sending, once a second
            r.receive_advert(advert(100), PEER_HIGH, 10.0 + i)
        assert r.split_brain(19.0 + episode - 0.001)
        assert not r.split_brain(19.0 + episode)
        r.receive_advert(advert(100), PEER_HIGH, 19.0 + episode)  # silent that long: a new one
    assert r.counters.split_brains == 2
    assert r.counters.as_dict()["split_brains"] == 2
    lines = [rec for rec in caplog.records if "split brain" in rec.getMessage()]
    assert [rec.levelno for rec in lines] == [logging.WARNING, logging.WARNING]
    assert "192.0.2.20" in lines[0].getMessage()


def test_split_brain_episode_lasts_master_down_interval_of_the_other_masters_interval() -> None:
    r = master(priority=200, advert_interval=0.1)
    for i in range(5):  # a weaker Master with a 1 s interval: 1 s apart is still one episode
        r.receive_advert(advert(100, interval_cs=100), PEER_HIGH, 10.0 + i)
    assert r.counters.split_brains == 1


def test_split_brain_ends_when_we_leave_master() -> None:
    r = master(priority=200)
    r.receive_advert(advert(100), PEER_HIGH, 10.0)
    r.receive_advert(advert(250), PEER_LOW, 10.5)  # a better Master: we step down
    assert r.state is State.BACKUP
    assert not r.split_brain(10.6)
    r.receive_advert(advert(0), PEER_LOW, 10.6)  # it resigns: we are back after Skew_Time
    r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    assert r.state is State.MASTER
    # Well within Master_Down_Interval of the first episode's last advert: a new episode.
    r.receive_advert(advert(100), PEER_HIGH, 11.0)
    assert r.counters.split_brains == 2


def test_split_brain_end_is_logged_at_the_next_advert_without_moving_the_timer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = master(priority=200)
    t0 = r.get_timer()
    assert t0 is not None
    r.receive_advert(advert(100), PEER_HIGH, t0 - 0.5)
    with caplog.at_level(logging.INFO, logger="vrrpy.core"):
        for k in range(5):
            assert kinds(r.handle_timer(t0 + k)) == [SendAdvertisement]
            assert r.get_timer() == pytest.approx(t0 + k + 1.0)
    over = [rec for rec in caplog.records if "split brain over" in rec.getMessage()]
    assert len(over) == 1 and over[0].levelno == logging.INFO
    assert not r.split_brain(t0 + 4)


def test_yielding_master_sends_one_last_advert_only_with_higher_prio_send_advert() -> None:
    quiet = master(priority=100)
    assert kinds(quiet.receive_advert(advert(200), PEER_HIGH, 10.0)) == [
        RemoveAddresses,
        Transition,
    ]
    r = master(priority=100, higher_prio_send_advert=True)
    sent = r.counters.adverts_sent
    actions = r.receive_advert(advert(200), PEER_HIGH, 10.0)
    assert actions[:2] == [SendAdvertisement(r.advertisement(100)), RemoveAddresses(VIP)]
    assert kinds(actions) == [SendAdvertisement, RemoveAddresses, Transition]
    assert r.state is State.BACKUP and r.counters.adverts_sent == sent + 1
    # The better Master hears that advert as a weaker Master's, and re-announces.
    better = master(priority=200, primary_address=PEER_HIGH)
    wire = actions[0].advert  # type: ignore[union-attr]
    assert kinds(better.receive_advert(wire, ME, 10.001)) == [SendAdvertisement, Announce]


def test_priority_zero_and_better_adverts_are_not_a_split_brain() -> None:
    r = master(priority=200)
    assert kinds(r.receive_advert(advert(0), PEER_HIGH, 10.0)) == [SendAdvertisement]
    r.receive_advert(advert(250), PEER_HIGH, 10.2)
    assert r.state is State.BACKUP
    backup = make(priority=200)
    backup.startup(0.0)
    backup.receive_advert(advert(100), PEER_HIGH, 1.0)  # a Backup preempting a weaker Master
    assert r.counters.split_brains == 0 and backup.counters.split_brains == 0


# ------------------------------------------------------------ unicast peers

PEERS = (PEER_HIGH, IPv4Address("192.0.2.30"))
STRANGER = IPv4Address("192.0.2.99")


@pytest.mark.parametrize(
    ("peers", "problem"),
    [
        ((IPv6Address("fe80::20"),), "family"),
        ((ME,), "our own primary address"),
        ((PEER_HIGH, PEER_HIGH), "listed twice"),
        (("192.0.2.20",), "family"),
        ("192.0.2.20", "tuple"),
    ],
)
def test_bad_peers_name_the_key(peers: object, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as info:
        RouterConfig(vrid=1, primary_address=ME, virtual_addresses=VIP, peers=peers)  # type: ignore[arg-type]
    assert info.value.key == "peers"


@pytest.mark.parametrize(
    ("peer", "problem"),
    [("2001:db8::12", "not link-local"), ("fe80::12%eth0", "zone"), ("fe80::11", "own")],
)
def test_ipv6_peers_are_the_link_local_sources_adverts_come_from(peer: str, problem: str) -> None:
    v6 = {"vrid": 1, "primary_address": IPv6Address("fe80::11")}
    vips = (IPv6Address("2001:db8::100"),)
    with pytest.raises(ConfigError, match=problem) as info:
        RouterConfig(**v6, virtual_addresses=vips, peers=(IPv6Address(peer),))  # type: ignore[arg-type]
    assert info.value.key == "peers"
    ok = RouterConfig(**v6, virtual_addresses=vips, peers=[IPv6Address("fe80::12")])  # type: ignore[arg-type]
    assert ok.peers == (IPv6Address("fe80::12"),)


def test_with_peers_a_strangers_advert_is_dropped_as_not_a_peer() -> None:
    backup = make(peers=PEERS)
    backup.startup(0.0)
    _unchanged(backup, backup.receive_advert(advert(250), STRANGER, 1.0))
    _unchanged(backup, backup.receive_advert(advert(0), STRANGER, 1.1))
    assert backup.counters.drops == {"not_a_peer": 2}
    assert backup.counters.adverts_received == 0
    backup.receive_advert(advert(150), PEERS[1], 1.2)  # a peer is heard
    assert backup.master_address == PEERS[1]
    r = master(priority=200, peers=PEERS)
    _unchanged(r, r.receive_advert(advert(100), STRANGER, 5.0))  # no assert, no announce
    _unchanged(r, r.receive_advert(advert(250), STRANGER, 5.1))  # no step-down
    assert r.counters.drops == {"not_a_peer": 2}
    assert r.counters.split_brains == 0
    assert kinds(r.receive_advert(advert(100), PEER_HIGH, 5.2)) == [SendAdvertisement, Announce]


def test_without_peers_anyone_on_the_link_is_heard() -> None:
    r = make()
    r.startup(0.0)
    r.receive_advert(advert(250), STRANGER, 1.0)
    assert r.master_address == STRANGER and r.counters.drops == {}


def test_not_a_peer_is_logged_at_debug_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    r = make(peers=PEERS)
    r.startup(0.0)
    with caplog.at_level(logging.DEBUG, logger="vrrpy.core"):
        for i in range(300):
            r.receive_advert(advert(250), STRANGER, 1.0 + i * 0.01)
        r.receive_advert(advert(250), STRANGER, 12.0)
    lines = [rec for rec in caplog.records if "not_a_peer" in rec.getMessage()]
    assert [rec.levelno for rec in lines] == [logging.DEBUG, logging.DEBUG]
    assert "192.0.2.99" in lines[0].getMessage()
    assert "more since last report" in lines[1].getMessage()


_strangers = (
    st.integers(0, 255)
    .filter(lambda n: n not in (11, 20, 30))
    .map(lambda n: IPv4Address(f"192.0.2.{n}"))
)


@settings(max_examples=200, deadline=None)
@given(
    as_master=st.booleans(),
    flood=st.lists(
        st.tuples(
            _strangers,
            st.integers(0, 255),  # every priority, 0 and 255 included
            st.sampled_from([1, 50, 100, 4095]),  # intervals, matching or not
            st.floats(0.0, 0.999),  # arrival, within the first interval
        ),
        min_size=1,
        max_size=60,
    ),
)
def test_a_flood_of_strangers_adverts_changes_neither_state_nor_timer(
    as_master: bool, flood: list[tuple[IPv4Address, int, int, float]]
) -> None:
    r = master(priority=200, peers=PEERS) if as_master else make(peers=PEERS)
    if not as_master:
        r.startup(0.0)
        r.receive_advert(advert(220), PEER_HIGH, 0.0)  # following a peer
    before = (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs, r.priority)
    sent = r.counters.adverts_sent
    start = 0.0 if not as_master else (r.get_timer() or 0.0) - 1.0
    for source, priority, interval_cs, at in sorted(flood, key=lambda f: f[3]):
        packet = encode_vrrp(advert(priority, interval_cs=interval_cs), source, VRRP_MULTICAST_V4)
        info = PacketInfo(source, VRRP_MULTICAST_V4, 255)
        assert r.receive_packet(packet, info, start + at) == []
    after = (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs, r.priority)
    assert after == before
    assert r.counters.drops == {"not_a_peer": len(flood)}
    assert r.counters.adverts_sent == sent
    assert r.counters.split_brains == 0 and r.counters.adverts_received == (0 if as_master else 1)


# ------------------------------------------------------ transition codes


def test_every_transition_carries_a_stable_code_and_is_counted_by_it() -> None:
    """The reason is for humans (it names peers); the code is what metrics count."""
    r = make(priority=100)
    assert [t.code for t in r.startup(0.0) if isinstance(t, Transition)] == ["startup"]
    r.receive_advert(advert(0), PEER_HIGH, 1.0)  # a Master resigns: Skew_Time
    taken = [a for a in r.handle_timer(r.get_timer()) if isinstance(a, Transition)]  # type: ignore[arg-type]
    assert [(t.new, t.code) for t in taken] == [(State.MASTER, "master_resigned")]
    assert r.master_down_at is not None and r.master_down_at == pytest.approx(1.0 + 0.609375)
    stepped = r.receive_advert(advert(200), PEER_HIGH, 3.0)
    assert [t.code for t in stepped if isinstance(t, Transition)] == ["preempted"]
    again = [a for a in r.handle_timer(r.get_timer()) if isinstance(a, Transition)]  # type: ignore[arg-type]
    assert [t.code for t in again] == ["master_down"]
    assert [t.code for t in r.fault("link down", 9.0) if isinstance(t, Transition)] == ["fault"]
    assert [t.code for t in r.recover("link down", 9.5) if isinstance(t, Transition)] == [
        "fault_cleared"
    ]
    assert [t.code for t in r.shutdown(10.0) if isinstance(t, Transition)] == ["shutdown"]
    assert r.counters.transitions_by == {
        "INIT": {"BACKUP": {"startup": 1}},
        "BACKUP": {
            "MASTER": {"master_resigned": 1, "master_down": 1},
            "INIT": {"shutdown": 1},
        },
        "MASTER": {"BACKUP": {"preempted": 1}, "FAULT": {"fault": 1}},
        "FAULT": {"BACKUP": {"fault_cleared": 1}},
    }
    assert r.counters.as_dict()["transitions_by"] == r.counters.transitions_by
    owner = make(priority=255)
    assert [t.code for t in owner.startup(0.0) if isinstance(t, Transition)] == ["owner"]


def test_an_unknown_authentication_type_is_told_from_a_mismatched_one() -> None:
    """keepalived's exporter counts them apart (invalid type above 2, IP AH)."""
    r = make(priority=100, version=2, auth_pass="secret")
    r.startup(0.0)
    r.receive_advert(advert(100, version=2, auth_type=7), PEER_HIGH, 1.0)
    r.receive_advert(advert(100, version=2, auth_type=0), PEER_HIGH, 1.0)
    assert r.counters.drops == {"invalid_auth_type": 1, "auth_type_mismatch": 1}
