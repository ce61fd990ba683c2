"""vrrpy and ucarp in one CARP virtual host, both ways round, checked on states, wire and logs.

Every scenario runs with vrrpy as the (intended) Master and ucarp as Backup
(``vrrpy-master``), and the other way round (``ucarp-master``), where both make
sense. ucarp is Debian's (1.5.2+git20192404.1a9aaf7), run in the foreground in
its namespace (``interop/ucarp.py``); its state comes from its own "Switching to
state" lines, its complaints (``Bad digest``, ``Bad TTL``, ...) from its log. vrrpyd
runs a ``protocol = "carp"`` instance with ``carp_profile = "ucarp"``, described by
the same dict. A scenario fails if ucarp complains without the scenario provoking it.

advbase is 1 s throughout (ucarp receives through libpcap and can get an advert up
to a second late: a ucarp Backup with advbase 0 flaps). The intended Master has
advskew 0, the Backup advskew 100.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from routers import Router
from ucarp import PCAP_LATENCY, master_down_as_run, recording_script, script_calls

from support import in_ci
from vrrpy.codec.carp import CARP_MULTICAST_V4, decode_carp, looks_like_carp
from vrrpy.codec.carp_auth import UcarpAuth, verify_carp
from vrrpy.codec.vrrp import PacketInfo
from vrrpy.core.carp import carp_master_down
from vrrpy.lab import Capture, Lab, wait_for

VIP = "192.0.2.50"
VHID = 7
PASSWORD = "s3cret"
ADVBASE = 1
MASTER_SKEW, BACKUP_SKEW = 0, 100
H1, H2 = "192.0.2.11", "192.0.2.12"
DIRECTIONS = ["vrrpy-master", "ucarp-master"]
BAD_DIGEST = re.compile(r"Bad digest - md2=\[([0-9a-f]{8})\.\.\.\] md=\[([0-9a-f]{8})\.\.\.\]")
TRANSITION = re.compile(r"VI_1: (\w+) -> (\w+) \(")


@pytest.fixture
def lab() -> Iterator[Lab]:
    """h1, h2: routers; h3: the wire. Needs root, ip, ucarp and stdbuf (this suite's own
    requirements: keepalived is not needed here)."""
    missing = [tool for tool in ("ip", "ucarp", "stdbuf") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        message = f"the ucarp interop suite needs {', '.join(missing)}"
        if in_ci():
            pytest.fail(message + " (CI=true: apt-get install ucarp, run as root)")
        pytest.skip(message)
    with Lab(hosts=3) as built:
        yield built


def inst(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "VI_1",
        "protocol": "carp",
        "interface": "eth0",
        "vhid": VHID,
        "advbase": ADVBASE,
        "advskew": BACKUP_SKEW,
        "password": PASSWORD,
        "carp_profile": "ucarp",
        "virtual_addresses": [f"{VIP}/24"],
    }
    base.update(overrides)
    return base


def impls(direction: str) -> tuple[str, str]:
    """(implementation on h1, the intended Master; implementation on h2, the Backup)."""
    return ("vrrpy", "ucarp") if direction == "vrrpy-master" else ("ucarp", "vrrpy")


@pytest.fixture
def pair_factory(lab: Lab, tmp_path: Path) -> Iterator[Any]:
    made: list[Router] = []

    def make(
        direction: str, master: dict[str, Any], backup: dict[str, Any]
    ) -> tuple[Router, Router]:
        first, second = impls(direction)
        r1 = Router(first, lab["h1"], tmp_path, [inst(**{"advskew": MASTER_SKEW, **master})])
        r2 = Router(second, lab["h2"], tmp_path, [inst(**backup)])
        made.extend([r1, r2])
        return r1, r2

    yield make
    for router in made:
        unexpected = router.complaints()
        assert not unexpected, f"{router} complained:\n" + "\n".join(unexpected)


def vrrpy_of(r1: Router, r2: Router) -> tuple[Router, Router]:
    """(the vrrpy router, the ucarp one)."""
    return (r1, r2) if r1.impl == "vrrpy" else (r2, r1)


def history(router: Router) -> list[str]:
    """The states a router entered, in order, from its log (INIT left out)."""
    if router.ucarp is not None:
        return router.ucarp.transitions()
    assert router.vrrpyd is not None
    text = router.vrrpyd.log.read_text(errors="replace")
    return [new for _, new in TRANSITION.findall(text) if new != "INIT"]


def heard(router: Router) -> int:
    """Adverts the router accepted (vrrpy's counter; ucarp's digest-matched debug lines)."""
    if router.ucarp is not None:
        return router.ucarp.accepted()
    return int(router.counters()["adverts_received"])


def converged(master: Router, backup: Router) -> bool:
    """The Master is MASTER, the Backup BACKUP and has accepted an advert since it started
    (both report BACKUP from their start, before they heard anyone)."""
    return master.state() == "MASTER" and backup.state() == "BACKUP" and heard(backup) > 0


def adverts(records: list[dict[str, Any]], src: str) -> list[dict[str, Any]]:
    """CARP adverts from ``src`` seen by the capture, with advbase, advskew, counter, HMAC."""
    out = []
    for record in records:
        if record["kind"] != "vrrp" or record["src"] != src or record["outgoing"]:
            continue
        payload = bytes.fromhex(record["payload"])
        if not looks_like_carp(payload):
            continue
        out.append(
            {
                **record,
                "advskew": payload[2],
                "advbase": payload[5],
                "counter": int.from_bytes(payload[8:16], "big"),
                "hmac": payload[16:36],
            }
        )
    return out


def verify_on_the_wire(records: list[dict[str, Any]], src: str, advskew: int) -> int:
    """Every advert from ``src``: CARP to 224.0.0.18, TTL 255, advbase 1, ``advskew``, signed
    as ucarp signs with the password. Returns how many."""
    auth = UcarpAuth(VHID, IPv4Address(VIP), PASSWORD)
    seen = [r for r in adverts(records, src) if r["advbase"] != 255]
    for record in seen:
        info = PacketInfo(IPv4Address(src), IPv4Address(record["dst"]), record["ttl"])
        advert = decode_carp(bytes.fromhex(record["payload"]), info)
        verify_carp(advert, auth)
        assert (advert.vhid, advert.advbase, advert.advskew) == (VHID, ADVBASE, advskew)
        assert (record["dst"], record["ttl"]) == (str(CARP_MULTICAST_V4), 255)
    return len(seen)


def takeover_window(backup: Router) -> tuple[float, float]:
    """Bounds on the gap on the wire between the Master's last advert and the Backup's
    first, when the Master vanished: CARP's master down for vrrpy; for ucarp the same
    timer looked at only when its poll returns, plus libpcap's latency and its up script."""
    formula = carp_master_down(ADVBASE, BACKUP_SKEW)
    if backup.impl == "vrrpy":
        return formula - 0.005, formula + 0.03
    as_run = master_down_as_run(ADVBASE, BACKUP_SKEW)
    return as_run - 0.005, as_run + PCAP_LATENCY + 0.15


