"""keepalived's VRRP side as vrrpyd tables, in keepalived 2.2.7's own order of work.

The order changes what a file means, so the conversion keeps it:

1. The file is read top to bottom (:func:`convert_vrrp`): ``global_defs``
   (:mod:`~vrrpy.keepalived.globaldefs`; an instance copies the gratuitous ARP
   defaults read *before* it), tracked objects (:mod:`~vrrpy.keepalived.tracking`;
   an instance's ``track_script { NAME }`` finds only objects defined before it),
   instances (:mod:`~vrrpy.keepalived.instances`) and sync groups
   (:mod:`~vrrpy.keepalived.groups`).
2. Each instance is completed as ``vrrp_complete_instance()`` does it
   (:mod:`~vrrpy.keepalived.complete`): family, version, priority and
   initial state, authentication, preemption, accept, advert interval.
3. The sync groups are resolved and keepalived's weight rules applied to
   members and address owners; objects nothing tracks any more are left out.

Every place where keepalived does something other than the file says is a
note, per instance. :class:`VrrpState` is what the LVS conversion needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

from vrrpy.keepalived.complete import complete_instance
from vrrpy.keepalived.context import Context
from vrrpy.keepalived.globaldefs import GlobalDefs, read_global_defs
from vrrpy.keepalived.groups import SyncGroup, read_sync_group, resolve_groups, tracked_ids
from vrrpy.keepalived.instances import Instance, read_instance
from vrrpy.keepalived.model import Statement
from vrrpy.keepalived.tracking import Tracking

__all__ = ["VrrpState", "convert_vrrp"]


@dataclass
class VrrpState:
    """What the VRRP conversion leaves for the LVS one."""

    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The ``[[instance]]`` tables, by keepalived name, in file order."""
    addresses: dict[str, list[IPv4Interface | IPv6Interface]] = field(default_factory=dict)
    """Each carried instance's virtual addresses, by keepalived name."""
    lvs_syncd: tuple[Statement, str, str, dict[str, Any]] | None = None
    """``lvs_sync_daemon``: (statement, interface, instance, options)."""
    script_user: tuple[str, str | None] | None = None


def _named(ctx: Context, block: Statement, what: str, taken: set[str]) -> str | None:
    """The block's one name, or None (noted) where keepalived skips the block."""
    if len(block.args) != 1:
        ctx.notes.info(block, f"{what} needs exactly one name: keepalived skips the block")
        return None
    name = block.args[0]
    if name in taken:
        ctx.notes.info(block, f"{what} {name} is defined twice: keepalived skips the second")
        return None
    taken.add(name)
    return name


def convert_vrrp(ctx: Context) -> VrrpState:
    """Convert the VRRP side of ``ctx.config`` into ``ctx.document``; notes in ``ctx.notes``."""
    notes = ctx.notes
    g = GlobalDefs()
    tracking = Tracking(ctx, g)
    instances: list[Instance] = []
    groups: list[SyncGroup] = []
    names: set[str] = set()
    group_names: set[str] = set()
    for statement in ctx.config.statements:
        notes.scope = None
        keyword = ctx.keyword("top", statement)
        if keyword == "global_defs":
            notes.scope = "global_defs"
            read_global_defs(ctx, g, statement)
        elif keyword == "vrrp_instance":
            g.instances_seen = True
            name = _named(ctx, statement, "vrrp_instance", names)
            if name is not None:
                notes.scope = f"instance {name}"
                instances.append(read_instance(ctx, g, tracking, statement))
        elif keyword == "vrrp_script":
            tracking.read_script(statement)
        elif keyword == "track_file":
            tracking.read_file(statement)
        elif keyword == "vrrp_track_process":
            tracking.read_process(statement)
        elif keyword == "vrrp_sync_group":
            name = _named(ctx, statement, "vrrp_sync_group", group_names)
            if name is not None:
                notes.scope = f"vrrp_sync_group {name}"
                groups.append(read_sync_group(ctx, g, tracking, statement))
        elif keyword == "net_namespace":
            namespace = ctx.arg(statement)
            if namespace is not None:
                g.table["netns"] = namespace
        # virtual_server blocks are the LVS conversion's
    state = VrrpState(lvs_syncd=g.lvs_syncd, script_user=g.script_user)
    backends: list[dict[str, Any]] = []
    for inst in instances:
        notes.scope = f"instance {inst.name}"
        table = complete_instance(ctx, g, inst, backends)
        if table is None:
            inst.keep = False
            continue
        state.instances[inst.name] = table
        state.addresses[inst.name] = [vip.address for vip in inst.vips]
    notes.scope = None
    group_tables = resolve_groups(ctx, g, groups, instances, state.instances)
    _document(ctx, g, state, group_tables, backends)
    kept = set(state.instances)
    tracking.emit(ctx.document, tracked_ids(groups, instances, kept))
    scripts = "track_script" in ctx.document or any(inst.keep and inst.notify for inst in instances)
    if g.script_user is None and (scripts or any(group.notify for group in groups)):
        notes.info(
            None,
            "no script_user: keepalived runs scripts as user keepalived_script when it exists, "
            "else as root; vrrpyd runs them as its own user",
            scope="",
        )
    return state


def _document(
    ctx: Context,
    g: GlobalDefs,
    state: VrrpState,
    group_tables: list[dict[str, Any]],
    backends: list[dict[str, Any]],
) -> None:
    doc = ctx.document
    table = g.finish(ctx)
    if table:
        doc["global"] = table
    if state.instances:
        doc["instance"] = list(state.instances.values())
    if group_tables:
        doc["sync_group"] = group_tables
    if backends:
        doc["backend"] = backends
    # the [[track_*]] tables are Tracking.emit's, once the groups' rules have run
