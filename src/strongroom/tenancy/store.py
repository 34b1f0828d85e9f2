"""SQL for tenants, API keys, server secrets and idempotency records."""

from __future__ import annotations

from typing import Any

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork


def get_tenant_by_name(uow: UnitOfWork, name: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT id, name, created_at FROM tenants WHERE name = ?"), (name,))
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def insert_tenant(uow: UnitOfWork, tenant_id: str, name: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "INSERT INTO tenants (id, name, created_at) VALUES (?,?,?)"),
        (tenant_id, name, now_us),
    )


def insert_api_key(uow: UnitOfWork, row: tuple[str, str, str, str, str, int]) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO api_keys (id, tenant_id, hash, hint, scopes, created_at) "
            "VALUES (?,?,?,?,?,?)",
        ),
        row,
    )


def get_api_key_by_hash(uow: UnitOfWork, digest: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT id, tenant_id, hint, scopes FROM api_keys "
            "WHERE hash = ? AND revoked_at IS NULL",
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


def claim_idempotency_key(
    uow: UnitOfWork, api_key_id: str, key: str, fingerprint: str, now_us: int
) -> bool:
    """Insert an in-flight record; False if the key is taken (by anyone, in any state)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, created_at) "
            "VALUES (?,?,?,?) ON CONFLICT (api_key_id, key) DO NOTHING",
        ),
        (api_key_id, key, fingerprint, now_us),
    )
    return int(cur.rowcount) == 1


def get_idempotency_record(
    uow: UnitOfWork, api_key_id: str, key: str
) -> tuple[str, int | None, str | None, int] | None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT fingerprint, status_code, body, created_at FROM idempotency_keys "
            "WHERE api_key_id = ? AND key = ?",
        ),
        (api_key_id, key),
    )
    row = cur.fetchone()
    return None if row is None else (row[0], row[1], row[2], int(row[3]))


def finish_idempotency_key(
    uow: UnitOfWork, api_key_id: str, key: str, status_code: int, body: str
) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE idempotency_keys SET status_code = ?, body = ? "
            "WHERE api_key_id = ? AND key = ?",
        ),
        (status_code, body, api_key_id, key),
    )


def release_idempotency_key(uow: UnitOfWork, api_key_id: str, key: str) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "DELETE FROM idempotency_keys WHERE api_key_id = ? AND key = ? AND status_code IS NULL",
        ),
        (api_key_id, key),
    )


def delete_idempotency_older_than(uow: UnitOfWork, cutoff_us: int) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "DELETE FROM idempotency_keys WHERE created_at < ?"), (cutoff_us,))
    return int(cur.rowcount)
