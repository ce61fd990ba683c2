"""Known answers from a live ucarp (Debian's 1.5.2) in the namespace lab, both ways.

* ucarp in h1 is alone, so Master: its adverts, captured in h2 on a raw
  socket, decode with :func:`decode_carp`, verify with the ucarp profile (and
  with the BSD ones, whose message is the same for one IPv4 address), and
  re-encode to the very bytes it sent. Its counters are random in every
  advert (a lone ucarp never counts up), which :class:`ReplayWindow` accepts.
* ucarp in h1 as Backup hears our adverts from h2: signed with its password,
  it logs each as accepted (its debug line after the digest check) and stays
  Backup; signed with another, it logs ``Bad digest - md2=[...] md=[...]`` with
  the first bytes of the digest it computed, which must be ours for the right
  key, and takes over.
* Debian's ucarp refuses IPv6 addresses: it is IPv4 only.

Needs root, ``ucarp`` and ``stdbuf`` (coreutils): skipped without them on a
developer machine, failed when ``CI=true``.
"""

from __future__ import annotations

import itertools
import random
import re
import select
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from support import require_root, require_tool
from vrrpy.codec.carp import CARP_MULTICAST_V4, CarpAdvertisement, decode_carp, encode_carp
from vrrpy.codec.carp_auth import (
    FreeBSDAuth,
    OpenBSDAuth,
    ReplayWindow,
    UcarpAuth,
    verify_carp,
)
from vrrpy.codec.errors import CarpBadHMAC
from vrrpy.codec.ip import parse_ipv4
from vrrpy.codec.vrrp import PacketInfo
from vrrpy.lab import Host, Lab, in_netns, stop_process

pytestmark = pytest.mark.system

VHID = 7
VIP = IPv4Address("192.0.2.200")
PASSWORD = "vrrpy-kat"
BAD_DIGEST = re.compile(r"Bad digest - md2=\[([0-9a-f]{8})\.\.\.\] md=\[([0-9a-f]{8})\.\.\.\]")


@pytest.fixture(scope="module")
def carp_lab() -> Iterator[Lab]:
    require_root()
    require_tool("ucarp")
    require_tool("stdbuf")
    with Lab(hosts=2) as built:
        yield built


@contextmanager
def ucarp(host: Host, log: Path, *args: str) -> Iterator[Path]:
    """ucarp on ``host``'s eth0 (debug on, no syslog, output line-buffered into ``log``)."""
    with log.open("wb") as out:
        argv = ["stdbuf", "-oL", "ucarp", "-i", "eth0", "-s", str(host.ipv4), "-v", str(VHID)]
        argv += ["-p", PASSWORD, "-a", str(VIP), "-f", "none", "-D", *args]
        proc = host.popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield log
        finally:
            stop_process(proc)


