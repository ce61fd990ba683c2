"""The keepalived.conf parser: keepalived's grammar, hostile input, and keepalived itself as oracle.

Four parts:

1. **The grammar**, rule by rule, each test written from keepalived 2.2.7's
   ``lib/parser.c`` and keepalived.conf(5): blocks and braces, comments and
   their escapes, quotes, script keywords, ``include``, ``@ID``, ``$NAME``,
   ``~SEQ`` / ``~LST``.
2. **Hostile input**: unbalanced braces, include loops, definitions that
   never stop expanding, binary files, a 50 MB file, deep nesting; each a
   :class:`KeepalivedParseError`, in bounded time; then hypothesis feeds
   random bytes and mutated fixtures, and nothing else may escape.
3. **The fixtures** in ``tests/fixtures/keepalived`` (the shapes people
   deploy), parsed and checked statement by statement.
4. **keepalived 2.2.7 as the oracle** (Debian's package; these tests fail
   rather than skip under ``CI=true``): ``keepalived -t`` reports every
   statement it does not know as "Unknown keyword 'X'" with its line, so a
   file of made-up keywords shows exactly how keepalived split and expanded
   it, which the parser must match; the fixtures pass ``keepalived -t`` in a
   network namespace that has their interfaces; and the script command
   lines keepalived prints in its ``-d`` dump match :func:`script_command`.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import require_root, require_tool
from vrrpy.keepalived import (
    SCRIPT_KEYWORDS,
    Config,
    KeepalivedParseError,
    Statement,
    default_config_id,
    limits,
    parse_file,
    parse_text,
    script_command,
)
from vrrpy.keepalived.include import expand_braces
from vrrpy.keepalived.lexer import decomment, split_braces, split_quoted_escaped, split_words

FIXTURES = Path(__file__).parent / "fixtures" / "keepalived"
FIXTURE_FILES = sorted(
    [path for path in FIXTURES.glob("*.conf")] + [FIXTURES / "include" / "keepalived.conf"]
)


def parse(text: str, **options: Any) -> Config:
    """Parse dedented text with config id ``node1`` unless told otherwise."""
    options.setdefault("config_id", "node1")
    return parse_text(textwrap.dedent(text), **options)


Shape = list[tuple[Any, ...]]


def shape(statements: tuple[Statement, ...] | None) -> Shape | None:
    """Keywords, arguments and blocks, without positions: what a test compares."""
    if statements is None:
        return None
    result: Shape = []
    for statement in statements:
        if statement.block is None:
            result.append((statement.keyword, *statement.args))
        else:
            result.append((statement.keyword, *statement.args, shape(statement.block)))
    return result


def flat(config: Config) -> list[str]:
    """Every statement as one line of words, depth first."""
    return [" ".join((s.keyword, *s.args)) for s in config.walk()]


def kinds(config: Config) -> list[str]:
    return [problem.kind for problem in config.problems]


# -- 1. the grammar -------------------------------------------------------------


def test_readme_example_braces_on_keyword_lines() -> None:
    config = parse_text("vrrp_instance VI_1 { state MASTER\nvirtual_ipaddress { 192.0.2.1/24 } }")
    assert shape(config.statements) == [
        ("vrrp_instance", "VI_1", [("state", "MASTER"), ("virtual_ipaddress", [("192.0.2.1/24",)])])
    ]


def test_braces_anywhere_split_as_keepalived_splits_lines() -> None:
    config = parse(
        """\
        vrrp_instance VI_1
        {
            state BACKUP
            virtual_ipaddress { 192.0.2.1/24 dev eth0
                192.0.2.2/24 }
            track_interface {
              eth0 weight -10 } }
        virtual_server 192.0.2.1 80 { real_server 198.51.100.1 80 { TCP_CHECK { retry 3 }}}
        empty { }
        """
    )
    assert shape(config.statements) == [
        (
            "vrrp_instance",
            "VI_1",
            [
                ("state", "BACKUP"),
                ("virtual_ipaddress", [("192.0.2.1/24", "dev", "eth0"), ("192.0.2.2/24",)]),
                ("track_interface", [("eth0", "weight", "-10")]),
            ],
        ),
        (
            "virtual_server",
            "192.0.2.1",
            "80",
            [("real_server", "198.51.100.1", "80", [("TCP_CHECK", [("retry", "3")])])],
        ),
        ("empty", []),
    ]


def test_statements_keep_file_and_line() -> None:
    config = parse("a {\n  b 1\n\n  c { d } e\n}\n", name="x.conf")
    found = {(s.keyword, s.file, s.line) for s in config.walk()}
    assert found == {("a", "x.conf", 1), ("b", "x.conf", 2), ("c", "x.conf", 4),
                     ("d", "x.conf", 4), ("e", "x.conf", 4)}  # fmt: skip


def test_semicolon_separates_nothing_and_a_trailing_backslash_is_a_character() -> None:
    config = parse("a 1; b 2\nc x \\\nd\n")
    assert shape(config.statements) == [("a", "1;", "b", "2"), ("c", "x\\"), ("d",)]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("a b # comment", "a b"),
        ("a b ! comment", "a b"),
        ("  # only a comment", ""),
        ('a "b # not a comment" c', 'a "b # not a comment" c'),
        ("a 'b # single quotes do not protect' c", "a 'b"),
        ("a b\\#c", "a b#c"),
        ("a b\\!c", "a b!c"),
        ('a "b\\#c"', 'a "b\\#c"'),
        ('a "b\\"c # d', 'a "b\\"c # d'),
        ("a b \\", "a b\\"),
        ("a b # comment \\", "a b\\"),
        ("a b # comment \\\\", "a b"),
        ("\t a\t", "a"),
    ],
)
def test_decomment_is_keepalived_decomment(line: str, expected: str) -> None:
    assert decomment(line)[0] == expected


def test_an_open_double_quote_is_reported_by_decomment() -> None:
    assert decomment('a "b')[1] is True
    assert decomment('a "b"')[1] is False


def test_escaped_comment_characters_follow_the_vrrp_process() -> None:
    """keepalived's parent sees ``b#c``; its VRRP and checker processes re-read a
    stripped copy and see a comment (checked against keepalived below)."""
    config = parse('a b\\#c d\ne "f\\#g"\n')
    assert shape(config.statements) == [("a", "b"), ("e", "f\\#g")]
    assert kinds(config) == ["escaped-comment"]


@pytest.mark.parametrize(
    ("line", "head", "residue"),
    [
        ("a {", "a", "{"),
        ("{ b c", "{", "b c"),
        ("{", "{", None),
        ("} }", "}", "}"),
        ('a "x{y}" {', 'a "x{y}"', "{"),
        ("a 'x{y' }", "a 'x", "{y' }"),
        ('a "x{ unterminated', 'a "x{ unterminated', None),
    ],
)
def test_split_braces(line: str, head: str, residue: str | None) -> None:
    assert split_braces(line) == (head, residue)


@pytest.mark.parametrize(
    ("line", "words", "unmatched"),
    [
        ('a "b c" d', ["a", "b c", "d"], False),
        ('a"b c"d', ["a", "b c", "d"], False),
        ('"" x', ["", "x"], False),
        ("a 'b c'", ["a", "'b", "c'"], False),
        ('a "b c', ["a"], True),
        ("a\x0bb\x0cc\rd", ["a", "b", "c", "d"], False),
        ("a\u00a0b", ["a\u00a0b"], False),
    ],
)
def test_split_words(line: str, words: list[str], unmatched: bool) -> None:
    assert split_words(line) == (words, unmatched)


def test_unmatched_quote_loses_the_rest_of_the_line() -> None:
    config = parse('a b "c d\n')
    assert shape(config.statements) == [("a", "b")]
    assert "unterminated-quote" in kinds(config) and "unmatched-quote" in kinds(config)


def test_crlf_and_tabs() -> None:
    config = parse_text("a\t1\r\nb {\r\n\tc 2\r\n}\r\n")
    assert shape(config.statements) == [("a", "1"), ("b", [("c", "2")])]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("a \"b c\" 'd e' f", ["a", "b c", "d e", "f"]),
        ('a"b c"d', ["ab cd"]),
        ("\\x41\\x4142 \\101 \\cA \\t", ["AB", "A", "\x01", "\t"]),
        ('\'a\\tb\' "c\\"d"', ["a\tb", 'c"d']),
        ("a\\ b", ["a b"]),
        ("a\\0b c", ["a", "c"]),
    ],
)
def test_split_quoted_escaped(line: str, words: list[str]) -> None:
    assert split_quoted_escaped(line) == words


def test_script_command_reads_one_quoted_command_then_user_and_group() -> None:
    config = parse(
        """\
        vrrp_script chk {
            script "/usr/bin/pgrep -x 'my daemon'" ignored words
        }
        vrrp_instance VI_1 {
            notify_master "/bin/n.sh \\"a b\\" c 'd e'"
            notify_backup /bin/b.sh keepalived_script nogroup extra
            notify_fault '/bin/f.sh x\\ty'
            notify_stop "/bin/n.sh \\\\\\"q r\\\\\\""
            notify /bin/n.sh
        }
        """
    )
    commands = {s.keyword: script_command(s) for s in config.walk() if s.keyword in SCRIPT_KEYWORDS}
    assert commands["script"].argv == ("/usr/bin/pgrep", "-x", "my daemon")
    assert commands["script"].ignored == ("ignored", "words")
    assert commands["script"].user is None
    assert commands["notify_master"].argv == ("/bin/n.sh", "a b", "c", "d e")
    backup = commands["notify_backup"]
    assert (backup.argv, backup.user, backup.group, backup.ignored) == (
        ("/bin/b.sh",),
        "keepalived_script",
        "nogroup",
        ("extra",),
    )
    assert commands["notify_fault"].argv == ("/bin/f.sh", "x", "y")
    assert commands["notify_stop"].argv == ("/bin/n.sh", '"q', 'r"')
    assert commands["notify"].argv == ("/bin/n.sh",)


def test_script_command_of_keepalived_2_3_decodes_escapes_once() -> None:
    statement = parse('notify_stop "/bin/n.sh \\"q r\\""\n').statements[0]
    assert script_command(statement).argv == ("/bin/n.sh", "q r")
    assert script_command(statement, escapes_twice=False).argv == ("/bin/n.sh", '"q', 'r"')


@pytest.mark.parametrize("line", ["notify", 'notify ""', "notify 'a", "notify a\\"])
def test_script_command_refuses_what_keepalived_refuses(line: str) -> None:
    statement = parse(line + "\n", name="n.conf").statements[0]
    with pytest.raises(KeepalivedParseError) as raised:
        script_command(statement)
    assert raised.value.file == "n.conf" and raised.value.line == 1


def test_script_keyword_raw_line_stops_at_the_brace() -> None:
    statement = parse('b { notify "/bin/x.sh a" }\n').statements[0].block[0]  # type: ignore[index]
    assert statement.raw == 'notify "/bin/x.sh a"'
    assert script_command(statement).argv == ("/bin/x.sh", "a")


# conditionals


def test_conditional_lines() -> None:
    text = """\
        @node1 a
        @node2 b
        @^node1 c
        @^node2 d
        @node1
        @ node1 e
        @node1\tf
        g { @node1 h
        } @node2 i
        """
    assert flat(parse(text, config_id="node1")) == ["a", "d", "f", "g", "h"]
    assert flat(parse(text, config_id="node2")) == ["b", "c", "g", "i"]


def test_config_id_defaults_to_the_short_host_name() -> None:
    assert default_config_id() == socket.gethostname().split(".")[0]
    config = parse_text(f"@{default_config_id()} a\n@^{default_config_id()} b\n")
    assert flat(config) == ["a"]
    assert config.config_id == default_config_id()


def test_conditional_reached_through_a_substitution() -> None:
    """keepalived 2.2.7 mangles this (its issue #2148); 2.2.8 and the man page keep it."""
    config = parse("$IF_MAIN=@node1\n$IF_MAIN priority 240\n$IF_OTHER=@node2\n$IF_OTHER x\n")
    assert flat(config) == ["priority 240"]
    assert kinds(config) == ["conditional-after-substitution"] * 2


# definitions


def test_definitions_and_where_they_are_replaced() -> None:
    config = parse(
        """\
        $A=aa
        $B=b$A
        k1 $A ${A}x $A/24 $A,$A) $UNDEF
        $B
        $A=new
        k2 ${A}
        $E=
        k3${E}
        $ A=1
        $A =2
        k4 ${UNDEF}
        """
    )
    assert flat(config) == [
        "k1 aa aax $A/24 aa,aa) $UNDEF",
        "baa",
        "k2 new",
        "k3",
        "$ A=1",
        "new =2",
        "k4 $",
        "UNDEF",
    ]
    # an undefined ${NAME} stays as written, and its braces are braces
    assert shape(config.statements)[-1] == ("k4", "$", [("UNDEF",)])


def test_definitions_are_bound_when_used_not_when_defined() -> None:
    """The man page's example."""
    config = parse(
        """\
        $ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}
        $ADDRESS_BASE_SUB=0
        ${ADDRESS_BASE}.100/32
        $ADDRESS_BASE_SUB=10
        ${ADDRESS_BASE}.100/32
        """
    )
    assert flat(config) == ["10.2.0.100/32", "10.2.10.100/32"]


def test_conditional_definitions() -> None:
    text = "@node1 $PRIORITY=240\n@node2 $PRIORITY=200\nvrrp_instance VI_0 { priority $PRIORITY }\n"
    assert flat(parse(text, config_id="node1"))[1] == "priority 240"
    assert flat(parse(text, config_id="node2"))[1] == "priority 200"


def test_multiline_definitions_nest() -> None:
    """The man page's nested example, shortened."""
    config = parse(
        """\
        $RS= \\
        real_server 192.0.2.${RS_NUM} 80 { \\
            weight 1 \\
            @node1 inhibit_on_failure \\
        }
        $VS= \\
        virtual_server 198.51.100.${VS_NUM} 80 { \\
            $RS_NUM=1 \\
            $RS \\
            $RS_NUM=2 \\
            $RS \\
        }
        $VS_NUM=4
        $VS
        $VS_NUM=5
        ${VS}
        """
    )
    real_servers = [("weight", "1"), ("inhibit_on_failure",)]
    assert shape(config.statements) == [
        (
            "virtual_server",
            f"198.51.100.{vs}",
            "80",
            [("real_server", f"192.0.2.{rs}", "80", real_servers) for rs in (1, 2)],
        )
        for vs in (4, 5)
    ]
    assert {s.line for s in config.walk()} == {14, 16}


def test_multiline_definition_only_expands_at_the_end_of_a_line() -> None:
    config = parse('$M=a \\\nb\n$M x\nk "${M}" y\n$M\n')
    assert flat(config) == ["$M x", "k ${M} y", "a", "b"]


def test_empty_line_comment_line_and_blank_line_end_a_multiline_definition() -> None:
    config = parse("$M=a1 \\\na2 \\\n\na3\n$M\n")
    assert flat(config) == ["a3", "a1", "a2"]
    config = parse("$M=a1 \\\n# note\na2 \\\n  \na3\n$M\n")
    assert flat(config) == ["a2\\", "a3", "a1"]
    assert kinds(config) == ["definition-cut"]


def test_a_multiline_definition_with_an_empty_first_line_and_one_more_is_one_line() -> None:
    assert flat(parse("$A=\\\nfoo\nk $A x\n")) == ["k foo x"]


def test_a_hash_brought_in_by_a_value_starts_a_comment_unless_quoted() -> None:
    config = parse('$H=${_HASH}\nk1 a $H b\nk2 "a $H b"\nk3 "${_BANG}"\n')
    assert flat(config) == ["k1 a", "k2 a # b", "k3 !"]


def test_builtin_definitions(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.conf").write_text("a ${_PWD} ${_INSTANCE}\ninclude sub/x.conf\n")
    (tmp_path / "sub" / "x.conf").write_text("b ${_PWD}\n")
    config = parse_file(tmp_path / "main.conf", config_id="lb7")
    assert flat(config) == [f"a {tmp_path} lb7", f"b {tmp_path / 'sub'}"]
    config = parse("c ${_PWD}\n", base_dir=tmp_path)
    assert flat(config) == [f"c {tmp_path}"]


def test_random_and_environment_builtins() -> None:
    config = parse("a ${_RANDOM 5 9} ${_RANDOM 7 7} ${_RANDOM}\n", random_seed=1)
    first, second, third = config.statements[0].args
    assert 5 <= int(first) <= 9 and second == "7" and 0 <= int(third) <= 32767
    assert set(kinds(config)) == {"random"}
    assert parse("a ${_RANDOM 1 9}\n", random_seed=1) == parse("a ${_RANDOM 1 9}\n", random_seed=1)
    config = parse('b ${_ENV HOME} ${_ENV NOPE}x "${_RANDOM a}"\n', env={"HOME": "/h"})
    assert flat(config) == ["b /h x ${_RANDOM a}"]
    assert kinds(config) == ["environment", "environment", "invalid-definition-use"]


def test_a_definition_can_replace_a_builtin() -> None:
    assert flat(parse("$_HASH=h\na ${_HASH}\n")) == ["a h"]


# sequences


def test_seq_forms() -> None:
    config = parse(
        """\
        ~SEQ(I, 0, 3) a${I}
        ~SEQ(J, 3) b${J}
        ~SEQ(K, 5, 3) c${K}
        ~SEQ(L, 0, 2, 4) d${L}
        ~SEQx(H, 0x9, 0x3, 0x10) e${H}
        ~SEQ(Z, 0) f${Z}
        ~SEQ(N, -2) g${N}
        ~SEQ(O, 010) h${O}
        $MAX=2
        ~SEQ(P, 1, $MAX) i${P}
        """
    )
    assert flat(config) == [
        *("a0", "a1", "a2", "a3", "b1", "b2", "b3", "c5", "c4", "c3", "d0", "d2", "d4"),
        *("e9", "ec", "ef", "f1", "f0", "g-1", "g-2"),
        *(f"h{n}" for n in range(1, 9)),
        "i1",
        "i2",
    ]


def test_sequences_nest_rightmost_fastest() -> None:
    config = parse("~SEQ(A,1,2) ~LST(B, x, y) k${A}${B}\n")
    assert flat(config) == ["k1x", "k1y", "k2x", "k2y"]


def test_lst_forms() -> None:
    config = parse("~LST(A, x, y) a_${A}\n~LST({A,B}, {1,2},{3,4},{5}) b_${A}_${B}\n")
    assert flat(config) == ["a_x", "a_y", "b_1_2", "b_3_4", "b_5_"]


def test_sequence_over_a_multiline_definition() -> None:
    """The man page's pattern: one templated instance per value."""
    config = parse(
        "$VI=\\\nvrrp_instance VI_${I} {\\\n  priority ${I}0\\\n}\n~SEQ(I, 1, 3) $VI\nend\n"
    )
    assert shape(config.statements) == [
        *(("vrrp_instance", f"VI_{i}", [("priority", f"{i}0")]) for i in (1, 2, 3)),
        ("end",),
    ]
    assert all(s.line == 5 for s in config.walk() if s.keyword != "end")


@pytest.mark.parametrize(
    "line",
    ["~SEQ(A,1,-1,5) x", "~SEQ(A) x", "~SEQ A,1) x", "~SEQ(,1) x", "~SEQx(A,-1) x",
     "~LST({A,B}, {1,2,3}) x", "~LST(A) x"],
)  # fmt: skip
def test_invalid_sequences_are_dropped(line: str) -> None:
    config = parse(line + "\nk\n")
    assert flat(config) == ["k"]
    assert kinds(config) == ["invalid-sequence"]


def test_other_tilde_lines_are_statements() -> None:
    assert flat(parse("~FOO a\n")) == ["~FOO a"]


# include


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "main.conf"


def test_include_glob_relative_to_the_including_file(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "main.conf": "a\ninclude conf.d/*.conf\nb\n",
            "conf.d/20-y.conf": "y\ninclude sub/*.conf\n",
            "conf.d/10-x.conf": "x {\n",
            "conf.d/30-z.conf": "} z\n",
            "conf.d/README": "not included\n",
            "conf.d/.hidden.conf": "not included\n",
            "conf.d/sub/s.conf": "s\n",
        },
    )
    config = parse_file(main)
    assert shape(config.statements) == [("a",), ("x", [("y",), ("s",)]), ("z",), ("b",)]
    assert config.files == (
        str(main),
        str(tmp_path / "conf.d/10-x.conf"),
        str(tmp_path / "conf.d/20-y.conf"),
        str(tmp_path / "conf.d/sub/s.conf"),
        str(tmp_path / "conf.d/30-z.conf"),
    )
    y = next(s for s in config.walk() if s.keyword == "y")
    assert (y.file, y.line) == (str(tmp_path / "conf.d/20-y.conf"), 1)
    assert config.problems == ()


def test_include_brace_lists_keep_their_order(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "main.conf": "include inc/{z,a{2,1},m*}.conf\n",
            **{f"inc/{name}.conf": f"{name}\n" for name in ("z", "a1", "a2", "m2", "m1")},
        },
    )
    assert flat(parse_file(main)) == ["z", "a2", "a1", "m1", "m2"]
    assert expand_braces("a{b,c{d,e}}f{g}") == ["abfg", "acdfg", "acefg"]
    assert expand_braces("a{b,c") == ["a{b,c"]


