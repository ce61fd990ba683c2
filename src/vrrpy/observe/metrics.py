"""Prometheus metrics of a vrrpy daemon, in the text exposition format 0.0.4.

:func:`render` turns a :class:`Snapshot` (each instance's
``InstanceRunner.status()`` plus what the daemon knows about itself) into the
text Prometheus scrapes. Pure: no clock, no I/O, no asyncio; the caller decides
where and when it runs (:mod:`vrrpy.observe.server` does it in a time-shared
thread of its own).

**keepalived's names first.** A keepalived user's dashboards and alert rules
query the names of mehdy/keepalived-exporter (formerly
cafebazaar/keepalived-exporter), the most-used keepalived exporter; vrrpy
renders the same names, labels and value encodings, as its newest release
(v1.7.1, collector unchanged up to commit 5aedbfb) defines them in
``internal/collector/collector.go``:

* ``keepalived_up``: 1, or 0 (and nothing else) when no snapshot could be taken;
* ``keepalived_vrrp_state{iname,intf,vrid,ip_address}``: 0 INIT, 1 BACKUP,
  2 MASTER, 3 FAULT; one sample per virtual address, ``ip_address`` as
  keepalived prints it (the address, ``/prefix`` only when it is not /32 or
  /128), ``intf`` the device it is added to; one sample with
  ``ip_address=""`` on the instance's interface when the address list is
  not known;
* counters ``keepalived_<what>_total{iname,intf,vrid}`` (:data:`KEEPALIVED_COUNTERS`);
* ``keepalived_gratuitous_arp_delay_total``: keepalived's ``garp_master_delay``
  in seconds, a configuration value typed as a counter (as the exporter has it);
* ``keepalived_script_status{name}``: 1 GOOD, 0 BAD, per track script;
* ``keepalived_script_state{name}``: 0 idle, 1 running, 3 forcing termination
  (the group was killed at the timeout), as of the tracking agent's last
  answer; vrrpyd asks at every render, so it is one render old.

Not rendered: ``keepalived_vrrp_excluded_state`` (vrrpy has no excluded addresses),
``keepalived_exporter_check_script_status`` (the exporter's own ``-cs`` probe)
and ``keepalived_exporter_build_info`` (``vrrpy_build_info`` instead).

**vrrpy's own** follow under ``vrrpy_`` (docs/observability.md lists them):
every drop reason as a label, base and effective priority, the last
transition's time, split brains seen, backend and tracking results, CARP's
advskew and demotion, and any histogram the runtime adds (:class:`Histogram`).
Labels: ``iname``, ``intf``, ``vrid`` on every per-instance metric, the
keepalived exporter's, so that the two join.

**Counters never go backwards.** An instance restarted by a reload starts a
new core with zeroed counters; a :class:`CounterGuard` kept across renders
adds what the series had reached, so that every ``_total`` (and every
histogram series) only grows while the daemon runs. A daemon restart is a
reset Prometheus sees (``process_start_time_seconds`` changes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from vrrpy.observe.histogram import (
    ADVERT_INTERARRIVAL_BUCKETS,
    TAKEOVER_BUCKETS,
    Histogram,
    cumulative_counts,
)
from vrrpy.observe.threads import paced

__all__ = [
    "ADVERT_INTERARRIVAL_BUCKETS",
    "CONTENT_TYPE",
    "KEEPALIVED_COUNTERS",
    "STATE_VALUES",
    "TAKEOVER_BUCKETS",
    "CounterGuard",
    "Histogram",
    "Snapshot",
    "escape_help",
    "escape_label_value",
    "format_value",
    "keepalived_address",
    "mark_installed",
    "read_instances",
    "render",
    "render_down",
    "render_parts",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
"""What ``/metrics`` answers with (the format Prometheus asks for first)."""

STATE_VALUES: Final[Mapping[str, int]] = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}
"""keepalived-exporter's encoding of a state (its ``VRRPStates`` index); vrrpy's state
strings are keepalived's."""


# ------------------------------------------------------------------ the format


