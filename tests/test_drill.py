"""``vrrpy drill``: the user's configuration mapped to a lab, the predictions, the figures,
and one real drill of the example configuration.

Most of it needs no root: the mapping from a vrrpyd file to the two lab routers
(interfaces renamed to lab links, addresses moved into the documentation ranges,
unicast peers pointed at the other lab router, what cannot run in a lab left out
and said so), the predictions (RFC 9568's timers with the user's figures), the
arithmetic over the client's probe records, and the command line. The last test
runs the drill as root on ``examples/vrrpyd.toml``'s first instance at 100 ms
adverts and checks its table against the predictions, and that the lab left
nothing behind.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import types
from ipaddress import IPv4Network, IPv6Network, ip_interface
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from support import require_root, require_tool
from vrrpy.daemon.config import ConfigFileError, parse_config
from vrrpy.drill import cli, source
from vrrpy.drill.measure import neighbour_moves, probe_summary
from vrrpy.drill.plan import Addressing, DrillPlan, plan_drill
from vrrpy.drill.predict import InstanceModel, ScriptTiming, Side, expect, failing_priority
from vrrpy.drill.source import DrillError, read_config
from vrrpy.track.model import Kind, Track

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALLOWED = (
    IPv4Network("192.0.2.0/24"),
    IPv4Network("198.51.100.0/24"),
    IPv4Network("203.0.113.0/24"),
    IPv6Network("2001:db8::/32"),
    IPv6Network("fe80::/10"),
)


def write(tmp_path: Path, document: dict[str, Any], name: str = "vrrpyd.toml") -> str:
    path = tmp_path / name
    path.write_text(tomli_w.dumps(document))
    return str(path)


def instance(name: str = "VI_1", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "interface": "eth0",
        "vrid": 51,
        "priority": 150,
        "virtual_addresses": ["192.0.2.100/24"],
        **extra,
    }


def documents(plan: DrillPlan, tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Both routers' vrrpyd documents, each checked by vrrpyd's own loader."""
    addressing = Addressing.synthetic(plan.links)
    out = {}
    for router in ("r1", "r2"):
        plan.config(router, addressing, tmp_path)  # raises if vrrpyd would refuse it
        out[router] = plan.document(router, addressing, tmp_path)
    return out


def notes(plan: DrillPlan) -> str:
    return "\n".join(str(n) for n in plan.notes)


# ------------------------------------------------------------------- the mapping


def test_example_pair_runs_on_lab_links_with_peers_and_lowered_priorities(
    tmp_path: Path,
) -> None:
    plan = plan_drill(read_config(str(EXAMPLES / "vrrpyd.toml")))
    assert [(link.user, link.lab, str(link.ipv4)) for link in plan.links] == [
        ("eth0", "eth0", "192.0.2.0/24"),
        ("eth1", "eth1", "198.51.100.0/24"),
    ]
    docs = documents(plan, tmp_path)
    r1 = {i["name"]: i for i in docs["r1"]["instance"]}
    r2 = {i["name"]: i for i in docs["r2"]["instance"]}
    # Kept as written: VRIDs, versions, intervals, authentication, addresses in range.
    assert (r1["VI_1"]["vrid"], r1["VI_1"]["version"], r1["VI_1"]["advert_interval"]) == (
        51,
        3,
        1.0,
    )
    assert (r1["VI_2"]["vrid"], r1["VI_2"]["version"], r1["VI_2"]["advert_interval"]) == (
        52,
        2,
        2.0,
    )
    assert r1["VI_2"]["auth_pass"] == "s3cret"
    assert r1["VI_1"]["virtual_addresses"] == ["192.0.2.100/24", "192.0.2.101/24"]
    # VI_2's address is in eth0's network but VI_2 runs on eth1: moved into eth1's.
    assert r1["VI_2"]["virtual_addresses"] == ["198.51.100.200/32"]
    assert plan.address_map == {"192.0.2.200": "198.51.100.200"}
    # Unicast peers: the other lab router on that link.
    assert r1["VI_2"]["unicast_peers"] == ["198.51.100.12"]
    assert r2["VI_2"]["unicast_peers"] == ["198.51.100.11"]
    # The second router: priorities 50 lower.
    assert (r1["VI_1"]["priority"], r2["VI_1"]["priority"]) == (150, 100)
    assert (r1["VI_2"]["priority"], r2["VI_2"]["priority"]) == (100, 50)
    assert all(i["accept"] is True for i in r1.values())
    text = notes(plan)
    assert "interface eth1: lab link eth1 (198.51.100.0/24" in text
    assert "192.0.2.200 -> 198.51.100.200" in text
    assert "192.0.2.2, 192.0.2.3 -> the other lab router (1 more" in text
    assert "accept: false -> true" in text


