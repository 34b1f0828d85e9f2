"""Request and response bodies of sign-in, factors and users (pydantic, strict)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from strongroom.core.clock import Timestamp
from strongroom.security.auth.model import EMAIL_CHARS_MAX
from strongroom.security.auth.passwords import PASSWORD_BYTES_MAX

TENANT_CHARS_MAX = 63
CHALLENGE_ID_CHARS_MAX = 64
CREDENTIAL_KEYS_MAX = 16


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------


class SessionCreate(_In):
    tenant: str = Field(min_length=1, max_length=TENANT_CHARS_MAX, description="the tenant's name")
    email: str = Field(min_length=1, max_length=EMAIL_CHARS_MAX)
    password: str = Field(min_length=1, max_length=PASSWORD_BYTES_MAX)
    totp: str | None = Field(default=None, max_length=10, description="the TOTP code, if enrolled")
    cookie: StrictBool = Field(
        default=False,
        description="true: the session is set as an HttpOnly cookie (a browser) and the token "
        "is not in the body; false: the body carries the bearer token st_...",
    )


class TotpCode(_In):
    code: str = Field(min_length=1, max_length=10)


class TenantOnly(_In):
    tenant: str = Field(min_length=1, max_length=TENANT_CHARS_MAX, description="the tenant's name")


class PasskeyAnswer(_In):
    challenge_id: str = Field(min_length=1, max_length=CHALLENGE_ID_CHARS_MAX)
    credential: dict[str, Any] = Field(
        max_length=CREDENTIAL_KEYS_MAX,
        description="the PublicKeyCredential as JSON (its toJSON(), binary members base64url)",
    )


class PasskeySignIn(PasskeyAnswer):
    cookie: StrictBool = False


class StepUp(_In):
    totp: str | None = Field(default=None, max_length=10, description="a TOTP code, or...")
    challenge_id: str | None = Field(default=None, max_length=CHALLENGE_ID_CHARS_MAX)
    credential: dict[str, Any] | None = Field(
        default=None,
        max_length=CREDENTIAL_KEYS_MAX,
        description="...a passkey's assertion for the challenge of /v1/auth/step-up/options",
    )


class UserCreate(_In):
    email: str = Field(min_length=1, max_length=EMAIL_CHARS_MAX)
    role: str = Field(min_length=1, max_length=32)
    password: str | None = Field(
        default=None,
        max_length=PASSWORD_BYTES_MAX,
        description="an initial password (at least 12 characters); none: passkey only, "
        "registered from a session",
    )
    customer_id: str | None = Field(default=None, max_length=64)
    invite: StrictBool = Field(
        default=False,
        description="true (without a password): the answer carries an invitation (inv_...), "
        "shown once, good once for 7 days, that sets the user's password",
    )


class InvitationAccept(_In):
    token: str = Field(min_length=1, max_length=100, description="the invitation, inv_...")
    password: str = Field(min_length=1, max_length=PASSWORD_BYTES_MAX)


class UserUpdate(_In):
    role: str = Field(min_length=1, max_length=32)


# -- responses -----------------------------------------------------------------------------


class UserOut(_Out):
    id: str
    object: Literal["user"]
    kind: Literal["staff", "customer"]
    role: str
    customer_id: str | None
    totp_enrolled: bool
    invitation: str | None = Field(
        default=None, description="inv_...: only when the user was just created with invite"
    )


class UserList(_Out):
    object: Literal["list"]
    data: list[UserOut]
    has_more: bool


class SessionOut(_Out):
    object: Literal["session"]
    token: str | None = Field(description="st_...: send as 'Authorization: Bearer st_...'")
    expires_at: Timestamp
    user_id: str
    role: str
    stepped_up_until: Timestamp | None


class TotpEnrolment(_Out):
    otpauth_uri: str = Field(description="shown once: add it to an authenticator app")


class Challenge(_Out):
    challenge_id: str
    options: dict[str, Any] = Field(description="for navigator.credentials (publicKey)")


class PasskeyOut(_Out):
    id: str
    object: Literal["passkey"]


class SteppedUp(_Out):
    stepped_up_until: Timestamp


class SessionDeleted(_Out):
    object: Literal["session"]
    deleted: Literal[True]


class TotpConfirmed(_Out):
    totp_enrolled: Literal[True]
