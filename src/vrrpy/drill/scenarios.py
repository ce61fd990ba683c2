"""The drill itself: the classic failures, one after the other, each measured as the
client lived it and set beside its prediction.

One lab serves every scenario: the routers are brought back to a steady state
between two (one Master per instance, every probe answered), so the drill
costs one election at the start and one recovery per scenario. A scenario
acts on whichever router is Master of the first instance drilled (with
``preempt = false`` the roles may have swapped by then), and is measured in
two windows: from the failure until the address is served again, and from the
failed router's return until the pair is steady again (with preempt, the
address moves back: a second switch the client also lives through).

Waits are bounded by the predictions plus a margin, so a pair that misbehaves
costs seconds, not minutes, and says so in its row.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, Final

from vrrpy.drill.advice import advise
from vrrpy.drill.flood import FLOOD_SCRIPT, forged_adverts
from vrrpy.drill.lab import DrillLab
from vrrpy.drill.measure import (
    adverts,
    largest_gap,
    last_before,
    neighbour_moves,
    probe_summary,
)
from vrrpy.drill.plan import ATTACKER, HOSTS, ROUTERS, DrillPlan
from vrrpy.drill.predict import Expectation, InstanceModel, expect, tracks_scripts
from vrrpy.drill.watch import NEIGH_SCRIPT, PROBE_SCRIPT, SNIFF_SCRIPT, Watcher

__all__ = ["SCENARIOS", "Drill", "Row", "Target"]

SCENARIOS: Final[Mapping[str, str]] = {
    "graceful": "planned switchover",
    "crash": "crash",
    "link": "link failure",
    "track": "tracked script fails",
    "split": "split brain",
    "flood": "bad-advert flood",
}
"""Scenario key -> its name in the table, in the order they run."""

VMAC_NOTE: Final = (
    "with use_vmac, a Backup's macvlan sends IGMP/MLD reports from the virtual MAC (as "
    "keepalived's does), and a learning switch then sends the client's frames to the Backup "
    "until the Master's next frame: seen in the lab as about an advert interval lost per report"
)
"""Why a VMAC instance may lose more than predicted (seen in this lab)."""

QUIET: Final = 0.3
"""Seconds of answered probes that make the client's view steady."""


@dataclass(frozen=True)
class Target:
    """The address the client probes for one instance."""

    instance: str
    index: int
    address: str
    scope: str
    link: int
    vrid: int
    family: int
    all_addresses: tuple[str, ...]


@dataclass
class Row:
    """One line of the table: one instance through one phase of one scenario."""

    scenario: str
    phase: str
    label: str
    instance: str
    failed: str | None
    other: str | None
    expectation: Expectation
    outage: float | None = None
    still_out: bool = False
    lost: int = 0
    probes: int = 0
    moved: tuple[float, str] | None = None
    exact: float | None = None
    takeover: float | None = None
    verdict: str = ""
    advice: list[str] = field(default_factory=list)
    detail: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        low, high = self.expectation.outage
        return {
            "scenario": self.scenario,
            "phase": self.phase,
            "label": self.label.strip(),
            "instance": self.instance,
            "failed": self.failed,
            "other": self.other,
            "outage_s": self.outage,
            "still_out": self.still_out,
            "probes": self.probes,
            "lost": self.lost,
            "neighbour_moved_s": self.moved[0] if self.moved else None,
            "neighbour_moved_to": self.moved[1] if self.moved else None,
            "takeover_on_wire_s": self.takeover,
            "predicted_outage_s": [low, high],
            "predicted_takeover_s": list(self.expectation.takeover)
            if self.expectation.takeover
            else None,
            "predicted_from_last_advert_s": self.exact,
            "basis": self.expectation.basis,
            "verdict": self.verdict,
            "advice": self.advice,
            "detail": self.detail,
        }


