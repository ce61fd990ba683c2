"""vrrpy and keepalived in one VRRP group, both ways round, checked on states, wire and logs.

Every scenario runs twice: vrrpy as the (intended) Master with keepalived as
Backup, and the other way round. keepalived is Debian's (2.2.7 on Debian 12),
run in the foreground in its namespace; its state and its complaints come from
its log (keepalived.ENTERING, keepalived.COMPLAINTS). A scenario fails if
keepalived complains about our adverts without the scenario provoking it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from routers import Router

from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.lab import Capture, Lab, wait_for

VIP = "192.0.2.100"
INTERVAL = 0.1
DIRECTIONS = ["vrrpy-master", "keepalived-master"]


def inst(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 51,
        "priority": 100,
        "advert_interval": INTERVAL,
        "virtual_addresses": [f"{VIP}/24"],
    }
    base.update(overrides)
    return base


def impls(direction: str) -> tuple[str, str]:
    """(implementation on h1, the intended Master; implementation on h2, the Backup)."""
    return ("vrrpy", "keepalived") if direction == "vrrpy-master" else ("keepalived", "vrrpy")


@pytest.fixture
def pair_factory(lab: Lab, tmp_path: Path) -> Iterator[Any]:
    made: list[Router] = []

    def make(
        direction: str, master: dict[str, Any], backup: dict[str, Any]
    ) -> tuple[Router, Router]:
        first, second = impls(direction)
        r1 = Router(first, lab["h1"], tmp_path, [inst(**{"priority": 200, **master})])
        r2 = Router(second, lab["h2"], tmp_path, [inst(**backup)])
        made.extend([r1, r2])
        return r1, r2

    yield make
    for router in made:
        unexpected = router.complaints()
        assert not unexpected, f"{router} complained:\n" + "\n".join(unexpected)


def converged(master: Router, backup: Router, name: str = "VI_1") -> bool:
    """The Master is MASTER and the Backup BACKUP -- and, if vrrpy, has heard the Master:
    vrrpy reports BACKUP from its start, before the Master's next advert reaches it
    (keepalived may have become Master, and sent, before vrrpy's socket was open)."""
    if master.state(name) != "MASTER" or backup.state(name) != "BACKUP":
        return False
    return backup.impl != "vrrpy" or backup.counters(name)["adverts_received"] > 0


def adverts(records: list[dict[str, Any]], src: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "vrrp" and r["src"] == src]


def takeover_gap(lab: Lab, master: Router, backup: Router, src1: str, src2: str) -> float:
    """Kill ``master`` (SIGKILL, link down); return the gap on the wire until ``backup`` adverts."""
    cap = Capture(lab["h3"])
    time.sleep(4 * INTERVAL)
    master.kill()
    assert wait_for(lambda: backup.state() == "MASTER", 5), backup
    time.sleep(2 * INTERVAL)
    records = cap.stop()
    return adverts(records, src2)[0]["t"] - adverts(records, src1)[-1]["t"]


# ------------------------------------------------------------ VRRPv3 and IPv6


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_v3_ipv4_election_and_sigkill_takeover(
    lab: Lab, pair_factory: Any, direction: str, measured: Any
) -> None:
    r1, r2 = pair_factory(direction, {}, {})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    vrrpy = r1 if r1.impl == "vrrpy" else r2
    counters = vrrpy.counters()
    if vrrpy is r2:
        assert counters["adverts_received"] > 0
        assert counters["checksum_pseudo_header"] > 0 and counters["checksum_vrrp_only"] == 0
    gap = takeover_gap(lab, r1, r2, "192.0.2.11", "192.0.2.12")
    predicted = master_down_interval(100, round(INTERVAL * 100))
    measured(f"SIGKILL takeover, {r2.impl} (pred {predicted * 1000:.1f})", gap)
    assert predicted - 0.005 < gap < predicted + 0.03, (direction, gap)
    assert f"{VIP}/24" in r2.addresses()


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_v3_ipv6_election_and_sigkill_takeover(
    lab: Lab, pair_factory: Any, direction: str, measured: Any
) -> None:
    v6 = {"virtual_addresses": ["2001:db8::100/64"]}
    r1, r2 = pair_factory(direction, v6, v6)
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    # (keepalived logs its new state, then adds or removes the addresses)
    assert wait_for(lambda: "2001:db8::100/64" in r1.addresses(), 2)
    ll1, ll2 = str(lab["h1"].link_local), str(lab["h2"].link_local)
    gap = takeover_gap(lab, r1, r2, ll1, ll2)
    predicted = master_down_interval(100, round(INTERVAL * 100))
    measured(f"IPv6 SIGKILL takeover, {r2.impl}", gap)
    assert predicted - 0.005 < gap < predicted + 0.03, (direction, gap)
    assert "2001:db8::100/64" in r2.addresses()


# -------------------------------------------------------------------- VRRPv2


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("password", ["", "s3cret"])
def test_v2_election_and_takeover(
    lab: Lab, pair_factory: Any, direction: str, password: str
) -> None:
    v2 = {"version": 2, "advert_interval": 1, "auth_pass": password}
    r1, r2 = pair_factory(direction, v2, v2)
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 8)
    r1.kill()
    assert wait_for(lambda: r2.state() == "MASTER", 8)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_v2_wrong_password_both_drop_and_count_and_nobody_flaps(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """Both sides drop the other's adverts and count/log them; both stay Master, no flapping.

    Observed on keepalived 2.2.7: a keepalived Master that keeps receiving adverts it
    rejects (here: wrong password) at its own interval stops sending its own adverts
    (each rejected advert re-arms its advert timer), so vrrpy sees only its first one.
    """
    r1, r2 = pair_factory(
        direction,
        {"version": 2, "advert_interval": 1, "auth_pass": "right"},
        {"version": 2, "advert_interval": 1, "auth_pass": "wrong"},
    )
    r1.start()
    r2.start()
    assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 8)
    time.sleep(2.5)
    assert r1.state() == "MASTER" and r2.state() == "MASTER"
    vrrpy = r1 if r1.impl == "vrrpy" else r2
    keep = r2 if vrrpy is r1 else r1
    counters = vrrpy.counters()
    assert counters["drops"].get("auth_failure", 0) >= 1, counters["drops"]
    assert counters["transitions"] == 2  # INIT -> BACKUP -> MASTER, and nothing since
    provoked = keep.complaints()
    assert provoked and all("invalid passwd" in line for line in provoked), provoked
    assert keep.keepalived is not None
    transitions = keep.keepalived.transitions()
    assert transitions == ["BACKUP", "MASTER"], transitions  # and never back
    keep.keepalived.forget_complaints()  # the complaints were the point of this scenario


