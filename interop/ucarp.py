"""ucarp in a lab host: its command line from the same instance dicts as vrrpyd's, its state
read from its own log, its up and down scripts recorded.

An instance dict uses vrrpyd's CARP keys (``protocol = "carp"``, ``interface``,
``vhid``, ``advbase``, ``advskew``, ``password``, ``preempt``,
``virtual_addresses``; ``carp_profile`` must be ``"ucarp"`` if given), so one
scenario describes both implementations. ucarp runs one virtual host per
process, with one IPv4 address: a list of more than one instance, or an
instance with more than one address, is refused here rather than half run.
A few keys are ucarp's alone: ``shutdown`` (``-z``: run the down script at
exit), ``neutral`` (``-n``), ``deadratio`` (``-r``) and ``xparam`` (``-x``).
vrrpyd's keys that ucarp has no counterpart for (``name``, ``replay_protection``,
``up_script``, ...) are left out, as the keepalived harness leaves out what it
cannot say.

How it runs: in the foreground, ``ucarp -f none -D`` (``-f none`` means no
syslog; with no ``-B`` every line also goes to the console: warnings and errors
to stderr, unbuffered, the rest to stdout, line-buffered here with ``stdbuf
-oL``; both into one file). ``-D`` adds a debug line per advert received, and
``sc_tv(local) = ...`` only after an advert's digest matched: that is how an
accepted advert is counted.

The state comes from ucarp's own ``Switching to state: X`` lines. ucarp writes
them itself, in order, from its one thread, before it runs the script (and it
waits for the script: ``spawn_handler`` calls ``waitpid``), so neither a
script's delay nor a loaded machine can reorder them. (keepalived's notify
scripts are forked and not waited for, which is why the keepalived harness
reads its log instead of its scripts.) The scripts are recorded too, one line
per call with ucarp's arguments (``SCRIPT IFACE VIP``): the scenario that checks
them compares both.

ucarp does not touch addresses itself: its scripts do. The up script here adds
the virtual address (with the instance's prefix length), the down script
removes it, as Debian's ``/usr/share/ucarp/vip-up`` and ``vip-down`` do.
Without ``-z`` nothing removes it when ucarp stops.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from vrrpy.lab import Host, wait_for

# What ucarp logs when it drops an advert (src/carp.c, packethandler) or cannot send.
COMPLAINTS = re.compile(
    "|".join(
        [
            r"Bad TTL",
            r"Bad version",
            r"Bad IP checksum",
            r"Bad digest",
            r"Bogus size",
            r"write\(\) has failed",
            r"write\(\) error",
            r"write\(\) in garp",
            r"\[ERROR\]",
        ]
    )
)

PCAP_LATENCY = 1.0
"""ucarp opens libpcap with a 1000 ms timeout (``CAPTURE_TIMEOUT``): on Linux (TPACKET_V3)
a packet reaches it when its block is retired, up to this many seconds after it arrived."""


def master_down_as_run(advbase: int, advskew: int, deadratio: int = 3) -> float:
    """When a ucarp Backup takes over, in seconds after the last advert it *processed*.

    Its master-down timer is CARP's, ``deadratio * advbase + advskew / 256``, but it is
    only looked at when ``poll`` returns, and a Backup polls with a timeout of
    ``advbase`` s + ``advskew * 1000 // 256`` ms (``docarp`` in src/carp.c; the BPF
    filter lets nothing but CARP wake it). With the Master gone nothing arrives, so
    the takeover comes at the first whole number of those timeouts past the timer:
    4.17 s for advbase 1 / advskew 100 where the formula says 3.39 s (with advskew 0 the
    two agree, 3 x 1 s). On the wire add up to :data:`PCAP_LATENCY` (the advert
    was processed late) and the up script, which ucarp waits for before it sends.
    """
    timer = deadratio * advbase + advskew / 256
    poll = advbase + (advskew * 1000 // 256) / 1000
    return math.ceil(timer / poll - 1e-9) * poll


SWITCHING = re.compile(r"Switching to state: (INIT|BACKUP|MASTER)")
STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6}): (.*)$")
"""ucarp's console line: local time to the microsecond (``logfile`` in src/log.c), text."""
ACCEPTED = "sc_tv(local)"  # the debug line ucarp prints once an advert's digest matched

SCRIPT = """#!/bin/sh
# An up/down script as ucarp calls it (SCRIPT IFACE VIP [XPARAM]): record the call first.
echo "$(date +%s.%N) {role} $*" >> {record}
{action}
"""


def recording_script(path: Path, role: str, record: Path, action: str = "") -> Path:
    """Write an executable ``role`` ("up" or "down") script at ``path`` that appends
    ``TIME ROLE ARGS...`` to ``record``, then runs the shell ``action``. ucarp's scripts
    here, and vrrpyd's ``up_script`` / ``down_script`` in the scenario comparing them."""
    path.write_text(SCRIPT.format(role=role, record=record, action=action))
    path.chmod(0o755)
    return path


def script_calls(record: Path) -> list[tuple[float, str, list[str]]]:
    """(time, "up" or "down", arguments) of every call recorded in ``record``, in order."""
    try:
        lines = record.read_text().splitlines()
    except FileNotFoundError:
        return []
    calls = []
    for line in lines:
        stamp, role, *args = line.split()
        calls.append((float(stamp), role, args))
    return calls


def _vip(inst: Mapping[str, Any]) -> IPv4Interface:
    addresses = list(inst["virtual_addresses"])
    if len(addresses) != 1:
        raise ValueError(f"ucarp carries one address per process, got {addresses}")
    vip = IPv4Interface(str(addresses[0]))
    return vip if "/" in str(addresses[0]) else IPv4Interface(f"{vip.ip}/32")


