"""The IPVS backend against the real kernel, in a user-mode-linux guest, ``ipvsadm`` as the oracle.

The host kernel has no IPVS; Debian's user-mode-linux kernel has ``ip_vs``
and its schedulers as modules. One guest boots (:mod:`vrrpy.lab.uml`) and a
Python driver in it runs three scenarios, printing a JSON summary that the
test reads. ``ipvsadm`` (Debian's 1.31) is the independent witness: the
expected ``ipvsadm -Sn`` lines below are written by hand, not by vrrpy.

1. **The table** (namespace ``T``): an :class:`IpvsBackend` takes the
   namespace to Master with services covering TCP, UDP and SCTP, IPv4 and
   IPv6, firewall marks of both families, every scheduler the kernel ships
   (``twos`` is not built), scheduler flags, one-packet scheduling,
   persistence (timeout, IPv4 mask, IPv6 prefix, the SIP engine), NAT, DR
   and the three tunnel types with their checksum options, weights and
   connection thresholds. Two services someone else made (one sharing a
   declared service's address and port, over UDP) are never touched. Then a
   new declaration is reconciled (scheduler changed, servers added, edited
   and removed, a service retired), an operator's changes behind our back
   are repaired, and stopping removes only what was ours. pyroute2's own
   ``IPVSService(sched="rr")`` is run beside it, to show what it installs.
2. **Traffic through a NAT director** (namespaces ``C`` client, ``D1``
   director, ``R1``-``R3`` real servers on a second bridge): real TCP
   connections spread as ``rr`` and ``wrr`` say; a persistent service keeps
   a client on one server; a real server killed and reported failed is
   removed (then quiesced at weight 0 with ``inhibit_on_failure``) and no
   connection fails; back, it serves again; all failed, the sorry server
   answers, until one returns.
3. **Connection sync** (directors ``D1`` and ``D2``; IPVS is per
   namespace): the sync daemon follows the state, master on the Master and
   backup on the Backup; a TCP connection made through D1 appears in D2's
   connection table; D1 steps down and D2 takes over (addresses moved, the
   neighbours' caches flushed as a gratuitous ARP would), and the same
   connection carries on through D2. Back to D1 (which kept its pool as a
   Backup, keepalived's way): the connection goes on, through D1 again.
"""

from __future__ import annotations

import json
import re
from typing import Any

from support import require_root, require_tool

GUEST_MEMORY = "384M"
TIMEOUT = 150.0

MODULES = (
    "ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh "
    "ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_mh ip_vs_pe_sip veth bridge dummy"
)

SETUP = r"""
set -e
modprobe -d "$MODDIR" -a __MODULES__
for ns in T P C D1 D2 R1 R2 R3; do ip netns add $ns; ip -n $ns link set lo up; done
ip link add brf type bridge
ip link add brb type bridge
ip link set brb type bridge mcast_snooping 0
ip link set brf up; ip link set brb up
port() {  # NS IFNAME BRIDGE ADDRESS
  ip link add "v$1$2" type veth peer name "$2" netns "$1"
  ip link set "v$1$2" master "$3" up
  ip -n "$1" addr add "$4" dev "$2"
  ip -n "$1" link set "$2" up
}
port C eth0 brf 192.0.2.100/24
port D1 f1 brf 192.0.2.1/24
port D1 b1 brb 198.51.100.1/24
port D2 f2 brf 192.0.2.2/24
port D2 b2 brb 198.51.100.2/24
for i in 1 2 3; do
  port R$i eth0 brb 198.51.100.1$i/24
  ip -n R$i route add default via 198.51.100.254
done
for d in D1 D2; do ip netns exec $d sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'; done
set +e
"$VRRPY_PYTHON" "$UML_WORK/driver.py"
status=$?
for ns in T P C D1 D2 R1 R2 R3; do ip netns del $ns; done
ip link del brf; ip link del brb
exit $status
""".replace("__MODULES__", MODULES)

