"""The tracking model, sans-IO: keepalived's weights, clamping, faults, rise/fall, and the parsers.

No root, no processes: every test here runs in microseconds.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import ref_checksum
from vrrpy.track.file import parse_track_file
from vrrpy.track.link import IFF_RUNNING, IFF_UP, parse_link_messages
from vrrpy.track.model import (
    InstanceTracking,
    Kind,
    ScriptCounter,
    Track,
    Verdict,
    apply_change,
    clamp_priority,
    contribution,
)
from vrrpy.track.ping import echo_request, parse_echo_reply
from vrrpy.track.process import params_match, process_matches
from vrrpy.track.protocol import (
    ConfigError,
    ProcessSpec,
    ScriptSpec,
    config_line,
    decode_line,
    spec_from_json,
    verdict_line,
)


def up(name: str, kind: Kind = Kind.SCRIPT, reason: str = "") -> Verdict:
    return Verdict(name, kind, True, reason or f"{name} up")


def down(name: str, kind: Kind = Kind.SCRIPT, reason: str = "") -> Verdict:
    return Verdict(name, kind, False, reason or f"{name} down")


def file_value(name: str, value: int) -> Verdict:
    return Verdict(name, Kind.FILE, True, f"file {name} holds {value}", value=value)


# --- weights and clamping (keepalived vrrp_track.c) ---------------------------------


def test_positive_weight_adds_while_up_and_nothing_while_down() -> None:
    track = Track("chk", Kind.SCRIPT, weight=20)
    assert contribution(track, up("chk")) == 20
    assert contribution(track, down("chk")) == 0


def test_negative_weight_subtracts_while_down_and_nothing_while_up() -> None:
    track = Track("chk", Kind.SCRIPT, weight=-20)
    assert contribution(track, up("chk")) == 0
    assert contribution(track, down("chk")) == -20


def test_reverse_flips_the_sign_but_not_the_state_a_weight_applies_in() -> None:
    assert contribution(Track("c", Kind.SCRIPT, 20, reverse=True), up("c")) == -20
    assert contribution(Track("c", Kind.SCRIPT, 20, reverse=True), down("c")) == 0
    assert contribution(Track("c", Kind.SCRIPT, -20, reverse=True), down("c")) == 20
    assert contribution(Track("c", Kind.SCRIPT, -20, reverse=True), up("c")) == 0


def test_weight_zero_faults_while_down_and_reverse_faults_while_up() -> None:
    assert contribution(Track("eth1", Kind.INTERFACE), down("eth1", Kind.INTERFACE)) is None
    assert contribution(Track("eth1", Kind.INTERFACE), up("eth1", Kind.INTERFACE)) == 0
    rev = Track("eth1", Kind.INTERFACE, reverse=True)
    assert contribution(rev, up("eth1", Kind.INTERFACE)) is None
    assert contribution(rev, down("eth1", Kind.INTERFACE)) == 0


def test_no_verdict_yet_faults_a_weight_zero_object_and_leaves_a_weighted_one_out() -> None:
    assert contribution(Track("s", Kind.SCRIPT), None) is None
    assert contribution(Track("s", Kind.SCRIPT, -30), None) == 0
    assert contribution(Track("s", Kind.SCRIPT, 30), None) == 0


def test_file_adds_value_times_weight_clamped_to_253_and_minus_254_faults() -> None:
    track = Track("f", Kind.FILE, weight=10)
    assert contribution(track, file_value("f", 3)) == 30
    assert contribution(track, file_value("f", -3)) == -30
    assert contribution(track, file_value("f", 100)) == 253
    assert contribution(track, file_value("f", -25)) == -250
    assert contribution(track, file_value("f", -26)) is None  # -260 -> -254: FAULT
    assert contribution(Track("f", Kind.FILE, weight=-2), file_value("f", 127)) is None
    assert contribution(Track("f", Kind.FILE, weight=10, reverse=True), file_value("f", 3)) == -30


def test_file_with_weight_zero_faults_on_any_non_zero_value() -> None:
    track = Track("f", Kind.FILE)
    assert contribution(track, file_value("f", 0)) == 0
    assert contribution(track, file_value("f", 1)) is None
    assert contribution(track, file_value("f", -7)) is None
    assert contribution(Track("f", Kind.FILE, reverse=True), file_value("f", 0)) is None
    assert contribution(Track("f", Kind.FILE, reverse=True), file_value("f", 5)) == 0


def test_clamp_priority_as_vrrp_set_effective_priority() -> None:
    assert clamp_priority(100, 100) == 100
    assert clamp_priority(100, 0) == 1
    assert clamp_priority(100, -400) == 1
    assert clamp_priority(100, 254) == 254
    assert clamp_priority(100, 255) == 254
    assert clamp_priority(100, 600) == 254
    assert clamp_priority(255, 10) == 255  # an owner is never moved


@pytest.mark.parametrize("weight", [-254, 254, 300, -1000])
def test_weights_outside_minus_253_to_253_are_refused(weight: int) -> None:
    with pytest.raises(ValueError, match="weight"):
        Track("x", Kind.SCRIPT, weight)


@given(
    base=st.integers(1, 255),
    entries=st.lists(
        st.tuples(st.integers(-253, 253), st.booleans(), st.booleans()), min_size=1, max_size=8
    ),
)
def test_effective_priority_is_the_clamped_sum_of_the_weights_in_their_weighted_state(
    base: int, entries: list[tuple[int, bool, bool]]
) -> None:
    """Property: priority = clamp(base + sum(weight where weighted state)); owner stays 255."""
    tracks = [Track(f"s{i}", Kind.SCRIPT, w, rev) for i, (w, rev, _) in enumerate(entries)]
    model = InstanceTracking("VI_1", base, tracks)
    total = base
    faulted = False
    for i, (weight, reverse, is_up) in enumerate(entries):
        model.update(Verdict(f"s{i}", Kind.SCRIPT, is_up, "r"), 0.0)
        sign = -1 if reverse else 1
        if weight == 0:
            faulted |= is_up == reverse
        elif (weight > 0) == is_up:
            total += weight * sign
    expected = 255 if base == 255 else max(1, min(254, total))
    assert model.effective_priority == expected
    assert model.fault == faulted
    assert 1 <= model.effective_priority <= 255


# --- one instance: changes and their reasons ---------------------------------------


def test_instance_reports_priority_changes_with_the_reason() -> None:
    model = InstanceTracking("VI_1", 100, [Track("chk_nginx", Kind.SCRIPT, -30)])
    assert model.effective_priority == 100 and not model.fault
    change = model.update(down("chk_nginx", reason="script chk_nginx failed (exit 1)"), 5.0)
    assert change is not None
    assert (change.old_priority, change.priority) == (100, 70)
    assert change.reason == "script chk_nginx failed (exit 1)"
    assert not change.fault_entered and not change.fault_left
    assert "priority 100 -> 70" in change.describe()
    assert model.update(down("chk_nginx", reason="script chk_nginx failed (exit 1)"), 6.0) is None
    back = model.update(up("chk_nginx"), 7.0)
    assert back is not None and back.priority == 100


def test_instance_enters_and_leaves_fault_naming_every_reason() -> None:
    model = InstanceTracking("VI_1", 100, [Track("eth1", Kind.INTERFACE), Track("gw", Kind.PING)])
    # Nothing known yet: weight-0 objects hold the instance in FAULT (keepalived's init).
    assert model.fault
    assert set(model.faults.values()) == {
        "interface eth1: no verdict yet",
        "ping gw: no verdict yet",
    }
    model.update(up("eth1", Kind.INTERFACE), 0.0)
    left = model.update(up("gw", Kind.PING), 0.0)
    assert left is not None and left.fault_left and left.faults == ()
    entered = model.update(down("eth1", Kind.INTERFACE, "link eth1 down (admin down)"), 1.0)
    assert entered is not None and entered.fault_entered
    assert entered.faults_raised == ("link eth1 down (admin down)",)
    assert entered.faults == ("link eth1 down (admin down)",)
    second = model.update(down("gw", Kind.PING, "ping gw: 0 of 2 targets reachable"), 2.0)
    assert second is not None and not second.fault_entered and len(second.faults) == 2
    reworded = model.update(down("eth1", Kind.INTERFACE, "link eth1 down (no carrier)"), 2.5)
    assert reworded is not None and not reworded.fault_entered and not reworded.fault_left
    assert reworded.faults_raised == ("link eth1 down (no carrier)",)
    assert reworded.faults_cleared == ("link eth1 down (admin down)",)
    partial = model.update(up("eth1", Kind.INTERFACE), 3.0)
    assert partial is not None and partial.faults_cleared == ("link eth1 down (no carrier)",)
    assert partial is not None and not partial.fault_left
    assert partial.faults == ("ping gw: 0 of 2 targets reachable",)


def test_owner_is_faulted_but_never_moved() -> None:
    model = InstanceTracking(
        "VI_1", 255, [Track("chk", Kind.SCRIPT, -50), Track("eth1", Kind.INTERFACE)]
    )
    model.update(up("eth1", Kind.INTERFACE), 0.0)
    assert model.update(down("chk"), 0.0) is None
    assert model.effective_priority == 255
    change = model.update(down("eth1", Kind.INTERFACE), 1.0)
    assert change is not None and change.fault_entered and change.priority is None


def test_verdicts_for_other_objects_or_kinds_are_ignored() -> None:
    model = InstanceTracking("VI_1", 100, [Track("chk", Kind.SCRIPT, -10)])
    assert model.update(down("other"), 0.0) is None
    assert model.update(down("chk", Kind.PROCESS), 0.0) is None


def test_status_lists_every_track() -> None:
    model = InstanceTracking("VI_1", 100, [Track("f", Kind.FILE, 5)])
    model.update(file_value("f", 4), 0.0)
    status = model.status()
    assert status["effective_priority"] == 120
    assert status["tracks"]["f"]["value"] == 4


# --- vrrp_script's rise and fall (keepalived vrrp_scheduler.c) ---------------------


def run(counter: ScriptCounter, results: str) -> list[bool | None]:
    """Feed 'o' (success) / 'x' (failure); the up state after each."""
    states = []
    for r in results:
        counter.record(r == "o")
        states.append(counter.up)
    return states


def test_first_result_decides_at_once_whatever_rise_and_fall() -> None:
    assert ScriptCounter(rise=3, fall=3).up is None
    assert run(ScriptCounter(rise=3, fall=3), "o") == [True]
    assert run(ScriptCounter(rise=3, fall=3), "x") == [False]


def test_rise_successes_in_a_row_bring_a_failed_script_up() -> None:
    assert run(ScriptCounter(rise=3, fall=2), "xooo") == [False, False, False, True]
    assert run(ScriptCounter(rise=3, fall=2), "xooxooo") == [False] * 6 + [True]


def test_fall_failures_in_a_row_bring_an_up_script_down() -> None:
    assert run(ScriptCounter(rise=2, fall=3), "oxxx") == [True, True, True, False]
    assert run(ScriptCounter(rise=2, fall=3), "oxxoxxx") == [True] * 6 + [False]


def test_init_fail_starts_failed_and_needs_rise() -> None:
    counter = ScriptCounter(rise=2, fall=1, init_fail=True)
    assert counter.up is False
    assert run(counter, "oo") == [False, True]


def test_record_says_when_the_state_changed() -> None:
    counter = ScriptCounter(rise=1, fall=2)
    assert counter.record(True) is True
    assert counter.record(False) is False
    assert counter.record(False) is True
    assert counter.record(False) is False


# --- the agent protocol -------------------------------------------------------------


def test_verdict_lines_round_trip() -> None:
    verdict = Verdict("f", Kind.FILE, True, "file /run/f holds 3", 3, {"x": 1})
    message = decode_line(verdict_line(verdict, 12.5))
    assert message["type"] == "verdict" and message["t"] == 12.5
    assert Verdict.from_json(message) == verdict


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "x", "kind": "script"},
        {"name": "x", "kind": "nope"},
        {"kind": "file", "file": "/f"},
        {"name": "x", "kind": "file", "file": "/f", "wieght": 3},
        {"name": "x", "kind": "ping", "targets": ["not-an-address"]},
        {"name": "x", "kind": "ping", "targets": ["192.0.2.1"], "quorum": 2},
        {"name": "x", "kind": "script", "script": "/bin/true", "rise": 0},
        {"name": "x", "kind": "script", "script": "/bin/true", "interval": -1},
        {"name": "x", "kind": "process", "process": "nginx", "param_match": "fuzzy"},
    ],
)
def test_bad_objects_are_refused_naming_the_object(doc: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="track"):
        spec_from_json(doc)


def test_specs_survive_the_config_line() -> None:
    spec = spec_from_json(
        {"name": "chk", "kind": "script", "script": "/bin/check 'a b'", "rise": 2, "user": "nobody"}
    )
    assert isinstance(spec, ScriptSpec) and spec.argv == ["/bin/check", "a b"]
    assert spec.effective_timeout == spec.interval  # keepalived: timeout defaults to interval
    doc = decode_line(config_line([spec]))
    assert spec_from_json(doc["objects"][0]) == spec
    with pytest.raises(ConfigError):
        config_line([spec, spec])


# --- track_file's value: C's strtol(buf, NULL, 0) ----------------------------------


@pytest.mark.parametrize(
    ("data", "value"),
    [
        (b"42\n", 42),
        (b"  -17", -17),
        (b"+5", 5),
        (b"0x1F", 31),
        (b"010", 8),  # octal, as strtol with base 0
        (b"09", 0),
        (b"0x", 0),
        (b"12 apples", 12),
        (b"apples", 0),
        (b"", 0),
        (b"-2147483648", -(2**31)),
        (b"2147483648", 2**31),  # keepalived accepts INT32_MAX + 1
        (b"2147483649", None),  # out of range: ignored, the old value stays
        (b"99999999999999999999999", None),  # strtol's ERANGE
    ],
)
def test_track_file_values_read_as_keepalived_reads_them(data: bytes, value: int | None) -> None:
    assert parse_track_file(data) == value


# --- rtnetlink link messages --------------------------------------------------------


def link_message(kind: int, index: int, flags: int, name: str, operstate: int) -> bytes:
    ifname = name.encode() + b"\0"
    attrs = struct.pack("=HH", 4 + len(ifname), 3) + ifname + b"\0" * (-len(ifname) & 3)
    attrs += struct.pack("=HHB3x", 5, 16, operstate)
    body = struct.pack("=BxHiII", socket.AF_UNSPEC, 1, index, flags, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 1, 0) + body


def test_link_messages_parse_and_keepalived_needs_up_and_running() -> None:
    data = (
        link_message(16, 2, IFF_UP | IFF_RUNNING, "eth1", 6)
        + link_message(16, 3, IFF_UP, "eth2", 2)
        + link_message(17, 4, 0, "eth3", 2)
        + struct.pack("=IHHIIi", 20, 3, 0, 1, 0, 0)
    )
    items = list(parse_link_messages(data))
    assert [getattr(i, "name", i) for i in items] == ["eth1", "eth2", "eth3", 0]
    eth1, eth2, eth3 = items[:3]
    assert not isinstance(eth1, int) and eth1.up and eth1.operstate == "UP"
    assert not isinstance(eth2, int) and not eth2.up and eth2.operstate == "DOWN"
    assert not isinstance(eth3, int) and not eth3.present and not eth3.up


def test_truncated_link_messages_end_the_parse_quietly() -> None:
    data = link_message(16, 2, IFF_UP | IFF_RUNNING, "eth1", 6)
    for cut in range(len(data)):
        list(parse_link_messages(data[:cut]))


# --- ICMP echo ----------------------------------------------------------------------


def test_icmpv4_echo_request_has_a_valid_checksum() -> None:
    packet = echo_request(4, 0x1234, 7)
    assert packet[0] == 8 and ref_checksum(packet) == 0
    assert struct.unpack("!HH", packet[4:8]) == (0x1234, 7)


def test_echo_replies_are_matched_by_type_identifier_and_sequence() -> None:
    reply = bytes([0, 0, 0, 0]) + struct.pack("!HH", 0x1234, 7)
    ip_header = bytes([0x45]) + bytes(19)
    assert parse_echo_reply(4, ip_header + reply) == (0x1234, 7)
    assert parse_echo_reply(4, ip_header + echo_request(4, 0x1234, 7)) is None
    assert parse_echo_reply(6, bytes([129, 0, 0, 0]) + struct.pack("!HH", 5, 6)) == (5, 6)
    assert parse_echo_reply(6, bytes([128, 0, 0, 0]) + struct.pack("!HH", 5, 6)) is None
    assert parse_echo_reply(4, b"\x45") is None


# --- process matching (keepalived track_process.c) ---------------------------------


def test_process_name_matches_comm_without_params() -> None:
    spec = ProcessSpec("p", "nginx")
    assert process_matches(spec, "nginx", None)
    assert not process_matches(spec, "nginx-worker", None)
    assert not process_matches(spec, None, None)  # a zombie


def test_params_match_exact_partial_initial() -> None:
    def spec(match: str, *params: str) -> ProcessSpec:
        return ProcessSpec("p", "/usr/sbin/nginx", params, match, True)  # type: ignore[arg-type]

    cmd = b"/usr/sbin/nginx\0-c\0/etc/nginx.conf\0"
    assert process_matches(spec("exact", "-c", "/etc/nginx.conf"), None, cmd)
    assert not process_matches(spec("exact", "-c"), None, cmd)
    assert process_matches(spec("partial", "-c"), None, cmd)
    assert not process_matches(spec("partial", "-c", "/etc/ng"), None, cmd)
    assert process_matches(spec("initial", "-c", "/etc/ng"), None, cmd)
    assert not process_matches(spec("initial", "-x"), None, cmd)
    assert process_matches(spec("exact"), None, b"/usr/sbin/nginx\0")
    assert not process_matches(spec("exact"), None, cmd)
    assert not process_matches(spec("partial", "-c"), None, b"/usr/bin/other\0-c\0")
    assert params_match(ProcessSpec("p", "x"), b"anything")


class FakeRouter:
    """Records the core calls apply_change makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def fault(self, reason: str, now: float) -> list[object]:
        self.calls.append(("fault", reason))
        return []

    def recover(self, reason: str, now: float) -> list[object]:
        self.calls.append(("recover", reason))
        return []

    def set_priority(self, priority: int, now: float) -> list[object]:
        self.calls.append(("set_priority", priority))
        return []


