"""The daemon's side of tracking: start the agent, read its lines without blocking, call back.

Everything here runs on the daemon's (real-time) event loop and is built not
to delay it: the agent's stdout is a non-blocking pipe watched with
``loop.add_reader``; a wake-up reads what is there (one ``os.read``), splits
lines, decodes each (a verdict line is about 150 bytes of JSON, a few
microseconds) and calls back. Nothing waits for the agent except
:meth:`TrackingAgent.stop`, at shutdown.

Two layers:

* :class:`TrackingAgent`: the process and the pipe (verdicts in, status
  requests out);
* :class:`Tracking`: an agent plus one :class:`~vrrpy.track.model.InstanceTracking`
  per instance; its ``on_change`` callback gets a
  :class:`~vrrpy.track.model.TrackingChange` for each instance whose priority
  or fault set moved, which is what the runtime turns into
  ``VirtualRouter.fault / recover / set_priority``.

Start the agent before the loop turns real-time or from the loop's thread:
:class:`subprocess.Popen` uses ``vfork`` here (no ``preexec_fn``), which costs
about a millisecond whatever the daemon's size, and ``SCHED_RESET_ON_FORK``
(set by :mod:`vrrpy.runtime.realtime`) starts the agent time-shared; the
agent also drops any real-time policy itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import IO, Any

from vrrpy.track.link import LinkState, LinkWatcher, link_verdict
from vrrpy.track.model import InstanceTracking, Kind, Track, TrackingChange, Verdict
from vrrpy.track.protocol import (
    CheckSpec,
    ConfigError,
    InterfaceSpec,
    PipeReader,
    config_line,
    decode_line,
    encode,
)

__all__ = ["AGENT_COMMAND", "Tracking", "TrackingAgent"]

log = logging.getLogger(__name__)

AGENT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "vrrpy.track.agent")
_MAX_LINE = 1 << 20
"""A line longer than this (a broken agent) is dropped rather than buffered for ever."""


class TrackingAgent(PipeReader):
    """The agent child process and its pipe.

    ``on_verdict(verdict, t)``: an object's verdict changed (``t``: when the
    agent saw it, CLOCK_MONOTONIC). ``on_ready()``: every check has started.
    ``on_exit(message)``: the agent ended (its ``error`` message, or its exit
    status), which a daemon treats as a fault of every tracked object (the
    :class:`Tracking` layer does).
    """

    PIPE = "tracking agent"
    MAX_LINE = _MAX_LINE

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        on_verdict: Callable[[Verdict, float], None],
        *,
        on_ready: Callable[[], None] | None = None,
        on_exit: Callable[[str], None] | None = None,
        on_status: Callable[[], None] | None = None,
        command: Sequence[str] = AGENT_COMMAND,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        self.specs = list(specs)
        self._on_status = on_status
        self._config = config_line(self.specs)
        self._on_verdict = on_verdict
        self._on_ready = on_ready
        self._on_exit = on_exit
        self.command = list(command)
        self._stderr = stderr
        self.proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buffer = bytearray()
        self.ready = False
        self.error: str | None = None
        self.status: dict[str, Any] = {}
        """The last answer to :meth:`request_status`: each object's details."""
        self.malformed = 0
        """Lines from the agent that could not be decoded (counted, logged once each)."""
        self._notify = 0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.proc = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a terminal's ^C goes to the daemon, which stops us
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        # A whole config fits the pipe's 64 KiB for hundreds of objects; the agent reads
        # it first thing, so this write never waits on a live agent.
        self.proc.stdin.write(self._config)
        self.proc.stdin.flush()
        os.set_blocking(self.proc.stdin.fileno(), False)
        os.set_blocking(self.proc.stdout.fileno(), False)
        loop.add_reader(self.proc.stdout.fileno(), self._readable)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def request_status(self, notify: bool = True) -> None:
        """Ask for every object's details; the answer lands in :attr:`status`.

        ``notify``: call ``on_status`` when it lands (vrrpyd rewrites its state
        file then). The metrics thread asks with ``notify=False`` at every render
        (a non-blocking write of one line, safe from any thread) and shows the
        answer to the one before. Answers come in the order asked; an answer
        while a notifying request is outstanding is taken as its answer."""
        if self.proc is None or self.proc.stdin is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, ValueError):
            os.write(self.proc.stdin.fileno(), encode({"type": "status"}))
            if notify:
                self._notify += 1

    def feed_line(self, line: bytes) -> None:
        """Handle one line from the agent (public for tests and for other transports)."""
        try:
            message = decode_line(line)
            kind = message["type"]
            if kind == "verdict":
                t = message.get("t", 0.0)
                self._on_verdict(Verdict.from_json(message), float(t))
            elif kind == "ready":
                self.ready = True
                if self._on_ready is not None:
                    self._on_ready()
            elif kind == "status":
                objects = message.get("objects")
                self.status = objects if isinstance(objects, dict) else {}
                if self._notify > 0:
                    self._notify -= 1
                    if self._on_status is not None:
                        self._on_status()
            elif kind == "error":
                self.error = str(message.get("message"))
                log.error("tracking agent refused its configuration: %s", self.error)
            else:
                raise ValueError(f"unknown message type {kind!r}")
        except (ValueError, TypeError) as exc:
            self.malformed += 1
            log.warning("tracking agent: dropped a malformed line (%s)", exc)

    def _ended(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        if self._loop is not None:
            self._loop.remove_reader(self.proc.stdout.fileno())
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self.proc.wait(timeout=0.1)
        message = self.error or f"tracking agent ended (exit status {code})"
        log.error("%s", message)
        if self._on_exit is not None:
            self._on_exit(message)

    def stop(self, grace: float = 2.0) -> None:
        """Close the agent's stdin (it stops its checks and exits); SIGKILL it after ``grace`` s."""
        if self.proc is None:
            return
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if self._loop is not None and self.proc.poll() is None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(self.proc.stdout.fileno())
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=grace)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()