DRIVER = r'''
import asyncio, json, os, re, socket, subprocess, sys, threading, time
from dataclasses import replace

from vrrpy.backends.base import TransitionEvent
from vrrpy.core.state import State
from vrrpy.ipvs.backend import IpvsBackend
from vrrpy.ipvs.model import RealServer, VirtualService
from vrrpy.ipvs.netlink import IpvsNetlink
from vrrpy.lab.netns import in_netns

T0 = time.monotonic()
RESULT = {}


def mark(what):
    print(f"T+{time.monotonic() - T0:7.3f}s  {what}", flush=True)


def sh(*argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).strip()


def adm(ns, *args):
    rc, out = sh("ip", "netns", "exec", ns, "ipvsadm", *args)
    assert rc == 0, (ns, args, out)
    return out


def save(ns):
    return sorted(adm(ns, "-Sn").splitlines())


def ev(old, new):
    return TransitionEvent("VI_1", old, new, "test", 100)


B, I, M = State.BACKUP, State.INITIALIZE, State.MASTER

# ------------------------------------------------------------------ 1. the table

SCHEDS = ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh"]
TABLE = [
    VirtualService(address=f"192.0.2.{20 + i}", port=80, scheduler=s,
                   real_servers=(RealServer("198.51.100.11", 8080, weight=i + 1),))
    for i, s in enumerate(SCHEDS)
] + [
    VirtualService(address="2001:db8::10", port=53, protocol="udp", scheduler="rr",
                   one_packet=True, persistence_timeout=60, persistence_granularity=64,
                   real_servers=(RealServer("2001:db8:1::11", 53, weight=2,
                                            upper_threshold=100, lower_threshold=50),
                                 RealServer("2001:db8:1::12", 53, forwarding="dr", weight=0))),
    VirtualService(address="192.0.2.50", port=9, protocol="sctp", scheduler="sh",
                   scheduler_flags={"sh-fallback", "sh-port"},
                   real_servers=(RealServer("198.51.100.21", 9, forwarding="tun"),
                                 RealServer("198.51.100.22", 9, forwarding="tun",
                                            tunnel_type="gre"),
                                 RealServer("198.51.100.23", 9, forwarding="tun", tunnel_type="gue",
                                            tunnel_port=6080, tunnel_checksum="csum"),
                                 RealServer("198.51.100.24", 9, forwarding="tun", tunnel_type="gue",
                                            tunnel_port=6081, tunnel_checksum="remcsum"))),
    VirtualService(fwmark=7, scheduler="mh", scheduler_flags={"mh-port"},
                   persistence_timeout=300, persistence_granularity=24,
                   real_servers=(RealServer("198.51.100.31", 0, forwarding="dr"),)),
    VirtualService(fwmark=8, family=6, scheduler="wrr",
                   real_servers=(RealServer("2001:db8:1::3", 0),)),
    VirtualService(address="192.0.2.60", port=5060, protocol="udp", scheduler="rr",
                   persistence_timeout=30, persistence_engine="sip",
                   real_servers=(RealServer("198.51.100.41", 5060),)),
    VirtualService(address="2001:db8::20", port=443,
                   real_servers=(RealServer("2001:db8:1::21", 8443, weight=5,
                                            upper_threshold=200, lower_threshold=100),)),
    VirtualService(address="192.0.2.70", port=53, protocol="udp", scheduler="lc",
                   real_servers=(RealServer("198.51.100.51", 53, forwarding="dr", weight=3),)),
]


def changed_table():
    out = []
    for vs in TABLE:
        if str(vs.key) == "TCP 192.0.2.20:80":
            vs = replace(vs, scheduler="wrr")
        elif str(vs.key) == "UDP [2001:db8::10]:53":
            vs = replace(vs, real_servers=(
                RealServer("2001:db8:1::12", 53, forwarding="dr", weight=4),
                RealServer("2001:db8:1::13", 53)))
        elif str(vs.key) == "FWM 8 IPv6":
            continue
        out.append(vs)
    return out


def thresholds(ns):
    """(service line, destination, upper, lower) from ipvsadm -Ln --thresholds."""
    rows, service = [], None
    for line in adm(ns, "-Ln", "--thresholds").splitlines():
        words = line.split()
        if words and words[0] in ("TCP", "UDP", "SCTP", "FWM"):
            service = " ".join(words[:2])
        elif len(words) > 3 and words[0] == "->" and words[1] != "RemoteAddress:Port":
            rows.append([service, words[1], int(words[2]), int(words[3])])
    return rows


async def table_scenario():
    adm("T", "-A", "-t", "192.0.2.99:80", "-s", "lc")
    adm("T", "-a", "-t", "192.0.2.99:80", "-r", "198.51.100.99:80", "-m", "-w", "4")
    adm("T", "-A", "-u", "192.0.2.20:80", "-s", "lc")
    backend = IpvsBackend(TABLE, netns="T", name="table")
    await backend.transition(ev(I, B))
    RESULT["table_before_master"] = save("T")
    t = time.monotonic()
    await backend.transition(ev(B, M))
    RESULT["table_install_s"] = round(time.monotonic() - t, 3)
    RESULT["table_save"] = save("T")
    RESULT["table_thresholds"] = thresholds("T")
    RESULT["table_status"] = backend.status()
    # Our own reading of the kernel, and a second reconcile: nothing to do.
    with IpvsNetlink("T") as nl:
        RESULT["table_readback_equal"] = all(
            nl.table()[vs.key].settings() == vs.settings()
            and {k: d.settings() for k, d in nl.table()[vs.key].dests().items()}
            == {k: d.settings() for k, d in vs.dests().items()}
            for vs in TABLE
        )
    ops_before = backend.status()["operations"]
    await backend.reconcile()
    RESULT["table_second_pass_ops"] = backend.status()["operations"] - ops_before
    mark(f"table installed in {RESULT['table_install_s']} s")

    backend.set_services(changed_table())
    await backend.settle()
    RESULT["table_changed_save"] = save("T")
    # An operator edits behind our back: a weight, an extra server, a scheduler.
    adm("T", "-e", "-t", "192.0.2.21:80", "-r", "198.51.100.11:8080", "-m", "-w", "9")
    adm("T", "-a", "-t", "192.0.2.21:80", "-r", "198.51.100.99:80", "-m")
    adm("T", "-E", "-t", "192.0.2.22:80", "-s", "rr")
    RESULT["table_tampered_save"] = save("T")
    await backend.reconcile()
    RESULT["table_repaired_save"] = save("T")
    mark("table changed, tampered with, repaired")

    await backend.transition(ev(M, I))
    RESULT["table_after_stop"] = save("T")
    await backend.close()

    # What pyroute2's own IPVSService installs for sched= and sched_name=.
    code = (
        "from pyroute2 import IPVS, IPVSService\n"
        "ipvs = IPVS()\n"
        "for addr, key in (('192.0.2.80', 'sched'), ('192.0.2.81', 'sched_name')):\n"
        "    svc = IPVSService(addr=addr, port=80, protocol=6, **{key: 'rr'})\n"
        "    ipvs.service('add', service=svc)\n"
        "ipvs.close()\n"
    )
    rc, out = sh("ip", "netns", "exec", "P", sys.executable, "-c", code)
    RESULT["pyroute2_rc"] = rc
    RESULT["pyroute2_save"] = save("P")

# ------------------------------------------------------------------ 2. traffic

class Listener:
    """A TCP server in a namespace: says its name, then echoes lines prefixed with it."""

    def __init__(self, ns, port, name):
        self.ns, self.port, self.name = ns, port, name
        self.start()

    def start(self):
        def make():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", self.port))
            s.listen(64)
            return s
        self.sock = in_netns(self.ns, make)
        threading.Thread(target=self.serve, args=(self.sock,), daemon=True).start()

    def serve(self, sock):
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self.talk, args=(conn,), daemon=True).start()

    def talk(self, conn):
        with conn:
            conn.sendall(f"{self.name}\n".encode())
            reader = conn.makefile("r")
            for line in reader:
                conn.sendall(f"{self.name} {line.strip()}\n".encode())

    def kill(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def dial(port=80, timeout=3.0):
    return in_netns("C", lambda: socket.create_connection(("192.0.2.10", port), timeout=timeout))


def spread(n, port=80):
    """Open n connections one after the other; who answered each (or the error)."""
    counts, errors = {}, []
    for _ in range(n):
        try:
            with dial(port) as c:
                name = c.makefile("r").readline().strip()
            counts[name] = counts.get(name, 0) + 1
        except OSError as exc:
            errors.append(str(exc))
    return {"counts": counts, "errors": errors}


def web(**kwargs):
    weights = kwargs.pop("weights", (1, 1, 1))
    servers = tuple(
        RealServer(f"198.51.100.1{i}", 8080, weight=w) for i, w in zip((1, 2, 3), weights)
    )
    return [
        VirtualService(address="192.0.2.10", port=80, real_servers=servers,
                       sorry_server=RealServer("198.51.100.13", 8099), **kwargs),
        VirtualService(address="192.0.2.10", port=81, scheduler="rr", persistence_timeout=60,
                       real_servers=tuple(replace(s, weight=1) for s in servers)),
    ]


def vip(ns, front, back, add):
    verb = "add" if add else "del"
    sh("ip", "-n", ns, "addr", verb, "192.0.2.10/24", "dev", front)
    sh("ip", "-n", ns, "addr", verb, "198.51.100.254/24", "dev", back)
    for n in ("C", "R1", "R2", "R3"):
        sh("ip", "-n", n, "neigh", "flush", "all")


async def traffic_scenario(d1, d2, listeners):
    await d1.transition(ev(I, B))
    await d2.transition(ev(I, B))
    RESULT["daemons_both_backup"] = [adm("D1", "-L", "--daemon"), adm("D2", "-L", "--daemon")]
    vip("D1", "f1", "b1", True)
    await d1.transition(ev(B, M))
    RESULT["d1_daemon_master"] = adm("D1", "-L", "--daemon")
    RESULT["d2_before"] = save("D2")
    RESULT["rr"] = spread(9)
    RESULT["persistent"] = spread(6, port=81)
    RESULT["persistent_conns"] = adm("D1", "-Ln", "--persistent-conn")
    mark(f"rr {RESULT['rr']}, persistent {RESULT['persistent']}")

    d1.set_services(web(scheduler="wrr", weights=(3, 2, 1)))
    await d1.settle()
    RESULT["wrr_save"] = save("D1")
    RESULT["wrr"] = spread(12)
    mark(f"wrr {RESULT['wrr']}")

    listeners["R2"].kill()
    d1.set_health(("198.51.100.12", 8080), False)
    await d1.settle()
    RESULT["removed_save"] = save("D1")
    RESULT["removed"] = spread(6)
    d1.set_services(web(scheduler="wrr", weights=(3, 2, 1), inhibit_on_failure=True))
    await d1.settle()
    RESULT["quiesced_save"] = save("D1")
    RESULT["quiesced"] = spread(6)
    mark(f"R2 down: removed {RESULT['removed']}, quiesced {RESULT['quiesced']}")

    listeners["R2"].start()
    d1.set_health(("198.51.100.12", 8080), True)
    await d1.settle()
    RESULT["back_save"] = save("D1")
    RESULT["back"] = spread(12)
    mark(f"R2 back {RESULT['back']}")

    for host in ("198.51.100.11", "198.51.100.12", "198.51.100.13"):
        d1.set_health((host, 8080), False)
    await d1.settle()
    RESULT["sorry_save"] = save("D1")
    RESULT["sorry"] = spread(3)
    d1.set_health(("198.51.100.11", 8080), True)
    await d1.settle()
    RESULT["sorry_gone_save"] = save("D1")
    RESULT["sorry_gone"] = spread(3)
    for host in ("198.51.100.12", "198.51.100.13"):
        d1.set_health((host, 8080), True)
    await d1.settle()
    RESULT["d1_status"] = d1.status()
    mark(f"sorry {RESULT['sorry']}, then {RESULT['sorry_gone']}")

# ------------------------------------------------------------------ 3. sync and failover

def conns(ns):
    return adm(ns, "-Lnc")


def forwarded(ns):
    """The namespace's IPv4 ForwDatagrams: a real server's replies to the client cross
    the director that holds the connection (IPVS's own statistics lag: the kernel
    folds them in every 2 s)."""
    rc, out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp")
    head, values = [line.split() for line in out.splitlines() if line.startswith("Ip:")][:2]
    return int(values[head.index("ForwDatagrams")])


def exchange(conn, reader, word):
    replies = []
    try:
        for i in range(3):
            conn.sendall(f"{word} {i}\n".encode())
            replies.append(reader.readline().strip())
    except OSError as exc:
        replies.append(f"error: {exc}")
    return replies


async def sync_scenario(d1, d2):
    conn = dial()
    reader = conn.makefile("r")
    server = reader.readline().strip()
    client_port = conn.getsockname()[1]
    replies = []
    for i in range(3):
        conn.sendall(f"before {i}\n".encode())
        replies.append(reader.readline().strip())
    RESULT["sync_server"] = server
    RESULT["sync_replies_before"] = replies
    needle = f"192.0.2.100:{client_port}"
    t = time.monotonic()
    seen = ""
    while time.monotonic() - t < 8:
        seen = conns("D2")
        if needle in seen:
            break
        await asyncio.sleep(0.2)
    RESULT["sync_seen_s"] = round(time.monotonic() - t, 2) if needle in seen else None
    RESULT["d2_conns_before_failover"] = [l for l in seen.splitlines() if needle in l]
    mark(f"connection to {server} from port {client_port}; on D2 after {RESULT['sync_seen_s']} s")

    await d1.transition(ev(M, B))
    vip("D1", "f1", "b1", False)
    vip("D2", "f2", "b2", True)
    await d2.transition(ev(B, M))
    RESULT["daemons_after_failover"] = [adm("D1", "-L", "--daemon"), adm("D2", "-L", "--daemon")]
    RESULT["d1_kept_save"] = save("D1")
    before = forwarded("D1"), forwarded("D2")
    RESULT["sync_replies_after"] = exchange(conn, reader, "after")
    RESULT["forwarded_after"] = [forwarded("D1") - before[0], forwarded("D2") - before[1]]
    RESULT["d2_list_after"] = adm("D2", "-Ln")
    RESULT["d2_conns_after"] = [l for l in conns("D2").splitlines() if needle in l]
    RESULT["through_d2"] = spread(3)
    mark(f"after failover: {RESULT['sync_replies_after']}, forwarded "
         f"{RESULT['forwarded_after']}; new connections {RESULT['through_d2']}")

    # Failback: D1 kept its pool as a Backup, so its own entry for the connection is
    # still bound to its real server; the connection carries on through D1, counted.
    await d2.transition(ev(M, B))
    vip("D2", "f2", "b2", False)
    vip("D1", "f1", "b1", True)
    await d1.transition(ev(B, M))
    before = forwarded("D1"), forwarded("D2")
    RESULT["sync_replies_back"] = exchange(conn, reader, "back")
    RESULT["forwarded_back"] = [forwarded("D1") - before[0], forwarded("D2") - before[1]]
    RESULT["d1_list_back"] = adm("D1", "-Ln")
    conn.close()
    RESULT["d2_kept_save"] = save("D2")
    mark(f"after failback: {RESULT['sync_replies_back']}, forwarded {RESULT['forwarded_back']}")

    await d1.transition(ev(M, I))
    await d2.transition(ev(B, I))
    RESULT["after_stop"] = [
        save("D1"), save("D2"), adm("D1", "-L", "--daemon"), adm("D2", "-L", "--daemon")
    ]


async def main():
    await table_scenario()
    listeners = {f"R{i}": Listener(f"R{i}", 8080, f"R{i}") for i in (1, 2, 3)}
    listeners["sorry"] = Listener("R3", 8099, "sorry")
    d1 = IpvsBackend(web(scheduler="rr"), netns="D1", name="d1", sync_interface="b1", syncid=9)
    d2 = IpvsBackend(web(scheduler="rr"), netns="D2", name="d2", sync_interface="b2", syncid=9)
    try:
        await traffic_scenario(d1, d2, listeners)
        d2.set_services(web(scheduler="wrr", weights=(3, 2, 1), inhibit_on_failure=True))
        await sync_scenario(d1, d2)
    finally:
        await d1.close()
        await d2.close()
        for listener in listeners.values():
            listener.kill()


try:
    asyncio.run(main())
finally:
    print("SUMMARY " + json.dumps(RESULT), flush=True)
'''


