"""/v1/cards end to end, on both backends: tokenize, read masked, reveal (only with
`vault:reveal`, audited), delete; and nowhere outside the reveal's own answer does a card
number, a security code or a holder's name appear: not in the logs (the records and the JSON
lines), not in an error body, not in an event, not in a stored Idempotency-Key answer, not in
any column of any table of the database."""

from __future__ import annotations

import contextlib
import io
import logging
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from strongroom.core import frames
from strongroom.core.limits import AUDIT_BUNDLE_BYTES_MAX
from tests.e2e.http_support import Api, problem_code, running
from tests.support import leaks

# Public test numbers, each with a security code and a holder name no other data carries.
CARDS = [
    ("4242424242424242", "4242 4242 4242 4242", "731", "Grace Hopperton"),
    ("5555555555554444", "5555-5555-5555-4444", "482", "Edsger Dijkstrand"),
    ("378282246310005", "3782 822463 10005", "9173", "Barbara Liskovic"),
    ("2223003122003222", "2223003122003222", "605", "Alan Turingham"),
]


@pytest.fixture
def logs() -> Iterator[tuple[list[logging.LogRecord], io.StringIO]]:
    """Every record of every logger, and the JSON lines `serve` would write from them."""
    with leaks.captured_logs() as captured:
        yield captured


def secrets_in(text: str) -> list[str]:
    """The card numbers, holder names and security codes (in context) found in `text`."""
    found = []
    compact = text.replace(" ", "").replace("-", "")
    for pan, _, cvc, holder in CARDS:
        if pan in compact:
            found.append(f"number {pan[-4:]}")
        if holder.lower() in text.lower() or holder.split()[1] in text:
            found.append(f"holder {holder}")
        if any(f"{k}{cvc}" in compact for k in ('cvc":"', "cvc':'", "cvc=", "cvc:")):
            found.append(f"cvc of {pan[-4:]}")
    return found


def _texts(value: Any) -> Iterator[str]:
    """A stored value as text: a blob also decompressed when it is zlib or zstd (the audit
    log's bundles)."""
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        yield value.decode("latin-1")
        if frames.is_frame(value):
            with contextlib.suppress(ValueError):
                yield frames.decompress(value, AUDIT_BUNDLE_BYTES_MAX).decode("latin-1")
        try:
            inflated = zlib.decompress(value)
        except zlib.error:
            return
        yield inflated.decode("latin-1")
    elif value is not None:
        yield str(value)


def database_dump(engine: sa.Engine) -> Iterator[tuple[str, str]]:
    tables = sa.inspect(engine).get_table_names()
    assert {"cards", "events", "idempotency_records", "subject_keys", "audit_bundles"} <= set(
        tables
    )
    with engine.connect() as conn:
        for table in tables:
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                for value in row:
                    for text in _texts(value):
                        yield table, text


