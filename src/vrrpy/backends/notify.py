"""keepalived's notify scripts, and the script runner every script backend shares.

What keepalived 2.2.7 runs (``keepalived/vrrp/vrrp_notify.c``,
``send_instance_notifies`` / ``send_group_notifies`` / ``notify_script_exec``
/ ``send_event_notify``; ``lib/notify.c``, ``system_call_script``):

* ``notify_master``, ``notify_backup``, ``notify_fault``, ``notify_stop``:
  the configured command line **as written, with no argument added**;
* ``notify`` (the generic one, for every transition), started after the
  state's own script: the configured command line followed by four
  arguments, ``TYPE NAME STATE PRIORITY``: ``INSTANCE`` or ``GROUP``, the
  instance's or sync group's name, ``MASTER`` / ``BACKUP`` / ``FAULT`` /
  ``STOP``, and the effective priority (always ``0`` for a group);
* ``notify_master_rx_lower_pri``: as written, no argument added, each time a
  Master receives an advert with a lower priority (a lower-priority router
  took over during a communication break: the proper Master may have to
  take back what the other's ``notify_master`` took, such as a cloud
  provider's secondary address).

keepalived splits the command line into words with shell-like quoting and
execs it without a shell (a script without ``#!`` goes through ``sh``); it
starts each in its own process group, with keepalived's environment, and does
not wait for it. vrrpy does the same, with these differences, all documented
in ``docs/backends.md``: the same facts in ``VRRPY_*`` environment variables
(:func:`event_environment`); ``shell = true`` runs the line with ``/bin/sh
-c`` (the four arguments are then ``$1``..``$4``); each run has a timeout,
at which its process group is killed (keepalived has none); output is logged;
a transition's backend call returns when its scripts have ended, so that the
next transition's scripts (serialised by the pipeline) never overtake them.

**The loop is never held for a fork.** Measured on this machine (2 cores,
Python 3.11): ``asyncio.create_subprocess_exec`` blocks the calling thread
for 0.4 ms (median; 1.1 ms at worst) with ``vfork``, 1.8 ms with a 20 MiB
process and 9.6 ms with a 220 MiB one when ``user=`` turns ``vfork`` off
(CPython's ``_posixsubprocess`` uses ``vfork`` only without uid, gid or
group changes). Moving ``subprocess.Popen`` to a worker thread does not
help: ``_posixsubprocess.fork_exec`` keeps the GIL across the fork, so the
loop waited 0.6 ms (vfork) to 4.1 ms (fork) for it anyway. So a script is
started by glibc's ``posix_spawn`` (``clone(CLONE_VM | CLONE_VFORK)``: no
page tables copied whatever the daemon's size), called through :mod:`ctypes`,
which releases the GIL for the call, in one worker thread; the loop only
hands over the argument list and later watches two file descriptors: the
child's pidfd (its exit) and its output pipe. ``user`` / ``group`` switch
through ``setpriv`` (util-linux) put in front of the command, since
``posix_spawn`` cannot change ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import grp
import logging
import os
import pwd
import shlex
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from vrrpy.backends.base import Backend, BackendError, TransitionEvent
from vrrpy.core.state import State
from vrrpy.runtime.realtime import worker_initializer

__all__ = [
    "DEFAULT_TIMEOUT",
    "NotifyScripts",
    "RunResult",
    "Script",
    "ScriptStats",
    "event_environment",
    "keepalived_state",
    "resolve_ids",
    "run_script",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds a notify / up / down script may run before its process group is killed."""
BACKEND_MARGIN: Final = 2.0
"""A script backend's own timeout (the pipeline's) exceeds its scripts' by this much:
time to queue the spawn and drain the output, so that the script is killed and
counted here rather than the whole call cancelled by the pipeline."""
LOG_LINES: Final = 20
"""Output lines logged per run; the rest are counted, not logged."""
LINE_MAX: Final = 200
"""Characters of one logged output line."""
PIPE_GRACE: Final = 0.2
"""After the script exits, how long its output may still take (a child it left running
may hold the pipe for ever: a service started with ``&``)."""


