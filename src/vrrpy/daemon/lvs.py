"""vrrpyd's ``[[virtual_server]]`` tables at run time: IPVS pools and their health agent.

:class:`Lvs` is built from a checked :class:`~vrrpy.daemon.config.DaemonConfig`:

* one :class:`InstanceIpvsBackend` (an :class:`~vrrpy.ipvs.backend.IpvsBackend`)
  per instance with virtual servers, placed in that instance's backends
  (:meth:`Lvs.attach`) **after the user's** ``backends`` **and before its notify
  scripts** (keepalived's ``notify_*``, ucarp's scripts, the notify FIFO):
  becoming Master the pipeline runs its backends in order, so the pool is in
  place before ``notify_master`` starts a service; leaving Master it runs them
  in reverse, so ``notify_backup`` stops the service before the pool is
  withdrawn (``on_backup = "remove"``), and the same at stop;
* one :class:`~vrrpy.health.agent.HealthAgent` for every check of every
  instance (:meth:`Lvs.start`), whose changes go to the right backend's
  ``set_health`` on the event loop's thread (the agent reads its pipe with
  ``loop.add_reader``, so its callbacks already run there; a call from any
  other thread is handed over with ``call_soon_threadsafe``).

Real servers without a checker are reported alive at once (keepalived: a real
server without checkers is alive, ``alpha`` or not).

A ``MISC_CHECK`` with ``misc_dynamic`` moves a real server's weight: the agent
reports each server's weight with its health (keepalived's arithmetic, from
the configured weights it is given), and the backend installs that weight
while the server is up (``set_health(..., weight=)``); a weight of None gives
the server its configured weight back.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vrrpy.daemon.ipvsconfig import InstanceIpvs
from vrrpy.health.agent import AGENT_COMMAND, HealthAgent
from vrrpy.health.state import ServerChange
from vrrpy.ipvs.backend import IpvsBackend, Kernel
from vrrpy.ipvs.model import DestKey, ServiceKey

if TYPE_CHECKING:
    from vrrpy.daemon.config import DaemonConfig

__all__ = ["SCRIPT_TYPES", "InstanceIpvsBackend", "Lvs"]

logger = logging.getLogger("vrrpyd.lvs")

SCRIPT_TYPES = ("notify", "ucarp", "fifo")
"""The backend types the IPVS backend goes before (see the module)."""


class InstanceIpvsBackend(IpvsBackend):
    """One instance's pool, with each real server's health in its status (the state file)."""

    def __init__(self, spec: InstanceIpvs, kernel: Callable[[], Kernel] | None = None) -> None:
        super().__init__(
            spec.services,
            name="ipvs",
            on_leave=spec.on_backup,
            install=spec.install,
            sync_interface=spec.sync_interface,
            syncid=spec.syncid,
            sync_options=dict(spec.sync_options),
            kernel=kernel,
        )
        self.spec = spec
        self._servers: dict[str, dict[str, Any]] = {}
        for key, (service, _) in spec.targets.items():
            self._servers[key] = {
                "service": str(service),
                "up": None,
                "weight": None,
                "reason": "",
                "since": None,
            }
        for service, dest in spec.unchecked:
            self.set_health(dest, True, service)

    def record(
        self,
        key: str,
        service: ServiceKey,
        dest: DestKey,
        up: bool,
        reason: str,
        weight: int | None = None,
    ) -> None:
        """A check's verdict on one real server (on the event loop's thread); ``weight``:
        a ``misc_dynamic`` check's (None: the configured weight)."""
        entry = self._servers.setdefault(key, {"service": str(service)})
        weight = weight if up else None
        if entry.get("up") is not up:
            entry.update(up=up, reason=reason, since=round(time.time(), 3))
        elif entry.get("weight") != weight:
            entry["reason"] = reason  # the check that moved the weight
        entry["weight"] = weight
        self.set_health(dest, up, service, weight)

    def status(self) -> dict[str, Any]:
        """The pool's status and each real server's verdict, never its check history.

        This is read on the protocol loop (the state file's snapshot) and by
        the metrics and vrrpctl threads, whose every GIL-holding C call the
        loop waits for: with a thousand servers the histories are a megabyte
        of JSON, 15 to 23 ms to decode and 26 ms to encode in one call, and a
        Master that merged them here stopped advertising for 40 ms at each
        SIGUSR1 (bench/health_bench.py). They go to the state file as the
        agent wrote them (:meth:`Lvs.raw_checks`), never decoded.
        """
        doc = super().status()
        doc["health"] = {key: dict(entry) for key, entry in self._servers.items()}
        return doc