# ------------------------------------------------------------------ election


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_election_by_advskew(lab: Lab, pair_factory: Any, direction: str) -> None:
    """Started together, both Backup; advskew 0 times out first (3 s against 3.39 s) and
    stays Master; its adverts are ucarp's form, signed with the password.

    A ucarp Backup gets the new Master's first advert up to a second late and may time
    out before it has processed it: it then advertises once and steps down at the next
    advert it processes (the faster one wins). Recorded; the end state is checked.
    vrrpy runs with ``replay_protection``: ucarp's counters (random in every advert of a
    Master that never heard another) pass its window."""
    capture = Capture(lab["h3"])
    replay = {"replay_protection": True}
    on_h1 = impls(direction)[0] == "vrrpy"
    r1, r2 = pair_factory(direction, replay if on_h1 else {}, {} if on_h1 else replay)
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 12), (r1.state(), r2.state())
    assert wait_for(lambda: VIP in r1.addresses(), 2)  # ucarp's up script adds it
    time.sleep(3.5)
    records = capture.stop()
    assert converged(r1, r2)
    assert VIP not in r2.addresses()
    assert verify_on_the_wire(records, H1, MASTER_SKEW) >= 3
    verify_on_the_wire(records, H2, BACKUP_SKEW)  # any the Backup sent while starting
    settled = time.time() - 3
    assert not [r for r in adverts(records, H2) if r["t"] > settled], "the Backup advertises"
    assert history(r1) == ["BACKUP", "MASTER"], history(r1)
    assert history(r2) in (["BACKUP"], ["BACKUP", "MASTER", "BACKUP"]), history(r2)
    print(f"{direction}: Backup's history {history(r2)}")
    vrrpy, _ = vrrpy_of(r1, r2)
    counters = vrrpy.counters()
    assert counters["drops"] == {}, counters["drops"]
    if vrrpy is r1:
        assert counters["became_master"] == 1


