"""The typed client against a real server (uvicorn on 127.0.0.1, SQLite)."""

from __future__ import annotations

import asyncio
import inspect
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from strongroom import apidoc
from strongroom.audit.offline import verify_receipt
from strongroom.audit.statement import verify_statement
from strongroom.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    DataErasedError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    LedgerRefusedError,
    NotFoundError,
    PermissionDeniedError,
    resources,
)
from strongroom.client import cases as client_cases
from strongroom.client import compliance as client_compliance
from strongroom.client import customers as client_customers
from strongroom.client import kyc as client_kyc
from strongroom.client import openbanking as client_openbanking
from strongroom.client import risk as client_risk
from strongroom.client import risk_models as client_risk_models
from strongroom.client import screenings as client_screenings
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, TransferResult
from strongroom.ledger.schemas import TransferOut
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.model import Permission
from strongroom.runtime import create_app
from strongroom.security.auth.model import SignInMethod
from strongroom.settings import Settings
from tests.support.jwks import ec_key, okp_key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Live:
    app: FastAPI
    base_url: str
    writer: str  # ledger:write
    reader: str  # ledger:read
    admin: str  # admin
    pii: str  # customers:write and pii:read


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The app under uvicorn on 127.0.0.1, with keys of each scope (no webhook dispatcher)."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    migrate.upgrade(create_engine(url))
    settings = Settings(database_url=url, dispatcher=False, webhook_allow_private_targets=True)
    app = create_app(settings)
    _, writer = app.state.tenancy.create_api_key("acme", ["ledger:write"])
    _, reader = app.state.tenancy.create_api_key("acme", ["ledger:read"])
    _, admin = app.state.tenancy.create_api_key("acme", ["admin"])
    _, pii = app.state.tenancy.create_api_key("acme", ["customers:write", "pii:read"])
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
        yield Live(app, f"http://127.0.0.1:{port}", writer, reader, admin, pii)
    finally:
        srv.should_exit = True
        thread.join(timeout=20)


@pytest.fixture
def server(live: Live) -> tuple[str, str, str]:
    """(base URL, a write key's secret, a read-only key's secret)."""
    return live.base_url, live.writer, live.reader


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


# -- every operation has a method ----------------------------------------------------------

