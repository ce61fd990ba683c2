"""The tracking agent: a child process that runs every check and reports verdicts on stdout.

``python -m vrrpy.track.agent`` reads its configuration from stdin and speaks
the line protocol of :mod:`vrrpy.track.protocol`. It runs at normal
priority (it drops any real-time policy it was started with) in the network
namespace it was started in, with one asyncio loop for everything:

* interfaces: one rtnetlink socket (:mod:`vrrpy.track.link`);
* scripts: one task each (:mod:`vrrpy.track.script`), children reaped through
  pidfds (no thread per child);
* files: one inotify descriptor (:mod:`vrrpy.track.file`);
* ping groups: raw sockets (:mod:`vrrpy.track.ping`);
* processes: one shared /proc scan (:mod:`vrrpy.track.process`).

It exits 0 when its stdin ends (the daemon closed it, or died), after
killing any script still running, and 2 after an ``error`` line when the
configuration is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from vrrpy.track.file import FileCheck, Inotify
from vrrpy.track.link import LinkState, LinkWatcher, link_verdict
from vrrpy.track.model import Verdict
from vrrpy.track.ping import PingCheck
from vrrpy.track.process import ProcessScanner
from vrrpy.track.protocol import (
    PROTOCOL_VERSION,
    CheckSpec,
    ConfigError,
    FileSpec,
    InterfaceSpec,
    PingSpec,
    ProcessSpec,
    ScriptSpec,
    decode_line,
    encode,
    read_lines,
    spec_from_json,
    verdict_line,
)
from vrrpy.track.script import ScriptCheck

__all__ = ["Agent", "main", "parse_config"]

log = logging.getLogger("vrrpy.track.agent")


def parse_config(line: bytes) -> list[CheckSpec]:
    """The agent's first input line, checked; :class:`ConfigError` says what is wrong."""
    try:
        doc = decode_line(line)
    except ValueError as exc:
        raise ConfigError(f"config line: {exc}") from None
    if doc.get("type") != "config" or doc.get("version") != PROTOCOL_VERSION:
        raise ConfigError(f"expected a version {PROTOCOL_VERSION} config line")
    objects = doc.get("objects")
    if not isinstance(objects, list):
        raise ConfigError("config: objects must be a list")
    specs = [spec_from_json(o) if isinstance(o, dict) else _bad(o) for o in objects]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError("config: two objects share a name")
    return specs


def _bad(value: object) -> CheckSpec:
    raise ConfigError(f"config: object {value!r} is not a table")


