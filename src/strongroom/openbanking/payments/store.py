"""All of the payments' SQL (migration 0031: `ob_payments`, `ob_signing_keys`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork

_COLS: Final = "id, tenant_id, client_id, consent_id, created_at, refusal"


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """A stored payment: its id is its ledger transfer's; `refusal` is the stable code of a
    payment refused before any transfer was written (then there is none)."""

    id: str
    tenant_id: str
    client_id: str
    consent_id: str
    created_at_us: int
    refusal: str | None = None


def _row(row: Sequence[Any]) -> PaymentRow:
    return PaymentRow(row[0], row[1], row[2], row[3], int(row[4]), row[5])


def insert(uow: UnitOfWork, payment: PaymentRow) -> None:
    """A new payment. Its consent's unique index refuses a second payment of one consent (an
    IntegrityError that rolls the transaction back: its callers consume the consent, locked
    and authorised, in the same transaction, so it is never reached unless that breaks)."""
    uow.cursor().execute(
        sql(uow, f"INSERT INTO ob_payments ({_COLS}) VALUES (?, ?, ?, ?, ?, ?)"),
        (
            payment.id,
            payment.tenant_id,
            payment.client_id,
            payment.consent_id,
            payment.created_at_us,
            payment.refusal,
        ),
    )


def get(uow: UnitOfWork, payment_id: str) -> PaymentRow | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {_COLS} FROM ob_payments WHERE id = ?"), (payment_id,))
    row = cur.fetchone()
    return None if row is None else _row(row)


def of_consent(uow: UnitOfWork, consent_id: str) -> PaymentRow | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {_COLS} FROM ob_payments WHERE consent_id = ?"), (consent_id,))
    row = cur.fetchone()
    return None if row is None else _row(row)


# -- signing keys ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRow:
    kid: str
    public_jwk: str  # JSON
    private_jwk: str  # sealed
    created_at_us: int
    retired_at_us: int | None


def keys(uow: UnitOfWork) -> list[KeyRow]:
    """Every signing key, oldest first (the active ones: retired_at NULL)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT kid, public_jwk, private_jwk, created_at, retired_at FROM ob_signing_keys "
            "ORDER BY created_at, kid",
        )
    )
    return [
        KeyRow(r[0], r[1], r[2], int(r[3]), None if r[4] is None else int(r[4]))
        for r in cur.fetchall()
    ]


def insert_key(uow: UnitOfWork, key: KeyRow) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO ob_signing_keys (kid, public_jwk, private_jwk, created_at, retired_at) "
            "VALUES (?, ?, ?, ?, ?)",
        ),
        (key.kid, key.public_jwk, key.private_jwk, key.created_at_us, key.retired_at_us),
    )


def delete_key(uow: UnitOfWork, kid: str) -> None:
    uow.cursor().execute(sql(uow, "DELETE FROM ob_signing_keys WHERE kid = ?"), (kid,))
