"""Users, passwords, sessions and step-up (the factors' enrolment is in factors.py).

A session token (`st_...`, 256 random bits) is handed to the client once; the server keeps its
SHA-256 only, so a copy of the database holds no usable token. A session ends at the first of:
its absolute expiry, its idle expiry (pushed forward as it is used), its revocation (sign-out).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.security.auth import store, totp
from strongroom.security.auth.errors import (
    Conflict,
    InvalidChallenge,
    InvalidCredentials,
    TotpRequired,
)
from strongroom.security.auth.model import (
    SESSION_TOKEN_PREFIX,
    USER_ACTOR_PREFIX,
    AuthConfig,
    SignInMethod,
    User,
    UserKind,
    UserPrincipal,
    kind_for,
    normalise_email,
    parse_role,
)
from strongroom.security.auth.passwords import Passwords, check_password_strength
from strongroom.security.envelope import totp_aad
from strongroom.security.kms import KeyManager, WrappedKey
from strongroom.security.rbac import Role

_US: Final = 1_000_000
TOKEN_CHARS_MAX: Final = 100  # a presented token longer than this is not one of ours
LOCKOUT_ACTOR: Final = "system:auth"  # the actor of a lockout's audit leaf
INVITATION_PREFIX: Final = "inv_"
INVITATION_PURPOSE: Final = "invitation"  # an auth_challenges row keyed by the token's hash
INVITATION_TTL_S: Final = 7 * 86_400


def session_id_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed_token(token: str) -> bool:
    return token.startswith(SESSION_TOKEN_PREFIX) and len(token) <= TOKEN_CHARS_MAX


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # shown once
    principal: UserPrincipal
    expires_at: int


def user_of(row: store.UserRow) -> User:
    return User(
        row.id,
        row.tenant_id,
        UserKind(row.kind),
        Role(row.role),
        row.created_at,
        row.customer_id,
        row.totp_confirmed_at is not None,
    )


class UserService:
    def __init__(
        self,
        engine: Engine,
        passwords: Passwords,
        config: AuthConfig,
        *,
        kms: KeyManager,
        audit: AuditRecorder | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        """`kms` wraps the TOTP secrets; `now_us` is the clock of sessions, lockouts and TOTP
        steps (a test moves it)."""
        self.engine = engine
        self.kms = kms
        self.passwords = passwords
        self.config = config
        self.audit = audit
        self.now_us = now_us

    def record(self, uow: UnitOfWork, tenant_id: str, actor: str, kind: str, user_id: str,
               data: dict[str, Any]) -> None:  # fmt: skip
        """An audit leaf `kind` about the user: ids and roles, never an email or a secret."""
        if self.audit is not None:
            self.audit.record_all(uow, tenant_id, actor, [(kind, user_id, data)])

    def accept_totp(self, row: store.UserRow, code: str, now_us: int) -> bool:
        """Whether `code` is right now and later than the last one accepted; if so it is
        recorded as used (of two requests racing with one code, one wins)."""
        if row.totp_secret is None or row.totp_kek_version is None:
            return False
        wrapped = WrappedKey(row.totp_kek_version, row.totp_secret)
        secret = self.kms.unwrap(wrapped, totp_aad(row.tenant_id, row.id))
        step = totp.verify(secret, code, now_us // _US, after_step=row.totp_last_step)
        if step is None:
            return False
        with UnitOfWork(self.engine) as uow:
            won = store.accept_totp_step(uow, row.id, step)
            uow.commit()
        return won

    # -- users ---------------------------------------------------------------------------

    def create_user(
        self,
        tenant_id: str,
        email: str,
        role: str,
        password: str | None,
        *,
        actor: str,
        customer_id: str | None = None,
    ) -> User:
        """A user of the tenant; `password` None leaves them unable to sign in with one
        (until an invitation sets one: create_invited_user)."""
        return self._create(tenant_id, email, role, password, actor, customer_id, None)

    def create_invited_user(
        self, tenant_id: str, email: str, role: str, *, actor: str, customer_id: str | None = None
    ) -> tuple[User, str]:
        """A user without a password, and an invitation (`inv_...`, shown once, good once for
        INVITATION_TTL_S) that sets it: POST /v1/auth/invitations. The admin hands it over."""
        token = INVITATION_PREFIX + secrets.token_urlsafe(32)
        user = self._create(tenant_id, email, role, None, actor, customer_id, token)
        return user, token

    def _create(
        self,
        tenant_id: str,
        email: str,
        role: str,
        password: str | None,
        actor: str,
        customer_id: str | None,
        invitation: str | None,
    ) -> User:
        parsed = parse_role(role)
        address = normalise_email(email)
        encoded = None
        if password is not None:
            problem = check_password_strength(password)
            if problem is not None:
                raise InvalidRequest(problem, param="password", code="weak_password")
            encoded = self.passwords.hash(password)
        kind = kind_for(parsed)
        if customer_id is not None and kind is not UserKind.CUSTOMER:
            raise InvalidRequest(
                "only a customer user has a customer_id", param="customer_id", code="invalid_role"
            )
        user_id = ids.new_id("usr")
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            handle = secrets.token_bytes(32)
            if not store.insert_user(
                uow, user_id, tenant_id, kind.value, address, parsed.value, encoded, handle,
                customer_id, now,
            ):  # fmt: skip
                raise Conflict("email_taken", "a user of this tenant has this email")
            data: dict[str, Any] = {"user_id": user_id, "role": parsed.value, "kind": kind.value}
            if invitation is not None:
                expires = now + INVITATION_TTL_S * _US
                row = store.ChallengeRow(tenant_id, INVITATION_PURPOSE, user_id, None, b"", expires)
                store.insert_challenge(uow, session_id_of(invitation), row)
                data["invited"] = True
            self.record(uow, tenant_id, actor, "user.created", user_id, data)
            uow.commit()
        return User(user_id, tenant_id, kind, parsed, now, customer_id)

    def accept_invitation(self, token: str, password: str) -> User:
        """Sets the invited user's first password; the invitation is spent (`invalid_challenge`
        for one unknown, used or expired)."""
        problem = check_password_strength(password)
        if problem is not None:
            raise InvalidRequest(problem, param="password", code="weak_password")
        encoded = self.passwords.hash(password)
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            found = None
            if token.startswith(INVITATION_PREFIX) and len(token) <= TOKEN_CHARS_MAX:
                found = store.take_challenge(uow, session_id_of(token))
            if (
                found is None
                or found.purpose != INVITATION_PURPOSE
                or found.expires_at <= now
                or found.user_id is None
            ):
                raise InvalidChallenge("the invitation is unknown, used or expired", param="token")
            store.set_password_hash(uow, found.user_id, encoded)
            data = {"user_id": found.user_id}
            self.record(
                uow, found.tenant_id, f"{USER_ACTOR_PREFIX}{found.user_id}",
                "user.invitation_accepted", found.user_id, data,
            )  # fmt: skip
            row = store.get_user(uow, found.user_id)
            uow.commit()
        assert row is not None
        return user_of(row)

    def get_user(self, tenant_id: str, user_id: str) -> User:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_user(uow, user_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"no user {user_id}", param="user_id")
        return user_of(row)

    def list_users(
        self, tenant_id: str, *, starting_after: str | None, limit: int, email: str | None = None
    ) -> tuple[list[User], bool]:
        """A page of the tenant's users by id and whether more follow; with `email`, the one
        user who signs in with it (or none): how an admin finds the id of someone they know,
        with no listing of anyone's address."""
        address = None if email is None else normalise_email(email)
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.list_users(uow, tenant_id, starting_after, limit + 1, address)
        return [user_of(r) for r in rows[:limit]], len(rows) > limit

    def set_role(self, tenant_id: str, user_id: str, role: str, *, actor: str) -> User:
        parsed = parse_role(role)
        with UnitOfWork(self.engine) as uow:
            row = store.get_user(uow, user_id, lock=True)
            if row is None or row.tenant_id != tenant_id:
                raise NotFound(f"no user {user_id}", param="user_id")
            if kind_for(parsed).value != row.kind:
                # A customer user is bound to their customer_id; staff have none.
                raise InvalidRequest(
                    "a customer user keeps the customer role, and staff a staff role",
                    param="role",
                    code="invalid_role",
                )
            if row.role != parsed.value:
                store.set_role(uow, user_id, parsed.value, kind_for(parsed).value)
                data = {"user_id": user_id, "from": row.role, "to": parsed.value}
                self.record(uow, tenant_id, actor, "user.role_changed", user_id, data)
            uow.commit()
        return self.get_user(tenant_id, user_id)

    # -- password sign-in ----------------------------------------------------------------

    def sign_in(
        self, tenant_id: str | None, email: str, password: str, totp_code: str | None
    ) -> NewSession:
        """A session for the right email, password (and TOTP code, once enrolled). Every
        failure answers `invalid_credentials` after the same Argon2id work, whether the
        email exists or not; the account's failures count toward its lockout. A right
        password without a needed code answers `totp_required` (it reveals that the password
        was right, to whoever knows it)."""
        try:
            address = normalise_email(email)
        except InvalidRequest:
            address = None
        now = self.now_us()
        with UnitOfWork(self.engine, write=False) as uow:
            row = (
                store.get_user_by_email(uow, tenant_id, address)
                if tenant_id is not None and address is not None
                else None
            )
        # Argon2id runs whether the user exists or not (a dummy hash when not).
        matched = self.passwords.verify(row.password_hash if row else None, password)
        if row is None:
            raise InvalidCredentials(_REFUSAL)
        locked = row.locked_until is not None and row.locked_until > now
        if not matched or locked:
            if not locked:
                self.count_failure(row)
            raise InvalidCredentials(_REFUSAL)
        if row.totp_confirmed_at is not None:
            if not totp_code:
                raise TotpRequired("this account needs a TOTP code too: send `totp`")
            if not self.accept_totp(row, totp_code, now):
                self.count_failure(row)
                raise InvalidCredentials(_REFUSAL)
        assert row.password_hash is not None
        rehash = self.passwords.needs_rehash(row.password_hash)
        with UnitOfWork(self.engine) as uow:
            store.reset_failures(uow, row.id)
            if rehash:  # the parameters rose since this hash was made
                store.set_password_hash(uow, row.id, self.passwords.hash(password))
            new = self._open_session(uow, row, SignInMethod.PASSWORD, now)
            uow.commit()
        return new

    def count_failure(self, row: store.UserRow) -> None:
        """A failed proof (a password, or a TOTP code at sign-in or step-up) counts toward
        the account's lockout."""
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            until = now + self.config.lockout_s * _US
            if store.record_failure(uow, row.id, self.config.login_failures_max, until):
                data = {"user_id": row.id, "locked_for_s": self.config.lockout_s}
                self.record(uow, row.tenant_id, LOCKOUT_ACTOR, "user.locked", row.id, data)
            uow.commit()

    # -- sessions ------------------------------------------------------------------------

    def _open_session(
        self, uow: UnitOfWork, row: store.UserRow, method: SignInMethod, now: int
    ) -> NewSession:
        token = SESSION_TOKEN_PREFIX + secrets.token_urlsafe(32)
        session_id = session_id_of(token)
        expires = now + self.config.session_ttl_s * _US
        idle = min(expires, now + self.config.session_idle_s * _US)
        store.insert_session(
            uow, session_id, row.id, row.tenant_id, now, expires, idle, method.value
        )
        principal = UserPrincipal(
            row.id, row.tenant_id, Role(row.role), UserKind(row.kind), session_id, 0, expires
        )
        return NewSession(token, principal, expires)

    def open_session(self, user_id: str, method: SignInMethod) -> NewSession:
        """A session for a user who proved who they are another way (a passkey)."""
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            row = store.get_user(uow, user_id)
            assert row is not None
            store.reset_failures(uow, row.id)
            new = self._open_session(uow, row, method, now)
            uow.commit()
        return new

    def authenticate(self, token: str) -> UserPrincipal | None:
        """The principal of a live session, or None (unknown, expired, idle, revoked). Its
        idle expiry moves forward, written at most every tenth of the idle window."""
        if not well_formed_token(token):
            return None
        session_id = session_id_of(token)
        now = self.now_us()
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_session(uow, session_id)
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at <= now or row.idle_expires_at <= now:
            return None
        idle_us = self.config.session_idle_s * _US
        wanted = min(row.expires_at, now + idle_us)
        if wanted - row.idle_expires_at > idle_us // 10:
            with UnitOfWork(self.engine) as uow:
                store.touch_session(uow, session_id, wanted)
                uow.commit()
        until = 0
        if row.stepped_up_at is not None:
            until = min(row.stepped_up_at + self.config.step_up_window_s * _US, row.expires_at)
        return UserPrincipal(
            row.user_id,
            row.tenant_id,
            Role(row.role),
            UserKind(row.kind),
            session_id,
            until,
            row.expires_at,
        )

    def sign_out(self, principal: UserPrincipal) -> None:
        with UnitOfWork(self.engine) as uow:
            store.revoke_session(uow, principal.session_id, self.now_us())
            uow.commit()

    def mark_stepped_up(self, principal: UserPrincipal, factor: str) -> int:
        """Records a step-up of the principal's session; until when it counts."""
        now = self.now_us()
        with UnitOfWork(self.engine) as uow:
            store.step_up_session(uow, principal.session_id, now)
            store.reset_failures(uow, principal.user_id)
            data = {"user_id": principal.user_id, "factor": factor}
            self.record(
                uow,
                principal.tenant_id,
                principal.actor,
                "user.stepped_up",
                principal.user_id,
                data,
            )
            uow.commit()
        return now + self.config.step_up_window_s * _US

    def purge(self) -> int:
        """Sessions past their absolute expiry and challenges past theirs, deleted."""
        with UnitOfWork(self.engine) as uow:
            count = store.purge_sessions(uow, self.now_us())
            uow.commit()
        return count


def stepped_up_recently(
    engine: Engine, user_id: str, window_s: int, now_us: int | None = None
) -> bool:
    """Whether a live session of the user stepped up within `window_s` (the transfer step-up
    gate's question: it knows the actor, not the session)."""
    now = clock.now_us() if now_us is None else now_us
    with UnitOfWork(engine, write=False) as uow:
        return store.stepped_up_since(uow, user_id, now - window_s * _US, now)


_REFUSAL = "the email, password or code is wrong, or the account is locked for a while"
