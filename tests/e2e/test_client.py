"""The typed client against a real server (uvicorn on 127.0.0.1, SQLite)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from strongroom.client import ApiError, Client
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.runtime import create_app
from strongroom.settings import Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, a write key's secret, a read-only key's secret)."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    migrate.upgrade(create_engine(url))
    app = create_app(Settings(database_url=url))
    _, writer = app.state.tenancy.create_api_key("acme", ["ledger:write"])
    _, reader = app.state.tenancy.create_api_key("acme", ["ledger:read"])
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", writer, reader
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


def test_client_round_trip(server: tuple[str, str, str]) -> None:
    base, writer, reader = server
    with Client(base, writer) as sr:
        ledger = sr.create_ledger("main", {"region": "eu"})
        assert ledger.metadata == {"region": "eu"}
        bank = sr.create_account(ledger.id, "USD", "debit", name="bank")
        alice = sr.create_account(
            ledger.id, "USD", "credit", name="alice", flags=["debits_must_not_exceed_credits"]
        )
        deposit = sr.create_transfer(
            ledger.id, debit_account_id=bank.id, credit_account_id=alice.id, amount=10_000
        )
        assert deposit.status == "posted"
        # The same Idempotency-Key twice posts once.
        for _ in range(2):
            hold = sr.create_transfer(
                ledger.id,
                debit_account_id=alice.id,
                credit_account_id=bank.id,
                amount=3_000,
                pending=True,
                timeout_s=600,
                idempotency_key="hold-1",
            )
        assert sr.get_account(alice.id).balances.available == 7_000
        posted = sr.post_transfer(hold.id, 2_000)
        assert (posted.action, posted.amount, posted.target_id) == ("post", 2_000, hold.id)
        with pytest.raises(ApiError) as refused:
            sr.void_transfer(hold.id)
        assert (refused.value.status, refused.value.code) == (
            422,
            "pending_transfer_already_posted",
        )
        reversal = sr.reverse_transfer(deposit.id, 500)
        assert reversal.action == "reverse"
        assert sr.get_balance(alice.id, version=1).balances.posted == 10_000
        entries = sr.list_entries(alice.id, limit=2)
        assert [e.version for e in entries.data] == [4, 3]
        assert entries.has_more
        batch = sr.create_batch(
            [
                {
                    "ledger_id": ledger.id,
                    "debit_account_id": bank.id,
                    "credit_account_id": alice.id,
                    "amount": 1,
                    "linked": True,
                },
                {
                    "ledger_id": ledger.id,
                    "debit_account_id": alice.id,
                    "credit_account_id": bank.id,
                    "amount": 10**12,
                },
            ]
        )
        assert [(r.status, r.code) for r in batch.results] == [
            ("refused", "linked_event_failed"),
            ("refused", "insufficient_funds"),
        ]
        listed = sr.list_transfers(account_id=alice.id, limit=100)
        assert {t.id for t in listed.data} >= {deposit.id, hold.id, posted.id, reversal.id}
        first = sr.list_transfers(account_id=alice.id, limit=2)
        rest = sr.list_transfers(account_id=alice.id, limit=100, cursor=first.next_cursor)
        assert [t.id for t in first.data + rest.data] == [t.id for t in listed.data]
        pages = sr.statement_pages(
            alice.id, "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z", limit=2
        )
        assert [p["first_version"] for p in pages] == [1, 3]
        assert pages[-1]["has_more"] is False
        with pytest.raises(ApiError) as bad:
            sr.create_transfer(
                ledger.id, debit_account_id=bank.id, credit_account_id=alice.id, amount=0
            )
        assert (bad.value.status, bad.value.code, bad.value.param) == (
            400,
            "amount_not_positive",
            "amount",
        )
    with Client(base, reader) as ro:
        assert ro.get_ledger(ledger.id).name == "main"
        with pytest.raises(ApiError) as forbidden:
            ro.create_ledger("nope")
        assert (forbidden.value.status, forbidden.value.code) == (403, "insufficient_scope")
    with Client(base, "sk_not_a_key") as anon, pytest.raises(ApiError) as unauthenticated:
        anon.list_ledgers()
    assert unauthenticated.value.status == 401


def test_amounts_past_64_bits_travel_as_exact_json_integers(server: tuple[str, str, str]) -> None:
    """10^27 minor units (10^9 whole tokens at scale 18) and the 128-bit limit go through the
    HTTP API and the client exactly: no float, no rounding, on the way in or out."""
    base, writer, reader = server
    big = 10**27
    limit = 2**128 - 1
    with Client(base, writer) as sr:
        ledger = sr.create_ledger("tokens")
        issuer = sr.create_account(ledger.id, "USD", "debit")
        holder = sr.create_account(ledger.id, "USD", "credit")
        first = sr.create_transfer(
            ledger.id, debit_account_id=issuer.id, credit_account_id=holder.id, amount=big
        )
        assert first.amount == big
        rest = sr.create_transfer(
            ledger.id, debit_account_id=issuer.id, credit_account_id=holder.id, amount=limit - big
        )
        assert rest.amount == limit - big
        with pytest.raises(ApiError) as refused:
            sr.create_transfer(
                ledger.id, debit_account_id=issuer.id, credit_account_id=holder.id, amount=1
            )
        assert refused.value.code == "overflows_debits_posted"
        with pytest.raises(ApiError) as too_large:
            sr.create_transfer(
                ledger.id, debit_account_id=issuer.id, credit_account_id=holder.id, amount=2**128
            )
        assert too_large.value.code == "amount_too_large"
    with Client(base, reader) as sr:
        assert sr.get_account(holder.id).balances.credits_posted == limit
        assert sr.get_transfer(first.id).amount == big
    # The wire itself carries the digits (a JavaScript client needs a big-number parser).
    raw = httpx.get(
        f"{base}/v1/accounts/{holder.id}", headers={"Authorization": f"Bearer {reader}"}
    )
    assert f'"credits_posted":{limit}' in raw.text.replace(" ", "")
