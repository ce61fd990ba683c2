"""The script backends: keepalived's notify scripts and notify FIFO, ucarp's up/down scripts.

Real scripts in temporary directories record the arguments they were given
(one line per run, fields separated by ``|``) and their ``VRRPY_*``
environment. keepalived's own argument lists and FIFO lines are compared with
ours byte for byte in the last test (root, keepalived 2.2.7 in a lab
namespace).
"""

from __future__ import annotations

import asyncio
import os
import pwd
import signal
import subprocess
import time
from ipaddress import ip_interface
from pathlib import Path

import pytest

from support import require_root, require_tool
from vrrpy.backends import BackendError, TransitionEvent
from vrrpy.backends.fifo import NotifyFifo, fifo_line
from vrrpy.backends.notify import NotifyScripts, Script, keepalived_state, run_script
from vrrpy.backends.ucarp import UcarpScripts
from vrrpy.core.state import State

M, B, F, INIT = State.MASTER, State.BACKUP, State.FAULT, State.INITIALIZE


def event(
    old: State,
    new: State,
    name: str = "VI_1",
    priority: int = 100,
    kind: str = "INSTANCE",
    addresses: tuple[str, ...] = ("192.0.2.10/24", "2001:db8::10/64"),
) -> TransitionEvent:
    return TransitionEvent(
        instance=name,
        old=old,
        new=new,
        reason="test",
        priority=priority,
        kind=kind,
        interface="eth0",
        vrid=51,
        family=4,
        addresses=tuple(ip_interface(a) for a in addresses),
    )


def recorder(directory: Path, name: str, body: str = "") -> Path:
    """An executable sh script that appends ``name|arg1|arg2...`` to ``name.log`` and
    writes its VRRPY_* environment to ``name.env``, then runs ``body``."""
    path = directory / name
    path.write_text(
        "#!/bin/sh\n"
        'line="$(basename "$0")"\n'
        'for a in "$@"; do line="$line|$a"; done\n'
        f"printf '%s\\n' \"$line\" >> '{directory}/{name}.log'\n"
        f"env | grep '^VRRPY_' | sort > '{directory}/{name}.env'\n" + body
    )
    path.chmod(0o755)
    return path


def runs(directory: Path, name: str) -> list[list[str]]:
    log = directory / f"{name}.log"
    if not log.exists():
        return []
    return [line.split("|") for line in log.read_text().splitlines()]


def env_of(directory: Path, name: str) -> dict[str, str]:
    text = (directory / f"{name}.env").read_text()
    return dict(line.split("=", 1) for line in text.splitlines())


def all_notify(directory: Path, **kwargs: object) -> NotifyScripts:
    """Every notify script of keepalived, each a recorder given one quoted argument."""
    scripts = {
        role: f"'{recorder(directory, role)}' 'a b'"
        for role in (
            "notify_master",
            "notify_backup",
            "notify_fault",
            "notify_stop",
            "notify",
            "notify_master_rx_lower_pri",
        )
    }
    return NotifyScripts(**scripts, **kwargs)  # type: ignore[arg-type]


# -- notify scripts: keepalived's argument lists ------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "own", "word"),
    [
        (INIT, B, "notify_backup", "BACKUP"),
        (B, M, "notify_master", "MASTER"),
        (M, F, "notify_fault", "FAULT"),
        (M, INIT, "notify_stop", "STOP"),
    ],
)
def test_state_script_gets_its_own_words_and_notify_gets_type_name_state_priority(
    tmp_path: Path, old: State, new: State, own: str, word: str
) -> None:
    backend = all_notify(tmp_path)
    asyncio.run(backend.transition(event(old, new, priority=97)))
    # keepalived's notify_exec(script): the configured words, nothing added.
    assert runs(tmp_path, own) == [[own, "a b"]]
    # notify_script_exec: the configured words + TYPE NAME STATE PRIORITY.
    assert runs(tmp_path, "notify") == [["notify", "a b", "INSTANCE", "VI_1", word, "97"]]
    others = {"notify_master", "notify_backup", "notify_fault", "notify_stop"} - {own}
    assert all(runs(tmp_path, other) == [] for other in others)
    assert backend.status()[own]["runs"] == 1


