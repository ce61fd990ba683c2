"""The health state machine and the specs, on a number for a clock (no I/O, fast).

The oracle for ``retry`` / ``alpha`` / ``delay_before_retry`` is a line-by-line
transliteration of keepalived's ``tcp_epilog`` (check/check_tcp.c, 9cbce3e)
with its start-up values from check_data.c (``retry_it = retry``; alpha
checkers start down): hypothesis feeds both the same results and they must
agree on every state and every delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrpy.health.model import (
    CheckSpec,
    DnsCheck,
    HealthConfigError,
    HttpCheck,
    MiscCheck,
    TcpCheck,
    Timing,
    parse_status_codes,
    spec_from_json,
    spec_to_json,
)
from vrrpy.health.state import (
    CheckerChange,
    CheckerState,
    CheckResult,
    ServerHealth,
    ServerState,
    effective_weight,
    health_map,
)

OK = CheckResult(True, "status 200")
FAIL = CheckResult(False, "connection refused")


def timing(
    *,
    delay_loop: float = 10.0,
    timeout: float = 3.0,
    retry: int = 1,
    delay_before_retry: float = 2.0,
    warmup: float = 10.0,
    alpha: bool = False,
    rise: int = 1,
) -> Timing:
    return Timing(delay_loop, timeout, retry, delay_before_retry, warmup, alpha, rise)


def attempt(
    state: CheckerState, result: CheckResult, duration: float = 0.0
) -> CheckerChange | None:
    """Run the attempt that is due now (the clock jumps to it) and return the change."""
    assert state.next_run is not None
    start = state.next_run
    state.begin(start)
    return state.record(result, start + duration)


# --- start-up: alpha, the first result decides ---------------------------------------------


def test_a_check_starts_up_and_its_first_failure_brings_it_down_without_retries() -> None:
    state = CheckerState(timing(retry=3), 0.0, label="TCP_CHECK 10.0.0.1:80")
    assert state.up and not state.has_run
    change = attempt(state, FAIL)
    assert change is not None and not change.up and change.old_up
    assert change.reason == "TCP_CHECK 10.0.0.1:80 failed (connection refused)"
    assert state.next_run == 10.0  # down: the next try is a delay_loop later, no retry


def test_alpha_starts_down_and_the_first_success_brings_it_up() -> None:
    state = CheckerState(timing(alpha=True, rise=3), 0.0, label="chk")
    assert not state.up
    change = attempt(state, OK)
    assert change is not None and change.up and change.reason == "chk succeeded (status 200)"


def test_alpha_first_failure_is_no_transition() -> None:
    state = CheckerState(timing(alpha=True), 0.0)
    assert attempt(state, FAIL) is None and not state.up
    assert state.last_error is not None and state.last_error.detail == "connection refused"


def test_a_non_alpha_first_success_confirms_up_without_a_change() -> None:
    state = CheckerState(timing(), 0.0)
    assert attempt(state, OK) is None and state.up and state.has_run


def test_initial_up_overrides_alpha() -> None:
    assert not CheckerState(timing(), 0.0, initial_up=False).up
    assert CheckerState(timing(alpha=True), 0.0, initial_up=True).up


def test_warmup_spreads_the_first_attempt() -> None:
    assert CheckerState(timing(warmup=10.0), 100.0, warmup_fraction=0.25).next_run == 102.5
    assert CheckerState(timing(warmup=0.0), 100.0, warmup_fraction=0.9).next_run == 100.0
    with pytest.raises(ValueError):
        CheckerState(timing(), 0.0, warmup_fraction=1.5)


# --- retry, delay_before_retry, rise ---------------------------------------------------------


def test_an_up_check_goes_down_after_retry_plus_one_failures_spaced_by_delay_before_retry() -> None:
    state = CheckerState(timing(retry=2), 0.0, label="HTTP_GET 10.0.0.1:80/")
    attempt(state, OK)  # t=0, next at 10
    assert attempt(state, FAIL) is None  # t=10: first failure, retry 1 due at 12
    assert state.next_run == 12.0 and state.retrying
    assert attempt(state, FAIL) is None  # t=12: retry 1 failed, retry 2 at 14
    assert state.next_run == 14.0
    change = attempt(state, FAIL)  # t=14: retry 2 failed: down
    assert change is not None and not change.up
    assert change.reason == "HTTP_GET 10.0.0.1:80/ failed after 2 retries (connection refused)"
    assert state.next_run == 24.0 and state.retries == 2 and state.failed == 3


def test_a_success_between_failures_resets_the_count() -> None:
    state = CheckerState(timing(retry=1), 0.0)
    attempt(state, OK)
    assert attempt(state, FAIL) is None
    assert attempt(state, OK) is None
    assert attempt(state, FAIL) is None  # one failure again: still up
    assert state.up


def test_retry_zero_is_down_at_the_first_failure() -> None:
    state = CheckerState(timing(retry=0), 0.0)
    attempt(state, OK)
    change = attempt(state, FAIL)
    assert change is not None and change.reason.endswith("failed (connection refused)")


def test_a_down_check_is_tried_every_delay_loop_and_rise_successes_bring_it_up() -> None:
    state = CheckerState(timing(retry=0, rise=3), 0.0, label="chk")
    attempt(state, FAIL)  # first result: down
    assert attempt(state, OK) is None and state.next_run == 20.0
    assert attempt(state, FAIL) is None  # a failure resets the successes
    assert attempt(state, OK) is None
    assert attempt(state, OK) is None
    change = attempt(state, OK)
    assert change is not None and change.up
    assert change.reason == "chk succeeded 3 times (status 200)"


def test_the_delay_loop_counts_from_the_start_and_attempts_never_overlap() -> None:
    state = CheckerState(timing(delay_loop=1.0, timeout=5.0, warmup=0.0), 0.0)
    attempt(state, OK, duration=0.3)
    assert state.next_run == 1.0
    attempt(state, OK, duration=2.5)  # longer than the delay_loop: next at its end
    assert state.next_run == 3.5


def test_begin_returns_the_deadline_and_refuses_a_second_attempt() -> None:
    state = CheckerState(timing(timeout=3.0), 0.0)
    assert state.begin(5.0) == 8.0 and state.next_run is None and not state.due(100.0)
    with pytest.raises(RuntimeError):
        state.begin(6.0)


def test_the_history_ring_keeps_the_last_results_and_the_last_error() -> None:
    state = CheckerState(timing(retry=100), 0.0, history=4)
    attempt(state, CheckResult(False, "reset"), duration=0.5)
    for _ in range(5):
        attempt(state, OK, duration=0.25)
    assert len(state.history) == 4 and all(e.ok for e in state.history)
    assert state.last_error is not None and state.last_error.detail == "reset"
    doc = state.status()
    assert doc["runs"] == 6 and doc["failed"] == 1
    assert doc["history"][-1]["duration"] == 0.25
    assert doc["last_error"]["detail"] == "reset"


# --- keepalived's tcp_epilog, transliterated: the oracle -------------------------------------


@dataclass
class Keepalived:
    """check_tcp.c ``tcp_epilog`` with check_data.c's start-up values, nothing else."""

    retry: int
    delay_loop: float
    delay_before_retry: float
    alpha: bool

    def __post_init__(self) -> None:
        self.is_up = not self.alpha  # set_checker_state(checker, false) for alpha
        self.has_run = False
        self.retry_it = self.retry  # "For non alpha mode, one failure is enough initially"

    def epilog(self, is_success: bool) -> float:
        delay = self.delay_loop
        if is_success or ((self.is_up or not self.has_run) and self.retry_it >= self.retry):
            self.retry_it = 0
            if is_success and (not self.is_up or not self.has_run):
                self.is_up = True
            elif not is_success and (self.is_up or not self.has_run):
                self.is_up = False
        elif self.is_up:
            delay = self.delay_before_retry
            self.retry_it += 1
        self.has_run = True
        return delay


