"""A pair of vrrpyd load balancers driving IPVS end to end, in one user-mode-linux guest.

``tests/test_ipvs_uml.py`` drives :class:`~vrrpy.ipvs.backend.IpvsBackend` by
hand; here two real ``vrrpyd`` processes do it from their TOML files, shaped
as ``examples/vrrpyd-lvs.toml`` (direct routing, health-checked real servers,
the kernel's sync daemon following the instance). IPVS is per network
namespace, so one guest (:mod:`vrrpy.lab.uml`) holds the whole lab, built by
:class:`vrrpy.lab.Lab` on one bridge::

    h1 D1 192.0.2.11  vrrpyd, priority 150     VIPs 192.0.2.10 (VI_1), 192.0.2.20 (VI_2)
    h2 D2 192.0.2.12  vrrpyd, priority 100
    h3 C  192.0.2.13  the client
    h4-h6 R1-R3 192.0.2.14-16  real servers: both VIPs on lo, arp_ignore=1, arp_announce=2

Each director's file declares two virtual servers (the real servers' checks
run in each director's health agent):

* ``VI_1``: ``192.0.2.10:80``, ``wrr``, DR, R1-R3 each with a ``TCP_CHECK``,
  R3 also with a ``MISC_CHECK`` using ``misc_dynamic`` (its exit status read
  from a file); the sync daemon (``eth0``, syncid 10); ``install`` left at
  ``"master"``;
* ``VI_2``: ``192.0.2.20:81``, ``rr``, DR, R1-R2 with a ``TCP_CHECK``,
  ``inhibit_on_failure``, ``install = "always"``.

``ipvsadm`` in each namespace is the oracle (the expected ``-Sn`` lines
below are written by hand). What the guest shows:

1. D1 Master of both: D1 holds both services; D2, a Backup, holds only
   VI_2's (``install = "always"``), not VI_1's (installed on becoming
   Master); D1 runs the master sync daemon, D2 the backup one.
2. The client's TCP connections through the VIPs reach the real servers, as
   the schedulers say (``wrr`` 3/3/3, ``rr`` 2/2).
3. ``misc_dynamic``: the MISC_CHECK exits 7, R3's kernel weight becomes 5
   and ``wrr`` gives it 5 connections of 7; exit 0 gives its weight 1 back.
4. R2's listeners closed: its TCP_CHECKs fail; it leaves VI_1's service
   (removed) and waits at weight 0 in VI_2's (``inhibit_on_failure``), on
   both directors; no connection fails meanwhile; back, both are restored.
5. A connection through each VIP; both reach D2's connection table through
   the sync daemon; VI_2's, whose service D2 already holds, is bound to its
   real server there (an active connection of it). D1's vrrpyd gets SIGKILL:
   D2 takes both VIPs, installs VI_1's pool and becomes the sync master.
   SIGKILL leaves D1's *kernel* as it was (its addresses, its IPVS table,
   its connection entries: nobody removes them), so D1's link is then set
   down, as a dead node's would be: what carries the connections afterwards
   can only be D2. Both connections go on, answered by the same real
   servers, and new ones are served by D2.
6. SIGTERM to D2: its pools are withdrawn (keepalived deletes its virtual
   servers when it stops).
"""

from __future__ import annotations

import json
import time
from typing import Any

from support import require_root, require_tool

GUEST_MEMORY = "384M"
TIMEOUT = 120.0

SETUP = r"""
modprobe -d "$MODDIR" -a ip_vs ip_vs_rr ip_vs_wrr veth bridge || exit 1
"$VRRPY_PYTHON" "$UML_WORK/driver.py"
"""

