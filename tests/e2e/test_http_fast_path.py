"""POST /v1/transfers and /v1/transfers/batch take a fast path for plain JSON bodies
(http.routing). Whichever path a body takes, the answer is the same: each body here is sent
once as `application/json` (the fast path when it is plain) and once, the same bytes, as
`application/vnd.strongroom+json`, which only FastAPI's general path handles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from strongroom.core.limits import BATCH_TRANSFERS_MAX
from tests.e2e.http_support import Api, Tenant, running, seed_tenant

GENERAL_ONLY = "application/vnd.strongroom+json"
# Fields that differ between two answers to the same request.
FRESH = frozenset({"id", "transfer_id", "created_at", "effective_at", "request_id"})


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url) as app:
        yield app


def _plain(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _bodies(t: Tenant) -> list[tuple[str, bytes]]:
    move = {"ledger_id": t.ledger, "debit_account_id": t.bank, "credit_account_id": t.alice}
    one = _plain({**move, "amount": 5})
    head = _plain(move)[:-1].decode()
    single: list[bytes] = [
        one,
        _plain({**move, "amount": 2**128 - 1, "pending": True}),
        _plain({**move, "debit_account_id": t.alice, "amount": 10**6}),  # a refusal
        _plain({**move, "amount": 2**128}),
        _plain({**move, "amount": 0}),
        _plain({**move, "amount": -1}),
        _plain({**move, "amount": "5"}),
        _plain({**move, "amount": True}),
        _plain({**move, "amount": 5, "extra": 1}),
        _plain({**move, "amount": 5, "metadata": {"k": 1, "n": None, "b": True}}),
        _plain({**move, "amount": 5, "metadata": {"k": 1.5}}),
        _plain({**move, "amount": 5, "timeout_s": 10**30}),
        _plain({**move, "amount": 5, "effective_at": "not a time"}),
        _plain({"ledger_id": t.ledger}),
        _plain({**move, "ledger_id": "ldg_other", "amount": 5}),
        _plain({**move, "ledger_id": "x" * 65, "amount": 5}),  # over ID_LENGTH_MAX
        _plain({**move, "credit_account_id": "", "amount": 5}),
        _plain({**move, "amount": 5, "effective_at": "t" * 65}),
        _plain({**move, "amount": 5, "x" * 1000: 1}),  # an unknown member, echoed clipped
        _plain([]),
        (head + ',"amount":5.0}').encode(),
        (head + ',"amount":1e2}').encode(),
        (head + ',"amount":NaN}').encode(),
        (head + ',"amount":' + "9" * 5000 + "}").encode(),
        (head + ',"amount":' + "9" * 4300 + "}").encode(),
        (head + ',"amount":1,"amount":7}').encode(),
        (head + ',"amount":5,"metadata":{"k":"\\ud800"}}').encode(),
        (head + ',"amount":5,"metadata":{"k":"caf\\u00e9"}}').encode(),
        (head + ',"amount":5,"metadata":{"k":"café"}}').encode(),
        b'{"ledger_id":"\xff"}',
        b"{",
        b"",
        b"  " + one + b"  ",
    ]
    cases = [("/v1/transfers", b) for b in single]
    for b in single:
        if b.startswith(b"{") and b.endswith(b"}"):
            cases.append(("/v1/transfers/batch", b'{"transfers":[' + one + b"," + b + b"]}"))
    cases += [
        ("/v1/transfers/batch", b'{"transfers":[]}'),
        ("/v1/transfers/batch", b'{"transfers":[' + one + b'],"atomic":true}'),
        ("/v1/transfers/batch", b'{"transfers":[' + one + b'],"atomic":1}'),
        (
            "/v1/transfers/batch",
            b'{"transfers":[' + b",".join([one] * (BATCH_TRANSFERS_MAX + 1)) + b"]}",
        ),
    ]
    return cases


def _answer(response: httpx.Response) -> tuple[int, str, Any]:
    """The answer less what is new each time (ids, times, the request id and its echo)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in FRESH}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    media = response.headers.get("content-type", "")
    return response.status_code, media, strip(response.json())


def test_both_paths_answer_alike(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    for path, body in _bodies(acme):
        answers = []
        for media in ("application/json", GENERAL_ONLY):
            response = lite.post(
                path, key=acme.write, content=body, headers={"content-type": media}
            )
            answers.append(_answer(response))
        assert answers[0] == answers[1], (path, body[:200])
