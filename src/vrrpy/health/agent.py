"""The health agent: real-server checks in a child process, changes back over a pipe.

Why a child process. vrrpyd's protocol loop runs at real-time priority and
sends adverts every 10 ms. A thousand HTTP checks a second cost a good part
of a CPU in Python (connects, TLS handshakes, parsing, MD5), all under one
GIL: on the protocol loop, or in a thread of its process, they would delay
adverts. So they run where the tracking agent's checks run
(:mod:`vrrpy.track.agent`): in a child, at normal priority, with its own
loop and GIL, in the daemon's network namespace; the daemon reads one short
line when a real server's health *changes*.

``python -m vrrpy.health.agent`` speaks one JSON object per line
(:func:`vrrpy.track.protocol.encode` / ``decode_line``, as the tracking agent).

Daemon to agent (stdin):

* first line: ``{"type": "config", "version": 1, "checks": [CHECK, ...],
  "weights": {server: weight}, "initial": {server: up}, "initial_weights":
  {server: weight}, "max_in_flight": N}``; each CHECK is
  :func:`vrrpy.health.model.spec_from_json`'s; only ``checks`` is required;
* ``{"type": "status"}``: asks for every server's details (``"details": false``:
  only the runner's counters and how many servers are down);
* end of file: the agent cancels its checks (killing any MISC command) and
  exits 0; the daemon closing the pipe, or dying, ends it.

Agent to daemon (stdout):

* ``{"type": "health", "server", "up", "weight", "reason", "check", "t",
  "initial"}``: one per real server at start (``initial`` true: its state
  before any result, from ``alpha``), then one each time a server's health
  changes; ``t`` is the agent's ``CLOCK_MONOTONIC`` (the daemon's
  ``loop.time()``);
* ``{"type": "ready"}`` after the initial lines;
* ``{"type": "status", "servers": {...}, "runner": {...}}`` for a status request;
* ``{"type": "error", "message"}`` and exit status 2: the configuration was
  refused, nothing started.

The daemon's side is :class:`HealthAgent`: ``Popen`` once, a non-blocking
reader on the loop, the health map kept up to date, and a respawn (carrying
the last health over as ``initial``, and the ``misc_dynamic`` weights as
``initial_weights``) if the agent dies, as keepalived's parent respawns its
checker child.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Final

from vrrpy.health.checks import prepare
from vrrpy.health.model import CheckSpec, HealthConfigError, spec_from_json, spec_to_json
from vrrpy.health.runner import DEFAULT_MAX_IN_FLIGHT, HealthRunner
from vrrpy.health.state import ServerChange, ServerHealth
from vrrpy.track.protocol import PipeReader, decode_line, encode, read_lines

__all__ = [
    "AGENT_COMMAND",
    "PROTOCOL_VERSION",
    "AgentConfig",
    "HealthAgent",
    "config_line",
    "main",
    "parse_config",
]

log = logging.getLogger("vrrpy.health.agent")

PROTOCOL_VERSION: Final = 1
AGENT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "vrrpy.health.agent")
RESPAWN_DELAY: Final = 1.0
"""Seconds between the agent's death and its restart (keepalived respawns its checker too)."""
_MAX_LINE: Final = 64 << 20
"""A longer line (a broken agent) is dropped; a status with 10,000 servers' histories fits."""
_STATUS_PREFIX: Final = b'{"type":"status"'


@dataclass(frozen=True)
class AgentConfig:
    """What the agent's first line carries."""

    checks: tuple[CheckSpec, ...]
    weights: Mapping[str, int] = field(default_factory=dict)
    initial: Mapping[str, bool] = field(default_factory=dict)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    initial_weights: Mapping[str, int] = field(default_factory=dict)


def config_line(config: AgentConfig) -> bytes:
    return encode(
        {
            "type": "config",
            "version": PROTOCOL_VERSION,
            "checks": [spec_to_json(s) for s in config.checks],
            "weights": dict(config.weights),
            "initial": dict(config.initial),
            "initial_weights": dict(config.initial_weights),
            "max_in_flight": config.max_in_flight,
        }
    )


