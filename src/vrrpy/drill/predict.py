"""What each scenario should cost the client, from RFC 9568 and the user's own settings.

Every figure is a window, not a point, because the failure lands somewhere
within an advert interval (or a script's interval) and the protocol's timers
run from the last packet, not from the failure. With F the router that fails
(the Master), S the one that survives, I the advert interval and
Skew_Time / Master_Down_Interval (MDI) reckoned with S's priority
(:mod:`vrrpy.core.timers`, the one place those formulas live):

* **planned switchover** (graceful stop): F sends priority 0 and withdraws the
  address; S takes over after Skew_Time (RFC 9568 6.4.2). Outage: Skew_Time.
* **crash**, **link failure**: F goes silent. S takes over MDI after F's last
  advert, which left 0..I before the failure: MDI - I .. MDI.
* **tracked script failing** (the service on F dies; F's lab script starts
  failing at the same instant): F learns it after ``fall`` failed runs, that
  is (fall - 1)·interval .. fall·interval. Then either weight 0 (FAULT): F
  resigns with priority 0, plus Skew_Time; or a weight that takes F below S:
  S ignores F's weaker adverts and takes over when its timer runs out, MDI
  after F's last strong advert, plus MDI - I .. MDI; or F stays above S (or S
  does not preempt): the address never moves and the client is down until
  the service is back.
* **split brain and heal**: while VRRP is cut, S becomes Master too (MDI), and
  both answer: no outage. At the heal the two Masters' adverts cross (vrrpyd
  sends on the interval's beat); F hears the weaker S, re-announces, S
  yields (docs/conformance.md, decision (g)): about nothing.
* **bad-advert flood**: every forged advert fails a receive check
  (RFC 9568 7.1): nothing moves.
* **recovery** (F back): with preempt and the higher priority, F takes the
  address back after its own MDI (plus ``preempt_delay``), and the client
  moves at F's announcement while S withdraws: about nothing; else nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.daemon.config import DaemonConfig
from vrrpy.track.model import Kind, Track, Verdict, clamp_priority, contribution
from vrrpy.track.protocol import ScriptSpec

__all__ = [
    "Expectation",
    "InstanceModel",
    "ScriptTiming",
    "Side",
    "expect",
    "model_instances",
]


@dataclass(frozen=True)
class ScriptTiming:
    """A tracked script's schedule: how long its failure takes to be believed."""

    interval: float
    rise: int
    fall: int


@dataclass(frozen=True)
class Side:
    """One router's settings for one instance."""

    router: str
    priority: int
    preempt: bool
    preempt_delay: float
    tracks: tuple[Track, ...]
    scripts: Mapping[str, ScriptTiming]


@dataclass(frozen=True)
class InstanceModel:
    """One instance as both lab routers run it."""

    name: str
    version: int
    interval: float
    sides: Mapping[str, Side]
    use_vmac: bool = False
    higher_prio_send_advert: bool = False
    garp_refresh: float = 0.0
    unicast: bool = False
    auth: bool = False

    @property
    def interval_cs(self) -> int:
        return round(self.interval * 100)

    def skew(self, router: str) -> float:
        return skew_time(self.priority(router), self.interval_cs, self.version)

    def mdi(self, router: str, priority: int | None = None) -> float:
        if priority is None:
            priority = self.priority(router)
        return master_down_interval(priority, self.interval_cs, self.version)

    def priority(self, router: str) -> int:
        """``router``'s effective priority with everything it tracks healthy: the one its
        adverts carry, and its timers use."""
        return healthy_priority(self.sides[router])


@dataclass(frozen=True)
class Expectation:
    """What a scenario should do to one instance.

    ``outage``: the client's outage, at least / at most (None: no bound, the
    address never comes back within the drill). ``takeover``: when the other
    router should hold the address, seconds after the event (None: it should
    not move). ``basis``: the formula with the user's figures, in words.
    """

    outage: tuple[float, float | None]
    takeover: tuple[float, float] | None
    basis: str

    def text(self) -> str:
        low, high = self.outage
        if high is None:
            return f"never moves (>= {low:.2f} s)" if low > 0 else "never moves"
        if high <= 0.0:
            return "0"
        if abs(high - low) < 0.0005:
            return f"{high:.3f} s"
        return f"{low:.2f}-{high:.2f} s"


