"""From the user's configuration to the drill's lab: which instances run, on which lab
links, with which addresses, and what could not come along.

The drill runs the user's own instances, so everything that shapes a failover
is kept as written: VRIDs, versions, advert intervals, priorities, preempt and
preempt_delay, the announcement settings (``garp_*``), VMACs, authentication,
sync groups and tracked scripts with their weight, interval, rise and fall.
What must change for a lab on this machine changes, and each change is a
:class:`Note` the drill prints:

* **interfaces**: each interface the chosen instances use becomes a lab link,
  ``eth0``, ``eth1``, ... in every lab host, in the order the file first names
  them (at most three: the lab has three IPv4 documentation networks);
* **addresses**: the lab only uses 192.0.2.0/24, 198.51.100.0/24,
  203.0.113.0/24 and 2001:db8::/32. Link *k* is one of the three IPv4 networks
  and ``2001:db8:0:k::/64``; a virtual address already in its link's network
  is kept, any other is moved into it (keeping its last byte when that is
  free), IPv6 link-local ones stay as they are. Unicast peers become the other
  lab router's address on that link;
* **priorities**: one file runs on both routers, the second one's priorities
  lowered (by 50 unless told otherwise), as the two nodes of a typical pair
  differ only there; or a second file (``--peer``) gives the other node's own;
* **Accept_Mode** is on in the lab, whatever the file says: the client's probes
  are addressed to the virtual address, and with ``accept = false`` vrrpyd
  drops them (it changes no timing);
* **tracked scripts** are replaced by a lab script the drill can make fail
  (``test ! -e FLAG``), with the user's interval, timeout, rise, fall, weight
  and reverse; it runs as root. Tracked files, processes and ping groups, and
  interfaces the lab does not have, are left out: in the lab they are healthy,
  as in production on a good day;
* **what cannot run here** is dropped: notify scripts, backends (DRBD, IPVS,
  Python), virtual servers, the metrics endpoint, a named namespace, CARP
  instances (not drilled yet).

Nothing here touches the host: :meth:`DrillPlan.document` turns the plan into
a vrrpyd document once the lab's addresses are known (:class:`Addressing`),
and the unit tests check the mapping without root.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)
from pathlib import Path
from typing import Any, Final

import tomli_w

from vrrpy.codec.vrrp import IPAddress
from vrrpy.daemon.config import DaemonConfig, InstanceConfig, parse_config
from vrrpy.drill.source import DrillError, UserConfig
from vrrpy.runtime.spec import VirtualAddress
from vrrpy.track.model import Kind, Track

__all__ = [
    "CLIENT",
    "HOSTS",
    "LINK_NETWORKS",
    "ROUTERS",
    "Addressing",
    "DrillPlan",
    "Link",
    "Note",
    "plan_drill",
]

LINK_NETWORKS: Final[tuple[tuple[IPv4Network, IPv6Network], ...]] = (
    (IPv4Network("192.0.2.0/24"), IPv6Network("2001:db8::/64")),
    (IPv4Network("198.51.100.0/24"), IPv6Network("2001:db8:0:1::/64")),
    (IPv4Network("203.0.113.0/24"), IPv6Network("2001:db8:0:2::/64")),
)
"""Link k's networks. Link 0 is :class:`vrrpy.lab.Lab`'s own ``eth0`` network."""

ROUTERS: Final = ("r1", "r2")
CLIENT: Final = "client"
ATTACKER: Final = "attacker"
HOSTS: Final[Mapping[str, int]] = {"r1": 1, "r2": 2, CLIENT: 3, ATTACKER: 4}
"""Lab host number of each role: host i is ``h<i>`` and holds address 10+i on every link."""

DEFAULT_PEER_PRIORITY: Final = "-50"
_KEPT_GLOBAL: Final = ("realtime_priority", "lock_memory", "rlimit_rttime")
_LAB_GLOBAL: Final = ("state_file", "log_level")
_SCRIPT_KEYS: Final = ("interval", "timeout", "rise", "fall", "weight", "reverse", "init_fail")
_INSTANCE_KEYS: Final = (
    "name",
    "protocol",
    "version",
    "interface",
    "vrid",
    "priority",
    "advert_interval",
    "preempt",
    "preempt_delay",
    "accept",
    "virtual_addresses",
    "unicast_peers",
    "use_vmac",
    "auth_pass",
    "garp_repeat",
    "garp_interval",
    "garp_refresh",
    "garp_delay",
    "garp_refresh_repeat",
    "higher_prio_send_advert",
    "v3_checksum",
    "track_interface",
    "track_script",
    "track_file",
    "track_process",
    "track_ping",
)
"""Instance keys the drill reads (and writes back, mapped); any other key is dropped."""
_TRACK_KEY: Final[Mapping[Kind, str]] = {
    Kind.INTERFACE: "track_interface",
    Kind.SCRIPT: "track_script",
    Kind.FILE: "track_file",
    Kind.PROCESS: "track_process",
    Kind.PING: "track_ping",
}


@dataclass(frozen=True)
class Note:
    """One thing the lab does differently from the file, under the key it concerns."""

    key: str
    text: str

    def __str__(self) -> str:
        return f"{self.key}: {self.text}"


@dataclass(frozen=True)
class Link:
    """One lab link: a bridge with ``lab`` in every host, standing for the user's ``user``."""

    index: int
    user: str
    lab: str
    ipv4: IPv4Network
    ipv6: IPv6Network

    def address(self, host: int, family: int) -> IPAddress:
        """Host number ``host``'s global address on this link (10 + host)."""
        network = self.ipv4 if family == 4 else self.ipv6
        return network[10 + host]


