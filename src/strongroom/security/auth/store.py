"""SQL of users, passkeys, sessions and sign-in challenges (migration 0015)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork

_USER_COLS = (
    "id, tenant_id, kind, role, password_hash, failed_count, locked_until, totp_kek_version, "
    "totp_secret, totp_confirmed_at, totp_last_step, webauthn_handle, customer_id, created_at"
)


@dataclass(frozen=True, slots=True)
class UserRow:
    id: str
    tenant_id: str
    kind: str
    role: str
    password_hash: str | None
    failed_count: int
    locked_until: int | None
    totp_kek_version: int | None
    totp_secret: bytes | None  # wrapped
    totp_confirmed_at: int | None
    totp_last_step: int | None
    webauthn_handle: bytes
    customer_id: str | None
    created_at: int


def _user(row: Any) -> UserRow | None:
    if row is None:
        return None
    return UserRow(
        row[0], row[1], row[2], row[3], row[4], int(row[5]),
        None if row[6] is None else int(row[6]),
        None if row[7] is None else int(row[7]),
        None if row[8] is None else bytes(row[8]),
        None if row[9] is None else int(row[9]),
        None if row[10] is None else int(row[10]),
        bytes(row[11]), row[12], int(row[13]),
    )  # fmt: skip


def insert_user(
    uow: UnitOfWork,
    user_id: str,
    tenant_id: str,
    kind: str,
    email: str,
    role: str,
    password_hash: str | None,
    handle: bytes,
    customer_id: str | None,
    now_us: int,
) -> bool:
    """False when the tenant has a user with this email already."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO users (id, tenant_id, kind, email, role, password_hash, failed_count, "
            "webauthn_handle, customer_id, created_at) VALUES (?,?,?,?,?,?,0,?,?,?) "
            "ON CONFLICT (tenant_id, email) DO NOTHING",
        ),
        (user_id, tenant_id, kind, email, role, password_hash, handle, customer_id, now_us),
    )
    return int(cur.rowcount) == 1


def get_user(uow: UnitOfWork, user_id: str, *, lock: bool = False) -> UserRow | None:
    cur = uow.cursor()
    tail = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur.execute(sql(uow, f"SELECT {_USER_COLS} FROM users WHERE id = ?{tail}"), (user_id,))
    return _user(cur.fetchone())


def get_user_by_email(uow: UnitOfWork, tenant_id: str, email: str) -> UserRow | None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_USER_COLS} FROM users WHERE tenant_id = ? AND email = ?"),
        (tenant_id, email),
    )
    return _user(cur.fetchone())


def list_users(
    uow: UnitOfWork, tenant_id: str, starting_after: str | None, limit: int, email: str | None
) -> list[UserRow]:
    """A tenant's users by id, after `starting_after`; only the one with `email` when given."""
    where, args = "tenant_id = ?", [tenant_id]
    if starting_after is not None:
        where, args = where + " AND id > ?", [*args, starting_after]
    if email is not None:
        where, args = where + " AND email = ?", [*args, email]
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_USER_COLS} FROM users WHERE {where} ORDER BY id LIMIT ?"),
        (*args, limit),
    )
    return [row for row in map(_user, cur.fetchall()) if row is not None]


def record_failure(uow: UnitOfWork, user_id: str, failures_max: int, locked_until: int) -> bool:
    """Counts a failed sign-in; at `failures_max` the account is locked until
    `locked_until` and the count starts again. True when this failure locked it."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE users SET failed_count = failed_count + 1 WHERE id = ?"), (user_id,)
    )
    cur.execute(sql(uow, "SELECT failed_count FROM users WHERE id = ?"), (user_id,))
    row = cur.fetchone()
    if row is None or int(row[0]) < failures_max:
        return False
    cur.execute(
        sql(uow, "UPDATE users SET failed_count = 0, locked_until = ? WHERE id = ?"),
        (locked_until, user_id),
    )
    return True


def reset_failures(uow: UnitOfWork, user_id: str) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE users SET failed_count = 0 WHERE id = ? AND failed_count <> 0"),
        (user_id,),
    )


def set_password_hash(uow: UnitOfWork, user_id: str, encoded: str) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE users SET password_hash = ? WHERE id = ?"), (encoded, user_id)
    )


def set_role(uow: UnitOfWork, user_id: str, role: str, kind: str) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE users SET role = ?, kind = ? WHERE id = ?"), (role, kind, user_id)
    )


def set_totp(uow: UnitOfWork, user_id: str, version: int | None, wrapped: bytes | None) -> None:
    """A new (unconfirmed) secret, or none."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE users SET totp_kek_version = ?, totp_secret = ?, totp_confirmed_at = NULL, "
            "totp_last_step = NULL WHERE id = ?",
        ),
        (version, wrapped, user_id),
    )


def confirm_totp(uow: UnitOfWork, user_id: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE users SET totp_confirmed_at = ? WHERE id = ?"), (now_us, user_id)
    )


