"""A tracked script fails on the Master, vrrpy against keepalived 2.2.7, both ways round.

h1 (priority 200) is the intended Master and tracks one script, ``/usr/bin/test -e
FILE`` with FILE in the test's directory, so removing the file fails the check and
writing it back heals it; h2 (priority 100) tracks nothing. As in
``test_keepalived.py``, each scenario runs as ``vrrpy-master`` (vrrpyd on h1,
keepalived on h2) and ``keepalived-master`` (the reverse), adverts every 100 ms,
and fails if keepalived complains about anything it was not provoked into. The
instance, the two directions, convergence and the wire helpers are imported from
there, so that both files judge a pair alike.

The same ``[[track_script]]`` table configures both: vrrpyd reads it as is,
the keepalived harness writes it as a ``vrrp_script`` (``interop/keepalived.py``).
vrrpy runs the script every 0.2 s; keepalived 2.2.7 only takes whole seconds, so
its runs are 1 s apart, which is why a keepalived Master notices later.

* A negative weight (-150) drops the Master to 50, below the peer's 100: the peer
  preempts, by the usual rule (a preempting Backup ignores a weaker Master's
  adverts, so its Master_Down_Timer, last restarted by a priority-200 advert,
  runs out); healed, h1 is back at 200 and preempts back the same way.
* Weight 0 puts the Master in FAULT: it resigns with priority 0, so the peer takes
  over after Skew_Time, not Master_Down_Interval; it sends nothing more and holds
  no address while in FAULT; healed, it comes back as Backup and preempts.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from routers import Router
from test_keepalived import DIRECTIONS, INTERVAL, VIP, adverts, converged, impls, inst

from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.lab import Capture, Lab, wait_for

CHECK = "chk_service"


def script_table(path: Path, weight: int) -> dict[str, Any]:
    """The tracked check: up while ``path`` exists. rise = fall = 1, so one run decides."""
    return {
        "name": CHECK,
        "script": f"/usr/bin/test -e {path}",
        "interval": 0.2,
        "rise": 1,
        "fall": 1,
        "weight": weight,
    }


@pytest.fixture
def tracked_pair(lab: Lab, tmp_path: Path) -> Iterator[Any]:
    """Make (h1 tracking the script, h2, the file the script tests) for one direction;
    afterwards, fail on any complaint keepalived was not provoked into."""
    made: list[Router] = []

    def make(direction: str, weight: int) -> tuple[Router, Router, Path]:
        healthy = tmp_path / "service-ok"
        healthy.write_text("")
        first, second = impls(direction)
        tables = {"track_script": [script_table(healthy, weight)]}
        r1 = Router(first, lab["h1"], tmp_path, [inst(priority=200, track_script=[CHECK])], tables)
        r2 = Router(second, lab["h2"], tmp_path, [inst()])
        made.extend([r1, r2])
        return r1, r2, healthy

    yield make
    for router in made:
        unexpected = router.complaints()
        assert not unexpected, f"{router} complained:\n" + "\n".join(unexpected)


def keepalived_log(router: Router) -> str:
    assert router.keepalived is not None
    return router.keepalived.log.read_text(errors="replace")


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_failing_script_with_a_negative_weight_hands_over_and_back(
    lab: Lab, tracked_pair: Any, direction: str, measured: Any
) -> None:
    r1, r2, healthy = tracked_pair(direction, -150)
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    cap = Capture(lab["h3"])
    time.sleep(3 * INTERVAL)

    failed = time.time()
    healthy.unlink()
    assert wait_for(lambda: r2.state() == "MASTER" and r1.state() == "BACKUP", 5), (
        r1.state(),
        r2.state(),
    )
    assert wait_for(lambda: VIP in r2.addresses() and VIP not in r1.addresses(), 2)
    time.sleep(3 * INTERVAL)
    handed = time.time()

    healthy.write_text("")
    assert wait_for(lambda: converged(r1, r2), 5), (r1.state(), r2.state())
    assert wait_for(lambda: VIP in r1.addresses() and VIP not in r2.addresses(), 2)
    time.sleep(3 * INTERVAL)
    records = cap.stop()

    # On the wire: h1 went on advertising at 50 until h2 took over (it never resigned),
    # and h2 took over one Master_Down_Interval after h1's last advert at 200.
    h1 = [r for r in adverts(records, "192.0.2.11") if r["t"] < handed]
    h2 = adverts(records, "192.0.2.12")
    weak = [r for r in h1 if r["priority"] == 50]
    assert weak, sorted({r["priority"] for r in h1})
    measured(f"script failed -> advert at 50, {r1.impl}", weak[0]["t"] - failed)
    assert not [r for r in h1 if r["priority"] == 0], "h1 resigned: a weight is not a fault"
    last_strong = [r for r in h1 if r["priority"] == 200 and r["t"] < weak[0]["t"]][-1]
    gap = h2[0]["t"] - last_strong["t"]
    predicted = master_down_interval(100, round(INTERVAL * 100))
    measured(f"preempted at 50, {r2.impl} (pred {predicted * 1000:.1f})", gap)
    assert predicted - 0.005 < gap < predicted + 0.05, (direction, gap)
    assert h2[0]["priority"] == 100
    # ... and back: h1 at 200 again, preempting h2.
    back = [r for r in adverts(records, "192.0.2.11") if r["t"] > handed and r["priority"] == 200]
    assert back, "h1 never advertised at 200 again"

    if r1.vrrpyd is not None:
        r1.vrrpyd.refresh()
        assert r1.vrrpyd.instance()["effective_priority"] == 200
    else:
        log = keepalived_log(r1)
        assert "Changing effective priority from 200 to 50" in log
        assert "Changing effective priority from 50 to 200" in log


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_a_failing_script_with_weight_0_faults_the_master_and_the_peer_takes_over_at_skew_time(
    lab: Lab, tracked_pair: Any, direction: str, measured: Any
) -> None:
    r1, r2, healthy = tracked_pair(direction, 0)
    r1.start()
    r2.start()
    assert wait_for(lambda: converged(r1, r2), 5)
    cap = Capture(lab["h3"])
    time.sleep(3 * INTERVAL)

    failed = time.time()
    healthy.unlink()
    assert wait_for(lambda: r1.state() == "FAULT", 5), r1.state()
    assert wait_for(lambda: r2.state() == "MASTER", 2), r2.state()
    assert wait_for(lambda: VIP not in r1.addresses() and VIP in r2.addresses(), 2)
    if r2.vrrpyd is not None:  # the Backup says why it took over: the Master resigned
        r2.vrrpyd.refresh()
        takeover = r2.vrrpyd.instance()["counters"]["last_transition_reason"]
        assert "priority 0" in takeover, takeover
    if r1.vrrpyd is not None:
        faults = r1.vrrpyd.instance()["faults"]
        assert faults and CHECK in faults[0], faults
    time.sleep(5 * INTERVAL)  # in FAULT: h1 must stay silent meanwhile
    healed = time.time()

    healthy.write_text("")
    assert wait_for(lambda: converged(r1, r2), 5), (r1.state(), r2.state())
    assert wait_for(lambda: VIP in r1.addresses() and VIP not in r2.addresses(), 2)
    time.sleep(3 * INTERVAL)
    records = cap.stop()

    h1 = adverts(records, "192.0.2.11")
    zero = [r for r in h1 if r["priority"] == 0 and r["t"] < healed]
    assert zero, "no priority-0 advert from the faulted Master"
    resigned = zero[0]["t"]
    measured(f"script failed -> priority 0, {r1.impl}", resigned - failed)
    silent = [r for r in h1 if resigned < r["t"] < healed and r["priority"] != 0]
    assert not silent, f"h1 advertised in FAULT: {silent[:3]}"
    first = next(r for r in adverts(records, "192.0.2.12") if r["t"] > resigned)["t"]
    skew = skew_time(100, round(INTERVAL * 100))
    measured(f"FAULT -> priority-0 takeover, {r2.impl} (skew {skew * 1000:.1f})", first - resigned)
    assert 0 < first - resigned < skew + 0.02, (direction, first - resigned)
    spacing = ", ".join(f"{(b['t'] - a['t']) * 1000:.2f}" for a, b in itertools.pairwise(zero))
    print(f"{r1.impl} in FAULT sent {len(zero)} priority-0 advert(s), {spacing or '-'} ms apart")
    assert [r for r in h1 if r["t"] > healed and r["priority"] == 200], "h1 never came back"

    if r1.vrrpyd is not None:
        r1.vrrpyd.refresh()
        assert r1.vrrpyd.instance()["faults"] == []
    else:
        assert r1.keepalived is not None
        transitions = r1.keepalived.transitions()
        assert transitions[-3:] == ["FAULT", "BACKUP", "MASTER"], transitions
