"""vrrpyd's configuration file: TOML in, frozen and fully checked dataclasses out.

Why a layer above :class:`vrrpy.core.RouterConfig`: the core checks one virtual
router and stops at the first bad field, which suits a program building it from
code. An operator editing a file is better served by hearing about every
mistake at once, so this module checks the whole file, names each problem with
a dotted key (``instance[VI_1].vrid``, ``global.log_level``) and raises them all
together in one :class:`ConfigFileError`. It also knows what the core does not:
interfaces, unicast peers, gratuitous ARP timing, and VRIDs shared by two
instances.

Nothing here looks at the host. Whether a priority-255 instance really owns its
addresses depends on the interface at start time, so that is left to
:func:`check_ownership`, which the daemon calls with the addresses it sees; and
whether a check script can run, its user exists, a track_file's directory and a
tracked interface are there, to :func:`check_tracking`.

The file format (every key but the required ones has the default shown)::

    [global]
    state_file = "/run/vrrpyd/state.json"
    log_level = "info"            # debug, info, warning, error
    # netns = "blue"              # run inside this named network namespace
    realtime_priority = 10        # SCHED_RR priority of the event loop; 0 = time-sharing
    lock_memory = true            # mlockall: never wait for a page to come back from disk
    rlimit_rttime = 1000000       # microseconds at real-time priority without sleeping; 0 = none
    # metrics_listen = "127.0.0.1:9165"   # Prometheus /metrics (and the status page); off if unset
    # control_socket = "/run/vrrpyd/vrrpyd.sock"   # vrrpctl's; default: beside state_file; "" = off
    # control_group = "vrrpy"     # members may use vrrpctl (socket mode 0660); else root only

    [[instance]]
    name = "VI_1"                 # required
    interface = "eth0"            # required
    vrid = 51                     # required, 1..255
    virtual_addresses = ["192.0.2.100/24"]   # required, one family
    protocol = "vrrp"
    version = 3
    priority = 100
    advert_interval = 1.0
    preempt = true
    preempt_delay = 0.0
    accept = false
    unicast_peers = []
    use_vmac = false
    auth_pass = ""
    garp_repeat = 5
    garp_interval = 0.0
    garp_refresh = 0.0
    garp_delay = 5.0
    garp_refresh_repeat = 1
    higher_prio_send_advert = false
    v3_checksum = "pseudo-header"
    # What it tracks (docs/tracking.md): names, or { name = ..., weight = ..., reverse = ... }.
    track_interface = []          # interface names; its own interface is always tracked
    track_script = []             # names of [[track_script]] tables
    track_file = []
    track_process = []
    track_ping = []

Tracked objects are defined once and named by whoever tracks them, under a key of
the same name (keepalived's vrrp_script / track_script pair, with one name)::

    [[track_script]]              # keepalived: vrrp_script NAME { ... }
    name = "chk_nginx"            # required: 1..64 letters, digits, '_', '-', '.'
    script = "/usr/bin/systemctl is-active --quiet nginx"  # required; absolute; no shell
    interval = 1.0
    # timeout = 1.0               # default: the interval
    rise = 1
    fall = 1
    weight = 0                    # the default weight of every track naming it
    reverse = false
    # user = "nobody"             # default: the daemon's user
    # group = "nogroup"           # needs user
    init_fail = false

    [[track_file]]                # keepalived: track_file NAME { file weight }
    name = "maintenance"
    file = "/run/vrrpyd-maintenance"   # required; absolute
    weight = 1                    # keepalived's default for a file: its value is added as is
    reverse = false

    [[track_process]]             # keepalived: vrrp_track_process NAME { ... }
    name = "nginx"
    process = "nginx"             # required
    params = []
    # param_match = "exact"       # exact, partial, initial; default exact with params
    full_command = false
    quorum = 1
    # quorum_max = 4
    interval = 1.0
    weight = 0
    reverse = false

    [[track_ping]]                # Heartbeat's ping group (keepalived has none)
    name = "gw"
    targets = ["192.0.2.1"]       # required; link-local IPv6 with its %zone
    interval = 1.0
    timeout = 1.0
    count = 3
    quorum = 1
    weight = 0
    reverse = false

    [[sync_group]]                # keepalived: vrrp_sync_group NAME { group { ... } }
    name = "gw"                   # required
    members = ["VI_4", "VI_6"]    # required: two or more instances, each in one group
    tracking_weight = false       # keepalived: sync_group_tracking_weight
    track_interface = []          # and the other track_* keys: applied to every member

IPVS pools that follow an instance are ``[[virtual_server]]`` tables, keepalived's
``virtual_server`` blocks with an ``instance`` key: :mod:`vrrpy.daemon.ipvsconfig`
checks them (``DaemonConfig.virtual_servers``, per instance), docs/ipvs.md shows them.

What the daemon gets (:class:`DaemonConfig`), besides ``global_`` and ``instances``:

* ``checks: dict[str, CheckSpec]``: every object the tracking agent must run
  (:mod:`vrrpy.track.protocol` specs), keyed by its name: the tables' names, and
  ``"interface:<ifname>"`` for each interface tracked, every instance's own
  included. Only tracked objects: one no instance or group names is an error.
* ``instance_tracks: dict[str, tuple[Track, ...]]``: per instance, its
  :class:`vrrpy.track.Track` s (name = a key of ``checks``), own interface first
  (weight 0), then its own entries in key and file order, then its group's.
  Weight: the entry's, else the table's ``weight``, else 0 (a track_file: 1);
  ``reverse`` likewise.
* ``sync_groups: tuple[SyncGroupSpec, ...]``: the groups, in file order.

Rules where keepalived reports a configuration error and then runs with a patched
configuration are errors here (see the tracking section below), and
:func:`check_tracking` adds what only the host can say (programs, users, directories,
tracked interfaces).
"""

from __future__ import annotations

import dataclasses
import difflib
import grp
import ipaddress
import math
import os
import pwd
import re
import shlex
import stat
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, time
from ipaddress import (
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
    ip_interface,
)
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, cast

from vrrpy.codec.vrrp import ChecksumForm, IPAddress
from vrrpy.core.config import (
    auth_pass_problem,
    family_problem,
    interval_problem,
    peers_problems,
    preempt_delay_problem,
    priority_problem,
    version_problem,
    virtual_addresses_problems,
    vrid_problem,
)
from vrrpy.daemon import backendconfig, carpconfig, ipvsconfig
from vrrpy.runtime.realtime import DEFAULT_PRIORITY, DEFAULT_RLIMIT_RTTIME, RealtimeSettings
from vrrpy.runtime.spec import InstanceSpec, VirtualAddress
from vrrpy.track.model import MAX_WEIGHT, OWNER_PRIORITY, Kind, Track
from vrrpy.track.protocol import (
    CheckSpec,
    FileSpec,
    InterfaceSpec,
    PingSpec,
    ProcessSpec,
    ScriptSpec,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

__all__ = [
    "DEFAULT_STATE_FILE",
    "LOG_LEVELS",
    "ConfigFileError",
    "ConfigIssue",
    "DaemonConfig",
    "GlobalConfig",
    "InstanceConfig",
    "LogLevel",
    "SyncGroupSpec",
    "VirtualAddress",
    "check_ownership",
    "check_tracking",
    "load_config",
    "parse_config",
]

InstanceConfig = InstanceSpec
"""What one ``[[instance]]`` becomes: the runtime's own
:class:`~vrrpy.runtime.spec.InstanceSpec`."""

LogLevel: TypeAlias = Literal["debug", "info", "warning", "error"]
LOG_LEVELS: Final[tuple[LogLevel, ...]] = ("debug", "info", "warning", "error")
_LOG_LEVEL_NUMBERS: Final[Mapping[str, int]] = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
}  # the logging module's numbers, without importing logging here

DEFAULT_STATE_FILE: Final = "/run/vrrpyd/state.json"

FILE_KEY: Final = "<file>"
"""The key of issues about the file as a whole: unreadable, not UTF-8, not TOML."""