def tokenize_everything(api: Api, write: str, reveal: str, admin: str) -> None:
    """Every route, with every card, with Idempotency-Keys, with refusals of each kind."""
    for n, (pan, sent, cvc, holder) in enumerate(CARDS):
        body = {"number": sent, "exp_month": 12, "exp_year": 2031, "holder_name": holder}
        made = api.ok(
            "POST",
            "/v1/cards",
            201,
            key=write,
            json={**body, "cvc": cvc},
            headers={"Idempotency-Key": f"tok-{n}"},
        )
        again = api.post(
            "/v1/cards",
            key=write,
            json={**body, "cvc": cvc},
            headers={"Idempotency-Key": f"tok-{n}"},
        )
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json() == made
        assert made["last4"] == pan[-4:]
        assert made["masked_number"].endswith(pan[-4:])
        card = made["id"]
        assert api.ok("GET", f"/v1/cards/{card}", key=write) == made
        # The fingerprint is a reveal key's only: null to the others, its filter refused.
        assert made["fingerprint"] is None
        fingerprint = api.ok("GET", f"/v1/cards/{card}", key=reveal)["fingerprint"]
        assert fingerprint is not None
        refused = api.get("/v1/cards", key=write, params={"fingerprint": fingerprint})
        assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
        listed = api.ok("GET", "/v1/cards", key=reveal, params={"fingerprint": fingerprint})
        assert [c["id"] for c in listed["data"]] == [card]
        assert listed["data"][0]["fingerprint"] == fingerprint
        number = api.ok("GET", f"/v1/cards/{card}/number", key=reveal)
        assert (number["number"], number["holder_name"]) == (pan, holder)
        # Refusals (400s, not remembered under their Idempotency-Keys: they did nothing, and
        # the key stays free for the fixed retry): none names what it refuses.
        wrong_luhn = pan[:-1] + str((int(pan[-1]) + 1) % 10)
        for m, (refused_body, code) in enumerate(
            (
                ({**body, "number": wrong_luhn, "cvc": cvc}, "invalid_card_number"),
                ({**body, "cvc": cvc[:-1] + "x"}, "invalid_cvc"),
                ({**body, "cvc": cvc + "00"}, "invalid_cvc"),  # over its length bound
                ({**body, "exp_year": 2020, "cvc": cvc}, "card_expired"),
                ({**body, "number": int(pan), "cvc": cvc}, "invalid_request"),  # not a string
                ({**body, "holder_name": holder + "\x07", "cvc": cvc}, "invalid_holder_name"),
                ({**body, "cvc": int(cvc)}, "invalid_request"),
                ({**body, "cvc": cvc, "extra": pan}, "invalid_request"),
            )
        ):
            response = api.post(
                "/v1/cards",
                key=write,
                json=refused_body,
                headers={"Idempotency-Key": f"bad-{n}-{m}"},
            )
            assert (response.status_code, problem_code(response)) == (400, code), response.text
            assert secrets_in(response.text) == [], response.text
            assert pan[-4:] not in response.json()["detail"]
        # Without the reveal scope, admin included: refused, and nothing in the answer.
        for key in (write, admin):
            response = api.get(f"/v1/cards/{card}/number", key=key)
            assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    deleted = api.ok(
        "POST",
        "/v1/cards",
        201,
        key=write,
        json={"number": CARDS[0][0], "exp_month": 1, "exp_year": 2030, "holder_name": CARDS[0][3]},
    )
    assert api.ok("DELETE", f"/v1/cards/{deleted['id']}", key=write)["deleted"] is True
    response = api.get(f"/v1/cards/{deleted['id']}/number", key=reveal)
    assert (response.status_code, problem_code(response)) == (404, "not_found")


def test_no_card_data_outside_the_reveal(
    db_url: str, logs: tuple[list[logging.LogRecord], io.StringIO]
) -> None:
    records, lines = logs
    with running(db_url, dispatcher=False) as api:
        tenancy = api.app.state.tenancy
        admin = tenancy.create_api_key("acme", ["admin"])[1]
        write = tenancy.create_api_key("acme", ["cards:write"])[1]
        reveal = tenancy.create_api_key("acme", ["cards:read", "vault:reveal"])[1]
        tokenize_everything(api, write, reveal, admin)
        engine = api.app.state.engine
        dump = list(database_dump(engine))
        with engine.connect() as conn:
            cards = conn.execute(sa.text("SELECT COUNT(*) FROM cards")).scalar()
            stored = conn.execute(sa.text("SELECT COUNT(*) FROM idempotency_records")).scalar()
            leaves = api.ok("GET", "/v1/audit/leaves", key=admin, params={"limit": 100})
    assert cards == len(CARDS)  # the deleted one is gone
    assert stored == len(CARDS)  # the tokenizations remembered; the 400 refusals are not
    types = [x["type"] for x in leaves["data"]]
    assert types.count("card.revealed") == len(CARDS)
    assert types.count("card.deleted") == 1
    leaked = {(table, hit) for table, text in dump for hit in secrets_in(text)}
    assert not leaked, f"card data stored in clear: {sorted(leaked)}"
    assert records, "the log capture saw nothing"
    for record in records:
        text = " ".join([record.getMessage(), *(repr(v) for v in vars(record).values())])
        assert secrets_in(text) == [], f"a log record carries card data: {record.getMessage()}"
    assert secrets_in(lines.getvalue()) == []
    assert secrets_in(leaves.__repr__()) == []


