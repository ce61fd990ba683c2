"""vrrpyd's ``[[virtual_server]]`` tables: keepalived's ``virtual_server`` blocks, in TOML.

A keepalived user moves a ``virtual_server`` block over key for key
(keepalived.conf(5) names; docs/ipvs.md, "In vrrpyd", shows one beside the
other), and says which instance's state the pool follows::

    [[virtual_server]]
    instance = "VI_1"             # required: the VRRP / CARP instance it follows
    address = "192.0.2.10"        # or fwmark = 7 (and family = 4 | 6)
    port = 80
    protocol = "TCP"              # TCP, UDP, SCTP
    lb_algo = "wrr"               # also lvs_sched / scheduler; default wlc
    lb_kind = "DR"                # also lvs_method: NAT (default), DR, TUN
    persistence_timeout = 300
    persistence_granularity = "255.255.255.0"   # a mask, or a prefix length (24)
    delay_loop = 6                # the checks' default interval (keepalived's 60)
    inhibit_on_failure = false
    alpha = false                 # servers start down until their checks pass
    omega = false
    quorum = 1
    hysteresis = 0
    sorry_server = "198.51.100.99 80"   # or { address = ..., port = ... }
    sorry_server_inhibit = false
    on_backup = "keep"            # vrrpy: "keep" (keepalived's way) or "remove"
    install = "master"            # vrrpy: "master", or "always" (every state but stopped)
    sync_daemon = { interface = "eth1", syncid = 51 }   # keepalived's lvs_sync_daemon

    [[virtual_server.real_server]]
    address = "198.51.100.11"
    port = 80
    weight = 1
    uthreshold = 0                # or upper_threshold
    lthreshold = 0                # or lower_threshold
    HTTP_GET = { url = [{ path = "/health", status_code = 200 }], connect_timeout = 3 }
    # TCP_CHECK = {}, SSL_GET = {...}, DNS_CHECK = {...}, MISC_CHECK = { misc_path = "..." }
    # MISC_CHECK = { misc_path = "...", misc_dynamic = true }: exit 2..255 sets the weight

A checker table takes :mod:`vrrpy.health.model`'s keys (keepalived's
spellings included: ``nb_get_retry``, ``misc_path``, ``url``...), may be an
array of tables (several checkers of one kind), and an ``HTTP_GET`` /
``SSL_GET`` may list several ``url`` tables, each becoming one check (the
server is up while all pass). ``connect_ip`` / ``connect_port`` default to the
real server's, ``delay_loop`` and ``alpha`` to the virtual server's. A
``MISC_CHECK`` with ``misc_dynamic`` sets the real server's weight in the pool
from its exit status (keepalived's convention: 0 up at the configured weight, 1
down, 2..255 up at ``status - 2``): the health agent computes it
(:func:`vrrpy.health.state.effective_weight`, from :attr:`InstanceIpvs.weights`)
and :mod:`vrrpy.daemon.lvs` hands it to the backend's ``set_health``.

``install``: ``"master"`` (the default) installs an instance's pool when it
becomes Master; ``"always"`` in every state but stopped, as keepalived keeps its
virtual servers on every node, so that the connections a Backup's sync daemon
receives are bound to their real servers (docs/ipvs.md, "The backend"). It
contradicts ``on_backup = "remove"``, and every table of one instance must agree.

What the loader produces: :attr:`DaemonConfig.virtual_servers
<vrrpy.daemon.config.DaemonConfig.virtual_servers>`, per instance name, one
:class:`InstanceIpvs`: the declared services, the health checks (each named
by a key of :attr:`InstanceIpvs.targets`) and the backend's settings. Every
problem is reported under its key path
(``virtual_server[0].real_server[1].HTTP_GET.status_code``), all at once.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from vrrpy.health.model import (
    KEEPALIVED_KINDS,
    CheckKind,
    CheckSpec,
    DnsCheck,
    HealthConfigError,
    HttpCheck,
    MiscCheck,
    TcpCheck,
    spec_from_json,
)
from vrrpy.ipvs.model import (
    SCHEDULERS,
    DestKey,
    Forwarding,
    Protocol,
    RealServer,
    ServiceKey,
    VirtualService,
)

__all__ = [
    "CHECK_KINDS",
    "REAL_SERVER_KEYS",
    "VIRTUAL_SERVER_KEYS",
    "InstanceIpvs",
    "parse_virtual_servers",
]

Issue = Callable[[str, str], None]
"""Reports a problem: (full key path, message)."""

VIRTUAL_SERVER_KEYS: Final = (
    "instance",
    "address",
    "port",
    "fwmark",
    "family",
    "protocol",
    "lb_algo",
    "lvs_sched",
    "scheduler",
    "lb_kind",
    "lvs_method",
    "persistence_timeout",
    "persistence_granularity",
    "sorry_server",
    "sorry_server_inhibit",
    "inhibit_on_failure",
    "alpha",
    "omega",
    "quorum",
    "hysteresis",
    "delay_loop",
    "real_server",
    "on_backup",
    "install",
    "sync_daemon",
)
CHECK_KINDS: Final = tuple(KEEPALIVED_KINDS)
"""keepalived's checker blocks: TCP_CHECK, HTTP_GET, SSL_GET, DNS_CHECK, MISC_CHECK."""
REAL_SERVER_KEYS: Final = (
    "address",
    "port",
    "weight",
    "upper_threshold",
    "uthreshold",
    "lower_threshold",
    "lthreshold",
    *CHECK_KINDS,
)
SYNC_DAEMON_KEYS: Final = ("interface", "syncid", "maxlen", "group", "port", "ttl")
INSTALL_MODES: Final = ("master", "always")
"""``install``: the backend's modes (:class:`~vrrpy.ipvs.backend.IpvsBackend`)."""
_CHECK_CLASSES: Final[Mapping[CheckKind, type[CheckSpec]]] = {
    CheckKind.TCP: TcpCheck,
    CheckKind.HTTP: HttpCheck,
    CheckKind.DNS: DnsCheck,
    CheckKind.MISC: MiscCheck,
}
_CHECK_ALIASES: Final = (
    "nb_get_retry",
    "misc_path",
    "misc_timeout",
    "misc_dynamic",
    "enable_sni",
    "url",
    "fall",
    "failurecount",
)
_NOT_HERE: Final = ("server", "kind", "tls")
"""Spec fields a checker table may not set: the loader fills them in."""


