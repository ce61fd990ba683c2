"""Codec throughput: vrrpy's encode_vrrp + decode_vrrp against scapy's VRRP layers.

A round trip is one encode of an advert into the VRRP message (the IP payload,
checksum computed) plus one decode of those bytes back into fields. Both
libraries produce byte-identical messages for every case, which is checked
before anything is timed.

How each side is measured (the same work, as far as the APIs allow):

* vrrpy: ``encode_vrrp(advert, source, destination)`` on a prepared
  :class:`Advertisement`, then ``decode_vrrp(data, PacketInfo(...))``. The
  decode also validates (TTL, version, type, lengths, checksum) and builds a
  frozen Advertisement with ``ipaddress`` objects.
* scapy: ``bytes(layer)`` on a prepared layer with ``chksum=None``, so every
  build computes the checksum. VRRPv3's checksum covers the IP pseudo-header,
  so the layer is the payload of ``IP(src, dst, ttl=255)`` / ``IPv6(...)`` and
  only the VRRP layer's bytes are built (not the IP header: that would be
  work vrrpy does not do). Decode is ``VRRPv3(data, _underlayer=ip)`` (the IP
  context is what makes scapy dissect the address list as addresses) or
  ``VRRP(data)``, then reading every field. scapy does not verify the
  checksum on dissection; vrrpy does, so the comparison flatters scapy.

Timing: ``time.perf_counter`` around a tight loop, garbage collector off (as
``timeit`` does), best of 3 repeats. The target is a round trip at least 20
times faster than scapy's in every case. The script always exits 0: it is a
report, not a test.

Run: ``python bench/codec_bench.py`` (``--scale 0.2`` for a quick look).
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from itertools import repeat
from typing import Any

import scapy
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.vrrp import VRRP, VRRPv3

from common import source_revision
from vrrpy.codec.vrrp import (
    AUTH_SIMPLE,
    V2_AUTH_LEN,
    VRRP_MULTICAST_V4,
    VRRP_MULTICAST_V6,
    VRRP_TTL,
    Advertisement,
    ChecksumForm,
    IPAddress,
    PacketInfo,
    decode_vrrp,
    encode_vrrp,
)

TARGET_RATIO = 20.0
REPEATS = 3
VRRPY_ITERATIONS = 100_000
SCAPY_ITERATIONS = 3_000

Reader = Callable[[Any], tuple[Any, ...]]


@dataclass(frozen=True)
class Case:
    """One benchmark case: the advert, its IP addressing, and scapy's equivalent."""

    name: str
    advert: Advertisement
    source: IPAddress
    destination: IPAddress
    scapy_layer: Any
    """A scapy VRRP / VRRPv3 layer (with an IP underlayer for v3), ``chksum`` unset."""
    scapy_class: Any
    scapy_context: Any
    """What ``_underlayer`` scapy needs to dissect the message (None for v2)."""
    scapy_read: Reader

    @property
    def info(self) -> PacketInfo:
        return PacketInfo(self.source, self.destination, VRRP_TTL)


def _read_v3(pkt: Any) -> tuple[Any, ...]:
    return (pkt.version, pkt.type, pkt.vrid, pkt.priority, pkt.ipcount, pkt.adv, pkt.addrlist)


def _read_v2(pkt: Any) -> tuple[Any, ...]:
    return (
        pkt.version,
        pkt.type,
        pkt.vrid,
        pkt.priority,
        pkt.ipcount,
        pkt.authtype,
        pkt.adv,
        pkt.addrlist,
        pkt.auth1,
        pkt.auth2,
    )


def _v3_ipv4(count: int) -> Case:
    source = IPv4Address("192.0.2.11")
    vips = tuple(IPv4Address(f"192.0.2.{100 + i}") for i in range(count))
    advert = Advertisement(version=3, vrid=51, priority=200, interval_cs=100, addresses=vips)
    ip = IP(src=str(source), dst=str(VRRP_MULTICAST_V4), ttl=VRRP_TTL)
    packet: Any = ip / VRRPv3(vrid=51, priority=200, adv=100, addrlist=[str(a) for a in vips])
    context = IP(src=str(source), dst=str(VRRP_MULTICAST_V4), ttl=VRRP_TTL)
    return Case(
        f"v3/IPv4, {count} addr{'s' if count > 1 else ''}",
        advert,
        source,
        VRRP_MULTICAST_V4,
        packet[VRRPv3],
        VRRPv3,
        context,
        _read_v3,
    )