def model_instances(configs: Mapping[str, DaemonConfig]) -> dict[str, InstanceModel]:
    """Both routers' lab configurations -> one :class:`InstanceModel` per instance."""
    first = configs["r1"]
    scripts: dict[str, dict[str, ScriptTiming]] = {}
    for router, config in configs.items():
        scripts[router] = {
            name: ScriptTiming(spec.interval, spec.rise, spec.fall)
            for name, spec in config.checks.items()
            if isinstance(spec, ScriptSpec)
        }
    models = {}
    for spec in first.instances:
        sides = {}
        for router, config in configs.items():
            mine = next(i for i in config.instances if i.name == spec.name)
            sides[router] = Side(
                router,
                mine.priority,
                mine.preempt,
                mine.preempt_delay,
                config.instance_tracks.get(spec.name, ()),
                scripts[router],
            )
        models[spec.name] = InstanceModel(
            spec.name,
            spec.version,
            spec.advert_interval,
            sides,
            use_vmac=spec.use_vmac,
            higher_prio_send_advert=spec.higher_prio_send_advert,
            garp_refresh=spec.garp_refresh,
            unicast=bool(spec.unicast_peers),
            auth=bool(spec.auth_pass),
        )
    return models


def failing_priority(side: Side) -> int | None:
    """``side``'s priority while every tracked script fails (None: FAULT)."""
    total = side.priority
    for track in side.tracks:
        up = track.kind is not Kind.SCRIPT
        verdict = Verdict(track.name, track.kind, up, "drill")
        added = contribution(track, verdict)
        if added is None:
            return None
        total += added
    return clamp_priority(side.priority, total)


def healthy_priority(side: Side) -> int:
    """``side``'s priority with everything it tracks healthy."""
    total = side.priority
    for track in side.tracks:
        added = contribution(track, Verdict(track.name, track.kind, True, "drill"))
        total += added or 0
    return clamp_priority(side.priority, total)


def _detection(side: Side) -> tuple[float, float]:
    """When the scripts' failure is believed: (fall - 1)·interval .. fall·interval."""
    windows = [
        ((t.fall - 1) * t.interval, t.fall * t.interval)
        for name, t in side.scripts.items()
        if any(track.name == name for track in side.tracks)
    ]
    if not windows:
        return (0.0, 0.0)
    return (min(w[0] for w in windows), max(w[1] for w in windows))


def _recovery_detection(side: Side) -> tuple[float, float]:
    windows = [
        ((t.rise - 1) * t.interval, t.rise * t.interval)
        for name, t in side.scripts.items()
        if any(track.name == name for track in side.tracks)
    ]
    if not windows:
        return (0.0, 0.0)
    return (min(w[0] for w in windows), max(w[1] for w in windows))


def tracks_scripts(model: InstanceModel, router: str) -> bool:
    return any(t.kind is Kind.SCRIPT for t in model.sides[router].tracks)


def expect(scenario: str, phase: str, model: InstanceModel, failed: str, other: str) -> Expectation:
    """The expectation for ``model`` when ``failed`` (the Master before the event) fails in
    ``scenario``; ``phase`` is ``"fail"`` or ``"back"`` (the failed router returns)."""
    if phase == "back":
        return _back(scenario, model, failed, other)
    f, s = model.sides[failed], model.sides[other]
    interval = model.interval
    skew = model.skew(other)
    mdi = model.mdi(other)
    mdi_text = f"3 x {interval:g} s + Skew_Time {skew:.3f} s = {mdi:.3f} s"
    if scenario == "graceful":
        return Expectation(
            (skew, skew),
            (skew, skew),
            f"{other} takes over Skew_Time after {failed}'s priority-0 advert: "
            f"(256 - {model.priority(other)}) / 256 x {_scaled(model)} = {skew:.3f} s",
        )
    if scenario in ("crash", "link"):
        return Expectation(
            (mdi - interval, mdi),
            (mdi - interval, mdi),
            f"{other} waits Master_Down_Interval after {failed}'s last advert "
            f"({mdi_text}), which left 0-{interval:g} s before the failure",
        )
    if scenario == "track":
        return _script(model, f, s, failed, other)
    if scenario == "split":
        return Expectation(
            (0.0, 0.0),
            (mdi - interval, mdi),
            f"cut off, {other} also becomes Master after {mdi_text}; both answer the client",
        )
    if scenario == "heal":
        return Expectation(
            (0.0, 0.0),
            (0.0, interval),
            f"the Masters' next adverts cross: {failed} hears the weaker {other}, "
            f"re-announces the address, {other} yields (within one interval, {interval:g} s)",
        )
    if scenario == "flood":
        return Expectation(
            (0.0, 0.0),
            None,
            "every forged advert fails a receive check (RFC 9568 7.1): nothing moves",
        )
    raise ValueError(scenario)


