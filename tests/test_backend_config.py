"""vrrpyd's backend keys: keepalived's notify_* lines, ucarp's scripts, [[backend]] tables.

Each rule is checked by loading a small file (``parse_config``) and, for what
builds objects, by :func:`build_backends`; the lab test at the end runs a
vrrpyd pair whose notify scripts record what they were called with.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from support import lab_instance, require_root
from vrrpy.backends import Backend, OffLoop
from vrrpy.daemon.backendconfig import build_backends
from vrrpy.daemon.config import ConfigFileError, parse_config
from vrrpy.lab import Daemon, Lab, wait_for

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

BASE = """
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 100
virtual_addresses = ["192.0.2.100/24"]
"""


def load(extra_instance: str = "", rest: str = "", global_: str = "") -> object:
    text = ""
    if global_:
        text += "[global]\n" + textwrap.dedent(global_) + "\n"
    text += BASE + textwrap.dedent(extra_instance) + "\n" + textwrap.dedent(rest)
    return parse_config(text)


def problems(extra_instance: str = "", rest: str = "", global_: str = "") -> list[str]:
    with pytest.raises(ConfigFileError) as caught:
        load(extra_instance, rest, global_)
    return [str(issue) for issue in caught.value.errors]


def test_keepalived_notify_lines_make_one_notify_backend_before_the_ucarp_one() -> None:
    config = load(
        """
        notify_master = "/etc/vrrpy/master.sh"
        notify = "/etc/vrrpy/notify.sh arg"
        script_timeout = 5
        up_script = "/etc/vrrpy/up.sh"
        """
    )
    specs = config.instance_backends["VI_1"]  # type: ignore[attr-defined]
    assert [(s.name, s.type) for s in specs] == [("notify", "notify"), ("ucarp", "ucarp")]
    assert specs[0].params == {
        "notify_master": "/etc/vrrpy/master.sh",
        "notify": "/etc/vrrpy/notify.sh arg",
    }
    assert specs[0].timeout == 5.0


def test_ucarp_scripts_take_xparam_as_their_extra_argument() -> None:
    config = load('up_script = "/etc/vrrpy/up.sh"\nxparam = "web"\n')
    (spec,) = config.instance_backends["VI_1"]  # type: ignore[attr-defined]
    assert spec.params == {"up": "/etc/vrrpy/up.sh", "down": None, "extra": "web"}
    (built,) = build_backends([spec], {})
    assert built.extra == "web"  # type: ignore[attr-defined]
    found = problems('xparam = "web"\n')
    assert found == [
        "instance[VI_1].xparam: needs up_script or down_script (it is their extra argument)"
    ]


def test_backend_tables_are_named_in_order_and_the_fifo_comes_last() -> None:
    config = load(
        'backends = ["b", "a"]\n',
        """
        [[backend]]
        name = "a"
        type = "python"
        object = "mymod:A"

        [[backend]]
        name = "b"
        type = "python"
        object = "mymod:B"
        timeout = 2
        params = { x = 1 }
        """,
        global_='notify_fifo = "/run/vrrpyd.fifo"\n',
    )
    specs = config.instance_backends["VI_1"]  # type: ignore[attr-defined]
    assert [s.name for s in specs] == ["b", "a", "notify_fifo"]
    assert (
        specs[0].params == {"object": "mymod:B", "params": {"x": 1}, "thread": True}
        and specs[0].timeout == 2
    )


def test_backends_come_before_the_scripts_so_leaving_master_stops_the_service_first() -> None:
    config = load(
        'backends = ["r0"]\nnotify_backup = "/usr/bin/true"\n',
        '[[backend]]\nname = "r0"\ntype = "drbd"\nresource = "r0"\n',
    )
    specs = config.instance_backends["VI_1"]  # type: ignore[attr-defined]
    assert [s.name for s in specs] == ["r0", "notify"]


@pytest.mark.parametrize(
    ("instance", "rest", "global_", "expected"),
    [
        (
            'backends = ["nope"]\n',
            "",
            "",
            "instance[VI_1].backends[0]: no [[backend]] named 'nope'",
        ),
        ("notify_master = 3\n", "", "", "instance[VI_1].notify_master: must be a command line"),
        ("script_timeout = 0\n", "", "", "instance[VI_1].script_timeout: must be 0.01..86400"),
        (
            "",
            '[[backend]]\nname = "x"\ntype = "python"\nobject = "no colon"\n',
            "",
            "backend[x].object: must name a Python object as 'module:attribute'",
        ),
        ("", '[[backend]]\nname = "x"\ntype = "perl"\n', "", "backend[x].type: must be one of"),
        ("", "", 'notify_fifo = "relative"\n', "global.notify_fifo: must be an absolute path"),
    ],
)
def test_bad_backend_keys_are_named(instance: str, rest: str, global_: str, expected: str) -> None:
    found = problems(instance, rest, global_)
    assert any(p.startswith(expected) for p in found), found


class Audit(Backend):
    def __init__(self, path: str = "") -> None:
        self.path = path


def test_python_backends_are_built_from_module_and_attribute_with_their_params() -> None:
    config = load(
        'backends = ["audit"]\n',
        f"""
        [[backend]]
        name = "audit"
        type = "python"
        object = "{__name__}:Audit"
        timeout = 3
        params = {{ path = "/var/log/x" }}
        """,
    )
    (built,) = build_backends(config.instance_backends["VI_1"], {})  # type: ignore[attr-defined]
    # Off the protocol loop by default: on a loop of its own, in a thread.
    assert isinstance(built, OffLoop) and isinstance(built.wrapped, Audit)
    assert built.wrapped.path == "/var/log/x"
    assert built.name == "audit" and built.timeout == 3.0


def test_a_python_backend_may_stay_on_the_protocol_loop() -> None:
    config = load(
        'backends = ["audit"]\n',
        f"""
        [[backend]]
        name = "audit"
        type = "python"
        object = "{__name__}:Audit"
        thread = false
        fault_on_failure = true
        """,
    )
    (built,) = build_backends(config.instance_backends["VI_1"], {})  # type: ignore[attr-defined]
    assert isinstance(built, Audit) and built.fault_on_failure


def test_a_python_backend_that_cannot_be_loaded_says_which() -> None:
    config = load(
        'backends = ["gone"]\n',
        '[[backend]]\nname = "gone"\ntype = "python"\nobject = "no_such_module_x:Thing"\n',
    )
    with pytest.raises(ValueError, match="backend gone: cannot load no_such_module_x:Thing"):
        build_backends(config.instance_backends["VI_1"], {})  # type: ignore[attr-defined]


def test_notify_scripts_run_on_each_transition_of_a_vrrpyd_pair(lab: Lab, tmp_path: Path) -> None:
    require_root()
    log = tmp_path / "notify.log"
    script = tmp_path / "notify.sh"
    script.write_text(f'#!/bin/sh\necho "$(hostname) $*" >> {log}\n')
    script.chmod(0o755)

    def instance(priority: int) -> dict[str, object]:
        return lab_instance(priority, notify=str(script), notify_master=f"{script} to-master")

    d1 = Daemon(lab["h1"], tmp_path, [instance(200)])
    d2 = Daemon(lab["h2"], tmp_path, [instance(100)])
    d1.start()
    d2.start()
    assert wait_for(lambda: log.exists() and "INSTANCE VI_1 MASTER 200" in log.read_text(), 5)
    assert wait_for(lambda: "INSTANCE VI_1 BACKUP 100" in log.read_text(), 5)
    lines = log.read_text().splitlines()
    assert any(line.endswith("to-master") for line in lines), lines
    d1.terminate()
    assert wait_for(lambda: "INSTANCE VI_1 STOP 200" in log.read_text(), 5), log.read_text()
    assert wait_for(lambda: "INSTANCE VI_1 MASTER 100" in log.read_text(), 5), log.read_text()
    assert d1.instance()["state"] == "INIT"


def test_the_example_python_backend_runs_live_in_a_vrrpyd_pair(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """examples/my_backend.py as its docstring says to use it from vrrpyd (off the
    protocol loop, vrrpyd's default), across a failover."""
    require_root()
    monkeypatch.setenv("PYTHONPATH", f"{EXAMPLES}:{Path(__file__).resolve().parent.parent / 'src'}")
    daemons = []
    for host, priority in (("h1", 200), ("h2", 100)):
        roles = tmp_path / f"roles-{host}"
        roles.mkdir()
        instance = lab_instance(priority, backends=["role"])
        backend = {
            "name": "role",
            "type": "python",
            "object": "my_backend:RoleFile",
            "params": {"directory": str(roles)},
        }
        daemons.append(Daemon(lab[host], tmp_path, [instance], {"backend": [backend]}))
    d1, d2 = daemons
    d1.start()
    d2.start()
    role1 = tmp_path / "roles-h1" / "vrrpy-VI_1.role"
    role2 = tmp_path / "roles-h2" / "vrrpy-VI_1.role"
    assert wait_for(lambda: role1.exists() and role1.read_text() == "MASTER\n", 5)
    assert wait_for(lambda: role2.exists() and role2.read_text() == "BACKUP\n", 5)
    d1.terminate()
    assert wait_for(lambda: role2.read_text() == "MASTER\n", 5), role2.read_text()
    assert role1.read_text() == "INIT\n"  # the stop's transition ran before vrrpyd exited
    log = (tmp_path / "roles-h2" / "vrrpy-transitions.log").read_text().splitlines()
    assert [line.split()[2:5] for line in log] == [
        ["INIT", "->", "BACKUP"],
        ["BACKUP", "->", "MASTER"],
    ]
    assert d2.instance()["backends"]["role"]["failures"] == 0


def test_a_drbd_backend_table_builds_the_drbd_backend_with_its_mount() -> None:
    config = load(
        'backends = ["r0"]\n',
        """
        [[backend]]
        name = "r0"
        type = "drbd"
        resource = "r0"
        mountpoint = "/srv/data"
        fstype = "ext4"
        timeout = 20
        """,
    )
    (built,) = build_backends(config.instance_backends["VI_1"], {})  # type: ignore[attr-defined]
    from vrrpy.backends.drbd import DrbdBackend

    assert isinstance(built, DrbdBackend)
    assert built.resource == "r0" and built.timeout == 20.0 and built.name == "r0"
    assert built.mount is not None and built.mount.mountpoint == "/srv/data"
    assert built.mount.fstype == "ext4"
    assert built.fault_on_failure is False


def test_fault_on_failure_is_set_on_the_built_backend() -> None:
    config = load(
        'backends = ["audit"]\n',
        f"""
        [[backend]]
        name = "audit"
        type = "python"
        object = "{__name__}:Audit"
        fault_on_failure = true
        """,
    )
    (built,) = build_backends(config.instance_backends["VI_1"], {})  # type: ignore[attr-defined]
    assert built.fault_on_failure is True


def test_drbd_tables_set_the_check_and_the_peer_wait() -> None:
    from vrrpy.backends.drbd import DrbdBackend

    config = load(
        'backends = ["r0"]\n',
        '[[backend]]\nname = "r0"\ntype = "drbd"\nresource = "r0"\n'
        "timeout = 20\ncheck_interval = 0.5\npeer_wait = 15\n",
    )
    (built,) = build_backends(config.instance_backends["VI_1"], {})  # type: ignore[attr-defined]
    assert isinstance(built, DrbdBackend)
    assert (built.check_interval, built.peer_wait, built.timeout) == (0.5, 15.0, 20.0)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ('resource = "r0"\nmountpoint = "srv"\n', "backend[r0].mountpoint: must be an absolute"),
        ('resource = "r0"\nfstype = "ext4"\n', "backend[r0].fstype: needs mountpoint"),
        ('mountpoint = "/srv"\n', "backend[r0].resource: must name a DRBD resource"),
        ('resource = "r0"\nobject = "a:b"\n', "backend[r0].object: unknown key"),
        ('resource = "r0"\ncheck_interval = -1\n', "backend[r0].check_interval: must be 0..3600"),
        ('resource = "r0"\npeer_wait = 40\n', "backend[r0].peer_wait: must be 0..30 seconds"),
        ('resource = "r0"\npeer_wait = "5"\n', "backend[r0].peer_wait: must be a number"),
    ],
)
def test_bad_drbd_tables_are_named(table: str, expected: str) -> None:
    found = problems('backends = ["r0"]\n', f'[[backend]]\nname = "r0"\ntype = "drbd"\n{table}')
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize("name", ["vrrpyd-service.toml", "vrrpyd-drbd.toml"])
def test_the_backend_examples_load_and_build(name: str) -> None:
    from vrrpy.daemon.config import load_config

    config = load_config(EXAMPLES / name)
    for specs in config.instance_backends.values():
        assert build_backends(specs, {})


