"""Process tracking (keepalived's ``vrrp_track_process``), from scans of /proc, inside the agent.

Matching is keepalived's (``keepalived/core/track_process.c``: ``read_procs``,
``check_params``): without parameters and without ``full_command`` the name
is compared with the process name (comm, the second field of
``/proc/PID/stat``, which the kernel cuts at 15 characters), zombies not
counted; with ``full_command`` or parameters it is compared with ``argv[0]``
of ``/proc/PID/cmdline``, and the parameters (each NUL-terminated, as in the
kernel's buffer) are matched ``exact`` (the default with parameters), ``partial``
(the configured bytes are a prefix of the process's) or ``initial`` (the last
configured parameter only needs to be a prefix). The object is up while the
number of matching processes is within ``quorum`` .. ``quorum_max``
(keepalived's ``have_quorum``; defaults 1 and unbounded).

Why /proc scans and not the kernel's process events (the proc connector,
which keepalived uses):

* the agent runs in the network namespace of the instances it serves, and
  the proc connector is a netlink family the kernel creates in the initial
  network namespace only (``cn_init``: ``netlink_kernel_create(&init_net,
  NETLINK_CONNECTOR, ...)``): in any other namespace it hears nothing.
  Subscribing also needs CAP_NET_ADMIN in the initial user namespace and an
  initial PID namespace (``cn_proc_mcast_ctl``);
* each exec event still has to be followed by reading ``/proc/PID/stat`` or
  ``cmdline`` to learn the name, and on a busy host the connector delivers
  every fork and exit of the machine to us; a scan reads only what it needs;
* a scan costs about 20 us per process (one small read of ``stat``; ``cmdline``
  only when some object needs it): a few milliseconds a second on a host with
  a few hundred processes, in the agent, never in the protocol loop.

The price is latency: a process that dies is noticed within ``interval``
(default 1 s, the smallest interval of the process objects is used for one
shared scan).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from typing import Any

from vrrpy.track.model import Kind, Verdict
from vrrpy.track.protocol import ProcessSpec

__all__ = ["ProcessScanner", "params_match", "process_matches"]

_PIDS_SHOWN = 10


def params_match(spec: ProcessSpec, params: bytes) -> bool:
    """keepalived's ``check_params``: ``params`` is the process's cmdline after argv[0]'s NUL."""
    wanted = b"".join(p.encode() + b"\0" for p in spec.params)
    match = spec.param_match
    if match == "none":
        return True
    if match == "exact" and not wanted and not params:
        return True
    if len(params) < len(wanted):
        return False
    if match == "exact":
        return params == wanted
    if not wanted:
        return True
    if match == "partial":
        return params.startswith(wanted)
    return len(wanted) == 1 or params.startswith(wanted[:-1])


def process_matches(spec: ProcessSpec, comm: str | None, cmdline: bytes | None) -> bool:
    """Whether one process (its comm, its raw cmdline) counts for ``spec``."""
    if not spec.uses_cmdline:
        return comm is not None and comm == spec.process
    if not cmdline:
        return False
    argv0, _, rest = cmdline.partition(b"\0")
    if argv0 != spec.process.encode():
        return False
    return params_match(spec, rest)


def read_comm(pid: str) -> str | None:
    """The comm of ``/proc/PID/stat``, or None for a zombie or a process already gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read(512)
    except OSError:
        return None
    start, end = stat.find(b"("), stat.rfind(b")")
    if start < 0 or end < start or stat[end + 2 : end + 3] == b"Z":
        return None
    return stat[start + 1 : end].decode(errors="replace")


def read_cmdline(pid: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read(65536)
    except OSError:
        return None


def scan(specs: Iterable[ProcessSpec], proc: str = "/proc") -> dict[str, list[int]]:
    """One pass over ``/proc``: the matching PIDs of each spec, by name."""
    specs = list(specs)
    found: dict[str, list[int]] = {s.name: [] for s in specs}
    need_comm = any(not s.uses_cmdline for s in specs)
    need_cmdline = any(s.uses_cmdline for s in specs)
    with os.scandir(proc) as entries:
        for entry in entries:
            pid = entry.name
            if not pid.isdigit():
                continue
            comm = read_comm(pid) if need_comm else None
            cmdline = read_cmdline(pid) if need_cmdline else None
            for spec in specs:
                if process_matches(spec, comm, cmdline):
                    found[spec.name].append(int(pid))
    return found


class ProcessScanner:
    """Every process object of the agent, served by one scan of /proc per interval."""

    def __init__(self, specs: Iterable[ProcessSpec], report: Callable[[Verdict], None]) -> None:
        self.specs = {s.name: s for s in specs}
        self._report = report
        self.interval = min((s.interval for s in self.specs.values()), default=1.0)
        self.pids: dict[str, list[int]] = {}
        self.verdicts: dict[str, Verdict] = {}
        self.scans = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.scan_once()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due = max(due + self.interval, loop.time())
            await asyncio.sleep(due - loop.time())
            self.scan_once()

    def scan_once(self) -> None:
        self.pids = scan(self.specs.values())
        self.scans += 1
        for name, spec in self.specs.items():
            count = len(self.pids[name])
            limit = "" if spec.quorum_max is None else f"..{spec.quorum_max}"
            up = count >= spec.quorum and (spec.quorum_max is None or count <= spec.quorum_max)
            old = self.verdicts.get(name)
            if old is not None and old.up == up:
                continue
            reason = (
                f"process {name}: {count} running, quorum {spec.quorum}{limit}"
                f" {'held' if up else 'lost'}"
            )
            self.verdicts[name] = Verdict(name, Kind.PROCESS, up, reason, detail={"count": count})
            self._report(self.verdicts[name])

    def status(self, name: str) -> dict[str, Any]:
        verdict = self.verdicts.get(name)
        return {
            "kind": "process",
            "up": None if verdict is None else verdict.up,
            "reason": "no verdict yet" if verdict is None else verdict.reason,
            "count": len(self.pids.get(name, [])),
            "pids": self.pids.get(name, [])[:_PIDS_SHOWN],
        }
