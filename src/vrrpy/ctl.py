"""``vrrpctl``: ask a running vrrpyd over its control socket (:mod:`vrrpy.observe.control`).

::

    vrrpctl status [--json]        every instance, one line each (FRR's "show vrrp summary")
    vrrpctl show NAME [--json]     one instance in detail (FRR's "show vrrp")
    vrrpctl events                 follow transitions: one JSON line per event
    vrrpctl reload                 re-read the configuration (SIGHUP)
    vrrpctl import-keepalived FILE [-o OUT] [--config-id ID]
                                   keepalived.conf to vrrpyd's TOML (see
                                   docs/migrating-from-keepalived.md)

Exit status, for monitoring scripts:

* 0: the daemon answered and every instance shown is MASTER or BACKUP;
* 1: the daemon could not be reached, or refused the request;
* 2: an instance shown is in FAULT;
* 3: an instance shown is not running (INIT);
* 4: no such instance (``show``).

``import-keepalived`` needs no daemon and has its own: 0 everything carried
over, 1 usable but something left out or changed (all listed on stderr), 2
the file cannot be read or parsed.

``--socket`` (or ``VRRPCTL_SOCKET``) names the socket; the default is
vrrpyd's (``/run/vrrpyd/vrrpyd.sock``). Reading it needs root, or membership
of vrrpyd's ``control_group``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from vrrpy.observe.control import DEFAULT_SOCKET, unix_address
from vrrpy.observe.show import render_detail, render_summary

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_UNREACHABLE: Final = 1
EXIT_FAULT: Final = 2
EXIT_NOT_RUNNING: Final = 3
EXIT_NO_SUCH_INSTANCE: Final = 4


class CtlError(Exception):
    """The daemon could not be reached or refused the request."""


def _connect(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with unix_address(path) as address:
            sock.connect(address)
    except OSError as exc:
        sock.close()
        raise CtlError(f"{path}: {exc.strerror or exc} (is vrrpyd running?)") from exc
    return sock


def _lines(sock: socket.socket) -> Iterator[dict[str, Any]]:
    buffer = b""
    while True:
        try:
            data = sock.recv(1 << 16)
        except TimeoutError as exc:
            raise CtlError("the daemon did not answer in time") from exc
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            doc = json.loads(line)
            if isinstance(doc, dict):
                yield doc


def request(path: str, command: str, timeout: float = 10.0) -> dict[str, Any]:
    """Send ``command`` and return the daemon's answer (raises :class:`CtlError`)."""
    with _connect(path, timeout) as sock:
        sock.sendall(json.dumps({"command": command}).encode() + b"\n")
        for doc in _lines(sock):
            if not doc.get("ok"):
                raise CtlError(str(doc.get("error", "refused")))
            return doc
    raise CtlError("the daemon closed the connection without an answer")


def _exit_for(instances: Mapping[str, Mapping[str, Any]]) -> int:
    states = {str((doc.get("vrrpy") or {}).get("state")) for doc in instances.values()}
    if "FAULT" in states:
        return EXIT_FAULT
    if "INIT" in states:
        return EXIT_NOT_RUNNING
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vrrpctl`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["import-keepalived"]:
        from vrrpy.keepalived.importer import main as import_keepalived

        return import_keepalived(words[1:])
    parser = argparse.ArgumentParser(prog="vrrpctl", description="Ask a running vrrpyd.")
    parser.add_argument(
        "-s",
        "--socket",
        default=os.environ.get("VRRPCTL_SOCKET", DEFAULT_SOCKET),
        help=f"vrrpyd's control socket (default {DEFAULT_SOCKET})",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="every instance, one line each")
    status.add_argument("--json", action="store_true", help="FRR-shaped JSON")
    show = commands.add_parser("show", help="one instance in detail")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="FRR-shaped JSON")
    commands.add_parser("events", help="follow transitions (one JSON line each)")
    commands.add_parser("reload", help="re-read the configuration (SIGHUP)")
    commands.add_parser(
        "import-keepalived", help="keepalived.conf to vrrpyd's TOML (import-keepalived -h)"
    )
    args = parser.parse_args(words)
    try:
        if args.command == "events":
            return _follow(args.socket)
        if args.command == "reload":
            request(args.socket, "reload")
            print("reload requested")
            return EXIT_OK
        answer = request(args.socket, "status")
    except CtlError as exc:
        print(f"vrrpctl: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    instances: Mapping[str, Mapping[str, Any]] = answer.get("instances") or {}
    if args.command == "show":
        doc = instances.get(args.name)
        if doc is None:
            print(f"vrrpctl: no instance {args.name!r}", file=sys.stderr)
            return EXIT_NO_SUCH_INSTANCE
        print(json.dumps(doc, indent=2) if args.json else render_detail(args.name, doc), end="\n")
        return _exit_for({args.name: doc})
    if args.json:
        print(json.dumps(list(instances.values()), indent=2))
    else:
        print(render_summary(instances), end="")
    return _exit_for(instances)


def _follow(path: str) -> int:
    with _connect(path, 10.0) as sock:
        sock.sendall(b'{"command": "events"}\n')
        lines = _lines(sock)
        first = next(lines, None)
        if first is None or not first.get("ok"):
            raise CtlError(str((first or {}).get("error", "no answer")))
        sock.settimeout(None)
        try:
            for event in lines:
                print(json.dumps(event, separators=(",", ":")), flush=True)
        except (KeyboardInterrupt, BrokenPipeError):
            return EXIT_OK
    print("vrrpctl: the daemon closed the stream", file=sys.stderr)
    return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
