"""ucarp's ``--upscript`` / ``--downscript``, for any instance (VRRP now, CARP later).

What ucarp 1.5.2 runs (``src/spawn.c``, ``spawn_handler``; ``src/carp.c``,
``carp_set_state``)::

    execl(script, script, interface, vaddr_arg, xparam, NULL)

so ``UPSCRIPT INTERFACE VIP [XPARAM]``: the interface ucarp runs on, the
virtual address as given to ``--vip`` (no prefix length), and ``--xparam``
only when it was given. ``upscript`` runs on entering MASTER; ``downscript``
on entering BACKUP -- including at startup, from INIT, unless ``--neutral``
-- and at exit (SIGTERM) when not BACKUP.

vrrpy's rules, the same in its terms:

* ``up`` when the instance becomes Master (from Backup, FAULT or INIT);
* ``down`` when it leaves Master (for Backup, FAULT, or INIT at shutdown),
  and on its first Backup at startup (INIT -> Backup) unless ``neutral``,
  so that a service left running by a previous run is stopped;
* the VIP argument is ``vip`` if given, else the instance's first virtual
  address (without its prefix length): one ucarp process has one VIP, and a
  vrrpy instance with several calls the script once, not once per address
  (``VRRPY_ADDRESSES`` lists them all);
* ``extra``: ucarp's ``--xparam``, appended when set.

The command line is split with shell-like quoting (a path with a space needs
quotes; ucarp takes it whole), run without a shell, under ``timeout``, its
output logged, with the ``VRRPY_*`` variables of :mod:`vrrpy.backends.notify`.
ucarp waits for its scripts with its protocol stopped; vrrpy's protocol never
waits for them.
"""

from __future__ import annotations

from typing import Any

from vrrpy.backends.base import Backend, BackendError, TransitionEvent
from vrrpy.backends.notify import (
    BACKEND_MARGIN,
    DEFAULT_TIMEOUT,
    Script,
    ScriptStats,
    event_environment,
    run_script,
)
from vrrpy.core.state import State

__all__ = ["UcarpScripts"]


class UcarpScripts(Backend):
    """ucarp-style ``up`` / ``down`` scripts: ``script INTERFACE VIP [EXTRA]``."""

    def __init__(
        self,
        up: str | Script | None = None,
        down: str | Script | None = None,
        *,
        extra: str | None = None,
        vip: str | None = None,
        neutral: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        user: str | None = None,
        group: str | None = None,
        name: str = "ucarp",
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"{name}: timeout must be positive, got {timeout}")
        self.up = Script.of(up, user=user, group=group)
        self.down = Script.of(down, user=user, group=group)
        self.extra = extra
        self.vip = vip
        self.neutral = neutral
        self.name = name
        self.script_timeout = timeout
        self.timeout = timeout + BACKEND_MARGIN
        self.stats = {"up": ScriptStats(), "down": ScriptStats()}

    def role(self, event: TransitionEvent) -> str | None:
        """``up``, ``down`` or None: which script ``event`` runs (the rules above)."""
        if event.becoming_master:
            return "up"
        if event.leaving_master:
            return "down"
        if event.old is State.INITIALIZE and event.new is State.BACKUP and not self.neutral:
            return "down"
        return None

    def argv(self, script: Script, event: TransitionEvent) -> list[str]:
        vip = self.vip
        if vip is None:
            vip = str(event.addresses[0].ip) if event.addresses else ""
        extra = [event.interface, vip]
        if self.extra is not None:
            extra.append(self.extra)
        return script.argv(extra)

    async def transition(self, event: TransitionEvent) -> None:
        role = self.role(event)
        script = self.up if role == "up" else self.down if role == "down" else None
        if role is None or script is None:
            return
        result = await run_script(
            self.argv(script, event),
            env=event_environment(event, role),
            timeout=self.script_timeout,
            label=f"{role} {event.instance}",
            stats=self.stats[role],
        )
        if not result.ok:
            raise BackendError(
                f"{event.instance}: {role} script {result.describe(self.script_timeout)}"
            )

    def status(self) -> dict[str, Any]:
        return {role: stats.status() for role, stats in self.stats.items()}