def test_include_wildcards_are_glibcs(tmp_path: Path) -> None:
    """Relative to the including file's directory, whatever its name (keepalived
    changes into it); in an absolute pattern every ``[`` or ``*`` is a wildcard."""
    root = tmp_path / "odd [dir]*"
    write(tmp_path, {"abs/x.conf": "x\n"})
    main = write(
        root,
        {
            "main.conf": f"include d/[ab]?.conf\ninclude {tmp_path}/abs/*.conf\n"
            f"include {root}/d/*.conf\n",
            **{f"d/{name}.conf": f"{name}\n" for name in ("b2", "a1", "c3", "a10")},
        },
    )
    assert flat(parse_file(main)) == ["a1", "b2", "x"]


def test_include_wildcards_may_not_walk_the_file_system(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(limits, "MAX_GLOB_ENTRIES", 50)
    for index in range(60):
        (tmp_path / "many" / str(index)).mkdir(parents=True)
    main = write(tmp_path, {"main.conf": "include many/*/*.conf\n"})
    with pytest.raises(KeepalivedParseError, match="more than 50 directory entries"):
        parse_file(main)


def test_include_notes_missing_and_skipped_files(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "main.conf": "include missing.conf\ninclude nodir/*.conf\ninclude empty/*.conf\n"
            "includew empty/*.conf\ninclude {x,missing}.conf\nincludeb {x,missing}.conf\n"
            "include exec.conf\ninclude dir.conf\ninclude_not_an_include\nk\n",
            "x.conf": "x\n",
            "exec.conf": "e\n",
            "dir.conf/f": "\n",
        },
    )
    (tmp_path / "empty").mkdir()
    (tmp_path / "exec.conf").chmod(0o755)
    config = parse_file(main)
    assert flat(config) == ["x", "include_not_an_include", "k"]
    assert [(p.line, p.kind) for p in config.problems] == [
        (1, "include-missing"),
        (2, "include-missing"),
        (4, "include-no-match"),
        (5, "include-missing"),
        (6, "include-missing"),
        (6, "include-missing"),
        (7, "include-skipped"),
        (8, "include-skipped"),
    ]


