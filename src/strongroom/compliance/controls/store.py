"""The controls' SQL: stored reports (migration 0024, table `compliance_reports`), and the
read-only queries the checks make of other domains' tables (staff users and their factors, open
cases, list snapshots). A control is an auditor's look at the data as it is stored, so it reads
the tables themselves rather than each domain's view of them; it writes none of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from strongroom.db.query import fetch_in, sql
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


def staff_without_factor(uow: UnitOfWork) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """How many staff users each tenant has, and (tenant, user id, role) of those with neither
    a confirmed TOTP nor a passkey."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT tenant_id, COUNT(*) FROM users WHERE kind = ? GROUP BY tenant_id"),
        ("staff",),
    )
    staff = {str(t): int(n) for t, n in cur.fetchall()}
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
) -> tuple[dict[str, int], list[tuple[str, str, str, int]]]:
    """How many cases each tenant has open, and (tenant, case id, kind, created_at) of those
    opened before `before_us`, oldest first."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT tenant_id, COUNT(*) FROM cases WHERE status = ? GROUP BY tenant_id"),
        ("open",),
    )
    open_ = {str(t): int(n) for t, n in cur.fetchall()}
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

# Loaded sanctions list versions (migration 0021, compliance/sanctions/store.py): the newest
# load of each list.
LIST_VERSIONS_TABLE = "sanctions_list_versions"


@dataclass(frozen=True, slots=True)
class ListSnapshots:
    table: str
    latest: dict[str, int]  # list (source) -> when its newest version was loaded (µs)


def list_snapshots(engine: Engine) -> ListSnapshots | str:
    """The newest loaded version of each sanctions list (none loaded: an empty mapping; a
    string would say why there is nothing to read, for a deployment without screening)."""
    with UnitOfWork(engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(f"SELECT source, MAX(loaded_at) FROM {LIST_VERSIONS_TABLE} GROUP BY source")
        rows: Sequence[Any] = cur.fetchall()
    return ListSnapshots(LIST_VERSIONS_TABLE, {str(n): int(t) for n, t in rows if t is not None})


# -- the catalogue ---------------------------------------------------------------------------
# Read with the unit of work's own connection (SQLAlchemy's inspector would open another, which
# on SQLite begins a write transaction).

_PG_TEXT_TYPES = frozenset({"character varying", "text", "character", "bytea", "json", "jsonb"})
_SQLITE_TEXT_MARKS = ("CHAR", "TEXT", "CLOB", "BLOB", "JSON")


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_names(uow: UnitOfWork) -> list[str]:
    cur = uow.cursor()
    if uow.sqlite:
        cur.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    else:
        cur.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    return sorted(str(r[0]) for r in cur.fetchall())


@dataclass(frozen=True, slots=True)
class TableShape:
    columns: list[str]  # every column
    text_columns: list[str]  # those that may hold text (text, character, binary, JSON)
    primary_key: list[str]


def table_shape(uow: UnitOfWork, table: str) -> TableShape:
    cur = uow.cursor()
    if uow.sqlite:
        cur.execute(f"PRAGMA table_info({quoted(table)})")
        rows = cur.fetchall()
        columns = [str(r[1]) for r in rows]
        text = [
            str(r[1])
            for r in rows
            if not r[2] or any(mark in str(r[2]).upper() for mark in _SQLITE_TEXT_MARKS)
        ]
        key = [str(r[1]) for r in sorted((r for r in rows if r[5]), key=lambda r: r[5])]
        return TableShape(columns, text, key)
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    rows = cur.fetchall()
    columns = [str(r[0]) for r in rows]
    text = [str(r[0]) for r in rows if str(r[1]) in _PG_TEXT_TYPES]
    cur.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)",
        (quoted(table),),
    )
    return TableShape(columns, text, [str(r[0]) for r in cur.fetchall()])


def stream_rows(
    uow: UnitOfWork, table: str, columns: Sequence[str], batch_rows: int
) -> Iterator[Sequence[Sequence[Any]]]:
    """Every row of `table` (those columns), `batch_rows` at a time: a server-side cursor on
    PostgreSQL, SQLite's cursor (which reads as it goes) otherwise."""
    select = f"SELECT {', '.join(quoted(c) for c in columns)} FROM {quoted(table)}"
    if uow.sqlite:
        cur = uow.cursor()
        cur.execute(select)
    else:
        cur = uow.conn.cursor(name=f"compliance_scan_{abs(hash(table))}")
        cur.itersize = batch_rows
        cur.execute(select)
    try:
        while True:
            rows = cur.fetchmany(batch_rows)
            if not rows:
                return
            yield rows
    finally:
        cur.close()


