"""The DRBD backend against the real DRBD 8.4 kernel module, in a user-mode-linux guest.

The host kernel has no DRBD; Debian's user-mode-linux kernel has it as a
module. One guest (:mod:`vrrpy.lab.uml`) holds both DRBD nodes: resource
``ra`` (minor 0, node A) and ``rb`` (minor 1, node B), each on a loop device
over a file of a few MiB, each configured (in its own file) as the peer of
the other. In-tree DRBD 8.4 is not network-namespace aware -- its generic
netlink family answers only in the initial namespace ("Could not connect to
'drbd' generic netlink family" from drbdsetup-84 inside a namespace) and it
opens its sockets in ``init_net`` -- so the replication link is two
addresses on a dummy interface of the initial namespace, and "A dies" means
A's replication address disappears (its peer then loses it as after a
crash: ping timeout, no goodbye).

A Python script in the guest drives :class:`vrrpy.backends.drbd.DrbdBackend`
for both nodes with the TransitionEvents the runtime would send, and prints a
timeline:

1. A becomes Master: prepare promotes ``ra`` and mounts ext4; a file is written;
2. B asked to become Master while A is Primary: refused (two Primaries never);
3. A dies; B is asked every 100 ms (the runtime asks again after a refusal):
   refused while DRBD still sees A, promoted once DRBD noticed; B mounts and
   reads A's file;
4. A leaves Master: unmount, demote;
5. split brain: A is promoted behind vrrpy's back and writes, the link comes
   back, DRBD finds the divergence and drops the connection: A's prepare
   refuses a StandAlone resource; the operator's resolution from
   docs/drbd.md (``connect --discard-my-data`` on the victim) brings A back
   as an UpToDate Secondary holding B's data;
6. an Outdated disk (A disconnected and ``drbdadm outdate``): prepare refuses,
   A stays Secondary;
7. B leaves Master: unmount, demote;
8. failback: A, resynced from B, becomes Master again and reads B's data.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import pytest

from support import require_root, require_tool

GUEST_MEMORY = "256M"
TIMEOUT = 120.0

SETUP = r"""
set -e
modprobe -d "$MODDIR" -a drbd loop dummy veth
mkdir -p /run/lock                  # /var/lock -> /run/lock, a fresh tmpfs here
mount -t tmpfs tmpfs /var/lib/drbd  # drbdmeta's files: the guest's own, not the host's
hostname node
W=$UML_WORK
truncate -s 8M "$W/a.img" "$W/b.img"
LA=$(losetup -f --show "$W/a.img")
LB=$(losetup -f --show "$W/b.img")
ip link add repl type dummy
ip addr add 192.0.2.1/32 dev repl
ip addr add 192.0.2.2/32 dev repl
ip link set repl up
# Each node's file sees it from its side: "on node" is this host, "on peer" the other.
conf() {  # NAME MINOR DISK ADDR PEER_MINOR PEER_ADDR
cat <<EOF
resource $1 {
  net { protocol C; ping-int 1; ping-timeout 5; timeout 10; connect-int 1; }
  on node { device /dev/drbd$2; disk $3; address $4:7789; meta-disk internal; }
  on peer { device /dev/drbd$5; disk /dev/null; address $6:7789; meta-disk internal; }
}
EOF
}
conf ra 0 "$LA" 192.0.2.1 1 192.0.2.2 > "$W/a.conf"
conf rb 1 "$LB" 192.0.2.2 0 192.0.2.1 > "$W/b.conf"
ADM=$("$VRRPY_PYTHON" -c 'from vrrpy.backends.drbd import default_drbdadm as d; print(d()[0])')
export DRBD_DONT_WARN_ON_VERSION_MISMATCH=1
$ADM -c "$W/a.conf" create-md --force ra >/dev/null 2>&1
$ADM -c "$W/b.conf" create-md --force rb >/dev/null 2>&1
$ADM -c "$W/a.conf" up ra
$ADM -c "$W/b.conf" up rb
i=0; until [ "$($ADM -c "$W/a.conf" cstate ra)" = Connected ]; do
  i=$((i+1)); [ $i -lt 100 ] || { echo "ra never connected"; cat /proc/drbd; exit 1; }; sleep 0.1