def keepalived_state(state: State) -> str:
    """keepalived's word for the state a transition enters: INIT (a stopped instance) is
    ``STOP``, as keepalived's ``notify_stop`` and ``notify`` say at shutdown."""
    return "STOP" if state is State.INITIALIZE else state.value


def event_environment(
    event: TransitionEvent, script: str, word: str | None = None
) -> dict[str, str]:
    """The ``VRRPY_*`` variables a script gets besides the daemon's environment.

    ``word`` is keepalived's word for the event (the notify FIFO's third field:
    the state, or ``MASTER_RX_LOWER_PRI``); by default the new state's.
    """
    state = keepalived_state(event.new)
    return {
        "VRRPY_SCRIPT": script,
        "VRRPY_TYPE": event.kind,
        "VRRPY_NAME": event.instance,
        "VRRPY_STATE": state,
        "VRRPY_OLD_STATE": event.old.value,
        "VRRPY_EVENT": word or state,
        "VRRPY_PRIORITY": str(event.priority),
        "VRRPY_REASON": event.reason,
        "VRRPY_INTERFACE": event.interface,
        "VRRPY_VRID": str(event.vrid),
        "VRRPY_FAMILY": str(event.family),
        "VRRPY_ADDRESSES": " ".join(str(a) for a in event.addresses),
    }


