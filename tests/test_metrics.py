"""The Prometheus exposition (vrrpy.observe.metrics) and its endpoint (vrrpy.observe.server).

A strict parser of the text format 0.0.4, written here (no dependency), reads
every exposition back: names, label syntax and escapes, HELP and TYPE before
their samples, each family once and contiguous, no series twice, histograms
whole. The keepalived-exporter names are pinned against the list read from
mehdy/keepalived-exporter v1.7.1 (``internal/collector/collector.go``,
unchanged up to commit 5aedbfb): a dashboard written for it must find every
name with the same type and the same label keys.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import math
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vrrpy.runtime.instance as instance_module
from support import require_root, require_tool
from vrrpy.codec import Advertisement, PacketInfo, encode_vrrp
from vrrpy.observe.metrics import (
    CONTENT_TYPE,
    CounterGuard,
    Histogram,
    Snapshot,
    escape_label_value,
    format_value,
    keepalived_address,
    mark_installed,
    read_instances,
    render,
)
from vrrpy.observe.server import MetricsServer
from vrrpy.runtime.attach import Attachment
from vrrpy.runtime.instance import InstanceRunner
from vrrpy.runtime.spec import InstanceSpec

# ---------------------------------------------------------------- the parser

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


@dataclass
class Family:
    name: str
    help: str
    type: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("+", ""))
    assert re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text), f"bad value {text!r}"
    return float(text)


def _labels(text: str, at: int) -> tuple[dict[str, str], int]:
    """Parse ``{k="v",...}`` starting at ``text[at] == '{'``; return labels and the next index."""
    labels: dict[str, str] = {}
    at += 1
    while text[at] != "}":
        match = _LABEL.match(text, at)
        assert match, f"bad label name at {text[at:]!r}"
        key = match.group()
        assert not key.startswith("__"), key
        assert key not in labels, f"label {key} twice"
        at = match.end()
        assert text[at : at + 2] == '="', f'expected =" at {text[at:]!r}'
        at += 2
        value = []
        while text[at] != '"':
            char = text[at]
            if char == "\\":
                escaped = text[at + 1]
                assert escaped in _ESCAPES, f"bad escape \\{escaped}"
                value.append(_ESCAPES[escaped])
                at += 2
            else:
                assert char != "\n"
                value.append(char)
                at += 1
        labels[key] = "".join(value)
        at += 1
        if text[at] == ",":
            at += 1
            assert text[at] != "}", "no trailing comma"  # the format allows it; we never write it
        else:
            assert text[at] == "}", f"expected , or }} at {text[at:]!r}"
    return labels, at + 1


def parse(text: str) -> dict[str, Family]:
    """The families of an exposition; fails on anything the format (or our style) forbids."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    text.encode("utf-8")  # valid UTF-8
    families: dict[str, Family] = {}
    current: Family | None = None
    series: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    for line in text.split("\n")[:-1]:
        assert line, "no blank lines"
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert _NAME.fullmatch(name), name
            assert name not in families, f"family {name} twice"
            assert not re.search(r"\\[^\\n]", help_text), f"bad escape in HELP {help_text!r}"
            current = families[name] = Family(
                name, help_text.replace("\\n", "\n").replace("\\\\", "\\")
            )
        elif line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert current is not None and current.name == name, f"TYPE {name} without HELP"
            assert not current.type and not current.samples
            assert kind in _TYPES
            current.type = kind
        else:
            assert not line.startswith("#"), f"stray comment {line!r}"
            match = _NAME.match(line)
            assert match, f"bad sample {line!r}"
            name, at = match.group(), match.end()
            labels: dict[str, str] = {}
            if line[at] == "{":
                labels, at = _labels(line, at)
            assert line[at] == " ", f"expected a space in {line!r}"
            value = _value(line[at + 1 :])  # no timestamp: one value, nothing after
            assert current is not None and current.type, f"sample {name} before HELP and TYPE"
            base = current.name
            if current.type == "histogram":
                assert name in (f"{base}_bucket", f"{base}_sum", f"{base}_count"), name
                assert ("le" in labels) == name.endswith("_bucket")
            else:
                assert name == base, f"sample {name} inside family {base}"
            key = (name, frozenset(labels.items()))
            assert key not in series, f"series {name}{labels} twice"
            series.add(key)
            current.samples.append((name, labels, value))
    for family in families.values():
        assert family.type and family.samples, f"family {family.name} empty"
        if family.type == "counter":
            assert family.name.endswith("_total"), family.name
            assert all(v >= 0 for _, _, v in family.samples)
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family: Family) -> None:
    groups: dict[frozenset[tuple[str, str]], dict[str, Any]] = {}
    for name, labels, value in family.samples:
        rest = frozenset((k, v) for k, v in labels.items() if k != "le")
        group = groups.setdefault(rest, {"buckets": []})
        if name.endswith("_bucket"):
            group["buckets"].append((_value(labels["le"]), value))
        else:
            group[name.rsplit("_", 1)[1]] = value
    for group in groups.values():
        buckets = group["buckets"]
        assert buckets and buckets[-1][0] == math.inf, "the +Inf bucket comes last"
        assert [le for le, _ in buckets] == sorted({le for le, _ in buckets})
        assert all(a[1] <= b[1] for a, b in pairwise(buckets))
        assert group["count"] == buckets[-1][1]