done
# A new, empty pair: skip the initial sync (both sides are zeros), then make the filesystem.
$ADM -c "$W/a.conf" -- --clear-bitmap new-current-uuid ra
$ADM -c "$W/a.conf" primary ra
mkfs.ext4 -q /dev/drbd0
$ADM -c "$W/a.conf" secondary ra
mkdir -p "$W/mnt-a" "$W/mnt-b"
cat /proc/drbd
set +e
"$VRRPY_PYTHON" "$W/driver.py" "$ADM"
status=$?
if [ $status -eq 0 ]; then
  "$VRRPY_PYTHON" "$W/daemons.py" "$ADM"
  status=$?
fi
echo "--- dmesg (drbd)"; dmesg | grep -E 'drbd|block drbd' | tail -n 60
$ADM -c "$W/a.conf" down ra; $ADM -c "$W/b.conf" down rb
losetup -d "$LA" "$LB"
exit $status
"""

DRIVER = r"""
import asyncio, json, os, subprocess, sys, time
from pathlib import Path

from vrrpy.backends.base import Refused, TransitionEvent
from vrrpy.backends.drbd import DrbdBackend, Mount
from vrrpy.core.state import State

W = Path(os.environ["UML_WORK"])
ADM = sys.argv[1]
T0 = time.monotonic()
TIMELINE = []
RESULT = {}


def mark(what):
    at = time.monotonic() - T0
    TIMELINE.append((round(at, 3), what))
    print(f"T+{at:7.3f}s  {what}", flush=True)


def event(old, new, reason):
    return TransitionEvent("VI_1", old, new, reason, 100)


def sh(*argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).strip()


def adm(node, *args):
    res = "ra" if node == "a" else "rb"
    return sh(ADM, "-c", str(W / f"{node}.conf"), *args, res)


