"""The systemd unit (examples/systemd/vrrpyd.service) against systemd's tools, its page
(docs/systemd.md), and vrrpyd itself run with exactly the privileges the unit gives it.

systemd is not PID 1 where the tests run, so nothing here starts the unit. What can
be checked without it is checked: ``systemd-analyze verify`` and ``security`` read the
file (and every drop-in the page shows); and, in a namespace lab, vrrpyd runs as a
user that is not root with exactly the unit's capabilities (``setpriv``), the unit's
limits (``prlimit``) and no-new-privileges, under ``strace -f``, so that the trace
can be held against the unit's ``SystemCallFilter=``, ``RestrictAddressFamilies=``
and ``ProtectSystem=strict``. That proves the capability list sufficient, which the
unit alone cannot show; the mount namespace settings themselves need a real systemd.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import lab_instance, require_root, require_tool
from vrrpy.daemon.config import DEFAULT_STATE_FILE
from vrrpy.lab import Daemon, Lab, wait_for
from vrrpy.lab.daemon import render

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "examples" / "systemd" / "vrrpyd.service"
DOC = ROOT / "docs" / "systemd.md"
DROP_IN_DIR = "/etc/systemd/system/vrrpyd.service.d/"
EXPOSURE_AT_MOST = 29
"""``systemd-analyze security``'s overall exposure, 2.9 for the unit as shipped (Debian 12,
systemd 252), in the tenths its ``--threshold=`` takes. A change that weakens the
sandbox fails here until the page says so too."""

CAPABILITY_NUMBERS = {
    f"CAP_{name}": number
    for number, name in enumerate(
        [
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE",
            "NET_BROADCAST",
            "NET_ADMIN",
            "NET_RAW",
            "IPC_LOCK",
            "IPC_OWNER",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_PACCT",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_NICE",
            "SYS_RESOURCE",
            "SYS_TIME",
            "SYS_TTY_CONFIG",
            "MKNOD",
            "LEASE",
            "AUDIT_WRITE",
            "AUDIT_CONTROL",
            "SETFCAP",
            "MAC_OVERRIDE",
            "MAC_ADMIN",
            "SYSLOG",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "AUDIT_READ",
            "PERFMON",
            "BPF",
            "CHECKPOINT_RESTORE",
        ]
    )
}
"""Linux's capability numbers (``linux/capability.h``): the bits of ``CapEff:`` and friends."""


# --- reading units and the page ----------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    value: str


def parse_unit(text: str) -> list[Setting]:
    """Every ``Key=value`` of a unit file or drop-in, in order (systemd merges or
    overrides by the key's own rules: see :func:`merged` and :func:`last`)."""
    settings: list[Setting] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        settings.append(Setting(section, key.strip(), value.strip()))
    return settings


def values(settings: Iterable[Setting], key: str, section: str = "Service") -> list[str]:
    return [s.value for s in settings if s.section == section and s.key == key]


def last(settings: Iterable[Setting], key: str, section: str = "Service") -> str | None:
    """The value that wins for a key that one assignment overrides (``User=``, ``Limit*=``)."""
    found = values(settings, key, section)
    return found[-1] if found else None


def merged(settings: Iterable[Setting], key: str) -> frozenset[str]:
    """A list-valued setting as systemd merges it: assignments add, an empty one resets."""
    words: set[str] = set()
    for value in values(settings, key):
        if not value:
            words = set()
        else:
            assert not value.startswith("~"), f"{key}={value}: inverted lists are not read here"
            words |= set(value.split())
    return frozenset(words)


def falsy(value: str | None) -> bool:
    return value is None or value.lower() in ("", "no", "false", "0", "off")


def documented_drop_ins() -> dict[str, str]:
    """The drop-ins docs/systemd.md shows, by file name: each ``ini`` block whose first line
    names its path under /etc/systemd/system/vrrpyd.service.d/."""
    pattern = re.compile(
        r"```ini\n(# " + re.escape(DROP_IN_DIR) + r"([\w.-]+\.conf)\n.*?)```", re.S
    )
    return {match[2]: match[1] for match in pattern.finditer(DOC.read_text())}


