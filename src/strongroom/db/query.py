"""Statement helpers shared by every store: one SQL text for both databases, IN lists."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Engine

from strongroom.core.limits import SQL_PARAMS_PER_STATEMENT_MAX
from strongroom.db.uow import UnitOfWork


def chunks(
    items: Sequence[Any], size: int = SQL_PARAMS_PER_STATEMENT_MAX
) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def sql(uow: UnitOfWork, text: str) -> str:
    """Statements are written with `?`; psycopg wants `%s`."""
    return text if uow.sqlite else text.replace("?", "%s")


def fetch_in(
    uow: UnitOfWork, select: str, column: str, keys: Sequence[Any], suffix: str = ""
) -> list[tuple[Any, ...]]:
    """SELECT ... WHERE column IN keys: chunked IN lists on SQLite, one array on PostgreSQL."""
    if not keys:
        return []
    cur = uow.cursor()
    rows: list[tuple[Any, ...]] = []
    if uow.sqlite:
        for part in chunks(keys):
            marks = ",".join("?" * len(part))
            rows.extend(cur.execute(f"{select} WHERE {column} IN ({marks}) {suffix}", part))
    else:
        cur.execute(f"{select} WHERE {column} = ANY(%s) {suffix}", (list(keys),))
        rows.extend(cur.fetchall())
    return rows


def sqlite_insert_many(
    cur: Any,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constant_candidates: Sequence[int],
    literals: Sequence[tuple[str, int]] = (),
) -> None:
    """SQLite: INSERT `rows` with one executemany, writing each column of `constant_candidates`
    that is None in every row as a literal NULL, and one that is the same bool in every row as
    a literal 0 or 1, instead of binding it row by row.

    Why: Python's sqlite3 binds int, float and str directly, but None and bool go through its
    adapter look-up, which raises and clears an AttributeError for each value (3.11: ~0.4 us a
    value, measured). A bulk transfer row has six such columns (legs, target_id, pending,
    expires_at, metadata, effective_at), all the same across the batch. The stored values are
    the same either way: a bool binds as the integer 0 or 1. `literals`: (column, integer)
    pairs the same in every row (a batch's actor_ref), written into the statement too.
    """
    if not rows:
        return
    count = len(rows)
    literal: dict[int, str] = {}
    for index in constant_candidates:
        first = rows[0][index]
        if first is None:
            if list(map(itemgetter(index), rows)).count(None) == count:
                literal[index] = "NULL"
        elif type(first) is bool:
            values = list(map(itemgetter(index), rows))
            # count() compares with ==: an int 0 or 1 among the bools stores the same value.
            if values.count(first) == count:
                literal[index] = "1" if first else "0"
    marks = ",".join(literal.get(i, "?") for i in range(len(columns)))
    names = ", ".join(columns)
    for column, value in literals:
        assert type(value) is int, "only an integer is written as a literal"
        names += f", {column}"
        marks += f",{value}"
    statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"
    if not literal:
        cur.executemany(statement, rows)
        return
    kept = [i for i in range(len(columns)) if i not in literal]
    assert kept, "a row binds at least one value"
    if len(kept) == 1:
        cur.executemany(statement, [(r[kept[0]],) for r in rows])
    else:
        cur.executemany(statement, map(itemgetter(*kept), rows))


def stream_rows(engine: Engine, query: str, page: int) -> Iterator[tuple[Any, ...]]:
    """The rows of one parameterless `query`, `page` at a time, in one read-only transaction
    (the verifiers' full-table reads: memory bounded by the page, not the table)."""
    with UnitOfWork(engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(query)
        while batch := cur.fetchmany(page):
            yield from batch


_UNDECODABLE = re.compile(r"Could not decode to UTF-8 column '([^']{0,64})'")


def undecodable_problem(exc: BaseException) -> str | None:
    """A verifier's problem naming the column SQLite could not read as text, when `exc` is
    that error (a hand edit wrote bytes that are not UTF-8 into a text column: every read of
    the row fails); None for any other error. The text itself is never repeated (it may be
    anything)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return None
    found = _UNDECODABLE.search(str(exc))
    if found is None:
        return None
    return (
        f"column {found.group(1)} holds bytes that are not UTF-8 text (written by hand: no "
        "write stores them); the check stopped there"
    )