def test_interfaces_are_renamed_to_lab_links_and_the_output_says_so(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "instance": [
                instance("A", interface="ens3"),
                instance("B", interface="bond0.12", vrid=52, virtual_addresses=["192.0.2.50"]),
                instance("C", interface="ens3", vrid=53, virtual_addresses=["192.0.2.60/24"]),
            ]
        },
    )
    plan = plan_drill(read_config(path))
    assert [(link.user, link.lab) for link in plan.links] == [
        ("ens3", "eth0"),
        ("bond0.12", "eth1"),
    ]
    interfaces = {i["name"]: i["interface"] for i in documents(plan, tmp_path)["r1"]["instance"]}
    assert interfaces == {"A": "eth0", "B": "eth1", "C": "eth0"}
    assert "interface ens3: lab link eth0" in notes(plan)
    assert "interface bond0.12: lab link eth1" in notes(plan)


def test_addresses_outside_the_documentation_ranges_are_moved_into_the_links_networks(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        {
            "instance": [
                instance("A", virtual_addresses=["10.1.2.5/16", "192.0.2.11/24"]),
                instance(
                    "B",
                    interface="eth1",
                    vrid=7,
                    virtual_addresses=["2001:db8:77::1/64", "fe80::7"],
                    unicast_peers=["fe80::2"],
                ),
                instance("C", vrid=9, virtual_addresses=["172.16.0.100/32"]),
            ]
        },
    )
    plan = plan_drill(read_config(path))
    docs = documents(plan, tmp_path)
    vips = {i["name"]: i["virtual_addresses"] for i in docs["r1"]["instance"]}
    # The last byte is kept where it is free; a lab host's own address (.11) is not.
    assert vips["A"][0] == "192.0.2.5/24"
    assert vips["A"][1] == "192.0.2.100/24"
    assert vips["B"] == ["2001:db8:0:1::1/64", "fe80::7/128"]
    assert vips["C"] == ["192.0.2.101/32"]  # .100 is taken by then
    for table in docs["r1"]["instance"] + docs["r2"]["instance"]:
        for text in table["virtual_addresses"] + table.get("unicast_peers", []):
            address = ip_interface(text).ip
            assert any(address in network for network in ALLOWED), text
    # IPv6 unicast peers are link-local: the other router's on that link.
    b2 = next(i for i in docs["r2"]["instance"] if i["name"] == "B")
    assert b2["unicast_peers"] == [str(Addressing.synthetic(plan.links).link_local[(1, 1)])]
    assert "10.1.2.5 -> 192.0.2.5" in notes(plan)
    assert "2001:db8:77::1 -> 2001:db8:0:1::1" in notes(plan)


def test_what_cannot_run_in_a_lab_is_left_out_and_reported(tmp_path: Path) -> None:
    plan = plan_drill(read_config(str(EXAMPLES / "vrrpyd-tracking.toml")))
    text = notes(plan)
    assert "instance[gw4].track_process: nginx left out" in text
    assert "sync_group[gw].track_interface: eth1 left out" in text
    assert "sync_group[gw].track_file: maintenance left out" in text
    assert "sync_group[gw].track_ping: upstream left out" in text
    assert "track_script[chk_nginx]" in text and "user left out (runs as root)" in text
    docs = documents(plan, tmp_path)
    assert docs["r1"]["sync_group"] == [
        {
            "name": "gw",
            "members": ["gw4", "gw6"],
            "tracking_weight": True,
            "track_script": [{"name": "chk_nginx", "weight": -20}],
        }
    ]
    assert "track_process" not in docs["r1"]["instance"][0]

    path = write(
        tmp_path,
        {
            "global": {"metrics_listen": "127.0.0.1:9165", "realtime_priority": 5},
            "backend": [{"name": "db", "type": "python", "object": "os:getcwd"}],
            "instance": [
                instance(notify_master="/usr/bin/true", notify_backup="/usr/bin/true"),
                {
                    "name": "web",
                    "protocol": "carp",
                    "interface": "eth0",
                    "vhid": 7,
                    "password": "secret",
                    "virtual_addresses": ["192.0.2.50/24"],
                },
            ],
        },
        "notify.toml",
    )
    plan = plan_drill(read_config(path))
    text = notes(plan)
    assert "instance[VI_1]: notify_backup, notify_master left out" in text
    assert "instance[web]: CARP: not drilled" in text
    assert "global: metrics_listen left out" in text
    assert plan.instances == ("VI_1",)
    assert documents(plan, tmp_path)["r1"]["global"]["realtime_priority"] == 5


