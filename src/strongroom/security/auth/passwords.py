"""Password hashing with Argon2id (argon2-cffi), as RFC 9106 and OWASP advise.

The parameters come from the settings and may only rise above OWASP's minimum (19 MiB, two
passes, one lane). A stored hash carries its own parameters (a PHC string), so raising them
leaves old hashes verifiable; a sign-in that verifies an older hash rehashes it
(`needs_rehash`). An unknown email is answered after verifying against a dummy hash of the same
parameters, so the time taken does not tell whether the email exists.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP Password Storage Cheat Sheet, Argon2id's minimum configuration.
MEMORY_KIB_MIN: Final = 19 * 1024
TIME_COST_MIN: Final = 2
PARALLELISM_MIN: Final = 1
# RFC 9106's second recommended option (its "low memory" profile): argon2-cffi's default.
MEMORY_KIB_DEFAULT: Final = 64 * 1024
TIME_COST_DEFAULT: Final = 3
PARALLELISM_DEFAULT: Final = 4
# Bounds on input: a password is at most this many bytes of UTF-8 (hashing is per byte).
PASSWORD_BYTES_MAX: Final = 1024
PASSWORD_CHARS_MIN: Final = 12


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    memory_kib: int = MEMORY_KIB_DEFAULT
    time_cost: int = TIME_COST_DEFAULT
    parallelism: int = PARALLELISM_DEFAULT

    def __post_init__(self) -> None:
        assert self.memory_kib >= MEMORY_KIB_MIN, "below OWASP's minimum memory"
        assert self.time_cost >= TIME_COST_MIN, "below OWASP's minimum passes"
        assert self.parallelism >= PARALLELISM_MIN


class Passwords:
    def __init__(self, policy: PasswordPolicy) -> None:
        self.policy = policy
        self._hasher = PasswordHasher(
            time_cost=policy.time_cost,
            memory_cost=policy.memory_kib,
            parallelism=policy.parallelism,
        )
        # Verified against when the user is unknown or has no password: same cost, no match.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, encoded: str | None, password: str) -> bool:
        """Whether `password` matches; a missing or malformed hash costs the same and fails."""
        try:
            if encoded is None:
                self._hasher.verify(self._dummy, password)
                return False
            return self._hasher.verify(encoded, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, encoded: str) -> bool:
        """True when the hash was made with other parameters than today's."""
        try:
            return self._hasher.check_needs_rehash(encoded)
        except InvalidHashError:
            return True


def check_password_strength(password: str) -> str | None:
    """Why a new password is refused, or None. Length only (NIST SP 800-63B): no rules on
    character classes, which make passwords worse, not better."""
    if len(password) < PASSWORD_CHARS_MIN:
        return f"a password has at least {PASSWORD_CHARS_MIN} characters"
    if len(password.encode()) > PASSWORD_BYTES_MAX:
        return f"a password has at most {PASSWORD_BYTES_MAX} bytes"
    return None