# ------------------------------------------------------------------ the oracle, by hand

FOREIGN = {
    "-A -t 192.0.2.99:80 -s lc",
    "-a -t 192.0.2.99:80 -r 198.51.100.99:80 -m -w 4",
    "-A -u 192.0.2.20:80 -s lc",
}

EXPECTED = {
    "-A -t 192.0.2.20:80 -s rr",
    "-a -t 192.0.2.20:80 -r 198.51.100.11:8080 -m -w 1",
    "-A -t 192.0.2.21:80 -s wrr",
    "-a -t 192.0.2.21:80 -r 198.51.100.11:8080 -m -w 2",
    "-A -t 192.0.2.22:80 -s lc",
    "-a -t 192.0.2.22:80 -r 198.51.100.11:8080 -m -w 3",
    "-A -t 192.0.2.23:80 -s wlc",
    "-a -t 192.0.2.23:80 -r 198.51.100.11:8080 -m -w 4",
    "-A -t 192.0.2.24:80 -s lblc",
    "-a -t 192.0.2.24:80 -r 198.51.100.11:8080 -m -w 5",
    "-A -t 192.0.2.25:80 -s lblcr",
    "-a -t 192.0.2.25:80 -r 198.51.100.11:8080 -m -w 6",
    "-A -t 192.0.2.26:80 -s dh",
    "-a -t 192.0.2.26:80 -r 198.51.100.11:8080 -m -w 7",
    "-A -t 192.0.2.27:80 -s sh",
    "-a -t 192.0.2.27:80 -r 198.51.100.11:8080 -m -w 8",
    "-A -t 192.0.2.28:80 -s sed",
    "-a -t 192.0.2.28:80 -r 198.51.100.11:8080 -m -w 9",
    "-A -t 192.0.2.29:80 -s nq",
    "-a -t 192.0.2.29:80 -r 198.51.100.11:8080 -m -w 10",
    "-A -t 192.0.2.30:80 -s fo",
    "-a -t 192.0.2.30:80 -r 198.51.100.11:8080 -m -w 11",
    "-A -t 192.0.2.31:80 -s ovf",
    "-a -t 192.0.2.31:80 -r 198.51.100.11:8080 -m -w 12",
    "-A -t 192.0.2.32:80 -s mh",
    "-a -t 192.0.2.32:80 -r 198.51.100.11:8080 -m -w 13",
    "-A -u [2001:db8::10]:53 -s rr -p 60 -M 64 -o",
    "-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:53 -m -w 2",
    "-a -u [2001:db8::10]:53 -r [2001:db8:1::12]:53 -g -w 0",
    "-A --sctp-service 192.0.2.50:9 -s sh -b sh-fallback,sh-port",
    "-a --sctp-service 192.0.2.50:9 -r 198.51.100.21:9 -i -w 1 --tun-type ipip",
    "-a --sctp-service 192.0.2.50:9 -r 198.51.100.22:9 -i -w 1 --tun-type gre --tun-nocsum",
    "-a --sctp-service 192.0.2.50:9 -r 198.51.100.23:9 -i -w 1 --tun-type gue --tun-port 6080 "
    "--tun-csum",
    "-a --sctp-service 192.0.2.50:9 -r 198.51.100.24:9 -i -w 1 --tun-type gue --tun-port 6081 "
    "--tun-remcsum",
    "-A -f 7 -s mh -p 300 -M 255.255.255.0 -b mh-port",
    "-a -f 7 -r 198.51.100.31:0 -g -w 1",
    "-A -f 8 -6 -s wrr",
    "-a -f 8 -6 -r [2001:db8:1::3]:0 -m -w 1",
    "-A -u 192.0.2.60:5060 -s rr -p 30 --pe sip",
    "-a -u 192.0.2.60:5060 -r 198.51.100.41:5060 -m -w 1",
    "-A -t [2001:db8::20]:443 -s wlc",
    "-a -t [2001:db8::20]:443 -r [2001:db8:1::21]:8443 -m -w 5",
    "-A -u 192.0.2.70:53 -s lc",
    "-a -u 192.0.2.70:53 -r 198.51.100.51:53 -g -w 3",
}