def test_a_sync_group_is_type_group_with_priority_zero(tmp_path: Path) -> None:
    backend = all_notify(tmp_path)
    asyncio.run(backend.transition(event(B, M, name="VG_1", kind="GROUP", priority=150)))
    assert runs(tmp_path, "notify_master") == [["notify_master", "a b"]]
    assert runs(tmp_path, "notify") == [["notify", "a b", "GROUP", "VG_1", "MASTER", "0"]]
    assert env_of(tmp_path, "notify")["VRRPY_TYPE"] == "GROUP"


def test_the_same_facts_are_in_the_environment(tmp_path: Path) -> None:
    backend = all_notify(tmp_path)
    asyncio.run(backend.transition(event(B, M)))
    assert env_of(tmp_path, "notify_master") == {
        "VRRPY_ADDRESSES": "192.0.2.10/24 2001:db8::10/64",
        "VRRPY_EVENT": "MASTER",
        "VRRPY_FAMILY": "4",
        "VRRPY_INTERFACE": "eth0",
        "VRRPY_NAME": "VI_1",
        "VRRPY_OLD_STATE": "BACKUP",
        "VRRPY_PRIORITY": "100",
        "VRRPY_REASON": "test",
        "VRRPY_SCRIPT": "notify_master",
        "VRRPY_STATE": "MASTER",
        "VRRPY_TYPE": "INSTANCE",
        "VRRPY_VRID": "51",
    }
    assert env_of(tmp_path, "notify")["VRRPY_SCRIPT"] == "notify"


def test_keepalived_words_for_states() -> None:
    assert [keepalived_state(s) for s in (M, B, F, INIT)] == ["MASTER", "BACKUP", "FAULT", "STOP"]


def test_master_rx_lower_pri_runs_as_written_and_never_twice_at_once(tmp_path: Path) -> None:
    release = tmp_path / "release"
    body = f"while [ ! -e '{release}' ]; do sleep 0.01; done\n"
    script = recorder(tmp_path, "rx", body)
    backend = NotifyScripts(notify_master_rx_lower_pri=str(script), timeout=5)

    async def scenario() -> None:
        first = asyncio.ensure_future(backend.master_rx_lower_pri(event(M, M)))
        await asyncio.sleep(0.2)
        for _ in range(5):  # adverts while the first run goes on: skipped, counted
            await backend.master_rx_lower_pri(event(M, M))
        release.touch()
        await first

    asyncio.run(scenario())
    assert runs(tmp_path, "rx") == [["rx"]]
    assert env_of(tmp_path, "rx")["VRRPY_EVENT"] == "MASTER_RX_LOWER_PRI"
    assert backend.status()["notify_master_rx_lower_pri"]["skipped"] == 5
    # A transition never runs it.
    asyncio.run(backend.transition(event(B, M)))
    assert len(runs(tmp_path, "rx")) == 1


def test_a_failing_script_is_logged_counted_and_raised_for_the_pipeline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = recorder(tmp_path, "bad", "echo 'cannot restart nginx' >&2\nexit 3\n")
    backend = NotifyScripts(notify_backup=str(script))
    with pytest.raises(BackendError, match="notify_backup exit 3"):
        asyncio.run(backend.transition(event(M, B)))
    stats = backend.status()["notify_backup"]
    assert (stats["runs"], stats["failed"]) == (1, 1)
    assert stats["last"]["output"] == "cannot restart nginx"
    assert "cannot restart nginx" in caplog.text


