"""SQL for tenants, API keys, server secrets and idempotency records."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork


def get_tenant_by_name(uow: UnitOfWork, name: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT id, name, created_at, suspended_at FROM tenants WHERE name = ?"), (name,)
    )
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def insert_tenant(uow: UnitOfWork, tenant_id: str, name: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "INSERT INTO tenants (id, name, created_at) VALUES (?,?,?)"),
        (tenant_id, name, now_us),
    )


def get_tenant(uow: UnitOfWork, tenant_id: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT id, name, created_at, suspended_at FROM tenants WHERE id = ?"),
        (tenant_id,),
    )
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def list_tenants(
    uow: UnitOfWork, starting_after: str | None, limit: int, hidden: str
) -> list[tuple[Any, ...]]:
    """Tenants by id after `starting_after`, `hidden` (the system tenant's name) left out."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT id, name, created_at, suspended_at FROM tenants WHERE id > ? AND name <> ? "
            "ORDER BY id LIMIT ?",
        ),
        (starting_after or "", hidden, limit),
    )
    return list(cur.fetchall())


def set_tenant_suspended(uow: UnitOfWork, tenant_id: str, at_us: int | None) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "UPDATE tenants SET suspended_at = ? WHERE id = ?"), (at_us, tenant_id))
    return int(cur.rowcount)


def insert_api_key(
    uow: UnitOfWork,
    row: tuple[str, str, str, str, str, int, str | None],
    transfer_ceiling: int | None = None,
) -> None:
    """`row`: id, tenant_id, hash, hint, scopes, created_at, role."""
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO api_keys (id, tenant_id, hash, hint, scopes, created_at, role, "
            "transfer_ceiling) VALUES (?,?,?,?,?,?,?,?)",
        ),
        (*row, None if transfer_ceiling is None else str(transfer_ceiling)),
    )


def api_key_transfer_ceiling(uow: UnitOfWork, key_id: str) -> int | None:
    """The live key's transfer ceiling (None: none, or no such live key)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT transfer_ceiling FROM api_keys WHERE id = ? AND revoked_at IS NULL",
        ),
        (key_id,),
    )
    row = cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def get_api_key_by_hash(uow: UnitOfWork, digest: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT k.id, k.tenant_id, k.hint, k.scopes, k.role, k.transfer_ceiling "
            "FROM api_keys k LEFT JOIN tenants t ON t.id = k.tenant_id "
            "WHERE k.hash = ? AND k.revoked_at IS NULL AND t.suspended_at IS NULL",
        ),
        (digest,),
    )
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def api_key_tenant(uow: UnitOfWork, key_id: str) -> str | None:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT tenant_id FROM api_keys WHERE id = ?"), (key_id,))
    row = cur.fetchone()
    return None if row is None else str(row[0])


def revoke_api_key(uow: UnitOfWork, key_id: str, now_us: int) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
        (now_us, key_id),
    )
    return int(cur.rowcount)


def get_secret(uow: UnitOfWork, name: str) -> str | None:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT value FROM server_secrets WHERE name = ?"), (name,))
    row = cur.fetchone()
    return None if row is None else str(row[0])


def insert_secret_if_absent(uow: UnitOfWork, name: str, value: str) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        ),
        (name, value),
    )


# -- idempotency ---------------------------------------------------------------------------

_RECORD_COLS = "fingerprint, claimed_at, owner, lease_until, status_code, body"


@dataclass(frozen=True)
class IdempotencyRow:
    fingerprint: str
    claimed_at: int
    owner: str | None
    lease_until: int
    status_code: int | None
    body: bytes | None  # zlib-compressed


def insert_idempotency_record(
    uow: UnitOfWork,
    tenant_id: str,
    key: str,
    fingerprint: str,
    owner: str,
    now_us: int,
    lease_until: int,
) -> bool:
    """Claim a key nobody holds; False if a record exists (in any state)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO idempotency_records (tenant_id, key, fingerprint, claimed_at, owner, "
            "lease_until) VALUES (?,?,?,?,?,?) ON CONFLICT (tenant_id, key) DO NOTHING",
        ),
        (tenant_id, key, fingerprint, now_us, owner, lease_until),
    )
    return int(cur.rowcount) == 1


def get_idempotency_record(
    uow: UnitOfWork, tenant_id: str, key: str, *, for_update: bool = True
) -> IdempotencyRow | None:
    """On PostgreSQL the row is locked until the transaction ends (`for_update`)."""
    lock = " FOR UPDATE" if for_update and not uow.sqlite else ""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {_RECORD_COLS} FROM idempotency_records WHERE tenant_id = ? AND key = ?"
            + lock,
        ),
        (tenant_id, key),
    )
    row = cur.fetchone()
    if row is None:
        return None
    body = None if row[5] is None else bytes(row[5])
    return IdempotencyRow(row[0], int(row[1]), row[2], int(row[3]), row[4], body)


