"""``vrrpctl import-keepalived``: keepalived.conf to vrrpyd TOML, and the report of what changes.

Every fixture of ``tests/fixtures/keepalived/`` (the shapes people deploy, and
two of keepalived's quirks) is converted for both config ids; the TOML must be
accepted by vrrpyd's loader, and, as root, by ``vrrpyd --check`` inside a lab
namespace that has the interfaces the fixtures name (``eth0``, and ``eth1`` made
there as a veth). Notes are asserted by file and line. keepalived's rules are
checked on small files (``convert_text``). The command line: exit 0, 1, 2;
hostile files (unbalanced braces, an include loop, a definition that expands
for ever, binary garbage, a 50 MB file) end in one line on stderr, status 2, no
traceback, in bounded time; and mutated fixtures never make it crash.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import require_root, require_tool
from vrrpy.daemon.config import parse_config
from vrrpy.keepalived import KeepalivedParseError, mapping, parse_text
from vrrpy.keepalived.importer import ImportResult, convert, import_file, main, to_toml
from vrrpy.keepalived.notes import Note
from vrrpy.lab import Lab

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIXTURES = Path(__file__).parent / "fixtures" / "keepalived"
DOC = Path(__file__).parent.parent / "docs" / "migrating-from-keepalived.md"

SHAPES: dict[str, int] = {
    "pair_auth_node1.conf": 1,  # label eth0:vip
    "pair_auth_node2.conf": 1,  # label eth0:vip
    "unicast_pair.conf": 1,  # unicast_src_ip
    "sync_group.conf": 1,  # virtual_ipaddress_excluded
    "lvs.conf": 1,  # inhibit_on_failure on one real server
    "include/keepalived.conf": 1,  # virtual_ipaddress_excluded
    "notify_scripts.conf": 0,
    "templated.conf": 0,
    "import/quirks.conf": 1,
    "import/lvs_checkers.conf": 1,
}
"""Every fixture and the exit status of its import: 0 everything carried over."""

CONFIG_IDS = ("lb1", "lb2")


def convert_text(text: str, config_id: str = "lb1") -> ImportResult:
    return convert(parse_text(text, name="k.conf", config_id=config_id))


def notes_at(result: ImportResult, line: int, file: str | None = None) -> list[Note]:
    return [n for n in result.notes if n.line == line and (file is None or n.file.endswith(file))]


def has_note(result: ImportResult, line: int, severity: str, text: str) -> bool:
    return any(n.severity == severity and text in n.message for n in notes_at(result, line))


def instance(result: ImportResult, name: str) -> dict[str, Any]:
    found = [i for i in result.document.get("instance", []) if i["name"] == name]
    assert found, (name, result.document)
    return found[0]


# --- every fixture ------------------------------------------------------------------


@pytest.mark.parametrize("config_id", CONFIG_IDS)
@pytest.mark.parametrize("fixture", sorted(SHAPES))
def test_every_fixture_imports_and_vrrpyd_loads_it(fixture: str, config_id: str) -> None:
    result = import_file(str(FIXTURES / fixture), config_id=config_id)
    text = to_toml(result)
    assert tomllib.loads(text) == result.document
    parse_config(text, fixture)  # raises ConfigFileError with every problem
    assert result.exit_status == SHAPES[fixture], [str(n) for n in result.notes]
    for note in result.notes:
        assert note.line > 0 or note.file == "", note
        assert "\n" not in note.message


def test_fixture_shapes_clean_versus_with_notes() -> None:
    """The count the issue asks for: shapes that import with nothing left out."""
    clean = sorted(f for f, status in SHAPES.items() if status == 0)
    assert clean == ["notify_scripts.conf", "templated.conf"]
    assert len(SHAPES) - len(clean) == 8


@pytest.fixture(scope="module")
def lab_with_interfaces() -> Iterator[Lab]:
    require_root()
    with Lab(hosts=1) as lab:
        host = lab["h1"]
        host.run(["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"])
        host.run(["ip", "link", "set", "eth1", "up"])
        yield lab


@pytest.mark.parametrize("config_id", CONFIG_IDS)
@pytest.mark.parametrize("fixture", sorted(SHAPES))
def test_vrrpyd_check_accepts_every_import(
    lab_with_interfaces: Lab, tmp_path: Path, fixture: str, config_id: str
) -> None:
    """``vrrpyd --check`` in a namespace with eth0 and eth1: host checks included."""
    out = tmp_path / "vrrpyd.toml"
    status = main([str(FIXTURES / fixture), "--config-id", config_id, "-o", str(out)])
    assert status == SHAPES[fixture]
    host = lab_with_interfaces["h1"]
    done = subprocess.run(
        [*host.command([sys.executable, "-m", "vrrpy.daemon", "--check", "-c", str(out)])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ": OK (" in done.stdout


KEEPALIVED_LINE = re.compile(r"^\((?:(?P<file>[^:]+): )?Line (?P<line>\d+)\) (?P<message>.*)$")


@pytest.mark.parametrize("fixture", ["import/quirks.conf", "import/lvs_checkers.conf"])
def test_every_complaint_of_keepalived_t_is_in_the_report(fixture: str) -> None:
    """``keepalived -t`` (2.2.7) on the quirk fixtures, in a namespace with eth0 and eth1:
    each line it complains about carries a note in the import's report (or belongs to a
    block whose line does, or is a lone ``}``)."""
    require_root()
    require_tool("keepalived")
    require_tool("unshare")
    path = FIXTURES / fixture
    script = (
        "ip link add eth0 type veth peer name eth0p && ip link add eth1 type veth peer name eth1p"
        f" && exec keepalived -t -i lb1 -f {path}"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    complaints = [
        (int(m["line"]), m["message"])
        for m in map(KEEPALIVED_LINE.match, (done.stdout + done.stderr).splitlines())
        if m is not None
    ]
    assert complaints, done.stdout + done.stderr
    result = import_file(str(path), config_id="lb1")
    noted = {n.line for n in result.notes}
    config = parse_text(path.read_text(), name=str(path), config_id="lb1")
    parents = {child.line: st.line for st in config.walk() for child in st.block or () if st.line}
    lines = path.read_text().splitlines()
    for line, message in complaints:
        if lines[line - 1].strip() == "}":
            continue
        assert line in noted or parents.get(line) in noted, (line, message)


# --- what each shape becomes ----------------------------------------------------------


def test_pair_with_pass_authentication_and_a_weighted_script() -> None:
    node1 = import_file(str(FIXTURES / "pair_auth_node1.conf"), config_id="lb1")
    vi = instance(node1, "VI_WEB")
    assert vi["version"] == 2 and vi["priority"] == 150 and vi["advert_interval"] == 1
    assert vi["auth_pass"] == "s3cr3tpw"
    assert vi["accept"] is True and vi["preempt"] is True
    assert vi["virtual_addresses"] == ["192.0.2.100/24", "192.0.2.101/24"]
    assert vi["track_script"] == ["chk_nginx"]
    assert node1.document["track_script"] == [
        {"name": "chk_nginx", "script": "/usr/bin/pgrep -x nginx", "interval": 2,
         "weight": 20, "fall": 2, "rise": 2, "user": "root"}
    ]  # fmt: skip
    assert has_note(node1, 37, "dropped", "label eth0:vip is not carried over")
    assert has_note(node1, 26, "info", "state MASTER: vrrpyd has no initial state")
    assert has_note(node1, 12, "info", "router_id")
    node2 = import_file(str(FIXTURES / "pair_auth_node2.conf"), config_id="lb1")
    assert instance(node2, "VI_WEB")["preempt"] is False  # nopreempt, state BACKUP: kept
    assert instance(node2, "VI_WEB")["priority"] == 100


def test_unicast_pair_one_file_for_both_routers() -> None:
    lb1 = import_file(str(FIXTURES / "unicast_pair.conf"), config_id="lb1")
    lb2 = import_file(str(FIXTURES / "unicast_pair.conf"), config_id="lb2")
    one, two = instance(lb1, "VI_DB"), instance(lb2, "VI_DB")
    assert (one["priority"], one["unicast_peers"]) == (200, ["203.0.113.3"])
    assert (two["priority"], two["unicast_peers"]) == (100, ["203.0.113.2"])
    for vi in (one, two):
        assert vi["virtual_addresses"] == ["203.0.113.10/24"]
        assert (vi["garp_delay"], vi["garp_repeat"], vi["garp_refresh"]) == (1, 3, 60)
    assert has_note(lb1, 23, "changed", "unicast_src_ip 203.0.113.2: vrrpyd sends from eth0")
    assert has_note(lb2, 24, "changed", "unicast_src_ip 203.0.113.3")


def test_sync_group_of_an_outside_and_an_inside_address() -> None:
    result = import_file(str(FIXTURES / "sync_group.conf"), config_id="lb1")
    group = result.document["sync_group"][0]
    assert group["members"] == ["VI_OUTSIDE", "VI_INSIDE"]
    assert group["notify_master"] == "/etc/keepalived/fw-state.sh MASTER"
    assert instance(result, "VI_OUTSIDE")["track_interface"] == ["eth1"]
    inside = instance(result, "VI_INSIDE")
    assert inside["backends"] == ["VI_INSIDE-excluded"]
    backend = result.document["backend"][0]
    assert backend["type"] == "script" and backend["shell"] is True
    assert backend["master"] == "ip -6 addr replace 2001:db8:20::1/64 dev eth1 nodad; true"
    assert backend["stop"] == "ip -6 addr del 2001:db8:20::1/64 dev eth1 2>/dev/null; true"
    assert has_note(result, 44, "changed", "virtual_ipaddress_excluded (2001:db8:20::1/64)")


def test_lvs_with_tcp_and_http_checks() -> None:
    result = import_file(str(FIXTURES / "lvs.conf"), config_id="lb1")
    web, db = result.document["virtual_server"]
    assert (web["address"], web["port"], web["instance"], web["install"]) == (
        "192.0.2.200", 80, "VI_LVS", "always")  # fmt: skip
    assert (web["lb_algo"], web["lb_kind"], web["persistence_timeout"]) == ("wrr", "NAT", 50)
    assert web["sorry_server"] == "198.51.100.99 8080"
    first = web["real_server"][0]
    assert first["HTTP_GET"]["retry"] == 3  # nb_get_retry, HTTP_GET's old spelling
    assert first["HTTP_GET"]["url"] == [
        {"path": "/health", "digest": "9b3a0c85a887a256d6939da88aabd8cd", "status_code": 200},
        {"path": "/", "status_code": 200},
    ]
    assert db["real_server"][1]["TCP_CHECK"] == {"connect_timeout": 2}
    assert has_note(result, 41, "info", "nb_get_retry is the deprecated spelling of retry")
    assert has_note(result, 47, "dropped", "inhibit_on_failure on real server 198.51.100.12")


def test_a_main_file_that_includes_per_instance_files() -> None:
    result = import_file(str(FIXTURES / "include" / "keepalived.conf"), config_id="lb1")
    public, private = result.document["instance"]
    assert (public["name"], private["name"]) == ("VI_PUBLIC", "VI_PRIVATE")
    assert public["version"] == 3  # global vrrp_version 3
    assert private["track_script"] == ["chk_dns"]
    assert result.document["track_script"][0]["weight"] == -50
    [note] = [n for n in result.notes if n.file.endswith("10-public.conf")]
    assert (note.line, note.severity, note.instance) == (11, "changed", "instance VI_PUBLIC")


def test_notify_scripts_keep_their_words() -> None:
    result = import_file(str(FIXTURES / "notify_scripts.conf"), config_id="lb1")
    vi = instance(result, "VI_1")
    assert vi["notify_master"] == "/usr/local/sbin/vip-state.sh master 'VI 1' 198.51.100.33"
    assert vi["notify_fault"] == "/usr/local/sbin/vip-state.sh fault 'VI 1' 198.51.100.33"
    assert vi["notify_stop"] == "/usr/local/sbin/vip-stop.sh"  # root root: vrrpyd's own user
    assert result.document["global"] == {
        "notify_fifo": "/run/keepalived/notify.fifo",
        "notify_fifo_script": "/usr/local/sbin/fifo-reader.sh --log /var/log/keepalived-fifo.log",
    }
    assert result.exit_status == 0


def test_templated_instances_per_config_id() -> None:
    for config_id, priority in (("lb1", 150), ("lb2", 100)):
        result = import_file(str(FIXTURES / "templated.conf"), config_id=config_id)
        names = [i["name"] for i in result.document["instance"]]
        assert names == ["VI_10", "VI_20", "VI_30"]
        assert {i["priority"] for i in result.document["instance"]} == {priority}
        assert instance(result, "VI_20")["virtual_addresses"] == ["192.0.2.20/24"]


QUIRKS = [
    (5, "info", "lvs_id: renamed router_id"),
    (9, "info", "vrrp_rlimit_rtime is the deprecated spelling of vrrp_rlimit_rttime"),
    (9, "changed", "vrrp_rlimit_rttime 5000 becomes rlimit_rttime 10000"),
    (11, "dropped", "vrrpyd has no SNMP agent"),
    (12, "dropped", "smtp_alert: vrrpyd sends no mail"),
    (13, "dropped", "unknown keyword 'frobnicate' in global_defs"),
    (14, "changed", "the FIFO's user and group (nobody) are not carried over"),
    (18, "changed", "true is /"),
    (19, "info", "'2.5' is not a whole number: keepalived reads it as 2"),
    (23, "info", "state MASTER with priority 100: keepalived starts it as BACKUP"),
    (30, "info", "preempt_delay with strict_mode: keepalived ignores it"),
    (31, "info", "authentication with strict_mode: keepalived ignores it"),
    (33, "info", "keepalived sends only 'strictpa'"),
    (43, "info", "nopreempt beside state MASTER: keepalived ignores the nopreempt"),
    (47, "info", "advert_int 1.5: VRRPv2 sends whole seconds; keepalived rounds to 2"),
    (50, "info", "keepalived sends only '01234567', and so does vrrpyd"),
    (53, "dropped", "label eth0:x is not carried over"),
    (53, "changed", "dev eth1: vrrpyd adds every virtual address on the instance's interface"),
    (54, "info", "the instance is IPv4; keepalived ignores it"),
    (56, "dropped", "virtual_routes"),
    (60, "info", "defined after this block"),
    (64, "info", "eth0 is the instance's own interface"),
    (65, "info", "weight 254: keepalived uses 253"),
    (67, "info", "unicast_ttl without unicast peers: keepalived resets it"),
    (68, "changed", "notify_master runs as nobody in keepalived"),
    (69, "changed", "use_vmac vrrp.42"),
    (70, "dropped", "dont_track_primary"),
    (71, "dropped", "auth_hmac is a keyword of keepalived 2.2.8 or later"),
    (72, "dropped", "unknown keyword 'track_ipaddress' in vrrp_instance with a { } block"),
    (72, "dropped", "unknown keyword '192.0.2.1' in vrrp_instance"),
    (75, "info", "vrrp_script chk_later is tracked by nothing"),
    (84, "info", "0.005 is outside 0.01..255"),
    (85, "info", "authentication with VRRPv3: keepalived ignores it"),
    (93, "info", "is a member of a sync group without sync_group_tracking_weight"),
    (105, "changed", "a sync group of one instance (VI_V3AUTH)"),
    (108, "info", "no vrrp_instance VI_NOPE"),
    (113, "info", "vrrp_script chk_unused is tracked by nothing"),
    (117, "dropped", "no virtual_router_id: keepalived refuses the whole configuration"),
]


@pytest.mark.parametrize(("line", "severity", "text"), QUIRKS)
def test_each_quirk_is_reported_at_its_line(line: int, severity: str, text: str) -> None:
    result = import_file(str(FIXTURES / "import" / "quirks.conf"), config_id="lb1")
    assert has_note(result, line, severity, text), [str(n) for n in notes_at(result, line)]


def test_quirks_become_what_keepalived_really_runs() -> None:
    result = import_file(str(FIXTURES / "import" / "quirks.conf"), config_id="lb1")
    strict = instance(result, "VI_STRICT")
    assert "auth_pass" not in strict and "preempt_delay" not in strict
    assert (strict["accept"], strict["preempt"], strict["version"]) == (False, False, 3)
    v2 = instance(result, "VI_V2")
    assert (v2["version"], v2["advert_interval"], v2["auth_pass"]) == (2, 2, "01234567")
    assert v2["preempt"] is True and v2["virtual_addresses"] == ["192.0.2.42/24"]
    assert v2["track_interface"] == [{"name": "eth1", "weight": 253}]
    assert v2["track_script"] == ["chk_relative"]
    v3 = instance(result, "VI_V3AUTH")
    assert "auth_pass" not in v3 and "track_script" not in v3 and v3["advert_interval"] == 1
    assert instance(result, "VI_IPV6")["version"] == 3
    assert [i["name"] for i in result.document["instance"]] == [
        "VI_STRICT", "VI_V2", "VI_V3AUTH", "VI_IPV6"]  # fmt: skip
    assert [t["name"] for t in result.document["track_script"]] == ["chk_relative"]
    script = result.document["track_script"][0]
    assert (script["user"], script["reverse"], script["interval"]) == ("nobody", True, 2)
    assert result.document["global"] == {
        "realtime_priority": 50,
        "lock_memory": True,
        "rlimit_rttime": 10000,
        "notify_fifo": "/run/vrrpy-quirks.fifo",
    }
    assert "sync_group" not in result.document


def test_lvs_checkers_inherit_timing_and_follow_the_sync_daemon() -> None:
    result = import_file(str(FIXTURES / "import" / "lvs_checkers.conf"), config_id="lb1")
    mark, dns = result.document["virtual_server"]
    assert (mark["fwmark"], mark["family"], mark["alpha"]) == (7, 4, True)
    assert mark["sync_daemon"] == {"interface": "eth1", "syncid": 7}
    tcp = mark["real_server"][0]["TCP_CHECK"]
    assert tcp == {"connect_port": 443, "retry": 2, "connect_timeout": 4}  # no nb_get_retry
    ssl = mark["real_server"][1]["SSL_GET"]
    assert ssl["url"] == [{"path": "/healthz", "status_code": "200-299"}]
    assert (ssl["enable_sni"], ssl["virtualhost"]) == (True, "www.example.com")
    assert dns["real_server"][0]["DNS_CHECK"] == {"type": "A", "name": "example.com", "retry": 3}
    misc = dns["real_server"][1]["MISC_CHECK"]
    assert misc == {
        "misc_path": "/usr/local/sbin/rs-load.sh 198.51.100.42",
        "misc_timeout": 3,
        "misc_dynamic": True,
        "user": "root",
    }
    assert has_note(result, 33, "dropped", "nb_get_retry is HTTP_GET's old spelling of retry")
    assert has_note(result, 43, "dropped", "regex")
    assert has_note(result, 55, "dropped", "the tunnel options are not carried over")
    assert has_note(result, 72, "dropped", "SMTP_CHECK")
    assert has_note(result, 79, "dropped", "virtual_server group")


# --- keepalived's rules, one by one -----------------------------------------------------


BASE = """
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    %s
    virtual_ipaddress {
        192.0.2.100/24
    }
}
"""


def one(body: str, before: str = "", after: str = "") -> tuple[ImportResult, dict[str, Any]]:
    result = convert_text(before + BASE % body + after)
    return result, instance(result, "VI_1")


def test_a_one_line_url_block_keeps_only_the_path() -> None:
    """``url { path /health status_code 200 }``: one line, ``path`` takes one word."""
    text = (
        BASE % ""
        + """
