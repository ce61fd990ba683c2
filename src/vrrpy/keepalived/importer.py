"""``vrrpctl import-keepalived FILE``: a keepalived.conf as a vrrpyd TOML file, and what changed.

::

    vrrpctl import-keepalived /etc/keepalived/keepalived.conf -o /etc/vrrpyd.toml
    vrrpctl import-keepalived keepalived.conf --config-id lb2 > lb2.toml

The TOML goes to stdout (or ``-o``); the report goes to stderr, one line per
setting that was not carried over or whose meaning changes, with its file and
line (``keepalived.conf:31: instance VI_1: not carried over: ...``). Exit
status: 0 when everything was carried over (notes of severity ``info``
only), 1 when the output is usable but something was left out or changed
(all of it listed), 2 when the file cannot be read or parsed (one line, no
traceback).

The parser (:mod:`vrrpy.keepalived.parser`) reads the file as keepalived
2.2.7 does; :mod:`vrrpy.keepalived.vrrp` and :mod:`vrrpy.keepalived.lvs` map
it; :mod:`vrrpy.keepalived.mapping` is the keyword table. The TOML is written
by ``tomli_w``, with a comment block in front naming the source and listing
the notes (a TOML writer writes no comments).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import tomli_w

import vrrpy
from vrrpy.keepalived.context import Context
from vrrpy.keepalived.lvs import convert_lvs
from vrrpy.keepalived.model import Config, KeepalivedParseError
from vrrpy.keepalived.notes import Note
from vrrpy.keepalived.parser import parse_file
from vrrpy.keepalived.vrrp import convert_vrrp

__all__ = ["ImportResult", "convert", "import_file", "main", "to_toml"]

PROG = "vrrpctl import-keepalived"


@dataclass
class ImportResult:
    """A converted configuration: vrrpyd's document (a dict ``tomli_w`` can write),
    every note, and where it came from."""

    document: dict[str, Any]
    notes: list[Note] = field(default_factory=list)
    source: str = "<string>"
    config_id: str = ""
    files: tuple[str, ...] = ()

    @property
    def lossless(self) -> bool:
        """True when every note is ``info``: vrrpyd does what keepalived does."""
        return all(note.severity == "info" for note in self.notes)

    @property
    def usable(self) -> bool:
        """True when the document has an instance (vrrpyd refuses a file without one)."""
        return bool(self.document.get("instance"))

    @property
    def exit_status(self) -> int:
        """0 everything carried over, 1 something left out or changed (or nothing to run)."""
        return 0 if self.lossless and self.usable else 1


def convert(config: Config) -> ImportResult:
    """vrrpyd's document for a parsed keepalived configuration, with the notes."""
    ctx = Context(config)
    ctx.parser_problems()
    vrrp = convert_vrrp(ctx)
    convert_lvs(ctx, vrrp)
    if not ctx.document.get("instance"):
        ctx.notes.dropped(
            None,
            "no vrrp_instance could be carried over: vrrpyd refuses a file without an instance",
            scope="",
        )
    order = ("global", "instance", "track_script", "track_file", "track_process",
             "sync_group", "backend", "virtual_server")  # fmt: skip
    document = {key: ctx.document[key] for key in order if key in ctx.document}
    notes = sorted(ctx.notes.items, key=_note_order(config.files))
    source = config.files[0] if config.files else "<string>"
    return ImportResult(document, notes, source, config.config_id, config.files)


def _note_order(files: tuple[str, ...]) -> Any:
    rank = {name: index for index, name in enumerate(files)}

    def key(note: Note) -> tuple[int, int]:
        return (rank.get(note.file, -1), note.line)

    return key


def import_file(path: str, *, config_id: str | None = None) -> ImportResult:
    """Parse and convert the keepalived configuration at ``path``.

    Raises :class:`~vrrpy.keepalived.KeepalivedParseError` (and nothing else)
    when the file cannot be read or parsed.
    """
    return convert(parse_file(path, config_id=config_id))


def to_toml(result: ImportResult) -> str:
    """The TOML text of ``result``: a comment block (source, notes), then the document."""
    header = [
        f"# vrrpyd configuration imported from {result.source}",
        f"# by {PROG} (vrrpy {vrrpy.__version__}), config id {result.config_id!r}.",
    ]
    if len(result.files) > 1:
        header.append("# Files read: " + ", ".join(result.files) + ".")
    counts = {
        severity: sum(1 for n in result.notes if n.severity == severity)
        for severity in ("dropped", "changed", "info")
    }
    if result.notes:
        header.append(
            f"# {counts['dropped']} setting(s) not carried over, {counts['changed']} changed, "
            f"{counts['info']} note(s):"
        )
        header.extend(f"#   {_one_line(str(note))}" for note in result.notes)
    else:
        header.append("# Everything was carried over.")
    header.append("# docs/migrating-from-keepalived.md explains each difference.")
    body = tomli_w.dumps(result.document) if result.document else ""
    return "\n".join(header) + "\n\n" + body


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a keepalived.conf into a vrrpyd TOML file; report what changes.",
    )
    parser.add_argument("file", metavar="FILE", help="keepalived.conf (includes are followed)")
    parser.add_argument(
        "-o", "--output", metavar="OUT", help="write the TOML here (default: stdout)"
    )
    parser.add_argument(
        "--config-id",
        metavar="ID",
        help="what @ID lines are compared with (keepalived -i); default the short host name",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``import-keepalived`` subcommand; returns the exit status (0, 1 or 2)."""
    args = _parser().parse_args(list(argv) if argv is not None else None)
    try:
        result = import_file(args.file, config_id=args.config_id)
    except KeepalivedParseError as error:
        print(f"{PROG}: {_one_line(str(error))}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError) as error:  # pragma: no cover - the limits come first
        reason = type(error).__name__
        print(f"{PROG}: {args.file}: too large or too deep ({reason})", file=sys.stderr)
        return 2
    text = to_toml(result)
    if args.output:
        try:
            _write(args.output, text)
        except OSError as error:
            print(f"{PROG}: {args.output}: {error.strerror or error}", file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    for note in result.notes:
        print(_one_line(str(note)), file=sys.stderr)
    if result.notes:
        counts = [
            sum(1 for n in result.notes if n.severity == s) for s in ("dropped", "changed", "info")
        ]
        print(
            f"{PROG}: {counts[0]} not carried over, {counts[1]} changed, {counts[2]} note(s)",
            file=sys.stderr,
        )
    return result.exit_status


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


if __name__ == "__main__":
    sys.exit(main())