T0, T1 = "2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
# (method, path) of each operation of the OpenAPI document -> the client method that calls it,
# with arguments to build its request. A route without a method here fails the test below.
OPERATIONS: dict[tuple[str, str], tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    ("POST", "/v1/ledgers"): ("create_ledger", ("main",), {}),
    ("GET", "/v1/ledgers"): ("list_ledgers", (), {}),
    ("GET", "/v1/ledgers/{ledger_id}"): ("get_ledger", ("lg_1",), {}),
    ("POST", "/v1/assets"): ("create_asset", ("GOLD", 3), {}),
    ("POST", "/v1/accounts"): ("create_account", ("lg_1", "USD", "credit"), {}),
    ("GET", "/v1/accounts"): ("list_accounts", ("lg_1",), {}),
    ("GET", "/v1/accounts/{account_id}"): ("get_account", ("acc_1",), {}),
    ("GET", "/v1/accounts/{account_id}/balance"): ("get_balance", ("acc_1",), {}),
    ("GET", "/v1/accounts/{account_id}/entries"): ("list_entries", ("acc_1",), {}),
    ("GET", "/v1/accounts/{account_id}/statement"): ("statement", ("acc_1", T0, T1), {}),
    ("POST", "/v1/transfers"): ("create_transfer", ("lg_1",), {"amount": 1}),
    ("POST", "/v1/transfers/batch"): ("create_batch", ([],), {}),
    ("GET", "/v1/transfers"): ("list_transfers", (), {"ledger_id": "lg_1"}),
    ("GET", "/v1/transfers/{transfer_id}"): ("get_transfer", ("tr_1",), {}),
    ("POST", "/v1/transfers/{transfer_id}/post"): ("post_transfer", ("tr_1",), {}),
    ("POST", "/v1/transfers/{transfer_id}/void"): ("void_transfer", ("tr_1",), {}),
    ("POST", "/v1/transfers/{transfer_id}/reverse"): ("reverse_transfer", ("tr_1",), {}),
    ("GET", "/v1/transfers/{transfer_id}/receipt"): ("get_transfer_receipt", ("tr_1",), {}),
    ("GET", "/v1/events"): ("list_events", (), {}),
    ("GET", "/v1/events/{event_id}"): ("get_event", ("ev_1",), {}),
    ("POST", "/v1/webhook_endpoints"): ("create_webhook_endpoint", ("https://x.test",), {}),
    ("GET", "/v1/webhook_endpoints"): ("list_webhook_endpoints", (), {}),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}"): ("get_webhook_endpoint", ("we_1",), {}),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}"): (
        "update_webhook_endpoint",
        ("we_1",),
        {"enabled": False},
    ),
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"): ("delete_webhook_endpoint", ("we_1",), {}),
    ("GET", "/v1/webhook_endpoints/{endpoint_id}/attempts"): (
        "list_webhook_attempts",
        ("we_1",),
        {},
    ),
    ("POST", "/v1/cards"): ("create_card", ("4242424242424242", 12, 2040, "Ada"), {}),
    ("GET", "/v1/cards"): ("list_cards", (), {}),
    ("GET", "/v1/cards/{card_id}"): ("get_card", ("card_1",), {}),
    ("GET", "/v1/cards/{card_id}/number"): ("get_card_number", ("card_1",), {}),
    ("DELETE", "/v1/cards/{card_id}"): ("delete_card", ("card_1",), {}),
    ("GET", "/v1/audit/checkpoint"): ("get_latest_checkpoint", (), {}),
    ("POST", "/v1/audit/checkpoints"): ("publish_checkpoint", (), {}),
    ("GET", "/v1/audit/checkpoints/{tree_size}"): ("get_checkpoint", (5,), {}),
    ("GET", "/v1/audit/keys"): ("list_audit_keys", (), {}),
    ("GET", "/v1/audit/leaves"): ("list_audit_leaves", (), {}),
    ("GET", "/v1/audit/proofs/inclusion"): ("get_inclusion_proof", (5,), {"leaf_index": 0}),
    ("GET", "/v1/audit/proofs/consistency"): ("get_consistency_proof", (1, 5), {}),
    ("POST", "/v1/tenants"): ("create_tenant", ("newco",), {}),
    ("GET", "/v1/transfers/{transfer_id}/risk"): ("get_transfer_risk", ("tr_1",), {}),
    ("POST", "/v1/risk/labels"): ("create_risk_label", ("tr_1", True), {}),
    ("GET", "/v1/tenants"): ("list_tenants", (), {}),
    ("GET", "/v1/tenants/{tenant_id}"): ("get_tenant", ("ten_1",), {}),
    ("POST", "/v1/tenants/{tenant_id}/suspend"): ("suspend_tenant", ("ten_1",), {}),
    ("POST", "/v1/tenants/{tenant_id}/resume"): ("resume_tenant", ("ten_1",), {}),
    ("POST", "/v1/customers"): ("create_customer", ("Ada",), {}),
    ("GET", "/v1/customers"): ("list_customers", (), {"email": "a@b.co"}),
    ("POST", "/v1/customers/search"): ("search_customers", (), {"email": "a@b.co"}),
    ("GET", "/v1/customers/{customer_id}"): ("get_customer", ("cus_1",), {}),
    ("PATCH", "/v1/customers/{customer_id}"): ("update_customer", ("cus_1",), {"name": "B"}),
    ("GET", "/v1/customers/{customer_id}/personal-data"): (
        "get_customer_personal_data",
        ("cus_1",),
        {"fields": ["email"]},
    ),
    ("DELETE", "/v1/customers/{customer_id}/personal-data"): (
        "delete_customer_personal_data",
        ("cus_1",),
        {},
    ),
    ("POST", "/v1/customers/{customer_id}/legal-hold"): (
        "create_customer_legal_hold",
        ("cus_1",),
        {},
    ),
    ("DELETE", "/v1/customers/{customer_id}/legal-hold"): (
        "delete_customer_legal_hold",
        ("cus_1",),
        {},
    ),
    ("GET", "/v1/customers/{customer_id}/accounts"): ("list_customer_accounts", ("cus_1",), {}),
    ("GET", "/v1/customers/{customer_id}/export"): ("get_customer_export", ("cus_1",), {}),
    ("GET", "/v1/compliance/report"): ("get_compliance_report", (), {}),
    ("GET", "/v1/accounts/{account_id}/aml"): ("get_account_aml", ("acc_1",), {}),
    ("PUT", "/v1/accounts/{account_id}/aml"): ("update_account_aml", ("acc_1",), {"exempt": True}),
    ("GET", "/v1/cases"): ("list_cases", (), {"status": "open", "kind": "risk_review"}),
    ("GET", "/v1/cases/{case_id}"): ("get_case", ("case_1",), {}),
    ("POST", "/v1/cases/{case_id}/approve"): ("approve_case", ("case_1",), {"reason": "ok"}),
    ("POST", "/v1/cases/{case_id}/decline"): ("decline_case", ("case_1",), {"fraud": False}),
    ("POST", "/v1/counterparties"): ("create_counterparty", ("Bo", "GB29NWBK6016", "GB"), {}),
    ("GET", "/v1/counterparties"): ("list_counterparties", (), {}),
    ("GET", "/v1/counterparties/{counterparty_id}"): ("get_counterparty", ("cpty_1",), {}),
    ("GET", "/v1/counterparties/{counterparty_id}/personal-data"): (
        "get_counterparty_personal_data",
        ("cpty_1",),
        {},
    ),
    ("DELETE", "/v1/counterparties/{counterparty_id}/personal-data"): (
        "delete_counterparty_personal_data",
        ("cpty_1",),
        {},
    ),
    ("POST", "/v1/auth/sessions"): ("create_session", ("acme", "a@b.example", "pw"), {}),
    ("GET", "/v1/auth/sessions/current"): ("get_current_session", (), {}),
    ("DELETE", "/v1/auth/sessions/current"): ("delete_current_session", (), {}),
    ("POST", "/v1/auth/totp"): ("create_totp_enrolment", (), {}),
    ("POST", "/v1/auth/totp/confirm"): ("confirm_totp", ("123456",), {}),
    ("POST", "/v1/auth/passkeys/registration/options"): (
        "create_passkey_registration_options",
        (),
        {},
    ),
    ("POST", "/v1/auth/passkeys/registration"): ("create_passkey", ("chl_1", {"id": "x"}), {}),
    ("POST", "/v1/auth/passkeys/authentication/options"): (
        "create_passkey_authentication_options",
        ("acme",),
        {},
    ),
    ("POST", "/v1/auth/passkeys/authentication"): (
        "create_passkey_session",
        ("chl_1", {"id": "x"}),
        {},
    ),
    ("POST", "/v1/auth/step-up/options"): ("create_step_up_options", (), {}),
    ("POST", "/v1/auth/step-up"): ("step_up", (), {}),
    ("POST", "/v1/users"): ("create_user", ("a@b.example", "support"), {}),
    ("POST", "/v1/auth/invitations"): ("accept_invitation", ("inv_1", "pw"), {}),
    ("GET", "/v1/users"): ("list_users", (), {"email": "a@b.example"}),
    ("GET", "/v1/users/{user_id}"): ("get_user", ("usr_1",), {}),
    ("PATCH", "/v1/users/{user_id}"): ("update_user", ("usr_1",), {"role": "auditor"}),
    ("POST", "/v1/api_keys"): ("create_api_key", (["ledger:read"],), {}),
    ("GET", "/v1/risk/models"): ("list_risk_models", (), {}),
    ("GET", "/v1/risk/models/{version}"): ("get_risk_model", ("mdl_1",), {}),
    ("POST", "/v1/risk/models/{version}/promote"): ("promote_risk_model", ("mdl_1",), {}),
    ("POST", "/v1/risk/models/{version}/shadow"): ("shadow_risk_model", ("mdl_1",), {}),
    ("POST", "/v1/cases/{case_id}/assign"): ("assign_case", ("case_1", "usr_1"), {}),
    ("POST", "/v1/cases/{case_id}/notes"): ("create_case_note", ("case_1", "a note"), {}),
    ("GET", "/v1/cases/{case_id}/notes"): ("list_case_notes", ("case_1",), {}),
    ("GET", "/v1/cases/{case_id}/report"): ("get_case_report", ("case_1",), {"reveal": True}),
    ("POST", "/v1/screenings"): ("create_screening", ("Jane Doe",), {}),
    ("GET", "/v1/screenings/subjects/{subject_id}"): ("get_screening_subject", ("cus_1",), {}),
    ("POST", "/v1/screenings/dismissals"): (
        "dismiss_screening_match",
        ("cus_1", "un", "1"),
        {},
    ),
    ("POST", "/v1/screenings/confirmations"): (
        "confirm_screening_match",
        ("cus_1", "un", "1"),
        {},
    ),
    ("GET", "/v1/customers/{customer_id}/kyc"): ("get_customer_kyc", ("cus_1",), {}),
    ("PUT", "/v1/customers/{customer_id}/kyc"): ("update_customer_kyc", ("cus_1", "verified"), {}),
    ("POST", "/v1/accounts/{account_id}/freeze"): ("freeze_account", ("acc_1",), {}),
    ("POST", "/v1/accounts/{account_id}/unfreeze"): ("unfreeze_account", ("acc_1",), {}),
    ("POST", "/v1/openbanking/clients"): (
        "create_openbanking_client",
        ("Acme", ["https://tpp.example.com/cb"], {"keys": []}),
        {},
    ),
    ("GET", "/v1/openbanking/clients"): ("list_openbanking_clients", (), {}),
    ("GET", "/v1/openbanking/clients/{client_id}"): ("get_openbanking_client", ("tpp_1",), {}),
    ("PUT", "/v1/openbanking/clients/{client_id}/jwks"): (
        "update_openbanking_client_jwks",
        ("tpp_1", {"keys": []}),
        {},
    ),
    ("POST", "/v1/openbanking/clients/{client_id}/disable"): (
        "disable_openbanking_client",
        ("tpp_1",),
        {},
    ),
    ("POST", "/v1/openbanking/clients/{client_id}/enable"): (
        "enable_openbanking_client",
        ("tpp_1",),
        {},
    ),
    ("GET", "/v1/openbanking/consents"): (
        "list_openbanking_consents",
        (),
        {"customer_id": "cus_1", "limit": 10, "starting_after": "obc_1"},
    ),
    ("POST", "/v1/openbanking/consents/{consent_id}/revoke"): (
        "revoke_openbanking_consent",
        ("obc_1",),
        {},
    ),
}


