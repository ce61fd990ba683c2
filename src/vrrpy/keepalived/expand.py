"""``$NAME`` definitions, their substitution, and ``~SEQ`` / ``~LST`` sequences.

Everything keepalived's ``lib/parser.c`` does with ``$`` and ``~``, as one
:class:`Expander` that the line reader feeds and asks for generated lines.
The rules, with the C function each mirrors:

Definitions (``check_definition()``)
    A line ``$NAME=VALUE`` (after any ``@ID`` prefix) defines ``NAME``:
    letters, digits and ``_``, not starting with a digit, no blank before
    ``=``; blanks after ``=`` are skipped and the value may be empty. A later
    definition replaces an earlier one, built-ins included. A value ending
    in ``\\`` starts a multi-line definition: each following line that ends in
    ``\\`` adds a line, the first that does not is the last, and an empty
    line ends it early. So does a line of blanks or a comment for keepalived's
    VRRP and checker processes, which the parser follows (they read a copy of
    the file where such lines are already empty; its parent reads on).

References (``find_definition()``)
    ``$NAME`` is replaced only when followed by a blank, ``,``, ``)`` or the
    end of the line: ``$NET/24`` stays as it is, ``${NET}/24`` is needed. An
    undefined name stays as written. ``${NAME ARGS}`` passes arguments, which
    only the built-ins take. A multi-line definition is only expanded when
    its reference ends the line; anywhere else it stays as written.

Substitution (``replace_param()``)
    Done when a line is read, not when it is defined, left to right;
    replaced text is scanned again, so definitions nest. After a line
    changed, it is stripped of comments again (a ``#`` brought in by a value
    starts a comment unless it is inside double quotes, which is what
    ``${_HASH}`` is for) and, when it now starts with ``@`` or still holds a
    ``$``, processed again from the conditional on. A value starting with
    ``~`` stops the scan of that line (so that ``$SEQ`` can hold a ``~SEQ``).
    keepalived gives up substituting when the line would reach 1024 bytes and
    spins for ever on ``$A=${A}``; here both are errors (see
    :mod:`vrrpy.keepalived.limits`).

Built-ins (``set_std_definitions()``)
    ``${_PWD}`` the directory of the file being read, ``${_INSTANCE}`` the
    config id, ``${_RANDOM [MIN [MAX]]}`` a number in [MIN, MAX] (default 0
    and 32767), ``${_HASH}`` ``#``, ``${_BANG}`` ``!``, and since 2.4.0
    ``${_ENV NAME}`` the environment variable (empty when unset; 2.2.7 leaves
    the text as written).

Sequences (``add_seq()``, ``add_lst()`` and the top of ``read_line()``)
    A line starting ``~SEQ(VAR, START, STEP, END)`` reads the rest of the
    line once per value, with ``$VAR`` defined (and left defined after).
    ``~SEQ(VAR, END)`` counts from 1 (or -1 when END < 0) and
    ``~SEQ(VAR, START, END)`` by 1 or -1; ``~SEQ(VAR, 0)`` gives 1 then 0.
    Numbers are read by C's ``strtol`` with base 0: ``0x10`` is 16 and
    ``010`` is 8. ``~SEQx`` writes the values in hex. ``~LST(VAR, A, B, C)``
    gives the listed values; ``~LST({V1, V2}, {a, b}, {c})`` sets several
    variables at once, missing values are empty. Several sequences on one
    line nest, the rightmost varying fastest. An invalid sequence line is
    dropped (keepalived reports it).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from vrrpy.keepalived import limits
from vrrpy.keepalived.lexer import BLANKS

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")
_C_SPACE = " \t\n\v\f\r"
_SEQ_PARAMS_MAX = 3 * 20 + 3 + 1
"""keepalived's ``seq_buf``: the parameters of a ``~SEQ`` after ``VAR,`` must fit in it."""

_RANDOM_DEFAULT_MAX = 32767


@dataclass
class Definition:
    """One ``$NAME``: its value, or the function that computes it (built-ins)."""

    name: str
    value: str
    multiline: bool = False
    compute: Callable[[list[str]], str] | None = None
    min_params: int = 0
    max_params: int = 0
    numbers_only: bool = False