@dataclass(frozen=True)
class Script:
    """One configured command line, as keepalived's ``notify_master "/path/x arg" [user [group]]``.

    ``command`` is split into words with shell-like quoting (:func:`shlex.split`)
    and run without a shell, unless ``shell`` is true: then ``/bin/sh -c
    command``, with any arguments vrrpy adds as ``$1``, ``$2``... ``user`` /
    ``group``: the ids it runs with (the group defaults to the user's own;
    supplementary groups are set to that group alone, as keepalived does).
    Checked when built: an empty command or an unknown user raises
    :class:`ValueError`.
    """

    command: str
    shell: bool = False
    user: str | None = None
    group: str | None = None
    prefix: tuple[str, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise ValueError("empty script command")
        if not self.shell:
            try:
                words = shlex.split(self.command)
            except ValueError as exc:
                raise ValueError(f"script {self.command!r}: {exc}") from None
            if not words:
                raise ValueError("empty script command")
        object.__setattr__(self, "prefix", _switch_ids(self.user, self.group, self.command))

    @classmethod
    def of(cls, value: str | Script | None, **defaults: Any) -> Script | None:
        """``value`` as a Script: a string takes the backend's ``defaults`` (shell, user, group)."""
        if value is None or isinstance(value, Script):
            return value
        return cls(value, **defaults)

    def argv(self, extra: Sequence[str] = ()) -> list[str]:
        """The argument vector for one run, with ``extra`` appended (keepalived's added
        arguments; in shell mode the positional parameters)."""
        if self.shell:
            words = ["/bin/sh", "-c", self.command, "sh", *extra]
        else:
            words = [*shlex.split(self.command), *extra]
        return [*self.prefix, *words]


def resolve_ids(user: str | None, group: str | None, what: str) -> tuple[int, int] | None:
    """(uid, gid) of ``user`` and ``group`` (default: the user's own group); None without a user.

    keepalived's ``[username [groupname]]`` after a script or a FIFO; ``what``
    names the setting in the :class:`ValueError` raised for an unknown name.
    """
    if user is None:
        if group is not None:
            raise ValueError(f"{what}: group without user")
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ValueError(f"{what}: no user {user!r}") from None
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError:
            raise ValueError(f"{what}: no group {group!r}") from None
    return entry.pw_uid, gid


def _switch_ids(user: str | None, group: str | None, what: str) -> tuple[str, ...]:
    """The ``setpriv`` words that run a command as ``user`` / ``group`` (none without a user)."""
    ids = resolve_ids(user, group, f"script {what!r}")
    if ids is None:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise ValueError(f"script {what!r}: user needs setpriv (util-linux), not found")
    uid, gid = ids
    return (setpriv, f"--reuid={uid}", f"--regid={gid}", f"--groups={gid}", "--")


# -- starting a process without holding the loop ----------------------------------------

_SETSIGDEF: Final = 0x04
_SETSIGMASK: Final = 0x08
_SETSID: Final = 0x80
"""glibc's ``POSIX_SPAWN_*`` flags (``<spawn.h>``; SETSID since glibc 2.26)."""
_OPAQUE: Final = 1024
"""Bytes reserved for each opaque glibc type: ``posix_spawnattr_t`` (336 on x86-64), the
file actions (80), a sigset (128)."""


class _Libc:
    """The few glibc calls that start a process, with their argument types."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        ptr, cint = ctypes.c_void_p, ctypes.c_int
        self.spawn = libc.posix_spawn
        self.spawn.argtypes = [ctypes.POINTER(cint), ctypes.c_char_p, ptr, ptr, ptr, ptr]
        self.fa_init = libc.posix_spawn_file_actions_init
        self.fa_destroy = libc.posix_spawn_file_actions_destroy
        self.fa_open = libc.posix_spawn_file_actions_addopen
        self.fa_open.argtypes = [ptr, cint, ctypes.c_char_p, cint, ctypes.c_uint]
        self.fa_dup2 = libc.posix_spawn_file_actions_adddup2
        self.fa_dup2.argtypes = [ptr, cint, cint]
        self.attr_init = libc.posix_spawnattr_init
        self.attr_destroy = libc.posix_spawnattr_destroy
        self.attr_flags = libc.posix_spawnattr_setflags
        self.attr_flags.argtypes = [ptr, ctypes.c_short]
        self.attr_sigdefault = libc.posix_spawnattr_setsigdefault
        self.attr_sigmask = libc.posix_spawnattr_setsigmask
        self.sigfillset = libc.sigfillset
        self.sigemptyset = libc.sigemptyset


_libc: _Libc | None = None
_executor: ThreadPoolExecutor | None = None


def _spawner() -> ThreadPoolExecutor:
    """The one worker thread that starts scripts (created on first use).

    One thread keeps the start order of the scripts of one transition (the state's
    script before ``notify``). Its initializer makes it real-time one priority
    below the loop when the daemon's loop is (:func:`vrrpy.runtime.realtime.worker_initializer`),
    so that it holds the GIL for microseconds, never for an ordinary process's time slice.
    """
    global _executor, _libc
    if _executor is None:
        _libc = _Libc()
        _executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vrrpy-spawn", initializer=worker_initializer
        )
    return _executor


def _posix_spawn(path: bytes, argv: Sequence[bytes], env: Sequence[bytes], out: int) -> int:
    """Start ``path``: stdin /dev/null, stdout and stderr to ``out``, a new session, every
    signal back to its default action and none blocked (Python ignores SIGPIPE and
    SIGXFSZ; keepalived resets all of them for its scripts too). Returns the pid;
    raises :class:`OSError` with the exec's error (glibc reports it from the child)."""
    libc = _libc
    assert libc is not None
    actions = ctypes.create_string_buffer(_OPAQUE)
    attr = ctypes.create_string_buffer(_OPAQUE)
    signals = ctypes.create_string_buffer(_OPAQUE)
    nothing = ctypes.create_string_buffer(_OPAQUE)
    libc.fa_init(actions)
    libc.attr_init(attr)
    try:
        for err in (
            libc.fa_open(actions, 0, b"/dev/null", os.O_RDONLY, 0),
            libc.fa_dup2(actions, out, 1),
            libc.fa_dup2(actions, out, 2),
            libc.sigfillset(signals),
            libc.sigemptyset(nothing),
            libc.attr_sigdefault(attr, signals),
            libc.attr_sigmask(attr, nothing),
            libc.attr_flags(attr, _SETSIGDEF | _SETSIGMASK | _SETSID),
        ):
            if err:
                raise OSError(err if err > 0 else ctypes.get_errno(), "posix_spawn setup failed")
        pid = ctypes.c_int(0)
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*argv, None)
        c_env = (ctypes.c_char_p * (len(env) + 1))(*env, None)
        err = libc.spawn(ctypes.byref(pid), path, actions, attr, c_argv, c_env)
        if err:
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return pid.value
    finally:
        libc.attr_destroy(attr)
        libc.fa_destroy(actions)


