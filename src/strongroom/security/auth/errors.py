"""The error codes of sign-in, factors and users (see core.errors). A refusal never says
whether an email exists, and never echoes a password, code or email."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError

AUTH_ERRORS: Final = (
    ErrorCode("invalid_credentials", 401, "The credentials are wrong, or the account is locked"),
    ErrorCode("totp_required", 401, "The password is right; a TOTP code is needed too"),
    ErrorCode("invalid_code", 400, "The one-time code is wrong, expired or already used"),
    ErrorCode("invalid_challenge", 400, "The challenge is unknown, used or expired"),
    ErrorCode("passkey_rejected", 400, "The passkey's answer did not verify"),
    ErrorCode("totp_already_enrolled", 409, "TOTP is enrolled already"),
    ErrorCode("totp_not_enrolled", 409, "TOTP is not enrolled"),
    ErrorCode("no_passkey", 409, "The user has no passkey to step up with"),
    ErrorCode("email_taken", 409, "A user of this tenant has this email"),
    ErrorCode("invalid_email", 400, "An email is malformed"),
    ErrorCode("invalid_role", 400, "A role is unknown"),
    ErrorCode("weak_password", 400, "A new password is too short or too long"),
    ErrorCode("session_required", 403, "This action is a signed-in user's, not an API key's"),
)


class InvalidCredentials(StrongroomError):
    code = "invalid_credentials"
    status = 401


class TotpRequired(StrongroomError):
    code = "totp_required"
    status = 401


class InvalidCode(StrongroomError):
    code = "invalid_code"
    status = 400


class InvalidChallenge(StrongroomError):
    code = "invalid_challenge"
    status = 400


class PasskeyRejected(StrongroomError):
    code = "passkey_rejected"
    status = 400


class Conflict(StrongroomError):
    status = 409

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class SessionRequired(StrongroomError):
    code = "session_required"
    status = 403
