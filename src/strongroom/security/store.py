"""SQL for the subjects' data keys (migration 0011)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork


def insert_subject_key(
    uow: UnitOfWork,
    subject_id: str,
    tenant_id: str,
    kind: str,
    kek_version: int,
    wrapped: bytes,
    now_us: int,
) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO subject_keys (subject_id, tenant_id, kind, kek_version, wrapped, "
            "created_at) VALUES (?,?,?,?,?,?)",
        ),
        (subject_id, tenant_id, kind, kek_version, wrapped, now_us),
    )


def insert_subject_keys(
    uow: UnitOfWork, rows: Sequence[tuple[str, str, str, int, bytes, int]]
) -> None:
    """Many at once: (subject_id, tenant_id, kind, kek_version, wrapped, created_at) rows. A
    subject that has a key already keeps it (a retried request's, whose values it sealed)."""
    if not rows:
        return
    uow.cursor().executemany(
        sql(
            uow,
            "INSERT INTO subject_keys (subject_id, tenant_id, kind, kek_version, wrapped, "
            "created_at) VALUES (?,?,?,?,?,?) ON CONFLICT (subject_id) DO NOTHING",
        ),
        rows,
    )


def get_subject_key(uow: UnitOfWork, subject_id: str) -> tuple[Any, ...] | None:
    """(tenant_id, kind, kek_version, wrapped or None once shredded)"""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT tenant_id, kind, kek_version, wrapped FROM subject_keys WHERE subject_id = ?",
        ),
        (subject_id,),
    )
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def shred_subject_key(uow: UnitOfWork, subject_id: str, now_us: int) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE subject_keys SET wrapped = NULL, shredded_at = ? "
            "WHERE subject_id = ? AND wrapped IS NOT NULL",
        ),
        (now_us, subject_id),
    )
    return int(cur.rowcount)


def keys_below(uow: UnitOfWork, version: int, limit: int) -> list[tuple[Any, ...]]:
    """Up to `limit` live keys wrapped under a KEK version below `version`:
    (subject_id, tenant_id, kek_version, wrapped)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT subject_id, tenant_id, kek_version, wrapped FROM subject_keys "
            "WHERE kek_version < ? AND wrapped IS NOT NULL ORDER BY subject_id LIMIT ?",
        ),
        (version, limit),
    )
    return list(cur.fetchall())


def rewrap_subject_key(
    uow: UnitOfWork, subject_id: str, old_version: int, new_version: int, wrapped: bytes
) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE subject_keys SET kek_version = ?, wrapped = ? "
            "WHERE subject_id = ? AND kek_version = ? AND wrapped IS NOT NULL",
        ),
        (new_version, wrapped, subject_id, old_version),
    )
    return int(cur.rowcount)


def count_by_version(uow: UnitOfWork) -> dict[int, int]:
    """Live wrapped values per KEK version: the subjects' data keys and the users' TOTP
    secrets (wrapped by the key manager directly, security/auth)."""
    cur = uow.cursor()
    counts: dict[int, int] = {}
    for statement in (
        "SELECT kek_version, COUNT(*) FROM subject_keys WHERE wrapped IS NOT NULL "
        "GROUP BY kek_version",
        "SELECT totp_kek_version, COUNT(*) FROM users WHERE totp_secret IS NOT NULL "
        "GROUP BY totp_kek_version",
    ):
        cur.execute(sql(uow, statement))
        for version, n in cur.fetchall():
            counts[int(version)] = counts.get(int(version), 0) + int(n)
    return counts


def totp_below(uow: UnitOfWork, version: int, limit: int) -> list[tuple[Any, ...]]:
    """Up to `limit` users' TOTP secrets wrapped under a KEK version below `version`:
    (user_id, tenant_id, kek_version, wrapped)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT id, tenant_id, totp_kek_version, totp_secret FROM users "
            "WHERE totp_kek_version < ? AND totp_secret IS NOT NULL ORDER BY id LIMIT ?",
        ),
        (version, limit),
    )
    return list(cur.fetchall())


def rewrap_totp(
    uow: UnitOfWork, user_id: str, old_version: int, new_version: int, wrapped: bytes
) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE users SET totp_kek_version = ?, totp_secret = ? "
            "WHERE id = ? AND totp_kek_version = ? AND totp_secret IS NOT NULL",
        ),
        (new_version, wrapped, user_id, old_version),
    )
    return int(cur.rowcount)