def _builder(name: str) -> Any:
    """A request builder of the client, from `resources`, `customers`, `cases`, `risk`,
    `compliance`, `screenings`, `kyc`, `openbanking` or `risk_models`."""
    modules = (
        resources,
        client_customers,
        client_cases,
        client_risk,
        client_compliance,
        client_screenings,
        client_kyc,
        client_openbanking,
    )
    for module in modules:
        found = getattr(module, name, None)
        if found is not None:
            return found
    return getattr(client_risk_models, name)


# Listings that are one page by construction (no cursor to follow).
SINGLE_PAGE = {"list_audit_keys", "list_case_notes"}


def test_every_operation_of_the_openapi_document_has_a_client_method() -> None:
    """Each operation has a method on both clients that sends that method to that path with
    only the query parameters the operation declares, and takes every one it declares; each
    listing that pages has an iter_ method."""
    document = apidoc.build_document()
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert set(operations) == set(OPERATIONS), "a route without a client method, or the reverse"
    for (method, template), (name, args, kwargs) in OPERATIONS.items():
        call = _builder(name)(*args, **kwargs)
        assert call.method == method, name
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        assert re.fullmatch(pattern, call.path), (name, call.path)
        declared = {p["name"] for p in operations[method, template].get("parameters", [])}
        queries = {p["name"] for p in operations[method, template].get("parameters", [])
                   if p["in"] == "query"}  # fmt: skip
        sent = {k for k, v in call.params.items() if v is not None}
        assert sent <= declared, (name, sent - declared)
        accepted = {p.removesuffix("_") for p in inspect.signature(_builder(name)).parameters}
        assert queries <= accepted, (name, queries - accepted)
        for cls in (Client, AsyncClient):
            assert callable(getattr(cls, name)), (cls, name)
        if name.startswith("list_") and name not in SINGLE_PAGE:
            iter_name = "iter_" + name.removeprefix("list_")
            assert hasattr(Client, iter_name), iter_name
            assert hasattr(AsyncClient, iter_name), iter_name
    assert hasattr(Client, "iter_statement_pages")


