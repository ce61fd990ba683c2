"""Kernel socket filters that split VRRP traffic into what must wake us and what can wait.

A Backup hears every advert of its Master, ten a second per instance at a
100 ms interval, and almost all of them change nothing but a timer that will
be read later anyway (each advert carries its kernel arrival time). Waking the
event loop for each one is what costs: on a virtual machine a wake-up of a
sleeping process costs 40-60 us of CPU whatever it then does, while reading an
advert from an already-awake loop costs a few microseconds. So each receiving
interface has two raw sockets, and a classic BPF program on each decides, in
the kernel, which queue an advert lands in:

* the *urgent* queue wakes the loop at once: adverts with priority 0 (a
  Master resigning: the Backup must act within Skew_Time) and adverts for a
  VRID we are Master of (a conflict to settle now);
* the *bulk* queue is read when some Backup's Master_Down_Timer is about to
  expire, before it could act on stale information, and at least once a second.

Everything else -- malformed, foreign, truncated -- goes to the bulk queue, so
it is still read, counted and dropped by the decoder. At rest the two programs
are exact complements: every packet the kernel gives the raw sockets is queued
once, on one of them. While the VRIDs move from one queue to the other, some
packets are queued on both, and none on neither (:mod:`vrrpy.runtime.refilter`).

Classic BPF on a raw IPv4 socket sees the packet from its IP header; on a raw
IPv6 socket, from the VRRP header. ``ldxb 4*([0]&0xf)`` loads the IPv4 header
length into X (X = 0 for IPv6), so the VRID is at ``[x+1]``, the priority at
``[x+2]`` -- the same offsets in VRRPv2, VRRPv3 and CARP-less VRRP alike.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Iterable

# <linux/filter.h>, <linux/bpf_common.h>
_LD, _LDX, _ALU, _JMP, _RET = 0x00, 0x01, 0x04, 0x05, 0x06
_W, _B = 0x00, 0x10
_IMM, _IND, _LEN, _MSH = 0x00, 0x40, 0x80, 0xA0
_SUB = 0x10
_JA, _JEQ, _JGT, _JGE = 0x00, 0x10, 0x20, 0x30
_K, _X = 0x00, 0x08
SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)

ACCEPT = 0xFFFFFFFF
DROP = 0
_MAX_JUMP = 255
_RANGES_PER_BLOCK = 100  # two jumps per range: 200 instructions, under the 8-bit offsets

Insn = tuple[int, int, int, int]  # code, jt, jf, k
DROP_ALL: list[Insn] = [(_RET | _K, 0, 0, DROP)]
"""The filter of a send-only socket (and of every socket until it is bound): nothing queued."""
ACCEPT_ALL: list[Insn] = [(_RET | _K, 0, 0, ACCEPT)]
"""Every packet urgent: the fallback when the kernel refuses a filter."""
ALL_URGENT = frozenset(range(256))
"""What :attr:`VRRPSocket.urgent` says while the fallback is in place."""


def _ranges(vrids: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted VRIDs as inclusive ranges: (1, 26) for 1..26."""
    out: list[tuple[int, int]] = []
    for vrid in sorted(set(vrids)):
        if out and out[-1][1] + 1 == vrid:
            out[-1] = (out[-1][0], vrid)
        else:
            out.append((vrid, vrid))
    return out


def program(family: int, urgent_vrids: Iterable[int], urgent: bool) -> list[Insn]:
    """The filter of one queue: ``urgent`` takes priority-0 adverts and ``urgent_vrids``.

    The bulk program (``urgent=False``) takes exactly the rest, short packets included.
    """
    hit, miss = (ACCEPT, DROP) if urgent else (DROP, ACCEPT)
    insns: list[Insn] = []
    if family == 4:
        insns.append((_LDX | _B | _MSH, 0, 0, 0))  # X = IPv4 header length
    else:
        insns.append((_LDX | _W | _IMM, 0, 0, 0))  # X = 0
    # Too short to hold a priority: not urgent (the decoder counts it).
    insns += [
        (_LD | _W | _LEN, 0, 0, 0),
        (_JMP | _JGT | _X, 0, 2, 0),  # len > X, else miss
        (_ALU | _SUB | _X, 0, 0, 0),
        (_JMP | _JGE | _K, 1, 0, 3),  # len - X >= 3 (VRID and priority present)
        (_RET | _K, 0, 0, miss),
        (_LD | _B | _IND, 0, 0, 2),  # priority
        (_JMP | _JEQ | _K, 0, 1, 0),
        (_RET | _K, 0, 0, hit),
        (_LD | _B | _IND, 0, 0, 1),  # VRID
    ]
    ranges = _ranges(urgent_vrids)
    for start in range(0, len(ranges), _RANGES_PER_BLOCK):
        block = ranges[start : start + _RANGES_PER_BLOCK]
        # Each range: "jge lo" then "jgt hi"; a hit jumps to the block's "ret hit",
        # which the last miss steps over with "ja +1".
        body: list[Insn] = []
        for i, (lo, hi) in enumerate(block):
            after = 2 * (len(block) - i - 1)  # instructions after this range's pair
            body.append((_JMP | _JGE | _K, 0, 1, lo))  # below lo: next range
            body.append((_JMP | _JGT | _K, 0, after + 1, hi))  # within: to "ret hit"
        # The "jge lo" miss skips its "jgt"; a miss of the last one lands on "ja".
        insns += body
        insns.append((_JMP | _JA, 0, 0, 1))
        insns.append((_RET | _K, 0, 0, hit))
    insns.append((_RET | _K, 0, 0, miss))
    for code, jt, jf, _k in insns:
        if jt > _MAX_JUMP or jf > _MAX_JUMP:
            raise AssertionError(f"jump out of range in {code:#x}")
    return insns


def attach(sock: socket.socket, insns: list[Insn]) -> None:
    """Attach (or atomically replace) ``sock``'s filter."""
    raw = b"".join(struct.pack("HBBI", *insn) for insn in insns)
    buf = ctypes.create_string_buffer(raw, len(raw))
    fprog = struct.pack("HP", len(insns), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def run(insns: list[Insn], packet: bytes) -> int:
    """Interpret ``insns`` on ``packet`` as the kernel does (for tests and documentation).

    Only the instructions :func:`program` emits are supported; an out-of-bounds
    load returns 0, as in the kernel.
    """
    a = x = 0
    pc = 0
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == _LDX | _B | _MSH:
            if k >= len(packet):
                return 0
            x = 4 * (packet[k] & 0xF)
        elif code == _LDX | _W | _IMM:
            x = k
        elif code == _LD | _W | _LEN:
            a = len(packet)
        elif code == _LD | _B | _IND:
            if x + k >= len(packet):
                return 0
            a = packet[x + k]
        elif code == _ALU | _SUB | _X:
            a = (a - x) & 0xFFFFFFFF
        elif code == _JMP | _JA:
            pc += k
        elif code & 0x07 == _JMP:
            operand = x if code & _X else k
            op = code & 0xF0
            taken = a == operand if op == _JEQ else a > operand if op == _JGT else a >= operand
            pc += jt if taken else jf
        elif code == _RET | _K:
            return k
        else:
            raise ValueError(f"unsupported instruction {code:#x}")
