"""vrrpyd's ``/metrics``: configured, served from a real daemon, scraped by a real Prometheus.

The exposition format itself is tests/test_metrics.py's; here the endpoint is
the daemon's, in a namespace lab: what it says across a takeover, which thread
serves it, what a taken port does, and a Debian ``prometheus`` server scraping
a pair, querying it through its HTTP API and evaluating the shipped alert rules
across a split brain and a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from support import lab_instance, require_root, require_tool
from test_metrics import one, parse
from vrrpy.daemon.config import ConfigFileError, load_config, parse_listen
from vrrpy.lab import Daemon, Lab, running, wait_for
from vrrpy.lab.netns import in_netns, stop_process
from vrrpy.observe.kernel import read_addresses

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "vrrpy-alerts.yml"
PORT = 9165

CUT = """table inet vrrpcut {
  chain input {
    type filter hook input priority -200;
    meta l4proto 112 drop
  }
}
"""


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9165", ("127.0.0.1", 9165)),
        ("[::1]:9165", ("::1", 9165)),
        ("192.0.2.11:80", ("192.0.2.11", 80)),
        ("[2001:db8::1]:9165", ("2001:db8::1", 9165)),
    ],
)
def test_metrics_listen_takes_an_address_and_a_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == (expected, None)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9165", "ADDRESS:PORT"),
        (":9165", "ADDRESS:PORT"),
        ("localhost:9165", "must be an IP address"),
        ("127.0.0.1:0", "1..65535"),
        ("127.0.0.1:http", "1..65535"),
        ("::1:9165", "in brackets"),
        ("127.0.0.1:70000", "1..65535"),
    ],
)
def test_a_bad_metrics_listen_is_refused_naming_the_key(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "v.toml"
    path.write_text(
        f'[global]\nmetrics_listen = "{text}"\n\n[[instance]]\nname = "VI_1"\n'
        'interface = "eth0"\nvrid = 51\nvirtual_addresses = ["192.0.2.100/24"]\n'
    )
    with pytest.raises(ConfigFileError) as caught:
        load_config(str(path))
    [issue] = caught.value.errors
    assert issue.key == "global.metrics_listen"
    assert problem in issue.message


def test_metrics_are_off_unless_configured(tmp_path: Path) -> None:
    path = tmp_path / "v.toml"
    path.write_text(
        '[[instance]]\nname = "VI_1"\ninterface = "eth0"\nvrid = 51\n'
        'virtual_addresses = ["192.0.2.100/24"]\n'
    )
    assert load_config(str(path)).global_.metrics_listen is None


# --- a daemon serving it ----------------------------------------------------------------------


def instance(priority: int) -> dict[str, Any]:
    return lab_instance(priority)


def scrape(lab: Lab, host: str, address: str, port: int = PORT) -> str:
    """GET /metrics from inside ``host``'s namespace."""

    def get() -> str:
        with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=5) as answer:
            assert answer.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return answer.read().decode()  # type: ignore[no-any-return]

    return in_netns(lab[host].netns, get)