def test_output_is_logged_up_to_a_bound(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    script = recorder(
        tmp_path, "chatty", "i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done\n"
    )
    backend = NotifyScripts(notify_master=str(script))
    caplog.set_level("INFO", logger="vrrpy.backends.notify")
    asyncio.run(backend.transition(event(B, M)))
    logged = [r for r in caplog.records if "line " in r.getMessage()]
    assert len(logged) == 20
    stats = backend.status()["notify_master"]
    assert stats["lines_not_logged"] == 480
    assert stats["last"]["output"] == "line 499"


def test_shell_is_used_only_when_asked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = f"echo \"$1 $2 $3 $4\" > '{out}'; echo $((6*7)) >> '{out}'"
    asyncio.run(NotifyScripts(notify=line, shell=True).transition(event(B, M)))
    assert out.read_text() == "INSTANCE VI_1 MASTER 100\n42\n"
    # Without a shell the same words are just arguments of a program named "echo".
    words = NotifyScripts(notify=f"echo '$((6*7))' '>' '{out}'")
    asyncio.run(words.transition(event(B, M)))
    assert out.read_text() == "INSTANCE VI_1 MASTER 100\n42\n"  # untouched


def test_a_script_without_shebang_runs_with_sh_as_keepalived_runs_it(tmp_path: Path) -> None:
    path = tmp_path / "plain"
    path.write_text(f"echo \"$@\" > '{tmp_path}/plain.out'\n")
    path.chmod(0o755)
    asyncio.run(NotifyScripts(notify=str(path)).transition(event(B, F, priority=0)))
    assert (tmp_path / "plain.out").read_text() == "INSTANCE VI_1 FAULT 0\n"


def test_a_script_that_cannot_start_is_an_error_not_a_crash(tmp_path: Path) -> None:
    backend = NotifyScripts(notify_master=str(tmp_path / "missing"), notify="no-such-command-x")
    with pytest.raises(BackendError, match="could not start"):
        asyncio.run(backend.transition(event(B, M)))
    assert backend.status()["notify_master"]["errors"] == 1
    assert backend.status()["notify"]["errors"] == 1


def test_a_bare_name_is_found_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recorder(tmp_path, "onpath")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    asyncio.run(NotifyScripts(notify="onpath").transition(event(B, M)))
    assert runs(tmp_path, "onpath") == [["onpath", "INSTANCE", "VI_1", "MASTER", "100"]]


def test_bad_settings_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="empty"):
        NotifyScripts(notify_master="  ")
    with pytest.raises(ValueError, match="No closing quotation"):
        NotifyScripts(notify_master="/bin/x 'open")
    with pytest.raises(ValueError, match="no user"):
        NotifyScripts(notify_master="/bin/true", user="no-such-user-x")
    with pytest.raises(ValueError, match="group without user"):
        Script("/bin/true", group="root")


@pytest.mark.system
def test_a_configured_user_runs_the_script() -> None:
    require_root()
    require_tool("setpriv")
    nobody = pwd.getpwnam("nobody")
    line = """/bin/sh -c 'echo "$(id -u) $(id -g) $(id -G)"'"""
    backend = NotifyScripts(notify_master=line, user="nobody")
    asyncio.run(backend.transition(event(B, M)))
    gid = nobody.pw_gid
    # keepalived's set_script_env: setgid, setgroups(1, &gid), setuid.
    assert backend.status()["notify_master"]["last"]["output"] == f"{nobody.pw_uid} {gid} {gid}"


def test_each_run_is_its_own_session_with_default_signals(tmp_path: Path) -> None:
    out = tmp_path / "proc"
    show = "ps -o pid=,pgid=,sid=,cls= -p $$"
    line = f"/bin/sh -c '{show} > {out}; grep SigBlk /proc/self/status >> {out}'"
    asyncio.run(NotifyScripts(notify_master=line).transition(event(B, M)))
    first, blocked = out.read_text().splitlines()
    pid, pgid, sid, cls = first.split()
    assert pid == pgid == sid and cls == "TS"
    assert blocked.split()[1] == "0" * 16


