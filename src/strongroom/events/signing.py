"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec 1.0).

A message is signed with HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed by
the bytes of the endpoint's secret (base64 after the `whsec_` prefix), and sent as
`webhook-signature: v1,<base64 digest>`. The id is the event id and stays the same on every
retry, so a receiver can deduplicate; the timestamp is that of the attempt, so a receiver can
refuse replays older than a tolerance.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from enum import StrEnum

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import WEBHOOK_TIMESTAMP_TOLERANCE_S

SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of every secret, not a secret
SECRET_BYTES = 24  # 192 bits, as the reference libraries generate
SIGNATURE_VERSION = "v1"
# A receiver accepts a message if any listed signature matches (several during a key rotation);
# a longer header is refused rather than parsed.
SIGNATURE_HEADER_LENGTH_MAX = 1_024

HEADER_ID = "webhook-id"
HEADER_TIMESTAMP = "webhook-timestamp"
HEADER_SIGNATURE = "webhook-signature"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret. Raises InvalidRequest (without the secret's
    value in the message) if it is not base64."""
    text = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(
            "a webhook secret is 'whsec_' followed by base64", param="secret", code="invalid_secret"
        ) from None
    if not key:
        raise InvalidRequest("the webhook secret is empty", param="secret", code="invalid_secret")
    return key


def _digest(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`."""
    digest = _digest(secret_key(secret), msg_id, timestamp_s, body)
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def headers(secret: str, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    return {
        HEADER_ID: msg_id,
        HEADER_TIMESTAMP: str(timestamp_s),
        HEADER_SIGNATURE: sign(secret, msg_id, timestamp_s, body),
    }


class Verification(StrEnum):
    """Ordered by precedence: the first failing check is the one reported."""

    OK = "ok"
    MISSING_HEADER = "missing_header"
    INVALID_TIMESTAMP = "invalid_timestamp"
    TIMESTAMP_TOO_OLD = "timestamp_too_old"
    TIMESTAMP_TOO_NEW = "timestamp_too_new"
    NO_MATCHING_SIGNATURE = "no_matching_signature"


def verify(
    secret: str,
    message_headers: Mapping[str, str],
    body: bytes,
    *,
    now_s: int,
    tolerance_s: int = WEBHOOK_TIMESTAMP_TOLERANCE_S,
) -> Verification:
    """Check a received message as a receiver must: the three headers are present, the
    timestamp is within `tolerance_s` of `now_s` either way, and one of the `v1` signatures
    matches (compared in constant time). Header names are case-insensitive."""
    lowered = {k.lower(): v for k, v in message_headers.items()}
    msg_id = lowered.get(HEADER_ID)
    timestamp = lowered.get(HEADER_TIMESTAMP)
    signatures = lowered.get(HEADER_SIGNATURE)
    if not msg_id or not timestamp or not signatures:
        return Verification.MISSING_HEADER
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return Verification.INVALID_TIMESTAMP
    timestamp_s = int(timestamp)
    if timestamp_s < now_s - tolerance_s:
        return Verification.TIMESTAMP_TOO_OLD
    if timestamp_s > now_s + tolerance_s:
        return Verification.TIMESTAMP_TOO_NEW
    if len(signatures) > SIGNATURE_HEADER_LENGTH_MAX:
        return Verification.NO_MATCHING_SIGNATURE
    expected = _digest(secret_key(secret), msg_id, timestamp_s, body)
    matched = False
    for item in signatures.split(" "):
        version, _, value = item.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        try:
            candidate = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        # Every candidate is compared, so the time taken does not say which one matched.
        matched |= hmac.compare_digest(candidate, expected)
    return Verification.OK if matched else Verification.NO_MATCHING_SIGNATURE
