"""``type = "script"`` backends: a shell user's check, prepare and state scripts.

Real scripts run (posix_spawn, as in production); the pipeline and the runner
are the real ones, on the fake host parts of ``test_instance_faults`` (no root).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from test_instance_faults import VIP, loop, runner_for
from test_pipeline import finish
from vrrpy.backends import Pipeline, Refused, TransitionEvent
from vrrpy.backends.script import ScriptBackend
from vrrpy.core import State
from vrrpy.daemon.backendconfig import build_backends
from vrrpy.daemon.config import ConfigFileError, parse_config
from vrrpy.runtime import instance as instance_module

__all__ = ["loop"]


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def event(old: State, new: State) -> TransitionEvent:
    return TransitionEvent("VI_1", old, new, "test", 150)


def test_prepare_refuses_with_the_scripts_last_line_and_check_says_why_not(
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    prepare = script(
        tmp_path, "prepare.sh", f'[ -e {gate} ] || {{ echo "replica lags"; exit 3; }}\n'
    )
    check = script(tmp_path, "check.sh", f"[ -e {gate} ]\n")
    backend = ScriptBackend("db", prepare=prepare, check=check, check_interval=1, timeout=5)

    async def scenario() -> tuple[str, str | None, str | None]:
        with pytest.raises(Refused) as refused:
            await backend.prepare(event(State.BACKUP, State.MASTER))
        before = await backend.check()
        gate.touch()
        await backend.prepare(event(State.BACKUP, State.MASTER))
        return str(refused.value), before, await backend.check()

    refusal, before, after = asyncio.run(scenario())
    assert refusal == "prepare script exit 3: replica lags"
    assert before == "check script exit 1" and after is None
    assert backend.status()["prepare"]["runs"] == 2


def test_state_scripts_get_keepalived_arguments(tmp_path: Path) -> None:
    log = tmp_path / "log"
    master = script(tmp_path, "master.sh", f'echo "master $*" >> {log}\n')
    notify = script(tmp_path, "notify.sh", f'echo "notify $*" >> {log}\n')
    backend = ScriptBackend("svc", master=master, notify=notify, timeout=5)
    asyncio.run(backend.transition(event(State.BACKUP, State.MASTER)))
    assert sorted(log.read_text().splitlines()) == [
        "master ",
        "notify INSTANCE VI_1 MASTER 150",
    ]


def test_a_refusing_prepare_script_keeps_the_runner_out_of_master(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(instance_module, "REFUSAL_HOLD", 30)
    runner, ops, sock, _, _ = runner_for(loop, monkeypatch, priority=255)
    refuse = script(tmp_path, "prepare.sh", 'echo "no quorum"; exit 1\n')
    runner.pipeline = Pipeline("VI_1", [ScriptBackend("q", prepare=refuse, timeout=5)], loop)
    runner.start()
    loop.run_until_complete(asyncio.sleep(0.5))
    assert runner.router is not None and runner.router.state is State.FAULT
    assert runner.status()["faults"] == [
        "backend q refused Master: prepare script exit 1: no quorum"
    ]
    assert VIP not in ops.on and sock.payloads[-1][2] == 0
    finish(loop)


BASE = """
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
virtual_addresses = ["192.0.2.100/24"]
backends = ["db"]
"""


def test_script_tables_build_a_script_backend() -> None:
    config = parse_config(
        BASE
        + """
[[backend]]
name = "db"
type = "script"
check = "/usr/local/bin/db-healthy"
check_interval = 2
prepare = "/usr/local/bin/db-promote --check"
master = "/usr/local/bin/db-promote"
backup = "/usr/local/bin/db-demote"
timeout = 10
"""
    )
    (built,) = build_backends(config.instance_backends["VI_1"], {})
    assert isinstance(built, ScriptBackend)
    assert built.check_interval == 2.0 and built.script_timeout == 10.0
    assert built.prepare_script is not None
    assert built.prepare_script.command == "/usr/local/bin/db-promote --check"


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("", "backend[db].type: a script backend needs at least one of"),
        ('check_interval = 2\nmaster = "/bin/true"\n', "backend[db].check_interval: needs check"),
        ('check = "/bin/true"\ncheck_interval = 0\n', "backend[db].check_interval: must be"),
        ('master = ""\n', "backend[db].master: must be a command line"),
        ('master = "/bin/true"\nobject = "a:b"\n', "backend[db].object: unknown key"),
    ],
)
def test_bad_script_tables_are_named(table: str, expected: str) -> None:
    text = BASE + f'[[backend]]\nname = "db"\ntype = "script"\n{table}'
    with pytest.raises(ConfigFileError) as caught:
        parse_config(text)
    found = [str(issue) for issue in caught.value.errors]
    assert any(p.startswith(expected) for p in found), found
