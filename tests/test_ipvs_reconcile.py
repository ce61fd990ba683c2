"""Reconciliation, pool semantics and the backend's state logic, without a kernel.

:class:`FakeKernel` holds a table with the kernel's rules (EEXIST, ESRCH,
ENOENT; a deleted service takes its destinations with it) so the backend's
decisions can be followed transition by transition. The real kernel's word
is in ``tests/test_ipvs_uml.py``.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Iterable
from dataclasses import replace

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from vrrpy.backends.base import BackendError, TransitionEvent
from vrrpy.core.state import State
from vrrpy.ipvs.backend import IpvsBackend
from vrrpy.ipvs.model import RealServer, ServiceKey, VirtualService
from vrrpy.ipvs.netlink import IpvsError, SyncDaemon, describe_error
from vrrpy.ipvs.pool import PoolEvent, changes, plan, plan_service, withdrawal_events
from vrrpy.ipvs.reconcile import (
    AddDest,
    AddService,
    DeleteDest,
    DeleteService,
    EditDest,
    EditService,
    Operation,
    reconcile,
    withdraw,
)


class FakeKernel:
    """An IPVS table with the kernel's refusals; counts what it is asked."""

    def __init__(self, table: dict[ServiceKey, VirtualService] | None = None) -> None:
        self.services: dict[ServiceKey, VirtualService] = {}
        self.dests: dict[ServiceKey, dict[tuple[object, int], RealServer]] = {}
        for key, vs in (table or {}).items():
            self.services[key] = vs.with_real_servers(())
            self.dests[key] = vs.dests()
        self.daemon_list: list[SyncDaemon] = []
        self.dumps = 0
        self.applied: list[Operation] = []
        self.refuse: set[ServiceKey] = set()
        self.closed = False

    def table(
        self, keys: Iterable[ServiceKey] | None = None, *, dests: bool = True
    ) -> dict[ServiceKey, VirtualService]:
        wanted = None if keys is None else set(keys)
        self.dumps += 1
        out = {}
        for key, vs in self.services.items():
            if wanted is None or key in wanted:
                if dests:
                    self.dumps += 1
                    vs = vs.with_real_servers(self.dests[key].values())
                out[key] = vs
        return out

    def _one(self, op: Operation) -> None:
        key = op.key
        if key in self.refuse:
            raise IpvsError(describe_error(op, errno.ENOENT), errno.ENOENT)
        if isinstance(op, AddService):
            if key in self.services:
                raise IpvsError(describe_error(op, errno.EEXIST), errno.EEXIST)
            self.services[key] = op.service.with_real_servers(())
            self.dests[key] = {}
            return
        if key not in self.services:
            raise IpvsError(describe_error(op, errno.ESRCH), errno.ESRCH)
        if isinstance(op, EditService):
            self.services[key] = op.service.with_real_servers(())
        elif isinstance(op, DeleteService):
            del self.services[key], self.dests[key]
        elif isinstance(op, AddDest):
            if op.dest.key in self.dests[key]:
                raise IpvsError(describe_error(op, errno.EEXIST), errno.EEXIST)
            self.dests[key][op.dest.key] = op.dest
        else:
            if op.dest.key not in self.dests[key]:
                raise IpvsError(describe_error(op, errno.ENOENT), errno.ENOENT)
            if isinstance(op, EditDest):
                self.dests[key][op.dest.key] = op.dest
            else:
                del self.dests[key][op.dest.key]

    def apply(self, ops: Iterable[Operation]) -> list[tuple[Operation, IpvsError]]:
        failures = []
        for op in ops:
            self.applied.append(op)
            try:
                self._one(op)
            except IpvsError as exc:
                failures.append((op, exc))
        return failures

    def daemons(self) -> list[SyncDaemon]:
        return list(self.daemon_list)

    def start_daemon(self, daemon: SyncDaemon) -> None:
        if any(d.state == daemon.state for d in self.daemon_list):
            raise IpvsError("exists", errno.EEXIST)
        self.daemon_list.append(daemon)

    def stop_daemon(self, state: str) -> None:
        before = len(self.daemon_list)
        self.daemon_list = [d for d in self.daemon_list if d.state != state]
        if len(self.daemon_list) == before:
            raise IpvsError("no such daemon", errno.ESRCH)

    def close(self) -> None:
        self.closed = True


