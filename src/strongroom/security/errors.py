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
