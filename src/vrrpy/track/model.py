"""The tracking model, sans-IO: tracked objects' verdicts in, effective priority and faults out.

Nothing here opens a file, spawns a process or reads a clock: the agent
(:mod:`vrrpy.track.agent`) runs the checks and reports :class:`Verdict` lines;
the daemon's side feeds them to one :class:`InstanceTracking` per instance and
hands what comes out (:class:`TrackingChange`) to the core
(``VirtualRouter.fault`` / ``recover`` / ``set_priority``). Time is an argument
(``now``), so a test drives years of flapping in microseconds.

Every rule here is keepalived's (``keepalived/vrrp/vrrp_track.c``,
``vrrp_scheduler.c``, ``trackers/track_file.c``, read at commit 9cbce3e of
acassen/keepalived), restated so that a reader can hold the two side by side:

* **Weights** are -253..253 (keepalived's parser refuses anything outside
  -254..254 and turns +/-254 into +/-253). A weight of 0 means the object
  *faults* the instance when it fails, instead of moving its priority.
* **An up/down object** (interface, script, process, ping group) with a
  positive weight adds it while the object is *up*; with a negative weight it
  adds it (subtracts) while the object is *down*; otherwise it adds nothing
  (``initialise_interface_tracking_priorities``,
  ``process_script_update_priority``). ``reverse`` multiplies the weight by -1
  and, for weight 0, faults the instance while the object is *up*.
* **A file** (``track_file``) adds ``value * weight`` clamped to -254..253;
  -254 means FAULT (so a large negative product faults, not only weight 0);
  with weight 0 any non-zero value means FAULT
  (``process_update_vrrp_track_file_status``).
* **Effective priority** is ``base + sum``, clamped: below 1 gives 1, 255 or
  above gives 254; an address owner (base 255) is never moved, only faulted
  (``vrrp_set_effective_priority``).
* **A script's first result** decides at once (keepalived starts its counter
  at ``rise - 1``: "one success is enough", and a first failure reports a
  failure whatever ``fall`` is); until it has run, a weight-0 script holds
  the instance in FAULT ("Entering FAULT STATE (init)",
  ``num_script_init``) and a weighted one adds nothing. ``init_fail`` starts
  it failed (counter 0, ``rise`` successes needed).

vrrpy applies the "not known yet" rule of scripts to every kind (an interface,
a file or a process are known as soon as the agent has looked, a ping group
after its first round): a weight-0 object whose first verdict has not arrived
holds the instance in FAULT, with the reason ``"<kind> <name>: no verdict
yet"``. That is what keepalived does for scripts and the safe choice for the
others: a router must not take the address before it knows its uplink works.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

__all__ = [
    "MAX_WEIGHT",
    "OWNER_PRIORITY",
    "InstanceTracking",
    "Kind",
    "ScriptCounter",
    "Track",
    "TrackedRouter",
    "TrackingChange",
    "Verdict",
    "apply_change",
    "clamp_priority",
    "contribution",
]

OWNER_PRIORITY: Final = 255
MAX_WEIGHT: Final = 253
"""keepalived: ``weight`` must be in -254..254 and +/-254 becomes +/-253 (``vrrp_track.c``)."""
_FILE_FAULT: Final = -254
"""A track_file status of -254 (after clamping) means FAULT (``track_file.c``)."""


class Kind(str, enum.Enum):
    """What a tracked object is; the values are the agent protocol's and the config's."""

    INTERFACE = "interface"
    SCRIPT = "script"
    FILE = "file"
    PING = "ping"
    PROCESS = "process"


@dataclass(frozen=True)
class Verdict:
    """What the agent knows about one object now.

    ``up`` is None while the object has no verdict yet (a script that has not
    run). ``value`` is a file's integer (0 for the other kinds). ``reason``
    says why, in words fit for a log line and a state file
    (``"script chk_nginx failed (exit 1)"``, ``"link eth1 down"``).
    ``detail`` carries what the state file shows (a script's last exit
    status, output line and run time; a ping group's reachable targets).
    """

    name: str
    kind: Kind
    up: bool | None
    reason: str
    value: int = 0
    detail: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.value,
            "up": self.up,
            "value": self.value,
            "reason": self.reason,
            "detail": dict(self.detail),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Verdict:
        """Parse one verdict; raises ``ValueError`` (never anything else) on a bad one."""
        try:
            up = doc["up"]
            value = doc.get("value", 0)
            if up is not None and not isinstance(up, bool):
                raise ValueError("up: not a boolean")
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError("value: not an integer")
            detail = doc.get("detail") or {}
            if not isinstance(detail, dict):
                raise ValueError("detail: not an object")
            return cls(str(doc["name"]), Kind(doc["kind"]), up, str(doc["reason"]), value, detail)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad verdict: {exc!r}") from exc


@dataclass(frozen=True)
class Track:
    """One instance's reference to a tracked object, with the instance's weight for it.

    keepalived lets each instance give its own weight (``track_script {
    chk_nginx weight -20 }``), defaulting to the object's; vrrpy's config does
    the same and hands the resolved weight here.
    """

    name: str
    kind: Kind
    weight: int = 0
    reverse: bool = False

    def __post_init__(self) -> None:
        if not -MAX_WEIGHT <= self.weight <= MAX_WEIGHT:
            raise ValueError(
                f"track {self.name}: weight {self.weight} outside -{MAX_WEIGHT}..{MAX_WEIGHT}"
            )


def contribution(track: Track, verdict: Verdict | None) -> int | None:
    """What one object adds to the priority now, or None if it faults the instance.

    ``verdict`` None (or ``up`` None) means no verdict yet: a weight-0 object
    faults, a weighted one adds nothing (see the module docstring).
    """
    multiplier = -1 if track.reverse else 1
    if track.kind is Kind.FILE:
        if verdict is None or verdict.up is None:
            return None if track.weight == 0 else 0
        if track.weight == 0:
            # keepalived: "If the tracking weight is 0, a non-zero value means failure";
            # reverse: zero means failure.
            failed = (verdict.value != 0) != track.reverse
            return None if failed else 0
        status = max(_FILE_FAULT, min(253, verdict.value * track.weight * multiplier))
        return None if status == _FILE_FAULT else status
    if verdict is None or verdict.up is None:
        return None if track.weight == 0 else 0
    if track.weight == 0:
        # keepalived: FAULT while down (reverse: while up).
        return None if verdict.up == track.reverse else 0
    if (track.weight > 0) == verdict.up:
        return track.weight * multiplier
    return 0


def clamp_priority(base: int, total: int) -> int:
    """keepalived's ``vrrp_set_effective_priority``: owner untouched, others within 1..254."""
    if base == OWNER_PRIORITY:
        return OWNER_PRIORITY
    if total < 1:
        return 1
    if total >= OWNER_PRIORITY:
        return OWNER_PRIORITY - 1
    return total


@dataclass(frozen=True)
class TrackingChange:
    """What one verdict changed for one instance; every change carries its reason.

    ``faults_raised`` / ``faults_cleared``: the fault reasons that appeared /
    went away, exactly the strings to hand to the core's ``fault(reason, now)``
    and ``recover(reason, now)`` (which hold reasons by their text). A reason
    whose text changed while its object stays failed (``"link eth1 down (admin
    down)"`` becoming ``"... (no carrier ...)"``) is in both: raise the new ones
    before clearing the old, so the router never leaves FAULT in between.
    ``fault_entered`` / ``fault_left``: the instance went from no fault to
    some / from some to none. ``priority``: the new effective priority when it
    changed (``set_priority(priority, now)``), else None. ``faults``: every
    fault reason held after the change (for the log and the state file).
    """

    instance: str
    now: float
    reason: str
    old_priority: int
    priority: int | None
    fault_entered: bool
    fault_left: bool
    faults: tuple[str, ...]
    faults_raised: tuple[str, ...] = ()
    faults_cleared: tuple[str, ...] = ()

    def describe(self) -> str:
        """One log line: what changed and why."""
        parts = []
        if self.fault_entered:
            parts.append("FAULT")
        if self.fault_left:
            parts.append("fault cleared")
        if self.priority is not None:
            parts.append(f"priority {self.old_priority} -> {self.priority}")
        if not parts:
            parts.append("fault reasons changed")
        return f"{self.instance}: {', '.join(parts)}: {self.reason}"


class InstanceTracking:
    """The tracked objects of one instance: its effective priority and fault reasons.

    Feed it verdicts (:meth:`update`); it answers with the change, if any. A
    verdict for an object this instance does not track is ignored (the agent
    serves every instance). Objects start with no verdict.
    """

    def __init__(self, instance: str, base_priority: int, tracks: Iterable[Track]) -> None:
        if not 1 <= base_priority <= OWNER_PRIORITY:
            raise ValueError(f"{instance}: priority {base_priority} outside 1..255")
        self.instance = instance
        self.base_priority = base_priority
        self.tracks: dict[str, Track] = {}
        for track in tracks:
            if track.name in self.tracks:
                raise ValueError(f"{instance}: {track.name} tracked twice")
            self.tracks[track.name] = track
        self.verdicts: dict[str, Verdict] = {}
        self.effective_priority, self.faults = self._evaluate()

    @property
    def fault(self) -> bool:
        return bool(self.faults)

    def _evaluate(self) -> tuple[int, dict[str, str]]:
        total = self.base_priority
        faults: dict[str, str] = {}
        for name, track in self.tracks.items():
            verdict = self.verdicts.get(name)
            added = contribution(track, verdict)
            if added is None:
                if verdict is None:
                    faults[name] = f"{track.kind.value} {name}: no verdict yet"
                else:
                    faults[name] = verdict.reason
            else:
                total += added
        return clamp_priority(self.base_priority, total), faults

    def update(self, verdict: Verdict, now: float) -> TrackingChange | None:
        """Take one object's new verdict; return what changed for this instance, if anything."""
        track = self.tracks.get(verdict.name)
        if track is None or track.kind is not verdict.kind:
            return None
        self.verdicts[verdict.name] = verdict
        old_priority, old_faults = self.effective_priority, self.faults
        self.effective_priority, self.faults = self._evaluate()
        if self.effective_priority == old_priority and self.faults == old_faults:
            return None
        return TrackingChange(
            instance=self.instance,
            now=now,
            reason=verdict.reason,
            old_priority=old_priority,
            priority=None if self.effective_priority == old_priority else self.effective_priority,
            fault_entered=bool(self.faults) and not old_faults,
            fault_left=bool(old_faults) and not self.faults,
            faults=tuple(self.faults.values()),
            faults_raised=tuple(r for n, r in self.faults.items() if old_faults.get(n) != r),
            faults_cleared=tuple(r for n, r in old_faults.items() if self.faults.get(n) != r),
        )

    def status(self) -> dict[str, Any]:
        """For the state file: priorities, fault reasons, and each object's verdict."""
        return {
            "base_priority": self.base_priority,
            "effective_priority": self.effective_priority,
            "faults": list(self.faults.values()),
            "tracks": {
                name: {
                    "kind": track.kind.value,
                    "weight": track.weight,
                    "reverse": track.reverse,
                    "up": v.up if (v := self.verdicts.get(name)) else None,
                    "value": v.value if v else 0,
                    "reason": v.reason if v else "no verdict yet",
                    "detail": dict(v.detail) if v else {},
                }
                for name, track in self.tracks.items()
            },
        }


class TrackedRouter(Protocol):
    """What :func:`apply_change` needs of a core (``vrrpy.core.VirtualRouter`` has it)."""

    def fault(self, reason: str, now: float) -> list[Any]: ...

    def recover(self, reason: str, now: float) -> list[Any]: ...

    def set_priority(self, priority: int, now: float) -> list[Any]: ...


def apply_change(router: TrackedRouter, change: TrackingChange) -> list[Any]:
    """Hand one change to a core, in the one safe order; return the core's actions.

    New fault reasons first (a router that must stop stops before anything
    else), then the priority (so that a router leaving FAULT comes back with
    its new priority), then the cleared reasons. An owner's priority never
    changes (:func:`clamp_priority`), so ``set_priority`` is never called for it.
    """
    actions: list[Any] = []
    for reason in change.faults_raised:
        actions += router.fault(reason, change.now)
    if change.priority is not None:
        actions += router.set_priority(change.priority, change.now)
    for reason in change.faults_cleared:
        actions += router.recover(reason, change.now)
    return actions


class ScriptCounter:
    """keepalived's rise/fall counter for one ``vrrp_script``, exactly (``vrrp_scheduler.c``).

    ``result`` runs from 0 to ``rise + fall - 1``; the script is up while
    ``result >= rise``. A success steps it up (reaching ``rise`` reports "up"
    and jumps to the top); a failure steps it down from the top (reaching
    ``rise`` then failing once more reports "down" and drops to 0). A fresh
    script starts at ``rise - 1`` (one success is enough) in keepalived's
    *init* state, in which its first failure reports "down" at once;
    ``init_fail`` starts it at 0, already down.
    """

    def __init__(self, rise: int = 1, fall: int = 1, init_fail: bool = False) -> None:
        if rise < 1 or fall < 1:
            raise ValueError("rise and fall are at least 1")
        self.rise = rise
        self.fall = fall
        self.initial = not init_fail
        self.result = 0 if init_fail else rise - 1
        self.up: bool | None = False if init_fail else None

    def record(self, success: bool) -> bool:
        """Count one run; True when the script's up/down state changed (see :attr:`up`)."""
        changed = False
        top = self.rise + self.fall - 1
        if success:
            if self.result < self.rise - 1:
                self.result += 1
            elif self.result != top:
                if self.result < self.rise:
                    changed = True
                self.result = top
        elif self.result > self.rise:
            self.result -= 1
        else:
            if self.result == self.rise or self.initial:
                changed = True
            self.result = 0
        if changed:
            self.up = success
        self.initial = False
        return changed
