"""vrrpyd's TOML configuration: every mistake reported, with its key, all at once."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface, ip_interface
from pathlib import Path

import pytest

from vrrpy.codec import ChecksumForm
from vrrpy.core import ConfigError, RouterConfig
from vrrpy.daemon.config import (
    ConfigFileError,
    ConfigIssue,
    DaemonConfig,
    GlobalConfig,
    InstanceConfig,
    SyncGroupSpec,
    check_ownership,
    check_tracking,
    load_config,
    parse_config,
)
from vrrpy.runtime.realtime import RealtimeSettings
from vrrpy.track import (
    FileSpec,
    InterfaceSpec,
    Kind,
    PingSpec,
    ProcessSpec,
    ScriptSpec,
    Track,
    spec_from_json,
)
from vrrpy.track.protocol import config_line, spec_to_json

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vrrpyd.toml"
TRACKING_EXAMPLE = EXAMPLE.with_name("vrrpyd-tracking.toml")

MINIMAL = """
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
virtual_addresses = ["192.0.2.100/24"]
"""


def instance_toml(**keys: str) -> str:
    """A one-instance file: MINIMAL's keys overridden (value: TOML text; "" drops the key)."""
    base = {
        "name": '"VI_1"',
        "interface": '"eth0"',
        "vrid": "51",
        "virtual_addresses": '["192.0.2.100/24"]',
    }
    base.update(keys)
    lines = [f"{key} = {value}" for key, value in base.items() if value != ""]
    return "[[instance]]\n" + "\n".join(lines) + "\n"


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigFileError) as info:
        parse_config(text)
    assert info.value.errors, "a ConfigFileError always carries at least one issue"
    return info.value.errors


# --- good files ---------------------------------------------------------------------------------


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    assert isinstance(config, DaemonConfig)
    assert [i.name for i in config.instances] == ["VI_1", "VI_2"]
    vi1, vi2 = config.instances
    assert vi1.virtual_addresses == (
        IPv4Interface("192.0.2.100/24"),
        IPv4Interface("192.0.2.101/24"),
    )
    assert vi1.priority == 150 and vi1.version == 3 and not vi1.unicast
    assert vi2.version == 2 and vi2.auth_pass == "s3cret" and vi2.advert_interval == 2.0
    assert vi2.unicast_peers == (IPv4Address("192.0.2.2"), IPv4Address("192.0.2.3"))
    assert vi2.virtual_addresses == (IPv4Interface("192.0.2.200/32"),)


def test_example_file_builds_core_configs_without_error() -> None:
    for instance in load_config(EXAMPLE).instances:
        core = instance.router_config(IPv4Address("192.0.2.1"))
        assert isinstance(core, RouterConfig)
        assert core.vrid == instance.vrid and core.name == instance.name


def test_example_commented_ipv6_instance_is_valid_once_uncommented() -> None:
    text = EXAMPLE.read_text()
    block = text[text.index("# --- An IPv6 router") :]
    uncommented = "\n".join(
        line[2:] for line in block.splitlines() if line.startswith("# ") and "---" not in line
    )
    config = parse_config(text + "\n" + uncommented)
    vi6 = config.instances[-1]
    assert vi6.family == 6
    assert vi6.virtual_addresses[0] == IPv6Interface("fe80::51/128")
    vi6.router_config(IPv6Address("fe80::1"))


def test_defaults() -> None:
    config = parse_config(MINIMAL)
    assert config.global_ == GlobalConfig()
    assert config.global_.state_file == "/run/vrrpyd/state.json"
    assert config.global_.log_level == "info"
    assert config.global_.log_level_number == 20
    assert config.global_.netns is None
    assert config.global_.realtime_priority == 10
    assert config.global_.lock_memory is True
    assert config.global_.rlimit_rttime == 1_000_000
    assert config.global_.realtime == RealtimeSettings()
    (vi,) = config.instances
    assert vi == InstanceConfig(
        name="VI_1",
        interface="eth0",
        vrid=51,
        virtual_addresses=(IPv4Interface("192.0.2.100/24"),),
    )
    assert vi.protocol == "vrrp"
    assert vi.version == 3
    assert vi.priority == 100
    assert vi.advert_interval == 1.0
    assert vi.preempt is True
    assert vi.preempt_delay == 0.0
    assert vi.accept is False
    assert vi.unicast_peers == ()
    assert vi.use_vmac is False
    assert vi.auth_pass == ""
    assert vi.garp_repeat == 5
    assert vi.garp_interval == 0.0
    assert vi.garp_refresh == 0.0
    assert vi.v3_checksum is ChecksumForm.PSEUDO_HEADER
    assert vi.family == 4 and not vi.is_owner


def test_prefix_defaults_to_host_route() -> None:
    v4 = parse_config(instance_toml(virtual_addresses='["192.0.2.100"]')).instances[0]
    v6 = parse_config(instance_toml(virtual_addresses='["2001:db8::1"]')).instances[0]
    assert v4.virtual_addresses == (ip_interface("192.0.2.100/32"),)
    assert v6.virtual_addresses == (ip_interface("2001:db8::1/128"),)


def test_every_key_set() -> None:
    text = """
[global]
state_file = "/tmp/state.json"
log_level = "debug"
netns = "blue"
realtime_priority = 50
lock_memory = false
rlimit_rttime = 500000

[[instance]]
name = "VI_9"
protocol = "vrrp"
version = 3
interface = "br-lan.10"
vrid = 9
priority = 255
advert_interval = 0.25
preempt = false
preempt_delay = 30
accept = true
virtual_addresses = ["2001:db8::9/64", "fe80::9"]
unicast_peers = ["fe80::2"]
use_vmac = true
auth_pass = ""
garp_repeat = 0
garp_interval = 1
garp_refresh = 60.5
"""
    config = parse_config(text)
    assert config.global_ == GlobalConfig("/tmp/state.json", "debug", "blue", 50, False, 500_000)
    assert config.global_.realtime == RealtimeSettings(50, False, 500_000)
    assert config.global_.log_level_number == 10
    (vi,) = config.instances
    assert vi.family == 6 and vi.is_owner and vi.use_vmac and vi.accept and not vi.preempt
    assert vi.advert_interval == 0.25
    # Integers are accepted where seconds are expected, and stored as floats.
    assert isinstance(vi.preempt_delay, float) and vi.preempt_delay == 30.0
    assert isinstance(vi.garp_interval, float) and vi.garp_interval == 1.0
    assert vi.unicast_peers == (IPv6Address("fe80::2"),)
    assert vi.garp_repeat == 0


@pytest.mark.parametrize("interval", ["0.01", "40.95", "1", "0.1", "3.3"])
def test_v3_intervals_accepted(interval: str) -> None:
    vi = parse_config(instance_toml(advert_interval=interval)).instances[0]
    assert vi.advert_interval == float(interval)


@pytest.mark.parametrize("interval", ["1", "1.0", "255"])
def test_v2_intervals_accepted(interval: str) -> None:
    vi = parse_config(instance_toml(version="2", advert_interval=interval)).instances[0]
    assert vi.advert_interval == float(interval)


def test_same_vrid_allowed_across_interfaces_and_families() -> None:
    text = (
        instance_toml()
        + instance_toml(name='"VI_2"', interface='"eth1"')
        + instance_toml(name='"VI_3"', virtual_addresses='["2001:db8::1"]')
    )
    assert len(parse_config(text).instances) == 3


