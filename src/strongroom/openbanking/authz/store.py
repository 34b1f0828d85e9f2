"""SQL of the authorization server (migration 0029): pushed requests, codes, tokens and the
replay store of jtis. Secrets arrive here as their digests only (model.digest)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import Any, Final

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork

PURGE_BATCH_ROWS: Final = 1_000


# -- pushed authorization requests -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParRow:
    digest: str
    client_id: str
    params: str  # model.PushedRequest.to_json
    created_at: int
    expires_at: int
    begun_at: int | None


_PAR_COLS: Final = "digest, client_id, params, created_at, expires_at, begun_at"


def insert_par(uow: UnitOfWork, row: ParRow) -> None:
    uow.cursor().execute(
        sql(uow, f"INSERT INTO ob_par_requests ({_PAR_COLS}) VALUES (?,?,?,?,?,?)"),
        astuple(row),
    )


def get_par(uow: UnitOfWork, digest: str) -> ParRow | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {_PAR_COLS} FROM ob_par_requests WHERE digest = ?"), (digest,))
    row = cur.fetchone()
    if row is None:
        return None
    return ParRow(
        row[0], row[1], row[2], int(row[3]), int(row[4]), None if row[5] is None else int(row[5])
    )


def begin_par(uow: UnitOfWork, digest: str, begun_at: int, expires_at: int) -> None:
    """The user agent arrived: the request lives on for the authorization window."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE ob_par_requests SET begun_at = ?, expires_at = ? "
            "WHERE digest = ? AND begun_at IS NULL",
        ),
        (begun_at, expires_at, digest),
    )


def take_par(uow: UnitOfWork, digest: str, now_us: int) -> bool:
    """Deletes the unexpired request: False when there is none (used already, or expired)."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "DELETE FROM ob_par_requests WHERE digest = ? AND expires_at > ?"),
        (digest, now_us),
    )
    return int(cur.rowcount) == 1


# -- authorization codes ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CodeRow:
    digest: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    dpop_jkt: str | None
    consent_id: str
    tenant_id: str
    customer_id: str
    scope: str
    issued_at: int
    expires_at: int
    used_at: int | None


_CODE_COLS: Final = (
    "digest, client_id, redirect_uri, code_challenge, dpop_jkt, consent_id, tenant_id, "
    "customer_id, scope, issued_at, expires_at, used_at"
)


def insert_code(uow: UnitOfWork, row: CodeRow) -> None:
    uow.cursor().execute(
        sql(uow, f"INSERT INTO ob_codes ({_CODE_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"),
        astuple(row),
    )


def get_code(uow: UnitOfWork, digest: str, *, lock: bool = False) -> CodeRow | None:
    cur = uow.cursor()
    tail = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur.execute(sql(uow, f"SELECT {_CODE_COLS} FROM ob_codes WHERE digest = ?{tail}"), (digest,))
    row = cur.fetchone()
    if row is None:
        return None
    return CodeRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        int(row[9]), int(row[10]), None if row[11] is None else int(row[11]),
    )  # fmt: skip


def use_code(uow: UnitOfWork, digest: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE ob_codes SET used_at = ? WHERE digest = ? AND used_at IS NULL"),
        (now_us, digest),
    )


# -- tokens ----------------------------------------------------------------------------------

ACCESS: Final = "access"
REFRESH: Final = "refresh"


@dataclass(frozen=True, slots=True)
class TokenRow:
    digest: str
    id: str
    kind: str  # ACCESS | REFRESH
    client_id: str
    grant_type: str  # ports.Grant
    scope: str
    jkt: str
    consent_id: str | None
    tenant_id: str | None
    customer_id: str | None
    origin: str | None  # the digest of the code its chain was issued with
    parent: str | None  # the id of the refresh token it was issued with
    issued_at: int
    expires_at: int
    revoked_at: int | None


_ISSUED_COLS: Final = (
    "digest, id, kind, client_id, grant_type, scope, jkt, consent_id, tenant_id, customer_id, "
    "origin, parent, issued_at, expires_at, revoked_at"
)


def insert_tokens(uow: UnitOfWork, rows: Sequence[TokenRow]) -> None:
    uow.cursor().executemany(
        sql(uow, f"INSERT INTO ob_tokens ({_ISSUED_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
        [astuple(row) for row in rows],
    )


def _token(row: Any) -> TokenRow | None:
    if row is None:
        return None
    return TokenRow(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
        row[10], row[11], int(row[12]), int(row[13]), None if row[14] is None else int(row[14]),
    )  # fmt: skip


def get_token(uow: UnitOfWork, digest: str, *, lock: bool = False) -> TokenRow | None:
    """The token stored under `digest` (one primary-key read)."""
    cur = uow.cursor()
    tail = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur.execute(sql(uow, f"SELECT {_ISSUED_COLS} FROM ob_tokens WHERE digest = ?{tail}"), (digest,))
    return _token(cur.fetchone())


def revoke_token(uow: UnitOfWork, digest: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE ob_tokens SET revoked_at = ? WHERE digest = ? AND revoked_at IS NULL"),
        (now_us, digest),
    )


def revoke_origin(uow: UnitOfWork, origin: str, now_us: int) -> int:
    """Revokes every token of the chain issued with the code whose digest is `origin`."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE ob_tokens SET revoked_at = ? WHERE origin = ? AND revoked_at IS NULL"),
        (now_us, origin),
    )
    return int(cur.rowcount)


def revoke_consent(uow: UnitOfWork, consent_id: str, now_us: int) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE ob_tokens SET revoked_at = ? WHERE consent_id = ? AND revoked_at IS NULL",
        ),
        (now_us, consent_id),
    )
    return int(cur.rowcount)


# -- the replay store ------------------------------------------------------------------------


def first_use(uow: UnitOfWork, key: str, expires_at_us: int, now_us: int) -> bool:
    """Remembers `key` (a digest) until `expires_at_us`: True the first time, False while an
    unexpired entry holds it (a replay). An expired entry not yet purged is taken over. One
    statement, atomic on both databases (a concurrent insert of the key waits for the other
    transaction, then finds it)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO ob_dpop_jti (key, expires_at) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
            "WHERE ob_dpop_jti.expires_at <= ?",
        ),
        (key, expires_at_us, now_us),
    )
    return int(cur.rowcount) == 1


# -- purge -----------------------------------------------------------------------------------

# (table, key column): what the purge deletes once past its time (`expires_at`).
_PURGED: Final = (
    ("ob_dpop_jti", "key"),
    ("ob_par_requests", "digest"),
    ("ob_codes", "digest"),
    ("ob_tokens", "digest"),
)


def purge_batch(uow: UnitOfWork, table: str, before_us: int, rows_max: int) -> int:
    """Deletes up to `rows_max` rows of `table` that expired before `before_us`."""
    key = dict(_PURGED)[table]
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"DELETE FROM {table} WHERE {key} IN "
            f"(SELECT {key} FROM {table} WHERE expires_at < ? LIMIT ?)",
        ),
        (before_us, rows_max),
    )
    return int(cur.rowcount)


PURGED_TABLES: Final = tuple(table for table, _ in _PURGED)
