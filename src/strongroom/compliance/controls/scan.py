"""The card-number scan: every text and binary column of every table of the database (as it is,
tables other domains add later included), read CONTROL_SCAN_BATCH_ROWS rows at a time (a
server-side cursor on PostgreSQL; SQLite's cursor reads as it goes), each value searched for a
card number in clear (model.card_numbers). A finding names the table, the column, the row's
primary key and the number masked; the row's tenant when the row says it (a `tenant_id` column,
or a `ledger_id` whose ledger is a tenant's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.compliance.controls.model import Finding, as_text, card_numbers, masked
from strongroom.core.limits import CONTROL_SCAN_BATCH_ROWS

_TEXT_TYPES: Final = (sa.String, sa.Text, sa.LargeBinary, sa.JSON)
# Alembic's own bookkeeping: a version number, nothing else.
_SKIPPED: Final = frozenset({"alembic_version"})


@dataclass(slots=True)
class ScanResult:
    tables: int = 0
    columns: int = 0
    rows: int = 0
    values: int = 0
    found: int = 0


def _scanned_columns(inspector: Any, table: str) -> list[str]:
    return [c["name"] for c in inspector.get_columns(table) if isinstance(c["type"], _TEXT_TYPES)]


def scan_card_numbers(
    engine: Engine,
    on_finding: Callable[[Finding], None],
    progress: Callable[[str], None] | None = None,
    batch_rows: int = CONTROL_SCAN_BATCH_ROWS,
) -> ScanResult:
    say = progress or (lambda _m: None)
    inspector = sa.inspect(engine)
    result = ScanResult()
    tables = sorted(t for t in inspector.get_table_names() if t not in _SKIPPED)
    with engine.connect() as conn:
        tenants_of_ledgers: dict[str, str] = {}
        if "ledgers" in tables:
            for lid, tid in conn.execute(sa.text("SELECT id, tenant_id FROM ledgers")):
                tenants_of_ledgers[lid] = tid
        for number, table in enumerate(tables, 1):
            columns = _scanned_columns(inspector, table)
            result.tables += 1
            if not columns:
                continue
            every = {c["name"] for c in inspector.get_columns(table)}
            keys = list(inspector.get_pk_constraint(table).get("constrained_columns") or [])
            owner = "tenant_id" if "tenant_id" in every else None
            owner = owner or ("ledger_id" if "ledger_id" in every else None)
            extra = [c for c in [*keys, owner] if c is not None and c not in columns]
            selected = [*columns, *dict.fromkeys(extra)]
            position = {name: i for i, name in enumerate(selected)}
            query = sa.select(*(sa.column(c) for c in selected)).select_from(sa.table(table))
            result.columns += len(columns)
            rows = 0
            stream = conn.execution_options(yield_per=batch_rows).execute(query)
            for part in stream.partitions(batch_rows):
                for row in part:
                    rows += 1
                    for name in columns:
                        text = as_text(row[position[name]])
                        if text is None:
                            continue
                        result.values += 1
                        for digits in card_numbers(text):
                            result.found += 1
                            on_finding(_finding(table, name, row, keys, owner, position, digits,
                                                tenants_of_ledgers, rows))  # fmt: skip
            result.rows += rows
            say(f"card numbers: table {number}/{len(tables)} {table}: {rows} rows, "
                f"{len(columns)} columns, {result.found} found so far")  # fmt: skip
    return result


def _finding(
    table: str,
    column: str,
    row: Any,
    keys: list[str],
    owner: str | None,
    position: dict[str, int],
    digits: str,
    ledgers: dict[str, str],
    ordinal: int,
) -> Finding:
    key = {k: _plain(row[position[k]]) for k in keys} if keys else {"row": ordinal}
    tenant = None
    if owner == "tenant_id":
        tenant = row[position[owner]]
    elif owner == "ledger_id":
        tenant = ledgers.get(row[position[owner]])
    detail = {"table": table, "column": column, "key": key, "number": masked(digits)}
    return Finding(detail, None if tenant is None else str(tenant))


def _plain(value: object) -> object:
    """A key as evidence: never a card number in clear, should the key itself hold one."""
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).hex()
    if isinstance(value, str) and any(True for _ in card_numbers(value)):
        return "(a value holding a card number)"
    return value
