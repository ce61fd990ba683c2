"""A namespace lab: N test hosts on one Linux bridge, torn down whatever happens.

Each host is a network namespace with ``eth0`` (one end of a veth pair whose
other end is enslaved to the lab's bridge), host number i holding
192.0.2.(10+i)/24 and 2001:db8::(10+i)/64 (no DAD). Multicast snooping is off
on the bridge so 224.0.0.18 and ff02::12 reach every host.

This is the one place vrrpy builds multi-host setups: the runtime's tests, the
live demo and the keepalived interop harness all use it. It needs root and
iproute2 (``ip``); nothing here is imported by ``import vrrpy``.

    with Lab(hosts=3) as lab:
        lab["h1"].run(["ip", "addr"])
        proc = lab["h2"].popen(["sleep", "60"])   # killed by PID at teardown

Teardown (leaving the ``with`` block, an exception, or interpreter exit) kills
every process the lab started, by PID, then deletes the namespaces and the
bridge.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import Any, TypeVar

_OPEN_LABS: list[Lab] = []


_T = TypeVar("_T")
_CLONE_NEWNET = 0x40000000


def in_netns(netns: str, work: Callable[[], _T]) -> _T:
    """Run ``work`` in a short-lived thread that has entered ``netns`` (``setns(2)``
    applies to one thread), and return what it returned or raise what it raised.

    For sockets a test or a bench opens inside a lab host without a process of its
    own: a socket stays in the namespace it was made in.
    """
    result: list[_T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, _CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns {netns}: {os.strerror(code)}")
            finally:
                os.close(fd)
            result.append(work())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


class LabError(RuntimeError):
    """An ``ip`` command the lab needed failed; the message has its stderr."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


@dataclass
class Host:
    """One test host: a network namespace with ``eth0`` on the lab bridge."""

    name: str
    netns: str
    index: int
    veth_outside: str
    ipv4: IPv4Address
    ipv6: IPv6Address
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` wrapped to run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *argv]

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the host and wait for it; output is captured as text."""
        return subprocess.run(
            self.command(argv),
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Start a command in the host; the lab kills it (by PID) at teardown."""
        proc: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            self.command(argv), start_new_session=True, **kwargs
        )
        self.processes.append(proc)
        return proc

    def link(self, up: bool) -> None:
        """Set the host's ``eth0`` up or down (a pulled cable, as seen from the host)."""
        _ip("-n", self.netns, "link", "set", "eth0", "up" if up else "down")

    @property
    def mac(self) -> str:
        """The MAC address of the host's ``eth0``."""
        out = _ip("-n", self.netns, "-o", "link", "show", "eth0").stdout
        return out.split("link/ether", 1)[1].split()[0]

    @property
    def link_local(self) -> IPv6Address:
        """The IPv6 link-local address of ``eth0`` (the kernel's, from its MAC)."""
        out = _ip("-n", self.netns, "-o", "-6", "addr", "show", "dev", "eth0", "scope", "link")
        return IPv6Address(out.stdout.split("inet6", 1)[1].split()[0].split("/")[0])


class Lab:
    """A set of hosts on one bridge; use as a context manager."""

    def __init__(self, hosts: int = 2, prefix: str | None = None) -> None:
        if not 1 <= hosts <= 40:
            raise ValueError("a lab has 1..40 hosts")
        self.prefix = prefix or "vy" + secrets.token_hex(2)
        if len(self.prefix) > 8:
            raise ValueError("prefix: at most 8 characters (Linux interface names are short)")
        self.bridge = f"{self.prefix}br"
        self.count = hosts
        self.hosts: dict[str, Host] = {}
        self._up = False

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.down()

    def up(self) -> None:
        """Build the bridge and the hosts (tearing down what was built if any step fails)."""
        _OPEN_LABS.append(self)
        self._up = True
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            with open(f"/sys/class/net/{self.bridge}/bridge/multicast_snooping", "w") as f:
                f.write("0")
            _ip("link", "set", self.bridge, "up")
            for i in range(1, self.count + 1):
                self._add_host(i)
        except BaseException:
            self.down()
            raise

    def _add_host(self, i: int) -> None:
        name = f"h{i}"
        netns = f"{self.prefix}{name}"
        outside = f"{self.prefix}{i}p"
        host = Host(
            name,
            netns,
            i,
            outside,
            IPv4Address(f"192.0.2.{10 + i}"),
            IPv6Address(f"2001:db8::{10 + i:x}"),
        )
        self.hosts[name] = host
        _ip("netns", "add", netns)
        # No duplicate address detection in a lab: link-local addresses are usable at
        # once (an advert cannot leave from a tentative address), as after boot on a
        # real host where DAD finished long ago.
        for conf in ("all", "default"):
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    netns,
                    "sysctl",
                    "-qw",
                    f"net.ipv6.conf.{conf}.accept_dad=0",
                ],
                check=True,
                timeout=30,
            )
        _ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", netns)
        _ip("link", "set", outside, "master", self.bridge, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "link", "set", "eth0", "up")
        _ip("-n", netns, "addr", "add", f"{host.ipv4}/24", "dev", "eth0")
        _ip("-n", netns, "addr", "add", f"{host.ipv6}/64", "dev", "eth0", "nodad")

    def down(self) -> None:
        """Kill every process the lab started (by PID), delete namespaces and the bridge.

        Each step runs even if an earlier one failed: first every process we
        started gets SIGTERM (SIGKILL after 3 s); then anything still running
        inside a host's namespace (children that left our process group, such
        as a daemon's workers) is killed by the PIDs ``ip netns pids`` lists;
        then the namespaces, veths and bridge go.
        """
        if not self._up:
            return
        self._up = False
        problems: list[str] = []
        for host in self.hosts.values():
            for proc in host.processes:
                try:
                    stop_process(proc)
                except Exception as exc:  # keep tearing down; report at the end
                    problems.append(f"{host.name} pid {proc.pid}: {exc!r}")
        for host in self.hosts.values():
            leftover = _ip("netns", "pids", host.netns, check=False).stdout.split()
            for pid in leftover:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", host.netns, check=False)
            _ip("link", "del", host.veth_outside, check=False)
        _ip("link", "del", self.bridge, check=False)
        with contextlib.suppress(ValueError):
            _OPEN_LABS.remove(self)
        if problems:
            raise LabError("teardown: " + "; ".join(problems))

    def wait_for_dad(self, timeout: float = 5.0) -> None:
        """Wait until every host's link-local address has left the tentative state."""
        deadline = time.monotonic() + timeout
        for host in self.hosts.values():
            while time.monotonic() < deadline:
                out = _ip("-n", host.netns, "-6", "addr", "show", "dev", "eth0", "tentative")
                if not out.stdout.strip():
                    break
                time.sleep(0.05)


def stop_process(
    proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, grace: float = 3.0
) -> None:
    """Stop one process group we started: ``sig``, then SIGKILL after ``grace`` s (by PID only)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


@atexit.register
def _teardown_leftovers() -> None:
    for lab in list(_OPEN_LABS):
        lab.down()