def documented_capabilities() -> frozenset[str]:
    """The first column of the table under "## The four capabilities"."""
    text = DOC.read_text()
    start = text.index("\n## The four capabilities")
    end = text.index("\n## ", start + 1)
    return frozenset(re.findall(r"^\| `(CAP_[A-Z_]+)` \|", text[start:end], re.M))


def unit_settings(drop_in: str | None = None) -> list[Setting]:
    settings = parse_unit(UNIT.read_text())
    if drop_in is not None:
        settings += parse_unit(documented_drop_ins()[drop_in])
    return settings


# --- systemd-analyze ---------------------------------------------------------------------------


def vrrpyd_under_test() -> str:
    """The vrrpyd of the environment the tests run in."""
    beside = Path(sys.executable).parent / "vrrpyd"
    found = str(beside) if beside.exists() else shutil.which("vrrpyd")
    assert found, "no vrrpyd console script beside the interpreter or on PATH"
    return found


def runnable(text: str) -> str:
    """``text`` with every Exec*= program ending in /vrrpyd replaced by the test's own.

    ``systemd-analyze verify`` refuses a unit whose ``ExecStart=`` or ``ExecReload=``
    names a program that does not exist, and /opt/vrrpy (where docs/systemd.md
    installs vrrpyd) is not where the tests run: so the copy verified is the unit
    with only that path changed.
    """
    return re.sub(r"(?m)^(Exec\w+=[-@:+!]*)\S*/vrrpyd\b", rf"\g<1>{vrrpyd_under_test()}", text)


def verify(directory: Path, drop_ins: dict[str, str] | None = None, unit: str | None = None) -> str:
    """Write a runnable copy of the unit (and drop-ins) under ``directory`` and run
    ``systemd-analyze verify`` on it; return every problem it reported about them."""
    analyze = require_tool("systemd-analyze")
    path = directory / "vrrpyd.service"
    path.write_text(runnable(UNIT.read_text() if unit is None else unit))
    if drop_ins:
        (directory / "vrrpyd.service.d").mkdir()
        for name, text in drop_ins.items():
            (directory / "vrrpyd.service.d" / name).write_text(runnable(text))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # verify exits 0 on warnings (an unknown key is "ignoring"): each line about our
    # files is a problem, whatever the exit status.
    ours = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if str(directory) in line or "vrrpyd" in line
    ]
    if done.returncode != 0:
        ours.append(f"exit status {done.returncode}: {done.stderr.strip()}")
    return "\n".join(ours)


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert verify(tmp_path) == ""


def test_verify_as_run_here_catches_a_misspelt_key(tmp_path: Path) -> None:
    broken = UNIT.read_text().replace("\nProtectSystem=", "\nProtectSistem=")
    assert "ProtectSistem" in verify(tmp_path, unit=broken)


@pytest.mark.parametrize("name", sorted(documented_drop_ins()))
def test_each_drop_in_the_page_shows_passes_verify(tmp_path: Path, name: str) -> None:
    assert verify(tmp_path, {name: documented_drop_ins()[name]}) == ""


def test_the_page_shows_the_drop_ins_the_tests_rely_on() -> None:
    assert {"rlimits.conf", "script-users.conf", "root.conf", "drbd.conf"} <= set(
        documented_drop_ins()
    )


