"""A ``vrrp_instance`` block as keepalived's handlers read it, before the completion rules.

Each keyword is read as its handler in keepalived 2.2.7's ``vrrp_parser.c``
reads it, including the order effects: the address family is fixed by the
*first* of ``unicast_src_ip`` / ``mcast_src_ip``, a unicast peer or a virtual
address, and an address of the other family is then ignored; ``version 2``
after an IPv6 address (or after another ``version``) is ignored; ``state
BACKUP`` after ``state MASTER`` is ignored; ``nopreempt`` and ``preempt``
override each other; the first of two notify scripts of one kind wins.
:mod:`vrrpy.keepalived.complete` then applies ``vrrp_complete_instance()``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from typing import TYPE_CHECKING, Final

from vrrpy.keepalived.context import Context
from vrrpy.keepalived.globaldefs import GlobalDefs, garp_setting
from vrrpy.keepalived.model import Statement
from vrrpy.keepalived.tracking import TRACK_KEYS, TrackEntry, Tracking
from vrrpy.keepalived.values import Command, read_bool

if TYPE_CHECKING:
    from vrrpy.keepalived.groups import SyncGroup

__all__ = ["NOTIFY", "Address", "Instance", "read_instance", "read_notify"]

AUTH_LEN: Final = 8
NOTIFY: Final = (
    "notify_master",
    "notify_backup",
    "notify_fault",
    "notify_stop",
    "notify",
    "notify_master_rx_lower_pri",
)
_WITH_VALUE: Final = frozenset(
    {"dev", "scope", "broadcast", "brd", "label", "peer", "preferred_lft", "track_group"}
)
"""Per-address options that take a value (keepalived's ``alloc_ipaddress``)."""
_HARMLESS: Final = frozenset(
    {("scope", "global"), ("scope", "universe"), ("scope", "0"), ("preferred_lft", "forever")}
)
"""Per-address options that say what vrrpyd does anyway."""


@dataclass
class Address:
    address: IPv4Interface | IPv6Interface
    dev: str | None
    statement: Statement


@dataclass
class Instance:
    """A ``vrrp_instance`` as read: what the file set, ``None`` where it set nothing."""

    name: str
    safe: str
    statement: Statement
    garp: dict[str, int]
    want: str | None = None
    interface: str | None = None
    vrid: int | None = None
    priority: int | None = None
    advert: float | None = None
    advert_at: Statement | None = None
    version: int | None = None
    family: int | None = None
    vips: list[Address] = field(default_factory=list)
    evips: list[Address] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)
    unicast_keyword: Statement | None = None
    src_ip: Statement | None = None
    ttl: tuple[int, Statement] | None = None
    nopreempt: Statement | None = None
    preempt_delay: float | None = None
    preempt_delay_at: Statement | None = None
    accept: bool | None = None
    strict: bool | None = None
    use_vmac: bool = False
    auth_type: str | None = None
    auth_at: Statement | None = None
    auth_pass: str | None = None
    higher_prio_send_advert: bool | None = None
    notify: dict[str, tuple[Command, Statement]] = field(default_factory=dict)
    notify_priority_changes: bool | None = None
    tracks: list[TrackEntry] = field(default_factory=list)
    v3_checksum: str | None = None
    group: SyncGroup | None = None
    """The sync group it belongs to, once the groups are resolved."""
    keep: bool = True
    """False once the completion rules leave it out."""


def read_instance(ctx: Context, g: GlobalDefs, tracking: Tracking, block: Statement) -> Instance:
    """Read one ``vrrp_instance NAME { ... }`` (the caller checked the name)."""
    name = block.args[0]
    inst = Instance(name, ctx.instance_name(name, block, "instance"), block, dict(g.garp))
    for keyword, st in ctx.keywords("vrrp_instance", block):
        _keyword(ctx, g, tracking, inst, keyword, st)
    return inst


