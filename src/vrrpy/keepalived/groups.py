"""``vrrp_sync_group`` and keepalived's rules for weights on members and address owners.

keepalived resolves a group's members once every instance is read
(``vrrp_sync_set_group``): a name it cannot find, or an instance already in
another group, is ignored; a group left empty is removed. Then, without
``sync_group_tracking_weight``, a member's weighted tracks are neutralised
(``vrrp_complete_instance``): a tracked interface gets weight 0 (FAULT while
down), a weighted script is dropped, a file with the default weight gets 0 and
one with another weight is dropped. An address owner (priority 255) gets the
same, except that its weighted interfaces are dropped. A tracked *process*
keeps its weight on a member (keepalived has no rule for it there), which in
vrrpyd needs ``tracking_weight = true``: since every other weight is gone by
then, turning it on changes nothing else.

vrrpyd refuses what keepalived only warns about: a group of one instance
(folded into its member) and a group mixing owners and non-owners (left out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vrrpy.keepalived.context import Context
from vrrpy.keepalived.globaldefs import GlobalDefs
from vrrpy.keepalived.instances import NOTIFY, Instance, read_notify
from vrrpy.keepalived.model import Statement
from vrrpy.keepalived.tracking import TRACK_KEYS, TrackEntry, Tracking
from vrrpy.keepalived.values import Command, read_bool

__all__ = ["SyncGroup", "neutralise", "read_sync_group", "resolve_groups", "tracked_ids"]


@dataclass
class SyncGroup:
    name: str
    safe: str
    statement: Statement
    members: list[str] = field(default_factory=list)
    member_at: dict[str, Statement] = field(default_factory=dict)
    tracks: list[TrackEntry] = field(default_factory=list)
    notify: dict[str, tuple[Command, Statement]] = field(default_factory=dict)
    tracking_weight: bool = False
    notify_priority_changes: bool | None = None
    emitted: bool = False


def read_sync_group(ctx: Context, g: GlobalDefs, tracking: Tracking, block: Statement) -> SyncGroup:
    """One ``vrrp_sync_group NAME { group { ... } track_* notify* ... }``."""
    name = block.args[0]
    group = SyncGroup(name, ctx.instance_name(name, block, "sync group"), block)
    group_seen = False
    for keyword, st in ctx.keywords("vrrp_sync_group", block):
        if keyword == "group":
            if group_seen:
                ctx.notes.info(st, "a second group block: keepalived ignores it")
                continue
            group_seen = True
            for line in st.block or ():
                for member in (line.keyword, *line.args):
                    group.members.append(member)
                    group.member_at.setdefault(member, line)
        elif keyword in TRACK_KEYS:
            tracking.entries(group.tracks, keyword, st)
        elif keyword in NOTIFY:
            read_notify(ctx, g, group.notify, keyword, st)
        elif keyword == "sync_group_tracking_weight":
            group.tracking_weight = True
        elif keyword == "notify_priority_changes":
            group.notify_priority_changes = read_bool(st)
    return group


def resolve_groups(
    ctx: Context,
    g: GlobalDefs,
    groups: list[SyncGroup],
    instances: list[Instance],
    tables: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Tie the groups to the carried instances; apply the weight rules; the group tables.

    ``tables``: the carried instances' tables by keepalived name (their tracks are
    written here, once the rules have run).
    """
    notes = ctx.notes
    every = {inst.name: inst for inst in instances}
    out: list[dict[str, Any]] = []
    for group in groups:
        notes.scope = f"vrrp_sync_group {group.name}"
        members = _members(ctx, group, every, tables)
        if not members:
            notes.info(group.statement, "no member found: keepalived removes the group")
            continue
        owners = [m for m in members if tables[m.name]["priority"] == 255]
        if owners and len(owners) != len(members):
            notes.dropped(
                group.statement,
                f"{owners[0].name} is the address owner (priority 255) and other members are "
                'not: keepalived warns "This won\'t work", vrrpyd refuses such a group; the '
                "group is not carried over",
            )
            for inst in members:
                inst.group = None
            continue
        _member_weights(ctx, group, members, owner=bool(owners))
        if len(members) == 1:
            _dissolve(ctx, group, members[0])
            continue
        out.append(_table(ctx, g, group, members, tables))
        group.emitted = True
    notes.scope = None
    for inst in instances:
        if inst.name not in tables:
            continue
        notes.scope = f"instance {inst.name}"
        if inst.group is None and tables[inst.name]["priority"] == 255:
            neutralise(ctx, inst.tracks, inst.name, owner=True)
        for key in TRACK_KEYS:
            entries = [t.entry() for t in inst.tracks if t.key == key]
            if entries:
                tables[inst.name][key] = entries
    notes.scope = None
    return out


def _members(
    ctx: Context,
    group: SyncGroup,
    every: dict[str, Instance],
    tables: dict[str, dict[str, Any]],
) -> list[Instance]:
    members: list[Instance] = []
    for member in group.members:
        at = group.member_at[member]
        inst = every.get(member)
        if inst is None:
            ctx.notes.info(at, f"no vrrp_instance {member}: keepalived ignores it")
        elif inst.group is not None:
            ctx.notes.info(
                at,
                f"{member} is already in vrrp_sync_group {inst.group.name}: keepalived ignores "
                "it here",
            )
        elif member not in tables:
            ctx.notes.dropped(at, f"{member} was not carried over, so neither is its place")
        else:
            inst.group = group
            members.append(inst)
    return members