def test_v3_checksum_vrrp_only() -> None:
    vi = parse_config(instance_toml(v3_checksum='"vrrp-only"')).instances[0]
    assert vi.v3_checksum is ChecksumForm.VRRP_ONLY
    assert vi.router_config(IPv4Address("192.0.2.1")).checksum_form is ChecksumForm.VRRP_ONLY


# --- router_config ------------------------------------------------------------------------------


def test_router_config_output() -> None:
    text = instance_toml(
        priority="200",
        version="2",
        advert_interval="3",
        preempt="false",
        preempt_delay="5.5",
        accept="true",
        auth_pass='"pw"',
        virtual_addresses='["192.0.2.100/24", "192.0.2.101"]',
    )
    vi = parse_config(text).instances[0]
    core = vi.router_config(IPv4Address("192.0.2.1"))
    assert core == RouterConfig(
        vrid=51,
        primary_address=IPv4Address("192.0.2.1"),
        virtual_addresses=(IPv4Address("192.0.2.100"), IPv4Address("192.0.2.101")),
        priority=200,
        version=2,
        advert_interval=3.0,
        preempt=False,
        preempt_delay=5.5,
        accept=True,
        auth_pass="pw",
        checksum_form=ChecksumForm.PSEUDO_HEADER,
        name="VI_1",
    )
    assert core.interval_cs == 300
    assert core.auth_type == 1


def test_router_config_rejects_bad_primary_address_through_core() -> None:
    vi = parse_config(instance_toml(virtual_addresses='["2001:db8::1"]')).instances[0]
    with pytest.raises(ConfigError, match="link-local"):
        vi.router_config(IPv6Address("2001:db8::2"))
    with pytest.raises(ConfigError, match="family"):
        vi.router_config(IPv4Address("192.0.2.1"))


# --- bad files: one issue each, with its key ---------------------------------------------------

