"""keepalived's ``global_defs``, as far as vrrpyd has a use for it.

Two kinds of settings live there, and the difference matters. The gratuitous
ARP defaults (``vrrp_garp_master_*``, ``vrrp_min_garp``) are copied into an
instance when keepalived *starts reading* the instance (``alloc_vrrp``), so a
``global_defs`` after an instance does not reach it: :attr:`GlobalDefs.garp`
is what the next instance copies. Everything else (``vrrp_version``,
``vrrp_strict``, ``script_user``...) is read when keepalived completes the
configuration, wherever it stands. ``[global]`` keys go to
:attr:`GlobalDefs.table`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from vrrpy.keepalived.context import Context
from vrrpy.keepalived.model import Statement
from vrrpy.keepalived.values import Command, read_bool, read_int

__all__ = ["GlobalDefs", "garp_setting", "read_global_defs"]

UINT_MAX: Final = 2**32 - 1
_GARP_TARGETS: Final = {
    "garp_master_delay": "garp_delay",
    "garp_master_repeat": "garp_repeat",
    "garp_master_refresh": "garp_refresh",
    "garp_master_refresh_repeat": "garp_refresh_repeat",
}


@dataclass
class GlobalDefs:
    """``global_defs`` as read so far; ``garp`` is what the next instance copies."""

    garp: dict[str, int] = field(default_factory=dict)
    version: int = 2
    strict: bool = False
    strict_at: Statement | None = None
    higher_prio_send_advert: bool = False
    lower_prio_no_advert: bool = False
    garp_interval: dict[int, float] = field(default_factory=dict)
    script_user: tuple[str, str | None] | None = None
    notify_priority_changes: bool = False
    lvs_syncd: tuple[Statement, str, str, dict[str, Any]] | None = None
    table: dict[str, Any] = field(default_factory=dict)
    instances_seen: bool = False
    fifo_at: dict[str, Statement] = field(default_factory=dict)
    fifo_scripts: dict[str, tuple[str, Statement]] = field(default_factory=dict)

    def finish(self, ctx: Context) -> dict[str, Any]:
        """The ``[global]`` table, once the whole file has been read."""
        kept = "vrrp_notify_fifo" if "vrrp_notify_fifo" in self.fifo_at else "notify_fifo"
        for keyword, (line, st) in self.fifo_scripts.items():
            if keyword == f"{kept}_script" and kept in self.fifo_at:
                self.table["notify_fifo_script"] = line
            elif kept in self.fifo_at:
                ctx.notes.dropped(st, f"{keyword}: vrrpyd has one notify FIFO ({kept})")
            else:
                ctx.notes.info(st, f"{keyword} without its FIFO: keepalived starts nothing")
        if self.notify_priority_changes:
            self.table["notify_priority_changes"] = True
        return self.table

    def note_script_user(self, ctx: Context, st: Statement, cmd: Command, what: str) -> None:
        """Note a script that vrrpyd runs as its own user (root) where keepalived would not."""
        if cmd.user is not None:
            if cmd.user != "root" or cmd.group not in (None, "root"):
                who = cmd.user + (f":{cmd.group}" if cmd.group else "")
                ctx.notes.changed(
                    st, f"{what} runs as {who} in keepalived; vrrpyd runs it as its own user"
                )
            if cmd.ignored:
                ctx.notes.info(st, f"keepalived ignores the words {' '.join(cmd.ignored)}")
            return
        user = self.script_user
        if user is not None and (user[0] != "root" or user[1] not in (None, "root")):
            ctx.notes.changed(
                st,
                f"{what} runs as script_user {user[0]} in keepalived; vrrpyd runs it as its "
                "own user",
            )


def garp_setting(ctx: Context, st: Statement, keyword: str, into: dict[str, int]) -> None:
    """``garp_master_*`` (per instance, or ``vrrp_garp_master_*``) into vrrpyd's ``garp_*``."""
    target = _GARP_TARGETS[keyword]
    high = UINT_MAX // 1_000_000 if target == "garp_delay" else UINT_MAX
    value = ctx.int_arg(st, 0, high, unsigned=True)
    if value is None:
        return
    if target in ("garp_repeat", "garp_refresh_repeat") and value == 0:
        ctx.notes.info(st, f"{st.keyword} 0: keepalived uses 1")
        value = 1
    into[target] = value