def _scaled(model: InstanceModel) -> str:
    return "1 s" if model.version == 2 else f"{model.interval:g} s"


def _script(model: InstanceModel, f: Side, s: Side, failed: str, other: str) -> Expectation:
    if not any(t.kind is Kind.SCRIPT for t in f.tracks):
        return Expectation(
            (0.0, None),
            None,
            f"{model.name} tracks no script: its address stays on {failed}'s dead service",
        )
    low, high = _detection(f)
    detect = f"{low:g}-{high:g} s to believe it (fall x interval)"
    down = failing_priority(f)
    interval = model.interval
    if down is None:
        skew = model.skew(other)
        return Expectation(
            (low + skew, high + skew),
            (low + skew, high + skew),
            f"{detect}; weight 0 puts {failed} in FAULT, it resigns (priority 0) and {other} "
            f"takes over Skew_Time {skew:.3f} s later",
        )
    rival = model.priority(other)
    if down < rival and s.preempt:
        mdi = model.mdi(other)
        return Expectation(
            (low + mdi - interval, high + mdi),
            (low + mdi - interval, high + mdi),
            f"{detect}; {failed} drops to {down} < {rival}, {other} ignores its weaker "
            f"adverts and takes over Master_Down_Interval {mdi:.3f} s after the last strong one",
        )
    why = (
        f"{failed} drops only to {down}, not below {other}'s {rival}"
        if down >= rival
        else f"{other} does not preempt (preempt = false)"
    )
    return Expectation(
        (high, None),
        None,
        f"{detect}; {why}: the address stays on the dead service",
    )


def _back(scenario: str, model: InstanceModel, failed: str, other: str) -> Expectation:
    """The failed router returns: does it take the address back, and when."""
    f, s = model.sides[failed], model.sides[other]
    back_priority = healthy_priority(f)
    other_priority = healthy_priority(s)
    mdi = model.mdi(failed, back_priority)
    interval = model.interval
    if scenario == "heal":
        return expect("heal", "fail", model, failed, other)
    preempts = f.preempt and (
        back_priority > other_priority or (back_priority == other_priority and failed == "r2")
    )
    if f.priority == 255:
        return Expectation(
            (0.0, 0.0),
            (0.0, interval),
            f"{failed} owns the address (priority 255): Master as soon as it runs again",
        )
    if not preempts:
        return Expectation(
            (0.0, 0.0),
            None,
            f"{failed} returns as Backup and stays so"
            + ("" if f.preempt else " (preempt = false)"),
        )
    start = (0.0, 0.0)
    if scenario == "track":
        start = _recovery_detection(f)
    delay = f.preempt_delay
    low = start[0] + max(mdi - interval, delay)
    high = start[1] + delay + mdi
    text = f"{failed} preempts Master_Down_Interval {mdi:.3f} s after it runs again"
    if delay:
        text += f" (after preempt_delay {delay:g} s)"
    if scenario == "track":
        text += f", its script up again after {start[0]:g}-{start[1]:g} s (rise x interval)"
    return Expectation((0.0, 0.0), (low, high), text + "; the client moves as it announces")


def expectations_text(expectations: Sequence[Expectation]) -> str:
    return "; ".join(e.text() for e in expectations)
