"""vrrpyd when the host does not cooperate: reloads that fail, links that are not ours, unicast.

Each test runs real vrrpyd processes in a namespace lab (as ``test_runtime.py``
does) and checks that a fault leaves every running instance exactly as it was,
that vrrpyd never adopts or deletes a link it did not create, and that a
unicast instance joins no multicast group.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

from test_runtime import VIP
from test_runtime import inst as runtime_inst
from vrrpy.lab import Daemon, Lab, wait_for
from vrrpy.net.addresses import VMAC_ALIAS


def inst(**overrides: Any) -> dict[str, Any]:
    return runtime_inst(**{"priority": 200, "garp_repeat": 1, **overrides})


def test_a_reload_that_cannot_start_everything_changes_nothing(lab: Lab, tmp_path: Path) -> None:
    vi2 = inst(name="VI_2", vrid=52, virtual_addresses=["192.0.2.101/24"])
    d1 = Daemon(lab["h1"], tmp_path, [inst(), vi2]).start()
    assert wait_for(lambda: d1.instance()["state"] == "MASTER", 3)
    assert wait_for(lambda: d1.instance("VI_2")["state"] == "MASTER", 3)
    before = d1.state()["instances"]
    # VI_1 changed, VI_2 removed, VI_3 added on an interface that does not exist.
    d1.write([inst(priority=150), inst(name="VI_3", vrid=53, interface="nosuchif0")])
    d1.signal(signal.SIGHUP)
    assert wait_for(lambda: "nosuchif0" in d1.log.read_text(), 3)
    d1.refresh()
    after = d1.state()["instances"]
    assert set(after) == {"VI_1", "VI_2"}
    for name in ("VI_1", "VI_2"):
        assert after[name]["state"] == "MASTER"
        assert after[name]["since"] == before[name]["since"]
        assert after[name]["counters"]["transitions"] == before[name]["counters"]["transitions"]
    assert after["VI_1"]["priority"] == 200
    log = d1.log.read_text()
    assert "instance[VI_3].interface: no interface nosuchif0" in log
    assert VIP in d1.addresses() and "192.0.2.101" in d1.addresses()
    assert d1.proc is not None and d1.proc.poll() is None


def test_a_link_with_the_vmac_name_that_vrrpy_did_not_make_is_never_adopted(
    lab: Lab, tmp_path: Path
) -> None:
    h1 = lab["h1"]
    h1.run(["ip", "link", "add", "vrrp4.51", "type", "veth", "peer", "name", "other0"])
    d1 = Daemon(lab["h1"], tmp_path, [inst(use_vmac=True)])
    with contextlib.suppress(AssertionError):  # it exits; maybe after its final state file
        d1.start()
    assert d1.proc is not None and d1.proc.wait(5) == 1
    assert "instance[VI_1].use_vmac: a link named vrrp4.51 already exists" in d1.log.read_text()
    shown = h1.run(["ip", "-o", "link", "show", "vrrp4.51"]).stdout
    assert "vrrp4.51@other0" in shown, "someone else's link must be left alone"
    assert "Traceback" not in d1.log.read_text()


def test_a_vmac_left_by_an_earlier_run_is_adopted_and_removed_on_stop(
    lab: Lab, tmp_path: Path
) -> None:
    h1 = lab["h1"]
    h1.run(
        [
            "ip", "link", "add", "link", "eth0", "name", "vrrp4.51", "address",
            "00:00:5e:00:01:33", "type", "macvlan", "mode", "private",
        ]
    )  # fmt: skip
    h1.run(["ip", "link", "set", "vrrp4.51", "alias", VMAC_ALIAS])
    d1 = Daemon(lab["h1"], tmp_path, [inst(use_vmac=True)]).start()
    assert wait_for(lambda: d1.instance()["state"] == "MASTER", 3)
    assert VIP in d1.addresses("vrrp4.51")
    assert "adopted the VMAC" in d1.log.read_text()
    assert d1.terminate() == 0
    gone = h1.run(["ip", "-o", "link", "show", "vrrp4.51"], check=False)
    assert gone.returncode != 0


def test_a_unicast_instance_joins_no_multicast_group(lab: Lab, tmp_path: Path) -> None:
    d1 = Daemon(lab["h1"], tmp_path, [inst(unicast_peers=["192.0.2.12"])]).start()
    assert wait_for(lambda: d1.instance()["state"] == "MASTER", 3)
    groups = lab["h1"].run(["ip", "maddr", "show", "dev", "eth0"]).stdout
    assert "224.0.0.18" not in groups
    d1.write([inst(unicast_peers=["192.0.2.12"]), inst(name="VI_2", vrid=52,
              virtual_addresses=["192.0.2.101/24"])])  # fmt: skip
    d1.signal(signal.SIGHUP)
    assert wait_for(lambda: "VI_2" in d1.state()["instances"], 3)
    assert wait_for(lambda: "224.0.0.18" in lab["h1"].run(["ip", "maddr", "show", "dev",
                    "eth0"]).stdout, 3)  # fmt: skip
