"""Characters into lines and words, each rule as keepalived 2.2.7's ``lib/parser.c`` has it.

Four small functions, one per C function they mirror:

* :func:`decomment` (``decomment()``): comments, escaped comment characters,
  surrounding blanks, a trailing ``\\``;
* :func:`split_braces` (the end of ``read_line()``): a ``{`` or ``}`` outside
  double quotes ends the line, so that every brace reaches the parser on a line
  of its own;
* :func:`split_words` (``alloc_strvec_r()``): the ordinary tokenizer that
  every keyword handler receives its arguments from;
* :func:`split_quoted_escaped` (``alloc_strvec_quoted_escaped()``): the
  shell-like tokenizer that script keywords apply to their raw line.

They work on ``str``; keepalived works on bytes, which only matters for
``\\x`` and octal escapes above 127 (see :func:`split_quoted_escaped`).
"""

from __future__ import annotations

import re

WHITE_SPACE = " \t\f\n\r\v"
"""keepalived's ``WHITE_SPACE``: what separates words (not what ``decomment``
strips, which is only blanks: space and tab)."""

BLANKS = " \t"
_DECOMMENT_SPECIAL = re.compile(r'[!#"\\]')
_BRACE_OR_QUOTE = re.compile(r'[{}"]')
_HEX_DIGITS = "0123456789abcdefABCDEF"
_OCTAL_DIGITS = "01234567"
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


class QuoteError(ValueError):
    """:func:`split_quoted_escaped` could not split a line (keepalived then
    refuses the script: "Unable to parse notify script")."""


def decomment(line: str) -> tuple[str, bool]:
    """Strip a line as keepalived's ``decomment()`` does; say whether a quote was left open.

    * Leading and trailing blanks (space, tab) go.
    * ``#`` or ``!`` outside double quotes starts a comment that runs to the
      end of the line. Only double quotes protect: ``'a # b'`` is cut at ``#``.
    * ``\\#`` and ``\\!`` outside double quotes lose their backslash and are
      kept as text; inside double quotes they are left alone, backslash and
      all. Any other backslash pair is kept as it is (``\\"`` therefore does
      not open or close a quoted part).
    * A backslash that ends the line marks a continuation: it is kept, with
      the blanks before it removed. In 2.2.7 that holds even when the
      backslash sits inside a comment (``foo # note \\`` gives ``foo\\``);
      2.4 stops at the comment.
    * A double quote left open is reported (keepalived: "Unterminated quote")
      and the line is kept as it is.
    """
    text = line.lstrip(BLANKS)
    special = _DECOMMENT_SPECIAL.search(text)
    if special is None:
        return text.rstrip(BLANKS), False
    out: list[str] = []
    quote = False
    continued = False
    i = 0
    n = len(text)
    while special is not None:
        j = special.start()
        out.append(text[i:j])
        char = text[j]
        i = j + 1
        if char == '"':
            quote = not quote
            out.append(char)
        elif char == "\\":
            if i == n:
                continued = True
                break
            following = text[i]
            if quote or following not in "#!":
                out.append(char)
            out.append(following)
            i += 1
        elif not quote:
            # a comment: from here on only a backslash ending the line matters, and
            # backslashes pair up from the left, so it ends the line when the run of
            # backslashes at the end is odd
            continued = (n - len(text.rstrip("\\"))) % 2 == 1
            i = n
            break
        else:
            out.append(char)
        special = _DECOMMENT_SPECIAL.search(text, i)
    out.append(text[i:])
    result = "".join(out).rstrip(BLANKS)
    if continued:
        result += "\\"
    return result, quote


def split_braces(line: str) -> tuple[str, str | None]:
    """Cut a line before its first brace; return the line and what is left over.

    keepalived hands its keyword parser one brace per line: a line that starts
    with ``{`` or ``}`` is that brace alone (the rest, blanks skipped, is read
    next as if it were the following line); otherwise the line ends just
    before the first ``{`` or ``}`` outside double quotes and the rest, brace
    first, comes next. So ``a { b } }`` reaches the parser as ``a``, ``{``,
    ``b``, ``}``, ``}``. Single quotes do not protect a brace, and after an
    unclosed double quote nothing is cut.
    """
    if not line:
        return line, None
    if "{" not in line and "}" not in line:
        return line.rstrip(BLANKS), None
    position: int | None = 0
    if line[0] not in "{}":
        position = None
        i = 0
        while True:
            found = _BRACE_OR_QUOTE.search(line, i)
            if found is None:
                break
            if found.group() != '"':
                position = found.start()
                break
            close = line.find('"', found.start() + 1)
            if close < 0:
                break
            i = close + 1
    residue: str | None = None
    head = line
    if position is not None:
        skip = 0
        if position == 0:
            skip = 1
            while skip < len(line) and line[skip] in BLANKS:
                skip += 1
        cut = position + skip
        if cut < len(line):
            residue = line[cut:].rstrip(BLANKS)
            head = line[:cut]
    return head.rstrip(BLANKS), residue