CHANGED = (
    EXPECTED
    - {
        "-A -t 192.0.2.20:80 -s rr",
        "-a -u [2001:db8::10]:53 -r [2001:db8:1::11]:53 -m -w 2",
        "-a -u [2001:db8::10]:53 -r [2001:db8:1::12]:53 -g -w 0",
        "-A -f 8 -6 -s wrr",
        "-a -f 8 -6 -r [2001:db8:1::3]:0 -m -w 1",
    }
) | {
    "-A -t 192.0.2.20:80 -s wrr",
    "-a -u [2001:db8::10]:53 -r [2001:db8:1::12]:53 -g -w 4",
    "-a -u [2001:db8::10]:53 -r [2001:db8:1::13]:53 -m -w 1",
}

WEB_PERSISTENT = {
    "-A -t 192.0.2.10:81 -s rr -p 60",
    "-a -t 192.0.2.10:81 -r 198.51.100.11:8080 -m -w 1",
    "-a -t 192.0.2.10:81 -r 198.51.100.12:8080 -m -w 1",
    "-a -t 192.0.2.10:81 -r 198.51.100.13:8080 -m -w 1",
}


def _web(*dests: str) -> set[str]:
    return {"-A -t 192.0.2.10:80 -s wrr"} | {f"-a -t 192.0.2.10:80 -r {d}" for d in dests}


