"""What an ``include`` line names: keepalived's glob, brace lists and checks.

keepalived hands the rest of the line to glibc's ``glob()`` with
``GLOB_BRACE`` (csh brace lists, nested: ``{a,b{1,2}}.conf``) and
``GLOB_MARK``, relative to the directory of the file being read (it
``chdir()``\\ s into it), then opens the matches one after another. This
module finds the matches the same way and says what keepalived would
report:

* each alternative of a brace list is globbed on its own and sorted on its
  own, in the order of the list; ``*`` does not match a leading dot;
* an unmatched ``{`` makes the pattern literal;
* a name without wildcard that does not exist, or a wildcard in a directory
  that does not exist, is a missing file ("Config files missing");
* some alternatives missing while others match: "Some config files missing",
  and with the ``b`` check (``includeb``, ``includea`` or ``include_check
  brace_match``) nothing of the line is read;
* a wildcard matching nothing is only reported with the ``w`` check;
* a directory, anything but a regular file, and a file with an execute bit
  are skipped with a message.

The pattern is not unquoted and backslashes are not escapes (glibc would
honour ``\\*``); both are rare enough in include lines to leave out.
"""

from __future__ import annotations

import fnmatch
import itertools
import os
import stat
from dataclasses import dataclass

INCLUDE_READ = 0x01
"""keepalived's ``INCLUDE_R``: an unreadable match is an error, not a note."""
INCLUDE_MATCH = 0x02
"""``INCLUDE_M``: a missing file is an error."""
INCLUDE_WILDCARD = 0x04
"""``INCLUDE_W``: a wildcard matching nothing is reported."""
INCLUDE_BRACE = 0x08
"""``INCLUDE_B``: every alternative of a brace list must match, or nothing is read."""

INCLUDE_VARIANTS = {
    "": 0,
    "r": INCLUDE_READ,
    "m": INCLUDE_READ | INCLUDE_MATCH,
    "w": INCLUDE_READ | INCLUDE_MATCH | INCLUDE_WILDCARD,
    "b": INCLUDE_READ | INCLUDE_BRACE,
    "a": INCLUDE_READ | INCLUDE_MATCH | INCLUDE_WILDCARD | INCLUDE_BRACE,
}
"""The checks of ``include``, ``includer``, ``includem``, ``includew``,
``includeb`` and ``includea`` (``check_include()``)."""

INCLUDE_CHECK_WORDS = {
    "read": INCLUDE_READ,
    "match": INCLUDE_MATCH,
    "wildcard_match": INCLUDE_WILDCARD,
    "brace_match": INCLUDE_BRACE,
}
"""The words of ``global_defs { include_check ... }``."""

_MAGIC = "*?["


@dataclass(frozen=True)
class Matches:
    """The files an include line names, in reading order, and what to report about them."""

    paths: tuple[str, ...]
    notes: tuple[tuple[str, str], ...]
    """``(kind, message)`` pairs, in keepalived's words where it has some."""


def parse_include(line: str) -> tuple[int, str] | None:
    """``(checks, pattern)`` when ``line`` is an include line, else ``None`` (``is_include()``).

    ``include`` and its one-letter variants must be followed by white space;
    the pattern is the rest of the line, blanks skipped, spaces and quotes
    included.
    """
    if not line.startswith("include") or len(line) < 8:
        return None
    if line[7] in " \t\n\v\f\r":
        return INCLUDE_VARIANTS[""], line[8:].lstrip(" \t")
    if line[7] in "rmwba" and len(line) > 8 and line[8] in " \t\n\v\f\r":
        return INCLUDE_VARIANTS[line[7]], line[9:].lstrip(" \t")
    return None


def include_check_value(args: tuple[str, ...], current: int) -> tuple[int, list[str]]:
    """The new ``include_check`` value for ``include_check ARGS`` and the words
    keepalived would complain about (``include_check_set()``)."""
    if not args:
        return INCLUDE_READ | INCLUDE_MATCH | INCLUDE_WILDCARD | INCLUDE_BRACE, []
    value = current
    complaints: list[str] = []
    for index, word in enumerate(args):
        sign = word[:1] if word[:1] in "+-" else ""
        if not sign:
            if index:
                complaints.append(word)
                continue
            value = 0
        flag = INCLUDE_CHECK_WORDS.get(word[len(sign) :])
        if flag is None:
            complaints.append(word)
            continue
        if sign == "+":
            value |= flag
        elif sign == "-":
            value &= ~flag
        else:
            value = INCLUDE_READ | flag
    return value, complaints


