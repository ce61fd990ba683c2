"""DRBD: Primary while Master, never over a disk that is not UpToDate.

The classic Heartbeat + DRBD pairing, as a backend. Becoming Master,
:meth:`DrbdBackend.prepare` runs *before* the virtual addresses are added:

1. it reads the resource's state (``drbdadm role / dstate / cstate``);
2. it refuses (:class:`~vrrpy.backends.base.Refused`, the reason in the
   message) when promoting would serve stale or divergent data or make two
   Primaries: the local disk is not ``UpToDate`` (``Outdated``,
   ``Inconsistent``, ``Consistent``, ``Diskless``, ``Failed``...); the
   resource is ``StandAlone`` (how DRBD ends a connection after a split brain
   it could not resolve, or an operator's ``disconnect``); the peer is
   Primary; the disk is being resynchronised as its target. The runtime then
   keeps the router out of Master (FAULT, the reason as the fault reason)
   and asks again later. It never passes ``--force``: promoting over a stale
   disk is an operator's decision (see ``docs/drbd.md``);
3. otherwise it promotes (``drbdadm primary``), then mounts the filesystem
   if one is configured (a failed mount is a refusal too: the node cannot
   serve).

Leaving Master (and on any transition into a state other than Master, so a
node that restarts while Primary does not stay Primary as a Backup),
:meth:`DrbdBackend.transition` runs *after* the addresses were withdrawn and
after later backends (the service) stopped: it unmounts, then demotes
(``drbdadm secondary``). A failure raises :class:`DrbdError` with the
command's output; the pipeline logs and counts it.

Every command runs as an asyncio subprocess (the protocol loop never waits
for it), is killed if the call is cancelled or outlives ``timeout``, and its
output goes into the error message. For DRBD 8.4 kernels (Debian's kernels
and user-mode-linux carry 8.4) with drbd-utils 9, the 8.4 tool ``drbdadm-84``
is used when present.

    DrbdBackend("r0", mount=Mount("/srv/data", fstype="ext4"), config="/etc/drbd.conf")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vrrpy.backends.base import Backend, BackendError, Refused, TransitionEvent
from vrrpy.core.state import State

__all__ = ["DrbdBackend", "DrbdError", "DrbdState", "Mount", "default_drbdadm", "module_version"]

logger = logging.getLogger("vrrpy.backends.drbd")

PROC_DRBD = Path("/proc/drbd")
TOOL_DIRS = ("/lib/drbd", "/usr/lib/drbd", "/usr/lib/drbd-utils")
"""Where drbd-utils 9 keeps the tools for older kernel modules (drbdadm-84, -83)."""

SYNC_TARGET_STATES = frozenset({"SyncTarget", "PausedSyncT", "WFBitMapT", "WFSyncUUID", "Behind"})
"""Connection states in which the local disk is receiving a resync (its data lags)."""


class DrbdError(BackendError):
    """A DRBD or mount command failed; the message has the command and its output."""


def module_version(proc: Path = PROC_DRBD) -> str | None:
    """The loaded DRBD module's version (``"8.4.11"``), or None if none is loaded."""
    try:
        first = proc.read_text().split("\n", 1)[0]
    except OSError:
        return None
    # "version: 8.4.11 (api:1/proto:86-101)"
    words = first.split()
    return words[1] if len(words) > 1 and words[0] == "version:" else None


def default_drbdadm(version: str | None = None) -> list[str]:
    """The drbdadm that speaks to the loaded module: ``drbdadm-84`` for an 8.4 module
    when drbd-utils 9 ships it (on PATH or in its library directory), else ``drbdadm``."""
    version = module_version() if version is None else version
    if version is not None and version.startswith(("8.4.", "8.3.")):
        tool = "drbdadm-84" if version.startswith("8.4.") else "drbdadm-83"
        found = shutil.which(tool)
        if found is None:
            for directory in TOOL_DIRS:
                candidate = os.path.join(directory, tool)
                if os.access(candidate, os.X_OK):
                    found = candidate
                    break
        if found is not None:
            return [found]
    return ["drbdadm"]


@dataclass(frozen=True)
class Mount:
    """A filesystem on the DRBD device, mounted while Primary.

    ``device`` defaults to the resource's own (``drbdadm sh-dev``); ``fstype``
    and ``options`` go to ``mount -t`` / ``-o`` when given.
    """

    mountpoint: str
    device: str | None = None
    fstype: str | None = None
    options: str | None = None