def rs(host: int, port: int = 80, **kwargs: object) -> RealServer:
    return RealServer(f"198.51.100.{host}", port, **kwargs)  # type: ignore[arg-type]


def web(*servers: RealServer, address: str = "192.0.2.10", **kwargs: object) -> VirtualService:
    return VirtualService(address=address, port=80, real_servers=servers, **kwargs)  # type: ignore[arg-type]


def table(*services: VirtualService) -> dict[ServiceKey, VirtualService]:
    return {vs.key: vs for vs in services}


# ------------------------------------------------------------------ reconcile


def test_empty_kernel_gets_the_service_then_its_servers_in_order() -> None:
    vs = web(rs(2), rs(1), scheduler="rr")
    ops = reconcile(table(vs), {})
    assert ops == [AddService(vs), AddDest(vs.key, rs(1)), AddDest(vs.key, rs(2))]


def test_a_reconciled_table_needs_nothing() -> None:
    vs = web(rs(1), rs(2))
    assert reconcile(table(vs), table(vs)) == []


def test_a_changed_scheduler_is_an_edit_not_a_replacement() -> None:
    have = web(rs(1), scheduler="wlc")
    want = web(rs(1), scheduler="rr")
    assert reconcile(table(want), table(have)) == [EditService(want, have)]


def test_servers_are_added_before_any_is_removed() -> None:
    have = web(rs(1), rs(2, weight=1))
    want = web(rs(2, weight=5), rs(3))
    ops = reconcile(table(want), table(have))
    assert ops == [
        AddDest(want.key, rs(3)),
        EditDest(want.key, rs(2, weight=5), rs(2, weight=1)),
        DeleteDest(want.key, rs(1)),
    ]


def test_a_foreign_service_is_never_touched() -> None:
    ours = web(rs(1))
    foreign = web(rs(9), address="192.0.2.99", scheduler="lc")
    current = table(web(address="192.0.2.10"), foreign)
    ops = reconcile(table(ours), current, retired=[ServiceKey.of("tcp", "192.0.2.77", 80)])
    assert ops == [AddDest(ours.key, rs(1))]
    assert all(op.key != foreign.key for op in ops)


def test_a_declared_service_is_ours_whole() -> None:
    # A server someone added by hand to a declared service is removed.
    want = web(rs(1))
    have = web(rs(1), rs(7))
    assert reconcile(table(want), table(have)) == [DeleteDest(want.key, rs(7))]


def test_retired_services_go_first_and_only_if_present() -> None:
    gone = web(rs(1), address="192.0.2.20")
    want = web(rs(1))
    absent = ServiceKey.of("udp", "192.0.2.30", 53)
    ops = reconcile(table(want), table(gone, want), retired=[gone.key, absent])
    assert ops == [DeleteService(gone.key)]
    assert withdraw([want.key, absent], table(gone, want)) == [DeleteService(want.key)]


services_strategy = st.lists(
    st.builds(
        lambda host, port, sched, servers: web(
            *[rs(h, 80, weight=w) for h, w in servers.items()],
            address=f"192.0.2.{host}",
            scheduler=sched,
        ),
        st.integers(1, 6),
        st.just(80),
        st.sampled_from(["rr", "wrr", "lc", "sh"]),
        st.dictionaries(st.integers(1, 8), st.integers(0, 3), max_size=5),
    ),
    max_size=6,
    unique_by=lambda vs: vs.key,
)


