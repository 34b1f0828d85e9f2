"""The client's operations of people: signing in (a session token works as the client's
`api_key`: `Client(url, api_key="st_...")`), TOTP, passkeys, step-up, users and API keys.
Re-exported by `resources`, so both clients have them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from strongroom.client._spec import Call, model, segment
from strongroom.security.auth.schemas import (
    Challenge,
    PasskeyOut,
    SessionDeleted,
    SessionOut,
    SteppedUp,
    TotpConfirmed,
    TotpEnrolment,
    UserList,
    UserOut,
)
from strongroom.tenancy.api import ApiKeyOut


def create_session(
    tenant: str, email: str, password: str, *, totp: str | None = None
) -> Call[SessionOut]:
    """Sign in with a password (and a TOTP code once enrolled): the answer's `token` (st_...)
    is the session's bearer token."""
    body = {"tenant": tenant, "email": email, "password": password, "totp": totp}
    return Call("POST", "/v1/auth/sessions", model(SessionOut), json=body)


def get_current_session() -> Call[SessionOut]:
    """Who the session is, and until when its last step-up counts (a session's token)."""
    return Call("GET", "/v1/auth/sessions/current", model(SessionOut))


def delete_current_session() -> Call[SessionDeleted]:
    """Sign out: the session is revoked at once."""
    return Call("DELETE", "/v1/auth/sessions/current", model(SessionDeleted))


def create_totp_enrolment() -> Call[TotpEnrolment]:
    """A new TOTP secret as an otpauth URI, shown once; confirm it with confirm_totp."""
    return Call("POST", "/v1/auth/totp", model(TotpEnrolment))


def confirm_totp(code: str) -> Call[TotpConfirmed]:
    return Call("POST", "/v1/auth/totp/confirm", model(TotpConfirmed), json={"code": code})


def create_passkey_registration_options() -> Call[Challenge]:
    """Options for navigator.credentials.create() (a signed-in user)."""
    return Call("POST", "/v1/auth/passkeys/registration/options", model(Challenge))


def create_passkey(challenge_id: str, credential: Mapping[str, Any]) -> Call[PasskeyOut]:
    """Register the authenticator's answer to the registration options."""
    body = {"challenge_id": challenge_id, "credential": dict(credential)}
    return Call("POST", "/v1/auth/passkeys/registration", model(PasskeyOut), json=body)


def create_passkey_authentication_options(tenant: str) -> Call[Challenge]:
    """Options for navigator.credentials.get() to sign in with a passkey (no key needed)."""
    return Call(
        "POST",
        "/v1/auth/passkeys/authentication/options",
        model(Challenge),
        json={"tenant": tenant},
    )


def create_passkey_session(challenge_id: str, credential: Mapping[str, Any]) -> Call[SessionOut]:
    """Sign in with a passkey's assertion: the answer's `token` is the session's."""
    body = {"challenge_id": challenge_id, "credential": dict(credential)}
    return Call("POST", "/v1/auth/passkeys/authentication", model(SessionOut), json=body)


def create_step_up_options() -> Call[Challenge]:
    """Options for navigator.credentials.get() with this user's passkeys."""
    return Call("POST", "/v1/auth/step-up/options", model(Challenge))


def step_up(
    *,
    totp: str | None = None,
    challenge_id: str | None = None,
    credential: Mapping[str, Any] | None = None,
) -> Call[SteppedUp]:
    """Step up with a TOTP code, or a passkey's assertion for create_step_up_options."""
    body = {
        "totp": totp,
        "challenge_id": challenge_id,
        "credential": dict(credential) if credential is not None else None,
    }
    return Call("POST", "/v1/auth/step-up", model(SteppedUp), json=body)


def create_user(
    email: str,
    role: str,
    *,
    password: str | None = None,
    invite: bool = False,
    customer_id: str | None = None,
    idempotency_key: str | None = None,
) -> Call[UserOut]:
    """A user of the caller's tenant (`admin`; a user must have stepped up), with a password
    or an invitation (`invite`: the answer's `invitation`, shown once)."""
    body = {
        "email": email,
        "role": role,
        "password": password,
        "customer_id": customer_id,
        "invite": invite,
    }
    return Call("POST", "/v1/users", model(UserOut), json=body, idempotency_key=idempotency_key)


def accept_invitation(token: str, password: str) -> Call[UserOut]:
    """Set an invited user's first password (no key needed)."""
    body = {"token": token, "password": password}
    return Call("POST", "/v1/auth/invitations", model(UserOut), json=body)


def list_users(
    *, limit: int | None = None, starting_after: str | None = None, email: str | None = None
) -> Call[UserList]:
    """The tenant's users by id (`admin`), never their addresses; `email`: the one user who
    signs in with it, if any."""
    params = {"limit": limit, "starting_after": starting_after, "email": email}
    return Call("GET", "/v1/users", model(UserList), params=params)


def get_user(user_id: str) -> Call[UserOut]:
    return Call("GET", f"/v1/users/{segment(user_id)}", model(UserOut))


def update_user(user_id: str, *, role: str) -> Call[UserOut]:
    """Change a user's role (`admin`; a user must have stepped up)."""
    return Call("PATCH", f"/v1/users/{segment(user_id)}", model(UserOut), json={"role": role})


def create_api_key(
    scopes: Sequence[str],
    *,
    transfer_ceiling: int | None = None,
    idempotency_key: str | None = None,
) -> Call[ApiKeyOut]:
    """A new API key of the caller's tenant; its `secret` is shown once (`admin`; a user must
    have stepped up)."""
    body = {"scopes": list(scopes), "transfer_ceiling": transfer_ceiling}
    return Call(
        "POST", "/v1/api_keys", model(ApiKeyOut), json=body, idempotency_key=idempotency_key
    )