BAD = [
    # (id, file text, expected key, regex the message must match)
    ("vrid-zero", instance_toml(vrid="0"), "instance[VI_1].vrid", r"1\.\.255, got 0"),
    ("vrid-256", instance_toml(vrid="256"), "instance[VI_1].vrid", r"1\.\.255, got 256"),
    ("vrid-bool", instance_toml(vrid="true"), "instance[VI_1].vrid", r"integer.*boolean"),
    ("vrid-string", instance_toml(vrid='"51"'), "instance[VI_1].vrid", r"integer.*string"),
    ("vrid-float", instance_toml(vrid="51.0"), "instance[VI_1].vrid", r"integer.*float"),
    ("vrid-missing", instance_toml(vrid=""), "instance[VI_1].vrid", r"required"),
    ("name-missing", instance_toml(name=""), "instance[0].name", r"required"),
    ("name-bad", instance_toml(name='"my router"'), "instance[0].name", r"letters, digits"),
    ("name-int", instance_toml(name="7"), "instance[0].name", r"string.*integer"),
    ("interface-missing", instance_toml(interface=""), "instance[VI_1].interface", "required"),
    (
        "interface-long",
        instance_toml(interface='"a-very-long-name0"'),
        "instance[VI_1].interface",
        r"1\.\.15 bytes",
    ),
    ("interface-slash", instance_toml(interface='"eth/0"'), "instance[VI_1].interface", "'/'"),
    ("interface-space", instance_toml(interface='"eth 0"'), "instance[VI_1].interface", "white"),
    ("priority-zero", instance_toml(priority="0"), "instance[VI_1].priority", r"1\.\.255, got 0"),
    ("priority-bool", instance_toml(priority="false"), "instance[VI_1].priority", "boolean"),
    ("version-4", instance_toml(version="4"), "instance[VI_1].version", r"2 or 3, got 4"),
    (
        "protocol-carp-vrid",
        instance_toml(protocol='"carp"', vhid="51", password='"x"'),
        "instance[VI_1].vrid",
        "use vhid",
    ),
    ("protocol-other", instance_toml(protocol='"hsrp"'), "instance[VI_1].protocol", '"carp"'),
    (
        "v3-interval-too-fine",
        instance_toml(advert_interval="0.005"),
        "instance[VI_1].advert_interval",
        r"0\.01 \.\. 40\.95",
    ),
    (
        "v3-interval-too-long",
        instance_toml(advert_interval="41"),
        "instance[VI_1].advert_interval",
        r"got 41",
    ),
    (
        "v3-interval-zero",
        instance_toml(advert_interval="0"),
        "instance[VI_1].advert_interval",
        r"0\.01",
    ),
    (
        "v2-fractional-interval",
        instance_toml(version="2", advert_interval="1.5"),
        "instance[VI_1].advert_interval",
        r"VRRPv2 takes whole seconds.*1\.5",
    ),
    (
        "v2-interval-256",
        instance_toml(version="2", advert_interval="256"),
        "instance[VI_1].advert_interval",
        r"1\.\.255",
    ),
    (
        "interval-string",
        instance_toml(advert_interval='"1s"'),
        "instance[VI_1].advert_interval",
        r"number of seconds.*string",
    ),
    (
        "interval-nan",
        instance_toml(advert_interval="nan"),
        "instance[VI_1].advert_interval",
        r"finite",
    ),
    (
        "mixed-families",
        instance_toml(virtual_addresses='["192.0.2.100/24", "2001:db8::1/64"]'),
        "instance[VI_1].virtual_addresses",
        r"mixes IPv4.*IPv6",
    ),
    (
        "vip-not-address",
        instance_toml(virtual_addresses='["192.0.2.300"]'),
        "instance[VI_1].virtual_addresses",
        r"192\.0\.2\.300.*not an IP address",
    ),
    (
        "vip-empty",
        instance_toml(virtual_addresses="[]"),
        "instance[VI_1].virtual_addresses",
        r"at least one",
    ),
    (
        "vip-not-array",
        instance_toml(virtual_addresses='"192.0.2.100"'),
        "instance[VI_1].virtual_addresses",
        r"array of strings, got a string",
    ),
    (
        "vip-multicast",
        instance_toml(virtual_addresses='["224.0.0.18"]'),
        "instance[VI_1].virtual_addresses",
        r"multicast",
    ),
    (
        "vip-twice",
        instance_toml(virtual_addresses='["192.0.2.100/24", "192.0.2.100/32"]'),
        "instance[VI_1].virtual_addresses",
        r"listed twice",
    ),
    (
        "peer-family",
        instance_toml(unicast_peers='["2001:db8::2"]'),
        "instance[VI_1].unicast_peers",
        r"2001:db8::2 is IPv6, but virtual_addresses are IPv4",
    ),
    (
        "peer-prefix",
        instance_toml(unicast_peers='["192.0.2.2/24"]'),
        "instance[VI_1].unicast_peers",
        r"no /prefix",
    ),
    (
        "peer-not-string",
        instance_toml(unicast_peers="[3232235778]"),
        "instance[VI_1].unicast_peers",
        r"item 0 must be a string",
    ),
    (
        "v2-ipv6",
        instance_toml(version="2", virtual_addresses='["2001:db8::1"]'),
        "instance[VI_1].version",
        r"VRRPv2 is IPv4 only",
    ),
    (
        "auth-pass-too-long",
        instance_toml(version="2", auth_pass='"123456789"'),
        "instance[VI_1].auth_pass",
        r"at most 8 bytes, got 9",
    ),
    (
        "auth-pass-multibyte-too-long",
        instance_toml(version="2", auth_pass='"' + "\u00e9" * 5 + '"'),  # 5 chars, 10 bytes
        "instance[VI_1].auth_pass",
        r"at most 8 bytes, got 10",
    ),
    (
        "auth-pass-v3",
        instance_toml(auth_pass='"pw"'),
        "instance[VI_1].auth_pass",
        r"only in VRRPv2",
    ),
    (
        "checksum-value",
        instance_toml(v3_checksum='"rfc"'),
        "instance[VI_1].v3_checksum",
        r'"pseudo-header" or "vrrp-only", got "rfc"',
    ),
    (
        "checksum-on-v2",
        instance_toml(version="2", v3_checksum='"vrrp-only"'),
        "instance[VI_1].v3_checksum",
        r"only to VRRPv3 over IPv4",
    ),
    (
        "checksum-on-ipv6",
        instance_toml(virtual_addresses='["2001:db8::1"]', v3_checksum='"vrrp-only"'),
        "instance[VI_1].v3_checksum",
        r"only to VRRPv3 over IPv4",
    ),
    (
        "garp-repeat-negative",
        instance_toml(garp_repeat="-1"),
        "instance[VI_1].garp_repeat",
        r">= 0",
    ),
    (
        "garp-repeat-float",
        instance_toml(garp_repeat="2.5"),
        "instance[VI_1].garp_repeat",
        r"integer.*float",
    ),
    (
        "garp-interval-negative",
        instance_toml(garp_interval="-0.5"),
        "instance[VI_1].garp_interval",
        r">= 0",
    ),
    (
        "garp-refresh-negative",
        instance_toml(garp_refresh="-1"),
        "instance[VI_1].garp_refresh",
        r">= 0",
    ),
    (
        "preempt-delay-negative",
        instance_toml(preempt_delay="-1"),
        "instance[VI_1].preempt_delay",
        r">= 0",
    ),
    ("preempt-string", instance_toml(preempt='"yes"'), "instance[VI_1].preempt", r"true or false"),
    ("accept-int", instance_toml(accept="1"), "instance[VI_1].accept", r"true or false.*integer"),
    (
        "unknown-instance-key",
        instance_toml(priorty="100"),
        "instance[VI_1].priorty",
        r'unknown key "priorty"; did you mean "priority"',
    ),
    (
        "unknown-global-key",
        '[global]\nloglevel = "info"\n' + MINIMAL,
        "global.loglevel",
        r'unknown key "loglevel"; did you mean "log_level"',
    ),
    (
        "unknown-top-level-table",
        "[globals]\n" + MINIMAL,
        "globals",
        r"unknown table or key",
    ),
    (
        "log-level-bad",
        '[global]\nlog_level = "verbose"\n' + MINIMAL,
        "global.log_level",
        r'one of "debug", "info", "warning", "error", got "verbose"',
    ),
    (
        "state-file-empty",
        '[global]\nstate_file = ""\n' + MINIMAL,
        "global.state_file",
        r"non-empty",
    ),
    (
        "state-file-int",
        "[global]\nstate_file = 1\n" + MINIMAL,
        "global.state_file",
        r"string.*integer",
    ),
    (
        "netns-slash",
        '[global]\nnetns = "a/b"\n' + MINIMAL,
        "global.netns",
        r"not a namespace name",
    ),
    ("global-not-table", "global = 1\n" + MINIMAL, "global", r"must be a table"),
    ("no-instances", '[global]\nlog_level = "info"\n', "instance", r"no \[\[instance\]\]"),
    (
        "instance-single-table",
        '[instance]\nname = "VI_1"\n',
        "instance",
        r"\[\[instance\]\].*not \[instance\]",
    ),
    (
        "duplicate-vrid-same-interface",
        instance_toml() + instance_toml(name='"VI_2"'),
        "instance[VI_2].vrid",
        r"VRID 51 is already used for IPv4 on eth0 by instance\[VI_1\]",
    ),
    (
        "duplicate-name",
        instance_toml() + instance_toml(interface='"eth1"'),
        "instance[1].name",
        r'"VI_1" is already the name of instance\[0\]',
    ),
    (
        "toml-syntax",
        "[global]\nlog_level = \n",
        "<file>",
        r"invalid TOML: .*line 2, column",
    ),
    (
        "realtime-priority-1",
        "[global]\nrealtime_priority = 1\n" + MINIMAL,
        "global.realtime_priority",
        r"0 \(time-sharing\) or 2\.\.99 \(worker threads run one below it\), got 1",
    ),
    (
        "realtime-priority-100",
        "[global]\nrealtime_priority = 100\n" + MINIMAL,
        "global.realtime_priority",
        r"2\.\.99.*got 100",
    ),
    (
        "realtime-priority-negative",
        "[global]\nrealtime_priority = -1\n" + MINIMAL,
        "global.realtime_priority",
        r">= 0, got -1",
    ),
    (
        "realtime-priority-bool",
        "[global]\nrealtime_priority = true\n" + MINIMAL,
        "global.realtime_priority",
        r"integer.*boolean",
    ),
    (
        "lock-memory-int",
        "[global]\nlock_memory = 1\n" + MINIMAL,
        "global.lock_memory",
        r"true or false, got an integer",
    ),
    (
        "rlimit-rttime-tiny",
        "[global]\nrlimit_rttime = 5000\n" + MINIMAL,
        "global.rlimit_rttime",
        r"0 \(no limit\) or 10000\.\.60000000 microseconds, got 5000",
    ),
    (
        "rlimit-rttime-float",
        "[global]\nrlimit_rttime = 0.5\n" + MINIMAL,
        "global.rlimit_rttime",
        r"integer.*float",
    ),
    (
        "realtime-key-typo",
        "[global]\nrealtime_prio = 20\n" + MINIMAL,
        "global.realtime_prio",
        r'did you mean "realtime_priority"',
    ),
]