@settings(max_examples=300, deadline=None)
@given(services_strategy, services_strategy, services_strategy)
def test_applying_the_plan_reaches_desired_and_spares_the_rest(
    desired_list: list[VirtualService],
    current_list: list[VirtualService],
    foreign_list: list[VirtualService],
) -> None:
    """Whatever the kernel holds, the operations succeed, leave every declared service
    exactly as declared, touch nothing undeclared, and a second pass finds nothing."""
    desired = table(*desired_list)
    foreign = {k: replace(v, address=v.address, port=81) for k, v in table(*foreign_list).items()}
    foreign = {vs.key: vs for vs in foreign.values() if vs.key not in desired}
    kernel = FakeKernel({**table(*current_list), **foreign})
    before_foreign = kernel.table(foreign)
    ops = reconcile(desired, kernel.table(desired))
    assert kernel.apply(ops) == []
    after = kernel.table()
    for key, vs in desired.items():
        assert after[key].settings() == vs.settings()
        assert {k: d.settings() for k, d in after[key].dests().items()} == {
            k: d.settings() for k, d in vs.dests().items()
        }
    assert kernel.table(foreign) == before_foreign
    assert reconcile(desired, kernel.table(desired)) == []


# ------------------------------------------------------------------ pool


def test_a_failed_server_is_removed_or_quiesced() -> None:
    vs = web(rs(1, weight=2), rs(2, weight=3))
    health = {(vs.key, rs(2).key): False}
    assert plan_service(vs, health).service.real_servers == (rs(1, weight=2),)
    quiet = replace(vs, inhibit_on_failure=True)
    assert plan_service(quiet, health).service.real_servers == (rs(1, weight=2), rs(2, weight=0))


def test_alpha_counts_unchecked_servers_failed() -> None:
    vs = web(rs(1), rs(2), alpha=True)
    assert plan_service(vs, {}).service.real_servers == ()
    first = plan_service(vs, {(vs.key, rs(1).key): True})
    assert first.service.real_servers == (rs(1),)
    # Without alpha a server with no verdict yet serves.
    assert plan_service(replace(vs, alpha=False), {}).service.real_servers == (rs(1), rs(2))


def test_sorry_server_serves_while_no_real_server_is_alive() -> None:
    sorry = rs(99)
    vs = web(rs(1), rs(2), sorry_server=sorry)
    down = {(vs.key, rs(1).key): False, (vs.key, rs(2).key): False}
    entry = plan_service(vs, down, True)
    assert entry.sorry and not entry.quorum_up
    assert entry.service.real_servers == (sorry,)
    back = plan_service(vs, {**down, (vs.key, rs(2).key): True}, entry.quorum_up)
    assert back.service.real_servers == (rs(2),) and not back.sorry
    # inhibit_on_failure: every real server at weight 0 beside the sorry server.
    quiet = replace(vs, inhibit_on_failure=True)
    assert plan_service(quiet, down).service.real_servers == (
        rs(1, weight=0),
        rs(2, weight=0),
        sorry,
    )
    # sorry_server_inhibit: the sorry server waits at weight 0.
    waiting = replace(vs, sorry_server_inhibit=True)
    assert plan_service(waiting, {}).service.real_servers == (rs(1), rs(2), sorry.with_weight(0))


def test_quorum_with_hysteresis_is_gained_high_and_lost_low() -> None:
    servers = [rs(h, weight=1) for h in range(1, 7)]
    vs = web(*servers, quorum=4, hysteresis=1, sorry_server=rs(99))

    def alive(n: int) -> dict[tuple[ServiceKey, tuple[object, int]], bool]:
        return {(vs.key, s.key): i < n for i, s in enumerate(servers)}

    state = None
    seen = []
    for n in (6, 4, 3, 2, 3, 4, 5):
        entry = plan_service(vs, alive(n), state)  # type: ignore[arg-type]
        state = entry.quorum_up
        seen.append((n, state))
    # Up from the start (6 >= 5); kept at 4 and 3 (not below 4 - 1); lost at 2;
    # not regained at 3 or 4; regained at 5 (4 + 1).
    assert seen == [(6, True), (4, True), (3, True), (2, False), (3, False), (4, False), (5, True)]


