"""The agent's checks on this host (scripts, files, processes) and the agent end to end.

No namespaces here (tests/test_track_netns.py has interfaces and ping
targets). Every process a test starts is killed by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support import require_root, require_tool
from vrrpy.track.client import AGENT_COMMAND, Tracking, TrackingAgent
from vrrpy.track.file import FileCheck, Inotify
from vrrpy.track.model import Kind, Track, TrackingChange, Verdict
from vrrpy.track.process import ProcessScanner
from vrrpy.track.protocol import FileSpec, ProcessSpec, ScriptSpec
from vrrpy.track.script import ScriptCheck, last_line


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def gone(pid: int) -> bool:
    """True when ``pid`` has exited (absent, or a zombie nobody reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] == b"Z"


# --- scripts ------------------------------------------------------------------------


async def one_run(spec: ScriptSpec) -> tuple[ScriptCheck, list[Verdict]]:
    seen: list[Verdict] = []
    check = ScriptCheck(spec, seen.append)
    await check.run_once()
    return check, seen


def test_script_exit_zero_is_up_and_its_last_output_line_is_kept() -> None:
    spec = ScriptSpec("chk", "/bin/sh -c 'echo first; echo; echo \"all good\"'")
    check, seen = asyncio.run(one_run(spec))
    assert [v.up for v in seen] == [True]
    assert seen[0].reason == "script chk succeeded"
    assert check.last["output"] == "all good" and check.last["status"] == 0
    assert 0 < check.last["runtime"] < 2


def test_script_failure_names_its_exit_status() -> None:
    _, seen = asyncio.run(one_run(ScriptSpec("chk_nginx", "/bin/sh -c 'exit 3'")))
    assert seen[0].up is False and seen[0].reason == "script chk_nginx failed (exit 3)"


def test_script_runs_without_a_shell() -> None:
    # A shell would expand the variable and the glob; argv gets them verbatim.
    check, _ = asyncio.run(one_run(ScriptSpec("echo", "/bin/echo $HOME *")))
    assert check.last["output"] == "$HOME *"


def test_a_script_that_cannot_start_counts_as_failed() -> None:
    _, seen = asyncio.run(one_run(ScriptSpec("chk", "/nonexistent/check")))
    assert seen[0].up is False and "could not start" in seen[0].reason


def test_a_hanging_script_is_killed_with_its_children_at_its_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"/bin/sh -c 'sleep 30 & echo $! > {pidfile}; echo waiting; wait'"
    started = time.monotonic()
    check, seen = asyncio.run(one_run(ScriptSpec("hang", script, interval=5, timeout=0.3)))
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5
    assert seen[0].up is False and seen[0].reason == "script hang timed out after 0.3 s"
    assert check.last["outcome"] == "timeout" and check.last["output"] == "waiting"
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 2
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone(child), "the script's child survived its timeout"


def test_script_runs_as_the_configured_user() -> None:
    require_root()
    nobody = pwd.getpwnam("nobody")
    check, seen = asyncio.run(one_run(ScriptSpec("who", "/usr/bin/id -u", user="nobody")))
    assert seen[0].up is True and check.last["output"] == str(nobody.pw_uid)
    check, _ = asyncio.run(one_run(ScriptSpec("who", "/usr/bin/id -G", user="nobody")))
    assert check.last["output"] == str(nobody.pw_gid)  # the user's group, nothing else


def test_rise_and_fall_apply_across_runs(tmp_path: Path) -> None:
    async def scenario(tmp: Path) -> list[bool | None]:
        flag = tmp / "ok"
        states: list[bool | None] = []
        check = ScriptCheck(
            ScriptSpec("chk", f"/usr/bin/test -e {flag}", rise=2, fall=2), lambda v: None
        )
        for exists in (True, False, False, True, True):
            if exists:
                flag.touch()
            else:
                flag.unlink(missing_ok=True)
            await check.run_once()
            states.append(check.counter.up)
        return states

    assert asyncio.run(scenario(tmp_path)) == [True, True, False, False, True]


def test_last_line_is_bounded() -> None:
    assert last_line(b"a\n" + b"x" * 500 + b"\n\n") == "x" * 200
    assert last_line(b"") == ""


# --- files --------------------------------------------------------------------------


