"""The command line: ``vrrpy drill CONFIG`` and ``python -m vrrpy.drill CONFIG``.

Exit status: 0 when every scenario ran and the client's outages matched the
predictions; 1 when one did not (the table says which); 2 when the drill
could not run (a file vrrpyd refuses, no root, a missing tool).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import tomli_w

from vrrpy.drill.lab import DrillLab
from vrrpy.drill.plan import ROUTERS, Addressing, DrillPlan, plan_drill
from vrrpy.drill.predict import model_instances
from vrrpy.drill.report import render_json, render_table
from vrrpy.drill.scenarios import SCENARIOS, Drill
from vrrpy.drill.source import DrillError, read_config

__all__ = ["main", "vrrpy_main"]

EXIT_OK = 0
EXIT_DIFFERS = 1
EXIT_CANNOT = 2


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A failover drill of your own configuration: two routers running your "
        "instances and a client in network namespaces, the classic failures one after the "
        "other, each outage as the client saw it beside RFC 9568's prediction.",
    )
    parser.add_argument("config", help="a vrrpyd TOML file, or a keepalived.conf")
    parser.add_argument(
        "--peer",
        metavar="FILE",
        help="the other node's own file (default: CONFIG again, priorities lowered)",
    )
    parser.add_argument(
        "--peer-priority",
        metavar="N|-D",
        help="the second router's priorities: a number (100) or a change (-50, the default)",
    )
    parser.add_argument(
        "--instance",
        action="append",
        default=[],
        metavar="NAME",
        help="drill only this instance (repeat for more; sync group partners come along)",
    )
    parser.add_argument(
        "--scenario",
        default=",".join(SCENARIOS),
        metavar="LIST",
        help=f"comma-separated, in this order: {','.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--max-preempt-delay",
        type=float,
        default=10.0,
        metavar="S",
        help="run a longer preempt_delay as this many seconds in the lab (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the lab's plan and both routers' vrrpyd files; build nothing (no root)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "python -m vrrpy.drill") -> int:
    """Run the drill; the exit status as documented above."""
    args = _parser(prog).parse_args(argv)
    chosen = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        print(
            f"--scenario: unknown {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return EXIT_CANNOT
    scenarios = [s for s in SCENARIOS if s in chosen]
    try:
        user = read_config(args.config)
        peer = read_config(args.peer) if args.peer else None
        plan = plan_drill(
            user,
            peer,
            only=args.instance,
            peer_priority=args.peer_priority,
            max_preempt_delay=args.max_preempt_delay,
        )
    except DrillError as exc:
        print(f"vrrpy drill: {exc}", file=sys.stderr)
        return EXIT_CANNOT
    for line in user.import_report:
        print(f"importer: {line}", file=sys.stderr)
    if args.dry_run:
        return _dry_run(plan)
    problem = _cannot_run()
    if problem:
        print(f"vrrpy drill: {problem}", file=sys.stderr)
        return EXIT_CANNOT
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(plan, scenarios, user.origin, args.json)
    except (DrillError, RuntimeError) as exc:  # the lab's own errors are RuntimeErrors
        print(f"vrrpy drill: {exc}", file=sys.stderr)
        return EXIT_CANNOT
    except KeyboardInterrupt:
        print("vrrpy drill: interrupted; the lab is gone", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def vrrpy_main(argv: Sequence[str] | None = None) -> int:
    """``vrrpy COMMAND ...``: the ``vrrpy`` program's commands (``drill`` so far)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"drill": "a failover drill of your own configuration"}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        listing = "\n".join(f"  {name:8} {text}" for name, text in commands.items())
        stream = sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr
        print(f"usage: vrrpy COMMAND ...\n\ncommands:\n{listing}", file=stream)
        return EXIT_OK if stream is sys.stdout else EXIT_CANNOT
    return main(argv[1:], prog="vrrpy drill")


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM unwinds like Ctrl-C, so the lab's teardown runs."""
    raise KeyboardInterrupt


def _cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, raw sockets); --dry-run shows the plan without"
    for tool, package in (("ip", "iproute2"), ("nft", "nftables")):
        if shutil.which(tool) is None:
            return f"needs the {tool} command (Debian package {package})"
    return None


def _dry_run(plan: DrillPlan) -> int:
    print(f"# vrrpy drill plan for {plan.source}")
    for note in plan.notes:
        print(f"# {note}")
    work = Path("/tmp/vrrpy-drill-XXXX")
    addressing = Addressing.synthetic(plan.links)
    for router in ROUTERS:
        print(f"\n# --- {router}: {plan.routers[router].source}")
        print(tomli_w.dumps(plan.document(router, addressing, work)), end="")
    return EXIT_OK


def _run(plan: DrillPlan, scenarios: list[str], origin: str, as_json: bool) -> int:
    began = time.monotonic()

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="vrrpy-drill-") as tmp,
        DrillLab(plan, Path(tmp)) as lab,
    ):
        configs = {r: plan.config(r, lab.addressing, lab.workdir) for r in ROUTERS}
        models = model_instances(configs)
        drill = Drill(plan, lab, models, say)
        try:
            say(f"[drill] lab up; starting vrrpyd on {', '.join(ROUTERS)}")
            took = drill.start()
            say(f"[drill] first election and probes steady after {took:.1f} s")
            rows = drill.run(scenarios)
        finally:
            drill.stop()
    wall = time.monotonic() - began
    if as_json:
        print(render_json(plan, models, rows, origin, wall))
    else:
        print(render_table(plan, models, rows, origin, wall))
    good = all(r.verdict.startswith(("as predicted", "skipped")) for r in rows)
    return EXIT_OK if good else EXIT_DIFFERS