# ------------------------------------------------------------------- SIGKILL


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_sigkill_takeover_on_the_wire(
    lab: Lab, pair_factory: Any, direction: str, measured: Any
) -> None:
    """SIGKILL of the Master (and its link down): the Backup takes over after its master
    down, CARP's 3 x advbase + advskew / 256 = 3.39 s for vrrpy; ucarp later (see
    :func:`ucarp.master_down_as_run`). A ucarp that heard a Master goes on counting
    from that Master's counter (+1 per advert)."""
    r1, r2 = pair_factory(direction, {}, {})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 12), (r1.state(), r2.state())
    capture = Capture(lab["h3"])
    time.sleep(2.5)
    r1.kill()
    assert wait_for(lambda: r2.state() == "MASTER", 8)
    time.sleep(0.3)
    records = capture.stop()
    last = adverts(records, H1)[-1]
    first = next(r for r in adverts(records, H2) if r["t"] > last["t"])
    gap = first["t"] - last["t"]
    formula = carp_master_down(ADVBASE, BACKUP_SKEW)
    measured(f"SIGKILL takeover, {r2.impl} (CARP {formula * 1000:.1f})", gap)
    low, high = takeover_window(r2)
    assert low < gap < high, (direction, gap)
    assert verify_on_the_wire(records, H2, BACKUP_SKEW) >= 1
    assert wait_for(lambda: VIP in r2.addresses(), 2)
    if r2.impl == "ucarp":
        assert first["counter"] == (last["counter"] + 1) % 2**64, (last, first)


# ---------------------------------------------------------------- preemption


