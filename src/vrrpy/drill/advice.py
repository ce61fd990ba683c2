"""Which of the user's settings would shorten what the client just lived through.

Every piece of advice is computed from the user's own figures with the same
formulas as the predictions (:mod:`vrrpy.core.timers`), so it reads "this
setting, from this value to that one, brings this outage from about X to
about Y", and names what it costs. Advice is only given where a setting
changes the outcome: a drill that went as well as the protocol allows says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.drill.predict import InstanceModel, failing_priority

if TYPE_CHECKING:
    from vrrpy.drill.scenarios import Row

__all__ = ["advise"]

FAST = 0.1
"""The advert interval to suggest: 100 ms takes over in about 0.36 s and costs 10 adverts a
second per instance; below it, scheduling delays on a busy machine start to look like a
dead Master (docs/vrrpyd.md, "Keeping time on a busy machine")."""


def advise(row: Row, model: InstanceModel) -> list[str]:
    """Advice for one row of the table (possibly none)."""
    if row.verdict.startswith("skipped"):
        return [
            "no track_script: a dead service behind a live router keeps the address; "
            "track one (weight 0, or below the peer's priority) to move it"
        ]
    if not row.failed or not row.other:
        return []
    handler = {
        ("graceful", "fail"): _graceful,
        ("crash", "fail"): _silent,
        ("link", "fail"): _silent,
        ("track", "fail"): _track,
        ("split", "heal"): _heal,
        ("flood", "flood"): _flood,
    }.get((row.scenario, row.phase))
    if row.phase == "back":
        return _back(row, model)
    if row.scenario == "flood":
        return _flood(row, model)
    if handler is None or (row.expectation.takeover is None and row.scenario != "track"):
        return []
    return handler(row, model)


def _interval_advice(model: InstanceModel, other: str, what: str) -> list[str]:
    priority = model.priority(other)
    now = master_down_interval(priority, model.interval_cs, model.version)
    fast = master_down_interval(priority, round(FAST * 100), 3)
    if model.version == 2:
        return [
            f"VRRPv2 cannot advertise faster than 1 s: version 3 with advert_interval {FAST:g} "
            f"would bring the {what} from ~{now:.2f} s to ~{fast:.2f} s"
        ]
    if model.interval <= FAST:
        return []
    factor = model.interval / FAST
    return [
        f"advert_interval {model.interval:g} -> {FAST:g} would bring the {what} from "
        f"~{now:.2f} s to ~{fast:.2f} s ({factor:g}x the adverts; keep realtime_priority on)"
    ]


def _graceful(row: Row, model: InstanceModel) -> list[str]:
    other = row.other or "r2"
    priority = model.priority(other)
    skew = skew_time(priority, model.interval_cs, model.version)
    if skew < 0.1:
        return []
    better = skew_time(250, model.interval_cs, model.version)
    return [
        f"the Backup waits Skew_Time: priority {priority} -> 250 on {other} would bring it "
        f"from {skew:.3f} s to {better:.3f} s"
    ]


def _silent(row: Row, model: InstanceModel) -> list[str]:
    what = "crash outage" if row.scenario == "crash" else "link-failure outage"
    return _interval_advice(model, row.other or "r2", what)


def _track(row: Row, model: InstanceModel) -> list[str]:
    failed, other = row.failed or "r1", row.other or "r2"
    side, peer = model.sides[failed], model.sides[other]
    healthy, rival = model.priority(failed), model.priority(other)
    out: list[str] = []
    down = failing_priority(side)
    if down is not None and down >= rival:
        positive = any(t.weight > 0 for t in side.tracks)
        out.append(
            f"while the script fails {failed} is at {down}, still >= {other}'s {rival}: weight "
            f"-{healthy - rival + 10} (more than {healthy} - {rival}) or 0 (FAULT) would move "
            "the address"
            + (
                "; a positive weight, added on both routers while their scripts succeed, "
                "only takes back the bonus"
                if positive
                else ""
            )
        )
    if down is not None and not peer.preempt:
        out.append(
            f"{other} has preempt = false: only weight 0 (FAULT, a priority-0 resignation) "
            "moves the address when the script fails"
        )
    elif down is not None and down < rival:
        skew = skew_time(rival, model.interval_cs, model.version)
        mdi = master_down_interval(rival, model.interval_cs, model.version)
        out.append(
            f"weight 0 (FAULT: {failed} resigns with priority 0) would hand over Skew_Time "
            f"{skew:.3f} s after the script fails instead of Master_Down_Interval {mdi:.3f} s"
        )
    for name, timing in side.scripts.items():
        worst = timing.fall * timing.interval
        if worst > 1.0:
            faster = max(0.5, timing.interval / 2)
            out.append(
                f"{name}: fall {timing.fall} x interval {timing.interval:g} s = up to "
                f"{worst:g} s before vrrpyd believes it; fall 1 with interval {faster:g} s: "
                f"up to {faster:g} s"
            )
    return out


def _heal(row: Row, model: InstanceModel) -> list[str]:
    high = row.expectation.outage[1] or 0.0
    if (row.outage or 0.0) <= max(high, model.interval) + 0.1 and not row.still_out:
        return []
    out = []
    if not model.higher_prio_send_advert:
        out.append(
            "higher_prio_send_advert = true: the Master that yields first sends one last advert, "
            "so the better one hears it and re-announces the address"
        )
    if model.garp_refresh == 0:
        out.append(
            "garp_refresh = 10: a client left on the wrong MAC is put right within 10 s "
            "instead of when its neighbour entry goes stale"
        )
    return out


def _flood(row: Row, model: InstanceModel) -> list[str]:
    if model.unicast:
        return []
    if model.version == 3:
        return [
            "VRRPv3 has no authentication: a stranger's well-formed advert at priority 255 "
            "would win; unicast_peers closes the instance to strangers (dropped as not_a_peer)"
        ]
    if not model.auth:
        return [
            "no auth_pass: a stranger's well-formed advert at priority 255 would win; "
            "unicast_peers closes the instance to strangers"
        ]
    return []


def _back(row: Row, model: InstanceModel) -> list[str]:
    if row.expectation.takeover is None:
        return []
    failed = row.failed or "r1"
    side = model.sides[failed]
    if side.priority == 255:
        return []  # the owner takes its address back whatever preempt says
    out = [
        f"with preempt the address moves twice; preempt = false on both (keepalived's "
        f"nopreempt) leaves it on {row.other} until its own failure"
    ]
    if side.preempt_delay == 0:
        out.append("or preempt_delay (e.g. 30 s) lets a router that just came back settle first")
    return out
