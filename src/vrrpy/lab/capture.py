"""A stdlib-only sniffer for lab hosts: VRRP adverts and ARP frames with kernel timestamps."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

from vrrpy.lab.netns import Host, stop_process

_CAPTURE_SCRIPT = r"""
import json, socket, struct, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.setsockopt(socket.SOL_SOCKET, 35, 1)  # SO_TIMESTAMPNS: the kernel's receive time
print(json.dumps({"kind": "ready", "t": time.time()}), flush=True)
while True:
    data, anc, _, addr = s.recvmsg(65535, 64)
    t = time.time()
    for level, kind, value in anc:
        if level == socket.SOL_SOCKET and kind == 35:
            sec, nsec = struct.unpack("qq", value[:16]); t = sec + nsec / 1e9
    if len(data) < 14:
        continue
    src_mac = data[6:12].hex(":")
    etype = struct.unpack("!H", data[12:14])[0]
    rec = None
    if etype == 0x0800 and len(data) >= 34 and data[23] == 112:
        ihl = (data[14] & 15) * 4; p = data[14 + ihl:]
        if len(p) >= 4:
            rec = {"kind": "vrrp", "src": socket.inet_ntop(socket.AF_INET, data[26:30]),
                   "dst": socket.inet_ntop(socket.AF_INET, data[30:34]),
                   "ttl": data[22], "version": p[0] >> 4, "vrid": p[1], "priority": p[2],
                   "payload": p.hex()}
    elif etype == 0x86DD and len(data) >= 58 and data[20] == 112:
        p = data[54:]
        rec = {"kind": "vrrp", "src": socket.inet_ntop(socket.AF_INET6, data[22:38]),
               "dst": socket.inet_ntop(socket.AF_INET6, data[38:54]),
               "ttl": data[21], "version": p[0] >> 4, "vrid": p[1], "priority": p[2],
               "payload": p.hex()}
    elif etype == 0x0806 and len(data) >= 42:
        rec = {"kind": "arp", "op": struct.unpack("!H", data[20:22])[0],
               "sender_mac": data[22:28].hex(":"),
               "sender_ip": socket.inet_ntop(socket.AF_INET, data[28:32]),
               "target_ip": socket.inet_ntop(socket.AF_INET, data[38:42])}
    if rec is not None:
        rec["t"] = t; rec["src_mac"] = src_mac; rec["outgoing"] = addr[2] == 4
        print(json.dumps(rec), flush=True)
"""


class Capture:
    """Records VRRP and CARP adverts and ARP frames seen on a host's ``eth0``, with kernel
    timestamps (an advert's record has its IP payload as hex: ``payload``).

    A tiny stdlib-only sniffer runs in the host's namespace (no tcpdump needed)
    and prints one JSON object per frame; :meth:`records` returns them.
    """

    def __init__(self, host: Host, interface: str = "eth0") -> None:
        self.host = host
        self._proc = host.popen(
            [sys.executable, "-c", _CAPTURE_SCRIPT, interface],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.records: list[dict[str, Any]] = []
        """Frames seen so far (appended by a reader thread while capturing)."""
        assert self._proc.stdout is not None
        first = self._proc.stdout.readline()  # blocks until the socket is bound
        if not first:
            raise RuntimeError("capture failed to start")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip():
                self.records.append(json.loads(line))

    def stop(self) -> list[dict[str, Any]]:
        """Stop capturing and return every record."""
        stop_process(self._proc)
        self._reader.join(timeout=5)
        return self.records