# ------------------------------------------------------- election and preemption


BLOCK_VRRP = """table inet vrrpblock {
  chain input {
    type filter hook input priority -200;
    ip protocol vrrp drop
  }
}
"""


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_two_masters_of_equal_priority_resolve_to_the_higher_address(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """RFC 9568 6.4.3 tie-break: two Masters of equal priority, the lower address yields.

    (Started one after the other, the second would simply accept the first as
    Master: a Backup accepts an equal priority. So both first become Master
    while VRRP is blocked between them, then the block is lifted.)"""
    r1, r2 = pair_factory(direction, {"priority": 150}, {"priority": 150})
    for host in (lab["h1"], lab["h2"]):
        host.run(["nft", "-f", "-"], input=BLOCK_VRRP)
    r1.start()
    r2.start()
    assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 5)
    for host in (lab["h1"], lab["h2"]):
        host.run(["nft", "delete", "table", "inet", "vrrpblock"])
    assert wait_for(lambda: converged(r2, r1), 5), (r1.state(), r2.state())


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_nopreempt_keeps_the_running_master(lab: Lab, pair_factory: Any, direction: str) -> None:
    r1, r2 = pair_factory(direction, {"preempt": False}, {})
    r2.start()
    assert wait_for(lambda: r2.state() == "MASTER", 5)
    r1.start()
    time.sleep(1.5)
    assert converged(r2, r1)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_higher_priority_joining_preempts(lab: Lab, pair_factory: Any, direction: str) -> None:
    r1, r2 = pair_factory(direction, {}, {})
    r2.start()
    assert wait_for(lambda: r2.state() == "MASTER", 5)
    r1.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    assert wait_for(lambda: VIP not in r2.addresses(), 2)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_preempt_delay_holds_then_preempts(lab: Lab, pair_factory: Any, direction: str) -> None:
    r1, r2 = pair_factory(direction, {"preempt_delay": 2.0}, {})
    r2.start()
    assert wait_for(lambda: r2.state() == "MASTER", 5)
    started = time.monotonic()
    r1.start()
    assert wait_for(lambda: r1.state() == "MASTER", 6)
    waited = time.monotonic() - started
    assert waited > 1.8, waited
    assert wait_for(lambda: r2.state() == "BACKUP", 3)