def test_scopes_and_tenants(sqlite_url: str) -> None:
    with running(sqlite_url, dispatcher=False) as api:
        tenancy = api.app.state.tenancy
        a_write = tenancy.create_api_key("acme", ["cards:write"])[1]
        a_read = tenancy.create_api_key("acme", ["cards:read"])[1]
        a_ledger = tenancy.create_api_key("acme", ["ledger:write"])[1]
        b_admin = tenancy.create_api_key("bravo", ["admin"])[1]
        b_reveal = tenancy.create_api_key("bravo", ["admin", "vault:reveal"])[1]
        a_reveal = tenancy.create_api_key("acme", ["cards:read", "vault:reveal"])[1]
        body = {"number": CARDS[0][0], "exp_month": 12, "exp_year": 2031, "holder_name": "A"}
        made = api.ok("POST", "/v1/cards", 201, key=a_write, json=body)
        fingerprint = api.ok("GET", f"/v1/cards/{made['id']}", key=a_reveal)["fingerprint"]
        card = made["id"]
        for key, method, path in (
            (a_read, "POST", "/v1/cards"),
            (a_read, "DELETE", f"/v1/cards/{card}"),
            (a_ledger, "GET", f"/v1/cards/{card}"),
            (a_ledger, "GET", "/v1/cards"),
        ):
            response = api.request(method, path, key=key, json=body if method == "POST" else None)
            assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        assert api.ok("GET", f"/v1/cards/{card}", key=a_read) == made
        # Another tenant's card is not found, by any route; its fingerprint lists nothing.
        for key, method, path in (
            (b_admin, "GET", f"/v1/cards/{card}"),
            (b_reveal, "GET", f"/v1/cards/{card}/number"),
            (b_admin, "DELETE", f"/v1/cards/{card}"),
        ):
            response = api.request(method, path, key=key)
            assert (response.status_code, problem_code(response)) == (404, "not_found")
        theirs = api.ok("GET", "/v1/cards", key=b_reveal, params={"fingerprint": fingerprint})
        assert theirs["data"] == []
        # Without vault:reveal, even admin may not filter by a fingerprint.
        response = api.get("/v1/cards", key=b_admin, params={"fingerprint": fingerprint})
        assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
        response = api.get("/v1/cards", key=a_reveal, params={"fingerprint": "not one"})
        assert (response.status_code, problem_code(response)) == (400, "invalid_request")


def test_a_resumed_tokenization_answers_its_token_once(db_url: str) -> None:
    """A tokenization whose server died before answering: the retry under the same
    Idempotency-Key mints the same token, finds it committed, and answers it; one card, one
    `card.created` leaf."""
    with running(db_url, dispatcher=False) as api:
        admin = api.app.state.tenancy.create_api_key("acme", ["admin"])[1]
        body = {"number": CARDS[0][0], "exp_month": 12, "exp_year": 2031, "holder_name": "A"}
        first = api.ok("POST", "/v1/cards", 201, key=admin, json=body,
                       headers={"Idempotency-Key": "card-1"})  # fmt: skip
        with api.app.state.engine.begin() as conn:  # as if its server died before answering
            conn.execute(
                sa.text(
                    "UPDATE idempotency_records SET status_code = NULL, body = NULL, "
                    "owner = NULL, lease_until = 0 WHERE key = 'card-1'"
                )
            )
        again = api.post("/v1/cards", key=admin, json=body, headers={"Idempotency-Key": "card-1"})
        assert again.status_code == 201
        assert "idempotent-replayed" not in again.headers
        assert again.json() == first
        listed = api.ok("GET", "/v1/cards", key=admin)["data"]
        assert [c["id"] for c in listed] == [first["id"]]
        leaves = api.ok("GET", "/v1/audit/leaves", key=admin)["data"]
        assert [x["type"] for x in leaves].count("card.created") == 1
