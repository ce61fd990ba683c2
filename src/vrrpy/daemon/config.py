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
:func:`check_ownership`, which the daemon calls with the addresses it sees.

The file format (every key but the required ones has the default shown)::

    [global]
    state_file = "/run/vrrpyd/state.json"
    log_level = "info"            # debug, info, warning, error
    # netns = "blue"              # run inside this named network namespace
    realtime_priority = 10        # SCHED_RR priority of the event loop; 0 = time-sharing
    lock_memory = true            # mlockall: never wait for a page to come back from disk
    rlimit_rttime = 1000000       # microseconds at real-time priority without sleeping; 0 = none

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
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
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
from vrrpy.runtime.realtime import DEFAULT_PRIORITY, DEFAULT_RLIMIT_RTTIME, RealtimeSettings
from vrrpy.runtime.spec import InstanceSpec, VirtualAddress

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
    "VirtualAddress",
    "check_ownership",
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
    """

    state_file: str = DEFAULT_STATE_FILE
    log_level: LogLevel = "info"
    netns: str | None = None
    realtime_priority: int = DEFAULT_PRIORITY
    lock_memory: bool = True
    rlimit_rttime: int = DEFAULT_RLIMIT_RTTIME

    @property
    def realtime(self) -> RealtimeSettings:
        """These settings as :func:`vrrpy.runtime.realtime.apply` takes them."""
        return RealtimeSettings(self.realtime_priority, self.lock_memory, self.rlimit_rttime)

    @property
    def log_level_number(self) -> int:
        """``log_level`` as a :mod:`logging` level number (``"info"`` is 20)."""
        return _LOG_LEVEL_NUMBERS[self.log_level]


@dataclass(frozen=True)
class DaemonConfig:
    """A whole, checked configuration file: the global settings and the instances, in order."""

    global_: GlobalConfig
    instances: tuple[InstanceConfig, ...]


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
)
_RT_PRIORITY_MAX: Final = 99  # Linux's sched_get_priority_max(SCHED_RR), fixed
_RTTIME_MIN: Final = 10_000  # keepalived's default; below it a Python daemon trips at start
_RTTIME_MAX: Final = 60_000_000
_INSTANCE_KEYS: Final = tuple(f.name for f in fields(InstanceConfig))
_TOP_KEYS: Final = ("global", "instance")


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
        if key not in _TOP_KEYS:
            message = _unknown_message(key, _TOP_KEYS, "table or key")
            issues.append(ConfigIssue(key, f"{message}: a file has [global] and [[instance]]"))

    global_config = _check_global(document.get("global", {}), issues)

    raw_instances = document.get("instance", [])
    if isinstance(raw_instances, dict):
        issues.append(
            ConfigIssue("instance", "write [[instance]] (an array of tables), not [instance]")
        )
        raw_instances = []
    elif not isinstance(raw_instances, list):
        issues.append(
            ConfigIssue("instance", f"must be an array of tables, got {_describe(raw_instances)}")
        )
        raw_instances = []
    elif not raw_instances:
        issues.append(ConfigIssue("instance", "no [[instance]]: the daemon has nothing to run"))

    tables: list[tuple[int, Mapping[str, Any]]] = []
    for index, table in enumerate(raw_instances):
        if isinstance(table, dict):
            tables.append((index, table))
        else:
            issues.append(
                ConfigIssue(f"instance[{index}]", f"must be a table, got {_describe(table)}")
            )

    # An instance is named in keys by its name when that is valid and unique, else by its index.
    first_index: dict[str, int] = {}
    for index, table in tables:
        name = table.get("name")
        if isinstance(name, str) and _NAME_RE.fullmatch(name):
            first_index.setdefault(name, index)
    names = [table.get("name") for _, table in tables]

    instances: list[InstanceConfig] = []
    seen_vrids: dict[tuple[str, int, int], str] = {}
    for index, table in tables:
        name = table.get("name")
        unique = isinstance(name, str) and name in first_index and names.count(name) == 1
        label = name if unique and isinstance(name, str) else str(index)
        section = _Section(table, f"instance[{label}]", issues)
        instance, vrid_key = _check_instance(section)
        if isinstance(name, str) and name in first_index and first_index[name] != index:
            section.issue(
                "name",
                f"{_quote(name)} is already the name of instance[{first_index[name]}]; "
                "names must be unique",
            )
        if vrid_key is not None:
            interface, family, vrid = vrid_key
            other = seen_vrids.get(vrid_key)
            if other is not None:
                section.issue(
                    "vrid",
                    f"VRID {vrid} is already used for IPv{family} on {interface} by "
                    f"instance[{other}]; one virtual router per interface, family and VRID",
                )
            else:
                seen_vrids[vrid_key] = label
        if instance is not None:
            instances.append(instance)

    if issues or global_config is None:
        return None
    return DaemonConfig(global_=global_config, instances=tuple(instances))


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
    )


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
    if protocol == "carp":
        section.issue("protocol", 'CARP is not supported yet; only "vrrp" is')
    elif protocol is not None and protocol != "vrrp":
        section.issue("protocol", f'must be "vrrp", got {_quote(protocol)}')

    version = section.integer("version", 3)
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
    vrid = section.integer("vrid")
    if vrid is not None and report(section, "vrid", vrid_problem(vrid)):
        vrid = None
    priority = section.integer("priority", 100)
    if priority is not None:
        report(section, "priority", priority_problem(priority))

    advert_interval = section.number("advert_interval", 1.0)
    if (
        advert_interval is not None
        and version is not None
        and report(section, "advert_interval", interval_problem(advert_interval, version))
    ):
        advert_interval = None

    preempt = section.boolean("preempt", True)
    preempt_delay = section.number("preempt_delay", 0.0)
    if preempt_delay is not None:
        report(section, "preempt_delay", preempt_delay_problem(preempt_delay))
    accept = section.boolean("accept", False)
    higher_prio_send_advert = section.boolean("higher_prio_send_advert", False)

    virtual_addresses = _check_virtual_addresses(section)
    family = virtual_addresses[0].version if virtual_addresses else None
    if family is not None and version is not None:
        report(section, "version", family_problem(family, version))

    unicast_peers = _check_peers(section, family)
    use_vmac = section.boolean("use_vmac", False)

    auth_pass = section.string("auth_pass", "")
    if auth_pass and version is not None:
        report(section, "auth_pass", auth_pass_problem(auth_pass, version))

    garp_repeat = section.integer("garp_repeat", 5, low=0)
    garp_interval = section.number("garp_interval", 0.0, low=0)
    garp_refresh = section.number("garp_refresh", 0.0, low=0)
    garp_delay = section.number("garp_delay", 5.0, low=0)
    garp_refresh_repeat = section.integer("garp_refresh_repeat", 1, low=1)

    checksum_text = section.string("v3_checksum", ChecksumForm.PSEUDO_HEADER.value)
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
