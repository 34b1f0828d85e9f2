"""The card-number scan: every text and binary column of every table of the database (as it is,
tables other domains add later included), read CONTROL_SCAN_BATCH_ROWS rows at a time in one
read transaction (a server-side cursor on PostgreSQL; SQLite's cursor reads as it goes), each
value searched for a card number in clear (model.card_numbers). A finding names the table, the
column, the row's primary key and the number masked; the row's tenant when the row says it (a
`tenant_id`, an audit `log_id`, a `ledger_id` whose ledger is a tenant's, an `endpoint_id` whose
webhook endpoint is, an `account_id` whose account is, a tenant's own row). A row that names
none is the deployment's: its finding is not shown to the tenants (model.Report.for_tenant)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.compliance.controls import store
from strongroom.compliance.controls.model import Finding, as_text, card_numbers, masked
from strongroom.core.limits import CONTROL_SCAN_BATCH_ROWS
from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork

# The columns that name a row's tenant, in order: a tenant id, an audit log's id (a tenant's),
# a ledger id (its ledger's tenant), then ids of the tenant's objects (a webhook delivery names
# its endpoint, an entry its account), read once per finding.
_OWNERS: Final = ("tenant_id", "log_id", "ledger_id")
_PARENTS: Final = {
    "endpoint_id": "SELECT tenant_id FROM webhook_endpoints WHERE id = ?",
    "account_id": "SELECT l.tenant_id FROM accounts a JOIN ledgers l ON l.id = a.ledger_id "
    "WHERE a.id = ?",
}
_TENANTS_TABLE: Final = "tenants"  # a tenant's own row: its `id` is its tenant
# Alembic's own bookkeeping: a version number, nothing else. And the sanctions lists' entries
# as their publishers issue them (public data: names, passport and registration numbers, which
# Luhn passes one time in ten), shared by every tenant and holding no cardholder's data.
_SKIPPED: Final = frozenset({"alembic_version", "sanctions_entries", "sanctions_changes"})


@dataclass(slots=True)
class ScanResult:
    tables: int = 0
    columns: int = 0
    rows: int = 0
    values: int = 0
    found: int = 0


def scan_card_numbers(
    engine: Engine,
    on_finding: Callable[[Finding], None],
    progress: Callable[[str], None] | None = None,
    batch_rows: int = CONTROL_SCAN_BATCH_ROWS,
) -> ScanResult:
    say = progress or (lambda _m: None)
    result = ScanResult()
    with UnitOfWork(engine, write=False) as uow:
        tables = [t for t in store.table_names(uow) if t not in _SKIPPED]
        ledgers: dict[str, str] = {}
        if "ledgers" in tables:
            cur = uow.cursor()
            cur.execute("SELECT id, tenant_id FROM ledgers")
            ledgers = {str(lid): str(tid) for lid, tid in cur.fetchall()}
        owners_of = _Owners(uow, ledgers, set(tables))
        for number, table in enumerate(tables, 1):
            shape = store.table_shape(uow, table)
            result.tables += 1
            if not shape.text_columns:
                say(f"card numbers: table {number}/{len(tables)} {table}: no text column")
                continue
            # The key of a finding: the primary key, and a row id beside it (a transfer's `id`
            # beside its `seq`).
            keys = [*shape.primary_key, *(["id"] if "id" in shape.columns else [])]
            keys = list(dict.fromkeys(keys))
            owners = [c for c in (*_OWNERS, *_PARENTS) if c in shape.columns]
            if table == _TENANTS_TABLE and "id" in shape.columns:
                owners = ["id"]
            extra = [c for c in [*keys, *owners] if c not in shape.text_columns]
            selected = [*shape.text_columns, *dict.fromkeys(extra)]
            position = {name: i for i, name in enumerate(selected)}
            result.columns += len(shape.text_columns)
            rows = 0
            for batch in store.stream_rows(uow, table, selected, batch_rows):
                for row in batch:
                    rows += 1
                    for name in shape.text_columns:
                        text = as_text(row[position[name]])
                        if text is None:
                            continue
                        result.values += 1
                        for digits in card_numbers(text):
                            result.found += 1
                            where = _Where(table, name, keys, owners, position, rows)
                            on_finding(where.finding(row, digits, owners_of))
            result.rows += rows
            say(
                f"card numbers: table {number}/{len(tables)} {table}: {rows} rows, "
                f"{len(shape.text_columns)} columns, {result.found} found so far"
            )
    return result


@dataclass(frozen=True, slots=True)
class _Where:
    table: str
    column: str
    keys: Sequence[str]
    owners: Sequence[str]
    position: dict[str, int]
    ordinal: int

    def finding(self, row: Sequence[Any], digits: str, owners_of: _Owners) -> Finding:
        at = self.position
        key = {k: _plain(row[at[k]]) for k in self.keys} if self.keys else {"row": self.ordinal}
        tenant = None
        for owner in self.owners:
            tenant = owners_of.tenant(owner, row[at[owner]])
            if tenant:
                break
        detail = {"table": self.table, "column": self.column, "key": key, "number": masked(digits)}
        return Finding(detail, None if tenant is None else str(tenant))


class _Owners:
    """The tenant a row's owner column names, read once per value."""

    def __init__(self, uow: UnitOfWork, ledgers: dict[str, str], tables: set[str]) -> None:
        self._uow = uow
        self._ledgers = ledgers
        self._tables = tables
        self._found: dict[tuple[str, str], str | None] = {}

    def tenant(self, column: str, value: object) -> str | None:
        if value is None or isinstance(value, bytes | bytearray | memoryview):
            return None
        if column == "ledger_id":
            return self._ledgers.get(str(value))
        query = _PARENTS.get(column)
        if query is None:
            return str(value)
        parent = query.split(" FROM ", 1)[1].split()[0]
        if parent not in self._tables:
            return None
        key = (column, str(value))
        if key not in self._found:
            cur = self._uow.cursor()
            cur.execute(sql(self._uow, query), (str(value),))
            got = cur.fetchone()
            self._found[key] = None if got is None else str(got[0])
        return self._found[key]


def _plain(value: object) -> object:
    """A key as evidence: never a card number in clear, should the key itself hold one."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).hex()
    if isinstance(value, str) and any(True for _ in card_numbers(value)):
        return "(a value holding a card number)"
    return value