_IFNAMSIZ: Final = 16  # Linux: interface names are at most 15 bytes plus the NUL
_NAME_MAX: Final = 255  # a named netns is a file in /run/netns
_MAX_ADDRESSES: Final = 255  # the advert's one-byte address count
_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_REQUIRED: Final = object()  # default of a key that must be present


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file: which key, and what is wrong with it."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigFileError(ValueError):
    """A configuration file has problems; ``errors`` lists every one found, in file order."""

    def __init__(self, errors: list[ConfigIssue], source: str = "<string>") -> None:
        self.errors = list(errors)
        self.source = source
        count = len(self.errors)
        lines = [f"{source}: {count} problem{'s' if count != 1 else ''}"]
        lines.extend(f"  {issue}" for issue in self.errors)
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class GlobalConfig:
    """The ``[global]`` table: settings of the daemon itself, not of one virtual router.

    ``state_file`` is rewritten atomically on every transition, for monitoring.
    ``netns`` names a network namespace (``ip netns``) the daemon enters before
    touching any interface, so that one host can run several isolated daemons.

    ``realtime_priority``, ``lock_memory`` and ``rlimit_rttime`` keep the
    adverts on time on a busy machine (:mod:`vrrpy.runtime.realtime` says how
    and why): the event loop runs at that ``SCHED_RR`` priority (0: as an
    ordinary process, and ``rlimit_rttime`` does nothing), the process's
    memory is locked, and a thread that runs ``rlimit_rttime`` microseconds at
    real-time priority without sleeping is stopped (dropped to time-sharing at
    half, killed at the full figure).

    ``metrics_listen`` (``"127.0.0.1:9165"``, ``"[::1]:9165"``; unset: off) is
    where the read-only HTTP endpoint listens: Prometheus text at
    ``/metrics`` (:mod:`vrrpy.observe`). Port 9165 is keepalived-exporter's.

    ``control_socket`` is where ``vrrpctl`` asks (:mod:`vrrpy.observe.control`):
    by default ``vrrpyd.sock`` in ``state_file``'s directory, so that two
    daemons with their own state files never share one; ``""`` turns it off.
    ``control_group`` (a group name) makes it mode 0660 for that group.
    """

    state_file: str = DEFAULT_STATE_FILE
    log_level: LogLevel = "info"
    netns: str | None = None
    realtime_priority: int = DEFAULT_PRIORITY
    lock_memory: bool = True
    rlimit_rttime: int = DEFAULT_RLIMIT_RTTIME
    metrics_listen: tuple[str, int] | None = None
    control_socket: str | None = None
    control_group: str | None = None

    @property
    def control_path(self) -> str | None:
        """The control socket's path: ``control_socket``, or beside the state file; None: off."""
        if self.control_socket is None:
            return os.path.join(os.path.dirname(self.state_file) or ".", "vrrpyd.sock")
        return self.control_socket or None

    @property
    def realtime(self) -> RealtimeSettings:
        """These settings as :func:`vrrpy.runtime.realtime.apply` takes them."""
        return RealtimeSettings(self.realtime_priority, self.lock_memory, self.rlimit_rttime)

    @property
    def log_level_number(self) -> int:
        """``log_level`` as a :mod:`logging` level number (``"info"`` is 20)."""
        return _LOG_LEVEL_NUMBERS[self.log_level]


@dataclass(frozen=True)
class SyncGroupSpec:
    """One ``[[sync_group]]`` (keepalived's ``vrrp_sync_group``): instances that move as one.

    ``members`` are instance names in the file's order (at least two, each in
    no other group). ``tracks`` are the group's own ``track_*`` entries
    (keepalived's group-level ``track_interface`` / ``track_script`` /
    ``track_file`` / ``track_process``), resolved like an instance's; they are
    already part of every member's :attr:`DaemonConfig.instance_tracks`, and
    kept here only to say where they came from. ``tracking_weight`` is
    keepalived's ``sync_group_tracking_weight``: without it a member's own
    tracks must have weight 0, because members whose priorities move apart on
    two hosts re-elect for ever (docs/fault.md).
    """

    name: str
    members: tuple[str, ...]
    tracks: tuple[Track, ...] = ()
    tracking_weight: bool = False


@dataclass(frozen=True)
class DaemonConfig:
    """A whole, checked configuration file.

    ``checks``: every tracked object the tracking agent must run, by the name
    the agent and the :class:`~vrrpy.track.Track` objects use: the user's
    ``[[track_script]]`` / ``[[track_file]]`` / ``[[track_process]]`` /
    ``[[track_ping]]`` names, and one :class:`~vrrpy.track.InterfaceSpec` per
    interface tracked, named ``interface:<ifname>`` (``:`` is refused in user
    names, so the two never collide). Every instance's own interface is one of
    them. Only objects some instance tracks are here (an unused one is an error).

    ``instance_tracks``: per instance name, its tracks, in this order: its own
    interface (weight 0: FAULT when the link is down, as keepalived always
    does), then its ``track_interface``, ``track_script``, ``track_file``,
    ``track_process``, ``track_ping`` entries in the file's order, then its sync
    group's. Each weight is resolved: the entry's own, else the object's
    ``weight``, else 0 (1 for files, keepalived's default there); ``reverse``
    likewise (keepalived's ``weight N reverse``).

    ``sync_groups``: the ``[[sync_group]]`` tables, in file order.
    """

    global_: GlobalConfig
    instances: tuple[InstanceConfig, ...]
    checks: dict[str, CheckSpec] = field(default_factory=dict)
    instance_tracks: dict[str, tuple[Track, ...]] = field(default_factory=dict)
    sync_groups: tuple[SyncGroupSpec, ...] = ()
    instance_backends: dict[str, tuple[backendconfig.BackendSpec, ...]] = field(
        default_factory=dict
    )
    """Per instance name, its backends in order (:mod:`vrrpy.daemon.backendconfig`)."""
    group_backends: dict[str, tuple[backendconfig.BackendSpec, ...]] = field(default_factory=dict)
    """Per sync group name, its notify scripts (keepalived's vrrp_sync_group notify lines)."""
    virtual_servers: dict[str, ipvsconfig.InstanceIpvs] = field(default_factory=dict)
    """Per instance name, its ``[[virtual_server]]`` tables (:mod:`vrrpy.daemon.ipvsconfig`)."""


def load_config(path: str | os.PathLike[str]) -> DaemonConfig:
    """Read and check the configuration file at ``path``.

    Raises :class:`ConfigFileError` for every kind of problem, an unreadable
    file included, so a caller needs one ``except`` to report and exit.
    """
    source = os.fspath(path)
    try:
        data = Path(source).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigFileError([ConfigIssue(FILE_KEY, f"cannot read: {reason}")], source) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigFileError(
            [ConfigIssue(FILE_KEY, f"not UTF-8, as TOML requires: {exc}")], source
        ) from exc
    return parse_config(text, source)


def parse_config(text: str, source: str = "<string>") -> DaemonConfig:
    """Check configuration ``text`` (named ``source`` in messages) and return it typed.

    Raises :class:`ConfigFileError` listing every problem found: a TOML syntax
    error is one issue keyed ``<file>`` (parsing cannot go on past it), any
    number of semantic ones otherwise.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # The message carries "(at line L, column C)".
        raise ConfigFileError([ConfigIssue(FILE_KEY, f"invalid TOML: {exc}")], source) from None
    issues: list[ConfigIssue] = []
    config = _check_document(document, issues)
    if issues or config is None:
        raise ConfigFileError(issues, source)
    return config


def check_ownership(
    instance: InstanceConfig,
    interface_addresses: Iterable[VirtualAddress | IPAddress],
) -> list[ConfigIssue]:
    """Issues if ``instance`` claims to own addresses its interface does not have.

    Priority 255 means "address owner" (RFC 9568 6.1): the owner goes Master at
    once on startup and answers for the addresses as its own, so claiming it
    for an address configured elsewhere steals that address from its real
    owner. ``interface_addresses`` are what is configured on
    ``instance.interface`` (with or without prefixes; prefixes are ignored).
    Like keepalived, nothing is said about a lower priority on a router that
    does own the addresses.
    """
    if instance.priority != 255:
        return []
    owned = {_bare(address) for address in interface_addresses}
    return [
        ConfigIssue(
            f"instance[{instance.name}].priority",
            f"255 means address owner, but {vip.ip} is not configured on {instance.interface}",
        )
        for vip in instance.virtual_addresses
        if _bare(vip) not in owned
    ]


# --- checking --------------------------------------------------------------------------------

_GLOBAL_KEYS: Final = (
    "state_file",
    "log_level",
    "netns",
    "realtime_priority",
    "lock_memory",
    "rlimit_rttime",
    "metrics_listen",
    "control_socket",
    "control_group",
    *backendconfig.GLOBAL_KEYS,
)
_RT_PRIORITY_MAX: Final = 99  # Linux's sched_get_priority_max(SCHED_RR), fixed
_RTTIME_MIN: Final = 10_000  # keepalived's default; below it a Python daemon trips at start
_RTTIME_MAX: Final = 60_000_000
_TRACK_TABLES: Final[Mapping[str, Kind]] = {
    "track_script": Kind.SCRIPT,
    "track_file": Kind.FILE,
    "track_process": Kind.PROCESS,
    "track_ping": Kind.PING,
}
"""The tables that define tracked objects; an instance's key of the same name tracks them."""
_TRACK_KEYS: Final[Mapping[str, Kind]] = {"track_interface": Kind.INTERFACE, **_TRACK_TABLES}
"""An instance's (and a sync group's) keys naming what it tracks."""
_INSTANCE_KEYS: Final = (
    tuple(f.name for f in fields(InstanceConfig) if f.name not in carpconfig.CARP_KEYS)
    + carpconfig.CARP_KEYS
    + tuple(_TRACK_KEYS)
    + backendconfig.INSTANCE_KEYS
)
_SYNC_GROUP_KEYS: Final = (
    "name",
    "members",
    "tracking_weight",
    *_TRACK_KEYS,
    *backendconfig.GROUP_KEYS,
)
_TOP_KEYS: Final = (
    "global",
    "instance",
    *_TRACK_TABLES,
    "sync_group",
    "backend",
    "virtual_server",
)
_TOP_NAMES: Final[Mapping[str, str]] = {
    "vrrp_instance": "instance",
    "vrrp_script": "track_script",
    "vrrp_track_file": "track_file",
    "vrrp_track_process": "track_process",
    "vrrp_sync_group": "sync_group",
    "ping_group": "track_ping",
}
"""keepalived's (and Heartbeat's) names of our tables, to point their users to ours."""
_FOREIGN_TABLES: Final[Mapping[str, str]] = {
    name: "Heartbeat" if name == "ping_group" else "keepalived" for name in _TOP_NAMES
}


