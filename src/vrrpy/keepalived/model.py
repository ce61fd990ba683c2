"""What the keepalived.conf parser hands out: statements, problems, one error type.

The parser is generic, as keepalived's ``lib/parser.c`` is below its keyword
tables: a statement is a keyword, its arguments and an optional ``{ ... }``
block. Which keywords exist, which take a block and what the arguments mean is
the mapper's business; every statement keeps its file and line so that the
mapper can say where a setting came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class KeepalivedParseError(Exception):
    """A keepalived.conf that cannot be parsed into a tree we can trust.

    The only exception the parser raises. Raised for what keepalived itself
    could not make sense of either (unbalanced braces, an include loop, a
    definition whose expansion never ends, a file that is not text) and for
    input beyond the limits of :mod:`vrrpy.keepalived.limits`.
    ``file`` and ``line`` say where (``line`` is 0 when the whole file is
    at fault).
    """

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Problem:
    """Something keepalived reads in a way the file's author may not expect.

    Parsing went on, as keepalived goes on: the mapper decides whether to
    report it. ``kind`` is a stable short identifier (listed in
    :mod:`vrrpy.keepalived.parser`), ``message`` the sentence for a person.
    """

    file: str
    line: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Statement:
    """One keyword line, with its block if a ``{`` followed it.

    ``args`` are the words keepalived's ordinary tokenizer gives the keyword's
    handler (double quotes group words and are removed; nothing else is
    special). ``raw`` is the line those words came from, after comments,
    conditionals and substitutions, which is what keepalived's script
    keywords re-read with their own quoting rules (see
    :func:`vrrpy.keepalived.scripts.script_command`). ``block`` is ``None``
    when no block followed the keyword, ``()`` for an empty one.
    ``file`` and ``line`` are where keepalived would report the statement:
    for a line made by ``~SEQ``, ``~LST`` or a multi-line definition, the line
    that produced it.
    """

    keyword: str
    args: tuple[str, ...]
    block: tuple[Statement, ...] | None
    file: str
    line: int
    raw: str = ""

    def children(self, keyword: str) -> Iterator[Statement]:
        """The statements of this block named ``keyword``, in file order."""
        for child in self.block or ():
            if child.keyword == keyword:
                yield child

    def first(self, keyword: str) -> Statement | None:
        """The first statement of this block named ``keyword``, or ``None``."""
        return next(self.children(keyword), None)

    def walk(self) -> Iterator[Statement]:
        """This statement and every statement below it, depth first, in file order."""
        stack: list[Statement] = [self]
        while stack:
            statement = stack.pop()
            yield statement
            stack.extend(reversed(statement.block or ()))

    @property
    def where(self) -> str:
        """``file:line``, for messages."""
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Config:
    """A parsed keepalived configuration.

    ``statements`` are the top-level statements of the main file with every
    include spliced in where it stood; ``problems`` what was parsed with a
    warning, in reading order; ``files`` every file read, in the order
    they were opened; ``config_id`` the identifier ``@ID`` lines were
    compared with.
    """

    statements: tuple[Statement, ...]
    problems: tuple[Problem, ...]
    files: tuple[str, ...]
    config_id: str

    def children(self, keyword: str) -> Iterator[Statement]:
        """The top-level statements named ``keyword``, in file order."""
        for statement in self.statements:
            if statement.keyword == keyword:
                yield statement

    def walk(self) -> Iterator[Statement]:
        """Every statement, depth first, in file order."""
        for statement in self.statements:
            yield from statement.walk()
