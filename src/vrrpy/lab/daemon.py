"""vrrpyd in lab hosts: configuration files, processes, state files, waiting.

The one way the runtime tests, the live demo, the benchmarks and the interop
suite start and observe a vrrpyd.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from vrrpy.lab.netns import Host


def render(
    state_file: Path,
    instances: list[Mapping[str, Any]],
    log_level: str = "info",
    tables: Mapping[str, list[Mapping[str, Any]]] | None = None,
    global_: Mapping[str, Any] | None = None,
) -> str:
    """A vrrpyd TOML file; ``tables``: other arrays of tables (``track_script``, ``sync_group``,
    ...), each a list of tables, written after the instances; ``global_``: more ``[global]``
    keys."""
    document: dict[str, Any] = {
        "global": {"state_file": str(state_file), "log_level": log_level, **(global_ or {})},
        "instance": [dict(inst) for inst in instances],
    }
    for kind, entries in (tables or {}).items():
        document[kind] = [dict(entry) for entry in entries]
    if not document["instance"]:
        del document["instance"]
    return tomli_w.dumps(document)


class Daemon:
    """One vrrpyd process in one lab host, with its own directory, file and log."""

    def __init__(
        self,
        host: Host,
        workdir: Path,
        instances: list[Mapping[str, Any]],
        tables: Mapping[str, list[Mapping[str, Any]]] | None = None,
        global_: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = host
        self.tables = tables
        self.global_ = global_
        self.dir = workdir / host.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "vrrpyd.toml"
        self.state_file = self.dir / "state.json"
        self.log = self.dir / "vrrpyd.log"
        self.write(instances)
        self.proc: subprocess.Popen[bytes] | None = None

    def write(self, instances: list[Mapping[str, Any]]) -> None:
        self.conf.write_text(
            render(self.state_file, instances, tables=self.tables, global_=self.global_)
        )

    def start(self) -> Daemon:
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = self.host.popen(
            [sys.executable, "-m", "vrrpy.daemon", "-c", str(self.conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(lambda: self.state_file.exists() or self.proc.poll() is not None, 10)  # type: ignore[union-attr]
        if self.proc.poll() is not None:
            raise AssertionError(f"vrrpyd exited: {self.log.read_text()}")
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no priority 0, no cleanup."""
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(5)

    def terminate(self) -> int:
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        return self.proc.wait(10)

    def state(self) -> dict[str, Any]:
        for _ in range(50):
            try:
                return json.loads(self.state_file.read_text())  # type: ignore[no-any-return]
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.02)
        raise AssertionError("no state file")

    def refresh(self) -> None:
        """Ask for a fresh state file (SIGUSR1) and wait until it is rewritten."""
        before = self.state_file.stat().st_mtime_ns
        self.signal(signal.SIGUSR1)
        wait_for(lambda: self.state_file.stat().st_mtime_ns != before, 3, step=0.005)

    def instance(self, name: str = "VI_1") -> dict[str, Any]:
        return self.state()["instances"][name]  # type: ignore[no-any-return]

    def addresses(self, dev: str = "eth0") -> str:
        return self.host.run(["ip", "-o", "addr", "show", "dev", dev]).stdout


def wait_for(predicate: Callable[[], object], timeout: float, step: float = 0.02) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds; return its last truth."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


@contextlib.contextmanager
def running(daemons: Sequence[Daemon]) -> Iterator[Sequence[Daemon]]:
    """Start each daemon in turn; on the way out, SIGTERM every one still running."""
    try:
        for daemon in daemons:
            daemon.start()
        yield daemons
    finally:
        for daemon in daemons:
            if daemon.proc is not None and daemon.proc.poll() is None:
                daemon.terminate()