def test_the_example_python_backend_writes_its_role_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from vrrpy.backends import TransitionEvent
    from vrrpy.core import State

    monkeypatch.syspath_prepend(str(EXAMPLES))
    from my_backend import RoleFile  # type: ignore[import-not-found]

    backend = RoleFile(str(tmp_path))
    asyncio.run(backend.transition(TransitionEvent("VI_1", State.BACKUP, State.MASTER, "t", 150)))
    assert (tmp_path / "vrrpy-VI_1.role").read_text() == "MASTER\n"
    assert (
        "VI_1 BACKUP -> MASTER (t) priority 150" in (tmp_path / "vrrpy-transitions.log").read_text()
    )


def test_a_sync_group_notifies_once_per_group_transition_as_keepalived_does(
    lab: Lab, tmp_path: Path
) -> None:
    require_root()
    log = tmp_path / "group.log"
    script = tmp_path / "group.sh"
    script.write_text(f'#!/bin/sh\necho "$*" >> {log}\n')
    script.chmod(0o755)

    def group(host: str) -> dict[str, list[dict[str, object]]]:
        members = ["VI_4", "VI_6"]
        return {"sync_group": [{"name": "gw", "members": members, "notify": f"{script} {host}"}]}

    def instances(priority: int) -> list[dict[str, object]]:
        return [
            {
                "name": name,
                "interface": "eth0",
                "vrid": vrid,
                "priority": priority,
                "advert_interval": 0.1,
                "virtual_addresses": [address],
            }
            for name, vrid, address in (
                ("VI_4", 51, "192.0.2.100/24"),
                ("VI_6", 52, "2001:db8::100/64"),
            )
        ]

    d1 = Daemon(lab["h1"], tmp_path, instances(200), group("h1"))
    d2 = Daemon(lab["h2"], tmp_path, instances(100), group("h2"))
    d1.start()
    d2.start()
    assert wait_for(lambda: log.exists() and "h1 GROUP gw MASTER 0" in log.read_text(), 5)
    assert wait_for(lambda: "h2 GROUP gw BACKUP 0" in log.read_text(), 5)
    lines = log.read_text().splitlines()
    assert lines.count("h1 GROUP gw MASTER 0") == 1, lines  # one per group transition
    d1.terminate()
    assert wait_for(lambda: "h2 GROUP gw MASTER 0" in log.read_text(), 5), log.read_text()
    assert "h1 GROUP gw STOP 0" in log.read_text()