# -- timeouts, cancellation, and the loop's timing ----------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_hung_script_is_killed_at_its_timeout_with_its_children_while_the_loop_ticks(
    tmp_path: Path,
) -> None:
    """20 scripts start and one hangs (with a child of its own): a 2 ms periodic callback is
    never held long, the hung script's process group dies at the timeout, and it is counted."""
    quick = [NotifyScripts(notify_master=str(recorder(tmp_path, f"q{i}"))) for i in range(20)]
    hang = recorder(tmp_path, "hang", f"sleep 60 & echo $! > '{tmp_path}/child'\nsleep 60\n")
    hung = NotifyScripts(notify_master=str(hang), timeout=0.5)
    lateness: list[float] = []

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        period = 0.002
        due = loop.time() + period
        done = False

        def tick() -> None:
            nonlocal due
            lateness.append(loop.time() - due)
            due += period
            if not done:
                loop.call_at(due, tick)

        loop.call_at(due, tick)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        calls = [b.transition(event(B, M, name=f"VI_{i}")) for i, b in enumerate(quick)]
        results = await asyncio.gather(hung.transition(event(B, M)), *calls, return_exceptions=True)
        elapsed = time.monotonic() - started
        done = True
        assert isinstance(results[0], BackendError) and "timed out" in str(results[0])
        assert all(r is None for r in results[1:])
        return elapsed

    elapsed = asyncio.run(scenario())
    assert all(runs(tmp_path, f"q{i}") == [[f"q{i}"]] for i in range(20))
    assert hung.status()["notify_master"]["timeouts"] == 1
    assert 0.5 <= elapsed < 3.0
    child = int((tmp_path / "child").read_text())
    deadline = time.monotonic() + 2
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(child)
    worst = max(lateness)
    print(f"2 ms tick: worst lateness {worst * 1e3:.2f} ms over {len(lateness)} ticks")
    assert worst < 0.05  # generous: a test, not a benchmark (measured: ~1 ms)


def test_cancelling_a_transition_kills_its_scripts(tmp_path: Path) -> None:
    hang = recorder(tmp_path, "slow", f"echo $$ > '{tmp_path}/pid'\nsleep 60\n")
    backend = NotifyScripts(notify_master=str(hang))

    async def scenario() -> None:
        task = asyncio.ensure_future(backend.transition(event(B, M)))
        pid_file = tmp_path / "pid"
        while not pid_file.exists() or not pid_file.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)  # the loop reaps it

    asyncio.run(scenario())
    assert not _alive(int((tmp_path / "pid").read_text()))


def test_run_script_reports_signals_and_exit_codes() -> None:
    async def scenario() -> tuple[str, int, str, int]:
        killed = await run_script(["/bin/sh", "-c", "kill -TERM $$"])
        code = await run_script(["/bin/sh", "-c", "exit 7"])
        return killed.outcome, killed.status, code.outcome, code.status

    assert asyncio.run(scenario()) == ("signal", signal.SIGTERM, "exit", 7)


# -- notify FIFO -----------------------------------------------------------------------


def test_fifo_lines_are_keepalived_s() -> None:
    assert fifo_line(event(B, M)) == b'INSTANCE "VI_1" MASTER 100\n'
    assert fifo_line(event(M, B, priority=90)) == b'INSTANCE "VI_1" BACKUP 90\n'
    assert fifo_line(event(M, F, priority=0)) == b'INSTANCE "VI_1" FAULT 0\n'
    assert fifo_line(event(B, INIT)) == b'INSTANCE "VI_1" STOP 100\n'
    assert fifo_line(event(B, M, "VG_1", kind="GROUP")) == b'GROUP "VG_1" MASTER 0\n'
    assert fifo_line(event(M, M), "MASTER_RX_LOWER_PRI") == (
        b'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100\n'
    )