def test_a_tracked_script_keeps_its_timing_and_fails_when_the_drill_says(tmp_path: Path) -> None:
    plan = plan_drill(read_config(str(EXAMPLES / "vrrpyd-tracking.toml")))
    (tmp_path / "h1").mkdir()
    script = documents(plan, tmp_path)["r1"]["track_script"][0]
    assert {k: script[k] for k in ("interval", "timeout", "rise", "fall", "weight")} == {
        "interval": 2.0,
        "timeout": 1.0,
        "rise": 2,
        "fall": 2,
        "weight": -20,
    }
    argv = script["script"].split()
    assert subprocess.run(argv, check=False).returncode == 0
    plan.flag("r1", "chk_nginx", tmp_path).write_text("down\n")
    assert subprocess.run(argv, check=False).returncode == 1


def test_peer_priorities_from_an_option_or_from_the_peers_own_file(tmp_path: Path) -> None:
    path = write(tmp_path, {"instance": [instance(priority=200)]})
    plan = plan_drill(read_config(path), peer_priority="180")
    assert documents(plan, tmp_path)["r2"]["instance"][0]["priority"] == 180
    plan = plan_drill(read_config(path), peer_priority="-250")
    assert documents(plan, tmp_path)["r2"]["instance"][0]["priority"] == 1
    with pytest.raises(DrillError, match="peer-priority"):
        plan_drill(read_config(path), peer_priority="many")

    peer = write(tmp_path, {"instance": [instance(priority=90, interface="ens5")]}, "peer.toml")
    plan = plan_drill(read_config(path), read_config(peer))
    docs = documents(plan, tmp_path)
    assert docs["r2"]["instance"][0]["priority"] == 90
    assert docs["r2"]["instance"][0]["interface"] == "eth0"
    assert "ens5 -> lab link eth0" in notes(plan)
    other = write(tmp_path, {"instance": [instance(vrid=99)]}, "other.toml")
    with pytest.raises(DrillError, match="would not form one virtual router"):
        plan_drill(read_config(path), read_config(other))


def test_instance_selection_brings_sync_group_partners_along(tmp_path: Path) -> None:
    plan = plan_drill(read_config(str(EXAMPLES / "vrrpyd-tracking.toml")), only=["gw6"])
    assert plan.instances == ("gw4", "gw6")
    assert "gw4 drilled too: a sync group moves as one" in notes(plan)
    plan = plan_drill(read_config(str(EXAMPLES / "vrrpyd.toml")), only=["VI_2"])
    assert plan.instances == ("VI_2",)
    assert [link.user for link in plan.links] == ["eth1"]
    with pytest.raises(DrillError, match="no such instance"):
        plan_drill(read_config(str(EXAMPLES / "vrrpyd.toml")), only=["VI_9"])


def test_a_file_vrrpyd_refuses_is_refused_with_vrrpyds_words(tmp_path: Path) -> None:
    path = write(tmp_path, {"instance": [instance(vrid=300)]})
    with pytest.raises(DrillError, match=r"instance\[VI_1\]\.vrid"):
        read_config(path)


# ------------------------------------------------------------------ keepalived.conf

KEEPALIVED_CONF = """\
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def test_keepalived_conf_without_the_importer_gets_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(KEEPALIVED_CONF)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        source.importlib.util,
        "find_spec",
        lambda name, *a: None if name == source.IMPORTER else real(name, *a),
    )
    with pytest.raises(DrillError, match="no keepalived importer"):
        read_config(str(path))


def test_keepalived_conf_goes_through_the_importer_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drill asks the importer only for ``convert(parse_file(path)).document``."""
    seen: list[Any] = []

    def convert(parsed: Any) -> Any:
        seen.append(parsed)
        return types.SimpleNamespace(
            document={"instance": [instance(advert_interval=1.0)]}, problems=["a note"]
        )

    fake = types.ModuleType(source.IMPORTER)
    fake.convert = convert  # type: ignore[attr-defined]
    fake.__spec__ = importlib.machinery.ModuleSpec(source.IMPORTER, None)
    monkeypatch.setitem(sys.modules, source.IMPORTER, fake)
    path = tmp_path / "keepalived.conf"
    path.write_text(KEEPALIVED_CONF)
    user = read_config(str(path))
    assert "keepalived.conf" in user.origin
    assert user.import_report == ("a note",)
    assert [s.name for s in user.config.instances] == ["VI_1"]
    assert seen and seen[0].statements[0].keyword == "vrrp_instance"


