"""The kernel filters that split received adverts into an urgent and a bulk queue.

Two layers: the programs themselves, run by the reference interpreter in
``vridfilter.run`` over arbitrary bytes (the two queues are exact complements,
the urgent one takes priority 0 and the urgent VRIDs); and the same programs in
a real kernel, on a real ``VRRPSocket`` in a namespace, with crafted packets
from a second host -- including hundreds of filter swaps under traffic, where
the kernel does queue twins (the test fails if ``read`` stops dropping them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support import require_root
from vrrpy.lab import Lab
from vrrpy.runtime import vridfilter
from vrrpy.runtime.vridfilter import ACCEPT, DROP, program, run


def expected_urgent(family: int, packet: bytes, vrids: set[int]) -> bool:
    offset = 4 * (packet[0] & 0x0F) if family == 4 else 0
    if len(packet) < offset + 3:
        return False
    return packet[offset + 2] == 0 or packet[offset + 1] in vrids


packets_v4 = st.binary(min_size=1, max_size=48).map(
    lambda b: bytes([(b[0] & 0xF0) | (5 + b[0] % 3)]) + b[1:]
)


@settings(max_examples=400, deadline=None)
@given(
    family=st.sampled_from([4, 6]),
    vrids=st.sets(st.integers(1, 255)),
    v4=packets_v4,
    v6=st.binary(min_size=0, max_size=24),
)
def test_the_queues_are_exact_complements_and_urgent_means_priority_0_or_master(
    family: int, vrids: set[int], v4: bytes, v6: bytes
) -> None:
    packet = v4 if family == 4 else v6
    urgent, bulk = program(family, vrids, True), program(family, vrids, False)
    want = expected_urgent(family, packet, vrids)
    assert (run(urgent, packet) == ACCEPT) is want
    assert (run(bulk, packet) == ACCEPT) is (not want)


def test_every_vrid_set_fits_classic_bpf() -> None:
    # All 255 VRIDs, every other one (128 ranges: two blocks), none.
    for vrids in (set(range(1, 256)), set(range(1, 256, 2)), set()):
        insns = program(4, vrids, True)
        assert len(insns) <= 4096
        for vrid in range(256):
            packet = bytes([0x45] + [0] * 19 + [0x31, vrid, 100])
            assert (run(insns, packet) == ACCEPT) is (vrid in vrids)
    assert run(vridfilter.DROP_ALL, b"\x45" * 30) == DROP


# ------------------------------------------------------------- in a real kernel

RECEIVER = r"""
import json, sys, time
from ipaddress import ip_address
from vrrpy.runtime.sockets import VRRPSocket
family = int(sys.argv[1])
source = ip_address(sys.argv[2])
sock = VRRPSocket("eth0", int(sys.argv[3]), family, source)
def drain(s):
    return sorted([list(p[1][:3]) for p in sock._collect(s, 8192)])
for urgent in ([20], [10]):
    sock.set_urgent(frozenset(urgent))
    print("ready", flush=True)
    sys.stdin.readline()
    time.sleep(0.2)
    print(json.dumps({"urgent": drain(sock.sock), "bulk": drain(sock.bulk)}), flush=True)
"""

SENDER = r"""
import socket, sys
family = int(sys.argv[1])
af = socket.AF_INET if family == 4 else socket.AF_INET6
s = socket.socket(af, socket.SOCK_RAW, 112)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
if family == 4:
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    dest = ("224.0.0.18", 0)
else:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
    dest = ("ff02::12", 0, 0, socket.if_nametoindex("eth0"))
for payload in (b"\x31\x0a\x64", b"\x31\x14\x64", b"\x31\x1e\x00", b"\x31\x28", b"\x31"):
    s.sendto(payload + b"\x00" * 5 if len(payload) == 3 else payload, dest)
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root()
    with Lab(hosts=2) as built:
        yield built


