"""What the daemon and its tracking agent say to each other: one JSON object per line.

Why a child process and a pipe. vrrpy's protocol loop runs at real-time
priority and sends adverts every 10 ms; spawning a script, waiting for it,
scanning ``/proc`` or waiting for an ICMP reply must never delay one. So the
checks run in a separate process at normal priority (the agent,
``python -m vrrpy.track.agent``), and the loop only reads short lines from a
pipe when one arrives.

Daemon -> agent (the agent's stdin):

1. first line: ``{"type": "config", "version": 1, "objects": [SPEC, ...]}``,
   each SPEC one tracked object (:func:`spec_from_json` documents the keys);
2. later lines: ``{"type": "status"}`` asks for the details of every object
   (for the state file);
3. end of file: the agent stops its checks (killing any script still
   running) and exits 0. The daemon dying closes the pipe, so the agent never
   outlives it.

Agent -> daemon (the agent's stdout), one line per event:

* ``{"type": "verdict", "name", "kind", "up", "value", "reason", "detail", "t"}``
  when an object's verdict changes (and once for each object at start):
  :class:`~vrrpy.track.model.Verdict` plus ``t``, the agent's
  ``CLOCK_MONOTONIC`` time of the observation (the same clock as the
  daemon's ``loop.time()``, machine-wide);
* ``{"type": "ready"}`` once every check has started;
* ``{"type": "status", "objects": {name: {...}}}`` in answer to a status request;
* ``{"type": "error", "message": "..."}`` then exit status 2: the configuration
  was refused (nothing was started).

A verdict line is sent only on a change of ``up``, ``value`` or ``reason``
(a script that fails twice with the same exit status sends one line): with
100 scripts at 1 s the loop reads nothing while nothing changes. The agent's
stderr is its log (plain lines), for the daemon to pass on or discard.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from ipaddress import ip_address
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from vrrpy.track.model import Kind, Verdict

if TYPE_CHECKING:
    import subprocess  # the model side imports this module without subprocess

__all__ = [
    "PROTOCOL_VERSION",
    "CheckSpec",
    "ConfigError",
    "FileSpec",
    "InterfaceSpec",
    "PingSpec",
    "ProcessSpec",
    "ScriptSpec",
    "config_line",
    "decode_line",
    "encode",
    "spec_from_json",
    "verdict_line",
]

PROTOCOL_VERSION: Final = 1


class ConfigError(ValueError):
    """A tracked object's settings were refused; the message names the object and key."""


@dataclass(frozen=True)
class InterfaceSpec:
    """keepalived ``track_interface``: the link of ``interface`` (up = IFF_UP and IFF_RUNNING)."""

    name: str
    interface: str
    kind: Literal[Kind.INTERFACE] = Kind.INTERFACE


@dataclass(frozen=True)
class ScriptSpec:
    """keepalived ``vrrp_script``: ``script`` run every ``interval`` s without a shell.

    ``timeout`` None means keepalived's default: the interval. ``user`` /
    ``group``: keepalived's ``user USERNAME [GROUPNAME]`` (the group defaults
    to the user's own).
    """

    name: str
    script: str
    interval: float = 1.0
    timeout: float | None = None
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False
    kind: Literal[Kind.SCRIPT] = Kind.SCRIPT

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.script)

    @property
    def effective_timeout(self) -> float:
        return self.interval if self.timeout is None else self.timeout


@dataclass(frozen=True)
class FileSpec:
    """keepalived ``track_file``: the integer in ``file``, watched with inotify."""

    name: str
    file: str
    kind: Literal[Kind.FILE] = Kind.FILE


@dataclass(frozen=True)
class PingSpec:
    """Heartbeat's ping nodes: ICMP echo to each of ``targets`` every ``interval`` s.

    A probe unanswered after ``timeout`` s is lost; a target is unreachable
    after ``count`` lost in a row and reachable again at its next reply; the
    group is up while at least ``quorum`` targets are reachable.
    """

    name: str
    targets: tuple[str, ...]
    interval: float = 1.0
    timeout: float = 1.0
    count: int = 3
    quorum: int = 1
    kind: Literal[Kind.PING] = Kind.PING