# -- the KYC usage counters against the ledger (kyc_usage.py) ---------------------------------


def kyc_usage_span(uow: UnitOfWork, since_hour: int) -> tuple[int | None, int]:
    """The earliest hour of any stored usage bucket (None: none is stored), and how many
    buckets start at or after `since_hour`."""
    cur = uow.cursor()
    cur.execute("SELECT MIN(hour) FROM kyc_usage")
    first = cur.fetchone()[0]
    cur.execute(sql(uow, "SELECT COUNT(*) FROM kyc_usage WHERE hour >= ?"), (since_hour,))
    return (None if first is None else int(first)), int(cur.fetchone()[0])


def kyc_limits_since(uow: UnitOfWork) -> int | None:
    """When the deployment first ran with the KYC limits on (None: not recorded)."""
    cur = uow.cursor()
    cur.execute("SELECT since FROM kyc_limits_since WHERE id = 1")
    row = cur.fetchone()
    return None if row is None else int(row[0])


def kyc_usage_rows(
    uow: UnitOfWork, since_hour: int, until_hour: int, batch_rows: int
) -> Iterator[tuple[str, str, str, int, Any]]:
    """(tenant, customer, asset, hour, amount as stored) of the buckets of the hours
    [since_hour, until_hour], in that order, read `batch_rows` at a time."""
    query = (
        "SELECT tenant_id, customer_id, asset, hour, amount FROM kyc_usage "
        "WHERE hour >= ? AND hour <= ? ORDER BY tenant_id, customer_id, asset, hour"
    )
    for rows in _stream(uow, query, (since_hour, until_hour), batch_rows, "kyc_usage"):
        for tenant, customer, asset, hour, amount in rows:
            yield str(tenant), str(customer), str(asset), int(hour), amount


@dataclass(frozen=True, slots=True)
class Payment:
    """A transfer that may have taken money out of customers (action `transfer`, pending or
    not), with its single debit account's ledger, asset and owner when it has one (else
    `legs`, the JSON of its legs)."""

    ledger_id: str
    tenant_id: str
    amount: Any  # as stored (ledger.model: from_stored_int)
    legs: str | None
    created_at: int
    debit_ledger_id: str | None
    debit_asset: str | None
    debit_owner: str | None


def payments_newest_first(uow: UnitOfWork, action: int, batch_rows: int) -> Iterator[Payment]:
    """The ledger's transfers of `action`, newest first by sequence (the caller stops once they
    are older than it needs: no index on the creation time), with their ledger's tenant and
    their debit account's ledger, asset and owner."""
    query = (
        "SELECT t.ledger_id, l.tenant_id, t.amount, t.legs, t.created_at, a.ledger_id, "
        "a.asset, a.customer_id FROM transfers t JOIN ledgers l ON l.id = t.ledger_id "
        "LEFT JOIN accounts a ON a.id = t.debit_account_id WHERE t.action = ? "
        "ORDER BY t.seq DESC"
    )
    for rows in _stream(uow, query, (action,), batch_rows, "kyc_payments"):
        for r in rows:
            yield Payment(str(r[0]), str(r[1]), r[2], r[3], int(r[4]), r[5], r[6], r[7])


def account_owners(
    uow: UnitOfWork, account_ids: Sequence[str]
) -> dict[str, tuple[str, str, str | None]]:
    """account id -> (its ledger, its asset, the customer who owns it or None)."""
    rows = fetch_in(
        uow, "SELECT id, ledger_id, asset, customer_id FROM accounts", "id", sorted(account_ids)
    )
    return {str(r[0]): (str(r[1]), str(r[2]), None if r[3] is None else str(r[3])) for r in rows}


def _stream(
    uow: UnitOfWork, query: str, params: Sequence[Any], batch_rows: int, name: str
) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows of `query`, `batch_rows` at a time: a server-side cursor on PostgreSQL (closed
    when the caller stops early), SQLite's cursor otherwise."""
    if uow.sqlite:
        cur = uow.cursor()
    else:
        cur = uow.conn.cursor(name=f"compliance_{name}")
        cur.itersize = batch_rows
    try:
        cur.execute(sql(uow, query), params)
        while rows := cur.fetchmany(batch_rows):
            yield rows
    finally:
        cur.close()
