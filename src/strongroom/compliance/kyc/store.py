"""KYC's SQL: customers' states and their usage buckets (db/tables.py, migration 0022), and
when the limits were first on (migration 0032)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strongroom.core.money import from_stored_int, to_stored_int
from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork

STATE_COLS = "tenant_id, customer_id, status, tier, updated_by, updated_at"
# (tenant_id, customer_id, status, tier, updated_by, updated_at)
StateRow = tuple[str, str, str, str, str, int]


def lock_states(uow: UnitOfWork, customer_ids: Sequence[str]) -> list[StateRow]:
    """The KYC rows of these customers (of any tenant), locked on PostgreSQL in customer order
    so that concurrent batches never deadlock on them (SQLite's writer lock serialises)."""
    lock = "" if uow.sqlite else "FOR UPDATE"
    rows = fetch_in(
        uow,
        f"SELECT {STATE_COLS} FROM kyc_customers",
        "customer_id",
        sorted(set(customer_ids)),
        f"ORDER BY customer_id, tenant_id {lock}",
    )
    return [(r[0], r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


def get_state(uow: UnitOfWork, tenant_id: str, customer_id: str) -> StateRow | None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {STATE_COLS} FROM kyc_customers WHERE tenant_id = ? AND customer_id = ?"),
        (tenant_id, customer_id),
    )
    row = cur.fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4], int(row[5]))


def put_state(uow: UnitOfWork, row: StateRow) -> None:
    uow.cursor().execute(
        sql(
            uow,
            f"INSERT INTO kyc_customers ({STATE_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant_id, customer_id) DO UPDATE SET status = excluded.status, "
            "tier = excluded.tier, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at",
        ),
        row,
    )


# (tenant_id, customer_id, asset) -> {hour: amount}
Usage = dict[tuple[str, str, str], dict[int, int]]


def load_usage(uow: UnitOfWork, customer_ids: Sequence[str]) -> Usage:
    """Every usage bucket of these customers (at most one a payer's asset and hour of the last
    30 days, and those older until prune_usage drops them), summed by the caller in Python:
    SQLite's SUM would overflow, or meet blobs, past 64 bits."""
    out: Usage = {}
    for tenant, customer, asset, hour, amount in fetch_in(
        uow,
        "SELECT tenant_id, customer_id, asset, hour, amount FROM kyc_usage",
        "customer_id",
        sorted(set(customer_ids)),
    ):
        out.setdefault((tenant, customer, asset), {})[int(hour)] = _amount(amount)
    return out


def put_usage(uow: UnitOfWork, rows: Sequence[tuple[str, str, str, int, int]]) -> None:
    """(tenant, customer, asset, hour, new total) rows, written as they are: the caller holds
    the customers' locks and computed each total from the row it read."""
    uow.cursor().executemany(
        sql(
            uow,
            "INSERT INTO kyc_usage (tenant_id, customer_id, asset, hour, amount) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, customer_id, asset, hour) "
            "DO UPDATE SET amount = excluded.amount",
        ),
        [(t, c, a, h, to_stored_int(n)) for t, c, a, h, n in rows],
    )


def prune_usage(uow: UnitOfWork, customer_ids: Sequence[str], before_hour: int) -> None:
    """Drop these customers' buckets older than every window."""
    for part in _chunks(sorted(set(customer_ids))):
        marks = ",".join("?" * len(part))
        uow.cursor().execute(
            sql(uow, f"DELETE FROM kyc_usage WHERE customer_id IN ({marks}) AND hour < ?"),
            (*part, before_hour),
        )


def limits_since(uow: UnitOfWork) -> int | None:
    """When the deployment first ran with the KYC limits on (None: not recorded yet)."""
    cur = uow.cursor()
    cur.execute("SELECT since FROM kyc_limits_since WHERE id = 1")
    row = cur.fetchone()
    return None if row is None else int(row[0])


def mark_limits_since(uow: UnitOfWork, at_us: int) -> None:
    """Record `at_us` as when the limits were first on, unless a time is recorded already."""
    uow.cursor().execute(
        sql(uow, "INSERT INTO kyc_limits_since (id, since) VALUES (1, ?) ON CONFLICT DO NOTHING"),
        (at_us,),
    )


def _chunks(items: Sequence[str], size: int = 500) -> list[Sequence[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _amount(value: Any) -> int:
    return value if type(value) is int else from_stored_int(value)