@pytest.mark.parametrize("preempt", [True, False], ids=["preempt", "no-preempt"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_better_node_joining_later_takes_over_only_with_preempt(
    lab: Lab, pair_factory: Any, direction: str, preempt: bool, measured: Any
) -> None:
    """h2 (advskew 100) is Master alone; h1 (advskew 0) joins. With preemption (vrrpy's
    ``preempt = true``, ucarp's ``-P``) it takes over at the first advert it accepts (the
    Master's is slower), and the old Master steps down when it hears h1; without, it
    stays Backup for as long as h2 advertises."""
    r1, r2 = pair_factory(direction, {"preempt": preempt}, {})
    r2.start()
    assert wait_for(lambda: r2.state() == "MASTER", 8)
    capture = Capture(lab["h3"])
    started = time.time()
    r1.start()
    if preempt:
        assert wait_for(lambda: converged(r1, r2), 6), (r1.state(), r2.state())
        time.sleep(0.5)
        records = capture.stop()
        first = adverts(records, H1)[0]["t"]
        trigger = [r["t"] for r in adverts(records, H2) if r["t"] < first][-1]
        # The newcomer acts on the first slower advert it processes: vrrpy at once,
        # ucarp when libpcap hands it over.
        delay = first - trigger
        measured(f"{r1.impl} preempts, after h2's advert", delay)
        # (vrrpy: up to a second late while a CARP Backup that has not been Master since
        # vrrpyd started has its VHID in the bulk queue, read by the 1 s sweep.)
        assert delay < (0.005 if r1.impl == "vrrpy" else PCAP_LATENCY + 0.1), delay
        assert first - started < 1.4 + PCAP_LATENCY + 0.5
        # The old Master yields with one parting advert (ucarp's carp_send_ad before
        # BACKUP; vrrpy's yield_advert), maybe after one more of its own.
        parting = [r for r in adverts(records, H2) if r["t"] > first]
        assert 1 <= len(parting) <= 2, parting
        assert wait_for(lambda: VIP not in r2.addresses(), 2)
        assert history(r2) == ["BACKUP", "MASTER", "BACKUP"], history(r2)
    else:
        time.sleep(6)  # twice h1's own master down
        records = capture.stop()
        assert (r1.state(), r2.state()) == ("BACKUP", "MASTER")
        assert heard(r1) >= 3
        assert not adverts(records, H1)
        assert history(r1) == ["BACKUP"], history(r1)


# ------------------------------------------------------------- graceful stop


@pytest.mark.parametrize(
    ("direction", "how", "shutdown"),
    [
        ("vrrpy-master", signal.SIGTERM, False),
        ("ucarp-master", signal.SIGTERM, False),
        ("ucarp-master", signal.SIGTERM, True),
        ("ucarp-master", signal.SIGINT, True),
    ],
    ids=["vrrpy-SIGTERM", "ucarp-SIGTERM", "ucarp-z-SIGTERM", "ucarp-z-SIGINT"],
)
def test_graceful_stop(
    lab: Lab,
    pair_factory: Any,
    direction: str,
    how: signal.Signals,
    shutdown: bool,
    measured: Any,
) -> None:
    """The Master is stopped gracefully.

    vrrpyd (SIGTERM) bows out (advbase 255, advskew 255) and withdraws the address: a
    ucarp Backup takes it as a Master "going to time out" and takes over at once, as soon
    as libpcap hands it the advert. ucarp sends nothing when it stops, with or without
    ``-z`` (``--shutdown``: run the down script at exit, on SIGTERM, SIGINT, SIGQUIT,
    SIGHUP); the vrrpy Backup takes over after its master down, as after a crash.
    Without ``-z`` the signal just kills ucarp, and the address its up script added stays
    on the host: for a while both hosts hold it."""
    r1, r2 = pair_factory(direction, {"shutdown": shutdown} if shutdown else {}, {})
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 12), (r1.state(), r2.state())
    assert wait_for(lambda: VIP in r1.addresses(), 2)
    capture = Capture(lab["h3"])
    time.sleep(2.5)
    r1.stop(how)
    assert wait_for(lambda: r2.state() == "MASTER", 8)
    time.sleep(0.3)
    records = capture.stop()
    bow = [r for r in adverts(records, H1) if (r["advbase"], r["advskew"]) == (255, 255)]
    live = [r for r in adverts(records, H1) if r["advbase"] != 255]
    first = next(r for r in adverts(records, H2) if r["t"] > live[-1]["t"])
    assert wait_for(lambda: VIP in r2.addresses(), 2)
    name = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}[how]
    if r1.impl == "vrrpy":
        assert len(bow) == 1, bow
        gap = first["t"] - bow[0]["t"]
        measured(f"bow-out -> ucarp's first advert ({name})", gap)
        assert 0 < gap < PCAP_LATENCY + 0.15
        assert VIP not in r1.addresses()
        assert r2.ucarp is not None
        assert "Putting MASTER DOWN (going to time out)" in r2.ucarp.text()
    else:
        assert not bow, "ucarp sent a bow-out"
        gap = first["t"] - live[-1]["t"]
        measured(f"ucarp {'-z ' if shutdown else ''}{name} -> vrrpy's advert", gap)
        low, high = takeover_window(r2)
        assert low < gap < high, gap
        assert r1.ucarp is not None and r1.ucarp.proc is not None
        roles = [role for _, role, _ in r1.ucarp.script_calls()]
        if shutdown:
            assert r1.ucarp.proc.returncode == 0
            assert roles == ["down", "up", "down"], roles
            assert VIP not in r1.addresses()
        else:
            assert r1.ucarp.proc.returncode == -how
            assert roles == ["down", "up"], roles
            assert VIP in r1.addresses()  # left behind: both hosts hold it now


