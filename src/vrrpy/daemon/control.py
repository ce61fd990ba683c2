"""vrrpyd's control socket (``[global] control_socket``): what vrrpctl reads, and events.

The protocol and the serving thread are :mod:`vrrpy.observe.control`'s; this
module builds the answers from the daemon's parts and turns each transition
into an event.
"""

from __future__ import annotations

import grp
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import vrrpy
from vrrpy.daemon.metrics import live_instances
from vrrpy.observe.control import ControlServer, EventFeed
from vrrpy.observe.show import frr_json
from vrrpy.runtime import realtime

if TYPE_CHECKING:
    from vrrpy.core.actions import Transition
    from vrrpy.runtime.gate import LoopGate
    from vrrpy.runtime.instance import InstanceRunner
    from vrrpy.runtime.runtime import Runtime

__all__ = ["start_control", "transition_event"]


def transition_event(runner: InstanceRunner, transition: Transition) -> dict[str, Any]:
    """One transition as ``vrrpctl events`` prints it (built on the loop: a small dict)."""
    spec = runner.spec
    router = runner.router
    return {
        "event": "transition",
        "time": time.time(),
        "instance": spec.name,
        "from": transition.old.value,
        "to": transition.new.value,
        "code": transition.code,
        "reason": transition.reason,
        "priority": router.priority if router is not None else spec.priority,
        "vrid": spec.vrid,
        "interface": spec.interface,
        "protocol": spec.protocol,
    }


def start_control(
    path: str,
    group: str | None,
    runtime: Runtime,
    feed: EventFeed,
    extra: Callable[[Callable[[], None]], Mapping[str, Any]],
    config_path: str,
    gate: LoopGate | None = None,
) -> ControlServer:
    """Bind ``path`` and serve it from a worker thread (``OSError``: not bound).

    ``extra(pause)`` adds to the ``daemon`` part of a status answer (tracking, sync
    groups, ...), read from the serving thread (it calls ``pause`` every few
    instances: the thread waits there while the event loop works).
    """
    started = time.time()
    rt = realtime.current()
    server: ControlServer

    def status() -> tuple[dict[str, Any], dict[str, Any]]:
        instances = live_instances(runtime, server.pause)
        runners = runtime.instances
        views = {name: frr_json(runners.get(name), st) for name, st in instances.items()}
        daemon: dict[str, Any] = {
            "pid": os.getpid(),
            "version": vrrpy.__version__,
            "start_time": started,
            "config": config_path,
            "realtime": rt.status() if rt is not None else None,
        }
        daemon.update(extra(server.pause))
        return views, daemon

    gid = grp.getgrnam(group).gr_gid if group is not None else None
    server = ControlServer(
        path, status, feed, group=gid, thread_init=realtime.worker_initializer, gate=gate
    )
    server.start()
    return server