virtual_server 192.0.2.100 80 {
    real_server 198.51.100.1 80 {
        HTTP_GET {
            url { path /health status_code 200 }
        }
    }
}
"""
    )
    result = convert_text(text)
    check = result.document["virtual_server"][0]["real_server"][0]["HTTP_GET"]
    assert check["url"] == [{"path": "/health"}]
    assert any("keepalived ignores 'status_code 200'" in n.message for n in result.notes)


def test_defaults_are_keepalived_s_not_vrrpyd_s() -> None:
    result, vi = one("")
    assert (vi["version"], vi["priority"], vi["accept"], vi["preempt"]) == (2, 100, True, True)
    assert vi["advert_interval"] == 1
    assert result.exit_status == 0 and result.notes == []
    _, vi = one("", before="global_defs {\n vrrp_version 3\n}\n")
    assert vi["version"] == 3
    _, vi = one("no_accept")
    assert vi["accept"] is False


def test_state_master_without_priority_is_the_address_owner() -> None:
    result, vi = one("state MASTER")
    assert vi["priority"] == 255
    assert any("address owner (priority 255)" in n.message for n in result.notes)
    assert any(n.severity == "changed" and "vrrpyd refuses to start" in n.message
               for n in result.notes)  # fmt: skip


def test_authentication_is_dropped_where_keepalived_drops_it() -> None:
    auth = "authentication {\n auth_type PASS\n auth_pass secret\n }"
    _, vi = one(auth)
    assert vi["auth_pass"] == "secret"
    result, vi = one("version 3\n" + auth)
    assert "auth_pass" not in vi and result.exit_status == 0
    result, vi = one(auth, before="global_defs {\n vrrp_strict\n}\n")
    assert "auth_pass" not in vi and vi["accept"] is False
    result, vi = one("authentication {\n auth_pass secret\n }")
    assert "auth_pass" not in vi
    assert any("auth_pass without auth_type" in n.message for n in result.notes)
    result, vi = one("authentication {\n auth_type AH\n auth_pass secret\n }")
    assert "auth_pass" not in vi
    assert any(n.severity == "dropped" and "AH" in n.message for n in result.notes)


def test_a_long_password_is_cut_to_the_8_bytes_keepalived_sends() -> None:
    result, vi = one("authentication {\n auth_type PASS\n auth_pass 0123456789\n }")
    assert vi["auth_pass"] == "01234567"
    assert result.exit_status == 0  # what vrrpyd sends is what keepalived sends
    result, vi = one("authentication {\n auth_type PASS\n auth_pass passworöx\n }")
    assert "auth_pass" not in vi  # the 8th byte cuts a character: noted, not guessed
    assert any(n.severity == "dropped" and "cut a character" in n.message for n in result.notes)


def test_preemption_rules() -> None:
    _, vi = one("state BACKUP\n nopreempt\n preempt_delay 5")
    assert vi["preempt"] is False and "preempt_delay" not in vi
    _, vi = one("state BACKUP\n preempt_delay 2.5")
    assert vi["preempt_delay"] == 2.5
    _, vi = one("nopreempt\n preempt")
    assert vi["preempt"] is True  # the later keyword wins
    result, vi = one("state MASTER\n priority 150\n preempt_delay 5")
    assert "preempt_delay" not in vi and result.exit_status == 0


def test_advert_intervals_are_rounded_as_keepalived_rounds_them() -> None:
    _, vi = one("version 3\n advert_int 0.015")
    assert vi["advert_interval"] == 0.02
    _, vi = one("version 3\n advert_int 50")
    assert vi["advert_interval"] == 40.95
    _, vi = one("advert_int 0.4")
    assert vi["advert_interval"] == 1  # VRRPv2: whole seconds, at least 1


def test_ipv6_is_vrrpv3_and_keeps_one_family() -> None:
    text = BASE.replace("192.0.2.100/24", "2001:db8::100/64\n 192.0.2.1/24") % ""
    result = convert_text(text)
    vi = instance(result, "VI_1")
    assert vi["version"] == 3 and vi["virtual_addresses"] == ["2001:db8::100/64"]


def test_global_garp_settings_reach_only_the_instances_after_them() -> None:
    text = (
        BASE % ""
        + "global_defs {\n vrrp_garp_master_repeat 2\n}\n"
        + BASE.replace("VI_1", "VI_2").replace("51", "52") % ""
    )
    result = convert_text(text)
    assert "garp_repeat" not in instance(result, "VI_1")
    assert instance(result, "VI_2")["garp_repeat"] == 2
    assert any("applies only to the vrrp_instance blocks after it" in n.message
               for n in result.notes)  # fmt: skip


def test_global_defs_for_vrrpyd_s_global_table_and_instance_defaults() -> None:
    before = """global_defs {
    vrrp_rt_priority 1
    vrrp_rlimit_rttime 2000000
    vrrp_min_garp
    vrrp_garp_interval 0.002
    notify_fifo /run/all.fifo
    notify_fifo_script "/usr/local/bin/all-reader"
    vrrp_notify_fifo /run/vrrp.fifo
    vrrp_notify_fifo_script "/usr/local/bin/vrrp-reader --quiet"
    vrrp_notify_priority_changes
    vrrp_higher_prio_send_advert
}
net_namespace blue
"""
    result, vi = one("", before=before)
    assert result.document["global"] == {
        "realtime_priority": 2,
        "rlimit_rttime": 2000000,
        "notify_fifo": "/run/vrrp.fifo",
        "netns": "blue",
        "notify_fifo_script": "/usr/local/bin/vrrp-reader --quiet",
        "notify_priority_changes": True,
    }
    assert (vi["garp_repeat"], vi["garp_delay"], vi["garp_interval"]) == (1, 0, 0.002)
    assert vi["higher_prio_send_advert"] is True
    kept = [n.message for n in result.notes if n.severity == "dropped"]
    assert any("vrrp_notify_fifo is kept" in m for m in kept)
    assert any("notify_fifo_script: vrrpyd has one notify FIFO" in m for m in kept)
    parse_config(to_toml(result))


def test_instances_keepalived_cannot_run_are_left_out() -> None:
    text = """