def test_track_file_follows_writes_renames_and_removal(tmp_path: Path) -> None:
    target = tmp_path / "prio"
    target.write_text("5\n")

    async def scenario() -> list[int]:
        values: list[int] = []
        inotify = Inotify()
        check = FileCheck(FileSpec("prio", str(target)), inotify, lambda v: values.append(v.value))
        loop = asyncio.get_running_loop()

        def readable() -> None:
            for wd, mask, name in inotify.read():
                if wd == check.wd:
                    check.event(mask, name)

        loop.add_reader(inotify.fileno(), readable)
        try:
            check.start()
            target.write_text("12")  # in place: IN_CLOSE_WRITE
            await until(lambda: values[-1] == 12)
            fresh = tmp_path / ".prio.tmp"
            fresh.write_text("-3\n")
            fresh.rename(target)  # replaced by a rename: IN_MOVED_TO
            await until(lambda: values[-1] == -3)
            target.unlink()  # removed: 0 (keepalived)
            await until(lambda: values[-1] == 0)
            target.write_text("0x10")
            await until(lambda: values[-1] == 16)
            target.write_text("4294967296")  # out of range: ignored, 16 stays
            # Replaced by a rename, not rewritten in place: a reader woken by the write
            # above must never find the file truncated and empty (that reads as 0).
            fresh.write_text("7")
            fresh.rename(target)
            await until(lambda: values[-1] == 7)
        finally:
            loop.remove_reader(inotify.fileno())
            inotify.close()
        return values

    assert asyncio.run(scenario()) == [5, 12, -3, 0, 16, 7]


def test_a_missing_file_reads_as_zero_until_it_appears(tmp_path: Path) -> None:
    seen: list[Verdict] = []
    inotify = Inotify()
    try:
        check = FileCheck(FileSpec("f", str(tmp_path / "absent")), inotify, seen.append)
        check.start()
    finally:
        inotify.close()
    assert seen[0].value == 0 and "unreadable (ENOENT), read as 0" in seen[0].reason


# --- processes ----------------------------------------------------------------------


def test_process_tracking_counts_a_named_process_by_comm_and_by_command_line(
    tmp_path: Path,
) -> None:
    comm = "vysl" + secrets.token_hex(4)  # unique: other people's sleeps must not count
    binary = tmp_path / comm
    shutil.copy("/bin/sleep", binary)
    seconds = f"{secrets.randbelow(10**6) + 1000}.5"
    by_comm = ProcessSpec("by_comm", comm, quorum=2)
    by_cmdline = ProcessSpec("by_cmdline", str(binary), (seconds,), "exact", True)
    seen: list[Verdict] = []
    scanner = ProcessScanner([by_comm, by_cmdline], seen.append)
    procs = []
    try:
        scanner.scan_once()
        assert {v.name: v.up for v in seen} == {"by_comm": False, "by_cmdline": False}
        procs.append(subprocess.Popen([str(binary), seconds]))
        scanner.scan_once()
        assert scanner.pids["by_comm"] == [procs[0].pid]
        assert scanner.pids["by_cmdline"] == [procs[0].pid]
        assert seen[-1].name == "by_cmdline" and seen[-1].up
        procs.append(subprocess.Popen([str(binary), "999"]))
        scanner.scan_once()
        assert sorted(scanner.pids["by_comm"]) == sorted(p.pid for p in procs)
        assert seen[-1].name == "by_comm" and seen[-1].up  # quorum 2 reached
        assert seen[-1].reason == "process by_comm: 2 running, quorum 2 held"
        procs[0].kill()
        procs[0].wait()
        scanner.scan_once()
        assert {v.name: v.up for v in seen[-2:]} == {"by_comm": False, "by_cmdline": False}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


# --- the agent, end to end ----------------------------------------------------------


def test_agent_reports_changes_on_its_pipe_and_exits_when_stdin_closes(tmp_path: Path) -> None:
    prio = tmp_path / "prio"
    prio.write_text("0")
    specs = [
        FileSpec("prio", str(prio)),
        ScriptSpec("ok", "/bin/true", interval=0.2),
        ScriptSpec("bad", "/bin/false", interval=0.2),
    ]
    changes: list[TrackingChange] = []

    async def scenario() -> Tracking:
        tracking = Tracking(
            specs,
            {
                "VI_1": (
                    100,
                    [
                        Track("prio", Kind.FILE, 10),
                        Track("ok", Kind.SCRIPT),
                        Track("bad", Kind.SCRIPT, -20),
                    ],
                )
            },
            changes.append,
        )
        tracking.start(asyncio.get_running_loop())
        try:
            await until(lambda: tracking.agent.ready)
            await until(lambda: tracking.instances["VI_1"].effective_priority == 80)
            assert not tracking.instances["VI_1"].fault
            prio.write_text("3")
            await until(lambda: tracking.instances["VI_1"].effective_priority == 110)
            tracking.agent.request_status()
            await until(lambda: "ok" in tracking.agent.status)
            assert tracking.agent.status["ok"]["runs"] >= 1
            assert tracking.status()["VI_1"]["tracks"]["prio"]["agent"]["value"] == 3
        finally:
            tracking.stop()
        return tracking

    tracking = asyncio.run(scenario())
    assert tracking.agent.proc is not None and tracking.agent.proc.returncode == 0
    assert changes[-1].priority == 110 and changes[-1].reason.endswith("holds 3")
    assert any(c.fault_left for c in changes)  # "ok" (weight 0) had no verdict at first