def _v3_ipv6() -> Case:
    source = IPv6Address("fe80::11")
    vips = (IPv6Address("fe80::100"),)
    advert = Advertisement(version=3, vrid=51, priority=200, interval_cs=100, addresses=vips)
    ip = IPv6(src=str(source), dst=str(VRRP_MULTICAST_V6), hlim=VRRP_TTL)
    packet: Any = ip / VRRPv3(vrid=51, priority=200, adv=100, addrlist=[str(a) for a in vips])
    context = IPv6(src=str(source), dst=str(VRRP_MULTICAST_V6), hlim=VRRP_TTL)
    return Case(
        "v3/IPv6, 1 addr",
        advert,
        source,
        VRRP_MULTICAST_V6,
        packet[VRRPv3],
        VRRPv3,
        context,
        _read_v3,
    )


def _v2_password() -> Case:
    source = IPv4Address("192.0.2.11")
    vips = (IPv4Address("192.0.2.100"),)
    password = b"secret".ljust(V2_AUTH_LEN, b"\x00")
    advert = Advertisement(
        version=2,
        vrid=7,
        priority=150,
        interval_cs=100,
        addresses=vips,
        auth_type=AUTH_SIMPLE,
        auth_data=password,
        checksum_form=ChecksumForm.VRRP_ONLY,  # what decode reports for v2
    )
    layer = VRRP(
        vrid=7,
        priority=150,
        authtype=AUTH_SIMPLE,
        adv=1,
        addrlist=[str(a) for a in vips],
        auth1=int.from_bytes(password[:4], "big"),
        auth2=int.from_bytes(password[4:], "big"),
    )
    return Case(
        "v2/IPv4, 1 addr, password",
        advert,
        source,
        VRRP_MULTICAST_V4,
        layer,
        VRRP,
        None,
        _read_v2,
    )


def build_cases() -> list[Case]:
    return [_v3_ipv4(1), _v3_ipv4(4), _v3_ipv6(), _v2_password()]


# ------------------------------------------------------------------ sanity


def check_case(case: Case) -> list[str]:
    """Both libraries must agree on the bytes, and each must read the other's."""
    problems: list[str] = []
    ours = encode_vrrp(case.advert, case.source, case.destination)
    theirs = bytes(case.scapy_layer)
    if ours != theirs:
        problems.append(f"bytes differ: vrrpy {ours.hex()} scapy {theirs.hex()}")
    if decode_vrrp(ours, case.info) != case.advert:
        problems.append("vrrpy round trip does not give the advert back")
    if decode_vrrp(theirs, case.info) != case.advert:
        problems.append("vrrpy cannot decode scapy's bytes into the advert")
    dissected = case.scapy_class(ours, _underlayer=case.scapy_context)
    addrlist = dissected.addrlist
    if [str(a) for a in case.advert.addresses] != list(addrlist):
        problems.append(f"scapy dissected the addresses as {addrlist!r}")
    if dissected.chksum != int.from_bytes(ours[6:8], "big"):
        problems.append("scapy read another checksum")
    return problems


# ------------------------------------------------------------------ timing


def _timed(loop: Callable[[int], float], iterations: int) -> float:
    """Best of REPEATS runs of ``loop(iterations)``, in operations per second."""
    best = float("inf")
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for _ in range(REPEATS):
            best = min(best, loop(iterations))
    finally:
        if enabled:
            gc.enable()
    return iterations / best


def vrrpy_round_trip(case: Case, n: int) -> float:
    advert, source, destination, info = case.advert, case.source, case.destination, case.info
    encode, decode = encode_vrrp, decode_vrrp
    start = time.perf_counter()
    for _ in repeat(None, n):
        decode(encode(advert, source, destination), info)
    return time.perf_counter() - start


def vrrpy_encode(case: Case, n: int) -> float:
    advert, source, destination = case.advert, case.source, case.destination
    encode = encode_vrrp
    start = time.perf_counter()
    for _ in repeat(None, n):
        encode(advert, source, destination)
    return time.perf_counter() - start


def vrrpy_decode(case: Case, n: int) -> float:
    data = encode_vrrp(case.advert, case.source, case.destination)
    info = case.info
    decode = decode_vrrp
    start = time.perf_counter()
    for _ in repeat(None, n):
        decode(data, info)
    return time.perf_counter() - start