@pytest.mark.parametrize(("text", "key", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_reports_key_and_reason(text: str, key: str, message: str) -> None:
    issues = issues_of(text)
    matching = [issue for issue in issues if issue.key == key]
    assert matching, f"no issue for {key}; got {[str(i) for i in issues]}"
    assert any(re.search(message, issue.message) for issue in matching), [str(i) for i in issues]
    # A single mistake yields a single issue: no pile of consequential errors.
    assert len(issues) == 1, [str(i) for i in issues]


def test_bad_configs_cover_enough_cases() -> None:
    assert len(BAD) >= 25


# --- several problems at once -------------------------------------------------------------------


def test_all_errors_reported_at_once() -> None:
    text = """
[global]
log_level = "loud"
colour = true

[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 0
priority = true
virtual_addresses = ["192.0.2.100/24", "2001:db8::1"]

[[instance]]
name = "VI_2"
version = 2
interface = "eth0"
vrid = 7
advert_interval = 0.5
auth_pass = "much-too-long"
virtual_addresses = ["192.0.2.200"]

[[instance]]
name = "VI_3"
interface = "eth0"
vrid = 7
virtual_addresses = ["192.0.2.201"]
"""
    with pytest.raises(ConfigFileError) as info:
        parse_config(text, source="multi.toml")
    keys = [issue.key for issue in info.value.errors]
    assert keys == [
        "global.colour",
        "global.log_level",
        "instance[VI_1].vrid",
        "instance[VI_1].priority",
        "instance[VI_1].virtual_addresses",
        "instance[VI_2].advert_interval",
        "instance[VI_2].auth_pass",
        "instance[VI_3].vrid",
    ]
    rendered = str(info.value)
    assert rendered.startswith("multi.toml: 8 problems\n")
    assert "  instance[VI_3].vrid: VRID 7 is already used" in rendered
    assert info.value.source == "multi.toml"


def test_instance_with_duplicate_name_is_labelled_by_index() -> None:
    text = instance_toml(vrid="0") + instance_toml(interface='"eth1"', vrid="0")
    keys = [issue.key for issue in issues_of(text)]
    assert keys == ["instance[0].vrid", "instance[1].vrid", "instance[1].name"]


def test_non_table_instance_entry() -> None:
    # An inline array of non-tables cannot be written with [[instance]], but can as a key.
    issues = issues_of("instance = [1, 2]\n")
    assert [i.key for i in issues] == ["instance[0]", "instance[1]"]
    assert "must be a table, got an integer (1)" in issues[0].message


def test_issue_str() -> None:
    assert str(ConfigIssue("global.log_level", "bad")) == "global.log_level: bad"


# --- files --------------------------------------------------------------------------------------


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    (issue,) = info.value.errors
    assert issue.key == "<file>" and "cannot read" in issue.message
    assert info.value.source == str(path)


def test_load_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[global]\nstate_file = "/tmp/\xe9"\n')
    with pytest.raises(ConfigFileError) as info:
        load_config(path)
    (issue,) = info.value.errors
    assert issue.key == "<file>" and "UTF-8" in issue.message


def test_load_config_reports_path_as_source(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(instance_toml(vrid="300"))
    with pytest.raises(ConfigFileError) as info:
        load_config(str(path))
    assert str(info.value).startswith(f"{path}: 1 problem\n")


# --- ownership ----------------------------------------------------------------------------------


def owner(virtual_addresses: str = '["192.0.2.100/24", "192.0.2.101/24"]') -> InstanceConfig:
    text = instance_toml(priority="255", virtual_addresses=virtual_addresses)
    return parse_config(text).instances[0]


def test_priority_255_without_ownership() -> None:
    issues = check_ownership(owner(), {IPv4Interface("192.0.2.100/24")})
    assert issues == [
        ConfigIssue(
            "instance[VI_1].priority",
            "255 means address owner, but 192.0.2.101 is not configured on eth0",
        )
    ]


def test_priority_255_with_ownership() -> None:
    # Prefixes do not matter, bare addresses do too.
    have = {IPv4Interface("192.0.2.100/25"), IPv4Address("192.0.2.101")}
    assert check_ownership(owner(), have) == []


def test_ownership_ignores_ipv6_zone() -> None:
    vi = owner('["fe80::1"]')
    assert check_ownership(vi, [IPv6Interface("fe80::1%eth0/64")]) == []
    assert len(check_ownership(vi, [IPv6Address("fe80::2")])) == 1


def test_ownership_not_checked_below_255() -> None:
    vi = parse_config(MINIMAL).instances[0]
    assert check_ownership(vi, set()) == []
    # keepalived-like: owning the addresses with a lower priority is not an error either.
    assert check_ownership(vi, {IPv4Interface("192.0.2.100/24")}) == []


# --- cheap import -------------------------------------------------------------------------------


def test_daemon_package_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vrrpy.daemon.config\n"
        "heavy = [m for m in ('scapy', 'pyroute2', 'asyncio') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- tracking and sync groups -------------------------------------------------------------------


def script(name: str = "chk", extra: str = "") -> str:
    """A [[track_script]] table running /bin/true."""
    return f'[[track_script]]\nname = "{name}"\nscript = "/bin/true"\n{extra}\n'


def tracked(instance_keys: str = "", tables: str = "", after: str = "") -> str:
    """Track tables, then MINIMAL's instance VI_1 (eth0) with ``instance_keys``, then ``after``."""
    return f"{tables}\n{MINIMAL}{instance_keys}\n{after}"


VI_2 = instance_toml(name='"VI_2"', virtual_addresses='["2001:db8::1"]')
VI_3 = instance_toml(name='"VI_3"', interface='"eth1"')


def group(members: str = '["VI_1", "VI_2"]', extra: str = "", name: str = "gw") -> str:
    return f'[[sync_group]]\nname = "{name}"\nmembers = {members}\n{extra}\n'


def own(interface: str = "eth0") -> Track:
    return Track(f"interface:{interface}", Kind.INTERFACE, 0)


def test_tracking_example_shapes() -> None:
    config = load_config(TRACKING_EXAMPLE)
    assert [i.name for i in config.instances] == ["gw4", "gw6"]
    assert config.checks == {
        "interface:eth0": InterfaceSpec("interface:eth0", "eth0"),
        "nginx": ProcessSpec("nginx", "nginx", quorum=1),
        "interface:eth1": InterfaceSpec("interface:eth1", "eth1"),
        "chk_nginx": ScriptSpec(
            "chk_nginx",
            "/usr/bin/systemctl is-active --quiet nginx.service",
            interval=2.0,
            timeout=1.0,
            rise=2,
            fall=2,
            user="nobody",
        ),
        "maintenance": FileSpec("maintenance", "/run/vrrpyd-maintenance"),
        "upstream": PingSpec("upstream", ("198.51.100.1", "2001:db8:ffff::1")),
    }
    group_tracks = (
        Track("interface:eth1", Kind.INTERFACE, 0),
        Track("chk_nginx", Kind.SCRIPT, -20),
        Track("maintenance", Kind.FILE, 0),
        Track("upstream", Kind.PING, 0),
    )
    expected = (own(), Track("nginx", Kind.PROCESS, -30), *group_tracks)
    assert config.instance_tracks == {"gw4": expected, "gw6": expected}
    assert config.sync_groups == (
        SyncGroupSpec("gw", ("gw4", "gw6"), group_tracks, tracking_weight=True),
    )


def test_tracking_example_passes_the_host_checks_where_its_interfaces_exist() -> None:
    config = load_config(TRACKING_EXAMPLE)
    assert check_tracking(config, lambda name: name in ("eth0", "eth1")) == []
    assert check_tracking(config, lambda name: name == "eth0") == [
        ConfigIssue(
            "sync_group[gw].track_interface",
            "no interface eth1 in this network namespace (ip link shows what there is)",
        )
    ]


def test_tracking_example_accepted_by_vrrpyd_check_in_a_namespace_with_eth0_and_eth1() -> None:
    import subprocess
    import sys

    from support import require_root
    from vrrpy.lab import Lab

    require_root()
    with Lab(hosts=1) as lab:
        netns = lab["h1"].netns
        subprocess.run(
            ["ip", "-n", netns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"],
            check=True,
        )
        done = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-m", "vrrpy.daemon", "--check",
             "-c", str(TRACKING_EXAMPLE)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "OK (2 instance(s))" in done.stdout


def test_every_check_spec_is_one_the_agent_accepts() -> None:
    config = load_config(TRACKING_EXAMPLE)
    for spec in config.checks.values():
        assert spec_from_json(spec_to_json(spec)) == spec
    config_line(list(config.checks.values()))  # unique names, encodable


def test_no_tracking_means_the_own_interface_only() -> None:
    config = parse_config(MINIMAL)
    assert config.checks == {"interface:eth0": InterfaceSpec("interface:eth0", "eth0")}
    assert config.instance_tracks == {"VI_1": (own(),)}
    assert config.sync_groups == ()


def test_instances_on_one_interface_share_its_check() -> None:
    config = parse_config(MINIMAL + VI_2 + VI_3)
    assert list(config.checks) == ["interface:eth0", "interface:eth1"]
    assert config.instance_tracks["VI_2"] == (own(),)
    assert config.instance_tracks["VI_3"] == (own("eth1"),)


def test_weights_resolve_entry_then_object_then_default() -> None:
    tables = (
        script("plain")
        + script("heavy", "weight = -20\nreverse = true")
        + '[[track_file]]\nname = "f"\nfile = "/run/f"\n'
        + '[[track_file]]\nname = "g"\nfile = "/run/g"\nweight = -5\n'
        + '[[track_process]]\nname = "p"\nprocess = "nginx"\nweight = 10\n'
        + '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1"]\n'
    )
    keys = (
        'track_interface = ["eth1", { name = "eth2", weight = -10, reverse = true }]\n'
        'track_script = ["plain", "heavy", { name = "heavy2", weight = 0 }]\n'
        'track_file = ["f", { name = "g", reverse = true }]\n'
        'track_process = [{ name = "p", weight = 0 }]\n'
        'track_ping = [{ name = "gw", weight = 253 }]\n'
    )
    text = tracked(keys, tables + script("heavy2", "weight = -20\nreverse = true"))
    (tracks,) = parse_config(text).instance_tracks.values()
    assert tracks == (
        own(),
        Track("interface:eth1", Kind.INTERFACE, 0),
        Track("interface:eth2", Kind.INTERFACE, -10, reverse=True),
        Track("plain", Kind.SCRIPT, 0),
        Track("heavy", Kind.SCRIPT, -20, reverse=True),
        Track("heavy2", Kind.SCRIPT, 0, reverse=True),  # the entry's weight, the object's reverse
        Track("f", Kind.FILE, 1),  # keepalived's default weight for a file
        Track("g", Kind.FILE, -5, reverse=True),
        Track("p", Kind.PROCESS, 0),
        Track("gw", Kind.PING, 253),
    )


def test_script_table_every_key() -> None:
    text = tracked(
        'track_script = ["chk"]',
        "[[track_script]]\n"
        'name = "chk"\n'
        "script = \"/usr/local/bin/check 'a b' c\"\n"
        "interval = 2\ntimeout = 0.5\nrise = 3\nfall = 4\n"
        'user = "nobody"\ngroup = "nogroup"\ninit_fail = true\n',
    )
    spec = parse_config(text).checks["chk"]
    assert spec == ScriptSpec(
        "chk", "/usr/local/bin/check 'a b' c", 2.0, 0.5, 3, 4, "nobody", "nogroup", True
    )
    assert isinstance(spec, ScriptSpec) and spec.argv == ["/usr/local/bin/check", "a b", "c"]
    defaults = parse_config(tracked('track_script = ["chk"]', script())).checks["chk"]
    assert defaults == ScriptSpec("chk", "/bin/true")
    assert isinstance(defaults, ScriptSpec) and defaults.effective_timeout == 1.0


def test_process_table_keys() -> None:
    def spec(table: str) -> object:
        text = tracked('track_process = ["p"]', f'[[track_process]]\nname = "p"\n{table}\n')
        return parse_config(text).checks["p"]

    assert spec('process = "nginx"') == ProcessSpec("p", "nginx")
    assert spec('process = "/usr/sbin/nginx"\nparams = ["-g", "daemon off;"]') == ProcessSpec(
        "p", "/usr/sbin/nginx", params=("-g", "daemon off;"), param_match="exact"
    )
    assert spec(
        'process = "python3"\nparams = ["-m", "app"]\nparam_match = "initial"\n'
        "quorum = 2\nquorum_max = 4\ninterval = 0.5\nfull_command = true"
    ) == ProcessSpec("p", "python3", ("-m", "app"), "initial", True, 2, 4, 0.5)
    # keepalived: quorum_max 0 alone tracks that no such process runs.
    assert spec('process = "telnetd"\nquorum_max = 0') == ProcessSpec(
        "p", "telnetd", quorum=0, quorum_max=0
    )
    # A long name is fine against the command line.
    long = spec('process = "a-very-long-daemon-name"\nfull_command = true')
    assert isinstance(long, ProcessSpec) and long.uses_cmdline


def test_ping_table_keys() -> None:
    text = tracked(
        'track_ping = ["gw"]',
        '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1", "fe80::1%eth0", "2001:db8::1"]\n'
        "interval = 0.5\ntimeout = 0.25\ncount = 5\nquorum = 2\n",
    )
    assert parse_config(text).checks["gw"] == PingSpec(
        "gw", ("192.0.2.1", "fe80::1%eth0", "2001:db8::1"), 0.5, 0.25, 5, 2
    )


def test_sync_group_tracks_go_to_every_member_after_their_own() -> None:
    text = tracked(
        'track_script = ["mine"]',
        script("mine") + script("shared", "weight = -10"),
        VI_2 + group(extra='track_script = ["shared"]\ntrack_interface = ["eth1"]'),
    )
    config = parse_config(text)
    # In the order of the keys (track_interface, track_script, ...), then of each array.
    shared = (Track("interface:eth1", Kind.INTERFACE), Track("shared", Kind.SCRIPT, -10))
    assert config.instance_tracks == {
        "VI_1": (own(), Track("mine", Kind.SCRIPT), *shared),
        "VI_2": (own(), *shared),
    }
    assert config.sync_groups == (SyncGroupSpec("gw", ("VI_1", "VI_2"), shared),)


def test_sync_groups_in_file_order() -> None:
    vi4 = instance_toml(name='"VI_4"', interface='"eth1"', vrid="52")
    text = MINIMAL + VI_2 + VI_3 + vi4
    text += group('["VI_3", "VI_4"]', name="b") + group(name="a")
    config = parse_config(text)
    assert [(g.name, g.members) for g in config.sync_groups] == [
        ("b", ("VI_3", "VI_4")),
        ("a", ("VI_1", "VI_2")),
    ]
    assert all(not g.tracking_weight and g.tracks == () for g in config.sync_groups)


def test_weighted_member_tracks_with_tracking_weight() -> None:
    text = tracked(
        'track_script = [{ name = "chk", weight = -20 }]',
        script(),
        VI_2 + group(extra="tracking_weight = true"),
    )
    config = parse_config(text)
    assert config.instance_tracks["VI_1"][1] == Track("chk", Kind.SCRIPT, -20)
    assert config.sync_groups[0].tracking_weight


def test_owner_may_track_with_weight_zero() -> None:
    text = tracked(
        'priority = 255\ntrack_script = ["chk"]\ntrack_file = [{ name = "f", weight = 0 }]',
        script() + '[[track_file]]\nname = "f"\nfile = "/run/f"\n',
    )
    assert parse_config(text).instance_tracks["VI_1"][1:] == (
        Track("chk", Kind.SCRIPT, 0),
        Track("f", Kind.FILE, 0),
    )


def test_owners_may_be_grouped_together() -> None:
    text = (
        instance_toml(priority="255")
        + instance_toml(name='"VI_2"', priority="255", virtual_addresses='["2001:db8::1"]')
        + group()
    )
    assert parse_config(text).sync_groups[0].members == ("VI_1", "VI_2")


TRACK_BAD = [
    # (id, file text, expected key, regex the message must match)
    (
        "unknown-script",
        tracked('track_script = ["chk_x"]'),
        "instance[VI_1].track_script[0]",
        r"^no track_script named chk_x \(the file has no \[\[track_script\]\]\)$",
    ),
    (
        "unknown-script-close",
        tracked('track_script = ["chk_nginx", "chk_ngnix"]', script("chk_nginx")),
        "instance[VI_1].track_script[1]",
        r"^no track_script named chk_ngnix; did you mean chk_nginx\?$",
    ),
    (
        "name-of-another-kind",
        tracked('track_script = ["chk"]\ntrack_file = ["chk"]', script()),
        "instance[VI_1].track_file[0]",
        r"no track_file named chk \(there is a track_script of that name\)",
    ),
    (
        "unknown-ping-in-group",
        MINIMAL + VI_2 + group(extra='track_ping = ["gw"]'),
        "sync_group[gw].track_ping[0]",
        r"no track_ping named gw",
    ),
    (
        "weight-254-on-object",
        tracked('track_script = ["chk"]', script(extra="weight = 254")),
        "track_script[chk].weight",
        r"-253\.\.253, got 254 \(keepalived turns \+/-254 into \+/-253",
    ),
    (
        "weight-minus-254-on-entry",
        tracked('track_interface = [{ name = "eth1", weight = -254 }]'),
        "instance[VI_1].track_interface[0].weight",
        r"-253\.\.253, got -254",
    ),
    (
        "weight-float",
        tracked('track_interface = [{ name = "eth1", weight = -1.5 }]'),
        "instance[VI_1].track_interface[0].weight",
        r"integer.*float",
    ),
    (
        "reverse-string",
        tracked('track_script = ["chk"]', script(extra='reverse = "yes"')),
        "track_script[chk].reverse",
        r"true or false",
    ),
    (
        "entry-unknown-key",
        tracked('track_script = [{ name = "chk", wieght = -2 }]', script()),
        "instance[VI_1].track_script[0].wieght",
        r'did you mean "weight"',
    ),
    (
        "entry-without-name",
        tracked("track_interface = [{ weight = -2 }]"),
        "instance[VI_1].track_interface[0].name",
        r"required",
    ),
    (
        "entry-integer",
        tracked("track_interface = [1]"),
        "instance[VI_1].track_interface[0]",
        r"a name or a \{ name = \.\.\., weight = \.\.\. \} table, got an integer",
    ),
    (
        "track-key-not-array",
        tracked('track_interface = "eth1"'),
        "instance[VI_1].track_interface",
        r"must be an array .* got a string",
    ),
    (
        "track-interface-bad-name",
        tracked('track_interface = ["eth 1"]'),
        "instance[VI_1].track_interface[0]",
        r"whitespace",
    ),
    (
        "own-interface-tracked",
        tracked('track_interface = [{ name = "eth0", weight = -10 }]'),
        "instance[VI_1].track_interface[0]",
        r"eth0 is this instance's own interface, always tracked with weight 0",
    ),
    (
        "tracked-twice",
        tracked('track_script = ["chk", { name = "chk", weight = -5 }]', script()),
        "instance[VI_1].track_script[1]",
        r"chk is already tracked by instance\[VI_1\]\.track_script\[0\]",
    ),
    (
        "duplicate-name-across-tables",
        tracked(
            'track_script = ["x"]',
            script("x") + '[[track_file]]\nname = "x"\nfile = "/run/x"\n',
        ),
        "track_file[0].name",
        r'"x" is already the name of track_script\[0\]; .*unique across all the track tables',
    ),
    (
        "check-name-with-colon",
        tracked('track_script = ["interface:eth1"]', script("interface:eth1")),
        "track_script[0].name",
        r"':' is kept for vrrpy's own names",
    ),
    (
        "check-name-missing",
        '[[track_script]]\nscript = "/bin/true"\n' + MINIMAL,
        "track_script[0].name",
        r"required",
    ),
    (
        "unused-check",
        tracked(tables=script("lonely")),
        "track_script[lonely]",
        r"tracked by no instance and no sync group",
    ),
    (
        "unknown-script-key",
        tracked('track_script = ["chk"]', script(extra="intervall = 2")),
        "track_script[chk].intervall",
        r'did you mean "interval"',
    ),
    (
        "script-single-table",
        '[track_script]\nname = "chk"\n' + MINIMAL,
        "track_script",
        r"write \[\[track_script\]\]",
    ),
    (
        "script-not-absolute",
        tracked(
            'track_script = ["chk"]', '[[track_script]]\nname = "chk"\nscript = "check-nginx -q"\n'
        ),
        "track_script[chk].script",
        r'"check-nginx" is not an absolute path',
    ),
    (
        "script-missing",
        tracked('track_script = ["chk"]', '[[track_script]]\nname = "chk"\n'),
        "track_script[chk].script",
        r"required",
    ),
    (
        "script-blank",
        tracked('track_script = ["chk"]', '[[track_script]]\nname = "chk"\nscript = "  "\n'),
        "track_script[chk].script",
        r"must name a program",
    ),
    (
        "script-unbalanced-quote",
        tracked(
            'track_script = ["chk"]',
            '[[track_script]]\nname = "chk"\nscript = "/bin/check \'oops"\n',
        ),
        "track_script[chk].script",
        r"cannot be split into words",
    ),
    (
        "script-interval-zero",
        tracked('track_script = ["chk"]', script(extra="interval = 0")),
        "track_script[chk].interval",
        r"0\.01\.\.86400, got 0",
    ),
    (
        "script-interval-two-days",
        tracked('track_script = ["chk"]', script(extra="interval = 172800")),
        "track_script[chk].interval",
        r"0\.01\.\.86400, got 172800",
    ),
    (
        "script-timeout-negative",
        tracked('track_script = ["chk"]', script(extra="timeout = -1")),
        "track_script[chk].timeout",
        r"0\.01\.\.86400, got -1",
    ),
    (
        "script-rise-zero",
        tracked('track_script = ["chk"]', script(extra="rise = 0")),
        "track_script[chk].rise",
        r"1\.\.65535, got 0",
    ),
    (
        "script-fall-float",
        tracked('track_script = ["chk"]', script(extra="fall = 2.0")),
        "track_script[chk].fall",
        r"integer.*float",
    ),
    (
        "script-group-without-user",
        tracked('track_script = ["chk"]', script(extra='group = "nogroup"')),
        "track_script[chk].group",
        r"needs user",
    ),
    (
        "script-user-empty",
        tracked('track_script = ["chk"]', script(extra='user = ""')),
        "track_script[chk].user",
        r"must be a user name",
    ),
    (
        "script-init-fail-string",
        tracked('track_script = ["chk"]', script(extra='init_fail = "yes"')),
        "track_script[chk].init_fail",
        r"true or false",
    ),
    (
        "file-relative",
        tracked('track_file = ["f"]', '[[track_file]]\nname = "f"\nfile = "prio"\n'),
        "track_file[f].file",
        r"absolute path of a file",
    ),
    (
        "file-directory",
        tracked('track_file = ["f"]', '[[track_file]]\nname = "f"\nfile = "/run/"\n'),
        "track_file[f].file",
        r"absolute path of a file",
    ),
    (
        "process-name-too-long",
        tracked(
            'track_process = ["p"]',
            '[[track_process]]\nname = "p"\nprocess = "a-very-long-daemon-name"\n',
        ),
        "track_process[p].process",
        r"longer than a process name \(comm, 15 bytes\).*full_command = true",
    ),
    (
        "process-param-match",
        tracked(
            'track_process = ["p"]',
            '[[track_process]]\nname = "p"\nprocess = "x"\nparam_match = "fuzzy"\n',
        ),
        "track_process[p].param_match",
        r'"exact", "partial" or "initial", got "fuzzy"',
    ),
    (
        "process-quorum-max-below-quorum",
        tracked(
            'track_process = ["p"]',
            '[[track_process]]\nname = "p"\nprocess = "x"\nquorum = 3\nquorum_max = 2\n',
        ),
        "track_process[p].quorum_max",
        r">= quorum \(3\), got 2",
    ),
    (
        "process-quorum-zero-alone",
        tracked(
            'track_process = ["p"]', '[[track_process]]\nname = "p"\nprocess = "x"\nquorum = 0\n'
        ),
        "track_process[p].quorum",
        r"met whatever runs",
    ),
    (
        "process-params-not-strings",
        tracked(
            'track_process = ["p"]', '[[track_process]]\nname = "p"\nprocess = "x"\nparams = [1]\n'
        ),
        "track_process[p].params",
        r"item 0 must be a string",
    ),
    (
        "ping-not-an-address",
        tracked('track_ping = ["gw"]', '[[track_ping]]\nname = "gw"\ntargets = ["gateway"]\n'),
        "track_ping[gw].targets",
        r'"gateway" is not an IP address',
    ),
    (
        "ping-prefix",
        tracked('track_ping = ["gw"]', '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1/24"]\n'),
        "track_ping[gw].targets",
        r"not an IP address",
    ),
    (
        "ping-multicast",
        tracked('track_ping = ["gw"]', '[[track_ping]]\nname = "gw"\ntargets = ["224.0.0.1"]\n'),
        "track_ping[gw].targets",
        r"224\.0\.0\.1 is multicast",
    ),
    (
        "ping-link-local-without-zone",
        tracked('track_ping = ["gw"]', '[[track_ping]]\nname = "gw"\ntargets = ["fe80::1"]\n'),
        "track_ping[gw].targets",
        r"fe80::1 is link-local: say on which interface, as fe80::1%eth0",
    ),
    (
        "ping-twice",
        tracked(
            'track_ping = ["gw"]',
            '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1", "192.0.2.1"]\n',
        ),
        "track_ping[gw].targets",
        r"listed twice",
    ),
    (
        "ping-empty",
        tracked('track_ping = ["gw"]', '[[track_ping]]\nname = "gw"\ntargets = []\n'),
        "track_ping[gw].targets",
        r"at least one",
    ),
    (
        "ping-quorum-above-targets",
        tracked(
            'track_ping = ["gw"]',
            '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1", "192.0.2.2"]\nquorum = 3\n',
        ),
        "track_ping[gw].quorum",
        r"3 is more than the 2 target\(s\)",
    ),
    (
        "ping-count-zero",
        tracked(
            'track_ping = ["gw"]',
            '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1"]\ncount = 0\n',
        ),
        "track_ping[gw].count",
        r"1\.\.65535, got 0",
    ),
    (
        "ping-timeout-zero",
        tracked(
            'track_ping = ["gw"]',
            '[[track_ping]]\nname = "gw"\ntargets = ["192.0.2.1"]\ntimeout = 0\n',
        ),
        "track_ping[gw].timeout",
        r"0\.01\.\.86400, got 0",
    ),
    (
        "owner-weighted-script-default",
        tracked('priority = 255\ntrack_script = ["chk"]', script(extra="weight = -20")),
        "instance[VI_1].track_script[0]",
        r"VI_1 has priority 255 \(address owner\), which never moves, so weight -20 "
        r"\(the track_script's own\) would do nothing",
    ),
    (
        "owner-weighted-interface",
        tracked('priority = 255\ntrack_interface = [{ name = "eth1", weight = 10 }]'),
        "instance[VI_1].track_interface[0]",
        r"so weight 10 would do nothing",
    ),
    (
        "owner-file-default-weight",
        tracked(
            'priority = 255\ntrack_file = ["f"]', '[[track_file]]\nname = "f"\nfile = "/run/f"\n'
        ),
        "instance[VI_1].track_file[0]",
        r"weight 1 \(a track_file's default\) would do nothing.*set weight = 0",
    ),
    (
        "member-weighted-without-tracking-weight",
        tracked('track_script = [{ name = "chk", weight = -20 }]', script(), VI_2 + group()),
        "instance[VI_1].track_script[0]",
        r"weight -20 on a member of sync_group\[gw\].*tracking_weight = true",
    ),
    (
        "group-track-also-on-member",
        tracked('track_script = ["chk"]', script(), VI_2 + group(extra='track_script = ["chk"]')),
        "sync_group[gw].track_script[0]",
        r"chk is also tracked by its member VI_1 \(instance\[VI_1\]\.track_script\[0\]\)",
    ),
    (
        "group-tracks-a-members-own-interface",
        MINIMAL + VI_2 + group(extra='track_interface = ["eth0"]'),
        "sync_group[gw].track_interface[0]",
        r"eth0 is also tracked by its member VI_1 \(instance\[VI_1\]\.interface\)",
    ),
    (
        "group-weighted-track-with-owner-member",
        instance_toml(priority="255")
        + instance_toml(name='"VI_2"', priority="255", virtual_addresses='["2001:db8::1"]')
        + script(extra="weight = -5")
        + group(extra='track_script = ["chk"]'),
        "sync_group[gw].track_script[0]",
        r"VI_1 has priority 255 \(address owner\)",
    ),
    (
        "group-tracked-twice",
        MINIMAL + VI_2 + group(extra='track_interface = ["eth1", "eth1"]'),
        "sync_group[gw].track_interface[1]",
        r"eth1 is tracked twice by sync_group\[gw\]",
    ),
    (
        "group-unknown-instance",
        MINIMAL + VI_2 + group('["VI_1", "VI_2", "VI_9"]'),
        "sync_group[gw].members[2]",
        r"^no instance named VI_9; did you mean VI_\d\?$",
    ),
    (
        "instance-in-two-groups",
        MINIMAL + VI_2 + VI_3 + group(name="a") + group('["VI_2", "VI_3"]', name="b"),
        "sync_group[b].members[0]",
        r"VI_2 is already a member of sync_group\[a\]: an instance belongs to one sync group",
    ),
    (
        "group-of-one",
        MINIMAL + group('["VI_1"]'),
        "sync_group[gw].members",
        r"a group of one instance moves nothing",
    ),
    (
        "group-member-twice",
        MINIMAL + VI_2 + group('["VI_1", "VI_2", "VI_1"]'),
        "sync_group[gw].members[2]",
        r"VI_1 is listed twice",
    ),
    (
        "group-empty",
        MINIMAL + group("[]"),
        "sync_group[gw].members",
        r"must list the instances",
    ),
    (
        "group-without-members",
        MINIMAL + '[[sync_group]]\nname = "gw"\n',
        "sync_group[gw].members",
        r"required",
    ),
    (
        "group-owner-and-not",
        instance_toml(priority="255") + VI_2 + group(),
        "sync_group[gw].members",
        r"VI_1 has priority 255 \(address owner\) and VI_2 has not",
    ),
    (
        "group-duplicate-name",
        MINIMAL
        + VI_2
        + VI_3
        + instance_toml(name='"VI_4"', interface='"eth1"', vrid="52")
        + group()
        + group('["VI_3", "VI_4"]'),
        "sync_group[1].name",
        r'"gw" is already the name of sync_group\[0\]',
    ),
    (
        "group-unknown-key",
        MINIMAL + VI_2 + group(extra="smtp_alert = true"),
        "sync_group[gw].smtp_alert",
        r'unknown key "smtp_alert"',
    ),
    (
        "group-tracking-weight-string",
        MINIMAL + VI_2 + group(extra='tracking_weight = "yes"'),
        "sync_group[gw].tracking_weight",
        r"true or false",
    ),
    (
        "sync-group-single-table",
        MINIMAL + '[sync_group]\nname = "gw"\n',
        "sync_group",
        r"write \[\[sync_group\]\]",
    ),
    (
        "keepalived-table-name",
        MINIMAL + '[[vrrp_script]]\nname = "x"\n',
        "vrrp_script",
        r"^keepalived's vrrp_script is \[\[track_script\]\] here$",
    ),
    (
        "heartbeat-table-name",
        MINIMAL + '[[ping_group]]\nname = "x"\n',
        "ping_group",
        r"^Heartbeat's ping_group is \[\[track_ping\]\] here$",
    ),
    (
        "unknown-top-level-typo",
        MINIMAL + '[[track_scripts]]\nname = "x"\n',
        "track_scripts",
        r'did you mean "track_script"',
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "message"), [b[1:] for b in TRACK_BAD], ids=[b[0] for b in TRACK_BAD]
)
def test_bad_tracking_reports_key_and_reason(text: str, key: str, message: str) -> None:
    issues = issues_of(text)
    matching = [issue for issue in issues if issue.key == key]
    assert matching, f"no issue for {key}; got {[str(i) for i in issues]}"
    assert any(re.search(message, issue.message) for issue in matching), [str(i) for i in issues]
    assert len(issues) == 1, [str(i) for i in issues]


def test_a_broken_table_is_not_also_reported_missing() -> None:
    # The table's own mistake is the one issue; the instance naming it hears nothing.
    issues = issues_of(tracked('track_script = ["chk"]', script(extra="rise = 0")))
    assert [i.key for i in issues] == ["track_script[chk].rise"]


def test_tracking_errors_all_at_once() -> None:
    text = tracked(
        'priority = 255\ntrack_script = ["chk", "nope"]',
        script(extra="weight = -10\ninterval = 0"),
        VI_2 + group('["VI_1", "VI_2", "VI_7"]'),
    )
    keys = [issue.key for issue in issues_of(text)]
    assert keys == [
        "track_script[chk].interval",
        "sync_group[gw].members[2]",
        "sync_group[gw].members",
        "instance[VI_1].track_script[1]",
    ]


# --- what only the host can say ------------------------------------------------------------------


def host_config(table: str, keys: str = 'track_script = ["chk"]') -> DaemonConfig:
    return parse_config(tracked(keys, table))


def test_host_accepts_an_executable_script_and_an_existing_user() -> None:
    config = host_config(script(extra='user = "nobody"\ngroup = "nogroup"'))
    assert check_tracking(config) == []


def test_host_missing_program(tmp_path: Path) -> None:
    program = tmp_path / "nope"
    config = host_config(f'[[track_script]]\nname = "chk"\nscript = "{program} -q"\n')
    assert check_tracking(config) == [
        ConfigIssue("track_script[chk].script", f"{program}: No such file or directory")
    ]


def test_host_program_not_executable(tmp_path: Path) -> None:
    program = tmp_path / "check"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o644)
    config = host_config(f'[[track_script]]\nname = "chk"\nscript = "{program}"\n')
    (issue,) = check_tracking(config)
    assert issue.key == "track_script[chk].script"
    assert re.search(r"is not executable by this daemon's user \(mode -rw-r--r--", issue.message)


def test_host_program_executable_by_its_owner_only(tmp_path: Path) -> None:
    program = tmp_path / "check"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o700)
    table = f'[[track_script]]\nname = "chk"\nscript = "{program}"\n'
    assert check_tracking(host_config(table)) == []  # ours
    os_uid = program.stat().st_uid
    if os_uid == 65534:  # pragma: no cover - the test runs as nobody
        pytest.skip("runs as nobody")
    (issue,) = check_tracking(host_config(table + 'user = "nobody"\n'))
    assert issue.key == "track_script[chk].script"
    assert "is not executable by user nobody (mode -rwx------" in issue.message


def test_host_program_is_a_directory(tmp_path: Path) -> None:
    config = host_config(f'[[track_script]]\nname = "chk"\nscript = "{tmp_path}"\n')
    assert check_tracking(config) == [
        ConfigIssue("track_script[chk].script", f"{tmp_path} is not a regular file")
    ]


def test_host_unknown_user_and_group() -> None:
    config = host_config(script(extra='user = "no-such-user-x"\ngroup = "no-such-group-x"'))
    assert check_tracking(config) == [
        ConfigIssue("track_script[chk].user", "no user no-such-user-x on this host"),
        ConfigIssue("track_script[chk].group", "no group no-such-group-x on this host"),
    ]


def test_host_track_file_directory(tmp_path: Path) -> None:
    table = '[[track_file]]\nname = "f"\nfile = "{}"\n'
    good = host_config(table.format(tmp_path / "prio"), 'track_file = ["f"]')
    assert check_tracking(good) == []
    missing = tmp_path / "gone" / "prio"
    bad = host_config(table.format(missing), 'track_file = ["f"]')
    assert check_tracking(bad) == [
        ConfigIssue(
            "track_file[f].file",
            f"directory {missing.parent} does not exist here: the file's directory is what "
            "is watched",
        )
    ]


def test_host_tracked_interfaces_named_where_they_are_tracked() -> None:
    text = tracked(
        'track_interface = ["eth1", "eth2"]',
        after=VI_2 + group(extra='track_interface = ["eth3"]'),
    )
    config = parse_config(text)
    # Without a lookup, interfaces are not checked; the instances' own are main's to check.
    assert check_tracking(config) == []
    issues = check_tracking(config, lambda name: name in ("eth0", "eth2"), "in netns blue")
    message = "no interface {} in netns blue (ip link shows what there is)"
    assert issues == [
        ConfigIssue("instance[VI_1].track_interface", message.format("eth1")),
        ConfigIssue("sync_group[gw].track_interface", message.format("eth3")),
    ]
