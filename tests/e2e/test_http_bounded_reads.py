"""Bounded reads over HTTP: next_cursor on transfer listings (a partial page while has_more),
statements in pages that the offline verifier joins."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from strongroom.audit.statement import verify_statement
from strongroom.cli import app as cli_app
from tests.e2e.http_support import Api, Tenant, problem_code, running, seed_tenant


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as app:
        yield app


@pytest.fixture
def acme(api: Api) -> Tenant:
    return seed_tenant(api, "acme")


def _move(api: Api, t: Tenant, amount: int, **extra: Any) -> str:
    body = {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": amount,
        **extra,
    }
    transfer_id = api.ok("POST", "/v1/transfers", 201, key=t.write, json=body)["id"]
    assert isinstance(transfer_id, str)
    return transfer_id


def test_a_filtered_listing_goes_on_with_next_cursor(api: Api, acme: Tenant) -> None:
    made = [_move(api, acme, 1 + i, metadata={"n": i % 3}) for i in range(12)]
    ledger = api.app.state.ledger
    ledger.scan_rows_max = 4  # examine four transfers a request
    for params, expected in (
        (
            {"ledger_id": acme.ledger, "metadata[n]": "1"},
            [t for i, t in enumerate(made) if i % 3 == 1],
        ),
        (
            {"account_id": acme.alice, "metadata[n]": "2"},
            [t for i, t in enumerate(made) if i % 3 == 2],
        ),
    ):
        seen: list[str] = []
        cursor: dict[str, str] = {}
        short = 0
        for _ in range(50):
            page = api.ok(
                "GET", "/v1/transfers", key=acme.read, params={**params, "limit": 3, **cursor}
            )
            seen += [t["id"] for t in page["data"]]
            if not page["has_more"]:
                assert page.get("next_cursor") is None
                break
            short += len(page["data"]) < 3
            cursor = {"cursor": page["next_cursor"]}
        assert seen == expected[::-1]
        assert short > 0  # partial pages happened, and the cursor went on from them
    response = api.get(
        "/v1/transfers", key=acme.read, params={"ledger_id": acme.ledger, "cursor": "cur_nope"}
    )
    assert (response.status_code, problem_code(response)) == (400, "invalid_cursor")
    response = api.get(
        "/v1/transfers",
        key=acme.read,
        params={
            "ledger_id": acme.ledger,
            "cursor": page["next_cursor"] or "",
            "starting_after": made[0],
        },
    )
    assert response.status_code == 400


def test_statement_pages_verify_offline(api: Api, acme: Tenant, tmp_path: Path) -> None:
    for amount in range(1, 8):
        _move(api, acme, amount)
    api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)
    key = api.ok("GET", "/v1/audit/keys", key=acme.read)["data"][-1]["verifier_key"]
    period = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    url = f"/v1/accounts/{acme.alice}/statement"
    pages = [api.ok("GET", url, key=acme.read, params={**period, "limit": 3})]
    while pages[-1]["has_more"]:
        params = {**period, "limit": 3, "cursor": pages[-1]["next_cursor"]}
        pages.append(api.ok("GET", url, key=acme.read, params=params))
    assert len(pages) > 2
    assert all(len(p["leaves"]) <= 3 for p in pages)
    whole = api.ok("GET", url, key=acme.read, params=period)
    assert not whole["has_more"]
    assert verify_statement(pages, [key]).entries == verify_statement(whole, [key]).entries
    path = tmp_path / "pages.json"
    path.write_text(json.dumps(pages))
    out = CliRunner().invoke(cli_app, ["audit", "verify-statement", str(path), "--public-key", key])
    assert out.exit_code == 0, out.output
    assert f"{len(pages)} pages" in out.output
    for params, code in (
        ({**period, "limit": 1001}, "invalid_request"),
        ({**period, "cursor": "stm_x"}, "invalid_cursor"),
    ):
        response = api.get(url, key=acme.read, params=params)
        assert (response.status_code, problem_code(response)) == (400, code)
