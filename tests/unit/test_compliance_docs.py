"""docs/compliance/pci-dss.md maps each relevant PCI DSS v4.0.1 requirement to the tests that
show it: every requirement the security issue lists has a row, every row names a test, and
every named test exists (a renamed or deleted test fails here, not silently in the doc)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "compliance" / "pci-dss.md"
# The requirements the mapping must cover: exact ids, or a prefix ending in "." for a family.
REQUIRED = (
    "3.2.1",
    "3.3.",
    "3.4.1",
    "3.5.1.",
    "3.6.",
    "3.7.",
    "7.2.",
    "8.2.8",
    "8.3.",
    "8.4.2",
    "10.2.",
    "10.3.",
)
TEST_REF = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def rows() -> list[tuple[str, str]]:
    """(requirement id, the rest of the row) for each table row whose first cell is an id."""
    out = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and re.fullmatch(r"\d+(\.\d+)+", cells[0]):
            out.append((cells[0], line))
    return out


def test_every_listed_requirement_has_a_row() -> None:
    ids = [rid for rid, _ in rows()]
    for wanted in REQUIRED:
        if wanted.endswith("."):
            assert any(rid.startswith(wanted) for rid in ids), f"no row for {wanted}x"
        else:
            assert wanted in ids, f"no row for {wanted}"


def test_every_row_names_tests_that_exist() -> None:
    found = rows()
    assert found, "the mapping has no rows"
    for rid, line in found:
        refs = TEST_REF.findall(line)
        assert refs, f"requirement {rid} names no test"
        for path, name in refs:
            source = ROOT / path
            assert source.is_file(), f"requirement {rid}: {path} does not exist"
            text = source.read_text(encoding="utf-8")
            assert re.search(rf"^\s*(async )?def {name}\(", text, re.M), (
                f"requirement {rid}: {path} has no test {name}"
            )
