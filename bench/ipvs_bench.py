"""IPVS: a 1,000 x 10 pool through the backend, beside ``ipvsadm --restore``, in a UML guest.

The host kernel has no IPVS, so the bench boots Debian's user-mode-linux
kernel (:mod:`vrrpy.lab.uml`, one guest) and, in it, measures in the same
run and on the same table:

* **vrrpy**: an :class:`~vrrpy.ipvs.backend.IpvsBackend` with ``--services``
  virtual services (TCP, ``wrr``) of ``--servers`` NAT real servers each,
  in namespace ``A``:

  - *install*: the transition to Master on an empty table (read the
    table, plan, reconcile, apply every operation);
  - *one server, health*: one real server reported failed
    (``set_health``): the changed service alone is read and fixed;
  - *one server, declaration*: one weight changed in the declaration
    (``set_services``): every declared service is read again and compared;
  - *verify*: ``reconcile()`` on a table that needs nothing;
  - *withdraw*: the transition to INIT (the services deleted).

* **ipvsadm** (the C tool, libnl): ``ipvsadm --restore`` of the same pool
  (its ``-Sn`` output), ``ipvsadm -e`` of one server, ``ipvsadm -Sn`` (a
  full read), ``ipvsadm -C``, in namespace ``B``; each timed around the
  process, as an operator or a script would run it.

* **pyroute2's IPVS class** (``--pyroute2``, default on): the same pool
  added through ``pyroute2.IPVS().service("add") / .dest("add")``, one
  acknowledged request at a time, in namespace ``P``: the library the
  backend's netlink layer measured itself against.

Each figure is the median of ``--repeat`` runs (min and max beside it).
Needs root, ``user-mode-linux`` and ``ipvsadm``:

    flock /tmp/vrrpy-heavy.lock python bench/ipvs_bench.py
    python bench/ipvs_bench.py --services 200 --servers 5 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import sys

from common import source_revision

SETUP = r"""
set -e
modprobe -d "$MODDIR" -a ip_vs ip_vs_wrr
for ns in A B P; do ip netns add $ns; ip -n $ns link set lo up; done
set +e
"$VRRPY_PYTHON" "$UML_WORK/driver.py" "$@"
status=$?
for ns in A B P; do ip netns del $ns; done
exit $status
"""

DRIVER = r'''
import asyncio, json, statistics, subprocess, sys, time
from dataclasses import replace

from vrrpy.backends.base import TransitionEvent
from vrrpy.core.state import State
from vrrpy.ipvs.backend import IpvsBackend
from vrrpy.ipvs.model import RealServer, VirtualService

SERVICES, SERVERS, REPEAT, PYROUTE2 = (int(a) for a in sys.argv[1:5])


def ev(old, new):
    return TransitionEvent("VI_1", old, new, "bench", 100)


def declaration(weight_of_first=1):
    out = []
    for i in range(SERVICES):
        servers = tuple(
            RealServer(f"198.51.100.{1 + j}", 8000 + j, weight=1 + j) for j in range(SERVERS)
        )
        if i == SERVICES // 2:
            servers = (replace(servers[0], weight=weight_of_first),) + servers[1:]
        out.append(VirtualService(address=f"192.0.2.{1 + i // 250}", port=1000 + i % 250,
                                  scheduler="wrr", real_servers=servers))
    return out


def sh(argv, stdin=None):
    t = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    assert done.returncode == 0, (argv[:6], done.stderr[:500])
    return seconds, done.stdout


def lines(ns):
    return sh(["ip", "netns", "exec", ns, "ipvsadm", "-Sn"])[1].count("\n")


FIGURES = {}


def record(name, seconds):
    FIGURES.setdefault(name, []).append(seconds)


async def vrrpy_round():
    services = declaration()
    backend = IpvsBackend(services, netns="A")
    await backend.transition(ev(State.INITIALIZE, State.BACKUP))
    t = time.perf_counter()
    await backend.transition(ev(State.BACKUP, State.MASTER))
    record("vrrpy install", time.perf_counter() - t)
    assert lines("A") == SERVICES * (SERVERS + 1), lines("A")
    target = services[SERVICES // 3]
    t = time.perf_counter()
    backend.set_health(target.real_servers[1], False, target.key)
    await backend.settle()
    record("vrrpy one server, health", time.perf_counter() - t)
    t = time.perf_counter()
    backend.set_services(declaration(weight_of_first=7))
    await backend.settle()
    record("vrrpy one server, declaration", time.perf_counter() - t)
    t = time.perf_counter()
    await backend.reconcile()
    record("vrrpy verify (nothing to do)", time.perf_counter() - t)
    status = backend.status()
    save = sh(["ip", "netns", "exec", "A", "ipvsadm", "-Sn"])[1]
    assert f"-w 7" in save and status["failures"] == 0, status
    t = time.perf_counter()
    await backend.transition(ev(State.MASTER, State.INITIALIZE))
    record("vrrpy withdraw", time.perf_counter() - t)
    assert lines("A") == 0
    await backend.close()
    return save


def ipvsadm_round(save):
    record("ipvsadm --restore", sh(["ip", "netns", "exec", "B", "ipvsadm", "-R"], save)[0])
    assert lines("B") == save.count("\n")
    first = save.splitlines()[1].split()  # -a -t ADDR:PORT -r RS:PORT -m -w N
    record("ipvsadm -e one server", sh(["ip", "netns", "exec", "B", "ipvsadm", "-e", first[1],
                                       first[2], "-r", first[4], "-m", "-w", "0"])[0])
    record("ipvsadm -Sn (full read)", sh(["ip", "netns", "exec", "B", "ipvsadm", "-Sn"])[0])
    record("ipvsadm -C", sh(["ip", "netns", "exec", "B", "ipvsadm", "-C"])[0])


PYROUTE2_CODE = r"""
import socket, sys, time
from pyroute2 import IPVS, IPVSDest, IPVSService
services, servers = int(sys.argv[1]), int(sys.argv[2])
ipvs = IPVS()
t = time.perf_counter()
for i in range(services):
    svc = IPVSService(addr=f"192.0.2.{1 + i // 250}", port=1000 + i % 250,
                      protocol=socket.IPPROTO_TCP, sched_name="wrr")
    ipvs.service("add", service=svc)
    for j in range(servers):
        ipvs.dest("add", service=svc, dest=IPVSDest(addr=f"198.51.100.{1 + j}", port=8000 + j,
                                                   weight=1 + j, fwd_method=0))
