"""Figures from the client's records (:mod:`vrrpy.drill.watch`), for one window of time.

Pure functions over lists of records, so that the arithmetic is tested without
a lab. The outage is what the probes say: from the first probe that got no
answer to the first one answered after it (each probe standing for the
``period`` after it was sent), summed over the window if the address dropped
out more than once. The neighbour figures say when the client's kernel began
sending to another MAC, and the wire figures when adverts stopped and started.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Gap", "ProbeSummary", "adverts", "neighbour_moves", "probe_summary"]

Record = Mapping[str, Any]

REPLY_WITHIN = 2.0
"""Seconds a reply may take and still count for its probe."""


@dataclass(frozen=True)
class Gap:
    """Unanswered probes in a row: from the first one's sending to the next answered one's
    (``end`` None: still unanswered when the window closed)."""

    start: float
    end: float | None
    lost: int


@dataclass(frozen=True)
class ProbeSummary:
    """One target's probes over a window."""

    probes: int
    lost: int
    gaps: tuple[Gap, ...] = field(default=())
    window_end: float = 0.0

    @property
    def outage(self) -> float:
        """Seconds without an answer (an open gap counts up to the window's end)."""
        return sum((g.end if g.end is not None else self.window_end) - g.start for g in self.gaps)

    @property
    def open(self) -> bool:
        """True when the address was still unanswered as the window closed."""
        return bool(self.gaps) and self.gaps[-1].end is None

    @property
    def longest(self) -> float:
        return max(
            ((g.end if g.end is not None else self.window_end) - g.start for g in self.gaps),
            default=0.0,
        )


def probe_summary(
    records: Iterable[Record], target: int, start: float, end: float, tail: float = 0.05
) -> ProbeSummary:
    """The probes to ``target`` sent in ``[start, end - tail)``: which went unanswered.

    ``tail``: the last probes of a window may still have their answer on the
    way when it closes; they belong to the next window.
    """
    sends: list[tuple[int, float]] = []
    replies: dict[int, list[float]] = {}
    for record in records:
        kind = record.get("k")
        if kind == "s":
            sends.append((int(record["n"]), float(record["t"])))
        elif kind == "r" and record.get("i") == target:
            replies.setdefault(int(record["n"]), []).append(float(record["t"]))
    window = sorted(
        (t, n) for n, t in sends if start <= t < end - tail
    )  # sequence numbers wrap: times decide
    gaps: list[Gap] = []
    open_start: float | None = None
    lost_here = 0
    lost = 0
    for sent, number in window:
        answered = any(sent <= r <= sent + REPLY_WITHIN for r in replies.get(number, ()))
        if answered:
            if open_start is not None:
                gaps.append(Gap(open_start, sent, lost_here))
                open_start = None
                lost_here = 0
        else:
            lost += 1
            lost_here += 1
            if open_start is None:
                open_start = sent
    if open_start is not None:
        gaps.append(Gap(open_start, None, lost_here))
    return ProbeSummary(len(window), lost, tuple(gaps), end - tail)


def neighbour_moves(
    records: Iterable[Record], address: str, start: float, end: float
) -> tuple[str | None, list[tuple[float, str]]]:
    """The client's MAC for ``address`` as the window opened, and each change in it:
    ``(mac_before, [(time, new_mac), ...])``. Entries without a MAC (INCOMPLETE,
    FAILED, deleted) do not count as a change."""
    before: str | None = None
    moves: list[tuple[float, str]] = []
    current: str | None = None
    for record in sorted(
        (r for r in records if r.get("k") == "n" and r.get("dst") == address),
        key=lambda r: float(r["t"]),
    ):
        t = float(record["t"])
        mac = record.get("ll")
        if record.get("del") or not mac:
            continue
        if t < start:
            before = current = mac
            continue
        if t >= end:
            break
        if mac != current:
            moves.append((t, mac))
            current = mac
    return before, moves


def adverts(records: Iterable[Record], source: str, vrid: int, interface: str) -> list[Record]:
    """Adverts from ``source`` for ``vrid`` seen on the client's ``interface``, in time order."""
    return sorted(
        (
            r
            for r in records
            if r.get("k") == "a"
            and r.get("src") == source
            and r.get("vrid") == vrid
            and r.get("if") == interface
        ),
        key=lambda r: float(r["t"]),
    )


def last_before(items: Sequence[Record], t: float, positive: bool = True) -> Record | None:
    """The last record before ``t`` (with a priority above 0 when ``positive``)."""
    found = None
    for record in items:
        if float(record["t"]) >= t:
            break
        if not positive or record.get("prio", 1) > 0:
            found = record
    return found


def largest_gap(items: Sequence[Record], start: float, end: float) -> float | None:
    """The largest interval between consecutive records within ``[start, end)``."""
    stamps = [float(r["t"]) for r in items if start <= float(r["t"]) < end]
    if len(stamps) < 2:
        return None
    return max(b - a for a, b in itertools.pairwise(stamps))
