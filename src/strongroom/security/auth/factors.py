"""The second factors: TOTP (enrolment, confirmation, checks) and WebAuthn passkeys
(registration, sign-in, step-up), with their challenges kept server-side, single use and
expiring. A TOTP secret is wrapped by the key manager's active key-encryption key, its
associated data naming the tenant and the user; it is never stored or logged in clear."""

from __future__ import annotations

from typing import Any

from strongroom.core import ids
from strongroom.db.uow import UnitOfWork
from strongroom.security.auth import passkeys, store, totp
from strongroom.security.auth.errors import (
    Conflict,
    InvalidChallenge,
    InvalidCode,
    PasskeyRejected,
)
from strongroom.security.auth.model import ChallengePurpose, SignInMethod, UserPrincipal
from strongroom.security.auth.service import NewSession, UserService
from strongroom.security.envelope import totp_aad
from strongroom.tenancy.access import require_step_up

_US = 1_000_000


class Factors:
    def __init__(self, users: UserService) -> None:
        self.users = users
        self.kms = users.kms
        self.config = users.config

    def _user(self, principal: UserPrincipal) -> store.UserRow:
        with UnitOfWork(self.users.engine, write=False) as uow:
            row = store.get_user(uow, principal.user_id)
        assert row is not None, "a session's user exists"
        return row

    def _guard_new_factor(self, principal: UserPrincipal, row: store.UserRow) -> None:
        """A user who has a factor already adds another only after a step-up: a stolen
        session must not be able to plant its own TOTP or passkey (persistent access). The
        first factor needs none: there is nothing yet to step up with."""
        with UnitOfWork(self.users.engine, write=False) as uow:
            has_passkey = bool(store.credentials_of(uow, row.id))
        if has_passkey or row.totp_confirmed_at is not None:
            require_step_up(principal, now_us=self.users.now_us())

    # -- TOTP ----------------------------------------------------------------------------

    def enrol_totp(self, principal: UserPrincipal) -> str:
        """A new secret, as an otpauth URI shown once; confirmed by a first code. Enrolling
        again before the confirmation replaces the secret; after it, 409."""
        row = self._user(principal)
        if row.totp_confirmed_at is not None:
            raise Conflict("totp_already_enrolled", "TOTP is enrolled already")
        self._guard_new_factor(principal, row)
        secret = totp.new_secret()
        wrapped = self.kms.wrap(secret, totp_aad(row.tenant_id, row.id))
        with UnitOfWork(self.users.engine) as uow:
            store.set_totp(uow, row.id, wrapped.version, wrapped.blob)
            uow.commit()
        # The label names the user by id: an email would be personal data in the URI.
        return totp.otpauth_uri(secret, issuer=self.config.totp_issuer, account=row.id)

    def confirm_totp(self, principal: UserPrincipal, code: str) -> None:
        row = self._user(principal)
        if row.totp_secret is None:
            raise Conflict("totp_not_enrolled", "start with POST /v1/auth/totp")
        if row.totp_confirmed_at is not None:
            raise Conflict("totp_already_enrolled", "TOTP is enrolled already")
        if not self.users.accept_totp(row, code, self.users.now_us()):
            raise InvalidCode("the code is wrong, expired or already used", param="code")
        with UnitOfWork(self.users.engine) as uow:
            store.confirm_totp(uow, row.id, self.users.now_us())
            data = {"user_id": row.id}
            self.users.record(
                uow, row.tenant_id, principal.actor, "user.totp_enrolled", row.id, data
            )
            uow.commit()

    def step_up_totp(self, principal: UserPrincipal, code: str) -> int:
        row = self._user(principal)
        if row.totp_confirmed_at is None:
            raise Conflict("totp_not_enrolled", "this user has no TOTP to step up with")
        # Each wrong code counts toward the lockout, as at sign-in: else a stolen session
        # could try the 10^6 codes here. A locked account steps up no more, with the same
        # answer as a wrong code.
        now = self.users.now_us()
        locked = row.locked_until is not None and row.locked_until > now
        if locked or not self.users.accept_totp(row, code, now):
            if not locked:
                self.users.count_failure(row)
            # The step-up body names the code `totp`, as sign-in does.
            raise InvalidCode("the code is wrong, expired or already used", param="totp")
        return self.users.mark_stepped_up(principal, "totp")

    # -- challenges ----------------------------------------------------------------------

    def _challenge(
        self,
        tenant_id: str,
        purpose: ChallengePurpose,
        challenge: bytes,
        principal: UserPrincipal | None = None,
    ) -> str:
        challenge_id = ids.new_id("chl")
        expires = self.users.now_us() + self.config.challenge_ttl_s * _US
        row = store.ChallengeRow(
            tenant_id,
            purpose.value,
            principal.user_id if principal else None,
            principal.session_id if principal else None,
            challenge,
            expires,
        )
        with UnitOfWork(self.users.engine) as uow:
            store.insert_challenge(uow, challenge_id, row)
            uow.commit()
        return challenge_id

    def _take(
        self, challenge_id: str, purpose: ChallengePurpose, principal: UserPrincipal | None
    ) -> store.ChallengeRow:
        with UnitOfWork(self.users.engine) as uow:
            row = store.take_challenge(uow, challenge_id) if len(challenge_id) <= 64 else None
            uow.commit()
        if (
            row is None
            or row.purpose != purpose.value
            or row.expires_at <= self.users.now_us()
            or (principal is not None and row.session_id != principal.session_id)
        ):
            raise InvalidChallenge(
                "the challenge is unknown, used or expired", param="challenge_id"
            )
        return row

    # -- passkeys ------------------------------------------------------------------------

    def registration_options(self, principal: UserPrincipal) -> tuple[str, dict[str, Any]]:
        row = self._user(principal)
        self._guard_new_factor(principal, row)
        with UnitOfWork(self.users.engine, write=False) as uow:
            existing = [(c.id, c.transports) for c in store.credentials_of(uow, row.id)]
        # The name the authenticator shows: the user's id (the email is personal data).
        options, challenge = passkeys.registration_options(
            self.config, handle=row.webauthn_handle, name=row.id, existing=existing
        )
        cid = self._challenge(row.tenant_id, ChallengePurpose.REGISTER, challenge, principal)
        return cid, options

    def register(
        self, principal: UserPrincipal, challenge_id: str, credential: dict[str, Any]
    ) -> str:
        found = self._take(challenge_id, ChallengePurpose.REGISTER, principal)
        new = passkeys.verify_registration(self.config, credential, found.challenge)
        row = store.CredentialRow(
            new.credential_id,
            principal.user_id,
            principal.tenant_id,
            new.public_key,
            new.sign_count,
            " ".join(new.transports),
        )
        with UnitOfWork(self.users.engine) as uow:
            if not store.insert_credential(uow, row, self.users.now_us()):
                raise PasskeyRejected("this passkey is registered already")
            data = {"user_id": principal.user_id, "credential_id": new.credential_id}
            self.users.record(
                uow, principal.tenant_id, principal.actor, "user.passkey_registered",
                principal.user_id, data,
            )  # fmt: skip
            uow.commit()
        return new.credential_id

    def authentication_options(self, tenant_id: str) -> tuple[str, dict[str, Any]]:
        """Sign-in options for any discoverable passkey of this relying party."""
        options, challenge = passkeys.authentication_options(self.config, [])
        return self._challenge(tenant_id, ChallengePurpose.AUTHENTICATE, challenge), options

    def _assert(
        self, found: store.ChallengeRow, credential: dict[str, Any], user_id: str | None
    ) -> store.CredentialRow:
        credential_id = passkeys.credential_id_of(credential)
        with UnitOfWork(self.users.engine, write=False) as uow:
            stored = store.get_credential(uow, credential_id)
            owner = store.get_user(uow, stored.user_id) if stored is not None else None
        if (
            stored is None
            or owner is None
            or stored.tenant_id != found.tenant_id
            or (user_id is not None and stored.user_id != user_id)
        ):
            raise PasskeyRejected("this passkey is not registered here")
        handle = passkeys.user_handle_of(credential)
        if handle is not None and handle != passkeys.handle_text(owner.webauthn_handle):
            raise PasskeyRejected("the passkey names another user")
        count = passkeys.verify_authentication(
            self.config, credential, found.challenge, stored.public_key, stored.sign_count
        )
        with UnitOfWork(self.users.engine) as uow:
            store.used_credential(uow, stored.id, count, self.users.now_us())
            uow.commit()
        return stored

    def sign_in(self, challenge_id: str, credential: dict[str, Any]) -> NewSession:
        found = self._take(challenge_id, ChallengePurpose.AUTHENTICATE, None)
        stored = self._assert(found, credential, None)
        return self.users.open_session(stored.user_id, SignInMethod.PASSKEY)

    def step_up_options(self, principal: UserPrincipal) -> tuple[str, dict[str, Any]]:
        with UnitOfWork(self.users.engine, write=False) as uow:
            mine = [(c.id, c.transports) for c in store.credentials_of(uow, principal.user_id)]
        if not mine:
            raise Conflict("no_passkey", "this user has no passkey: register one first")
        options, challenge = passkeys.authentication_options(self.config, mine)
        cid = self._challenge(principal.tenant_id, ChallengePurpose.STEP_UP, challenge, principal)
        return cid, options

    def step_up_passkey(
        self, principal: UserPrincipal, challenge_id: str, credential: dict[str, Any]
    ) -> int:
        found = self._take(challenge_id, ChallengePurpose.STEP_UP, principal)
        self._assert(found, credential, principal.user_id)
        return self.users.mark_stepped_up(principal, "passkey")
