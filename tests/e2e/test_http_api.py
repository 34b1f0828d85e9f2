"""The HTTP API end to end, in-process: every route, the refusals, the error catalogue, the
limits, health and metrics. Tests taking `api` run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from strongroom.core.limits import REQUEST_BODY_BYTES_MAX
from strongroom.ledger.errors import REFUSED_TITLE
from strongroom.ledger.model import TransferResult
from tests.e2e.http_support import (
    EMITTED_CODES,
    ERROR_CODES,
    Api,
    Tenant,
    add_failing_route,
    auth,
    balances,
    dumps,
    problem_code,
    running,
    seed_tenant,
    transfer_ids,
)

ROOT = Path(__file__).resolve().parents[2]
ERRORS_DOC = ROOT / "docs" / "errors.md"


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as app:
        yield app


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[Api]:
    """SQLite only: for what the backend cannot change (validation at the edge)."""
    with running(sqlite_url) as app:
        yield app


@pytest.fixture
def acme(api: Api) -> Tenant:
    return seed_tenant(api, "acme")


def _transfer(t: Tenant, debit: str, credit: str, amount: Any, **extra: Any) -> dict[str, Any]:
    return {
        "ledger_id": t.ledger,
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        **extra,
    }


def _account(api: Api, t: Tenant, normal: str, **extra: Any) -> str:
    body = {"ledger_id": t.ledger, "asset": "USD", "normal_balance": normal, **extra}
    account_id = api.ok("POST", "/v1/accounts", 201, key=t.write, json=body)["id"]
    assert isinstance(account_id, str)
    return account_id


def _snapshot(api: Api, t: Tenant) -> tuple[list[str], list[dict[str, int]]]:
    """Everything a refused request must leave as it was: transfers and balances."""
    accounts = api.ok("GET", "/v1/accounts", key=t.read, params={"ledger_id": t.ledger})
    assert not accounts["has_more"]
    return (
        transfer_ids(api, t.read, ledger_id=t.ledger),
        [balances(api, t, a["id"]) for a in accounts["data"]],
    )


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rfc3339_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


# -- ledgers and assets --------------------------------------------------------------------


def test_ledgers_create_get_list_and_paginate(api: Api, acme: Tenant) -> None:
    created = [
        api.ok("POST", "/v1/ledgers", 201, key=acme.write, json={"name": f"book {i}"})
        for i in range(4)
    ]
    assert all(c["object"] == "ledger" and c["id"].startswith("ldg_") for c in created)
    first = created[0]
    assert api.ok("GET", f"/v1/ledgers/{first['id']}", key=acme.read) == first

    every = sorted([acme.ledger, *(c["id"] for c in created)])
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = api.ok("GET", "/v1/ledgers", key=acme.read, params=params)
        assert page["object"] == "list"
        assert len(page["data"]) <= 2
        seen += [x["id"] for x in page["data"]]
        if not page["has_more"]:
            break
        params["starting_after"] = seen[-1]
    assert seen == every
    before = api.ok(
        "GET", "/v1/ledgers", key=acme.read, params={"limit": 2, "ending_before": every[3]}
    )
    assert [x["id"] for x in before["data"]] == every[1:3]

    for limit in (0, 101, "x"):
        response = api.get("/v1/ledgers", key=acme.read, params={"limit": limit})
        assert response.status_code == 400
        assert response.json()["param"] == "limit"
    response = api.post("/v1/ledgers", key=acme.write, json={"name": ""})
    assert (response.status_code, response.json()["param"]) == (400, "name")
    response = api.post("/v1/ledgers", key=acme.write, json={"name": "x", "color": "red"})
    assert (response.status_code, response.json()["param"]) == (400, "color")


def test_assets_need_the_admin_scope(api: Api, acme: Tenant) -> None:
    asset = {"code": "POINTS", "scale": 0}
    response = api.post("/v1/assets", key=acme.write, json=asset)
    assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    created = api.ok("POST", "/v1/assets", 201, key=acme.admin, json=asset)
    assert created == {"object": "asset", "code": "POINTS", "scale": 0}
    assert api.post("/v1/assets", key=acme.admin, json=asset).status_code == 409
    response = api.post("/v1/assets", key=acme.admin, json={"code": "USD", "scale": 2})
    assert (response.status_code, problem_code(response)) == (409, "asset_exists")
    for bad, code, param in (
        ({"code": "lower", "scale": 0}, "invalid_asset_code", "code"),
        ({"code": "GOLD", "scale": 19}, "invalid_request", "scale"),
        ({"code": "GOLD", "scale": 1.0}, "invalid_request", "scale"),
    ):
        response = api.post("/v1/assets", key=acme.admin, json=bad)
        assert (response.status_code, problem_code(response)) == (400, code), bad
        assert response.json()["param"] == param
    # Any tenant's account may use it, as an ISO 4217 currency.
    points = _account(api, acme, "credit", asset="POINTS")
    assert api.ok("GET", f"/v1/accounts/{points}", key=acme.read)["asset"] == "POINTS"
    response = api.post(
        "/v1/accounts",
        key=acme.write,
        json={"ledger_id": acme.ledger, "asset": "NOPE", "normal_balance": "debit"},
    )
    assert (response.status_code, problem_code(response)) == (400, "unknown_asset")


# -- accounts ------------------------------------------------------------------------------


def test_accounts_balances_at_a_version_or_time_and_entries(api: Api, acme: Tenant) -> None:
    alice = api.ok("GET", f"/v1/accounts/{acme.alice}", key=acme.read)
    assert alice["flags"] == ["debits_must_not_exceed_credits"]
    assert alice["name"] == "acme alice"
    assert alice["version"] == 2  # the deposit, then the pending transfer
    assert alice["balances"] == {
        "debits_posted": 0,
        "credits_posted": 1000,
        "debits_pending": 0,
        "credits_pending": 100,
        "posted": 1000,
        "pending": 1100,
        "available": 1000,
    }
    between = _rfc3339_now()
    time.sleep(0.002)  # microsecond timestamps: make "between" strictly between
    api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=acme.write,
        json=_transfer(acme, acme.alice, acme.bank, 300),
    )

    balance_path = f"/v1/accounts/{acme.alice}/balance"
    now = api.ok("GET", balance_path, key=acme.read)
    assert now["object"] == "balance"
    assert (now["version"], now["balances"]["posted"], now["balances"]["available"]) == (
        3,
        700,
        700,
    )
    at_1 = api.ok("GET", balance_path, key=acme.read, params={"version": 1})
    assert (at_1["version"], at_1["balances"]["posted"], at_1["balances"]["pending"]) == (
        1,
        1000,
        1000,
    )
    at_0 = api.ok("GET", balance_path, key=acme.read, params={"version": 0})
    assert at_0["version"] == 0
    assert set(at_0["balances"].values()) == {0}
    at_time = api.ok("GET", balance_path, key=acme.read, params={"as_of": between})
    assert (at_time["version"], at_time["balances"]["posted"]) == (2, 1000)
    offset = between.replace("Z", "+00:00")
    assert api.ok("GET", balance_path, key=acme.read, params={"as_of": offset}) == at_time
    early = api.ok("GET", balance_path, key=acme.read, params={"as_of": "2001-01-01T00:00:00Z"})
    assert early["version"] == 0
    for params, code, param in (
        ({"as_of": "yesterday"}, "invalid_timestamp", "as_of"),
        ({"as_of": between, "version": 1}, "invalid_request", "as_of"),
        ({"version": 4}, "invalid_version", "version"),
        ({"version": -1}, "invalid_request", "version"),
    ):
        response = api.get(balance_path, key=acme.read, params=params)
        assert (response.status_code, problem_code(response)) == (400, code), params
        assert response.json()["param"] == param

    entries_path = f"/v1/accounts/{acme.alice}/entries"
    page = api.ok("GET", entries_path, key=acme.read, params={"limit": 2})
    assert [e["version"] for e in page["data"]] == [3, 2]
    assert page["has_more"] is True
    newest = page["data"][0]
    assert (newest["direction"], newest["amount"], newest["balance_after"]["posted"]) == (
        "debit",
        300,
        700,
    )
    assert page["data"][1]["pending_amount"] == 100
    rest = api.ok("GET", entries_path, key=acme.read, params={"limit": 2, "starting_after": 2})
    assert [e["version"] for e in rest["data"]] == [1]
    assert rest["data"][0]["transfer_id"] == acme.posted
    assert rest["has_more"] is False

    listed = api.ok("GET", "/v1/accounts", key=acme.read, params={"ledger_id": acme.ledger})
    assert sorted(a["id"] for a in listed["data"]) == sorted([acme.bank, acme.alice])
    one = api.ok(
        "GET", "/v1/accounts", key=acme.read, params={"ledger_id": acme.ledger, "limit": 1}
    )
    assert (len(one["data"]), one["has_more"]) == (1, True)
    response = api.get("/v1/accounts", key=acme.read)
    assert (response.status_code, response.json()["param"]) == (400, "ledger_id")
    response = api.post(
        "/v1/accounts",
        key=acme.write,
        json={"ledger_id": acme.ledger, "asset": "USD", "normal_balance": "debit", "flags": ["x"]},
    )
    assert (response.status_code, problem_code(response)) == (400, "invalid_flags")


# -- transfers -----------------------------------------------------------------------------


def test_transfers_simple_multi_leg_pending_post_void_and_reverse(api: Api, acme: Tenant) -> None:
    carol = _account(api, acme, "credit")
    multi = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=acme.write,
        json={
            "ledger_id": acme.ledger,
            "entries": [
                {"account_id": acme.bank, "direction": "debit", "amount": 50},
                {"account_id": acme.alice, "direction": "credit", "amount": 20},
                {"account_id": carol, "direction": "credit", "amount": 30},
            ],
            "metadata": {"kind": "split"},
        },
    )
    assert (multi["action"], multi["status"]) == ("transfer", "posted")
    assert [(e["account_id"], e["amount"]) for e in multi["entries"]] == [
        (acme.bank, 50),
        (acme.alice, 20),
        (carol, 30),
    ]
    assert multi["metadata"] == {"kind": "split"}
    assert balances(api, acme, carol)["posted"] == 30
    response = api.post(
        "/v1/transfers",
        key=acme.write,
        json={
            "ledger_id": acme.ledger,
            "entries": [
                {"account_id": acme.bank, "direction": "debit", "amount": 50},
                {"account_id": carol, "direction": "credit", "amount": 49},
            ],
        },
    )
    assert (response.status_code, problem_code(response)) == (400, "unbalanced_legs")

    # Pending with a timeout: reserved, with an expiry; a partial post releases the rest.
    before = _rfc3339_now()
    hold = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=acme.write,
        json=_transfer(acme, acme.alice, carol, 400, pending=True, timeout_s=3600),
    )
    assert (hold["status"], hold["pending"]) == ("pending", True)
    expires_in_s = (_parse(hold["expires_at"]) - _parse(before)).total_seconds()
    assert 3600 <= expires_in_s < 3660
    assert balances(api, acme, acme.alice)["available"] == 1020 - 400
    posted = api.ok(
        "POST", f"/v1/transfers/{hold['id']}/post", 201, key=acme.write, json={"amount": 150}
    )
    assert (posted["action"], posted["target_id"], posted["amount"]) == ("post", hold["id"], 150)
    assert api.ok("GET", f"/v1/transfers/{hold['id']}", key=acme.read)["status"] == "posted"
    alice = balances(api, acme, acme.alice)
    assert (alice["posted"], alice["debits_pending"], alice["available"]) == (870, 0, 870)
    response = api.post(f"/v1/transfers/{hold['id']}/post", key=acme.write)
    assert (response.status_code, problem_code(response)) == (
        422,
        "pending_transfer_already_posted",
    )

    # Void: the whole reservation goes back, and a voided transfer cannot be posted.
    voided = api.ok("POST", f"/v1/transfers/{acme.pending}/void", 201, key=acme.write)
    assert (voided["action"], voided["target_id"]) == ("void", acme.pending)
    assert api.ok("GET", f"/v1/transfers/{acme.pending}", key=acme.read)["status"] == "voided"
    assert balances(api, acme, acme.alice)["credits_pending"] == 0
    response = api.post(f"/v1/transfers/{acme.pending}/post", key=acme.write)
    assert (response.status_code, problem_code(response)) == (
        422,
        "pending_transfer_already_voided",
    )
    response = api.post(f"/v1/transfers/{acme.pending}/void", key=acme.write, json={"amount": 1})
    assert (response.status_code, response.json()["param"]) == (400, "amount")

    # Reverse: partly, then the rest; the original never changes.
    part = api.ok(
        "POST", f"/v1/transfers/{acme.posted}/reverse", 201, key=acme.write, json={"amount": 200}
    )
    assert (part["action"], part["amount"], part["debit_account_id"]) == (
        "reverse",
        200,
        acme.alice,
    )
    assert balances(api, acme, acme.alice)["posted"] == 670
    response = api.post(
        f"/v1/transfers/{acme.posted}/reverse", key=acme.write, json={"amount": 801}
    )
    assert (response.status_code, problem_code(response)) == (422, "exceeds_reversible_amount")
    response = api.post(f"/v1/transfers/{carol}/reverse", key=acme.write)
    assert (response.status_code, problem_code(response)) == (404, "not_found")
    original = api.ok("GET", f"/v1/transfers/{acme.posted}", key=acme.read)
    assert (original["amount"], original["status"]) == (1000, "posted")


def test_effective_at_backdates_a_transfer_for_reporting_only(api: Api, acme: Tenant) -> None:
    plain = api.ok(
        "POST", "/v1/transfers", 201, key=acme.write, json=_transfer(acme, acme.bank, acme.alice, 5)
    )
    assert plain["effective_at"] == plain["created_at"]
    backdated = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=acme.write,
        json=_transfer(acme, acme.bank, acme.alice, 7, effective_at="2026-01-31T23:59:59+01:00"),
    )
    assert backdated["effective_at"] == "2026-01-31T22:59:59Z"
    assert _parse(backdated["created_at"]) > _parse(backdated["effective_at"])
    fetched = api.ok("GET", f"/v1/transfers/{backdated['id']}", 200, key=acme.read)
    assert fetched["effective_at"] == "2026-01-31T22:59:59Z"
    events = api.ok("GET", "/v1/events", 200, key=acme.read, params={"limit": 100})["data"]
    by_transfer = {e["data"]["id"]: e["data"] for e in events}
    assert by_transfer[backdated["id"]]["effective_at"] == "2026-01-31T22:59:59Z"
    assert by_transfer[plain["id"]]["effective_at"] == plain["created_at"]

    before = _snapshot(api, acme)
    for bad in ("yesterday", "2026-13-01T00:00:00Z", "10000-01-01T00:00:00Z"):
        response = api.post(
            "/v1/transfers",
            key=acme.write,
            json=_transfer(acme, acme.bank, acme.alice, 7, effective_at=bad),
        )
        assert (response.status_code, problem_code(response)) == (400, "invalid_timestamp"), bad
        assert response.json()["param"] == "effective_at"
    assert _snapshot(api, acme) == before


def test_pending_transfer_expires_after_its_timeout(sqlite_url: str) -> None:
    with running(sqlite_url, expiry_interval_s=0.05) as api:
        acme = seed_tenant(api, "acme")
        hold = api.ok(
            "POST",
            "/v1/transfers",
            201,
            key=acme.write,
            json=_transfer(acme, acme.alice, acme.bank, 10, pending=True, timeout_s=1),
        )
        assert balances(api, acme, acme.alice)["available"] == 990
        deadline = time.monotonic() + 5
        while api.ok("GET", f"/v1/transfers/{hold['id']}", key=acme.read)["status"] == "pending":
            assert time.monotonic() < deadline, "the sweeper did not expire the transfer"
            api.run(asyncio.sleep(0.1))  # the loop runs: the app's sweeper with it
        assert api.ok("GET", f"/v1/transfers/{hold['id']}", key=acme.read)["status"] == "expired"
        assert balances(api, acme, acme.alice)["available"] == 1000
        response = api.post(f"/v1/transfers/{hold['id']}/post", key=acme.write)
        assert (response.status_code, problem_code(response)) == (422, "pending_transfer_expired")


def test_batch_gives_each_item_its_result_with_linked_chains_and_atomic(
    api: Api, acme: Tenant
) -> None:
    ok = _transfer(acme, acme.bank, acme.alice, 5)
    overdraw = _transfer(acme, acme.alice, acme.bank, 10**6)
    plain = api.ok(
        "POST", "/v1/transfers/batch", key=acme.write, json={"transfers": [ok, overdraw, ok]}
    )
    assert plain["object"] == "batch"
    results = plain["results"]
    assert [(r["index"], r["status"], r["code"]) for r in results] == [
        (0, "created", "created"),
        (1, "refused", "insufficient_funds"),
        (2, "created", "created"),
    ]
    assert api.ok("GET", f"/v1/transfers/{results[0]['transfer_id']}", key=acme.read)["amount"] == 5
    assert api.get(f"/v1/transfers/{results[1]['transfer_id']}", key=acme.read).status_code == 404
    assert balances(api, acme, acme.alice)["posted"] == 1010

    before = _snapshot(api, acme)
    linked = api.ok(
        "POST",
        "/v1/transfers/batch",
        key=acme.write,
        json={"transfers": [{**ok, "linked": True}, overdraw, ok]},
    )
    assert [(r["status"], r["code"]) for r in linked["results"]] == [
        ("refused", "linked_event_failed"),
        ("refused", "insufficient_funds"),
        ("created", "created"),
    ]
    assert balances(api, acme, acme.alice)["posted"] == 1015
    atomic = api.ok(
        "POST",
        "/v1/transfers/batch",
        key=acme.write,
        json={"transfers": [ok, ok, overdraw], "atomic": True},
    )
    assert [r["status"] for r in atomic["results"]] == ["refused"] * 3
    assert atomic["results"][2]["code"] == "insufficient_funds"
    after_ids, _ = _snapshot(api, acme)
    assert len(after_ids) == len(before[0]) + 1  # only the unlinked transfer of the chain test
    response = api.post(
        "/v1/transfers/batch",
        key=acme.write,
        json={"transfers": [ok, {**ok, "debit_account_id": None}]},
    )
    assert (response.status_code, response.json()["param"]) == (
        400,
        "transfers[1].debit_account_id",
    )
    response = api.post("/v1/transfers/batch", key=acme.write, json={"transfers": []})
    assert (response.status_code, response.json()["param"]) == (400, "transfers")


def test_list_transfers_filters_and_cursor_pagination(api: Api, acme: Tenant) -> None:
    dave = _account(api, acme, "credit")
    made: list[dict[str, Any]] = []
    for i in range(5):
        credit = dave if i in (1, 3) else acme.alice
        kind = "odd" if i % 2 else "even"
        body = _transfer(acme, acme.bank, credit, 10 + i, metadata={"kind": kind, "n": i})
        made.append(api.ok("POST", "/v1/transfers", 201, key=acme.write, json=body))
        time.sleep(0.002)  # distinct created_at for the time filters
    newest_first = [t["id"] for t in reversed(made)]
    everything = [*newest_first, acme.pending, acme.posted]

    def ids(**params: str | int) -> list[str]:
        page = api.ok("GET", "/v1/transfers", key=acme.read, params=params)
        assert page["object"] == "list"
        return [t["id"] for t in page["data"]]

    assert ids(ledger_id=acme.ledger) == everything
    assert ids(account_id=dave) == [made[3]["id"], made[1]["id"]]
    assert ids(ledger_id=acme.ledger, account_id=dave) == [made[3]["id"], made[1]["id"]]
    assert ids(ledger_id=acme.ledger, status="pending") == [acme.pending]
    assert ids(ledger_id=acme.ledger, status="voided") == []
    assert ids(ledger_id=acme.ledger, created_after=made[2]["created_at"]) == newest_first[:3]
    assert ids(ledger_id=acme.ledger, created_before=made[2]["created_at"]) == everything[3:]
    assert ids(
        ledger_id=acme.ledger,
        created_after=made[1]["created_at"],
        created_before=made[3]["created_at"],
    ) == [made[2]["id"], made[1]["id"]]
    assert ids(**{"ledger_id": acme.ledger, "metadata[kind]": "odd"}) == [
        made[3]["id"],
        made[1]["id"],
    ]
    assert ids(**{"ledger_id": acme.ledger, "metadata[kind]": "none"}) == []

    # Pages of 3: no transfer twice, none missed, has_more false on the last page only.
    pages: list[list[str]] = []
    cursor: dict[str, str] = {}
    while True:
        page = api.ok(
            "GET",
            "/v1/transfers",
            key=acme.read,
            params={"ledger_id": acme.ledger, "limit": 3, **cursor},
        )
        pages.append([t["id"] for t in page["data"]])
        if not page["has_more"]:
            break
        cursor = {"starting_after": pages[-1][-1]}
    assert pages == [everything[0:3], everything[3:6], everything[6:]]
    assert ids(ledger_id=acme.ledger, limit=2, ending_before=everything[4]) == everything[2:4]
    assert len(ids(ledger_id=acme.ledger, limit=100)) == 7

    for params, code, param in (
        ({"ledger_id": acme.ledger, "limit": 101}, "invalid_request", "limit"),
        ({"ledger_id": acme.ledger, "limit": 0}, "invalid_request", "limit"),
        (
            {"ledger_id": acme.ledger, "starting_after": "tr_unknown"},
            "invalid_cursor",
            "starting_after",
        ),
        ({"ledger_id": acme.ledger, "status": "lost"}, "invalid_request", "status"),
        ({"ledger_id": acme.ledger, "created_after": "soon"}, "invalid_timestamp", "created_after"),
        ({"ledger_id": acme.ledger, "metadata[b@d]": "x"}, "invalid_metadata_filter", "metadata"),
        ({}, "invalid_request", "ledger_id"),
    ):
        response = api.get("/v1/transfers", key=acme.read, params=params)
        assert (response.status_code, problem_code(response)) == (400, code), params
        assert response.json()["param"] == param


# -- amounts and refusals ------------------------------------------------------------------


BAD_AMOUNTS: list[tuple[Any, str]] = [
    (1.5, "amount_not_integer"),
    (10.0, "amount_not_integer"),
    ("10", "amount_not_integer"),
    (True, "amount_not_integer"),
    (0, "amount_not_positive"),
    (-5, "amount_not_positive"),
    (2**128, "amount_too_large"),
]


@pytest.mark.parametrize(("amount", "code"), BAD_AMOUNTS, ids=[repr(a) for a, _ in BAD_AMOUNTS])
def test_bad_amounts_are_400_naming_the_field_and_write_nothing(
    lite: Api, amount: Any, code: str
) -> None:
    acme = seed_tenant(lite, "acme")
    before = _snapshot(lite, acme)
    good = _transfer(acme, acme.bank, acme.alice, 1)

    def leg(n: Any, direction: str, account: str) -> dict[str, Any]:
        return {"account_id": account, "direction": direction, "amount": n}

    attempts: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/transfers", {**good, "amount": amount}, "amount"),
        (
            "/v1/transfers",
            {
                "ledger_id": acme.ledger,
                "entries": [leg(1, "debit", acme.bank), leg(amount, "credit", acme.alice)],
            },
            "entries[1].amount",
        ),
        (
            "/v1/transfers/batch",
            {"transfers": [good, {**good, "amount": amount}]},
            "transfers[1].amount",
        ),
        (f"/v1/transfers/{acme.pending}/post", {"amount": amount}, "amount"),
        (f"/v1/transfers/{acme.posted}/reverse", {"amount": amount}, "amount"),
    ]
    for path, body, param in attempts:
        response = lite.post(path, key=acme.write, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert (problem_code(response), response.json()["param"]) == (code, param), path
    assert _snapshot(lite, acme) == before


def test_ledger_refusals_are_422_with_stable_codes_and_write_nothing(
    api: Api, acme: Tenant
) -> None:
    euro = _account(api, acme, "credit", asset="EUR")
    closed = _account(api, acme, "credit")
    api.app.state.ledger.close_account(closed)
    assert api.ok("GET", f"/v1/accounts/{closed}", key=acme.read)["closed"] is True
    before = _snapshot(api, acme)
    for body, code in (
        (_transfer(acme, acme.alice, acme.bank, 1001), "insufficient_funds"),
        (_transfer(acme, acme.bank, closed, 1), "account_closed"),
        (_transfer(acme, acme.bank, euro, 1), "asset_mismatch"),
        (_transfer(acme, acme.bank, acme.bank, 1), "accounts_must_be_different"),
        (_transfer(acme, acme.bank, "acc_nobody", 1), "account_not_found"),
    ):
        response = api.post("/v1/transfers", key=acme.write, json=body)
        assert (response.status_code, problem_code(response)) == (422, code), response.text
        assert (ERROR_CODES[code].status, ERROR_CODES[code].title) == (422, REFUSED_TITLE)
    assert _snapshot(api, acme) == before
    # The pending reservation counts: 1000 posted, 100 on hold for alice is incoming only.
    hold = _transfer(acme, acme.alice, acme.bank, 600, pending=True)
    api.ok("POST", "/v1/transfers", 201, key=acme.write, json=hold)
    response = api.post(
        "/v1/transfers", key=acme.write, json=_transfer(acme, acme.alice, acme.bank, 401)
    )
    assert (response.status_code, problem_code(response)) == (422, "insufficient_funds")


# -- errors --------------------------------------------------------------------------------


def test_errors_are_problem_details_with_the_request_id(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    cases: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("GET", "/v1/ledgers", {}, 401, "unauthenticated"),
        ("GET", "/v1/ledgers", {"key": "sk_not_a_key"}, 401, "unauthenticated"),
        ("GET", "/v1/nowhere", {"key": acme.read}, 404, "not_found"),
        ("DELETE", f"/v1/ledgers/{acme.ledger}", {"key": acme.admin}, 405, "method_not_allowed"),
        (
            "POST",
            "/v1/ledgers",
            {"key": acme.write, "json": {"name": "x", "n": 1}},
            400,
            "invalid_request",
        ),
        (
            "POST",
            "/v1/ledgers",
            {"key": acme.write, "content": b"{", "headers": {"content-type": "application/json"}},
            400,
            "invalid_json",
        ),
        (
            "POST",
            "/v1/ledgers",
            {"key": acme.read, "json": {"name": "x"}},
            403,
            "insufficient_scope",
        ),
        ("GET", "/v1/ledgers/ldg_nothing", {"key": acme.read}, 404, "not_found"),
    ]
    for method, path, kwargs, status, code in cases:
        response = lite.request(method, path, **kwargs)
        assert (response.status_code, problem_code(response)) == (status, code), (method, path)
        problem = response.json()
        assert problem["request_id"].startswith("req_")
        assert problem["request_id"] in response.headers.get_list("request-id")
    unauthenticated = lite.get("/v1/ledgers")
    assert unauthenticated.headers["www-authenticate"].startswith("Bearer")
    # Successes carry a request id too, a new one each time.
    first = lite.get("/v1/ledgers", key=acme.read).headers["request-id"]
    assert first != lite.get("/v1/ledgers", key=acme.read).headers["request-id"]


def test_request_id_header_is_sent_once(lite: Api) -> None:
    assert len(lite.get("/v1/ledgers").headers.get_list("request-id")) == 1


def test_an_unexpected_exception_is_a_500_problem_that_leaks_nothing(lite: Api) -> None:
    add_failing_route(lite)
    key = lite.app.state.tenancy.create_api_key("acme", ["ledger:read"])[1]
    response = lite.post("/v1/test-only/boom", key=key)
    assert (response.status_code, problem_code(response)) == (500, "internal_error")
    assert response.json()["request_id"].startswith("req_")
    assert "sk_live" not in response.text
    assert "RuntimeError" not in response.text


def test_a_500_carries_the_request_id_header(lite: Api) -> None:
    add_failing_route(lite)
    key = lite.app.state.tenancy.create_api_key("acme", ["ledger:read"])[1]
    response = lite.post("/v1/test-only/boom", key=key)
    assert response.status_code == 500
    assert response.headers.get_list("request-id") == [response.json()["request_id"]]


def _documented_codes() -> dict[str, tuple[int, str]]:
    rows: dict[str, tuple[int, str]] = {}
    row = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*(\d{3})\s*\|\s*(.+?)\s*\|\s*$")
    for line in ERRORS_DOC.read_text(encoding="utf-8").splitlines():
        match = row.match(line)
        if match:
            code, status, meaning = match.groups()
            assert code not in rows, f"docs/errors.md lists {code} twice"
            rows[code] = (int(status), meaning)
    return rows


def test_every_error_code_is_documented_unique_and_snake_case() -> None:
    documented = _documented_codes()
    missing = sorted(set(ERROR_CODES) - set(documented))
    assert not missing, f"docs/errors.md lacks {missing}"
    unknown = sorted(set(documented) - set(ERROR_CODES))
    assert not unknown, f"docs/errors.md lists codes the API does not have: {unknown}"
    for code, error in ERROR_CODES.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", code), code
        assert documented[code][0] == error.status, (
            f"{code}: documented {documented[code][0]}, is {error.status}"
        )
        assert 400 <= error.status <= 599
    # Every ledger refusal is declared as one (a code declared twice differently would not
    # have built the catalogue at all: core.errors.ErrorCatalogue).
    for refusal in TransferResult:
        if not refusal.ok:
            assert ERROR_CODES[refusal.value].title == REFUSED_TITLE


def test_every_code_raised_in_the_source_is_catalogued() -> None:
    """A code no domain declares would reach clients as a 500 (http/errors.py)."""
    src = ROOT / "src" / "strongroom"
    pattern = re.compile(r"""(?:\bcode=|^\s+code = )"([a-z0-9_]+)\"""", re.MULTILINE)
    found: dict[str, str] = {}
    for package in ("core", "db", "http", "ledger", "tenancy", "events", "audit"):
        for path in sorted((src / package).rglob("*.py")):
            for code in pattern.findall(path.read_text(encoding="utf-8")):
                found.setdefault(code, str(path.relative_to(ROOT)))
    assert {"amount_not_integer", "invalid_timestamp", "insufficient_scope"} <= set(found)
    missing = {c: where for c, where in found.items() if c not in ERROR_CODES}
    assert not missing, f"codes raised but not in ERROR_CODES: {missing}"