def _bare(address: VirtualAddress | IPAddress) -> IPAddress:
    """The address alone: no prefix, no IPv6 zone (``fe80::1%eth0`` is ``fe80::1`` here)."""
    if isinstance(address, (IPv4Interface, IPv6Interface)):
        address = address.ip
    if isinstance(address, IPv6Address) and address.scope_id is not None:
        return IPv6Address(str(address).split("%", 1)[0])
    return address


def _describe(value: object) -> str:
    """A value as the TOML type the user wrote, for "must be X, got Y" messages."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value!r})"
    if isinstance(value, str):
        return f"a string ({_quote(value)})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime, date, time)):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__  # pragma: no cover - tomllib produces nothing else


def _quote(text: str) -> str:
    """``text`` as a TOML basic string, as the user would write it."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number_text(value: float) -> str:
    """A number as written: ``2`` rather than ``2.0`` when it is whole."""
    return repr(int(value)) if float(value).is_integer() else repr(value)


class _Section:
    """One table of the document: typed reads, each problem recorded under ``prefix.key``.

    Every reader returns ``None`` when the value is missing-but-required or
    wrong, having recorded why, so the caller can skip the checks that
    depend on it instead of piling consequential errors onto the real one.
    """

    def __init__(self, table: Mapping[str, Any], prefix: str, issues: list[ConfigIssue]) -> None:
        self.table = table
        self.prefix = prefix
        self.issues = issues

    def issue(self, key: str, message: str) -> None:
        self.issues.append(ConfigIssue(f"{self.prefix}.{key}", message))

    def unknown_keys(self, known: tuple[str, ...]) -> None:
        for key in self.table:
            if key not in known:
                self.issue(key, _unknown_message(key, known, "key"))

    def _raw(self, key: str, default: object) -> tuple[bool, Any]:
        """(present, value); records a missing required key."""
        if key in self.table:
            return True, self.table[key]
        if default is _REQUIRED:
            self.issue(key, "required key is missing")
        return False, default

    def string(self, key: str, default: object = _REQUIRED) -> str | None:
        present, value = self._raw(key, default)
        if not present:
            return None if value is _REQUIRED else cast(str, value)
        if not isinstance(value, str):
            self.issue(key, f"must be a string, got {_describe(value)}")
            return None
        return value

    def integer(
        self, key: str, default: object = _REQUIRED, low: int | None = None, high: int | None = None
    ) -> int | None:
        present, value = self._raw(key, default)
        if not present:
            return None if value is _REQUIRED else cast(int, value)
        # bool is an int in Python, but "vrid = true" is a mistake, never a 1.
        if isinstance(value, bool) or not isinstance(value, int):
            self.issue(key, f"must be an integer, got {_describe(value)}")
            return None
        return value if self._in_range(key, value, low, high) else None

    def number(
        self,
        key: str,
        default: object = _REQUIRED,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        present, value = self._raw(key, default)
        if not present:
            return None if value is _REQUIRED else cast(float, value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.issue(key, f"must be a number of seconds, got {_describe(value)}")
            return None
        if not math.isfinite(value):
            self.issue(key, f"must be a finite number of seconds, got {value!r}")
            return None
        return float(value) if self._in_range(key, value, low, high) else None

    def _in_range(self, key: str, value: float, low: float | None, high: float | None) -> bool:
        if low is not None and high is not None and not low <= value <= high:
            self.issue(key, f"must be {low}..{high}, got {_number_text(value)}")
            return False
        if low is not None and value < low:
            self.issue(key, f"must be >= {low}, got {_number_text(value)}")
            return False
        if high is not None and value > high:  # pragma: no cover - no key has only a maximum
            self.issue(key, f"must be <= {high}, got {_number_text(value)}")
            return False
        return True

    def boolean(self, key: str, default: bool) -> bool | None:
        _, value = self._raw(key, default)
        if not isinstance(value, bool):
            self.issue(key, f"must be true or false, got {_describe(value)}")
            return None
        return value

    def strings(self, key: str, default: object = _REQUIRED) -> list[str] | None:
        present, value = self._raw(key, default)
        if not present:
            return None if value is _REQUIRED else list(cast(list[str], value))
        if not isinstance(value, list):
            self.issue(key, f"must be an array of strings, got {_describe(value)}")
            return None
        bad = [(i, item) for i, item in enumerate(value) if not isinstance(item, str)]
        for i, item in bad:
            self.issue(key, f"item {i} must be a string, got {_describe(item)}")
        return None if bad else list(value)


def _unknown_message(key: str, known: Iterable[str], what: str) -> str:
    """The "unknown key" message, with the nearest known spelling when one is plausible."""
    message = f"unknown {what} {_quote(key)}"
    close = difflib.get_close_matches(key, list(known), n=1)
    if close:
        return f"{message}; did you mean {_quote(close[0])}?"
    return f"{message} (known: {', '.join(sorted(known))})"


def _interface_problem(name: str) -> str | None:
    """Why ``name`` cannot be a Linux interface name (the kernel's dev_valid_name), or None."""
    size = len(name.encode())
    if not 1 <= size < _IFNAMSIZ:
        return f"must be 1..{_IFNAMSIZ - 1} bytes (Linux IFNAMSIZ), got {size}: {_quote(name)}"
    if name in (".", ".."):
        return f"{_quote(name)} is not an interface name"
    if any(c in "/:\0" or c.isspace() for c in name):
        return f"{_quote(name)}: interface names cannot contain '/', ':' or whitespace"
    return None


def _netns_problem(name: str) -> str | None:
    """Why ``name`` cannot be an ``ip netns`` name (a file in /run/netns), or None."""
    if not name:
        return "must be a non-empty namespace name"
    if name in (".", "..") or "/" in name or "\0" in name:
        return f"{_quote(name)} is not a namespace name (no '/', not '.' or '..')"
    if len(name.encode()) > _NAME_MAX:
        return f"at most {_NAME_MAX} bytes"
    return None


def report(section: _Section, key: str, problem: str | None) -> bool:
    """Record the core's ``problem`` with ``key`` (if any); True if there was one."""
    if problem:
        section.issue(key, problem)
        return True
    return False


def _check_document(document: Mapping[str, Any], issues: list[ConfigIssue]) -> DaemonConfig | None:
    for key in document:
        if key in _FOREIGN_TABLES:
            issues.append(
                ConfigIssue(key, f"{_FOREIGN_TABLES[key]}'s {key} is [[{_TOP_NAMES[key]}]] here")
            )
        elif key not in _TOP_KEYS:
            message = _unknown_message(key, _TOP_KEYS, "table or key")
            issues.append(
                ConfigIssue(
                    key,
                    f"{message}: a file has [global], [[instance]], [[track_script]], "
                    "[[track_file]], [[track_process]], [[track_ping]], [[sync_group]], "
                    "[[backend]] and [[virtual_server]]",
                )
            )

    global_config = _check_global(document.get("global", {}), issues)
    defined = _check_track_tables(document, issues)
    global_table = document.get("global", {})
    if not isinstance(global_table, dict):
        global_table = {}
    backendconfig.check_global(global_table, _Section(global_table, "global", issues).issue)
    backends: dict[str, backendconfig.BackendSpec] = {}
    for index, table in _array_of_tables(document, "backend", issues):
        label = table.get("name") if isinstance(table.get("name"), str) else str(index)
        where = _Section(table, f"backend[{label}]", issues)
        spec = backendconfig.parse_backend_table(table, where.issue)
        if spec is not None:
            if spec.name in backends:
                where.issue("name", f"{spec.name!r} names two [[backend]] tables")
            backends[spec.name] = spec
    instance_backends: dict[str, tuple[backendconfig.BackendSpec, ...]] = {}

    raw_instances = document.get("instance", [])
    if isinstance(raw_instances, list) and not raw_instances:
        issues.append(ConfigIssue("instance", "no [[instance]]: the daemon has nothing to run"))
    tables = _array_of_tables(document, "instance", issues)

    # An instance is named in keys by its name when that is valid and unique, else by its index.
    first_index: dict[str, int] = {}
    for index, table in tables:
        name = table.get("name")
        if isinstance(name, str) and _NAME_RE.fullmatch(name):
            first_index.setdefault(name, index)
    names = [table.get("name") for _, table in tables]

    instances: list[InstanceConfig] = []
    seen_vrids: dict[tuple[str, int, int], str] = {}
    trackers: list[_Tracker] = []
    for index, table in tables:
        name = table.get("name")
        unique = isinstance(name, str) and name in first_index and names.count(name) == 1
        label = name if unique and isinstance(name, str) else str(index)
        section = _Section(table, f"instance[{label}]", issues)
        instance, vrid_key = _check_instance(section)
        trackers.append(_instance_tracker(section, label))
        specs = backendconfig.instance_backend_specs(table, backends, global_table, section.issue)
        if specs and isinstance(name, str):
            instance_backends[name] = specs
        if isinstance(name, str) and name in first_index and first_index[name] != index:
            section.issue(
                "name",
                f"{_quote(name)} is already the name of instance[{first_index[name]}]; "
                "names must be unique",
            )
        if vrid_key is not None:
            interface, family, vrid = vrid_key
            other = seen_vrids.get(vrid_key)
            carp = table.get("protocol") == "carp"
            if other is not None:
                # VRRP's VRID and CARP's VHID are the same byte of the same protocol
                # number on the same group: one id, one protocol, per link and family.
                section.issue(
                    "vhid" if carp else "vrid",
                    f"{'VHID' if carp else 'VRID'} {vrid} is already used for IPv{family} on "
                    f"{interface} by instance[{other}]; one virtual router per interface, "
                    "family and id, whether VRRP or CARP (both speak IP protocol 112)",
                )
            else:
                seen_vrids[vrid_key] = label
        if instance is not None:
            instances.append(instance)

    group_backends: dict[str, tuple[backendconfig.BackendSpec, ...]] = {}
    groups = _check_sync_groups(document, issues, group_backends)
    checks, instance_tracks, sync_groups = _resolve_tracking(defined, trackers, groups, issues)
    virtual_servers = ipvsconfig.parse_virtual_servers(
        _array_of_tables(document, "virtual_server", issues),
        {
            n: str(t.get("protocol", "vrrp"))
            for _, t in tables
            if isinstance(n := t.get("name"), str)
        },
        lambda key, message: issues.append(ConfigIssue(key, message)),
    )

    if issues or global_config is None:
        return None
    return DaemonConfig(
        global_=global_config,
        instances=tuple(instances),
        checks=checks,
        instance_tracks=instance_tracks,
        sync_groups=sync_groups,
        instance_backends=instance_backends,
        group_backends=group_backends,
        virtual_servers=virtual_servers,
    )


def _array_of_tables(
    document: Mapping[str, Any], key: str, issues: list[ConfigIssue]
) -> list[tuple[int, Mapping[str, Any]]]:
    """The tables of ``[[key]]`` with their indexes; a ``[key]`` or a non-table is an issue."""
    raw = document.get(key, [])
    if isinstance(raw, dict):
        issues.append(ConfigIssue(key, f"write [[{key}]] (an array of tables), not [{key}]"))
        return []
    if not isinstance(raw, list):
        issues.append(ConfigIssue(key, f"must be an array of tables, got {_describe(raw)}"))
        return []
    tables: list[tuple[int, Mapping[str, Any]]] = []
    for index, table in enumerate(raw):
        if isinstance(table, dict):
            tables.append((index, table))
        else:
            issues.append(
                ConfigIssue(f"{key}[{index}]", f"must be a table, got {_describe(table)}")
            )
    return tables


def _check_global(table: object, issues: list[ConfigIssue]) -> GlobalConfig | None:
    if not isinstance(table, dict):
        issues.append(ConfigIssue("global", f"must be a table ([global]), got {_describe(table)}"))
        return None
    start = len(issues)
    section = _Section(table, "global", issues)
    section.unknown_keys(_GLOBAL_KEYS)

    state_file = section.string("state_file", DEFAULT_STATE_FILE)
    if state_file is not None and (not state_file or "\0" in state_file):
        section.issue("state_file", "must be a non-empty path")

    log_level = section.string("log_level", "info")
    if log_level is not None and log_level not in LOG_LEVELS:
        allowed = ", ".join(_quote(level) for level in LOG_LEVELS)
        section.issue("log_level", f"must be one of {allowed}, got {_quote(log_level)}")

    netns = section.string("netns") if "netns" in table else None
    if netns is not None:
        problem = _netns_problem(netns)
        if problem:
            section.issue("netns", problem)

    realtime_priority = section.integer("realtime_priority", DEFAULT_PRIORITY, low=0)
    if realtime_priority is not None and not (
        realtime_priority == 0 or 2 <= realtime_priority <= _RT_PRIORITY_MAX
    ):
        section.issue(
            "realtime_priority",
            f"must be 0 (time-sharing) or 2..{_RT_PRIORITY_MAX} (worker threads run one "
            f"below it), got {realtime_priority}",
        )
    lock_memory = section.boolean("lock_memory", True)
    rlimit_rttime = section.integer("rlimit_rttime", DEFAULT_RLIMIT_RTTIME, low=0)
    if rlimit_rttime is not None and not (
        rlimit_rttime == 0 or _RTTIME_MIN <= rlimit_rttime <= _RTTIME_MAX
    ):
        section.issue(
            "rlimit_rttime",
            f"must be 0 (no limit) or {_RTTIME_MIN}..{_RTTIME_MAX} microseconds, "
            f"got {rlimit_rttime}",
        )

    metrics_listen = None
    if "metrics_listen" in table:
        text = section.string("metrics_listen")
        if text is not None:
            metrics_listen, problem = parse_listen(text)
            if problem:
                section.issue("metrics_listen", problem)

    control_socket = section.string("control_socket") if "control_socket" in table else None
    if control_socket and ("\0" in control_socket or not control_socket.startswith("/")):
        section.issue("control_socket", 'must be an absolute path, or "" (off)')
    control_group = section.string("control_group") if "control_group" in table else None
    if control_group is not None:
        try:
            grp.getgrnam(control_group)
        except KeyError:
            section.issue("control_group", f"no such group: {_quote(control_group)}")

    if len(issues) > start or state_file is None or log_level is None:
        return None
    assert realtime_priority is not None and lock_memory is not None
    assert rlimit_rttime is not None
    return GlobalConfig(
        state_file=state_file,
        log_level=cast(LogLevel, log_level),
        netns=netns,
        realtime_priority=realtime_priority,
        lock_memory=lock_memory,
        rlimit_rttime=rlimit_rttime,
        metrics_listen=metrics_listen,
        control_socket=control_socket,
        control_group=control_group,
    )


def parse_listen(text: str) -> tuple[tuple[str, int] | None, str | None]:
    """``"ADDRESS:PORT"`` (IPv6 in brackets) as ``((address, port), None)``, or ``(None, why)``.

    The address must be an IP literal: a host name would bind to whatever it
    resolves to at start, and this endpoint must listen exactly where it was
    told (loopback unless the user says otherwise).
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        return None, f'must be "ADDRESS:PORT" (e.g. "127.0.0.1:9165"), got {_quote(text)}'
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        bracketed = True
    else:
        bracketed = False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None, f"the address must be an IP address, got {_quote(host)}"
    if address.version == 6 and not bracketed:
        return None, f'an IPv6 address goes in brackets ("[{host}]:9165"), got {_quote(text)}'
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        return None, f"the port must be 1..65535, got {_quote(port_text)}"
    return (str(address), int(port_text)), None


def _check_instance(
    section: _Section,
) -> tuple[InstanceConfig | None, tuple[str, int, int] | None]:
    """Check one instance table; return it (None if wrong) and its (interface, family, vrid)."""
    issues = section.issues
    start = len(issues)
    table = section.table
    section.unknown_keys(_INSTANCE_KEYS)

    name = section.string("name")
    if name is not None and not _NAME_RE.fullmatch(name):
        section.issue(
            "name",
            f"{_quote(name)}: use 1..64 letters, digits, '_', '-', '.' or ':' "
            "(names appear in keys, logs and the state file)",
        )

    protocol = section.string("protocol", "vrrp")
    if protocol is not None and protocol not in ("vrrp", "carp"):
        section.issue("protocol", f'must be "vrrp" or "carp", got {_quote(protocol)}')
    carp: carpconfig.CarpFields | None = None
    if protocol == "carp":
        carp = carpconfig.read_carp(section)
    else:
        carpconfig.refuse_carp_keys(section)

    version = section.integer("version", 3) if protocol != "carp" else 3
    if version is not None and report(section, "version", version_problem(version)):
        version = None

    interface = section.string("interface")
    if interface is not None:
        problem = _interface_problem(interface)
        if problem:
            section.issue("interface", problem)
            interface = None

    # Types are read here; the rules on the values are the core's (vrrpy.core.config),
    # each written once, reported here under the file's keys, all at once.
    if protocol == "carp":
        vrid = carp.vhid if carp is not None else None
        priority: int | None = 100  # the base tracking moves (as demotion, for CARP)
    else:
        vrid = section.integer("vrid")
        if vrid is not None and report(section, "vrid", vrid_problem(vrid)):
            vrid = None
        priority = section.integer("priority", 100)
        if priority is not None:
            report(section, "priority", priority_problem(priority))

    advert_interval = 1.0 if protocol == "carp" else section.number("advert_interval", 1.0)
    if (
        advert_interval is not None
        and version is not None
        and report(section, "advert_interval", interval_problem(advert_interval, version))
    ):
        advert_interval = None

    # CARP does not preempt unless told (OpenBSD's net.inet.carp.preempt, ucarp's -P).
    preempt = section.boolean("preempt", protocol != "carp")
    preempt_delay = 0.0 if protocol == "carp" else section.number("preempt_delay", 0.0)
    if preempt_delay is not None:
        report(section, "preempt_delay", preempt_delay_problem(preempt_delay))
    accept = section.boolean("accept", False)
    higher_prio_send_advert = (
        False if protocol == "carp" else section.boolean("higher_prio_send_advert", False)
    )

    virtual_addresses = _check_virtual_addresses(section)
    family = virtual_addresses[0].version if virtual_addresses else None
    if family is not None and version is not None:
        report(section, "version", family_problem(family, version))
    if carp is not None and virtual_addresses:
        carpconfig.check_carp_addresses(section, carp.carp_profile, virtual_addresses)

    unicast_peers = _check_peers(section, family)
    use_vmac = section.boolean("use_vmac", False)

    auth_pass = "" if protocol == "carp" else section.string("auth_pass", "")
    if auth_pass and version is not None:
        report(section, "auth_pass", auth_pass_problem(auth_pass, version))

    garp_repeat = section.integer("garp_repeat", 5, low=0)
    garp_interval = section.number("garp_interval", 0.0, low=0)
    garp_refresh = section.number("garp_refresh", 0.0, low=0)
    garp_delay = section.number("garp_delay", 5.0, low=0)
    garp_refresh_repeat = section.integer("garp_refresh_repeat", 1, low=1)

    default_form = ChecksumForm.PSEUDO_HEADER.value
    checksum_text = (
        default_form if protocol == "carp" else section.string("v3_checksum", default_form)
    )
    v3_checksum: ChecksumForm | None = None
    if checksum_text is not None:
        try:
            v3_checksum = ChecksumForm(checksum_text)
        except ValueError:
            allowed = " or ".join(_quote(form.value) for form in ChecksumForm)
            section.issue("v3_checksum", f"must be {allowed}, got {_quote(checksum_text)}")
    # Set where it has no effect, v3_checksum would mislead whoever reads the file.
    applies = version == 3 and family == 4
    if "v3_checksum" in table and version is not None and family is not None and not applies:
        section.issue(
            "v3_checksum",
            f"applies only to VRRPv3 over IPv4, not to VRRPv{version} over IPv{family} "
            "(VRRPv2 never uses a pseudo-header, IPv6 always does): remove it",
        )

    vrid_key = None
    if interface is not None and family is not None and vrid is not None:
        vrid_key = (interface, family, vrid)
    if len(issues) > start:
        return None, vrid_key
    # With no issue recorded every reader returned a value; the asserts tell mypy so.
    assert name is not None and protocol is not None and version is not None
    assert interface is not None and vrid is not None and priority is not None
    assert advert_interval is not None and preempt is not None and preempt_delay is not None
    assert accept is not None and virtual_addresses is not None and unicast_peers is not None
    assert use_vmac is not None and auth_pass is not None and garp_repeat is not None
    assert garp_interval is not None and garp_refresh is not None and v3_checksum is not None
    assert garp_delay is not None and garp_refresh_repeat is not None
    assert higher_prio_send_advert is not None
    instance = InstanceConfig(
        name=name,
        interface=interface,
        vrid=vrid,
        virtual_addresses=virtual_addresses,
        protocol=protocol,
        version=version,
        priority=priority,
        advert_interval=advert_interval,
        preempt=preempt,
        preempt_delay=preempt_delay,
        accept=accept,
        higher_prio_send_advert=higher_prio_send_advert,
        unicast_peers=unicast_peers,
        use_vmac=use_vmac,
        auth_pass=auth_pass,
        garp_repeat=garp_repeat,
        garp_interval=garp_interval,
        garp_refresh=garp_refresh,
        garp_delay=garp_delay,
        garp_refresh_repeat=garp_refresh_repeat,
        v3_checksum=v3_checksum,
    )
    if carp is not None:
        instance = dataclasses.replace(
            instance,
            advbase=carp.advbase,
            advskew=carp.advskew,
            demote=carp.demote,
            password=carp.password,
            carp_profile=carp.carp_profile,
            replay_protection=carp.replay_protection,
        )
    return instance, vrid_key


def _check_virtual_addresses(section: _Section) -> tuple[VirtualAddress, ...] | None:
    """Parse the addresses (with their prefixes); the core's rules judge the list."""
    key = "virtual_addresses"
    texts = section.strings(key)
    if texts is None:
        return None
    start = len(section.issues)
    parsed: list[VirtualAddress] = []
    for text in texts:
        try:
            parsed.append(ip_interface(text))
        except ValueError:
            section.issue(key, f"{_quote(text)} is not an IP address with an optional /prefix")
    if len(section.issues) > start:
        return None
    for problem in virtual_addresses_problems([vip.ip for vip in parsed]):
        section.issue(key, problem)
    if len(section.issues) > start:
        return None
    return tuple(parsed)


def _check_peers(section: _Section, family: int | None) -> tuple[IPAddress, ...] | None:
    """Parse the peers; the core's rules (family, link-local for IPv6, ...) judge them."""
    key = "unicast_peers"
    texts = section.strings(key, [])
    if texts is None:
        return None
    start = len(section.issues)
    peers: list[IPAddress] = []
    for text in texts:
        try:
            peers.append(ip_address(text))
        except ValueError:
            section.issue(key, f"{_quote(text)} is not an IP address (peers take no /prefix)")
    if len(section.issues) > start:
        return None
    if family is not None:
        for problem in peers_problems(peers, family):
            section.issue(key, problem)
    if len(section.issues) > start:
        return None
    return tuple(peers)


# --- tracking and sync groups ----------------------------------------------------------------
#
# Tracked objects are defined once, in top-level tables ([[track_script]], [[track_file]],
# [[track_process]], [[track_ping]]), and named by the instances (and sync groups) that track
# them, under a key of the same name: keepalived's own split (vrrp_script NAME { ... } then
# track_script { NAME weight -20 }), with one rule to remember instead of keepalived's
# vrrp_script / track_script pair. Interfaces need no table: an instance names them.
#
# keepalived reports many mistakes as configuration errors and then runs anyway, having
# patched them (a weight of 254 becomes 253, a weighted track on an address owner is dropped,
# an unknown script is ignored). vrrpy has no such middle ground: what keepalived would report
# (and `keepalived -t` would fail on) is refused, so the daemon never runs something other
# than what the file says.

_CHECK_NAME_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A tracked object's name; no ':', which vrrpy keeps for its own names (``interface:eth0``)."""
_INTERFACE_CHECK: Final = "interface:"
_INTERVAL_MIN: Final = 0.01
_INTERVAL_MAX: Final = 86_400  # a day; anything longer is not a health check
_COUNT_MAX: Final = 65_535  # keepalived's bound for quorum; plenty for rise, fall and count
_COMM_LEN: Final = 15  # a process name (/proc/PID/stat comm) is at most 15 bytes
_DEFAULT_WEIGHT: Final[Mapping[Kind, int]] = {Kind.FILE: 1}
"""keepalived's default object weight: 0, but 1 for a track_file (its value is added as is)."""
_TABLE_KEYS: Final[Mapping[Kind, tuple[str, ...]]] = {
    Kind.SCRIPT: (
        "name", "script", "interval", "timeout", "rise", "fall", "weight", "reverse",
        "user", "group", "init_fail",
    ),
    Kind.FILE: ("name", "file", "weight", "reverse"),
    Kind.PROCESS: (
        "name", "process", "params", "param_match", "full_command", "quorum", "quorum_max",
        "interval", "weight", "reverse",
    ),
    Kind.PING: ("name", "targets", "interval", "timeout", "count", "quorum", "weight", "reverse"),
}  # fmt: skip
_REF_KEYS: Final = ("name", "weight", "reverse")


@dataclass(frozen=True)
class _Defined:
    """A checked track table: the agent's spec and the object's default weight."""

    spec: CheckSpec
    weight: int
    reverse: bool
    label: str  # "track_script[chk_nginx]", for messages


@dataclass(frozen=True)
class _Ref:
    """One entry of a ``track_*`` array, as written; ``ok`` False if it was malformed."""

    key: str  # "track_script"
    where: str  # "instance[VI_1].track_script[0]"
    name: str
    weight: int | None  # None: the object's default
    reverse: bool | None
    ok: bool = True


@dataclass
class _Tracker:
    """An instance or a sync group, as far as tracking needs it (read even when it is wrong)."""

    label: str  # "instance[VI_1]", "sync_group[gw]"
    name: str | None  # None when missing or invalid
    refs: list[_Ref]
    interface: str | None = None
    priority: int | None = None


@dataclass
class _Group:
    tracker: _Tracker
    members: list[tuple[str, str]]  # (key, instance name) as listed
    tracking_weight: bool


def _weight(section: _Section, key: str) -> tuple[bool, int | None]:
    """(ok, weight) of ``key`` (None when absent); -253..253 as vrrpy.track.Track takes it."""
    if key not in section.table:
        return True, None
    value = section.integer(key)
    if value is None:
        return False, None
    if not -MAX_WEIGHT <= value <= MAX_WEIGHT:
        section.issue(
            key,
            f"must be -{MAX_WEIGHT}..{MAX_WEIGHT}, got {value} "
            "(keepalived turns +/-254 into +/-253; vrrpy refuses what it would have to change)",
        )
        return False, None
    return True, value


def _close(name: str, known: Iterable[str]) -> str:
    """ "; did you mean X?" when a known name is close to ``name``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def _check_track_tables(
    document: Mapping[str, Any], issues: list[ConfigIssue]
) -> dict[str, tuple[Kind, _Defined | None]]:
    """Every ``[[track_*]]`` table, by name: its kind and, if it is right, the checked object.

    Names are unique across all the tables (the agent, the logs and the state file
    know an object by its name alone). A table with mistakes is still listed (with
    None), so that the instances naming it are not told it does not exist.
    """
    entries = [
        (key, index, table)
        for key in _TRACK_TABLES
        for index, table in _array_of_tables(document, key, issues)
    ]
    names = [table.get("name") for _, _, table in entries]
    first: dict[str, str] = {}
    found: dict[str, tuple[Kind, _Defined | None]] = {}
    for key, index, table in entries:
        kind = _TRACK_TABLES[key]
        name = table.get("name")
        valid = isinstance(name, str) and _CHECK_NAME_RE.fullmatch(name) is not None
        label = f"{key}[{name if valid and names.count(name) == 1 else index}]"
        section = _Section(table, label, issues)
        start = len(issues)
        defined = _check_track_table(section, kind)
        if not isinstance(name, str):
            continue
        if not valid:
            found.setdefault(name, (kind, None))  # named as written: no "no such" on top
            continue
        if name in first:
            section.issue(
                "name",
                f"{_quote(name)} is already the name of {first[name]}; a tracked object's "
                "name is unique across all the track tables (logs and the state file name "
                "objects by it alone)",
            )
            continue
        first[name] = label
        found[name] = (kind, defined if len(issues) == start else None)
    return found


def _check_track_table(section: _Section, kind: Kind) -> _Defined | None:
    section.unknown_keys(_TABLE_KEYS[kind])
    start = len(section.issues)
    name = section.string("name")
    if name is not None and not _CHECK_NAME_RE.fullmatch(name):
        section.issue(
            "name",
            f"{_quote(name)}: use 1..64 letters, digits, '_', '-' or '.' "
            "(':' is kept for vrrpy's own names, such as interface:eth0)",
        )
        name = None
    ok, weight = _weight(section, "weight")
    reverse = section.boolean("reverse", False)
    spec: CheckSpec | None
    if kind is Kind.SCRIPT:
        spec = _script_spec(section, name or "")
    elif kind is Kind.FILE:
        spec = _file_spec(section, name or "")
    elif kind is Kind.PROCESS:
        spec = _process_spec(section, name or "")
    else:
        spec = _ping_spec(section, name or "")
    if len(section.issues) > start or spec is None or reverse is None or not ok:
        return None
    default = _DEFAULT_WEIGHT.get(kind, 0)
    return _Defined(spec, default if weight is None else weight, reverse, section.prefix)


def _script_spec(section: _Section, name: str) -> ScriptSpec | None:
    """keepalived's ``vrrp_script``: the command line, its timing, its user."""
    start = len(section.issues)
    script = section.string("script")
    if script is not None:
        try:
            argv = shlex.split(script)
        except ValueError as exc:
            section.issue("script", f"cannot be split into words ({exc}): quote as sh would")
        else:
            if not argv:
                section.issue("script", "must name a program")
            elif not argv[0].startswith("/"):
                section.issue(
                    "script",
                    f"{_quote(argv[0])} is not an absolute path: the program runs without a "
                    "shell, found by the daemon's PATH, which is not your shell's (keepalived "
                    "warns and searches PATH; with enable_script_security it refuses)",
                )
    interval = section.number("interval", 1.0, low=_INTERVAL_MIN, high=_INTERVAL_MAX)
    timeout = section.number("timeout", None, low=_INTERVAL_MIN, high=_INTERVAL_MAX)
    rise = section.integer("rise", 1, low=1, high=_COUNT_MAX)
    fall = section.integer("fall", 1, low=1, high=_COUNT_MAX)
    user = section.string("user", None)
    if user == "":
        section.issue("user", "must be a user name")
    group = section.string("group", None)
    if group == "":
        section.issue("group", "must be a group name")
    elif group is not None and "user" not in section.table:
        section.issue(
            "group",
            "needs user (keepalived's `user USERNAME [GROUPNAME]`): the script runs as "
            "user, with this group instead of the user's own",
        )
    init_fail = section.boolean("init_fail", False)
    if len(section.issues) > start:
        return None
    assert script is not None and interval is not None and rise is not None
    assert fall is not None and init_fail is not None
    return ScriptSpec(name, script, interval, timeout, rise, fall, user, group, init_fail)


def _file_spec(section: _Section, name: str) -> FileSpec | None:
    """keepalived's ``track_file``: the file whose integer is added, times the weight."""
    path = section.string("file")
    if path is None:
        return None
    if not path.startswith("/") or path.endswith("/") or "\0" in path:
        section.issue(
            "file",
            f"{_quote(path)}: must be the absolute path of a file (its directory is watched)",
        )
        return None
    return FileSpec(name, path)


def _process_spec(section: _Section, name: str) -> ProcessSpec | None:
    """keepalived's ``vrrp_track_process``: how many processes match, against a quorum."""
    start = len(section.issues)
    process = section.string("process")
    if process == "":
        section.issue("process", "must be a process name or command")
    params = section.strings("params", [])
    match = section.string("param_match", None)
    if match is not None and match not in ("exact", "partial", "initial"):
        section.issue(
            "param_match", f'must be "exact", "partial" or "initial", got {_quote(match)}'
        )
    full_command = section.boolean("full_command", False)
    quorum_max = section.integer("quorum_max", None, low=0, high=_COUNT_MAX)
    # keepalived: quorum_max 0 alone means "no such process may run" (quorum 0).
    quorum = section.integer("quorum", 0 if quorum_max == 0 else 1, low=0, high=_COUNT_MAX)
    if quorum is not None and quorum_max is not None and quorum_max < quorum:
        section.issue("quorum_max", f"must be >= quorum ({quorum}), got {quorum_max}")
    elif quorum == 0 and quorum_max is None:
        section.issue(
            "quorum",
            "0 with no quorum_max is met whatever runs; set quorum_max "
            "(quorum_max = 0: no such process may run)",
        )
    interval = section.number("interval", 1.0, low=_INTERVAL_MIN, high=_INTERVAL_MAX)
    uses_cmdline = bool(full_command or params or match)
    if process and not uses_cmdline and len(process.encode()) > _COMM_LEN:
        section.issue(
            "process",
            f"{_quote(process)} is longer than a process name (comm, {_COMM_LEN} bytes) and "
            "would never match: set full_command = true to match the command's argv[0]",
        )
    if len(section.issues) > start:
        return None
    assert process is not None and params is not None and full_command is not None
    assert quorum is not None and interval is not None
    param_match = cast(
        Literal["none", "exact", "partial", "initial"], match or ("exact" if params else "none")
    )
    return ProcessSpec(
        name,
        process,
        params=tuple(params),
        param_match=param_match,
        full_command=full_command,
        quorum=quorum,
        quorum_max=quorum_max,
        interval=interval,
    )


def _ping_spec(section: _Section, name: str) -> PingSpec | None:
    """Heartbeat's ping group: ICMP echo targets, and how many must answer."""
    start = len(section.issues)
    texts = section.strings("targets")
    if texts is not None and not texts:
        section.issue("targets", "at least one address is required")
    seen: set[IPAddress] = set()
    for text in texts or []:
        try:
            address = ip_address(text)
        except ValueError:
            section.issue(
                "targets",
                f"{_quote(text)} is not an IP address (an IPv6 link-local one takes its "
                "interface: fe80::1%eth0)",
            )
            continue
        if address.is_unspecified or address.is_multicast:
            what = "unspecified" if address.is_unspecified else "multicast"
            section.issue("targets", f"{text} is {what}: a target is one host that answers")
        elif (
            isinstance(address, IPv6Address) and address.is_link_local and address.scope_id is None
        ):
            section.issue(
                "targets", f"{text} is link-local: say on which interface, as {text}%eth0"
            )
        elif address in seen:
            section.issue("targets", f"{text} is listed twice")
        seen.add(address)
    interval = section.number("interval", 1.0, low=_INTERVAL_MIN, high=_INTERVAL_MAX)
    timeout = section.number("timeout", 1.0, low=_INTERVAL_MIN, high=_INTERVAL_MAX)
    count = section.integer("count", 3, low=1, high=_COUNT_MAX)
    quorum = section.integer("quorum", 1, low=1, high=_COUNT_MAX)
    if texts and quorum is not None and quorum > len(texts):
        section.issue(
            "quorum", f"{quorum} is more than the {len(texts)} target(s): it could never be met"
        )
    if len(section.issues) > start:
        return None
    assert texts is not None and interval is not None and timeout is not None
    assert count is not None and quorum is not None
    return PingSpec(name, tuple(texts), interval, timeout, count, quorum)


def _check_refs(section: _Section) -> list[_Ref]:
    """An instance's or a group's ``track_*`` arrays: names, or ``{ name, weight, reverse }``."""
    refs: list[_Ref] = []
    for key in _TRACK_KEYS:
        if key not in section.table:
            continue
        value = section.table[key]
        if not isinstance(value, list):
            section.issue(
                key,
                "must be an array of names or { name = ..., weight = ... } tables, "
                f"got {_describe(value)}",
            )
            continue
        for index, item in enumerate(value):
            where = f"{section.prefix}.{key}[{index}]"
            if isinstance(item, str):
                ref = _Ref(key, where, item, None, None)
            elif isinstance(item, dict):
                entry = _Section(item, where, section.issues)
                start = len(section.issues)
                entry.unknown_keys(_REF_KEYS)
                name = entry.string("name")
                _, weight = _weight(entry, "weight")
                reverse = entry.boolean("reverse", False) if "reverse" in item else None
                ok = len(section.issues) == start
                ref = _Ref(key, where, name or "", weight, reverse, ok)
            else:
                section.issues.append(
                    ConfigIssue(
                        where,
                        "must be a name or a { name = ..., weight = ... } table, "
                        f"got {_describe(item)}",
                    )
                )
                continue
            if ref.ok and key == "track_interface":
                problem = _interface_problem(ref.name)
                if problem:
                    section.issues.append(ConfigIssue(where, problem))
                    ref = _Ref(key, where, ref.name, None, None, ok=False)
            refs.append(ref)
    return refs


def _instance_tracker(section: _Section, label: str) -> _Tracker:
    """What tracking needs of one instance table, read whether or not the rest is right."""
    table = section.table
    name = table.get("name")
    interface = table.get("interface")
    priority = table.get("priority", 100)
    return _Tracker(
        label=f"instance[{label}]",
        name=name if isinstance(name, str) and _NAME_RE.fullmatch(name) else None,
        refs=_check_refs(section),
        interface=(
            interface
            if isinstance(interface, str) and _interface_problem(interface) is None
            else None
        ),
        priority=priority if isinstance(priority, int) and not isinstance(priority, bool) else None,
    )


def _check_sync_groups(
    document: Mapping[str, Any],
    issues: list[ConfigIssue],
    group_backends: dict[str, tuple[backendconfig.BackendSpec, ...]],
) -> list[_Group]:
    """The ``[[sync_group]]`` tables, read; their members are judged with the instances.
    Their notify scripts go to ``group_backends``, by group name."""
    tables = _array_of_tables(document, "sync_group", issues)
    names = [table.get("name") for _, table in tables]
    first: dict[str, str] = {}
    groups: list[_Group] = []
    for index, table in tables:
        name = table.get("name")
        valid = isinstance(name, str) and _NAME_RE.fullmatch(name) is not None
        label = f"sync_group[{name if valid and names.count(name) == 1 else index}]"
        section = _Section(table, label, issues)
        section.unknown_keys(_SYNC_GROUP_KEYS)
        checked = section.string("name")
        if checked is not None and not valid:
            section.issue(
                "name", f"{_quote(checked)}: use 1..64 letters, digits, '_', '-', '.' or ':'"
            )
        elif checked is not None and checked in first:
            section.issue(
                "name",
                f"{_quote(checked)} is already the name of {first[checked]}; names must be unique",
            )
        elif checked is not None:
            first[checked] = label
        members = section.strings("members")
        if members is not None and len(members) == 0:
            section.issue("members", "must list the instances that change state together")
        tracking_weight = section.boolean("tracking_weight", False)
        scripts = backendconfig.group_backend_specs(table, section.issue)
        if scripts and valid and isinstance(name, str):
            group_backends[name] = scripts
        tracker = _Tracker(label, checked if valid else None, _check_refs(section))
        listed = [(f"{label}.members[{i}]", member) for i, member in enumerate(members or [])]
        groups.append(_Group(tracker, listed, bool(tracking_weight)))
    return groups


def _weight_text(ref: _Ref, track: Track) -> str:
    """``weight -20``, saying where it came from when the entry did not set it."""
    if ref.weight is not None:
        return f"weight {track.weight}"
    if track.kind is Kind.FILE and track.weight == 1:
        return "weight 1 (a track_file's default)"
    return f"weight {track.weight} (the track_{track.kind.value}'s own)"


def _owner_weight_problem(instance: str, ref: _Ref, track: Track) -> str:
    return (
        f"{instance} has priority 255 (address owner), which never moves, so "
        f"{_weight_text(ref, track)} would do nothing (keepalived drops such a track with a "
        "configuration error); set weight = 0 (FAULT while it fails) or a lower priority"
    )


def _resolve_tracking(
    defined: Mapping[str, tuple[Kind, _Defined | None]],
    trackers: list[_Tracker],
    groups: list[_Group],
    issues: list[ConfigIssue],
) -> tuple[dict[str, CheckSpec], dict[str, tuple[Track, ...]], tuple[SyncGroupSpec, ...]]:
    """Tie names to objects: every instance's tracks, the groups' members, the agent's checks."""
    checks: dict[str, CheckSpec] = {}
    used: set[str] = set()
    instances: dict[str, _Tracker] = {}
    for tracker in trackers:
        if tracker.name is not None:
            instances.setdefault(tracker.name, tracker)

    def resolve(ref: _Ref) -> tuple[Track, CheckSpec] | None:
        """The Track and its object for one well-formed entry, or None (issue recorded)."""
        kind = _TRACK_KEYS[ref.key]
        if kind is Kind.INTERFACE:
            name = _INTERFACE_CHECK + ref.name
            spec: CheckSpec = InterfaceSpec(name, ref.name)
            default, default_reverse = 0, False
        else:
            used.add(ref.name)
            entry = defined.get(ref.name)
            if entry is None or entry[0] is not kind:
                same_kind = [n for n, (k, _) in defined.items() if k is kind]
                message = f"no {ref.key} named {ref.name}"
                if entry is not None:
                    message += f" (there is a track_{entry[0].value} of that name)"
                elif same_kind:
                    message += _close(ref.name, same_kind)
                else:
                    message += f" (the file has no [[{ref.key}]])"
                issues.append(ConfigIssue(ref.where, message))
                return None
            if entry[1] is None:
                return None  # the table's own mistakes are reported already
            name, spec = ref.name, entry[1].spec
            default, default_reverse = entry[1].weight, entry[1].reverse
        weight = default if ref.weight is None else ref.weight
        reverse = default_reverse if ref.reverse is None else ref.reverse
        return Track(name, kind, weight, reverse), spec

    # The groups' members, and the groups' own tracks (resolved once, applied to each member).
    group_of: dict[str, _Group] = {}
    group_tracks: dict[int, list[tuple[_Ref, Track, CheckSpec]]] = {}
    for group in groups:
        label = group.tracker.label
        members: list[str] = []
        for where, member in group.members:
            if member not in instances:
                message = f"no instance named {member}" + _close(member, instances)
                issues.append(ConfigIssue(where, message))
            elif member in members:
                issues.append(ConfigIssue(where, f"{member} is listed twice"))
            elif member in group_of:
                issues.append(
                    ConfigIssue(
                        where,
                        f"{member} is already a member of {group_of[member].tracker.label}: "
                        "an instance belongs to one sync group at most",
                    )
                )
            else:
                members.append(member)
                group_of[member] = group
        if len({member for _, member in group.members}) == 1:
            issues.append(
                ConfigIssue(
                    f"{label}.members",
                    "a group of one instance moves nothing along with it (keepalived: "
                    '"this probably isn\'t what you want"): list every instance that must '
                    "change state with it, or remove the group",
                )
            )
        owners = [m for m in members if instances[m].priority == OWNER_PRIORITY]
        others = [m for m in members if instances[m].priority != OWNER_PRIORITY]
        if owners and others:
            issues.append(
                ConfigIssue(
                    f"{label}.members",
                    f"{owners[0]} has priority 255 (address owner) and {others[0]} has not: an "
                    "owner goes Master at start-up and would take the others with it on every "
                    'host (keepalived: "This won\'t work"); make all of them owners or none',
                )
            )
        resolved: list[tuple[_Ref, Track, CheckSpec]] = []
        seen: set[str] = set()
        for ref in group.tracker.refs:
            result = resolve(ref) if ref.ok else None
            if not ref.ok and ref.key != "track_interface":
                used.add(ref.name)
            if result is None:
                continue
            track, spec = result
            if track.name in seen:
                issues.append(ConfigIssue(ref.where, f"{ref.name} is tracked twice by {label}"))
                continue
            seen.add(track.name)
            if track.weight and owners:
                issues.append(ConfigIssue(ref.where, _owner_weight_problem(owners[0], ref, track)))
                continue
            resolved.append((ref, track, spec))
        group_tracks[id(group)] = resolved

    instance_tracks: dict[str, tuple[Track, ...]] = {}
    reported: set[str] = set()
    for tracker in trackers:
        tracks: list[Track] = []
        tracked_at: dict[str, str] = {}
        if tracker.interface is not None:
            own = _INTERFACE_CHECK + tracker.interface
            tracks.append(Track(own, Kind.INTERFACE))
            checks.setdefault(own, InterfaceSpec(own, tracker.interface))
            tracked_at[own] = f"{tracker.label}.interface"
        first = tracker.name is not None and instances[tracker.name] is tracker
        own_group = group_of.get(tracker.name) if first and tracker.name else None
        for ref in tracker.refs:
            if not ref.ok:
                if ref.key != "track_interface":
                    used.add(ref.name)
                continue
            if ref.key == "track_interface" and ref.name == tracker.interface:
                issues.append(
                    ConfigIssue(
                        ref.where,
                        f"{ref.name} is this instance's own interface, always tracked with "
                        "weight 0 (FAULT while its link is down): remove it (keepalived "
                        "ignores it with a configuration error)",
                    )
                )
                continue
            result = resolve(ref)
            if result is None:
                continue
            track, spec = result
            if track.name in tracked_at:
                issues.append(
                    ConfigIssue(
                        ref.where, f"{ref.name} is already tracked by {tracked_at[track.name]}"
                    )
                )
                continue
            tracked_at[track.name] = ref.where
            if track.weight and tracker.priority == OWNER_PRIORITY:
                name = tracker.name or tracker.label
                issues.append(ConfigIssue(ref.where, _owner_weight_problem(name, ref, track)))
                continue
            if track.weight and own_group is not None and not own_group.tracking_weight:
                issues.append(
                    ConfigIssue(
                        ref.where,
                        f"{_weight_text(ref, track)} on a member of "
                        f"{own_group.tracker.label}: members whose priorities move apart "
                        "on two hosts re-elect for ever; use weight 0, track it on the group "
                        "(every member moves alike), or set "
                        "tracking_weight = true on the group (keepalived: "
                        "sync_group_tracking_weight)",
                    )
                )
                continue
            tracks.append(track)
            checks.setdefault(track.name, spec)
        if own_group is not None:
            for ref, track, spec in group_tracks[id(own_group)]:
                if track.name in tracked_at:
                    if ref.where in reported:
                        continue  # said once, for the first member
                    reported.add(ref.where)
                    issues.append(
                        ConfigIssue(
                            ref.where,
                            f"{ref.name} is also tracked by its member {tracker.name} "
                            f"({tracked_at[track.name]}): track it in one place (keepalived: "
                            '"configured on VRRP instance and sync group")',
                        )
                    )
                    continue
                tracks.append(track)
                checks.setdefault(track.name, spec)
        if first and tracker.name is not None:
            instance_tracks[tracker.name] = tuple(tracks)

    for name, (kind, entry) in defined.items():
        if entry is not None and name not in used:
            issues.append(
                ConfigIssue(
                    entry.label,
                    f"tracked by no instance and no sync group: name it in an instance's "
                    f'track_{kind.value} or remove it (keepalived: "is not used")',
                )
            )

    sync_groups = tuple(
        SyncGroupSpec(
            name=group.tracker.name or "",
            members=tuple(m for _, m in group.members),
            tracks=tuple(track for _, track, _ in group_tracks[id(group)]),
            tracking_weight=group.tracking_weight,
        )
        for group in groups
    )
    return checks, instance_tracks, sync_groups


def check_tracking(
    config: DaemonConfig,
    interface_exists: Callable[[str], bool] | None = None,
    where: str = "in this network namespace",
) -> list[ConfigIssue]:
    """Issues the host raises about the tracked objects; for ``--check`` and start-up.

    Like :func:`check_ownership`, this looks at the machine, so :func:`parse_config`
    does not: a script's program must exist, be a regular file and be executable by
    the user it runs as (keepalived's ``check_script_secure``: it disables such a
    script with a configuration error); that user and group must exist; a
    track_file's directory must exist (keepalived: "track file directory ... does not
    exist - removing"); and, given ``interface_exists`` (the daemon's netlink lookup),
    every tracked interface other than an instance's own (checked with the instance).
    """
    issues: list[ConfigIssue] = []
    for name, spec in config.checks.items():
        if isinstance(spec, ScriptSpec):
            issues.extend(_script_host_issues(spec))
        elif isinstance(spec, FileSpec):
            directory = os.path.dirname(spec.file) or "/"
            if not os.path.isdir(directory):
                issues.append(
                    ConfigIssue(
                        f"track_file[{name}].file",
                        f"directory {directory} does not exist here: the file's directory "
                        "is what is watched",
                    )
                )
        elif isinstance(spec, InterfaceSpec) and interface_exists is not None:
            if interface_exists(spec.interface):
                continue
            message = f"no interface {spec.interface} {where} (ip link shows what there is)"
            for key in _naming(config, name):
                issues.append(ConfigIssue(key, message))
    return issues


def _naming(config: DaemonConfig, name: str) -> list[str]:
    """The ``track_interface`` keys that name the interface check ``name`` (not an own one)."""
    keys: list[str] = []
    from_group: dict[str, set[str]] = {}
    for group in config.sync_groups:
        if any(track.name == name for track in group.tracks):
            keys.append(f"sync_group[{group.name}].track_interface")
            for member in group.members:
                from_group.setdefault(member, set()).add(name)
    for instance, tracks in config.instance_tracks.items():
        mine = [t for t in tracks[1:] if t.name not in from_group.get(instance, set())]
        if any(track.name == name for track in mine):
            keys.append(f"instance[{instance}].track_interface")
    return keys


def _script_host_issues(spec: ScriptSpec) -> list[ConfigIssue]:
    key = f"track_script[{spec.name}]"
    issues: list[ConfigIssue] = []
    uid: int | None = os.geteuid()
    gid = os.getegid()
    who = "this daemon's user"
    if spec.user is not None:
        who = f"user {spec.user}"
        try:
            entry = pwd.getpwnam(spec.user)
        except KeyError:
            issues.append(ConfigIssue(f"{key}.user", f"no user {spec.user} on this host"))
            uid = None
        else:
            uid, gid = entry.pw_uid, entry.pw_gid
    if spec.group is not None:
        try:
            gid = grp.getgrnam(spec.group).gr_gid
        except KeyError:
            issues.append(ConfigIssue(f"{key}.group", f"no group {spec.group} on this host"))
            uid = None
    program = spec.argv[0]
    try:
        info = os.stat(program)
    except OSError as exc:
        issues.append(ConfigIssue(f"{key}.script", f"{program}: {exc.strerror or exc}"))
        return issues
    if not stat.S_ISREG(info.st_mode):
        issues.append(ConfigIssue(f"{key}.script", f"{program} is not a regular file"))
    elif uid is not None and not _executable(info, uid, gid):
        issues.append(
            ConfigIssue(
                f"{key}.script",
                f"{program} is not executable by {who} (mode {stat.filemode(info.st_mode)}, "
                f"owner {info.st_uid}:{info.st_gid})",
            )
        )
    return issues


def _executable(info: os.stat_result, uid: int, gid: int) -> bool:
    """Whether ``uid``:``gid`` (supplementary groups dropped, as the agent runs it) may exec it."""
    if uid == 0:
        return bool(info.st_mode & 0o111)
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)
