"""Tenants are walled off: for every route of the app, tenant A naming tenant B's objects gets
exactly what it gets for objects that do not exist. Keys: 401 without a valid one, 403 for a
read-only key on writes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from strongroom.core import ids
from tests.e2e.http_support import (
    Api,
    Tenant,
    app_routes,
    auth,
    balances,
    problem_code,
    running,
    seed_tenant,
    transfer_ids,
)

PUBLIC_ROUTES = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
}


@dataclass
class World:
    api: Api
    a: Tenant
    b: Tenant


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    with running(db_url) as api:
        yield World(api, seed_tenant(api, "acme"), seed_tenant(api, "bravo"))


def _b_data(b: Tenant) -> set[str]:
    return {
        b.ledger,
        b.bank,
        b.alice,
        b.posted,
        b.pending,
        b.marker,
        f"{b.name} books",
        f"{b.name} alice",
    }


def _snapshot(api: Api, t: Tenant) -> tuple[list[str], list[dict[str, int]]]:
    return (
        transfer_ids(api, t.read, ledger_id=t.ledger),
        [balances(api, t, account) for account in (t.bank, t.alice)],
    )


def _without(text: str, *ids_: str) -> str:
    for value in ids_:
        text = text.replace(value, "<id>")
    return re.sub(r'"request_id": "req_[0-9a-z]+"', '"request_id": "<req>"', text)


# -- routes with a path parameter: B's id, and an id nobody has, must answer alike ----------

_B_IDS: dict[str, tuple[str, ...]] = {
    "ledger_id": ("ledger",),
    "account_id": ("bank", "alice"),
    "transfer_id": ("posted", "pending"),
}
_PREFIX = {"ledger_id": "ldg", "account_id": "acc", "transfer_id": "tr"}
# Bodies and queries that would be accepted were the object A's own.
_EXTRAS: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("POST", "/v1/transfers/{transfer_id}/post"): [{}, {"json": {"amount": 1}}],
    ("POST", "/v1/transfers/{transfer_id}/void"): [{}],
    ("POST", "/v1/transfers/{transfer_id}/reverse"): [{}, {"json": {"amount": 1}}],
    ("GET", "/v1/accounts/{account_id}/balance"): [
        {},
        {"params": {"version": 1}},
        {"params": {"as_of": "2030-01-01T00:00:00Z"}},
    ],
    ("GET", "/v1/accounts/{account_id}/entries"): [{}, {"params": {"starting_after": 2}}],
}


def _path_cases(
    world: World, method: str, template: str
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(B's id, the path with it, the path with an unused id, request extras)."""
    names = re.findall(r"{(\w+)}", template)
    assert len(names) == 1, f"{template}: teach the sweep routes with {len(names)} parameters"
    name = names[0]
    assert name in _B_IDS, f"{template}: teach the sweep what a {name} of tenant B is"
    for attribute in _B_IDS[name]:
        theirs = getattr(world.b, attribute)
        nobodys = ids.new_id(_PREFIX[name])
        for extra in _EXTRAS.get((method, template), [{}]):
            yield (
                theirs,
                template.replace(f"{{{name}}}", theirs),
                template.replace(f"{{{name}}}", nobodys),
                extra,
            )


def _check_like_missing(
    world: World, theirs: httpx.Response, missing: httpx.Response, sent: str
) -> None:
    where = f"{theirs.request.method} {theirs.request.url}"
    assert theirs.status_code == 404, f"{where}: {theirs.status_code} {theirs.text}"
    assert problem_code(theirs) == "not_found", where
    assert missing.status_code == 404, f"{where} (unused id): {missing.status_code}"
    # Word for word what an unused id gets, but for the id itself and the request id.
    theirs_text = _without(theirs.text, sent)
    missing_text = _without(missing.text, *re.findall(r"(?:ldg|acc|tr)_[0-9a-z]{26}", missing.text))
    assert theirs_text == missing_text, where
    leaked = {v for v in _b_data(world.b) - {sent} if v in theirs.text}
    assert not leaked, f"{where}: the answer mentions {leaked}"


# -- routes without one: each says how it could reach B's objects -------------------------


@dataclass
class Probe:
    """Requests by A that name B's objects in a query or a body, and what they must get."""

    requests: list[tuple[dict[str, Any], int, str | None]] = field(default_factory=list)
    note: str = ""


