"""Tracking, FAULT and sync groups end to end: vrrpyd pairs in the namespace lab.

h1 (priority 200) and h2 (priority 100) run the same instances at 100 ms
adverts; what h1 tracks fails and recovers, and the test watches both state
files and h1's addresses:

* a tracked interface (``up0`` in h1, a veth pair standing for its uplink) goes down: h1 goes
  to FAULT and resigns with priority 0, so h2 takes over after Skew_Time (its
  reason says the Master resigned), h1's address is gone; up again, h1 is a
  Backup and preempts back;
* a tracked script fails (a file it tests is removed): h1's priority drops
  below h2's by the script's weight, and h2 preempts;
* a ping group's only target (h3's address) stops answering: h1 faults;
* a v4 + v6 sync group: the IPv6 member tracks ``up0``; when it goes down,
  the IPv4 member goes to FAULT with it and h2 takes both.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support import require_root
from vrrpy.lab import Daemon, Lab, wait_for

INTERVAL = 0.1


def v4(priority: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "VI_4",
        "interface": "eth0",
        "vrid": 51,
        "priority": priority,
        "advert_interval": INTERVAL,
        "virtual_addresses": ["192.0.2.100/24"],
        **extra,
    }


def v6(priority: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": "VI_6",
        "interface": "eth0",
        "vrid": 52,
        "priority": priority,
        "advert_interval": INTERVAL,
        "virtual_addresses": ["2001:db8::100/64"],
        **extra,
    }


def state(daemon: Daemon, name: str = "VI_4") -> str:
    return str(daemon.instance(name)["state"])


def uplink(lab: Lab) -> None:
    """h1's uplink ``up0``: a veth pair inside h1 (this kernel has no dummy driver), so
    that setting it down or up is a real link change."""
    h1 = lab["h1"]
    h1.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p"])
    h1.run(["ip", "link", "set", "up0p", "up"])
    h1.run(["ip", "link", "set", "up0", "up"])


def test_a_tracked_interface_down_faults_the_master_and_the_backup_takes_over_at_skew_time(
    lab: Lab, tmp_path: Path
) -> None:
    require_root()
    uplink(lab)
    h1, h2 = lab["h1"], lab["h2"]
    d1 = Daemon(h1, tmp_path, [v4(200, track_interface=["up0"])])
    d2 = Daemon(h2, tmp_path, [v4(100)])
    d1.start()
    d2.start()
    assert wait_for(lambda: state(d1) == "MASTER" and state(d2) == "BACKUP", 5)
    assert "192.0.2.100" in d1.addresses()
    h1.run(["ip", "link", "set", "up0", "down"])
    assert wait_for(lambda: state(d1) == "FAULT", 3)
    assert wait_for(lambda: state(d2) == "MASTER", 2)
    reason = d2.instance("VI_4")["counters"]["last_transition_reason"]
    assert "priority 0" in reason, reason  # Skew_Time, not Master_Down_Interval
    assert "192.0.2.100" not in d1.addresses()
    assert any("up0" in f for f in d1.instance("VI_4")["faults"])
    h1.run(["ip", "link", "set", "up0", "up"])
    assert wait_for(lambda: state(d1) == "MASTER" and state(d2) == "BACKUP", 5)
    assert d1.instance("VI_4")["faults"] == []


def test_a_failing_script_lowers_the_priority_and_the_peer_preempts(
    lab: Lab, tmp_path: Path
) -> None:
    require_root()
    ok = tmp_path / "service-ok"
    ok.write_text("")
    script = {
        "name": "chk_service",
        "script": f"/usr/bin/test -e {ok}",
        "interval": 0.2,
        "fall": 1,
        "rise": 1,
        "weight": -150,
    }
    d1 = Daemon(
        lab["h1"], tmp_path, [v4(200, track_script=["chk_service"])], {"track_script": [script]}
    )
    d2 = Daemon(lab["h2"], tmp_path, [v4(100)])
    d1.start()
    d2.start()
    assert wait_for(lambda: state(d1) == "MASTER" and state(d2) == "BACKUP", 5)
    ok.unlink()
    assert wait_for(lambda: d1.instance("VI_4")["effective_priority"] == 50, 3)
    assert wait_for(lambda: state(d2) == "MASTER" and state(d1) == "BACKUP", 3)
    # The state file shows the script's last run (SIGUSR1 asks the agent for it).
    d1.refresh()

    def last_run() -> dict[str, Any]:
        tracks = d1.state().get("tracking", {}).get("VI_4", {}).get("tracks", {})
        return dict(tracks.get("chk_service", {}).get("agent", {}).get("last", {}))

    assert wait_for(lambda: last_run().get("status") == 1, 3), last_run()
    assert last_run()["outcome"] == "exit" and last_run()["runtime"] > 0
    ok.write_text("")
    assert wait_for(lambda: state(d1) == "MASTER" and state(d2) == "BACKUP", 5)


def test_an_unreachable_ping_target_faults_the_master(lab: Lab, tmp_path: Path) -> None:
    require_root()
    h3 = lab["h3"]
    target = "198.51.100.3"
    h3.run(["ip", "addr", "add", f"{target}/32", "dev", "eth0"])
    lab["h1"].run(["ip", "route", "add", f"{target}/32", "dev", "eth0"])
    group = {"name": "gw", "targets": [target], "interval": 0.2, "timeout": 0.2, "count": 2}
    d1 = Daemon(lab["h1"], tmp_path, [v4(200, track_ping=["gw"])], {"track_ping": [group]})
    d2 = Daemon(lab["h2"], tmp_path, [v4(100)])
    d1.start()
    d2.start()
    assert wait_for(lambda: state(d1) == "MASTER" and state(d2) == "BACKUP", 5)
    h3.run(["ip", "addr", "del", f"{target}/32", "dev", "eth0"])
    assert wait_for(lambda: state(d1) == "FAULT", 5)
    assert wait_for(lambda: state(d2) == "MASTER", 2)
    h3.run(["ip", "addr", "add", f"{target}/32", "dev", "eth0"])
    assert wait_for(lambda: state(d1) == "MASTER", 5)


def test_a_v4_v6_sync_group_moves_as_one_when_either_member_faults(
    lab: Lab, tmp_path: Path
) -> None:
    require_root()
    uplink(lab)
    h1, h2 = lab["h1"], lab["h2"]
    groups = {"sync_group": [{"name": "gw", "members": ["VI_4", "VI_6"]}]}
    d1 = Daemon(h1, tmp_path, [v4(200), v6(200, track_interface=["up0"])], groups)
    d2 = Daemon(h2, tmp_path, [v4(100), v6(100)], groups)
    d1.start()
    d2.start()

    def states(daemon: Daemon) -> tuple[str, str]:
        return state(daemon, "VI_4"), state(daemon, "VI_6")

    assert wait_for(lambda: states(d1) == ("MASTER", "MASTER"), 5)
    assert wait_for(lambda: states(d2) == ("BACKUP", "BACKUP"), 3)
    h1.run(["ip", "link", "set", "up0", "down"])
    assert wait_for(lambda: states(d1) == ("FAULT", "FAULT"), 3)
    assert wait_for(lambda: states(d2) == ("MASTER", "MASTER"), 3)
    faults = d1.instance("VI_4")["faults"]
    assert faults and faults[0].startswith("sync group gw: VI_6"), faults
    time.sleep(3 * INTERVAL)
    h1.run(["ip", "link", "set", "up0", "up"])
    assert wait_for(lambda: states(d1) == ("MASTER", "MASTER"), 5)
    assert wait_for(lambda: states(d2) == ("BACKUP", "BACKUP"), 3)
