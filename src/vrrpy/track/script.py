"""Script tracking (keepalived's ``vrrp_script``), run inside the agent.

keepalived's rules (``vrrp_scheduler.c``: ``vrrp_script_thread``,
``vrrp_script_child_thread``), kept here:

* exit status 0 is success; any other status, death by a signal, a timeout,
  and (vrrpy) a script that cannot be started are failures;
* a run starts every ``interval`` seconds; a tick that finds the previous run
  still going is skipped ("already running ... skipping run");
* ``timeout`` defaults to the interval; at the timeout the script's whole
  process group is killed and the run counts as failed ("timed_out").
  keepalived sends SIGTERM and, 2 s later, SIGKILL; vrrpy sends SIGKILL to
  the group at once: a check that has overrun its timeout has no cleanup
  worth 2 more seconds of a wrong verdict, and a script that traps SIGTERM
  cannot stretch the timeout;
* rise / fall counting and the first result: :class:`~vrrpy.track.model.ScriptCounter`.

vrrpy's own: no shell (the command line is split with :func:`shlex.split`, as
keepalived splits its ``script`` string on white space, with quotes);
each run in a new session (its own process group, so the timeout reaches its
children); stdin from /dev/null; stdout and stderr merged and drained as the
script writes (a chatty script never blocks on a full pipe), keeping the last
4 KiB and reporting the last non-empty line (at most 200 characters) with the
exit status and run time in the state file. ``user`` / ``group``: the run
switches to them (supplementary groups dropped when we are root), as
keepalived's ``user USERNAME [GROUPNAME]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any, Final

from vrrpy.track.model import Kind, ScriptCounter, Verdict
from vrrpy.track.protocol import ConfigError, ScriptSpec

__all__ = ["ScriptCheck", "last_line"]

log = logging.getLogger(__name__)

OUTPUT_TAIL: Final = 4096
LINE_MAX: Final = 200
PIPE_GRACE: Final = 0.2
"""After the script exits, how long its output may still take (a child it left holding the pipe)."""


def last_line(tail: bytes) -> str:
    """The last non-empty line of ``tail``, decoded, at most :data:`LINE_MAX` characters."""
    for line in reversed(tail.splitlines()):
        text = line.decode(errors="replace").strip()
        if text:
            return text[:LINE_MAX]
    return ""


def resolve_user(spec: ScriptSpec) -> dict[str, Any]:
    """The Popen arguments that switch to ``spec.user`` / ``spec.group`` (checked now)."""
    if spec.user is None:
        if spec.group is not None:
            raise ConfigError(f"track {spec.name}: group without user")
        return {}
    try:
        entry = pwd.getpwnam(spec.user)
    except KeyError:
        raise ConfigError(f"track {spec.name}: no user {spec.user!r}") from None
    gid = entry.pw_gid
    if spec.group is not None:
        try:
            gid = grp.getgrnam(spec.group).gr_gid
        except KeyError:
            raise ConfigError(f"track {spec.name}: no group {spec.group!r}") from None
    kwargs: dict[str, Any] = {"user": entry.pw_uid, "group": gid}
    if os.geteuid() == 0:
        kwargs["extra_groups"] = []
    return kwargs


class ScriptCheck:
    """One ``vrrp_script``, run on its interval until :meth:`stop`."""

    def __init__(self, spec: ScriptSpec, report: Callable[[Verdict], None]) -> None:
        self.spec = spec
        self.argv = spec.argv
        self._user = resolve_user(spec)
        self._report = report
        self.counter = ScriptCounter(spec.rise, spec.fall, spec.init_fail)
        self.verdict = Verdict(
            spec.name,
            Kind.SCRIPT,
            self.counter.up,
            f"script {spec.name} initially failed (init_fail)"
            if spec.init_fail
            else f"script {spec.name} has not run yet",
        )
        self.runs = 0
        self.skipped = 0
        self.last: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._killing = False

    def start(self) -> None:
        if self.spec.init_fail:
            self._report(self.verdict)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            try:
                await self.run_once()
            except Exception:  # a bug here must not end the check: log it, keep the schedule
                log.exception("track %s: run failed", self.spec.name)
            due += self.spec.interval
            now = loop.time()
            if now > due:  # the run overran its interval: skip the ticks it covered
                missed = int((now - due) // self.spec.interval) + 1
                self.skipped += missed
                due += missed * self.spec.interval
            await asyncio.sleep(due - now)

    async def run_once(self) -> None:
        """One run: start, wait up to the timeout (then kill the group), count, report."""
        started = time.monotonic()
        outcome, status, output = await self._execute()
        runtime = time.monotonic() - started
        self.runs += 1
        success = outcome == "exit" and status == 0
        self.last = {
            "outcome": outcome,
            "status": status,
            "output": output,
            "runtime": round(runtime, 6),
            "at": started,
        }
        if self.counter.record(success):
            if success:
                reason = f"script {self.spec.name} succeeded"
            elif outcome == "exit":
                reason = f"script {self.spec.name} failed (exit {status})"
            elif outcome == "signal":
                reason = f"script {self.spec.name} failed (signal {status})"
            elif outcome == "timeout":
                reason = (
                    f"script {self.spec.name} timed out after {self.spec.effective_timeout:g} s"
                )
            else:
                reason = f"script {self.spec.name} could not start ({output})"
            self.verdict = Verdict(self.spec.name, Kind.SCRIPT, success, reason)
            self._report(self.verdict)

    async def _execute(self) -> tuple[str, int, str]:
        """(outcome, status, last output line): outcome is exit, signal, timeout or error."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._user,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return "error", -1, str(exc)[:LINE_MAX]
        self._proc = proc
        assert proc.stdout is not None
        tail = bytearray()
        drain = asyncio.ensure_future(self._drain(proc.stdout, tail))
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), self.spec.effective_timeout)
        except asyncio.TimeoutError:
            timed_out = True
            self._killing = True
            self._kill_group(proc)
            await proc.wait()
        finally:
            self._proc = None
            self._killing = False
        try:
            await asyncio.wait_for(drain, PIPE_GRACE)
        except asyncio.TimeoutError:
            drain.cancel()
        code = proc.returncode
        assert code is not None
        output = last_line(bytes(tail))
        if timed_out:
            return "timeout", code, output
        if code < 0:
            return "signal", -code, output
        return "exit", code, output

    @staticmethod
    async def _drain(stream: asyncio.StreamReader, tail: bytearray) -> None:
        while chunk := await stream.read(65536):
            tail += chunk
            del tail[:-OUTPUT_TAIL]

    @staticmethod
    def _kill_group(proc: asyncio.subprocess.Process) -> None:
        # The leader is not reaped yet (we have not seen its exit), so its pid is still
        # its group's id and cannot name anyone else's group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._proc is not None and self._proc.returncode is None:
            self._kill_group(self._proc)

    @property
    def state(self) -> str:
        """keepalived's script state: idle, running, or forcing termination (the group
        was sent SIGKILL at the timeout and has not been reaped yet)."""
        if self._proc is None:
            return "idle"
        return "forcing termination" if self._killing else "running"

    def status(self) -> dict[str, Any]:
        return {
            "kind": "script",
            "state": self.state,
            "up": self.counter.up,
            "reason": self.verdict.reason,
            "result": self.counter.result,
            "rise": self.spec.rise,
            "fall": self.spec.fall,
            "runs": self.runs,
            "skipped": self.skipped,
            "last": dict(self.last),
        }