# -- against the live server ---------------------------------------------------------------


def _transfer(sr: Client, ledger_id: str, debit: str, credit: str, **extra: Any) -> TransferOut:
    return sr.create_transfer(
        ledger_id, debit_account_id=debit, credit_account_id=credit, amount=1, **extra
    )


def test_iterators_walk_every_page_of_each_listing(live: Live) -> None:
    with Client(live.base_url, live.writer) as sr:
        ledgers = [sr.create_ledger(f"l{i}").id for i in range(3)]
        main = ledgers[0]
        accounts = [sr.create_account(main, "USD", "debit").id for _ in range(5)]
        bank, alice = accounts[0], accounts[1]
        made = [
            _transfer(sr, main, bank, alice, metadata={"parity": "odd" if i % 2 else "even"})
            for i in range(9)
        ]
    # Listings that examine a bounded range per request: short pages while has_more.
    live.app.state.ledger.scan_rows_max = 3
    live.app.state.events.scan_rows_max = 3
    with Client(live.base_url, live.reader) as sr:
        assert [x.id for x in sr.iter_ledgers(limit=2)] == [
            x.id for x in sr.list_ledgers(limit=100).data
        ]
        assert sorted(ledgers) == sorted(x.id for x in sr.iter_ledgers(limit=2))
        assert [a.id for a in sr.iter_accounts(main, limit=2)] == [
            a.id for a in sr.list_accounts(main, limit=100).data
        ]
        assert len(list(sr.iter_accounts(main, limit=2))) == 5
        odd = [t.id for t in reversed(made) if t.metadata == {"parity": "odd"}]
        first = sr.list_transfers(ledger_id=main, metadata={"parity": "odd"}, limit=2)
        assert len(first.data) < 2
        assert first.has_more
        assert first.next_cursor is not None
        by_ledger = sr.iter_transfers(ledger_id=main, metadata={"parity": "odd"}, limit=2)
        assert [t.id for t in by_ledger] == odd
        by_account = sr.iter_transfers(account_id=alice, limit=4)
        assert [t.id for t in by_account] == [t.id for t in reversed(made)]
        assert [e.version for e in sr.iter_entries(alice, limit=4)] == list(range(9, 0, -1))
        created = list(sr.iter_events(type="transfer.created", limit=2))
        assert [e.data["id"] for e in created] == [t.id for t in reversed(made)]
        assert sr.get_event(created[0].id) == created[0]
        assert [e.id for e in sr.iter_events(ledger_id=ledgers[1])] == []
    with Client(live.base_url, live.admin) as admin:
        hooks = [admin.create_webhook_endpoint(f"http://127.0.0.1:9/h{i}").id for i in range(3)]
        assert sorted(e.id for e in admin.iter_webhook_endpoints(limit=2)) == sorted(hooks)
        assert list(admin.iter_webhook_attempts(hooks[0], limit=2)) == []
        assert admin.update_webhook_endpoint(hooks[0], enabled=False).status == "disabled"
        assert admin.delete_webhook_endpoint(hooks[0]).deleted


