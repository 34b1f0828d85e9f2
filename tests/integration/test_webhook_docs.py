"""docs/webhooks.md cannot drift from the code: its payload example has the shape of a real
delivery, and its receiver snippet, run as it is written, accepts a real signed delivery and
refuses a tampered one."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from strongroom.events.dispatcher import Dispatcher, DispatcherConfig
from strongroom.events.outbox import Outbox
from strongroom.events.service import EventService
from strongroom.ledger.model import Direction, NewTransfer, canonical_metadata
from strongroom.ledger.service import LedgerService
from tests.integration.test_outbox_dispatcher import Received, Receiver

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
TENANT = "ten_default"
ROUNDS_MAX = 400


def fenced_block(marker: str, language: str) -> str:
    """The fenced block that follows the HTML comment starting with `marker`."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- {re.escape(marker)}[^>]*-->\s*```{language}\n(.*?)\n```", text, re.DOTALL
    )
    assert found, f"docs/webhooks.md has no {language} block after <!-- {marker} -->"
    return found.group(1)


def shape(value: Any) -> Any:
    """Keys and JSON types, not values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return type(value).__name__


@pytest.fixture
def delivery(db_engine: Engine) -> tuple[Received, str]:
    """A real delivery of a transfer.created event, as a receiver got it, and the secret."""
    ledger = LedgerService(db_engine, sinks=[Outbox()])
    ledger_id = ledger.create_ledger("docs").id
    bank = ledger.create_account(ledger_id, "USD", Direction.DEBIT, name="bank").id
    alice = ledger.create_account(ledger_id, "USD", Direction.CREDIT, name="alice").id
    events = EventService(db_engine, allow_private_targets=True)
    receiver = Receiver()
    try:
        endpoint = events.create_endpoint(TENANT, receiver.url, ["transfer.created"])
        metadata = canonical_metadata({"order": "1042"})
        ledger.post_transfers(
            [NewTransfer("tr_docs_1", ledger_id, bank, alice, 2500, metadata=metadata)]
        )
        with Dispatcher(db_engine, DispatcherConfig(allow_private_targets=True)) as dispatcher:
            for _ in range(ROUNDS_MAX):
                if receiver.count() or dispatcher.run_once():
                    break
                time.sleep(0.01)
    finally:
        receiver.close()
    (received,) = receiver.requests
    return received, endpoint.secret


def test_the_payload_example_has_the_shape_of_a_real_delivery(
    delivery: tuple[Received, str],
) -> None:
    received, _ = delivery
    example = json.loads(fenced_block("webhook-payload-example", "json"))
    real = json.loads(received.body)
    assert shape(example) == shape(real)
    assert list(example) == list(real)  # in the order sent
    assert example["type"] == real["type"] == "transfer.created"
    assert real["id"] == received.webhook_id


def test_the_receiver_snippet_accepts_a_real_delivery_and_refuses_a_forged_one(
    delivery: tuple[Received, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    received, secret = delivery
    monkeypatch.setenv("STRONGROOM_WEBHOOK_SECRET", secret)
    namespace: dict[str, Any] = {}
    exec(compile(fenced_block("webhook-receiver-snippet", "python"), str(DOC), "exec"), namespace)  # noqa: S102 - the documented snippet, run as written
    signed = {k: v for k, v in received.headers.items() if k.startswith("webhook-")}
    headers = {**signed, "content-type": "application/json"}
    forged = received.body.replace(b'"amount":2500', b'"amount":9500')
    assert forged != received.body

    async def post_all() -> list[int]:
        transport = httpx.ASGITransport(app=namespace["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            statuses = []
            for body, with_headers in (
                (received.body, headers),
                (received.body, headers),  # a retry: the same id, answered 2xx, handled once
                (forged, headers),
                (received.body, {"content-type": "application/json"}),  # unsigned
            ):
                answer = await client.post("/hooks/strongroom", content=body, headers=with_headers)
                statuses.append(answer.status_code)
            return statuses

    assert asyncio.run(post_all()) == [204, 204, 400, 400]
    assert namespace["handled"] == {received.webhook_id}
