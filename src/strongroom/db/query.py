"""Statement helpers shared by every store: one SQL text for both databases, IN lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

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