# --------------------------------------------------------------------- predictions


def model(
    p1: int = 150, p2: int = 100, interval: float = 1.0, version: int = 3, **side: Any
) -> InstanceModel:
    tracks = side.pop("tracks", ())
    scripts = side.pop("scripts", {})
    return InstanceModel(
        "VI_1",
        version,
        interval,
        {
            "r1": Side("r1", p1, True, 0.0, tracks, scripts),
            "r2": Side("r2", p2, side.get("preempt", True), 0.0, (), {}),
        },
    )


def test_predictions_follow_rfc_9568_with_the_users_figures() -> None:
    m = model()
    graceful = expect("graceful", "fail", m, "r1", "r2")
    assert graceful.outage == pytest.approx((0.609375, 0.609375))
    crash = expect("crash", "fail", m, "r1", "r2")
    assert crash.outage == pytest.approx((2.609375, 3.609375))
    back = expect("crash", "back", m, "r1", "r2")
    assert back.outage == (0.0, 0.0) and back.takeover == pytest.approx((2.4140625, 3.4140625))
    # VRRPv2: the skew is not scaled by the interval.
    v2 = model(p2=50, interval=2.0, version=2)
    assert expect("graceful", "fail", v2, "r1", "r2").outage[1] == pytest.approx(206 / 256)
    assert expect("crash", "fail", v2, "r1", "r2").outage[1] == pytest.approx(6 + 206 / 256)


def test_a_tracked_script_moves_the_address_only_if_its_weight_is_enough() -> None:
    timing = {"chk": ScriptTiming(2.0, 2, 2)}
    weak = model(tracks=(Track("chk", Kind.SCRIPT, -20),), scripts=timing)
    assert failing_priority(weak.sides["r1"]) == 130
    never = expect("track", "fail", weak, "r1", "r2")
    assert never.takeover is None and never.outage == (4.0, None)
    strong = model(tracks=(Track("chk", Kind.SCRIPT, -60),), scripts=timing)
    moved = expect("track", "fail", strong, "r1", "r2")
    assert moved.outage == pytest.approx((2.0 + 3.609375 - 1.0, 4.0 + 3.609375))
    fault = model(tracks=(Track("chk", Kind.SCRIPT, 0),), scripts=timing)
    assert failing_priority(fault.sides["r1"]) is None
    assert expect("track", "fail", fault, "r1", "r2").outage == pytest.approx((2.609375, 4.609375))
    no_preempt = model(tracks=(Track("chk", Kind.SCRIPT, -60),), scripts=timing, preempt=False)
    assert expect("track", "fail", no_preempt, "r1", "r2").takeover is None


# ------------------------------------------------------------------ figures


def test_probe_gaps_run_from_the_first_lost_probe_to_the_next_answered_one() -> None:
    records: list[dict[str, Any]] = []
    for n in range(1, 101):  # a probe every 10 ms from t = 100.00
        t = 100 + n * 0.01
        records.append({"k": "s", "n": n, "t": t})
        if not 31 <= n <= 60:  # 30 probes unanswered: 0.30 s
            records.append({"k": "r", "i": 0, "n": n, "t": t + 0.0002})
    summary = probe_summary(records, 0, 100.0, 102.0)
    assert summary.lost == 30 and summary.probes == 100
    assert summary.outage == pytest.approx(0.30)
    assert not summary.open
    # Cut the window inside the gap: still out, counted to the window's end.
    summary = probe_summary(records, 0, 100.0, 100.50 + 0.05)
    assert summary.open and summary.outage == pytest.approx(0.50 - 0.31)
    assert probe_summary(records, 1, 100.0, 102.0).lost == 100  # another target's replies


def test_neighbour_moves_are_changes_of_mac_within_the_window() -> None:
    records = [
        {"k": "n", "dst": "192.0.2.100", "ll": "aa", "t": 1.0},
        {"k": "n", "dst": "192.0.2.100", "ll": None, "t": 2.1},  # FAILED: no MAC
        {"k": "n", "dst": "192.0.2.100", "ll": "aa", "t": 2.2},
        {"k": "n", "dst": "192.0.2.100", "ll": "bb", "t": 2.5},
        {"k": "n", "dst": "192.0.2.101", "ll": "cc", "t": 2.6},
    ]
    assert neighbour_moves(records, "192.0.2.100", 2.0, 3.0) == ("aa", [(2.5, "bb")])


# -------------------------------------------------------------------- the command