def test_include_check_in_global_defs(tmp_path: Path) -> None:
    main = write(
        tmp_path,
        {
            "main.conf": "include {x,missing}.conf\nglobal_defs { include_check brace_match }\n"
            "include {x,missing}.conf\n",
            "x.conf": "x\n",
        },
    )
    assert flat(parse_file(main)) == ["x", "global_defs", "include_check brace_match"]


def test_include_reached_by_a_conditional_is_noted(tmp_path: Path) -> None:
    main = write(tmp_path, {"main.conf": "@node1 include x.conf\n", "x.conf": "x\n"})
    config = parse_file(main, config_id="node1")
    assert flat(config) == ["x"]
    assert kinds(config) == ["include-after-processing"]


# -- 2. hostile input -----------------------------------------------------------


def raises(text: str, match: str, **options: Any) -> KeepalivedParseError:
    started = time.monotonic()
    with pytest.raises(KeepalivedParseError, match=match) as raised:
        parse(text, **options)
    assert time.monotonic() - started < 10
    return raised.value


def test_a_block_never_closed_is_an_error_at_its_opening_line() -> None:
    error = raises("a {\n  b {\n    c\n  }\n", "never closed", name="f.conf")
    assert (error.file, error.line) == ("f.conf", 1)
    assert "'a'" in error.message