def read_global_defs(ctx: Context, g: GlobalDefs, block: Statement) -> None:
    """One ``global_defs`` block (a file may hold several) into ``g``."""
    notes = ctx.notes
    for keyword, st in ctx.keywords("global_defs", block):
        if keyword == "vrrp_version":
            value = ctx.int_arg(st, 2, 3)
            if value is not None:
                g.version = value
        elif keyword.startswith("vrrp_garp_master_"):
            garp_setting(ctx, st, keyword.removeprefix("vrrp_"), g.garp)
            if g.instances_seen:
                notes.info(
                    st,
                    f"{keyword} applies only to the vrrp_instance blocks after it "
                    "(keepalived copies the global value when it starts reading an instance)",
                )
        elif keyword == "vrrp_min_garp":
            if read_bool(st) is True:
                for key, number in (("garp_repeat", 1), ("garp_delay", 0), ("garp_refresh", 0)):
                    g.garp.setdefault(key, number)
        elif keyword in ("vrrp_garp_interval", "vrrp_gna_interval"):
            family = 4 if keyword == "vrrp_garp_interval" else 6
            seconds = ctx.seconds_arg(st, 0.000001, UINT_MAX / 1e6)
            if seconds is not None:
                g.garp_interval[family] = seconds
                notes.changed(
                    st,
                    f"{keyword} {st.args[0]} becomes garp_interval of the IPv{family} "
                    "instances: keepalived spaces every gratuitous ARP / NA sent on an "
                    "interface, vrrpyd the ones of one instance's burst",
                )
        elif keyword == "vrrp_strict":
            g.strict, g.strict_at = True, st
        elif keyword == "vrrp_higher_prio_send_advert":
            flag = read_bool(st)
            if flag is not None:
                g.higher_prio_send_advert = flag
        elif keyword == "vrrp_lower_prio_no_advert":
            flag = read_bool(st)
            if flag is not None:
                g.lower_prio_no_advert = flag
            if flag:
                notes.dropped(
                    st,
                    "vrrp_lower_prio_no_advert: vrrpyd always answers a lower priority "
                    "claiming Master with an advert and its announcements",
                )
        elif keyword == "vrrp_rt_priority":
            _rt_priority(ctx, g, st)
        elif keyword == "vrrp_no_swap":
            g.table["lock_memory"] = True
        elif keyword == "vrrp_rlimit_rttime":
            _rlimit(ctx, g, st)
        elif keyword == "script_user":
            user = ctx.arg(st)
            if user is not None:
                g.script_user = (user, st.args[1] if len(st.args) > 1 else None)
        elif keyword in ("notify_fifo", "vrrp_notify_fifo"):
            _fifo(ctx, g, st, keyword)
        elif keyword in ("notify_fifo_script", "vrrp_notify_fifo_script"):
            cmd = ctx.command(st)
            if cmd is None or keyword in g.fifo_scripts:
                continue
            g.fifo_scripts[keyword] = (cmd.line, st)
            g.note_script_user(ctx, st, cmd, "the FIFO script")
        elif keyword == "vrrp_notify_priority_changes":
            flag = read_bool(st)
            if flag is not None:
                g.notify_priority_changes = flag
        elif keyword == "lvs_sync_daemon":
            _lvs_syncd(ctx, g, st)
        elif keyword == "dynamic_interfaces":
            notes.changed(
                st,
                "dynamic_interfaces: vrrpyd needs each instance's interface to exist when "
                "the instance starts (tracked interfaces may come and go)",
            )
        elif keyword in ("vmac_prefix", "vmac_addr_prefix"):
            notes.changed(st, f"{keyword}: vrrpyd names its VMACs vrrp4.VRID / vrrp6.VRID")