@dataclass
class _Sequence:
    """An active ``~SEQ`` (``values`` is None) or ``~LST``: what it sets and the text it repeats."""

    text: str
    variable: str = ""
    next: int = 0
    step: int = 1
    last: int = 0
    hex: bool = False
    names: list[str] = field(default_factory=list)
    values: list[list[str]] | None = None
    index: int = 0


@dataclass
class _Cursor:
    """Where the expansion of a multi-line definition stands (C's ``next_ptr``)."""

    text: str
    offset: int


class Expander:
    """The definitions and every expansion in progress, for one parse.

    The reader calls :meth:`generated_line` before reading the file (lines of
    sequences and multi-line definitions come first, in keepalived's order),
    :meth:`continue_definition` while :attr:`defining` is set, and
    :meth:`define`, :meth:`start_sequence` and :meth:`substitute` on each
    line. ``report(kind, message)`` records a problem at the current line;
    ``fail(message)`` raises the parse error there; ``pwd()`` is the
    directory of the file being read.
    """

    def __init__(
        self,
        *,
        config_id: str,
        env: Mapping[str, str],
        rng: random.Random,
        pwd: Callable[[], str],
        report: Callable[[str, str], None],
        fail: Callable[[str], NoReturn],
    ) -> None:
        self._env = env
        self._rng = rng
        self._report = report
        self._fail = fail
        self.definitions: dict[str, Definition] = {}
        self.defining: Definition | None = None
        self._parts: list[str] = []
        self._parts_length = 0
        self._sequences: list[_Sequence] = []
        self._cursor: _Cursor | None = None
        self._cursor_stack: list[tuple[_Cursor | None, int]] = []
        self._multiline_seq_depth = 0
        self._builtin("_PWD", compute=lambda _: pwd())
        self._builtin("_INSTANCE", compute=lambda _: config_id)
        self._builtin("_RANDOM", compute=self._random, max_params=2, numbers_only=True)
        self._builtin("_ENV", compute=self._environment, min_params=1, max_params=1)
        self._builtin("_HASH", value="#")
        self._builtin("_BANG", value="!")

    # -- built-ins ------------------------------------------------------------

    def _builtin(
        self,
        name: str,
        *,
        value: str = "",
        compute: Callable[[list[str]], str] | None = None,
        min_params: int = 0,
        max_params: int = 0,
        numbers_only: bool = False,
    ) -> None:
        self.definitions[name] = Definition(
            name,
            value,
            compute=compute,
            min_params=min_params,
            max_params=max_params,
            numbers_only=numbers_only,
        )

    def _random(self, params: list[str]) -> str:
        low = int(params[0]) if params else 0
        high = int(params[1]) if len(params) > 1 else _RANDOM_DEFAULT_MAX
        high = max(high, low)
        message = "${_RANDOM} gives a different number each time keepalived reads the file"
        if params:
            message += " (and keepalived 2.2 garbles what follows ${_RANDOM MIN MAX} on the line)"
        self._report("random", message)
        return str(self._rng.randint(low, high))

    def _environment(self, params: list[str]) -> str:
        self._report(
            "environment",
            f"${{_ENV {params[0]}}} reads keepalived's environment (keepalived 2.4.0 and later; "
            "2.2 leaves the text as written)",
        )
        return self._env.get(params[0], "")

    # -- definitions ----------------------------------------------------------

    def define(self, line: str) -> Definition | None:
        """Store ``$NAME=VALUE`` if ``line`` is one (``check_definition()``); else ``None``."""
        if len(line) < 2 or line[0] != "$" or line[1] not in _NAME_START:
            return None
        end = line.find("=", 2)
        if end < 0 or any(char not in _NAME_CHARS for char in line[2:end]):
            return None
        name = line[1:end]
        value = line[end + 1 :].lstrip(BLANKS)
        multiline = value.endswith("\\")
        if multiline:
            value = value[:-1].rstrip(BLANKS)
            value = value + "\n" if value else ""
        definition = self.definitions.get(name)
        if definition is None:
            definition = self.definitions[name] = Definition(name, value)
        definition.value = value
        definition.compute = None
        definition.multiline = multiline
        return definition

    def start_definition(self, definition: Definition) -> None:
        """Read the following lines into the multi-line ``definition``."""
        self.defining = definition
        self._parts = [definition.value]
        self._parts_length = len(definition.value)

    def continue_definition(self, line: str) -> None:
        """Add a line to the multi-line definition being read (the top of ``read_line()``).

        The lines are gathered in a list and joined when the definition ends
        (nothing can use it before), so that a long one costs linear time.
        """
        definition = self.defining
        assert definition is not None
        continuing = line.endswith("\\")
        if continuing:
            line = line[:-1].rstrip(BLANKS) + "\n"
        # as in keepalived, whether the definition is empty is decided before its last line
        empty = not self._parts_length
        if len(line) >= 2 or (line and not continuing):
            self._parts.append(line)
            self._parts_length += len(line)
            if self._parts_length > limits.MAX_DEFINITION_LENGTH:
                self._fail(
                    f"multi-line definition ${definition.name} is longer than "
                    f"{limits.MAX_DEFINITION_LENGTH} characters"
                )
        if not continuing:
            self.end_definition()
            if empty:
                definition.multiline = False

    def end_definition(self) -> None:
        """End the multi-line definition being read; one with no text is single-line after all."""
        definition = self.defining
        if definition is not None:
            if not self._parts_length:
                definition.multiline = False
            definition.value = "".join(self._parts)
        self.defining = None
        self._parts = []
        self._parts_length = 0

    def _set(self, name: str, value: str) -> None:
        """Define ``name`` for a sequence step (``set_definition()``)."""
        definition = self.definitions.get(name)
        if definition is None:
            self.definitions[name] = Definition(name, value)
        else:
            definition.value = value
            definition.compute = None

    # -- substitution ---------------------------------------------------------

    def _reference(self, line: str, dollar: int) -> tuple[Definition, int, list[str]] | None:
        """The definition named at ``line[dollar]`` (a ``$``), the end of the reference
        and its arguments, or ``None`` when keepalived would leave it alone
        (``find_definition()``)."""
        start = dollar + 1
        braces = start < len(line) and line[start] == "{"
        if braces:
            start += 1
        if start >= len(line) or line[start] not in _NAME_START:
            return None
        end = start + 1
        while end < len(line) and line[end] in _NAME_CHARS:
            end += 1
        name = line[start:end]
        params: list[str] = []
        if braces:
            close = end
            while close < len(line) and (line[close] in BLANKS or line[close] in _NAME_CHARS):
                close += 1
            if close >= len(line) or line[close] != "}":
                return None
            argument_text = line[end:close]
            if argument_text and argument_text[-1] in BLANKS:
                return None
            params = argument_text.split()
            after = close + 1
        else:
            if end < len(line) and line[end] not in " \t,)":
                return None
            after = end
        definition = self.definitions.get(name)
        if definition is None:
            return None
        if definition.multiline and after != len(line):
            return None
        if params:
            if not definition.max_params:
                return None
            if definition.numbers_only and not all(param.isdigit() for param in params):
                self._report(
                    "invalid-definition-use", f"${{{name}}} takes numbers only: left as written"
                )
                return None
            if not definition.min_params <= len(params) <= definition.max_params:
                self._report(
                    "invalid-definition-use",
                    f"${{{name}}} takes {definition.min_params} to {definition.max_params} "
                    f"arguments, not {len(params)}: left as written",
                )
                return None
        elif definition.min_params:
            return None
        return definition, after, params

    def substitute(self, line: str, *, max_length: int | None = None) -> str | None:
        """Replace every reference in ``line`` (``replace_param()``); ``None`` if none was.

        A multi-line definition puts its first line in place of the reference
        and queues the others for :meth:`generated_line`.
        """
        if max_length is None:
            max_length = limits.MAX_EXPANDED_LINE
        found = False
        substitutions = 0
        position = 0
        cursor = self._cursor
        while True:
            position = line.find("$", position)
            if position < 0 or position + 1 >= len(line):
                break
            reference = self._reference(line, position)
            if reference is None:
                position += 1
                continue
            definition, end, params = reference
            found = True
            substitutions += 1
            if substitutions > limits.MAX_SUBSTITUTIONS_PER_LINE:
                self._fail(
                    f"${definition.name} does not stop expanding "
                    f"(more than {limits.MAX_SUBSTITUTIONS_PER_LINE} substitutions on one line; "
                    "keepalived would loop for ever)"
                )
            value = definition.value
            if definition.compute is not None:
                value = definition.compute(params)
            if definition.multiline:
                if cursor is not None:
                    self._push_cursor(cursor)
                self._multiline_seq_depth = len(self._sequences)
                first, newline, _ = value.partition("\n")
                cursor = _Cursor(value, len(first) + 1) if newline else None
                replacement = first
            else:
                replacement = value
            if len(line) - (end - position) + len(replacement) > max_length:
                self._fail(
                    f"substituting ${definition.name} makes the line longer than {max_length} "
                    "characters (keepalived stops substituting there)"
                )
            line = line[:position] + replacement + line[end:]
            if value.lstrip(BLANKS).startswith("~"):
                break
        if not found:
            return None
        self._cursor = cursor
        return line

    def _push_cursor(self, cursor: _Cursor) -> None:
        if len(self._cursor_stack) >= limits.MAX_MULTILINE_NESTING:
            self._fail(
                f"multi-line definitions nest deeper than {limits.MAX_MULTILINE_NESTING} "
                "(one that names itself never ends)"
            )
        self._cursor_stack.append((cursor, self._multiline_seq_depth))

    # -- generated lines ------------------------------------------------------

    def generated_line(self) -> str | None:
        """The next line a sequence or a multi-line definition produces, or ``None``.

        A sequence started after the multi-line expansion in progress comes
        first, then the rest of that expansion (keepalived's order).
        """
        if self._sequences and len(self._sequences) > self._multiline_seq_depth:
            return self._sequence_step()
        cursor = self._cursor
        if cursor is None:
            return None
        newline = cursor.text.find("\n", cursor.offset)
        if newline < 0:
            line = cursor.text[cursor.offset :]
            if self._cursor_stack:
                self._cursor, self._multiline_seq_depth = self._cursor_stack.pop()
            else:
                self._cursor = None
                self._multiline_seq_depth = 0
            return line
        line = cursor.text[cursor.offset : newline]
        cursor.offset = newline + 1
        return line

    def _sequence_step(self) -> str:
        sequence = self._sequences[-1]
        if sequence.values is None:
            self._set(
                sequence.variable,
                f"{sequence.next:x}" if sequence.hex else str(sequence.next),
            )
            sequence.next += sequence.step
            if (sequence.step > 0 and sequence.next > sequence.last) or (
                sequence.step < 0 and sequence.next < sequence.last
            ):
                self._sequences.pop()
        else:
            for name, value in zip(sequence.names, sequence.values[sequence.index], strict=True):
                self._set(name, value)
            sequence.index += 1
            if sequence.index == len(sequence.values):
                self._sequences.pop()
        return sequence.text

    def start_sequence(self, line: str) -> None:
        """Start the ``~SEQ`` or ``~LST`` that ``line`` begins with, or report it invalid."""
        if len(self._sequences) >= limits.MAX_SEQUENCE_NESTING:
            self._fail(f"more than {limits.MAX_SEQUENCE_NESTING} ~SEQ/~LST active at once")
        kind = line[:4]
        sequence = self._parse_seq(line) if kind == "~SEQ" else _parse_lst(line)
        if sequence is None:
            message = f"invalid {kind} specification: line ignored"
            if kind == "~LST":
                message += (
                    "; keepalived then miscounts its active sequences, and may skip or "
                    "reorder the ~SEQ/~LST lines that follow"
                )
            self._report("invalid-sequence", message)
            return
        self._sequences.append(sequence)

    def _parse_seq(self, line: str) -> _Sequence | None:
        """``add_seq()``: ``~SEQ[x](VAR, [[START,] STEP,] END) TEXT``."""
        p = 4
        hexadecimal = line[p : p + 1] == "x"
        if hexadecimal:
            p += 1
        p = _skip(line, p, BLANKS)
        if line[p : p + 1] != "(":
            return None
        p = _skip(line, p + 1, BLANKS)
        start = p
        while p < len(line) and line[p] not in " \t,)":
            p += 1
        variable = line[start:p]
        p = _skip(line, p, BLANKS)
        if p >= len(line) or line[p] == ")" or not variable or variable[0] == "{":
            return None
        p = _skip(line, p + 1, BLANKS)  # keepalived skips one character here, comma or not
        close = line.find(")", p)
        if close < 0 or close + 1 - p + 1 > _SEQ_PARAMS_MAX:
            return None
        params = line[p : close + 1]
        if "$" in params:
            saved = (self._cursor, list(self._cursor_stack), self._multiline_seq_depth)
            substituted = self.substitute(params, max_length=_SEQ_PARAMS_MAX - 1)
            self._cursor, self._cursor_stack, self._multiline_seq_depth = saved
            if substituted is not None:
                params = substituted
        numbers: list[int] = []
        q = 0
        while True:
            value, q = _strtol(params, q)
            numbers.append(value)
            q = _skip(params, q, BLANKS)
            if q < len(params) and params[q] == ")":
                break
            if q >= len(params) or params[q] != "," or len(numbers) == 3:
                return None
            q += 1
        if len(numbers) == 1:
            last = numbers[0]
            step = -1 if last < 1 else 1
            first = -1 if last < 0 else 1
        elif len(numbers) == 2:
            first, last = numbers
            step = 1 if first <= last else -1
        else:
            first, step, last = numbers
            if not step or (first < last and step < 0) or (first > last and step > 0):
                return None
        if hexadecimal and (first < 0 or last < 0):
            return None
        text = line[close + 1 :].lstrip(BLANKS)
        return _Sequence(text, variable, first, step, last, hexadecimal)


