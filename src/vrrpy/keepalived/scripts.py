"""How keepalived's script keywords read their line: command, arguments, user and group.

Every keyword handler gets the words of :func:`~vrrpy.keepalived.lexer.split_words`,
except the script keywords: their handlers take the raw line and split it
again with :func:`~vrrpy.keepalived.lexer.split_quoted_escaped` (single
quotes, backslash escapes), and then split the *second word alone* once
more to get the command and its arguments (``set_script_params_array()``).
So the whole command line must be one word, usually double-quoted::

    notify_master "/etc/keepalived/notify.sh MASTER 'VI 1'"   # argv: notify.sh, MASTER, VI 1
    notify_master /etc/keepalived/notify.sh MASTER             # runs notify.sh as user MASTER

After the command, the notify keywords (``notify_script_init()``) read a user and
a group to run it as; ``script`` (in ``vrrp_script``) and ``misc_path``
(in ``MISC_CHECK``) have a ``user`` keyword instead and drop any word after
the command without a word of warning.

Escapes: in keepalived up to 2.3.1 the first split already decodes
backslash escapes, so they are decoded twice (``\\"`` in the file becomes
``"`` in the word and then a quote); from 2.3.2 the first split keeps them
and only the second decodes them. :func:`script_command` follows 2.2.7 by
default.
"""

from __future__ import annotations

from dataclasses import dataclass

from vrrpy.keepalived.lexer import QuoteError, split_quoted_escaped
from vrrpy.keepalived.model import KeepalivedParseError, Statement

SCRIPT_KEYWORDS = frozenset(
    {
        "notify",
        "notify_master",
        "notify_backup",
        "notify_fault",
        "notify_stop",
        "notify_deleted",
        "notify_master_rx_lower_pri",
        "notify_up",
        "notify_down",
        "quorum_up",
        "quorum_down",
        "startup_script",
        "shutdown_script",
        "notify_fifo_script",
        "vrrp_notify_fifo_script",
        "lvs_notify_fifo_script",
        "script",
        "misc_path",
    }
)
"""Keywords whose handler re-reads the raw line as a command (the
``install_keyword_quoted`` keywords of keepalived 2.4; the same handlers in
2.2.7). Which block they belong to is the mapper's business: ``script`` is
only a command inside ``vrrp_script``."""

COMMAND_ONLY_KEYWORDS = frozenset({"script", "misc_path"})
"""Script keywords that take no user and group after the command."""


@dataclass(frozen=True)
class ScriptCommand:
    """A script keyword's line as keepalived reads it.

    ``argv`` is what keepalived executes (``argv[0]`` the program, looked
    up as keepalived does, which is the mapper's business); ``user`` and
    ``group`` who runs it when the line names them; ``ignored`` the words
    keepalived reads and then drops.
    """

    argv: tuple[str, ...]
    user: str | None
    group: str | None
    ignored: tuple[str, ...]


def quoted_escaped_words(statement: Statement, *, escapes: bool = True) -> tuple[str, ...]:
    """The statement's raw line split as script keywords (and ``regex``) split it.

    Raises :class:`KeepalivedParseError` where keepalived refuses the line
    (a quote never closed, a backslash at the end).
    """
    try:
        return tuple(split_quoted_escaped(statement.raw, escapes=escapes))
    except QuoteError as error:
        raise KeepalivedParseError(
            statement.file, statement.line, f"{statement.keyword}: {error}"
        ) from None


def script_command(statement: Statement, *, escapes_twice: bool = True) -> ScriptCommand:
    """What keepalived runs for a script keyword's statement.

    ``escapes_twice`` is keepalived 2.2.7's behaviour (up to 2.3.1); pass
    ``False`` for 2.3.2 and later. Raises :class:`KeepalivedParseError`
    where keepalived would refuse the script ("Unable to parse script").
    """
    words = quoted_escaped_words(statement, escapes=escapes_twice)
    if len(words) < 2 or not words[1]:
        raise KeepalivedParseError(
            statement.file, statement.line, f"{statement.keyword}: no command given"
        )
    try:
        argv = tuple(split_quoted_escaped(words[1]))
    except QuoteError as error:
        raise KeepalivedParseError(
            statement.file, statement.line, f"{statement.keyword}: command {words[1]!r}: {error}"
        ) from None
    if not argv:
        raise KeepalivedParseError(
            statement.file, statement.line, f"{statement.keyword}: no command given"
        )
    if statement.keyword in COMMAND_ONLY_KEYWORDS:
        return ScriptCommand(argv, None, None, words[2:])
    user = words[2] if len(words) > 2 else None
    group = words[3] if len(words) > 3 else None
    return ScriptCommand(argv, user, group, words[4:])