def test_events_receipts_statements_and_the_audit_log(live: Live) -> None:
    with Client(live.base_url, live.writer) as sr:
        ledger = sr.create_ledger("main").id
        bank = sr.create_account(ledger, "USD", "debit").id
        alice = sr.create_account(ledger, "USD", "credit").id
        transfers = [_transfer(sr, ledger, bank, alice) for _ in range(3)]
    with Client(live.base_url, live.admin) as admin:
        published = admin.publish_checkpoint()
    with Client(live.base_url, live.reader) as sr:
        keys = [k.verifier_key for k in sr.list_audit_keys().data]
        assert keys
        latest = sr.get_latest_checkpoint()
        assert latest.tree_size >= published.tree_size
        assert sr.get_checkpoint(published.tree_size) == published
        size = sr.list_audit_leaves(limit=1).tree_size
        assert [leaf.index for leaf in sr.iter_audit_leaves(limit=3)] == list(range(size))
        assert [leaf.index for leaf in sr.iter_audit_leaves(start=size - 1)] == [size - 1]
        proof = sr.get_inclusion_proof(published.tree_size, transfer_id=transfers[0].id)
        assert proof.tree_size == published.tree_size
        assert sr.get_consistency_proof(1, published.tree_size).second == published.tree_size
        receipt = sr.get_transfer_receipt(transfers[-1].id)
        assert verify_receipt(receipt.model_dump(), keys).tree_size >= 1
        pages = list(sr.iter_statement_pages(alice, T0, T1, limit=1))
        assert [p.first_version for p in pages] == [1, 2, 3]
        documents = sr.statement_pages(alice, T0, T1, limit=1)
        assert documents == [p.model_dump(by_alias=True) for p in pages]
        checked = verify_statement(documents, keys)
        assert [e.version for e in checked.entries] == [1, 2, 3]