def _parse_lst(line: str) -> _Sequence | None:
    """``add_lst()``: ``~LST(VAR, V1, V2...) TEXT`` or ``~LST({V1, V2}, {a, b}, ...) TEXT``."""
    p = _skip(line, 4, BLANKS)
    if line[p : p + 1] != "(":
        return None
    p = _skip(line, p + 1, BLANKS)
    end_char = ","
    if line[p : p + 1] == "{":
        end_char = "}"
        p = _skip(line, p + 1, BLANKS)
    names: list[str] = []
    while True:
        start = p
        while p < len(line) and line[p] not in " \t,}":
            p += 1
        names.append(line[start:p])
        p = _skip(line, p, BLANKS)
        if line[p : p + 1] == end_char:
            break
        if line[p : p + 1] != ",":
            return None
        p = _skip(line, p + 1, BLANKS)
    if line[p : p + 1] == "}":
        p = _skip(line, p + 1, BLANKS)
    if line[p : p + 1] != ",":
        return None
    p = _skip(line, p + 1, BLANKS)
    value_sets: list[list[str]] = []
    while True:
        end_char = ","
        if line[p : p + 1] == "{":
            end_char = "}"
            p = _skip(line, p + 1, BLANKS)
        values: list[str] = []
        while True:
            start = p
            while p < len(line) and line[p] not in " \t,})":
                p += 1
            values.append(line[start:p])
            p = _skip(line, p, BLANKS)
            here = line[p : p + 1]
            if here == end_char or (here == ")" and end_char == ","):
                break
            if here != ",":
                return None
            p = _skip(line, p + 1, BLANKS)
            if len(values) > len(names) - 1:
                return None
        values.extend([""] * (len(names) - len(values)))
        value_sets.append(values)
        if line[p : p + 1] == "}" and end_char == "}":
            p = _skip(line, p + 1, BLANKS)
        if line[p : p + 1] == ")":
            break
        if line[p : p + 1] != ",":
            return None
        p = _skip(line, p + 1, BLANKS)
    text = line[p + 1 :].lstrip(BLANKS)
    return _Sequence(text, names=names, values=value_sets)