@dataclass(frozen=True)
class ProcessSpec:
    """keepalived ``vrrp_track_process``: how many processes match, against a quorum.

    ``process`` is compared with the process name (``/proc/PID/stat``'s comm,
    at most 15 characters) or, with ``full_command`` or any ``params``, with
    ``argv[0]`` of ``/proc/PID/cmdline``; ``params`` then match the rest as
    keepalived's ``param_match`` says (exact, partial: a prefix of the
    argument bytes, initial: a prefix of the last argument).
    """

    name: str
    process: str
    params: tuple[str, ...] = ()
    param_match: Literal["none", "exact", "partial", "initial"] = "none"
    full_command: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    interval: float = 1.0
    kind: Literal[Kind.PROCESS] = Kind.PROCESS

    @property
    def uses_cmdline(self) -> bool:
        return self.full_command or bool(self.params) or self.param_match != "none"


CheckSpec = InterfaceSpec | ScriptSpec | FileSpec | PingSpec | ProcessSpec


def _number(doc: Mapping[str, Any], key: str, default: float, name: str) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"track {name}: {key} must be a positive number, not {value!r}")
    return float(value)


def _count(doc: Mapping[str, Any], key: str, default: int, name: str, low: int = 1) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"track {name}: {key} must be an integer >= {low}, not {value!r}")
    return value


def _text(doc: Mapping[str, Any], key: str, name: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"track {name}: {key} is required (a non-empty string)")
    return value


def spec_from_json(doc: Mapping[str, Any]) -> CheckSpec:
    """One tracked object's settings, checked; raises :class:`ConfigError` naming the key.

    Keys: ``name`` and ``kind`` always; then per kind the fields of
    :class:`InterfaceSpec`, :class:`ScriptSpec`, :class:`FileSpec`,
    :class:`PingSpec`, :class:`ProcessSpec` (unknown keys are refused).
    """
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("track: every object needs a name")
    try:
        kind = Kind(doc.get("kind"))
    except ValueError:
        raise ConfigError(f"track {name}: unknown kind {doc.get('kind')!r}") from None
    allowed = {"name", "kind"} | {
        Kind.INTERFACE: {"interface"},
        Kind.SCRIPT: {
            "script", "interval", "timeout", "rise", "fall", "user", "group", "init_fail"
        },
        Kind.FILE: {"file"},
        Kind.PING: {"targets", "interval", "timeout", "count", "quorum"},
        Kind.PROCESS: {
            "process", "params", "param_match", "full_command", "quorum", "quorum_max", "interval"
        },
    }[kind]  # fmt: skip
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise ConfigError(f"track {name}: unknown key(s) {', '.join(unknown)} for a {kind.value}")
    if kind is Kind.INTERFACE:
        return InterfaceSpec(name, _text(doc, "interface", name))
    if kind is Kind.FILE:
        return FileSpec(name, _text(doc, "file", name))
    if kind is Kind.SCRIPT:
        script = _text(doc, "script", name)
        try:
            if not shlex.split(script):
                raise ValueError("empty")
        except ValueError as exc:
            raise ConfigError(f"track {name}: script {script!r}: {exc}") from None
        timeout = doc.get("timeout")
        user, group = doc.get("user"), doc.get("group")
        if user is not None and not isinstance(user, str):
            raise ConfigError(f"track {name}: user must be a string")
        if group is not None and not isinstance(group, str):
            raise ConfigError(f"track {name}: group must be a string")
        return ScriptSpec(
            name,
            script,
            interval=_number(doc, "interval", 1.0, name),
            timeout=None if timeout is None else _number(doc, "timeout", 1.0, name),
            rise=_count(doc, "rise", 1, name),
            fall=_count(doc, "fall", 1, name),
            user=user,
            group=group,
            init_fail=bool(doc.get("init_fail", False)),
        )
    if kind is Kind.PING:
        targets = doc.get("targets")
        if not isinstance(targets, list) or not targets:
            raise ConfigError(f"track {name}: targets must be a non-empty list of addresses")
        for target in targets:
            try:
                ip_address(str(target))
            except ValueError:
                raise ConfigError(f"track {name}: target {target!r} is not an address") from None
        quorum = _count(doc, "quorum", 1, name)
        if quorum > len(targets):
            raise ConfigError(f"track {name}: quorum {quorum} > {len(targets)} targets")
        return PingSpec(
            name,
            tuple(str(t) for t in targets),
            interval=_number(doc, "interval", 1.0, name),
            timeout=_number(doc, "timeout", 1.0, name),
            count=_count(doc, "count", 3, name),
            quorum=quorum,
        )
    params = doc.get("params", [])
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise ConfigError(f"track {name}: params must be a list of strings")
    match = doc.get("param_match", "exact" if params else "none")
    if match not in ("none", "exact", "partial", "initial"):
        raise ConfigError(f"track {name}: param_match must be exact, partial or initial")
    quorum_max = doc.get("quorum_max")
    quorum = _count(doc, "quorum", 1, name, low=0)
    if quorum_max is not None:
        quorum_max = _count(doc, "quorum_max", 1, name, low=quorum)
    return ProcessSpec(
        name,
        _text(doc, "process", name),
        params=tuple(params),
        param_match=match,
        full_command=bool(doc.get("full_command", False)),
        quorum=quorum,
        quorum_max=quorum_max,
        interval=_number(doc, "interval", 1.0, name),
    )


