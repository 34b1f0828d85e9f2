"""`Idempotency-Key`: the same request replays its first answer and posts once; another request
under the same key is refused; keys belong to one API key; concurrent duplicates over a real
server post exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from strongroom.core.limits import BATCH_TRANSFERS_MAX
from strongroom.db.uow import UnitOfWork
from strongroom.tenancy import store as tenancy_store
from tests.e2e.http_support import (
    Api,
    Served,
    Tenant,
    add_failing_route,
    auth,
    balances,
    build_app,
    check_response,
    problem_code,
    running,
    seed_tenant,
    transfer_ids,
)

# Concurrent duplicates of one request, sent together by as many threads.
DUPLICATES = 16
# The lease of an attempt in these tests (STRONGROOM_IDEMPOTENCY_LEASE_S): configuration.
SHORT_LEASE_S = 0.3


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as app:
        yield app


@pytest.fixture
def acme(api: Api) -> Tenant:
    return seed_tenant(api, "acme")


def _move(t: Tenant, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": amount,
        **extra,
    }


def _idem(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def test_same_key_and_body_replays_the_answer_and_posts_once(api: Api, acme: Tenant) -> None:
    before = transfer_ids(api, acme.read, ledger_id=acme.ledger)
    first = api.post("/v1/transfers", key=acme.write, json=_move(acme, 7), headers=_idem("k-1"))
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    for _ in range(3):
        again = api.post("/v1/transfers", key=acme.write, json=_move(acme, 7), headers=_idem("k-1"))
        assert again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
        assert again.content == first.content
    after = transfer_ids(api, acme.read, ledger_id=acme.ledger)
    assert after == [first.json()["id"], *before]
    assert balances(api, acme, acme.alice)["posted"] == 1007

    # Every POST route: ledgers, resolutions and batches replay just the same.
    ledger = api.post("/v1/ledgers", key=acme.write, json={"name": "x"}, headers=_idem("k-2"))
    replay = api.post("/v1/ledgers", key=acme.write, json={"name": "x"}, headers=_idem("k-2"))
    assert replay.json()["id"] == ledger.json()["id"]
    assert len(api.ok("GET", "/v1/ledgers", key=acme.read)["data"]) == 2
    path = f"/v1/transfers/{acme.pending}/post"
    posted = api.post(path, key=acme.write, json={"amount": 40}, headers=_idem("k-3"))
    assert posted.status_code == 201
    replay = api.post(path, key=acme.write, json={"amount": 40}, headers=_idem("k-3"))
    assert (replay.status_code, replay.content) == (201, posted.content)
    batch = {"transfers": [_move(acme, 1), _move(acme, 2)]}
    done = api.post("/v1/transfers/batch", key=acme.write, json=batch, headers=_idem("k-4"))
    replay = api.post("/v1/transfers/batch", key=acme.write, json=batch, headers=_idem("k-4"))
    assert (replay.status_code, replay.content) == (200, done.content)
    assert balances(api, acme, acme.alice)["posted"] == 1007 + 40 + 3

    # An answered refusal is an answer: replayed too, even once it would succeed.
    overdraw = {**_move(acme, 2000), "debit_account_id": acme.alice, "credit_account_id": acme.bank}
    refused = api.post("/v1/transfers", key=acme.write, json=overdraw, headers=_idem("k-5"))
    assert (refused.status_code, problem_code(refused)) == (422, "insufficient_funds")
    api.ok("POST", "/v1/transfers", 201, key=acme.write, json=_move(acme, 5000))
    replay = api.post("/v1/transfers", key=acme.write, json=overdraw, headers=_idem("k-5"))
    assert (replay.status_code, replay.content) == (422, refused.content)
    assert replay.headers["content-type"] == "application/problem+json"
    assert replay.headers["idempotent-replayed"] == "true"


def test_the_answer_is_stored_before_it_is_sent(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that retries the moment it has an answer gets that answer replayed, not a
    409: the record is finished before the answer leaves. Over a real server (the in-process
    transport waits for the app to return anyway), with a slow store to show the order."""
    app = build_app(sqlite_url)
    api = Api(app)
    try:
        acme = seed_tenant(api, "acme")
    finally:
        api.close()
    tenancy = app.state.tenancy
    finish = tenancy.finish_idempotent

    def slow_finish(*args: Any) -> None:
        time.sleep(0.3)
        finish(*args)

    monkeypatch.setattr(tenancy, "finish_idempotent", slow_finish)
    headers = {**auth(acme.write), **_idem("k-9")}
    with Served(app) as served, httpx.Client(base_url=served.base_url) as client:
        first = client.post("/v1/transfers", json=_move(acme, 9), headers=headers)
        again = client.post("/v1/transfers", json=_move(acme, 9), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content


def test_same_key_with_another_request_is_422(api: Api, acme: Tenant) -> None:
    api.ok("POST", "/v1/transfers", 201, key=acme.write, json=_move(acme, 7), headers=_idem("k"))
    before = transfer_ids(api, acme.read, ledger_id=acme.ledger)
    for path, body in (
        ("/v1/transfers", _move(acme, 8)),
        ("/v1/transfers", _move(acme, 7, metadata={"n": 1})),
        ("/v1/transfers/batch", {"transfers": [_move(acme, 7)]}),
        ("/v1/ledgers", {"name": "x"}),
    ):
        response = api.post(path, key=acme.write, json=body, headers=_idem("k"))
        assert (response.status_code, problem_code(response)) == (422, "idempotency_key_reused")
    assert transfer_ids(api, acme.read, ledger_id=acme.ledger) == before
    # The same body sent with other bytes (spacing) is another request too: the key guards
    # bytes, as Stripe's does; a client retries with the bytes it sent.
    spaced = httpx.Request("POST", "/", json=_move(acme, 7)).content.replace(b",", b", ")
    response = api.post(
        "/v1/transfers",
        key=acme.write,
        content=spaced,
        headers={**_idem("k"), "content-type": "application/json"},
    )
    assert response.status_code == 422


def test_keys_belong_to_the_tenant(api: Api, acme: Tenant) -> None:
    """As Stripe scopes keys to the account: any API key of the tenant replays the answer."""
    other_key = api.app.state.tenancy.create_api_key("acme", ["ledger:write"])[1]
    bravo = seed_tenant(api, "bravo")
    mine = api.post("/v1/transfers", key=acme.write, json=_move(acme, 3), headers=_idem("same"))
    theirs = api.post("/v1/transfers", key=other_key, json=_move(acme, 3), headers=_idem("same"))
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert theirs.headers["idempotent-replayed"] == "true"
    assert theirs.content == mine.content
    assert balances(api, acme, acme.alice)["posted"] == 1003
    other = api.post("/v1/transfers", key=other_key, json=_move(acme, 4), headers=_idem("same"))
    assert (other.status_code, problem_code(other)) == (422, "idempotency_key_reused")
    # Another tenant's key under the same Idempotency-Key neither replays nor is refused.
    bravos = api.post("/v1/transfers", key=bravo.write, json=_move(bravo, 3), headers=_idem("same"))
    assert bravos.status_code == 201
    assert "idempotent-replayed" not in bravos.headers
    assert acme.ledger not in bravos.text


def test_a_stored_answer_is_compact(api: Api, acme: Tenant) -> None:
    batch = {"transfers": [_move(acme, 1 + i % 7) for i in range(BATCH_TRANSFERS_MAX)]}
    done = api.post("/v1/transfers/batch", key=acme.write, json=batch, headers=_idem("big"))
    assert done.status_code == 200
    with UnitOfWork(api.app.state.engine, write=False) as uow:
        record = tenancy_store.get_idempotency_record(
            uow, acme_tenant_id(api, acme), "big", for_update=False
        )
    assert record is not None
    assert record.body is not None
    # Sealed (security/answers.py), it holds nothing readable; opened, the very answer.
    tenancy = api.app.state.tenancy
    assert tenancy.stored_answer(acme_tenant_id(api, acme), "big", record.body) == done.content
    assert record.body[0] != 0x78, "stored unsealed"
    # Measured: 8,190 results are ~700 KB of JSON; stored, a small fraction of that.
    assert len(record.body) * 5 < len(done.content), (len(record.body), len(done.content))


def acme_tenant_id(api: Api, t: Tenant) -> str:
    key = api.app.state.tenancy.authenticate(t.write)
    assert key is not None
    tenant_id: str = key.tenant_id
    return tenant_id


def test_malformed_keys_and_ignored_methods(api: Api, acme: Tenant) -> None:
    for key in ("x" * 256, ""):
        response = api.post("/v1/ledgers", key=acme.write, json={"name": "x"}, headers=_idem(key))
        assert (response.status_code, problem_code(response)) == (400, "invalid_idempotency_key")
    assert len(api.ok("GET", "/v1/ledgers", key=acme.read)["data"]) == 1
    longest = api.post("/v1/ledgers", key=acme.write, json={"name": "x"}, headers=_idem("x" * 255))
    assert longest.status_code == 201
    # A GET is safe already: the key is ignored, nothing is stored or replayed.
    for _ in range(2):
        response = api.get("/v1/ledgers", key=acme.read, headers=_idem("get-1"))
        assert "idempotent-replayed" not in response.headers


def test_a_5xx_is_not_remembered_so_a_retry_runs_again(sqlite_url: str) -> None:
    with running(sqlite_url) as api:
        add_failing_route(api)
        key = api.app.state.tenancy.create_api_key("acme", ["ledger:write"])[1]
        for _ in range(2):
            response = api.post("/v1/test-only/boom", key=key, json={}, headers=_idem("boom"))
            assert (response.status_code, problem_code(response)) == (500, "internal_error")
            assert "idempotent-replayed" not in response.headers


def _hammer(base_url: str, secret: str, body: dict[str, Any], key: str) -> list[httpx.Response]:
    """DUPLICATES threads send the same request at the same moment, each on its own
    connection."""
    barrier = threading.Barrier(DUPLICATES)
    answers: list[httpx.Response | BaseException] = [RuntimeError("not run")] * DUPLICATES

    def send(i: int) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=30) as client:
                barrier.wait(timeout=30)
                answers[i] = client.post(
                    "/v1/transfers", json=body, headers={**auth(secret), **_idem(key)}
                )
        except BaseException as exc:  # reported below, in the test's thread
            answers[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(DUPLICATES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert not failed, failed
    return [a for a in answers if isinstance(a, httpx.Response)]


def test_concurrent_duplicates_over_a_real_server_post_exactly_once(db_url: str) -> None:
    app = build_app(db_url)
    api = Api(app)
    try:
        acme = seed_tenant(api, "acme")
    finally:
        api.close()
    body = _move(acme, 25)
    with Served(app) as served, httpx.Client(base_url=served.base_url) as client:
        answers = _hammer(served.base_url, acme.write, body, "race-1")
        for response in answers:
            check_response(response)
        kinds = Counter(
            (r.status_code, r.headers.get("idempotent-replayed"), r.json().get("code"))
            for r in answers
        )
        originals = [
            r for r in answers if r.status_code == 201 and "idempotent-replayed" not in r.headers
        ]
        assert len(originals) == 1, kinds
        allowed = {(201, None, None), (201, "true", None), (409, None, "idempotency_key_in_use")}
        assert set(kinds) <= allowed, kinds
        created = originals[0].json()
        for response in answers:
            if response.status_code == 201:
                assert response.json() == created

        def read(path: str, **params: str) -> dict[str, Any]:
            response = client.get(path, headers=auth(acme.read), params=params)
            assert response.status_code == 200, response.text
            result: dict[str, Any] = response.json()
            return result

        listed = read("/v1/transfers", account_id=acme.alice, limit="100")["data"]
        assert [t["id"] for t in listed] == [created["id"], acme.pending, acme.posted]
        assert read(f"/v1/accounts/{acme.alice}")["balances"]["posted"] == 1025
        # Once settled, every retry is a replay.
        retry = client.post(
            "/v1/transfers", json=body, headers={**auth(acme.write), **_idem("race-1")}
        )
        assert (retry.status_code, retry.headers["idempotent-replayed"]) == (201, "true")
        assert retry.json() == created

        # Different bodies racing on one key: one is done, the others refused, none posted twice.
        bodies = [_move(acme, 1 + i) for i in range(DUPLICATES)]
        barrier = threading.Barrier(DUPLICATES)
        results: list[int] = []
        lock = threading.Lock()

        def send(i: int) -> None:
            with httpx.Client(base_url=served.base_url, timeout=30) as own:
                barrier.wait(timeout=30)
                response = own.post(
                    "/v1/transfers", json=bodies[i], headers={**auth(acme.write), **_idem("race-2")}
                )
            with lock:
                results.append(response.status_code)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(DUPLICATES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert len(results) == DUPLICATES
        assert results.count(201) == 1, results
        assert set(results) <= {201, 409, 422}, results
        listed = read("/v1/transfers", account_id=acme.alice, limit="100")["data"]
        assert len(listed) == 4


# -- failures at every step, then a retry: exactly one posting -------------------------------

FAILURE_POINTS = ("before_commit", "after_commit", "crash_after_commit", "after_store")


class Injected(Exception):
    """The failure a test injects (a bug, a lost connection, a dying process)."""


def _inject(monkeypatch: pytest.MonkeyPatch, app: Any, point: str, armed: list[bool]) -> None:
    """Fail once, at `point`, the next time the request gets there; `armed[0]` says whether it
    is still to come. crash_after_commit: the attempt dies after the ledger committed, and
    (a process that died) never lets its lease go: the retry waits the lease out."""
    ledger, tenancy = app.state.ledger, app.state.tenancy
    post, finish, release = (
        ledger.post_transfers,
        tenancy.finish_idempotent,
        tenancy.release_idempotent,
    )

    def post_transfers(*args: Any, **kwargs: Any) -> Any:
        if armed[0] and point == "before_commit":
            armed[0] = False
            raise Injected("before the commit")
        outcomes = post(*args, **kwargs)
        if armed[0] and point in ("after_commit", "crash_after_commit"):
            armed[0] = False
            if point == "crash_after_commit":
                monkeypatch.setattr(tenancy, "release_idempotent", lambda *a: None)
            raise Injected("after the commit")
        return outcomes

    def finish_idempotent(*args: Any) -> bool:
        stored: bool = finish(*args)
        if armed[0] and point == "after_store":
            armed[0] = False
            raise Injected("after the answer was stored")
        return stored

    monkeypatch.setattr(ledger, "post_transfers", post_transfers)
    monkeypatch.setattr(tenancy, "finish_idempotent", finish_idempotent)
    del release


@pytest.mark.parametrize("route", ["single", "batch"])
@pytest.mark.parametrize("point", FAILURE_POINTS)
def test_a_failure_at_any_step_then_retries_post_exactly_once(
    db_url: str, monkeypatch: pytest.MonkeyPatch, route: str, point: str
) -> None:
    app = build_app(db_url, idempotency_lease_s=SHORT_LEASE_S)
    api = Api(app)
    try:
        acme = seed_tenant(api, "acme")
        before = transfer_ids(api, acme.read, ledger_id=acme.ledger)
        if route == "single":
            path, body, count = "/v1/transfers", _move(acme, 11), 1
        else:
            path, count = "/v1/transfers/batch", 3
            body = {"transfers": [_move(acme, 11), _move(acme, 12), _move(acme, 13)]}
        armed = [True]
        _inject(monkeypatch, app, point, armed)
        headers = _idem(f"fail-{route}-{point}")
        first = api.post(path, key=acme.write, json=body, headers=headers)
        assert not armed[0], "the failure was not reached"
        assert first.status_code == 500, first.text
        answers = [first]
        deadline = time.monotonic() + 30 * SHORT_LEASE_S
        while True:
            retry = api.post(path, key=acme.write, json=body, headers=headers)
            answers.append(retry)
            if retry.status_code != 409:
                break
            # Only the attempt that died holds the key, until its lease runs out.
            assert point == "crash_after_commit", retry.text
            assert problem_code(retry) == "idempotency_key_in_use"
            assert 1 <= int(retry.headers["retry-after"]) <= 1
            assert time.monotonic() < deadline, "the dead attempt's key was never freed"
            time.sleep(SHORT_LEASE_S / 3)
        assert retry.status_code == (201 if route == "single" else 200), retry.text
        again = api.post(path, key=acme.write, json=body, headers=headers)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.content == retry.content

        after = transfer_ids(api, acme.read, ledger_id=acme.ledger)
        assert len(after) == len(before) + count, [a.status_code for a in answers]
        posted = balances(api, acme, acme.alice)["posted"]
        assert posted == 1000 + (11 if route == "single" else 36)
        if route == "single":
            assert retry.json()["id"] in after
        else:
            results = retry.json()["results"]
            assert [r["status"] for r in results] == ["created"] * 3
            assert {r["transfer_id"] for r in results} <= set(after)
    finally:
        api.close()


def test_a_retry_after_the_retention_is_a_new_request(
    api: Api, acme: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key reused after IDEMPOTENCY_RETENTION_S posts again, under new ids."""
    first = api.post("/v1/transfers", key=acme.write, json=_move(acme, 5), headers=_idem("old"))
    assert first.status_code == 201
    with UnitOfWork(api.app.state.engine) as uow:
        uow.cursor().execute(
            "UPDATE idempotency_records SET claimed_at = claimed_at - 90000000000"  # 25 h
        )
        uow.commit()
    again = api.post("/v1/transfers", key=acme.write, json=_move(acme, 5), headers=_idem("old"))
    assert again.status_code == 201
    assert "idempotent-replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert balances(api, acme, acme.alice)["posted"] == 1010


def _records(api: Api) -> list[tuple[Any, ...]]:
    with UnitOfWork(api.app.state.engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT key, status_code FROM idempotency_records ORDER BY key")
        return [tuple(r) for r in cur.fetchall()]


def test_a_refusal_for_input_scope_or_rate_is_not_remembered(db_url: str) -> None:
    """A 403 (scope) or a 429 (rate, the batch's cost charged in the route) did nothing: the key
    is forgotten, so its retry runs, and a read key stores no record per request."""
    with running(db_url, rate_limit_per_s=0.001, rate_limit_burst=12) as api:
        acme = seed_tenant(api, "acme")
        before = _records(api)
        for _ in range(2):
            denied = api.post(
                "/v1/ledgers", key=acme.read, json={"name": "x"}, headers=_idem("read-1")
            )
            assert (denied.status_code, problem_code(denied)) == (403, "insufficient_scope")
            assert "idempotent-replayed" not in denied.headers
        batch = {"transfers": [_move(acme, 1) for _ in range(800)]}  # costs 9 tokens
        for _ in range(2):
            limited = api.post(
                "/v1/transfers/batch", key=acme.write, json=batch, headers=_idem("big-1")
            )
            assert (limited.status_code, problem_code(limited)) == (429, "rate_limited")
            assert "idempotent-replayed" not in limited.headers
        assert _records(api) == before
        # A 400 did nothing either (found by a new user: the fixed retry was told the key was
        # reused): the same key with the input fixed runs, once.
        move = _move(acme, 1)
        bad = api.post(
            "/v1/transfers", key=acme.write, json={**move, "amount": 1.5}, headers=_idem("fix-1")
        )
        assert (bad.status_code, problem_code(bad)) == (400, "amount_not_integer")
        assert _records(api) == before
        fixed = api.post("/v1/transfers", key=acme.write, json=move, headers=_idem("fix-1"))
        assert fixed.status_code == 201, fixed.text
        again = api.post("/v1/transfers", key=acme.write, json=move, headers=_idem("fix-1"))
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == fixed.json()["id"]


def test_a_resumed_asset_creation_answers_the_asset(api: Api, acme: Tenant) -> None:
    body = {"code": "GOLDX", "scale": 4}
    first = api.post("/v1/assets", key=acme.admin, json=body, headers=_idem("asset-1"))
    assert first.status_code == 201
    with UnitOfWork(api.app.state.engine) as uow:  # as if its server died before answering
        uow.cursor().execute(
            "UPDATE idempotency_records SET status_code = NULL, body = NULL, owner = NULL, "
            "lease_until = 0 WHERE key = 'asset-1'"
        )
        uow.commit()
    again = api.post("/v1/assets", key=acme.admin, json=body, headers=_idem("asset-1"))
    assert (again.status_code, again.json()) == (201, first.json())
    other = api.post("/v1/assets", key=acme.admin, json=body, headers=_idem("asset-2"))
    assert (other.status_code, problem_code(other)) == (409, "asset_exists")


def test_hand_edited_records_neither_stick_nor_crash(api: Api, acme: Tenant) -> None:
    for key in ("far", "odd"):
        response = api.post("/v1/ledgers", key=acme.write, json={"name": key}, headers=_idem(key))
        assert response.status_code == 201
    with UnitOfWork(api.app.state.engine) as uow:
        cur = uow.cursor()
        cur.execute(
            "UPDATE idempotency_records SET status_code = NULL, body = NULL, owner = 'gone', "
            "lease_until = 9000000000000000000 WHERE key = 'far'"
        )
        cur.execute("UPDATE idempotency_records SET status_code = 999 WHERE key = 'odd'")
        uow.commit()
    # A lease past the longest allowed is over: the retry runs (and finds its ledger).
    far = api.post("/v1/ledgers", key=acme.write, json={"name": "far"}, headers=_idem("far"))
    assert far.status_code == 201
    odd = api.post("/v1/ledgers", key=acme.write, json={"name": "odd"}, headers=_idem("odd"))
    assert (odd.status_code, problem_code(odd)) == (500, "internal_error")