# ------------------------------------------------------------ wrong password


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_wrong_password_both_refuse_and_both_stay_master(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """Another password on each side: each refuses every advert of the other (vrrpy counts
    ``carp_bad_hmac``, ucarp logs "Bad digest"), so each believes itself alone and is
    Master: the expected outcome of mutual rejection, and no flapping. ucarp, unlike
    keepalived 2.2.7, keeps advertising. The digest ucarp says it computed (``md2``) is
    what our code computes for ucarp's password over our counter."""
    r1, r2 = pair_factory(direction, {"password": "right-one"}, {"password": "wrong-one"})
    r1.start()
    r2.start()
    assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 10)
    capture = Capture(lab["h3"])
    time.sleep(4.5)
    records = capture.stop()
    assert (r1.state(), r2.state()) == ("MASTER", "MASTER")
    for router in (r1, r2):
        assert history(router) == ["BACKUP", "MASTER"], (router, history(router))
    assert len(adverts(records, H1)) >= 4 and len(adverts(records, H2)) >= 3
    vrrpy, ucarp = vrrpy_of(r1, r2)
    counters = vrrpy.counters()
    assert counters["drops"].get("carp_bad_hmac", 0) >= 3, counters["drops"]
    assert set(counters["drops"]) == {"carp_bad_hmac"}, counters["drops"]
    assert counters["adverts_received"] == 0 and counters["transitions"] == 2
    provoked = ucarp.complaints()
    assert len(provoked) >= 3 and all("Bad digest" in line for line in provoked), provoked
    ucarp_password = ucarp.instances[0]["password"]
    theirs = UcarpAuth(VHID, IPv4Address(VIP), ucarp_password)
    sent = adverts(records, H1 if vrrpy is r1 else H2)
    expected = {(theirs.sign(r["counter"])[:4].hex(), r["hmac"][:4].hex()) for r in sent}
    logged = set(BAD_DIGEST.findall("\n".join(provoked)))
    # (vrrpy's counter is constant, OpenBSD's cookie: adverts sent before the capture
    # began are the same bytes as those captured.)
    assert logged and logged <= expected, (logged, expected)
    assert ucarp.ucarp is not None
    ucarp.ucarp.forget_complaints()  # provoked on purpose


