"""vrrpyd on real interfaces: namespaces on a bridge, raw sockets, netlink, real timing.

Each test builds a lab (h1, h2: routers; h3: client and capture), runs vrrpyd
in the routers, and checks states, addresses and what went over the wire. The
advert interval is 100 ms so that failovers take a fraction of a second.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.lab import Capture, Daemon, Lab, wait_for
from vrrpy.net.addresses import ADDRESS_PROTO, kernel_marks_addresses

VIP = "192.0.2.100"


def inst(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 51,
        "priority": 100,
        "advert_interval": 0.1,
        "virtual_addresses": [f"{VIP}/24"],
        "garp_repeat": 2,
    }
    base.update(overrides)
    return base


def pair(lab: Lab, tmp_path: Path, h1: dict[str, Any], h2: dict[str, Any]) -> tuple[Daemon, Daemon]:
    return (
        Daemon(lab["h1"], tmp_path, [inst(**h1)]),
        Daemon(lab["h2"], tmp_path, [inst(**h2)]),
    )


def master_is(daemon: Daemon, name: str = "VI_1") -> bool:
    return daemon.instance(name)["state"] == "MASTER"


def backup_is(daemon: Daemon, name: str = "VI_1") -> bool:
    return daemon.instance(name)["state"] == "BACKUP"


def heard(daemon: Daemon) -> bool:
    """Whether ``daemon`` has received an advert yet (a fresh state file: SIGUSR1).

    A Backup reports BACKUP from its start, possibly before the Master's next
    advert has reached it (the Master's first one may have left before it ran)."""
    daemon.refresh()
    return bool(daemon.instance()["counters"]["adverts_received"] > 0)


def adverts(records: list[dict[str, Any]], src: str) -> list[dict[str, Any]]:
    return [r for r in records if r["kind"] == "vrrp" and r["src"] == src and not r["outgoing"]]


def test_election_gives_the_address_to_the_highest_priority(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1), 3)
    assert wait_for(lambda: backup_is(d2), 3)
    assert f"{VIP}/24" in d1.addresses()
    assert VIP not in d2.addresses()
    assert wait_for(lambda: heard(d2), 2)
    assert d2.instance()["master_address"] == "192.0.2.11"
    cap = Capture(lab["h3"])
    time.sleep(0.5)
    seen = adverts(cap.stop(), "192.0.2.11")
    assert len(seen) >= 3
    assert {(r["ttl"], r["version"], r["vrid"], r["priority"]) for r in seen} == {(255, 3, 51, 200)}
    assert not adverts(cap.records, "192.0.2.12")


