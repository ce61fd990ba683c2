"""Numbers, booleans and command lines read as keepalived 2.2.7 reads them.

keepalived's readers (``lib/parser.c``: ``read_int_func``,
``read_unsigned_func``, ``read_decimal_unsigned_long_func``,
``check_true_false``) are lenient in ways that matter when a file is carried
over: outside ``keepalived -t`` a number with trailing junk is taken up to the
junk (``interval 1.5`` is 1, with a warning), a number out of range is
refused and the keyword's default stays. Each reader here returns the value
keepalived ends up with and, when that is not what the text says plainly, a
sentence saying what keepalived did, for the report.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from vrrpy.keepalived.model import KeepalivedParseError, Statement
from vrrpy.keepalived.scripts import script_command

__all__ = [
    "Command",
    "Reading",
    "command",
    "read_bool",
    "read_decimal",
    "read_int",
]

_LEADING_INT = re.compile(r"[ \t\n\r\f\v]*([+-]?)(\d*)")
_TRUE = ("true", "on", "yes")
_FALSE = ("false", "off", "no")


@dataclass(frozen=True)
class Reading:
    """What keepalived makes of a value: ``value`` (None: the keyword is ignored and
    its default stays) and ``why`` (None when the text was read as written)."""

    value: int | float | None
    why: str | None = None


def read_int(text: str, low: int, high: int, *, unsigned: bool = False) -> Reading:
    """An integer as ``strtol`` / ``strtoul`` reads it, then checked against low..high.

    keepalived (outside ``-t``) keeps the leading number of a word with trailing
    junk when it is in range, and ignores the keyword otherwise.
    """
    match = _LEADING_INT.match(text)
    assert match is not None  # the pattern matches the empty string
    sign, digits = match.group(1), match.group(2)
    if unsigned and sign == "-":
        return Reading(None, f"{text!r} is negative: keepalived ignores the line")
    value = int(digits) * (-1 if sign == "-" else 1) if digits else 0
    clean = bool(digits) and match.end() == len(text)
    if not low <= value <= high:
        if clean:
            return Reading(None, f"{text} is outside {low}..{high}: keepalived ignores the line")
        return Reading(None, f"{text!r} is not a number: keepalived ignores the line")
    if not clean:
        return Reading(value, f"{text!r} is not a whole number: keepalived reads it as {value}")
    return Reading(value)


def read_decimal(text: str, low: float, high: float, places: int = 6) -> Reading:
    """A decimal number of seconds (``read_decimal_unsigned_strvec`` with 10^``places``).

    More decimal places than ``places`` are rounded; a negative or malformed
    number is refused (keepalived would read something accidental out of it).
    """
    if text.startswith("-"):
        return Reading(None, f"{text!r} is negative: keepalived ignores the line")
    if not re.fullmatch(r"\d*(\.\d*)?", text) or text in ("", "."):
        return Reading(None, f"{text!r} is not a number of seconds: keepalived ignores the line")
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above allows only numbers
        return Reading(None, f"{text!r} is not a number of seconds")
    quantum = Decimal(1).scaleb(-places)
    rounded = value.quantize(quantum)
    why = None
    if rounded != value:
        why = f"{text} has more than {places} decimal places: keepalived rounds it to {rounded}"
    seconds = float(rounded)
    if not low <= seconds <= high:
        return Reading(None, f"{text} is outside {low:g}..{high:g}: keepalived ignores the line")
    return Reading(seconds, why)


def read_bool(statement: Statement, index: int = 0) -> bool | None:
    """``check_true_false`` of the argument at ``index``: a keyword alone is true.

    None: the word is neither true/on/yes nor false/off/no, and keepalived
    ignores the line.
    """
    if len(statement.args) <= index:
        return True
    word = statement.args[index]
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return None


@dataclass(frozen=True)
class Command:
    """A script keyword's command as vrrpyd writes it: one line that vrrpyd splits
    with shell-like quoting into ``argv``, keepalived's words exactly."""

    line: str
    argv: tuple[str, ...]
    user: str | None
    group: str | None
    ignored: tuple[str, ...]


def command(statement: Statement) -> Command:
    """The command of a script keyword (``notify_master``, ``script``, ``misc_path`` ...).

    keepalived splits the line with its own quoting (see
    :func:`vrrpy.keepalived.scripts.script_command`); the words it runs are
    joined back with :func:`shlex.join`, which vrrpyd's ``shlex.split`` undoes
    exactly. Raises :class:`KeepalivedParseError` where keepalived refuses
    the script.
    """
    parsed = script_command(statement)
    if any("\0" in word for word in parsed.argv):  # pragma: no cover - the lexer cuts at NUL
        raise KeepalivedParseError(statement.file, statement.line, "a NUL in a command")
    return Command(shlex.join(parsed.argv), parsed.argv, parsed.user, parsed.group, parsed.ignored)
