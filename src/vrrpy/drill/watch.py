"""The client's eyes: probes to the virtual addresses, its neighbour table, and the wire.

Three small stdlib-only scripts run in the client's namespace, each a process
of its own (so that none waits for another's share of the interpreter), each
printing one JSON object per line; :class:`Watcher` reads them in a thread.
All stamps are CLOCK_REALTIME (``time.time()`` or the kernel's
SO_TIMESTAMPNS), the clock the drill marks its own actions with.

* **probes**: an ICMP (ICMPv6) echo request to each virtual address every
  ``period`` seconds, all addresses in one round, numbered; a record per round
  sent (``{"k": "s", "n": SEQ, "t": T}``) and per reply (``{"k": "r", "i":
  TARGET, "n": SEQ, "t": T}``, the kernel's receive time). A probe without a
  reply is a moment the client could not reach the address: that is the
  outage the drill reports, as a user of the address would live it.
* **neighbours**: the kernel's neighbour notifications (a NETLINK_ROUTE socket
  joined to RTNLGRP_NEIGH), for the virtual addresses: which MAC the client
  sends to, and when that changed (``{"k": "n", "dst": A, "ll": MAC, "st":
  NUD_STATE, "t": T}``, stamped when ``recv`` returns).
* **wire**: VRRP adverts and announcements (gratuitous ARP, unsolicited
  neighbour advertisements) from the routers, with the kernel's receive
  stamps (``{"k": "a", ...}``, ``{"k": "g", ...}``). A classic BPF filter drops
  the attacker's frames in the kernel, so a flood of forged adverts does not
  bury the routers' own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vrrpy.lab import Host, stop_process

__all__ = ["NEIGH_SCRIPT", "PROBE_SCRIPT", "SNIFF_SCRIPT", "Watcher"]

Record = dict[str, Any]

PROBE_SCRIPT = r"""
import json, os, select, socket, struct, sys, threading, time
targets = json.loads(sys.argv[1]); period = float(sys.argv[2])
ident = os.getpid() & 0xFFFF
s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for s in (s4, s6):
    s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS
    s.setsockopt(socket.SOL_SOCKET, 33, 1 << 20)  # SO_RCVBUFFORCE
dests = []
for target in targets:
    if ":" in target["addr"]:
        scope = socket.if_nametoindex(target["scope"]) if target.get("scope") else 0
        dests.append((s6, (target["addr"], 0, 0, scope), 128))
    else:
        dests.append((s4, (target["addr"], 0), 8))
lock = threading.Lock()

def emit(rec):
    line = json.dumps(rec)
    with lock:
        sys.stdout.write(line + "\n"); sys.stdout.flush()

def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF

def receive():
    while True:
        ready, _, _ = select.select([s4, s6], [], [])
        for s in ready:
            data, anc, _, _ = s.recvmsg(2048, 64)
            t = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == 35:
                    sec, nsec = struct.unpack("qq", value[:16]); t = sec + nsec / 1e9
            if s is s4:
                data = data[(data[0] & 15) * 4:]
                reply = 0
            else:
                reply = 129
            if len(data) < 9 or data[0] != reply:
                continue
            got, seq = struct.unpack("!HH", data[4:8])
            if got == ident:
                emit({"k": "r", "i": data[8], "n": seq, "t": t})

threading.Thread(target=receive, daemon=True).start()
print(json.dumps({"k": "ready", "ident": ident}), flush=True)
start = time.monotonic(); seq = 0
while True:
    seq += 1
    delay = start + seq * period - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    emit({"k": "s", "n": seq & 0xFFFF, "t": time.time()})
    for index, (s, dest, kind) in enumerate(dests):
        body = struct.pack("!BBHHHB", kind, 0, 0, ident, seq & 0xFFFF, index) + b"drill"
        if kind == 8:
            body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
        try:
            s.sendto(body, dest)
        except OSError:
            pass  # no route, neighbour failed: a lost probe