def _member_weights(
    ctx: Context, group: SyncGroup, members: list[Instance], *, owner: bool
) -> None:
    """keepalived's rules for the members' weights; objects tracked twice go to the group."""
    for inst in members:
        if not group.tracking_weight or owner:
            neutralise(ctx, inst.tracks, inst.name, owner=owner)
        mine = {(t.key, t.name): t for t in inst.tracks}
        for track in group.tracks:
            own = mine.get((track.key, track.name))
            if own is not None:
                ctx.notes.info(
                    own.statement,
                    f"{track.name} is tracked by {inst.name} and by its sync group "
                    f"{group.name}: keepalived reports it and uses the group's; so does the "
                    "import",
                    scope=f"instance {inst.name}",
                )
                inst.tracks.remove(own)
    if owner:
        for track in group.tracks:
            if track.effective_weight and track.key == "track_script":
                ctx.notes.info(
                    track.statement,
                    f"weighted {track.name} on a group with an address owner: keepalived clears "
                    "the weight (weight 0: FAULT while it fails)",
                )
                track.weight = 0
        return
    weighted = [
        t
        for inst in members
        for t in inst.tracks
        if t.effective_weight and t.key == "track_process"
    ]
    if weighted and not group.tracking_weight:
        ctx.notes.info(
            weighted[0].statement,
            f"keepalived keeps the weight of a tracked process on a member of {group.name} (it "
            "zeroes the others'): tracking_weight = true on the group gives the same in vrrpyd",
        )
        group.tracking_weight = True


def neutralise(ctx: Context, tracks: list[TrackEntry], name: str, *, owner: bool) -> None:
    """A member's (without ``sync_group_tracking_weight``) or an owner's weighted tracks,
    as keepalived treats them."""
    notes = ctx.notes
    scope = f"instance {name}"
    reason = (
        "the address owner (priority 255)"
        if owner
        else "a member of a sync group without sync_group_tracking_weight"
    )
    for track in list(tracks):
        weight = track.effective_weight
        if not weight:
            continue
        if track.key == "track_interface":
            if owner:
                what = "keepalived stops tracking it"
                tracks.remove(track)
            else:
                what = "keepalived uses weight 0 (FAULT while down)"
                track.weight = 0
            notes.info(
                track.statement, f"{track.name} weight {weight}: {name} is {reason}; {what}",
                scope=scope,
            )  # fmt: skip
        elif track.key == "track_script":
            notes.info(
                track.statement,
                f"{track.name} has weight {weight} and {name} is {reason}: keepalived ignores "
                "the track",
                scope=scope,
            )
            tracks.remove(track)
        elif track.key == "track_file":
            if weight == 1 and track.weight is None:
                notes.info(
                    track.statement,
                    f"{track.name}: {name} is {reason}; keepalived uses weight 0 for a file "
                    "with the default weight",
                    scope=scope,
                )
                track.weight = 0
            else:
                notes.info(
                    track.statement,
                    f"{track.name} has weight {weight} and {name} is {reason}: keepalived "
                    "ignores the track",
                    scope=scope,
                )
                tracks.remove(track)
        elif track.key == "track_process" and owner:
            notes.info(
                track.statement,
                f"{track.name} weight {weight}: priority 255 never moves, so the weight does "
                "nothing (not carried)",
                scope=scope,
            )
            tracks.remove(track)


def _dissolve(ctx: Context, group: SyncGroup, inst: Instance) -> None:
    """A group of one member works in keepalived; vrrpyd refuses it: fold it in."""
    ctx.notes.changed(
        group.statement,
        f"a sync group of one instance ({inst.name}): vrrpyd refuses it, so its tracks become "
        "the instance's" + (" and its notify scripts are not carried over" if group.notify else ""),
    )
    own = {(t.key, t.name) for t in inst.tracks}
    inst.tracks.extend(t for t in group.tracks if (t.key, t.name) not in own)
    inst.group = None


def _table(
    ctx: Context,
    g: GlobalDefs,
    group: SyncGroup,
    members: list[Instance],
    tables: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    table: dict[str, Any] = {
        "name": group.safe,
        "members": [tables[m.name]["name"] for m in members],
    }
    if group.tracking_weight:
        table["tracking_weight"] = True
    for key in TRACK_KEYS:
        entries = [t.entry() for t in group.tracks if t.key == key]
        if entries:
            table[key] = entries
    for key, (cmd, _) in group.notify.items():
        table[key] = cmd.line
    if group.notify_priority_changes is not None and (
        group.notify_priority_changes != g.notify_priority_changes
    ):
        ctx.notes.changed(
            group.statement,
            "notify_priority_changes per group: vrrpyd's [global] notify_priority_changes "
            "covers every instance",
        )
    return table


def tracked_ids(groups: list[SyncGroup], instances: list[Instance], kept: set[str]) -> set[int]:
    """The ids of the tracked objects a carried instance or an emitted group still tracks."""
    tracked = {id(t.obj) for inst in instances if inst.name in kept for t in inst.tracks}
    tracked.update(id(t.obj) for group in groups if group.emitted for t in group.tracks)
    return tracked
