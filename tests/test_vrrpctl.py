"""vrrpctl against a live vrrpyd pair: status, show, JSON, events across a failover, reload,
exit codes, and the control socket's permissions."""

from __future__ import annotations

import grp
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import lab_instance, require_root
from vrrpy.ctl import main as vrrpctl_main
from vrrpy.daemon.config import ConfigFileError, load_config
from vrrpy.lab import Daemon, Lab, running, wait_for
from vrrpy.lab.netns import stop_process
from vrrpy.observe.control import ControlServer, EventFeed
from vrrpy.observe.show import render_detail, render_summary


def vrrpctl(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vrrpy.ctl", "-s", str(sock), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def instance(priority: int, **extra: Any) -> dict[str, Any]:
    return lab_instance(priority, **extra)


@pytest.fixture
def pair() -> Iterator[tuple[Lab, Daemon, Daemon]]:
    require_root()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=2) as lab:
        daemons = [
            Daemon(lab[f"h{i}"], Path(tmp), [instance(priority)])
            for i, priority in ((1, 200), (2, 100))
        ]
        with running(daemons) as (h1, h2):
            assert wait_for(lambda: h1.instance()["state"] == "MASTER", 5)
            assert wait_for(lambda: h2.instance()["state"] == "BACKUP", 5)
            yield lab, h1, h2


def socket_of(daemon: Daemon) -> Path:
    return daemon.dir / "vrrpyd.sock"  # beside the state file, by default


