"""The drill's namespaces: two routers running the user's instances, a client, an attacker.

Built on :class:`vrrpy.lab.Lab` (four hosts on one bridge, ``eth0``, torn
down whatever happens), plus one bridge per further link of the plan
(``eth1``, ``eth2`` in every host), which this module makes and removes
itself. Nothing here touches the machine's own interfaces: every link is a
veth pair between a lab namespace and a lab bridge.

The failures the scenarios need are here too, each one a thing that happens
to real routers, each undone by its counterpart:

* :meth:`DrillLab.crash` / :meth:`DrillLab.reboot`: vrrpyd's process group
  SIGKILLed and the router silenced on every link (nftables tables dropping
  all IP and ARP in and out, the link staying up as under a hung kernel);
  back as after a reboot: the stale addresses gone, the tables lifted, vrrpyd
  started afresh;
* :meth:`DrillLab.stop` / :meth:`DrillLab.start`: SIGTERM (vrrpyd resigns with
  priority 0) and a fresh start;
* :meth:`DrillLab.set_links`: the router's cables pulled and plugged back;
* :meth:`DrillLab.service`: the service dies (echo requests to the virtual
  addresses dropped) and the tracked scripts start failing (their flag files);
* :meth:`DrillLab.cut`: VRRP (IP protocol 112) dropped in and out on both
  routers, the rest of the traffic untouched: a split brain.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterable
from ipaddress import IPv6Address
from pathlib import Path
from types import TracebackType
from typing import Any

from vrrpy.drill.plan import ATTACKER, CLIENT, HOSTS, ROUTERS, Addressing, DrillPlan
from vrrpy.drill.source import DrillError
from vrrpy.lab import Daemon, Host, Lab

__all__ = ["DrillLab"]

_DEAD = """table inet vrrpydrill_dead {
  chain input { type filter hook input priority -300; policy drop; }
  chain output { type filter hook output priority -300; policy drop; }
}
table arp vrrpydrill_dead {
  chain input { type filter hook input priority -300; policy drop; }
  chain output { type filter hook output priority -300; policy drop; }
}
"""
_CUT = """table inet vrrpydrill_cut {
  chain input { type filter hook input priority -300; meta l4proto 112 drop; }
  chain output { type filter hook output priority -300; meta l4proto 112 drop; }
}
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise DrillError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