@dataclass(frozen=True)
class Addressing:
    """What only the built lab knows: each host's IPv6 link-local address on each link.

    IPv6 adverts (and so IPv6 unicast peers) use link-local addresses, which
    the kernel derives from each veth's random MAC.
    """

    link_local: Mapping[tuple[int, int], IPv6Address]

    def peer(self, link: Link, host: int, family: int) -> IPAddress:
        """The address another router names ``host`` by in ``unicast_peers``."""
        if family == 4:
            return link.address(host, 4)
        return self.link_local[(link.index, host)]

    @classmethod
    def synthetic(cls, links: Iterable[Link]) -> Addressing:
        """Made-up link-local addresses, for planning without a lab (tests, ``--dry-run``)."""
        return cls(
            {
                (link.index, host): IPv6Address(f"fe80::{link.index + 1:x}:{host:x}")
                for link in links
                for host in HOSTS.values()
            }
        )


@dataclass
class RouterPlan:
    """One lab router's share of the plan: its instances and tables, lab-ready but for
    what :class:`Addressing` and the flag directory fill in."""

    name: str
    source: str
    instances: list[dict[str, Any]]
    unicast: dict[str, int]
    """Instance name -> link index, for instances that send to unicast peers."""
    scripts: list[dict[str, Any]]
    """track_script tables, without ``script`` (the lab's is added per router)."""
    sync_groups: list[dict[str, Any]]
    global_: dict[str, Any]
    owned: list[tuple[int, VirtualAddress]]
    """(link, address) pairs this router owns (priority 255): on its link before start."""