vrrp_instance NO_IF {
    virtual_router_id 1
    unicast_src_ip 192.0.2.1
    unicast_peer { 192.0.2.2 }
    virtual_ipaddress { 192.0.2.10/24 }
}
vrrp_instance NO_VIP {
    interface eth0
    version 3
    virtual_router_id 2
}
vrrp_instance OK {
    interface eth0
    virtual_router_id 3
    virtual_ipaddress { 192.0.2.30/24 }
}
"""
    result = convert_text(text)
    assert [i["name"] for i in result.document["instance"]] == ["OK"]
    messages = [n.message for n in result.notes if n.severity == "dropped"]
    assert any(m.startswith("no interface: vrrpyd needs one") for m in messages)
    assert any("keepalived refuses its whole configuration" in m for m in messages)


def test_sync_group_edge_cases() -> None:
    text = """
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    priority 255
    virtual_ipaddress { 192.0.2.1/24 }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress { 192.0.2.2/24 }
}
vrrp_instance C {
    interface eth0
    virtual_router_id 3
    virtual_ipaddress { 192.0.2.3/24 }
}
vrrp_instance D {
    interface eth0
    virtual_router_id 4
    virtual_ipaddress { 192.0.2.4/24 }
}
vrrp_sync_group MIXED {
    group { A B }
}
vrrp_sync_group FIRST {
    group { C D }
}
vrrp_sync_group SECOND {
    group { C D }
}
"""
    result = convert_text(text)
    groups = result.document["sync_group"]
    assert [g["name"] for g in groups] == ["FIRST"]
    messages = [n.message for n in result.notes]
    assert any("This won't work" in m for m in messages)
    assert any("C is already in vrrp_sync_group FIRST" in m for m in messages)
    assert any(m == "no member found: keepalived removes the group" for m in messages)


def test_sync_group_members_lose_weights_as_keepalived_does() -> None:
    text = """
