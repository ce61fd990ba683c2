"""A Prometheus histogram cheap enough for the protocol loop, and the runtime's buckets.

Kept apart from :mod:`vrrpy.observe.metrics` (the text format, a thousand
lines) so that the runtime, which fills these on its own thread, imports only
this.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise
from typing import Final

__all__ = ["ADVERT_INTERARRIVAL_BUCKETS", "TAKEOVER_BUCKETS", "Histogram", "cumulative_counts"]

TAKEOVER_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds from a Backup's Master_Down_Timer expiry to its first announcement: a
tenth of a millisecond when nothing waits, seconds when a backend's ``prepare``
(DRBD promotion, its ``peer_wait``) holds the addresses."""

ADVERT_INTERARRIVAL_BUCKETS: Final = (
    0.005,
    0.01,
    0.015,
    0.02,
    0.05,
    0.1,
    0.15,
    0.2,
    0.5,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)
"""Seconds between two adverts of the Master a Backup listens to (10 ms .. 3 s intervals)."""


class Histogram:
    """A Prometheus histogram the runtime can fill on its own thread: :meth:`observe`
    costs a ``bisect`` and three additions.

    ``bounds`` are the upper bounds (``le``, inclusive) of the finite buckets,
    strictly increasing; the ``+Inf`` bucket is implied. :meth:`as_dict` is
    what an instance's status carries under ``histograms`` (JSON-able: no
    infinity), and what :func:`render` reads back.
    """

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        edges = tuple(float(b) for b in bounds)
        if not edges:
            raise ValueError("a histogram needs at least one finite bucket")
        if any(not math.isfinite(b) for b in edges):
            raise ValueError("bucket bounds must be finite (+Inf is implied)")
        if any(b >= c for b, c in pairwise(edges)):
            raise ValueError("bucket bounds must be strictly increasing")
        self.bounds = edges
        self.counts = [0] * (len(edges) + 1)
        """Observations per bucket, not cumulative; the last is above every bound."""
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Count one observation (a value equal to a bound falls in that bucket)."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def as_dict(self) -> dict[str, object]:
        """``{"bounds": [...], "counts": [...], "sum": s, "count": n}`` (a copy)."""
        return {
            "bounds": list(self.bounds),
            "counts": list(self.counts),
            "sum": self.sum,
            "count": self.count,
        }

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le, observations <= le)`` for every bucket, ``+Inf`` last."""
        return cumulative_counts(self.bounds, self.counts)


def cumulative_counts(bounds: Sequence[float], counts: Sequence[int]) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    total = 0
    for le, n in zip((*bounds, math.inf), counts, strict=True):
        total += n
        out.append((le, total))
    return out
