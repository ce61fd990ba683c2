"""keepalived.conf as keepalived reads it: a tree of statements.

The reference is keepalived 2.2.7 (Debian 12's), its ``lib/parser.c`` and
keepalived.conf(5); where 2.4 differs, the docstrings say so. The parser is
generic, as ``parser.c`` is below its keyword tables: a statement is a
keyword, arguments, and a block when a ``{`` follows. It knows no keyword
except ``include`` (and ``include_check`` in ``global_defs``, which changes
how includes are checked), so an unknown or misspelt keyword is simply a
statement: the mapper reports it.

    >>> config = parse_text('vrrp_instance VI_1 { state MASTER\\n'
    ...                     'virtual_ipaddress { 192.0.2.1/24 } }')
    >>> [(s.keyword, s.args) for s in config.statements[0].block]
    [('state', ('MASTER',)), ('virtual_ipaddress', ())]

The pieces: :mod:`~vrrpy.keepalived.lexer` (comments, braces, words),
:mod:`~vrrpy.keepalived.expand` (``$NAME``, ``~SEQ``, ``~LST``),
:mod:`~vrrpy.keepalived.include`, :mod:`~vrrpy.keepalived.reader` (the line
loop of ``read_line()``), this module (the tree), and
:mod:`~vrrpy.keepalived.scripts` (how script keywords read their line).
Limits against hostile input are in :mod:`~vrrpy.keepalived.limits`.

Blocks
------
keepalived cuts every line before its first ``{`` or ``}`` outside double
quotes, so braces can sit anywhere: ``vrrp_instance VI_1 {``, ``{`` alone
on the next line, ``virtual_ipaddress { 192.0.2.1/24 }``, ``} }``. A ``{``
opens the block of the statement just before it. ``;`` means nothing:
``a 1; b 2`` is the keyword ``a`` with arguments ``1;``, ``b`` and ``2``.

Surprises, each written down so that the mapper and the docs can cite it
(the ``kind`` of the :class:`~vrrpy.keepalived.model.Problem` recorded, if
any, is in brackets):

* **A block keepalived does not expect** is not a block to it. A ``{`` after
  a keyword that takes none (or an unknown keyword) is ignored ("Unexpected
  '{'"), the lines inside are read as if they stood in the enclosing block,
  and the matching ``}`` closes the *enclosing* block early. This parser
  attaches the block to the statement anyway; the mapper, which knows the
  keywords, must report such a statement. A ``{`` that follows no statement
  at all (after another ``{`` or ``}``) has its lines kept in place
  [``unexpected-brace``].
* **Unbalanced braces** are an error here. keepalived reports them and goes
  on with a configuration nobody wrote.
* **Comments** start at ``#`` or ``!`` outside double quotes, anywhere on a
  line, and single quotes do not protect them: ``notify '/bin/x #1'`` ends
  at ``#``. ``\\#`` and ``\\!`` escape them, but only for keepalived's parent
  process: it passes its VRRP and checker processes a copy of the file
  already stripped once, which they strip again, so there the escaped
  character starts a comment. The parser gives what those processes see
  [``escaped-comment``]. In a double-quoted part nothing is a comment and a
  backslash is kept as written; write ``${_HASH}`` or ``${_BANG}`` inside
  double quotes for a literal ``#`` or ``!``.
* **A trailing backslash** continues only a ``$NAME=`` definition; on any
  other line it is just a character. In 2.2.7 a backslash at the end of a
  comment counts too (``$A=x # note \\`` continues). A multi-line
  definition ends at an empty line, and, for the VRRP and checker processes
  (the copy again), at a line holding only blanks or a comment
  [``definition-cut``].
* **Double quotes** group words for every keyword and are removed; a quote
  left open loses the rest of the line [``unterminated-quote``,
  ``unmatched-quote``]. Words touching a quote split there: ``a"b c"`` is
  two words. Quoted braces are plain words here (keepalived would take a
  lone ``"}"`` for a brace).
* **Script keywords** (``notify*``, ``script``, ``misc_path``,
  ``quorum_up`` ...) read their raw line again with shell-like quoting,
  single quotes and backslash escapes: the command and its arguments must
  be *one* quoted word, ``notify "/bin/n.sh a b"``; in ``notify /bin/n.sh a
  b`` keepalived takes ``a`` and ``b`` for the user and group to run it as.
  See :func:`vrrpy.keepalived.scripts.script_command`.
* **Lines longer than 1023 bytes** are cut into pieces by 2.2.7 and ignored
  by 2.4; here they are ignored [``long-line``].
* **``@ID`` / ``@^ID``**: a line starting ``@word`` is kept (without the
  prefix) only when ``word`` is the config id (``keepalived -i``, by default
  the host name up to its first dot); ``@^word`` only when it is not. The
  word must be glued to the ``@`` and followed by text, or the line is
  dropped. A conditional may prefix a definition (``@main $PRIO=200``), and
  a definition may expand to a conditional (``$IF=@main`` then ``$IF
  priority 200``), which keepalived 2.2.7 and older mangle (their issue
  #2148, fixed in 2.2.8; the parser reads it as 2.2.8 does)
  [``conditional-after-substitution``].
* **``$NAME``** is only replaced when followed by a blank, ``,``, ``)`` or
  the end of the line: ``$NET/24`` stays as written, ``${NET}/24`` works.
  Undefined names stay as written. Values are substituted when a line is
  read, so a definition can change between two uses. A multi-line definition
  is only expanded when its reference ends the line. keepalived loops for
  ever on ``$A=${A}``; here it is an error, as is a line growing past 1023
  characters through substitution (keepalived stops substituting there).
  An undefined ``${NAME}`` keeps its braces, which then open a block.
  ``${_RANDOM}`` [``random``] and ``${_ENV NAME}`` (2.4.0 and later)
  [``environment``] make the result depend on the run; 2.2.7 garbles the
  rest of a line after ``${_RANDOM MIN MAX}``. Arguments a built-in refuses
  leave the reference as written [``invalid-definition-use``].
* **``~SEQ`` numbers** are C ``strtol`` numbers: ``010`` is eight. ``~SEQ(V,
  0)`` counts 1, 0. An invalid sequence line is dropped [``invalid-sequence``];
  after an invalid ``~LST`` keepalived miscounts its active sequences (an
  unsigned counter wraps), so it may skip or reorder later ``~SEQ``/``~LST``
  lines, differently in each of its processes.
* **``include``** takes the rest of the line as a glob pattern (spaces and
  quotes included), relative to the directory of the file that holds the
  line, with csh brace lists. It is recognised *after* conditionals and
  substitution; the man page says that does not work, and indeed 2.2.7's
  VRRP and checker processes then read the file twice
  [``include-after-processing``]. A missing file, a directory, a file with
  an execute bit or an unreadable one is skipped with a note
  [``include-missing``, ``include-no-match``, ``include-skipped``]. keepalived
  follows an include loop until it runs out of file descriptors; here a loop
  is an error. The main file is not globbed here (``keepalived -f`` globs
  it), and is refused if it has an execute bit, as keepalived refuses it.
  ``global_defs { include_check ... }`` changes the checks of the includes
  after it, until the end of its file [``invalid-include-check``].
* **Binary or non-text files** are refused; a file that is not UTF-8 is read
  as Latin-1 [``not-utf8``].

A problem is recorded once per file, line, kind and message, however many
times a sequence repeats the line.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from vrrpy.keepalived import limits
from vrrpy.keepalived.expand import default_env
from vrrpy.keepalived.lexer import split_words
from vrrpy.keepalived.model import Config, KeepalivedParseError, Statement
from vrrpy.keepalived.reader import LineReader

__all__ = ["default_config_id", "parse_file", "parse_text"]


def default_config_id() -> str:
    """keepalived's default ``-i``: the node name from ``uname`` up to its first dot."""
    return os.uname().nodename.split(".", 1)[0]