def _keyword(
    ctx: Context, g: GlobalDefs, tracking: Tracking, inst: Instance, keyword: str, st: Statement
) -> None:
    notes = ctx.notes
    if keyword == "state":
        _state(ctx, inst, st)
    elif keyword == "interface":
        name = ctx.arg(st)
        if name is not None and len(name.encode()) >= 16:
            notes.info(st, f"interface {name} is too long: keepalived ignores the line")
        elif name is not None:
            inst.interface = name
    elif keyword == "virtual_router_id":
        inst.vrid = ctx.int_arg(st, 1, 255, unsigned=True) or inst.vrid
    elif keyword == "priority":
        priority = ctx.int_arg(st, 1, 255, unsigned=True)
        inst.priority = priority if priority is not None else 100
    elif keyword == "advert_int":
        seconds = ctx.seconds_arg(st, 0.01, 255.0)
        if seconds is not None:
            inst.advert, inst.advert_at = seconds, st
    elif keyword == "version":
        _version(ctx, inst, st)
    elif keyword == "native_ipv6":
        if inst.family == 4:
            notes.info(st, "native_ipv6 with IPv4 addresses: keepalived ignores it")
        else:
            inst.family, inst.version = 6, 3
    elif keyword in ("virtual_ipaddress", "virtual_ipaddress_excluded"):
        for line in st.block or ():
            _address(ctx, inst, line, excluded=keyword != "virtual_ipaddress")
    elif keyword == "unicast_peer":
        inst.unicast_keyword = inst.unicast_keyword or st
        for line in st.block or ():
            _peer(ctx, inst, line)
    elif keyword in ("unicast_src_ip", "mcast_src_ip"):
        _source(ctx, inst, st)
    elif keyword == "unicast_ttl":
        ttl = ctx.int_arg(st, 0, 255, unsigned=True)
        if ttl is not None:
            inst.ttl = (ttl, st)
    elif keyword in TRACK_KEYS:
        tracking.entries(inst.tracks, keyword, st)
    elif keyword == "use_vmac":
        inst.use_vmac = True
        if st.args:
            notes.changed(
                st,
                f"use_vmac {' '.join(st.args)}: vrrpyd names the macvlan vrrp4.VRID / "
                "vrrp6.VRID and gives it 00:00:5e:00:01:VRID (00:00:5e:00:02:VRID)",
            )
    elif keyword in ("accept", "no_accept"):
        inst.accept = keyword == "accept"
    elif keyword == "preempt":
        inst.nopreempt = None
    elif keyword == "nopreempt":
        inst.nopreempt = st
    elif keyword == "preempt_delay":
        seconds = ctx.seconds_arg(st, 0.0, 2**31 / 1e6)
        inst.preempt_delay = seconds if seconds is not None else 0.0
        inst.preempt_delay_at = st
    elif keyword == "strict_mode":
        flag = read_bool(st)
        if flag is not None:
            inst.strict = flag
    elif keyword in NOTIFY:
        read_notify(ctx, g, inst.notify, keyword, st)
    elif keyword == "notify_deleted":
        notes.changed(
            st,
            "notify_deleted: vrrpyd notifies an instance removed at a reload as STOP "
            "(notify_stop), not DELETED",
        )
    elif keyword == "notify_priority_changes":
        inst.notify_priority_changes = read_bool(st)
    elif keyword == "lvs_sync_daemon_interface":
        interface = ctx.arg(st)
        if interface is not None and g.lvs_syncd is None:
            notes.info(
                st,
                "lvs_sync_daemon_interface is deprecated: read as global_defs "
                f"lvs_sync_daemon {interface} {inst.name}",
            )
            g.lvs_syncd = (st, interface, inst.name, {})
    elif keyword.startswith("garp_master_"):
        garp_setting(ctx, st, keyword, inst.garp)
    elif keyword == "higher_prio_send_advert":
        inst.higher_prio_send_advert = read_bool(st)
    elif keyword == "v3_checksum_as_v2":
        if read_bool(st) is not False:
            inst.v3_checksum = "vrrp-only"
            notes.info(
                st,
                "v3_checksum_as_v2 is a keyword of keepalived 2.2.8 and later (2.2.7 ignores "
                'it): carried as v3_checksum = "vrrp-only"',
            )
    elif keyword == "authentication":
        _authentication(ctx, inst, st)


def _state(ctx: Context, inst: Instance, st: Statement) -> None:
    word = ctx.arg(st)
    if word == "MASTER":
        inst.want = "MASTER"
    elif word == "BACKUP":
        if inst.want == "MASTER":
            ctx.notes.info(st, "state BACKUP after state MASTER: keepalived keeps MASTER")
        else:
            inst.want = "BACKUP"
    elif word is not None:
        ctx.notes.info(st, f"unknown state {word}: keepalived uses BACKUP")
        inst.want = "BACKUP"


def _version(ctx: Context, inst: Instance, st: Statement) -> None:
    version = ctx.int_arg(st, 2, 3)
    if version is None:
        return
    if (inst.version and inst.version != version) or (version == 2 and inst.family == 6):
        ctx.notes.info(
            st,
            f"version {version} conflicts with the version set or deduced before: keepalived "
            "ignores it",
        )
        return
    inst.version = version


def _family(ctx: Context, inst: Instance, st: Statement, family: int, what: str) -> bool:
    """Fix the instance's family on first use; False (noted) for the other family."""
    if inst.family is None:
        inst.family = family
        return True
    if family == inst.family:
        return True
    ctx.notes.info(st, f"{what}: the instance is IPv{inst.family}; keepalived ignores it")
    return False