def test_errors_are_typed_by_code(live: Live) -> None:
    with Client(live.base_url, live.writer) as sr:
        ledger = sr.create_ledger("main").id
        bank = sr.create_account(ledger, "USD", "debit").id
        alice = sr.create_account(
            ledger, "USD", "credit", flags=["debits_must_not_exceed_credits"]
        ).id
        with pytest.raises(LedgerRefusedError) as refused:
            _transfer(sr, ledger, alice, bank)
        assert refused.value.result == TransferResult.INSUFFICIENT_FUNDS
        assert refused.value.status == 422
        assert refused.value.request_id is not None
        with pytest.raises(InvalidRequestError) as invalid:
            sr.create_transfer(ledger, debit_account_id=bank, credit_account_id=alice, amount=0)
        assert (invalid.value.code, invalid.value.param) == ("amount_not_positive", "amount")
        with pytest.raises(NotFoundError):
            sr.get_ledger("lg_does_not_exist")
        sr.create_ledger("first", idempotency_key="same-key")
        with pytest.raises(IdempotencyKeyReusedError):
            sr.create_ledger("second", idempotency_key="same-key")
        with pytest.raises(PermissionDeniedError):
            sr.create_asset("GOLD", 3)
    with Client(live.base_url, live.admin) as admin, pytest.raises(ConflictError) as exists:
        admin.create_asset("USD", 2)
    assert exists.value.code == "asset_exists"
    with Client(live.base_url, "sk_not_a_key") as anon, pytest.raises(AuthenticationError):
        anon.list_ledgers()