class Lvs:
    """The IPVS backends of a configuration and the health agent that feeds them."""

    def __init__(
        self,
        config: DaemonConfig,
        kernel: Callable[[], Kernel] | None = None,
        command: Sequence[str] = AGENT_COMMAND,
    ) -> None:
        self.backends: dict[str, InstanceIpvsBackend] = {
            name: InstanceIpvsBackend(spec, kernel) for name, spec in config.virtual_servers.items()
        }
        self.targets: dict[str, tuple[str, ServiceKey, DestKey]] = {}
        for name, spec in config.virtual_servers.items():
            for key, (service, dest) in spec.targets.items():
                self.targets[key] = (name, service, dest)
        self.checks = tuple(c for spec in config.virtual_servers.values() for c in spec.checks)
        self.weights = {
            key: weight
            for spec in config.virtual_servers.values()
            for key, weight in spec.weights.items()
        }
        """Each checked server's configured weight: the agent's base for ``misc_dynamic``."""
        self.command = list(command)
        self.agent: HealthAgent | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None
        self._on_change: Callable[[], None] | None = None

    def attach(self, backends: dict[str, list[Any]], config: DaemonConfig) -> None:
        """Put each instance's IPVS backend among its built backends: after the user's
        ``backends``, before its notify scripts (see the module)."""
        for name, ipvs in self.backends.items():
            specs = config.instance_backends.get(name, ())
            built = backends.setdefault(name, [])
            index = next(
                (i for i, spec in enumerate(specs) if spec.type in SCRIPT_TYPES), len(built)
            )
            built.insert(index, ipvs)

    def start(
        self, loop: asyncio.AbstractEventLoop, on_change: Callable[[], None] | None = None
    ) -> None:
        """Start the health agent (if there is any check); ``on_change`` after each change
        (the daemon rewrites its state file)."""
        self._loop = loop
        self._thread = threading.get_ident()
        self._on_change = on_change
        if not self.checks:
            return
        self.agent = HealthAgent(
            self.checks,
            self._changed,
            weights=self.weights,
            on_ready=self._ready,
            on_status=on_change,
            command=self.command,
        )
        self.agent.start(loop)
        logger.info(
            "health agent started (pid %s): %d check(s) of %d real server(s)",
            self.agent.pid,
            len(self.checks),
            len(self.targets),
        )

    def raw_checks(self) -> bytes | None:
        """The agent's last status answer (every check's recent runs) as the JSON line it
        wrote, or None before the first: for the state file, copied in undecoded."""
        line = self.agent.status_line if self.agent is not None else b""
        return line.strip() or None

    def _ready(self) -> None:
        """The agent's map is whole (at start and after a respawn): give every backend all of it."""
        assert self.agent is not None
        for key, health in self.agent.health.items():
            self._apply(key, health.up, "initial state", health.weight)
        if self._on_change is not None:
            self._on_change()

    def _changed(self, change: ServerChange) -> None:
        if self._loop is not None and threading.get_ident() != self._thread:
            self._loop.call_soon_threadsafe(self._changed, change)
            return
        target = self.targets.get(change.server)
        if target is not None:
            weight = change.health.weight
            logger.info(
                "%s: real server %s %s%s: %s",
                target[0],
                change.server.split(" -> ")[-1],
                "up" if change.health.up else "down",
                f" (weight {weight})" if change.health.up and weight is not None else "",
                change.reason,
            )
        self._apply(change.server, change.health.up, change.reason, change.health.weight)
        if self._on_change is not None:
            self._on_change()

    def _apply(self, key: str, up: bool, reason: str, weight: int | None = None) -> None:
        target = self.targets.get(key)
        if target is None:
            return
        name, service, dest = target
        self.backends[name].record(key, service, dest, up, reason, weight)

    def request_status(self) -> None:
        """Ask the agent for every check's history (SIGUSR1); the answer rewrites the state file."""
        if self.agent is not None:
            self.agent.request_status()

    def summary(self) -> dict[str, Any]:
        """The agent itself, for the state file."""
        agent = self.agent
        if agent is None:
            return {"checks": 0}
        down = sum(1 for h in agent.health.values() if not h.up)
        return {
            "pid": agent.pid,
            "ready": agent.ready,
            "checks": len(self.checks),
            "servers": len(agent.health),
            "down": down,
            "restarts": agent.restarts,
            "error": agent.error,
        }

    def stop(self) -> None:
        """Stop the health agent (the pools stay as the backends' last transitions left them)."""
        if self.agent is not None:
            self.agent.stop()