def parse_config(line: bytes) -> AgentConfig:
    """The agent's first line, checked; :class:`HealthConfigError` says what is wrong."""
    try:
        doc = decode_line(line)
    except ValueError as exc:
        raise HealthConfigError(f"health config line: {exc}") from None
    if doc.get("type") != "config" or doc.get("version") != PROTOCOL_VERSION:
        raise HealthConfigError(f"health: expected a version {PROTOCOL_VERSION} config line")
    checks = doc.get("checks")
    if not isinstance(checks, list):
        raise HealthConfigError("health config: checks must be a list")
    weights = doc.get("weights") or {}
    initial = doc.get("initial") or {}
    carried = doc.get("initial_weights") or {}
    for key, table in (("weights", weights), ("initial_weights", carried)):
        if not isinstance(table, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in table.values()
        ):
            raise HealthConfigError(f"health config: {key} must map servers to integers >= 0")
    if not isinstance(initial, dict) or not all(isinstance(v, bool) for v in initial.values()):
        raise HealthConfigError("health config: initial must map servers to booleans")
    limit = doc.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise HealthConfigError("health config: max_in_flight must be an integer >= 1")
    return AgentConfig(tuple(spec_from_json(c) for c in checks), weights, initial, limit, carried)


def _health_line(
    server: str, health: ServerHealth, reason: str, check: str, t: float, initial: bool = False
) -> bytes:
    doc: dict[str, Any] = {
        "type": "health",
        "server": server,
        "up": health.up,
        "weight": health.weight,
        "reason": reason,
        "check": check,
        "t": t,
    }
    if initial:
        doc["initial"] = True
    return encode(doc)


# -- the child ------------------------------------------------------------------------------


def _normal_priority() -> None:
    """Run time-shared whatever the parent was (``SCHED_RESET_ON_FORK`` should already do it)."""
    with contextlib.suppress(OSError, AttributeError):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _more_descriptors(wanted: int) -> None:
    """Raise the soft descriptor limit towards ``wanted`` (each attempt in flight holds one)."""
    with contextlib.suppress(OSError, ValueError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _read_first_line(fd: int) -> tuple[bytes, bytes]:
    """The config line (which may be far larger than a pipe: a thousand checks) and what
    followed it in the same reads."""
    data = bytearray()
    while (end := data.find(b"\n")) < 0:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return bytes(data), b""
        data += chunk
    return bytes(data[:end]), bytes(data[end + 1 :])


async def _serve(
    config: AgentConfig, stdin: int, rest: bytes, emit: Callable[[bytes], None]
) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    buffer = bytearray(rest)

    def changed(change: ServerChange) -> None:
        emit(_health_line(change.server, change.health, change.reason, change.check, change.now))

    runner = HealthRunner(
        config.checks,
        changed,
        weights=config.weights,
        initial=config.initial,
        initial_weights=config.initial_weights,
        max_in_flight=config.max_in_flight,
    )

    def handle_lines(lines: list[bytes]) -> None:
        for line in lines:
            try:
                request = decode_line(line)
            except ValueError:
                log.warning("ignored a malformed request line")
                continue
            if request["type"] == "status":
                status = runner.status()
                if request.get("details") is False:
                    servers = status.pop("servers")
                    down = sum(1 for s in servers.values() if not s["up"])
                    status["summary"] = {"servers": len(servers), "down": down}
                emit(encode({"type": "status", **status}))

    def readable() -> None:
        lines = read_lines(stdin, buffer)
        if lines is None:
            if not done.done():
                done.set_result(None)
            return
        handle_lines(lines)

    runner.start()
    now = loop.time()
    for server, state in runner.servers.items():
        why = "initial state: up until a check fails"
        if not state.health.up:
            why = "initial state: down until its checks succeed"
        emit(_health_line(server, state.health, why, "", now, initial=True))
    emit(encode({"type": "ready"}))
    # Requests that came with the configuration, before the loop reads the pipe.
    *early, rest = bytes(buffer).split(b"\n")
    buffer[:] = rest
    handle_lines(early)
    os.set_blocking(stdin, False)
    loop.add_reader(stdin, readable)
    try:
        await done
    finally:
        loop.remove_reader(stdin)
        await runner.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m vrrpy.health.agent``."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="vrrpy-health-agent: %(message)s"
    )
    # A MISC command's failure is a check result, logged once as a transition: not
    # every run's warning and output lines from the script runner.
    logging.getLogger("vrrpy.backends.notify").setLevel(logging.ERROR)
    _normal_priority()
    stdout = sys.stdout.buffer

    def emit(line: bytes) -> None:
        stdout.write(line)
        stdout.flush()

    try:
        first, rest = _read_first_line(0)
        config = parse_config(first)
        for spec in config.checks:
            prepare(spec)  # users of MISC commands, TLS CA files: refused now, not at run time
    except (HealthConfigError, OSError) as exc:
        emit(encode({"type": "error", "message": str(exc)}))
        return 2
    _more_descriptors(config.max_in_flight + 256)
    try:
        asyncio.run(_serve(config, 0, rest, emit))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