print(time.perf_counter() - t)
ipvs.close()
"""


def pyroute2_round():
    _, out = sh(["ip", "netns", "exec", "P", sys.executable, "-c", PYROUTE2_CODE,
                 str(SERVICES), str(SERVERS)])
    record("pyroute2 IPVS add, one by one", float(out.strip()))
    assert lines("P") == SERVICES * (SERVERS + 1)
    sh(["ip", "netns", "exec", "P", "ipvsadm", "-C"])


async def main():
    for _ in range(REPEAT):
        save = await vrrpy_round()
        ipvsadm_round(save)
        if PYROUTE2:
            pyroute2_round()
    summary = {k: (statistics.median(v), min(v), max(v)) for k, v in FIGURES.items()}
    print("FIGURES " + json.dumps(summary), flush=True)


asyncio.run(main())
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-pyroute2", dest="pyroute2", action="store_false")
    parser.add_argument("--memory", default="512M", help="the guest's RAM")
    args = parser.parse_args()
    from vrrpy.lab.uml import Guest, missing

    why = missing()
    if why is not None:
        print(f"cannot boot a UML guest: {why}")
        return 0
    with Guest(args.memory) as guest:
        guest.write("driver.py", DRIVER)
        argv = f"{args.services} {args.servers} {args.repeat} {int(args.pyroute2)}"
        result = guest.run(
            SETUP.replace('"$@"', argv), timeout=120 + 60.0 * args.repeat, kernel_args=()
        )
    figures = None
    for line in result.output.splitlines():
        if line.startswith("FIGURES "):
            figures = json.loads(line[len("FIGURES ") :])
    print(
        f"Python {platform.python_version()}, vrrpy {source_revision()}, UML kernel {guest.release}"
    )
    print(
        f"{args.services} virtual services x {args.servers} real servers "
        f"({args.services * (args.servers + 1)} entries), median of {args.repeat} "
        "(min-max), one UML guest"
    )
    if figures is None:
        print("the guest printed no figures:")
        print(result.describe())
        return 0
    width = max(len(name) for name in figures)
    for name, (median, low, high) in figures.items():
        print(f"  {name:<{width}}  {median * 1000:9.1f} ms   ({low * 1000:.1f}-{high * 1000:.1f})")
    install = figures.get("vrrpy install", [0])[0]
    restore = figures.get("ipvsadm --restore", [0])[0]
    if install and restore:
        print(f"vrrpy install / ipvsadm --restore: {install / restore:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
