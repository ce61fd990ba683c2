"""Simulator throughput: many routers, many VRIDs, an hour of virtual time.

By default: 3 routers on one LAN, each running 255 VRRPv3 / IPv4 virtual
routers (VRIDs 1..255, advert interval 1 s, one virtual address per VRID).
Priorities rotate across the routers by VRID (200 / 150 / 100), so every
router is Master for a third of the VRIDs. Everything is started at t=0 and
``VirtualLAN.run(3600.0)`` processes one hour of virtual time: elections,
then a steady state of one advert per second per VRID, each delivered to the
other routers (every advert is really encoded, delivered, decoded and run
through the state machine).

Reported: wall time (setup, run), events processed (``VirtualLAN.events``:
timers and deliveries), events per wall second, adverts sent per virtual
second, and whether every VRID ends with exactly the expected Master.
The target is a run under 10 s of wall time for the default setup.

Run: ``python bench/sim_bench.py`` (``--help`` for the size options);
``--profile`` runs the same thing under cProfile and prints the top functions
by own time (wall times are then inflated and the target is not judged).
"""

from __future__ import annotations

import argparse
import cProfile
import platform
import pstats
import sys
import time
from ipaddress import IPv4Address

from common import source_revision
from vrrpy.core.state import State
from vrrpy.sim.lan import VirtualLAN

TARGET_SECONDS = 10.0
_BASE_VIP = IPv4Address("198.51.100.0")
_VIP_255 = IPv4Address("203.0.113.1")


def virtual_address(vrid: int) -> IPv4Address:
    """One address per VRID: 198.51.100.<vrid>, and 203.0.113.1 for VRID 255."""
    return _BASE_VIP + vrid if vrid < 255 else _VIP_255


def priorities(routers: int) -> list[int]:
    """Distinct priorities, best first: 200, 150, 100 for three routers."""
    step = min(50, 199 // max(1, routers - 1))
    return [200 - k * step for k in range(routers)]


def expected_master(vrid: int, routers: int) -> int:
    """Index of the router that gets the best priority for ``vrid``."""
    return (-vrid) % routers


def build(routers: int, vrids: int, interval: float, seed: int = 1) -> VirtualLAN:
    """Set up the LAN: router i has priority ``priorities[(i + vrid) % routers]`` for ``vrid``."""
    lan = VirtualLAN(seed=seed)
    prios = priorities(routers)
    for index in range(routers):
        node = lan.add_node(f"r{index + 1}")
        for vrid in range(1, vrids + 1):
            lan.add_router(
                node,
                vrid=vrid,
                virtual_addresses=[virtual_address(vrid)],
                priority=prios[(index + vrid) % routers],
                version=3,
                advert_interval=interval,
            )
    return lan


def check_masters(lan: VirtualLAN, routers: int, vrids: int) -> list[str]:
    """Every VRID must have exactly one Master, the router with the best priority."""
    problems = []
    for vrid in range(1, vrids + 1):
        masters = lan.masters(vrid)
        expected = f"r{expected_master(vrid, routers) + 1}"
        if masters != [expected]:
            problems.append(f"vrid {vrid}: masters {masters}, expected [{expected!r}]")
    return problems


def adverts_sent(lan: VirtualLAN) -> int:
    """Adverts sent by every router (from the routers' own counters)."""
    return sum(
        router.counters.adverts_sent
        for node in lan.nodes.values()
        for router in node.routers.values()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--routers", type=int, default=3, help="routers (hosts), default 3")
    parser.add_argument("--vrids", type=int, default=255, help="VRIDs per router, default 255")
    parser.add_argument("--hours", type=float, default=1.0, help="virtual hours, default 1")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="advert interval in seconds, default 1.0"
    )
    parser.add_argument("--seed", type=int, default=1, help="simulator seed, default 1")
    parser.add_argument(
        "--profile", action="store_true", help="run under cProfile; print the top 25 by tottime"
    )
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    args = parser.parse_args(argv)
    if not 1 <= args.vrids <= 255:
        parser.error("--vrids must be 1..255")
    if not 2 <= args.routers <= 200:
        parser.error("--routers must be 2..200")
    if args.hours <= 0:
        parser.error("--hours must be positive")

    until = args.hours * 3600.0
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.machine()}, vrrpy {source_revision()}"
    )
    print(
        f"{args.routers} routers x {args.vrids} VRIDs (VRRPv3/IPv4, interval {args.interval:g} s, "
        f"priorities {priorities(args.routers)} rotated by VRID), {until:g} s of virtual time"
    )

    t0 = time.perf_counter()
    lan = build(args.routers, args.vrids, args.interval, args.seed)
    t1 = time.perf_counter()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    lan.start()
    lan.run(until)
    if profiler is not None:
        profiler.disable()
    t2 = time.perf_counter()

    setup, run = t1 - t0, t2 - t1
    sent = adverts_sent(lan)
    transitions = len(lan.transitions())
    print(f"setup (configs):      {setup:8.3f} s wall")
    print(f"start + run:          {run:8.3f} s wall")
    print(f"events:               {lan.events:,}")
    print(f"events per second:    {lan.events / run:,.0f} (wall)")
    print(f"adverts sent:         {sent:,}")
    print(f"adverts per second:   {sent / until:,.1f} (virtual), {sent / run:,.0f} (wall)")
    print(f"deliveries per advert: {args.routers - 1}; transitions: {transitions:,}")
    print(f"virtual/wall speed-up: {until / run:,.0f}x")

    problems = check_masters(lan, args.routers, args.vrids)
    if problems:
        print(f"MASTERS WRONG for {len(problems)} of {args.vrids} VRIDs:")
        for line in problems[:10]:
            print(f"  {line}")
    else:
        states = [
            router.state
            for node in lan.nodes.values()
            for router in node.routers.values()
            if router.state is not State.MASTER
        ]
        print(
            f"masters OK: each of the {args.vrids} VRIDs has exactly one Master, the expected "
            f"router ({len(states):,} others are {sorted({s.value for s in states})})"
        )

    if profiler is not None:
        print()
        print(f"top {args.top} functions by tottime (cProfile; wall times above are inflated):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats(pstats.SortKey.TIME).print_stats(args.top)
        print("target not judged under --profile")
    elif (args.routers, args.vrids, args.hours, args.interval) == (3, 255, 1.0, 1.0):
        verdict = "MET" if run < TARGET_SECONDS else "NOT MET"
        print(
            f"TARGET {verdict}: start + run {run:.2f} s wall, target < {TARGET_SECONDS:g} s "
            f"(setup excluded; with setup {setup + run:.2f} s)"
        )
    else:
        print(f"(target < {TARGET_SECONDS:g} s is defined for the default size only: {run:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