def test_the_sandbox_rates_no_worse_than_the_page_says(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    path = tmp_path / "vrrpyd.service"
    path.write_text(runnable(UNIT.read_text()))
    done = subprocess.run(
        [analyze, "security", "--offline=true", f"--threshold={EXPOSURE_AT_MOST}", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-600:] + done.stderr
    assert f"{EXPOSURE_AT_MOST / 10:.1f}" in DOC.read_text()


# --- what the unit says, against the page and the daemon ------------------------------------


def test_capabilities_are_the_documented_ones_ambient_and_bounding() -> None:
    settings = unit_settings()
    ambient = merged(settings, "AmbientCapabilities")
    assert ambient == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SYS_NICE", "CAP_IPC_LOCK"}
    assert merged(settings, "CapabilityBoundingSet") == ambient, "nothing can gain more"
    assert documented_capabilities() == ambient
    assert last(settings, "User") not in (None, "", "root", "0"), "root makes caps moot"
    assert last(settings, "NoNewPrivileges") == "yes"


def test_reload_is_checked_then_sighup_and_a_failure_restarts() -> None:
    settings = unit_settings()
    reload = values(settings, "ExecReload")
    assert len(reload) == 2
    assert shlex.split(reload[0])[1:] == ["--check", "-c", "/etc/vrrpy/vrrpyd.toml"]
    assert shlex.split(reload[1]) == ["/bin/kill", "-HUP", "$MAINPID"]
    assert shlex.split(values(settings, "ExecStart")[0])[1:] == ["-c", "/etc/vrrpy/vrrpyd.toml"]
    assert last(settings, "Restart") == "on-failure"
    assert last(settings, "KillMode") == "mixed", "SIGTERM to vrrpyd alone: it stops its own"


def test_the_runtime_directory_holds_the_default_state_file() -> None:
    directory = last(unit_settings(), "RuntimeDirectory")
    assert Path(DEFAULT_STATE_FILE).parent == Path("/run") / str(directory)


LEFT_OUT = {
    "RestrictRealtime": "SCHED_RR would be refused",
    "PrivateUsers": "the capabilities would not reach the host's network",
    "PrivateNetwork": "vrrpyd would see only lo",
    "ProtectKernelTunables": "use_vmac writes /proc/sys/net",
    "MemoryDenyWriteExecute": "scripts in JIT runtimes would be killed",
    "ProtectClock": "its DeviceAllow= closes /dev/drbd* once PrivateDevices= is off",
}


@pytest.mark.parametrize("key", sorted(LEFT_OUT))
def test_a_setting_that_would_break_vrrpyd_is_left_out_and_documented(key: str) -> None:
    assert falsy(last(unit_settings(), key)), f"{key}=: {LEFT_OUT[key]}"
    assert f"`{key}=" in DOC.read_text(), f"docs/systemd.md should say why {key}= is left out"


def test_nothing_else_that_would_break_vrrpyd() -> None:
    settings = unit_settings()
    assert last(settings, "ProtectProc") in (None, "default"), "track_process sees all users"
    assert last(settings, "ProcSubset") in (None, "all"), "use_vmac needs /proc/sys"
    assert last(settings, "LimitRTTIME") is None, "vrrpyd sets it from rlimit_rttime"
    assert last(settings, "CPUSchedulingPolicy") is None, "children would be real-time"


# --- vrrpyd with exactly the unit's privileges, in a lab ---------------------------------------


@dataclass(frozen=True)
class Privileges:
    """What a unit gives its process: capabilities (ambient = bounding) and limits."""

    capabilities: frozenset[str]
    limits: tuple[tuple[str, str], ...]
    """(prlimit option, value) pairs from ``LimitRTPRIO=`` / ``LimitMEMLOCK=``."""

    @classmethod
    def of(cls, settings: list[Setting]) -> Privileges:
        ambient = merged(settings, "AmbientCapabilities")
        assert merged(settings, "CapabilityBoundingSet") == ambient
        limits = []
        for key, option in (("LimitRTPRIO", "rtprio"), ("LimitMEMLOCK", "memlock")):
            value = last(settings, key)
            if value:
                value = "unlimited" if value == "infinity" else value
                limits.append((option, value))
        return cls(ambient, tuple(limits))

    @property
    def mask(self) -> int:
        return sum(1 << CAPABILITY_NUMBERS[name] for name in self.capabilities)

    def setpriv(self, uid: int, gid: int) -> list[str]:
        """``setpriv`` and ``prlimit`` as systemd would set up the process: the user, the
        capabilities in the ambient, inheritable and bounding sets, no-new-privileges."""
        caps = ",".join(
            ["-all", *(f"+{n.removeprefix('CAP_').lower()}" for n in sorted(self.capabilities))]
        )
        limits = [f"--{option}={value}:{value}" for option, value in self.limits]
        return [
            *(["prlimit", *limits, "--"] if limits else []),
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--no-new-privs",
            f"--inh-caps={caps}",
            f"--ambient-caps={caps}",
            f"--bounding-set={caps}",
        ]


def syscall_groups(analyze: str) -> dict[str, list[str]]:
    """``systemd-analyze syscall-filter``'s groups, as this systemd defines them."""
    out = subprocess.run(
        [analyze, "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if not line[0].isspace():
            current = groups.setdefault(word, [])
        else:
            current.append(word)
    return groups


def allowed_syscalls(settings: list[Setting], analyze: str) -> set[str]:
    """The system calls the unit's ``SystemCallFilter=`` lines let through."""
    groups = syscall_groups(analyze)

    def expand(names: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for name in names:
            out |= expand(groups[name]) if name.startswith("@") else {name}
        return out

    allowed: set[str] = set()
    for value in values(settings, "SystemCallFilter"):
        if value.startswith("~"):
            allowed -= expand(value[1:].split())
        else:
            allowed |= expand(value.split())
    return allowed


_CALL = re.compile(r"^\d+\s+([a-z0-9_]+)\(")
_FAMILY = re.compile(r"\bsocket(?:pair)?\((AF_[A-Z0-9]+)")
_PATH = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITES = frozenset(
    [
        "mkdir",
        "mkdirat",
        "rename",
        "renameat",
        "renameat2",
        "unlink",
        "unlinkat",
        "rmdir",
        "mknod",
        "mknodat",
        "symlink",
        "symlinkat",
        "link",
        "linkat",
        "truncate",
        "chmod",
        "fchmodat",
        "chown",
        "lchown",
        "fchownat",
    ]
)
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC")


@dataclass
class Trace:
    """What ``strace -f`` saw a process tree do."""

    calls: set[str]
    families: set[str]
    written: set[str]
    """Paths opened for writing, created, renamed, removed or changed (bytecode caches aside)."""

    @classmethod
    def read(cls, path: Path) -> Trace:
        calls: set[str] = set()
        families: set[str] = set()
        written: set[str] = set()
        for line in path.read_text(errors="replace").splitlines():
            match = _CALL.match(line)
            if match is None:
                continue  # "<... resumed>", "+++ exited", "--- SIGCHLD": named on their first line
            call = match[1]
            calls.add(call)
            families.update(_FAMILY.findall(line))
            writes = call in _WRITES or (
                call in ("open", "openat", "creat") and any(f in line for f in _WRITE_FLAGS)
            )
            if writes:
                for name in _PATH.findall(line):
                    if "__pycache__" not in name:
                        written.add(name if name.startswith("/") else "/" + name)
        return cls(calls, families, written)


def traversable_prelude(paths: Iterable[str], uid: int, gid: int, keep: Path) -> str:
    """Shell lines that, in a private mount namespace, let ``uid`` reach ``paths``.

    A checkout or interpreter under /root (0700) cannot be run by another user. The
    unit hides /root anyway (``ProtectHome=``), and docs/systemd.md installs vrrpy in
    /opt; the test runs the code where it is. Each directory on the way that ``uid``
    may not enter is covered by a tmpfs (0755) in which only the next step of the way
    is bound back from the real directory: what the user may *do* is unchanged, only
    what it can reach. Then ``exec "$@"``.
    """

    def enters(st: os.stat_result) -> bool:
        if st.st_uid == uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid == gid:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)

    blocked: dict[Path, set[str]] = {}
    for given in paths:
        for path in {Path(os.path.abspath(given)), Path(os.path.realpath(given))}:
            for depth in range(1, len(path.parts) - 1):
                directory = Path(*path.parts[: depth + 1])
                if not enters(directory.stat()):
                    blocked.setdefault(directory, set()).add(path.parts[depth + 1])
    ordered = sorted(blocked, key=lambda d: len(d.parts))
    lines = ["set -e"]
    # Every real directory is kept reachable (for root) before any of them is covered.
    for index, directory in enumerate(ordered):
        (keep / str(index)).mkdir(parents=True)
        lines.append(f"mount --bind {shlex.quote(str(directory))} {keep / str(index)}")
    for index, directory in enumerate(ordered):
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(directory))}")
        for child in sorted(blocked[directory]):
            real = keep / str(index) / child
            inside = shlex.quote(str(directory / child))
            make = f"mkdir {inside}" if (directory / child).is_dir() else f"touch {inside}"
            lines.append(f"{make} && mount --bind {shlex.quote(str(real))} {inside}")
    lines.append('exec "$@"')
    return "\n".join(lines)


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as lines:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def read_status_lines(path: Path) -> dict[str, str]:
    return {
        k: v.strip() for k, _, v in (line.partition(":") for line in path.read_text().splitlines())
    }


@contextlib.contextmanager
def state_dir_for(uid: int, gid: int) -> Iterator[Path]:
    """A directory the unprivileged daemon owns (its /run/vrrpyd), removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="vrrpy-unit-", dir="/tmp"))
    try:
        os.chown(work, uid, gid)
        work.chmod(0o755)
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def instances(priority: int, sandboxed: Path | None = None) -> list[dict[str, Any]]:
    """An IPv4 instance with a VMAC and an IPv6 one with Accept_Mode off: between them
    they use every capability (sysctls, macvlan, nft, raw sockets, AF_PACKET)."""
    v4 = lab_instance(priority)
    v6: dict[str, Any] = {
        "name": "VI_2",
        "interface": "eth0",
        "vrid": 52,
        "priority": priority,
        "advert_interval": 0.1,
        "virtual_addresses": ["2001:db8::100/64"],
        "accept": False,
    }
    if sandboxed is not None:
        v4["use_vmac"] = True
        v4["notify_master"] = str(sandboxed / "notify-master")
    return [v4, v6]


REFUSALS = (
    "ermission",
    "not permitted",
    "EPERM",
    "EACCES",
    "refused",
    "not locked",
    "no real",
    "no RLIMIT",
    "stays time-sharing",
)
"""Words of a log line that says the kernel or a tool refused vrrpyd something."""

NOTIFY_SCRIPT = """#!/bin/sh
# What a notify script runs with: its own process's ids and capabilities.
grep -E '^(Uid|CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs):' /proc/self/status > "$0.out.tmp"
mv "$0.out.tmp" "$0.out"
"""


def all_in_state(daemon_state: Path, state: str) -> bool:
    try:
        document = json.loads(daemon_state.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    found = document.get("instances", {})
    return bool(found) and all(item.get("state") == state for item in found.values())


# Only the unit itself: the page's narrower rlimits.conf drop-in (Limit*= instead of two
# capabilities) needs a root that may raise hard limits (CAP_SYS_RESOURCE), which these
# test machines' root lacks, so it is checked by `systemd-analyze verify` only.
@pytest.mark.parametrize("variant", ["the unit"])
def test_vrrpyd_runs_with_exactly_the_units_privileges(tmp_path: Path, variant: str) -> None:
    require_root()
    analyze = require_tool("systemd-analyze")
    for tool in ("setpriv", "prlimit", "unshare", "strace", "nft"):
        require_tool(tool)
    settings = unit_settings(None if variant == "the unit" else variant)
    privileges = Privileges.of(settings)
    syscalls = allowed_syscalls(settings, analyze)
    families = set(merged(settings, "RestrictAddressFamilies"))
    nobody = pwd.getpwnam("nobody")
    uid, gid = nobody.pw_uid, nobody.pw_gid

    with state_dir_for(uid, gid) as work, Lab(hosts=2) as lab:
        script = work / "notify-master"
        script.write_text(NOTIFY_SCRIPT)
        script.chmod(0o755)
        config = work / "vrrpyd.toml"
        state_file = work / "state.json"
        config.write_text(render(state_file, instances(200, work)))
        config.chmod(0o644)
        trace = work / "trace"
        log_path = work / "vrrpyd.log"
        reach = [sys.executable, sys.prefix, sys.base_prefix, *(p for p in sys.path if p)]
        prelude = traversable_prelude(
            [p for p in reach if os.path.exists(p)], uid, gid, work / ".keep"
        )
        argv = [
            *("unshare", "--mount", "--propagation", "private", "sh", "-c", prelude, "sh"),
            *privileges.setpriv(uid, gid),
            *("strace", "-f", "-qq", "-o", str(trace)),
            *(sys.executable, "-m", "vrrpy.daemon", "-c", str(config)),
        ]
        with open(log_path, "wb") as log:
            proc = lab["h1"].popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd="/")

        def log_text() -> str:
            return log_path.read_text(errors="replace")

        assert wait_for(
            lambda: all_in_state(state_file, "MASTER") or proc.poll() is not None, 30
        ), log_text()
        assert proc.poll() is None, log_text()
        document = json.loads(state_file.read_text())
        pid = int(document["pid"])

        # The process had exactly the unit's privileges, and they were enough.
        status = proc_status(pid)
        assert status["Uid"].split() == [str(uid)] * 4
        for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
            assert int(status[field], 16) == privileges.mask, (field, status[field])
        assert status["NoNewPrivs"] == "1"
        assert os.sched_getscheduler(pid) == os.SCHED_RR | os.SCHED_RESET_ON_FORK
        assert int(status["VmLck"].split()[0]) > 0
        assert document["realtime"]["policy"] == "SCHED_RR"
        assert document["realtime"]["memory_locked"] is True
        vmac = lab["h1"].run(["ip", "-o", "addr", "show", "dev", "vrrp4.51"]).stdout
        assert "192.0.2.100/24" in vmac
        # Written through CAP_NET_ADMIN alone (vrrpyd does not log a refused sysctl).
        sysctls = {
            "vrrp4.51/arp_ignore": "1",
            "vrrp4.51/accept_local": "1",
            "vrrp4.51/rp_filter": "0",
            "eth0/arp_ignore": "1",
            "eth0/arp_filter": "1",
        }
        for key, value in sysctls.items():
            path = f"/proc/sys/net/ipv4/conf/{key}"
            assert lab["h1"].run(["cat", path]).stdout.strip() == value, path
        table = lab["h1"].run(["nft", "list", "table", "inet", "vrrpy"]).stdout
        assert "2001:db8::100" in table
        # A refusal is logged, not fatal (no nft table, no sysctl, no real time): look for
        # one. Other warnings (a stall on a loaded machine) are not this test's business.
        refused = [
            line
            for line in log_text().splitlines()
            if (" WARNING " in line or " ERROR " in line) and any(word in line for word in REFUSALS)
        ]
        assert refused == [], "something was refused:\n" + "\n".join(refused)

        # Its notify script ran with the same (inherited, ambient) privileges.
        notified = Path(f"{script}.out")
        assert wait_for(notified.exists, 10), log_text()
        seen = read_status_lines(notified)
        assert seen["Uid"].split() == [str(uid)] * 4
        assert int(seen["CapEff"], 16) == privileges.mask
        assert seen["NoNewPrivs"] == "1"

        # Its adverts are on the wire: an ordinary vrrpyd with a lower priority hears them.
        peer = Daemon(lab["h2"], tmp_path, instances(100)).start()
        assert wait_for(lambda: all_in_state(peer.state_file, "BACKUP"), 10), peer.log.read_text()
        expected = {"VI_1": str(lab["h1"].ipv4), "VI_2": str(lab["h1"].link_local)}

        def heard() -> bool:
            peer.refresh()  # a Backup's master_address is fresh in a file asked for (SIGUSR1)
            return all(peer.instance(name)["master_address"] == a for name, a in expected.items())

        assert wait_for(heard, 5, step=0.2), peer.state()
        assert all_in_state(state_file, "MASTER")

        os.kill(pid, signal.SIGTERM)
        assert proc.wait(20) == 0, log_text()

        # Everything it and its children did fits the unit's filters and file system.
        seen_trace = Trace.read(trace)
        assert seen_trace.calls - syscalls == set(), "outside SystemCallFilter="
        assert seen_trace.families - families == set(), "outside RestrictAddressFamilies="
        allowed = (f"{work}/", "/proc/sys/net/", "/dev/null")
        outside = {p for p in seen_trace.written if p != str(work) and not p.startswith(allowed)}
        assert outside == set(), "written outside the state directory (ProtectSystem=strict)"
        assert {"sched_setscheduler", "mlockall", "sendmsg"} <= seen_trace.calls