def spec_to_json(spec: CheckSpec) -> dict[str, Any]:
    doc = asdict(spec)
    doc["kind"] = spec.kind.value
    for key in ("targets", "params"):
        if key in doc:
            doc[key] = list(doc[key])
    return {k: v for k, v in doc.items() if v is not None}


def encode(message: Mapping[str, Any]) -> bytes:
    """One protocol line (compact JSON, newline-terminated)."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def config_line(specs: Sequence[CheckSpec]) -> bytes:
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError("track: two objects share a name")
    return encode(
        {
            "type": "config",
            "version": PROTOCOL_VERSION,
            "objects": [spec_to_json(s) for s in specs],
        }
    )


def verdict_line(verdict: Verdict, t: float) -> bytes:
    return encode({"type": "verdict", **verdict.to_json(), "t": t})


def decode_line(line: bytes) -> dict[str, Any]:
    """One line as a JSON object; ``ValueError`` for anything else."""
    doc = json.loads(line)
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise ValueError("not a protocol message")
    return doc


def read_lines(fd: int, buffer: bytearray) -> list[bytes] | None:
    """Read what the non-blocking pipe ``fd`` holds into ``buffer``; return the complete
    lines now in it (without their newlines, removed from ``buffer``), or None at the
    end of the stream. Nothing to read yet is ``[]``; any other ``OSError`` is raised.

    Both agents (tracking, health) and their daemon-side clients read their pipes with
    it. Line ends are looked for in the new data only (``buffer`` never holds one when
    this returns): a status line of megabytes arrives in many reads, and searching the
    whole buffer each time would be quadratic.
    """
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return []
    if not data:
        return None
    search = len(buffer)
    buffer += data
    lines: list[bytes] = []
    begin = 0
    while (end := buffer.find(b"\n", search)) >= 0:
        lines.append(bytes(buffer[begin:end]))
        begin = search = end + 1
    if begin:
        del buffer[:begin]
    return lines


class PipeReader:
    """The daemon side of an agent's stdout pipe, for the tracking and health clients.

    A subclass sets ``proc``, ``_buffer`` and ``malformed`` and provides
    :meth:`feed_line` (one complete line) and :meth:`_ended` (the pipe closed
    or failed); :meth:`_readable` is what the event loop calls. A line longer
    than :attr:`MAX_LINE` without its end is dropped and counted.
    """

    PIPE: ClassVar[str] = "agent"
    """What the error log calls the pipe ("health agent", "tracking agent")."""
    MAX_LINE: ClassVar[int] = 1 << 20

    proc: subprocess.Popen[bytes] | None
    _buffer: bytearray
    malformed: int

    def feed_line(self, line: bytes) -> None:
        raise NotImplementedError

    def _ended(self) -> None:
        raise NotImplementedError

    def _readable(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        try:
            lines = read_lines(self.proc.stdout.fileno(), self._buffer)
        except OSError as exc:
            lines = None
            logging.getLogger(type(self).__module__).error("%s pipe: %s", self.PIPE, exc)
        if lines is None:
            self._ended()
            return
        for line in lines:
            self.feed_line(line)
        if len(self._buffer) > self.MAX_LINE:
            self.malformed += 1
            self._buffer.clear()
