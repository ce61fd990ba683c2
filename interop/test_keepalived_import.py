"""One keepalived.conf, two daemons: keepalived runs it, vrrpyd runs its import, one group.

The migration story in one test: a site's keepalived.conf serves both routers
through ``@lb1`` / ``@lb2`` lines (keepalived ``-i lb1`` on one, ``-i lb2`` on the
other). Here h1 and h2 share that file: one runs keepalived 2.2.7 with it, the
other runs vrrpyd with ``vrrpctl import-keepalived FILE --config-id ID`` of the
same file (the importer's command line, ``python -m vrrpy.keepalived.importer``),
and the two must form one group with the Master the file says, both ways round
(``keepalived-master``: keepalived on h1, the intended Master; ``vrrpy-master``:
vrrpyd there). Nothing keepalived logs against vrrpyd's adverts is allowed.

* VRRPv2 with ``auth_type PASS`` and an ``auth_pass`` longer than 8 characters:
  keepalived truncates it and sends 8 bytes; the import carries those 8 (with a
  note), so each side accepts the other's adverts. Then the Master is killed and
  the other takes over.
* VRRPv3 with a weighted ``vrrp_script`` whose command differs per router
  (``@lb1 script ...``): h1 is Master only while its check passes (100 + 60 >
  120); when its file goes, h2 preempts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from routers import Router

from vrrpy.lab import Host, Lab, wait_for

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DIRECTIONS = ["keepalived-master", "vrrpy-master"]
VIP = "192.0.2.100/24"
PASSWORD = "s3cr3t-passw0rd-longer-than-8"

V2_AUTH = """\
! one file for both routers: keepalived -i lb1 / -i lb2
global_defs {
    @lb1 router_id lb1
    @lb2 router_id lb2
    script_user root
    enable_script_security
}

vrrp_instance VI_1 {
    @lb1 state MASTER
    @^lb1 state BACKUP
    interface eth0
    virtual_router_id 51
    @lb1 priority 200
    @lb2 priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass %(password)s
    }
    virtual_ipaddress {
        %(vip)s
    }
}
"""

V3_TRACKED = """\
global_defs {
    script_user root
    enable_script_security
    vrrp_version 3
}

vrrp_script chk_service {
    @lb1 script "/usr/bin/test -e %(dir)s/lb1-ok"
    @lb2 script "/usr/bin/test -e %(dir)s/lb2-ok"
    interval 1
    weight 60
}

vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    @lb1 priority 100
    @lb2 priority 120
    advert_int 0.5
    virtual_ipaddress {
        %(vip)s
    }
    track_script {
        chk_service
    }
}
"""


class ConfigId:
    """A lab host whose commands get keepalived's ``-i ID`` appended (the config id
    that selects the ``@ID`` lines); everything else is the host's."""

    def __init__(self, host: Host, config_id: str) -> None:
        self._host = host
        self._config_id = config_id

    def popen(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        return self._host.popen([*argv, "-i", self._config_id], **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._host, name)


def imported(conf: Path, config_id: str, out: Path) -> dict[str, Any]:
    """``vrrpctl import-keepalived CONF --config-id ID -o OUT``; its exit status must be 0."""
    done = subprocess.run(
        [sys.executable, "-m", "vrrpy.keepalived.importer", str(conf), "--config-id", config_id,
         "-o", str(out)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return {"stderr": done.stderr, "document": tomllib.loads(out.read_text())}


def keepalived_router(host: Host, workdir: Path, conf_text: str, config_id: str) -> Router:
    router = Router("keepalived", ConfigId(host, config_id), workdir, [])  # type: ignore[arg-type]
    assert router.keepalived is not None
    router.keepalived.conf.write_text(conf_text)
    return router


def vrrpy_router(host: Host, workdir: Path, document: dict[str, Any]) -> Router:
    router = Router("vrrpy", host, workdir, [])
    assert router.vrrpyd is not None
    settings = document.setdefault("global", {})
    settings["state_file"] = str(router.vrrpyd.state_file)
    settings["log_level"] = "debug"
    router.vrrpyd.conf.write_text(tomli_w.dumps(document))
    return router


def pair(
    lab: Lab, workdir: Path, direction: str, conf_text: str
) -> tuple[Router, Router, dict[str, Any]]:
    """(router on h1 as ``lb1``, router on h2 as ``lb2``, the vrrpyd side's import)."""
    conf = workdir / "keepalived.conf"
    conf.write_text(conf_text)
    if direction == "keepalived-master":
        result = imported(conf, "lb2", workdir / "lb2.toml")
        r1 = keepalived_router(lab["h1"], workdir, conf_text, "lb1")
        r2 = vrrpy_router(lab["h2"], workdir, result["document"])
    else:
        result = imported(conf, "lb1", workdir / "lb1.toml")
        r1 = vrrpy_router(lab["h1"], workdir, result["document"])
        r2 = keepalived_router(lab["h2"], workdir, conf_text, "lb2")
    return r1, r2, result


def settled(master: Router, backup: Router) -> bool:
    """The Master is MASTER, the Backup BACKUP, and a vrrpy Backup has heard the Master."""
    if master.state() != "MASTER" or backup.state() != "BACKUP":
        return False
    return backup.impl != "vrrpy" or backup.counters()["adverts_received"] > 0


def vrrpy_of(r1: Router, r2: Router) -> Router:
    return r1 if r1.impl == "vrrpy" else r2


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_imported_v2_pass_auth_pair_agrees_with_keepalived_on_the_8_byte_password(
    lab: Lab, tmp_path: Path, direction: str
) -> None:
    conf_text = V2_AUTH % {"password": PASSWORD, "vip": VIP}
    r1, r2, result = pair(lab, tmp_path, direction, conf_text)
    instance = result["document"]["instance"][0]
    assert instance["version"] == 2
    assert instance["auth_pass"] == PASSWORD[:8]
    assert f"keepalived sends only {PASSWORD[:8]!r}" in result["stderr"]
    r1.start()
    r2.start()
    try:
        assert wait_for(lambda: settled(r1, r2), 10), (r1.state(), r2.state())
        assert wait_for(lambda: VIP in r1.addresses(), 3)
        counters = vrrpy_of(r1, r2).counters()
        assert counters["drops"] == {}, counters["drops"]
        assert counters["adverts_received"] + counters["adverts_sent"] > 0
        r1.kill()
        assert wait_for(lambda: r2.state() == "MASTER", 8), r2.state()
        assert wait_for(lambda: VIP in r2.addresses(), 3)
    finally:
        for router in (r1, r2):
            unexpected = router.complaints()
            assert not unexpected, f"{router} complained:\n" + "\n".join(unexpected)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_imported_v3_tracked_script_moves_the_master_as_keepalived_does(
    lab: Lab, tmp_path: Path, direction: str
) -> None:
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "lb1-ok").write_text("")  # lb1: 100 + 60 = 160 > lb2's 120 (its check fails)
    conf_text = V3_TRACKED % {"dir": checks, "vip": VIP}
    r1, r2, result = pair(lab, tmp_path, direction, conf_text)
    document = result["document"]
    assert document["instance"][0]["version"] == 3
    assert document["instance"][0]["track_script"] == ["chk_service"]
    ours = "lb1" if direction == "vrrpy-master" else "lb2"
    assert document["track_script"][0]["script"] == f"/usr/bin/test -e {checks}/{ours}-ok"
    assert document["track_script"][0]["weight"] == 60
    r1.start()
    r2.start()
    try:
        assert wait_for(lambda: settled(r1, r2), 12), (r1.state(), r2.state())
        (checks / "lb1-ok").unlink()  # lb1 falls to 100 < 120: lb2 preempts
        assert wait_for(lambda: settled(r2, r1), 12), (r1.state(), r2.state())
        assert wait_for(lambda: VIP in r2.addresses() and VIP not in r1.addresses(), 3)
    finally:
        for router in (r1, r2):
            unexpected = router.complaints()
            assert not unexpected, f"{router} complained:\n" + "\n".join(unexpected)