def test_a_reader_gets_one_line_per_transition(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    backend = NotifyFifo(path, priority_changes=True)

    async def scenario() -> bytes:
        await backend.transition(event(INIT, B))
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        await backend.transition(event(B, M))
        await backend.master_rx_lower_pri(event(M, M))
        await backend.priority_changed(event(M, M, priority=80))
        await backend.priority_changed(event(F, F, priority=50))
        await backend.transition(event(M, INIT, priority=80))
        data = os.read(reader, 65536)
        os.close(reader)
        await backend.close()
        return data

    data = asyncio.run(scenario())
    assert data.decode().splitlines() == [
        'INSTANCE "VI_1" BACKUP 100',  # written before the reader came: kept in the pipe
        'INSTANCE "VI_1" MASTER 100',
        'INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100',
        'INSTANCE "VI_1" MASTER_PRIORITY 80',
        'INSTANCE "VI_1" BACKUP_PRIORITY 50',
        'INSTANCE "VI_1" STOP 80',
    ]
    assert not path.exists()  # created here, removed at close


def test_a_fifo_without_reader_never_blocks_and_drops_when_full(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path)
    backend = NotifyFifo(path)

    async def scenario() -> float:
        worst = 0.0
        for i in range(5000):
            started = time.perf_counter()
            await backend.transition(event(B, M, priority=i % 256))
            worst = max(worst, time.perf_counter() - started)
        await backend.close()
        return worst

    worst = asyncio.run(scenario())
    status = backend.status()
    assert status["written"] + status["dropped"] == 5000
    assert status["dropped"] > 0 and status["written"] > 1000
    # A blocked write would never return (no reader): any bound proves it does not
    # block; how fast a write is belongs to a benchmark, not to a test.
    assert worst < 2.0
    assert path.exists()  # not ours: left in place


def test_fifo_script_reads_the_fifo_and_is_stopped_at_close(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    out = tmp_path / "got"
    reader = tmp_path / "reader.sh"
    # As keepalived's sample: the FIFO is the last argument; read on after SIGTERM.
    reader.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" > '{tmp_path}/args'\n"
        "trap 'echo TERM >> " + str(out) + "' TERM\n"
        f'while read -r line; do echo "$line" >> \'{out}\'; done < "$2"\n'
    )
    reader.chmod(0o755)
    backend = NotifyFifo(path, script=f"'{reader}' extra")

    async def scenario() -> None:
        await backend.transition(event(INIT, B))
        await backend.transition(event(B, M))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if out.exists() and len(out.read_text().splitlines()) >= 2:
                break
            await asyncio.sleep(0.02)
        await backend.close()

    asyncio.run(scenario())
    assert (tmp_path / "args").read_text() == f"extra {path}\n"
    lines = out.read_text().splitlines()
    assert lines[:2] == ['INSTANCE "VI_1" BACKUP 100', 'INSTANCE "VI_1" MASTER 100']
    assert backend.status()["script"]["runs"] == 1
    assert not path.exists()


def test_a_shared_fifo_closes_at_its_last_user(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    backend = NotifyFifo(path)
    backend.attach()
    backend.attach()

    async def scenario() -> None:
        await backend.transition(event(B, M, name="VI_1"))
        await backend.close()
        assert path.exists()
        await backend.transition(event(M, INIT, name="VI_2"))
        await backend.close()
        assert not path.exists()
        await backend.transition(event(M, INIT, name="VI_3"))  # after the end: dropped

    asyncio.run(scenario())
    assert backend.status()["written"] == 2
    assert not path.exists()


def test_a_path_that_is_not_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(BackendError, match="not a FIFO"):
        asyncio.run(NotifyFifo(path).transition(event(B, M)))


# -- ucarp ---------------------------------------------------------------------------------


def test_ucarp_up_and_down_get_interface_vip_and_xparam(tmp_path: Path) -> None:
    up, down = recorder(tmp_path, "up"), recorder(tmp_path, "down")
    backend = UcarpScripts(str(up), str(down), extra="web")

    async def scenario() -> None:
        for old, new in [(INIT, B), (B, M), (M, B), (B, F), (F, M), (M, F), (F, B), (B, INIT)]:
            await backend.transition(event(old, new))

    asyncio.run(scenario())
    vip = ["eth0", "192.0.2.10", "web"]
    assert runs(tmp_path, "up") == [["up", *vip], ["up", *vip]]  # B->M, F->M
    assert runs(tmp_path, "down") == [["down", *vip]] * 3  # INIT->B, M->B, M->F
    assert env_of(tmp_path, "down")["VRRPY_SCRIPT"] == "down"


def test_ucarp_neutral_vip_and_no_xparam(tmp_path: Path) -> None:
    up, down = recorder(tmp_path, "up"), recorder(tmp_path, "down")
    backend = UcarpScripts(str(up), str(down), neutral=True, vip="10.9.9.9")

    async def scenario() -> None:
        for old, new in [(INIT, B), (B, M), (M, INIT)]:
            await backend.transition(event(old, new))

    asyncio.run(scenario())
    assert runs(tmp_path, "up") == [["up", "eth0", "10.9.9.9"]]
    assert runs(tmp_path, "down") == [["down", "eth0", "10.9.9.9"]]  # at stop, not at start


def test_ucarp_failure_is_raised(tmp_path: Path) -> None:
    backend = UcarpScripts(str(recorder(tmp_path, "up", "exit 1\n")))
    with pytest.raises(BackendError, match="up script exit 1"):
        asyncio.run(backend.transition(event(B, M)))
    assert backend.status()["up"]["failed"] == 1


# -- keepalived itself -------------------------------------------------------------------


@pytest.mark.system
def test_keepalived_2_2_7_passes_the_same_arguments_and_fifo_lines(tmp_path: Path) -> None:
    """keepalived with every notify script (recorders) and a vrrp_notify_fifo, alone in a lab
    host: it goes BACKUP, MASTER, then STOP at SIGTERM. The same transitions through our
    backends give the same argument lists and the same FIFO bytes."""
    require_root()
    require_tool("keepalived")
    from vrrpy.lab import Lab, wait_for

    theirs, ours = tmp_path / "keepalived", tmp_path / "vrrpy"
    for where in (theirs, ours):
        where.mkdir()
        where.chmod(0o755)
    roles = ("notify_master", "notify_backup", "notify_fault", "notify_stop", "notify")

    def lines(where: Path) -> dict[str, str]:
        return {role: f"\"'{recorder(where, role)}' 'a b'\"" for role in roles}

    k_fifo = theirs / "fifo"
    os.mkfifo(k_fifo)
    reader = os.open(k_fifo, os.O_RDONLY | os.O_NONBLOCK)
    conf = theirs / "keepalived.conf"
    conf.write_text(
        "global_defs {\n  script_user root\n"
        f"  vrrp_notify_fifo {k_fifo}\n}}\n"
        "vrrp_instance VI_1 {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n"
        "  priority 150\n  advert_int 0.1\n  version 3\n"
        + "".join(f"  {role} {line}\n" for role, line in lines(theirs).items())
        + "  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n"
    )
    try:
        with Lab(hosts=1) as lab:
            host = lab["h1"]
            with open(theirs / "log", "wb") as log:
                proc = host.popen(
                    [
                        *("keepalived", "-n", "-l", "-D", "-f", str(conf)),
                        *("-p", str(theirs / "k.pid"), "-r", str(theirs / "v.pid")),
                        *("-c", str(theirs / "c.pid")),
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            assert wait_for(lambda: len(runs(theirs, "notify")) >= 2, 10), (
                theirs / "log"
            ).read_text()
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
            assert wait_for(lambda: len(runs(theirs, "notify")) >= 3, 5)
        data = os.read(reader, 65536)
    finally:
        os.close(reader)

    got = runs(theirs, "notify")
    assert [r[4] for r in got] == ["BACKUP", "MASTER", "STOP"]
    priorities = [int(r[5]) for r in got]

    backend = NotifyScripts(**{role: line.strip('"') for role, line in lines(ours).items()})  # type: ignore[arg-type]
    fifo = NotifyFifo(ours / "fifo")

    async def scenario() -> bytes:
        fifo_reader = -1
        steps = [(INIT, B), (B, M), (M, INIT)]
        for (old, new), priority in zip(steps, priorities, strict=True):
            ev = event(old, new, priority=priority, addresses=("192.0.2.10/24",))
            await backend.transition(ev)
            await fifo.transition(ev)
            if fifo_reader < 0:
                fifo_reader = os.open(ours / "fifo", os.O_RDONLY | os.O_NONBLOCK)
        out = os.read(fifo_reader, 65536)
        os.close(fifo_reader)
        await fifo.close()
        return out

    mine = asyncio.run(scenario())
    for role in roles:
        assert runs(ours, role) == runs(theirs, role), role
    assert mine == data
    words = ["BACKUP", "MASTER", "STOP"]
    assert data.decode().splitlines() == [
        f'INSTANCE "VI_1" {word} {p}' for word, p in zip(words, priorities, strict=True)
    ]
