"""Properties of the CARP core: the election under random faults, and bad input.

The LAN runs on the simulator's virtual clock (real cores, real codec); the
fault schedules, losses, delays and packets come from hypothesis.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vrrpy.codec import PacketInfo, encode_vrrp
from vrrpy.codec.carp import CARP_MULTICAST_V4, CarpAdvertisement, encode_carp
from vrrpy.codec.carp_auth import OpenBSDAuth
from vrrpy.codec.vrrp import VRRP_MULTICAST_V4, Advertisement
from vrrpy.core import CarpConfig, CarpRouter, State
from vrrpy.sim import LinkProfile, VirtualLAN

VHID = 7
VIP = ["192.0.2.100"]
ME = IPv4Address("192.0.2.11")
PEER = IPv4Address("192.0.2.20")
AUTH = OpenBSDAuth(VHID, [IPv4Address(VIP[0])], "secret")


@dataclass
class Fault:
    time: float
    kind: str
    node: int
    arg: int = 0


faults = st.lists(
    st.builds(
        Fault,
        time=st.floats(0.0, 40.0),
        kind=st.sampled_from(
            ["crash", "restart", "stop", "partition", "heal", "demote", "fault", "recover"]
        ),
        node=st.integers(0, 4),
        arg=st.integers(0, 3),
    ),
    max_size=8,
)


def schedule(lan: VirtualLAN, names: list[str], plan: list[Fault]) -> float:
    """Put ``plan`` on the LAN's calendar; return the time of the last event."""
    last = 0.0
    for fault in sorted(plan, key=lambda f: f.time):
        at, name, last = fault.time, names[fault.node % len(names)], fault.time
        if fault.kind == "crash":
            lan.at(at, lambda n=name: lan.nodes[n].up and lan.crash(n))
        elif fault.kind in ("restart", "stop"):
            func = lan.restart if fault.kind == "restart" else lan.stop

            def act(n: str = name, f: Any = func, up: bool = fault.kind == "stop") -> None:
                if lan.nodes[n].up == up:
                    f(n)

            lan.at(at, act)
        elif fault.kind == "demote":
            lan.at(at, lambda n=name, d=fault.arg: lan.nodes[n].up and lan.set_demote(n, VHID, d))
        elif fault.kind == "fault":
            lan.at(at, lan.fault, name, f"track {fault.arg % 2}")
        elif fault.kind == "recover":
            lan.at(at, lan.recover, name, f"track {fault.arg % 2}")
        elif fault.kind == "partition":
            lan.at(at, lan.partition, [name])
        else:
            lan.at(at, lan.heal)
    return last


def rank(router: CarpRouter) -> tuple[int, int]:
    """What the election compares, lower preferred: the demote count, then the interval."""
    return (router.demote, router.config.advbase * 256 + router.priority)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    advskews=st.lists(st.integers(0, 254), min_size=2, max_size=5, unique=True),
    advbase=st.sampled_from([1, 2]),
    preempt=st.booleans(),
    counter=st.sampled_from(["constant", "increment"]),
    loss=st.floats(0.0, 0.5),
    jitter=st.floats(0.0, 0.3),
    plan=faults,
    seed=st.integers(0, 10_000),
)
def test_one_master_once_faults_settle(
    advskews: list[int],
    advbase: int,
    preempt: bool,
    counter: str,
    loss: float,
    jitter: float,
    plan: list[Fault],
    seed: int,
) -> None:
    """Property: whatever the losses, delays, kills, stops, partitions, demotions and
    faults, once they stop and the LAN is clean again, exactly one live router not in
    FAULT is Master and it alone holds the address; with preemption it is one of the
    best ranked (lowest demote count, then advskew); with every router in FAULT, none."""
    lan = VirtualLAN(seed=seed, default=LinkProfile(loss=loss, jitter=jitter))
    for i, skew in enumerate(advskews, start=1):
        lan.add_carp_router(
            lan.add_node(f"r{i}"),
            VHID,
            VIP,
            advskew=skew,
            advbase=advbase,
            preempt=preempt,
            counter=counter,
            replay_window=counter == "increment",
            counter_start=i * 2**40,
        )
    names = list(lan.nodes)
    lan.start()
    last = schedule(lan, names, plan)

    def clean() -> None:
        lan.heal()
        lan.default = LinkProfile()

    lan.at(last + 1e-6, clean)
    # In flight at most ``jitter``; then a master-down interval, then one interval for
    # two Masters to hear each other (and a preempting Backup to hear the Master).
    settle = jitter + 3 * advbase + 1 + 2 * (advbase + 1) + 0.1
    lan.run(last + settle)
    live = [n for n in lan.nodes.values() if n.up]
    running = [n for n in live if n.router(VHID).state is not State.FAULT]
    masters = lan.masters(VHID)
    if not running:
        assert masters == [] and not any(n.addresses for n in live)
        return
    assert len(masters) == 1, (masters, lan.timeline[-12:])
    assert [n.name for n in live if n.addresses] == masters
    if preempt:
        best = min(rank(n.router(VHID)) for n in running)  # type: ignore[arg-type]
        assert rank(lan.nodes[masters[0]].router(VHID)) == best  # type: ignore[arg-type]