@dataclass(frozen=True)
class InstanceIpvs:
    """The virtual servers of one instance, as configured (built by the daemon at start).

    ``checks`` are the health agent's specs; each one's ``server`` is a key of
    ``targets``, which says which real server of which service it judges.
    ``unchecked`` lists the real servers without any checker (reported alive
    at start, as keepalived does). ``on_backup``: the backend's ``on_leave``;
    ``install``: its ``install`` (``"master"`` or ``"always"``). ``weights``:
    each checked server's configured weight by its key in ``targets``, which
    the health agent needs for ``misc_dynamic`` arithmetic.
    """

    instance: str
    services: tuple[VirtualService, ...]
    checks: tuple[CheckSpec, ...] = ()
    targets: Mapping[str, tuple[ServiceKey, DestKey]] = field(default_factory=dict)
    unchecked: tuple[tuple[ServiceKey, DestKey], ...] = ()
    on_backup: str = "keep"
    install: str = "master"
    weights: Mapping[str, int] = field(default_factory=dict)
    sync_interface: str | None = None
    syncid: int = 0
    sync_options: Mapping[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    """Each service's key path (``virtual_server[0]``), in ``services``' order."""


def server_key(instance: str, service: ServiceKey, dest: RealServer) -> str:
    """The health map key of one real server of one service of one instance."""
    return f"{instance} {service} -> {dest}"


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


class _Table:
    """Typed reads of one table, each problem reported under ``path.key``."""

    def __init__(self, table: Mapping[str, Any], path: str, issue: Issue) -> None:
        self.table = table
        self.path = path
        self._issue = issue
        self.bad = False

    def issue(self, key: str, message: str) -> None:
        self.bad = True
        self._issue(f"{self.path}.{key}" if key else self.path, message)

    def unknown(self, known: tuple[str, ...], hint: str = "") -> None:
        for key in self.table:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                if close:
                    self.issue(key, f'unknown key "{key}"; did you mean "{close[0]}"?{hint}')
                else:
                    self.issue(key, f'unknown key "{key}" (known: {", ".join(known)}){hint}')

    def alias(self, *keys: str) -> str | None:
        """The one of ``keys`` present (an issue if several are)."""
        given = [k for k in keys if k in self.table]
        if len(given) > 1:
            self.issue(given[1], f"{given[0]} and {given[1]} are the same setting: give one")
        return given[0] if given else None

    def integer(self, key: str | None, default: int | None, low: int, high: int) -> int | None:
        if key is None or key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.issue(key, f"must be an integer, got {_describe(value)}")
            return None
        if not low <= value <= high:
            self.issue(key, f"must be {low}..{high}, got {value}")
            return None
        return value

    def number(self, key: str, default: float, low: float) -> float | None:
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.issue(key, f"must be a number of seconds, got {_describe(value)}")
            return None
        if not math.isfinite(value) or value <= low:
            self.issue(key, f"must be a number of seconds > {low:g}, got {value!r}")
            return None
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            self.issue(key, f"must be true or false, got {_describe(value)}")
            return default
        return value

    def string(self, key: str | None, default: str | None = None) -> str | None:
        if key is None or key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, str) or not value:
            self.issue(key, f"must be a non-empty string, got {_describe(value)}")
            return None
        return value

    def address(self, key: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        text = self.string(key)
        if text is None:
            return None
        try:
            return ipaddress.ip_address(text)
        except ValueError:
            self.issue(key, f"{text!r} is not an IP address")
            return None


def parse_virtual_servers(
    tables: list[tuple[int, Mapping[str, Any]]],
    instances: Mapping[str, str],
    issue: Issue,
) -> dict[str, InstanceIpvs]:
    """The ``[[virtual_server]]`` tables (with their indexes), grouped per instance.

    ``instances``: the file's instance names to their protocols (``vrrp`` /
    ``carp``), to check ``instance``. Problems go to ``issue`` under their
    full key paths; a table with a problem contributes nothing.
    """
    grouped: dict[str, list[tuple[str, VirtualService, _Extra]]] = {}
    seen: dict[ServiceKey, str] = {}
    for index, table in tables:
        path = f"virtual_server[{index}]"
        parsed = _virtual_server(_Table(table, path, issue), instances)
        if parsed is None:
            continue
        name, vs, extra = parsed
        other = seen.get(vs.key)
        if other is not None:
            issue(path, f"{vs.key} is already declared by {other}: one service, one table")
            continue
        seen[vs.key] = path
        grouped.setdefault(name, []).append((path, vs, extra))

    out: dict[str, InstanceIpvs] = {}
    syncing: str | None = None
    for name, entries in grouped.items():
        first_path, _, first = entries[0]
        bad = False
        for path, _, extra in entries[1:]:
            for key in ("on_backup", "install"):
                mine, theirs = getattr(extra, key), getattr(first, key)
                if mine != theirs:
                    issue(
                        f"{path}.{key}",
                        f"{mine!r}, but {first_path} (the same instance {name}) says "
                        f"{theirs!r}: an instance's pool moves as one",
                    )
                    bad = True
            if extra.sync is not None and first.sync is not None and extra.sync != first.sync:
                issue(
                    f"{path}.sync_daemon",
                    f"differs from {first_path}'s: one sync daemon per instance",
                )
                bad = True
        sync = next((e.sync for _, _, e in entries if e.sync is not None), None)
        if sync is not None:
            where = next(p for p, _, e in entries if e.sync is not None)
            if syncing is not None:
                issue(
                    f"{where}.sync_daemon",
                    f"{syncing} runs the sync daemon already: the kernel runs one master "
                    "and one backup daemon per namespace (keepalived: one lvs_sync_daemon)",
                )
                bad = True
            syncing = f"instance {name} ({where})"
        if bad:
            continue
        checks: list[CheckSpec] = []
        targets: dict[str, tuple[ServiceKey, DestKey]] = {}
        weights: dict[str, int] = {}
        unchecked: list[tuple[ServiceKey, DestKey]] = []
        for _, vs, extra in entries:
            for rs in vs.real_servers:
                key = server_key(name, vs.key, rs)
                specs = extra.checks.get(rs.key, [])
                if specs:
                    targets[key] = (vs.key, rs.key)
                    weights[key] = rs.weight
                    checks.extend(specs)
                else:
                    unchecked.append((vs.key, rs.key))
        interface, syncid, options = sync if sync is not None else (None, 0, {})
        out[name] = InstanceIpvs(
            instance=name,
            services=tuple(vs for _, vs, _ in entries),
            checks=tuple(checks),
            targets=targets,
            unchecked=tuple(unchecked),
            on_backup=first.on_backup,
            install=first.install,
            weights=weights,
            sync_interface=interface,
            syncid=syncid,
            sync_options=dict(options),
            sources=tuple(p for p, _, _ in entries),
        )
    return out


@dataclass
class _Extra:
    on_backup: str
    install: str
    sync: tuple[str, int, dict[str, Any]] | None
    checks: dict[DestKey, list[CheckSpec]]


def _virtual_server(
    t: _Table, instances: Mapping[str, str]
) -> tuple[str, VirtualService, _Extra] | None:
    t.unknown(VIRTUAL_SERVER_KEYS)
    name = t.string("instance")
    if "instance" not in t.table:
        t.issue("instance", "required key is missing: the instance whose state the pool follows")
    elif name is not None and name not in instances:
        known = ", ".join(sorted(instances)) or "none"
        t.issue("instance", f"no instance named {name!r} (there are: {known})")
        name = None

    fwmark = t.integer("fwmark", 0, 1, 2**32 - 1)
    address = t.address("address") if "address" in t.table else None
    family = t.integer("family", 0, 4, 6)
    if family not in (0, 4, 6, None):
        t.issue("family", f"must be 4 or 6, got {family}")
    if fwmark:
        for key in ("address", "port", "protocol"):
            if key in t.table:
                t.issue(key, "a fwmark service has no address, port or protocol (keepalived: "
                        "virtual_server fwmark N)")  # fmt: skip
        port: int | None = 0
    else:
        if "address" not in t.table and "fwmark" not in t.table:
            t.issue("address", "required key is missing (or give fwmark)")
        if "family" in t.table:
            t.issue("family", "only for a fwmark service (an address has its family)")
        port = t.integer("port", None, 0, 65535)
        if "port" not in t.table:
            t.issue("port", "required key is missing (0: every port, with persistence)")
    protocol: Protocol | None = Protocol.TCP
    text = t.string("protocol", "TCP")
    if text is not None:
        try:
            protocol = Protocol(text.lower())
        except ValueError:
            t.issue("protocol", f"must be TCP, UDP or SCTP, got {text!r}")
            protocol = None

    sched_key = t.alias("lb_algo", "lvs_sched", "scheduler")
    scheduler = t.string(sched_key, "wlc")
    if scheduler is not None and scheduler not in SCHEDULERS:
        known = ", ".join(sorted(SCHEDULERS))
        t.issue(sched_key or "lb_algo", f"unknown scheduler {scheduler!r} (Linux has {known})")
        scheduler = None
    kind_key = t.alias("lb_kind", "lvs_method")
    kind_text = t.string(kind_key, "NAT")
    forwarding = Forwarding.NAT
    if kind_text is not None:
        try:
            forwarding = Forwarding(kind_text.lower())
            if forwarding is Forwarding.LOCAL:
                raise ValueError
        except ValueError:
            t.issue(kind_key or "lb_kind", f"must be NAT, DR or TUN, got {kind_text!r}")

    persistence = t.integer("persistence_timeout", 0, 0, 2**32 - 1)
    granularity = _granularity(t, address, family)
    delay_loop = t.number("delay_loop", 60.0, 0.0)
    inhibit = t.boolean("inhibit_on_failure", False)
    alpha = t.boolean("alpha", False)
    omega = t.boolean("omega", False)
    sorry_inhibit = t.boolean("sorry_server_inhibit", False)
    quorum = t.integer("quorum", 1, 1, 2**31 - 1)
    hysteresis = t.integer("hysteresis", 0, 0, 2**31 - 1)
    on_backup = t.string("on_backup", "keep")
    if on_backup not in ("keep", "remove", None):
        t.issue("on_backup", f'must be "keep" or "remove", got {on_backup!r}')
    install = t.string("install", "master")
    if install not in (*INSTALL_MODES, None):
        t.issue("install", f'must be "master" or "always", got {install!r}')
    elif install == "always" and on_backup == "remove":
        t.issue(
            "install",
            '"always" keeps the pool in every state, but on_backup = "remove" withdraws '
            "it on leaving Master: give one",
        )
    sync = _sync_daemon(t)

    sorry = _sorry_server(t, forwarding, port)
    servers: list[RealServer] = []
    checks: dict[DestKey, list[CheckSpec]] = {}
    raw = t.table.get("real_server", [])
    if not isinstance(raw, list):
        t.issue("real_server", f"must be an array of tables, got {_describe(raw)}")
        raw = []
    elif not raw:
        t.issue("real_server", "no real server: the service would send connections nowhere")
    for i, entry in enumerate(raw):
        path = f"{t.path}.real_server[{i}]"
        if not isinstance(entry, dict):
            t.issue(f"real_server[{i}]", f"must be a table, got {_describe(entry)}")
            continue
        rt = _Table(entry, path, t._issue)
        rs = _real_server(rt, forwarding, port)
        if rs is None:
            t.bad = True
            continue
        if any(s.key == rs.key for s in servers):
            rt.issue("address", f"{rs} is listed twice in this virtual server")
            t.bad = True
            continue
        servers.append(rs)
        checks[rs.key] = _checks(rt, rs, delay_loop or 60.0, alpha)
        if rt.bad:
            t.bad = True
    if sorry is not None and any(s.key == sorry.key for s in servers):
        t.issue("sorry_server", f"{sorry} is also a real server of this service")
    if t.bad or name is None or protocol is None or port is None or scheduler is None:
        return None
    try:
        vs = VirtualService(
            address=None if fwmark else address,
            port=port,
            protocol=protocol,
            fwmark=fwmark or 0,
            family=family or 0,
            scheduler=scheduler,
            persistence_timeout=persistence or 0,
            persistence_granularity=granularity,
            real_servers=tuple(servers),
            sorry_server=sorry,
            sorry_server_inhibit=sorry_inhibit,
            inhibit_on_failure=inhibit,
            alpha=alpha,
            omega=omega,
            quorum=quorum or 1,
            hysteresis=hysteresis or 0,
        )
    except (ValueError, TypeError) as exc:
        t.issue("", str(exc))
        return None
    if any(s.family != vs.family for s in servers):
        t.issue("real_server", f"every real server must be IPv{vs.family}, as the service")
        return None
    # keepalived's real servers are checked per service: the same address in two
    # services is two checkers; the keys keep them apart.
    fixed = {rs.key: [_renamed(s, server_key(name, vs.key, rs)) for s in checks.get(rs.key, [])]
             for rs in servers}  # fmt: skip
    return name, vs, _Extra(on_backup or "keep", install or "master", sync, fixed)


def _renamed(spec: CheckSpec, key: str) -> CheckSpec:
    return dataclasses.replace(spec, server=key)


def _granularity(
    t: _Table,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    family: int | None,
) -> int | None:
    if "persistence_granularity" not in t.table:
        return None
    value = t.table["persistence_granularity"]
    v6 = (address is not None and address.version == 6) or family == 6
    full = 128 if v6 else 32
    if isinstance(value, int) and not isinstance(value, bool):
        if not (1 if v6 else 0) <= value <= full:
            t.issue("persistence_granularity", f"a prefix length must be 0..{full}, got {value}")
            return None
        return value
    if isinstance(value, str) and not v6:
        try:
            return ipaddress.IPv4Network(f"0.0.0.0/{value}").prefixlen
        except ValueError:
            pass
    t.issue(
        "persistence_granularity",
        f'must be a netmask ("255.255.255.0", IPv4) or a prefix length, got {value!r}',
    )
    return None


def _sync_daemon(t: _Table) -> tuple[str, int, dict[str, Any]] | None:
    raw = t.table.get("sync_daemon")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        t.issue("sync_daemon", f"must be a table {{ interface, syncid }}, got {_describe(raw)}")
        return None
    s = _Table(raw, f"{t.path}.sync_daemon", t._issue)
    s.unknown(SYNC_DAEMON_KEYS)
    interface = s.string("interface")
    if "interface" not in raw:
        s.issue("interface", "required key is missing (keepalived: lvs_sync_daemon IFACE)")
    elif interface is not None and (len(interface.encode()) > 15 or "/" in interface):
        s.issue("interface", f"{interface!r} is not an interface name")
    syncid = s.integer("syncid", 0, 0, 255)
    options: dict[str, Any] = {}
    for key, low, high in (("maxlen", 1, 65535), ("port", 1, 65535), ("ttl", 1, 255)):
        value = s.integer(key, None, low, high)
        if value is not None:
            options[key] = value
    if "group" in raw:
        group = s.address("group")
        if group is not None:
            if not group.is_multicast:
                s.issue("group", f"{group} is not a multicast address")
            options["group"] = str(group)
    if s.bad:
        t.bad = True
        return None
    assert interface is not None and syncid is not None
    return interface, syncid, options


def _sorry_server(t: _Table, forwarding: Forwarding, port: int | None) -> RealServer | None:
    raw = t.table.get("sorry_server")
    if raw is None:
        return None
    where = "sorry_server"
    if isinstance(raw, str):
        parts = raw.split()
        if len(parts) != 2 or not parts[1].isdigit():
            t.issue(where, f'must be "ADDRESS PORT" (keepalived\'s words) or a table, got {raw!r}')
            return None
        raw = {"address": parts[0], "port": int(parts[1])}
    if not isinstance(raw, dict):
        t.issue(where, f"must be a table {{ address, port }} or a string, got {_describe(raw)}")
        return None
    s = _Table(raw, f"{t.path}.{where}", t._issue)
    rs = _real_server(s, forwarding, port, keys=("address", "port", "weight"))
    if rs is None:
        t.bad = True
    return rs


def _real_server(
    t: _Table,
    forwarding: Forwarding,
    service_port: int | None,
    keys: tuple[str, ...] = REAL_SERVER_KEYS,
) -> RealServer | None:
    t.unknown(keys)
    address = t.address("address")
    if "address" not in t.table:
        t.issue("address", "required key is missing")
    default_port = service_port if forwarding is not Forwarding.NAT else None
    port = t.integer("port", default_port, 0, 65535)
    if "port" not in t.table and default_port is None:
        t.issue("port", "required key is missing (NAT may change the port: say which)")
    weight = t.integer("weight", 1, 0, 2**31 - 1)
    upper = t.integer(t.alias("upper_threshold", "uthreshold"), 0, 0, 2**32 - 1)
    lower = t.integer(t.alias("lower_threshold", "lthreshold"), 0, 0, 2**32 - 1)
    if t.bad or address is None or port is None:
        return None
    try:
        return RealServer(
            address,
            port,
            forwarding=forwarding,
            weight=weight or 0,
            upper_threshold=upper or 0,
            lower_threshold=lower or 0,
        )
    except ValueError as exc:
        t.issue(t.alias("lower_threshold", "lthreshold") or "address", str(exc))
        return None


def _checks(t: _Table, rs: RealServer, delay_loop: float, alpha: bool) -> list[CheckSpec]:
    """The checks of one real server: each checker table (or array of them) of each kind."""
    specs: list[CheckSpec] = []
    for kind_name in CHECK_KINDS:
        raw = t.table.get(kind_name)
        if raw is None:
            continue
        tables = raw if isinstance(raw, list) else [raw]
        for i, table in enumerate(tables):
            path = kind_name if not isinstance(raw, list) else f"{kind_name}[{i}]"
            if not isinstance(table, dict):
                t.issue(path, f"must be a table of checker keys, got {_describe(table)}")
                continue
            specs.extend(_checker(t, path, kind_name, table, rs, delay_loop, alpha))
    return specs


def _checker(
    t: _Table,
    path: str,
    kind_name: str,
    table: Mapping[str, Any],
    rs: RealServer,
    delay_loop: float,
    alpha: bool,
) -> list[CheckSpec]:
    kind = KEEPALIVED_KINDS[kind_name][0]
    cls = _CHECK_CLASSES[kind]
    fields_ = tuple(f.name for f in dataclasses.fields(cls) if f.init and f.name not in _NOT_HERE)
    known = fields_ + tuple(a for a in _CHECK_ALIASES if _alias_applies(a, kind))
    c = _Table(table, f"{t.path}.{path}", t._issue)
    spelled: dict[str, str] = {}  # our key -> the user's, for messages
    if kind is CheckKind.DNS:
        # keepalived's DNS_CHECK says "type" and "name" for the query (our "name" is a label).
        known = (*(k for k in known if k != "name"), "type")
        renamed = {"type": "query_type", "name": "query_name"}
        for ours, theirs in (("type", "query_type"), ("name", "query_name")):
            if ours in table and theirs in table:
                c.issue(theirs, f"{ours} and {theirs} are the same setting: give one")
        spelled = {renamed[k]: k for k in table if k in renamed}
        table = {renamed.get(k, k): v for k, v in table.items()}
        known = (*known, "name")
    c.unknown(known)
    table = {k: v for k, v in table.items() if k in known}  # the rest is reported above
    dynamic_key = c.alias("misc_dynamic", "dynamic") if kind is CheckKind.MISC else None
    if dynamic_key is not None:
        # keepalived's misc_dynamic: the exit status sets the weight (lvs.py applies it).
        value = table[dynamic_key]
        table = {k: v for k, v in table.items() if k not in ("misc_dynamic", "dynamic")}
        if isinstance(value, bool):
            table["dynamic"] = value
        else:
            c.issue(dynamic_key, f"must be true or false, got {_describe(value)}")
    if kind is CheckKind.MISC and not ("misc_path" in table or "command" in table):
        c.issue("misc_path", "required key is missing: the command to run")
        t.bad = True
        return []
    base: dict[str, Any] = {"kind": kind_name, "server": "-", "delay_loop": delay_loop}
    if alpha:
        base["alpha"] = True
    if kind is not CheckKind.MISC:
        base["connect_ip"] = str(rs.address)
        if rs.port:
            base["connect_port"] = rs.port
    urls: list[tuple[str, Mapping[str, Any]]] = [("", {})]
    body = dict(table)
    if kind is CheckKind.HTTP and isinstance(table.get("url"), list):
        entries = body.pop("url")
        urls = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                c.issue(f"url[{i}]", f"must be a table {{ path, status_code, digest }}, "
                        f"got {_describe(entry)}")  # fmt: skip
                continue
            url_keys = ("path", "status_code", "digest", "receive", "virtualhost")
            u = _Table(entry, f"url[{i}]", c.issue)  # reported under the checker, c.bad set
            u.unknown(url_keys)
            urls.append((f"url[{i}]", {k: v for k, v in entry.items() if k in url_keys}))
        if not entries:
            c.issue("url", "an empty list checks nothing")
    specs: list[CheckSpec] = []
    for where, extra in urls:
        doc = {**base, **body, **extra}
        if "connect_port" not in doc and kind is not CheckKind.MISC and kind is not CheckKind.DNS:
            c.issue("connect_port", "required: the real server's port is 0 (a fwmark service)")
            t.bad = True
            return []
        try:
            specs.append(spec_from_json(doc))
        except HealthConfigError as exc:
            message = str(exc).removeprefix("health -: ")
            key, _, rest = message.partition(" ")
            if key in extra:
                c.issue(f"{where}.{key}", rest)
            elif key in body:
                c.issue(spelled.get(key, key), rest)
            else:
                c.issue(where, message)
    if c.bad:
        t.bad = True
        return []
    return specs


def _alias_applies(alias: str, kind: CheckKind) -> bool:
    if alias.startswith("misc_"):
        return kind is CheckKind.MISC
    if alias in ("url", "enable_sni"):
        return kind is CheckKind.HTTP
    if alias == "nb_get_retry":
        return kind is not CheckKind.MISC
    return True