DRIVER = r'''
import json, os, signal, socket, subprocess, sys, threading, time
from pathlib import Path

from vrrpy.lab import Lab, in_netns, wait_for
from vrrpy.lab.daemon import render

W = Path(os.environ["UML_WORK"])
T0 = time.monotonic()
RESULT = {"timeline": []}
LOGS = {}
VIP1, VIP2 = "192.0.2.10", "192.0.2.20"
ADVERT = 0.3


def mark(what):
    at = round(time.monotonic() - T0, 3)
    RESULT["timeline"].append([at, what])
    print(f"T+{at:7.3f}s  {what}", flush=True)


def sh(*argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).strip()


def adm(host, *args):
    rc, out = sh("ip", "netns", "exec", host.netns, "ipvsadm", *args)
    assert rc == 0, (host.name, args, out)
    return out


def save(host):
    return sorted(adm(host, "-Sn").splitlines())


def until_table(host, expected, timeout=8.0):
    """Wait until ipvsadm -Sn in ``host`` is exactly ``expected``; return what it last was."""
    seen = []
    def same():
        seen[:] = save(host)
        return set(seen) == set(expected)
    wait_for(same, timeout, step=0.05)
    return seen


# ------------------------------------------------------------------ real servers

class Listener:
    """A TCP server in a namespace: says its name, then echoes lines prefixed with it."""

    def __init__(self, netns, port, name):
        self.netns, self.port, self.name = netns, port, name
        self.start()

    def start(self):
        def make():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", self.port))
            s.listen(64)
            return s
        self.sock = in_netns(self.netns, make)
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
            try:
                conn.sendall(f"{self.name}\n".encode())
                for line in conn.makefile("r"):
                    conn.sendall(f"{self.name} {line.strip()}\n".encode())
            except OSError:
                pass

    def kill(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def dial(client, vip, port, timeout=3.0):
    return in_netns(client.netns, lambda: socket.create_connection((vip, port), timeout=timeout))


def spread(client, vip, port, n):
    """n connections one after the other: who answered each (or the error)."""
    counts, errors = {}, []
    for _ in range(n):
        try:
            with dial(client, vip, port) as c:
                name = c.makefile("r").readline().strip()
            counts[name] = counts.get(name, 0) + 1
        except OSError as exc:
            errors.append(str(exc))
    return {"counts": counts, "errors": errors}


def exchange(conn, reader, word):
    replies = []
    try:
        for i in range(2):
            conn.sendall(f"{word} {i}\n".encode())
            replies.append(reader.readline().strip())
    except OSError as exc:
        replies.append(f"error: {exc}")
    return replies


# ------------------------------------------------------------------ the directors

def checks(address, port, misc=None):
    server = {"address": address, "port": port,
              "TCP_CHECK": {"connect_timeout": 1, "retry": 0}}
    if misc is not None:
        server["MISC_CHECK"] = {"misc_path": misc, "misc_dynamic": True, "misc_timeout": 2}
    return server


def config(name, priority, state_file, status_file):
    misc = f"/bin/sh -c 'exit $(cat {status_file})'"
    instances = [
        {"name": "VI_1", "interface": "eth0", "vrid": 10, "priority": priority,
         "advert_interval": ADVERT, "virtual_addresses": [f"{VIP1}/24"]},
        {"name": "VI_2", "interface": "eth0", "vrid": 20, "priority": priority,
         "advert_interval": ADVERT, "virtual_addresses": [f"{VIP2}/24"]},
    ]
    servers = [
        {"instance": "VI_1", "address": VIP1, "port": 80, "protocol": "TCP",
         "lb_algo": "wrr", "lb_kind": "DR", "delay_loop": 0.5,
         "sync_daemon": {"interface": "eth0", "syncid": 10},
         "real_server": [checks("192.0.2.14", 80), checks("192.0.2.15", 80),
                         checks("192.0.2.16", 80, misc)]},
        {"instance": "VI_2", "address": VIP2, "port": 81, "lb_algo": "rr", "lb_kind": "DR",
         "delay_loop": 0.5, "inhibit_on_failure": True, "install": "always",
         "real_server": [checks("192.0.2.14", 81), checks("192.0.2.15", 81)]},
    ]
    return render(state_file, instances, tables={"virtual_server": servers},
                  global_={"realtime_priority": 0, "lock_memory": False})


class Director:
    def __init__(self, host, priority, status_file):
        self.host = host
        home = W / host.name  # a directory each: what lives beside the state file is its own
        home.mkdir()
        self.state_file = home / "state.json"
        self.conf = home / "vrrpyd.toml"
        self.log = home / "vrrpyd.log"
        self.conf.write_text(config(host.name, priority, self.state_file, status_file))
        self.proc = None

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = self.host.popen([sys.executable, "-m", "vrrpy.daemon", "-c",
                                         str(self.conf)], stdout=log, stderr=subprocess.STDOUT)

    def doc(self):
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def states(self):
        instances = self.doc().get("instances", {})
        return [instances.get(n, {}).get("state") for n in ("VI_1", "VI_2")]

    def tail(self, n=25):
        try:
            return "\n".join(self.log.read_text().splitlines()[-n:])
        except OSError:
            return ""


def main(lab):
    d1h, d2h, client = lab["h1"], lab["h2"], lab["h3"]
    reals = {f"R{i}": lab[f"h{i + 3}"] for i in (1, 2, 3)}
    for host in reals.values():
        for vip in (VIP1, VIP2):
            sh("ip", "-n", host.netns, "addr", "add", f"{vip}/32", "dev", "lo")
        for key in ("all.arp_ignore=1", "all.arp_announce=2"):
            sh("ip", "netns", "exec", host.netns, "sysctl", "-qw", f"net.ipv4.conf.{key}")
    listeners = {name: Listener(host.netns, 80, name) for name, host in reals.items()}
    listeners.update({f"{n}:81": Listener(reals[n].netns, 81, n) for n in ("R1", "R2")})
    status_file = W / "r3-exit-status"
    status_file.write_text("0\n")
    d1 = Director(d1h, 150, status_file)
    d2 = Director(d2h, 100, status_file)
    directors = [d1, d2]
    mark("lab up: 6 namespaces, 5 listeners")
    try:
        run(lab, d1, d2, client, listeners, status_file)
    finally:
        for d in directors:
            LOGS[d.host.name] = d.tail()
        for listener in listeners.values():
            listener.kill()


def run(lab, d1, d2, client, listeners, status_file):
    # 1. D1 first (it must be Master before D2 could be: a Backup that once was Master
    #    keeps its pool, keepalived's way, and this test wants to see a Backup without).
    t = time.monotonic()
    d1.start()
    RESULT["d1_master"] = wait_for(lambda: d1.states() == ["MASTER", "MASTER"], 15)
    mark(f"D1 {d1.states()} after {time.monotonic() - t:.2f} s")
    if not RESULT["d1_master"]:
        raise SystemExit(f"D1 never became Master (exit status {d1.proc.poll()})")
    d2.start()
    RESULT["d2_backup"] = wait_for(
        lambda: d2.states() == ["BACKUP", "BACKUP"] and d2.doc().get("health_agent", {})
        .get("ready"), 15)
    mark(f"D2 {d2.states()}")
    if not RESULT["d2_backup"]:
        raise SystemExit(f"D2 never became a ready Backup (exit status {d2.proc.poll()})")
    RESULT["d1_start"] = until_table(d1.host, EXPECT_D1)
    RESULT["d2_start"] = until_table(d2.host, EXPECT_D2)
    RESULT["daemons_start"] = [adm(d1.host, "-L", "--daemon"), adm(d2.host, "-L", "--daemon")]
    mark("tables: D1 both services, D2 VI_2's only")

    # 2. Traffic through both VIPs.
    RESULT["wrr"] = spread(client, VIP1, 80, 9)
    RESULT["rr"] = spread(client, VIP2, 81, 4)
    mark(f"VIP1 {RESULT['wrr']}, VIP2 {RESULT['rr']}")

    # 3. misc_dynamic: exit 7 -> weight 5; exit 0 -> the configured weight. The state
    #    file is rewritten beside the kernel's update, not before it: wait for each.
    def r3():
        doc = d1.doc().get("instances", {}).get("VI_1", {}).get("backends", {})
        health = doc.get("ipvs", {}).get("status", {}).get("health", {})
        return health.get("VI_1 TCP 192.0.2.10:80 -> 192.0.2.16:80", {})

    status_file.write_text("7\n")
    RESULT["dynamic_save"] = until_table(d1.host, EXPECT_DYNAMIC)
    wait_for(lambda: r3().get("weight") == 5, 5)
    RESULT["r3_state_dynamic"] = r3()
    mark("R3 at weight 5 (exit 7)")
    RESULT["dynamic_wrr"] = spread(client, VIP1, 80, 7)
    status_file.write_text("0\n")
    RESULT["dynamic_back"] = until_table(d1.host, EXPECT_D1)
    wait_for(lambda: r3().get("up") is True and r3().get("weight") is None, 5)
    RESULT["r3_state_back"] = r3()
    mark(f"R3 back at weight 1 (exit 0); spread at weight 5: {RESULT['dynamic_wrr']}")

    # 4. R2 dies: its checks fail; removed from VI_1's service, weight 0 in VI_2's.
    t = time.monotonic()
    listeners["R2"].kill()
    listeners["R2:81"].kill()
    RESULT["r2_down_d1"] = until_table(d1.host, EXPECT_R2_DOWN_D1)
    RESULT["r2_down_s"] = round(time.monotonic() - t, 2)
    RESULT["r2_down_d2"] = until_table(d2.host, EXPECT_R2_DOWN_D2)
    RESULT["r2_down_spread"] = spread(client, VIP1, 80, 4)
    RESULT["r2_down_spread_81"] = spread(client, VIP2, 81, 2)
    mark(f"R2 down after {RESULT['r2_down_s']} s: {RESULT['r2_down_spread']}")
    listeners["R2"].start()
    listeners["R2:81"].start()
    RESULT["r2_back_d1"] = until_table(d1.host, EXPECT_D1)
    RESULT["r2_back_d2"] = until_table(d2.host, EXPECT_D2)
    RESULT["r2_back_spread"] = spread(client, VIP1, 80, 3)
    mark(f"R2 back: {RESULT['r2_back_spread']}")

    # 5. Connection sync, then SIGKILL of the Master's vrrpyd.
    conns = {}
    for key, vip, port in (("a", VIP1, 80), ("b", VIP2, 81)):
        conn = dial(client, vip, port)
        reader = conn.makefile("r")
        server = reader.readline().strip()
        conns[key] = (conn, reader, server, conn.getsockname()[1])
        RESULT[f"{key}_server"] = server
        RESULT[f"{key}_before"] = exchange(conn, reader, "before")
    needles = [f"192.0.2.13:{c[3]}" for c in conns.values()]
    t = time.monotonic()
    seen = ""
    def synced():
        nonlocal seen
        seen = adm(d2.host, "-Lnc")
        return all(n in seen for n in needles)
    RESULT["synced_s"] = round(time.monotonic() - t, 2) if wait_for(synced, 8, 0.2) else None
    RESULT["d2_conns_before"] = [l for l in seen.splitlines() if any(n in l for n in needles)]
    RESULT["d2_list_before"] = adm(d2.host, "-Ln")
    mark(f"connections a ({conns['a'][2]}), b ({conns['b'][2]}) on D2 after "
         f"{RESULT['synced_s']} s")

    d1.proc.send_signal(signal.SIGKILL)
    d1.proc.wait(5)
    killed = time.monotonic()
    mark("SIGKILL to D1's vrrpyd")
    got = wait_for(lambda: d2.states() == ["MASTER", "MASTER"], 10, 0.01)
    RESULT["takeover_s"] = round(time.monotonic() - killed, 3) if got else None
    mark(f"D2 {d2.states()} after {RESULT['takeover_s']} s")
    # D1's kernel still holds its addresses, pool and connections: cut it off, as a
    # dead node would be, so that only D2 can carry anything from here on.
    d1.host.link(False)
    RESULT["d2_after_save"] = until_table(d2.host, EXPECT_D1)
    RESULT["d2_list_after"] = adm(d2.host, "-Ln")
    RESULT["d2_daemon_after"] = adm(d2.host, "-L", "--daemon")
    RESULT["d2_addresses"] = sh("ip", "-n", d2.host.netns, "-o", "-4", "addr", "show",
                                "dev", "eth0")[1]
    for key, (conn, reader, _, _) in conns.items():
        RESULT[f"{key}_after"] = exchange(conn, reader, "after")
    RESULT["d2_conns_after"] = [l for l in adm(d2.host, "-Lnc").splitlines()
                                if any(n in l for n in needles)]
    RESULT["new_after"] = spread(client, VIP1, 80, 3)
    mark(f"after the takeover: a {RESULT['a_after']}, b {RESULT['b_after']}, "
         f"new {RESULT['new_after']}")
    for conn, reader, _, _ in conns.values():
        conn.close()

    # 6. D2 stops: its pools are withdrawn.
    d2.proc.send_signal(signal.SIGTERM)
    RESULT["d2_exit"] = d2.proc.wait(15)
    RESULT["d2_after_stop"] = save(d2.host)
    mark(f"D2 stopped ({RESULT['d2_exit']}): {RESULT['d2_after_stop']}")


EXPECT_D1 = __EXPECT_D1__
EXPECT_D2 = __EXPECT_D2__
EXPECT_DYNAMIC = __EXPECT_DYNAMIC__
EXPECT_R2_DOWN_D1 = __EXPECT_R2_DOWN_D1__
EXPECT_R2_DOWN_D2 = __EXPECT_R2_DOWN_D2__

try:
    with Lab(hosts=6, prefix="lv") as lab:
        main(lab)
except BaseException as exc:
    import traceback
    traceback.print_exc()
    RESULT["error"] = repr(exc)
finally:
    RESULT["seconds"] = round(time.monotonic() - T0, 2)
    for name, text in LOGS.items():
        print(f"--- vrrpyd {name} log (tail)\n{text}")
    print("SUMMARY " + json.dumps(RESULT), flush=True)
'''