def test_key_and_base_url_from_the_environment(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_API_KEY", live.writer)
    monkeypatch.setenv("STRONGROOM_BASE_URL", live.base_url)
    with Client() as sr:
        assert sr.create_ledger("from-env").name == "from-env"


def test_async_client_round_trip(live: Live) -> None:
    async def run() -> None:
        async with AsyncClient(live.base_url, live.writer) as sr:
            ledger = await sr.create_ledger("main")
            bank, alice = await asyncio.gather(
                sr.create_account(ledger.id, "USD", "debit"),
                sr.create_account(ledger.id, "USD", "credit"),
            )
            made = await asyncio.gather(
                *(
                    sr.create_transfer(
                        ledger.id, debit_account_id=bank.id, credit_account_id=alice.id, amount=5
                    )
                    for _ in range(5)
                )
            )
            assert (await sr.get_account(alice.id)).balances.posted == 25
            listed = [t.id async for t in sr.iter_transfers(account_id=alice.id, limit=2)]
            assert sorted(listed) == sorted(t.id for t in made)
            events = [e async for e in sr.iter_events(ledger_id=ledger.id, limit=2)]
            assert len(events) == 5
            pages = await sr.statement_pages(alice.id, T0, T1, limit=2)
            assert len(pages) == 3
            with pytest.raises(NotFoundError):
                await sr.get_transfer("tr_does_not_exist")
            with pytest.raises(LedgerRefusedError) as refused:
                await sr.void_transfer(made[0].id)
            assert refused.value.code == "pending_transfer_not_pending"

    asyncio.run(run())


def test_the_readme_python_snippet_runs(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    [snippet] = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    monkeypatch.setenv("STRONGROOM_API_KEY", live.writer)
    monkeypatch.setenv("STRONGROOM_BASE_URL", live.base_url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(snippet, "README.md", "exec"), {})  # noqa: S102 - our own README
    lines = out.getvalue().splitlines()
    assert lines[0] == "refused: insufficient_funds"
    assert len(lines) == 3
    assert lines[1].endswith(" 2500 posted")
    assert "'available': 2500" in lines[2] or "available=2500" in lines[2]


def test_customers_and_counterparties(live: Live) -> None:
    address = {"line1": "12 St James's Square", "city": "London", "country": "GB"}
    with Client(live.base_url, live.pii) as sr, Client(live.base_url, live.admin) as admin:
        ada = sr.create_customer(
            "Ada Lovelace", email="Ada@Example.com", national_id="QQ123456C", address=address
        )
        assert (ada.name, ada.email, ada.erased) == ("A** L*******", "a***@example.com", False)
        assert sr.get_customer(ada.id) == ada
        assert [c.id for c in sr.iter_customers()] == [ada.id]
        assert [c.id for c in sr.search_customers(email="ada@example.com").data] == [ada.id]
        assert [c.id for c in sr.list_customers(national_id="qq-123456-c").data] == [ada.id]
        updated = sr.update_customer(ada.id, phone="+447700900123")
        assert updated.phone == "+**********23"
        full = sr.get_customer_personal_data(ada.id)
        assert (full.email, full.phone) == ("ada@example.com", "+447700900123")
        assert full.address is not None
        assert full.address.line1 == address["line1"]
        with pytest.raises(PermissionDeniedError):
            admin.get_customer_personal_data(ada.id)  # admin does not imply pii:read
        ledger = admin.create_ledger("books")
        wallet = admin.create_account(ledger.id, "USD", "credit", customer_id=ada.id)
        assert wallet.customer_id == ada.id
        assert [a.id for a in admin.iter_customer_accounts(ada.id)] == [wallet.id]
        assert admin.create_customer_legal_hold(ada.id).legal_hold is True
        with pytest.raises(ConflictError) as held:
            admin.delete_customer_personal_data(ada.id)
        assert held.value.code == "legal_hold"
        admin.delete_customer_legal_hold(ada.id)
        # Still held: an open account's records are kept for AML record keeping.
        with pytest.raises(ConflictError) as kept:
            admin.delete_customer_personal_data(ada.id)
        assert kept.value.code == "legal_hold"
        assert "AML" in str(kept.value)
        grace = sr.create_customer("Grace Hopper", email="grace@example.com")  # no account
        erased = admin.delete_customer_personal_data(grace.id)
        assert (erased.erased, erased.name) == (True, None)
        with pytest.raises(DataErasedError):
            sr.get_customer_personal_data(grace.id)
        payee = sr.create_counterparty("Charles Babbage", "GB29NWBK60161331926819", "GB")
        assert payee.name == "C****** B******"
        assert [p.id for p in sr.iter_counterparties()] == [payee.id]
        assert sr.get_counterparty(payee.id) == payee
        shown = sr.get_counterparty_personal_data(payee.id)
        assert shown.account_identifier == "GB29NWBK60161331926819"
        assert admin.delete_counterparty_personal_data(payee.id).erased is True


def test_async_client_reads_customers(live: Live) -> None:
    async def run() -> None:
        async with AsyncClient(live.base_url, live.pii) as sr:
            made = await sr.create_customer("Grace Hopper", kind="person")
            found = [c.id async for c in sr.iter_customers()]
            assert found == [made.id]
            assert (await sr.get_customer_personal_data(made.id)).name == "Grace Hopper"

    asyncio.run(run())


def test_cards_through_both_clients(live: Live) -> None:
    tenancy = live.app.state.tenancy
    writer = tenancy.create_api_key("acme", ["cards:write"])[1]
    revealer = tenancy.create_api_key("acme", ["cards:read", "vault:reveal"])[1]
    with Client(live.base_url, writer) as sr, Client(live.base_url, revealer) as reveal:
        card = sr.create_card("4242 4242 4242 4242", 12, 2040, "Ada Lovelace", cvc="123")
        assert (card.brand, card.last4, card.masked_number) == ("visa", "4242", "42424242****4242")
        same = sr.create_card("4242424242424242", 1, 2041, "Ada Lovelace", idempotency_key="c-1")
        assert same.id != card.id
        assert same.fingerprint is None  # shown to a key holding vault:reveal only
        assert sr.get_card(card.id) == card
        fingerprint = reveal.get_card(card.id).fingerprint
        assert fingerprint is not None
        assert reveal.get_card(same.id).fingerprint == fingerprint
        tokens = [c.id for c in reveal.iter_cards(fingerprint=fingerprint, limit=1)]
        assert tokens == [same.id, card.id]
        with pytest.raises(PermissionDeniedError):
            sr.list_cards(fingerprint=fingerprint)
        number = reveal.get_card_number(card.id)
        assert (number.number, number.holder_name) == ("4242424242424242", "Ada Lovelace")
        with pytest.raises(PermissionDeniedError):
            sr.get_card_number(card.id)
        with pytest.raises(InvalidRequestError) as refused:
            sr.create_card("4242424242424241", 12, 2040, "Ada Lovelace")
        assert refused.value.code == "invalid_card_number"
        assert "4242424242424241" not in str(refused.value)
        assert sr.delete_card(card.id).deleted is True
        with pytest.raises(NotFoundError):
            reveal.get_card_number(card.id)

    async def run() -> list[str]:
        async with AsyncClient(live.base_url, writer) as client:
            made = await client.create_card("5555555555554444", 12, 2040, "Bob")
            assert (await client.get_card(made.id)).brand == "mastercard"
            assert made.fingerprint is None
            async with AsyncClient(live.base_url, revealer) as reader:
                fingerprint = (await reader.get_card(made.id)).fingerprint
                assert fingerprint is not None
                found = [c.id async for c in reader.iter_cards(fingerprint=fingerprint)]
            await client.delete_card(made.id)
            return found

    assert len(asyncio.run(run())) == 1


def test_the_operator_manages_openbanking_clients(live: Live) -> None:
    """Both clients register, page through, rotate the keys of, disable and enable a TPP with
    an operator's key; a tenant's admin is refused."""
    operator = live.app.state.tenancy.create_api_key(None, ["tenants:admin"])[1]
    keys = {"keys": [ec_key("a")]}
    with Client(live.base_url, operator) as ops:
        made = [
            ops.create_openbanking_client(f"TPP {i}", ["https://tpp.example.com/cb"], keys)
            for i in range(3)
        ]
        assert made[0].scopes == ["accounts", "fundsconfirmations", "payments"]
        assert [c.id for c in ops.iter_openbanking_clients(limit=2)] == sorted(c.id for c in made)
        rotated = ops.update_openbanking_client_jwks(made[0].id, {"keys": [okp_key("b")]})
        assert [k["kid"] for k in rotated.jwks.keys] == ["b"]
        assert ops.disable_openbanking_client(made[0].id).status == "disabled"
        assert ops.enable_openbanking_client(made[0].id).status == "active"
        with pytest.raises(InvalidRequestError) as refused:
            ops.create_openbanking_client("X", ["http://tpp.example.com/cb"], keys)
        assert refused.value.code == "invalid_redirect_uri"
    with Client(live.base_url, live.admin) as tenant, pytest.raises(PermissionDeniedError):
        tenant.list_openbanking_clients()

    async def run() -> str:
        async with AsyncClient(live.base_url, operator) as ops:
            made = await ops.create_openbanking_client(
                "Async TPP", ["https://a.example/cb"], keys, scopes=["accounts"], software_id="s1"
            )
            assert (await ops.get_openbanking_client(made.id)) == made
            return made.software_id or ""

    assert asyncio.run(run()) == "s1"


def test_a_customer_lists_and_revokes_their_consents_with_the_client(live: Live) -> None:
    """Both clients, with a customer user's session token: the consent dashboard's listing
    (paged) and revocation; a consent already revoked is a ConflictError, another customer's
    a NotFoundError; staff name the customer."""
    state = live.app.state
    tenant = state.tenancy.ensure_tenant("acme")
    book = state.ledger.create_ledger("ob books", tenant_id=tenant.id).id
    tpp = state.openbanking_clients.register(
        name="Client TPP", redirect_uris=["https://tpp.example.com/cb"],
        jwks={"keys": [ec_key("a")]}, actor="test",
    )  # fmt: skip
    made: dict[str, list[str]] = {}
    for person in ("ada", "bob"):
        customer = state.customers.create(tenant.id, "person", {"name": person}, actor="test")
        spec = AccountSpec(book, "GBP", Direction.CREDIT, customer_id=customer.id)
        account = state.ledger.create_accounts([spec])[0].id
        made[person] = [customer.id]
        for _ in range(3 if person == "ada" else 1):
            consent, _ = state.ob_resources.consents.create(
                tenant.id, tpp.id, ConsentKind.ACCOUNT_ACCESS,
                {"Permissions": ["ReadAccountsBasic"]},
                permissions=[Permission.READ_ACCOUNTS_BASIC],
            )  # fmt: skip
            state.ob_resources.consents.authorise(consent.id, customer.id, [account])
            made[person].append(consent.id)
    user = state.users.create_user(
        tenant.id, "ada@acme.example", "customer", None, actor="test", customer_id=made["ada"][0]
    )
    session = state.users.open_session(user.id, SignInMethod.PASSKEY).token
    ada_consents = made["ada"][1:]
    with Client(live.base_url, session) as ada:
        assert [c.id for c in ada.iter_openbanking_consents(limit=2)] == ada_consents
        page = ada.list_openbanking_consents(limit=1)
        assert (page.data[0].tpp.name, page.has_more) == ("Client TPP", True)
        revoked = ada.revoke_openbanking_consent(ada_consents[0])
        assert (revoked.status, revoked.in_force) == ("CANC", False)
        with pytest.raises(ConflictError) as again:
            ada.revoke_openbanking_consent(ada_consents[0])
        assert again.value.code == "consent_state"
        with pytest.raises(NotFoundError):
            ada.revoke_openbanking_consent(made["bob"][1])
    with Client(live.base_url, live.admin) as staff:
        listed = staff.list_openbanking_consents(customer_id=made["ada"][0])
        assert [c.status for c in listed.data] == ["CANC", "AUTH", "AUTH"]

    async def run() -> str:
        async with AsyncClient(live.base_url, session) as ada:
            done = await ada.revoke_openbanking_consent(ada_consents[1])
            return done.status

    assert asyncio.run(run()) == "CANC"
