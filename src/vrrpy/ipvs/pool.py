"""The desired IPVS table, given the declared services and what the health checks say (pure).

:func:`plan` turns the declaration (:class:`~vrrpy.ipvs.model.VirtualService`
with its real servers and pool settings) and a health map into the table the
kernel should hold: each service with exactly the destinations to install, at
the weights to install. It reads no kernel and no clock;
:mod:`vrrpy.ipvs.reconcile` then says how to get there.

The rules are keepalived's (``keepalived/check/ipwrapper.c``, 2.2.x and
current; ``keepalived.conf(5)``, "Virtual server(s)"), rewritten here:

**Health.** ``health[(service key, (address, port))]`` is True when the real
server's last check passed, False when it failed. A server the map does not
mention has no result yet: it counts as alive, unless the service has
``alpha`` ("On daemon startup assume that all RSs are down and healthchecks
failed"): then it counts as failed until its first check passes. A server
with no checker at all should be given True (keepalived: a server without
checkers is alive, alpha or not).

**Dynamic weights.** ``weights[(service key, (address, port))]``, when
given, is the weight an alive real server should carry instead of its
declared one: keepalived's ``MISC_CHECK`` with ``misc_dynamic``, whose exit
status ``s`` in 2..255 sets the weight to ``s - 2`` (``update_svr_wgt`` in
``check_misc.c``). It is the weight installed and the weight the quorum
counts (keepalived's ``weigh_live_realservers`` sums the alive servers'
effective weights). A server with no entry has its declared weight; a failed
server's entry is ignored (removed, or 0 with ``inhibit_on_failure``, as
without one).

**A failed real server** is removed from the service; with
``inhibit_on_failure`` it stays at weight 0 instead ("quiescent": the kernel
sends it no new connection, and the connections it holds live on, which
removal would cut once they expire or a packet finds no destination).

**Quorum.** A service's *live weight* is the sum of its alive real servers'
weights. It has quorum while the live weight is at least ``quorum``
(default 1); ``hysteresis`` dampens flapping: quorum is gained at ``quorum +
hysteresis`` and lost below ``quorum - hysteresis`` (or at a live weight of
0). At the first plan (no previous one) the quorum is up if the live weight
is at least ``quorum + hysteresis``. Without a sorry server, the quorum only
matters for the events (keepalived's ``quorum_up`` / ``quorum_down``
scripts).

**Sorry server.** While the quorum is lost, the ``sorry_server`` is
installed and the real servers are taken out (removed, or with
``inhibit_on_failure`` held at weight 0, alive or not): keepalived's "If a
sorry server is configured, all real servers will be brought down when the
quorum is not achieved and be replaced with the sorry server". When the
quorum returns, the alive real servers come back and the sorry server goes
(with ``sorry_server_inhibit``: it stays, at weight 0). With the default
quorum of 1 that reads: the sorry server serves while no real server with a
weight is healthy.

**Omega.** keepalived's ``omega``: "On daemon shutdown consider quorum and
RS down notifiers for execution". Here: when the backend withdraws the pool
(:func:`withdrawal_events`), a service with ``omega`` reports each alive real
server down and its quorum lost; without it, a withdrawal says nothing.

:func:`changes` compares two plans: real servers that came up or went down,
quorum gained or lost (:class:`PoolEvent`), for a notify hook. A service's
first plan is its baseline and reports nothing (keepalived reports initial
states only with ``rs_init_notifies``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from vrrpy.ipvs.model import DestKey, RealServer, ServiceKey, VirtualService, check_declared

__all__ = [
    "HealthKey",
    "Pool",
    "PoolEvent",
    "ServicePool",
    "changes",
    "plan",
    "plan_service",
    "withdrawal_events",
]

HealthKey = tuple[ServiceKey, DestKey]
"""A real server in a service: health is per service, as keepalived checks it."""


@dataclass(frozen=True)
class ServicePool:
    """One service's plan: ``service`` is its desired kernel form (exactly the
    destinations to install), ``alive`` its real servers counted alive,
    ``quorum_up`` its quorum, ``sorry`` whether the sorry server is serving."""

    service: VirtualService
    alive: frozenset[DestKey]
    live_weight: int
    quorum_up: bool
    sorry: bool


@dataclass(frozen=True)
class Pool:
    """A plan for every declared service (:func:`plan`'s result)."""

    services: Mapping[ServiceKey, ServicePool] = field(default_factory=dict)

    @property
    def table(self) -> dict[ServiceKey, VirtualService]:
        """The desired table: what :func:`~vrrpy.ipvs.reconcile.reconcile` wants."""
        return {key: entry.service for key, entry in self.services.items()}


@dataclass(frozen=True)
class PoolEvent:
    """A real server came up or went down (``server`` set), or a service gained or
    lost its quorum (``server`` None); ``up`` says which."""

    service: ServiceKey
    server: DestKey | None
    up: bool

    def __str__(self) -> str:
        state = "UP" if self.up else "DOWN"
        if self.server is None:
            return f"quorum {state} for {self.service}"
        address, port = self.server
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"real server {host}:{port} {state} in {self.service}"


def _alive(vs: VirtualService, server: RealServer, health: Mapping[HealthKey, bool]) -> bool:
    known = health.get((vs.key, server.key))
    if known is None:
        return not vs.alpha
    return known


def _weighted(
    vs: VirtualService, server: RealServer, weights: Mapping[HealthKey, int] | None
) -> RealServer:
    """``server`` at its dynamic weight, if a check set one."""
    if weights is None:
        return server
    weight = weights.get((vs.key, server.key))
    return server if weight is None or weight == server.weight else server.with_weight(weight)


def plan_service(
    vs: VirtualService,
    health: Mapping[HealthKey, bool],
    quorum_was_up: bool | None = None,
    weights: Mapping[HealthKey, int] | None = None,
) -> ServicePool:
    """One service's plan (see the module); ``quorum_was_up`` is its quorum in the
    previous plan (None: this is its first); ``weights``: the dynamic weights."""
    alive = [
        _weighted(vs, server, weights) for server in vs.real_servers if _alive(vs, server, health)
    ]
    live_weight = sum(server.weight for server in alive)
    if not quorum_was_up:  # the first plan, or no quorum: gained at quorum + hysteresis
        quorum_up = live_weight >= vs.quorum + vs.hysteresis
    else:
        quorum_up = not (live_weight == 0 or live_weight < vs.quorum - vs.hysteresis)
    alive_keys = frozenset(server.key for server in alive)
    alive_by_key = {server.key: server for server in alive}
    dests: list[RealServer] = []
    sorry = not quorum_up and vs.sorry_server is not None
    if sorry:
        assert vs.sorry_server is not None
        if vs.inhibit_on_failure:
            dests += [server.with_weight(0) for server in vs.real_servers]
        dests.append(vs.sorry_server)
    else:
        for server in vs.real_servers:
            if server.key in alive_keys:
                dests.append(alive_by_key[server.key])
            elif vs.inhibit_on_failure:
                dests.append(server.with_weight(0))
        if vs.sorry_server is not None and vs.sorry_server_inhibit:
            dests.append(vs.sorry_server.with_weight(0))
    return ServicePool(vs.with_real_servers(dests), alive_keys, live_weight, quorum_up, sorry)


def plan(
    declared: Iterable[VirtualService],
    health: Mapping[HealthKey, bool],
    previous: Pool | None = None,
    keys: Collection[ServiceKey] | None = None,
    weights: Mapping[HealthKey, int] | None = None,
) -> Pool:
    """The plan of every declared service (checked with
    :func:`~vrrpy.ipvs.model.check_declared`); ``previous`` carries each service's
    quorum from the last plan (hysteresis needs it). With ``keys``, only those
    services are planned again and the others keep their ``previous`` plan (a
    health change touches the services of its server, not thousands).
    ``weights``: the alive servers' dynamic weights (see the module)."""
    services = check_declared(declared)
    before = previous.services if previous is not None else {}
    out: dict[ServiceKey, ServicePool] = {}
    for key, vs in services.items():
        was = before.get(key)
        if keys is not None and key not in keys and was is not None:
            out[key] = was
        else:
            out[key] = plan_service(vs, health, None if was is None else was.quorum_up, weights)
    return Pool(out)


def changes(before: Pool | None, after: Pool) -> list[PoolEvent]:
    """What changed from one plan to the next: real servers down, then up, then
    quorum changes, service by service. A service new in ``after`` reports nothing."""
    events: list[PoolEvent] = []
    old = before.services if before is not None else {}
    for key in sorted(after.services, key=ServiceKey.sort_key):
        was = old.get(key)
        now = after.services[key]
        if was is None:
            continue
        for server in sorted(was.alive - now.alive, key=_order):
            events.append(PoolEvent(key, server, False))
        for server in sorted(now.alive - was.alive, key=_order):
            events.append(PoolEvent(key, server, True))
        if was.quorum_up != now.quorum_up:
            events.append(PoolEvent(key, None, now.quorum_up))
    return events


def withdrawal_events(pool: Pool, declared: Mapping[ServiceKey, VirtualService]) -> list[PoolEvent]:
    """What withdrawing the pool reports: for each service with ``omega``, each alive
    real server down, then its quorum lost (if it had it); nothing for the others."""
    events: list[PoolEvent] = []
    for key in sorted(pool.services, key=ServiceKey.sort_key):
        vs = declared.get(key)
        if vs is None or not vs.omega:
            continue
        entry = pool.services[key]
        events += [PoolEvent(key, server, False) for server in sorted(entry.alive, key=_order)]
        if entry.quorum_up:
            events.append(PoolEvent(key, None, False))
    return events


def _order(server: DestKey) -> tuple[int, bytes, int]:
    address, port = server
    return (address.version, address.packed, port)