# ------------------------------------------------------------------ the oracle, by hand

VS1 = ["-A -t 192.0.2.10:80 -s wrr"]
VS2 = ["-A -t 192.0.2.20:81 -s rr"]
R1_80 = "-a -t 192.0.2.10:80 -r 192.0.2.14:80 -g -w 1"
R2_80 = "-a -t 192.0.2.10:80 -r 192.0.2.15:80 -g -w 1"
R3_80 = "-a -t 192.0.2.10:80 -r 192.0.2.16:80 -g -w 1"
R1_81 = "-a -t 192.0.2.20:81 -r 192.0.2.14:81 -g -w 1"
R2_81 = "-a -t 192.0.2.20:81 -r 192.0.2.15:81 -g -w 1"

EXPECT_D2 = [*VS2, R1_81, R2_81]
EXPECT_D1 = [*VS1, R1_80, R2_80, R3_80, *EXPECT_D2]
EXPECT_DYNAMIC = [*VS1, R1_80, R2_80, R3_80.replace("-w 1", "-w 5"), *EXPECT_D2]
EXPECT_R2_DOWN_D2 = [*VS2, R1_81, R2_81.replace("-w 1", "-w 0")]
EXPECT_R2_DOWN_D1 = [*VS1, R1_80, R3_80, *EXPECT_R2_DOWN_D2]

