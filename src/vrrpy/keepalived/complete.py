"""keepalived's ``vrrp_complete_instance()``: what an instance really runs with, as vrrpyd keys.

Once the whole file is read, keepalived settles each instance (``vrrp.c``),
and the file's meaning changes on the way: the address family and the version
(its default is VRRPv2, vrrpyd's is 3, so the version is always written), the
priority and the initial state derived from each other, authentication
dropped under strict mode, VRRPv3, without a password or with AH over IPv6,
``nopreempt`` and ``preempt_delay`` cleared beside ``state MASTER``, priority
255 or strict mode, ``accept`` on unless strict mode, the advert interval
rounded to what the version can carry. :func:`complete_instance` does the
same, in the same order, and notes each change.
"""

from __future__ import annotations

import shlex
from typing import Any, Final

from vrrpy.keepalived.context import Context, safe_name
from vrrpy.keepalived.globaldefs import GlobalDefs
from vrrpy.keepalived.instances import Instance

__all__ = ["complete_instance"]

_V3_MAX: Final = 40.95
_GARP_DEFAULTS: Final = {"garp_delay": 5, "garp_repeat": 5, "garp_refresh": 0,
                         "garp_refresh_repeat": 1}  # fmt: skip
"""keepalived's and vrrpyd's (the same): written only when the file differs."""


def number(value: float) -> int | float:
    """A number of seconds as a person writes it: ``2`` rather than ``2.0``."""
    return int(value) if float(value).is_integer() else value