"""

NEIGH_SCRIPT = r"""
import json, socket, struct, sys, time
vips = {socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a): a
        for a in json.loads(sys.argv[1])}
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(socket.SOL_SOCKET, 33, 1 << 20)
s.bind((0, 1 << 2))  # RTMGRP_NEIGH
print(json.dumps({"k": "ready"}), flush=True)
while True:
    try:
        data = s.recv(1 << 16)
    except OSError as exc:  # ENOBUFS: notifications lost
        print(json.dumps({"k": "lost", "t": time.time(), "error": str(exc)}), flush=True)
        continue
    t = time.time()
    off = 0
    while off + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if mtype in (28, 29) and length >= 28:
            state = struct.unpack_from("=H", data, off + 24)[0]
            dst = ll = None
            a, end = off + 28, off + length
            while a + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                if atype == 1:
                    dst = data[a + 4:a + alen]
                elif atype == 2:
                    ll = data[a + 4:a + alen].hex(":")
                a += (alen + 3) & ~3
            if dst in vips:
                print(json.dumps({"k": "n", "dst": vips[dst], "ll": ll, "st": state,
                                  "del": mtype == 29, "t": t}), flush=True)
        off += (length + 3) & ~3
"""

SNIFF_SCRIPT = r"""
import ctypes, json, socket, struct, sys, time
conf = json.loads(sys.argv[1])
vips = {socket.inet_pton(socket.AF_INET6 if ":" in a else socket.AF_INET, a): a
        for a in conf["vips"]}
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, 35, 1)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
drop = bytes.fromhex(conf["drop_mac"].replace(":", ""))
if drop:
    # ld [6]; jeq first4 ? next : accept; ldh [10]; jeq last2 ? drop : accept
    code = [(0x20, 0, 0, 6), (0x15, 0, 3, int.from_bytes(drop[:4], "big")),
            (0x28, 0, 0, 10), (0x15, 0, 1, int.from_bytes(drop[4:], "big")),
            (0x06, 0, 0, 0), (0x06, 0, 0, 0x40000)]
    program = b"".join(struct.pack("HBBI", *insn) for insn in code)
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(code), ctypes.addressof(buffer))
    s.setsockopt(socket.SOL_SOCKET, 26, fprog)  # SO_ATTACH_FILTER
print(json.dumps({"k": "ready"}), flush=True)
while True:
    data, anc, _, addr = s.recvmsg(4096, 64)
    if addr[2] == 4 or len(data) < 14:  # our own frames
        continue
    t = time.time()
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == 35:
            sec, nsec = struct.unpack("qq", value[:16]); t = sec + nsec / 1e9
    mac = data[6:12]
    if mac == drop:
        continue
    etype = data[12:14]
    rec = None
    if etype == b"\x08\x00" and len(data) >= 38 and data[23] == 112:
        p = 14 + (data[14] & 15) * 4
        rec = {"k": "a", "src": socket.inet_ntop(socket.AF_INET, data[26:30]),
               "ver": data[p] >> 4, "vrid": data[p + 1], "prio": data[p + 2]}
    elif etype == b"\x86\xdd" and len(data) >= 58 and data[20] == 112:
        rec = {"k": "a", "src": socket.inet_ntop(socket.AF_INET6, data[22:38]),
               "ver": data[54] >> 4, "vrid": data[55], "prio": data[56]}
    elif (etype == b"\x08\x06" and len(data) >= 42 and data[28:32] in vips
          and data[28:32] == data[38:42]):
        rec = {"k": "g", "ip": vips[data[28:32]], "sha": data[22:28].hex(":")}
    elif (etype == b"\x86\xdd" and len(data) >= 78 and data[20] == 58 and data[54] == 136
          and data[62:78] in vips and not data[58] & 0x40):
        rec = {"k": "g", "ip": vips[data[62:78]], "sha": mac.hex(":")}
    if rec is not None:
        rec["t"] = t; rec["if"] = addr[0]; rec["mac"] = mac.hex(":")
        print(json.dumps(rec), flush=True)
"""


class Watcher:
    """One JSON-lines script in a lab host, its output read by a thread into :attr:`records`.

    Returns once the script said it is ready (its sockets are open), so that
    nothing the drill does afterwards is missed.
    """

    def __init__(self, host: Host, script: str, args: Sequence[str], log: Path) -> None:
        with open(log, "ab") as errors:
            self.proc = host.popen(
                [sys.executable, "-c", script, *args],
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        assert self.proc.stdout is not None
        first = self.proc.stdout.readline()
        if not first:
            error = log.read_text(errors="replace").strip()
            raise RuntimeError(f"a watcher in {host.name} failed to start: {error}")
        self.ready: Record = json.loads(first)
        self.records: list[Record] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip():
                self.records.append(json.loads(line))

    def snapshot(self) -> list[Record]:
        """The records so far (a copy: the reader keeps appending)."""
        return list(self.records)

    def stop(self) -> list[Record]:
        """Stop the script (by its PID) and return everything it printed."""
        stop_process(self.proc)
        self._reader.join(timeout=5)
        return self.records
