"""The controls' SQL: stored reports (migration 0024, table `compliance_reports`), and the
read-only queries the checks make of other domains' tables (staff users and their factors, open
cases, list snapshots). A control is an auditor's look at the data as it is stored, so it reads
the tables themselves rather than each domain's view of them; it writes none of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: str
    created_at: int
    outcome: str
    body: str  # the report's JSON (model.Report.to_json)
    created_by: str


def insert_report(uow: UnitOfWork, report: StoredReport) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO compliance_reports (id, created_at, outcome, body, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
        ),
        (report.id, report.created_at, report.outcome, report.body, report.created_by),
    )


def latest_report(uow: UnitOfWork) -> StoredReport | None:
    cur = uow.cursor()
    cur.execute(
        "SELECT id, created_at, outcome, body, created_by FROM compliance_reports "
        "ORDER BY created_at DESC, id DESC LIMIT 1"
    )
    row = cur.fetchone()
    return None if row is None else StoredReport(row[0], int(row[1]), row[2], row[3], row[4])


def staff_without_factor(uow: UnitOfWork) -> tuple[int, list[tuple[str, str, str]]]:
    """How many staff users there are, and (tenant, user id, role) of those with neither a
    confirmed TOTP nor a passkey."""
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT COUNT(*) FROM users WHERE kind = ?"), ("staff",))
    staff = int(cur.fetchone()[0])
    cur.execute(
        sql(
            uow,
            "SELECT u.tenant_id, u.id, u.role FROM users u WHERE u.kind = ? "
            "AND u.totp_confirmed_at IS NULL AND NOT EXISTS "
            "(SELECT 1 FROM webauthn_credentials w WHERE w.user_id = u.id) ORDER BY u.id",
        ),
        ("staff",),
    )
    return staff, [(t, u, r) for t, u, r in cur.fetchall()]


def open_cases_before(
    uow: UnitOfWork, before_us: int
) -> tuple[int, list[tuple[str, str, str, int]]]:
    """How many cases are open, and (tenant, case id, kind, created_at) of those opened before
    `before_us`, oldest first."""
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT COUNT(*) FROM cases WHERE status = ?"), ("open",))
    open_ = int(cur.fetchone()[0])
    cur.execute(
        sql(
            uow,
            "SELECT tenant_id, id, kind, created_at FROM cases WHERE status = ? "
            "AND created_at < ? ORDER BY created_at, id",
        ),
        ("open", before_us),
    )
    return open_, [(t, i, k, int(c)) for t, i, k, c in cur.fetchall()]


# -- list snapshots --------------------------------------------------------------------------

# Where sanctions list snapshots are kept (the screening side's migration): the first of these
# tables that exists, its list's name in the first of LIST_NAME_COLUMNS it has, its load time
# (epoch microseconds) in the first of LIST_TIME_COLUMNS.
LIST_TABLES = ("sanction_lists", "sanctions_lists", "sanction_list_versions", "sanctions_snapshots")
LIST_NAME_COLUMNS = ("list", "list_name", "source", "name", "list_id")
LIST_TIME_COLUMNS = ("loaded_at", "created_at", "published_at", "fetched_at")


@dataclass(frozen=True, slots=True)
class ListSnapshots:
    table: str
    latest: dict[str, int]  # list name -> when its newest snapshot was loaded (µs)


def list_snapshots(engine: Engine) -> ListSnapshots | str:
    """The newest snapshot of each sanctions list, or why there is nothing to read (the
    reason: no such table, or no column that names a list or a time)."""
    inspector = sa.inspect(engine)
    names = set(inspector.get_table_names())
    table = next((t for t in LIST_TABLES if t in names), None)
    if table is None:
        return f"no sanctions list snapshots are kept (none of the tables {', '.join(LIST_TABLES)})"
    columns = {c["name"] for c in inspector.get_columns(table)}
    name_col = next((c for c in LIST_NAME_COLUMNS if c in columns), None)
    time_col = next((c for c in LIST_TIME_COLUMNS if c in columns), None)
    if name_col is None or time_col is None:
        return f"table {table} has no list-name or load-time column this control knows"
    with UnitOfWork(engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(f"SELECT {name_col}, MAX({time_col}) FROM {table} GROUP BY {name_col}")
        rows: Sequence[Any] = cur.fetchall()
    return ListSnapshots(table, {str(n): int(t) for n, t in rows if t is not None})
