"""``python -m vrrpy.sim``: a simulated 3-router failover, printed as a timeline.

Three routers share VRID 51 and 192.0.2.100 on a virtual LAN: r1 (priority
200), r2 (150), r3 (100). r1 is killed without a word, comes back and preempts,
then stops gracefully. Each takeover is printed beside what RFC 9568 predicts,
so the numbers can be checked by hand.
"""

from __future__ import annotations

import argparse
import sys

from vrrpy.core.actions import SendAdvertisement
from vrrpy.core.state import State
from vrrpy.core.timers import master_down_interval, skew_time
from vrrpy.sim.lan import VirtualLAN

DELAY = 0.0001  # 100 us on the wire


def build(interval: float, seed: int) -> VirtualLAN:
    """The demo LAN: three routers, one VRID, one virtual address."""
    lan = VirtualLAN(seed=seed)
    for name, priority in (("r1", 200), ("r2", 150), ("r3", 100)):
        lan.add_router(
            lan.add_node(name), 51, ["192.0.2.100"], priority=priority, advert_interval=interval
        )
    return lan


def main(argv: list[str] | None = None) -> int:
    """Run the demo and print its timeline; exit 0 if the run matched the RFC's predictions."""
    parser = argparse.ArgumentParser(prog="python -m vrrpy.sim", description=__doc__.split("\n")[0])
    parser.add_argument("--interval", type=float, default=1.0, help="advert interval, s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    interval = args.interval
    cs = round(interval * 100)
    lan = build(interval, args.seed)

    crash_at, restart_at, stop_at, end = (
        10 * interval,
        20 * interval,
        30 * interval,
        40 * interval,
    )
    sent: list[tuple[float, str]] = []
    lan.observers.append(
        lambda node, _router, action: (
            sent.append((lan.now, node.name)) if isinstance(action, SendAdvertisement) else None
        )
    )
    lan.start()
    lan.at(crash_at, lan.crash, "r1")
    lan.at(restart_at, lan.restart, "r1")
    lan.at(stop_at, lan.stop, "r1")
    lan.run(end)

    print(
        f"vrrpy simulated failover: VRID 51, 192.0.2.100, VRRPv3, advert interval "
        f"{interval * 1000:g} ms, one-way delay {DELAY * 1e6:g} us"
    )
    print(
        "routers: r1 192.0.2.11 priority 200 | r2 192.0.2.12 priority 150 | "
        "r3 192.0.2.13 priority 100\n"
    )
    print(f"{'time (ms)':>12}  {'router':6}  event")
    for entry in lan.timeline:
        if entry.kind == "transition":
            assert entry.old is not None and entry.new is not None
            what = f"{entry.old.value:>6} -> {entry.new.value:<6} ({entry.detail})"
        else:
            what = f"** {entry.kind}: {entry.detail}"
        print(f"{entry.time * 1000:12.3f}  {entry.node:6}  {what}")

    ok = True
    print("\ntakeovers against RFC 9568 (Master_Down_Interval = 3 x interval + Skew_Time):")
    takeovers = [e for e in lan.transitions() if e.new is State.MASTER and e.node == "r2"]
    if len(takeovers) == 2:
        last_advert = max(t for t, name in sent if name == "r1" and t <= crash_at)
        predicted = master_down_interval(150, cs)
        gap = takeovers[0].time - last_advert - DELAY
        ok &= abs(gap - predicted) < 1e-6
        print(
            f"  crash of r1: r2 took over {gap * 1000:.3f} ms after r1's last advert; "
            f"predicted {predicted * 1000:.3f} ms (priority 150)"
        )
        predicted = skew_time(150, cs)
        gap = takeovers[1].time - stop_at - DELAY
        ok &= abs(gap - predicted) < 1e-6
        print(
            f"  graceful stop of r1: r2 took over {gap * 1000:.3f} ms after the priority-0 "
            f"advert; predicted Skew_Time {predicted * 1000:.3f} ms"
        )
    else:
        ok = False
    final = lan.masters(51)
    print(
        f"\nMaster at the end: {', '.join(final) or 'none'}; "
        f"{'matches the RFC' if ok and final == ['r2'] else 'DOES NOT match the RFC'}"
    )
    return 0 if ok and final == ["r2"] else 1


if __name__ == "__main__":
    sys.exit(main())
