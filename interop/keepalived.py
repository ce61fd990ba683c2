"""keepalived in a lab host: configuration from the same instance dicts as vrrpyd, its
state and its complaints read from its log.

The state comes from keepalived's own "(NAME) Entering MASTER STATE" lines, which
its VRRP process writes in order, unbuffered. (A notify script, used at first,
is forked per transition: two transitions a few milliseconds apart on a loaded
machine could append their lines in the wrong order, and the state read would
then be wrong for good.)

The instance dicts use vrrpyd's keys (``name``, ``vrid``, ``priority``,
``advert_interval``, ``virtual_addresses``, ``version``, ``preempt``,
``preempt_delay``, ``unicast_peers``, ``use_vmac``, ``auth_pass``, ``accept``,
``garp_repeat``), so one scenario describes both implementations. One key is
keepalived's alone: ``unicast_src_ip`` (default: the host's IPv4 address, or its
IPv6 link-local address) and ``unicast_ttl`` (default 255 for IPv6, keepalived's
own for IPv4; None leaves it out).

Tracked scripts come the same way: vrrpyd's ``[[track_script]]`` tables (``name``,
``script``, ``interval``, ``timeout``, ``rise``, ``fall``, ``weight``) become
``vrrp_script`` blocks, and an instance's ``track_script`` list (names, or tables
with ``name`` and ``weight``) its ``track_script { ... }``. keepalived 2.2.7 reads a
script's ``interval`` and ``timeout`` as whole seconds, at least 1 (a fraction is a
configuration error and the default, 1 s, is used): they are rounded up here, so a
scenario with vrrpy's 0.2 s gives keepalived 1 s.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vrrpy.lab import Host, wait_for

# What keepalived logs when it drops or distrusts an advert (keepalived/vrrp/vrrp.c,
# vrrp_check_packet and the state handlers). Any of these in a scenario that did not
# provoke it on purpose means our packets are wrong. The last lines are keepalived
# dropping or weakening a tracked script at load (a script it will not run, a track
# naming it, a number it cannot read): a tracking scenario would otherwise test a
# keepalived that tracks nothing.
COMPLAINTS = re.compile(
    "|".join(
        [
            r"vrrp packet from \S+ too (short|long)",
            r"invalid TTL/HL",
            r"wrong VRRP version",
            r"Invalid auth type",
            r"received a \d+ auth from",
            r"received an invalid passwd",
            r"advertisement interval mismatch",
            r"Invalid packet type",
            r"ip_tot_len mismatch",
            r"Invalid VRRPv[23] checksum",
            r"Expected \S+icast packet",
            r"since we are address owner",
            r"expected \d+ VIPs but received",
            r"ip address associated with VRID",
            r"not a unicast peer",
            r"CONFIGURATION ERROR",
            r"equal priority advert received from remote host with our IP address",
            r"track script \S+ not found",
            r"Unable to set default user",
            r"SECURITY VIOLATION",
            r"WARNING - invalid number",
            r"vrrp script (interval|timeout)",
        ]
    )
)

ENTERING = re.compile(r"\(([^)\s]+)\) Entering (MASTER|BACKUP|FAULT) STATE")


def _addresses(values: Any) -> list[str]:
    return [str(v) for v in values]


def _seconds(value: float) -> int:
    """A script's interval or timeout as keepalived 2.2.7 reads it: whole seconds, at least 1."""
    return max(1, math.ceil(value - 1e-9))


def _vrrp_script(table: Mapping[str, Any]) -> list[str]:
    """One vrrpyd ``[[track_script]]`` table as keepalived's ``vrrp_script`` block.

    The command is quoted as a whole: keepalived splits it into words itself and runs
    it without a shell (vrrpy does the same), so both run the same program."""
    out = [f"vrrp_script {table['name']} {{", f'  script "{table["script"]}"']
    out.append(f"  interval {_seconds(table.get('interval', 1.0))}")
    if "timeout" in table:
        out.append(f"  timeout {_seconds(table['timeout'])}")
    for key in ("rise", "fall", "weight"):
        if key in table:
            out.append(f"  {key} {table[key]}")
    return [*out, "}"]


def _track_script(entries: list[Any]) -> list[str]:
    """An instance's ``track_script`` list (names, or tables with a ``weight``) for keepalived."""
    out = ["  track_script {"]
    for entry in entries:
        if isinstance(entry, Mapping):
            weight = f" weight {entry['weight']}" if "weight" in entry else ""
            out.append(f"    {entry['name']}{weight}")
        else:
            out.append(f"    {entry}")
    return [*out, "  }"]


