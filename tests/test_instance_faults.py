"""A fault of ours never silences a Master: each action of a core is carried out on its own.

An :class:`InstanceRunner` is driven here with a real core and fake host
parts (address operations that fail on demand, a socket that records what it
sends, timers that record what is armed), so that the isolation rules are
pinned without root: a failed address add is retried while the Master keeps
advertising, a failed remove is retried and never forgotten, a transition
hook that raises costs nothing but a count, and the timer is re-armed
whatever happened.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface
from typing import Any

import pytest

import vrrpy.runtime.instance as instance_module
from vrrpy.codec import PacketInfo, encode_vrrp
from vrrpy.core import State
from vrrpy.net.addresses import Interface, Netlink
from vrrpy.runtime.addresskeeper import RETRY_FIRST
from vrrpy.runtime.attach import Attachment
from vrrpy.runtime.instance import InstanceRunner
from vrrpy.runtime.spec import InstanceSpec

VIP = IPv4Interface("192.0.2.100/24")
PRIMARY = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.12")


class Ops:
    """Address operations that fail while ``failing`` says so, and remember what is on."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.on: set[Interface] = set()
        self.calls: list[tuple[str, Interface]] = []
        self.added: dict[tuple[int, Interface], None] = {}

    def add(self, ifindex: int, address: Interface, failed: Any = None) -> bool:
        self.calls.append(("add", address))
        if "add" in self.failing:
            raise OSError(errno.ENOMEM, "no memory for the address")
        self.on.add(address)
        self.added[(ifindex, address)] = None
        return True

    def acks(self) -> None:
        pass

    def remove(self, ifindex: int, address: Interface, failed: Any = None) -> bool:
        self.calls.append(("remove", address))
        if "remove" in self.failing:
            raise OSError(errno.EBUSY, "busy")
        self.on.discard(address)
        self.added.pop((ifindex, address), None)
        return True


class Sock:
    source = PRIMARY

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.sent = self.send_errors = 0

    def send(self, payload: bytes, destination: Any) -> bool:
        return self.send_to(payload, destination)

    def sockaddr(self, destination: Any) -> Any:
        return (str(destination), 0)

    def send_to(self, payload: bytes, address: Any) -> bool:
        self.payloads.append(payload)
        self.sent += 1
        return True

    batch = None

    def prepared(
        self, payload: bytes, address: Any
    ) -> tuple[Callable[..., int], tuple[Any, ...], None]:
        return self._sendmsg, ([payload], [], 0, address), None

    def _sendmsg(self, buffers: list[bytes], *args: Any) -> int:
        self.payloads.append(buffers[0])  # VRRPSocket's caller counts it, as here
        return len(buffers[0])


class Announcer:
    def __init__(self) -> None:
        self.sent = 0
        self.last_error = None

    def frames(self, addresses: tuple[Any, ...], mac: str) -> tuple[bytes, ...]:
        return tuple(b"frame" for _ in addresses)

    def send_frames(self, frames: tuple[bytes, ...]) -> int:
        self.sent += len(frames)
        return len(frames)


class Timers:
    def __init__(self) -> None:
        self.armed: list[tuple[float, Callable[[], object]]] = []

    def call_at(
        self, when: float, callback: Callable[[], object], slack: float = 0.0, order: float = 0.0
    ) -> Any:
        self.armed.append((when, callback))

        class Handle:
            def cancel(self_inner) -> None:
                if (when, callback) in self.armed:
                    self.armed.remove((when, callback))

        return Handle()

    def close(self) -> None:
        pass


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def runner_for(
    loop: asyncio.AbstractEventLoop,
    monkeypatch: pytest.MonkeyPatch,
    priority: int,
    hook: Callable[..., None] | None = None,
) -> tuple[InstanceRunner, Ops, Sock, Timers, Announcer]:
    ops, sock, timers, announcer = Ops(), Sock(), Timers(), Announcer()
    spec = InstanceSpec(
        name="VI_1",
        interface="eth0",
        vrid=51,
        virtual_addresses=(VIP,),
        priority=priority,
        advert_interval=0.1,
    )
    attachment = Attachment(
        ifindex=2, primary=PRIMARY, addr_ifindex=2, addr_ifname="eth0", mac="02:00:00:00:00:0b"
    )
    attachment.socket = attachment.rx_socket = sock  # type: ignore[assignment]
    monkeypatch.setattr(instance_module, "attach", lambda *args: attachment)
    monkeypatch.setattr(instance_module, "detach", lambda *args: None)
    netlink: Any = ops  # what stop() reads: .added
    runner = InstanceRunner(
        spec,
        loop,
        netlink,
        lambda *args: sock,  # type: ignore[arg-type, return-value]
        lambda name: announcer,
        hook,
        timers,  # type: ignore[arg-type]
        None,
        ops,
    )
    return runner, ops, sock, timers, announcer