def test_every_code_the_tests_saw_is_catalogued() -> None:
    """Runs after the tests above (file order): every problem they received was checked by
    http_support.check_problem, which records its code."""
    assert EMITTED_CODES, "run with the other tests of this file"
    uncatalogued = EMITTED_CODES - set(ERROR_CODES)
    assert not uncatalogued


# -- limits --------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_and_writes_nothing(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    before = _snapshot(lite, acme)
    one = dumps(_transfer(acme, acme.bank, acme.alice, 1))
    count = REQUEST_BODY_BYTES_MAX // len(one) + 1
    body = b'{"transfers": [' + b",".join([one] * count) + b"]}"
    assert len(body) > REQUEST_BODY_BYTES_MAX
    headers = {"content-type": "application/json", "idempotency-key": "big-1"}
    response = lite.post("/v1/transfers/batch", key=acme.write, content=body, headers=headers)
    assert (response.status_code, problem_code(response)) == (413, "request_too_large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    async def streamed() -> Any:
        return await lite.client.post(
            "/v1/transfers/batch", content=chunks(), headers={**headers, **auth(acme.write)}
        )

    response = lite.run(streamed())
    assert "content-length" not in response.request.headers  # chunked: the streaming check
    assert (response.status_code, problem_code(response)) == (413, "request_too_large")
    assert _snapshot(lite, acme) == before
    # The refused request did not take the Idempotency-Key.
    small = b'{"transfers": [' + one + b"]}"
    done = lite.ok("POST", "/v1/transfers/batch", key=acme.write, content=small, headers=headers)
    assert done["results"][0]["status"] == "created"


def test_rate_limit_is_429_with_ratelimit_headers_per_api_key(sqlite_url: str) -> None:
    with running(sqlite_url, rate_limit_per_s=1, rate_limit_burst=2) as api:
        tenancy = api.app.state.tenancy
        first = tenancy.create_api_key("acme", ["ledger:read"])[1]
        second = tenancy.create_api_key("acme", ["ledger:read"])[1]
        answers = [api.get("/v1/ledgers", key=first) for _ in range(3)]
        assert [r.status_code for r in answers] == [200, 200, 429]
        assert [r.headers["ratelimit-limit"] for r in answers] == ["2", "2", "2"]
        assert [r.headers["ratelimit-remaining"] for r in answers] == ["1", "0", "0"]
        limited = answers[2]
        assert problem_code(limited) == "rate_limited"
        reset_s = int(limited.headers["ratelimit-reset"])
        assert reset_s == 1  # one token short, at one token a second
        assert int(limited.headers["retry-after"]) >= 1
        # Another key has its own bucket; no key at all is a 401, not a 429.
        assert api.get("/v1/ledgers", key=second).status_code == 200
        assert api.get("/v1/ledgers").status_code == 401
        # Public routes are not limited.
        assert all(api.get("/healthz").status_code == 200 for _ in range(5))
        time.sleep(reset_s)
        assert api.get("/v1/ledgers", key=first).status_code == 200


# -- operations ----------------------------------------------------------------------------


def test_health_readiness_and_metrics(api: Api, acme: Tenant) -> None:
    assert api.ok("GET", "/healthz") == {"status": "ok"}
    ready = api.ok("GET", "/readyz")
    assert ready["status"] == "ok"
    assert ready["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "committer": "ok",
        "expiry": "ok",
        "audit_checkpoints": "ok",
        "retention": "ok",
        "rewrap": "ok",
        "dispatcher": "ok",
    }
    # Each background loop's last run (tests/e2e/test_operations.py shows them filled in).
    assert sorted(ready["jobs"]) == [
        "aml_retention",
        "audit_checkpoints",
        "compliance_controls",
        "dispatcher",
        "expiry",
        "openbanking_authz_purge",
        "openbanking_consent_expiry",
        "retention",
        "rewrap",
        "sanctions_rescreen",
    ]
    refused = api.post(
        "/v1/transfers", key=acme.write, json=_transfer(acme, acme.alice, acme.bank, 10**9)
    )
    assert refused.status_code == 422
    api.get(f"/v1/accounts/{acme.alice}", key=acme.read)
    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    requests = "strongroom_http_requests_total"
    assert value(requests, method="POST", route="/v1/transfers", status="201") == 2  # the seed
    assert value(requests, method="POST", route="/v1/transfers", status="422") == 1
    assert value(requests, method="GET", route="/v1/accounts/{account_id}", status="200") == 1
    transfers = "strongroom_ledger_transfers_total"
    assert value(transfers, result="created") == 2
    assert value(transfers, result="insufficient_funds") == 1
    # Labels are route templates: no id (and so no customer's data) reaches the metrics.
    for secret in (acme.alice, acme.ledger, acme.posted, acme.marker):
        assert secret not in response.text


# -- bugs found: each test states the behaviour the API should have -------------------------


def _nul_requests(t: Tenant) -> list[tuple[str, str, dict[str, Any]]]:
    nul = "x\x00y"
    in_path = "x%00y"  # httpx refuses a raw NUL in a URL; the server decodes this one
    move = _transfer(t, t.bank, t.alice, 1)
    return [
        ("GET", f"/v1/ledgers/{in_path}", {}),
        ("GET", "/v1/ledgers", {"params": {"starting_after": nul}}),
        ("POST", "/v1/ledgers", {"json": {"name": nul}}),
        ("GET", f"/v1/accounts/{in_path}", {}),
        ("GET", f"/v1/accounts/{in_path}/balance", {}),
        ("GET", f"/v1/accounts/{in_path}/entries", {}),
        ("GET", "/v1/accounts", {"params": {"ledger_id": nul}}),
        (
            "POST",
            "/v1/accounts",
            {"json": {"ledger_id": t.ledger, "asset": nul, "normal_balance": "debit"}},
        ),
        (
            "POST",
            "/v1/accounts",
            {
                "json": {
                    "ledger_id": t.ledger,
                    "asset": "USD",
                    "normal_balance": "debit",
                    "name": nul,
                }
            },
        ),
        ("POST", "/v1/transfers", {"json": {**move, "debit_account_id": nul}}),
        ("POST", "/v1/transfers", {"json": {**move, "ledger_id": nul}}),
        (
            "POST",
            "/v1/transfers/batch",
            {"json": {"transfers": [{**move, "credit_account_id": nul}]}},
        ),
        ("POST", f"/v1/transfers/{in_path}/post", {}),
        ("GET", f"/v1/transfers/{in_path}", {}),
        ("GET", "/v1/transfers", {"params": {"ledger_id": nul}}),
        ("GET", "/v1/transfers", {"params": {"ledger_id": t.ledger, "starting_after": nul}}),
        ("GET", "/v1/transfers", {"params": {"ledger_id": t.ledger, "metadata[k]": nul}}),
    ]


def test_a_nul_character_in_any_string_is_never_a_500(
    api: Api, acme: Tenant, db_url: str, request: pytest.FixtureRequest
) -> None:
    failures = []
    for method, path, kwargs in _nul_requests(acme):
        response = api.request(method, path, key=acme.admin, **kwargs)
        if response.status_code >= 500:
            failures.append(f"{method} {path} {kwargs} -> {response.status_code}")
    assert not failures, "\n".join(failures)


def test_a_lone_surrogate_in_metadata_is_a_400(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    body = b'{"name": "x", "metadata": {"k": "\\ud800"}}'
    response = lite.post(
        "/v1/ledgers", key=acme.write, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


def test_a_metadata_value_of_another_type_is_invalid_metadata(lite: Api) -> None:
    """As docs/errors.md and the CLI say: a float, an object, a list as a metadata value, or a
    metadata that is no object, is `invalid_metadata` naming the member, and nothing is
    written."""
    acme = seed_tenant(lite, "acme")
    move = _transfer(acme, acme.bank, acme.alice, 1)
    before = lite.ok("GET", "/v1/transfers", key=acme.read, params={"ledger_id": acme.ledger})
    for path, body, param in (
        ("/v1/ledgers", {"name": "x", "metadata": {"rate": 1.5}}, "metadata[rate]"),
        ("/v1/ledgers", {"name": "x", "metadata": {"n": {"deep": 1}}}, "metadata[n]"),
        ("/v1/ledgers", {"name": "x", "metadata": ["a"]}, "metadata"),
        ("/v1/transfers", {**move, "metadata": {"k": [1]}}, "metadata[k]"),
        (
            "/v1/transfers/batch",
            {"transfers": [move, {**move, "metadata": {"k": 1.5}}]},
            "transfers[1].metadata[k]",
        ),
    ):
        response = lite.post(path, key=acme.write, json=body)
        problem = response.json()
        assert (response.status_code, problem["code"], problem["param"]) == (
            400,
            "invalid_metadata",
            param,
        ), body
        assert problem["detail"].startswith(param), problem
    after = lite.ok("GET", "/v1/transfers", key=acme.read, params={"ledger_id": acme.ledger})
    assert after["data"] == before["data"]
    # A metadata member where the body takes none is still an unknown field.
    response = lite.post(
        f"/v1/transfers/{acme.ledger}/nothing/post", key=acme.write, json={"metadata2": {}}
    )
    assert problem_code(response) != "invalid_metadata"


def test_a_405_names_the_methods_allowed(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    response = lite.request("PUT", "/v1/ledgers", key=acme.admin, json={"name": "x"})
    assert (response.status_code, problem_code(response)) == (405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_an_out_of_range_timestamp_is_a_400(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    huge = "9" * 20
    for path, params in (
        ("/v1/transfers", {"ledger_id": acme.ledger, "created_after": huge}),
        ("/v1/transfers", {"ledger_id": acme.ledger, "created_before": huge}),
        (f"/v1/accounts/{acme.alice}/balance", {"as_of": huge}),
    ):
        response = lite.get(path, key=acme.read, params=params)
        assert (response.status_code, problem_code(response)) == (400, "invalid_timestamp"), path


def test_transfer_shape_errors_name_the_request_field(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    for body, param in (
        (_transfer(acme, acme.bank, acme.alice, 1, pending=True, timeout_s=-1), "timeout_s"),
        (_transfer(acme, acme.bank, acme.alice, 1, timeout_s=5), "timeout_s"),
        ({"ledger_id": acme.ledger, "entries": []}, "entries"),
    ):
        response = lite.post("/v1/transfers", key=acme.write, json=body)
        assert (response.status_code, response.json().get("param")) == (400, param), body


def test_a_json_syntax_error_names_the_body(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    response = lite.post(
        "/v1/ledgers", key=acme.write, content=b"{", headers={"content-type": "application/json"}
    )
    assert (problem_code(response), response.json()["param"]) == ("invalid_json", "body")


def test_an_existing_asset_is_always_asset_exists(lite: Api) -> None:
    acme = seed_tenant(lite, "acme")
    lite.ok("POST", "/v1/assets", 201, key=acme.admin, json={"code": "GEMS", "scale": 0})
    response = lite.post("/v1/assets", key=acme.admin, json={"code": "GEMS", "scale": 0})
    assert (response.status_code, problem_code(response)) == (409, "asset_exists")


def test_concurrent_creation_of_one_asset_is_one_201_and_409s(
    api: Api, db_url: str, request: pytest.FixtureRequest
) -> None:
    admin = api.app.state.tenancy.create_api_key("acme", ["admin"])[1]
    statuses: list[int] = []
    for i in range(6):
        calls = [
            api.arequest("POST", "/v1/assets", key=admin, json={"code": f"RACE{i}", "scale": 0})
            for _ in range(8)
        ]
        statuses += sorted(r.status_code for r in api.gather(calls))
    assert statuses == [201, *[409] * 7] * 6