def argv(host: Host, inst: Mapping[str, Any], up: Path, down: Path) -> list[str]:
    """ucarp's command line for one vrrpyd CARP instance dict."""
    if inst.get("protocol", "carp") != "carp":
        raise ValueError("ucarp speaks CARP: the instance needs protocol = 'carp'")
    if inst.get("carp_profile", "ucarp") != "ucarp":
        raise ValueError(f"ucarp signs as the ucarp profile, not {inst['carp_profile']!r}")
    out = ["stdbuf", "-oL", "ucarp", "-i", inst.get("interface", "eth0")]
    out += ["-s", str(host.ipv4), "-v", str(inst["vhid"]), "-p", str(inst["password"])]
    out += ["-a", str(_vip(inst).ip)]
    out += ["-b", str(inst.get("advbase", 1)), "-k", str(inst.get("advskew", 0))]
    out += ["-u", str(up), "-d", str(down), "-f", "none", "-D"]
    if inst.get("preempt", False):
        out.append("-P")
    if inst.get("shutdown", False):
        out.append("-z")
    if inst.get("neutral", False):
        out.append("-n")
    if "deadratio" in inst:
        out += ["-r", str(inst["deadratio"])]
    if "xparam" in inst:
        out += ["-x", str(inst["xparam"])]
    return out


class Ucarp:
    """One ucarp process in one lab host (one VHID, one IPv4 address)."""

    def __init__(self, host: Host, workdir: Path, instances: Sequence[Mapping[str, Any]]) -> None:
        if len(instances) != 1:
            raise ValueError(f"ucarp runs one virtual host per process, got {len(instances)}")
        self.host = host
        self.instance = instances[0]
        self.dir = workdir / f"{host.name}-ucarp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "ucarp.log"
        self.scripts = self.dir / "scripts.log"
        vip = _vip(self.instance)
        iface = self.instance.get("interface", "eth0")
        self.up = recording_script(
            self.dir / "vip-up.sh", "up", self.scripts, f"ip addr add {vip} dev {iface}"
        )
        self.down = recording_script(
            self.dir / "vip-down.sh",
            "down",
            self.scripts,
            f"ip addr del {vip} dev {iface} 2>/dev/null || true",
        )
        self.argv = argv(host, self.instance, self.up, self.down)
        self.proc: subprocess.Popen[bytes] | None = None
        self._read = 0
        self._partial = b""
        self._states: list[str] = []
        self._complaints_from = 0

    def start(self) -> Ucarp:
        """Start ucarp; return once it has logged its first state (BACKUP, from INIT)."""
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = self.host.popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc
        if not wait_for(lambda: "BACKUP" in self.states() or proc.poll() is not None, 10):
            raise AssertionError(f"ucarp did not start:\n{self.text()}")
        if proc.poll() is not None:
            raise AssertionError(f"ucarp exited ({proc.returncode}):\n{self.text()}")
        return self

    @property
    def pid(self) -> int:
        """ucarp's own PID (``ip netns exec`` and ``stdbuf`` exec it: no wrapper left)."""
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def states(self) -> list[str]:
        """Every state ucarp has logged switching to, in order (INIT first)."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self._read)
                data = log.read()
        except FileNotFoundError:
            data = b""
        self._read += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            match = SWITCHING.search(line.decode(errors="replace"))
            if match:
                self._states.append(match[1])
        return list(self._states)

    def state(self) -> str:
        """The state ucarp last logged switching to (INIT before it logged any)."""
        found = self.states()
        return found[-1] if found else "INIT"

    def transitions(self) -> list[str]:
        """The states entered after INIT (the keepalived harness's form)."""
        return [s for s in self.states() if s != "INIT"]

    def accepted(self) -> int:
        """Adverts whose digest matched (the ``sc_tv(local)`` debug line) so far."""
        return self.text().count(ACCEPTED)

    def script_calls(self) -> list[tuple[float, str, list[str]]]:
        """(time, "up" or "down", arguments) of every script call, in order."""
        return script_calls(self.scripts)

    def stamped(self, needle: str) -> list[float]:
        """When ucarp logged each line containing ``needle`` (seconds since the epoch,
        from its local-time stamps: comparable with the capture's kernel timestamps)."""
        found = []
        for line in self.text().splitlines():
            match = STAMP.match(line)
            if match and needle in match[3]:
                local = time.mktime(time.strptime(match[1], "%Y-%m-%dT%H:%M:%S"))
                found.append(local + int(match[2]) / 1e6)
        return found

    def complaints(self) -> list[str]:
        """ucarp's log lines against a received advert (or its own sends) since the last
        :meth:`forget_complaints`."""
        with open(self.log, "rb") as log:
            log.seek(self._complaints_from)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if COMPLAINTS.search(line)]

    def forget_complaints(self) -> None:
        """The complaints so far were provoked on purpose."""
        self._complaints_from = self.log.stat().st_size if self.log.exists() else 0

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no script, nothing sent (ucarp never sends a bow-out anyway)."""
        self.send_signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(5)

    def terminate(self, sig: int = signal.SIGTERM) -> int:
        """Stop it with ``sig`` (SIGTERM, SIGINT, ...) and wait. With ``-z`` ucarp runs its
        down script (when not BACKUP) and exits; without, the signal's default action
        ends it on the spot. Either way it sends nothing."""
        self.send_signal(sig)
        assert self.proc is not None
        code = self.proc.wait(15)
        time.sleep(0.05)
        return code
