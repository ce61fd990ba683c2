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
    check_ownership,
    load_config,
    parse_config,
)
from vrrpy.runtime.realtime import RealtimeSettings

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vrrpyd.toml"

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
    ("protocol-carp", instance_toml(protocol='"carp"'), "instance[VI_1].protocol", r"CARP.*not"),
    ("protocol-other", instance_toml(protocol='"hsrp"'), "instance[VI_1].protocol", '"vrrp"'),
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