@dataclass
class DrillPlan:
    """The whole lab: links, the instances drilled, both routers' configurations, notes."""

    source: str
    links: tuple[Link, ...]
    instances: tuple[str, ...]
    instance_links: dict[str, int]
    routers: dict[str, RouterPlan]
    notes: list[Note] = field(default_factory=list)
    address_map: dict[str, str] = field(default_factory=dict)
    """User's virtual address -> the lab's (only those that moved)."""

    def link_of(self, instance: str) -> Link:
        return self.links[self.instance_links[instance]]

    def document(
        self, router: str, addressing: Addressing, workdir: Path, test: str | None = None
    ) -> dict[str, Any]:
        """The vrrpyd document ``router`` runs (``global.state_file`` under ``workdir``).

        ``test`` is the ``test`` program the lab scripts run (found on PATH by default).
        """
        plan = self.routers[router]
        host = HOSTS[router]
        other = HOSTS[ROUTERS[1 - ROUTERS.index(router)]]
        instances = []
        for table in plan.instances:
            table = dict(table)
            link_index = plan.unicast.get(table["name"])
            if link_index is not None:
                family = ip_address(str(table["virtual_addresses"][0]).split("/")[0]).version
                table["unicast_peers"] = [
                    str(addressing.peer(self.links[link_index], other, family))
                ]
            instances.append(table)
        program = test or shutil.which("test") or "/usr/bin/test"
        scripts = []
        for table in plan.scripts:
            flag = workdir / f"h{host}" / f"fail-{table['name']}"
            scripts.append({**table, "script": f"{program} ! -e {flag}"})
        document: dict[str, Any] = {
            "global": {
                "state_file": str(workdir / f"h{host}" / "state.json"),
                "log_level": "info",
                **plan.global_,
            },
            "instance": instances,
        }
        if scripts:
            document["track_script"] = scripts
        if plan.sync_groups:
            document["sync_group"] = [dict(group) for group in plan.sync_groups]
        return document

    def config(self, router: str, addressing: Addressing, workdir: Path) -> DaemonConfig:
        """``router``'s document checked by vrrpyd's loader (what the daemon will run)."""
        text = tomli_w.dumps(self.document(router, addressing, workdir))
        return parse_config(text, f"lab {router}")

    def flag(self, router: str, script: str, workdir: Path) -> Path:
        """The file whose presence makes ``router``'s lab copy of ``script`` fail."""
        return workdir / f"h{HOSTS[router]}" / f"fail-{script}"

    def scripts_of(self, router: str) -> list[str]:
        return [str(table["name"]) for table in self.routers[router].scripts]


# ------------------------------------------------------------------------- building


def plan_drill(
    user: UserConfig,
    peer: UserConfig | None = None,
    only: Sequence[str] = (),
    peer_priority: str | None = None,
    max_preempt_delay: float = 10.0,
) -> DrillPlan:
    """Map ``user``'s instances (``only`` these, with their sync groups' partners) to a lab
    of two routers; ``peer`` is the second router's own file, else ``user`` again with
    priorities moved by ``peer_priority`` (``"-50"``: 50 lower; ``"100"``: exactly 100).

    Raises :class:`DrillError` for what the drill cannot run.
    """
    notes: list[Note] = []
    specs = _select(user, only, notes)
    links = _links(specs, user.path, notes)
    instance_links = {spec.name: _link_index(links, spec.interface) for spec in specs}
    remap = _Remapper()
    r1 = _router_plan("r1", user, specs, links, instance_links, remap, None, max_preempt_delay)
    if peer is None:
        delta = _peer_priority(peer_priority or DEFAULT_PEER_PRIORITY)
        r2 = _router_plan("r2", user, specs, links, instance_links, remap, delta, max_preempt_delay)
        r2.source = f"{user.path} (priorities {_describe_delta(delta)})"
    else:
        if peer_priority is not None:
            raise DrillError("--peer-priority and --peer: the peer file gives its own priorities")
        peer_specs = _peer_specs(peer, specs, links, notes)
        r2 = _router_plan(
            "r2", peer, peer_specs, links, instance_links, remap, None, max_preempt_delay
        )
    for router in (r1, r2):
        notes.extend(remap.notes_for(router.name))
    notes.extend(_priority_notes(r1, r2))
    notes = _unique(notes + remap.common_notes)
    return DrillPlan(
        source=user.path,
        links=links,
        instances=tuple(spec.name for spec in specs),
        instance_links=instance_links,
        routers={"r1": r1, "r2": r2},
        notes=notes,
        address_map=dict(remap.moved),
    )


def _unique(notes: list[Note]) -> list[Note]:
    seen: set[Note] = set()
    out = []
    for note in notes:
        if note not in seen:
            seen.add(note)
            out.append(note)
    return out


