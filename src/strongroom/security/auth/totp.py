"""One-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238) on the standard library's HMAC.

A code is accepted in the current time-step or one step either side (clock drift), and only
in a step later than the last one accepted for the user: a code seen once (over a shoulder, in
a phishing proxy's log) is refused the second time. The caller stores the step `verify`
returns and compares atomically (store.accept_totp_step).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final
from urllib.parse import quote, urlencode

STEP_S: Final = 30
DIGITS: Final = 6
DRIFT_STEPS: Final = 1  # steps either side of now that a code may come from
SECRET_BYTES: Final = 20  # 160 bits, RFC 4226's recommendation for SHA-1
_DIGESTS: Final = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def hmac_digest(algorithm: str, key: bytes, message: bytes) -> bytes:
    """HMAC (RFC 2104) with SHA-1, SHA-256 or SHA-512."""
    return hmac.new(key, message, _DIGESTS[algorithm]).digest()


def hotp(secret: bytes, counter: int, *, digits: int = DIGITS, algorithm: str = "SHA1") -> str:
    """RFC 4226 section 5.3: dynamic truncation of HMAC(secret, counter)."""
    assert 0 <= counter < 2**64
    assert 6 <= digits <= 10
    mac = hmac_digest(algorithm, secret, counter.to_bytes(8, "big"))
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(unix_s: int, *, step_s: int = STEP_S) -> int:
    return unix_s // step_s


def totp(
    secret: bytes,
    unix_s: int,
    *,
    digits: int = DIGITS,
    algorithm: str = "SHA1",
    step_s: int = STEP_S,
) -> str:
    """RFC 6238: HOTP over the number of `step_s` periods since the epoch."""
    return hotp(secret, time_step(unix_s, step_s=step_s), digits=digits, algorithm=algorithm)


def verify(secret: bytes, code: str, unix_s: int, *, after_step: int | None) -> int | None:
    """The time-step `code` belongs to (now, or one step either side), or None. A step not
    later than `after_step` (the last one accepted) is refused: each code works once."""
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    now = time_step(unix_s)
    found = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        # Every candidate is compared (in constant time), not just until the first match.
        if hmac.compare_digest(hotp(secret, step), code) and found is None:
            found = step
    if found is None or (after_step is not None and found <= after_step):
        return None
    return found


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode().rstrip("=")


def otpauth_uri(secret: bytes, *, issuer: str, account: str) -> str:
    """The Key Uri Format authenticator apps read (as a QR code or pasted)."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": base32(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_S,
        }
    )
    return f"otpauth://totp/{label}?{query}"