async def until(predicate, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if await predicate():
            return True
        await asyncio.sleep(step)
    return False


async def main():
    a = DrbdBackend("ra", config=str(W / "a.conf"), mount=Mount(str(W / "mnt-a"), fstype="ext4"))
    b = DrbdBackend("rb", config=str(W / "b.conf"), mount=Mount(str(W / "mnt-b"), fstype="ext4"))
    RESULT["drbdadm"] = a.drbdadm
    mark(f"A {await a.state()}; B {await b.state()}")

    # 1. A becomes Master.
    started = time.monotonic()
    await a.prepare(event(State.BACKUP, State.MASTER, "master_down"))
    await a.transition(event(State.BACKUP, State.MASTER, "master_down"))
    RESULT["a_promote_s"] = round(time.monotonic() - started, 3)
    (W / "mnt-a" / "data").write_text("written by A\n")
    os.sync()
    took = RESULT["a_promote_s"]
    mark(f"A Master: promoted + mounted in {took} s, wrote data; A {await a.state()}")

    # 2. B may not become Master while A is Primary.
    try:
        await b.prepare(event(State.BACKUP, State.MASTER, "master_down"))
        RESULT["b_refused_while_a_primary"] = None
    except Refused as exc:
        RESULT["b_refused_while_a_primary"] = str(exc)
        mark(f"B refused while A Primary: {exc}")

    # 3. A dies: its replication address vanishes.
    rc, out = sh("ip", "addr", "del", "192.0.2.1/32", "dev", "repl")
    assert rc == 0, out
    cut = time.monotonic()
    mark("A dies (its replication address removed)")
    refusals = []
    promoted = None
    while time.monotonic() - cut < 20:
        try:
            await b.prepare(event(State.BACKUP, State.MASTER, "master_down"))
            promoted = time.monotonic() - cut
            break
        except Refused as exc:
            if not refusals:
                mark(f"B refused (DRBD still sees A): {exc}")
            refusals.append(str(exc))
            await asyncio.sleep(0.1)
    RESULT["b_refusals_after_cut"] = len(refusals)
    RESULT["b_promoted_after_cut_s"] = None if promoted is None else round(promoted, 3)
    data = (W / "mnt-b" / "data").read_text() if promoted is not None else None
    RESULT["b_reads"] = data
    took = promoted and round(promoted, 3)
    mark(f"B promoted + mounted {took} s after A died; reads {data!r}; B {await b.state()}")
    await b.transition(event(State.BACKUP, State.MASTER, "master_down"))

    # 4. A leaves Master (it is fenced / comes back as Backup): unmount, demote.
    started = time.monotonic()
    await a.transition(event(State.MASTER, State.FAULT, "interface down"))
    RESULT["a_demote_s"] = round(time.monotonic() - started, 3)
    RESULT["a_after_demote"] = str(await a.state())
    RESULT["a_mounted_after_demote"] = a.mounted()
    mark(f"A left Master: unmounted + demoted in {RESULT['a_demote_s']} s; A {await a.state()}")

    # 5. Split brain: A promoted behind vrrpy's back while cut off, and written to.
    (W / "mnt-b" / "data").write_text("written by B after the failover\n")
    os.sync()
    sh(ADM, "-c", str(W / "a.conf"), "primary", "ra")
    sh("mount", "/dev/drbd0", str(W / "mnt-a"))
    (W / "mnt-a" / "data").write_text("divergent write on A\n")
    sh("umount", str(W / "mnt-a"))
    sh(ADM, "-c", str(W / "a.conf"), "secondary", "ra")
    mark("operator error: A promoted by hand while cut off, wrote, demoted")
    rc, out = sh("ip", "addr", "add", "192.0.2.1/32", "dev", "repl")
    assert rc == 0, out
    # A cut off from its address gave up connecting (StandAlone); its reboot's
    # "drbdadm adjust" would connect it again.
    if (await a.state()).connection == "StandAlone":
        adm("a", "connect")
    mark("link back, A connects again (as after its reboot)")

    async def split_brain():
        return "Split-Brain detected" in sh("dmesg")[1]

    async def standalone():
        return (await a.state()).connection == "StandAlone"

    RESULT["split_brain_detected"] = await until(split_brain, 20)
    RESULT["split_brain_standalone"] = await until(standalone, 10)
    lines = [l for l in sh("dmesg")[1].splitlines() if "Split-Brain" in l]
    kernel = lines[-1].split("] ", 1)[-1] if lines else "no kernel line"
    mark(f"split brain found by DRBD ({kernel}): A {await a.state()}; B {await b.state()}")
    try:
        await a.prepare(event(State.BACKUP, State.MASTER, "master_down"))
        RESULT["a_refused_split_brain"] = None
    except Refused as exc:
        RESULT["a_refused_split_brain"] = str(exc)
        mark(f"A refused: {exc}")
    RESULT["a_role_after_split_brain_refusal"] = (await a.state()).role

    # The operator resolves it (docs/drbd.md): A is the victim, B the survivor.
    adm("a", "secondary")
    adm("a", "disconnect")
    rc, out = sh(ADM, "-c", str(W / "a.conf"), "connect", "--discard-my-data", "ra")
    mark(f"operator: drbdadm connect --discard-my-data ra -> {rc} {out}")
    if (await b.state()).connection == "StandAlone":
        adm("b", "connect")
        mark("operator: drbdadm connect rb (the survivor was StandAlone too)")

    async def resynced():
        s = await a.state()
        return s.connection == "Connected" and s.disk == "UpToDate"

    RESULT["resolved"] = await until(resynced, 30)
    mark(f"resolved: A {await a.state()}")

    # 6. An Outdated disk refuses.
    adm("a", "disconnect")
    rc, out = adm("a", "outdate")
    mark(f"A disconnected and outdated ({rc} {out}): A {await a.state()}")
    try:
        await a.prepare(event(State.BACKUP, State.MASTER, "master_down"))
        RESULT["a_refused_outdated"] = None
    except Refused as exc:
        RESULT["a_refused_outdated"] = str(exc)
        mark(f"A refused: {exc}")
    RESULT["a_role_after_outdated_refusal"] = (await a.state()).role

    # 7. B leaves Master.
    await b.transition(event(State.MASTER, State.BACKUP, "higher priority advert"))
    RESULT["b_after_demote"] = str(await b.state())
    RESULT["b_mounted_after_demote"] = b.mounted()
    mark(f"B left Master: B {await b.state()}")
    # 8. Failback: A, resynced from B, becomes Master again and finds B's data.
    adm("a", "connect")
    RESULT["a_resynced_again"] = await until(resynced, 20)
    await a.prepare(event(State.BACKUP, State.MASTER, "preempt"))
    RESULT["a_reads_after_failback"] = (W / "mnt-a" / "data").read_text()
    mark(f"A Master again: reads {RESULT['a_reads_after_failback']!r}")
    await a.transition(event(State.MASTER, State.INITIALIZE, "stop"))
    mark(f"A stopped: A {await a.state()}")
    RESULT["timeline"] = TIMELINE
    print("SUMMARY " + json.dumps(RESULT), flush=True)


asyncio.run(main())
"""

DAEMONS = r"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

W = Path(os.environ["UML_WORK"])
ADM = sys.argv[1]
PY = os.environ["VRRPY_PYTHON"]
T0 = time.monotonic()
TIMELINE = []
RESULT = {}
PROCS = {}


def mark(what):
    at = time.monotonic() - T0
    TIMELINE.append((round(at, 3), what))
    print(f"T+{at:7.3f}s  [vrrpyd] {what}", flush=True)


def sh(*argv):
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).strip()


def role(node):
    res = "ra" if node == "a" else "rb"
    out = sh(ADM, "-c", str(W / f"{node}.conf"), "role", res)[1].splitlines()
    return out[-1] if out else "?"


def vrrp(node):
    try:
        doc = json.loads((W / f"state-{node}.json").read_text())
    except (OSError, ValueError):
        return {}
    inst = doc.get("instances", doc).get("VI_1", {})
    return inst if isinstance(inst, dict) else {}


def until(predicate, timeout, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return False


def start(node, priority):
    conf = W / f"vrrpyd-{node}.toml"
    res = "ra" if node == "a" else "rb"
    conf.write_text(
        "[global]\n"
        f'state_file = "{W}/state-{node}.json"\n'
        f'control_socket = "{W}/control-{node}.sock"\n'  # both state files share W
        'log_level = "info"\n'
        f'netns = "{node.upper()}"\n'
        "realtime_priority = 0\n"
        "lock_memory = false\n"
        "[[instance]]\n"
        'name = "VI_1"\n'
        f'interface = "v{node}"\n'
        "vrid = 51\n"
        f"priority = {priority}\n"
        "advert_interval = 1.0\n"
        "accept = true\n"
        'virtual_addresses = ["198.51.100.100/24"]\n'
        'backends = ["data"]\n'
        "[[backend]]\n"
        'name = "data"\n'
        'type = "drbd"\n'
        f'resource = "{res}"\n'
        f'config = "{W}/{node}.conf"\n'
        # DRBD 8.4 answers only in the initial network namespace: its commands go there.
        f'drbdadm = "nsenter --net=/proc/1/ns/net {ADM}"\n'
        f'mountpoint = "{W}/mnt-{node}"\n'
        'fstype = "ext4"\n'
        "timeout = 10\n"
        "check_interval = 0.5\n"
        "peer_wait = 8\n"
    )
    log = open(W / f"vrrpyd-{node}.log", "a")
    argv = [PY, "-m", "vrrpy.daemon", "-c", str(conf)]
    PROCS[node] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)


for cmd in (
    "ip netns add A", "ip netns add B",
    "ip link add va netns A type veth peer name vb netns B",
    "ip -n A addr add 198.51.100.1/24 dev va", "ip -n B addr add 198.51.100.2/24 dev vb",
    "ip -n A link set va up", "ip -n B link set vb up",
    "ip -n A link set lo up", "ip -n B link set lo up",
):
    rc, out = sh(*cmd.split())
    assert rc == 0, (cmd, out)
try:
    t = time.monotonic()
    start("a", 200)
    RESULT["a_master"] = until(
        lambda: vrrp("a").get("state") == "MASTER" and os.path.ismount(W / "mnt-a"), 20)
    mark(f"vrrpyd A Master after {time.monotonic() - t:.3f} s, ra {role('a')}, mounted")
    (W / "mnt-a" / "data").write_text("written by A under vrrpyd\n")
    os.sync()
    start("b", 100)
    RESULT["b_backup"] = until(lambda: vrrp("b").get("state") == "BACKUP", 10)
    mark(f"vrrpyd B Backup, rb {role('b')}")

    PROCS["a"].send_signal(signal.SIGKILL)
    PROCS["a"].wait()
    sh("ip", "addr", "del", "192.0.2.1/32", "dev", "repl")
    killed = time.monotonic()
    # (Its VRRP link stays up: a veth peer going down would put B in FAULT, which a
    # switch port would not.)
    mark("A killed: SIGKILL to vrrpyd, its replication address removed")
    got = until(lambda: vrrp("b").get("state") == "MASTER", 20, 0.02)
    RESULT["b_master_s"] = round(time.monotonic() - killed, 3) if got else None
    mark(f"B Master after {RESULT['b_master_s']} s, rb {role('b')}")
    got = until(lambda: (W / "mnt-b" / "data").exists(), 10, 0.02)
    RESULT["b_mounted_s"] = round(time.monotonic() - killed, 3) if got else None
    RESULT["b_reads"] = (W / "mnt-b" / "data").read_text() if got else None
    mark(f"B mounted, file seen {RESULT['b_mounted_s']} s after the kill: {RESULT['b_reads']!r}")

    (W / "mnt-b" / "data").write_text("written by B as Master\n")
    os.sync()

    # A "reboots": its crash left ra Primary and mounted; it comes back fenced
    # (Outdated, as a fence-peer handler leaves it), its replication link still down.
    sh("umount", str(W / "mnt-a"))
    sh(ADM, "-c", str(W / "a.conf"), "secondary", "ra")
    sh(ADM, "-c", str(W / "a.conf"), "disconnect", "ra")
    sh(ADM, "-c", str(W / "a.conf"), "outdate", "ra")
    mark(f"A back with ra {role('a')}, disk Outdated; vrrpyd A started at priority 200")
    b_states = set()
    b_transitions = vrrp("b").get("counters", {}).get("transitions")
    start("a", 200)

    def a_fault():
        b_states.add(vrrp("b").get("state"))
        return vrrp("a").get("state") == "FAULT"

    RESULT["a_fault"] = until(a_fault, 15, 0.02)
    mark(f"A {vrrp('a').get('state')}: {vrrp('a').get('faults')}")
    # Longer than A's Master_Down_Interval (3.2 s at priority 200): had A stood, it
    # would have preempted B by now.
    end = time.monotonic() + 5
    while time.monotonic() < end:
        b_states.add(vrrp("b").get("state"))
        time.sleep(0.05)
    RESULT["a_state_later"] = vrrp("a").get("state")
    RESULT["a_faults"] = vrrp("a").get("faults")
    RESULT["a_backends"] = vrrp("a").get("backends")
    RESULT["a_role"] = role("a")
    RESULT["b_states_meanwhile"] = sorted(s or "?" for s in b_states)
    b_now = vrrp("b").get("counters", {}).get("transitions")
    RESULT["b_transitions_unchanged"] = b_now == b_transitions
    RESULT["b_role"] = role("b")
    mark(f"5 s later: A {RESULT['a_state_later']}, ra {RESULT['a_role']}; "
         f"B was {RESULT['b_states_meanwhile']} throughout, rb {RESULT['b_role']}")

    # The link comes back: A resyncs from B, its disk is UpToDate, it stands again
    # and preempts; B steps down and demotes, A waits for that and takes over.
    # A's unmount after its "crash" wrote (the ext4 journal) to a disk B never saw:
    # DRBD calls that a split brain. The operator's resolution (docs/drbd.md), A the
    # victim, is what brings a crashed Primary back.
    sh("ip", "addr", "add", "192.0.2.1/32", "dev", "repl")
    rc, out = sh(ADM, "-c", str(W / "a.conf"), "connect", "--discard-my-data", "ra")
    mark(f"A's replication link back: drbdadm connect --discard-my-data ra -> {rc} {out}")
    if sh(ADM, "-c", str(W / "b.conf"), "cstate", "rb")[1].endswith("StandAlone"):
        sh(ADM, "-c", str(W / "b.conf"), "connect", "rb")
    got = until(lambda: sh(ADM, "-c", str(W / "a.conf"), "dstate", "ra")[1].endswith(
        "UpToDate/UpToDate"), 30, 0.05)
    RESULT["a_resynced"] = got
    mark(f"ra {sh(ADM, '-c', str(W / 'a.conf'), 'dstate', 'ra')[1].splitlines()[-1]}, "
         f"{sh(ADM, '-c', str(W / 'a.conf'), 'cstate', 'ra')[1].splitlines()[-1]}")
    if not got:
        raise SystemExit("A never resynchronised")
    got = until(lambda: vrrp("a").get("state") in ("BACKUP", "MASTER"), 10, 0.02)
    mark(f"A stands again: {vrrp('a').get('state')}")
    got = until(lambda: vrrp("a").get("state") == "MASTER", 15, 0.02)
    a_master = time.monotonic()
    if not got:
        raise SystemExit("A never preempted")
    mark(f"A Master (preempted B): B {vrrp('b').get('state')}, rb {role('b')}")
    got = until(lambda: not os.path.ismount(W / "mnt-b"), 10, 0.01)
    b_down = time.monotonic()
    if not got:
        raise SystemExit("B never unmounted")
    mark(f"B unmounted (+{b_down - a_master:.3f} s)")
    got = until(lambda: (W / "mnt-a" / "data").exists(), 15, 0.01)
    a_up = time.monotonic()
    RESULT["a_reads_after_preempt"] = (W / "mnt-a" / "data").read_text() if got else None
    RESULT["handover_gap_s"] = round(a_up - b_down, 3) if got else None
    RESULT["a_master_to_mounted_s"] = round(a_up - a_master, 3) if got else None
    mark(f"A promoted and mounted (+{a_up - a_master:.3f} s after A Master; filesystem "
         f"down {RESULT['handover_gap_s']} s): reads {RESULT['a_reads_after_preempt']!r}")
    RESULT["a_final"] = vrrp("a").get("state")
    RESULT["a_role_final"] = role("a")
    RESULT["a_refusals"] = (vrrp("a").get("backends") or {}).get("data", {}).get("refusals")
    RESULT["b_final"] = vrrp("b").get("state")
finally:
    for node, proc in PROCS.items():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    RESULT["a_role_after_stop"] = role("a")
    RESULT["a_mounted_after_stop"] = os.path.ismount(W / "mnt-a")
    mark(f"daemons stopped (SIGTERM): ra {role('a')}, rb {role('b')}")
    for node in ("a", "b"):
        print(f"--- vrrpyd {node} log (tail)")
        print("\n".join((W / f"vrrpyd-{node}.log").read_text().splitlines()[-20:]))
    sh("ip", "netns", "del", "A")
    sh("ip", "netns", "del", "B")
    RESULT["timeline"] = TIMELINE
    print("SUMMARY2 " + json.dumps(RESULT), flush=True)
"""


def _summary(output: str, tag: str = "SUMMARY") -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith(tag + " "):
            result: dict[str, Any] = json.loads(line[len(tag) + 1 :])
            return result
    raise AssertionError(f"the guest printed no {tag}")


def test_drbd_backend_on_real_drbd_in_uml() -> None:
    require_root()
    require_tool("linux")  # user-mode-linux
    require_tool("drbdadm")  # drbd-utils
    for tool in ("losetup", "mkfs.ext4", "modprobe"):
        require_tool(tool)
    from vrrpy.lab.uml import Guest

    with Guest(GUEST_MEMORY) as guest:
        guest.write("driver.py", DRIVER)
        guest.write("daemons.py", DAEMONS)
        result = guest.run(SETUP, timeout=TIMEOUT)
        print(result.output)
        assert result.status == 0, result.describe()
    summary = _summary(result.output)

    assert "drbdadm-84" in str(summary["drbdadm"]) or shutil.which("drbdadm-84")
    # Two Primaries are never made: B refuses while A is Primary and connected.
    assert "peer is Primary" in str(summary["b_refused_while_a_primary"])
    # A died: B is promoted once DRBD noticed, mounts, and reads A's file.
    assert summary["b_promoted_after_cut_s"] is not None, summary
    assert summary["b_reads"] == "written by A\n"
    # A left Master: unmounted and Secondary.
    assert str(summary["a_after_demote"]).startswith("role Secondary/")
    assert summary["a_mounted_after_demote"] is False
    # A split brain: StandAlone, refused; the documented resolution works.
    assert summary["split_brain_detected"] is True, summary
    assert summary["split_brain_standalone"] is True, summary
    assert "StandAlone" in str(summary["a_refused_split_brain"])
    assert summary["a_role_after_split_brain_refusal"] == "Secondary"
    assert summary["resolved"] is True, summary
    # An Outdated disk is refused, and stays Secondary.
    assert "Outdated" in str(summary["a_refused_outdated"])
    assert summary["a_role_after_outdated_refusal"] == "Secondary"
    # B left Master cleanly.
    assert str(summary["b_after_demote"]).startswith("role Secondary/")
    assert summary["b_mounted_after_demote"] is False
    # Failback: A holds what B wrote while A was the split brain's victim.
    assert summary["a_reads_after_failback"] == "written by B after the failover\n"

    # vrrpyd on both sides, the DRBD backend named in its TOML: A's death moves VRRP,
    # DRBD and the filesystem to B.
    daemons = _summary(result.output, "SUMMARY2")
    assert daemons["a_master"] is True, daemons
    assert daemons["b_master_s"] is not None and daemons["b_master_s"] < 10, daemons
    assert daemons["b_reads"] == "written by A under vrrpyd\n", daemons
    # A restarted with an Outdated disk never stands: FAULT from its check, and B
    # stays Master throughout (no preemption that would be refused).
    assert daemons["a_fault"] is True, daemons
    assert daemons["a_state_later"] == "FAULT"
    assert daemons["a_faults"] == [
        "backend data: local disk is Outdated, not UpToDate: the peer may hold newer "
        "data (it was Primary without us)"
    ]
    assert daemons["a_backends"]["data"]["refusals"] == 0
    assert daemons["a_backends"]["data"]["check_failures"] >= 1
    assert daemons["a_role"].startswith("Secondary/")
    assert daemons["b_states_meanwhile"] == ["MASTER"], daemons
    assert daemons["b_transitions_unchanged"] is True, daemons
    assert daemons["b_role"].startswith("Primary/")
    # Resynced, A stands again and preempts: B demotes, A waits for that and promotes.
    assert daemons["a_resynced"] is True, daemons
    assert daemons["a_reads_after_preempt"] == "written by B as Master\n", daemons
    assert daemons["a_final"] == "MASTER" and daemons["b_final"] == "BACKUP", daemons
    assert daemons["a_role_final"].startswith("Primary/Secondary")
    assert daemons["a_refusals"] == 0, daemons
    # vrrpyd's stop ran A's leaving-Master steps: unmounted, Secondary.
    assert daemons["a_role_after_stop"].startswith("Secondary/")
    assert daemons["a_mounted_after_stop"] is False


if __name__ == "__main__":  # pragma: no cover - by hand: print the timeline
    pytest.main([__file__, "-s", "-q"])


# The refusal rules and the tool choice, without a kernel.


@pytest.mark.parametrize(
    ("role", "disk", "connection", "words"),
    [
        ("Secondary/Unknown", "UpToDate/DUnknown", "WFConnection", None),
        ("Secondary/Secondary", "UpToDate/UpToDate", "Connected", None),
        ("Primary/Unknown", "UpToDate/DUnknown", "WFConnection", None),
        ("Secondary/Primary", "UpToDate/UpToDate", "Connected", "peer is Primary"),
        ("Secondary/Unknown", "Outdated/DUnknown", "WFConnection", "Outdated"),
        ("Secondary/Unknown", "Inconsistent/UpToDate", "SyncTarget", "Inconsistent"),
        ("Secondary/Unknown", "Consistent/DUnknown", "WFConnection", "Consistent"),
        ("Secondary/Unknown", "Diskless/DUnknown", "WFConnection", "Diskless"),
        ("Secondary/Unknown", "UpToDate/DUnknown", "StandAlone", "split brain"),
        ("Secondary/Secondary", "UpToDate/UpToDate", "PausedSyncT", "resync target"),
    ],
)
def test_drbd_refuses_what_is_not_current(
    role: str, disk: str, connection: str, words: str | None
) -> None:
    from vrrpy.backends.drbd import DrbdState

    mine, _, peer = role.partition("/")
    local, _, remote = disk.partition("/")
    why = DrbdState(mine, peer, local, remote, connection).refusal()
    if words is None:
        assert why is None
    else:
        assert why is not None and words in why


def test_drbd_standalone_allowed_when_asked() -> None:
    from vrrpy.backends.drbd import DrbdState

    state = DrbdState("Secondary", "Unknown", "UpToDate", "DUnknown", "StandAlone")
    assert state.refusal(allow_standalone=True) is None


def test_drbd_tool_follows_the_module_version() -> None:
    from vrrpy.backends.drbd import default_drbdadm

    assert default_drbdadm("9.2.12") == ["drbdadm"]
    chosen = default_drbdadm("8.4.11")
    if shutil.which("drbdadm-84") or any(
        os.access(f"{d}/drbdadm-84", os.X_OK) for d in ("/lib/drbd", "/usr/lib/drbd")
    ):
        assert chosen[0].endswith("drbdadm-84")
    else:
        assert chosen == ["drbdadm"]