vrrp_script chk {
    script "/bin/true"
    weight -20
}
track_file flag {
    file /run/flag
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress { 192.0.2.1/24 }
    track_script { chk }
    track_interface { eth1 weight -10 }
    track_file { flag }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress { 192.0.2.2/24 }
}
vrrp_sync_group G { group { A B } }
"""
    result = convert_text(text)
    a = instance(result, "A")
    assert "track_script" not in a  # a weighted script: keepalived ignores the track
    assert a["track_interface"] == [{"name": "eth1", "weight": 0}]
    assert a["track_file"] == [{"name": "flag", "weight": 0}]
    assert "track_script" not in result.document  # then unused: keepalived removes it
    parse_config(to_toml(result))
    text_tw = text.replace("group { A B }", "group { A B }\n sync_group_tracking_weight")
    a = instance(convert_text(text_tw), "A")
    assert a["track_script"] == ["chk"]


def test_a_weighted_process_on_a_member_turns_tracking_weight_on() -> None:
    text = """
vrrp_track_process web {
    process nginx
    weight -30
}
vrrp_instance A { interface eth0
 virtual_router_id 1
 virtual_ipaddress { 192.0.2.1/24 }
 track_process { web } }
vrrp_instance B { interface eth0
 virtual_router_id 2
 virtual_ipaddress { 192.0.2.2/24 } }