def _skip(text: str, position: int, chars: str) -> int:
    while position < len(text) and text[position] in chars:
        position += 1
    return position


def _strtol(text: str, position: int) -> tuple[int, int]:
    """C's ``strtol(text + position, &end, 0)``: the value and where it stopped.

    Leading white space, a sign, then ``0x`` for hex, ``0`` for octal, else
    decimal; no digit at all gives 0 and does not move. Clamped to a C long.
    """
    p = _skip(text, position, _C_SPACE)
    negative = False
    if p < len(text) and text[p] in "+-":
        negative = text[p] == "-"
        p += 1
    base, digits = 10, "0123456789"
    if text[p : p + 2] in ("0x", "0X") and p + 2 < len(text) and text[p + 2] in _HEX:
        base, digits = 16, _HEX
        p += 2
    elif text[p : p + 1] == "0":
        base, digits = 8, "01234567"
    start = p
    while p < len(text) and text[p] in digits:
        p += 1
    if p == start:
        return 0, position
    value = int(text[start:p], base)
    value = -value if negative else value
    return max(-(2**63), min(2**63 - 1, value)), p


_HEX = "0123456789abcdefABCDEF"


def default_env() -> Mapping[str, str]:
    """The environment ``${_ENV NAME}`` reads when the caller gives none: this process's."""
    return os.environ
