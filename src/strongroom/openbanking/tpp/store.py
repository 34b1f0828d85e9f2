"""All of the TPP client registry's SQL (migration 0026: `ob_clients`, deployment-wide)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.tpp.model import TppClient, TppScope, TppStatus

COLS: Final = (
    "id, name, software_id, jwks, redirect_uris, scopes, status, created_at, created_by, updated_at"
)
_MARKS: Final = ",".join("?" * len(COLS.split(", ")))


def client_of(row: Sequence[Any]) -> TppClient:
    return TppClient(
        id=row[0],
        name=row[1],
        software_id=row[2],
        jwks=row[3],
        redirect_uris=tuple(json.loads(row[4])),
        scopes=frozenset(TppScope(s) for s in str(row[5]).split()),
        status=TppStatus(row[6]),
        created_at=int(row[7]),
        created_by=row[8],
        updated_at=int(row[9]),
    )


def insert_client(uow: UnitOfWork, client: TppClient) -> None:
    values = (
        client.id,
        client.name,
        client.software_id,
        client.jwks,
        json.dumps(list(client.redirect_uris), separators=(",", ":")),
        " ".join(sorted(s.value for s in client.scopes)),
        client.status.value,
        client.created_at,
        client.created_by,
        client.updated_at,
    )
    uow.cursor().execute(sql(uow, f"INSERT INTO ob_clients ({COLS}) VALUES ({_MARKS})"), values)


def get_client(uow: UnitOfWork, client_id: str) -> TppClient | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {COLS} FROM ob_clients WHERE id = ?"), (client_id,))
    row = cur.fetchone()
    return None if row is None else client_of(row)


def list_clients(uow: UnitOfWork, starting_after: str | None, limit: int) -> list[TppClient]:
    """Clients by id after `starting_after`."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {COLS} FROM ob_clients WHERE id > ? ORDER BY id LIMIT ?"),
        (starting_after or "", limit),
    )
    return [client_of(row) for row in cur.fetchall()]


def set_status(uow: UnitOfWork, client_id: str, status: TppStatus, now_us: int) -> int:
    """Set the status where it differs; the count of rows changed (0: absent, or already so)."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE ob_clients SET status = ?, updated_at = ? WHERE id = ? AND status <> ?"),
        (status.value, now_us, client_id, status.value),
    )
    return int(cur.rowcount)


def set_jwks(uow: UnitOfWork, client_id: str, jwks: str, now_us: int) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE ob_clients SET jwks = ?, updated_at = ? WHERE id = ?"),
        (jwks, now_us, client_id),
    )
    return int(cur.rowcount)