# -------------------------------------------------------------- tie-break


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_two_masters_of_equal_advskew_resolve_to_the_lower_address(
    lab: Lab, pair_factory: Any, direction: str
) -> None:
    """Equal advbase and advskew, both Master (h2's port was off the bridge while they
    started), then one link again: ucarp keeps the Master with the lower source address,
    comparing ``s_addr`` (as a number in host order, little-endian here); vrrpy's default
    ``tie_break`` ("ucarp") compares the same way, so h1 (.11) stays and h2 (.12) yields,
    whichever runs where. (OpenBSD and FreeBSD would both yield.)"""
    r1, r2 = pair_factory(direction, {"advskew": 50}, {"advskew": 50})
    h2 = lab["h2"]
    bridge = (
        subprocess.run(
            ["ip", "-o", "link", "show", h2.veth_outside],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.split(" master ")[1]
        .split()[0]
    )
    subprocess.run(["ip", "link", "set", h2.veth_outside, "nomaster"], check=True)
    try:
        r1.start()
        r2.start()
        assert wait_for(lambda: r1.state() == "MASTER" and r2.state() == "MASTER", 10)
        time.sleep(1.5)
    finally:
        subprocess.run(["ip", "link", "set", h2.veth_outside, "master", bridge], check=True)
    assert wait_for(lambda: converged(r1, r2), 6), (r1.state(), r2.state())
    time.sleep(3)
    assert converged(r1, r2)
    assert history(r2) == ["BACKUP", "MASTER", "BACKUP"], history(r2)
    assert history(r1) == ["BACKUP", "MASTER"], history(r1)
    assert wait_for(lambda: VIP not in r2.addresses(), 2)
    vrrpy, _ = vrrpy_of(r1, r2)
    anomalies = vrrpy.counters()["anomalies"]
    assert anomalies.get("advskew_tie", 0) >= 1, anomalies


# ------------------------------------------------------------------- scripts


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_up_and_down_scripts_agree_with_the_transitions(
    lab: Lab, pair_factory: Any, direction: str, tmp_path: Path, measured: Any
) -> None:
    """ucarp's ``--upscript`` / ``--downscript`` and vrrpyd's ``up_script`` /
    ``down_script`` are called alike: ``SCRIPT IFACE VIP``, down at start (INIT ->
    BACKUP), up on becoming Master, down on leaving it, at exit too (ucarp with ``-z``).
    Each side's calls match its own transitions, in order. ucarp runs its up script
    before its first advert as Master and waits for it; vrrpy's runs beside its
    protocol."""

    def scripted(host: str) -> dict[str, Any]:
        record = tmp_path / f"{host}-vrrpy-scripts.log"
        up = recording_script(tmp_path / f"{host}-up.sh", "up", record)
        down = recording_script(tmp_path / f"{host}-down.sh", "down", record)
        return {"up_script": str(up), "down_script": str(down), "record": record}

    extra = {"h1": scripted("h1"), "h2": scripted("h2")}
    settings = {}
    for host, impl in zip(("h1", "h2"), impls(direction), strict=True):
        if impl == "vrrpy":
            settings[host] = {k: v for k, v in extra[host].items() if k != "record"}
        else:
            settings[host] = {"shutdown": True}
    r1, r2 = pair_factory(direction, settings["h1"], settings["h2"])
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 12), (r1.state(), r2.state())
    capture = Capture(lab["h3"])
    time.sleep(1.5)
    r1.stop()
    assert wait_for(lambda: r2.state() == "MASTER", 8)
    time.sleep(1.0)
    records = capture.stop()
    r2.stop()

    for router in (r1, r2):
        calls = calls_of(router, extra)
        states = ["INIT", *history(router), "INIT"]  # both were stopped as Master
        expected = []
        for old, new in itertools.pairwise(states):
            if new == "MASTER":
                expected.append("up")
            elif old == "MASTER" or (old == "INIT" and new == "BACKUP"):
                expected.append("down")
        assert [role for _, role, _ in calls] == expected, (router, calls, states)
        assert all(args == ["eth0", VIP] for _, _, args in calls), calls
    assert [role for _, role, _ in calls_of(r1, extra)] == ["down", "up", "down"]

    up_at = next(t for t, role, _ in calls_of(r2, extra) if role == "up")
    first_advert = next(r["t"] for r in adverts(records, H2))
    measured(f"{r2.impl}'s up script - its first advert", up_at - first_advert)
    if r2.impl == "ucarp":
        assert up_at < first_advert  # ucarp waits for the script, then advertises


def calls_of(router: Router, extra: dict[str, Any]) -> list[tuple[float, str, list[str]]]:
    """A router's script calls: ucarp's own scripts, or the ones given to vrrpyd."""
    if router.ucarp is not None:
        return router.ucarp.script_calls()
    return script_calls(extra[router.host.name]["record"])