def _probes(world: World) -> dict[tuple[str, str], Probe]:
    a, b = world.a, world.b
    theirs = {"ledger_id": b.ledger, "debit_account_id": b.bank, "credit_account_id": b.alice}
    move = {**theirs, "amount": 1}
    mixed = {"ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": b.alice}
    ours: dict[str, Any] = {
        "ledger_id": a.ledger,
        "debit_account_id": a.bank,
        "credit_account_id": a.alice,
        "amount": 1,
    }
    return {
        ("GET", "/v1/ledgers"): Probe(
            [
                ({}, 200, None),
                ({"params": {"starting_after": b.ledger}}, 200, None),
                ({"params": {"ending_before": b.ledger}}, 200, None),
            ],
            "a list of A's own ledgers only",
        ),
        ("POST", "/v1/ledgers"): Probe(
            [({"json": {"name": "new", "metadata": {"of": b.ledger}}}, 201, None)],
            "creates A's ledger; B never sees it",
        ),
        ("POST", "/v1/assets"): Probe([], "assets are shared by every tenant, by design"),
        ("GET", "/v1/accounts"): Probe(
            [
                ({"params": {"ledger_id": b.ledger}}, 404, "not_found"),
                ({"params": {"ledger_id": a.ledger, "starting_after": b.bank}}, 200, None),
            ]
        ),
        ("POST", "/v1/accounts"): Probe(
            [
                (
                    {"json": {"ledger_id": b.ledger, "asset": "USD", "normal_balance": "debit"}},
                    404,
                    "not_found",
                )
            ]
        ),
        ("GET", "/v1/transfers"): Probe(
            [
                ({"params": {"ledger_id": b.ledger}}, 404, "not_found"),
                ({"params": {"account_id": b.alice}}, 404, "not_found"),
                ({"params": {"ledger_id": a.ledger, "account_id": b.alice}}, 404, "not_found"),
            ]
        ),
        ("POST", "/v1/transfers"): Probe(
            [
                ({"json": move}, 404, "not_found"),
                ({"json": {**move, "pending": True}}, 404, "not_found"),
                (
                    {
                        "json": {
                            "ledger_id": b.ledger,
                            "entries": [
                                {"account_id": b.bank, "direction": "debit", "amount": 1},
                                {"account_id": b.alice, "direction": "credit", "amount": 1},
                            ],
                        }
                    },
                    404,
                    "not_found",
                ),
                # B's account in A's ledger: refused as an account that does not exist.
                ({"json": {**mixed, "amount": 1}}, 422, "account_not_found"),
            ]
        ),
        ("POST", "/v1/transfers/batch"): Probe(
            [
                ({"json": {"transfers": [move]}}, 404, "not_found"),
                ({"json": {"transfers": [ours, move]}}, 404, "not_found"),
                ({"json": {"transfers": [{**mixed, "amount": 1}]}}, 200, None),
            ]
        ),
    }


def test_every_route_walls_tenants_off(world: World) -> None:
    api, a, b = world.api, world.a, world.b
    b_before = _snapshot(api, b)
    a_before_ids = transfer_ids(api, a.read, ledger_id=a.ledger)
    probes = _probes(world)
    routes = app_routes(api.app)
    unswept = [r for r in routes if r not in PUBLIC_ROUTES and r not in probes and "{" not in r[1]]
    assert not unswept, f"add these routes to the tenancy sweep: {unswept}"
    swept = 0
    for method, template in routes:
        if (method, template) in PUBLIC_ROUTES:
            response = api.request(method, template)
            assert response.status_code == 200
            leaked = {v for v in _b_data(b) if v in response.text}
            assert not leaked, f"{template} mentions {leaked}"
            swept += 1
        elif "{" in template:
            for sent, path, unused, extra in _path_cases(world, method, template):
                theirs = api.request(method, path, key=a.admin, **extra)
                missing = api.request(method, unused, key=a.admin, **extra)
                _check_like_missing(world, theirs, missing, sent)
                swept += 1
        else:
            for extra, status, code in probes[(method, template)].requests:
                response = api.request(method, template, key=a.admin, **extra)
                where = f"{method} {template} {extra}"
                assert response.status_code == status, f"{where}: {response.text}"
                if code is not None:
                    assert problem_code(response) == code, where
                sent = str(extra)
                leaked = {v for v in _b_data(b) if v in response.text and v not in sent}
                if response.status_code == 200 and "data" in response.json():
                    listed = {x.get("id") for x in response.json()["data"]}
                    leaked |= listed & _b_data(b)
                assert not leaked, f"{where}: the answer mentions {leaked}"
                swept += 1
    assert swept >= 40
    # Nothing of B's changed, and nothing of A's but the ledger and the mixed batch's refusal.
    assert _snapshot(api, b) == b_before
    assert transfer_ids(api, a.read, ledger_id=a.ledger) == a_before_ids
    b_ledgers = api.ok("GET", "/v1/ledgers", key=b.read)["data"]
    assert [x["id"] for x in b_ledgers] == [b.ledger]