def test_sigkill_of_master_fails_over_at_master_down_interval(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    cap = Capture(lab["h3"])
    time.sleep(0.3)
    d1.kill()
    lab["h1"].link(False)
    assert wait_for(lambda: master_is(d2), 3)
    time.sleep(0.3)
    records = cap.stop()
    last_old = adverts(records, "192.0.2.11")[-1]["t"]
    first_new = adverts(records, "192.0.2.12")[0]["t"]
    gap = first_new - last_old
    predicted = master_down_interval(100, 10)
    assert predicted - 0.005 < gap < predicted + 0.05, gap
    assert f"{VIP}/24" in d2.addresses()


def test_graceful_stop_hands_over_within_skew_time(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    cap = Capture(lab["h3"])
    time.sleep(0.2)
    assert d1.terminate() == 0
    assert wait_for(lambda: master_is(d2), 3)
    time.sleep(0.2)
    records = cap.stop()
    zero = [r for r in adverts(records, "192.0.2.11") if r["priority"] == 0]
    assert len(zero) == 1
    first_new = adverts(records, "192.0.2.12")[0]["t"]
    assert 0 < first_new - zero[0]["t"] < skew_time(100, 10) + 0.02
    assert VIP not in d1.addresses()
    assert d1.instance()["state"] == "INIT"


def test_no_preempt_keeps_the_running_master(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200, "preempt": False}, {"priority": 100})
    d2.start()
    assert wait_for(lambda: master_is(d2), 3)
    d1.start()
    time.sleep(1.5)
    assert master_is(d2) and backup_is(d1)


def test_higher_priority_joining_preempts(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d2.start()
    assert wait_for(lambda: master_is(d2), 3)
    d1.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    assert VIP not in d2.addresses()


def test_a_master_hearing_a_better_master_steps_down_at_once(lab: Lab, tmp_path: Path) -> None:
    # A Master's own VRIDs are on the socket's urgent list: the better advert wakes it
    # (it is not left for the once-a-second read of the bulk queue).
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d2.start()
    assert wait_for(lambda: master_is(d2), 3)
    cap = Capture(lab["h3"])
    d1.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    time.sleep(0.3)
    records = cap.stop()
    first_new = adverts(records, "192.0.2.11")[0]["t"]
    last_old = adverts(records, "192.0.2.12")[-1]["t"]
    assert last_old - first_new < 0.005  # at most the one already on its way


def test_masters_share_the_beat_and_keep_their_interval(lab: Lab, tmp_path: Path) -> None:
    # Masters with the same interval send in one wake-up (runtime/instance.py,
    # ADVERT_PHASES); each still sends exactly once per interval, never late.
    vrids = (11, 12, 13, 14)
    names = [f"VI_{vrid}" for vrid in vrids]
    instances = [
        inst(name=name, vrid=vrid, priority=200, virtual_addresses=[f"198.51.100.{vrid}/24"])
        for name, vrid in zip(names, vrids, strict=True)
    ]
    daemon = Daemon(lab["h1"], tmp_path, instances)
    daemon.start()
    assert wait_for(lambda: all(master_is(daemon, n) for n in names), 3)
    time.sleep(0.3)
    cap = Capture(lab["h3"])
    time.sleep(1.0)
    records = adverts(cap.stop(), "192.0.2.11")
    by_vrid: dict[int, list[float]] = {}
    for record in records:
        by_vrid.setdefault(record["vrid"], []).append(record["t"])
    assert sorted(by_vrid) == [11, 12, 13, 14]
    for times in by_vrid.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) >= 8
        # Once per interval: none doubled, none skipped (the bounds leave 10 ms for a
        # loaded machine; the spacing itself is measured by bench/jitter_bench.py).
        assert all(0.09 < gap < 0.11 for gap in gaps), gaps
    # One burst per interval: every advert within 5 ms of VRID 11's nearest one.
    for times in by_vrid.values():
        assert all(min(abs(t - u) for u in by_vrid[11]) < 0.005 for t in times)


def test_link_down_on_master_fails_over_and_link_up_preempts_back(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    lab["h1"].link(False)
    assert wait_for(lambda: master_is(d2), 3)
    lab["h1"].link(True)
    assert wait_for(lambda: backup_is(d2), 3)
    assert master_is(d1)


def test_ipv6_virtual_address_fails_over(lab: Lab, tmp_path: Path) -> None:
    v6 = {"virtual_addresses": ["2001:db8::100/64"]}
    d1, d2 = pair(lab, tmp_path, {"priority": 200, **v6}, {"priority": 100, **v6})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    assert "2001:db8::100/64" in d1.addresses()
    cap = Capture(lab["h3"])
    time.sleep(0.3)
    d1.kill()
    assert wait_for(lambda: master_is(d2), 3)
    records = cap.stop()
    sources = {r["src"] for r in records if r["kind"] == "vrrp"}
    assert sources == {str(lab["h1"].link_local), str(lab["h2"].link_local)}
    assert all(r["ttl"] == 255 for r in records if r["kind"] == "vrrp")
    assert "2001:db8::100/64" in d2.addresses()


def test_vmac_carries_the_address_and_sources_the_adverts(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200, "use_vmac": True}, {"use_vmac": True})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    assert f"{VIP}/24" in d1.addresses("vrrp4.51")
    link = lab["h1"].run(["ip", "-o", "link", "show", "vrrp4.51"]).stdout
    assert "00:00:5e:00:01:33" in link
    cap = Capture(lab["h3"])
    time.sleep(0.3)
    seen = adverts(cap.stop(), "192.0.2.11")
    assert seen and {r["src_mac"] for r in seen} == {"00:00:5e:00:01:33"}
    d1.terminate()
    assert "vrrp4.51" not in lab["h1"].run(["ip", "-o", "link"]).stdout


def test_unicast_peers(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(
        lab,
        tmp_path,
        {"priority": 200, "unicast_peers": ["192.0.2.12"]},
        {"priority": 100, "unicast_peers": ["192.0.2.11"]},
    )
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    assert wait_for(lambda: heard(d2), 2)
    d1.kill()
    assert wait_for(lambda: master_is(d2), 3)


def test_client_arp_entry_moves_to_the_new_master(lab: Lab, tmp_path: Path) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    client = lab["h3"]
    ping = [
        sys.executable,
        "-c",
        f"import socket; socket.socket(socket.AF_INET, "
        f"socket.SOCK_DGRAM).sendto(b'x', ('{VIP}', 9))",
    ]
    client.run(ping)

    def neigh() -> str:
        return client.run(["ip", "neigh", "show", VIP]).stdout

    assert wait_for(lambda: lab["h1"].mac in neigh(), 3)
    d1.kill()
    lab["h1"].link(False)
    assert wait_for(lambda: lab["h2"].mac in neigh(), 3), neigh()


def test_sighup_reload_adds_an_instance_without_flapping_the_others(
    lab: Lab, tmp_path: Path
) -> None:
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    before = d1.instance()
    d1.write([inst(priority=200), inst(name="VI_2", vrid=52, virtual_addresses=["192.0.2.101/24"])])
    d1.signal(signal.SIGHUP)
    assert wait_for(lambda: "VI_2" in d1.state()["instances"], 3)
    assert wait_for(lambda: master_is(d1, "VI_2"), 3)
    after = d1.instance()
    assert after["since"] == before["since"]
    assert after["counters"]["transitions"] == before["counters"]["transitions"]
    assert master_is(d2) is False
    d1.write([inst(name="VI_2", vrid=52, virtual_addresses=["192.0.2.101/24"])])
    d1.signal(signal.SIGHUP)
    assert wait_for(lambda: "VI_1" not in d1.state()["instances"], 3)
    assert wait_for(lambda: master_is(d2), 3)
    assert f"{VIP}/24" not in d1.addresses()


def _add_address(lab: Lab, host: str, address: str, proto: int) -> None:
    """Add ``address`` to eth0 with IFA_PROTO ``proto`` (iproute2 6.1 cannot set it)."""
    code = (
        "from pyroute2 import IPRoute\n"
        "ipr = IPRoute(); idx = ipr.link_lookup(ifname='eth0')[0]\n"
        f"ipr.addr('add', index=idx, address='{address}', prefixlen=24"
        + (f", proto={proto})" if proto else ")")
    )
    lab[host].run([sys.executable, "-c", code])


def test_stale_address_from_a_crashed_run_is_removed_at_start(lab: Lab, tmp_path: Path) -> None:
    _add_address(lab, "h2", VIP, ADDRESS_PROTO)  # as a killed vrrpyd leaves it
    d1, d2 = pair(lab, tmp_path, {"priority": 200}, {"priority": 100})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    assert VIP not in d2.addresses()


@pytest.mark.skipif(not kernel_marks_addresses(), reason="kernel < 6.3 keeps no IFA_PROTO")
def test_an_address_the_administrator_configured_is_never_removed(lab: Lab, tmp_path: Path) -> None:
    _add_address(lab, "h2", VIP, 0)
    d2 = Daemon(lab["h2"], tmp_path, [inst(priority=100)]).start()
    assert wait_for(lambda: master_is(d2), 3)
    assert d2.terminate() == 0
    assert f"{VIP}/24" in d2.addresses()
    assert "did not put it there" in d2.log.read_text()


def test_sigusr1_rewrites_the_state_file(lab: Lab, tmp_path: Path) -> None:
    d1 = Daemon(lab["h1"], tmp_path, [inst(priority=200)]).start()
    assert wait_for(lambda: master_is(d1), 3)
    d1.state_file.unlink()
    d1.signal(signal.SIGUSR1)
    assert wait_for(d1.state_file.exists, 3)
    assert d1.state()["pid"] == d1.proc.pid  # type: ignore[union-attr]


BAD_CONFIGS = [
    ("vrid = 300", "instance[A].vrid"),
    ('vrid = "51"', "instance[A].vrid"),
    ("vrid = 51\npriority = true", "instance[A].priority"),
    ('vrid = 51\nvirtual_addresses = ["192.0.2.1/24", "2001:db8::1/64"]', "virtual_addresses"),
    ("vrid = 51\nbogus = 1", "instance[A].bogus"),
    ("vrid = 51\npriority = 255", "instance[A].priority"),
]


@pytest.mark.parametrize(("lines", "key"), BAD_CONFIGS)
def test_check_reports_bad_configs_with_their_keys(
    lab: Lab, tmp_path: Path, lines: str, key: str
) -> None:
    bad = tmp_path / "bad.toml"
    text = (
        f'[global]\nstate_file = "{tmp_path}/s.json"\n\n[[instance]]\nname = "A"\n'
        f'interface = "eth0"\n{lines}\n'
    )
    if "virtual_addresses" not in lines:
        text += 'virtual_addresses = ["192.0.2.100/24"]\n'
    bad.write_text(text)
    out = lab["h1"].run(
        [sys.executable, "-m", "vrrpy.daemon", "--check", "-c", str(bad)], check=False
    )
    assert out.returncode == 1, out.stdout
    assert key in out.stderr, out.stderr


def test_check_accepts_a_good_config_and_an_owner_that_owns(lab: Lab, tmp_path: Path) -> None:
    lab["h1"].run(["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"])
    good = tmp_path / "good.toml"
    good.write_text(
        f'[global]\nstate_file = "{tmp_path}/s.json"\n\n[[instance]]\nname = "A"\n'
        f'interface = "eth0"\nvrid = 51\npriority = 255\nvirtual_addresses = ["{VIP}/24"]\n'
    )
    out = lab["h1"].run([sys.executable, "-m", "vrrpy.daemon", "--check", "-c", str(good)])
    assert out.returncode == 0 and "OK" in out.stdout


def test_client_neighbour_entry_moves_to_the_new_master_over_ipv6(lab: Lab, tmp_path: Path) -> None:
    v6 = {"virtual_addresses": ["2001:db8::100/64"]}
    d1, d2 = pair(lab, tmp_path, {"priority": 200, **v6}, {"priority": 100, **v6})
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    client = lab["h3"]
    client.run(
        [
            sys.executable,
            "-c",
            "import socket; socket.socket(socket.AF_INET6, "
            "socket.SOCK_DGRAM).sendto(b'x', ('2001:db8::100', 9))",
        ]
    )

    def neigh() -> str:
        return client.run(["ip", "-6", "neigh", "show", "2001:db8::100"]).stdout

    assert wait_for(lambda: lab["h1"].mac in neigh(), 3), neigh()
    d1.kill()
    lab["h1"].link(False)
    assert wait_for(lambda: lab["h2"].mac in neigh(), 3), neigh()


def _tcp_probe(lab: Lab, address: str) -> str:
    """What a client sees connecting to ``address``:9 ("refused" = delivered, "dropped")."""
    code = (
        "import socket\n"
        "s = socket.socket(); s.settimeout(0.5)\n"
        "try:\n"
        f"    s.connect(('{address}', 9)); print('open')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError: print('dropped')\n"
    )
    return lab["h3"].run([sys.executable, "-c", code]).stdout.strip()


@pytest.mark.parametrize(("accept", "expected"), [(False, "dropped"), (True, "refused")])
def test_accept_mode_decides_whether_the_master_takes_traffic_to_the_vip(
    lab: Lab, tmp_path: Path, accept: bool, expected: str
) -> None:
    d1 = Daemon(lab["h1"], tmp_path, [inst(priority=200, accept=accept)]).start()
    assert wait_for(lambda: master_is(d1), 3)
    assert _tcp_probe(lab, VIP) == expected
    assert _tcp_probe(lab, "192.0.2.11") == "refused"  # the host's own address is untouched
    assert d1.terminate() == 0
    tables = lab["h1"].run(["nft", "list", "tables"]).stdout
    assert "vrrpy" not in tables


def test_global_netns_runs_the_daemon_inside_a_named_namespace(lab: Lab, tmp_path: Path) -> None:
    host = lab["h1"]
    conf = tmp_path / "netns.toml"
    state = tmp_path / "netns-state.json"
    conf.write_text(
        f'[global]\nstate_file = "{state}"\nnetns = "{host.netns}"\n\n[[instance]]\n'
        f'name = "VI_1"\ninterface = "eth0"\nvrid = 51\npriority = 200\n'
        f'advert_interval = 0.1\nvirtual_addresses = ["{VIP}/24"]\n'
    )
    proc = subprocess.Popen([sys.executable, "-m", "vrrpy.daemon", "-c", str(conf)])
    try:
        assert wait_for(lambda: state.exists() and '"MASTER"' in state.read_text(), 5)
        assert f"{VIP}/24" in host.run(["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    assert VIP not in host.run(["ip", "-o", "addr", "show", "dev", "eth0"]).stdout


def test_ipv6_vmac_adverts_leave_from_the_parents_link_local_and_the_virtual_mac(
    lab: Lab, tmp_path: Path
) -> None:
    v6 = {"virtual_addresses": ["2001:db8::100/64"], "use_vmac": True}
    d1, d2 = pair(lab, tmp_path, {"priority": 200, **v6}, v6)
    d1.start()
    d2.start()
    assert wait_for(lambda: master_is(d1) and backup_is(d2), 3)
    assert "2001:db8::100/64" in d1.addresses("vrrp6.51")
    cap = Capture(lab["h3"])
    time.sleep(0.3)
    records = [r for r in cap.stop() if r["kind"] == "vrrp"]
    assert records
    assert {(r["src"], r["src_mac"]) for r in records} == {
        (str(lab["h1"].link_local), "00:00:5e:00:02:33")
    }
    # No macvlan has an address generated from the virtual MAC (it would be the same on
    # every router): the Backup's carries its parent's link-local, if anything.
    backup_vmac = lab["h2"].run(["ip", "-o", "-6", "addr", "show", "dev", "vrrp6.51"]).stdout
    assert "fe80::200:5eff" not in backup_vmac