def parse_file(
    path: str | os.PathLike[str],
    *,
    config_id: str | None = None,
    env: Mapping[str, str] | None = None,
    random_seed: int | None = None,
) -> Config:
    """Parse the keepalived configuration in ``path`` and every file it includes.

    ``config_id`` is what ``@ID`` lines and ``${_INSTANCE}`` compare with
    (default :func:`default_config_id`), ``env`` what ``${_ENV NAME}``
    reads (default this process's environment), ``random_seed`` seeds
    ``${_RANDOM}``. Raises :class:`KeepalivedParseError` and nothing else.
    """
    name = os.fspath(path)
    reader = _reader(config_id, env, random_seed)
    reader.open_main(name)
    return _finish(reader)


def parse_text(
    text: str,
    *,
    name: str = "<string>",
    base_dir: str | os.PathLike[str] | None = None,
    config_id: str | None = None,
    env: Mapping[str, str] | None = None,
    random_seed: int | None = None,
) -> Config:
    """Parse keepalived configuration text, as if read from a file called ``name``.

    Includes are looked up from ``base_dir`` (default the current directory),
    which ``${_PWD}`` also gives. The other arguments are those of
    :func:`parse_file`.
    """
    reader = _reader(config_id, env, random_seed)
    directory = os.path.abspath(os.fspath(base_dir) if base_dir is not None else os.getcwd())
    reader.open_text(text, name, directory)
    return _finish(reader)


