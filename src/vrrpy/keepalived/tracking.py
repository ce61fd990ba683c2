"""Tracked objects (``vrrp_script``, ``track_file``, ``vrrp_track_process``) and track entries.

keepalived looks a tracked object up *while it reads* an instance's (or a
group's) ``track_script { NAME }`` line, so an object defined further down the
file is not found and the entry is ignored (the include fixture's comment:
"vrrp_script must come before the instances that track it"). The registry
here is filled in file order, and :meth:`Tracking.entries` looks names up in
what has been read so far.

vrrpyd refuses an object nothing tracks; keepalived removes an unused script
and watches an unused file for nothing, so unused objects are left out with
a note (:meth:`Tracking.emit`).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from typing import Any, Final

from vrrpy.keepalived.context import Context
from vrrpy.keepalived.globaldefs import UINT_MAX, GlobalDefs
from vrrpy.keepalived.model import Statement
from vrrpy.keepalived.values import Command, read_int

__all__ = ["KINDS", "TrackEntry", "TrackedObject", "Tracking"]

KINDS: Final = ("track_script", "track_file", "track_process")
"""The track keys that name objects (``track_interface`` names an interface)."""
TRACK_KEYS: Final = ("track_interface", *KINDS)
_DEFINERS: Final = {
    "track_script": ("vrrp_script",),
    "track_file": ("track_file", "vrrp_track_file"),
    "track_process": ("vrrp_track_process",),
}


@dataclass
class TrackedObject:
    """A ``vrrp_script`` / ``track_file`` / ``vrrp_track_process`` and its vrrpyd table."""

    key: str  # "track_script", "track_file", "track_process"
    name: str  # keepalived's
    table: dict[str, Any]
    weight: int
    reverse: bool
    statement: Statement


@dataclass
class TrackEntry:
    """One entry of a ``track_*`` block of an instance or a sync group."""

    key: str
    name: str  # the interface, or the object's vrrpyd name
    weight: int | None  # None: the object's own
    reverse: bool | None
    statement: Statement
    obj: TrackedObject | None = None

    @property
    def effective_weight(self) -> int:
        if self.weight is not None:
            return self.weight
        return self.obj.weight if self.obj is not None else 0

    def entry(self) -> str | dict[str, Any]:
        """The vrrpyd array entry: the name, or ``{ name, weight, reverse }``."""
        if self.weight is None and self.reverse is None:
            return self.name
        out: dict[str, Any] = {"name": self.name}
        if self.weight is not None:
            out["weight"] = self.weight
        if self.reverse is not None:
            out["reverse"] = self.reverse
        return out


class Tracking:
    """The tracked objects read so far, by kind and keepalived name."""

    def __init__(self, ctx: Context, g: GlobalDefs) -> None:
        self.ctx = ctx
        self.g = g
        self.objects: dict[str, dict[str, TrackedObject]] = {key: {} for key in KINDS}
        self.defined: dict[str, set[str]] = {key: set() for key in KINDS}
        for statement in ctx.config.statements:
            for key, definers in _DEFINERS.items():
                if statement.keyword in definers and len(statement.args) == 1:
                    self.defined[key].add(statement.args[0])

    # -- definitions ---------------------------------------------------------------------

    def _name(self, key: str, block: Statement) -> str | None:
        if len(block.args) != 1:
            self.ctx.notes.info(
                block, f"{block.keyword} needs exactly one name: keepalived skips the block"
            )
            return None
        name = block.args[0]
        if name in self.objects[key]:
            self.ctx.notes.info(
                block, f"{block.keyword} {name} is defined twice: keepalived uses the first"
            )
            return None
        return name

    def _open(self, key: str, keyword: str, block: Statement) -> tuple[str, dict[str, Any]] | None:
        """The start of reading one object: its name (None: skipped, with a note), the notes'
        scope set to it, and its table with the name vrrpyd will use."""
        name = self._name(key, block)
        if name is None:
            return None
        self.ctx.notes.scope = f"{keyword} {name}"
        return name, {"name": self.ctx.object_name(name, block)}

    def _add(self, obj: TrackedObject) -> None:
        self.objects[obj.key][obj.name] = obj

    def read_script(self, block: Statement) -> None:
        """``vrrp_script NAME { script interval timeout weight rise fall user init_fail }``."""
        ctx, notes = self.ctx, self.ctx.notes
        opened = self._open("track_script", "vrrp_script", block)
        if opened is None:
            return
        name, table = opened
        weight, reverse, user_set = 0, False, False
        for keyword, st in ctx.keywords("vrrp_script", block):
            if keyword == "script":
                cmd = ctx.command(st)
                if cmd is not None:
                    if cmd.ignored:
                        notes.info(
                            st,
                            "keepalived ignores the words after the command "
                            f"({' '.join(cmd.ignored)}): quote the whole command line",
                        )
                    table["script"] = self._absolute(st, cmd)
            elif keyword in ("interval", "timeout"):
                seconds = ctx.int_arg(st, 0, UINT_MAX // 1_000_000, unsigned=True)
                if seconds is not None:
                    if seconds == 0:
                        notes.info(st, f"{keyword} 0: keepalived uses 1")
                    table[keyword] = max(seconds, 1)
            elif keyword == "weight":
                value = ctx.int_arg(st, -253, 253)
                if value is not None:
                    weight = table["weight"] = value
                if len(st.args) > 1:
                    if st.args[1] == "reverse":
                        reverse = table["reverse"] = True
                    else:
                        notes.info(st, f"unknown weight option {st.args[1]}: ignored")
            elif keyword in ("rise", "fall"):
                count = ctx.int_arg(st, 1, 2**31 - 1, unsigned=True)
                table[keyword] = count if count is not None else 1
            elif keyword == "user":
                user = ctx.arg(st)
                if user is not None:
                    table["user"] = user
                    if len(st.args) > 1:
                        table["group"] = st.args[1]
                    user_set = True
            elif keyword == "init_fail":
                table["init_fail"] = True
        notes.scope = None
        if "script" not in table:
            notes.info(block, "no script: keepalived removes this vrrp_script", scope="")
            return
        if not user_set and self.g.script_user is not None:
            user, group = self.g.script_user
            table["user"] = user
            if group is not None:
                table["group"] = group
        self._add(TrackedObject("track_script", name, table, weight, reverse, block))

    def _absolute(self, st: Statement, cmd: Command) -> str:
        """vrrpyd runs a check by its absolute path; keepalived searches PATH."""
        program = cmd.argv[0]
        if program.startswith("/"):
            return cmd.line
        found = shutil.which(program, path=os.defpath + ":/usr/local/sbin:/usr/sbin:/sbin")
        if found is None:
            self.ctx.notes.changed(
                st,
                f"{program} is not an absolute path and is not found here: vrrpyd runs a "
                "check by its absolute path (keepalived searches PATH); write it in full",
            )
            return cmd.line
        self.ctx.notes.changed(
            st,
            f"{program} is {found} here: vrrpyd runs a check by its absolute path "
            "(keepalived searches its PATH); check it is the same program on the router",
        )
        return shlex.join((found, *cmd.argv[1:]))

    def read_file(self, block: Statement) -> None:
        """``track_file NAME { file PATH  weight N [reverse]  init_file ... }``."""
        ctx, notes = self.ctx, self.ctx.notes
        opened = self._open("track_file", "track_file", block)
        if opened is None:
            return
        name, table = opened
        weight, reverse, weight_set = 1, False, False
        for keyword, st in ctx.keywords("track_file", block):
            if keyword == "file":
                path = ctx.arg(st)
                if path is not None:
                    table["file"] = path
            elif keyword == "weight":
                if weight_set:
                    notes.info(st, "weight set twice: keepalived keeps the first")
                    continue
                value = ctx.int_arg(st, -254, 254)
                weight = value if value is not None else 1
                weight_set = True
                if abs(weight) == 254:
                    notes.changed(
                        st,
                        f"weight {weight}: vrrpyd takes -253..253, so {253 if weight > 0 else -253}"
                        " (a file's value times -254 means FAULT in keepalived)",
                    )
                    weight = 253 if weight > 0 else -253
                table["weight"] = weight
                if len(st.args) > 1:
                    if st.args[1] == "reverse":
                        reverse = table["reverse"] = True
                    else:
                        notes.info(st, f"unknown weight option {st.args[1]}: ignored")
        notes.scope = None
        if "file" not in table:
            notes.info(block, "no file: keepalived removes this track_file", scope="")
            return
        self._add(TrackedObject("track_file", name, table, weight, reverse, block))

    def read_process(self, block: Statement) -> None:
        """``vrrp_track_process NAME { process NAME [PARAMS]  param_match  weight ... }``."""
        ctx, notes = self.ctx, self.ctx.notes
        opened = self._open("track_process", "vrrp_track_process", block)
        if opened is None:
            return
        name, table = opened
        weight, reverse = 0, False
        for keyword, st in ctx.keywords("vrrp_track_process", block):
            if keyword == "process":
                if "process" in table:
                    notes.info(st, "process set twice: keepalived keeps the first")
                    continue
                process = ctx.arg(st)
                if process is not None:
                    table["process"] = process
                    if len(st.args) > 1:
                        table["params"] = list(st.args[1:])
                        table.setdefault("param_match", "exact")
                        table["full_command"] = True
            elif keyword == "param_match":
                word = st.args[0] if st.args else "exact"
                if word not in ("initial", "partial", "exact"):
                    notes.info(st, f"param_match {word}: keepalived ignores it")
                    continue
                table["param_match"] = word
                table["full_command"] = True
            elif keyword == "weight":
                value = ctx.int_arg(st, -254, 254)
                if value is None:
                    continue
                weight = max(min(value, 253), -253)
                if weight != value:
                    notes.info(st, f"weight {value}: vrrpyd takes -253..253")
                table["weight"] = weight
                if len(st.args) > 1:
                    if st.args[1] == "reverse":
                        reverse = table["reverse"] = True
                    else:
                        notes.info(st, f"unknown weight option {st.args[1]}: ignored")
            elif keyword in ("quorum", "quorum_max"):
                low = 0 if keyword == "quorum_max" else 1
                count = ctx.int_arg(st, low, 65535, unsigned=True)
                if count is not None:
                    table[keyword] = count
                    if keyword == "quorum_max" and count == 0:
                        table["quorum"] = 0
            elif keyword == "full_command":
                table["full_command"] = True
        notes.scope = None
        if "process" not in table:
            notes.info(block, "no process: keepalived removes this vrrp_track_process", scope="")
            return
        self._add(TrackedObject("track_process", name, table, weight, reverse, block))

    # -- the entries of a track_* block --------------------------------------------------

    def entries(self, into: list[TrackEntry], key: str, block: Statement) -> None:
        """The entries of a ``track_*`` block: ``NAME [weight N [reverse|noreverse]]``."""
        notes = self.ctx.notes
        seen = {(t.key, t.name) for t in into}
        for line in block.block or ():
            name = line.keyword
            obj: TrackedObject | None = None
            if key == "track_interface":
                if len(name.encode()) >= 16:
                    notes.info(line, f"{name} is not an interface name: ignored")
                    continue
                target = name
            else:
                found = self.objects[key].get(name)
                if found is None:
                    definer = _DEFINERS[key][0]
                    why = (
                        "defined after this block; keepalived looks the name up as it reads "
                        "the line, so it ignores this entry (define it earlier)"
                        if name in self.defined[key]
                        else f"no such {definer}: keepalived ignores the entry"
                    )
                    notes.info(line, f"{key} {name}: {why}")
                    continue
                obj, target = found, str(found.table["name"])
            if (key, target) in seen:
                notes.info(line, f"{name} is tracked twice: keepalived ignores the second")
                continue
            parsed = self._weight(key, line)
            if parsed is None:
                continue
            weight, reverse = parsed
            seen.add((key, target))
            into.append(TrackEntry(key, target, weight, reverse, line, obj))

    def _weight(self, key: str, line: Statement) -> tuple[int | None, bool | None] | None:
        """(weight, reverse) of an entry (None: the object's own); None: entry ignored."""
        notes, name, args = self.ctx.notes, line.keyword, line.args
        if not args:
            return None, None
        if args[0] != "weight" or len(args) < 2:
            notes.info(line, f"{name}: {' '.join(args)}: keepalived ignores the entry")
            return None
        parsed = read_int(args[1], -254, 254)
        if parsed.why:
            notes.info(line, f"{name} weight: {parsed.why}")
        weight: int | None
        if parsed.value is None:  # keepalived: the object's own; 0 for an interface
            weight = None if key != "track_interface" else 0
        else:
            weight = int(parsed.value)
            if abs(weight) == 254:
                notes.info(line, f"weight {weight}: keepalived uses {253 if weight > 0 else -253}")
                weight = 253 if weight > 0 else -253
        reverse: bool | None = None
        if len(args) > 2:
            if args[2] == "reverse":
                reverse = True
            elif args[2] == "noreverse" and key != "track_interface":
                reverse = False
            else:
                notes.info(line, f"{name}: unknown weight option {args[2]}: ignored")
        return weight, reverse

    # -- the document --------------------------------------------------------------------

    def emit(self, document: dict[str, Any], tracked: set[int]) -> None:
        """The ``[[track_*]]`` tables of the objects still tracked (``tracked``: their ids)."""
        for key in KINDS:
            tables = []
            for obj in self.objects[key].values():
                if id(obj) in tracked:
                    tables.append(obj.table)
                    continue
                definer = _DEFINERS[key][0]
                fate = "removes it" if key == "track_script" else "watches it for nothing"
                self.ctx.notes.info(
                    obj.statement,
                    f"{definer} {obj.name} is tracked by nothing: keepalived {fate}; not carried "
                    "over (vrrpyd refuses an unused one)",
                    scope="",
                )
            if tables:
                document[key] = tables