def _select(user: UserConfig, only: Sequence[str], notes: list[Note]) -> list[InstanceConfig]:
    """The VRRP instances to drill: all, or ``only`` plus their sync groups' members."""
    by_name = {spec.name: spec for spec in user.config.instances}
    wanted = list(only) or list(by_name)
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise DrillError(
            f"--instance {', '.join(unknown)}: no such instance in {user.path} "
            f"(it has {', '.join(by_name)})"
        )
    chosen = set(wanted)
    for group in user.config.sync_groups:
        if chosen & set(group.members) and not set(group.members) <= chosen:
            added = [m for m in group.members if m not in chosen]
            chosen.update(group.members)
            notes.append(
                Note(
                    f"sync_group[{group.name}]",
                    f"{', '.join(added)} drilled too: a sync group moves as one",
                )
            )
    specs = []
    for spec in user.config.instances:
        if spec.name not in chosen:
            continue
        if spec.is_carp:
            notes.append(Note(f"instance[{spec.name}]", "CARP: not drilled (VRRP only, so far)"))
            continue
        specs.append(spec)
    if not specs:
        raise DrillError(f"{user.path}: no VRRP instance to drill")
    return specs


def _links(specs: Sequence[InstanceConfig], path: str, notes: list[Note]) -> tuple[Link, ...]:
    names: list[str] = []
    for spec in specs:
        if spec.interface not in names:
            names.append(spec.interface)
    if len(names) > len(LINK_NETWORKS):
        raise DrillError(
            f"{path}: the instances use {len(names)} interfaces ({', '.join(names)}); the lab "
            f"has room for {len(LINK_NETWORKS)} links: pick instances with --instance"
        )
    links = tuple(
        Link(index, name, f"eth{index}", *LINK_NETWORKS[index]) for index, name in enumerate(names)
    )
    for link in links:
        notes.append(
            Note(
                f"interface {link.user}",
                f"lab link {link.lab} ({link.ipv4}, {link.ipv6}); r1 .{10 + HOSTS['r1']}, "
                f"r2 .{10 + HOSTS['r2']}, client .{10 + HOSTS[CLIENT]}",
            )
        )
    return links


def _link_index(links: Sequence[Link], interface: str) -> int:
    for link in links:
        if link.user == interface:
            return link.index
    raise KeyError(interface)


def _peer_priority(text: str) -> tuple[str, int]:
    """``"-50"`` -> ("relative", -50); ``"100"`` -> ("absolute", 100)."""
    try:
        value = int(text)
    except ValueError:
        raise DrillError(f"--peer-priority {text!r}: a number (100) or a change (-50)") from None
    if text.strip().startswith(("-", "+")):
        return ("relative", value)
    if not 1 <= value <= 254:
        raise DrillError(f"--peer-priority {value}: must be 1..254")
    return ("absolute", value)


def _describe_delta(delta: tuple[str, int]) -> str:
    kind, value = delta
    return f"{value:+d}" if kind == "relative" else f"set to {value}"


def _peer_specs(
    peer: UserConfig, specs: Sequence[InstanceConfig], links: Sequence[Link], notes: list[Note]
) -> list[InstanceConfig]:
    """The peer file's instances matching ``specs`` by name, in the same order."""
    by_name = {spec.name: spec for spec in peer.config.instances}
    missing = [spec.name for spec in specs if spec.name not in by_name]
    if missing:
        raise DrillError(f"{peer.path}: no instance {', '.join(missing)} (matched by name)")
    out = []
    for spec in specs:
        other = by_name[spec.name]
        if (other.vrid, other.version, other.family) != (spec.vrid, spec.version, spec.family):
            raise DrillError(
                f"{peer.path}: instance[{spec.name}] is VRID {other.vrid} v{other.version} "
                f"IPv{other.family}, but VRID {spec.vrid} v{spec.version} IPv{spec.family} in "
                "the first file: the two would not form one virtual router"
            )
        if other.interface != spec.interface:
            lab = links[_link_index(links, spec.interface)].lab
            notes.append(
                Note(
                    f"{peer.path}: instance[{spec.name}].interface",
                    f"{other.interface} -> lab link {lab} (the first file's {spec.interface})",
                )
            )
        if set(other.virtual_addresses) != set(spec.virtual_addresses):
            notes.append(
                Note(
                    f"{peer.path}: instance[{spec.name}].virtual_addresses",
                    "differ from the first file's: each router runs its own, as written",
                )
            )
        out.append(other)
    return out