def _address(ctx: Context, inst: Instance, line: Statement, *, excluded: bool) -> None:
    notes, text = ctx.notes, line.keyword
    try:
        address = ipaddress.ip_interface(text)
    except ValueError:
        notes.info(line, f"{text} is not an IP address: keepalived skips it")
        return
    if line.block is not None:
        notes.dropped(line, f"{text} is followed by a {{ }} block: not carried over")
    dev: str | None = None
    args = list(line.args)
    while args:
        option = args.pop(0)
        if option in _WITH_VALUE:
            if not args:
                notes.info(line, f"{option} without a value: keepalived skips {text}")
                return
            value = args.pop(0)
            if option == "dev":
                dev = value
            elif (option, value) not in _HARMLESS:
                notes.dropped(
                    line,
                    f"{text}: {option} {value} is not carried over (vrrpyd adds the address "
                    "with its prefix only)",
                )
        elif option in ("-nodad", "nodad"):
            if address.version == 4:
                notes.info(line, f"{text}: {option} means nothing for IPv4")
        elif option == "no_track":
            notes.info(line, f"{text}: no_track: vrrpyd does not watch its addresses either")
        elif option in ("home", "mngtmpaddr", "noprefixroute", "autojoin", "use_vmac"):
            notes.dropped(line, f"{text}: {option} is not carried over")
        else:
            notes.info(line, f"{text}: unknown option {option}: keepalived ignores it")
    entry = Address(address, dev, line)
    if excluded:
        inst.evips.append(entry)
    elif _family(
        ctx,
        inst,
        line,
        address.version,
        f"{text} (virtual_ipaddress_excluded takes either family)",
    ):
        inst.vips.append(entry)


def _peer(ctx: Context, inst: Instance, line: Statement) -> None:
    text = line.keyword
    try:
        peer = ipaddress.ip_address(text)
    except ValueError:
        ctx.notes.info(line, f"{text} is not an IP address: keepalived skips it")
        return
    if not _family(ctx, inst, line, peer.version, f"unicast peer {text}"):
        return
    if line.args:
        ctx.notes.info(
            line,
            f"{text}: {' '.join(line.args)}: vrrpyd accepts adverts from its peers with TTL "
            "255 only (RFC 9568)",
        )
    inst.peers.append(str(peer))


def _source(ctx: Context, inst: Instance, st: Statement) -> None:
    text = ctx.arg(st)
    if text is None:
        return
    if st.keyword == "unicast_src_ip":
        inst.unicast_keyword = inst.unicast_keyword or st
    try:
        source = ipaddress.ip_address(text)
    except ValueError:
        ctx.notes.info(st, f"{text} is not an IP address: keepalived ignores the line")
        return
    if _family(ctx, inst, st, source.version, f"{st.keyword} {text}"):
        inst.src_ip = st


def read_notify(
    ctx: Context,
    g: GlobalDefs,
    into: dict[str, tuple[Command, Statement]],
    keyword: str,
    st: Statement,
) -> None:
    """A notify script of an instance or a group; the first of each kind wins."""
    if keyword in into:
        ctx.notes.info(st, f"{keyword} is set twice: keepalived keeps the first")
        return
    cmd = ctx.command(st)
    if cmd is None:
        return
    g.note_script_user(ctx, st, cmd, keyword)
    into[keyword] = (cmd, st)


def _authentication(ctx: Context, inst: Instance, block: Statement) -> None:
    inst.auth_at = block
    for keyword, st in ctx.keywords("authentication", block):
        if keyword == "auth_type":
            word = ctx.arg(st)
            if word in ("PASS", "AH"):
                inst.auth_type = word
            elif word is not None:
                ctx.notes.info(st, f"unknown auth_type {word}: keepalived ignores it")
        elif keyword == "auth_pass":
            password = ctx.arg(st)
            if password is not None:
                inst.auth_pass = _password(ctx, st, password)


def _password(ctx: Context, st: Statement, password: str) -> str | None:
    """keepalived keeps the first 8 bytes of ``auth_pass`` (and sends them)."""
    raw = password.encode()
    if len(raw) <= AUTH_LEN:
        return password
    try:
        text = raw[:AUTH_LEN].decode()
    except UnicodeDecodeError:
        ctx.notes.dropped(
            st,
            f"auth_pass is longer than {AUTH_LEN} bytes and its first {AUTH_LEN} cut a "
            "character in two: write the 8 bytes keepalived sends as a password vrrpyd can hold",
        )
        return None
    ctx.notes.info(
        st,
        f"auth_pass {password!r} is longer than {AUTH_LEN} characters: keepalived sends only "
        f"{text!r}, and so does vrrpyd",
    )
    return text