def render(
    host: Host,
    workdir: Path,
    instances: list[Mapping[str, Any]],
    tables: Mapping[str, list[Mapping[str, Any]]] | None = None,
) -> str:
    """keepalived.conf for ``instances`` on ``host``, with vrrpyd's ``tables`` translated.

    Only ``track_script`` tables are known: any other kind raises, so that a scenario
    cannot silently run keepalived without the tracking it meant to test."""
    out = [
        "global_defs {",
        f"  router_id {host.name}",
        "  script_user root",
        "  enable_script_security",
        "}",
    ]
    for kind, entries in (tables or {}).items():
        if kind != "track_script":
            raise ValueError(f"keepalived harness: no translation for [[{kind}]]")
        for table in entries:
            out += _vrrp_script(table)
    for inst in instances:
        version = inst.get("version", 3)
        interval = inst.get("advert_interval", 1.0)
        out += [
            f"vrrp_instance {inst['name']} {{",
            "  state BACKUP",
            f"  interface {inst.get('interface', 'eth0')}",
            f"  virtual_router_id {inst['vrid']}",
            f"  priority {inst.get('priority', 100)}",
            f"  advert_int {interval:g}",
            f"  version {version}",
        ]
        if not inst.get("preempt", True):
            out.append("  nopreempt")
        if inst.get("preempt_delay"):
            out.append(f"  preempt_delay {inst['preempt_delay']:g}")
        if inst.get("accept"):
            out.append("  accept")
        if inst.get("use_vmac"):
            out.append("  use_vmac")
        if "garp_repeat" in inst:
            out.append(f"  garp_master_repeat {inst['garp_repeat']}")
        if inst.get("auth_pass"):
            out += [
                "  authentication {",
                "    auth_type PASS",
                f"    auth_pass {inst['auth_pass']}",
                "  }",
            ]
        peers = _addresses(inst.get("unicast_peers", []))
        if peers:
            # IPv6: the link-local address, which keepalived then sends from (and binds
            # its receiving socket to). vrrpy, as RFC 9568 5.1.2.1 has it, sends from
            # its link-local address and drops IPv6 adverts from any other source.
            family6 = ":" in peers[0]
            src = inst.get("unicast_src_ip") or (host.link_local if family6 else host.ipv4)
            out.append(f"  unicast_src_ip {src}")
            ttl = inst.get("unicast_ttl", 255 if family6 else None)
            if ttl is not None:
                # keepalived 2.2.7 sends IPv6 unicast adverts with the kernel's default
                # hop limit (64) unless told; vrrpy drops them (RFC 9568 7.1: 255).
                out.append(f"  unicast_ttl {ttl}")
            out += ["  unicast_peer {", *[f"    {p}" for p in peers], "  }"]
        if inst.get("track_script"):
            out += _track_script(list(inst["track_script"]))
        out += ["  virtual_ipaddress {"]
        out += [f"    {a}" for a in _addresses(inst["virtual_addresses"])]
        out += ["  }", "}"]
    return "\n".join(out) + "\n"


class Keepalived:
    """One keepalived (parent + VRRP child) in one lab host."""

    def __init__(
        self,
        host: Host,
        workdir: Path,
        instances: list[Mapping[str, Any]],
        tables: Mapping[str, list[Mapping[str, Any]]] | None = None,
    ) -> None:
        self.host = host
        self.dir = workdir / f"{host.name}-keepalived"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "keepalived.conf"
        self.log = self.dir / "keepalived.log"
        self.pidfile = self.dir / "keepalived.pid"
        self.vrrp_pidfile = self.dir / "vrrp.pid"
        self.check_pidfile = self.dir / "check.pid"
        self._read = 0  # bytes of the log scanned for state lines
        self._partial = b""
        self._transitions: dict[str, list[str]] = {}
        self._complaints_from = 0
        self.instances = instances
        self.conf.write_text(render(host, self.dir, instances, tables))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Keepalived:
        """Start keepalived in the foreground (-n), logging to the console (-l), detailed (-D)."""
        log = open(self.log, "ab")  # noqa: SIM115 - owned by the child
        self.proc = self.host.popen(
            [
                "keepalived",
                "-n",
                "-l",
                "-D",
                "-f",
                str(self.conf),
                "-p",
                str(self.pidfile),
                "-r",
                str(self.vrrp_pidfile),
                "-c",
                str(self.check_pidfile),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        if not wait_for(self.vrrp_pidfile.exists, 10):
            raise AssertionError(f"keepalived did not start:\n{self.log.read_text()}")
        return self

    def vrrp_pid(self) -> int:
        return int(self.vrrp_pidfile.read_text().split()[0])

    def state(self, name: str = "VI_1") -> str:
        """The state keepalived last logged entering for ``name`` (or "INIT")."""
        found = self.transitions(name)
        return found[-1] if found else "INIT"

    def transitions(self, name: str = "VI_1") -> list[str]:
        """Every state keepalived has logged entering for ``name``, in order."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self._read)
                data = log.read()
        except FileNotFoundError:
            data = b""
        self._read += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            match = ENTERING.search(line.decode(errors="replace"))
            if match:
                self._transitions.setdefault(match[1], []).append(match[2])
        return list(self._transitions.get(name, []))

    def complaints(self) -> list[str]:
        """keepalived's log lines that complain about a received advert (since the last
        :meth:`forget_complaints`)."""
        if not self.log.exists():
            return []
        with open(self.log, "rb") as log:
            log.seek(self._complaints_from)
            text = log.read().decode(errors="replace")
        return [line for line in text.splitlines() if COMPLAINTS.search(line)]

    def forget_complaints(self) -> None:
        """The complaints so far were provoked on purpose: do not report them again."""
        self._complaints_from = self.log.stat().st_size if self.log.exists() else 0

    def kill(self) -> None:
        """SIGKILL the VRRP child and the parent (no priority 0, no cleanup).

        Both are stopped first: keepalived's children ask for SIGTERM when their
        parent dies (PR_SET_PDEATHSIG), and a VRRP child that got it before its
        own SIGKILL would resign with priority 0 -- a graceful stop, not a crash
        (seen on a loaded machine: a "SIGKILL takeover" after Skew_Time)."""
        assert self.proc is not None
        pid = self.vrrp_pid()
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            os.kill(pid, sig)
            os.kill(self.proc.pid, sig)
        self.proc.wait(5)
        wait_for(lambda: not Path(f"/proc/{pid}").exists(), 5)

    def terminate(self) -> int:
        """SIGTERM: keepalived resigns (priority 0) and removes its addresses."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        time.sleep(0.05)
        return code