def expand_braces(pattern: str) -> list[str]:
    """The alternatives of a csh brace list, in order (glibc's ``GLOB_BRACE``).

    ``a{b,c{d,e}}f`` is ``abf acdf acef``; ``{x}`` is ``x``; a ``{`` without
    its ``}`` leaves the pattern as it is.
    """
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth = 0
    commas: list[int] = []
    close = -1
    for index in range(start, len(pattern)):
        char = pattern[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                close = index
                break
        elif char == "," and depth == 1:
            commas.append(index)
    if close < 0:
        return [pattern]
    bounds = [start, *commas, close]
    head, tail = pattern[:start], pattern[close + 1 :]
    result: list[str] = []
    for left, right in itertools.pairwise(bounds):
        result.extend(expand_braces(head + pattern[left + 1 : right] + tail))
    return result


class GlobBudget:
    """How many directory entries globbing may still look at (shared by one parse)."""

    def __init__(self, entries: int) -> None:
        self.entries = entries


class GlobTooWide(Exception):
    """A pattern made globbing look at more directory entries than the budget allows."""


def find_matches(pattern: str, base_dir: str, checks: int, budget: GlobBudget) -> Matches:
    """The files ``pattern`` names from ``base_dir``, as keepalived would open them.

    Raises :class:`GlobTooWide` when the wildcards would walk too much of the
    file system (``include /*/*/*/*/*`` is a valid include line).
    """
    notes: list[tuple[str, str]] = []
    found: list[str] = []
    missing = 0
    wildcards = False
    for alternative in expand_braces(pattern):
        full = os.path.join(base_dir, alternative)
        if any(char in alternative for char in _MAGIC):
            wildcards = True
            names = _glob(alternative, base_dir, budget)
            if not names and not os.path.isdir(
                os.path.join(base_dir, _literal_prefix_dir(alternative))
            ):
                missing += 1
            found.extend(os.path.join(base_dir, name) for name in names)
        elif os.path.lexists(full):
            found.append(full)
        else:
            missing += 1
    if not found:
        if missing:
            notes.append(("include-missing", f"config files missing '{pattern}'"))
        elif wildcards and checks & INCLUDE_WILDCARD:
            notes.append(("include-no-match", f"no config files matched '{pattern}'"))
        return Matches((), tuple(notes))
    if missing:
        notes.append(("include-missing", f'some config files missing: "{pattern}"'))
        if checks & INCLUDE_BRACE:
            notes.append(
                (
                    "include-missing",
                    f"nothing of '{pattern}' is read: the brace_match check wants every name",
                )
            )
            return Matches((), tuple(notes))
    return Matches(tuple(os.path.normpath(path) for path in found), tuple(notes))


def unusable_reason(path: str) -> str | None:
    """Why keepalived would skip this match, or ``None`` (``check_glob_file()``)."""
    try:
        status = os.stat(path)
    except OSError as error:
        return f"configuration file '{path}' cannot be read ({error.strerror})"
    if stat.S_ISDIR(status.st_mode):
        return f"configuration file '{path}' is a directory - skipping"
    executable = status.st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if not stat.S_ISREG(status.st_mode) or executable:
        return f"configuration file '{path}' is not a regular non-executable file - skipping"
    return None


def _glob(pattern: str, base_dir: str, budget: GlobBudget) -> list[str]:
    """glibc's ``glob()`` for one alternative, from ``base_dir``, sorted as glibc sorts.

    Component by component; a wildcard component lists its directory and
    matches names with :func:`fnmatch.fnmatchcase` (``*``, ``?``, ``[...]``),
    a leading dot only matched by a pattern that starts with one. Every
    directory entry looked at is taken from ``budget``.
    """
    absolute = pattern.startswith("/")
    paths = ["/" if absolute else ""]
    for part in pattern.split("/"):
        if not part:
            continue
        if not any(char in part for char in _MAGIC):
            paths = [os.path.join(path, part) for path in paths]
            continue
        matched: list[str] = []
        for path in paths:
            try:
                names = os.listdir(os.path.join(base_dir, path) or ".")
            except OSError:
                continue
            budget.entries -= len(names)
            if budget.entries < 0:
                raise GlobTooWide(pattern)
            hidden = part.startswith(".")
            matched.extend(
                os.path.join(path, name)
                for name in names
                if (hidden or not name.startswith(".")) and fnmatch.fnmatchcase(name, part)
            )
        paths = matched
    existing = [path for path in paths if os.path.lexists(os.path.join(base_dir, path))]
    return sorted(existing, key=os.fsencode)


def _literal_prefix_dir(pattern: str) -> str:
    """The directory part of ``pattern`` before its first wildcard."""
    first = min(pattern.find(char) for char in _MAGIC if char in pattern)
    return os.path.dirname(pattern[:first]) or "."