def test_a_dynamic_weight_is_installed_and_counted_while_the_server_is_alive() -> None:
    """keepalived's misc_dynamic: the weight a check reports replaces the declared one in
    the table and in the quorum's sum; a failed server's reported weight is ignored."""
    vs = web(rs(1, weight=3), rs(2, weight=1), quorum=4, sorry_server=rs(99))
    up = {(vs.key, rs(1).key): True, (vs.key, rs(2).key): True}
    entry = plan_service(vs, up, None, {(vs.key, rs(1).key): 10})
    assert entry.service.real_servers == (rs(1, weight=10), rs(2))
    assert entry.live_weight == 11 and entry.quorum_up
    # Weight 0 from the check: still alive (counted alive, no new connections), and
    # 0 + 1 is below the quorum of 4: the sorry server serves.
    zero = plan_service(vs, up, True, {(vs.key, rs(1).key): 0})
    assert zero.alive == {rs(1).key, rs(2).key} and zero.live_weight == 1
    assert zero.sorry and zero.service.real_servers == (rs(99),)
    # Failed: removed (or 0 with inhibit_on_failure), whatever weight was reported.
    down = {**up, (vs.key, rs(1).key): False}
    quiet = replace(vs, inhibit_on_failure=True, sorry_server=None, quorum=1)
    assert plan_service(quiet, down, True, {(vs.key, rs(1).key): 10}).service.real_servers == (
        rs(1, weight=0),
        rs(2),
    )
    # plan() passes the weights to the services it plans.
    assert plan([quiet], up, None, None, {(vs.key, rs(2).key): 7}).table[vs.key].real_servers == (
        rs(1, weight=3),
        rs(2, weight=7),
    )


def test_changes_report_servers_and_quorum_and_omega_reports_withdrawal() -> None:
    vs = web(rs(1), rs(2), omega=True)
    first = plan([vs], {})
    assert changes(None, first) == []
    second = plan([vs], {(vs.key, rs(1).key): False}, first)
    assert changes(first, second) == [PoolEvent(vs.key, rs(1).key, False)]
    third = plan([vs], {(vs.key, rs(1).key): False, (vs.key, rs(2).key): False}, second)
    assert changes(second, third) == [
        PoolEvent(vs.key, rs(2).key, False),
        PoolEvent(vs.key, None, False),
    ]
    assert str(changes(second, third)[1]) == "quorum DOWN for TCP 192.0.2.10:80"
    assert withdrawal_events(second, table(vs)) == [
        PoolEvent(vs.key, rs(2).key, False),
        PoolEvent(vs.key, None, False),
    ]
    assert withdrawal_events(second, table(replace(vs, omega=False))) == []


# ------------------------------------------------------------------ backend


def event(old: State, new: State) -> TransitionEvent:
    return TransitionEvent("VI_1", old, new, "test", 100)


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def make(
    kernel: FakeKernel, *services: VirtualService, **kwargs: object
) -> tuple[IpvsBackend, list[PoolEvent]]:
    seen: list[PoolEvent] = []
    backend = IpvsBackend(
        services,
        kernel=lambda: kernel,
        on_event=seen.append,
        sync_interface="sync0",
        syncid=7,
        **kwargs,  # type: ignore[arg-type]
    )
    return backend, seen


def test_backend_installs_on_master_keeps_on_backup_removes_on_stop() -> None:
    foreign = web(rs(9), address="192.0.2.99")
    kernel = FakeKernel(table(foreign))
    vs = web(rs(1), rs(2))
    backend, _ = make(kernel, vs)

    async def scenario() -> None:
        await backend.transition(event(State.INITIALIZE, State.BACKUP))
        assert vs.key not in kernel.services
        assert [d.state for d in kernel.daemon_list] == ["backup"]
        await backend.transition(event(State.BACKUP, State.MASTER))
        assert kernel.table()[vs.key].dests() == vs.dests()
        assert [d.state for d in kernel.daemon_list] == ["master"]
        await backend.transition(event(State.MASTER, State.BACKUP))
        assert vs.key in kernel.services  # kept: keepalived's way
        assert [d.state for d in kernel.daemon_list] == ["backup"]
        await backend.transition(event(State.BACKUP, State.INITIALIZE))
        assert vs.key not in kernel.services
        assert kernel.daemon_list == []
        await backend.close()

    run(scenario())
    assert kernel.table()[foreign.key] == foreign.with_real_servers(foreign.real_servers)
    assert all(op.key != foreign.key for op in kernel.applied)
    assert kernel.closed
    status = backend.status()
    assert status["installed"] is False and status["failures"] == 0


