"""docs/interop.md is the table of what this suite checks: keep them equal.

Two tables: keepalived's (``test_keepalived*.py``) before the ucarp heading,
ucarp's (``test_ucarp*.py``) after it; each suite's scenarios must be rows of
its own table.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DOC = HERE.parent / "docs" / "interop.md"
UCARP_HEADING = "\n## CARP with ucarp"
SUITES = {"keepalived": "test_keepalived*.py", "ucarp": "test_ucarp*.py"}


def sections() -> dict[str, str]:
    """The part of the page that holds each suite's table."""
    text = DOC.read_text()
    keepalived, found, ucarp = text.partition(UCARP_HEADING)
    assert found, f"docs/interop.md has no {UCARP_HEADING.strip()!r} heading"
    return {"keepalived": keepalived, "ucarp": ucarp}


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_scenario_is_in_the_table_and_every_row_is_a_scenario(suite: str) -> None:
    tests = {
        name
        for module in sorted(HERE.glob(SUITES[suite]))
        for name in re.findall(r"^def (test_\w+)", module.read_text(), re.M)
    }
    assert tests, f"no {SUITES[suite]} scenarios found"
    rows = set(re.findall(r"^\|[^|]*\| `(test_\w+)`", sections()[suite], re.M))
    assert tests - rows == set(), f"{suite} scenarios missing from docs/interop.md"
    assert rows - tests == set(), f"rows in docs/interop.md's {suite} table with no scenario"