def test_apply_change_raises_then_sets_priority_then_clears() -> None:
    model = InstanceTracking(
        "VI_1", 100, [Track("eth1", Kind.INTERFACE), Track("chk", Kind.SCRIPT, -30)]
    )
    router = FakeRouter()
    for verdict in (
        up("eth1", Kind.INTERFACE),
        down("eth1", Kind.INTERFACE, "link eth1 down (admin down)"),
        down("eth1", Kind.INTERFACE, "link eth1 down (no carrier)"),
        down("chk", reason="script chk failed (exit 1)"),
        up("eth1", Kind.INTERFACE),
    ):
        change = model.update(verdict, 1.0)
        if change is not None:
            apply_change(router, change)
    assert router.calls == [
        ("recover", "interface eth1: no verdict yet"),
        ("fault", "link eth1 down (admin down)"),
        ("fault", "link eth1 down (no carrier)"),
        ("recover", "link eth1 down (admin down)"),
        ("set_priority", 70),
        ("recover", "link eth1 down (no carrier)"),
    ]


def test_the_model_imports_without_asyncio_or_subprocess() -> None:
    code = (
        "import sys, vrrpy.track, vrrpy.track.model\n"
        "print(','.join(m for m in ('asyncio', 'subprocess') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_read_lines_returns_complete_lines_and_keeps_the_rest() -> None:
    import os

    from vrrpy.track.protocol import read_lines

    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    buffer = bytearray()
    try:
        assert read_lines(read_end, buffer) == []  # nothing yet
        os.write(write_end, b'{"a": 1}\n{"b"')
        assert read_lines(read_end, buffer) == [b'{"a": 1}'] and buffer == b'{"b"'
        os.write(write_end, b": 2}\n\n" + b"x" * 40000)
        assert read_lines(read_end, buffer) == [b'{"b": 2}', b""]
        os.write(write_end, b"x" * 40000)  # a line longer than one read
        assert read_lines(read_end, buffer) == []
        os.write(write_end, b"\n")
        assert read_lines(read_end, buffer) == [b"x" * 80000] and buffer == b""
        os.close(write_end)
        write_end = -1
        assert read_lines(read_end, buffer) is None  # the end of the stream
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