def test_backend_on_leave_remove_withdraws_and_omega_reports_it() -> None:
    kernel = FakeKernel()
    vs = web(rs(1), omega=True)
    backend, seen = make(kernel, vs, on_leave="remove", on_stop="keep")

    async def scenario() -> None:
        await backend.transition(event(State.BACKUP, State.MASTER))
        assert vs.key in kernel.services
        await backend.transition(event(State.MASTER, State.FAULT))
        assert vs.key not in kernel.services
        assert seen == [PoolEvent(vs.key, rs(1).key, False), PoolEvent(vs.key, None, False)]
        await backend.transition(event(State.FAULT, State.BACKUP))
        assert vs.key not in kernel.services

    run(scenario())


def test_health_changes_reconcile_only_the_services_they_change() -> None:
    kernel = FakeKernel()
    services = [
        web(rs(1), rs(2), address=f"192.0.2.{n}", inhibit_on_failure=True) for n in range(1, 21)
    ]
    backend, seen = make(kernel, *services)

    async def scenario() -> None:
        await backend.transition(event(State.BACKUP, State.MASTER))
        kernel.dumps = 0
        kernel.applied.clear()
        assert backend.set_health(rs(2), False, services[4].key)
        assert not backend.set_health(rs(2), False, services[4].key)  # no news
        await backend.settle()
        assert kernel.applied == [EditDest(services[4].key, rs(2, weight=0), rs(2))]
        assert kernel.dumps == 2  # the services, and one service's servers
        assert seen == [PoolEvent(services[4].key, rs(2).key, False)]
        # Without a service: every declared service that has the server.
        backend.set_health(("198.51.100.1", 80), False)
        await backend.settle()
        assert all(kernel.dests[vs.key][rs(1).key].weight == 0 for vs in services)

    run(scenario())


def test_set_health_with_a_weight_edits_the_server_in_place() -> None:
    kernel = FakeKernel()
    vs = web(rs(1, weight=3), rs(2))
    backend, _ = make(kernel, vs)

    def weights() -> dict[object, int]:
        return {key: d.weight for key, d in kernel.dests[vs.key].items()}

    async def scenario() -> None:
        await backend.transition(event(State.BACKUP, State.MASTER))
        kernel.applied.clear()
        assert backend.set_health(rs(1), True, vs.key, weight=5)
        assert not backend.set_health(rs(1), True, vs.key, weight=5)  # no news
        await backend.settle()
        assert kernel.applied == [EditDest(vs.key, rs(1, weight=5), rs(1, weight=3))]
        assert weights() == {rs(1).key: 5, rs(2).key: 1}
        assert backend.weights() == {(vs.key, rs(1).key): 5}
        assert backend.status()["dynamic_weights"] == {"TCP 192.0.2.10:80 -> 198.51.100.1:80": 5}
        # Down: removed, and the weight forgotten; up again without one: declared weight.
        assert backend.set_health(rs(1), False, vs.key, weight=5)
        await backend.settle()
        assert weights() == {rs(2).key: 1} and backend.weights() == {}
        assert backend.set_health(rs(1), True, vs.key)
        await backend.settle()
        assert weights() == {rs(1).key: 3, rs(2).key: 1}
        assert "dynamic_weights" not in backend.status()
        # Up at weight 0 (misc_dynamic exit 2): in the table, quiescent.
        assert backend.set_health(rs(2), True, weight=0)
        await backend.settle()
        assert weights() == {rs(1).key: 3, rs(2).key: 0}
        assert backend.set_health(rs(2), True, weight=None)
        await backend.settle()
        assert weights() == {rs(1).key: 3, rs(2).key: 1}

    run(scenario())
    with pytest.raises(ValueError, match="weight"):
        backend.set_health(rs(1), True, weight=-1)