def start_receiver(lab: Lab, family: int, script: str) -> subprocess.Popen[bytes]:
    """Run ``script`` in h1 with (family, eth0's source address, eth0's index), piped."""
    h1 = lab["h1"]
    index = h1.run(["cat", "/sys/class/net/eth0/ifindex"]).stdout.strip()
    source = str(h1.ipv4 if family == 4 else h1.link_local)
    return h1.popen(
        [sys.executable, "-c", script, str(family), source, index],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


@pytest.mark.parametrize("family", [4, 6])
def test_a_real_socket_pair_splits_and_refilters_in_the_kernel(lab: Lab, family: int) -> None:
    h2 = lab["h2"]
    receiver = start_receiver(lab, family, RECEIVER)
    assert receiver.stdin is not None and receiver.stdout is not None
    results = []
    for _ in range(2):
        assert receiver.stdout.readline().strip() == b"ready"
        h2.run([sys.executable, "-c", SENDER, str(family)])
        receiver.stdin.write(b"go\n")
        receiver.stdin.flush()
        results.append(json.loads(receiver.stdout.readline()))
    receiver.wait(timeout=10)
    # Urgent VRID 20: VRID 20 and the priority-0 advert (VRID 30) wake us.
    assert results[0]["urgent"] == [[0x31, 20, 100], [0x31, 30, 0]]
    # Everything else -- VRID 10 and the two truncated packets -- waits, to be counted.
    assert results[0]["bulk"] == [[0x31], [0x31, 10, 100], [0x31, 40]]
    # After set_urgent({10}), the other way round; nothing lost, nothing twice.
    assert results[1]["urgent"] == [[0x31, 10, 100], [0x31, 30, 0]]
    assert results[1]["bulk"] == [[0x31], [0x31, 20, 100], [0x31, 40]]


SWAPPER = r"""
import asyncio, json, struct, sys, time
from ipaddress import ip_address
from vrrpy.runtime.refilter import SharedGrace
from vrrpy.runtime.sockets import VRRPSocket
TARGETS = [[20], [10], [], [10, 20], [20], [], [10]]
async def main():
    loop = asyncio.get_running_loop()
    sock = VRRPSocket(
        "eth0", int(sys.argv[3]), int(sys.argv[1]), ip_address(sys.argv[2]),
        after_deliveries=SharedGrace(loop),
    )
    seen = []
    def deliver(data, info, arrival):
        seen.append(struct.unpack("!I", data[4:8])[0])
    print("ready", flush=True)
    done = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), done.set)  # the sender has finished
    requests = 0
    while not done.is_set():
        sock.set_urgent(frozenset(TARGETS[requests % len(TARGETS)]))
        requests += 1
        sock.read(deliver)
        await asyncio.sleep(0.0005 * (requests % 11))
    await asyncio.sleep(0.2)
    sock.read(deliver)
    print(json.dumps({"changes": sock.refilter.changes, "seen": seen}), flush=True)
asyncio.run(main())
"""

BLASTER = r"""
import socket, struct, sys, time
family, count = int(sys.argv[1]), int(sys.argv[2])
af = socket.AF_INET if family == 4 else socket.AF_INET6
s = socket.socket(af, socket.SOCK_RAW, 112)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
if family == 4:
    dest = ("224.0.0.18", 0)
else:
    dest = ("ff02::12", 0, 0, socket.if_nametoindex("eth0"))
for seq in range(count):
    s.sendto(bytes([0x31, 10 if seq % 2 else 20, 100, 0]) + struct.pack("!I", seq), dest)
    if seq % 50 == 49:
        time.sleep(0.02)
"""


@pytest.mark.parametrize("family", [4, 6])
def test_filter_swaps_under_traffic_lose_nothing_and_deliver_nothing_twice(
    lab: Lab, family: int
) -> None:
    # The receiver keeps changing which of VRIDs 10 and 20 are urgent, in an event
    # loop as the runtime does, while 4,000 adverts for both arrive (over about 1.6 s);
    # read() must hand each one over exactly once.
    h2 = lab["h2"]
    receiver = start_receiver(lab, family, SWAPPER)
    assert receiver.stdin is not None and receiver.stdout is not None
    assert receiver.stdout.readline().strip() == b"ready"
    count = 4000
    h2.run([sys.executable, "-c", BLASTER, str(family), str(count)])
    receiver.stdin.write(b"done\n")
    receiver.stdin.flush()
    result = json.loads(receiver.stdout.readline())
    receiver.wait(timeout=10)
    assert result["changes"] > 50  # filter changes, a grace period (~8 ms) apart
    seen = result["seen"]
    assert len(seen) == len(set(seen)), "an advert was delivered twice"
    assert sorted(seen) == list(range(count)), f"{count - len(set(seen))} adverts lost"
