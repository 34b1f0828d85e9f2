"""SQL of the card vault (migration 0014, table `cards`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork

# What may be shown of a card, in the order `Card` takes it.
SHOWN_COLS: Final = (
    "id, tenant_id, fingerprint, bin, last4, digits, brand, exp_month, exp_year, created_at, "
    "created_by"
)
INSERT_COLS: Final = SHOWN_COLS + ", sealed_number, sealed_holder_name"
CardRow = tuple[Any, ...]


def insert_cards(uow: UnitOfWork, rows: Sequence[CardRow]) -> None:
    """Rows in INSERT_COLS order, one statement. A token that exists already is kept: it is a
    retried request's, which sealed the same card under the key kept for it."""
    if not rows:
        return
    marks = ",".join("?" * len(INSERT_COLS.split(", ")))
    uow.cursor().executemany(
        sql(
            uow,
            f"INSERT INTO cards ({INSERT_COLS}) VALUES ({marks}) ON CONFLICT (id) DO NOTHING",
        ),
        rows,
    )


def existing(uow: UnitOfWork, card_ids: Sequence[str]) -> set[str]:
    """Which of these tokens exist already (a retried request's, committed by its first
    attempt)."""
    return {r[0] for r in fetch_in(uow, "SELECT id FROM cards", "id", card_ids)}


def get_card(uow: UnitOfWork, tenant_id: str, card_id: str) -> CardRow | None:
    """The shown columns of the tenant's card, or None (another tenant's is None too)."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {SHOWN_COLS} FROM cards WHERE id = ? AND tenant_id = ?"),
        (card_id, tenant_id),
    )
    row: CardRow | None = cur.fetchone()
    return row


def get_sealed(uow: UnitOfWork, tenant_id: str, card_id: str) -> CardRow | None:
    """(shown columns..., sealed_number, sealed_holder_name) of the tenant's card, or None."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {INSERT_COLS} FROM cards WHERE id = ? AND tenant_id = ?"),
        (card_id, tenant_id),
    )
    row: CardRow | None = cur.fetchone()
    return row


def list_cards(
    uow: UnitOfWork,
    tenant_id: str,
    *,
    fingerprint: str | None,
    starting_after: str | None,
    limit: int,
) -> list[CardRow]:
    """Newest first (ids grow with time), after the cursor; up to `limit` rows."""
    where = ["tenant_id = ?"]
    params: list[Any] = [tenant_id]
    if fingerprint is not None:
        where.append("fingerprint = ?")
        params.append(fingerprint)
    if starting_after is not None:
        where.append("id < ?")
        params.append(starting_after)
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {SHOWN_COLS} FROM cards WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        ),
        (*params, limit),
    )
    return list(cur.fetchall())


def delete_card(uow: UnitOfWork, tenant_id: str, card_id: str) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "DELETE FROM cards WHERE id = ? AND tenant_id = ?"), (card_id, tenant_id))
    return int(cur.rowcount)