def _raw_tables(document: Mapping[str, Any], kind: str) -> dict[str, Mapping[str, Any]]:
    tables = document.get(kind, [])
    if not isinstance(tables, list):
        return {}
    return {str(t.get("name")): t for t in tables if isinstance(t, Mapping)}


def _router_plan(
    name: str,
    user: UserConfig,
    specs: Sequence[InstanceConfig],
    links: Sequence[Link],
    instance_links: Mapping[str, int],
    remap: _Remapper,
    delta: tuple[str, int] | None,
    max_preempt_delay: float,
) -> RouterPlan:
    """One router's instances and tables from ``user``'s file (``delta``: move priorities)."""
    config = user.config
    where = "" if name == "r1" or delta is not None else f"{user.path}: "
    raw_instances = _raw_tables(user.document, "instance")
    group_of = {m: g for g in config.sync_groups for m in g.members}
    chosen = {spec.name for spec in specs}
    lab_names = {link.user: link.lab for link in links}
    scripts_used: list[str] = []
    instances: list[dict[str, Any]] = []
    unicast: dict[str, int] = {}
    owned: list[tuple[int, VirtualAddress]] = []
    for spec in specs:
        key = f"{where}instance[{spec.name}]"
        link = links[instance_links[spec.name]]
        priority = spec.priority
        if delta is not None:
            priority = _moved_priority(spec.priority, delta)
        vips = [
            remap.vip(vip, link, f"{key}.virtual_addresses", name) for vip in spec.virtual_addresses
        ]
        table: dict[str, Any] = {
            "name": spec.name,
            "version": spec.version,
            "interface": link.lab,
            "vrid": spec.vrid,
            "priority": priority,
            "advert_interval": spec.advert_interval,
            "preempt": spec.preempt,
            "preempt_delay": min(spec.preempt_delay, max_preempt_delay),
            "accept": True,
            "virtual_addresses": [str(vip) for vip in vips],
            "use_vmac": spec.use_vmac,
            "garp_repeat": spec.garp_repeat,
            "garp_interval": spec.garp_interval,
            "garp_refresh": spec.garp_refresh,
            "garp_delay": spec.garp_delay,
            "garp_refresh_repeat": spec.garp_refresh_repeat,
            "higher_prio_send_advert": spec.higher_prio_send_advert,
        }
        if spec.version == 3 and spec.family == 4:
            table["v3_checksum"] = spec.v3_checksum.value
        if spec.auth_pass:
            table["auth_pass"] = spec.auth_pass
        if spec.preempt_delay > max_preempt_delay:
            remap.note(
                name,
                Note(
                    f"{key}.preempt_delay",
                    f"{spec.preempt_delay:g} s -> {max_preempt_delay:g} s in the lab "
                    "(--max-preempt-delay); the predictions use yours",
                ),
            )
        if not spec.accept:
            remap.common(
                Note(
                    "accept",
                    "false -> true in the lab: the client probes the virtual addresses "
                    "themselves, which Accept_Mode false drops (no timing changes)",
                )
            )
        if spec.unicast_peers:
            unicast[spec.name] = link.index
            extra = len(spec.unicast_peers) - 1
            remap.note(
                name,
                Note(
                    f"{key}.unicast_peers",
                    f"{', '.join(map(str, spec.unicast_peers))} -> the other lab router"
                    + (
                        f" ({extra} more router(s) of the group are not in the lab)"
                        if extra
                        else ""
                    ),
                ),
            )
        if spec.is_owner and name == "r1":
            owned.extend((link.index, vip) for vip in vips)
        own = _own_tracks(config, spec.name, group_of.get(spec.name))
        for kind, entries in _track_entries(
            own, lab_names, link.lab, f"{key}", remap, name
        ).items():
            table[kind] = entries
        scripts_used.extend(t.name for t in own if t.kind is Kind.SCRIPT)
        dropped = sorted(set(raw_instances.get(spec.name, {})) - set(_INSTANCE_KEYS))
        if dropped:
            remap.note(
                name,
                Note(
                    key,
                    f"{', '.join(dropped)} left out: the lab runs no notify scripts, backends "
                    "or other programs of yours",
                ),
            )
        instances.append(table)
    groups = []
    for group in config.sync_groups:
        if not set(group.members) <= chosen:
            continue
        key = f"{where}sync_group[{group.name}]"
        entry: dict[str, Any] = {"name": group.name, "members": list(group.members)}
        if group.tracking_weight:
            entry["tracking_weight"] = True
        for kind, entries in _track_entries(
            group.tracks, lab_names, None, key, remap, name
        ).items():
            entry[kind] = entries
        scripts_used.extend(t.name for t in group.tracks if t.kind is Kind.SCRIPT)
        raw_group = _raw_tables(user.document, "sync_group").get(group.name, {})
        dropped = sorted(
            set(raw_group) - {"name", "members", "tracking_weight", *_TRACK_KEY.values()}
        )
        if dropped:
            remap.note(name, Note(key, f"{', '.join(dropped)} left out (no notify scripts)"))
        groups.append(entry)
    raw_scripts = _raw_tables(user.document, "track_script")
    scripts = []
    for script in dict.fromkeys(scripts_used):
        raw = raw_scripts.get(script, {})
        table = {"name": script, **{k: raw[k] for k in _SCRIPT_KEYS if k in raw}}
        scripts.append(table)
        lost = [k for k in ("user", "group") if k in raw]
        remap.note(
            name,
            Note(
                f"{where}track_script[{script}]",
                f"{raw.get('script', '?')!r} -> a lab script the drill makes fail"
                + (f"; {' and '.join(lost)} left out (runs as root)" if lost else ""),
            ),
        )
    for table_kind in ("backend", "virtual_server"):
        tables = user.document.get(table_kind, [])
        count = len(tables) if isinstance(tables, list) else 0
        if count:
            remap.note(
                name,
                Note(
                    f"{where}{table_kind}",
                    f"{count} table(s) left out: no DRBD, IPVS or Python backends in the lab",
                ),
            )
    raw_global = user.document.get("global", {})
    raw_global = raw_global if isinstance(raw_global, Mapping) else {}
    global_ = {k: raw_global[k] for k in _KEPT_GLOBAL if k in raw_global}
    dropped_global = sorted(set(raw_global) - set(_KEPT_GLOBAL) - set(_LAB_GLOBAL))
    if dropped_global:
        remap.note(
            name,
            Note(f"{where}global", f"{', '.join(dropped_global)} left out in the lab"),
        )
    return RouterPlan(name, user.path, instances, unicast, scripts, groups, global_, owned)