def accept_totp_step(uow: UnitOfWork, user_id: str, step: int) -> bool:
    """Records `step` as the last accepted one unless a step as late was accepted already:
    of two requests with the same code, one wins."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE users SET totp_last_step = ? WHERE id = ? "
            "AND (totp_last_step IS NULL OR totp_last_step < ?)",
        ),
        (step, user_id, step),
    )
    return int(cur.rowcount) == 1


# -- passkeys ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialRow:
    id: str  # base64url
    user_id: str
    tenant_id: str
    public_key: bytes
    sign_count: int
    transports: str


def insert_credential(uow: UnitOfWork, row: CredentialRow, now_us: int) -> bool:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO webauthn_credentials (id, user_id, tenant_id, public_key, sign_count, "
            "transports, created_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT (id) DO NOTHING",
        ),
        (row.id, row.user_id, row.tenant_id, row.public_key, row.sign_count, row.transports,
         now_us),
    )  # fmt: skip
    return int(cur.rowcount) == 1


_CRED_COLS = "id, user_id, tenant_id, public_key, sign_count, transports"


def _credential(row: Any) -> CredentialRow:
    return CredentialRow(row[0], row[1], row[2], bytes(row[3]), int(row[4]), row[5])


def get_credential(uow: UnitOfWork, credential_id: str) -> CredentialRow | None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_CRED_COLS} FROM webauthn_credentials WHERE id = ?"), (credential_id,)
    )
    row = cur.fetchone()
    return None if row is None else _credential(row)


def credentials_of(uow: UnitOfWork, user_id: str) -> list[CredentialRow]:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_CRED_COLS} FROM webauthn_credentials WHERE user_id = ? ORDER BY id"),
        (user_id,),
    )
    return [_credential(row) for row in cur.fetchall()]


def used_credential(uow: UnitOfWork, credential_id: str, sign_count: int, now_us: int) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE webauthn_credentials SET sign_count = ?, last_used_at = ? WHERE id = ?",
        ),
        (sign_count, now_us, credential_id),
    )


# -- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    id: str
    user_id: str
    tenant_id: str
    expires_at: int
    idle_expires_at: int
    stepped_up_at: int | None
    revoked_at: int | None
    role: str
    kind: str


def insert_session(
    uow: UnitOfWork,
    session_id: str,
    user_id: str,
    tenant_id: str,
    now_us: int,
    expires_at: int,
    idle_expires_at: int,
    method: str,
) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO sessions (id, user_id, tenant_id, created_at, expires_at, "
            "idle_expires_at, method) VALUES (?,?,?,?,?,?,?)",
        ),
        (session_id, user_id, tenant_id, now_us, expires_at, idle_expires_at, method),
    )


def get_session(uow: UnitOfWork, session_id: str) -> SessionRow | None:
    """The session with its user's role and kind, now (a role change applies at once); None
    while its tenant is suspended (the operator's POST /v1/tenants/{id}/suspend)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT s.id, s.user_id, s.tenant_id, s.expires_at, s.idle_expires_at, "
            "s.stepped_up_at, s.revoked_at, u.role, u.kind FROM sessions s "
            "JOIN users u ON u.id = s.user_id LEFT JOIN tenants t ON t.id = s.tenant_id "
            "WHERE s.id = ? AND t.suspended_at IS NULL",
        ),
        (session_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    return SessionRow(
        row[0], row[1], row[2], int(row[3]), int(row[4]),
        None if row[5] is None else int(row[5]),
        None if row[6] is None else int(row[6]),
        row[7], row[8],
    )  # fmt: skip


def touch_session(uow: UnitOfWork, session_id: str, idle_expires_at: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE sessions SET idle_expires_at = ? WHERE id = ? AND revoked_at IS NULL"),
        (idle_expires_at, session_id),
    )


def step_up_session(uow: UnitOfWork, session_id: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE sessions SET stepped_up_at = ? WHERE id = ?"), (now_us, session_id)
    )


def revoke_session(uow: UnitOfWork, session_id: str, now_us: int) -> int:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"),
        (now_us, session_id),
    )
    return int(cur.rowcount)


def stepped_up_since(uow: UnitOfWork, user_id: str, since_us: int, now_us: int) -> bool:
    """Whether a live session of the user stepped up at or after `since_us`."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT 1 FROM sessions WHERE user_id = ? AND stepped_up_at >= ? "
            "AND revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ? LIMIT 1",
        ),
        (user_id, since_us, now_us, now_us),
    )
    return cur.fetchone() is not None


def purge_sessions(uow: UnitOfWork, before_us: int) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "DELETE FROM sessions WHERE expires_at < ?"), (before_us,))
    cur.execute(sql(uow, "DELETE FROM auth_challenges WHERE expires_at < ?"), (before_us,))
    return int(cur.rowcount)


# -- challenges ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChallengeRow:
    tenant_id: str
    purpose: str
    user_id: str | None
    session_id: str | None
    challenge: bytes
    expires_at: int


def insert_challenge(uow: UnitOfWork, challenge_id: str, row: ChallengeRow) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "INSERT INTO auth_challenges (id, tenant_id, purpose, user_id, session_id, "
            "challenge, expires_at) VALUES (?,?,?,?,?,?,?)",
        ),
        (challenge_id, row.tenant_id, row.purpose, row.user_id, row.session_id, row.challenge,
         row.expires_at),
    )  # fmt: skip


def take_challenge(uow: UnitOfWork, challenge_id: str) -> ChallengeRow | None:
    """The challenge, deleted: whoever deletes it owns it, so it is used once at most."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT tenant_id, purpose, user_id, session_id, challenge, expires_at "
            "FROM auth_challenges WHERE id = ?",
        ),
        (challenge_id,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    cur.execute(sql(uow, "DELETE FROM auth_challenges WHERE id = ?"), (challenge_id,))
    if int(cur.rowcount) != 1:
        return None
    return ChallengeRow(row[0], row[1], row[2], row[3], bytes(row[4]), int(row[5]))