def test_an_extra_closing_brace_is_an_error_where_it_stands() -> None:
    error = raises("a {\n}\n}\n", "closes no block")
    assert error.line == 3


def test_a_brace_after_no_statement_keeps_its_lines_in_place() -> None:
    config = parse("a {\n{\nb\n}\n}\n{ c }\n")
    assert shape(config.statements) == [("a", [("b",)]), ("c",)]
    assert kinds(config) == ["unexpected-brace", "unexpected-brace"]


def test_include_loop_is_an_error(tmp_path: Path) -> None:
    main = write(tmp_path, {"main.conf": "include a.conf\n", "a.conf": "include b/*.conf\n",
                            "b/b.conf": "include ../a.conf\n"})  # fmt: skip
    with pytest.raises(KeepalivedParseError, match="include loop") as raised:
        parse_file(main)
    assert raised.value.file == str(tmp_path / "b" / "b.conf")
    self_include = write(tmp_path / "self", {"main.conf": "include main.conf\n"})
    with pytest.raises(KeepalivedParseError, match="include loop"):
        parse_file(self_include)


def test_the_same_file_included_twice_in_a_row_is_no_loop(tmp_path: Path) -> None:
    main = write(tmp_path, {"main.conf": "include a.conf\ninclude a.conf\n", "a.conf": "a\n"})
    assert flat(parse_file(main)) == ["a", "a"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("$A=${A}\n${A}\n", "does not stop expanding"),
        ("$A=$A\n$A\n", "does not stop expanding"),
        ("$A=${A}x\n${A}\n", "longer than 1023"),
        ("$A=${B}${B}\n$B=${A}${A}\n${A}\n", "longer than 1023"),
        ("$A=$${B}\n$B={A}\n${A}\n", "does not settle"),
        ("$A=\\\nx\\\n$A \\\ny\n$A\n", "nest deeper"),
        ("~SEQ(I, 0, 100000000) k${I}\n", "more than"),
        ("~SEQ(I, 0, 100000000) k${I} { a }\n", "more than"),
        ("a {\n" * 40 + "}\n" * 40, "nest deeper than 32"),
        ("~SEQ(I, 1, 100000000) $A=" + "x" * 600 + "\\\n", "longer than 1048576"),
    ],
)
def test_expansions_without_end_are_errors(text: str, match: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(limits, "MAX_LINES", 5000)
    monkeypatch.setattr(limits, "MAX_STATEMENTS", 5000)
    raises(text, match)


def test_exponential_multiline_growth_is_bounded(monkeypatch: Any) -> None:
    lines = ["$L0=x"] + [f"$L{i}=\\\n$L{i - 1} \\\n$L{i - 1}\n" for i in range(1, 60)]
    monkeypatch.setattr(limits, "MAX_STATEMENTS", 10_000)
    raises("\n".join(lines) + "$L59\n", "more than 10000 statements")


def test_the_real_limits_bound_time() -> None:
    """The worst a sequence can do at the real limits: under ten seconds (about two here)."""
    raises("~SEQ(I, 0, 100000000) k${I} { a }\n", "more than")


def test_a_50_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.conf"
    with big.open("wb") as stream:
        stream.truncate(50 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(KeepalivedParseError, match="larger than"):
        parse_file(big)
    assert time.monotonic() - started < 1
    with pytest.raises(KeepalivedParseError, match="larger than"):
        parse_text("a\n" * (limits.MAX_FILE_BYTES // 2 + 1))


def test_an_included_big_file_is_refused(tmp_path: Path) -> None:
    main = write(tmp_path, {"main.conf": "include big.conf\n"})
    with (tmp_path / "big.conf").open("wb") as stream:
        stream.truncate(limits.MAX_FILE_BYTES + 1)
    with pytest.raises(KeepalivedParseError, match="larger than") as raised:
        parse_file(main)
    assert raised.value.file == str(tmp_path / "big.conf")


def test_binary_files_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.conf"
    garbage.write_bytes(b"global_defs {\n}\n\x7fELF\x02\x01\x01\x00\x00")
    with pytest.raises(KeepalivedParseError, match="not a text file") as raised:
        parse_file(garbage)
    assert raised.value.line == 3
    with pytest.raises(KeepalivedParseError, match="not a text file"):
        parse_text("a\x00b")


def test_latin1_and_long_lines_are_read_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"# caf\xe9\nrouter_id caf\xe9\n" + b"x" * 2000 + b"\nend\n")
    config = parse_file(path)
    assert flat(config) == ["router_id caf\u00e9", "end"]
    assert kinds(config) == ["not-utf8", "long-line"]


@pytest.mark.parametrize("mode", [0o755, None])
def test_main_file_refused_as_keepalived_refuses_it(tmp_path: Path, mode: int | None) -> None:
    path = tmp_path / "keepalived.conf"
    if mode is not None:
        path.write_text("a\n")
        path.chmod(mode)
    with pytest.raises(KeepalivedParseError):
        parse_file(path)
    with pytest.raises(KeepalivedParseError, match="directory"):
        parse_file(tmp_path)


def test_too_many_statements(monkeypatch: Any) -> None:
    monkeypatch.setattr(limits, "MAX_STATEMENTS", 100)
    raises("a\n" * 101, "more than 100 statements")


SPECIAL = "{}\"'#!\\$@~(),;\n\t x"


def mutate(text: str, data: st.DataObject) -> str:
    """Insert, delete and replace a few characters, mostly keepalived's special ones."""
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(chars)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        char = data.draw(st.sampled_from(SPECIAL) | st.characters())
        if action == "insert" or not chars:
            chars.insert(position, char)
        elif position < len(chars):
            if action == "delete":
                del chars[position]
            else:
                chars[position] = char
    return "".join(chars)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=2000))
def test_fuzz_random_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.conf"
    path.write_bytes(data)
    with contextlib.suppress(KeepalivedParseError):
        parse_file(path, config_id="lb1", random_seed=0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(FIXTURE_FILES), data=st.data())
def test_fuzz_mutated_fixtures(name: Path, data: st.DataObject) -> None:
    text = mutate(name.read_text(), data)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(limits, "MAX_LINES", 20_000)
            config = parse_text(text, base_dir=name.parent, config_id="lb1", env={}, random_seed=0)
    except KeepalivedParseError as error:
        assert error.line >= 0 and error.message
        return
    for statement in config.walk():
        assert statement.keyword or statement.args or statement.raw
        if statement.keyword in SCRIPT_KEYWORDS:
            with contextlib.suppress(KeepalivedParseError):
                script_command(statement)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(SPECIAL + "SEQLST=_AB01x"), max_size=300))
