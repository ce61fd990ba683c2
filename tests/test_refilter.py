"""The filter-change steps against a model of the kernel's delivery loop.

The kernel runs each socket's filter as its loop over the raw sockets reaches
it; a delivery in flight can see any filter state installed since the last
grace period it could not outlive began. :class:`Window` records every state
and checks, at every change, that any two states a delivery may still see
between them take every VRID on one socket or the other -- in either order,
since the order of the sockets in the kernel's list is not ours to rely on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrrpy.runtime import refilter
from vrrpy.runtime.refilter import Refilter, SharedGrace, wait_for_deliveries
from vrrpy.runtime.vridfilter import ALL_URGENT

VRIDS = range(1, 6)


class Window:
    """The filter states a delivery in flight may see, and the grace periods pending."""

    def __init__(self, fail_first: int = 0, refusals: list[bool] | None = None) -> None:
        self.states: list[tuple[frozenset[int], frozenset[int]]] = [(frozenset(), frozenset())]
        self.floor = 0  # the oldest state a delivery in flight may have begun in
        self.pending: list[tuple[int, Callable[[], None]]] = []
        self.fail_first = fail_first
        self.refusals = list(refusals or [])  # the kernel's answer to each attach, in turn

    def attach(self, urgent: bool, vrids: frozenset[int]) -> None:
        refused = self.refusals.pop(0) if self.refusals else False
        if self.fail_first or refused:
            self.fail_first = max(0, self.fail_first - 1)
            raise OSError(12, "Cannot allocate memory")
        taken, left = self.states[-1]
        self.states.append((vrids, left) if urgent else (taken, vrids))
        self.check()

    def after(self, then: Callable[[], None]) -> None:
        assert not self.pending, "one grace period at a time"
        self.pending.append((len(self.states) - 1, then))

    def complete(self) -> None:
        started, then = self.pending.pop()
        self.floor = started  # every delivery begun before the wait has finished
        then()

    def check(self) -> None:
        window = self.states[self.floor :]
        for urgent_taken, _ in window:
            for _, bulk_leaves in window:
                lost = bulk_leaves - urgent_taken
                assert not lost, f"VRIDs {sorted(lost)} refused by both sockets"


def settle(window: Window) -> None:
    while window.pending:
        window.complete()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.frozensets(st.sampled_from(VRIDS)).map(lambda vrids: ("request", vrids)),
            st.just(("grace", frozenset[int]())),
        ),
        max_size=40,
    ),
    st.lists(st.booleans(), max_size=60),
)
def test_no_mix_of_states_a_delivery_can_see_refuses_an_advert(
    steps: list[tuple[str, frozenset[int]]], refusals: list[bool]
) -> None:
    window = Window(refusals=refusals)
    swap = Refilter(window.attach, window.after)
    for kind, vrids in steps:
        if kind == "request":
            swap.request(vrids)
            if not refusals:
                assert vrids <= swap.urgent, "a new Master's VRIDs are urgent at once"
        elif window.pending:
            window.complete()
    settle(window)
    assert not swap.busy
    if not refusals:
        # At rest: exactly the last request, the two programs exact complements.
        last = [v for k, v in steps if k == "request"]
        target = last[-1] if last else frozenset()
        assert swap.urgent == swap.left == target
        assert not swap.overlapping


def test_a_change_takes_three_steps_a_grace_period_apart() -> None:
    window = Window()
    swap = Refilter(window.attach, window.after)
    swap.request(frozenset({1}))
    settle(window)
    before = len(window.states)
    swap.request(frozenset({2}))
    assert window.states[-1] == ({1, 2}, {1})  # widened at once
    window.complete()
    assert window.states[-1] == ({1, 2}, {2})  # the bulk filter, a grace period later
    assert swap.overlapping
    window.complete()
    assert window.states[-1] == ({2}, {2})  # the urgent filter narrowed
    assert swap.busy  # its own deliveries still in flight: twins possible
    window.complete()
    assert not swap.overlapping
    assert len(window.states) - before == 3


def test_a_request_during_a_change_widens_at_once_and_waits_again() -> None:
    window = Window()
    swap = Refilter(window.attach, window.after)
    swap.request(frozenset({1}))  # widened; the grace period for it pending
    swap.request(frozenset({1, 2}))
    assert swap.urgent == {1, 2}
    window.complete()
    # The pending wait began before VRID 2 was widened: the bulk filter may not
    # leave VRID 2 yet, so one more grace period first.
    assert swap.left == frozenset()
    settle(window)
    assert swap.urgent == swap.left == {1, 2}


def test_a_refused_filter_makes_everything_urgent_by_the_same_steps() -> None:
    window = Window(fail_first=1)
    swap = Refilter(window.attach, window.after, "eth0")
    swap.request(frozenset({3}))
    assert swap.urgent == ALL_URGENT
    settle(window)
    assert swap.urgent == swap.left == ALL_URGENT
    swap.request(frozenset({3}))  # the next request tries again
    settle(window)
    assert swap.urgent == swap.left == {3}


def test_closing_stops_the_steps() -> None:
    window = Window()
    swap = Refilter(window.attach, window.after)
    swap.request(frozenset({1}))
    swap.close()
    count = len(window.states)
    settle(window)
    assert len(window.states) == count


def test_the_real_grace_period_waits_and_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    wait_for_deliveries()  # membarrier here; a fallback sleep elsewhere
    monkeypatch.setattr(refilter, "_membarrier", None)
    monkeypatch.setattr(refilter, "FALLBACK_WAIT", 0.001)
    wait_for_deliveries()


def test_socket_pairs_changing_together_share_each_grace_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    def wait() -> None:
        waits.append(time.monotonic())
        time.sleep(0.002)

    monkeypatch.setattr(refilter, "wait_for_deliveries", wait)

    async def main() -> list[Refilter]:
        grace = SharedGrace(asyncio.get_running_loop())
        pairs = [Refilter(lambda urgent, vrids: None, grace) for _ in range(300)]
        for i, pair in enumerate(pairs):
            pair.request(frozenset({1 + i % 255}))
        while any(pair.busy for pair in pairs):
            await asyncio.sleep(0.001)
        return pairs

    pairs = asyncio.run(main())
    assert all(pair.urgent == pair.left == {1 + i % 255} for i, pair in enumerate(pairs))
    assert len(waits) <= 4  # three steps, shared; not 900 waits queued for the executor