def _active(listing: str, server: str) -> int:
    """ActiveConn of ``server`` in service TCP 192.0.2.10:80 of an ``ipvsadm -Ln``."""
    service = None
    for line in listing.splitlines():
        words = line.split()
        if words and words[0] == "TCP":
            service = words[1]
        elif service == "192.0.2.10:80" and words[:2] == ["->", server]:
            return int(words[4])
    raise AssertionError(f"{server} not in {listing}")


def _summary(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("SUMMARY "):
            result: dict[str, Any] = json.loads(line[len("SUMMARY ") :])
            return result
    raise AssertionError("the guest printed no SUMMARY")


def test_ipvs_backend_on_the_real_kernel_in_uml() -> None:
    require_root()
    require_tool("linux")  # user-mode-linux
    require_tool("ipvsadm")
    require_tool("modprobe")  # kmod
    from vrrpy.lab.uml import Guest

    with Guest(GUEST_MEMORY) as guest:
        guest.write("driver.py", DRIVER)
        result = guest.run(SETUP, timeout=TIMEOUT)
        print(result.output)
        assert result.status == 0, result.describe()
    s = _summary(result.output)

    # 1. The table, as ipvsadm reads it back: exactly the declaration, beside the
    # services someone else made; thresholds too (not in -Sn).
    assert set(s["table_before_master"]) == FOREIGN
    assert set(s["table_save"]) == EXPECTED | FOREIGN
    limited = {tuple(row) for row in s["table_thresholds"] if row[2] or row[3]}
    assert limited == {
        ("UDP [2001:db8::10]:53", "[2001:db8:1::11]:53", 100, 50),
        ("TCP [2001:db8::20]:443", "[2001:db8:1::21]:8443", 200, 100),
    }
    assert len(s["table_thresholds"]) == sum(1 for line in EXPECTED | FOREIGN if line[:2] == "-a")
    assert s["table_readback_equal"] is True
    assert s["table_second_pass_ops"] == 0
    assert s["table_status"]["failures"] == 0
    # A new declaration reconciled; an operator's edits repaired; a stop removes ours only.
    assert set(s["table_changed_save"]) == CHANGED | FOREIGN
    assert set(s["table_tampered_save"]) != CHANGED | FOREIGN
    assert set(s["table_repaired_save"]) == CHANGED | FOREIGN
    assert set(s["table_after_stop"]) == FOREIGN
    # pyroute2's IPVSService: sched= is dropped (wlc installed); sched_name= works.
    assert s["pyroute2_rc"] == 0
    assert set(s["pyroute2_save"]) == {"-A -t 192.0.2.80:80 -s wlc", "-A -t 192.0.2.81:80 -s rr"}

    # 2. Traffic. rr spreads 9 connections 3/3/3; a persistent service keeps the client.
    assert s["rr"] == {"counts": {"R1": 3, "R2": 3, "R3": 3}, "errors": []}
    assert s["persistent"]["errors"] == [] and len(s["persistent"]["counts"]) == 1
    assert re.search(r"192\.0\.2\.10:81 rr persistent 60", s["persistent_conns"])
    assert s["d2_before"] == []  # a Backup installs nothing
    assert (
        set(s["wrr_save"])
        == _web(
            "198.51.100.11:8080 -m -w 3", "198.51.100.12:8080 -m -w 2", "198.51.100.13:8080 -m -w 1"
        )
        | WEB_PERSISTENT
    )
    assert s["wrr"] == {"counts": {"R1": 6, "R2": 4, "R3": 2}, "errors": []}
    # R2 killed and reported failed (in both services that have it): removed, then
    # quiesced where inhibit_on_failure is set; no connection fails.
    r2_persistent = "-a -t 192.0.2.10:81 -r 198.51.100.12:8080 -m -w 1"
    assert set(s["removed_save"]) == _web(
        "198.51.100.11:8080 -m -w 3", "198.51.100.13:8080 -m -w 1"
    ) | (WEB_PERSISTENT - {r2_persistent})
    assert r2_persistent not in s["quiesced_save"]
    assert s["removed"]["errors"] == [] and "R2" not in s["removed"]["counts"]
    assert "-a -t 192.0.2.10:80 -r 198.51.100.12:8080 -m -w 0" in s["quiesced_save"]
    assert s["quiesced"]["errors"] == [] and "R2" not in s["quiesced"]["counts"]
    assert set(s["back_save"]) == set(s["wrr_save"])
    assert s["back"] == {"counts": {"R1": 6, "R2": 4, "R3": 2}, "errors": []}
    # All failed: the sorry server answers, the real servers wait at weight 0; one back, it goes.
    # (The persistent service has neither a sorry server nor inhibit: it is empty.)
    assert set(s["sorry_save"]) == _web(
        "198.51.100.11:8080 -m -w 0",
        "198.51.100.12:8080 -m -w 0",
        "198.51.100.13:8080 -m -w 0",
        "198.51.100.13:8099 -m -w 1",
    ) | {"-A -t 192.0.2.10:81 -s rr -p 60"}
    assert s["sorry"] == {"counts": {"sorry": 3}, "errors": []}
    assert "198.51.100.13:8099" not in " ".join(s["sorry_gone_save"])
    assert s["sorry_gone"] == {"counts": {"R1": 3}, "errors": []}
    assert s["d1_status"]["failures"] == 0 and s["d1_status"]["sorry"] == []

    # 3. Sync daemons follow the state; the connection survives the failover.
    assert all("backup sync daemon (mcast=b" in text for text in s["daemons_both_backup"])
    assert "master sync daemon (mcast=b1, syncid=9" in s["d1_daemon_master"]
    assert s["sync_seen_s"] is not None, s["d2_conns_before_failover"]
    assert s["sync_replies_before"] == [f"{s['sync_server']} before {i}" for i in range(3)]
    assert s["sync_replies_after"] == [f"{s['sync_server']} after {i}" for i in range(3)]
    d1_daemon, d2_daemon = s["daemons_after_failover"]
    assert "backup sync daemon (mcast=b1" in d1_daemon and "master" not in d1_daemon
    assert "master sync daemon (mcast=b2" in d2_daemon and "backup" not in d2_daemon
    assert any(line.startswith("-A -t 192.0.2.10:80") for line in s["d1_kept_save"])  # kept
    # After the failover the real server's replies cross D2, not D1; back, D1 again.
    assert s["forwarded_after"][0] == 0 and s["forwarded_after"][1] >= 3, s["forwarded_after"]
    assert s["d2_conns_after"] and "ESTABLISHED" in s["d2_conns_after"][0]
    assert s["through_d2"]["errors"] == []
    assert s["sync_replies_back"] == [f"{s['sync_server']} back {i}" for i in range(3)]
    assert s["forwarded_back"][0] >= 3 and s["forwarded_back"][1] == 0, s["forwarded_back"]
    # The kernel binds a synced connection to its real server only if the service is
    # there when the sync arrives: on D2 (pool installed at takeover) the connection
    # is counted nowhere; on D1, which kept its pool, it is an active connection of
    # its server. (IpvsBackend(install="always") keeps the pool on a Backup too.)
    server = {"R1": "198.51.100.11", "R2": "198.51.100.12", "R3": "198.51.100.13"}
    address = f"{server[s['sync_server']]}:8080"
    assert _active(s["d2_list_after"], address) == 0
    assert _active(s["d1_list_back"], address) >= 1
    assert any(line.startswith("-A -t 192.0.2.10:80") for line in s["d2_kept_save"])
    d1_after, d2_after, d1_daemons, d2_daemons = s["after_stop"]
    assert d1_after == [] and d2_after == []
    assert "sync daemon" not in d1_daemons + d2_daemons


if __name__ == "__main__":  # pragma: no cover - by hand: print the timeline
    import pytest

    pytest.main([__file__, "-s", "-q"])