# ------------------------------------------------------------------- stopping


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_graceful_stop_hands_over_within_skew_time(
    lab: Lab, pair_factory: Any, direction: str, measured: Any
) -> None:
    r1, r2 = pair_factory(direction, {}, {})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    cap = Capture(lab["h3"])
    time.sleep(3 * INTERVAL)
    r1.stop()
    assert wait_for(lambda: r2.state() == "MASTER", 5)
    time.sleep(2 * INTERVAL)
    records = cap.stop()
    zero = [r for r in adverts(records, "192.0.2.11") if r["priority"] == 0]
    assert zero, "no priority-0 advert"
    first = adverts(records, "192.0.2.12")[0]["t"]
    skew = skew_time(100, round(INTERVAL * 100))
    measured(f"priority-0 takeover, {r2.impl} (skew {skew * 1000:.1f})", first - zero[0]["t"])
    assert 0 < first - zero[0]["t"] < skew + 0.02
    assert VIP not in r1.addresses()


# ------------------------------------------------------------ interval mismatch


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_v3_backup_learns_the_masters_interval(lab: Lab, pair_factory: Any, direction: str) -> None:
    r1, r2 = pair_factory(direction, {"advert_interval": 0.1}, {"advert_interval": 1.0})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 6)
    cap = Capture(lab["h3"])
    time.sleep(0.5)
    r1.kill()
    assert wait_for(lambda: r2.state() == "MASTER", 5)
    time.sleep(2 * INTERVAL)  # keepalived logs "Entering MASTER STATE" before it sends
    records = cap.stop()
    gap = adverts(records, "192.0.2.12")[0]["t"] - adverts(records, "192.0.2.11")[-1]["t"]
    # The Backup used the Master's 100 ms, not its own 1 s.
    assert gap < master_down_interval(100, 10) + 0.05, gap
    for router in (r1, r2):
        if router.keepalived is not None:  # it logs the mismatch, as RFC 9568 asks
            router.keepalived.forget_complaints()