def split_words(line: str) -> tuple[list[str], bool]:
    """Split a line into words as keepalived's ordinary tokenizer does; say if a quote was open.

    Words are separated by white space. A word that starts with ``"`` runs to
    the next ``"`` whatever lies between, and loses both quotes (``""`` is an
    empty word). An unquoted word stops at white space or at a ``"``, so
    ``a"b c"`` is the two words ``a`` and ``b c``. Nothing else is special:
    no single quotes, no backslash escapes. An unclosed ``"`` ends the line
    there (keepalived: "Unmatched quote"), the words before it are kept.
    """
    if '"' not in line and line.isascii():
        # str.split() splits ASCII text at exactly keepalived's white space, plus the
        # separators 0x1c-0x1f that the reader refuses as binary
        return line.split(), False
    words: list[str] = []
    i = 0
    n = len(line)
    while True:
        while i < n and line[i] in WHITE_SPACE:
            i += 1
        if i == n:
            return words, False
        if line[i] == '"':
            close = line.find('"', i + 1)
            if close < 0:
                return words, True
            words.append(line[i + 1 : close])
            i = close + 1
        else:
            start = i
            while i < n and line[i] not in WHITE_SPACE and line[i] != '"':
                i += 1
            words.append(line[start:i])


def split_quoted_escaped(line: str, *, escapes: bool = True) -> list[str]:
    """Split a line the way keepalived's script keywords do (``alloc_strvec_quoted_escaped``).

    Shell-like, with differences worth knowing:

    * ``"`` and ``'`` both quote, and quoted and unquoted parts that touch
      make one word (``a"b c"d`` is ``ab cd``).
    * Backslash escapes work everywhere, inside single quotes too: ``\\a \\b
      \\E \\f \\n \\r \\t \\v``, ``\\cC`` (control-C), up to three octal
      digits, and ``\\x`` followed by hex digits. keepalived 2.2.7 reads every
      hex digit that follows and keeps the last two (``\\x41ff`` is 0xff);
      2.4 reads at most two. Values are bytes in keepalived; here a value
      above 127 becomes the character of that code point.
    * Any other escaped character is itself (``\\\\``, ``\\"``, ``\\'``, ``\\ ``).
    * A character of value 0 ends the word there (keepalived's words are C
      strings).
    * A backslash at the very end, or a quote never closed, makes the whole
      line unusable: :class:`QuoteError`.

    With ``escapes=False`` (2.3.2's ``alloc_strvec_quoted``) a backslash
    still protects the next character from ending a word or a quoted part,
    but both characters are kept as written.
    """
    words: list[str] = []
    i = 0
    n = len(line)
    while i < n:
        while i < n and line[i] in WHITE_SPACE:
            i += 1
        if i == n:
            break
        word: list[str] = []
        quote = ""
        while i < n:
            stops = quote + "\\" if quote else WHITE_SPACE + "'\"\\"
            found = _find_any(line, stops, i)
            if found < 0:
                if quote:
                    raise QuoteError(f"missing terminating {quote}")
                word.append(line[i:])
                i = n
                break
            word.append(line[i:found])
            i = found
            char = line[i]
            if char == "\\":
                if not escapes:
                    if i + 1 >= n:
                        raise QuoteError("missing escape character at end")
                    word.append(line[i : i + 2])
                    i += 2
                    continue
                escaped, i = _escape(line, i + 1)
                word.append(escaped)
                continue
            if quote:
                quote = ""
                i += 1
                continue
            if char in "'\"":
                quote = char
                i += 1
                continue
            break
        words.append("".join(word).split("\0", 1)[0])
    return words


def _escape(line: str, i: int) -> tuple[str, int]:
    """Decode the escape whose letter is at ``line[i]``; return it and the next index."""
    if i >= len(line):
        raise QuoteError("missing escape character at end")
    char = line[i]
    if char == "x" and i + 1 < len(line) and line[i + 1] in _HEX_DIGITS:
        value = 0
        i += 1
        while i < len(line) and line[i] in _HEX_DIGITS:
            value = ((value << 4) | int(line[i], 16)) & 0xFF
            i += 1
        return chr(value), i
    if char == "c" and i + 1 < len(line):
        return chr(ord(line[i + 1]) & 0x1F), i + 2
    if char in _OCTAL_DIGITS:
        value = int(char)
        i += 1
        for _ in range(2):
            if i < len(line) and line[i] in _OCTAL_DIGITS:
                value = ((value << 3) + int(line[i])) & 0xFF
                i += 1
        return chr(value), i
    return _SIMPLE_ESCAPES.get(char, char), i + 1


def _find_any(text: str, chars: str, start: int) -> int:
    """Index of the first of ``chars`` in ``text`` from ``start`` (C's ``strpbrk``), or -1."""
    for i in range(start, len(text)):
        if text[i] in chars:
            return i
    return -1
