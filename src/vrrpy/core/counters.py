"""Per-instance counters: what keepalived's stats and FRR's ``show vrrp`` keep, and more.

Plain integers on a slotted object so that counting costs one attribute add on
the packet path. ``drops`` is keyed by a stable reason string: the decode
errors' ``reason`` (``bad_checksum``, ``bad_ttl``, ...) and the core's own
(``vrid_mismatch``, ``interval_mismatch``, ``auth_failure``, ``not_a_peer``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(slots=True)
class Counters:
    """Counters of one virtual router; :meth:`as_dict` is what a state file or status page shows."""

    adverts_sent: int = 0
    adverts_received: int = 0
    priority_zero_sent: int = 0
    priority_zero_received: int = 0
    lower_priority_discarded: int = 0
    """Valid adverts a Master (or a preempting Backup) ignored because ours is better."""
    split_brains: int = 0
    """Episodes in which, while Master, we heard another Master of lower rank (lower
    priority, or equal priority from a lower address). One episode lasts until no such
    advert has been heard for Master_Down_Interval, or until we leave Master."""
    checksum_pseudo_header: int = 0
    """Accepted IPv4 VRRPv3 adverts whose checksum covered the pseudo-header (keepalived, FRR)."""
    checksum_vrrp_only: int = 0
    """Accepted IPv4 VRRPv3 adverts whose checksum covered the VRRP message alone (RFC 9568)."""
    became_master: int = 0
    released_master: int = 0
    transitions: int = 0
    last_transition: float | None = None
    """Time (caller's clock) of the last state change."""
    last_transition_reason: str = ""
    transitions_by: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    """State changes as ``{old: {new: {code: n}}}`` (codes: ``actions.TRANSITION_CODES``)."""
    drops: dict[str, int] = field(default_factory=dict)
    """Adverts dropped, by reason: nothing about them reached the state machine."""
    anomalies: dict[str, int] = field(default_factory=dict)
    """Adverts processed but logged as misconfiguration (``interval_mismatch`` in v3,
    ``address_list_mismatch``, ``owner_conflict``, ``first_address_not_link_local``)."""

    def drop(self, reason: str) -> None:
        """Count one dropped packet for ``reason``."""
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def count_transition(self, old: str, new: str, code: str) -> None:
        """Count one state change from ``old`` to ``new`` for ``code``."""
        codes = self.transitions_by.setdefault(old, {}).setdefault(new, {})
        codes[code] = codes.get(code, 0) + 1

    @property
    def dropped(self) -> int:
        """All dropped packets, whatever the reason."""
        return sum(self.drops.values())

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready copy (shallow: cheap enough to take for hundreds of instances)."""
        out: dict[str, object] = {name: getattr(self, name) for name in _SCALARS}
        out["drops"] = dict(self.drops)
        out["anomalies"] = dict(self.anomalies)
        out["transitions_by"] = {
            old: {new: dict(codes) for new, codes in news.items()}
            for old, news in self.transitions_by.items()
        }
        return out


_SCALARS = tuple(
    f.name for f in fields(Counters) if f.name not in ("drops", "anomalies", "transitions_by")
)