@dataclass(frozen=True)
class DrbdState:
    """What ``drbdadm role / dstate / cstate`` say (8.4 words: ``Primary``,
    ``UpToDate``, ``Connected``); the peer's halves are ``Unknown`` / ``DUnknown``
    when it is not connected."""

    role: str
    peer_role: str
    disk: str
    peer_disk: str
    connection: str

    def __str__(self) -> str:
        return (
            f"role {self.role}/{self.peer_role}, disk {self.disk}/{self.peer_disk}, "
            f"connection {self.connection}"
        )

    def unfit(self, allow_standalone: bool = False) -> str | None:
        """Why this node must not stand for Master at all, in a short sentence that
        does not change while the cause holds (it is a fault reason), or None.

        The peer's role is not looked at: a Backup's peer is Primary, normally."""
        if self.role == "Primary":
            return None  # already Primary: nothing to decide
        if self.disk != "UpToDate":
            hint = {
                "Outdated": "the peer may hold newer data (it was Primary without us)",
                "Inconsistent": "a resync to this node has not finished",
                "Consistent": "its data is consistent but may not be the newest",
                "Diskless": "no backing disk is attached",
                "Failed": "the backing disk failed",
            }.get(self.disk, "it is not known to be current")
            return f"local disk is {self.disk}, not UpToDate: {hint}"
        if self.connection == "StandAlone" and not allow_standalone:
            return (
                "resource is StandAlone: a split brain DRBD could not resolve, or an "
                "operator's disconnect; resolve it before promoting"
            )
        if self.connection in SYNC_TARGET_STATES:
            return "this node is a resync target"
        return None

    def refusal(self, allow_standalone: bool = False) -> str | None:
        """Why this node must not be promoted now, or None if it may."""
        why = self.unfit(allow_standalone)
        if why is not None:
            return f"{why} ({self})"
        if self.role != "Primary" and self.peer_role == "Primary":
            return f"the peer is Primary: two Primaries are never made ({self})"
        return None