def test_fuzz_special_characters(text: str) -> None:
    with contextlib.suppress(KeepalivedParseError):
        parse_text(text, config_id="x", env={}, random_seed=0)


# -- 3. the fixtures ------------------------------------------------------------


def fixture(name: str, config_id: str = "lb1") -> Config:
    return parse_file(FIXTURES / name, config_id=config_id, env={}, random_seed=0)


def test_pair_with_pass_authentication_and_a_weighted_script() -> None:
    for name, state, priority in [
        ("pair_auth_node1.conf", "MASTER", "150"),
        ("pair_auth_node2.conf", "BACKUP", "100"),
    ]:
        config = fixture(name)
        assert config.problems == ()
        script = next(config.children("vrrp_script"))
        assert script.args == ("chk_nginx",)
        assert script.first("weight").args == ("20",)  # type: ignore[union-attr]
        assert script_command(script.first("script")).argv == (  # type: ignore[arg-type]
            "/usr/bin/pgrep",
            "-x",
            "nginx",
        )
        instance = next(config.children("vrrp_instance"))
        assert instance.first("state").args == (state,)  # type: ignore[union-attr]
        assert instance.first("priority").args == (priority,)  # type: ignore[union-attr]
        authentication = shape(instance.first("authentication").block)  # type: ignore[union-attr]
        assert authentication == [("auth_type", "PASS"), ("auth_pass", "s3cr3tpw")]
        addresses = shape(instance.first("virtual_ipaddress").block)  # type: ignore[union-attr]
        assert addresses == [
            ("192.0.2.100/24", "dev", "eth0", "label", "eth0:vip"),
            ("192.0.2.101/24",),
        ]
        assert shape(instance.first("track_script").block) == [("chk_nginx",)]  # type: ignore[union-attr]
    nopreempt = fixture("pair_auth_node2.conf").statements[2].first("nopreempt")
    assert nopreempt is not None and nopreempt.line == 30