def complete_instance(
    ctx: Context, g: GlobalDefs, inst: Instance, backends: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The ``[[instance]]`` table of ``inst``, or None (noted) when it cannot be carried.

    ``backends`` gets the ``[[backend]]`` that moves its excluded addresses, if any.
    """
    notes, st = ctx.notes, inst.statement
    strict = g.strict if inst.strict is None else inst.strict
    strict_why = "vrrp_strict" if inst.strict is None else "strict_mode"
    if inst.vrid is None:
        notes.dropped(
            st,
            "no virtual_router_id: keepalived refuses the whole configuration (its VRRP process "
            "does not start); the instance is not carried over",
        )
        return None
    if inst.interface is None:
        notes.dropped(
            st,
            "no interface: vrrpyd needs one (keepalived sends unicast from unicast_src_ip "
            "without one); the instance is not carried over",
        )
        return None
    family = inst.family or 4
    version = _version(ctx, g, inst, family)
    if not inst.vips:
        why = (
            "keepalived refuses its whole configuration"
            if version == 3 or strict
            else "keepalived runs a VRRPv2 instance without addresses"
        )
        notes.dropped(st, f"no virtual_ipaddress ({why}); vrrpyd needs one: not carried over")
        return None
    priority, want = _priority_and_state(ctx, inst, strict, strict_why)
    delay: dict[str, Any] = {}
    preempt = _preempt(ctx, inst, want, priority, strict, strict_why, delay)
    table: dict[str, Any] = {
        "name": inst.safe,
        "interface": inst.interface,
        "vrid": inst.vrid,
        "version": version,
        "priority": priority,
        "advert_interval": number(_advert(ctx, inst, version)),
        "preempt": preempt,
        **delay,
    }
    table["accept"] = _accept(ctx, inst, version, priority, strict, strict_why)
    table["virtual_addresses"] = [str(vip.address) for vip in inst.vips]
    for vip in inst.vips:
        if vip.dev is not None and vip.dev != inst.interface:
            notes.changed(
                vip.statement,
                f"{vip.address}: dev {vip.dev}: vrrpyd adds every virtual address on the "
                f"instance's interface ({inst.interface})",
            )
    _unicast(ctx, inst, table, family, strict, strict_why)
    if inst.use_vmac:
        table["use_vmac"] = True
    auth = _auth(ctx, inst, version, family, strict, strict_why)
    if auth:
        table["auth_pass"] = auth
    for key, default in _GARP_DEFAULTS.items():
        if key in inst.garp and inst.garp[key] != default:
            table[key] = inst.garp[key]
    if family in g.garp_interval:
        table["garp_interval"] = number(g.garp_interval[family])
    _adverts_to_others(ctx, g, inst, table, strict, strict_why)
    if inst.v3_checksum is not None:
        table["v3_checksum"] = inst.v3_checksum
    inst.tracks = [t for t in inst.tracks if not _own_interface(ctx, inst, t.key, t.name, t)]
    for key, (cmd, _) in inst.notify.items():
        table[key] = cmd.line
    if inst.notify_priority_changes is not None and (
        inst.notify_priority_changes != g.notify_priority_changes
    ):
        notes.changed(
            st,
            "notify_priority_changes per instance: vrrpyd's [global] notify_priority_changes "
            "covers every instance",
        )
    backend = _excluded(ctx, inst)
    if backend is not None:
        backends.append(backend)
        table["backends"] = [backend["name"]]
    return table


def _version(ctx: Context, g: GlobalDefs, inst: Instance, family: int) -> int:
    if family == 6:
        if inst.version == 2:
            ctx.notes.changed(
                inst.statement,
                "VRRPv2 over IPv6 (keepalived accepts it outside strict mode): vrrpyd speaks "
                "VRRPv3 over IPv6, as RFC 9568 has it",
            )
        return 3
    return inst.version if inst.version is not None else g.version


def _priority_and_state(
    ctx: Context, inst: Instance, strict: bool, strict_why: str
) -> tuple[int, str]:
    notes, st = ctx.notes, inst.statement
    priority = inst.priority
    if priority is None:
        priority = 255 if inst.want == "MASTER" else 100
        if priority == 255:
            notes.info(
                st,
                "state MASTER with no priority: keepalived makes the instance the address "
                "owner (priority 255), and so does the import",
            )
    want = inst.want or ("MASTER" if priority == 255 else "BACKUP")
    if strict and inst.want is not None and (want == "MASTER") != (priority == 255):
        want = "MASTER" if priority == 255 else "BACKUP"
        notes.info(
            st,
            f"{strict_why}: state {inst.want} with priority {priority}: keepalived starts it "
            f"as {want} (state must match being the address owner)",
        )
    if want == "MASTER" and priority != 255:
        notes.info(
            st,
            "state MASTER: vrrpyd has no initial state; it starts as Backup and takes over "
            "after Master_Down_Interval if no better Master is heard (keepalived waits one "
            "advert interval); who ends up Master is the same",
        )
    if priority == 255:
        notes.changed(
            st,
            "priority 255 means address owner: vrrpyd refuses to start unless the virtual "
            "addresses are configured on the interface (RFC 9568); keepalived adds them as it "
            "would any address",
        )
    return priority, want


def _advert(ctx: Context, inst: Instance, version: int) -> float:
    notes, st = ctx.notes, inst.advert_at
    seconds = 1.0 if inst.advert is None else inst.advert
    if version == 2:
        if seconds >= 256:
            notes.info(st, f"advert_int {seconds:g}: keepalived uses 255 (VRRPv2)")
            return 255.0
        if not seconds.is_integer():
            rounded = max(float(int(seconds + 0.5)), 1.0)
            notes.info(
                st,
                f"advert_int {seconds:g}: VRRPv2 sends whole seconds; keepalived rounds to "
                f"{rounded:g}",
            )
            return rounded
        return seconds
    if seconds > _V3_MAX:
        notes.info(st, f"advert_int {seconds:g}: keepalived uses 40.95 (VRRPv3)")
        return _V3_MAX
    centi = round(seconds * 100, 6)
    if not centi.is_integer():
        rounded = max(int(centi + 0.5), 1) / 100
        notes.info(
            st,
            f"advert_int {seconds:g}: VRRPv3 sends centiseconds; keepalived rounds to {rounded:g}",
        )
        return rounded
    return seconds


def _preempt(
    ctx: Context,
    inst: Instance,
    want: str,
    priority: int,
    strict: bool,
    strict_why: str,
    out: dict[str, Any],
) -> bool:
    """Whether the instance preempts; ``out`` gets ``preempt_delay`` if it keeps one."""
    notes = ctx.notes
    nopreempt = inst.nopreempt is not None
    if nopreempt and priority == 255:
        notes.info(inst.nopreempt, "nopreempt with priority 255: keepalived ignores it")
        nopreempt = False
    delay = inst.preempt_delay or 0.0
    if want == "MASTER":
        if nopreempt:
            notes.info(
                inst.nopreempt,
                'nopreempt beside state MASTER: keepalived ignores the nopreempt ("will not '
                'work with initial state MASTER"), so the instance preempts here too; use '
                "state BACKUP on every router for nopreempt",
            )
            nopreempt = False
        if delay:
            notes.info(
                inst.preempt_delay_at,
                "preempt_delay beside state MASTER: keepalived ignores it, and so does the import",
            )
            delay = 0.0
    if delay and strict:
        notes.info(inst.preempt_delay_at, f"preempt_delay with {strict_why}: keepalived ignores it")
        delay = 0.0
    if delay and nopreempt:
        notes.info(inst.preempt_delay_at, "preempt_delay with nopreempt: keepalived ignores it")
        delay = 0.0
    if delay:
        out["preempt_delay"] = number(delay)
    return not nopreempt


def _accept(
    ctx: Context, inst: Instance, version: int, priority: int, strict: bool, strict_why: str
) -> bool:
    if inst.accept is None:
        return priority == 255 or not strict
    if inst.accept and strict and version == 2 and priority != 255:
        ctx.notes.info(
            inst.statement,
            f"accept with {strict_why} and VRRPv2: keepalived turns it off (RFC 3768)",
        )
        return False
    return inst.accept


def _unicast(
    ctx: Context,
    inst: Instance,
    table: dict[str, Any],
    family: int,
    strict: bool,
    strict_why: str,
) -> None:
    notes = ctx.notes
    if inst.peers:
        if strict:
            notes.info(
                inst.unicast_keyword,
                f"unicast peers with {strict_why}: keepalived refuses the configuration when "
                "the interface can multicast",
            )
        table["unicast_peers"] = list(inst.peers)
        if inst.ttl is not None and inst.ttl[0] != 255:
            notes.changed(
                inst.ttl[1], f"unicast_ttl {inst.ttl[0]}: vrrpyd sends with TTL 255 (RFC 9568)"
            )
    elif inst.unicast_keyword is not None:
        notes.info(
            inst.unicast_keyword,
            "a unicast keyword without unicast peers: keepalived uses multicast, and so does "
            "vrrpyd",
        )
    if not inst.peers and inst.ttl is not None:
        notes.info(inst.ttl[1], "unicast_ttl without unicast peers: keepalived resets it")
    if inst.src_ip is not None:
        primary = (
            "address (its first IPv4 address that is not virtual)"
            if family == 4
            else "link-local address"
        )
        notes.changed(
            inst.src_ip,
            f"{inst.src_ip.keyword} {inst.src_ip.args[0]}: vrrpyd sends from "
            f"{inst.interface}'s primary {primary}; the adverts come from the same address "
            "when that is it",
        )


def _auth(
    ctx: Context, inst: Instance, version: int, family: int, strict: bool, strict_why: str
) -> str | None:
    notes, at = ctx.notes, inst.auth_at
    if inst.auth_type is None:
        if inst.auth_pass:
            notes.info(at, "auth_pass without auth_type: keepalived sends no authentication")
        return None
    if strict:
        notes.info(
            at,
            f'authentication with {strict_why}: keepalived ignores it ("Strict mode does not '
            'support authentication"), and so does the import',
        )
        return None
    if version == 3:
        notes.info(
            at,
            "authentication with VRRPv3: keepalived ignores it (RFC 9568 has none), and so "
            "does the import",
        )
        return None
    if not inst.auth_pass:
        notes.info(at, "authentication without auth_pass: keepalived ignores it")
        return None
    if inst.auth_type == "AH":
        if family == 6:
            notes.info(at, "AH authentication with IPv6: keepalived ignores it")
            return None
        notes.dropped(
            at,
            "auth_type AH: vrrpyd has no IPsec AH authentication; a keepalived peer using AH "
            "refuses its adverts",
        )
        return None
    return inst.auth_pass


def _adverts_to_others(
    ctx: Context,
    g: GlobalDefs,
    inst: Instance,
    table: dict[str, Any],
    strict: bool,
    strict_why: str,
) -> None:
    """``higher_prio_send_advert`` (carried) and strict mode's silence to lower priorities."""
    hpsa = inst.higher_prio_send_advert
    if hpsa is None:
        hpsa = False if strict else g.higher_prio_send_advert
    elif hpsa and strict:
        ctx.notes.info(
            inst.statement, f"higher_prio_send_advert with {strict_why}: keepalived turns it off"
        )
        hpsa = False
    if hpsa:
        table["higher_prio_send_advert"] = True
    if strict and not g.lower_prio_no_advert:
        ctx.notes.changed(
            g.strict_at if inst.strict is None else inst.statement,
            f"{strict_why}: keepalived stays silent when a lower priority claims Master; vrrpyd "
            "answers with an advert and its announcements",
            scope=f"instance {inst.name}",
        )


def _own_interface(ctx: Context, inst: Instance, key: str, name: str, track: Any) -> bool:
    if key == "track_interface" and name == inst.interface:
        ctx.notes.info(
            track.statement,
            f"{name} is the instance's own interface, always tracked: keepalived ignores the entry",
        )
        return True
    return False


def _excluded(ctx: Context, inst: Instance) -> dict[str, Any] | None:
    """``virtual_ipaddress_excluded``: a script backend moves them with ``ip``."""
    if not inst.evips:
        return None
    adds: list[str] = []
    dels: list[str] = []
    for evip in inst.evips:
        dev = evip.dev or inst.interface
        assert dev is not None
        family = "-6" if evip.address.version == 6 else "-4"
        nodad = " nodad" if evip.address.version == 6 else ""
        address = str(evip.address)
        adds.append(shlex.join(("ip", family, "addr", "replace", address, "dev", dev)) + nodad)
        dels.append(shlex.join(("ip", family, "addr", "del", address, "dev", dev)) + " 2>/dev/null")
    name = safe_name(f"{inst.safe}-excluded", colon=False)
    ctx.notes.changed(
        inst.evips[0].statement,
        f"virtual_ipaddress_excluded ({', '.join(str(e.address) for e in inst.evips)}): vrrpyd "
        f"has no excluded addresses; the [[backend]] {name} adds them with ip when the instance "
        "becomes Master (after its own addresses, with no gratuitous ARP / NA) and deletes them "
        "when it leaves",
    )
    leave = "; ".join(dels) + "; true"
    return {
        "name": name,
        "type": "script",
        "shell": True,
        "master": "; ".join(adds) + "; true",
        "backup": leave,
        "fault": leave,
        "stop": leave,
    }