NAMES = {"R1": "192.0.2.14", "R2": "192.0.2.15", "R3": "192.0.2.16"}


def _driver() -> str:
    text = DRIVER
    for name, value in (
        ("EXPECT_D1", EXPECT_D1),
        ("EXPECT_D2", EXPECT_D2),
        ("EXPECT_DYNAMIC", EXPECT_DYNAMIC),
        ("EXPECT_R2_DOWN_D1", EXPECT_R2_DOWN_D1),
        ("EXPECT_R2_DOWN_D2", EXPECT_R2_DOWN_D2),
    ):
        text = text.replace(f"__{name}__", repr(value))
    return text


def _summary(output: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith("SUMMARY "):
            result: dict[str, Any] = json.loads(line[len("SUMMARY ") :])
            return result
    raise AssertionError("the guest printed no SUMMARY")


def _active(listing: str, service: str, server: str) -> int:
    """ActiveConn of ``server`` in ``service`` (ADDRESS:PORT) of an ``ipvsadm -Ln``."""
    current = None
    for line in listing.splitlines():
        words = line.split()
        if words and words[0] == "TCP":
            current = words[1]
        elif current == service and words[:2] == ["->", server]:
            return int(words[4])
    raise AssertionError(f"{server} not in {service} of:\n{listing}")


def test_a_vrrpyd_pair_drives_ipvs_in_uml() -> None:
    require_root()
    require_tool("linux")  # user-mode-linux
    require_tool("ipvsadm")
    require_tool("modprobe")  # kmod
    require_tool("sysctl")  # procps: the lab and the real servers' ARP settings
    from vrrpy.lab.uml import Guest

    started = time.monotonic()
    with Guest(GUEST_MEMORY) as guest:
        guest.write("driver.py", _driver())
        result = guest.run(SETUP, timeout=TIMEOUT)
        print(result.output)
        assert result.status == 0, result.describe()
    s = _summary(result.output)
    print(f"wall time {time.monotonic() - started:.1f} s (guest {result.seconds:.1f} s)")
    assert "error" not in s, s.get("error")

    # 1. The Master holds both pools; the Backup only VI_2's (install = "always").
    assert s["d1_master"] and s["d2_backup"], s["timeline"]
    assert set(s["d1_start"]) == set(EXPECT_D1)
    assert set(s["d2_start"]) == set(EXPECT_D2)
    d1_daemon, d2_daemon = s["daemons_start"]
    assert "master sync daemon (mcast=eth0, syncid=10" in d1_daemon and "backup" not in d1_daemon
    assert "backup sync daemon (mcast=eth0, syncid=10" in d2_daemon and "master" not in d2_daemon

    # 2. Client connections reach the real servers, spread as the schedulers say.
    assert s["wrr"] == {"counts": {"R1": 3, "R2": 3, "R3": 3}, "errors": []}
    assert s["rr"] == {"counts": {"R1": 2, "R2": 2}, "errors": []}

    # 3. misc_dynamic: exit 7 is weight 5 in the kernel, and wrr follows it.
    assert set(s["dynamic_save"]) == set(EXPECT_DYNAMIC)
    assert s["dynamic_wrr"] == {"counts": {"R1": 1, "R2": 1, "R3": 5}, "errors": []}
    assert set(s["dynamic_back"]) == set(EXPECT_D1)
    # The state file says so too (weight null: the configured one).
    assert s["r3_state_dynamic"]["up"] is True and s["r3_state_dynamic"]["weight"] == 5
    assert "weight 5" in s["r3_state_dynamic"]["reason"], s["r3_state_dynamic"]
    assert s["r3_state_back"]["up"] is True and s["r3_state_back"]["weight"] is None

    # 4. A dead real server leaves VI_1 (removed) and waits at weight 0 in VI_2
    # (inhibit_on_failure), on the Master and on the Backup; back, it returns.
    assert set(s["r2_down_d1"]) == set(EXPECT_R2_DOWN_D1)
    assert set(s["r2_down_d2"]) == set(EXPECT_R2_DOWN_D2)
    assert s["r2_down_spread"] == {"counts": {"R1": 2, "R3": 2}, "errors": []}
    assert s["r2_down_spread_81"] == {"counts": {"R1": 2}, "errors": []}
    assert set(s["r2_back_d1"]) == set(EXPECT_D1)
    assert set(s["r2_back_d2"]) == set(EXPECT_D2)
    assert s["r2_back_spread"]["errors"] == [] and sum(s["r2_back_spread"]["counts"].values()) == 3

    # 5. The sync daemon copied both connections to D2; VI_2's, whose service D2 held
    # already, is an active connection of its real server there.
    assert s["synced_s"] is not None, s["d2_conns_before"]
    assert all("ESTABLISHED" in line for line in s["d2_conns_before"]), s["d2_conns_before"]
    b_server = f"{NAMES[s['b_server']]}:81"
    assert _active(s["d2_list_before"], "192.0.2.20:81", b_server) >= 1, s["d2_list_before"]
    # SIGKILL: D2 takes over both instances (3 x 0.3 s + skew ~0.18 s, plus the poll).
    assert s["takeover_s"] is not None and s["takeover_s"] < 3.0, s["timeline"]
    assert set(s["d2_after_save"]) == set(EXPECT_D1)
    assert "master sync daemon (mcast=eth0, syncid=10" in s["d2_daemon_after"]
    assert "192.0.2.10/24" in s["d2_addresses"] and "192.0.2.20/24" in s["d2_addresses"]
    # The connections made through D1 go on through D2, to the same real servers.
    for key in ("a", "b"):
        server = s[f"{key}_server"]
        assert s[f"{key}_before"] == [f"{server} before {i}" for i in range(2)]
        assert s[f"{key}_after"] == [f"{server} after {i}" for i in range(2)], s[f"{key}_after"]
    assert s["new_after"]["errors"] == [] and sum(s["new_after"]["counts"].values()) == 3
    # VI_1's service appeared on D2 after its connection was synced: that one is
    # carried (its entry names the real server) but counted on no server.
    a_server = f"{NAMES[s['a_server']]}:80"
    assert _active(s["d2_list_after"], "192.0.2.10:80", a_server) == 0, s["d2_list_after"]

    # 6. Stopped, D2 withdrew its pools.
    assert s["d2_exit"] == 0 and s["d2_after_stop"] == []


if __name__ == "__main__":  # pragma: no cover - by hand: print the timeline
    import pytest

    pytest.main([__file__, "-s", "-q"])
