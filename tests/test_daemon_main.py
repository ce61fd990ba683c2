"""vrrpyd the program: --version, the state file's write errors, interfaces checked with
their keys, start-up errors reported as configuration issues, and its threads' policies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import vrrpy
from support import require_root, require_tool
from vrrpy.daemon import main as daemon_main
from vrrpy.daemon.main import StateFile
from vrrpy.lab import Daemon, Lab, wait_for
from vrrpy.runtime.errors import InstanceStartError


def vrrpyd(*args: str, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "vrrpy.daemon", *args]
    if netns is not None:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


def test_version_prints_the_package_version() -> None:
    done = vrrpyd("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"vrrpyd (vrrpy) {vrrpy.__version__}"


# --- the state file ----------------------------------------------------------------------------


def test_failed_writes_are_counted_logged_once_and_reported_after_recovery(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("a file where the state directory should be")  # fails even for root
    state = StateFile(str(blocker / "state.json"), extra=lambda: {"realtime": {"x": 1}})
    caplog.set_level(logging.WARNING, logger="vrrpyd")

    assert state.save({"VI_1": {"state": "MASTER"}}) is False
    assert state.save({"VI_1": {"state": "MASTER"}}) is False
    assert state.errors == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "the second failure, within the interval, is not logged again"
    assert "cannot write the state file" in errors[0].getMessage()

    blocker.unlink()
    assert state.save({"VI_1": {"state": "BACKUP"}}) is True
    document = json.loads((blocker / "state.json").read_text())
    assert document["state_file_errors"] == 2
    assert document["realtime"] == {"x": 1}
    assert document["instances"] == {"VI_1": {"state": "BACKUP"}}
    assert any("written again, after 2 failed write(s)" in r.getMessage() for r in caplog.records)


def test_failed_write_in_the_worker_thread_does_not_vanish(tmp_path: Path) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("")

    async def run() -> StateFile:
        state = StateFile(str(blocker / "state.json"), asyncio.get_running_loop())
        state.request(lambda: {"VI_1": {"state": "MASTER"}})
        await asyncio.sleep(0.2)
        state.close()
        return state

    assert asyncio.run(run()).errors == 1


def test_error_messages_resume_after_the_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "run"
    blocker.write_text("")
    state = StateFile(str(blocker / "state.json"))
    state.ERROR_LOG_INTERVAL = 0.0
    caplog.set_level(logging.ERROR, logger="vrrpyd")
    for _ in range(3):
        state.save({})
    assert len(caplog.records) == 3
    assert "3 failed write(s) so far" in caplog.records[-1].getMessage()


# --- start-up errors -----------------------------------------------------------------------


def write_config(path: Path, interface: str, extra_global: str = "") -> Path:
    state_file = path.parent / "state.json"
    path.write_text(
        f"""
[global]
state_file = "{state_file}"
{extra_global}

[[instance]]
name = "VI_1"
interface = "{interface}"
vrid = 51
virtual_addresses = ["192.0.2.100/24"]
"""
    )
    return path


class RefusingRuntime:
    """A runtime whose first instance cannot start, as the real one says it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, on_transition: Any = None) -> None:
        self.instances: dict[str, Any] = {}
        self.sync_groups: dict[str, Any] = {}

    async def start_async(self, specs: Any) -> None:
        raise InstanceStartError("VI_1", "virtual_addresses", "192.0.2.100/24: cannot add it")

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        pass

    def set_sync_groups(self, groups: Any) -> None:
        pass

    async def close_backends(self) -> None:
        pass

    def fault(self, name: str, reason: str) -> None:
        pass

    def recover(self, name: str, reason: str) -> None:
        pass

    def set_priority(self, name: str, priority: int) -> None:
        pass