@settings(max_examples=300, deadline=None)
@given(
    retry=st.integers(0, 4),
    alpha=st.booleans(),
    results=st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_state_machine_agrees_with_keepalived_tcp_epilog(
    retry: int, alpha: bool, results: list[bool]
) -> None:
    ours = CheckerState(timing(retry=retry, alpha=alpha, warmup=0.0), 0.0)
    theirs = Keepalived(retry, 10.0, 2.0, alpha)
    now = 0.0
    for ok in results:
        ours.begin(now)
        ours.record(OK if ok else FAIL, now)
        delay = theirs.epilog(ok)
        assert ours.up == theirs.is_up
        assert ours.next_run == now + delay
        now += delay


@settings(max_examples=200, deadline=None)
@given(
    retry=st.integers(0, 3),
    rise=st.integers(1, 4),
    alpha=st.booleans(),
    results=st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_rise_and_fall_as_consecutive_counts(
    retry: int, rise: int, alpha: bool, results: list[bool]
) -> None:
    """The ldirectord / HAProxy reading: down after retry+1 failures in a row, up after
    ``rise`` successes in a row; the first result decides alone."""
    state = CheckerState(timing(retry=retry, rise=rise, alpha=alpha), 0.0)
    up = not alpha
    run_ok = run_fail = 0
    for i, ok in enumerate(results):
        run_ok, run_fail = (run_ok + 1, 0) if ok else (0, run_fail + 1)
        if i == 0:
            up, run_ok, run_fail = ok, 0, 0
        elif up and run_fail >= retry + 1:
            up, run_fail = False, 0
        elif not up and run_ok >= rise:
            up, run_ok = True, 0
        attempt(state, OK if ok else FAIL)
        assert state.up == up, (i, results[: i + 1])


# --- servers: all checks up, misc_dynamic weights --------------------------------------------


def test_a_server_is_up_while_all_its_checks_are_up() -> None:
    a = CheckerState(timing(retry=0), 0.0, label="a")
    b = CheckerState(timing(retry=0), 0.0, label="b")
    server = ServerState("rs1", [a, b])
    assert server.health == ServerHealth(True)
    change = server.update(attempt(a, FAIL), 1.0)
    assert change is not None and not change.up and change.check == "a"
    assert change.reason == "a failed (connection refused)"
    assert server.update(attempt(b, FAIL), 2.0) is None  # already down
    assert server.update(attempt(a, OK), 3.0) is None  # b still down
    change = server.update(attempt(b, OK), 4.0)
    assert change is not None and change.up and change.old == ServerHealth(False)
    assert health_map({"rs1": server}) == {"rs1": ServerHealth(True)}
    assert ServerState("empty", []).health.up


def test_misc_dynamic_weight_moves_while_up_and_goes_with_down() -> None:
    misc = CheckerState(timing(retry=0), 0.0, label="MISC_CHECK w")
    server = ServerState("rs1", [misc], weight=5)
    change = server.update(attempt(misc, CheckResult(True, "exit 12", weight=10)), 1.0)
    assert change is not None and change.health == ServerHealth(True, 10)
    assert change.reason == "MISC_CHECK w: weight 10"
    assert server.update(attempt(misc, CheckResult(True, "exit 12", weight=10)), 2.0) is None
    change = server.update(attempt(misc, CheckResult(True, "exit 0")), 3.0)
    assert change is not None and change.health == ServerHealth(True, None)  # configured again
    change = server.update(attempt(misc, CheckResult(True, "exit 4", weight=2)), 4.0)
    assert change is not None and change.weight == 2
    change = server.update(attempt(misc, CheckResult(False, "exit 1")), 5.0)
    assert change is not None and change.health == ServerHealth(False, None)


def test_effective_weight_is_keepalived_arithmetic() -> None:
    assert effective_weight(5, []) is None
    assert effective_weight(5, [10]) == 10  # one check: exit status - 2, whatever configured
    assert effective_weight(None, [7]) == 7
    assert effective_weight(5, [10, 20]) == 25  # 5 + (10 - 5) + (20 - 5)
    assert effective_weight(5, [0, 0]) == 0  # never below 0


# --- specs: keepalived's defaults and names --------------------------------------------------


def test_timing_defaults_are_keepalived_per_check_kind() -> None:
    tcp = TcpCheck(server="rs", connect_ip="10.0.0.1", connect_port=80).timing()
    assert (tcp.delay_loop, tcp.timeout, tcp.retry, tcp.delay_before_retry, tcp.warmup) == (
        60.0,
        5.0,
        1,
        1.0,
        60.0,
    )
    http = HttpCheck(server="rs", connect_ip="10.0.0.1", connect_port=80).timing()
    assert (http.retry, http.delay_before_retry) == (1, 3.0)
    dns = DnsCheck(server="rs", connect_ip="10.0.0.1", delay_loop=7).timing()
    assert (dns.retry, dns.delay_before_retry) == (3, 7.0)
    misc = MiscCheck(server="rs", command="/bin/true", delay_loop=4).timing()
    assert (misc.retry, misc.timeout, misc.delay_before_retry) == (0, 4.0, 1.0)
    assert MiscCheck(server="rs", command="x", timeout=2).timing().timeout == 2.0


def test_spec_from_json_reads_keepalived_names() -> None:
    spec = spec_from_json(
        {
            "kind": "SSL_GET",
            "server": "10.0.0.1:443",
            "connect_ip": "10.0.0.1",
            "connect_port": 443,
            "url": "/health",
            "status_code": "200-299 503",
            "digest": "9B3A0C85A887A256D6939DA88AABD8CD",
            "enable_sni": True,
            "virtualhost": "www.example.com",
            "nb_get_retry": 4,
        }
    )
    assert isinstance(spec, HttpCheck) and spec.tls and spec.sni
    assert spec.status_code == ((200, 299), (503, 503))
    assert spec.digest == "9b3a0c85a887a256d6939da88aabd8cd"
    assert spec.server_hostname == "www.example.com" and spec.host_header == "www.example.com"
    assert spec.timing().retry == 4 and spec.label == "SSL_GET 10.0.0.1:443/health"
    misc = spec_from_json(
        {"kind": "MISC_CHECK", "server": "rs", "misc_path": "/bin/chk", "misc_dynamic": True}
    )
    assert isinstance(misc, MiscCheck) and misc.dynamic and misc.command == "/bin/chk"


def test_fall_and_failurecount_are_retry_plus_one() -> None:
    base = {"kind": "tcp", "server": "rs", "connect_ip": "::1", "connect_port": 80}
    assert spec_from_json({**base, "fall": 3}).timing().retry == 2
    assert spec_from_json({**base, "failurecount": 1}).timing().retry == 0
    with pytest.raises(HealthConfigError, match="not both"):
        spec_from_json({**base, "fall": 3, "retry": 1})


TCP = {"kind": "tcp", "server": "rs", "connect_ip": "::1", "connect_port": 1}
HTTP = {**TCP, "kind": "http"}
DNS = {"kind": "dns", "server": "rs", "connect_ip": "::1"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({**TCP, "connect_ip": "x"}, "connect_ip"),
        ({**TCP, "connect_port": 0}, "port"),
        ({**TCP, "bogus": 1}, "bogus"),
        ({"kind": "ftp", "server": "rs"}, "unknown check kind"),
        ({**HTTP, "digest": "12"}, "digest"),
        ({**HTTP, "path": "x"}, "path"),
        ({**HTTP, "sni": True}, "need tls"),
        ({**HTTP, "status_code": "99"}, "status_code"),
        ({**DNS, "query_type": "ANY"}, "query_type"),
        ({**DNS, "query_name": "a..b"}, "query_name"),
        ({"kind": "misc", "server": "rs", "command": " "}, "command"),
        ({**TCP, "delay_loop": 0}, "delay_loop"),
        ({**TCP, "rise": 0}, "rise"),
        ({**TCP, "server": ""}, "server"),
        ({**TCP, "bindto": "127.0.0.1"}, "family"),
    ],
)
def test_bad_specs_are_refused_naming_the_key(doc: dict[str, object], message: str) -> None:
    with pytest.raises(HealthConfigError, match=message):
        spec_from_json(doc)


def test_specs_round_trip_through_json() -> None:
    specs: list[CheckSpec] = [
        TcpCheck(server="a", connect_ip="127.0.0.1", connect_port=80, bindto="127.0.0.2"),
        HttpCheck(server="a", connect_ip="::1", connect_port=8443, tls=True, sni=True,
                  sni_name="x.example", status_code=((200, 204), (301, 301)), receive="ok"),
        DnsCheck(server="b", connect_ip="127.0.0.1", query_name="example.com", query_type="a",
                 answer="192.0.2.1", rcode=3),
        MiscCheck(server="c", command="/bin/true", dynamic=True, timeout=3, rise=2, alpha=True),
    ]  # fmt: skip
    for spec in specs:
        assert spec_from_json(spec_to_json(spec)) == spec


def test_status_codes_parse_like_keepalived() -> None:
    assert parse_status_codes("200-299 400-499 503") == ((200, 299), (400, 499), (503, 503))
    assert parse_status_codes(204) == ((204, 204),)
    assert parse_status_codes([200, "301-302"]) == ((200, 200), (301, 302))
    with pytest.raises(HealthConfigError):
        parse_status_codes("300-200")