class Drill:
    """Runs scenarios on a built :class:`DrillLab` and collects :class:`Row` s."""

    def __init__(
        self,
        plan: DrillPlan,
        lab: DrillLab,
        models: Mapping[str, InstanceModel],
        say: Callable[[str], None] = print,
    ) -> None:
        self.plan = plan
        self.lab = lab
        self.models = models
        self.say = say
        self.targets = self._targets()
        intervals = [m.interval for m in models.values()]
        self.interval = max(intervals)
        self.period = min(0.01, max(0.002, min(intervals) / 20))
        self.margin = max(1.0, 2 * self.interval)
        self.probes: Watcher | None = None
        self.neigh: Watcher | None = None
        self.sniff: Watcher | None = None

    # ----------------------------------------------------------------- set-up

    def _targets(self) -> list[Target]:
        targets = []
        for index, name in enumerate(self.plan.instances):
            table = next(t for t in self.plan.routers["r1"].instances if t["name"] == name)
            addresses = [str(a).split("/")[0] for a in table["virtual_addresses"]]
            chosen = next((a for a in addresses if not ip_address(a).is_link_local), addresses[0])
            link = self.plan.link_of(name)
            family = ip_address(chosen).version
            scope = link.lab if ip_address(chosen).is_link_local else ""
            targets.append(
                Target(
                    name, index, chosen, scope, link.index, table["vrid"], family, tuple(addresses)
                )
            )
        return targets

    def start(self) -> float:
        """Watchers, both routers, the first election, then the probes; returns seconds."""
        began = time.monotonic()
        lab = self.lab
        log = lab.workdir / "watchers.log"
        vips = [t.address for t in self.targets]
        self.neigh = Watcher(lab.client, NEIGH_SCRIPT, [json.dumps(vips)], log)
        sniff = {"vips": vips, "drop_mac": lab.mac(ATTACKER, 0)}
        self.sniff = Watcher(lab.client, SNIFF_SCRIPT, [json.dumps(sniff)], log)
        for router in ROUTERS:
            lab.start(router)
        expected = self.expected_masters()
        bound = max(
            m.mdi(r) + m.sides[r].preempt_delay for m in self.models.values() for r in ROUTERS
        )
        if not self.wait_masters(expected, bound + self.margin + 2):
            raise RuntimeError(
                f"no election within {bound + self.margin + 2:.1f} s: {self.states()}"
            )
        probe_targets = [{"addr": t.address, "scope": t.scope} for t in self.targets]
        self.probes = Watcher(
            lab.client, PROBE_SCRIPT, [json.dumps(probe_targets), str(self.period)], log
        )
        self.settle(expected, 5 + self.margin)
        return time.monotonic() - began

    def stop(self) -> None:
        for watcher in (self.probes, self.neigh, self.sniff):
            if watcher is not None:
                watcher.stop()

    # ------------------------------------------------------------------ state

    def expected_masters(self) -> dict[str, str]:
        """Who should be Master of each instance when both routers are healthy."""
        out = {}
        for name, model in self.models.items():
            out[name] = "r1" if model.priority("r1") > model.priority("r2") else "r2"
        return out

    def states(self) -> dict[str, dict[str, str]]:
        return {name: {r: self.lab.state(r, name) for r in ROUTERS} for name in self.plan.instances}

    def masters(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for name, states in self.states().items():
            holding = [r for r, s in states.items() if s == "MASTER"]
            out[name] = holding[0] if len(holding) == 1 else None
        return out

    def wait_masters(self, expected: Mapping[str, str], timeout: float) -> bool:
        def steady() -> bool:
            states = self.states()
            return all(
                states[name][router] == "MASTER"
                and states[name][_other(router)] in ("BACKUP", "FAULT", "DOWN")
                for name, router in expected.items()
            )

        return _wait(steady, timeout)

    def answered_lately(
        self, targets: Iterable[Target], span: float = QUIET, since: float = 0.0
    ) -> bool:
        """Every probe to ``targets`` sent in the last ``span`` seconds, and after ``since``,
        was answered (a probe's answer may still be on its way for its first 50 ms, so
        those are not judged yet: a loss that just began is not mistaken for health)."""
        assert self.probes is not None
        records = self.probes.snapshot()
        now = time.time()
        if now - span - 0.05 < since:
            return False
        for target in targets:
            summary = probe_summary(records, target.index, now - span - 0.05, now)
            if summary.probes == 0 or summary.lost:
                return False
        return True

    def settle(self, expected: Mapping[str, str], timeout: float) -> bool:
        """Wait until ``expected`` holds and the client has been answered for a while."""
        deadline = time.monotonic() + timeout
        if not self.wait_masters(expected, timeout):
            return False
        since = time.time()
        return _wait(
            lambda: self.answered_lately(self.targets, since=since),
            max(1.0, deadline - time.monotonic()),
        )

    # ---------------------------------------------------------------- running

    def run(self, scenarios: Iterable[str]) -> list[Row]:
        rows: list[Row] = []
        for key in scenarios:
            began = time.monotonic()
            self.say(f"[drill] {SCENARIOS[key]} ...")
            try:
                made = getattr(self, f"_{key}")()
            except Exception as exc:  # the drill goes on; the row says what broke
                made = [self._broken(key, exc)]
                self.lab.restore()
            for row in made:
                if not row.advice:
                    row.advice = advise(row, self.models[row.instance]) if row.instance else []
            rows.extend(made)
            self.say(f"[drill] {SCENARIOS[key]}: {time.monotonic() - began:.1f} s")
            self.settle(self.expected_now(), 2 * self.margin + self.interval * 4)
        return rows

    def expected_now(self) -> dict[str, str]:
        masters = self.masters()
        expected = self.expected_masters()
        return {name: masters.get(name) or expected[name] for name in self.plan.instances}

    def _broken(self, key: str, exc: Exception) -> Row:
        row = Row(key, "fail", SCENARIOS[key], "", None, None, Expectation((0, 0), None, ""))
        row.verdict = f"not run: {exc}"
        return row

    def primary_master(self) -> str:
        masters = self.masters()
        first = masters.get(self.plan.instances[0])
        return first or "r1"

    # Each scenario: act, wait for what the prediction says, undo, wait again.

    def _graceful(self) -> list[Row]:
        failed = self.primary_master()
        return self._fail_and_back(
            "graceful",
            failed,
            lambda: self.lab.stop(failed),
            lambda: self.lab.start(failed),
        )

    def _crash(self) -> list[Row]:
        failed = self.primary_master()
        return self._fail_and_back(
            "crash",
            failed,
            lambda: self.lab.crash(failed),
            lambda: self.lab.reboot(failed),
        )

    def _link(self) -> list[Row]:
        failed = self.primary_master()
        return self._fail_and_back(
            "link",
            failed,
            lambda: self.lab.set_links(failed, False),
            lambda: self.lab.set_links(failed, True),
        )

    def _track(self) -> list[Row]:
        failed = self.primary_master()
        masters = self.masters()
        mine = [n for n in self.plan.instances if masters.get(n) == failed]
        if not any(tracks_scripts(self.models[n], failed) for n in mine):
            rows = []
            for name in self.plan.instances:
                row = Row(
                    "track",
                    "fail",
                    SCENARIOS["track"],
                    name,
                    failed,
                    _other(failed),
                    Expectation(
                        (0, None),
                        None,
                        "no track_script: a dead service behind a live router is not seen",
                    ),
                )
                row.verdict = "skipped (no script)"
                rows.append(row)
            return rows
        addresses = [a for t in self.targets if t.instance in mine for a in t.all_addresses]
        return self._fail_and_back(
            "track",
            failed,
            lambda: self.lab.service(failed, True, addresses),
            lambda: self.lab.service(failed, False, addresses),
        )

    def _fail_and_back(
        self,
        scenario: str,
        failed: str,
        act: Callable[[], float | None],
        undo: Callable[[], object],
    ) -> list[Row]:
        """``act`` fails ``failed`` (returning the instant it took effect, if not at once);
        ``undo`` brings it back."""
        other = _other(failed)
        before = self.masters()
        affected = [n for n in self.plan.instances if before.get(n) == failed]
        fail = {
            n: expect(scenario, "fail", self.models[n], failed, other)
            if n in affected
            else Expectation((0, 0), None, f"its Master is {before.get(n)}: not affected")
            for n in self.plan.instances
        }
        t0 = time.time()
        t0 = act() or t0
        moving = {n: other for n, e in fail.items() if e.takeover is not None}
        staying = [e.outage[0] for e in fail.values() if e.takeover is None and e.outage[1] is None]
        bound = max(
            [e.takeover[1] for e in fail.values() if e.takeover is not None] + staying + [0.0]
        )
        if moving:
            self.wait_masters(moving, bound + self.margin)
        if staying:
            _wait(lambda: False, max(0.0, t0 + max(staying) + self.margin - time.time()))
        self._client_back([t for t in self.targets if t.instance in moving], 2 + self.interval)
        t1 = time.time()
        undo()
        t_back = time.time()
        back = {
            n: expect(scenario, "back", self.models[n], failed, other)
            for n in affected
            if fail[n].takeover is not None
        }
        now = self.masters()
        wanted = {
            n: failed if back.get(n) and back[n].takeover is not None else (now.get(n) or other)
            for n in self.plan.instances
        }
        bound = max([e.takeover[1] for e in back.values() if e.takeover is not None] + [0.0])
        self.wait_masters(wanted, bound + self.margin)
        self._client_back(self.targets, 2 + self.interval)
        t2 = time.time()
        rows = [self._row(scenario, "fail", n, failed, other, fail[n], t0, t1) for n in fail]
        rows += [
            self._row(scenario, "back", n, failed, other, back[n], t1, t2, t_back) for n in back
        ]
        return rows

    def _split(self) -> list[Row]:
        before = self.masters()
        roles = {n: (m or "r1", _other(m or "r1")) for n, m in before.items()}
        split = {n: expect("split", "fail", self.models[n], *roles[n]) for n in roles}
        self.lab.cut(True)
        t0 = time.time()
        both = lambda: all(  # noqa: E731
            set(s.values()) == {"MASTER"} for s in self.states().values()
        )
        bound = max(e.takeover[1] for e in split.values() if e.takeover is not None)
        _wait(both, bound + self.margin)
        # A partition lasts: hold it two intervals, so that the new Master's adverts are on
        # their beat (vrrpyd sends on the interval's beat; a Master younger than half an
        # interval has not joined it yet, and a heal in that instant is the unlucky one).
        time.sleep(max(0.5, 2 * self.interval))
        self._client_back(self.targets, 1 + self.interval)
        t1 = time.time()
        self.lab.cut(False)
        # The heal is an election: the better priority wins, whoever was Master before.
        wanted = self.expected_masters()
        healed = {n: (wanted[n], _other(wanted[n])) for n in roles}
        heal = {n: expect("heal", "fail", self.models[n], *healed[n]) for n in roles}
        self.wait_masters(wanted, 2 * self.interval + self.margin)
        recovered = self._client_back(self.targets, max(3.0, 3 * self.interval))
        t2 = time.time()
        rows = [self._row("split", "split", n, *roles[n], split[n], t0, t1) for n in roles]
        rows += [self._row("split", "heal", n, *healed[n], heal[n], t1, t2) for n in roles]
        if not recovered:
            stuck = [t for t in self.targets if not self.answered_lately([t], since=t1)]
            self.lab.flush_neighbours(t.address for t in stuck)
            for row in rows[len(roles) :]:
                if any(t.instance == row.instance for t in stuck):
                    row.detail.append(
                        f"the client was still out {t2 - t1:.1f} s after the heal; the drill "
                        "flushed its neighbour entry (it would have waited for the entry to "
                        "go stale, 15-45 s)"
                    )
        return rows

    def _flood(self) -> list[Row]:
        lab = self.lab
        before = self.masters()
        packets = []
        defects: dict[str, list[str]] = {}
        for target in self.targets:
            model = self.models[target.instance]
            link = self.plan.links[target.link]
            host = HOSTS[ATTACKER]
            source = (
                link.address(host, 4)
                if target.family == 4
                else lab.addressing.link_local[(link.index, host)]
            )
            peers = (
                [lab.addressing.peer(link, HOSTS[r], target.family) for r in ROUTERS]
                if model.unicast
                else []
            )
            table = next(
                t for t in self.plan.routers["r1"].instances if t["name"] == target.instance
            )
            forged = forged_adverts(
                version=model.version,
                vrid=target.vrid,
                interval_cs=model.interval_cs,
                addresses=[ip_address(a) for a in target.all_addresses],
                source=source,
                interface=link.lab,
                auth_pass=str(table.get("auth_pass", "")),
                peers=peers,
            )
            packets += forged
            defects[target.instance] = sorted({p.defect for p in forged})
        counters = {(r, n): lab.counters(r, n) for r in ROUTERS for n in self.plan.instances}
        duration = min(10.0, max(3.0, 2 * self.interval))
        t0 = time.time()
        proc = lab.attacker.popen(
            [
                sys.executable,
                "-c",
                FLOOD_SCRIPT,
                json.dumps([p.to_json() for p in packets]),
                "10000",
                str(duration),
            ],
            stdout=subprocess.PIPE,
        )
        out, _ = proc.communicate(timeout=duration + 30)
        time.sleep(min(1.0, self.interval))
        t1 = time.time()
        done = [json.loads(line) for line in out.decode().splitlines() if '"done"' in line]
        sent = int(done[0]["sent"]) if done else 0
        seconds = float(done[0]["seconds"]) if done else duration
        after = {(r, n): lab.counters(r, n) for r in ROUTERS for n in self.plan.instances}
        rows = []
        assert self.sniff is not None
        wire = self.sniff.snapshot()
        for target in self.targets:
            name = target.instance
            master = before.get(name) or "r1"
            exp = expect("flood", "fail", self.models[name], master, _other(master))
            row = self._row("flood", "flood", name, master, _other(master), exp, t0, t1)
            drops: dict[str, int] = {}
            transitions = 0
            for r in ROUTERS:
                old, new = counters[(r, name)], after[(r, name)]
                transitions += int(new.get("transitions", 0)) - int(old.get("transitions", 0))
                for reason, count in dict(new.get("drops", {})).items():
                    delta = int(count) - int(dict(old.get("drops", {})).get(reason, 0))
                    if delta:
                        drops[reason] = drops.get(reason, 0) + delta
            sender = self._router_source(master, target)
            gap = largest_gap(adverts(wire, sender, target.vrid, self._lab_if(target)), t0, t1)
            row.detail.append(
                f"{sent:,} forged adverts in {seconds:.1f} s for all instances; for this one: "
                f"{', '.join(defects[name])}; "
                f"transitions during it: {transitions}; dropped by the routers: "
                + (", ".join(f"{k} {v:,}" for k, v in sorted(drops.items())) or "none counted")
            )
            if self.models[name].unicast:
                row.detail.append("unicast adverts: the client does not see the Master's beat")
            elif gap is not None:
                row.detail.append(
                    f"{master}'s largest advert gap {gap:.3f} s (interval "
                    f"{self.models[name].interval:g} s)"
                )
                if gap > 1.5 * self.models[name].interval:
                    row.verdict = "Master missed adverts"
            if transitions:
                row.verdict = f"{transitions} transition(s) during the flood"
            if not sent:
                row.verdict = "no forged advert could be sent"
            rows.append(row)
        return rows

    # -------------------------------------------------------------- measuring

    def _client_back(self, targets: list[Target], timeout: float) -> bool:
        """Wait until the client has been answered for a while, counted from now."""
        if not targets:
            return True
        since = time.time()
        return _wait(lambda: self.answered_lately(targets, since=since), timeout)

    def _lab_if(self, target: Target) -> str:
        return self.plan.links[target.link].lab

    def _router_source(self, router: str, target: Target) -> str:
        link = self.plan.links[target.link]
        if target.family == 4:
            return str(link.address(HOSTS[router], 4))
        return str(self.lab.addressing.link_local[(link.index, HOSTS[router])])

    def _row(
        self,
        scenario: str,
        phase: str,
        name: str,
        failed: str,
        other: str,
        exp: Expectation,
        start: float,
        end: float,
        origin: float | None = None,
    ) -> Row:
        """Measure one instance over ``[start, end)``; times are given from ``origin``
        (default ``start``): for a router's return, from when it runs again."""
        assert self.probes is not None and self.neigh is not None and self.sniff is not None
        origin = start if origin is None else origin
        target = next(t for t in self.targets if t.instance == name)
        label = SCENARIOS[scenario]
        if phase == "back":
            label = f"  {failed} back"
        elif phase == "heal":
            label = "  healed"
        row = Row(scenario, phase, label, name, failed, other, exp)
        summary = probe_summary(self.probes.snapshot(), target.index, start, end)
        row.outage = summary.outage
        row.still_out = summary.open
        row.lost = summary.lost
        row.probes = summary.probes
        model = self.models[name]
        macs = {self.lab.mac(r, target.link): r for r in ROUTERS}
        _, moves = neighbour_moves(self.neigh.snapshot(), target.address, start, end)
        if moves:
            row.moved = (moves[0][0] - origin, macs.get(moves[0][1], moves[0][1]))
        elif model.use_vmac:
            row.detail.append("VMAC: the client's entry keeps the virtual MAC")
        wire = self.sniff.snapshot()
        iface = self._lab_if(target)
        mover = other if phase in ("fail", "split") else failed
        theirs = adverts(wire, self._router_source(mover, target), target.vrid, iface)
        first = next((a for a in theirs if start <= float(a["t"]) < end and a["prio"] > 0), None)
        if first is not None and exp.takeover is not None:
            row.takeover = float(first["t"]) - origin
        if scenario in ("crash", "link") and phase == "fail":
            mine = adverts(wire, self._router_source(failed, target), target.vrid, iface)
            last = last_before(mine, start)
            if last is not None and exp.takeover is not None:
                row.exact = float(last["t"]) + model.mdi(other) - start
        row.verdict = row.verdict or _verdict(row, self.period)
        if model.use_vmac and row.verdict == "longer than predicted":
            row.detail.append(VMAC_NOTE)
        return row


def _verdict(row: Row, period: float) -> str:
    low, high = row.expectation.outage
    measured = row.outage or 0.0
    slack = max(0.05, 3 * period)
    if row.expectation.takeover is None and row.moved is not None and row.phase != "split":
        return "moved unexpectedly"
    if high is None:
        return "as predicted (never moved)" if row.moved is None else "moved"
    if row.still_out:
        return "still out when the drill stopped watching"
    if measured > high + slack + 0.05 * high:
        return "longer than predicted"
    if measured < low - slack - 0.05 * low:
        return "shorter than predicted"
    return "as predicted"


def _other(router: str) -> str:
    return ROUTERS[1 - ROUTERS.index(router)]


def _wait(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