def test_instance_start_error_is_printed_like_a_config_issue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import vrrpy.runtime.runtime

    config = write_config(
        tmp_path / "vrrpyd.toml", "eth0", "realtime_priority = 0\nlock_memory = false"
    )
    monkeypatch.setattr(daemon_main, "_ownership_issues", lambda config: [])
    monkeypatch.setattr(vrrpy.runtime.runtime, "Runtime", RefusingRuntime)
    assert daemon_main.main(["-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert f"{config}: instance[VI_1].virtual_addresses: 192.0.2.100/24: cannot add it" in err
    assert "Traceback" not in err


def test_missing_interface_is_named_by_its_key_in_check_and_at_start() -> None:
    require_root()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        host = lab["h1"]
        config = write_config(Path(tmp) / "vrrpyd.toml", "nosuchif0", f'netns = "{host.netns}"')
        expected = (
            f"{config}: instance[VI_1].interface: no interface nosuchif0 "
            f"in network namespace {host.netns}"
        )
        for args in (["--check", "-c", str(config)], ["-c", str(config)]):
            done = vrrpyd(*args)
            assert done.returncode == 1, done.stderr
            assert expected in done.stderr
            assert "Traceback" not in done.stderr
        # The same file is fine once the interface exists there.
        config.write_text(config.read_text().replace("nosuchif0", "eth0"))
        done = vrrpyd("--check", "-c", str(config))
        assert done.returncode == 0, done.stderr


def test_a_vmac_the_kernel_refuses_is_named_by_its_key_not_a_traceback() -> None:
    """use_vmac without CAP_NET_ADMIN (setpriv drops it from the bounding set): the macvlan
    cannot be made, and vrrpyd says so with the key and what to do, then exits 1."""
    require_root()
    setpriv = require_tool("setpriv")
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        host = lab["h1"]
        config = write_config(
            Path(tmp) / "vrrpyd.toml",
            "eth0",
            f'netns = "{host.netns}"\nrealtime_priority = 0\nlock_memory = false',
        )
        config.write_text(config.read_text() + "use_vmac = true\n")
        argv = [setpriv, "--bounding-set", "-net_admin", "--inh-caps", "-net_admin"]
        argv += [sys.executable, "-m", "vrrpy.daemon", "-c", str(config)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 1, done.stderr
        assert f"{config}: instance[VI_1].use_vmac: cannot create the macvlan vrrp4.51" in (
            done.stderr
        )
        assert "CAP_NET_ADMIN" in done.stderr
        assert "Traceback" not in done.stderr
        links = host.run(["ip", "-o", "link"]).stdout
        assert "vrrp4.51" not in links


def test_a_sysctl_the_kernel_refuses_is_a_warning_naming_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from vrrpy.net import addresses

    conf = tmp_path / "arp_ignore"
    conf.write_text("0\n")
    conf.chmod(0o444)
    real_open = open

    def fake_open(path: str, mode: str = "r", *args: object, **kwargs: object) -> object:
        if path.endswith("/eth9/arp_ignore"):
            if "w" in mode:
                raise PermissionError(30, "Read-only file system")
            return real_open(conf, mode)
        return real_open(path, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    caplog.set_level("DEBUG", logger="vrrpy.net")
    netlink = addresses.Netlink.__new__(addresses.Netlink)
    assert netlink.set_sysctl(4, "eth9", "arp_ignore", 1) is None
    assert netlink.set_sysctl(4, "nosuchif9", "arp_ignore", 1) is None  # absent: debug only
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "/proc/sys/net/ipv4/conf/eth9/arp_ignore" in message
    assert "stays 0" in message and "Read-only" in message


# --- the daemon's threads ----------------------------------------------------------------------


def scheduling(pid: int) -> list[tuple[int, int, int]]:
    """(tid, policy, priority) of every thread of ``pid``."""
    out = []
    for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
        with contextlib.suppress(ProcessLookupError):
            out.append((tid, os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority))
    return out


def test_vrrpyd_runs_its_loop_real_time_and_its_state_writer_one_below() -> None:
    require_root()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        instance = {
            "name": "VI_1",
            "interface": "eth0",
            "vrid": 51,
            "priority": 200,
            "advert_interval": 0.1,
            "virtual_addresses": ["192.0.2.100/24"],
        }
        daemon = Daemon(lab["h1"], Path(tmp), [instance]).start()
        assert wait_for(lambda: daemon.instance()["state"] == "MASTER", 5)
        daemon.refresh()  # the state-file worker has written at least once
        assert daemon.proc is not None
        pid = daemon.proc.pid  # `ip netns exec` execs: the same process
        threads = scheduling(pid)
        rr = os.SCHED_RR | os.SCHED_RESET_ON_FORK
        assert (pid, rr, 10) in threads, threads
        assert any(policy == rr and priority == 9 for _, policy, priority in threads), threads
        assert [t for t in threads if t[2] == 10] == [(pid, rr, 10)], "only the loop at 10"
        with open(f"/proc/{pid}/status") as status:
            locked = next(int(line.split()[1]) for line in status if line.startswith("VmLck:"))
        assert locked > 0
        document = daemon.state()
        assert document["realtime"]["policy"] == "SCHED_RR"
        assert document["realtime"]["memory_locked"] is True
        assert document["state_file_errors"] == 0
        assert daemon.terminate() == 0