class Tracking:
    """The agent and every instance's tracking model: verdicts in, per-instance changes out.

    ``instances`` maps an instance's name to its base priority and its
    tracks. ``on_change`` is called with each
    :class:`~vrrpy.track.model.TrackingChange` (priority moved, fault entered
    or left, fault reasons changed), with ``now`` from ``loop.time()``. If the
    agent dies, every tracked object is reported down (``"tracking agent
    ended ..."``): an instance with weight-0 tracks faults, which is the safe
    side (keepalived's checkers die with keepalived; here the daemon would go
    on advertising a priority nobody checks any more).
    """

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        instances: Mapping[str, tuple[int, Iterable[Track]]],
        on_change: Callable[[TrackingChange], None],
        *,
        on_status: Callable[[], None] | None = None,
        command: Sequence[str] = AGENT_COMMAND,
        stderr: int | IO[Any] | None = None,
    ) -> None:
        kinds = {s.name: s.kind for s in specs}
        self.instances: dict[str, InstanceTracking] = {}
        for name, (priority, tracks) in instances.items():
            tracks = list(tracks)
            for track in tracks:
                if track.name not in kinds:
                    raise ConfigError(f"instance {name}: tracks unknown object {track.name!r}")
                if kinds[track.name] is not track.kind:
                    raise ConfigError(
                        f"instance {name}: {track.name} is a {kinds[track.name].value},"
                        f" not a {track.kind.value}"
                    )
            self.instances[name] = InstanceTracking(name, priority, tracks)
        self._kinds: dict[str, Kind] = kinds
        self._on_change = on_change
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interfaces = [s for s in specs if isinstance(s, InterfaceSpec)]
        """Watched here, not by the agent: see :meth:`start`."""
        agent_specs = [s for s in specs if not isinstance(s, InterfaceSpec)]
        self._agent_kinds = {s.name: s.kind for s in agent_specs}
        self.agent: TrackingAgent | None = None
        if agent_specs:
            self.agent = TrackingAgent(
                agent_specs,
                self._verdict,
                on_exit=self._agent_ended,
                on_status=on_status,
                on_ready=self.request_status,
                command=command,
                stderr=stderr,
            )
        self.links: LinkWatcher | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch the tracked interfaces from this process, and start the agent for the rest.

        Links are watched here, on the loop: one netlink socket subscribed to
        link changes, read when the kernel has news (rarely), a few
        microseconds of parsing; the first dump is read at once, so every
        instance starts knowing its interfaces (keepalived's own interface is
        always tracked: an agent process only for that, and a FAULT until its
        first verdict, would be a poor bargain). Scripts, files, processes and
        pings, which wait or scan, stay in the agent. No agent is started
        when only interfaces are tracked.
        """
        self._loop = loop
        if self._interfaces:
            links = self.links = LinkWatcher(self._link_changed)
            links.read_blocking_dump()
            now = self._now()
            for spec in self._interfaces:
                state = links.links.get(spec.interface)
                self.apply(link_verdict(spec.name, spec.interface, state), now)
            loop.add_reader(links.fileno(), links.read)
        if self.agent is not None:
            self.agent.start(loop)

    def stop(self) -> None:
        if self.links is not None:
            if self._loop is not None:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_reader(self.links.fileno())
            self.links.close()
            self.links = None
        if self.agent is not None:
            self.agent.stop()

    def request_status(self, notify: bool = True) -> None:
        """Ask the agent for every object's details (last result, output, run time); the
        answer lands in :meth:`status` and, with ``notify``, ``on_status`` is called."""
        if self.agent is not None:
            self.agent.request_status(notify)

    def _link_changed(self, name: str, state: LinkState | None) -> None:
        now = self._now()
        for spec in self._interfaces:
            if spec.interface == name:
                self.apply(link_verdict(spec.name, name, state), now)

    def _now(self) -> float:
        return self._loop.time() if self._loop is not None else 0.0

    def _verdict(self, verdict: Verdict, _t: float) -> None:
        self.apply(verdict, self._now())
        self.request_status()  # the state file then shows the run behind the change

    def apply(self, verdict: Verdict, now: float) -> list[TrackingChange]:
        """Feed one verdict to every instance; call back and return the changes."""
        changes = []
        for instance in self.instances.values():
            change = instance.update(verdict, now)
            if change is not None:
                log.info("%s", change.describe())
                changes.append(change)
                self._on_change(change)
        return changes

    def _agent_ended(self, message: str) -> None:
        now = self._now()
        for name, kind in self._agent_kinds.items():
            # Down for the up/down kinds; a file's value is unknown (up None): weight 0
            # faults, a weighted file adds nothing.
            up = None if kind is Kind.FILE else False
            self.apply(Verdict(name, kind, up, f"{kind.value} {name}: {message}"), now)

    def status(self, pause: Callable[[], None] | None = None) -> dict[str, Any]:
        """For the state file: each instance's tracking, with the agent's details merged in.

        ``pause`` is called every 16 instances (the metrics thread waits there while
        the event loop works: 2,000 instances are some 5 ms of Python)."""
        details = dict(self.agent.status) if self.agent is not None else {}
        if self.links is not None:
            for spec in self._interfaces:
                link = self.links.links.get(spec.interface)
                details[spec.name] = {
                    "up": bool(link and link.up),
                    "operstate": link.operstate if link else "missing",
                }
        out: dict[str, Any] = {}
        for n, (name, instance) in enumerate(list(self.instances.items()), 1):
            if pause is not None and n % 16 == 0:
                pause()
            doc = instance.status()
            for track_name, track in doc["tracks"].items():
                if track_name in details:
                    track["agent"] = details[track_name]
            out[name] = doc
        return out