def thread_policies(pid: int) -> dict[str, tuple[int, int]]:
    """Each thread's name: (policy, priority)."""
    out: dict[str, tuple[int, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            out[name] = (
                os.sched_getscheduler(int(tid)),
                os.sched_getparam(int(tid)).sched_priority,
            )
    return out


def serving_pair(lab: Lab, workdir: Path) -> list[Daemon]:
    """h1 (priority 200) and h2 (100), each serving /metrics on its lab address."""
    return [
        Daemon(
            lab[f"h{i}"],
            workdir,
            [instance(priority)],
            global_={"metrics_listen": f"192.0.2.1{i}:{PORT}"},
        )
        for i, priority in ((1, 200), (2, 100))
    ]


@pytest.fixture
def pair() -> Iterator[tuple[Lab, Daemon, Daemon]]:
    require_root()
    with (
        tempfile.TemporaryDirectory() as tmp,
        Lab(hosts=3) as lab,
        running(serving_pair(lab, Path(tmp))) as (h1, h2),
    ):
        yield lab, h1, h2


def test_vrrpyd_serves_its_state_across_a_takeover(pair: tuple[Lab, Daemon, Daemon]) -> None:
    lab, h1, h2 = pair
    assert wait_for(lambda: h1.instance()["state"] == "MASTER", 5)
    assert wait_for(lambda: h2.instance()["state"] == "BACKUP", 5)
    time.sleep(0.5)  # a few adverts heard by h2
    labels = {"iname": "VI_1", "intf": "eth0", "vrid": "51"}
    first = parse(scrape(lab, "h1", "192.0.2.11"))
    assert one(first, "keepalived_up") == 1
    assert one(first, "keepalived_vrrp_state", ip_address="192.0.2.100/24", **labels) == 2
    assert (
        one(
            first,
            "vrrpy_state_transitions_total",
            **{"from": "BACKUP", "to": "MASTER", "reason": "master_down"},
            **labels,
        )
        == 1
    )
    assert one(first, "vrrpy_takeover_seconds_count", **labels) == 1
    assert one(first, "vrrpy_daemon_pid") == h1.proc.pid  # type: ignore[union-attr]
    assert one(first, "vrrpy_address_installed", ip_address="192.0.2.100/24", **labels) == 1
    backup = parse(scrape(lab, "h2", "192.0.2.12"))
    assert one(backup, "keepalived_vrrp_state", ip_address="192.0.2.100/24", **labels) == 1
    assert one(backup, "vrrpy_address_installed", ip_address="192.0.2.100/24", **labels) == 0
    heard = one(backup, "vrrpy_advert_interarrival_seconds_count", **labels)
    assert heard >= 3
    # Every interval heard is the Master's 100 ms, give or take the machine.
    assert one(backup, "vrrpy_advert_interarrival_seconds_bucket", le="0.15", **labels) >= (
        heard - 2
    )
    # The serving thread is a runtime worker: real-time one below the loop.
    assert h1.proc is not None
    policies = thread_policies(h1.proc.pid)
    assert policies["vrrpyd-metrics"] == (os.SCHED_RR | os.SCHED_RESET_ON_FORK, 9), policies

    # A takeover that half-failed looks like this: still MASTER, the address gone.
    lab["h1"].run(["ip", "addr", "del", "192.0.2.100/24", "dev", "eth0"])

    def address_missing() -> bool:
        seen = parse(scrape(lab, "h1", "192.0.2.11"))
        return (
            one(seen, "vrrpy_address_installed", ip_address="192.0.2.100/24", **labels) == 0
            and one(seen, "keepalived_vrrp_state", ip_address="192.0.2.100/24", **labels) == 2
        )

    assert wait_for(address_missing, 3, step=0.2)

    h1.kill()
    assert wait_for(lambda: h2.instance()["state"] == "MASTER", 5)
    # A render is served again for up to a second (two Prometheus servers, one render).
    after: dict[str, Any] = {}

    def shows_master() -> bool:
        after.update(parse(scrape(lab, "h2", "192.0.2.12")))
        return one(after, "keepalived_vrrp_state", ip_address="192.0.2.100/24", **labels) == 2

    assert wait_for(shows_master, 3, step=0.2)
    assert one(after, "keepalived_become_master_total", **labels) == 1
    assert one(after, "vrrpy_takeover_seconds_count", **labels) == 1
    # The takeover itself (Master_Down_Timer to the first GARP) is well under a
    # millisecond on an idle machine; a generous bound for a busy one.
    assert one(after, "vrrpy_takeover_seconds_sum", **labels) < 0.05


def test_a_track_script_running_now_shows_in_keepalived_script_state() -> None:
    """keepalived_script_state from a live daemon: the script sleeps most of each interval,
    so a render soon finds it running; the answer is one render old (asked at each)."""
    require_root()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        daemon = Daemon(
            lab["h1"],
            Path(tmp),
            [dict(instance(200), track_script=["chk_slow"])],
            tables={"track_script": [{"name": "chk_slow", "script": "/bin/sleep 0.8"}]},
            global_={"metrics_listen": f"192.0.2.11:{PORT}"},
        )
        with running([daemon]):
            assert wait_for(lambda: daemon.instance()["state"] == "MASTER", 5)
            seen: list[float] = []

            def state_seen() -> bool:
                families = parse(scrape(lab, "h1", "192.0.2.11"))
                if "keepalived_script_state" in families:
                    seen.append(one(families, "keepalived_script_state", name="chk_slow"))
                return 1 in seen

            assert wait_for(state_seen, 10, step=0.25), seen
            assert set(seen) <= {0, 1}  # idle or running, never a value keepalived lacks


def test_a_taken_metrics_port_fails_the_start_naming_the_key() -> None:
    require_root()
    with tempfile.TemporaryDirectory() as tmp, Lab(hosts=1) as lab:
        blocker = lab["h1"].popen(
            [
                "python3",
                "-c",
                "import socket,time; s=socket.socket(); "
                "s.bind(('192.0.2.11', 9165)); s.listen(); time.sleep(60)",
            ],
        )
        try:
            time.sleep(0.3)
            daemon = Daemon(
                lab["h1"],
                Path(tmp),
                [instance(200)],
                global_={"metrics_listen": f"192.0.2.11:{PORT}"},
            )
            with contextlib.suppress(AssertionError):  # it may exit before or after its file
                daemon.start()
            assert daemon.proc is not None and daemon.proc.wait(5) == 1
            assert (
                "metrics_listen 192.0.2.11:9165: Address already in use" in daemon.log.read_text()
            )
            assert "192.0.2.100" not in daemon.addresses()
        finally:
            stop_process(blocker)


def test_the_kernel_address_dump_sees_both_families_and_a_point_to_point_local() -> None:
    require_root()
    with Lab(hosts=1) as lab:
        host = lab["h1"]
        host.run(["ip", "addr", "add", "198.51.100.7", "peer", "198.51.100.8", "dev", "eth0"])
        host.run(["ip", "addr", "add", "2001:db8::77/64", "dev", "eth0", "nodad"])
        index = int(host.run(["cat", "/sys/class/net/eth0/ifindex"]).stdout)
        seen = in_netns(host.netns, read_addresses)
        assert {"192.0.2.11", "198.51.100.7", "2001:db8::77"} <= seen[index]
        assert "198.51.100.8" not in seen[index]  # the peer is IFA_ADDRESS, not ours
        assert seen[1] >= {"127.0.0.1", "::1"}


# --- a real Prometheus server -----------------------------------------------------------------


class Prometheus:
    """Debian's ``prometheus`` in a lab host, scraping every second, with our alert rules."""

    def __init__(self, lab: Lab, host: str, workdir: Path, targets: list[str]) -> None:
        self.lab = lab
        self.host = host
        self.dir = workdir / "prometheus"
        self.dir.mkdir()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {
                    "job_name": "vrrpyd",
                    "scrape_timeout": "900ms",
                    "static_configs": [{"targets": targets, "labels": {"cluster": "lab"}}],
                }
            ],
        }
        # JSON is YAML: no YAML writer needed.
        (self.dir / "prometheus.yml").write_text(json.dumps(config, indent=1))
        self.log = self.dir / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = lab[host].popen(
                [
                    "prometheus",
                    f"--config.file={self.dir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.dir / 'data'}",
                    "--web.listen-address=127.0.0.1:9090",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr})

        def get() -> list[dict[str, Any]]:
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = json.load(answer)
            assert body["status"] == "success", body
            return body["data"]["result"]  # type: ignore[no-any-return]

        return in_netns(self.lab[self.host].netns, get)

    def ready(self) -> bool:
        try:
            self.query("up")
        except OSError:
            return False
        return True

    def values(self, expr: str) -> dict[str, float]:
        """``expr``'s samples now, by the scraped target."""
        return {s["metric"].get("instance", ""): float(s["value"][1]) for s in self.query(expr)}

    def stop(self) -> None:
        stop_process(self.proc)


