# ruff: noqa: E501  (TOML lines as a user writes them)
"""vrrpyd's [[virtual_server]] tables: parsing, every bad key named, and the wiring.

The wiring test needs no IPVS in the host kernel: the IPVS backend's kernel is
``test_ipvs_reconcile.FakeKernel``, the health agent is the real child process,
and it checks a real HTTP server on loopback that stops and comes back.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest

from support import require_root
from test_ipvs_reconcile import FakeKernel
from vrrpy.backends.base import Backend, TransitionEvent
from vrrpy.backends.pipeline import Pipeline
from vrrpy.core.state import State
from vrrpy.daemon.config import ConfigFileError, DaemonConfig, load_config, parse_config
from vrrpy.daemon.lvs import Lvs
from vrrpy.health.model import DnsCheck, HttpCheck, MiscCheck, TcpCheck
from vrrpy.ipvs.model import Forwarding, Protocol, RealServer, ServiceKey
from vrrpy.lab import Daemon, Lab, wait_for

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vrrpyd-lvs.toml"

INSTANCES = """
[[instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
virtual_addresses = ["192.0.2.10/24"]

[[instance]]
name = "VI_2"
interface = "eth0"
vrid = 52
virtual_addresses = ["192.0.2.20/24"]
"""

GOOD = """
[[virtual_server]]
instance = "VI_1"
address = "192.0.2.10"
port = 80
lb_algo = "wrr"
lb_kind = "NAT"
persistence_timeout = 300
persistence_granularity = "255.255.255.0"
delay_loop = 6
alpha = true
inhibit_on_failure = true
quorum = 2
hysteresis = 1
sorry_server = "198.51.100.99 8099"
on_backup = "remove"
sync_daemon = { interface = "eth1", syncid = 51 }

[[virtual_server.real_server]]
address = "198.51.100.11"
port = 8080
weight = 3
uthreshold = 500
lthreshold = 400
HTTP_GET = { url = [{ path = "/health", status_code = 200 }, { path = "/", digest = "9B3A0C85A887A256D6939DA88AABD8CD" }], connect_timeout = 3 }

[[virtual_server.real_server]]
address = "198.51.100.12"
port = 8080
TCP_CHECK = { connect_timeout = 2, retry = 0 }
MISC_CHECK = { misc_path = "/bin/true", misc_timeout = 4 }

[[virtual_server.real_server]]
address = "198.51.100.13"
port = 8080

[[virtual_server]]
instance = "VI_2"
fwmark = 7
lvs_sched = "sh"
lvs_method = "DR"
real_server = [
    { address = "198.51.100.21", port = 0, DNS_CHECK = { connect_port = 53, type = "A", name = "www.example.com" } },
]
"""


def load(text: str) -> DaemonConfig:
    return parse_config(INSTANCES + textwrap.dedent(text))


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        load(text)
    return [str(issue) for issue in info.value.errors]


def test_a_full_file_loads_with_keepalived_names_and_defaults() -> None:
    config = load(GOOD)
    assert sorted(config.virtual_servers) == ["VI_1", "VI_2"]
    one = config.virtual_servers["VI_1"]
    (web,) = one.services
    assert web.key == ServiceKey.of("tcp", "192.0.2.10", 80)
    assert web.scheduler == "wrr" and web.persistence_timeout == 300
    assert web.persistence_granularity == 24
    assert (web.alpha, web.inhibit_on_failure, web.quorum, web.hysteresis) == (True, True, 2, 1)
    assert web.sorry_server == RealServer("198.51.100.99", 8099)
    assert web.real_servers[0] == RealServer(
        "198.51.100.11", 8080, weight=3, upper_threshold=500, lower_threshold=400
    )
    assert one.on_backup == "remove" and one.install == "master"
    assert (one.sync_interface, one.syncid) == ("eth1", 51)
    # Two URLs are two HTTP checks; TCP + MISC on the second server; none on the third.
    kinds = [type(check) for check in one.checks]
    assert kinds == [HttpCheck, HttpCheck, TcpCheck, MiscCheck]
    http_check = one.checks[0]
    assert isinstance(http_check, HttpCheck)
    assert (http_check.connect_ip, http_check.connect_port) == ("198.51.100.11", 8080)
    assert http_check.delay_loop == 6 and http_check.alpha and http_check.connect_timeout == 3
    second = one.checks[1]
    assert isinstance(second, HttpCheck) and second.digest == "9b3a0c85a887a256d6939da88aabd8cd"
    misc = one.checks[3]
    assert isinstance(misc, MiscCheck) and misc.command == "/bin/true" and misc.timeout == 4
    assert set(one.targets.values()) == {
        (web.key, (ip_address("198.51.100.11"), 8080)),
        (web.key, (ip_address("198.51.100.12"), 8080)),
    }
    assert one.unchecked == ((web.key, (ip_address("198.51.100.13"), 8080)),)
    for check in one.checks:
        assert check.server in one.targets
    # The configured weights, the agent's base for misc_dynamic: checked servers only.
    assert sorted(one.weights.values()) == [1, 3] and set(one.weights) == set(one.targets)
    assert misc.dynamic is False

    two = config.virtual_servers["VI_2"]
    (marked,) = two.services
    assert marked.key == ServiceKey.mark(7) and marked.scheduler == "sh"
    assert marked.real_servers[0].forwarding is Forwarding.DR
    (dns,) = two.checks
    assert isinstance(dns, DnsCheck)
    assert (dns.query_type, dns.query_name, dns.connect_port) == ("A", "www.example.com", 53)
    assert two.on_backup == "keep" and two.sync_interface is None


def test_defaults_of_a_minimal_virtual_server() -> None:
    config = load(
        """
        [[virtual_server]]
        instance = "VI_1"
        address = "2001:db8::10"
        port = 443
        protocol = "udp"
        real_server = [{ address = "2001:db8::11", port = 443, TCP_CHECK = {} }]
        """
    )
    spec = config.virtual_servers["VI_1"]
    (vs,) = spec.services
    assert vs.protocol is Protocol.UDP and vs.scheduler == "wlc" and vs.family == 6
    assert vs.real_servers[0].forwarding is Forwarding.NAT and vs.real_servers[0].weight == 1
    (tcp,) = spec.checks
    assert isinstance(tcp, TcpCheck) and tcp.delay_loop == 60.0  # keepalived's default
    assert tcp.connect_ip == "2001:db8::11" and tcp.connect_port == 443


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        (
            'instance = "VI_1"\nadress = "192.0.2.10"',
            "virtual_server[0].adress",
            'did you mean "address"',
        ),
        ('address = "192.0.2.10"', "virtual_server[0].instance", "required key is missing"),
        (
            'instance = "VI_9"\naddress = "192.0.2.10"',
            "virtual_server[0].instance",
            "no instance named 'VI_9'",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.300"',
            "virtual_server[0].address",
            "not an IP address",
        ),
        ('instance = "VI_1"', "virtual_server[0].address", "required key is missing"),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nport = 70000',
            "virtual_server[0].port",
            "0..65535",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nprotocol = "icmp"',
            "virtual_server[0].protocol",
            "TCP, UDP or SCTP",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nlb_algo = "fastest"',
            "virtual_server[0].lb_algo",
            "unknown scheduler",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nlb_algo = "rr"\nscheduler = "rr"',
            "virtual_server[0].scheduler",
            "same setting",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nlb_kind = "LOCAL"',
            "virtual_server[0].lb_kind",
            "NAT, DR or TUN",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\npersistence_granularity = "255.0.255.0"',
            "virtual_server[0].persistence_granularity",
            "netmask",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nquorum = 0',
            "virtual_server[0].quorum",
            "1..",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\ndelay_loop = 0',
            "virtual_server[0].delay_loop",
            "> 0",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nalpha = "yes"',
            "virtual_server[0].alpha",
            "true or false",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\non_backup = "drop"',
            "virtual_server[0].on_backup",
            '"keep" or "remove"',
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\ninstall = "backup"',
            "virtual_server[0].install",
            '"master" or "always"',
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\ninstall = "always"\non_backup = "remove"',
            "virtual_server[0].install",
            "give one",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\ninstall = true',
            "virtual_server[0].install",
            "non-empty string",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nsorry_server = "198.51.100.99"',
            "virtual_server[0].sorry_server",
            "ADDRESS PORT",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nsync_daemon = { interface = "eth1", syncid = 300 }',
            "virtual_server[0].sync_daemon.syncid",
            "0..255",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nsync_daemon = { syncid = 3 }',
            "virtual_server[0].sync_daemon.interface",
            "required",
        ),
        (
            'instance = "VI_1"\naddress = "192.0.2.10"\nsync_daemon = { interface = "eth1", mcast = 1 }',
            "virtual_server[0].sync_daemon.mcast",
            "unknown key",
        ),
        (
            'instance = "VI_1"\nfwmark = 5\naddress = "192.0.2.10"',
            "virtual_server[0].address",
            "fwmark service has no address",
        ),
    ],
)
def test_each_virtual_server_problem_is_named_by_its_key(
    snippet: str, key: str, words: str
) -> None:
    port = "" if "port" in snippet or "fwmark" in snippet else "port = 80\n"
    servers = '\nreal_server = [{ address = "198.51.100.11", port = 80 }]'
    found = problems("[[virtual_server]]\n" + port + snippet + servers)
    assert any(p.startswith(f"{key}: ") and words in p for p in found), found


@pytest.mark.parametrize(
    ("server", "key", "words"),
    [
        (
            '{ adress = "198.51.100.11", port = 80 }',
            "real_server[0].adress",
            'did you mean "address"',
        ),
        ("{ port = 80 }", "real_server[0].address", "required key is missing"),
        ('{ address = "198.51.100.11" }', "real_server[0].port", "required key is missing"),
        ('{ address = "198.51.100.11", port = 80, weight = -1 }', "real_server[0].weight", "0.."),
        (
            '{ address = "198.51.100.11", port = 80, uthreshold = 5, upper_threshold = 5 }',
            "real_server[0].uthreshold",
            "same setting",
        ),
        (
            '{ address = "198.51.100.11", port = 80, uthreshold = 5, lthreshold = 9 }',
            "real_server[0].lthreshold",
            "above upper_threshold",
        ),
        (
            '{ address = "198.51.100.11", port = 80, HTTP_GET = { status_code = "abc" } }',
            "real_server[0].HTTP_GET.status_code",
            "not a code or a range",
        ),
        (
            '{ address = "198.51.100.11", port = 80, HTTP_GET = { bogus = 1 } }',
            "real_server[0].HTTP_GET.bogus",
            "unknown key",
        ),
        (
            '{ address = "198.51.100.11", port = 80, HTTP_GET = { url = [{ path = "/", status = 200 }] } }',
            "real_server[0].HTTP_GET.url[0].status",
            "unknown key",
        ),
        (
            '{ address = "198.51.100.11", port = 80, HTTP_GET = { url = [{ path = "no slash" }] } }',
            "real_server[0].HTTP_GET.url[0].path",
            "must start with /",
        ),
        (
            '{ address = "198.51.100.11", port = 80, SSL_GET = { digest = "xyz" } }',
            "real_server[0].SSL_GET.digest",
            "32 hex digits",
        ),
        (
            '{ address = "198.51.100.11", port = 80, TCP_CHECK = { connect_timeout = -1 } }',
            "real_server[0].TCP_CHECK.connect_timeout",
            "> 0",
        ),
        (
            '{ address = "198.51.100.11", port = 80, TCP_CHECK = [{}, { retry = -1 }] }',
            "real_server[0].TCP_CHECK[1].retry",
            ">= 0",
        ),
        (
            '{ address = "198.51.100.11", port = 80, DNS_CHECK = { type = "XYZ" } }',
            "real_server[0].DNS_CHECK.type",
            "not one of A,",
        ),
        (
            '{ address = "198.51.100.11", port = 80, MISC_CHECK = {} }',
            "real_server[0].MISC_CHECK.misc_path",
            "required key is missing",
        ),
        (
            '{ address = "198.51.100.11", port = 80, MISC_CHECK = { misc_path = "/bin/true", misc_dynamic = "yes" } }',
            "real_server[0].MISC_CHECK.misc_dynamic",
            "true or false",
        ),
        (
            '{ address = "198.51.100.11", port = 80, MISC_CHECK = { misc_path = "/bin/true", misc_dynamic = true, dynamic = true } }',
            "real_server[0].MISC_CHECK.dynamic",
            "same setting",
        ),
        (
            '{ address = "198.51.100.11", port = 80, TCP_CHECK = { misc_dynamic = true } }',
            "real_server[0].TCP_CHECK.misc_dynamic",
            "unknown key",
        ),
        (
            '{ address = "198.51.100.11", port = 80, TCP_CHECK = 5 }',
            "real_server[0].TCP_CHECK",
            "must be a table",
        ),
        ('{ address = "2001:db8::11", port = 80 }', "virtual_server[0].real_server", "IPv4"),
    ],
)
def test_each_real_server_problem_is_named_by_its_key(server: str, key: str, words: str) -> None:
    found = problems(
        f'[[virtual_server]]\ninstance = "VI_1"\naddress = "192.0.2.10"\nport = 80\n'
        f"real_server = [{server}]"
    )
    full = key if key.startswith("virtual_server") else f"virtual_server[0].{key}"
    assert any(p.startswith(f"{full}: ") and words in p for p in found), found


def test_problems_across_tables() -> None:
    found = problems(
        """
        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        on_backup = "remove"
        sync_daemon = { interface = "eth1", syncid = 1 }
        real_server = [{ address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        real_server = [{ address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 443
        real_server = [{ address = "198.51.100.11", port = 443 }]

        [[virtual_server]]
        instance = "VI_2"
        address = "192.0.2.20"
        port = 80
        sync_daemon = { interface = "eth1", syncid = 2 }
        real_server = [{ address = "198.51.100.11", port = 80 }, { address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_2"
        address = "192.0.2.20"
        port = 81
        real_server = []
        """
    )
    assert any(p.startswith("virtual_server[1]: ") and "already declared" in p for p in found)
    assert any(p.startswith("virtual_server[2].on_backup: ") for p in found), found
    assert any(p.startswith("virtual_server[3].real_server[1].address: ") for p in found)
    assert any(p.startswith("virtual_server[4].real_server: ") for p in found)
    found = problems(
        """
        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        sync_daemon = { interface = "eth1", syncid = 1 }
        real_server = [{ address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_2"
        address = "192.0.2.20"
        port = 80
        sync_daemon = { interface = "eth1", syncid = 2 }
        real_server = [{ address = "198.51.100.11", port = 80 }]
        """
    )
    assert any(
        p.startswith("virtual_server[1].sync_daemon: ") and "one master" in p for p in found
    ), found
    found = problems(
        """
        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        install = "always"
        real_server = [{ address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 443
        real_server = [{ address = "198.51.100.11", port = 443 }]
        """
    )
    assert any(
        p.startswith("virtual_server[1].install: ") and "moves as one" in p for p in found
    ), found
    found = problems('[virtual_server]\ninstance = "VI_1"')
    assert any(p.startswith("virtual_server: ") and "[[virtual_server]]" in p for p in found)


KEEPALIVED = """
virtual_server 192.0.2.10 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    protocol TCP
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    inhibit_on_failure
    sorry_server 198.51.100.13 80
    real_server 198.51.100.11 80 {
        weight 3
        uthreshold 500
        lthreshold 400
        HTTP_GET {
            url { path /health status_code 200 }
            url { path / digest 9b3a0c85a887a256d6939da88aabd8cd }
            connect_timeout 3
            retry 2
            delay_before_retry 2
        }
    }
    real_server 198.51.100.12 80 {
        weight 2
        TCP_CHECK { connect_timeout 3 connect_port 8080 }
    }
}
"""

BY_HAND = """
[[virtual_server]]
instance = "VI_1"
address = "192.0.2.10"
port = 80
delay_loop = 6
lb_algo = "wrr"
lb_kind = "DR"
protocol = "TCP"
persistence_timeout = 300
persistence_granularity = "255.255.255.0"
inhibit_on_failure = true
sorry_server = "198.51.100.13 80"

[[virtual_server.real_server]]
address = "198.51.100.11"
port = 80
weight = 3
uthreshold = 500
lthreshold = 400
HTTP_GET = { url = [{ path = "/health", status_code = 200 }, { path = "/", digest = "9b3a0c85a887a256d6939da88aabd8cd" }], connect_timeout = 3, retry = 2, delay_before_retry = 2 }

[[virtual_server.real_server]]
address = "198.51.100.12"
port = 80
weight = 2
TCP_CHECK = { connect_timeout = 3, connect_port = 8080 }
"""


def test_a_keepalived_block_translated_by_hand_loads_as_keepalived_means_it() -> None:
    assert "virtual_server 192.0.2.10 80" in KEEPALIVED  # the original, for the reader
    spec = load(BY_HAND).virtual_servers["VI_1"]
    (vs,) = spec.services
    assert str(vs.key) == "TCP 192.0.2.10:80"
    assert (vs.scheduler, vs.persistence_timeout, vs.persistence_granularity) == ("wrr", 300, 24)
    assert vs.inhibit_on_failure and vs.sorry_server == RealServer(
        "198.51.100.13", 80, forwarding="dr"
    )
    assert [(str(rs), rs.weight, rs.forwarding) for rs in vs.real_servers] == [
        ("198.51.100.11:80", 3, Forwarding.DR),
        ("198.51.100.12:80", 2, Forwarding.DR),
    ]
    health, root, tcp = spec.checks
    assert isinstance(health, HttpCheck) and isinstance(root, HttpCheck)
    assert (health.path, health.status_code, health.retry, health.delay_before_retry) == (
        "/health",
        ((200, 200),),
        2,
        2,
    )
    assert root.path == "/" and root.digest == "9b3a0c85a887a256d6939da88aabd8cd"
    assert isinstance(tcp, TcpCheck) and tcp.connect_port == 8080 and tcp.delay_loop == 6


def test_the_lvs_example_loads() -> None:
    config = load_config(EXAMPLE)
    spec = config.virtual_servers["VI_WEB"]
    assert [str(vs.key) for vs in spec.services] == ["TCP 192.0.2.80:80"]
    assert len(spec.checks) == 2 and spec.sync_interface == "eth1"
    assert spec.install == "always" and spec.on_backup == "keep"
    # Its commented MISC_CHECK line, switched on, is a misc_dynamic check.
    text = EXAMPLE.read_text().replace("# MISC_CHECK = ", "MISC_CHECK = ")
    (misc,) = [
        c for c in parse_config(text).virtual_servers["VI_WEB"].checks if c.kind.value == "misc"
    ]
    assert isinstance(misc, MiscCheck) and misc.dynamic and misc.timeout == 3


def test_ipvs_goes_after_the_users_backends_and_before_the_notify_scripts() -> None:
    text = INSTANCES.replace(
        'name = "VI_1"', 'name = "VI_1"\nbackends = ["mine"]\nnotify_master = "/bin/true"', 1
    )
    text += textwrap.dedent(
        """
        [[backend]]
        name = "mine"
        type = "script"
        master = "/bin/true"

        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        real_server = [{ address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_2"
        address = "192.0.2.20"
        port = 80
        real_server = [{ address = "198.51.100.11", port = 80 }]
        """
    )
    config2 = parse_config(text)
    from vrrpy.daemon.backendconfig import build_backends

    backends = {name: build_backends(s, {}) for name, s in config2.instance_backends.items()}
    lvs = Lvs(config2, kernel=FakeKernel)
    lvs.attach(backends, config2)
    assert [b.name for b in backends["VI_1"]] == ["mine", "ipvs", "notify"]
    assert [b.name for b in backends["VI_2"]] == ["ipvs"]
    assert lvs.checks == ()


def test_install_always_reaches_the_backend_and_installs_the_pool_on_a_backup() -> None:
    config = load(
        """
        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        install = "always"
        sync_daemon = { interface = "eth1", syncid = 51 }
        real_server = [{ address = "198.51.100.11", port = 80 }]

        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 443
        install = "always"
        real_server = [{ address = "198.51.100.11", port = 443 }]

        [[virtual_server]]
        instance = "VI_2"
        address = "192.0.2.20"
        port = 80
        real_server = [{ address = "198.51.100.11", port = 80 }]
        """
    )
    assert config.virtual_servers["VI_1"].install == "always"
    assert config.virtual_servers["VI_2"].install == "master"
    kernels = {"VI_1": FakeKernel(), "VI_2": FakeKernel()}
    lvs = Lvs(config, kernel=lambda: kernels["VI_1"])
    lvs.backends["VI_2"]._open_kernel = lambda: kernels["VI_2"]
    assert [b.install for b in lvs.backends.values()] == ["always", "master"]

    async def scenario() -> None:
        for name, ipvs in lvs.backends.items():
            await ipvs.transition(
                TransitionEvent(name, State.INITIALIZE, State.BACKUP, "test", 100)
            )
        await lvs.backends["VI_1"].transition(
            TransitionEvent("VI_1", State.BACKUP, State.FAULT, "test", 100)
        )
        for ipvs in lvs.backends.values():
            await ipvs.close()

    asyncio.run(scenario())
    # A Backup (then FAULT) of VI_1 holds both its services and runs the backup sync
    # daemon; VI_2, installed on becoming Master, holds nothing as a Backup.
    assert sorted(str(key) for key in kernels["VI_1"].services) == [
        "TCP 192.0.2.10:443",
        "TCP 192.0.2.10:80",
    ]
    assert [d.state for d in kernels["VI_1"].daemon_list] == ["backup"]
    assert kernels["VI_2"].services == {}


# -- the wiring: a real health agent, a real HTTP server, a fake kernel ------------------------


class _Quiet(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Web:
    """An HTTP server on 127.0.0.1 that can stop and start again on the same port."""

    def __init__(self) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _Quiet)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


async def _until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("inhibit", [False, True])
def test_a_failing_real_server_leaves_the_pool_and_returns(inhibit: bool) -> None:
    web = _Web()
    web.start()
    text = textwrap.dedent(
        f"""
        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        delay_loop = 0.2
        inhibit_on_failure = {str(inhibit).lower()}

        [[virtual_server.real_server]]
        address = "127.0.0.1"
        port = {web.port}
        weight = 5
        HTTP_GET = {{ url = [{{ path = "/health" }}], connect_timeout = 1, retry = 0, warmup = 0 }}

        [[virtual_server.real_server]]
        address = "127.0.0.2"
        port = 9
        """
    )
    config = load(text)
    kernel = FakeKernel()
    lvs = Lvs(config, kernel=lambda: kernel)
    ipvs = lvs.backends["VI_1"]
    service = ServiceKey.of("tcp", "192.0.2.10", 80)
    checked = (ip_address("127.0.0.1"), web.port)
    key = f"VI_1 TCP 192.0.2.10:80 -> 127.0.0.1:{web.port}"
    changes: list[str] = []

    def weights() -> dict[tuple[Any, int], int]:
        return {key: rs.weight for key, rs in kernel.dests.get(service, {}).items()}

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline("VI_1", [ipvs], loop)
        lvs.start(loop, lambda: changes.append("changed"))
        assert lvs.agent is not None
        try:
            await _until(lambda: lvs.agent is not None and lvs.agent.ready, "the agent is ready")
            pipeline.transition(TransitionEvent("VI_1", State.BACKUP, State.MASTER, "test", 100))
            await _until(lambda: weights().get(checked) == 5, "the pool is installed")
            assert weights()[(ip_address("127.0.0.2"), 9)] == 1  # no checker: alive
            web.stop()
            if inhibit:
                await _until(lambda: weights().get(checked) == 0, "weight 0 (inhibit_on_failure)")
            else:
                await _until(lambda: checked not in weights(), "the failed server removed")
            status = pipeline.status()["ipvs"]["status"]
            web.start()
            await _until(lambda: weights().get(checked) == 5, "the server back at its weight")
            lvs.request_status()
            await _until(lambda: lvs.raw_checks() is not None, "the check history")
            raw = lvs.raw_checks()
            assert raw is not None
            assert "checks" not in _entry(pipeline), "histories never in the backend's status"
            final = dict(json.loads(raw)["servers"][key], **_entry(pipeline))
            return {"down": status, "final": final}
        finally:
            lvs.stop()
            await pipeline.close()
            if web.server is not None:
                web.stop()

    result = asyncio.run(scenario())
    down = result["down"]["health"][key]
    assert down["up"] is False and "failed" in down["reason"], down
    assert result["down"]["installed"] is True
    final = result["final"]
    assert final["up"] is True
    history = final["checks"][0]["history"]
    assert any(not run["ok"] for run in history) and history[-1]["ok"]
    assert changes  # the daemon's state file was asked to be rewritten
    assert kernel.closed


def test_misc_dynamic_exit_status_sets_the_kernel_weight(tmp_path: Path) -> None:
    """keepalived's convention through the real agent to the (fake) kernel: exit 0 up at
    the configured weight, 2..255 up at status - 2, 1 down."""
    status_file = tmp_path / "status"
    status_file.write_text("0\n")
    command = f"/bin/sh -c 'exit $(cat {status_file})'"
    text = textwrap.dedent(
        f"""
        [[virtual_server]]
        instance = "VI_1"
        address = "192.0.2.10"
        port = 80
        inhibit_on_failure = true

        [[virtual_server.real_server]]
        address = "198.51.100.11"
        port = 80
        weight = 3
        MISC_CHECK = {{ misc_path = "{command}", misc_dynamic = true, delay_loop = 0.1, warmup = 0 }}

        [[virtual_server.real_server]]
        address = "198.51.100.12"
        port = 80
        """
    )
    config = load(text)
    (misc,) = config.virtual_servers["VI_1"].checks
    assert isinstance(misc, MiscCheck) and misc.dynamic and misc.timing().retry == 0
    kernel = FakeKernel()
    lvs = Lvs(config, kernel=lambda: kernel)
    ipvs = lvs.backends["VI_1"]
    service = ServiceKey.of("tcp", "192.0.2.10", 80)
    dynamic = (ip_address("198.51.100.11"), 80)
    key = "VI_1 TCP 192.0.2.10:80 -> 198.51.100.11:80"

    def weight() -> int | None:
        server = kernel.dests.get(service, {}).get(dynamic)
        return None if server is None else server.weight

    def weighs(expected: int) -> Callable[[], bool]:
        return lambda: weight() == expected

    async def scenario() -> list[tuple[str, Any, Any]]:
        loop = asyncio.get_running_loop()
        pipeline = Pipeline("VI_1", [ipvs], loop)
        lvs.start(loop)
        seen: list[tuple[str, Any, Any]] = []
        try:
            await _until(lambda: lvs.agent is not None and lvs.agent.ready, "the agent is ready")
            pipeline.transition(TransitionEvent("VI_1", State.BACKUP, State.MASTER, "test", 100))
            await _until(lambda: weight() == 3, "installed at the configured weight (exit 0)")
            for code, expected in (("7", 5), ("2", 0), ("0", 3), ("1", 0), ("12", 10)):
                status_file.write_text(code + "\n")
                await _until(weighs(expected), f"exit {code}: weight {expected}")
                entry = pipeline.status()["ipvs"]["status"]["health"][key]
                seen.append((code, entry["up"], entry["weight"]))
            return seen
        finally:
            lvs.stop()
            await pipeline.close()

    seen = asyncio.run(scenario())
    # Exit 1 is down: weight 0 here because of inhibit_on_failure, and no weight of its own.
    assert seen == [
        ("7", True, 5),
        ("2", True, 0),
        ("0", True, None),
        ("1", False, None),
        ("12", True, 10),
    ]
    # The server without a checker kept its weight throughout.
    assert kernel.dests[service][(ip_address("198.51.100.12"), 80)].weight == 1


def _entry(pipeline: Pipeline) -> dict[str, Any]:
    health = pipeline.status()["ipvs"]["status"]["health"]
    (entry,) = [v for k, v in health.items() if "127.0.0.1" in k]
    return dict(entry)


def test_the_backend_status_shows_under_its_pipeline_entry() -> None:
    class WithStatus(Backend):
        name = "own"

        async def transition(self, event: TransitionEvent) -> None:
            pass

        def status(self) -> dict[str, Any]:
            return {"hello": 1}

    class Broken(WithStatus):
        name = "broken"

        def status(self) -> dict[str, Any]:
            raise RuntimeError("no")

    async def run() -> dict[str, Any]:
        return Pipeline("VI_1", [WithStatus(), Broken()], asyncio.get_running_loop()).status()

    status = asyncio.run(run())
    assert status["own"]["status"] == {"hello": 1} and status["own"]["calls"] == 0
    assert status["broken"]["status"] == {"error": "RuntimeError: no"}


def test_the_toml_in_docs_ipvs_in_vrrpyd_loads() -> None:
    doc = (EXAMPLE.parent.parent / "docs" / "ipvs.md").read_text()
    section = doc.split("## In vrrpyd", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    spec = load(block).virtual_servers["VI_1"]
    assert [str(vs.key) for vs in spec.services] == ["TCP 192.0.2.10:80"]
    assert len(spec.checks) == 3 and (spec.sync_interface, spec.syncid) == ("eth1", 51)


def test_vrrpyd_runs_the_health_agent_and_shows_each_real_server(lab: Lab, tmp_path: Path) -> None:
    """The daemon end to end, in a lab host: the pool's backend, the agent, the state file.

    The host kernel has no IPVS here, so the pool's kernel calls fail (counted in the
    backend's status); the health side is what this checks: the agent checks an HTTP
    server in the host's namespace, and the state file follows it down and up."""
    require_root()
    host = lab["h1"]
    port = 8080
    serve = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    web = host.popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    instance = {
        "name": "VI_1",
        "interface": "eth0",
        "vrid": 51,
        "priority": 200,
        "advert_interval": 0.1,
        "virtual_addresses": ["192.0.2.100/24"],
    }
    table = {
        "instance": "VI_1",
        "address": "192.0.2.100",
        "port": 80,
        "delay_loop": 0.2,
        "real_server": [
            {
                "address": "127.0.0.1",
                "port": port,
                "HTTP_GET": {"connect_timeout": 1, "retry": 0, "warmup": 0},
            }
        ],
    }
    daemon = Daemon(host, tmp_path, [instance], {"virtual_server": [table]})
    key = f"VI_1 TCP 192.0.2.100:80 -> 127.0.0.1:{port}"

    def health() -> dict[str, Any]:
        ipvs = daemon.instance().get("backends", {}).get("ipvs", {})
        return dict(ipvs.get("status", {}).get("health", {}).get(key, {}))

    try:
        daemon.start()
        assert wait_for(lambda: health().get("up") is True, 10), daemon.log.read_text()
        agent = daemon.state()["health_agent"]
        assert agent["ready"] and agent["checks"] == 1 and agent["down"] == 0
        web.kill()
        web.wait(5)
        assert wait_for(lambda: health().get("up") is False, 10), health()
        assert "failed" in health()["reason"]
        web = host.popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: health().get("up") is True, 10), health()
        daemon.refresh()  # SIGUSR1: the agent's check history comes with the next rewrite

        def history() -> list[Any]:
            servers = daemon.state().get("health_checks", {}).get("servers", {})
            return list(servers.get(key, {}).get("checks", []))

        assert wait_for(history, 5), daemon.state().keys()
        assert history()[0]["history"], "each check's recent runs, as the agent wrote them"
        assert "checks" not in health(), "never inside the instance's entry"
        assert daemon.terminate() == 0
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        web.kill()
        web.wait(5)
    pid = agent["pid"]
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_a_pool_follows_a_carp_instance_as_it_follows_a_vrrp_one() -> None:
    """IPVS is attached to the shared state set: a CARP VHID's MASTER installs the pool."""
    config = parse_config(
        textwrap.dedent(
            """
            [[instance]]
            name = "web"
            protocol = "carp"
            interface = "eth0"
            vhid = 7
            advbase = 1
            advskew = 0
            password = "s3cret"
            virtual_addresses = ["192.0.2.70/24"]

            [[virtual_server]]
            instance = "web"
            address = "192.0.2.70"
            port = 80
            real_server = [{ address = "198.51.100.11", port = 80 }]
            """
        )
    )
    kernel = FakeKernel()
    lvs = Lvs(config, kernel=lambda: kernel)
    (ipvs,) = lvs.backends.values()

    async def scenario() -> list[str]:
        await ipvs.transition(TransitionEvent("web", State.INITIALIZE, State.BACKUP, "start", 100))
        await ipvs.transition(TransitionEvent("web", State.BACKUP, State.MASTER, "down", 100))
        installed = sorted(str(key) for key in kernel.services)
        await ipvs.transition(TransitionEvent("web", State.MASTER, State.BACKUP, "bow", 100))
        await ipvs.close()
        return installed

    assert asyncio.run(scenario()) == ["TCP 192.0.2.70:80"]