def test_health_while_not_installed_touches_no_kernel() -> None:
    kernel = FakeKernel()
    vs = web(rs(1), rs(2))
    backend = IpvsBackend([vs], kernel=lambda: kernel)

    async def scenario() -> None:
        await backend.transition(event(State.INITIALIZE, State.BACKUP))
        backend.set_health(rs(1), False)
        await backend.settle()
        assert kernel.applied == [] and kernel.dumps == 0
        await backend.transition(event(State.BACKUP, State.MASTER))
        assert kernel.table()[vs.key].dests() == {rs(2).key: rs(2)}

    run(scenario())


def test_set_services_retires_what_is_no_longer_declared() -> None:
    kernel = FakeKernel()
    old = web(rs(1), address="192.0.2.1")
    kept = web(rs(1), address="192.0.2.2")
    backend, _ = make(kernel, old, kept)

    async def scenario() -> None:
        await backend.transition(event(State.BACKUP, State.MASTER))
        backend.set_services([replace(kept, scheduler="rr")])
        await backend.settle()
        assert old.key not in kernel.services
        assert kernel.services[kept.key].scheduler == "rr"

    run(scenario())


def test_a_refused_operation_fails_the_transition_and_is_retried() -> None:
    kernel = FakeKernel()
    good = web(rs(1), address="192.0.2.1")
    bad = web(rs(1), address="192.0.2.2", scheduler="lblcr")
    kernel.refuse.add(bad.key)
    backend, _ = make(kernel, good, bad)

    async def scenario() -> None:
        with pytest.raises(BackendError, match="lblcr"):
            await backend.transition(event(State.BACKUP, State.MASTER))
        assert good.key in kernel.services
        assert backend.status()["last_error"] is not None
        kernel.refuse.clear()
        await backend.reconcile()
        assert bad.key in kernel.services

    run(scenario())


def test_sync_daemon_in_the_way_is_replaced_and_foreign_backup_kept() -> None:
    kernel = FakeKernel()
    kernel.daemon_list = [SyncDaemon("master", "eth9", 3), SyncDaemon("backup", "eth9", 3)]
    backend, _ = make(kernel, web(rs(1)))

    async def scenario() -> None:
        await backend.transition(event(State.BACKUP, State.MASTER))

    run(scenario())
    assert sorted((d.state, d.interface) for d in kernel.daemon_list) == [
        ("backup", "eth9"),
        ("master", "sync0"),
    ]


def test_backend_never_calls_the_kernel_on_the_loop_thread() -> None:
    import threading

    loop_threads: set[int] = set()
    calls: list[int] = []

    class Watched(FakeKernel):
        def table(
            self, keys: Iterable[ServiceKey] | None = None
        ) -> dict[ServiceKey, VirtualService]:
            calls.append(threading.get_ident())
            return super().table(keys)

    kernel = Watched()
    backend, _ = make(kernel, web(rs(1)))

    async def scenario() -> None:
        loop_threads.add(threading.get_ident())
        await backend.transition(event(State.BACKUP, State.MASTER))
        backend.set_health(rs(1), False)
        await backend.settle()

    run(scenario())
    assert calls and not set(calls) & loop_threads


def test_install_always_puts_the_pool_on_a_backup_too() -> None:
    kernel = FakeKernel()
    vs = web(rs(1))
    backend, _ = make(kernel, vs, install="always")

    async def scenario() -> None:
        await backend.transition(event(State.INITIALIZE, State.BACKUP))
        assert vs.key in kernel.services
        assert [d.state for d in kernel.daemon_list] == ["backup"]
        await backend.transition(event(State.BACKUP, State.FAULT))
        assert vs.key in kernel.services
        await backend.transition(event(State.FAULT, State.INITIALIZE))
        assert vs.key not in kernel.services

    run(scenario())
    with pytest.raises(ValueError, match="always"):
        IpvsBackend([vs], install="always", on_leave="remove")