def _valid_writes(a: Tenant) -> dict[tuple[str, str], dict[str, Any]]:
    move = {"ledger_id": a.ledger, "debit_account_id": a.bank, "credit_account_id": a.alice}
    return {
        ("POST", "/v1/ledgers"): {"name": "x"},
        ("POST", "/v1/assets"): {"code": "GEMS", "scale": 0},
        ("POST", "/v1/accounts"): {
            "ledger_id": a.ledger,
            "asset": "USD",
            "normal_balance": "debit",
        },
        ("POST", "/v1/transfers"): {**move, "amount": 1},
        ("POST", "/v1/transfers/batch"): {"transfers": [{**move, "amount": 1}]},
        ("POST", "/v1/transfers/{transfer_id}/post"): {},
        ("POST", "/v1/transfers/{transfer_id}/void"): {},
        ("POST", "/v1/transfers/{transfer_id}/reverse"): {},
    }


def test_keys_unauthenticated_and_read_only(world: World) -> None:
    api, a = world.api, world.a
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic " + a.read},
        {"Authorization": "Bearer sk_" + "x" * 43},
        {"Authorization": "Bearer " + a.read[:-1]},
        {"Authorization": "Bearer " + "sk_" + "y" * 300},
        {"Authorization": f"Bearer {a.read}"[:-1] + ("A" if a.read[-1] != "A" else "B")},
    ):
        for method, template in app_routes(api.app):
            if (method, template) in PUBLIC_ROUTES:
                continue
            path = template.replace("{ledger_id}", a.ledger)
            path = path.replace("{account_id}", a.alice).replace("{transfer_id}", a.pending)
            response = api.request(
                method, path, headers=headers, json={} if method == "POST" else None
            )
            assert (response.status_code, problem_code(response)) == (401, "unauthenticated"), (
                method,
                path,
                headers,
            )
    # The lower-case scheme is the same scheme (RFC 9110: case-insensitive).
    assert api.get("/v1/ledgers", headers={"Authorization": f"bearer {a.read}"}).status_code == 200

    # A read-only key reads everything and writes nothing: each write with a valid body.
    writes = {r for r in app_routes(api.app) if r[0] != "GET"}
    assert writes == set(_valid_writes(a)), "teach this test a valid body for new routes"
    for (method, template), body in _valid_writes(a).items():
        path = template.replace("{transfer_id}", a.pending)
        response = api.request(method, path, key=a.read, json=body)
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope"), path
    response = api.post("/v1/assets", key=a.write, json={"code": "GEMS", "scale": 0})
    assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    for method, template in app_routes(api.app):
        if method == "GET" and (method, template) not in PUBLIC_ROUTES:
            path = template.replace("{ledger_id}", a.ledger)
            path = path.replace("{account_id}", a.alice).replace("{transfer_id}", a.pending)
            params = (
                {"ledger_id": a.ledger} if template in ("/v1/accounts", "/v1/transfers") else {}
            )
            assert api.get(path, key=a.read, params=params).status_code == 200, path

    # A revoked key is refused at once by the process that revoked it.
    key, secret = api.app.state.tenancy.create_api_key("acme", ["ledger:read"])
    assert api.get("/v1/ledgers", key=secret).status_code == 200
    api.app.state.tenancy.revoke_api_key(key.id)
    assert api.get("/v1/ledgers", key=secret).status_code == 401


def test_another_tenants_transfer_is_no_cursor(sqlite_url: str) -> None:
    with running(sqlite_url) as api:
        a, b = seed_tenant(api, "acme"), seed_tenant(api, "bravo")
        for cursor in ("starting_after", "ending_before"):
            query = {"ledger_id": a.ledger, cursor: b.posted}
            response = api.get("/v1/transfers", key=a.read, params=query)
            assert response.status_code == 400, (cursor, response.status_code)
            assert problem_code(response) == "invalid_cursor"


def test_a_key_works_for_its_own_tenant_only_by_construction(world: World) -> None:
    """The same request with B's key sees B's objects: the 404s above are about tenancy."""
    api, b = world.api, world.b
    assert api.ok("GET", f"/v1/ledgers/{b.ledger}", key=b.read)["name"] == "bravo books"
    assert api.ok("GET", f"/v1/transfers/{b.pending}", key=b.read)["status"] == "pending"
    assert api.get("/v1/transfers", key=b.read, params={"account_id": b.alice}).status_code == 200
    assert auth(b.read)["Authorization"].startswith("Bearer sk_")