def test_agent_refuses_a_bad_configuration_with_an_error_line() -> None:
    async def scenario() -> TrackingAgent:
        ended: list[str] = []
        agent = TrackingAgent(
            [ScriptSpec("chk", "/bin/true", user="no-such-user-vrrpy")],
            lambda v, t: None,
            on_exit=ended.append,
        )
        agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: bool(ended))
        finally:
            agent.stop()
        assert "no user 'no-such-user-vrrpy'" in ended[0]
        return agent

    agent = asyncio.run(scenario())
    assert agent.proc is not None and agent.proc.returncode == 2


def test_agent_death_faults_weight_zero_tracks() -> None:
    changes: list[TrackingChange] = []

    async def scenario() -> None:
        tracking = Tracking(
            [ScriptSpec("ok", "/bin/true", interval=5)],
            {"VI_1": (100, [Track("ok", Kind.SCRIPT)])},
            changes.append,
        )
        tracking.start(asyncio.get_running_loop())
        try:
            await until(lambda: not tracking.instances["VI_1"].fault)
            pid = tracking.agent.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await until(lambda: tracking.instances["VI_1"].fault)
        finally:
            with contextlib.suppress(Exception):
                tracking.stop()

    asyncio.run(scenario())
    assert changes[-1].fault_entered and "tracking agent ended" in changes[-1].reason


def test_malformed_agent_lines_are_counted_not_raised() -> None:
    agent = TrackingAgent([], lambda v, t: None)
    for line in (b"not json", b"[]", b'{"type":"verdict"}', b'{"type":"weird"}'):
        agent.feed_line(line)
    assert agent.malformed == 4


def test_agent_module_runs_as_a_program() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "vrrpy.track.agent"],
        input=b'{"type":"config","version":1,"objects":[]}\n',
        capture_output=True,
        timeout=10,
    )
    assert proc.returncode == 0 and proc.stdout == b'{"type":"ready"}\n'
    bad = subprocess.run(
        [sys.executable, "-m", "vrrpy.track.agent"], input=b"{}\n", capture_output=True, timeout=10
    )
    assert bad.returncode == 2 and b'"type":"error"' in bad.stdout


def test_agent_drops_a_real_time_policy_it_was_started_with() -> None:
    require_root()
    chrt = require_tool("chrt")

    async def scenario() -> int:
        agent = TrackingAgent([], lambda v, t: None, command=[chrt, "-r", "1", *AGENT_COMMAND])
        agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: agent.ready)
            assert agent.pid is not None
            return os.sched_getscheduler(agent.pid)
        finally:
            agent.stop()

    assert asyncio.run(scenario()) == os.SCHED_OTHER


def test_a_scripts_state_is_running_only_while_it_runs() -> None:
    async def scenario() -> list[str]:
        check = ScriptCheck(ScriptSpec("slow", "/bin/sh -c 'sleep 1'"), lambda v: None)
        states = [check.status()["state"]]
        run = asyncio.ensure_future(check.run_once())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if check.state != "idle":
                break
        states.append(check.status()["state"])
        await run
        states.append(check.status()["state"])
        return states

    assert asyncio.run(scenario()) == ["idle", "running", "idle"]
    check = ScriptCheck(ScriptSpec("x", "/bin/true"), lambda v: None)
    check._proc = object()  # type: ignore[assignment]
    check._killing = True  # between the timeout's SIGKILL and the reaping
    assert check.state == "forcing termination"


def test_only_a_notifying_status_request_calls_on_status() -> None:
    calls: list[int] = []
    agent = TrackingAgent([], lambda v, t: None, on_status=lambda: calls.append(1))
    read, write = os.pipe()
    agent.proc = type("P", (), {"stdin": os.fdopen(write, "wb")})()  # type: ignore[assignment]
    try:
        answer = b'{"type":"status","objects":{"chk":{"kind":"script","state":"running"}}}'
        agent.request_status(notify=False)  # the metrics thread's: no state-file rewrite
        agent.feed_line(answer)
        assert calls == [] and agent.status["chk"]["state"] == "running"
        agent.request_status()  # SIGUSR1's
        agent.request_status(notify=False)
        agent.feed_line(answer)
        agent.feed_line(answer)
        assert calls == [1]
        assert os.read(read, 4096).count(b'"status"') == 3
    finally:
        os.close(read)
        agent.proc.stdin.close()  # type: ignore[union-attr]
