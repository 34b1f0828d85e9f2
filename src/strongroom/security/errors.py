"""The error codes of data security (see core.errors)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError

SECURITY_ERRORS: Final = (
    ErrorCode("data_erased", 410, "The personal data of this subject was erased"),
    ErrorCode("key_unavailable", 503, "The key that protects this value is disabled"),
)


class DataErased(StrongroomError):
    """The subject's data key was destroyed (crypto-shredding): its values are gone for good."""

    code = "data_erased"
    status = 410


class KeyUnavailableError(StrongroomError):
    """The key-encryption key version that wrapped the subject's data key is disabled (enable
    it again, or it was destroyed before a rewrap moved the data key off it)."""

    code = "key_unavailable"
    status = 503


# The key operations' refusals: the `strongroom keys` commands and start-up only (no HTTP
# route raises them, so they are not in SECURITY_ERRORS, the clients' catalogue).


class KeyInUse(StrongroomError):
    """A key-encryption key version still wraps data keys: rewrap before destroying it."""

    code = "key_in_use"
    status = 409


class KeyStateError(StrongroomError):
    """A version's state cannot change so: unknown, active, or destroyed already."""

    code = "invalid_key_state"
    status = 409


class RecoveryFailed(StrongroomError):
    """A recovery export cannot be made or restored (the message says why, never a secret)."""

    code = "recovery_failed"
    status = 400