def _rt_priority(ctx: Context, g: GlobalDefs, st: Statement) -> None:
    value = ctx.int_arg(st, -(2**31), 2**31 - 1)
    if value is None:
        return
    priority = min(max(value, 1), 99)
    if priority < 2:
        ctx.notes.changed(
            st,
            "vrrp_rt_priority 1 becomes realtime_priority 2: vrrpyd's worker threads run one "
            "below its loop",
        )
        priority = 2
    g.table["realtime_priority"] = priority


def _rlimit(ctx: Context, g: GlobalDefs, st: Statement) -> None:
    limit = ctx.int_arg(st, 1, UINT_MAX, unsigned=True)
    if limit is None:
        return
    if limit < 10_000:
        ctx.notes.changed(
            st,
            f"vrrp_rlimit_rttime {limit} becomes rlimit_rttime 10000: vrrpyd needs at least "
            "10 ms of CPU between two sleeps",
        )
        limit = 10_000
    g.table["rlimit_rttime"] = min(limit, 60_000_000)


def _fifo(ctx: Context, g: GlobalDefs, st: Statement, keyword: str) -> None:
    """``notify_fifo`` / ``vrrp_notify_fifo PATH [USER [GROUP]]``: vrrpyd has one FIFO."""
    notes = ctx.notes
    path = ctx.arg(st)
    if path is None:
        return
    if keyword in g.fifo_at:
        notes.info(st, f"{keyword} is set twice: keepalived keeps the first")
        return
    g.fifo_at[keyword] = st
    kept = "vrrpyd has one notify FIFO: vrrp_notify_fifo is kept, not this one"
    if keyword == "notify_fifo" and "vrrp_notify_fifo" in g.fifo_at:
        notes.dropped(st, kept)
        return
    if keyword == "vrrp_notify_fifo" and "notify_fifo" in g.fifo_at:
        notes.dropped(g.fifo_at["notify_fifo"], kept)
    g.table["notify_fifo"] = path
    if keyword == "notify_fifo" and any(
        other.keyword == "virtual_server" for other in ctx.config.statements
    ):
        notes.changed(
            st,
            "notify_fifo: vrrpyd writes the VRRP lines (INSTANCE, GROUP) only; keepalived's "
            "global FIFO also gets the checker's (VS, RS)",
        )
    if len(st.args) > 1:
        notes.changed(
            st,
            f"{keyword}: the FIFO's user and group ({' '.join(st.args[1:])}) are not carried "
            "over: vrrpyd creates it owned by its own user",
        )


def _lvs_syncd(ctx: Context, g: GlobalDefs, st: Statement) -> None:
    """``lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]``."""
    if len(st.args) < 2:
        ctx.notes.info(st, "lvs_sync_daemon needs an interface and an instance: ignored")
        return
    options: dict[str, Any] = {}
    words = list(st.args[2:])
    while words:
        word = words.pop(0)
        if word == "inst":  # an older spelling keepalived still accepts
            continue
        if not words:
            ctx.notes.info(st, f"lvs_sync_daemon: {word} without a value: ignored")
            break
        value = words.pop(0)
        if word in ("id", "maxlen", "port", "ttl"):
            parsed = read_int(value, 0, 65535, unsigned=True)
            if parsed.value is None:
                ctx.notes.info(st, f"lvs_sync_daemon {word}: {parsed.why}")
                continue
            options["syncid" if word == "id" else word] = int(parsed.value)
        elif word == "group":
            options["group"] = value
        else:
            ctx.notes.info(st, f"lvs_sync_daemon: unknown option {word}: ignored")
    g.lvs_syncd = (st, st.args[0], st.args[1], options)