def test_status_show_and_json_are_shaped_like_frr(pair: tuple[Lab, Daemon, Daemon]) -> None:
    _, h1, h2 = pair
    sock = socket_of(h1)
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600  # root only by default

    done = vrrpctl(sock, "status")
    assert done.returncode == 0, done.stderr
    header, _rule, row = done.stdout.splitlines()
    assert header.split() == [
        "Instance", "Interface", "VRID", "Family", "Priority", "Addresses", "State", "Master"
    ]  # fmt: skip
    assert row.split() == ["VI_1", "eth0", "51", "IPv4", "200", "1", "Master", "192.0.2.11"]

    shown = vrrpctl(sock, "show", "VI_1", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert {k: doc[k] for k in ("vrid", "version", "preemptMode", "acceptMode")} == {
        "vrid": 51,
        "version": 3,
        "preemptMode": True,
        "acceptMode": False,
    }
    assert doc["advertisementInterval"] == 100
    v4 = doc["v4"]
    assert v4["status"] == "Master" and v4["effectivePriority"] == 200
    assert v4["primaryAddress"] == "192.0.2.11"
    assert v4["masterAdverInterval"] == 100
    assert v4["masterDownInterval"] == 300 + round((256 - 200) * 100 / 256)
    assert v4["addresses"] == ["192.0.2.100"]
    assert v4["stats"]["adverTx"] > 0 and v4["stats"]["transitions"] == 2
    assert doc["vrrpy"]["addresses_installed"] == {"192.0.2.100/24": True}
    assert "v6" not in doc

    assert [(t["from"], t["to"], t["code"]) for t in doc["vrrpy"]["recent_transitions"]] == [
        ("INIT", "BACKUP", "startup"),
        ("BACKUP", "MASTER", "master_down"),
    ]
    text = vrrpctl(socket_of(h2), "show", "VI_1").stdout
    assert "INIT -> BACKUP (startup): startup" in text
    assert "Status (v4)" in text and "Backup" in text
    assert "192.0.2.100/24 (NOT on the interface)" in text  # a Backup must not have it

    missing = vrrpctl(sock, "show", "VI_9")
    assert missing.returncode == 4 and "no instance 'VI_9'" in missing.stderr


def test_events_follow_a_failover_and_reload_rereads_the_file(
    pair: tuple[Lab, Daemon, Daemon],
) -> None:
    _, h1, h2 = pair
    follower = subprocess.Popen(
        [sys.executable, "-m", "vrrpy.ctl", "-s", str(socket_of(h2)), "events"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)  # the follower is connected
        h1.kill()
        assert wait_for(lambda: h2.instance()["state"] == "MASTER", 5)
        assert follower.stdout is not None
        event = json.loads(follower.stdout.readline())
        assert {k: event[k] for k in ("event", "instance", "from", "to", "code")} == {
            "event": "transition",
            "instance": "VI_1",
            "from": "BACKUP",
            "to": "MASTER",
            "code": "master_down",
        }
        assert "no advert from master 192.0.2.11" in event["reason"]

        # reload: the file now has a second instance; vrrpctl asks, the daemon reads it.
        h2.write([instance(100), instance(100, name="VI_2", vrid=52,
                                          virtual_addresses=["192.0.2.102/24"])])  # fmt: skip
        done = vrrpctl(socket_of(h2), "reload")
        assert done.returncode == 0 and "reload requested" in done.stdout
        assert wait_for(lambda: "VI_2" in h2.state()["instances"], 5)
        event = json.loads(follower.stdout.readline())
        assert (event["instance"], event["to"], event["code"]) == ("VI_2", "BACKUP", "startup")
    finally:
        stop_process(follower)


def test_exit_codes_say_fault_and_unreachable(tmp_path: Path) -> None:
    require_root()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        # The interface goes down: the instance is in FAULT.
        daemon = Daemon(lab["h1"], Path(tmp), [instance(200)]).start()
        try:
            lab["h1"].link(up=False)
            assert wait_for(lambda: daemon.instance()["state"] == "FAULT", 5)
            done = vrrpctl(socket_of(daemon), "status")
            assert done.returncode == 2, done
            assert "Fault" in done.stdout
        finally:
            daemon.terminate()
        assert not socket_of(daemon).exists(), "the daemon removes its socket on exit"
    gone = vrrpctl(tmp_path / "nothing.sock", "status")
    assert gone.returncode == 1 and "is vrrpyd running?" in gone.stderr


def test_the_socket_is_for_root_or_the_configured_group(tmp_path: Path) -> None:
    require_root()
    group = grp.getgrgid(0).gr_name  # a group that exists everywhere
    path = tmp_path / "v.toml"
    base = (
        '[[instance]]\nname = "VI_1"\ninterface = "eth0"\nvrid = 51\n'
        'virtual_addresses = ["192.0.2.100/24"]\n'
    )
    path.write_text(f'[global]\ncontrol_group = "{group}"\n\n' + base)
    assert load_config(str(path)).global_.control_group == group
    path.write_text('[global]\ncontrol_group = "no-such-group-vrrpy"\n\n' + base)
    with pytest.raises(ConfigFileError) as caught:
        load_config(str(path))
    assert caught.value.errors[0].key == "global.control_group"
    path.write_text('[global]\ncontrol_socket = "relative.sock"\n\n' + base)
    with pytest.raises(ConfigFileError) as caught:
        load_config(str(path))
    assert caught.value.errors[0].key == "global.control_socket"
    path.write_text('[global]\ncontrol_socket = ""\n\n' + base)
    assert load_config(str(path)).global_.control_path is None
    path.write_text('[global]\nstate_file = "/run/x/state.json"\n\n' + base)
    assert load_config(str(path)).global_.control_path == "/run/x/vrrpyd.sock"

    # The library server: mode 0660 and the group with control_group; a long path works.
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    sock = deep / "vrrpyd.sock"
    feed = EventFeed()
    server = ControlServer(str(sock), lambda: ({}, {"pid": 1}), feed, group=0)
    server.start()
    try:
        info = os.stat(sock)
        assert stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == 0
        assert vrrpctl_main(["-s", str(sock), "status"]) == 0
        # A second daemon on the same socket is refused, a stale file is replaced.
        with pytest.raises(OSError, match="another daemon answers"):
            ControlServer(str(sock), lambda: ({}, {}), EventFeed()).start()
    finally:
        server.stop()
        feed.close()
    assert not sock.exists()


def test_a_hostile_client_gets_an_error_and_the_server_goes_on(tmp_path: Path) -> None:
    import socket

    feed = EventFeed()
    path = tmp_path / "c.sock"
    server = ControlServer(str(path), lambda: ({"VI_1": {}}, {}), feed)
    server.start()
    try:
        for payload in (b"\xff\xfe garbage\n", b'{"command": 7}\n', b"[]\n", b"x" * 5000):
            with socket.socket(socket.AF_UNIX) as client:
                client.settimeout(5)
                client.connect(str(path))
                client.sendall(payload)
                answer = json.loads(client.makefile().readline())
                assert answer["ok"] is False
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(path))
            client.sendall(b'{"command": "status"}\n')
            assert json.loads(client.makefile().readline())["instances"] == {"VI_1": {}}
        # A follower that falls behind the backlog is told how much it missed.
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(path))
            client.sendall(b'{"command": "events"}\n')
            reader = client.makefile()
            assert json.loads(reader.readline())["events"] == "follow"
            for n in range(3):
                feed.publish({"event": "test", "n": n})
            assert [json.loads(reader.readline())["n"] for _ in range(3)] == [0, 1, 2]
    finally:
        server.stop()
        feed.close()


def test_text_renderers_cope_with_missing_fields() -> None:
    doc = {"vrid": 7, "protocol": "carp", "interface": "eth1", "priority": 100,
           "v6": {"status": "Fault", "effectivePriority": 0, "addresses": ["2001:db8::7"]},
           "vrrpy": {"state": "FAULT", "faults": ["link eth1 down"]}}  # fmt: skip
    assert "CARP IPv6" in render_summary({"VH_7": doc})
    detail = render_detail("VH_7", doc)
    assert "link eth1 down" in detail and "2001:db8::7" in detail


def test_import_keepalived_is_a_vrrpctl_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "keepalived"
    assert vrrpctl_main(["import-keepalived", str(fixtures / "templated.conf")]) == 0
    assert "[[instance]]" in capsys.readouterr().out
    out = tmp_path / "v.toml"
    code = vrrpctl_main(["import-keepalived", "-o", str(out), str(fixtures / "sync_group.conf")])
    assert code == 1 and "[[instance]]" in out.read_text()  # excluded addresses: a script
    assert "changed" in capsys.readouterr().err
    assert vrrpctl_main(["import-keepalived", str(tmp_path / "missing.conf")]) == 2
