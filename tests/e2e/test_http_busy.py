"""503 answers that say "busy, nothing written, retry": a full group-commit queue
(`overloaded`) and SQLite's writer lock held by another process past its timeout
(`database_busy`). Each is an RFC 9457 problem with a `Retry-After` header; nothing is written
for the refused request, and a retry with the same `Idempotency-Key` then runs as a first
request (a 503 is never stored as the key's answer)."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from strongroom.ledger.model import NewTransfer, TransferOutcome
from strongroom.ledger.service import LedgerService
from tests.e2e.http_support import (
    Tenant,
    balances,
    problem_code,
    running,
    seed_tenant,
    transfer_ids,
)

pytestmark = pytest.mark.timeout(120)

# Concurrent transfers sent at a committer that takes one at a time and queues one more.
SENT = 6


def _move(t: Tenant, amount: int) -> dict[str, Any]:
    return {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": amount,
    }


def _idem(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def _check_busy(response: httpx.Response, code: str) -> None:
    assert response.status_code == 503, response.text
    assert problem_code(response) == code  # also checks the RFC 9457 body
    assert int(response.headers["retry-after"]) >= 1


class _GatedLedger:
    """The app's LedgerService, whose batches wait at a gate: the committer stays busy."""

    def __init__(self, real: LedgerService) -> None:
        self._real = real
        self.gate = threading.Event()
        self.entered = threading.Event()

    def post_transfers(
        self,
        batch: Sequence[NewTransfer],
        *,
        atomic: bool = False,
        validated: bool = False,
        actor: str | None = None,
        actors: Sequence[str | None] | None = None,
    ) -> list[TransferOutcome]:
        self.entered.set()
        assert self.gate.wait(timeout=60), "the test never opened the gate"
        return self._real.post_transfers(
            batch, atomic=atomic, validated=validated, actor=actor, actors=actors
        )


def test_a_full_group_commit_queue_answers_503_overloaded(sqlite_url: str) -> None:
    with running(sqlite_url, group_commit_queue_max=1) as api:
        acme = seed_tenant(api, "acme")
        before = transfer_ids(api, acme.read, ledger_id=acme.ledger)
        committer = api.app.state.committer
        gated = _GatedLedger(committer._service)
        committer._service = gated
        bodies = [_move(acme, 10 + n) for n in range(SENT)]

        async def send_all() -> list[httpx.Response]:
            calls = [
                asyncio.ensure_future(
                    api.arequest(
                        "POST",
                        "/v1/transfers",
                        key=acme.write,
                        json=body,
                        headers=_idem(f"k-{n}"),
                    )
                )
                for n, body in enumerate(bodies)
            ]
            # Only refusals can come back while the committer waits at the gate.
            while not any(call.done() for call in calls):
                await asyncio.sleep(0.01)
            gated.gate.set()
            return list(await asyncio.gather(*calls))

        responses = api.run(send_all())
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {201, 503}, statuses
        refused = [n for n, r in enumerate(responses) if r.status_code == 503]
        created = [n for n, r in enumerate(responses) if r.status_code == 201]
        assert refused, statuses
        assert created, statuses  # the queue was full, so something was queued
        for n in refused:
            _check_busy(responses[n], "overloaded")

        # Nothing was written for the refused ones.
        after = transfer_ids(api, acme.read, ledger_id=acme.ledger)
        assert len(after) == len(before) + len(created)
        assert balances(api, acme, acme.alice)["posted"] == 1000 + sum(
            bodies[n]["amount"] for n in created
        )

        # The same key and body, retried, runs now (no 409 in flight, no replayed 503).
        for n in refused:
            again = api.post(
                "/v1/transfers", key=acme.write, json=bodies[n], headers=_idem(f"k-{n}")
            )
            assert again.status_code == 201, again.text
            assert "idempotent-replayed" not in again.headers
            replay = api.post(
                "/v1/transfers", key=acme.write, json=bodies[n], headers=_idem(f"k-{n}")
            )
            assert replay.headers["idempotent-replayed"] == "true"
            assert replay.json()["id"] == again.json()["id"]
        assert balances(api, acme, acme.alice)["posted"] == 1000 + sum(b["amount"] for b in bodies)
        assert committer.stats.refused == len(refused)


@contextlib.contextmanager
def _writer_lock_held_elsewhere(database_url: str) -> Iterator[None]:
    """Holds the database's writer lock on a descriptor of its own, as another process
    would: flock excludes other open files, whichever process opened them."""
    path = f"{sa.make_url(database_url).database}.writer-lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def test_a_writer_lock_held_past_its_timeout_answers_503_database_busy(sqlite_url: str) -> None:
    with running(sqlite_url, sqlite_writer_lock_timeout_ms=100) as api:
        acme = seed_tenant(api, "acme")
        before = transfer_ids(api, acme.read, ledger_id=acme.ledger)
        accounts_before = api.ok(
            "GET", "/v1/accounts", key=acme.read, params={"ledger_id": acme.ledger}
        )["data"]
        with _writer_lock_held_elsewhere(sqlite_url):
            # Through the group committer.
            _check_busy(
                api.post("/v1/transfers", key=acme.write, json=_move(acme, 5)), "database_busy"
            )
            # A write of its own unit of work.
            account = {"ledger_id": acme.ledger, "asset": "USD", "normal_balance": "credit"}
            _check_busy(api.post("/v1/accounts", key=acme.write, json=account), "database_busy")
            # With an Idempotency-Key: refused at the key's claim, so nothing is stored for it.
            _check_busy(
                api.post(
                    "/v1/transfers", key=acme.write, json=_move(acme, 6), headers=_idem("k-busy")
                ),
                "database_busy",
            )
            # Reads go on.
            assert balances(api, acme, acme.alice)["posted"] == 1000

        assert transfer_ids(api, acme.read, ledger_id=acme.ledger) == before
        assert (
            api.ok("GET", "/v1/accounts", key=acme.read, params={"ledger_id": acme.ledger})["data"]
            == accounts_before
        )
        again = api.post(
            "/v1/transfers", key=acme.write, json=_move(acme, 6), headers=_idem("k-busy")
        )
        assert again.status_code == 201, again.text
        assert "idempotent-replayed" not in again.headers
        assert balances(api, acme, acme.alice)["posted"] == 1006


def test_a_503_whose_key_cannot_be_released_is_still_answered_503(sqlite_url: str) -> None:
    """The key is claimed, then the lock is taken elsewhere: the write fails busy, and so
    does forgetting the key. The client still gets the 503 (not a 500)."""
    with running(sqlite_url, sqlite_writer_lock_timeout_ms=100) as api:
        acme = seed_tenant(api, "acme")
        committer = api.app.state.committer
        gated = _GatedLedger(committer._service)
        committer._service = gated

        async def send() -> httpx.Response:
            call = asyncio.ensure_future(
                api.arequest(
                    "POST",
                    "/v1/transfers",
                    key=acme.write,
                    json=_move(acme, 7),
                    headers=_idem("k-stuck"),
                )
            )
            while not gated.entered.is_set():
                await asyncio.sleep(0.01)
            with _writer_lock_held_elsewhere(sqlite_url):
                gated.gate.set()
                return await call

        _check_busy(api.run(send()), "database_busy")
        assert balances(api, acme, acme.alice)["posted"] == 1000