def test_unicast_pair_one_file_for_both_routers() -> None:
    expected = {
        "lb1": ("MASTER", "200", "203.0.113.2", "203.0.113.3"),
        "lb2": ("BACKUP", "100", "203.0.113.3", "203.0.113.2"),
    }
    for config_id, (state, priority, source, peer) in expected.items():
        config = fixture("unicast_pair.conf", config_id)
        assert config.problems == ()
        assert next(config.children("global_defs")).first("router_id").args == (config_id,)  # type: ignore[union-attr]
        instance = next(config.children("vrrp_instance"))
        assert instance.line == 13
        assert instance.first("state").args == (state,)  # type: ignore[union-attr]
        assert instance.first("priority").args == (priority,)  # type: ignore[union-attr]
        assert instance.first("unicast_src_ip").args == (source,)  # type: ignore[union-attr]
        assert shape(instance.first("unicast_peer").block) == [(peer,)]  # type: ignore[union-attr]
        addresses = shape(instance.first("virtual_ipaddress").block)  # type: ignore[union-attr]
        assert addresses == [("203.0.113.10/24", "dev", "eth0")]


def test_sync_group_of_an_outside_and_an_inside_instance() -> None:
    config = fixture("sync_group.conf")
    assert config.problems == ()
    group = next(config.children("vrrp_sync_group"))
    assert shape(group.first("group").block) == [("VI_OUTSIDE",), ("VI_INSIDE",)]  # type: ignore[union-attr]
    assert script_command(group.first("notify_fault")).argv == (  # type: ignore[arg-type]
        "/etc/keepalived/fw-state.sh",
        "FAULT",
    )
    inside = next(s for s in config.children("vrrp_instance") if s.args == ("VI_INSIDE",))
    assert shape(inside.block) == [
        ("state", "BACKUP"),
        ("interface", "eth1"),
        ("virtual_router_id", "20"),
        ("priority", "150"),
        ("advert_int", "1"),
        ("version", "3"),
        ("virtual_ipaddress", [("198.51.100.1/24",)]),
        ("virtual_ipaddress_excluded", [("2001:db8:20::1/64",)]),
        ("track_interface", [("eth0",)]),
    ]


def test_lvs_with_tcp_check_and_http_get() -> None:
    config = fixture("lvs.conf")
    assert config.problems == ()
    http, database = config.children("virtual_server")
    assert http.args == ("192.0.2.200", "80") and database.args == ("192.0.2.200", "5432")
    first, second = http.children("real_server")
    urls = list(first.first("HTTP_GET").children("url"))  # type: ignore[union-attr]
    assert [shape(url.block) for url in urls] == [
        [
            ("path", "/health"),
            ("digest", "9b3a0c85a887a256d6939da88aabd8cd"),
            ("status_code", "200"),
        ],
        [("path", "/"), ("status_code", "200")],
    ]
    assert shape(second.first("HTTP_GET").block) == [  # type: ignore[union-attr]
        ("url", [("path", "/health"), ("status_code", "200")]),
        ("connect_timeout", "3"),
    ]
    assert shape(database.block)[-1] == (  # type: ignore[index]
        "real_server", "198.51.100.22", "5432", [("TCP_CHECK", [("connect_timeout", "2")])]
    )  # fmt: skip
    assert database.line == 54


def test_main_file_including_per_instance_files() -> None:
    config = fixture("include/keepalived.conf")
    assert config.problems == ()
    assert [Path(name).relative_to(FIXTURES / "include").as_posix() for name in config.files] == [
        "keepalived.conf",
        "scripts.conf",
        "conf.d/10-public.conf",
        "conf.d/20-private.conf",
    ]
    instances = list(config.children("vrrp_instance"))
    assert [(s.args[0], Path(s.file).name, s.line) for s in instances] == [
        ("VI_PUBLIC", "10-public.conf", 1),
        ("VI_PRIVATE", "20-private.conf", 1),
    ]


def test_notify_scripts_with_quoted_arguments() -> None:
    config = fixture("notify_scripts.conf")
    assert config.problems == ()
    commands = {s.keyword: script_command(s) for s in config.walk() if s.keyword in SCRIPT_KEYWORDS}
    assert commands["notify_master"].argv == (
        "/usr/local/sbin/vip-state.sh",
        "master",
        "VI 1",
        "198.51.100.33",
    )
    assert commands["notify_fault"].argv[-1] == "198.51.100.33"
    stop = commands["notify_stop"]
    assert (stop.argv, stop.user, stop.group) == (("/usr/local/sbin/vip-stop.sh",), "root", "root")
    assert commands["notify"].argv == ("/usr/local/sbin/vip-any.sh",)
    assert commands["notify_fifo_script"].argv == (
        "/usr/local/sbin/fifo-reader.sh",
        "--log",
        "/var/log/keepalived-fifo.log",
    )


def test_templated_instances() -> None:
    for config_id, priority in [("lb1", "150"), ("lb2", "100")]:
        config = fixture("templated.conf", config_id)
        assert config.problems == ()
        assert shape(config.statements) == [
            (
                "vrrp_instance",
                f"VI_{vlan}",
                [
                    ("state", "BACKUP"),
                    ("interface", "eth0"),
                    ("virtual_router_id", str(vlan)),
                    ("priority", priority),
                    ("advert_int", "1"),
                    ("virtual_ipaddress", [(f"192.0.2.{vlan}/24",)]),
                ],
            )
            for vlan in (10, 20, 30)
        ]