def group_socket(host: Host) -> socket.socket:
    """A raw IP-112 socket in ``host``, joined to 224.0.0.18 on eth0, sending with TTL 255."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
        index = socket.if_nametoindex("eth0")
        mreq = CARP_MULTICAST_V4.packed + bytes(4) + index.to_bytes(4, "little")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        return sock

    return in_netns(host.netns, make)


def capture(sock: socket.socket, source: IPv4Address, count: int, timeout: float) -> list[bytes]:
    """The IP datagrams of ``count`` adverts from ``source``, within ``timeout`` seconds."""
    found: list[bytes] = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            break
        datagram = sock.recv(4096)
        if parse_ipv4(datagram)[0] == source:
            found.append(datagram)
    return found


def send_adverts(
    sock: socket.socket, auth: UcarpAuth, seconds: float, right: UcarpAuth | None = None
) -> list[tuple[int, bytes, bytes]]:
    """Send a 1/0 advert every 0.25 s (counter random, then +1): (counter, sent, right digest)."""
    sent = []
    counter = random.getrandbits(64)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        advert = CarpAdvertisement(vhid=VHID, advskew=0, advbase=1, counter=counter)
        wire = encode_carp(advert, auth)
        sock.sendto(wire, (str(CARP_MULTICAST_V4), 0))
        sent.append((counter, wire[16:], (right or auth).sign(counter)))
        counter = (counter + 1) % 2**64
        time.sleep(0.25)
    return sent


def test_live_ucarp_adverts_decode_verify_and_reencode(carp_lab: Lab, tmp_path: Path) -> None:
    h1, h2 = carp_lab["h1"], carp_lab["h2"]
    sock = group_socket(h2)
    try:
        # advbase 0, advskew 40: Master after 40/256 s, then an advert every 40/256 s.
        with ucarp(h1, tmp_path / "ucarp.log", "-b", "0", "-k", "40") as log:
            datagrams = capture(sock, h1.ipv4, 6, timeout=10)
            text = log.read_text(errors="replace")
    finally:
        sock.close()
    assert len(datagrams) == 6, text
    assert "Switching to state: MASTER" in text

    auth = UcarpAuth(VHID, VIP, PASSWORD)
    window = ReplayWindow()
    counters = []
    for datagram in datagrams:
        source, destination, ttl, proto, payload = parse_ipv4(datagram)
        assert (destination, ttl, proto, len(payload)) == (CARP_MULTICAST_V4, 255, 112, 36)
        advert = decode_carp(payload, PacketInfo(source, destination, ttl))
        assert (advert.vhid, advert.advbase, advert.advskew, advert.demote) == (VHID, 0, 40, 0)
        verify_carp(advert, auth)
        verify_carp(advert, OpenBSDAuth(VHID, [VIP], PASSWORD))
        verify_carp(advert, FreeBSDAuth(VHID, [VIP], PASSWORD))
        with pytest.raises(CarpBadHMAC):
            verify_carp(advert, UcarpAuth(VHID, VIP, PASSWORD + "!"))
        assert encode_carp(advert, auth) == payload
        window.check((source, VHID), advert.counter)
        counters.append(advert.counter)
    # A lone ucarp Master draws a new random counter for every advert.
    assert len(set(counters)) == len(counters)
    steps = [(b - a) % 2**64 for a, b in itertools.pairwise(counters)]
    assert not all(step == 1 for step in steps), [hex(c) for c in counters]


def test_ucarp_backup_accepts_our_signed_adverts(carp_lab: Lab, tmp_path: Path) -> None:
    h1, h2 = carp_lab["h1"], carp_lab["h2"]
    sock = group_socket(h2)
    try:
        # ucarp takes over 3 + 100/256 s after the last advert it accepted. (Not less:
        # libpcap hands it packets in blocks, up to 1 s late; see docs/carp.md.)
        with ucarp(h1, tmp_path / "ucarp.log", "-b", "1", "-k", "100") as log:
            sent = send_adverts(sock, UcarpAuth(VHID, VIP, PASSWORD), seconds=5.0)
            text = log.read_text(errors="replace")
    finally:
        sock.close()
    assert len(sent) >= 15
    assert "Switching to state: BACKUP" in text
    assert "Switching to state: MASTER" not in text, text
    assert "Bad digest" not in text, text
    # ucarp prints this debug line only once a packet's digest has matched.
    assert text.count("sc_tv(local)") >= len(sent) // 2, text


def test_ucarp_logs_bad_digest_for_another_key_and_takes_over(
    carp_lab: Lab, tmp_path: Path
) -> None:
    h1, h2 = carp_lab["h1"], carp_lab["h2"]
    sock = group_socket(h2)
    right = UcarpAuth(VHID, VIP, PASSWORD)
    try:
        with ucarp(h1, tmp_path / "ucarp.log", "-b", "1", "-k", "100") as log:
            sent = send_adverts(sock, UcarpAuth(VHID, VIP, "not-the-password"), 4.5, right)
            text = log.read_text(errors="replace")
    finally:
        sock.close()
    assert "Switching to state: MASTER" in text, text
    assert "Check vhid, password and virtual IP address" in text
    logged = set(BAD_DIGEST.findall(text))
    assert logged, text
    # ucarp's md2 (what it computed) is our digest for its key; md is what we sent.
    expected = {(good[:4].hex(), bad[:4].hex()) for _, bad, good in sent}
    assert logged <= expected, (logged, expected)


def test_debian_ucarp_is_ipv4_only() -> None:
    binary = require_tool("ucarp")
    for flag, value in (("-s", "2001:db8::11"), ("-a", "2001:db8::200")):
        argv = [binary, "-i", "lo", "-s", "192.0.2.11", "-v", "7", "-p", "x", "-a", "192.0.2.200"]
        argv[argv.index(flag) + 1] = value
        result = subprocess.run(
            [*argv, "-f", "none"], capture_output=True, text=True, timeout=10, check=False
        )
        assert result.returncode == 1
        assert f"Invalid address: [{value}]" in result.stdout + result.stderr