def _moved_priority(priority: int, delta: tuple[str, int]) -> int:
    kind, value = delta
    if kind == "absolute":
        return value
    return max(1, min(254, priority + value))


def _own_tracks(config: DaemonConfig, instance: str, group: Any) -> tuple[Track, ...]:
    """The instance's own tracks: not its interface (always tracked), not its group's."""
    tracks = config.instance_tracks.get(instance, ())[1:]
    if group is not None and group.tracks:
        tracks = tracks[: len(tracks) - len(group.tracks)]
    return tuple(tracks)


def _track_entries(
    tracks: Iterable[Track],
    lab_names: Mapping[str, str],
    own_interface: str | None,
    key: str,
    remap: _Remapper,
    router: str,
) -> dict[str, list[dict[str, Any]]]:
    """``tracks`` as the lab's ``track_*`` entries (resolved weights written out)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for track in tracks:
        kind_key = _TRACK_KEY[track.kind]
        name = track.name
        if track.kind is Kind.INTERFACE:
            user_name = name.split(":", 1)[1]
            lab = lab_names.get(user_name)
            if lab is None or lab == own_interface:
                remap.note(
                    router,
                    Note(
                        f"{key}.track_interface",
                        f"{user_name} left out: no such link in the lab (taken as up)",
                    ),
                )
                continue
            name = lab
        elif track.kind is not Kind.SCRIPT:
            remap.note(
                router,
                Note(
                    f"{key}.{kind_key}",
                    f"{name} left out: the lab has no such {track.kind.value} (taken as healthy)",
                ),
            )
            continue
        entry: dict[str, Any] = {"name": name, "weight": track.weight}
        if track.reverse:
            entry["reverse"] = True
        out.setdefault(kind_key, []).append(entry)
    return out


def _priority_notes(r1: RouterPlan, r2: RouterPlan) -> list[Note]:
    notes = []
    second = {t["name"]: t["priority"] for t in r2.instances}
    for table in r1.instances:
        p1, p2 = table["priority"], second[table["name"]]
        if p1 == p2:
            notes.append(
                Note(
                    f"instance[{table['name']}].priority",
                    f"{p1} on both routers: the higher address (r2) wins the tie",
                )
            )
    return notes


class _Remapper:
    """Moves virtual addresses into their lab link's networks, one lab address per user's,
    and collects the notes of both routers."""

    def __init__(self) -> None:
        self.moved: dict[str, str] = {}
        self._lab: dict[IPAddress, IPAddress] = {}
        self._used: set[IPAddress] = set()
        self._notes: dict[str, list[Note]] = {}
        self.common_notes: list[Note] = []

    def note(self, router: str, note: Note) -> None:
        self._notes.setdefault(router, []).append(note)

    def common(self, note: Note) -> None:
        if note not in self.common_notes:
            self.common_notes.append(note)

    def notes_for(self, router: str) -> list[Note]:
        return self._notes.get(router, [])

    def vip(self, vip: VirtualAddress, link: Link, key: str, router: str) -> VirtualAddress:
        bare = vip.ip
        plen = vip.network.prefixlen
        if isinstance(vip, IPv6Interface) and vip.ip.is_link_local:
            return vip
        network: IPv4Network | IPv6Network = link.ipv4 if vip.version == 4 else link.ipv6
        full = network.max_prefixlen
        if bare in self._lab:
            lab = self._lab[bare]
        elif bare in network and not self._reserved(bare, network):
            lab = bare
        else:
            lab = self._free(bare, network)
            self.moved[str(bare)] = str(lab)
            self.note(
                router,
                Note(key, f"{bare} -> {lab} (the lab's link {link.lab} is {network})"),
            )
        self._lab[bare] = lab
        self._used.add(lab)
        if plen != full and (lab != bare or plen < network.prefixlen):
            plen = network.prefixlen
        text = f"{lab}/{plen}"
        return IPv4Interface(text) if vip.version == 4 else IPv6Interface(text)

    @staticmethod
    def _reserved(address: IPAddress, network: IPv4Network | IPv6Network) -> bool:
        offset = int(address) - int(network.network_address)
        hosts = {10 + n for n in HOSTS.values()}
        if offset in hosts or offset == 0:
            return True
        return isinstance(network, IPv4Network) and address == network.broadcast_address

    def _free(self, address: IPAddress, network: IPv4Network | IPv6Network) -> IPAddress:
        mask = 0xFF if isinstance(network, IPv4Network) else 0xFFFF
        base = int(network.network_address)
        candidates = [int(address) & mask, *range(100, 250), *range(2, 100)]
        for offset in candidates:
            lab: IPAddress = (
                IPv4Address(base + offset)
                if isinstance(network, IPv4Network)
                else IPv6Address(base + offset)
            )
            if lab not in self._used and not self._reserved(lab, network) and lab in network:
                return lab
        raise DrillError(f"no free address left in {network} for {address}")