def _reader(config_id: str | None, env: Mapping[str, str] | None, seed: int | None) -> LineReader:
    return LineReader(
        config_id=default_config_id() if config_id is None else config_id,
        env=default_env() if env is None else env,
        rng=random.Random(seed),
        problems=[],
    )


def _finish(reader: LineReader) -> Config:
    statements = _TreeBuilder(reader).build()
    return Config(
        statements=statements,
        problems=tuple(reader.problems),
        files=tuple(reader.files),
        config_id=reader.config_id,
    )


@dataclass
class _Block:
    """A block being read: the statement that opened it and what it holds so far.

    A ``transparent`` block is one a ``{`` opened with no statement before
    it: its statements go back to the enclosing block when it closes.
    """

    keyword: str
    args: tuple[str, ...]
    file: str
    line: int
    raw: str
    transparent: bool = False
    children: list[Statement] = field(default_factory=list)


class _TreeBuilder:
    """Builds the statement tree from the reader's logical lines (``process_stream()``)."""

    def __init__(self, reader: LineReader) -> None:
        self._reader = reader
        self._stack = [_Block("", (), "", 0, "")]
        self._pending: _Block | None = None
        self._statements = 0

    def build(self) -> tuple[Statement, ...]:
        reader = self._reader
        while (line := reader.next_line()) is not None:
            if line == "{":
                self._open()
            elif line == "}":
                self._flush()
                self._close()
            else:
                self._flush()
                self._statement(line)
        self._flush()
        if len(self._stack) > 1:
            block = self._stack[-1]
            what = f"'{block.keyword}'" if not block.transparent else "'{'"
            missing = len(self._stack) - 1
            raise KeepalivedParseError(
                block.file,
                block.line,
                f"the block of {what} is never closed ({missing} '}}' missing at the end)",
            )
        return tuple(self._stack[0].children)

    def _statement(self, line: str) -> None:
        reader = self._reader
        words, unmatched = split_words(line)
        if unmatched:
            reader.report("unmatched-quote", "unmatched quote: the rest of the line is lost")
        if not words:
            return
        self._statements += 1
        if self._statements > limits.MAX_STATEMENTS:
            reader.fail(f"more than {limits.MAX_STATEMENTS} statements")
        keyword, args = words[0], tuple(words[1:])
        self._pending = _Block(keyword, args, reader.file, reader.line, line)
        if (
            keyword == "include_check"
            and len(self._stack) == 2
            and self._stack[1].keyword == "global_defs"
        ):
            reader.set_include_check(args)

    def _flush(self) -> None:
        """The statement read last gets no block: add it to the current block."""
        pending = self._pending
        if pending is not None:
            self._stack[-1].children.append(
                Statement(
                    pending.keyword, pending.args, None, pending.file, pending.line, pending.raw
                )
            )
            self._pending = None

    def _open(self) -> None:
        reader = self._reader
        if self._pending is not None:
            self._stack.append(self._pending)
            self._pending = None
        else:
            reader.report(
                "unexpected-brace",
                "'{' after no statement: keepalived ignores it, reads what follows in the "
                "enclosing block, and its '}' closes the enclosing block",
            )
            self._stack.append(_Block("", (), reader.file, reader.line, "", transparent=True))
        if len(self._stack) - 1 > limits.MAX_BLOCK_DEPTH:
            reader.fail(f"blocks nest deeper than {limits.MAX_BLOCK_DEPTH}")

    def _close(self) -> None:
        reader = self._reader
        if len(self._stack) == 1:
            reader.fail("'}' closes no block (an extra '}' or a missing '{')")
        block = self._stack.pop()
        parent = self._stack[-1]
        if block.transparent:
            parent.children.extend(block.children)
        else:
            parent.children.append(
                Statement(
                    block.keyword,
                    block.args,
                    tuple(block.children),
                    block.file,
                    block.line,
                    block.raw,
                )
            )
