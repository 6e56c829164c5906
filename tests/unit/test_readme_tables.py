# SPDX-License-Identifier: Apache-2.0
"""README.md's variable table says what the roles' argument specs say; its cost table what the filters say.

The tables are generated (readme_tables.py); these tests fail when a role
gains, loses or changes a variable, or a default price changes, and the
README was not regenerated. Each variable is its own case, so a failure names
it. The fix is always the same: ``python tests/unit/readme_tables.py``.
"""

from __future__ import annotations

import re

import pytest
import readme_tables as tables

FIX = "run `python tests/unit/readme_tables.py` to regenerate README.md's tables"
TEXT = tables.README.read_text(encoding="utf-8")
SPECS = tables.role_specs()
# Every user-facing variable once: a shared one (no role prefix) is read by several roles.
VARIABLES = sorted({name for options in SPECS.values() for name in options})


def rows(block_text: str | None) -> dict[str, str]:
    """Table rows keyed by the variable in their first cell."""
    found = {}
    for line in (block_text or "").splitlines():
        match = re.match(r"^\| `([A-Za-z0-9_]+)` \|", line)
        if match:
            found[match.group(1)] = line
    return found


README_ROWS = rows(tables.block_of(TEXT, "variables"))
WANTED_ROWS = rows(tables.variables_table(SPECS))


def test_specs_are_found():
    """Guard against a path change that would turn every check below into zero cases."""
    assert {"vm_upgrade", "coordinator", "launcher"} <= set(SPECS)
    assert len(WANTED_ROWS) == len(VARIABLES) > 40


@pytest.mark.parametrize("block", tables.BLOCKS)
def test_readme_has_the_block(block):
    assert tables.block_of(TEXT, block) is not None, (
        f"README.md lacks the markers {tables.begin(block)!r} and {tables.end(block)!r}"
    )


@pytest.mark.parametrize("name", VARIABLES)
def test_variable_row_matches_its_spec(name):
    assert name in README_ROWS, f"README.md's variable table has no row for {name}; {FIX}"
    assert README_ROWS[name] == WANTED_ROWS[name], (
        f"README.md's row for {name} differs from the argument spec:\n"
        f"  README: {README_ROWS[name]}\n  spec:   {WANTED_ROWS[name]}\n{FIX}"
    )


def test_no_row_without_a_spec():
    extra = sorted(set(README_ROWS) - set(VARIABLES))
    assert not extra, f"README.md's variable table lists {extra}, which no role's argument spec has; {FIX}"


def test_whole_variables_block_is_generated():
    """Headings, order and the shared table too, not only the rows."""
    assert tables.block_of(TEXT, "variables") == tables.variables_table(SPECS), FIX


def test_cost_table_is_the_filters_answer():
    assert tables.block_of(TEXT, "cost") == tables.cost_table(), (
        f"README.md's cost table differs from what the sizing and cost filters give with their defaults; {FIX}"
    )


def test_a_changed_spec_is_noticed():
    """The comparison can fail: a spec with one default changed renders a different row."""
    changed = {role: {name: dict(option) for name, option in options.items()} for role, options in SPECS.items()}
    changed["launcher"]["launcher_session"]["default"] = "another-session"
    assert rows(tables.variables_table(changed))["launcher_session"] != WANTED_ROWS["launcher_session"]
