"""docs/interop.md is the table of what this suite checks: keep them equal."""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).parent
DOC = HERE.parent / "docs" / "interop.md"


def test_every_scenario_is_in_the_table_and_every_row_is_a_scenario() -> None:
    tests = {
        name
        for module in sorted(HERE.glob("test_keepalived*.py"))
        for name in re.findall(r"^def (test_\w+)", module.read_text(), re.M)
    }
    rows = set(re.findall(r"^\|[^|]*\| `(test_\w+)`", DOC.read_text(), re.M))
    assert tests - rows == set(), "scenarios missing from docs/interop.md"
    assert rows - tests == set(), "rows in docs/interop.md with no scenario"