def test_dry_run_prints_both_routers_files_without_root(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main([str(EXAMPLES / "vrrpyd.toml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "# --- r1" in out and "# --- r2" in out
    for part in out.split("# --- ")[1:]:
        body = part.split("\n", 1)[1]
        parse_config(body)  # what the lab would run is a valid vrrpyd file


def test_bad_options_and_missing_root_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = str(EXAMPLES / "vrrpyd.toml")
    assert cli.main([example, "--scenario", "crash,meteor"]) == 2
    assert "meteor" in capsys.readouterr().err
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    assert cli.main([example]) == 2
    assert "needs root" in capsys.readouterr().err
    assert cli.vrrpy_main([]) == 2
    assert cli.vrrpy_main(["--help"]) == 0


def test_python_m_vrrpy_drill_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vrrpy.drill", str(EXAMPLES / "vrrpyd.toml"), "--dry-run"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "vrid = 52" in result.stdout


def test_plan_documents_are_what_vrrpyd_accepts(tmp_path: Path) -> None:
    for name in ("vrrpyd.toml", "vrrpyd-tracking.toml", "vrrpyd-lvs.toml"):
        plan = plan_drill(read_config(str(EXAMPLES / name)))
        try:
            documents(plan, tmp_path)
        except ConfigFileError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{name}: {exc}")


# ----------------------------------------------------------------- a real drill


def _lab_leftovers() -> tuple[set[str], set[str], set[int]]:
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"vrrpy-drill-" in cmdline:
                pids.add(int(entry.name))
    return (
        {line.split()[0] for line in netns.splitlines() if line.startswith("vd")},
        {
            name
            for line in links.splitlines()
            if (name := line.split(":")[1].strip().split("@")[0]).startswith("vd")
        },
        pids,
    )


def test_the_drill_of_the_example_config_matches_its_predictions_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """examples/vrrpyd.toml's VI_1 at 100 ms: planned switchover, crash, split brain."""
    require_root()
    require_tool("nft")
    document = dict(source.tomllib.loads((EXAMPLES / "vrrpyd.toml").read_text()))
    for table in document["instance"]:
        if table["name"] == "VI_1":
            table["advert_interval"] = 0.1
    config = write(tmp_path, document, "fast.toml")
    before = _lab_leftovers()
    status = cli.main(
        [config, "--instance", "VI_1", "--scenario", "graceful,crash,split", "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    after = _lab_leftovers()
    assert after[0] <= before[0], f"namespaces left: {after[0] - before[0]}"
    assert after[1] <= before[1], f"links left: {after[1] - before[1]}"
    assert after[2] <= before[2], f"processes left: {after[2] - before[2]}"
    rows = {(r["scenario"], r["phase"]): r for r in report["rows"]}
    assert set(rows) == {
        ("graceful", "fail"),
        ("graceful", "back"),
        ("crash", "fail"),
        ("crash", "back"),
        ("split", "split"),
        ("split", "heal"),
    }
    # Planned switchover: the client loses about Skew_Time (0.061 s for r2's 100 at 100 ms).
    graceful = rows[("graceful", "fail")]
    assert graceful["neighbour_moved_to"] == "r2"
    assert 0.02 <= graceful["outage_s"] <= 0.061 + 0.1
    # Crash: 0.26-0.36 s after the failure; and close to what the last advert predicts.
    crash = rows[("crash", "fail")]
    assert crash["neighbour_moved_to"] == "r2"
    assert 0.261 - 0.06 <= crash["outage_s"] <= 0.361 + 0.1
    if crash["predicted_from_last_advert_s"] is not None:
        assert abs(crash["outage_s"] - crash["predicted_from_last_advert_s"]) < 0.06
    # r1 preempts back: the client follows without losing more than a few probes.
    for phase in (("graceful", "back"), ("crash", "back")):
        assert rows[phase]["neighbour_moved_to"] == "r1"
        assert rows[phase]["outage_s"] <= 0.05
    # Split brain: both answer; at the heal the better Master re-announces at once.
    assert rows[("split", "split")]["outage_s"] <= 0.05
    assert rows[("split", "heal")]["outage_s"] <= 0.15
    assert not rows[("split", "heal")]["still_out"]
    assert status == 0, [r["verdict"] for r in report["rows"]]
    assert report["wall_time_s"] < 40


@pytest.mark.skipif(
    importlib.util.find_spec(source.IMPORTER) is None, reason="no keepalived importer yet"
)
def test_a_keepalived_conf_plans_through_the_real_importer(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(KEEPALIVED_CONF)
    plan = plan_drill(read_config(str(path)))
    assert plan.instances == ("VI_1",)
    documents(plan, tmp_path)