def _spawn(argv: list[str], extra_env: Mapping[str, str]) -> tuple[int, int, int]:
    """In the spawner thread: start ``argv`` with the daemon's environment and ``extra_env``
    (merged and encoded here, not on the loop); (pid, pidfd, read end of its output)."""
    env = {**os.environ, **extra_env}
    path = argv[0]
    if "/" not in path:
        found = shutil.which(path, path=env.get("PATH", os.defpath))
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "not found in PATH", path)
        path = found
    words = [os.fsencode(a) for a in argv]
    environ = [os.fsencode(f"{k}={v}") for k, v in env.items()]
    if any(b"\0" in word for word in (*words, *environ)):
        raise ValueError("embedded null byte in an argument or the environment")
    read, write = os.pipe()
    try:
        try:
            pid = _posix_spawn(os.fsencode(path), words, environ, write)
        except OSError as exc:
            if exc.errno != errno.ENOEXEC:
                raise
            # No "#!": run it with sh, as execvp() and keepalived's system() fallback do.
            pid = _posix_spawn(
                b"/bin/sh", [b"/bin/sh", os.fsencode(path), *words[1:]], environ, write
            )
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        # No pidfd (Linux < 5.3): not supported; kill what we started rather than lose it.
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read)
        raise
    os.set_blocking(read, False)
    return pid, pidfd, read