def escape_label_value(value: str) -> str:
    """A label value for the text format: backslash, double quote and newline escaped.

    The exposition is UTF-8: a string that cannot be encoded (a lone surrogate
    from undecodable bytes) has those characters replaced by U+FFFD.
    """
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    if "\\" in value or '"' in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def escape_help(text: str) -> str:
    """A HELP docstring for the text format: backslash and newline escaped."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """A sample value: integers as integers, floats in their shortest form, ``+Inf``,
    ``-Inf``, ``NaN`` (Go's ``strconv`` spellings, which every parser takes)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is bool:
        return "1" if value else "0"
    value = float(value)
    if value != value:
        return "NaN"
    if value == math.inf:
        return "+Inf"
    if value == -math.inf:
        return "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _labels(**pairs: object) -> str:
    return ",".join(f'{k}="{escape_label_value(str(v))}"' for k, v in pairs.items())


def keepalived_address(address: object) -> str:
    """A virtual address as keepalived prints it (``ipaddresstos``): the address, and
    ``/prefix`` only when the prefix is not the host's (/32, /128).

    Takes an :class:`~ipaddress.IPv4Interface` / ``IPv6Interface`` (a spec's
    virtual address) or its string; any other string is returned unchanged
    but for a host prefix, which is dropped.
    """
    text = str(address)
    if "/" in text:
        ip, _, prefix = text.rpartition("/")
        if prefix == ("128" if ":" in ip else "32"):
            return ip
    return text


# -------------------------------------------------------------- the histogram


def _histogram_parts(doc: object) -> tuple[list[tuple[float, int]], float, int] | None:
    """(cumulative buckets, sum, count) from a :meth:`Histogram.as_dict`, or None."""
    if isinstance(doc, Histogram):
        return doc.cumulative(), doc.sum, doc.count
    if not isinstance(doc, Mapping):
        return None
    bounds, counts = doc.get("bounds"), doc.get("counts")
    if not isinstance(bounds, Sequence) or not isinstance(counts, Sequence):
        return None
    if len(counts) != len(bounds) + 1:
        return None
    total = _number(doc.get("sum"))
    count = _number(doc.get("count"))
    if total is None or count is None:
        return None
    try:
        buckets = cumulative_counts([float(b) for b in bounds], [int(n) for n in counts])
    except (TypeError, ValueError):
        return None
    return buckets, float(total), int(count)


# ------------------------------------------------------ counters that only grow


class CounterGuard:
    """Keeps every counter series monotonic across renders, through instance restarts.

    For each series (name and labels) it remembers the last raw value, and an
    offset for a series that went back: a raw value below the last one is a
    restart (the core's counters began again at zero), so the offset grows by
    what the series had reached. A series unseen for a whole window of
    :data:`WINDOW` renders is forgotten (an instance removed for good), so
    memory follows the configuration; one that disappears for a render or two
    (restarted during a reload) keeps its count.

    Its dicts hold only strings and numbers, which the garbage collector never
    traverses: tens of thousands of series add nothing to a collection's pause.
    """

    WINDOW: Final = 16
    SHARDS: Final = 64
    """The series are kept in this many dicts, by hash: a dict of 75,000 series
    (2,000 instances) grows by doubling, and each of its last doublings is one C call
    of milliseconds; a shard of some 1,200 series doubles in tens of microseconds."""

    __slots__ = ("_current", "_offsets", "_previous", "_renders")

    def __init__(self) -> None:
        self._current: list[dict[str, float]] = [{} for _ in range(self.SHARDS)]
        self._previous: list[dict[str, float]] = [{} for _ in range(self.SHARDS)]
        self._offsets: dict[str, float] = {}
        self._renders = 0

    def __len__(self) -> int:
        pairs = zip(self._current, self._previous, strict=True)
        return sum(len(c.keys() | p.keys()) for c, p in pairs)

    def begin(self, pause: Callable[[], None] | None = None) -> None:
        """Start a render (before the first :meth:`adjust`).

        Every :data:`WINDOW` renders the oldest window is let go, a few hundred
        series at a time with ``pause`` between: dropped at once, 75,000 series
        of 2,000 instances are one C call of milliseconds.
        """
        self._renders += 1
        if self._renders % self.WINDOW == 0:
            old = self._previous
            self._previous = self._current
            self._current = [{} for _ in range(self.SHARDS)]
            if self._offsets:
                self._offsets = {
                    k: v for k, v in self._offsets.items() if k in self._shard(self._previous, k)
                }
            for shard in old:
                n = 0
                while shard:
                    shard.popitem()
                    n += 1
                    if pause is not None and n % 256 == 0:
                        pause()
                if pause is not None:
                    pause()

    def end(self) -> None:
        """Finish a render (nothing to do now; kept for symmetry and later use)."""

    def _shard(self, shards: list[dict[str, float]], key: str) -> dict[str, float]:
        return shards[hash(key) & (self.SHARDS - 1)]

    def adjust(self, key: str, raw: float) -> float:
        """The value to expose for series ``key`` whose source now says ``raw``."""
        at = hash(key) & (self.SHARDS - 1)
        current = self._current[at]
        last = current.get(key)
        if last is None:
            last = self._previous[at].get(key)
        current[key] = raw
        if last is not None and raw < last:
            grown = self._offsets.get(key, 0) + last
            self._offsets[key] = grown
            return raw + grown
        offset = self._offsets.get(key) if self._offsets else None
        return raw + offset if offset else raw


# ------------------------------------------------------------- the snapshot


@dataclass(frozen=True)
class Snapshot:
    """What one scrape shows.

    ``instances``: name to ``InstanceRunner.status()`` (the state file's
    ``instances``), optionally with ``virtual_addresses`` (as keepalived
    prints them), ``address_interface`` (where they are added: the
    interface, or its VMAC) and ``garp_delay`` (seconds), which
    :func:`read_instances` adds from the runner. ``tracking``: name to the
    instance's tracking status (the state file's ``tracking``).
    ``sync_groups``, ``realtime``, ``state_file_errors``: the state file's
    keys of the same names. ``start_time``: the daemon's start, wall-clock
    seconds since the epoch. ``up``: False renders ``keepalived_up 0`` only.
    """

    instances: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    up: bool = True
    pid: int | None = None
    start_time: float | None = None
    version: str = ""
    tracking: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    sync_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    realtime: Mapping[str, Any] | None = None
    state_file_errors: int | None = None

    @classmethod
    def from_state(cls, document: Mapping[str, Any], **facts: Any) -> Snapshot:
        """A snapshot from vrrpyd's state-file document (``json.load`` of the file)."""

        def mapping(key: str) -> Mapping[str, Any]:
            value = document.get(key)
            return value if isinstance(value, Mapping) else {}

        pid = document.get("pid")
        errors = document.get("state_file_errors")
        realtime = document.get("realtime")
        values: dict[str, Any] = {
            "instances": mapping("instances"),
            "pid": pid if isinstance(pid, int) else None,
            "tracking": mapping("tracking"),
            "sync_groups": mapping("sync_groups"),
            "realtime": realtime if isinstance(realtime, Mapping) else None,
            "state_file_errors": errors if isinstance(errors, int) else None,
        }
        values.update(facts)
        return cls(**values)


def read_instances(
    runners: Mapping[str, Any],
    attempts: int = 5,
    pause: Callable[[], None] | None = None,
    every: int = 4,
) -> dict[str, dict[str, Any]]:
    """Each runner's ``status()`` read from any thread, with what the metrics add.

    For :class:`vrrpy.runtime.instance.InstanceRunner` objects, read live
    from the scrape thread while the event loop goes on (the decision and its
    figures are in :mod:`vrrpy.observe.server`): nothing is drained, no advert
    is processed. A dict or set the loop changes while it is read raises
    ``RuntimeError`` ("changed size during iteration"); that read is retried
    (``attempts`` times, then the error propagates). The mapping itself is
    copied in one C call, atomic under the GIL.

    Adds, when the status lacks them: ``virtual_addresses`` (keepalived's
    spelling, from ``runner.spec``), ``address_interface``
    (``runner.addr_ifname``) and ``garp_delay``.

    ``pause`` is called after every ``every`` instances (a status is some 15 us:
    see :func:`render_parts`).
    """
    items = _retry(lambda: list(runners.items()), attempts)
    out: dict[str, dict[str, Any]] = {}
    for n, (name, runner) in enumerate(items, 1):
        if pause is not None and n % every == 0:
            pause()
        status = dict(_retry(runner.status, attempts))
        spec = getattr(runner, "spec", None)
        if "virtual_addresses" not in status and spec is not None:
            status["virtual_addresses"] = _spec_addresses(spec)
        if "address_interface" not in status:
            where = getattr(runner, "addr_ifname", None)
            if isinstance(where, str):
                status["address_interface"] = where
        recent = getattr(runner, "recent", None)
        if "recent_transitions" not in status and recent is not None:
            status["recent_transitions"] = [
                {"at": at, "from": old, "to": new, "code": code, "reason": reason}
                for at, old, new, code, reason in list(recent)  # one C call: no race
            ]
        if "address_ifindex" not in status:
            attachment = getattr(runner, "attachment", None)
            index = getattr(attachment, "addr_ifindex", None)
            if isinstance(index, int):
                status["address_ifindex"] = index
        if "garp_delay" not in status and spec is not None:
            delay = getattr(spec, "garp_delay", None)
            if isinstance(delay, (int, float)):
                status["garp_delay"] = delay
        out[str(name)] = status
    return out


def mark_installed(
    instances: Mapping[str, dict[str, Any]],
    kernel: Mapping[int, set[str]],
    pause: Callable[[], None] | None = None,
) -> None:
    """Add ``addresses_installed`` (``{address as keepalived spells it: on the interface?}``)
    to each status that has ``virtual_addresses`` and ``address_ifindex``.

    ``kernel`` is :func:`vrrpy.observe.kernel.read_addresses`'s answer. A
    MASTER whose address is not there, or a BACKUP that still has one, is
    what this is for: the runtime's own counters say what it asked for, this
    says what the kernel has. ``pause`` is called every few dozen instances.
    """
    for status in paced(instances.values(), pause):
        index = status.get("address_ifindex")
        addresses = status.get("virtual_addresses")
        if not isinstance(index, int) or not isinstance(addresses, list):
            continue
        present = kernel.get(index, set())
        spelled = [keepalived_address(a) for a in addresses]
        status["addresses_installed"] = {a: a.split("/", 1)[0] in present for a in spelled}


_SPEC_ADDRESSES: dict[int, tuple[object, list[str]]] = {}
"""A spec's addresses in keepalived's spelling, by ``id(spec)`` (specs are frozen; the
entry holds the spec, so its id cannot be reused while cached)."""


def _spec_addresses(spec: object) -> list[str]:
    entry = _SPEC_ADDRESSES.get(id(spec))
    if entry is None or entry[0] is not spec:
        if len(_SPEC_ADDRESSES) > 20_000:
            _SPEC_ADDRESSES.clear()
        addresses = [keepalived_address(a) for a in getattr(spec, "virtual_addresses", ())]
        entry = _SPEC_ADDRESSES[id(spec)] = (spec, addresses)
    return list(entry[1])


def _retry(read: Callable[[], Any], attempts: int) -> Any:
    for attempt in range(attempts):
        try:
            return read()
        except RuntimeError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


# ----------------------------------------------------------------- rendering

_CounterSource = tuple[str, str, str | None, tuple[str, ...], tuple[str, ...]]

KEEPALIVED_COUNTERS: Final[tuple[_CounterSource, ...]] = (
    # (name, help, scalar counter, drop reasons summed, anomaly reasons summed)
    (
        "keepalived_advertisements_received_total",
        "Advertisements received (keepalived advert_rcvd).",
        "adverts_received",
        (),
        (),
    ),
    (
        "keepalived_advertisements_sent_total",
        "Advertisements sent (keepalived advert_sent).",
        "adverts_sent",
        (),
        (),
    ),
    (
        "keepalived_become_master_total",
        "Times this instance became MASTER (keepalived become_master).",
        "became_master",
        (),
        (),
    ),
    (
        "keepalived_release_master_total",
        "Times this instance left MASTER (keepalived release_master).",
        "released_master",
        (),
        (),
    ),
    (
        "keepalived_packet_length_errors_total",
        "Adverts dropped for their length (drop reasons truncated, carp_truncated, "
        "carp_wrong_length).",
        None,
        ("truncated", "carp_truncated", "carp_wrong_length"),
        (),
    ),
    (
        "keepalived_advertisements_interval_errors_total",
        "Adverts whose interval differs from ours (dropped in v2, logged in v3).",
        None,
        ("interval_mismatch",),
        ("interval_mismatch",),
    ),
    (
        "keepalived_ip_ttl_errors_total",
        "Adverts dropped because their TTL or hop limit was not 255.",
        None,
        ("bad_ttl", "carp_bad_ttl"),
        (),
    ),
    (
        "keepalived_invalid_type_received_total",
        "Adverts dropped for a type other than ADVERTISEMENT.",
        None,
        ("bad_type", "carp_bad_type"),
        (),
    ),
    (
        "keepalived_address_list_errors_total",
        "Adverts whose address list differs from ours (dropped in v2, logged in v3).",
        None,
        ("address_list_mismatch",),
        ("address_list_mismatch",),
    ),
    (
        "keepalived_authentication_invalid_total",
        "Adverts with an unknown authentication type (vrrpy counts them as mismatches).",
        None,
        ("invalid_auth_type",),
        (),
    ),
    (
        "keepalived_authentication_mismatch_total",
        "VRRPv2 adverts dropped for an authentication type other than ours.",
        None,
        ("auth_type_mismatch",),
        (),
    ),
    (
        "keepalived_authentication_failure_total",
        "Adverts dropped for a wrong password or CARP HMAC, or a replayed CARP counter.",
        None,
        ("auth_failure", "carp_bad_hmac", "carp_replay"),
        (),
    ),
    (
        "keepalived_priority_zero_received_total",
        "Priority 0 adverts received (a Master resigning).",
        "priority_zero_received",
        (),
        (),
    ),
    (
        "keepalived_priority_zero_sent_total",
        "Priority 0 adverts sent (resigning as Master).",
        "priority_zero_sent",
        (),
        (),
    ),
)
"""keepalived-exporter's per-instance counters and where vrrpy's status has each."""

_RUNTIME_COUNTERS: Final = (
    ("vrrpy_action_errors_total", "action_errors", "Actions that raised (the protocol went on)."),
    (
        "vrrpy_address_add_failures_total",
        "address_add_failures",
        "Virtual address adds the kernel refused (each retried).",
    ),
    (
        "vrrpy_address_remove_failures_total",
        "address_remove_failures",
        "Virtual address removals the kernel refused (each retried).",
    ),
    (
        "vrrpy_announcements_sent_total",
        "announcements_sent",
        "Gratuitous ARP / unsolicited NA frames sent.",
    ),
    (
        "vrrpy_announcements_failed_total",
        "announcements_failed",
        "Gratuitous ARP / unsolicited NA frames that could not be sent.",
    ),
    (
        "vrrpy_stall_holds_total",
        "stall_holds",
        "Takeovers put off one interval because the process had been stopped.",
    ),
)

_BACKEND_COUNTERS: Final = (
    ("vrrpy_backend_calls_total", "calls", "Backend steps called (transitions, prepares)."),
    ("vrrpy_backend_failures_total", "failures", "Backend steps that raised or failed."),
    ("vrrpy_backend_timeouts_total", "timeouts", "Backend steps that ran out of time."),
    ("vrrpy_backend_refusals_total", "refusals", "Times a backend refused MASTER."),
    ("vrrpy_backend_cancelled_total", "cancelled", "Backend steps cancelled by a newer state."),
    ("vrrpy_backend_checks_total", "checks", "Backend checks run."),
    ("vrrpy_backend_check_failures_total", "check_failures", "Backend checks that failed."),
)

_HISTOGRAM_HELP: Final[Mapping[str, str]] = {
    "takeover_seconds": "Time from Master_Down_Timer expiry to the first announcement.",
    "advert_interarrival_seconds": "Time between two adverts of the Master heard.",
}


def _number(value: object) -> float | None:
    if type(value) is int or type(value) is float:
        return value
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class _Instance:
    """One instance as the renderer needs it: its labels escaped once per render."""

    __slots__ = (
        "anomalies",
        "counters",
        "drops",
        "intf",
        "labels",
        "name",
        "runtime",
        "status",
    )

    def __init__(self, name: str, status: Mapping[str, Any]) -> None:
        self.name = name
        self.status = status
        where = status.get("address_interface") or status.get("interface") or ""
        self.intf = str(where)
        vrid = status.get("vrid")
        self.labels = (
            f'iname="{escape_label_value(name)}",intf="{escape_label_value(self.intf)}",'
            f'vrid="{escape_label_value(str(vrid if vrid is not None else ""))}"'
        )
        self.counters = _mapping(status.get("counters"))
        self.drops = _mapping(self.counters.get("drops"))
        self.anomalies = _mapping(self.counters.get("anomalies"))
        self.runtime = _mapping(status.get("runtime"))


class _Writer:
    """Collects families; each name once, its samples together, headers only if it has any."""

    __slots__ = ("guard", "names", "parts", "pause")

    def __init__(self, guard: CounterGuard | None, pause: Callable[[], None] | None = None) -> None:
        self.parts: list[str] = []
        self.names: set[str] = set()
        self.guard = guard
        self.pause = pause

    def family(self, name: str, kind: str, text: str, lines: list[str]) -> None:
        if self.pause is not None:
            self.pause()
        if not lines:
            return
        if name in self.names:
            raise ValueError(f"metric family {name} rendered twice")
        self.names.add(name)
        self.parts.append(f"# HELP {name} {escape_help(text)}\n# TYPE {name} {kind}\n")
        # In pieces of CHUNK lines: joining (and later encoding) a family of 80,000
        # samples is one C call of milliseconds that holds the GIL against the loop.
        for start in range(0, len(lines), CHUNK):
            if start and self.pause is not None:
                self.pause()
            self.parts.append("\n".join(lines[start : start + CHUNK]) + "\n")
        # And let the lines go as they came, a piece at a time: the caller's list of
        # 34,000 histogram samples, dropped at once, is one C call of milliseconds.
        while lines:
            del lines[-CHUNK:]
            if self.pause is not None:
                self.pause()

    def gauge(self, name: str, text: str, samples: Iterable[tuple[str, float | None]]) -> None:
        lines = [
            f"{name}{{{labels}}} {v if type(v) is int else format_value(v)}"
            if labels
            else f"{name} {v if type(v) is int else format_value(v)}"
            for labels, v in paced(samples, self.pause)
            if v is not None
        ]
        self.family(name, "gauge", text, lines)

    def counter(self, name: str, text: str, samples: Iterable[tuple[str, float | None]]) -> None:
        lines: list[str] = []
        append = lines.append
        guard = self.guard
        samples = paced(samples, self.pause)
        if guard is None:
            for labels, raw in samples:
                if raw is not None:
                    head = f"{name}{{{labels}}}" if labels else name
                    append(f"{head} {raw if type(raw) is int else format_value(raw)}")
        else:
            # CounterGuard.adjust, inlined: this loop runs for every counter sample.
            current, previous, offsets = guard._current, guard._previous, guard._offsets
            mask = guard.SHARDS - 1
            for labels, raw in samples:
                if raw is None:
                    continue
                head = f"{name}{{{labels}}}" if labels else name
                at = hash(head) & mask
                last = current[at].get(head)
                if last is None:
                    last = previous[at].get(head)
                current[at][head] = raw
                if last is not None and raw < last:
                    offsets[head] = offsets.get(head, 0) + last
                value = raw + offsets[head] if offsets and head in offsets else raw
                append(f"{head} {value if type(value) is int else format_value(value)}")
        self.family(name, "counter", text, lines)

    def histogram(
        self,
        name: str,
        text: str,
        series: Iterable[tuple[str, tuple[list[tuple[float, int]], float, int]]],
    ) -> None:
        # `guard is not None`, never `if guard`: a CounterGuard has a __len__ that counts
        # every series it knows, and asking it per sample made renders quadratic.
        adjust = self.guard.adjust if self.guard is not None else None
        lines: list[str] = []
        append = lines.append
        for labels, (buckets, total, count) in paced(series, self.pause, 4):
            sep = "," if labels else ""
            for le, n in buckets:
                head = f'{name}_bucket{{{labels}{sep}le="{format_value(le)}"}}'
                append(f"{head} {format_value(adjust(head, n) if adjust is not None else n)}")
            for suffix, raw in (("_sum", total), ("_count", count)):
                head = f"{name}{suffix}{{{labels}}}" if labels else f"{name}{suffix}"
                append(f"{head} {format_value(adjust(head, raw) if adjust is not None else raw)}")
        self.family(name, "histogram", text, lines)


SCRIPT_STATES: Final = ("idle", "running", "requested termination", "forcing termination")
"""keepalived's script states, in the order of their values (keepalived-exporter's)."""

CHUNK: Final = 500
"""Samples per piece of a rendered family (see :meth:`_Writer.family`)."""


def render_down() -> str:
    """What keepalived-exporter shows when it cannot read keepalived: ``keepalived_up 0``."""
    return "# HELP keepalived_up Whether the daemon answered (1) or not (0).\n" + (
        "# TYPE keepalived_up gauge\nkeepalived_up 0\n"
    )


def render(snapshot: Snapshot, guard: CounterGuard | None = None) -> str:
    """The exposition of ``snapshot`` (pass the same ``guard`` to every render of a daemon)."""
    return "".join(render_parts(snapshot, guard))


def render_parts(
    snapshot: Snapshot,
    guard: CounterGuard | None = None,
    pause: Callable[[], None] | None = None,
) -> list[str]:
    """:func:`render` as a list of pieces (a family's header, its samples, ...), each
    small enough to encode or send without holding the GIL for long: joining a
    2,000-instance exposition into one string is a single C call of milliseconds.

    ``pause`` is called every few dozen samples, and between pieces: the scrape
    thread waits there while the event loop works, and naps
    (:meth:`vrrpy.observe.server.MetricsServer.pause`)."""
    if not snapshot.up:
        return [render_down()]
    if guard is not None:
        guard.begin(pause)
    out = _Writer(guard, pause)
    instances = [
        _Instance(str(name), _mapping(st)) for name, st in paced(snapshot.instances.items(), pause)
    ]
    _daemon(out, snapshot)
    _keepalived(out, instances, snapshot)
    _vrrpy(out, instances)
    _backends(out, instances)
    _tracking(out, instances, snapshot)
    _histograms(out, instances)
    if guard is not None:
        guard.end()
    while instances:  # one at a time, as the statuses are (server._release)
        instances.pop()
        if pause is not None and len(instances) % 32 == 0:
            pause()
    return out.parts


def _daemon(out: _Writer, snapshot: Snapshot) -> None:
    out.gauge("keepalived_up", "Whether the daemon answered (1) or not (0).", [("", 1)])
    if snapshot.version:
        out.gauge(
            "vrrpy_build_info",
            "vrrpy's version, as a label (the value is always 1).",
            [(_labels(version=snapshot.version), 1)],
        )
    if snapshot.start_time is not None:
        out.gauge(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            [("", snapshot.start_time)],
        )
    if snapshot.pid is not None:
        out.gauge("vrrpy_daemon_pid", "Process id of the daemon.", [("", snapshot.pid)])
    if snapshot.state_file_errors is not None:
        out.counter(
            "vrrpy_state_file_errors_total",
            "Writes of the state file that failed since start.",
            [("", snapshot.state_file_errors)],
        )
    realtime = snapshot.realtime
    if realtime is not None:
        out.gauge(
            "vrrpy_realtime_scheduling",
            "Whether the protocol loop runs at real-time priority now (1) or time-shared (0).",
            [("", 1 if realtime.get("policy") == "SCHED_RR" else 0)],
        )
        out.counter(
            "vrrpy_rttime_exceeded_total",
            "Times a real-time thread hit RLIMIT_RTTIME (SIGXCPU) and was dropped to time-sharing.",
            [("", _number(realtime.get("rttime_exceeded")))],
        )
    groups = [
        (_labels(sync_group=name), STATE_VALUES.get(str(_mapping(doc).get("state")), 0))
        for name, doc in snapshot.sync_groups.items()
    ]
    out.gauge(
        "vrrpy_sync_group_state",
        "State of each sync group: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.",
        groups,
    )


def _keepalived(out: _Writer, instances: list[_Instance], snapshot: Snapshot) -> None:
    for name, text, scalar, drops, anomalies in KEEPALIVED_COUNTERS:
        if scalar is not None:
            samples = ((i.labels, _number(i.counters.get(scalar, 0))) for i in instances)
        else:
            samples = ((i.labels, _summed(i, drops, anomalies)) for i in instances)
        out.counter(name, text, samples)
    out.counter(
        "keepalived_gratuitous_arp_delay_total",
        "Seconds between the two bursts of announcements on becoming MASTER "
        "(keepalived garp_master_delay; a setting, typed counter as keepalived-exporter has it).",
        ((i.labels, _number(i.status.get("garp_delay"))) for i in instances),
    )
    states: list[str] = []
    for i in paced(instances, out.pause):
        value = format_value(STATE_VALUES.get(str(i.status.get("state")), 0))
        addresses = i.status.get("virtual_addresses")
        vrid = escape_label_value(str(i.status.get("vrid", "")))
        prefix = f'keepalived_vrrp_state{{iname="{escape_label_value(i.name)}",intf="'
        if isinstance(addresses, Sequence) and not isinstance(addresses, str) and addresses:
            intf = escape_label_value(i.intf)
            for address in addresses:
                states.append(
                    f'{prefix}{intf}",vrid="{vrid}",'
                    f'ip_address="{escape_label_value(keepalived_address(address))}"}} {value}'
                )
        else:
            states.append(
                f'{prefix}{escape_label_value(i.intf)}",vrid="{vrid}",ip_address=""}} {value}'
            )
    out.family(
        "keepalived_vrrp_state",
        "gauge",
        "State of each instance, per virtual address: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.",
        states,
    )
    scripts: dict[str, int] = {}
    running: dict[str, int] = {}
    for doc in paced(snapshot.tracking.values(), out.pause, 8):
        for track_name, track in _mapping(_mapping(doc).get("tracks")).items():
            track = _mapping(track)
            if track.get("kind") == "script" and track_name not in scripts:
                scripts[track_name] = 1 if track.get("up") is True else 0
                agent = track.get("agent")
                state = agent.get("state") if isinstance(agent, Mapping) else None
                if state in SCRIPT_STATES:
                    running[track_name] = SCRIPT_STATES.index(state)
    out.gauge(
        "keepalived_script_status",
        "Track scripts: 1 GOOD, 0 BAD (also before the first result, as keepalived prints).",
        [(_labels(name=n), v) for n, v in scripts.items()],
    )
    out.gauge(
        "keepalived_script_state",
        "Track scripts: 0 idle, 1 running, 2 requested termination, 3 forcing termination "
        "(as of the tracking agent's last answer, asked at every render).",
        [(_labels(name=n), v) for n, v in running.items()],
    )


def _summed(i: _Instance, drops: tuple[str, ...], anomalies: tuple[str, ...]) -> int:
    total = 0
    if i.drops:
        for reason in drops:
            n = i.drops.get(reason)
            if type(n) is int:
                total += n
    if i.anomalies:
        for reason in anomalies:
            n = i.anomalies.get(reason)
            if type(n) is int:
                total += n
    return total


def _vrrpy(out: _Writer, instances: list[_Instance]) -> None:
    out.gauge(
        "vrrpy_instance_state",
        "State of each instance (one sample per instance): 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.",
        ((i.labels, STATE_VALUES.get(str(i.status.get("state")), 0)) for i in instances),
    )
    out.gauge(
        "vrrpy_instance_info",
        "Each instance's configured interface, protocol and sync group (value 1).",
        (
            (
                i.labels
                + ","
                + _labels(
                    interface=i.status.get("interface", ""),
                    protocol=i.status.get("protocol", "vrrp"),
                    sync_group=i.status.get("sync_group") or "",
                ),
                1,
            )
            for i in instances
        ),
    )
    out.gauge(
        "vrrpy_priority",
        "Configured (base) priority; for CARP the notional base that tracking moves.",
        ((i.labels, _number(i.status.get("priority"))) for i in instances),
    )
    out.gauge(
        "vrrpy_effective_priority",
        "Priority after tracking (the one advertised by VRRP).",
        ((i.labels, _number(i.status.get("effective_priority"))) for i in instances),
    )
    out.gauge(
        "vrrpy_faults",
        "Fault reasons held (FAULT while any is).",
        (
            (i.labels, len(f) if isinstance(f := i.status.get("faults"), list) else None)
            for i in instances
        ),
    )
    out.gauge(
        "vrrpy_master_address_info",
        "The Master this instance hears or is (value 1).",
        (
            (f'{i.labels},master_address="{escape_label_value(str(m))}"', 1)
            for i in instances
            if (m := i.status.get("master_address"))
        ),
    )
    out.gauge(
        "vrrpy_last_transition_timestamp_seconds",
        "Wall-clock time of the instance's last state change, seconds since the epoch.",
        (
            (i.labels, _number(i.counters.get("last_transition")) or _number(i.status.get("since")))
            for i in instances
        ),
    )
    out.counter(
        "vrrpy_transitions_total",
        "State changes of the instance.",
        ((i.labels, _number(i.counters.get("transitions", 0))) for i in instances),
    )
    out.counter(
        "vrrpy_state_transitions_total",
        "State changes by old state, new state and reason.",
        _transitions_by(instances, out.pause),
    )
    out.counter(
        "vrrpy_adverts_dropped_total",
        "Adverts dropped before the state machine, by reason.",
        (
            (f'{i.labels},reason="{escape_label_value(str(r))}"', _number(n))
            for i in instances
            for r, n in i.drops.items()
        ),
    )
    out.counter(
        "vrrpy_adverts_anomalies_total",
        "Adverts processed but logged as a misconfiguration, by reason.",
        (
            (f'{i.labels},reason="{escape_label_value(str(r))}"', _number(n))
            for i in instances
            for r, n in i.anomalies.items()
        ),
    )
    out.counter(
        "vrrpy_split_brains_total",
        "Episodes of another, weaker Master heard while Master.",
        ((i.labels, _number(i.counters.get("split_brains", 0))) for i in instances),
    )
    out.counter(
        "vrrpy_lower_priority_adverts_discarded_total",
        "Valid adverts ignored because our priority is better.",
        ((i.labels, _number(i.counters.get("lower_priority_discarded", 0))) for i in instances),
    )
    out.counter(
        "vrrpy_checksum_form_adverts_total",
        "Accepted IPv4 VRRPv3 adverts by checksum form (pseudo_header: keepalived, FRR; "
        "vrrp_only: RFC 9568).",
        (
            (f'{i.labels},form="{form}"', _number(i.counters.get(key)))
            for i in instances
            for form, key in (
                ("pseudo_header", "checksum_pseudo_header"),
                ("vrrp_only", "checksum_vrrp_only"),
            )
        ),
    )
    for name, key, text in _RUNTIME_COUNTERS:
        out.counter(name, text, ((i.labels, _number(i.runtime.get(key))) for i in instances))
    out.gauge(
        "vrrpy_address_installed",
        "Whether each virtual address is on the interface now, as the kernel says (1) or "
        "not (0); labels as keepalived_vrrp_state's, to compare with it.",
        (
            (f'{i.labels},ip_address="{escape_label_value(str(a))}"', 1 if on is True else 0)
            for i in instances
            for a, on in _mapping(i.status.get("addresses_installed")).items()
        ),
    )
    out.gauge(
        "vrrpy_addresses_pending",
        "Virtual addresses the kernel has not yet agreed to add or remove.",
        (
            (
                i.labels,
                len(p) if isinstance(p := i.runtime.get("addresses_pending"), list) else None,
            )
            for i in instances
        ),
    )
    carp = [
        (i.labels, _mapping(i.status.get("carp")))
        for i in paced(instances, out.pause)
        if i.status.get("carp")
    ]
    for name, key, text in (
        ("vrrpy_carp_advbase_seconds", "advbase", "CARP advbase: whole seconds of the interval."),
        ("vrrpy_carp_advskew", "advskew", "CARP advskew configured (0..254, lower wins)."),
        (
            "vrrpy_carp_advskew_sent",
            "advskew_sent",
            "CARP advskew sent now (with demotion and tracking).",
        ),
        ("vrrpy_carp_demote", "demote", "CARP demotion counter (0 none; higher loses)."),
    ):
        out.gauge(name, text, [(labels, _number(doc.get(key))) for labels, doc in carp])


def _transitions_by(
    instances: list[_Instance], pause: Callable[[], None] | None
) -> Iterator[tuple[str, float | None]]:
    """``counters.transitions_by`` = ``{old: {new: {reason: n}}}``, when the runtime has it.
    (``pause`` here too: instances without it yield nothing for the writer to pace.)"""
    for i in paced(instances, pause):
        for old, news in _mapping(i.counters.get("transitions_by")).items():
            for new, reasons in _mapping(news).items():
                for reason, n in _mapping(reasons).items():
                    yield (
                        f"{i.labels},{_labels(**{'from': old, 'to': new, 'reason': reason})}",
                        _number(n),
                    )


def _backends(out: _Writer, instances: list[_Instance]) -> None:
    rows = [
        (f'{i.labels},backend="{escape_label_value(str(name))}"', _mapping(stats))
        for i in paced(instances, out.pause)
        for name, stats in _mapping(i.status.get("backends")).items()
    ]
    if not rows:
        return
    for name, key, text in _BACKEND_COUNTERS:
        out.counter(name, text, [(labels, _number(s.get(key))) for labels, s in rows])
    out.gauge(
        "vrrpy_backend_last_call_seconds",
        "How long the backend's last step took.",
        [(labels, _number(s.get("last_seconds"))) for labels, s in rows if s.get("last_phase")],
    )
    out.gauge(
        "vrrpy_backend_check_ok",
        "The backend's last check: 1 ok, 0 this node may not stand for MASTER.",
        [
            (labels, 1 if s["last_check"] == "ok" else 0)
            for labels, s in rows
            if s.get("last_check")
        ],
    )


def _tracking(out: _Writer, instances: list[_Instance], snapshot: Snapshot) -> None:
    by_name = {i.name: i for i in instances}
    rows: list[tuple[str, Mapping[str, Any]]] = []
    agents: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for name, doc in paced(snapshot.tracking.items(), out.pause, 8):
        inst = by_name.get(str(name))
        base = inst.labels if inst is not None else _labels(iname=name, intf="", vrid="")
        for track_name, track in _mapping(_mapping(doc).get("tracks")).items():
            track = _mapping(track)
            kind = str(track.get("kind", ""))
            rows.append((f"{base},{_labels(track=track_name, kind=kind)}", track))
            agent = track.get("agent")
            if isinstance(agent, Mapping) and track_name not in agents:
                agents[str(track_name)] = (kind, agent)
    if rows:
        out.gauge(
            "vrrpy_track_up",
            "Each tracked object's verdict for each instance: 1 up, 0 down (absent before "
            "the first).",
            (
                (labels, 1 if t.get("up") else 0)
                for labels, t in rows
                if isinstance(t.get("up"), bool)
            ),
        )
        out.gauge(
            "vrrpy_track_weight",
            "Weight of each tracked object (0: it faults the instance when down).",
            ((labels, _number(t.get("weight"))) for labels, t in rows),
        )
        out.gauge(
            "vrrpy_track_file_value",
            "The number a tracked file holds.",
            ((labels, _number(t.get("value"))) for labels, t in rows if t.get("kind") == "file"),
        )
    scripts = [(_labels(track=n), a) for n, (k, a) in agents.items() if k == "script"]
    out.counter(
        "vrrpy_track_script_runs_total",
        "Runs of each track script.",
        [(labels, _number(a.get("runs"))) for labels, a in scripts],
    )
    out.counter(
        "vrrpy_track_script_skipped_total",
        "Scheduled runs skipped because the previous run overran its interval.",
        [(labels, _number(a.get("skipped"))) for labels, a in scripts],
    )
    out.gauge(
        "vrrpy_track_script_last_run_seconds",
        "How long each track script's last run took.",
        [(labels, _number(_mapping(a.get("last")).get("runtime"))) for labels, a in scripts],
    )
    out.gauge(
        "vrrpy_track_script_last_exit_status",
        "Each track script's last exit status (or signal number).",
        [(labels, _number(_mapping(a.get("last")).get("status"))) for labels, a in scripts],
    )
    targets = [
        (_labels(track=n, target=addr), _mapping(t))
        for n, (k, a) in agents.items()
        if k == "ping"
        for addr, t in _mapping(a.get("targets")).items()
    ]
    out.gauge(
        "vrrpy_track_ping_rtt_seconds",
        "Last round-trip time to each ping target.",
        [(labels, _number(t.get("rtt"))) for labels, t in targets],
    )
    out.gauge(
        "vrrpy_track_ping_reachable",
        "Whether each ping target counts as reachable (1) or not (0).",
        [(labels, 1 if t.get("reachable") else 0) for labels, t in targets],
    )
    out.counter(
        "vrrpy_track_ping_sent_total",
        "Echo requests sent to each ping target.",
        [(labels, _number(t.get("sent"))) for labels, t in targets],
    )
    out.counter(
        "vrrpy_track_ping_received_total",
        "Echo replies received from each ping target.",
        [(labels, _number(t.get("received"))) for labels, t in targets],
    )


def _histograms(out: _Writer, instances: list[_Instance]) -> None:
    found: dict[str, list[tuple[str, tuple[list[tuple[float, int]], float, int]]]] = {}
    for i in paced(instances, out.pause, 8):
        for key, doc in _mapping(i.status.get("histograms")).items():
            parts = _histogram_parts(doc)
            # A histogram appears with its first observation: at 2,000 instances the empty
            # ones (a Master's inter-arrival, a Backup's takeovers) were half the page.
            if parts is not None and parts[2] > 0 and _valid_name(f"vrrpy_{key}"):
                found.setdefault(str(key), []).append((i.labels, parts))
    for key, series in found.items():
        if f"vrrpy_{key}" in out.names:
            continue  # a histogram named like another family would spoil the whole page
        text = _HISTOGRAM_HELP.get(key, f"Histogram {key} from the runtime.")
        out.histogram(f"vrrpy_{key}", text, series)
        while series:  # 2,000 series of buckets, dropped at once: milliseconds in one C call
            del series[-32:]
            if out.pause is not None:
                out.pause()


def _valid_name(name: str) -> bool:
    return (
        name.isascii()
        and not name[:1].isdigit()
        and all(c.isalnum() or c in "_:" for c in name)
        and not name.endswith(("_bucket", "_sum", "_count", "_total"))
    )