class DrillLab:
    """The lab for one plan; use as a context manager (teardown is guaranteed)."""

    def __init__(self, plan: DrillPlan, workdir: Path) -> None:
        self.plan = plan
        self.workdir = workdir
        self.lab = Lab(hosts=len(HOSTS), prefix=f"vd{secrets.token_hex(2)}")
        self.bridges: list[str] = []
        self.daemons: dict[str, Daemon] = {}
        self.addressing = Addressing({})
        self._macs: dict[tuple[str, int], str] = {}
        self._tables: set[tuple[str, str, str]] = set()

    # ------------------------------------------------------------------ building

    def __enter__(self) -> DrillLab:
        atexit.register(self._remove_bridges)
        self.lab.up()
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Kill what the lab started, delete its namespaces, veths and bridges."""
        try:
            self.lab.down()
        finally:
            self._remove_bridges()
            atexit.unregister(self._remove_bridges)

    def _remove_bridges(self) -> None:
        for host in self.lab.hosts.values():
            for link in self.plan.links[1:]:
                _ip("link", "del", self._outside(host, link.index), check=False)
        for bridge in self.bridges:
            _ip("link", "del", bridge, check=False)
        self.bridges.clear()

    def _outside(self, host: Host, link: int) -> str:
        return f"{self.lab.prefix}{host.index}l{link}"

    def _build(self) -> None:
        prefix = self.lab.prefix
        for host in self.lab.hosts.values():
            # IPv6 addresses survive a pulled cable, as IPv4 ones do (the link-failure
            # scenario must not renumber the routers).
            self.sysctl(host, "net.ipv6.conf.all.keep_addr_on_down", "1")
            self.sysctl(host, "net.ipv6.conf.default.keep_addr_on_down", "1")
        for link in self.plan.links[1:]:
            bridge = f"{prefix}b{link.index}"
            _ip("link", "add", bridge, "type", "bridge")
            self.bridges.append(bridge)
            Path(f"/sys/class/net/{bridge}/bridge/multicast_snooping").write_text("0")
            _ip("link", "set", bridge, "up")
            for host in self.lab.hosts.values():
                outside = self._outside(host, link.index)
                _ip(
                    "link",
                    "add",
                    outside,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    link.lab,
                    "netns",
                    host.netns,
                )
                _ip("link", "set", outside, "master", bridge, "up")
                _ip("-n", host.netns, "link", "set", link.lab, "up")
                _ip(
                    "-n",
                    host.netns,
                    "addr",
                    "add",
                    f"{link.address(host.index, 4)}/24",
                    "dev",
                    link.lab,
                )
                _ip(
                    "-n",
                    host.netns,
                    "addr",
                    "add",
                    f"{link.address(host.index, 6)}/64",
                    "dev",
                    link.lab,
                    "nodad",
                )
        link_local = {}
        for host in self.lab.hosts.values():
            for link in self.plan.links:
                out = _ip(
                    "-n", host.netns, "-o", "-6", "addr", "show", "dev", link.lab, "scope", "link"
                ).stdout
                if "inet6" in out:
                    address = out.split("inet6", 1)[1].split()[0].split("/")[0]
                    link_local[(link.index, host.index)] = IPv6Address(address)
                self._macs[(host.name, link.index)] = (
                    _ip("-n", host.netns, "-o", "link", "show", link.lab)
                    .stdout.split("link/ether", 1)[1]
                    .split()[0]
                )
        self.addressing = Addressing(link_local)
        r1 = self.host("r1")
        for link_index, vip in self.plan.routers["r1"].owned:
            _ip("-n", r1.netns, "addr", "add", str(vip), "dev", self.plan.links[link_index].lab)

    @staticmethod
    def sysctl(host: Host, key: str, value: str) -> None:
        host.run(["sysctl", "-qw", f"{key}={value}"])

    # ------------------------------------------------------------------- queries

    def host(self, role: str) -> Host:
        """The lab host of ``role`` (``r1``, ``r2``, ``client``, ``attacker``)."""
        return self.lab[f"h{HOSTS[role]}"]

    @property
    def client(self) -> Host:
        return self.host(CLIENT)

    @property
    def attacker(self) -> Host:
        return self.host(ATTACKER)

    def mac(self, role: str, link: int) -> str:
        """The MAC address of ``role``'s interface on lab link ``link``."""
        return self._macs[(f"h{HOSTS[role]}", link)]

    def document(self, router: str) -> dict[str, Any]:
        return self.plan.document(router, self.addressing, self.workdir)

    # ------------------------------------------------------------------- daemons

    def start(self, router: str) -> Daemon:
        """Start (or start again) ``router``'s vrrpyd and wait for its first state file."""
        document = self.document(router)
        tables = {k: v for k, v in document.items() if k in ("track_script", "sync_group")}
        daemon = self.daemons.get(router)
        if daemon is None:
            daemon = Daemon(
                self.host(router),
                self.workdir,
                document["instance"],
                tables=tables,
                global_=self.plan.routers[router].global_,
            )
            self.daemons[router] = daemon
        with contextlib.suppress(FileNotFoundError):
            daemon.state_file.unlink()  # a stale one would pass for the new daemon's
        try:
            daemon.start()
        except AssertionError as exc:
            raise DrillError(f"vrrpyd did not start on {router}: {exc}") from None
        return daemon

    def state(self, router: str, instance: str) -> str:
        """``instance``'s state on ``router`` (``DOWN`` when its vrrpyd is not running)."""
        daemon = self.daemons.get(router)
        if daemon is None or daemon.proc is None or daemon.proc.poll() is not None:
            return "DOWN"
        try:
            return str(daemon.instance(instance)["state"])
        except (AssertionError, KeyError):
            return "UNKNOWN"

    def counters(self, router: str, instance: str) -> dict[str, Any]:
        """``instance``'s counters on ``router``, fresh (SIGUSR1)."""
        daemon = self.daemons[router]
        daemon.refresh()
        return dict(daemon.instance(instance).get("counters", {}))

    # -------------------------------------------------------------------- faults

    def stop(self, router: str) -> None:
        """SIGTERM: vrrpyd resigns (priority 0) and withdraws the addresses."""
        daemon = self.daemons[router]
        try:
            daemon.terminate()
        except subprocess.TimeoutExpired:
            daemon.kill()

    def crash(self, router: str) -> float:
        """The router silenced on every link, then SIGKILL to vrrpyd and everything it
        started; returns the instant it went silent."""
        daemon = self.daemons[router]
        assert daemon.proc is not None
        self.nft(router, "vrrpydrill_dead", _DEAD)
        dead = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(daemon.proc.pid, signal.SIGKILL)
        daemon.proc.wait(10)
        return dead

    def reboot(self, router: str) -> None:
        """The crashed router comes back: no addresses but its own, reachable, vrrpyd afresh."""
        host = self.host(router)
        lab_vips = self._virtual_addresses()
        out = _ip("-n", host.netns, "-o", "addr", "show").stdout
        for line in out.splitlines():
            words = line.split()
            if (
                len(words) > 3
                and words[2] in ("inet", "inet6")
                and words[3].split("/")[0] in lab_vips
            ):
                _ip(
                    "-n",
                    host.netns,
                    "addr",
                    "del",
                    words[3],
                    "dev",
                    words[1].split("@")[0],
                    check=False,
                )
        self.nft_delete(router, "vrrpydrill_dead")
        self.start(router)

    def set_links(self, router: str, up: bool) -> float:
        """Pull (or plug back) every lab link of ``router``; returns when it was done."""
        host = self.host(router)
        for link in self.plan.links:
            _ip("-n", host.netns, "link", "set", link.lab, "up" if up else "down")
        return time.time()

    def service(self, router: str, down: bool, addresses: Iterable[str]) -> float:
        """The service behind the addresses dies on ``router`` (or comes back): echo
        requests to them are dropped there, and every tracked script there fails."""
        for script in self.plan.scripts_of(router):
            flag = self.plan.flag(router, script, self.workdir)
            if down:
                flag.write_text("down\n")
            else:
                flag.unlink(missing_ok=True)
        if not down:
            self.nft_delete(router, "vrrpydrill_service")
            return time.time()
        v4 = [a for a in addresses if ":" not in a]
        v6 = [a for a in addresses if ":" in a]
        rules = []
        if v4:
            rules.append(f"ip daddr {{ {', '.join(v4)} }} icmp type echo-request drop;")
        if v6:
            rules.append(f"ip6 daddr {{ {', '.join(v6)} }} icmpv6 type echo-request drop;")
        table = (
            "table inet vrrpydrill_service {\n"
            "  chain input { type filter hook input priority -300; " + " ".join(rules) + " }\n}\n"
        )
        self.nft(router, "vrrpydrill_service", table)
        return time.time()

    def cut(self, on: bool) -> None:
        """Drop VRRP in and out on both routers (a split brain), or let it through again."""
        for router in ROUTERS:
            if on:
                self.nft(router, "vrrpydrill_cut", _CUT)
            else:
                self.nft_delete(router, "vrrpydrill_cut")

    def restore(self) -> None:
        """Best effort after a scenario broke half-way: every failure undone, both vrrpyd
        running."""
        for router in ROUTERS:
            for _, _, name in sorted(t for t in self._tables if t[0] == router):
                self.nft_delete(router, name)
            for script in self.plan.scripts_of(router):
                self.plan.flag(router, script, self.workdir).unlink(missing_ok=True)
            with contextlib.suppress(DrillError):
                self.set_links(router, True)
            daemon = self.daemons.get(router)
            if daemon is None or daemon.proc is None or daemon.proc.poll() is not None:
                with contextlib.suppress(DrillError):
                    self.reboot(router)

    def nft(self, router: str, name: str, ruleset: str) -> None:
        host = self.host(router)
        result = host.run(["nft", "-f", "-"], check=False, input=ruleset)
        if result.returncode != 0:
            raise DrillError(f"nft in {router}: {result.stderr.strip()}")
        for line in ruleset.splitlines():
            if line.startswith("table "):
                family = line.split()[1]
                self._tables.add((router, family, name))

    def nft_delete(self, router: str, name: str) -> None:
        host = self.host(router)
        for entry in sorted(self._tables):
            if entry[0] == router and entry[2] == name:
                host.run(["nft", "delete", "table", entry[1], name], check=False)
                self._tables.discard(entry)

    def flush_neighbours(self, addresses: Iterable[str]) -> None:
        """Make the client forget its neighbour entries for ``addresses``."""
        for address in addresses:
            self.client.run(["ip", "neigh", "flush", "to", address], check=False)

    def _virtual_addresses(self) -> set[str]:
        found = set()
        for router in ROUTERS:
            for table in self.plan.routers[router].instances:
                for vip in table["virtual_addresses"]:
                    found.add(str(vip).split("/")[0])
        return found
