"""keepalived's ``notify_fifo``: one line per transition into a FIFO that a reader consumes.

The line, exactly as keepalived 2.2.7 writes it (``keepalived/vrrp/vrrp_notify.c``,
``notify_fifo``: ``"%s \\"%s\\" %s %d\\n"``)::

    INSTANCE "VI_1" MASTER 100
    GROUP "VG_1" BACKUP 0

``TYPE "NAME" STATE PRIORITY``: ``INSTANCE`` or ``GROUP``, the name in double
quotes, ``MASTER`` / ``BACKUP`` / ``FAULT`` / ``STOP`` (or
``MASTER_RX_LOWER_PRI``, and ``MASTER_PRIORITY`` / ``BACKUP_PRIORITY`` when
priority changes are asked for), then the effective priority (``0`` for a
group, as keepalived writes it).

Opening and writing, as keepalived does (``lib/notify.c``, ``fifo_open``):
the FIFO is created (mode 0644) if missing and removed at :meth:`close` only
if it was created here; it is opened ``O_RDWR | O_NONBLOCK`` (with
``O_NOFOLLOW``), so that opening never waits for a reader and a write never
blocks nor raises SIGPIPE: without a reader, lines wait in the pipe's buffer
(64 KiB, some 2,000 lines) and the next reader gets them; when that buffer is
full, a line is dropped and counted (keepalived drops it silently). A line is
far below ``PIPE_BUF``, so a reader never sees half of one.

``notify_fifo_script``: a command started once, with the FIFO's path as its
last argument (keepalived's ``add_script_param``), before the FIFO is opened;
it runs until it ends (no timeout; its end is logged, it is not restarted, as
keepalived) or until :meth:`close`, which sends its process group SIGTERM
(keepalived's ``script_killall``) and SIGKILL a second later.

One :class:`NotifyFifo` serves every instance that writes to the same FIFO
(keepalived's is global): register the same object with each, calling
:meth:`NotifyFifo.attach` once per instance, so that the FIFO is closed at
the last instance's :meth:`~NotifyFifo.close`, after every STOP line. A line
written after the FIFO was closed is dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
from typing import Any, Final

from vrrpy.backends.base import Backend, BackendError, TransitionEvent
from vrrpy.backends.notify import (
    RunResult,
    Script,
    ScriptStats,
    keepalived_state,
    resolve_ids,
    run_script,
)
from vrrpy.core.state import State

__all__ = ["NotifyFifo", "fifo_line"]

log = logging.getLogger(__name__)

STOP_GRACE: Final = 1.0
"""Seconds between the reader script's SIGTERM and its SIGKILL (keepalived's ``TIMER_HZ``)."""


def fifo_line(event: TransitionEvent, word: str | None = None) -> bytes:
    """keepalived's line for ``event``: ``word`` is the third field (default: the new state's)."""
    priority = 0 if event.kind == "GROUP" else event.priority
    state = word or keepalived_state(event.new)
    return f'{event.kind} "{event.instance}" {state} {priority}\n'.encode()


class NotifyFifo(Backend):
    """keepalived's ``vrrp_notify_fifo``, with its ``notify_fifo_script`` if one is given.

    ``user`` / ``group``: the new FIFO's owner (keepalived's ``notify_fifo NAME
    [user [group]]``). ``priority_changes``: keepalived's
    ``notify_priority_changes``: :meth:`priority_changed` writes a line too.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        script: str | Script | None = None,
        user: str | None = None,
        group: str | None = None,
        priority_changes: bool = False,
        name: str = "notify_fifo",
    ) -> None:
        self.path = os.fspath(path)
        self.name = name
        self.script = Script.of(script)
        self.owner = resolve_ids(user, group, f"notify_fifo {self.path}")
        self.priority_changes = priority_changes
        self.timeout = 5.0
        self.fd = -1
        self.created = False
        self.users = 0
        self.closed = False
        self.written = 0
        self.dropped = 0
        self.script_stats = ScriptStats()
        self._reader: asyncio.Task[RunResult] | None = None
        self._reader_child: asyncio.Future[Any] | None = None

    def attach(self) -> NotifyFifo:
        """One more instance writes here: :meth:`close` waits for each one's."""
        self.users += 1
        return self

    async def transition(self, event: TransitionEvent) -> None:
        await self.write(fifo_line(event))

    async def master_rx_lower_pri(self, event: TransitionEvent) -> None:
        """keepalived's ``MASTER_RX_LOWER_PRI`` line (a Master received a lower priority)."""
        await self.write(fifo_line(event, "MASTER_RX_LOWER_PRI"))

    async def priority_changed(self, event: TransitionEvent) -> None:
        """keepalived's ``MASTER_PRIORITY`` / ``BACKUP_PRIORITY`` line (only with
        ``priority_changes``): ``event.new`` is the current state, ``event.priority`` the
        new priority."""
        if self.priority_changes:
            word = "MASTER_PRIORITY" if event.new is State.MASTER else "BACKUP_PRIORITY"
            await self.write(fifo_line(event, word))

    async def write(self, line: bytes) -> None:
        """Write one line now, without waiting: a full FIFO drops it (counted, logged)."""
        if self.closed:
            self.dropped += 1
            return
        if self.fd < 0:
            self._open()
        try:
            done = os.write(self.fd, line)
        except BlockingIOError:
            done = 0
        except OSError as exc:
            self.dropped += 1
            raise BackendError(f"notify_fifo {self.path}: {exc}") from None
        if done == len(line):
            self.written += 1
            return
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 100 == 0:
            log.warning(
                "notify_fifo %s: full (no reader, or a slow one), %d line(s) dropped",
                self.path,
                self.dropped,
            )

    def _open(self) -> None:
        try:
            os.mkfifo(self.path, 0o644)
        except FileExistsError:
            if not stat.S_ISFIFO(os.lstat(self.path).st_mode):
                raise BackendError(f"notify_fifo {self.path}: exists and is not a FIFO") from None
        except OSError as exc:
            raise BackendError(f"notify_fifo {self.path}: cannot create: {exc}") from None
        else:
            self.created = True
            if self.owner is not None:
                os.chown(self.path, *self.owner)
        if self.script is not None and self._reader is None:
            self._reader_child = asyncio.get_running_loop().create_future()
            self._reader = asyncio.ensure_future(self._run_reader(self.script))
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            self._remove()
            raise BackendError(f"notify_fifo {self.path}: cannot open: {exc}") from None
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):  # replaced since: refuse it still
            os.close(fd)
            raise BackendError(f"notify_fifo {self.path}: exists and is not a FIFO")
        self.fd = fd

    async def _run_reader(self, script: Script) -> RunResult:
        result = await run_script(
            script.argv([self.path]),
            timeout=None,
            label=f"notify_fifo_script {self.path}",
            stats=self.script_stats,
            started=self._reader_child,
        )
        log.info("notify_fifo_script %s terminated (%s)", self.path, result.describe())
        return result

    def _remove(self) -> None:
        if self.created:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            self.created = False

    async def close(self) -> None:
        """Stop the reader script (SIGTERM, SIGKILL a second later), then remove the FIFO if it
        was created here and close it: unlinked first, so that a reader that loops reopening it
        cannot open this one again (keepalived's ``fifo_close``). With several users
        (:meth:`attach`), only the last one's call does it."""
        if self.users > 1:
            self.users -= 1
            return
        self.users = 0
        self.closed = True
        reader, self._reader = self._reader, None
        if reader is not None and self._reader_child is not None:
            if self._reader_child.done():
                child = self._reader_child.result()
                child.terminate()
                try:
                    await asyncio.wait_for(asyncio.shield(reader), STOP_GRACE)
                except asyncio.TimeoutError:
                    child.kill()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
        self._remove()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "open": self.fd >= 0,
            "written": self.written,
            "dropped": self.dropped,
        }
        if self.script is not None:
            out["script"] = self.script_stats.status()
        return out