@pytest.mark.system
def test_debian_samples_parse() -> None:
    """Every sample Debian ships with keepalived parses, with at most notes."""
    require_tool("keepalived")
    samples = sorted(Path("/usr/share/doc/keepalived/samples").glob("keepalived.conf.*"))
    assert samples, "keepalived's samples are missing"
    for sample in samples:
        config = parse_file(sample, config_id="node1")
        assert config.statements, sample


# -- 4. keepalived 2.2.7 as the oracle ------------------------------------------

MESSAGE = re.compile(
    r"^\((?:.*: )?Line (\d+)\) (?:Unknown keyword '(.*)'|Unexpected '\{' - ignoring)$"
)

DIFFERENTIAL = {
    "braces": {
        "main.conf": "k1 a {\n k2 b\n}\nk3 { k4 x } k5\nk6 {\n k7 { k8 }\n}\nk9\n{\nk10\n}\n"
    },
    "braces_quoted": {"main.conf": "k1 {k2}\nk3 \"a{b\" {\n}\nk4 'x{y' }\nk5\n"},
    "comments": {
        "main.conf": "k1 a # c\nk2 b ! c\nk3 \"a # b\" c\nk4 'a # b'\n   # only\n! only\n"
        'k5 a\\#b\nk6 "x\\#y"\nk7 a # c \\\nk8\n'
    },
    "quotes": {"main.conf": 'k1 a"b c"d\n"k 2" x\nk3 "" y\n"" k4\nk5 "open\n'},
    "conditionals": {
        "main.conf": "@node1 k1\n@node2 k2\n@^node1 k3\n@^node2 k4\n@node1\n@ node1 k5\n"
        "@node1\tk6\n@node1 @^node2 k7\nk8 { @node1 k9\n} @node2 k10\n"
    },
    "definitions": {
        "main.conf": "$A=aa\n$B=b$A\nk1 $A\nk2${A}\nk_$A\nk3_${A}_x\nk4 $A/24\n${B}\n$A\n$UNDEF\n"
        "$A=new\n${A}\n$E=\n${E}k5\n$ A=1\n$A =2\n${A}\n$A=a b c\n$A\n$_U=u\nk$_U\n"
        "k$A,x\nk$A)x\nk$A(x\n"
    },
    "definitions_late": {
        "main.conf": "$BASE=10.2.${SUB}\n$SUB=0\nk${BASE}.100\n$SUB=10\nk${BASE}.100\n"
    },
    "conditional_definitions": {
        "main.conf": "@node1 $P=240\n@node2 $P=200\nk$P\n$IF_A_LONG_NAME=@node1\n"
        "$IF_A_LONG_NAME kx\n$NIF_A_LONG_NAME=@node2\n$NIF_A_LONG_NAME ky\n"
    },
    "multiline": {
        "main.conf": "$M= \\\nm1 \\\nm2 ${N} \\\nm3\n$N=0\n$M\n$N=1\n${M}\nk_after\n"
        "$C=c1 \\\n# comment\nc2 \\\n   \nc3\n$C\n$X=x1 \\\nx2\n$X x\nk${X}y\n"
    },
    "multiline_nested": {
        "main.conf": "$RS=\\\nrs${R} {\\\n w 1\\\n}\n$VS=\\\nvs${V} {\\\n $R=1\\\n $RS\\\n"
        " $R=2\\\n $RS\\\n}\n$V=0\n$VS\n$V=1\n$VS\n"
    },
    "sequences": {
        "main.conf": "~SEQ(I, 0, 3) s${I}\n~SEQ(J, 3) t${J}\n~SEQ(K, 5, 3) u${K}\n"
        "~SEQ(L, 0, 2, 4) v${L}\n~SEQx(H, 0x9, 0x3, 0x10) h${H}\n~SEQ(Z, 0) z${Z}\n"
        "~SEQ(N, -2) n${N}\n~SEQ(O, 010) o${O}\n~SEQ(A,1,2) ~SEQ(B,1,3) x${A}_${B}\n"
        "$MAX=3\n~SEQ(P, 1, $MAX) p${P}\n~SEQ(A,1,-1,5) bad\n~FOO k1\n"
        "~LST(A, x, y, z) a_${A}\n~LST({A,B}, {1,2},{3,4},{5}) b_${A}_${B}\n"
        "~LST(A, 1, 2) ~LST(B, 3,4) d${A}${B}\n"
        "$VI=\\\nvi${I} {\\\n  p ${I}\\\n}\n~SEQ(I, 1, 3) $VI\n$S=~SEQ(I,1,2) q${I}\n$S\n"
    },
    "invalid_lst_last": {"main.conf": "k1\n~LST({A,B}, {1,2,3}) bad\nk2\n"},
    "builtins": {
        "main.conf": 'k${_INSTANCE}\n"${_HASH}" x\nk${_BANG}y\nkk"${_BANG}"\n${_HASH}k\n'
        "k${_RANDOM 5 5}\n"
    },
    "include_glob": {
        "main.conf": "k0\ninclude sub/*.conf\nk9\n",
        "sub/b.conf": "kb\n",
        "sub/a.conf": "ka {\n",
        "sub/c.conf": "} kc\n",
        "sub/README": "kreadme\n",
    },
    "include_brace_nested": {
        "main.conf": "include inc/{z,a,m}.conf\ninclude d1/x.conf\nkend\n",
        "inc/z.conf": "kz\n",
        "inc/a.conf": "ka\n",
        "inc/m.conf": "km\n",
        "d1/x.conf": "kx\ninclude d2/y.conf\nkx2\n",
        "d1/d2/y.conf": "ky\n",
    },
    "include_variants": {
        "main.conf": "include inc/{z*,a?}.conf\ninclude inc/.h*.conf\ninclude inc/[m]*.conf\n"
        "includeb inc/{z1,missing}.conf\ninclude inc/{z1,missing}.conf\nkend\n",
        **{f"inc/{name}.conf": f"k{name}\n" for name in ("z1", "z2", "a1", "ab", ".hidden", "m")},
    },
    "include_in_block": {
        "main.conf": "kb {\ninclude part.conf\n}\n",
        "part.conf": "kp1\nkp2 { kp3 }\n",
    },
    "residue": {"main.conf": "k1 { $X=5\n k${X} }\nk2 { @node1 ka\n} @node2 kb\n"},
    "line_ends": {"main.conf": "k1 a\r\nk2 {\r\n k3\r\n}\r\n\tk4\ta\t\n\t\tk5\x0bb\n"},
}