# -- one run, watched from the loop ------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """How one run ended: ``outcome`` is ``exit`` (``status`` its exit status), ``signal``
    (``status`` the signal), ``timeout`` (killed at its timeout), ``error`` (could not be
    started; ``output`` says why) or ``skipped`` (the previous run was still going)."""

    outcome: str
    status: int
    runtime: float
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "exit" and self.status == 0

    def describe(self, timeout: float | None = None) -> str:
        if self.outcome == "exit":
            return f"exit {self.status}"
        if self.outcome == "signal":
            return f"killed by signal {self.status}"
        if self.outcome == "timeout":
            limit = f" after {timeout:g} s" if timeout is not None else ""
            return f"timed out{limit}, process group killed"
        if self.outcome == "skipped":
            return "skipped: the previous run is still going"
        return f"could not start ({self.output})"


@dataclass
class ScriptStats:
    """Counters of one configured script (for the state file)."""

    runs: int = 0
    failed: int = 0
    timeouts: int = 0
    errors: int = 0
    skipped: int = 0
    lines_not_logged: int = 0
    last: dict[str, Any] = field(default_factory=dict)

    def record(self, result: RunResult) -> None:
        if result.outcome == "skipped":
            self.skipped += 1
            return
        self.runs += 1
        if result.outcome == "timeout":
            self.timeouts += 1
        elif result.outcome == "error":
            self.errors += 1
        elif not result.ok:
            self.failed += 1
        self.last = {
            "outcome": result.outcome,
            "status": result.status,
            "output": result.output,
            "runtime": round(result.runtime, 6),
        }

    def status(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failed": self.failed,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "skipped": self.skipped,
            "lines_not_logged": self.lines_not_logged,
            "last": dict(self.last),
        }


class _Child:
    """A started script, watched with two readers on the loop: its pidfd and its output."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        started: tuple[int, int, int],
        label: str,
        stats: ScriptStats | None,
    ) -> None:
        self.loop = loop
        self.pid, self.pidfd, self.out = started
        self.label = label
        self.stats = stats
        self.code: int | None = None
        self.timed_out = False
        self.logged = 0
        self.partial = b""
        self.last = ""
        self.done: asyncio.Future[int] = loop.create_future()
        self._grace: asyncio.TimerHandle | None = None
        loop.add_reader(self.pidfd, self._exited)
        loop.add_reader(self.out, self._readable)

    def kill(self) -> None:
        """SIGKILL the whole process group (the pid is not reaped yet, so it still names it)."""
        if self.code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)

    def expire(self) -> None:
        if self.code is None:
            self.timed_out = True
            self.kill()

    def terminate(self) -> None:
        """SIGTERM to the group (a long-running reader at shutdown)."""
        if self.code is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGTERM)

    def _exited(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (a waitpid(-1) child watcher)
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self.code = os.waitstatus_to_exitcode(status)
        self.loop.remove_reader(self.pidfd)
        os.close(self.pidfd)
        if self.out >= 0:
            self._grace = self.loop.call_later(PIPE_GRACE, self._finish)
        else:
            self._finish()

    def _readable(self) -> None:
        try:
            data = os.read(self.out, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_output()
            return
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > 4 * LINE_MAX:  # an endless line: log it in pieces
            lines.append(self.partial)
            self.partial = b""
        for line in lines:
            self._line(line)

    def _line(self, raw: bytes) -> None:
        text = raw.decode(errors="replace").rstrip()
        if not text:
            return
        self.last = text[:LINE_MAX]
        if self.logged < LOG_LINES:
            self.logged += 1
            log.info("%s [%d]: %s", self.label, self.pid, self.last)
        elif self.stats is not None:
            self.stats.lines_not_logged += 1

    def _close_output(self) -> None:
        if self.out < 0:
            return
        if self.partial:
            self._line(self.partial)
            self.partial = b""
        self.loop.remove_reader(self.out)
        os.close(self.out)
        self.out = -1
        if self.code is not None:
            self._finish()

    def _finish(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self._close_output()
        if not self.done.done() and self.code is not None:
            self.done.set_result(self.code)


def _adopt_orphan(
    loop: asyncio.AbstractEventLoop, label: str, spawned: asyncio.Future[tuple[int, int, int]]
) -> None:
    """The caller was cancelled while the spawner was starting the script: kill it and reap it."""
    if spawned.cancelled() or spawned.exception() is not None:
        return
    _Child(loop, spawned.result(), label, None).kill()


async def run_script(
    argv: list[str],
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    label: str = "script",
    stats: ScriptStats | None = None,
    started: asyncio.Future[_Child] | None = None,
) -> RunResult:
    """Run ``argv`` to its end (or its timeout), its output to the log; never raises for
    the script's failure (the result says it).

    ``env`` is added to the daemon's environment. ``timeout`` None lets it run
    until it ends (a FIFO reader). Cancelling the caller kills the process group.
    ``started`` (optional) receives the running child, for a caller that must
    signal it later. The result is also recorded in ``stats``.
    """
    loop = asyncio.get_running_loop()
    begin = time.monotonic()
    spawning = loop.run_in_executor(_spawner(), _spawn, argv, env or {})
    try:
        spawned = await asyncio.shield(spawning)
    except asyncio.CancelledError:
        spawning.add_done_callback(lambda f: _adopt_orphan(loop, label, f))
        raise
    except (OSError, ValueError) as exc:
        result = RunResult("error", -1, time.monotonic() - begin, str(exc)[:LINE_MAX])
        log.error("%s: could not start %s: %s", label, argv[0], exc)
        if stats is not None:
            stats.record(result)
        return result
    child = _Child(loop, spawned, label, stats)
    if started is not None and not started.done():
        started.set_result(child)
    timer = loop.call_later(timeout, child.expire) if timeout is not None else None
    try:
        code = await asyncio.shield(child.done)
    except asyncio.CancelledError:
        child.kill()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    runtime = time.monotonic() - begin
    if child.timed_out:
        result = RunResult("timeout", code, runtime, child.last)
    elif code < 0:
        result = RunResult("signal", -code, runtime, child.last)
    else:
        result = RunResult("exit", code, runtime, child.last)
    if stats is not None:
        stats.record(result)
    if result.ok:
        log.debug("%s [%d]: exit 0 in %.3f s", label, child.pid, runtime)
    else:
        log.warning(
            "%s [%d]: %s (%.3f s)%s",
            label,
            child.pid,
            result.describe(timeout),
            runtime,
            f"; last output: {result.output}" if result.output else "",
        )
    return result


# -- keepalived's notify scripts -----------------------------------------------------------

_STATE_SCRIPTS: Final = {
    "MASTER": "notify_master",
    "BACKUP": "notify_backup",
    "FAULT": "notify_fault",
    "STOP": "notify_stop",
}


class NotifyScripts(Backend):
    """keepalived's ``notify_master`` / ``notify_backup`` / ``notify_fault`` / ``notify_stop``
    / ``notify`` / ``notify_master_rx_lower_pri`` for one instance or sync group.

    Each script is a command line (or a :class:`Script`, for its own user or
    shell mode); ``shell``, ``user``, ``group`` are the defaults of the lines
    given as strings. ``timeout`` bounds each run. On a transition, the state's
    own script (if any) and then ``notify`` are started, both run at once, and
    the call returns when both have ended; a failure (non-zero exit, signal,
    timeout, no start) is logged, counted in :meth:`status`, and raised as
    :class:`BackendError` for the pipeline to count.
    """

    def __init__(
        self,
        *,
        notify_master: str | Script | None = None,
        notify_backup: str | Script | None = None,
        notify_fault: str | Script | None = None,
        notify_stop: str | Script | None = None,
        notify: str | Script | None = None,
        notify_master_rx_lower_pri: str | Script | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        shell: bool = False,
        user: str | None = None,
        group: str | None = None,
        name: str = "notify",
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"{name}: timeout must be positive, got {timeout}")
        defaults = {"shell": shell, "user": user, "group": group}
        given = {
            "notify_master": notify_master,
            "notify_backup": notify_backup,
            "notify_fault": notify_fault,
            "notify_stop": notify_stop,
            "notify": notify,
            "notify_master_rx_lower_pri": notify_master_rx_lower_pri,
        }
        self.scripts: dict[str, Script] = {}
        for role, value in given.items():
            script = Script.of(value, **defaults)
            if script is not None:
                self.scripts[role] = script
        self.name = name
        self.script_timeout = timeout
        self.timeout = timeout + BACKEND_MARGIN
        self.stats = {role: ScriptStats() for role in self.scripts}
        self._rx_lower_running = False

    async def transition(self, event: TransitionEvent) -> None:
        state = keepalived_state(event.new)
        runs = []
        own = _STATE_SCRIPTS.get(state)
        if own in self.scripts:
            runs.append((own, self.scripts[own].argv()))
        if "notify" in self.scripts:
            priority = 0 if event.kind == "GROUP" else event.priority
            extra = [event.kind, event.instance, state, str(priority)]
            runs.append(("notify", self.scripts["notify"].argv(extra)))
        if not runs:
            return
        # Started in this order (one spawner thread), then run side by side, as keepalived's.
        tasks = [
            asyncio.ensure_future(
                run_script(
                    argv,
                    env=event_environment(event, role),
                    timeout=self.script_timeout,
                    label=f"{role} {event.instance}",
                    stats=self.stats[role],
                )
            )
            for role, argv in runs
        ]
        try:
            results = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        self._raise_failures(event, [role for role, _ in runs], results)

    async def master_rx_lower_pri(self, event: TransitionEvent) -> None:
        """A Master received an advert with a lower priority: ``notify_master_rx_lower_pri``.

        Called by the runtime for each such advert. A run still going when the
        next advert comes is not doubled (the advert is counted as skipped): a
        peer that keeps sending every 10 ms cannot start 100 scripts a second.
        """
        role = "notify_master_rx_lower_pri"
        script = self.scripts.get(role)
        if script is None:
            return
        if self._rx_lower_running:
            self.stats[role].record(RunResult("skipped", 0, 0.0))
            return
        self._rx_lower_running = True
        try:
            result = await run_script(
                script.argv(),
                env=event_environment(event, role, "MASTER_RX_LOWER_PRI"),
                timeout=self.script_timeout,
                label=f"{role} {event.instance}",
                stats=self.stats[role],
            )
        finally:
            self._rx_lower_running = False
        self._raise_failures(event, [role], [result])

    def _raise_failures(
        self, event: TransitionEvent, roles: list[str], results: Sequence[RunResult]
    ) -> None:
        failed = [
            f"{role} {result.describe(self.script_timeout)}"
            for role, result in zip(roles, results, strict=True)
            if not result.ok
        ]
        if failed:
            raise BackendError(f"{event.instance}: " + "; ".join(failed))

    def status(self) -> dict[str, Any]:
        return {role: stats.status() for role, stats in self.stats.items()}