def test_a_failed_address_add_leaves_the_master_advertising_and_is_retried(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, ops, sock, timers, announcer = runner_for(loop, monkeypatch, priority=255)
    ops.failing.add("add")
    runner.start()  # the owner: Master at once
    assert runner.router is not None and runner.router.state is State.MASTER
    assert len(sock.payloads) == 1  # the first advert left
    assert announcer.sent == 1  # the announcement too
    assert timers.armed, "the Adver_Timer must be armed although the add failed"
    assert runner.addresses is not None and runner.addresses.add_failures == 1
    assert runner.addresses.pending == [VIP.ip]
    # The next advert still leaves on its timer.
    when, fire = timers.armed[-1]
    runner.loop.time = lambda: when  # type: ignore[method-assign]
    fire()
    assert len(sock.payloads) == 2
    # The kernel recovers: the retry installs the address.
    ops.failing.clear()
    runner.addresses._retry_now()
    assert VIP in ops.on and runner.addresses.pending == []
    assert runner.status()["runtime"]["address_add_failures"] == 1  # type: ignore[index]


def test_retries_back_off_and_stop_when_the_wish_changes(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, ops, _, _, _ = runner_for(loop, monkeypatch, priority=255)
    ops.failing.add("add")
    runner.start()
    keeper = runner.addresses
    assert keeper is not None and keeper._retry is not None
    first = keeper._retry.when() - loop.time()
    assert first == pytest.approx(RETRY_FIRST, abs=0.01)
    keeper._retry_now()
    assert keeper._retry is not None
    assert keeper._retry.when() - loop.time() == pytest.approx(2 * RETRY_FIRST, abs=0.01)
    keeper.withdraw([VIP.ip])  # leaving Master: nothing to add any more
    assert keeper.pending == [] and keeper._retry is None


def test_a_failed_remove_is_retried_and_never_forgotten(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, ops, _, timers, _ = runner_for(loop, monkeypatch, priority=100)
    runner.start()
    router = runner.router
    assert router is not None and router.state is State.BACKUP
    now = router.get_timer()
    assert now is not None
    runner.loop.time = lambda: now  # type: ignore[method-assign]
    runner._perform(router.handle_timer(now))  # Master_Down_Timer: take over
    assert router.state is State.MASTER and VIP in ops.on
    ops.failing.add("remove")
    better = router.advertisement(254)
    data = encode_vrrp(better, PEER, IPv4Address("224.0.0.18"))
    runner.receive(data, PacketInfo(PEER, IPv4Address("224.0.0.18"), 255), now + 0.01)
    assert router.state is State.BACKUP
    keeper = runner.addresses
    assert keeper is not None and keeper.pending == [VIP.ip] and keeper.remove_failures == 1
    assert VIP in ops.on, "still on the interface: must not be forgotten"
    assert timers.armed, "the Backup's Master_Down_Timer is armed all the same"
    ops.failing.clear()
    keeper._retry_now()
    assert VIP not in ops.on and keeper.pending == []


def test_a_transition_hook_that_raises_costs_only_a_count(
    loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hook(runner: InstanceRunner, transition: Any) -> None:
        raise RuntimeError("a hook with a bug")

    runner, ops, sock, timers, _ = runner_for(loop, monkeypatch, priority=255, hook=hook)
    runner.start()
    assert runner.router is not None and runner.router.state is State.MASTER
    assert runner.action_errors == 1
    assert VIP in ops.on and timers.armed and len(sock.payloads) == 1


def test_netlink_remove_keeps_the_address_recorded_until_the_kernel_took_it() -> None:
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

    class FailingIPRoute:
        def addr(self, *args: Any, **kwargs: Any) -> None:
            raise NetlinkError(errno.ENOMEM, "no memory")

    netlink = Netlink.__new__(Netlink)
    netlink._ipr = FailingIPRoute()
    netlink.added = {(2, VIP): None}
    with pytest.raises(NetlinkError):
        netlink.remove(2, VIP)
    assert (2, VIP) in netlink.added
