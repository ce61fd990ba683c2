"""keepalived.conf parsed as keepalived parses it (first half of ``vrrpctl import-keepalived``).

:func:`parse_file` and :func:`parse_text` give a :class:`Config`: a tree of
:class:`Statement` (keyword, arguments, optional block, file and line) and
the :class:`Problem` list of what keepalived reads in a surprising way. The
only exception is :class:`KeepalivedParseError`. The rules, and every
surprise of keepalived's grammar, are written down in
:mod:`vrrpy.keepalived.parser`; script keywords are read with
:func:`script_command`.
"""

from __future__ import annotations

from vrrpy.keepalived.model import Config, KeepalivedParseError, Problem, Statement
from vrrpy.keepalived.parser import default_config_id, parse_file, parse_text
from vrrpy.keepalived.scripts import (
    COMMAND_ONLY_KEYWORDS,
    SCRIPT_KEYWORDS,
    ScriptCommand,
    quoted_escaped_words,
    script_command,
)

__all__ = [
    "COMMAND_ONLY_KEYWORDS",
    "SCRIPT_KEYWORDS",
    "Config",
    "KeepalivedParseError",
    "Problem",
    "ScriptCommand",
    "Statement",
    "default_config_id",
    "parse_file",
    "parse_text",
    "quoted_escaped_words",
    "script_command",
]
