"""Scripts at every phase: check before standing, prepare before the addresses, run after.

keepalived's notify scripts (:class:`~vrrpy.backends.notify.NotifyScripts`)
only report a transition that has happened. :class:`ScriptBackend` gives a
script every phase a Python backend has, for the "before becoming Master,
check X; on becoming Master, do Y; on leaving, undo Y" a shell user writes:

* ``check`` (every ``check_interval`` seconds, in every state): a non-zero
  exit holds the instance in FAULT, so it never stands for Master (a disk
  not mounted, a replica lagging);
* ``prepare`` (becoming Master, before the virtual addresses are added): a
  non-zero exit is a refusal, the node stays out of Master, its output is
  the reason (``docs/backends.md``);
* ``master``, ``backup``, ``fault``, ``stop`` and ``notify``: as
  keepalived's ``notify_*`` (the same arguments: none for the state's own
  script, ``TYPE NAME STATE PRIORITY`` for ``notify``).

Every script is started the way notify scripts are (``posix_spawn`` from a
worker thread, never a fork on the loop), gets the ``VRRPY_*`` environment,
runs under ``timeout`` (its process group killed then), and its output goes
to the log.
"""

from __future__ import annotations

from typing import Any

from vrrpy.backends.base import Backend, Refused, TransitionEvent
from vrrpy.backends.notify import (
    BACKEND_MARGIN,
    DEFAULT_TIMEOUT,
    NotifyScripts,
    RunResult,
    Script,
    ScriptStats,
    event_environment,
    run_script,
)
from vrrpy.core.state import State

__all__ = ["ScriptBackend"]


class ScriptBackend(Backend):
    """Command lines for ``check``, ``prepare`` and each state (see the module).

    Each is a command line (split like a shell would, run without one unless
    ``shell``) or a :class:`~vrrpy.backends.notify.Script`. ``timeout`` bounds
    each run (seconds); ``check_interval`` 0 never runs ``check``.
    """

    def __init__(
        self,
        name: str = "script",
        *,
        check: str | Script | None = None,
        check_interval: float = 0.0,
        prepare: str | Script | None = None,
        master: str | Script | None = None,
        backup: str | Script | None = None,
        fault: str | Script | None = None,
        stop: str | Script | None = None,
        notify: str | Script | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        shell: bool = False,
        user: str | None = None,
        group: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"{name}: timeout must be positive, got {timeout}")
        defaults = {"shell": shell, "user": user, "group": group}
        self.name = name
        self.script_timeout = timeout
        self.timeout = timeout + BACKEND_MARGIN
        self.check_script = Script.of(check, **defaults)
        self.prepare_script = Script.of(prepare, **defaults)
        if check is not None and check_interval <= 0:
            raise ValueError(f"{name}: a check script needs check_interval > 0")
        self.check_interval = check_interval if self.check_script is not None else 0.0
        self.stats = {"check": ScriptStats(), "prepare": ScriptStats()}
        self._states = NotifyScripts(
            notify_master=master,
            notify_backup=backup,
            notify_fault=fault,
            notify_stop=stop,
            notify=notify,
            timeout=timeout,
            shell=shell,
            user=user,
            group=group,
            name=name,
        )

    async def check(self) -> str | None:
        script = self.check_script
        if script is None:
            return None
        result = await run_script(
            script.argv(),
            env={"VRRPY_SCRIPT": "check", "VRRPY_BACKEND": self.name},
            timeout=self.script_timeout,
            label=f"check {self.name}",
            stats=self.stats["check"],
        )
        # A stable sentence (it is a fault reason while it holds): no output in it.
        return None if result.ok else f"check script {result.describe(self.script_timeout)}"

    async def prepare(self, event: TransitionEvent) -> None:
        script = self.prepare_script
        if script is None:
            return
        result = await run_script(
            script.argv([event.kind, event.instance, "MASTER", str(event.priority)]),
            env=event_environment(event, "prepare"),
            timeout=self.script_timeout,
            label=f"prepare {event.instance}",
            stats=self.stats["prepare"],
        )
        if not result.ok:
            raise Refused(_refusal(result, self.script_timeout))

    async def transition(self, event: TransitionEvent) -> None:
        if event.new is State.MASTER and event.old is State.MASTER:
            return
        await self._states.transition(event)

    def status(self) -> dict[str, Any]:
        out = {role: stats.status() for role, stats in self.stats.items()}
        out.update(self._states.status())
        return out


def _refusal(result: RunResult, timeout: float) -> str:
    why = f"prepare script {result.describe(timeout)}"
    return f"{why}: {result.output}" if result.output else why