class Agent:
    """Every check of one configuration, on the running loop; ``emit`` gets each line to send."""

    def __init__(self, specs: Sequence[CheckSpec], emit: Callable[[bytes], None]) -> None:
        self.specs = list(specs)
        self._emit = emit
        self._sent: dict[str, tuple[bool | None, int, str]] = {}
        self.scripts = [ScriptCheck(s, self.report) for s in specs if isinstance(s, ScriptSpec)]
        self.interfaces = [s for s in specs if isinstance(s, InterfaceSpec)]
        file_specs = [s for s in specs if isinstance(s, FileSpec)]
        self.inotify = Inotify() if file_specs else None
        self.files = [FileCheck(s, self.inotify, self.report) for s in file_specs if self.inotify]
        base = os.getpid() << 4
        self.pings = [
            PingCheck(s, self.report, base + i)
            for i, s in enumerate(s for s in specs if isinstance(s, PingSpec))
        ]
        process_specs = [s for s in specs if isinstance(s, ProcessSpec)]
        self.processes = ProcessScanner(process_specs, self.report) if process_specs else None
        self.links: LinkWatcher | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def report(self, verdict: Verdict) -> None:
        """Send ``verdict`` if it differs from the last one sent for its object."""
        key = (verdict.up, verdict.value, verdict.reason)
        if self._sent.get(verdict.name) == key:
            return
        self._sent[verdict.name] = key
        log.info("%s", verdict.reason)
        self._emit(verdict_line(verdict, time.monotonic()))

    def _link_changed(self, name: str, state: LinkState | None) -> None:
        for spec in self.interfaces:
            if spec.interface == name:
                self.report(link_verdict(spec.name, name, state))

    def start(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        if self.interfaces:
            self.links = LinkWatcher(self._link_changed)
            self.links.read_blocking_dump()
            for spec in self.interfaces:
                self.report(
                    link_verdict(spec.name, spec.interface, self.links.links.get(spec.interface))
                )
            loop.add_reader(self.links.fileno(), self.links.read)
        if self.inotify is not None:
            loop.add_reader(self.inotify.fileno(), self._inotify_readable)
        for check in self.files:
            check.start()
        if self.processes is not None:
            self.processes.start()
        for ping in self.pings:
            ping.start()
        for script in self.scripts:
            script.start()
        self._emit(encode({"type": "ready"}))

    def _inotify_readable(self) -> None:
        assert self.inotify is not None
        for wd, mask, name in self.inotify.read():
            for check in self.files:
                if check.wd == wd:
                    check.event(mask, name)

    def status(self) -> dict[str, Any]:
        objects: dict[str, Any] = {}
        for spec in self.interfaces:
            state = self.links.links.get(spec.interface) if self.links else None
            verdict = link_verdict(spec.name, spec.interface, state)
            objects[spec.name] = {"kind": "interface", "up": verdict.up, "reason": verdict.reason}
        for script in self.scripts:
            objects[script.spec.name] = script.status()
        for file in self.files:
            objects[file.spec.name] = file.status()
        for ping in self.pings:
            objects[ping.spec.name] = ping.status()
        if self.processes is not None:
            for name in self.processes.specs:
                objects[name] = self.processes.status(name)
        return objects

    def stop(self) -> None:
        for script in self.scripts:
            script.stop()
        for ping in self.pings:
            ping.stop()
        if self.processes is not None:
            self.processes.stop()
        if self._loop is not None:
            if self.links is not None:
                self._loop.remove_reader(self.links.fileno())
            if self.inotify is not None:
                self._loop.remove_reader(self.inotify.fileno())
        if self.links is not None:
            self.links.close()
        if self.inotify is not None:
            self.inotify.close()


def _normal_priority() -> None:
    """Run time-shared whatever the parent was (``SCHED_RESET_ON_FORK`` should already do it)."""
    with contextlib.suppress(OSError, AttributeError):
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


async def _serve(agent: Agent, stdin: int, emit: Callable[[bytes], None]) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        lines = read_lines(stdin, buffer)
        if lines is None:
            if not done.done():
                done.set_result(None)
            return
        for line in lines:
            try:
                request = decode_line(line)
            except ValueError:
                log.warning("ignored a malformed request line")
                continue
            if request["type"] == "status":
                emit(encode({"type": "status", "objects": agent.status()}))

    os.set_blocking(stdin, False)
    loop.add_reader(stdin, readable)
    try:
        agent.start()
        await done
    finally:
        loop.remove_reader(stdin)
        agent.stop()


def _read_first_line(fd: int) -> bytes:
    """The config line, read byte-exact so that nothing after it is consumed by a buffer."""
    chunks = bytearray()
    while not chunks.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            break
        chunks += byte
    return bytes(chunks)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m vrrpy.track.agent``."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="vrrpy-track-agent: %(message)s"
    )
    _normal_priority()
    stdout = sys.stdout.buffer

    def emit(line: bytes) -> None:
        stdout.write(line)
        stdout.flush()

    try:
        # Everything that can be refused (users, groups, raw sockets, inotify) is
        # resolved here, before any check starts.
        agent = Agent(parse_config(_read_first_line(0)), emit)
    except (ConfigError, OSError) as exc:
        emit(encode({"type": "error", "message": str(exc)}))
        return 2
    if sys.version_info < (3, 12):
        # Reap script children through pidfds on the loop; the default watcher before
        # 3.12 starts one thread per child (100 scripts a second: 100 threads).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    try:
        asyncio.run(_serve(agent, 0, emit))
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