vrrp_sync_group G { group { A B } }
"""
    result = convert_text(text)
    assert result.document["sync_group"][0]["tracking_weight"] is True
    assert instance(result, "A")["track_process"] == ["web"]
    parse_config(to_toml(result))


def test_address_owner_drops_weighted_tracks() -> None:
    text = 'vrrp_script chk {\n script "/bin/true"\n weight 10\n}\n' + BASE % (
        "priority 255\n track_script { chk }\n track_interface { eth1 weight -5 }"
    )
    result = convert_text(text)
    vi = instance(result, "VI_1")
    assert "track_script" not in vi and "track_interface" not in vi
    parse_config(to_toml(result))


def test_v3_checksum_as_v2_of_later_keepalived_is_carried() -> None:
    result, vi = one("version 3\n v3_checksum_as_v2")
    assert vi["v3_checksum"] == "vrrp-only"
    parse_config(to_toml(result))


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_unknown_and_misplaced_keywords_are_noted_and_conversion_goes_on() -> None:
    text = BASE % "nat_mask 255.255.255.0\n delay_loop 6\n stat MASTER"
    text += "virtual_server_groupp X { }\n"
    result = convert_text(text)
    expected = [
        ("nat_mask", "removed in keepalived 1.3.1"),
        ("delay_loop", "(it belongs in virtual_server)"),
        ("stat MASTER", "did you mean state?"),
        ("virtual_server_groupp", "unknown keyword 'virtual_server_groupp' at the top level"),
    ]
    for needle, message in expected:
        line = line_of(text, needle)
        assert any(message in n.message for n in notes_at(result, line)), (needle, result.notes)
    assert instance(result, "VI_1")["virtual_addresses"] == ["192.0.2.100/24"]


def test_an_unexpected_block_ends_the_enclosing_block_early_as_in_keepalived() -> None:
    """``nopreempt { priority 150 }``: keepalived ignores the ``{``, reads ``priority
    150`` as the instance's, and the ``}`` ends the instance: what follows is not it."""
    text = BASE % "nopreempt {\n priority 150\n }\n advert_int 3"
    result = convert_text(text.replace("virtual_router_id 51", "virtual_router_id 51\n "
                                       "virtual_ipaddress { 192.0.2.7/24 }"))  # fmt: skip
    vi = instance(result, "VI_1")
    assert vi["priority"] == 150 and vi["preempt"] is True and vi["advert_interval"] == 1
    assert vi["virtual_addresses"] == ["192.0.2.7/24"]
    assert any("takes no { } block" in n.message for n in result.notes)
    assert any(n.severity == "dropped" and n.message.startswith("advert_int: keepalived ended")
               for n in result.notes)  # fmt: skip


def test_one_line_blocks_read_as_keepalived_reads_them() -> None:
    """Braces split lines, nothing else does: ``{ script "/bin/true" weight -20 }`` is
    one ``script`` line, and keepalived drops the words after the command."""
    text = 'vrrp_script chk { script "/bin/true" weight -20 }\n' + BASE % "track_script { chk }"
    result = convert_text(text)
    assert result.document["track_script"] == [{"name": "chk", "script": "/bin/true"}]
    assert has_note(result, 1, "info", "keepalived ignores the words after the command")


def test_an_instance_name_vrrpyd_cannot_hold_is_renamed_with_a_note() -> None:
    result = convert_text(BASE.replace("VI_1", '"web tier"') % "")
    assert result.document["instance"][0]["name"] == "web_tier"
    assert any(n.severity == "changed" and "named web_tier" in n.message for n in result.notes)


def test_a_file_without_instances_is_usable_by_nobody() -> None:
    result = convert_text("global_defs {\n router_id x\n}\n")
    assert not result.usable and result.exit_status == 1
    assert any("no vrrp_instance could be carried over" in n.message for n in result.notes)


def test_parser_problems_become_notes() -> None:
    text = BASE % 'notify_master "/bin/echo a\n @lb1priority 200'
    config = parse_text(text, name="k.conf", config_id="lb1")
    assert config.problems
    result = convert(config)
    for problem in config.problems:
        assert any(n.line == problem.line and n.message == problem.message
                   for n in result.notes), problem  # fmt: skip


# --- the report ------------------------------------------------------------------------


def test_a_note_reads_file_line_block_severity_message() -> None:
    note = Note("k.conf", 12, "instance VI_1", "dropped", "label x is not carried over")
    assert str(note) == "k.conf:12: instance VI_1: not carried over: label x is not carried over"
    assert str(Note("k.conf", 0, None, "info", "m")) == "k.conf: note: m"


def test_toml_starts_with_the_source_and_the_notes_as_comments() -> None:
    result = import_file(str(FIXTURES / "pair_auth_node1.conf"), config_id="lb1")
    text = to_toml(result)
    head = text.split("\n\n", 1)[0].splitlines()
    assert head[0].endswith("pair_auth_node1.conf")
    assert all(line.startswith("#") for line in head)
    assert any("label eth0:vip" in line for line in head)


# --- the command line ------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vrrpy.keepalived.importer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_exit_0_when_everything_is_carried_over() -> None:
    done = run_cli(str(FIXTURES / "notify_scripts.conf"), "--config-id", "lb1")
    assert done.returncode == 0, done.stderr
    assert tomllib.loads(done.stdout)["instance"][0]["name"] == "VI_1"
    assert "0 not carried over, 0 changed" in done.stderr


def test_cli_exit_1_lists_everything_left_out(tmp_path: Path) -> None:
    out = tmp_path / "out.toml"
    done = run_cli(str(FIXTURES / "lvs.conf"), "-o", str(out))
    assert done.returncode == 1
    assert done.stdout == ""
    assert tomllib.loads(out.read_text())["virtual_server"][0]["port"] == 80
    lines = done.stderr.splitlines()
    assert any(re.fullmatch(r".*lvs\.conf:47: virtual_server 192\.0\.2\.200 80: not carried "
                            r"over: inhibit_on_failure .*", line) for line in lines)  # fmt: skip
    assert lines[-1].endswith("1 not carried over, 0 changed, 4 note(s)")


def write_hostile(directory: Path, kind: str) -> Path:
    """Files keepalived itself cannot cope with."""
    path = directory / f"{kind}.conf"
    if kind == "unbalanced":
        path.write_text("vrrp_instance VI_1 {\n state MASTER\n virtual_ipaddress {\n")
    elif kind == "closing":
        path.write_text("vrrp_instance VI_1 {\n}\n}\n")
    elif kind == "include-loop":
        (directory / "other.conf").write_text(f"include {path.name}\n")
        path.write_text("include other.conf\n")
    elif kind == "expands-forever":
        path.write_text("$A=${A}${A}\nvrrp_instance ${A} {\n}\n")
    elif kind == "self-definition":
        path.write_text("$A=${A}\nvrrp_instance $A {\n}\n")
    elif kind == "garbage":
        path.write_bytes(random.Random(7).randbytes(64 * 1024))
    elif kind == "fifty-megabytes":
        line = b"vrrp_instance VI_1 { state MASTER }\n"
        with open(path, "wb") as out:
            for _ in range(50 * 1024 * 1024 // len(line) + 1):
                out.write(line)
    elif kind == "directory":
        path.mkdir()
    elif kind == "missing":
        pass
    elif kind == "sequence":
        path.write_text("~SEQ(A, 1, 100000000) vrrp_instance X$A { }\n")
    return path


HOSTILE = [
    "unbalanced",
    "closing",
    "include-loop",
    "expands-forever",
    "self-definition",
    "garbage",
    "fifty-megabytes",
    "directory",
    "missing",
    "sequence",
]


@pytest.mark.parametrize("kind", HOSTILE)
def test_cli_exit_2_one_line_no_traceback_in_bounded_time(tmp_path: Path, kind: str) -> None:
    path = write_hostile(tmp_path, kind)
    started = time.monotonic()
    done = run_cli(str(path))
    elapsed = time.monotonic() - started
    assert done.returncode == 2, (done.stdout[-500:], done.stderr)
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vrrpctl import-keepalived: "), lines
    assert elapsed < 30, elapsed


def test_cli_exit_2_when_the_output_cannot_be_written(tmp_path: Path) -> None:
    done = run_cli(str(FIXTURES / "notify_scripts.conf"), "-o", str(tmp_path / "no" / "x.toml"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_mutated_fixtures_never_crash_the_importer() -> None:
    """A thousand broken variants of the fixtures: a parse error or a result, nothing else."""
    rng = random.Random(19)
    words = ["{", "}", '"', "@lb1", "$X", "weight", "-300", "eth0", "999", "1.5", "\\", "!",
             "virtual_ipaddress", "track_script", "real_server", "192.0.2.1/33", "fe80::1",
             "authentication", "state", "MASTER", "include", "~SEQ(A,1,3)", "NaN"]  # fmt: skip
    texts = [(FIXTURES / name).read_text() for name in SHAPES if not name.startswith("include")]
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(1000):
        lines = rng.choice(texts).splitlines()
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(lines))
            action = rng.randrange(4)
            if action == 0:
                del lines[i]
            elif action == 1:
                lines.insert(i, " ".join(rng.choices(words, k=rng.randint(1, 4))))
            elif action == 2:
                lines[i] = lines[i].replace(" ", f" {rng.choice(words)} ", 1)
            else:
                lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)]
        try:
            result = convert(parse_text("\n".join(lines), name="m.conf", config_id="lb1"))
        except KeepalivedParseError:
            outcomes["refused"] += 1
            continue
        outcomes["parsed"] += 1
        tomllib.loads(to_toml(result))
    assert outcomes["parsed"] > 100 and outcomes["refused"] > 10, outcomes


# --- the docs ---------------------------------------------------------------------------


def test_the_migration_guide_lists_every_keyword_of_the_table() -> None:
    text = DOC.read_text()
    rows = set(re.findall(r"^\| `([^`]+)`", text, re.M))
    keywords = {kw for table in mapping.SECTIONS.values() for kw in table}
    keywords |= {old for aliases in mapping.ALIASES.values() for old in aliases}
    missing = sorted(keywords - rows)
    assert not missing, f"docs/migrating-from-keepalived.md lacks rows for {missing}"


def test_no_environment_leaks_into_the_default_config_id() -> None:
    assert (
        os.uname().nodename.split(".")[0] == import_file(str(FIXTURES / "templated.conf")).config_id
    )
