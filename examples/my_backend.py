"""A backend of your own, in a few lines: log each transition to a file and keep a
"role" file that other programs read (as `cat /run/vrrpy-VI_1.role`).

As a library:   runtime.set_backends("VI_1", [RoleFile("/run")])
From vrrpyd:    [[backend]] name = "role", type = "python",
                object = "my_backend:RoleFile", params = { directory = "/run" }
                (with this file's directory on PYTHONPATH), and backends = ["role"].
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from vrrpy.backends import Backend, TransitionEvent


class RoleFile(Backend):
    name = "role"
    timeout = 5.0

    def __init__(self, directory: str = "/run") -> None:
        self.directory = Path(directory)

    async def transition(self, event: TransitionEvent) -> None:
        # File I/O off the event loop: a backend must never hold the protocol's loop.
        await asyncio.to_thread(self._write, event)

    def _write(self, event: TransitionEvent) -> None:
        (self.directory / f"vrrpy-{event.instance}.role").write_text(event.new.value + "\n")
        with open(self.directory / "vrrpy-transitions.log", "a") as log:
            log.write(
                f"{event.at:.3f} {event.instance} {event.old.value} -> {event.new.value}"
                f" ({event.reason}) priority {event.priority}\n"
            )
