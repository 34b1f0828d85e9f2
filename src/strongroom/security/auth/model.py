"""Pure vocabulary of people: users, the principal a session authenticates, the settings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from strongroom.core.errors import InvalidRequest
from strongroom.security.rbac import Role, role_scopes
from strongroom.tenancy.model import Scope, grants

SESSION_TOKEN_PREFIX: Final = "st_"  # noqa: S105 - the public prefix of a token, not a secret
SESSION_COOKIE: Final = "strongroom_session"
USER_ACTOR_PREFIX: Final = "user:"
EMAIL_CHARS_MAX: Final = 320  # RFC 5321's path limit
_EMAIL: Final = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class UserKind(StrEnum):
    STAFF = "staff"
    CUSTOMER = "customer"


class SignInMethod(StrEnum):
    PASSWORD = "password"  # noqa: S105 - a method's name, not a password
    PASSKEY = "passkey"


class ChallengePurpose(StrEnum):
    REGISTER = "passkey.register"
    AUTHENTICATE = "passkey.authenticate"
    STEP_UP = "passkey.step_up"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """The settings of sign-in (settings.py, STRONGROOM_SESSION_* and friends)."""

    session_ttl_s: int = 8 * 3600
    session_idle_s: int = 15 * 60
    step_up_window_s: int = 5 * 60
    login_failures_max: int = 5
    lockout_s: int = 30 * 60
    rp_id: str = "localhost"
    rp_name: str = "Strongroom"
    origins: tuple[str, ...] = ("http://localhost:8000",)
    challenge_ttl_s: int = 5 * 60
    totp_issuer: str = "Strongroom"


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str
    kind: UserKind
    role: Role
    created_at: int
    customer_id: str | None = None
    totp_enrolled: bool = False

    def public(self) -> dict[str, object]:
        """What the API answers about a user: never the email (staff emails stay out of
        answers other than the admin's own listing), hash or secrets."""
        return {
            "id": self.id,
            "object": "user",
            "kind": self.kind.value,
            "role": self.role.value,
            "customer_id": self.customer_id,
            "totp_enrolled": self.totp_enrolled,
        }


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A signed-in user, as a request sees it: the same interface as an API key."""

    user_id: str
    tenant_id: str
    role: Role
    kind: UserKind
    session_id: str
    stepped_up_until_us: int  # 0: never stepped up in this session
    expires_at_us: int = 0  # the session's absolute expiry

    @property
    def id(self) -> str:
        return self.user_id

    @property
    def actor(self) -> str:
        return f"{USER_ACTOR_PREFIX}{self.user_id}"

    @property
    def machine(self) -> bool:
        return False

    @property
    def scopes(self) -> frozenset[Scope]:
        return role_scopes(self.role)

    def allows(self, scope: Scope) -> bool:
        return grants(role_scopes(self.role), scope)


def normalise_email(email: str) -> str:
    """Lowercased and stripped; refused when it does not look like an address (the refusal
    does not echo it: it is personal data)."""
    value = email.strip().lower()
    if len(value) > EMAIL_CHARS_MAX or not _EMAIL.match(value):
        raise InvalidRequest("not an email address", param="email", code="invalid_email")
    return value


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest(
            f"a role is one of {', '.join(r.value for r in Role)}",
            param="role",
            code="invalid_role",
        ) from None


def kind_for(role: Role) -> UserKind:
    """A customer user has the customer role, and only they do."""
    return UserKind.CUSTOMER if role is Role.CUSTOMER else UserKind.STAFF