class DrbdBackend(Backend):
    """Promote a DRBD resource on becoming Master; demote it on leaving (see the module).

    ``resource`` is the resource's name; ``mount`` an optional filesystem to mount
    after promotion and unmount before demotion; ``drbdadm`` the command (a
    list, so a prefix such as ``["nsenter", "--net=/proc/1/ns/net", "drbdadm-84"]``
    works; default :func:`default_drbdadm`); ``config`` a configuration file
    (``drbdadm -c``) instead of ``/etc/drbd.conf``; ``timeout`` bounds each call
    of the pipeline and each command; ``allow_standalone`` promotes a StandAlone
    resource whose disk is UpToDate (for a node deliberately running alone);
    ``check_interval`` how often (seconds, 0 never) :meth:`check` reads the
    resource so that a node with a stale disk does not stand for Master (the
    runtime holds it in FAULT; it never preempts a healthy Master to be refused);
    ``peer_wait`` how long ``prepare`` waits for a connected peer that is still
    Primary to demote (a preemption: the old Master demotes as it steps down).
    """

    def __init__(
        self,
        resource: str,
        *,
        mount: Mount | None = None,
        drbdadm: Sequence[str] | str | None = None,
        config: str | None = None,
        timeout: float = 30.0,
        allow_standalone: bool = False,
        name: str | None = None,
        check_interval: float = 2.0,
        peer_wait: float = 10.0,
    ) -> None:
        self.resource = resource
        self.mount = mount
        if isinstance(drbdadm, str):
            drbdadm = shlex.split(drbdadm)
        self.drbdadm = list(drbdadm) if drbdadm else default_drbdadm()
        self.config = config
        self.timeout = timeout
        self.allow_standalone = allow_standalone
        self.check_interval = check_interval
        self.peer_wait = peer_wait
        self.name = name or f"drbd:{resource}"
        self._device: str | None = None

    # ------------------------------------------------------------ commands

    async def run(self, *argv: str, check: bool = True) -> tuple[int, str]:
        """Run one command without blocking the loop; return (status, output).

        Killed if cancelled or past ``timeout``; with ``check``, a non-zero status
        raises :class:`DrbdError` carrying the command and its output."""
        env = dict(os.environ)
        # drbd-utils 9's drbdadm-84 warns on every call that the userland is 9.x.
        env.setdefault("DRBD_DONT_WARN_ON_VERSION_MISMATCH", "1")
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
            )
        except OSError as exc:
            raise DrbdError(f"{shlex.join(argv)}: cannot run: {exc}") from exc
        try:
            raw, _ = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            raise DrbdError(f"{shlex.join(argv)}: no answer within {self.timeout:g} s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                with contextlib.suppress(Exception):
                    await asyncio.shield(process.wait())
        output = raw.decode(errors="replace").strip()
        status = process.returncode if process.returncode is not None else -1
        if check and status != 0:
            raise DrbdError(f"{shlex.join(argv)} exited with {status}: {output or '(no output)'}")
        return status, output

    def adm(self, *args: str) -> list[str]:
        """A drbdadm command line for this resource's configuration."""
        config = ["-c", self.config] if self.config else []
        return [*self.drbdadm, *config, *args]

    async def _word(self, what: str) -> str:
        _, output = await self.run(*self.adm(what, self.resource))
        # The answer is the last line (drbd-utils may print warnings before it).
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        if not lines:
            raise DrbdError(f"drbdadm {what} {self.resource}: empty answer")
        return lines[-1]

    async def state(self) -> DrbdState:
        """The resource's state now (three drbdadm calls)."""
        role = await self._word("role")
        disk = await self._word("dstate")
        connection = await self._word("cstate")
        mine, _, peer = role.partition("/")
        local, _, remote = disk.partition("/")
        return DrbdState(mine, peer or "Unknown", local, remote or "DUnknown", connection)

    async def device(self) -> str:
        """The mount's device, or the resource's own (``drbdadm sh-dev``)."""
        if self.mount is not None and self.mount.device:
            return self.mount.device
        if self._device is None:
            self._device = await self._word("sh-dev")
        return self._device

    # -------------------------------------------------------------- mounts

    def mounted(self) -> bool:
        """Whether the mountpoint is mounted now (read from /proc/self/mounts)."""
        if self.mount is None:
            return False
        target = os.path.realpath(self.mount.mountpoint)
        try:
            lines = Path("/proc/self/mounts").read_text().splitlines()
        except OSError:
            return False
        for line in lines:
            fields = line.split()
            # /proc/mounts escapes a space in a path as \040.
            if len(fields) > 1 and fields[1].replace("\\040", " ") == target:
                return True
        return False

    async def mount_fs(self) -> None:
        if self.mount is None or self.mounted():
            return
        argv = ["mount"]
        if self.mount.fstype:
            argv += ["-t", self.mount.fstype]
        if self.mount.options:
            argv += ["-o", self.mount.options]
        await self.run(*argv, await self.device(), self.mount.mountpoint)
        logger.info("%s: mounted %s", self.name, self.mount.mountpoint)

    async def unmount_fs(self) -> None:
        if self.mount is None or not self.mounted():
            return
        await self.run("umount", self.mount.mountpoint)
        logger.info("%s: unmounted %s", self.name, self.mount.mountpoint)

    # ------------------------------------------------------------- phases

    async def promote(self) -> DrbdState:
        """Check, promote, mount: what becoming Master takes (raises Refused / DrbdError)."""
        try:
            state = await self.state()
        except DrbdError as exc:
            raise Refused(f"cannot read DRBD resource {self.resource}: {exc}") from exc
        why = state.refusal(self.allow_standalone)
        if why is not None and state.unfit(self.allow_standalone) is None:
            state = await self._await_peer_demotion(state)
            why = state.refusal(self.allow_standalone)
        if why is not None:
            logger.error("%s: not promoting: %s", self.name, why)
            raise Refused(why)
        if state.role != "Primary":
            status, output = await self.run(*self.adm("primary", self.resource), check=False)
            if status != 0:
                # The kernel has the last word (it too refuses a stale disk, or a
                # peer that is Primary): its refusal is ours.
                raise Refused(f"drbdadm primary {self.resource} failed ({status}): {output}")
            logger.info("%s: promoted to Primary (was %s)", self.name, state)
        try:
            await self.mount_fs()
        except DrbdError as exc:
            raise Refused(f"promoted, but the filesystem does not mount: {exc}") from exc
        return state

    async def _await_peer_demotion(self, state: DrbdState) -> DrbdState:
        """A connected peer still Primary: when we preempted it, it is demoting now (it
        stepped down when it heard us). Wait up to ``peer_wait`` for DRBD to say so."""
        if state.peer_role != "Primary" or state.connection != "Connected":
            return state
        loop = asyncio.get_running_loop()
        end = loop.time() + self.peer_wait
        logger.info("%s: the peer is still Primary; waiting for it to demote", self.name)
        while loop.time() < end and state.peer_role == "Primary":
            await asyncio.sleep(0.1)
            role = await self._word("role")
            mine, _, peer = role.partition("/")
            state = dataclasses.replace(state, role=mine, peer_role=peer or "Unknown")
        return state

    async def check(self) -> str | None:
        try:
            state = await self.state()
        except DrbdError as exc:
            return f"cannot read DRBD resource {self.resource}: {exc}"
        return state.unfit(self.allow_standalone)

    async def demote(self) -> None:
        """Unmount, then demote (idempotent: a Secondary with nothing mounted is left alone)."""
        await self.unmount_fs()
        role = (await self._word("role")).partition("/")[0]
        if role == "Primary":
            await self.run(*self.adm("secondary", self.resource))
            logger.info("%s: demoted to Secondary", self.name)

    async def prepare(self, event: TransitionEvent) -> None:
        await self.promote()

    async def transition(self, event: TransitionEvent) -> None:
        if event.new is State.MASTER:
            # prepare promoted already; this only repairs a Master whose prepare
            # was skipped (its failure is counted, the addresses are up already).
            await self.promote()
        else:
            await self.demote()
