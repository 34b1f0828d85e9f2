"""SQL of the risk model registry (tables risk_models and risk_model_revisions, migration
0020). Rows cross into the service as named objects, never positional tuples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork

_COLUMNS: Final = (
    "version, status, sha256, metrics, created_at, created_by, promoted_at, updated_at"
)


@dataclass(frozen=True, slots=True)
class ModelRow:
    tenant_id: str
    version: str
    status: str
    sha256: str
    metrics: str  # JSON
    created_at: int
    created_by: str
    promoted_at: int | None
    updated_at: int


def _row(tenant_id: str, found: Sequence[object]) -> ModelRow:
    version, status, sha256, metrics, created_at, created_by, promoted_at, updated_at = found
    assert isinstance(version, str)
    assert isinstance(status, str)
    assert isinstance(sha256, str)
    assert isinstance(metrics, str)
    assert isinstance(created_by, str)
    assert isinstance(created_at, int)
    assert isinstance(updated_at, int)
    assert promoted_at is None or isinstance(promoted_at, int)
    return ModelRow(
        tenant_id, version, status, sha256, metrics, created_at, created_by, promoted_at,
        updated_at,
    )  # fmt: skip


def lock_tenant(uow: UnitOfWork, tenant_id: str) -> int:
    """Take the tenant's registry lock for the rest of the transaction (its revision row, made
    when missing; on SQLite the write transaction already holds the database's) and return its
    revision."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO risk_model_revisions (tenant_id, revision) VALUES (?, 0) "
            "ON CONFLICT (tenant_id) DO NOTHING",
        ),
        (tenant_id,),
    )
    lock = "" if uow.sqlite else " FOR UPDATE"
    cur.execute(
        sql(uow, f"SELECT revision FROM risk_model_revisions WHERE tenant_id = ?{lock}"),
        (tenant_id,),
    )
    found = cur.fetchone()
    assert found is not None
    return int(found[0])


def bump_revision(uow: UnitOfWork, tenant_id: str) -> None:
    """After a change, under lock_tenant: servers reading the revision reload the models."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE risk_model_revisions SET revision = revision + 1 WHERE tenant_id = ?"),
        (tenant_id,),
    )
    assert cur.rowcount == 1, "bump_revision without lock_tenant"


def revision(uow: UnitOfWork, tenant_id: str) -> int:
    """The tenant's revision: 0 before its first change. One primary-key read."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT revision FROM risk_model_revisions WHERE tenant_id = ?"), (tenant_id,)
    )
    found = cur.fetchone()
    return int(found[0]) if found is not None else 0


def get(uow: UnitOfWork, tenant_id: str, version: str) -> ModelRow | None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_COLUMNS} FROM risk_models WHERE tenant_id = ? AND version = ?"),
        (tenant_id, version),
    )
    found = cur.fetchone()
    return _row(tenant_id, found) if found is not None else None


def with_status(uow: UnitOfWork, tenant_id: str, status: str) -> ModelRow | None:
    """The tenant's model of that status (for `live` and `shadow`: at most one, by index)."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_COLUMNS} FROM risk_models WHERE tenant_id = ? AND status = ?"),
        (tenant_id, status),
    )
    rows = cur.fetchall()
    assert len(rows) <= 1, "the partial unique index keeps one"
    return _row(tenant_id, rows[0]) if rows else None


def artefact(uow: UnitOfWork, tenant_id: str, version: str) -> tuple[bytes, str] | None:
    """The model's artefact and the sha256 recorded when it was registered."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT artefact, sha256 FROM risk_models WHERE tenant_id = ? AND version = ?"),
        (tenant_id, version),
    )
    found = cur.fetchone()
    return (bytes(found[0]), str(found[1])) if found is not None else None


def page(uow: UnitOfWork, tenant_id: str, starting_after: str | None, limit: int) -> list[ModelRow]:
    """By version (time-ordered ids: oldest first), after `starting_after`."""
    cur = uow.cursor()
    after = " AND version > ?" if starting_after is not None else ""
    params: tuple[object, ...] = (tenant_id,) + ((starting_after,) if starting_after else ())
    cur.execute(
        sql(
            uow,
            f"SELECT {_COLUMNS} FROM risk_models WHERE tenant_id = ?{after} "
            f"ORDER BY version LIMIT {int(limit)}",
        ),
        params,
    )
    return [_row(tenant_id, r) for r in cur.fetchall()]


def insert(uow: UnitOfWork, row: ModelRow, raw: bytes) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO risk_models (tenant_id, version, status, artefact, sha256, metrics, "
            "created_at, created_by, promoted_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ),
        (
            row.tenant_id,
            row.version,
            row.status,
            raw,
            row.sha256,
            row.metrics,
            row.created_at,
            row.created_by,
            row.promoted_at,
            row.updated_at,
        ),
    )


def set_status(
    uow: UnitOfWork,
    tenant_id: str,
    version: str,
    status: str,
    now_us: int,
    *,
    promoted: bool = False,
) -> None:
    cur = uow.cursor()
    promoted_sql = ", promoted_at = ?" if promoted else ""
    params: tuple[object, ...] = (status, now_us) + ((now_us,) if promoted else ())
    cur.execute(
        sql(
            uow,
            f"UPDATE risk_models SET status = ?, updated_at = ?{promoted_sql} "
            "WHERE tenant_id = ? AND version = ?",
        ),
        (*params, tenant_id, version),
    )
    assert cur.rowcount == 1