def values(families: dict[str, Family], name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {frozenset(labels.items()): v for _, labels, v in families[name].samples}


def one(families: dict[str, Family], sample_name: str, /, **labels: str) -> float:
    """The one sample called ``sample_name`` (a histogram's ``_count`` too) with these labels."""
    found = [
        v
        for family in families.values()
        for sample, got, v in family.samples
        if sample == sample_name and all(got.get(k) == want for k, want in labels.items())
    ]
    assert len(found) == 1, (sample_name, labels, found)
    return found[0]


# ------------------------------------------------------------- the fixtures


def status(
    vrid: int = 51,
    state: str = "MASTER",
    interface: str = "eth0",
    sent: int = 10,
    received: int = 20,
    drops: dict[str, int] | None = None,
    anomalies: dict[str, int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What InstanceRunner.status() returns (keys as of issue 16), plus ``extra``."""
    doc: dict[str, Any] = {
        "state": state,
        "faults": [],
        "sync_group": None,
        "backends": {},
        "priority": 150,
        "effective_priority": 140,
        "vrid": vrid,
        "interface": interface,
        "since": 1795600000.5,
        "in_state_seconds": 12.0,
        "master_address": "192.0.2.11",
        "counters": {
            "adverts_sent": sent,
            "adverts_received": received,
            "priority_zero_sent": 1,
            "priority_zero_received": 2,
            "lower_priority_discarded": 3,
            "split_brains": 4,
            "checksum_pseudo_header": 5,
            "checksum_vrrp_only": 0,
            "became_master": 6,
            "released_master": 5,
            "transitions": 12,
            "last_transition": 1795600000.25,
            "last_transition_reason": "higher priority",
            "drops": dict(drops or {}),
            "anomalies": dict(anomalies or {}),
        },
        "runtime": {
            "action_errors": 0,
            "address_add_failures": 1,
            "address_remove_failures": 0,
            "addresses_pending": [],
            "announcements_sent": 10,
            "announcements_failed": 0,
            "stall_holds": 0,
        },
        "protocol": "vrrp",
    }
    doc.update(extra)
    return doc


def rich_snapshot() -> Snapshot:
    """Every kind of fact the renderer knows, with awkward names."""
    takeover = Histogram((0.001, 0.01, 0.1))
    for value in (0.0005, 0.001, 0.002, 0.05, 3.0):
        takeover.observe(value)
    return Snapshot(
        instances={
            "VI_1": status(
                drops={"bad_checksum": 2, "truncated": 1, "carp_wrong_length": 1, "bad_ttl": 3},
                anomalies={"interval_mismatch": 4, "address_list_mismatch": 1},
                virtual_addresses=["192.0.2.100/24", "192.0.2.101"],
                address_interface="vrrp4.51",
                garp_delay=5.0,
                backends={
                    "drbd": {
                        "calls": 4,
                        "failures": 1,
                        "timeouts": 0,
                        "refusals": 1,
                        "cancelled": 0,
                        "last_error": "boom",
                        "last_phase": "prepare",
                        "last_seconds": 0.25,
                        "last_state": "MASTER",
                        "checks": 10,
                        "check_failures": 2,
                        "last_check": "disk Outdated",
                    }
                },
                sync_group="G1",
                histograms={"takeover_seconds": takeover.as_dict()},
                addresses_installed={"192.0.2.100/24": True, "192.0.2.101": False},
            ),
            'we"ird\\name\n': status(
                vrid=52,
                state="FAULT",
                interface='e"th\\0',
                faults=["script chk: failed"],
                drops={"auth_failure": 1, "auth_type_mismatch": 2},
            ),
            "VH_1": status(
                vrid=7,
                state="BACKUP",
                protocol="carp",
                carp={
                    "vhid": 7,
                    "advbase": 1,
                    "advskew": 100,
                    "advskew_sent": 120,
                    "demote": 20,
                    "profile": "openbsd",
                },
                drops={"carp_bad_hmac": 3, "carp_replay": 1},
                virtual_addresses=["2001:db8::1/128", "2001:db8::2/64"],
            ),
            "VI_idle": {"state": "INIT", "vrid": 9, "interface": "eth1", "priority": 100},
        },
        pid=4242,
        start_time=1795600000.0,
        version="0.1.0",
        tracking={
            "VI_1": {
                "tracks": {
                    "chk_web": {
                        "kind": "script",
                        "weight": 0,
                        "up": True,
                        "value": 0,
                        "agent": {
                            "kind": "script",
                            "state": "running",
                            "runs": 7,
                            "skipped": 1,
                            "last": {"status": 0, "runtime": 0.012},
                        },
                    },
                    "level": {"kind": "file", "weight": 10, "up": True, "value": 3},
                    "gw": {
                        "kind": "ping",
                        "weight": -20,
                        "up": False,
                        "agent": {
                            "kind": "ping",
                            "targets": {
                                "192.0.2.1": {
                                    "reachable": False,
                                    "sent": 10,
                                    "received": 7,
                                    "rtt": 0.0004,
                                }
                            },
                        },
                    },
                }
            },
            'we"ird\\name\n': {
                "tracks": {
                    "chk_web": {"kind": "script", "weight": 0, "up": True},
                    "chk_db": {"kind": "script", "weight": 0, "up": None},
                }
            },
        },
        sync_groups={"G1": {"state": "MASTER"}},
        realtime={"policy": "SCHED_RR", "rttime_exceeded": 1},
        state_file_errors=0,
    )


# ------------------------------------------------- keepalived-exporter's list

COMMON = ("iname", "intf", "vrid")
KEEPALIVED_EXPORTER: dict[str, tuple[str, tuple[str, ...]]] = {
    # mehdy/keepalived-exporter v1.7.1, internal/collector/collector.go, fillMetrics()
    "keepalived_up": ("gauge", ()),
    "keepalived_vrrp_state": ("gauge", ("iname", "intf", "vrid", "ip_address")),
    "keepalived_vrrp_excluded_state": ("gauge", ("iname", "intf", "vrid", "ip_address")),
    "keepalived_exporter_check_script_status": ("gauge", ("iname", "intf", "vrid", "ip_address")),
    "keepalived_gratuitous_arp_delay_total": ("counter", COMMON),
    "keepalived_advertisements_received_total": ("counter", COMMON),
    "keepalived_advertisements_sent_total": ("counter", COMMON),
    "keepalived_become_master_total": ("counter", COMMON),
    "keepalived_release_master_total": ("counter", COMMON),
    "keepalived_packet_length_errors_total": ("counter", COMMON),
    "keepalived_advertisements_interval_errors_total": ("counter", COMMON),
    "keepalived_ip_ttl_errors_total": ("counter", COMMON),
    "keepalived_invalid_type_received_total": ("counter", COMMON),
    "keepalived_address_list_errors_total": ("counter", COMMON),
    "keepalived_authentication_invalid_total": ("counter", COMMON),
    "keepalived_authentication_mismatch_total": ("counter", COMMON),
    "keepalived_authentication_failure_total": ("counter", COMMON),
    "keepalived_priority_zero_received_total": ("counter", COMMON),
    "keepalived_priority_zero_sent_total": ("counter", COMMON),
    "keepalived_script_status": ("gauge", ("name",)),
    "keepalived_script_state": ("gauge", ("name",)),
}
NOT_RENDERED = {
    "keepalived_vrrp_excluded_state",  # vrrpy has no excluded addresses
    "keepalived_exporter_check_script_status",  # the exporter's own -cs probe
}


def test_the_exposition_parses_and_promtool_agrees() -> None:
    text = render(rich_snapshot())
    families = parse(text)
    assert len(families) > 60
    promtool = require_tool("promtool")
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_keepalived_exporter_names_types_and_labels() -> None:
    families = parse(render(rich_snapshot()))
    rendered = {name for name in families if name.startswith("keepalived_")}
    assert rendered == set(KEEPALIVED_EXPORTER) - NOT_RENDERED
    for name in rendered:
        kind, keys = KEEPALIVED_EXPORTER[name]
        assert families[name].type == kind, name
        for _, labels, _ in families[name].samples:
            assert tuple(labels) == keys, (name, labels)


def test_keepalived_state_encoding_and_addresses() -> None:
    families = parse(render(rich_snapshot()))
    state = values(families, "keepalived_vrrp_state")
    # One sample per virtual address, keepalived's spelling, on the device they are added to.
    assert (
        state[
            frozenset(
                {
                    "iname": "VI_1",
                    "intf": "vrrp4.51",
                    "vrid": "51",
                    "ip_address": "192.0.2.100/24",
                }.items()
            )
        ]
        == 2
    )
    assert one(families, "keepalived_vrrp_state", iname="VI_1", ip_address="192.0.2.101") == 2
    assert one(families, "keepalived_vrrp_state", iname="VH_1", ip_address="2001:db8::1") == 1
    assert one(families, "keepalived_vrrp_state", iname="VH_1", ip_address="2001:db8::2/64") == 1
    # Address list unknown: one sample with ip_address="" on the interface (as the exporter).
    assert one(families, "keepalived_vrrp_state", iname='we"ird\\name\n') == 3
    assert one(families, "keepalived_vrrp_state", iname="VI_idle", intf="eth1", ip_address="") == 0
    assert one(families, "vrrpy_instance_state", iname="VH_1") == 1
    assert one(families, "keepalived_up") == 1


def test_keepalived_counters_come_from_the_right_reasons() -> None:
    families = parse(render(rich_snapshot()))

    def counter(name: str, iname: str = "VI_1") -> float:
        return one(families, f"keepalived_{name}_total", iname=iname)

    assert counter("advertisements_sent") == 10
    assert counter("advertisements_received") == 20
    assert counter("become_master") == 6
    assert counter("release_master") == 5
    assert counter("priority_zero_sent") == 1
    assert counter("priority_zero_received") == 2
    assert counter("packet_length_errors") == 2  # truncated + carp_wrong_length
    assert counter("ip_ttl_errors") == 3
    assert counter("advertisements_interval_errors") == 4  # the v3 anomaly counts too
    assert counter("address_list_errors") == 1
    assert counter("gratuitous_arp_delay") == 5
    assert counter("authentication_failure", 'we"ird\\name\n') == 1
    assert counter("authentication_mismatch", 'we"ird\\name\n') == 2
    assert counter("authentication_invalid", 'we"ird\\name\n') == 0
    assert counter("authentication_failure", "VH_1") == 4  # bad HMAC + replay
    # An instance that has not started has no counters yet: zeros, not gaps.
    assert counter("advertisements_sent", "VI_idle") == 0
    # Track scripts, once each, GOOD 1 / BAD 0 (no result yet: BAD, as keepalived prints).
    assert values(families, "keepalived_script_status") == {
        frozenset({("name", "chk_web")}): 1,
        frozenset({("name", "chk_db")}): 0,
    }
    # keepalived-exporter's encoding: 0 idle, 1 running, 2 requested, 3 forcing termination;
    # a script the agent has not described yet (chk_db) has no state.
    assert values(families, "keepalived_script_state") == {frozenset({("name", "chk_web")}): 1}


def test_vrrpy_families() -> None:
    families = parse(render(rich_snapshot()))
    assert one(families, "vrrpy_adverts_dropped_total", iname="VI_1", reason="bad_checksum") == 2
    assert one(families, "vrrpy_adverts_anomalies_total", reason="address_list_mismatch") == 1
    assert one(families, "vrrpy_priority", iname="VI_1") == 150
    assert one(families, "vrrpy_effective_priority", iname="VI_1") == 140
    assert one(families, "vrrpy_last_transition_timestamp_seconds", iname="VI_1") == 1795600000.25
    assert one(families, "vrrpy_split_brains_total", iname="VI_1") == 4
    assert one(families, "vrrpy_transitions_total", iname="VI_1") == 12
    assert one(families, "vrrpy_faults", iname='we"ird\\name\n') == 1
    assert one(families, "vrrpy_carp_advskew", iname="VH_1") == 100
    assert one(families, "vrrpy_carp_advskew_sent", iname="VH_1") == 120
    assert one(families, "vrrpy_carp_demote", iname="VH_1") == 20
    assert one(families, "vrrpy_backend_failures_total", backend="drbd") == 1
    assert one(families, "vrrpy_backend_last_call_seconds", backend="drbd") == 0.25
    assert one(families, "vrrpy_backend_check_ok", backend="drbd") == 0
    assert one(families, "vrrpy_track_up", iname="VI_1", track="gw", kind="ping") == 0
    assert one(families, "vrrpy_track_file_value", track="level") == 3
    assert one(families, "vrrpy_track_script_last_run_seconds", track="chk_web") == 0.012
    assert one(families, "vrrpy_track_ping_received_total", target="192.0.2.1") == 7
    assert one(families, "vrrpy_sync_group_state", sync_group="G1") == 2
    assert one(families, "vrrpy_rttime_exceeded_total") == 1
    assert one(families, "process_start_time_seconds") == 1795600000
    assert one(families, "vrrpy_build_info", version="0.1.0") == 1
    assert "vrrpy_track_up" in families and not any(
        labels.get("track") == "chk_db" for _, labels, _ in families["vrrpy_track_up"].samples
    ), "no verdict yet: no sample"
    # The histogram the runtime may add.
    hist = families["vrrpy_takeover_seconds"]
    assert hist.type == "histogram"
    buckets = {labels["le"]: v for n, labels, v in hist.samples if n.endswith("_bucket")}
    assert buckets == {"0.001": 2, "0.01": 3, "0.1": 4, "+Inf": 5}
    assert one(families, "vrrpy_takeover_seconds_count", iname="VI_1") == 5
    # What the kernel has, labelled as keepalived_vrrp_state is (to join the two).
    assert one(families, "vrrpy_address_installed", ip_address="192.0.2.100/24") == 1
    assert one(families, "vrrpy_address_installed", ip_address="192.0.2.101") == 0
    assert one(families, "keepalived_vrrp_state", iname="VI_1", ip_address="192.0.2.101") == 2
    # Transitions by (from, to, reason): rendered once the runtime counts them.
    assert "vrrpy_state_transitions_total" not in families
    snap = Snapshot(
        instances={
            "VI_1": status(
                counters={
                    "transitions": 3,
                    "transitions_by": {
                        "INIT": {"BACKUP": {"startup": 1}},
                        "BACKUP": {"MASTER": {"master_down": 2}},
                    },
                },
            )
        }
    )
    families = parse(render(snap))
    assert one(families, "vrrpy_state_transitions_total", to="MASTER", reason="master_down") == 2
    assert one(families, "vrrpy_state_transitions_total", **{"from": "INIT"}) == 1


def test_daemon_down_renders_keepalived_up_zero_only() -> None:
    families = parse(render(Snapshot(up=False, instances={"VI_1": status()})))
    assert list(families) == ["keepalived_up"]
    assert one(families, "keepalived_up") == 0


@pytest.mark.parametrize(
    "name",
    [
        'e"th0',
        "eth\\0",
        "eth\n0",
        "\\n",
        '\\"',
        "bond0.100:1",
        "ethé",
        "väl\u202ekäy",
        "",
        "{}=,",
    ],
)
def test_odd_interface_and_instance_names_escape_and_parse_back(name: str) -> None:
    snap = Snapshot(
        instances={name + "!": status(interface=name, drops={name: 1})},
        tracking={name + "!": {"tracks": {name: {"kind": "script", "up": True}}}},
    )
    families = parse(render(snap))
    assert one(families, "keepalived_vrrp_state", intf=name, iname=name + "!") == 2
    assert one(families, "vrrpy_adverts_dropped_total", reason=name) == 1
    assert one(families, "keepalived_script_status", name=name) == 1


def test_undecodable_names_become_replacement_characters() -> None:
    name = b"eth\xff0".decode("utf-8", "surrogateescape")
    assert escape_label_value(name) == "eth\ufffd0"
    families = parse(render(Snapshot(instances={"VI_1": status(interface=name)})))
    assert one(families, "keepalived_vrrp_state", intf="eth\ufffd0") == 2


def test_format_value() -> None:
    assert format_value(0) == "0"
    assert format_value(12345678901234567890) == "12345678901234567890"
    assert format_value(True) == "1"
    assert format_value(2.0) == "2"
    assert format_value(0.25) == "0.25"
    assert format_value(1e-7) == "1e-07"
    assert format_value(1e20) == "1e+20"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"
    for value in (0.1, 1 / 3, 1e300, -2.5, 1e16):
        assert float(format_value(value)) == value


def test_keepalived_address_spelling() -> None:
    assert keepalived_address(IPv4Interface("192.0.2.1/32")) == "192.0.2.1"
    assert keepalived_address(IPv4Interface("192.0.2.1/24")) == "192.0.2.1/24"
    assert keepalived_address(IPv6Interface("fe80::1/128")) == "fe80::1"
    assert keepalived_address(IPv6Interface("2001:db8::1/64")) == "2001:db8::1/64"
    assert keepalived_address("192.0.2.1") == "192.0.2.1"


# ------------------------------------------------------------- the histogram


def test_histogram_buckets_are_inclusive_and_cumulative() -> None:
    h = Histogram((0.01, 0.1, 1.0))
    for value in (0.01, 0.0, 0.05, 0.1, 0.5, 1.0, 2.0, math.inf):
        h.observe(value)
    assert h.cumulative() == [(0.01, 2), (0.1, 4), (1.0, 6), (math.inf, 8)]
    assert h.count == 8
    doc = h.as_dict()
    assert json.loads(json.dumps(doc)) == doc, "JSON-able, for the state file"
    with pytest.raises(ValueError):
        Histogram(())
    with pytest.raises(ValueError):
        Histogram((1.0, 1.0))
    with pytest.raises(ValueError):
        Histogram((1.0, math.inf))


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=50))
def test_histogram_counts_every_observation_once(observations: list[float]) -> None:
    h = Histogram((0.5, 1.0, 10.0))
    for value in observations:
        h.observe(value)
    for le, n in h.cumulative():
        assert n == sum(1 for v in observations if v <= le)
    families = parse(render(Snapshot(instances={"VI_1": status(histograms={"x_seconds": h})})))
    if not observations:
        assert "vrrpy_x_seconds" not in families  # a histogram appears with its first
        return
    assert families["vrrpy_x_seconds"].type == "histogram"
    assert one(families, "vrrpy_x_seconds_count") == len(observations)
    assert one(families, "vrrpy_x_seconds_sum") == pytest.approx(sum(observations))


def test_a_histogram_with_a_bad_or_taken_name_is_left_out() -> None:
    one_seen = Histogram((1.0,))
    one_seen.observe(0.5)
    h = one_seen.as_dict()
    snap = Snapshot(
        instances={
            "VI_1": status(
                histograms={
                    "instance_state": h,  # vrrpy_instance_state is a gauge already
                    "bad-name": h,
                    "x_total": h,
                    "broken": {"bounds": [1.0], "counts": [1]},
                    "ok_seconds": h,
                }
            )
        }
    )
    families = parse(render(snap))
    assert families["vrrpy_instance_state"].type == "gauge"
    assert [n for n, f in families.items() if f.type == "histogram"] == ["vrrpy_ok_seconds"]


# --------------------------------------------------- counters never go back


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, dict[str, Any]]]:
    """Snapshots in time: counters grow, an instance may restart (zeroed) or vanish a while."""
    names = ["VI_1", "VI_2", "VI_3"]
    counts = {name: {"sent": 0, "drop": 0, "obs": 0} for name in names}
    history = []
    for _ in range(draw(st.integers(2, 12))):
        snap: dict[str, dict[str, Any]] = {}
        for name in names:
            event = draw(st.sampled_from(["grow", "grow", "grow", "restart", "absent"]))
            if event == "restart":
                counts[name] = {"sent": 0, "drop": 0, "obs": 0}
            for key in counts[name]:
                counts[name][key] += draw(st.integers(0, 5))
            if event == "absent":
                continue
            h = Histogram((0.1, 1.0))
            for _ in range(counts[name]["obs"]):
                h.observe(0.5)
            snap[name] = status(
                sent=counts[name]["sent"],
                received=counts[name]["sent"] * 2,
                drops={"bad_ttl": counts[name]["drop"]} if counts[name]["drop"] else {},
                histograms={"takeover_seconds": h.as_dict()},
            )
        history.append(snap)
    return history


def _monotonic_series(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in parse(text).values():
        if family.type in ("counter", "histogram"):
            for name, labels, value in family.samples:
                out[(name, frozenset(labels.items()))] = value
    return out


@settings(max_examples=60, deadline=None)
@given(histories())
def test_counters_never_go_backwards_across_snapshots(
    history: list[dict[str, dict[str, Any]]],
) -> None:
    guard = CounterGuard()
    seen: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for instances in history:
        now = _monotonic_series(render(Snapshot(instances=instances), guard))
        for key, value in now.items():
            assert value >= seen.get(key, 0), (key, seen.get(key), value)
            seen[key] = value


def test_the_guard_forgets_series_gone_for_a_whole_window() -> None:
    guard = CounterGuard()
    render(Snapshot(instances={"VI_1": status(), "VI_2": status()}), guard)
    full = len(guard)
    for _ in range(2 * CounterGuard.WINDOW):
        render(Snapshot(instances={"VI_1": status()}), guard)
    assert len(guard) < full
    # ... but a restart within the window keeps counting up.
    render(Snapshot(instances={"VI_1": status(sent=100)}), guard)
    families = parse(render(Snapshot(instances={"VI_1": status(sent=3)}), guard))
    assert one(families, "keepalived_advertisements_sent_total") == 103


def test_snapshot_from_the_state_file() -> None:
    document = json.loads(
        json.dumps(
            {
                "instances": {"VI_1": status()},
                "pid": 99,
                "realtime": {"policy": "SCHED_OTHER", "rttime_exceeded": 0},
                "state_file_errors": 2,
                "tracking": {},
            }
        )
    )
    families = parse(render(Snapshot.from_state(document, version="0.1.0")))
    assert one(families, "vrrpy_daemon_pid") == 99
    assert one(families, "vrrpy_state_file_errors_total") == 2
    assert one(families, "vrrpy_realtime_scheduling") == 0
    assert one(families, "keepalived_advertisements_sent_total", iname="VI_1") == 10


# ------------------------------------------------- live runners, any thread


class _Socket:
    source = IPv4Address("192.0.2.11")

    sent = send_errors = 0
    batch = None

    def send_to(self, payload: bytes, address: Any) -> bool:
        return True

    def sockaddr(self, destination: Any) -> Any:
        return (str(destination), 0)

    def prepared(self, payload: bytes, address: Any) -> tuple[Any, tuple[Any, ...], None]:
        return (lambda *args: len(payload)), (), None


class _Announcer:
    def frames(self, addresses: tuple[Any, ...], mac: str) -> tuple[bytes, ...]:
        return tuple(b"frame" for _ in addresses)

    def send_frames(self, frames: tuple[bytes, ...]) -> int:
        return len(frames)


class _Netlink:
    def __init__(self) -> None:
        self.added: dict[Any, None] = {}


@pytest.fixture
def runners(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, InstanceRunner]]:
    """Real InstanceRunners with real cores, started as Backups on fake host parts."""
    loop = asyncio.new_event_loop()

    def attach(spec: InstanceSpec, netlink: Any, socket_for: Any) -> Attachment:
        att = Attachment(2, IPv4Address("192.0.2.11"), 2, spec.interface, "02:00:00:00:00:0b")
        att.socket = att.rx_socket = _Socket()  # type: ignore[assignment]
        return att

    monkeypatch.setattr(instance_module, "attach", attach)
    out: dict[str, InstanceRunner] = {}
    for k in range(5):
        spec = InstanceSpec(
            name=f"VI_{k}",
            interface="eth0",
            vrid=50 + k,
            virtual_addresses=(IPv4Interface(f"192.0.2.{100 + k}/24"),),
            garp_delay=3.0,
        )
        runner = InstanceRunner(
            spec,
            loop,
            _Netlink(),  # type: ignore[arg-type]
            lambda *args: None,  # type: ignore[arg-type]
            lambda name: _Announcer(),
        )
        runner.start()
        advert = Advertisement(
            version=3,
            vrid=spec.vrid,
            priority=200,
            addresses=(spec.virtual_addresses[0].ip,),
            interval_cs=100,
        )
        source, group = IPv4Address("192.0.2.12"), IPv4Address("224.0.0.18")
        packet = encode_vrrp(advert, source, group)
        runner.receive(packet, PacketInfo(source=source, destination=group, ttl=255))
        runner.receive(packet, PacketInfo(source=source, destination=group, ttl=64))
        out[spec.name] = runner
    yield out
    loop.close()


def test_read_instances_from_live_runners(runners: dict[str, InstanceRunner]) -> None:
    instances = read_instances(runners)
    assert instances["VI_0"]["virtual_addresses"] == ["192.0.2.100/24"]
    assert instances["VI_0"]["address_interface"] == "eth0"
    assert instances["VI_0"]["garp_delay"] == 3.0
    families = parse(render(Snapshot(instances=instances)))
    assert one(families, "keepalived_vrrp_state", iname="VI_0", ip_address="192.0.2.100/24") == 1
    assert one(families, "keepalived_advertisements_received_total", iname="VI_3") == 1
    assert one(families, "keepalived_ip_ttl_errors_total", iname="VI_3") == 1
    assert one(families, "vrrpy_adverts_dropped_total", iname="VI_3", reason="bad_ttl") == 1
    assert one(families, "vrrpy_master_address_info", iname="VI_3") == 1


class _Flaky:
    """A runner whose status() meets a dict changing size under it, ``fails`` times."""

    def __init__(self, fails: int) -> None:
        self.fails = fails

    def status(self) -> dict[str, object]:
        if self.fails:
            self.fails -= 1
            raise RuntimeError("dictionary changed size during iteration")
        return status()


def test_read_instances_retries_a_read_the_loop_disturbed() -> None:
    assert read_instances({"VI_1": _Flaky(2)})["VI_1"]["state"] == "MASTER"
    with pytest.raises(RuntimeError):
        read_instances({"VI_1": _Flaky(5)}, attempts=3)


def test_read_instances_while_another_thread_mutates_the_runners(
    runners: dict[str, InstanceRunner],
) -> None:
    live: dict[str, Any] = dict(runners)
    stop = threading.Event()

    def churn() -> None:
        k = 0
        while not stop.is_set():
            live[f"extra{k % 50}"] = runners["VI_0"]
            live.pop(f"extra{(k + 25) % 50}", None)
            k += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(200):
            instances = read_instances(live)
            assert all(name in instances for name in runners)
    finally:
        stop.set()
        thread.join()


# ---------------------------------------------------------------- the server


def _get(
    server: MetricsServer, path: str = "/metrics", method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = server.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def server() -> Iterator[MetricsServer]:
    calls = {"n": 0}

    def snapshot() -> Snapshot:
        calls["n"] += 1
        return Snapshot(instances={"VI_1": status(sent=calls["n"])}, pid=os.getpid())

    served = MetricsServer(snapshot, "127.0.0.1", 0, min_interval=0)
    served.start()
    yield served
    served.stop()


def test_server_serves_the_exposition(server: MetricsServer) -> None:
    code, headers, body = _get(server)
    assert code == 200
    assert headers["Content-Type"] == CONTENT_TYPE
    assert int(headers["Content-Length"]) == len(body)
    families = parse(body.decode())
    assert one(families, "keepalived_advertisements_sent_total") == 1
    assert one(families, "vrrpy_metrics_renders_total") == 1
    assert families["vrrpy_metrics_render_seconds"].type == "gauge"
    code, headers, zipped = _get(server, **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert one(parse(gzip.decompress(zipped).decode()), "keepalived_advertisements_sent_total") == 2
    code, headers, body = _get(server, method="HEAD")
    assert code == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert _get(server, "/metrics?x=1")[0] == 200
    assert _get(server, "/")[0] == 200
    assert _get(server, "/nope")[0] == 404
    assert _get(server, method="POST")[0] == 501  # read-only


def test_server_renders_at_most_once_per_interval() -> None:
    calls = {"n": 0}

    def snapshot() -> Snapshot:
        calls["n"] += 1
        return Snapshot(instances={"VI_1": status()})

    served = MetricsServer(snapshot, "127.0.0.1", 0, min_interval=60)
    served.start()
    try:
        for _ in range(3):
            assert _get(served)[0] == 200
        assert calls["n"] == 1
    finally:
        served.stop()


def test_server_answers_up_zero_when_the_snapshot_fails() -> None:
    def broken() -> Snapshot:
        raise OSError("the runtime is gone")

    served = MetricsServer(broken, "127.0.0.1", 0, min_interval=0)
    served.start()
    try:
        families = parse(_get(served)[2].decode())
        assert one(families, "keepalived_up") == 0
        assert one(families, "vrrpy_metrics_snapshot_errors_total") == 1
    finally:
        served.stop()


def test_server_retries_a_snapshot_the_loop_disturbed() -> None:
    flaky = _Flaky(2)
    served = MetricsServer(
        lambda: Snapshot(instances={"VI_1": flaky.status()}), "127.0.0.1", 0, min_interval=0
    )
    families = parse(b"".join(served.scrape().chunks).decode())
    assert one(families, "keepalived_up") == 1
    assert one(families, "vrrpy_metrics_snapshot_retries_total") == 2


def test_the_server_consumes_the_snapshot_it_is_handed() -> None:
    handed: list[Snapshot] = []

    def snapshot() -> Snapshot:
        handed.append(Snapshot(instances={"VI_1": status()}, tracking={"VI_1": {"tracks": {}}}))
        return handed[-1]

    MetricsServer(snapshot, min_interval=0).scrape()
    assert handed[0].instances == {} and handed[0].tracking == {}, "freed a piece at a time"


def test_the_server_thread_is_time_shared_even_when_started_from_a_real_time_thread() -> None:
    require_root()
    policies: dict[str, int] = {}

    def start_from_real_time() -> None:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(5))  # no RESET_ON_FORK
        served.start()
        policies["starter"] = os.sched_getscheduler(0)

    served = MetricsServer(lambda: Snapshot(), "127.0.0.1", 0)
    starter = threading.Thread(target=start_from_real_time)
    starter.start()
    starter.join()
    try:
        assert _get(served)[0] == 200  # the thread has set itself up by now
        assert served._thread is not None and served._thread.native_id is not None
        assert policies["starter"] == os.SCHED_RR
        assert os.sched_getscheduler(served._thread.native_id) == os.SCHED_OTHER
    finally:
        served.stop()


def test_server_listens_on_ipv6_loopback() -> None:
    served = MetricsServer(lambda: Snapshot(), "::1", 0)
    try:
        served.start()
    except OSError as exc:  # no IPv6 in this environment
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        assert _get(served)[0] == 200
    finally:
        served.stop()


def test_mark_installed_compares_each_address_with_the_kernel() -> None:
    instances = {
        "VI_1": {"virtual_addresses": ["192.0.2.100/24", "192.0.2.101/32"], "address_ifindex": 2},
        "VI_6": {"virtual_addresses": ["2001:db8::100/64"], "address_ifindex": 3},
        "VI_unknown": {"virtual_addresses": ["192.0.2.9/24"]},
    }
    mark_installed(instances, {2: {"192.0.2.100", "fe80::1"}, 4: {"2001:db8::100"}})
    assert instances["VI_1"]["addresses_installed"] == {
        "192.0.2.100/24": True,
        "192.0.2.101": False,
    }
    assert instances["VI_6"]["addresses_installed"] == {"2001:db8::100/64": False}
    assert "addresses_installed" not in instances["VI_unknown"]
