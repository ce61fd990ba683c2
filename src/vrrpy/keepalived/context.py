"""What the converters share: the notes, the keyword table lookups, names vrrpyd accepts.

Every block is read the same way: each statement's keyword is looked up in
its section of :mod:`vrrpy.keepalived.mapping`; a deprecated spelling is
read as the modern one (with a note), a keyword vrrpyd has no use for becomes
a note with the table's reason, an unknown keyword a note saying what it
probably is (a keyword of an older or a newer keepalived, one of another
block, a misspelling, a fork's), and the converter only ever sees the
keywords it maps. A block where keepalived expects none, or none where it
expects one, is reported here too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from vrrpy.keepalived import mapping
from vrrpy.keepalived.model import Config, KeepalivedParseError, Statement
from vrrpy.keepalived.notes import Notes
from vrrpy.keepalived.values import Command, Reading, command, read_decimal, read_int

__all__ = ["Context", "safe_name"]

_INSTANCE_NAME: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_OBJECT_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIX: Final = re.compile(r"[^A-Za-z0-9_.-]")

_PROBLEM_SEVERITY: Final = {
    "random": "changed",
    "environment": "changed",
    "long-line": "dropped",
}
"""The parser's problems that make the import differ from keepalived (the rest
describe how keepalived itself reads the file, which the import follows)."""


def safe_name(name: str, *, colon: bool) -> str:
    """``name`` as vrrpyd accepts it: letters, digits, ``_ . -`` (and ``:`` for
    instances and groups), at most 64 characters."""
    pattern = _INSTANCE_NAME if colon else _OBJECT_NAME
    if pattern.fullmatch(name):
        return name
    fixed = _FIX.sub("_", name) if not colon else re.sub(r"[^A-Za-z0-9_.:-]", "_", name)
    return (fixed or "_")[:64]


@dataclass
class Context:
    """One conversion's state: the parsed file, the notes, the document being built."""

    config: Config
    notes: Notes = field(default_factory=Notes)
    document: dict[str, Any] = field(default_factory=dict)
    instance_names: set[str] = field(default_factory=set)
    """vrrpyd names taken by instances and sync groups (one namespace in vrrpyd's keys)."""
    object_names: set[str] = field(default_factory=set)
    """vrrpyd names taken by tracked objects (unique across the track tables)."""
    _suffixes: dict[str, int] = field(default_factory=dict)

    # -- names ------------------------------------------------------------------------

    def instance_name(self, name: str, statement: Statement, what: str) -> str:
        """The vrrpyd name of an instance or a sync group (changed, with a note, when it
        must be: scripts get the name)."""
        safe = self._unique(safe_name(name, colon=True), self.instance_names)
        if safe != name:
            self.notes.changed(
                statement,
                f"the {what} is named {safe} in vrrpyd (names are [A-Za-z0-9_.:-], at most 64): "
                "scripts get that name",
            )
        return safe

    def object_name(self, name: str, statement: Statement) -> str:
        """The vrrpyd name of a tracked object (only logs show it: a note when it changes)."""
        safe = self._unique(safe_name(name, colon=False), self.object_names)
        if safe != name:
            self.notes.info(
                statement, f"{name} is named {safe} in vrrpyd (its names are [A-Za-z0-9_.-])"
            )
        return safe

    def _unique(self, safe: str, taken: set[str]) -> str:
        """``safe``, or ``safe-N`` when two keepalived names map to one (counted, not searched
        from 2 each time, so that thousands of clashes stay linear)."""
        if safe in taken:
            base = safe[:56]
            n = self._suffixes.get(base, 1)
            while True:
                n += 1
                candidate = f"{base}-{n}"
                if candidate not in taken:
                    break
            self._suffixes[base] = n
            safe = candidate
        taken.add(safe)
        return safe

    # -- notes ------------------------------------------------------------------------

    def parser_problems(self) -> None:
        """The parser's problems, as notes (file and line as the parser found them)."""
        for problem in self.config.problems:
            severity = _PROBLEM_SEVERITY.get(problem.kind, "info")
            self.notes.add(
                (problem.file, problem.line),
                severity,  # type: ignore[arg-type]
                problem.message,
                scope="",
            )

    def keywords(self, section: str, block: Statement) -> Iterator[tuple[str, Statement]]:
        """The statements of ``block`` the converter must map, with their modern keyword.

        Everything else is noted here and not yielded. A ``{`` keepalived does not
        expect (after an unknown keyword, or one that takes no block) is read as
        keepalived reads it: the lines inside count as lines of *this* block, and
        the ``}`` that closes them ends this block, so the statements after it are
        not this block's any more (keepalived reads them one level up, where they
        mean something else or nothing): they are not carried over.
        """
        children = block.block or ()
        for index, statement in enumerate(children):
            modern = self.keyword(section, statement)
            if modern is not None:
                yield modern, statement
                continue
            if statement.block is None or self._expected_block(section, statement):
                continue
            inner = Statement(block.keyword, block.args, statement.block, block.file, block.line)
            yield from self.keywords(section, inner)
            for rest in children[index + 1 :]:
                self.notes.dropped(
                    rest,
                    f"{rest.keyword}: keepalived ended this {section} block at the '}}' of the "
                    f"unexpected block of line {statement.line}, and reads this line outside it: "
                    "not carried over",
                )
            return

    def keyword(self, section: str, statement: Statement) -> str | None:
        """The modern keyword of ``statement`` if the converter maps it; None if noted here."""
        keyword = statement.keyword
        modern, rule = mapping.lookup(section, keyword)
        if rule is None:
            self.unknown(section, statement)
            return None
        if modern != keyword:
            self.notes.info(
                statement, f"{keyword} is the deprecated spelling of {modern}: read as {modern}"
            )
        takes_block = mapping.takes_block(section, modern)
        if statement.block is not None and not takes_block:
            self.notes.dropped(
                statement,
                f"{keyword} takes no {{ }} block: keepalived ignores the keyword's line "
                "and the '{', reads the lines inside as lines of the enclosing block, and its "
                "'}' ends the enclosing block early; fix the file",
            )
            return None
        if rule.status in ("dropped", "info"):
            self.notes.add(statement, rule.status, f"{keyword}: {rule.why}")
            return None
        if statement.block is None and takes_block:
            self.notes.info(
                statement,
                f"{keyword} needs a {{ }} block: keepalived reads nothing from this line",
            )
            return None
        return modern

    @staticmethod
    def _expected_block(section: str, statement: Statement) -> bool:
        modern, rule = mapping.lookup(section, statement.keyword)
        return rule is not None and mapping.takes_block(section, modern)

    def unknown(self, section: str, statement: Statement) -> None:
        """A keyword keepalived 2.2.7 does not know in this block: say what it may be."""
        keyword = statement.keyword
        where = "at the top level" if section == "top" else f"in {section}"
        if keyword in mapping.REMOVED:
            self.notes.info(
                statement, f"{keyword}: {mapping.REMOVED[keyword]}; keepalived 2.2.7 ignores it"
            )
            return
        if keyword in mapping.NEWER:
            self.notes.dropped(
                statement,
                f"{keyword} is a keyword of keepalived 2.2.8 or later (2.2.7 ignores it); "
                "vrrpyd has no equivalent",
            )
            return
        renamed = [
            (name, modern)
            for name, aliases in mapping.ALIASES.items()
            for old, modern in aliases.items()
            if old == keyword and name != section
        ]
        if renamed:
            self.notes.dropped(
                statement,
                f"{keyword} is {renamed[0][0]}'s old spelling of {renamed[0][1]}, not a "
                f"keyword {where}: keepalived 2.2.7 ignores it here (write {renamed[0][1]} if "
                "you meant it)",
            )
            return
        elsewhere = [
            name
            for name, table in mapping.SECTIONS.items()
            if keyword in table and name not in (section, "top")
        ]
        if elsewhere:
            self.notes.dropped(
                statement,
                f"{keyword} is not a keyword {where} (it belongs in {elsewhere[0]}): "
                "keepalived ignores it here",
            )
            return
        if statement.block is not None:
            self.notes.dropped(
                statement,
                f"unknown keyword {keyword!r} {where} with a {{ }} block: keepalived 2.2.7 "
                "ignores the keyword and the '{', reads the lines inside as lines of the "
                "enclosing block, and its '}' ends the enclosing block early",
            )
            return
        known = list(mapping.SECTIONS.get(section, mapping.CHECKER))
        close = difflib.get_close_matches(keyword, known, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        self.notes.dropped(
            statement,
            f"unknown keyword {keyword!r} {where}: keepalived 2.2.7 ignores it (a misspelling, "
            f"or a keyword of a keepalived fork){hint}",
        )

    # -- values -----------------------------------------------------------------------

    def arg(self, statement: Statement, index: int = 0) -> str | None:
        """Argument ``index`` of ``statement``, or None (noted: keepalived ignores the line)."""
        if len(statement.args) > index:
            return statement.args[index]
        self.notes.info(statement, f"{statement.keyword} without a value: keepalived ignores it")
        return None

    def reading(self, statement: Statement, reading: Reading) -> int | float | None:
        """The value of ``reading``, noting what keepalived did when it was not plain."""
        if reading.why is not None:
            self.notes.info(statement, f"{statement.keyword}: {reading.why}")
        return reading.value

    def int_arg(
        self, statement: Statement, low: int, high: int, *, unsigned: bool = False
    ) -> int | None:
        """The first argument as keepalived's ``read_int`` / ``read_unsigned`` reads it."""
        text = self.arg(statement)
        if text is None:
            return None
        value = self.reading(statement, read_int(text, low, high, unsigned=unsigned))
        return None if value is None else int(value)

    def seconds_arg(self, statement: Statement, low: float, high: float) -> float | None:
        """The first argument as keepalived's ``read_decimal_unsigned`` reads seconds."""
        text = self.arg(statement)
        if text is None:
            return None
        value = self.reading(statement, read_decimal(text, low, high))
        return None if value is None else float(value)

    def command(self, statement: Statement) -> Command | None:
        """A script keyword's command, or None (noted) where keepalived refuses it."""
        try:
            parsed = command(statement)
        except KeepalivedParseError as error:
            self.notes.info(
                statement, f"{error.message}: keepalived refuses this script and runs nothing"
            )
            return None
        return parsed