# ------------------------------------------------------------------ bad input


def router_in(state: str) -> CarpRouter:
    r = CarpRouter(
        CarpConfig(
            vhid=VHID,
            primary_address=ME,
            virtual_addresses=(IPv4Address(VIP[0]),),
            advskew=50,
            password="secret",
            replay_window=True,
        )
    )
    if state != "init":
        r.startup(0.0)
    if state == "master":
        r.handle_timer(r.get_timer())  # type: ignore[arg-type]
    elif state == "fault":
        r.fault("x", 1.0)
    elif state == "backup":
        good = CarpAdvertisement(VHID, 10, 1, 5, AUTH.sign(5))
        r.receive_packet(encode_carp(good), PacketInfo(PEER, CARP_MULTICAST_V4, 255), 1.0)
        assert r.master_address == PEER
    return r


def valid_packet(advskew: int, counter: int) -> bytes:
    return encode_carp(CarpAdvertisement(VHID, advskew, 1, counter, AUTH.sign(counter)))


@st.composite
def bad_packets(draw: st.DrawFn) -> tuple[bytes, PacketInfo]:
    """Packets a CARP router must refuse, each for one reason."""
    info = PacketInfo(PEER, CARP_MULTICAST_V4, 255)
    kind = draw(
        st.sampled_from(["random", "flip", "key", "ttl", "vrrp", "vhid", "own", "family", "len"])
    )
    good = valid_packet(draw(st.integers(0, 255)), draw(st.integers(0, 2**64 - 1)))
    if kind == "random":
        data = draw(st.binary(max_size=80))
        assume(len(data) != 36 or data[:1] != b"\x21")  # a valid one is 2**-160 likely
        return data, info
    if kind == "flip":  # one byte changed: the checksum catches any single-byte change
        at = draw(st.integers(0, 35))
        data = bytearray(good)
        data[at] ^= draw(st.integers(1, 255))
        return bytes(data), info
    if kind == "key":
        counter = draw(st.integers(0, 2**64 - 1))
        other = OpenBSDAuth(VHID, [IPv4Address(VIP[0])], draw(st.text(min_size=1, max_size=19)))
        assume(other.key != AUTH.key)
        return encode_carp(CarpAdvertisement(VHID, 0, 1, counter, other.sign(counter))), info
    if kind == "ttl":
        return good, info._replace(ttl=draw(st.integers(0, 254)))
    if kind == "vrrp":
        count = draw(st.integers(1, 8))
        addrs = tuple(IPv4Address(f"192.0.2.{100 + i}") for i in range(count))
        adv = Advertisement(draw(st.sampled_from([2, 3])), VHID, 100, 100, addrs)
        return encode_vrrp(adv, PEER, VRRP_MULTICAST_V4), info._replace(
            destination=VRRP_MULTICAST_V4
        )
    if kind == "vhid":
        vhid = draw(st.integers(1, 255).filter(lambda v: v != VHID))
        other = OpenBSDAuth(vhid, [IPv4Address(VIP[0])], "secret")
        return encode_carp(CarpAdvertisement(vhid, 0, 1, 1, other.sign(1))), info
    if kind == "own":
        return good, info._replace(source=ME)
    if kind == "family":
        return good, PacketInfo(IPv6Address("fe80::20"), IPv6Address("ff02::12"), 255)
    return good + draw(st.binary(min_size=1, max_size=8)), info  # "len"


@settings(max_examples=400, deadline=None)
@given(state=st.sampled_from(["init", "backup", "master", "fault"]), bad=bad_packets())
def test_every_bad_packet_changes_neither_state_nor_timer(
    state: str, bad: tuple[bytes, PacketInfo]
) -> None:
    """Property: a packet refused for any reason is counted once as a drop, returns no
    action, and leaves the state, the deadline and the Master known unchanged."""
    r = router_in(state)
    before = (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs)
    dropped = r.counters.dropped
    data, info = bad
    assert r.receive_packet(data, info, 2.0) == []
    assert (r.state, r.get_timer(), r.master_address, r.master_adver_interval_cs) == before
    assert r.counters.dropped == dropped + 1


@settings(max_examples=300, deadline=None)
@given(
    state=st.sampled_from(["init", "backup", "master", "fault"]),
    data=st.binary(max_size=120),
    ttl=st.integers(0, 255),
)
def test_no_bytes_raise(state: str, data: bytes, ttl: int) -> None:
    """Property: receive_packet never raises, whatever the bytes; a drop changes nothing."""
    r = router_in(state)
    before = (r.state, r.get_timer())
    dropped = r.counters.dropped
    actions = r.receive_packet(data, PacketInfo(PEER, CARP_MULTICAST_V4, ttl), 2.0)
    if r.counters.dropped != dropped:
        assert actions == [] and (r.state, r.get_timer()) == before