def keepalived_messages(main: Path) -> list[tuple[int, str]]:
    """What ``keepalived -t`` says about made-up keywords, as (line, keyword or '{')."""
    done = subprocess.run(
        ["keepalived", "-t", "-P", "-i", "node1", "-f", str(main)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    messages = []
    for line in (done.stdout + done.stderr).splitlines():
        match = MESSAGE.match(line)
        if match:
            keyword = match.group(2)
            messages.append((int(match.group(1)), "{" if keyword is None else keyword))
    return messages


def predicted_messages(statements: tuple[Statement, ...]) -> Iterator[tuple[int | None, str]]:
    """What keepalived prints for a tree of unknown keywords at the top level:
    each keyword, "Unexpected '{'" for a block and "Unknown keyword '}'" at its end."""
    for statement in statements:
        yield statement.line, statement.keyword
        if statement.block is not None:
            yield None, "{"
            yield from predicted_messages(statement.block)
            yield None, "}"


@pytest.mark.system
@pytest.mark.parametrize("case", sorted(DIFFERENTIAL))
def test_keepalived_splits_and_expands_as_the_parser_does(case: str, tmp_path: Path) -> None:
    """keepalived prints its reading of each made-up keyword, from every process
    that parses; the last one is a child reading the stripped copy, which is
    what the parser follows."""
    require_tool("keepalived")
    main = write(tmp_path, DIFFERENTIAL[case])
    predicted = list(predicted_messages(parse_file(main, config_id="node1").statements))
    seen = keepalived_messages(main)
    assert len(seen) >= len(predicted)
    last = seen[len(seen) - len(predicted) :]
    assert [message for _, message in last] == [message for _, message in predicted]
    for (seen_line, _), (line, _) in zip(last, predicted, strict=True):
        assert line is None or seen_line == line


ALLOWED_FIXTURE_MESSAGES = re.compile(
    r"is deprecated - please use|Disabling track script \S+ since not found/accessible"
)


@pytest.mark.system
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
@pytest.mark.parametrize("config_id", ["lb1", "lb2"])
def test_fixtures_pass_keepalived_config_test(path: Path, config_id: str) -> None:
    """``keepalived -t`` in a network namespace of its own that has eth0 and eth1;
    the only messages allowed are deprecation notes and scripts absent from
    this machine."""
    require_root()
    require_tool("keepalived")
    require_tool("unshare")
    script = (
        "ip link add eth0 type veth peer name eth0p && ip link add eth1 type veth peer name eth1p"
        f" && exec keepalived -t -i {config_id} -f {path}"
    )
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", script], capture_output=True, text=True, timeout=60
    )
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    unexpected = [line for line in lines if not ALLOWED_FIXTURE_MESSAGES.search(line)]
    assert unexpected == [], f"keepalived -t exit {done.returncode}: {lines}"
    assert done.returncode == (5 if lines else 0)


SCRIPT_DUMP = re.compile(
    r"^\s*(?:(\w+) state transition script|(Command)) = (.*?)(?:, uid:gid.*)?$"
)


@pytest.mark.system
def test_keepalived_runs_the_script_command_lines_the_parser_reads(tmp_path: Path) -> None:
    """keepalived's ``-d`` dump prints every notify script and tracking script as
    the argv it will run; started in a network namespace of its own, on a veth,
    and stopped by its PID once the dump is out (under ``timeout``, which passes
    the signal on; the namespace goes with the last process in it)."""
    require_root()
    require_tool("keepalived")
    require_tool("unshare")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("n.sh", "b.sh", "f.sh", "chk 1.sh"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(
        textwrap.dedent(
            f"""\
            vrrp_script chk {{
              script "{bin_dir}/n.sh arg1 'arg 2' \\\\x41\\\\x4142 \\\\\\"q" extra
            }}
            vrrp_instance VI_1 {{
              state BACKUP
              interface v0
              virtual_router_id 51
              priority 100
              virtual_ipaddress {{
                192.0.2.100/24
              }}
              notify_master "{bin_dir}/n.sh \\"a b\\" c 'd e'"
              notify_backup {bin_dir}/b.sh root root
              notify_fault '{bin_dir}/f.sh x\\ty'
              notify "{bin_dir}/n.sh"
              notify_stop "{bin_dir}/n.sh \\\\\\"q r\\\\\\""
              track_script {{
                chk
              }}
            }}
            """
        )
    )
    expected = {}
    for statement in parse_file(conf).walk():
        if statement.keyword in SCRIPT_KEYWORDS:
            expected[statement.keyword] = script_command(statement).argv
    names = {"Master": "notify_master", "Backup": "notify_backup", "Fault": "notify_fault",
             "Stop": "notify_stop", "Generic": "notify", "Command": "script"}  # fmt: skip
    pids = [tmp_path / name for name in ("k.pid", "v.pid", "c.pid")]
    script = (
        "ip link add v0 type veth peer name v1 && ip link set v0 up && ip link set v1 up"
        f" && exec timeout 20 keepalived -n -l -d -P -f {conf}"
        f" -p {pids[0]} -r {pids[1]} -c {pids[2]}"
    )
    process = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: dict[str, tuple[str, ...]] = {}
    try:
        assert process.stdout is not None
        # `timeout` ends keepalived (and so this loop) should the dump never come
        for line in process.stdout:
            match = SCRIPT_DUMP.match(line.split(": ", 1)[-1].rstrip("\n"))
            if match:
                which = match.group(1) or match.group(2)
                seen[names[which]] = tuple(re.findall(r"'([^']*)'", match.group(3)))
            if "< Interfaces >" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert seen == expected
    assert expected["script"] == (f"{bin_dir}/n.sh", "arg1", "arg 2", "AB", '"q')
    assert expected["notify_stop"] == (f"{bin_dir}/n.sh", '"q', 'r"')


def test_fixture_files_are_listed() -> None:
    assert {path.name for path in FIXTURE_FILES} >= {
        "pair_auth_node1.conf",
        "unicast_pair.conf",
        "sync_group.conf",
        "lvs.conf",
        "notify_scripts.conf",
        "keepalived.conf",
    }
    assert all(os.access(path, os.R_OK) for path in FIXTURE_FILES)