# -- the daemon's side ----------------------------------------------------------------------


class HealthAgent(PipeReader):
    """The agent child and its pipe, on the daemon's loop: the health map and its changes.

    ``on_change(change)`` is called for each real server whose health moved
    (:class:`~vrrpy.health.state.ServerChange`; ``now`` is the agent's
    observation time, the loop's clock). The map is :attr:`health`, complete
    once :attr:`ready` (``on_ready``). ``on_exit(message)``: the agent ended;
    the health map is kept as it was (an empty pool because a checker died
    would be an outage of its own) and the agent is started again after
    ``respawn`` seconds (None: not), each server starting from its last
    state. A refused configuration (exit status 2) is not respawned.

    Everything here is non-blocking except :meth:`start` (one ``Popen``,
    ``vfork``: about a millisecond) and :meth:`stop`.
    """

    PIPE = "health agent"
    MAX_LINE = _MAX_LINE

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        on_change: Callable[[ServerChange], None] | None = None,
        *,
        weights: Mapping[str, int] | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        on_ready: Callable[[], None] | None = None,
        on_exit: Callable[[str], None] | None = None,
        on_status: Callable[[], None] | None = None,
        respawn: float | None = RESPAWN_DELAY,
        command: Sequence[str] = AGENT_COMMAND,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        self.specs = tuple(specs)
        self.weights = dict(weights or {})
        self.max_in_flight = max_in_flight
        self._on_change = on_change
        self._on_ready = on_ready
        self._on_exit = on_exit
        self._on_status = on_status
        self.respawn = respawn
        self.command = list(command)
        self._stderr = stderr
        self.proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self._pending = b""
        self._respawn_handle: asyncio.TimerHandle | None = None
        self._stopping = False
        self.health: dict[str, ServerHealth] = {}
        self.ready = False
        self.error: str | None = None
        self._status_line = b""
        self._status: dict[str, Any] | None = {}
        self.restarts = 0
        self.malformed = 0

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._stopping = False
        self._spawn()

    def _spawn(self) -> None:
        assert self._loop is not None
        self._respawn_handle = None
        self.ready = False
        config = AgentConfig(
            self.specs,
            self.weights,
            {server: h.up for server, h in self.health.items()},
            self.max_in_flight,
            {s: h.weight for s, h in self.health.items() if h.up and h.weight is not None},
        )
        try:
            self.proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,  # a terminal's ^C goes to the daemon, which stops us
            )
        except OSError as exc:
            if self.restarts == 0 and self.proc is None:
                raise  # the first start: the caller hears it
            log.error("health agent: could not start: %s", exc)
            if self.respawn is not None and not self._stopping:
                self._respawn_handle = self._loop.call_later(self.respawn, self._spawn)
            return
        assert self.proc.stdin is not None and self.proc.stdout is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._buffer.clear()
        # A thousand checks make a config line of a few hundred KiB, more than the pipe
        # holds: write what fits, the rest when the agent has read it (never wait here).
        self._pending = config_line(config)
        self._write_pending()
        self._loop.add_reader(self.proc.stdout.fileno(), self._readable)

    def _write_pending(self) -> None:
        assert self._loop is not None and self.proc is not None and self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        try:
            while self._pending:
                n = os.write(fd, self._pending)
                self._pending = self._pending[n:]
        except BlockingIOError:
            self._loop.add_writer(fd, self._writable)
            return
        except OSError:
            self._pending = b""  # the agent is gone: its end of file will tell
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(fd)

    def _writable(self) -> None:
        self._write_pending()

    def request_status(self, details: bool = True) -> None:
        """Ask for every server's details (``details`` False: the runner's counters and how
        many servers are down); the answer lands in :attr:`status`."""
        if self.proc is None or self.proc.stdin is None or self._pending:
            return
        request = {"type": "status"} if details else {"type": "status", "details": False}
        with contextlib.suppress(BlockingIOError, BrokenPipeError, ValueError, OSError):
            os.write(self.proc.stdin.fileno(), encode(request))

    @property
    def status_line(self) -> bytes:
        """The last status answer as the agent wrote it (one JSON object; b"" before any)."""
        return self._status_line

    @property
    def status(self) -> dict[str, Any]:
        """The last status answer, decoded on first access, not on the loop that read it:
        with a thousand servers' histories it is megabytes of JSON, tens of milliseconds
        to parse, which a state-file writer in a worker thread can afford and the
        protocol loop cannot."""
        if self._status is None:
            try:
                doc = decode_line(self._status_line)
            except ValueError:
                doc = {}
            self._status = {k: v for k, v in doc.items() if k != "type"}
        return self._status

    def feed_line(self, line: bytes) -> None:
        """Handle one line from the agent (public for tests and other transports)."""
        if line.startswith(_STATUS_PREFIX):  # kept raw: see :attr:`status`
            self._status_line, self._status = line, None
            if self._on_status is not None:
                self._on_status()
            return
        try:
            message = decode_line(line)
            kind = message["type"]
            if kind == "health":
                self._health(message)
            elif kind == "ready":
                self.ready = True
                if self._on_ready is not None:
                    self._on_ready()
            elif kind == "error":
                self.error = str(message.get("message"))
                log.error("health agent refused its configuration: %s", self.error)
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except (ValueError, TypeError, KeyError) as exc:
            self.malformed += 1
            log.warning("health agent: dropped a malformed line (%s)", exc)

    def _health(self, message: Mapping[str, Any]) -> None:
        server = message["server"]
        up, weight = message["up"], message.get("weight")
        if not isinstance(server, str) or not isinstance(up, bool):
            raise ValueError("bad health line")
        if weight is not None and (not isinstance(weight, int) or isinstance(weight, bool)):
            raise ValueError("bad weight")
        health = ServerHealth(up, weight)
        old = self.health.get(server)
        self.health[server] = health
        if old is None or old == health:
            return  # a first report fills the map (ready says when it is whole)
        change = ServerChange(
            server,
            health,
            old,
            str(message.get("reason", "")),
            float(message.get("t", 0.0)),
            str(message.get("check", "")),
        )
        if self._on_change is not None:
            self._on_change(change)

    def _ended(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self.proc.stdout.fileno())
            if self.proc.stdin is not None:
                with contextlib.suppress(ValueError, OSError):
                    loop.remove_writer(self.proc.stdin.fileno())
        self.ready = False
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.proc.wait(timeout=0.1)
        self._close_pipes()
        message = self.error or f"health agent ended (exit status {code})"
        log.error("%s", message)
        if self._on_exit is not None:
            self._on_exit(message)
        if not self._stopping and self.respawn is not None and code != 2 and loop is not None:
            self.restarts += 1
            self._respawn_handle = loop.call_later(self.respawn, self._spawn)

    def _close_pipes(self) -> None:
        assert self.proc is not None
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def stop(self, grace: float = 2.0) -> None:
        """Close the agent's stdin (it stops its checks and exits); SIGKILL it after ``grace`` s."""
        self._stopping = True
        if self._respawn_handle is not None:
            self._respawn_handle.cancel()
            self._respawn_handle = None
        if self.proc is None:
            return
        proc = self.proc
        if self._loop is not None:
            for pipe, remove in (
                (proc.stdout, self._loop.remove_reader),
                (proc.stdin, self._loop.remove_writer),
            ):
                if pipe is not None and not pipe.closed:
                    with contextlib.suppress(ValueError, OSError):
                        remove(pipe.fileno())
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
        self._close_pipes()


if __name__ == "__main__":
    sys.exit(main())
