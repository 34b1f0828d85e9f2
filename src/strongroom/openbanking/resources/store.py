"""All of the consents' SQL (migration 0028: `ob_consents`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.consents import ConsentKind, ConsentState, ConsentStatus
from strongroom.openbanking.model import Permission
from strongroom.openbanking.resources.model import Consent

COLS: Final = (
    "id, tenant_id, client_id, kind, status, created_at, status_updated_at, expires_at, "
    "permissions, request, customer_id, account_ids"
)
_MARKS: Final = ",".join("?" * (len(COLS.split(", ")) + 2))
# Statuses the expiry sweep moves on (every other is final).
_OPEN: Final = (ConsentStatus.AWAU.value, ConsentStatus.AUTH.value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def consent_of(row: Sequence[Any]) -> Consent:
    kind = ConsentKind(row[3])
    state = ConsentState(kind, ConsentStatus(row[4]), int(row[5]), int(row[6]))
    return Consent(
        id=row[0],
        tenant_id=row[1],
        client_id=row[2],
        state=state,
        expires_at_us=None if row[7] is None else int(row[7]),
        permissions=tuple(Permission(p) for p in str(row[8] or "").split()),
        request=json.loads(row[9]),
        customer_id=row[10],
        account_ids=tuple(json.loads(row[11])) if row[11] else (),
    )


def request_json(request: Any) -> str:
    """A request's Data as it is stored (canonical JSON)."""
    return _json(request)


def insert(
    uow: UnitOfWork, consent: Consent, idempotency_key: str | None, request_hash: str | None
) -> bool:
    """Insert a new consent; False (nothing written) when the tenant's client used this
    idempotency key already."""
    values = (
        consent.id,
        consent.tenant_id,
        consent.client_id,
        consent.kind.value,
        consent.status.value,
        consent.state.created_at_us,
        consent.state.status_updated_at_us,
        consent.expires_at_us,
        " ".join(p.value for p in consent.permissions) or None,
        request_json(consent.request),
        consent.customer_id,
        _json(list(consent.account_ids)) if consent.account_ids else None,
        idempotency_key,
        request_hash,
    )
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"INSERT INTO ob_consents ({COLS}, idempotency_key, request_hash) VALUES ({_MARKS}) "
            "ON CONFLICT (tenant_id, client_id, idempotency_key) DO NOTHING",
        ),
        values,
    )
    return bool(cur.rowcount)


def get(uow: UnitOfWork, consent_id: str, *, lock: bool = False) -> Consent | None:
    """A consent by id; `lock`: for update on PostgreSQL (SQLite's writer lock serialises)."""
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {COLS} FROM ob_consents WHERE id = ?{suffix}"), (consent_id,))
    row = cur.fetchone()
    return None if row is None else consent_of(row)


def by_idempotency_key(
    uow: UnitOfWork, tenant_id: str, client_id: str, key: str
) -> tuple[Consent, str | None] | None:
    """The consent a client created with this idempotency key, and its request's hash."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {COLS}, request_hash FROM ob_consents "
            "WHERE tenant_id = ? AND client_id = ? AND idempotency_key = ?",
        ),
        (tenant_id, client_id, key),
    )
    row = cur.fetchone()
    return None if row is None else (consent_of(row), row[12])


def update(uow: UnitOfWork, consent: Consent) -> None:
    """Write a consent's status, its time, and the customer and accounts of a decision."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE ob_consents SET status = ?, status_updated_at = ?, customer_id = ?, "
            "account_ids = ? WHERE id = ?",
        ),
        (
            consent.status.value,
            consent.state.status_updated_at_us,
            consent.customer_id,
            _json(list(consent.account_ids)) if consent.account_ids else None,
            consent.id,
        ),
    )


def due(uow: UnitOfWork, now_us: int, limit: int) -> list[str]:
    """Ids of open consents (AWAU, AUTH) whose ExpirationDateTime is at or before `now_us`,
    at most `limit`. One range of the (status, expires_at) index per open status, so that the
    final consents, however many, are never read."""
    cur = uow.cursor()
    found: list[tuple[int, str]] = []
    for status in _OPEN:
        cur.execute(
            sql(
                uow,
                "SELECT expires_at, id FROM ob_consents WHERE status = ? AND expires_at <= ? "
                "ORDER BY expires_at, id LIMIT ?",
            ),
            (status, now_us, limit),
        )
        found.extend((int(r[0]), r[1]) for r in cur.fetchall())
    return [consent_id for _, consent_id in sorted(found)[:limit]]