def reclaim_idempotency_record(
    uow: UnitOfWork,
    tenant_id: str,
    key: str,
    fingerprint: str,
    owner: str,
    claimed_at: int,
    lease_until: int,
) -> None:
    """A new claim on a record past its retention: a request like any first one."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE idempotency_records SET fingerprint = ?, claimed_at = ?, owner = ?, "
            "lease_until = ?, status_code = NULL, body = NULL WHERE tenant_id = ? AND key = ?",
        ),
        (fingerprint, claimed_at, owner, lease_until, tenant_id, key),
    )


def take_over_idempotency_record(
    uow: UnitOfWork, tenant_id: str, key: str, owner: str, lease_until: int
) -> None:
    """A new owner for an in-flight record whose lease ended (its owner died or gave up)."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE idempotency_records SET owner = ?, lease_until = ? "
            "WHERE tenant_id = ? AND key = ? AND status_code IS NULL",
        ),
        (owner, lease_until, tenant_id, key),
    )


def renew_idempotency_lease(
    uow: UnitOfWork, tenant_id: str, key: str, owner: str, lease_until: int
) -> bool:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE idempotency_records SET lease_until = ? "
            "WHERE tenant_id = ? AND key = ? AND owner = ? AND status_code IS NULL",
        ),
        (lease_until, tenant_id, key, owner),
    )
    return int(cur.rowcount) == 1


def finish_idempotency_record(
    uow: UnitOfWork,
    tenant_id: str,
    key: str,
    owner: str,
    status_code: int,
    body: bytes,
    subject_id: str | None = None,
) -> bool:
    """Store the answer (and the data subject it concerns, if any); False when `owner` no
    longer holds the record (another attempt took it over, and its answer, or its own, is the
    one kept)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE idempotency_records SET status_code = ?, body = ?, subject_id = ?, "
            "owner = NULL, lease_until = 0 WHERE tenant_id = ? AND key = ? AND owner = ? "
            "AND status_code IS NULL",
        ),
        (status_code, body, subject_id, tenant_id, key, owner),
    )
    return int(cur.rowcount) == 1


def subject_record_keys(uow: UnitOfWork, tenant_id: str, subject_id: str) -> list[str]:
    """The keys of the tenant's answered records whose answer concerns `subject_id`."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT key FROM idempotency_records WHERE tenant_id = ? AND subject_id = ? "
            "AND status_code IS NOT NULL",
        ),
        (tenant_id, subject_id),
    )
    return [str(row[0]) for row in cur.fetchall()]


def replace_idempotency_answer(
    uow: UnitOfWork, tenant_id: str, key: str, status_code: int, body: bytes
) -> None:
    """Put another answer in an answered record (an erasure's), keeping its fingerprint."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE idempotency_records SET status_code = ?, body = ? "
            "WHERE tenant_id = ? AND key = ? AND status_code IS NOT NULL",
        ),
        (status_code, body, tenant_id, key),
    )


def delete_idempotency_record(uow: UnitOfWork, tenant_id: str, key: str, owner: str) -> None:
    """Forget `owner`'s unfinished claim."""
    uow.cursor().execute(
        sql(
            uow,
            "DELETE FROM idempotency_records "
            "WHERE tenant_id = ? AND key = ? AND owner = ? AND status_code IS NULL",
        ),
        (tenant_id, key, owner),
    )


def release_idempotency_record(uow: UnitOfWork, tenant_id: str, key: str, owner: str) -> None:
    """End `owner`'s lease now, keeping the claim: the retry runs at once, minting the same ids."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE idempotency_records SET owner = NULL, lease_until = 0 "
            "WHERE tenant_id = ? AND key = ? AND owner = ? AND status_code IS NULL",
        ),
        (tenant_id, key, owner),
    )


def purge_idempotency_records(uow: UnitOfWork, cutoff_us: int, limit: int) -> int:
    """Delete up to `limit` records claimed before `cutoff_us`; the count deleted."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "DELETE FROM idempotency_records WHERE (tenant_id, key) IN (SELECT tenant_id, key "
            "FROM idempotency_records WHERE claimed_at < ? ORDER BY claimed_at LIMIT ?)",
        ),
        (cutoff_us, limit),
    )
    return int(cur.rowcount)
