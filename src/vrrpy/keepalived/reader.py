"""Files into logical lines, as keepalived's ``read_line()`` produces them.

The reader owns the files (the main one and every include, as a stack), and
asks each line's way through what ``read_line()`` does, in its order:

1. the next line comes from what is left of the last line after a brace
   (:func:`~vrrpy.keepalived.lexer.split_braces`), else from an active
   sequence or multi-line definition (:class:`~vrrpy.keepalived.expand.Expander`),
   else from the file: blank lines skipped, comments stripped;
2. while a multi-line definition is being read, the line goes into it;
3. ``@ID`` / ``@^ID``: a line starting ``@`` keeps the rest only if the word
   glued to the ``@`` is the config id (``@^``: is not); with nothing after
   the word the line is dropped either way;
4. ``$NAME=...`` defines, ``~SEQ`` / ``~LST`` start a sequence, any other
   line starting ``~`` is left alone, else ``$`` references are substituted
   and, if that changed the line, it is stripped of comments again and
   steps 3-4 run again;
5. an ``include`` line opens its files (so an include may come from a
   conditional, a definition or a sequence: keepalived does it too, see
   ``include-after-processing`` in :mod:`vrrpy.keepalived.parser`);
6. the line is cut before its first brace and handed out.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from vrrpy.keepalived import limits
from vrrpy.keepalived.expand import Expander
from vrrpy.keepalived.include import (
    GlobBudget,
    GlobTooWide,
    find_matches,
    include_check_value,
    parse_include,
    unusable_reason,
)
from vrrpy.keepalived.lexer import BLANKS, decomment, split_braces
from vrrpy.keepalived.model import KeepalivedParseError, Problem

_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f]")
"""Control characters no text configuration holds (tab, newline, vertical tab,
form feed and carriage return are allowed)."""
_BINARY_TEXT = re.compile("[\x00-\x08\x0e-\x1f]")


@dataclass
class _File:
    """A file being read: its lines and where the reader stands in it."""

    name: str
    real: str
    directory: str
    lines: list[str]
    include_check: int
    """``include_check`` when the file was opened: restored when it ends
    (keepalived's ``end_file()``)."""
    index: int = 0


@dataclass
class _Include:
    """The files one include line matched, opened one after another."""

    pending: list[str]
    checks: int
    file: str
    line: int
    current: _File | None = None
    opened: list[str] = field(default_factory=list)


class LineReader:
    """Hands out keepalived's logical lines, with the file and line each came from."""

    def __init__(
        self,
        *,
        config_id: str,
        env: Mapping[str, str],
        rng: random.Random,
        problems: list[Problem],
    ) -> None:
        self.problems = problems
        self._reported: set[Problem] = set()
        self.config_id = config_id
        self._stack: list[_Include] = []
        self._residue: str | None = None
        self._include_check = 0
        self._total_bytes = 0
        self._glob_budget = GlobBudget(limits.MAX_GLOB_ENTRIES)
        self._lines = 0
        self.files: list[str] = []
        self.file = "<none>"
        self.line = 0
        self._pwd = os.getcwd()
        self.expander = Expander(
            config_id=config_id,
            env=env,
            rng=rng,
            pwd=lambda: self._pwd,
            report=self.report,
            fail=self.fail,
        )

    # -- where we are -------------------------------------------------------

    def report(self, kind: str, message: str) -> None:
        """Record a problem at the current line, once (a line a sequence repeats, or
        one substituted again, would otherwise say the same thing many times)."""
        problem = Problem(self.file, self.line, kind, message)
        if problem not in self._reported:
            self._reported.add(problem)
            self.problems.append(problem)

    def fail(self, message: str) -> NoReturn:
        """Raise the parse error at the current line."""
        raise KeepalivedParseError(self.file, self.line, message)

    # -- opening files --------------------------------------------------------

    def open_main(self, path: str) -> None:
        """Start with the file ``path`` (keepalived's ``-f``; not globbed here)."""
        self.file, self.line = path, 0
        reason = unusable_reason(path)
        if reason is not None:
            self.fail(reason)
        self._stack.append(_Include([], 0, path, 0))
        self._enter(self._stack[-1], path)

    def open_text(self, text: str, name: str, base_dir: str) -> None:
        """Start with ``text`` as if it were a file called ``name`` in ``base_dir``."""
        self.file, self.line = name, 0
        if len(text) > limits.MAX_FILE_BYTES:
            self.fail(f"larger than {limits.MAX_FILE_BYTES} characters")
        include = _Include([], 0, name, 0)
        self._stack.append(include)
        self._check_text(text)
        self._total_bytes += len(text)
        current = _File(name, name, base_dir, text.split("\n"), self._include_check)
        include.current = current
        self.files.append(name)
        self._pwd = base_dir

    def _enter(self, include: _Include, path: str) -> bool:
        """Open ``path`` for ``include``; ``False`` (with a problem) if keepalived would skip it."""
        if len(self.files) >= limits.MAX_FILES:
            self.fail(f"more than {limits.MAX_FILES} files opened")
        real = os.path.realpath(path)
        chain = [entry.current.real for entry in self._stack if entry.current is not None]
        if real in chain:
            names = [entry.current.name for entry in self._stack if entry.current is not None]
            loop = " -> ".join([*names[chain.index(real) :], path])
            self.fail(f"include loop: {loop} (keepalived nests until it runs out of files)")
        if len(chain) >= limits.MAX_INCLUDE_DEPTH:
            self.fail(f"includes nest deeper than {limits.MAX_INCLUDE_DEPTH}")
        data = self._read(path, include)
        if data is None:
            return False
        text = self._decode(data, path)
        include.current = _File(
            path, real, os.path.dirname(path) or ".", text.split("\n"), self._include_check
        )
        include.opened.append(path)
        self.files.append(path)
        self._pwd = os.path.abspath(include.current.directory)
        return True

    def _read(self, path: str, include: _Include) -> bytes | None:
        is_main = len(self._stack) == 1 and not include.opened
        try:
            data = _read_bounded(path)
        except OSError as error:
            message = f"configuration file '{path}' open problem ({error.strerror})"
            if is_main:
                raise KeepalivedParseError(path, 0, message) from None
            self.problems.append(Problem(include.file, include.line, "include-skipped", message))
            return None
        if len(data) > limits.MAX_FILE_BYTES:
            raise KeepalivedParseError(path, 0, f"larger than {limits.MAX_FILE_BYTES} bytes")
        self._total_bytes += len(data)
        if self._total_bytes > limits.MAX_TOTAL_BYTES:
            raise KeepalivedParseError(
                path, 0, f"the files read add up to more than {limits.MAX_TOTAL_BYTES} bytes"
            )
        binary = _BINARY.search(data)
        if binary is not None:
            offset = binary.start()
            line = data.count(b"\n", 0, offset) + 1
            raise KeepalivedParseError(
                path, line, f"not a text file (control byte 0x{data[offset]:02x})"
            )
        return data

    def _decode(self, data: bytes, path: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as error:
            line = data.count(b"\n", 0, error.start) + 1
            self.problems.append(
                Problem(path, line, "not-utf8", "not valid UTF-8: read as Latin-1")
            )
            return data.decode("latin-1")

    def _check_text(self, text: str) -> None:
        binary = _BINARY_TEXT.search(text)
        if binary is not None:
            self.line = text.count("\n", 0, binary.start()) + 1
            self.fail(f"not a text file (control character 0x{ord(binary.group()):02x})")

    def _include(self, checks: int, pattern: str, processed: bool) -> None:
        """Open what an include line names (``check_include()``)."""
        if processed:
            self.report(
                "include-after-processing",
                "include reached through a conditional, a substitution, a sequence or a "
                "brace on the same line: keepalived 2.2's VRRP and checker processes read "
                "such an include twice",
            )
        directory = self._current_directory()
        try:
            matches = find_matches(
                pattern, directory, checks | self._include_check, self._glob_budget
            )
        except GlobTooWide:
            self.fail(
                f"include '{pattern}' makes the wildcards look at more than "
                f"{limits.MAX_GLOB_ENTRIES} directory entries"
            )
        for kind, message in matches.notes:
            self.report(kind, message)
        if not matches.paths:
            return
        include = _Include(list(matches.paths), checks, self.file, self.line)
        self._stack.append(include)
        self._next_match(include)

    def _current_directory(self) -> str:
        for entry in reversed(self._stack):
            if entry.current is not None:
                return entry.current.directory
        return "."

    def _next_match(self, include: _Include) -> bool:
        """Open the next usable file of ``include``; ``False`` when there is none."""
        while include.pending:
            path = include.pending.pop(0)
            reason = unusable_reason(path)
            if reason is not None:
                self.problems.append(Problem(include.file, include.line, "include-skipped", reason))
                continue
            if self._enter(include, path):
                return True
        include.current = None
        return False

    def set_include_check(self, args: tuple[str, ...]) -> None:
        """Apply ``global_defs { include_check ... }`` to the includes that follow."""
        self._include_check, complaints = include_check_value(args, self._include_check)
        for word in complaints:
            self.report("invalid-include-check", f"unknown or duplicate include_check '{word}'")

    # -- lines ----------------------------------------------------------------

    def _physical(self) -> str | None:
        """The next non-empty physical line, comments stripped, or ``None`` at the end."""
        while self._stack:
            include = self._stack[-1]
            current = include.current
            if current is None or current.index >= len(current.lines):
                if current is not None:
                    self._include_check = current.include_check
                if current is None or not self._next_match(include):
                    self._stack.pop()
                    self._restore_position()
                continue
            raw = current.lines[current.index]
            current.index += 1
            self.file, self.line = current.name, current.index
            raw = raw.rstrip("\r\n")
            if len(raw) * 4 > limits.MAX_LINE_BYTES and len(raw.encode()) > limits.MAX_LINE_BYTES:
                self.report(
                    "long-line",
                    f"line longer than {limits.MAX_LINE_BYTES} bytes ignored (keepalived 2.2 "
                    "cuts it into pieces it reads as separate lines; 2.4 ignores it)",
                )
                continue
            text = self._decomment(raw) if raw else ""
            if text:
                return text
            if self.expander.defining is not None:
                if raw:
                    self.report(
                        "definition-cut",
                        "a comment or blank line ends the multi-line definition here for "
                        "keepalived's VRRP and checker processes (its parent process reads on)",
                    )
                self.expander.end_definition()
        return None

    def _restore_position(self) -> None:
        for entry in reversed(self._stack):
            if entry.current is not None:
                self._pwd = os.path.abspath(entry.current.directory)
                return

    def _decomment(self, raw: str) -> str:
        """Strip a physical line as keepalived's VRRP and checker processes see it.

        keepalived's parent process strips each line once and writes the
        result to a copy that its VRRP and checker processes read and strip
        again. The second pass only differs where ``\\#`` or ``\\!`` stood
        outside quotes: the parent sees the character, the processes that
        run instances and virtual servers see a comment. The parser follows
        them, and says so.
        """
        text, open_quote = decomment(raw)
        if open_quote:
            self.report("unterminated-quote", "unterminated quote")
        again, _ = decomment(text)
        if again != text:
            self.report(
                "escaped-comment",
                "\\# or \\! outside quotes: keepalived 2.2's VRRP and checker processes "
                "read a comment from there (only its parent process sees the character)",
            )
        return again

    def next_line(self) -> str | None:
        """The next logical line (one statement, or one brace), or ``None`` at the end."""
        while True:
            processed = True
            if self._residue is not None:
                line, self._residue = self._residue, None
            else:
                generated = self.expander.generated_line()
                if generated is not None:
                    line = generated
                else:
                    physical = self._physical()
                    if physical is None:
                        return None
                    line = physical
                    processed = False
            self._count_line()
            if self.expander.defining is not None:
                self.expander.continue_definition(line)
                continue
            if not line:
                continue
            before = line
            line = self._process(line)
            if not line:
                continue
            include = parse_include(line)
            if include is not None:
                self._include(*include, processed or line != before)
                continue
            break
        head, self._residue = split_braces(line)
        return head

    def _count_line(self) -> None:
        self._lines += 1
        if self._lines > limits.MAX_LINES:
            self.fail(
                f"more than {limits.MAX_LINES} lines after expanding includes, "
                "sequences and definitions"
            )

    def _process(self, line: str) -> str:
        """Conditionals, definitions, sequences, substitution; ``""`` if the line is used up."""
        expander = self.expander
        substituted = False
        for _ in range(limits.MAX_SUBSTITUTIONS_PER_LINE):
            if line[0] == "@":
                if substituted:
                    self.report(
                        "conditional-after-substitution",
                        "a substitution made this line start with '@': keepalived 2.2.7 and "
                        "older mangle such a line (its issue #2148, fixed in 2.2.8)",
                    )
                reverse = line[1:2] == "^"
                start = 2 if reverse else 1
                space = _find_blank(line, start)
                if space < 0:
                    return ""
                if (line[start:space] == self.config_id) == reverse:
                    return ""
                line = line[space:].lstrip(BLANKS)
                if not line:
                    return ""
            if line[0] == "$":
                definition = expander.define(line)
                if definition is not None:
                    if definition.multiline:
                        expander.start_definition(definition)
                    return ""
            if line.startswith(("~SEQ", "~LST")):
                expander.start_sequence(line)
                return ""
            if line[0] == "~" or "$" not in line:
                return line
            replaced = expander.substitute(line)
            if replaced is None:
                return line
            substituted = True
            line, open_quote = decomment(replaced)
            if open_quote:
                self.report("unterminated-quote", "unterminated quote after substitution")
            if not line:
                return ""
            if line[0] != "@" and "$" not in line:
                return line
        self.fail(
            "substitution does not settle: the line keeps changing (keepalived would loop for ever)"
        )


def _read_bounded(path: str) -> bytes:
    """At most ``MAX_FILE_BYTES + 1`` bytes of ``path``, without ever blocking.

    A file larger than the limit by its size is refused unread; ``O_NONBLOCK``
    keeps a "regular" file that blocks on read (``/proc/kmsg``) from hanging
    the parse (it fails with EAGAIN instead).
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        size = os.fstat(descriptor).st_size
        if size > limits.MAX_FILE_BYTES:
            raise KeepalivedParseError(
                path, 0, f"file of {size} bytes: larger than {limits.MAX_FILE_BYTES}"
            )
        chunks: list[bytes] = []
        left = limits.MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(descriptor, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _find_blank(text: str, start: int) -> int:
    for index in range(start, len(text)):
        if text[index] in BLANKS:
            return index
    return -1
