"""Standard Webhooks signatures: the reference vector, verification, the payload, the backoff."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.events import signing
from strongroom.events.model import Event, backoff_ms
from strongroom.events.signing import Verification

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP_S = 1_614_265_330
BODY = b'{"test": 2432232314}'


@pytest.fixture
def vector(shared_data: Path) -> dict[str, Any]:
    path = shared_data / "vectors" / "strongroom-misc-vectors.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["standard_webhooks_v1"]
    return loaded


def _headers(
    secret: str = SECRET, msg_id: str = MSG_ID, ts: int = TIMESTAMP_S, body: bytes = BODY
) -> dict[str, str]:
    return signing.headers(secret, msg_id, ts, body)


def test_reference_vector(vector: dict[str, Any]) -> None:
    body = vector["payload"].encode()
    signature = signing.sign(
        vector["secret"], vector["webhook_id"], vector["webhook_timestamp"], body
    )
    assert signature == vector["webhook_signature"]
    headers = {
        "webhook-id": vector["webhook_id"],
        "webhook-timestamp": str(vector["webhook_timestamp"]),
        "webhook-signature": vector["webhook_signature"],
    }
    now = vector["webhook_timestamp"] + vector["tolerance_seconds"]
    assert signing.verify(vector["secret"], headers, body, now_s=now) is Verification.OK


def test_headers_carry_id_timestamp_and_signature() -> None:
    headers = _headers()
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP_S),
        "webhook-signature": signing.sign(SECRET, MSG_ID, TIMESTAMP_S, BODY),
    }
    assert headers["webhook-signature"].startswith("v1,")


def test_new_secrets_are_24_random_bytes_in_base64() -> None:
    secrets = {signing.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
        assert signing.secret_key(secret) == base64.b64decode(secret[6:])


def test_a_secret_without_prefix_is_the_same_key() -> None:
    assert signing.sign(SECRET[6:], MSG_ID, TIMESTAMP_S, BODY) == signing.sign(
        SECRET, MSG_ID, TIMESTAMP_S, BODY
    )


@pytest.mark.parametrize("secret", ["whsec_", "whsec_not base64!", "whsec_abc"])
def test_malformed_secrets_are_refused_without_echoing_them(secret: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        signing.secret_key(secret)
    assert info.value.code == "invalid_secret"
    assert "not base64" not in str(info.value)
    assert "abc" not in str(info.value)


def test_verify_accepts_within_tolerance_either_way() -> None:
    headers = _headers()
    for now in (TIMESTAMP_S - 300, TIMESTAMP_S, TIMESTAMP_S + 300):
        assert signing.verify(SECRET, headers, BODY, now_s=now) is Verification.OK


def test_tampered_body_id_or_timestamp_is_refused() -> None:
    headers = _headers()
    now = TIMESTAMP_S
    assert (
        signing.verify(SECRET, headers, b'{"test": 2432232315}', now_s=now)
        is Verification.NO_MATCHING_SIGNATURE
    )
    forged_id = {**headers, "webhook-id": "msg_other"}
    assert signing.verify(SECRET, forged_id, BODY, now_s=now) is Verification.NO_MATCHING_SIGNATURE
    forged_ts = {**headers, "webhook-timestamp": str(TIMESTAMP_S + 1)}
    assert signing.verify(SECRET, forged_ts, BODY, now_s=now) is Verification.NO_MATCHING_SIGNATURE


def test_another_secret_does_not_verify() -> None:
    other = signing.new_secret()
    assert (
        signing.verify(other, _headers(), BODY, now_s=TIMESTAMP_S)
        is Verification.NO_MATCHING_SIGNATURE
    )


def test_old_and_future_timestamps_are_refused_even_when_signed() -> None:
    headers = _headers()
    assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S + 301) is (
        Verification.TIMESTAMP_TOO_OLD
    )
    assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S - 301) is (
        Verification.TIMESTAMP_TOO_NEW
    )
    assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S + 10, tolerance_s=5) is (
        Verification.TIMESTAMP_TOO_OLD
    )


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_headers_are_refused(missing: str) -> None:
    headers = {k: v for k, v in _headers().items() if k != missing}
    assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S) is Verification.MISSING_HEADER


@pytest.mark.parametrize("value", ["-1", "1614265330.5", "soon", "1" * 13, "١٢٣"])
def test_malformed_timestamps_are_refused(value: str) -> None:
    headers = {**_headers(), "webhook-timestamp": value}
    assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S) is (
        Verification.INVALID_TIMESTAMP
    )


def test_any_listed_v1_signature_may_match_and_other_versions_are_ignored() -> None:
    good = _headers()["webhook-signature"]
    bad = "v1," + base64.b64encode(b"\0" * 32).decode()
    for listed in (f"{bad} {good}", f"{good} {bad}", f"v1a,xyz {good}", f"v1,!!! {good}"):
        headers = {**_headers(), "webhook-signature": listed}
        assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S) is Verification.OK
    v2 = {**_headers(), "webhook-signature": "v2," + good.removeprefix("v1,")}
    assert signing.verify(SECRET, v2, BODY, now_s=TIMESTAMP_S) is (
        Verification.NO_MATCHING_SIGNATURE
    )
    huge = {**_headers(), "webhook-signature": f"{bad} " * 40 + good}
    assert signing.verify(SECRET, huge, BODY, now_s=TIMESTAMP_S) is (
        Verification.NO_MATCHING_SIGNATURE
    )


def test_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in _headers().items()}
    assert signing.verify(SECRET, headers, BODY, now_s=TIMESTAMP_S) is Verification.OK


# -- the payload and the retry schedule ------------------------------------------------------


def test_payload_is_the_standard_envelope_with_data_verbatim() -> None:
    data = '{"id":"tr_1","amount":5,"metadata":{"k":"é"}}'
    event = Event(7, "evt_01", "ldg_1", "transfer.created", data, 1_614_265_330_123_456)
    body = event.payload()
    assert body == event.payload()  # the same bytes on every attempt
    parsed = json.loads(body)
    assert parsed == {
        "id": "evt_01",
        "type": "transfer.created",
        "timestamp": "2021-02-25T15:02:10.123456Z",
        "data": json.loads(data),
    }
    assert body.endswith(b',"data":' + data.encode() + b"}")


def test_backoff_doubles_within_jitter_and_is_capped() -> None:
    rng = random.Random(3)
    for attempt in range(1, 40):
        full = min(60_000, 1_000 * 2 ** (attempt - 1))
        for _ in range(20):
            delay = backoff_ms(attempt, 1_000, 60_000, rng)
            assert full - full // 2 <= delay <= full
