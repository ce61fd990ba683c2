"""Interface and ping tracking in network namespaces: the agent runs inside a lab host.

h1 runs the agent; h2 is the ping target (192.0.2.12, 2001:db8::c). Traffic
stays on the lab's bridge. Root needed (require_root: fails in CI without it).
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from support import require_root
from vrrpy.lab import Lab
from vrrpy.track.client import AGENT_COMMAND, TrackingAgent
from vrrpy.track.model import Verdict
from vrrpy.track.protocol import CheckSpec, InterfaceSpec, PingSpec


@pytest.fixture
def lab2() -> Iterator[Lab]:
    require_root()
    with Lab(hosts=2) as lab:
        yield lab


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached; verdicts: {CONTEXT}")
        await asyncio.sleep(0.01)


CONTEXT: list[object] = []
"""The verdicts seen in this module, for failure messages."""


class Watch:
    """The agent in a lab host, and the latest verdict of each object."""

    def __init__(self, lab: Lab, specs: list[CheckSpec]) -> None:
        self.latest: dict[str, Verdict] = {}
        self.history: list[Verdict] = []
        self.agent = TrackingAgent(
            specs,
            self._verdict,
            command=lab["h1"].command(AGENT_COMMAND),
            stderr=subprocess.DEVNULL,
        )

    def _verdict(self, verdict: Verdict, _t: float) -> None:
        self.latest[verdict.name] = verdict
        self.history.append(verdict)
        CONTEXT.append((round(time.monotonic(), 3), verdict.reason))

    def up(self, name: str) -> bool | None:
        verdict = self.latest.get(name)
        return None if verdict is None else verdict.up


def test_interface_down_and_up_are_seen_from_netlink_notifications(lab2: Lab) -> None:
    h1 = lab2["h1"]
    watch = Watch(lab2, [InterfaceSpec("uplink", "eth0"), InterfaceSpec("ghost", "eth9")])

    async def scenario() -> None:
        watch.agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: watch.up("uplink") is True)
            assert watch.latest["ghost"].reason == "link eth9 missing"
            h1.link(False)
            started = time.monotonic()
            await until(lambda: watch.up("uplink") is False)
            assert time.monotonic() - started < 0.5  # a notification, not a poll
            assert watch.latest["uplink"].reason == "link eth0 down (admin down)"
            h1.link(True)
            await until(lambda: watch.up("uplink") is True)
            # The cable pulled at the far end: eth0 stays administratively up but
            # loses its carrier (IFF_RUNNING), which is down for keepalived too.
            subprocess.run(["ip", "link", "set", h1.veth_outside, "down"], check=True)
            await until(lambda: watch.up("uplink") is False)
            assert "no carrier" in watch.latest["uplink"].reason
            subprocess.run(["ip", "link", "set", h1.veth_outside, "up"], check=True)
            await until(lambda: watch.up("uplink") is True)
        finally:
            watch.agent.stop()

    asyncio.run(scenario())


def test_ping_group_goes_down_when_its_targets_stop_answering_and_comes_back(
    lab2: Lab,
) -> None:
    h2 = lab2["h2"]
    # Linux drops a link's IPv6 addresses when it goes down unless told to keep them
    # (as a real gateway's would be configured again when it comes back).
    h2.run(["sysctl", "-qw", "net.ipv6.conf.eth0.keep_addr_on_down=1"])
    spec = PingSpec(
        "gw", (str(h2.ipv4), str(h2.ipv6)), interval=0.1, timeout=0.1, count=2, quorum=2
    )
    watch = Watch(lab2, [spec])

    async def scenario() -> None:
        watch.agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: watch.up("gw") is True)
            assert watch.latest["gw"].reason == "ping gw: 2 of 2 targets reachable (quorum 2)"
            h2.link(False)
            started = time.monotonic()
            await until(lambda: watch.up("gw") is False)
            # count 2 at 0.1 s: two probes lost, the second 0.1 s after it was sent
            assert time.monotonic() - started < 1.0
            assert "unreachable: 192.0.2.12, 2001:db8::c" in watch.latest["gw"].reason
            watch.agent.request_status()
            await until(lambda: "gw" in watch.agent.status)
            targets = watch.agent.status["gw"]["targets"]
            assert targets["192.0.2.12"]["received"] >= 1
            assert targets["2001:db8::c"]["received"] >= 1
            h2.link(True)
            await until(lambda: watch.up("gw") is True)
        finally:
            watch.agent.stop()

    asyncio.run(scenario())
    assert [v.up for v in watch.history] == [True, False, True]


def test_ping_quorum_of_one_survives_the_loss_of_one_target(lab2: Lab) -> None:
    h2 = lab2["h2"]
    spec = PingSpec(
        "gw", (str(h2.ipv4), "192.0.2.99"), interval=0.1, timeout=0.1, count=2, quorum=1
    )
    watch = Watch(lab2, [spec])

    async def scenario() -> None:
        watch.agent.start(asyncio.get_running_loop())
        try:
            await until(lambda: watch.up("gw") is True)
            await asyncio.sleep(0.5)  # 192.0.2.99 (nobody on the bridge) is lost meanwhile
            watch.agent.request_status()
            await until(lambda: "gw" in watch.agent.status)
            assert watch.agent.status["gw"]["targets"]["192.0.2.99"]["reachable"] is False
            assert watch.up("gw") is True
        finally:
            watch.agent.stop()

    asyncio.run(scenario())
