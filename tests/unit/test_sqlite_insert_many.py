"""db.query.sqlite_insert_many writes exactly what a plain executemany writes: a column is
written as a literal only where it holds one value (None, or one bool) in every row."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import pytest

from strongroom.db.query import sqlite_insert_many

COLUMNS = ("k", "a", "b", "c")
CANDIDATES = (1, 2, 3)


def stored(rows: Sequence[Sequence[Any]], insert: bool) -> list[tuple[Any, ...]]:
    """The rows as SQLite stored them (with each value's storage class)."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, a TEXT, b BOOLEAN, c BIGINT)")
    cur = conn.cursor()
    if insert:
        sqlite_insert_many(cur, "t", COLUMNS, rows, CANDIDATES)
    else:
        cur.executemany("INSERT INTO t (k, a, b, c) VALUES (?,?,?,?)", rows)
    out = conn.execute(
        "SELECT k, a, typeof(a), b, typeof(b), c, typeof(c) FROM t ORDER BY k"
    ).fetchall()
    conn.close()
    return out


@pytest.mark.parametrize(
    "rows",
    [
        [(1, None, False, None), (2, None, False, None)],  # every candidate constant
        [(1, None, True, 5), (2, "x", True, None)],  # mixed None: bound, not inlined
        [(1, "x", True, 1), (2, "y", False, 2)],  # mixed bools
        [(1, None, False, 7), (2, None, 0, 8), (3, None, False, 9)],  # 0 among False
        [(1, "only", True, None)],  # one row
        [(1, None, None, None), (2, None, None, None)],  # all but the key inlined
    ],
)
def test_the_same_rows_are_stored_as_with_a_plain_executemany(
    rows: list[tuple[Any, ...]],
) -> None:
    assert stored(rows, insert=True) == stored(rows, insert=False)


def test_nothing_is_written_for_no_rows() -> None:
    assert stored([], insert=True) == []