def scapy_round_trip(case: Case, n: int) -> float:
    layer, cls, context, read = (
        case.scapy_layer,
        case.scapy_class,
        case.scapy_context,
        case.scapy_read,
    )
    start = time.perf_counter()
    for _ in repeat(None, n):
        read(cls(bytes(layer), _underlayer=context))
    return time.perf_counter() - start


def scapy_encode(case: Case, n: int) -> float:
    layer = case.scapy_layer
    start = time.perf_counter()
    for _ in repeat(None, n):
        bytes(layer)
    return time.perf_counter() - start


def scapy_decode(case: Case, n: int) -> float:
    data = bytes(case.scapy_layer)
    cls, context, read = case.scapy_class, case.scapy_context, case.scapy_read
    start = time.perf_counter()
    for _ in repeat(None, n):
        read(cls(data, _underlayer=context))
    return time.perf_counter() - start


def _rate(bench: Callable[[Case, int], float], case: Case, iterations: int) -> float:
    return _timed(lambda n: bench(case, n), iterations)


def _fmt(rate: float) -> str:
    return f"{rate:,.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help=(
            "multiply every iteration count "
            f"(default 1.0: {VRRPY_ITERATIONS:,} vrrpy, {SCAPY_ITERATIONS:,} scapy)"
        ),
    )
    args = parser.parse_args(argv)
    ours_n = max(1, int(VRRPY_ITERATIONS * args.scale))
    scapy_n = max(1, int(SCAPY_ITERATIONS * args.scale))

    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"scapy {scapy.__version__}, {platform.machine()}, vrrpy {source_revision()}"
    )
    print(
        f"iterations: vrrpy {ours_n:,}, scapy {scapy_n:,}; best of {REPEATS}; "
        "round trip = encode (with checksum) + decode (+ read fields)"
    )
    wall = time.perf_counter()
    cases = build_cases()
    for case in cases:
        for problem in check_case(case):
            print(f"WARNING [{case.name}]: {problem}")

    rows: list[tuple[Case, float, float, float, float, float, float]] = []
    for case in cases:
        rows.append(
            (
                case,
                _rate(vrrpy_round_trip, case, ours_n),
                _rate(scapy_round_trip, case, scapy_n),
                _rate(vrrpy_encode, case, ours_n),
                _rate(vrrpy_decode, case, ours_n),
                _rate(scapy_encode, case, scapy_n),
                _rate(scapy_decode, case, scapy_n),
            )
        )

    width = max(len(case.name) for case in cases)
    print()
    print("Round trips (encode + decode), operations per second")
    header = f"{'case':<{width}}  {'vrrpy ops/s':>12}  {'scapy ops/s':>12}  {'ratio':>7}"
    print(header)
    print("-" * len(header))
    failing: list[str] = []
    for case, ours, theirs, *_ in rows:
        ratio = ours / theirs
        mark = "" if ratio >= TARGET_RATIO else "  < target"
        if ratio < TARGET_RATIO:
            failing.append(case.name)
        print(f"{case.name:<{width}}  {_fmt(ours):>12}  {_fmt(theirs):>12}  {ratio:6.1f}x{mark}")

    print()
    print("Encode only / decode only, operations per second (and microseconds per op)")
    header = (
        f"{'case':<{width}}  {'vrrpy enc':>10}  {'vrrpy dec':>10}  "
        f"{'scapy enc':>10}  {'scapy dec':>10}  {'enc ratio':>9}  {'dec ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    for case, _, _, enc, dec, s_enc, s_dec in rows:
        print(
            f"{case.name:<{width}}  {_fmt(enc):>10}  {_fmt(dec):>10}  "
            f"{_fmt(s_enc):>10}  {_fmt(s_dec):>10}  {enc / s_enc:8.1f}x  {dec / s_dec:8.1f}x"
        )
        print(
            f"{'':<{width}}  {1e6 / enc:8.2f}us  {1e6 / dec:8.2f}us  "
            f"{1e6 / s_enc:8.1f}us  {1e6 / s_dec:8.1f}us"
        )

    print()
    print(f"(benchmark wall time {time.perf_counter() - wall:.1f} s)")
    if failing:
        print(
            f"TARGET NOT MET: round trip >= {TARGET_RATIO:g}x scapy fails for "
            f"{len(failing)} of {len(rows)} cases: {', '.join(failing)}"
        )
    else:
        print(f"TARGET MET: round trip >= {TARGET_RATIO:g}x scapy for all {len(rows)} cases")
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception:  # a report, not a test: say what broke, still exit 0
        traceback.print_exc()
    sys.exit(0)