# --------------------------------------------------------- unicast, VMAC, many


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_unicast_peers(lab: Lab, pair_factory: Any, direction: str) -> None:
    r1, r2 = pair_factory(
        direction, {"unicast_peers": ["192.0.2.12"]}, {"unicast_peers": ["192.0.2.11"]}
    )
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    r1.kill()
    assert wait_for(lambda: r2.state() == "MASTER", 5)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_unicast_peers_ipv6_between_link_local_addresses(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """IPv6 unicast: each side's peer is the other's link-local address, the source its
    adverts really come from (vrrpy's by RFC 9568 5.1.2.1; keepalived's because it is its
    unicast_src_ip). keepalived binds its unicast socket to unicast_src_ip, so that is
    also the address vrrpy must send to; and vrrpy drops IPv6 adverts from a global
    source, so keepalived's unicast_src_ip cannot be global."""
    h1, h2 = lab["h1"], lab["h2"]
    ll1, ll2 = str(h1.link_local), str(h2.link_local)
    v6 = {"virtual_addresses": ["2001:db8::100/64"]}
    r1, r2 = pair_factory(direction, {**v6, "unicast_peers": [ll2]}, {**v6, "unicast_peers": [ll1]})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    assert wait_for(lambda: "2001:db8::100/64" in r1.addresses(), 2)
    # On the Backup's link: the Master's adverts come from its link-local address.
    cap = Capture(h2)
    time.sleep(4 * INTERVAL)
    seen = [r for r in cap.stop() if r["kind"] == "vrrp" and not r["outgoing"]]
    assert seen and {(r["src"], r["ttl"]) for r in seen} == {(ll1, 255)}
    vrrpy = r1 if r1.impl == "vrrpy" else r2
    counters = vrrpy.counters()
    assert counters["drops"] == {}, counters["drops"]
    if vrrpy is r2:
        assert counters["adverts_received"] > 0
    r1.kill()
    assert wait_for(lambda: r2.state() == "MASTER", 5)
    assert wait_for(lambda: "2001:db8::100/64" in r2.addresses(), 2)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_use_vmac_on_both_sides(lab: Lab, pair_factory: Any, direction: str) -> None:
    r1, r2 = pair_factory(direction, {"use_vmac": True}, {"use_vmac": True})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    cap = Capture(lab["h3"])
    time.sleep(0.5)
    seen = adverts(cap.stop(), "192.0.2.11")
    assert seen and {r["src_mac"] for r in seen} == {"00:00:5e:00:01:33"}
    r1.kill()
    assert wait_for(lambda: r2.state() == "MASTER", 5)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_twenty_vrids_with_mixed_masters_converge(lab: Lab, tmp_path: Path, direction: str) -> None:
    first, second = (
        ("vrrpy", "keepalived")
        if direction == "vrrpy-master"
        else (
            "keepalived",
            "vrrpy",
        )
    )

    def group(odd_priority: int, even_priority: int) -> list[dict[str, Any]]:
        return [
            inst(
                name=f"VI_{vrid}",
                vrid=vrid,
                priority=odd_priority if vrid % 2 else even_priority,
                virtual_addresses=[f"198.51.100.{vrid}/24"],
            )
            for vrid in range(1, 21)
        ]

    r1 = Router(first, lab["h1"], tmp_path, group(200, 100))
    r2 = Router(second, lab["h2"], tmp_path, group(100, 200))
    r1.start()
    r2.start()

    def all_converged() -> bool:
        return all(
            (r1 if vrid % 2 else r2).state(f"VI_{vrid}") == "MASTER"
            and (r2 if vrid % 2 else r1).state(f"VI_{vrid}") == "BACKUP"
            for vrid in range(1, 21)
        )

    def disagreements() -> list[str]:
        return [
            f"VRID {vrid}: h1 {r1.state(f'VI_{vrid}')}, h2 {r2.state(f'VI_{vrid}')}"
            for vrid in range(1, 21)
            if (r1 if vrid % 2 else r2).state(f"VI_{vrid}") != "MASTER"
            or (r2 if vrid % 2 else r1).state(f"VI_{vrid}") != "BACKUP"
        ]

    assert wait_for(all_converged, 10), disagreements()
    for router in (r1, r2):
        assert not router.complaints(), router.complaints()


# ---------------------------------------------------- provoked disagreements


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_v2_interval_mismatch_is_dropped_by_both(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """RFC 3768 7.1: a VRRPv2 advert with another interval MUST be discarded, by both."""
    r1, r2 = pair_factory(
        direction,
        {"version": 2, "advert_interval": 1},
        {"version": 2, "advert_interval": 2},
    )
    r1.start()
    r2.start()
    # keepalived with a 2 s interval declares the Master down after 3 x 2 s + skew.
    assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 15)
    vrrpy = r1 if r1.impl == "vrrpy" else r2
    keep = r2 if vrrpy is r1 else r1
    assert wait_for(lambda: vrrpy.counters()["drops"].get("interval_mismatch", 0) >= 1, 5)
    provoked = keep.complaints()
    assert provoked and all("interval mismatch" in line for line in provoked), provoked
    assert keep.keepalived is not None
    keep.keepalived.forget_complaints()


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_rfc9568_checksum_form_against_keepalived_2_2_7(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """vrrpy set to v3_checksum = "vrrp-only" (RFC 9568's IPv4 form) beside keepalived 2.2.7,
    which only knows the pseudo-header form (v3_checksum_as_v2 came in 2.2.8).

    vrrpy as Master: keepalived rejects every advert ("Invalid VRRPv3 checksum") and
    becomes Master too. keepalived as Master: vrrpy, whatever it sends, accepts both
    forms on receive, counts keepalived's as pseudo-header, and stays Backup."""
    r1, r2 = pair_factory(direction, {}, {})
    vrrpy = r1 if r1.impl == "vrrpy" else r2
    keep = r2 if vrrpy is r1 else r1
    assert vrrpy.vrrpyd is not None and keep.keepalived is not None
    vrrpy.vrrpyd.write([inst(**{**vrrpy.instances[0], "v3_checksum": "vrrp-only"})])
    r1.start()
    r2.start()
    if vrrpy is r1:
        assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 5)
        provoked = keep.complaints()
        assert provoked and all("Invalid VRRPv3 checksum" in line for line in provoked)
        keep.keepalived.forget_complaints()
    else:
        assert wait_for(lambda: converged(r1, r2), 5)
        # keepalived may have become Master (1 s interval) just before vrrpy's socket
        # was open: its next advert is then up to a second away.
        assert wait_for(lambda: vrrpy.counters()["checksum_pseudo_header"] > 0, 3)
        counters = vrrpy.counters()
        assert counters["checksum_pseudo_header"] > 0 and counters["checksum_vrrp_only"] == 0


@pytest.mark.parametrize(
    ("keepalived_only", "reason"),
    [
        ({"unicast_src_ip": "global"}, "source_not_link_local"),
        ({"unicast_ttl": None}, "bad_ttl"),
    ],
    ids=["global-source", "default-hop-limit"],
)
def test_ipv6_unicast_adverts_vrrpy_cannot_accept_are_dropped_and_counted(
    lab: Lab, pair_factory: Any, keepalived_only: dict[str, Any], reason: str
) -> None:
    """keepalived 2.2.7 as Master over IPv6 unicast, configured in one of two ways vrrpy
    cannot accept: sending from a global unicast_src_ip (RFC 9568 5.1.2.1: the source is
    link-local), or without unicast_ttl, when it leaves the kernel's default hop limit
    (64; RFC 9568 7.1: 255). vrrpy drops and counts every advert and becomes Master too.
    (keepalived's side only: vrrpy's own adverts are the same as in the scenario above.)"""
    ll1, ll2 = str(lab["h1"].link_local), str(lab["h2"].link_local)
    if keepalived_only.get("unicast_src_ip") == "global":
        keepalived_only = {"unicast_src_ip": str(lab["h1"].ipv6)}
    v6 = {"virtual_addresses": ["2001:db8::100/64"]}
    r1, r2 = pair_factory(
        "keepalived-master",
        {**v6, "unicast_peers": [ll2], **keepalived_only},
        {**v6, "unicast_peers": [ll1]},
    )
    r1.start()
    r2.start()
    assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 5)
    assert wait_for(lambda: r2.counters()["drops"].get(reason, 0) >= 3, 2), r2.counters()
    assert set(r2.counters()["drops"]) == {reason}
    assert r1.state() == "MASTER" and r2.state() == "MASTER"


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_address_list_mismatch(lab: Lab, pair_factory: Any, direction: str) -> None:
    """The Master advertises 192.0.2.100, the Backup is configured with 192.0.2.101.

    vrrpy (VRRPv3, RFC 9568 7.1: MAY check, SHOULD log) processes the advert and counts
    the anomaly, so it stays Backup. keepalived 2.2.7 logs the mismatch and, as the
    Backup, still follows the Master (recorded here, whatever it does)."""
    r1, r2 = pair_factory(direction, {}, {"virtual_addresses": ["192.0.2.101/24"]})
    r1.start()
    r2.start()
    time.sleep(1.5)
    outcome = (r1.state(), r2.state())
    if r2.impl == "vrrpy":
        assert outcome == ("MASTER", "BACKUP")
        assert r2.counters()["anomalies"].get("address_list_mismatch", 0) >= 1
    else:
        assert r2.keepalived is not None
        provoked = r2.complaints()
        assert all("ip address associated with VRID" in line for line in provoked), provoked
        print(f"keepalived as Backup with a mismatching list: {outcome}, {len(provoked)} logs")
        assert outcome in {("MASTER", "BACKUP"), ("MASTER", "MASTER")}
        r2.keepalived.forget_complaints()