def test_a_real_prometheus_scrapes_the_pair_and_evaluates_the_alert_rules() -> None:
    require_root()
    require_tool("prometheus")
    require_tool("nft")
    targets = [f"192.0.2.11:{PORT}", f"192.0.2.12:{PORT}"]
    with (
        tempfile.TemporaryDirectory() as tmp,
        Lab(hosts=3) as lab,
        running(serving_pair(lab, Path(tmp))) as daemons,
    ):
        prometheus = Prometheus(lab, "h3", Path(tmp), targets)
        try:
            across_a_split_brain_and_a_crash(lab, prometheus, daemons, *targets)
        finally:
            prometheus.stop()
        assert "level=error" not in prometheus.log.read_text()


def across_a_split_brain_and_a_crash(
    lab: Lab, prometheus: Prometheus, daemons: Sequence[Daemon], h1_target: str, h2_target: str
) -> None:
    assert wait_for(prometheus.ready, 30, step=0.2), prometheus.log.read_text()
    state = 'keepalived_vrrp_state{iname="VI_1"}'
    assert wait_for(
        lambda: prometheus.values(state) == {h1_target: 2.0, h2_target: 1.0}, 20, 0.2
    ), prometheus.values(state)
    assert prometheus.values("up") == {h1_target: 1.0, h2_target: 1.0}

    # A split brain: h2 stops hearing h1 and takes over; both are MASTER, and the
    # shipped rule counts MASTERs per virtual address (pending: its `for` is 30 s).
    lab["h2"].run(["nft", "-f", "-"], input=CUT)
    split = 'ALERTS{alertname="VRRPSplitBrain", ip_address="192.0.2.100/24"}'
    assert wait_for(lambda: prometheus.query(split), 20, 0.2), prometheus.query("ALERTS")
    lab["h2"].run(["nft", "delete", "table", "inet", "vrrpcut"])
    assert wait_for(lambda: daemons[1].instance()["state"] == "BACKUP", 5)
    assert wait_for(lambda: not prometheus.query(split), 20, 0.2)

    # A crash: h1's daemon is gone (its target down), h2 is MASTER, and the
    # takeovers are counted by their reason.
    daemons[0].kill()
    assert wait_for(lambda: prometheus.values("up") == {h1_target: 0.0, h2_target: 1.0}, 20, 0.2)
    assert wait_for(lambda: prometheus.values(state) == {h2_target: 2.0}, 20, 0.2)
    became = prometheus.values(
        'vrrpy_state_transitions_total{from="BACKUP",to="MASTER",reason="master_down"}'
    )
    assert became == {h2_target: 2.0}  # the split brain's, then the crash's
    assert prometheus.values("vrrpy_takeover_seconds_count") == {h2_target: 2.0}
    assert prometheus.values('keepalived_become_master_total{iname="VI_1"}') == {h2_target: 2.0}
