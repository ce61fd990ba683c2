"""Check a setup in the simulator before deploying it.

Two routers share 192.0.2.100; the link between them loses 20 % of packets.
How often does the Backup wrongly take over, and who ends up Master?

    PYTHONPATH=src python3 examples/simulate_my_setup.py
"""

from __future__ import annotations

from vrrpy.core import State
from vrrpy.sim import VirtualLAN


def main() -> None:
    """Run one simulated hour with a lossy link and report the takeovers."""
    lan = VirtualLAN(seed=42)
    lan.add_router(lan.add_node("edge1"), 10, ["192.0.2.100"], priority=200, advert_interval=0.1)
    lan.add_router(lan.add_node("edge2"), 10, ["192.0.2.100"], priority=100, advert_interval=0.1)
    lan.link("edge1", "edge2", loss=0.2)
    lan.start()
    lan.run(3600.0)
    takeovers = [e for e in lan.transitions() if e.new is State.MASTER]
    print(f"takeovers in one hour at 20 % loss: {len(takeovers)}")
    for entry in takeovers[:5]:
        print(f"  {entry.time:9.3f} s  {entry.node}: {entry.detail}")
    print(f"Master now: {lan.masters(10)}")


if __name__ == "__main__":
    main()
