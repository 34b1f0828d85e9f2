"""Input bounds and response headers: every string of a request has a documented maximum length
(stated in the OpenAPI document, refused past it with the documented code), errors echo only a
short prefix of the input, the documented codes come back for an oversized chunked body, a batch
one over the limit and a NUL, and every answer carries Cache-Control: no-store and
X-Content-Type-Options: nosniff (checked on every answer by http_support.check_response).

The fast path of the hot routes (http.routing) answers the same as the general one: each body
is sent as `application/json` and as a media type only the general path handles."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.core.limits import (
    BATCH_TRANSFERS_MAX,
    ERROR_ECHO_CHARS_MAX,
    ID_LENGTH_MAX,
    METADATA_BYTES_MAX,
    REQUEST_BODY_BYTES_MAX,
    REQUEST_HEAD_BYTES_MAX,
)
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.http.middleware import NulScanner
from strongroom.tenancy.service import TenancyService
from tests.e2e.http_support import Api, Tenant, auth, check_problem, running, seed_tenant
from tests.support.serve import serve

GENERAL_ONLY = "application/vnd.strongroom+json"
MEDIA_TYPES = ("application/json", GENERAL_ONLY)
LONG = "x" * 100_000  # what no error may echo more than a prefix of
ECHOED_MAX = "x" * (ERROR_ECHO_CHARS_MAX + 1)
SOCKET_TIMEOUT_S = 30.0


@pytest.fixture
def lite(sqlite_url: str) -> Iterator[Api]:
    with running(sqlite_url) as app:
        yield app


@pytest.fixture
def acme(lite: Api) -> Tenant:
    return seed_tenant(lite, "acme")


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body = check_problem(response)
    assert (response.status_code, body["code"]) == (status, code), response.text[:300]
    assert ECHOED_MAX not in response.text, "an error echoed more than a prefix of its input"
    return body


def _move(t: Tenant, **fields: Any) -> dict[str, Any]:
    return {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": 1,
        **fields,
    }


# -- the bounds are documented -------------------------------------------------------------


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        found: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        schema = found
    return schema


def _unbounded(document: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """The places in a request schema where a string has no maxLength or an array no
    maxItems (an enum, a const or a pattern of fixed words is bounded)."""
    schema = _resolve(document, schema)
    found: list[str] = []
    for option in schema.get("anyOf", []) + schema.get("allOf", []):
        found += _unbounded(document, option, where)
    kind = schema.get("type")
    bounded = {"maxLength", "enum", "const"} & set(schema)
    fixed_words = schema.get("pattern", "").startswith("^(")
    if kind == "string" and not bounded and not fixed_words:
        found.append(where)
    if kind == "array":
        if "maxItems" not in schema:
            found.append(where)
        found += _unbounded(document, schema.get("items", {}), f"{where}[]")
    for name, member in schema.get("properties", {}).items():
        found += _unbounded(document, member, f"{where}.{name}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        if kind == "object" and "maxProperties" not in schema:
            found.append(where)
        found += _unbounded(document, extra, f"{where}{{}}")
    return found


def test_every_string_of_a_request_has_a_documented_maximum(lite: Api) -> None:
    document = lite.ok("GET", "/openapi.json")
    unbounded: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                where = f"{name} {parameter['in']} {parameter['name']}"
                unbounded += _unbounded(document, parameter["schema"], where)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                unbounded += _unbounded(document, media["schema"], f"{name} body")
    assert not unbounded


# -- long input is refused with the documented code, and not echoed -------------------------


def test_a_long_id_in_a_path_or_query_is_invalid_id_and_not_echoed(lite: Api, acme: Tenant) -> None:
    just_over = "x" * (ID_LENGTH_MAX + 1)
    for value in (just_over, LONG[:10_000]):
        for path in (
            f"/v1/ledgers/{value}",
            f"/v1/accounts/{value}",
            f"/v1/transfers/{value}",
            f"/v1/events/{value}",
            f"/v1/webhook_endpoints/{value}",
            f"/v1/transfers/{value}/receipt",
        ):
            key = acme.admin
            body = _problem(lite.get(path, key=key), 400, "invalid_id")
            assert body["detail"] == f"{body['param']}: String should have at most 64 characters"
        response = lite.get("/v1/accounts", key=acme.read, params={"ledger_id": value})
        assert _problem(response, 400, "invalid_id")["param"] == "ledger_id"
        response = lite.get("/v1/transfers", key=acme.read, params={"created_after": value})
        assert _problem(response, 400, "invalid_timestamp")["param"] == "created_after"
    # A metadata filter's value: no stored value is longer than METADATA_BYTES_MAX.
    params = {"ledger_id": acme.ledger, "metadata[owner]": "v" * (METADATA_BYTES_MAX + 1)}
    response = lite.get("/v1/transfers", key=acme.read, params=params)
    assert _problem(response, 400, "invalid_metadata_filter")["param"] == "metadata"
    # At the bound, an id is looked up, and echoed whole in its 404.
    at_bound = "x" * ID_LENGTH_MAX
    body = _problem(lite.get(f"/v1/ledgers/{at_bound}", key=acme.read), 404, "not_found")
    assert at_bound in body["detail"]


@pytest.mark.parametrize("media", MEDIA_TYPES)
def test_long_strings_in_a_body_are_refused_with_their_code(
    lite: Api, acme: Tenant, media: str
) -> None:
    def post(path: str, body: Any) -> httpx.Response:
        headers = {"content-type": media}
        return lite.post(path, key=acme.admin, content=json.dumps(body).encode(), headers=headers)

    cases: list[tuple[str, Any, str, str]] = [
        ("/v1/transfers", _move(acme, ledger_id=LONG), "invalid_id", "ledger_id"),
        ("/v1/transfers", _move(acme, debit_account_id=LONG), "invalid_id", "debit_account_id"),
        ("/v1/transfers", _move(acme, effective_at=LONG), "invalid_timestamp", "effective_at"),
        (
            "/v1/transfers",
            _move(
                acme, amount=None, entries=[{"account_id": LONG, "direction": "debit", "amount": 1}]
            ),
            "invalid_id",
            "entries[0].account_id",
        ),
        (
            "/v1/transfers/batch",
            {"transfers": [_move(acme), _move(acme, credit_account_id=LONG)]},
            "invalid_id",
            "transfers[1].credit_account_id",
        ),
        ("/v1/ledgers", {"name": LONG}, "invalid_name", "name"),
        ("/v1/ledgers", {"name": ""}, "invalid_name", "name"),
        (
            "/v1/accounts",
            {"ledger_id": LONG, "asset": "USD", "normal_balance": "debit"},
            "invalid_id",
            "ledger_id",
        ),
        (
            "/v1/accounts",
            {"ledger_id": acme.ledger, "asset": LONG, "normal_balance": "debit"},
            "invalid_asset_code",
            "asset",
        ),
        (
            "/v1/accounts",
            {"ledger_id": acme.ledger, "asset": "USD", "normal_balance": "debit", "flags": [LONG]},
            "invalid_flags",
            "flags[0]",
        ),
        ("/v1/assets", {"code": LONG, "scale": 2}, "invalid_asset_code", "code"),
        ("/v1/webhook_endpoints", {"url": LONG}, "invalid_url", "url"),
        (
            "/v1/webhook_endpoints",
            {"url": "https://example.com/hook", "enabled_events": [LONG]},
            "invalid_enabled_events",
            "enabled_events[0]",
        ),
        # An unknown member's name is the input: it is echoed clipped.
        ("/v1/transfers", {**_move(acme), LONG: 1}, "invalid_request", "x" * 64 + "..."),
    ]
    for path, body, code, param in cases:
        response = post(path, body)
        assert _problem(response, 400, code)["param"] == param, (path, param)


@pytest.mark.parametrize("media", MEDIA_TYPES)
def test_a_batch_one_over_the_limit_is_batch_too_large(lite: Api, acme: Tenant, media: str) -> None:
    one = json.dumps(_move(acme), separators=(",", ":")).encode()
    over = b'{"transfers":[' + b",".join([one] * (BATCH_TRANSFERS_MAX + 1)) + b"]}"
    headers = {"content-type": media}
    response = lite.post("/v1/transfers/batch", key=acme.write, content=over, headers=headers)
    assert _problem(response, 400, "batch_too_large")["param"] == "transfers"
    empty = b'{"transfers":[]}'
    response = lite.post("/v1/transfers/batch", key=acme.write, content=empty, headers=headers)
    _problem(response, 400, "batch_too_large")
    # At the limit, the batch is taken.
    full = b'{"transfers":[' + b",".join([one] * BATCH_TRANSFERS_MAX) + b"]}"
    response = lite.post("/v1/transfers/batch", key=acme.write, content=full, headers=headers)
    assert response.status_code == 200, response.text[:300]


# -- bodies: size and NUL, streamed or not ----------------------------------------------------


def _stream(api: Api, path: str, body: bytes, headers: dict[str, str], size: int) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    async def send() -> httpx.Response:
        return await api.client.post(path, content=chunks(), headers=headers)

    response = api.run(send())
    assert "content-length" not in response.request.headers  # chunked
    return response


@pytest.mark.parametrize("media", MEDIA_TYPES)
def test_a_chunked_body_over_the_limit_is_413_without_an_idempotency_key(
    lite: Api, acme: Tenant, media: str
) -> None:
    one = json.dumps(_move(acme)).encode()
    body = b'{"transfers": [' + b",".join([one] * (REQUEST_BODY_BYTES_MAX // len(one) + 1)) + b"]}"
    assert len(body) > REQUEST_BODY_BYTES_MAX
    headers = {"content-type": media, **auth(acme.write)}
    response = _stream(lite, "/v1/transfers/batch", body, headers, 65_536)
    _problem(response, 413, "request_too_large")
    response = _stream(
        lite, "/v1/ledgers", b'{"name": "' + b"n" * len(body) + b'"}', headers, 65_536
    )
    _problem(response, 413, "request_too_large")


@pytest.mark.parametrize("media", MEDIA_TYPES)
def test_a_nul_is_refused_and_text_that_spells_its_escape_is_taken(db_url: str, media: str) -> None:
    """`"\\u0000"` in JSON is a NUL (refused: no database column stores one); `"\\\\u0000"` is
    a backslash and `u0000`, text like any other, stored and read back as it was sent."""
    spelled = "a\\u0000b"  # 8 characters, no NUL
    assert "\x00" not in spelled
    assert len(spelled) == 8
    with running(db_url) as api:
        t = seed_tenant(api, "acme")
        headers = {"content-type": media, **auth(t.write)}
        # A name, and metadata of an account and a transfer (the fast path's route).
        ledger = json.dumps({"name": spelled, "metadata": {spelled: spelled}}).encode()
        assert b"\\\\u0000" in ledger
        created = api.ok("POST", "/v1/ledgers", 201, content=ledger, headers=headers)
        assert (created["name"], created["metadata"]) == (spelled, {spelled: spelled})
        assert api.ok("GET", f"/v1/ledgers/{created['id']}", key=t.read)["name"] == spelled
        transfer = json.dumps(_move(t, metadata={"ref": spelled})).encode()
        for size in (len(transfer), 7, 1):  # whole, and streamed in small chunks
            if size == len(transfer):
                response = api.post("/v1/transfers", content=transfer, headers=headers)
            else:
                response = _stream(api, "/v1/transfers", transfer, headers, size)
            assert response.status_code == 201, response.text
            stored = api.ok("GET", f"/v1/transfers/{response.json()['id']}", key=t.read)
            assert stored["metadata"] == {"ref": spelled}
        # A real NUL, escaped or raw, whole or split across chunks, is refused.
        for nul in ("a\\u0000b", "a\\\\\\u0000b", "a\x00b"):
            body = ('{"name": "' + nul + '"}').encode()
            for size in (len(body), 1, 12):
                response = _stream(api, "/v1/ledgers", body, headers, size)
                detail = _problem(response, 400, "invalid_request")["detail"]
                assert detail == "text may not contain the NUL character"


def test_the_nul_scanner_reads_escapes_from_the_left_across_any_split() -> None:
    cases = {
        b'"\\u0000"': True,
        b'"\\\\u0000"': False,
        b'"\\\\\\u0000"': True,
        b'"\\\\\\\\u0000"': False,
        b'"\\u00000"': True,
        b'"\\u0001\\u000"': False,
        b'"\\"u0000"': False,
        b'"x\x00"': True,
    }
    for body, nul in cases.items():
        for i in range(len(body) + 1):
            for j in range(i, len(body) + 1):
                scanner = NulScanner()
                found = [scanner.feed(part) for part in (body[:i], body[i:j], body[j:])]
                assert any(found) is nul, (body, i, j)


# -- headers -----------------------------------------------------------------------------------


def test_a_head_over_the_limit_is_431_in_the_app(lite: Api, acme: Tenant) -> None:
    """The app checks the head it is given too, whatever server runs it (http/server.py caps
    it while reading under `strongroom serve`: test_operations)."""
    big = {"x-padding": "p" * REQUEST_HEAD_BYTES_MAX}
    for path in ("/v1/ledgers", "/healthz", f"/v1/ledgers?starting_after={'q' * 20_000}"):
        response = lite.get(path, key=acme.read, headers=big if "?" not in path else {})
        _problem(response, 431, "request_headers_too_large")
    assert lite.get("/v1/ledgers", key=acme.read, headers={"x-padding": "p" * 8_000}).is_success


def test_every_kind_of_answer_has_the_security_headers(sqlite_url: str) -> None:
    """check_response asserts them on every answer; here every kind of answer is made once:
    success, fast path, replay, validation error, not found, unknown route, 401, 405, 413,
    415, 429, the public routes."""
    with running(sqlite_url, rate_limit_per_s=1, rate_limit_burst=30) as api:
        t = seed_tenant(api, "acme")
        replay = {"idempotency-key": "k-1"}
        answers = [
            api.get("/v1/ledgers", key=t.read),
            api.post("/v1/transfers", key=t.write, json=_move(t)),
            api.post("/v1/transfers", key=t.write, json=_move(t), headers=replay),
            api.post("/v1/transfers", key=t.write, json=_move(t), headers=replay),
            api.post("/v1/transfers", key=t.write, json=_move(t, amount=1.5)),
            api.get("/v1/ledgers/ldg_none", key=t.read),
            api.get("/v1/no-such-route", key=t.read),
            api.get("/v1/ledgers"),
            api.request("PATCH", "/v1/ledgers", key=t.read),
            api.post(
                "/v1/ledgers", key=t.write, content=b"x", headers={"content-type": "text/plain"}
            ),
            api.post("/v1/ledgers", key=t.write, json={"name": "n" * REQUEST_BODY_BYTES_MAX}),
            api.post("/v1/webhook_endpoints", key=t.admin, json={"url": "https://example.com/h"}),
            api.get("/healthz"),
            api.get("/readyz"),
            api.get("/metrics"),
            api.get("/openapi.json"),
        ]
        assert answers[3].headers["idempotent-replayed"] == "true"
        assert "secret" in answers[11].json()  # a webhook secret, in an answer never cached
        statuses = {r.status_code for r in answers}
        assert {200, 201, 400, 401, 404, 405, 413, 415} <= statuses
        while (limited := api.get("/v1/ledgers", key=t.read)).status_code != 429:
            pass
        assert limited.headers["cache-control"] == "no-store"


# -- under `strongroom serve` ----------------------------------------------------------------


def _raw(port: int, head: bytes, body: bytes = b"") -> bytes:
    """What the server answers on one connection to `head` and `body`, until it closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S) as sock:
        with contextlib.suppress(OSError):  # a server that refused early stops reading
            sock.sendall(head + body)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65_536):
                received += chunk
        return received


def test_serve_caps_the_head_and_sends_no_banner(sqlite_url: str, tmp_path: Path) -> None:
    engine = create_engine(sqlite_url)
    migrate.upgrade(engine)
    secret = TenancyService(engine).create_api_key("acme", ["admin"])[1]
    engine.dispose()
    with (
        serve(sqlite_url, tmp_path / "serve.log", STRONGROOM_DISPATCHER="false") as (_, base),
        httpx.Client(base_url=base) as client,
    ):
        port = int(base.rsplit(":", 1)[1])
        headers = auth(secret)
        for response in (
            client.get("/healthz"),
            client.get("/v1/ledgers", headers=headers),
            client.get("/v1/ledgers"),  # 401
            client.get("/v1/nothing", headers=headers),  # 404
            client.post("/v1/webhook_endpoints", headers=headers, json={"url": "https://e.com"}),
        ):
            assert "server" not in response.headers, response.headers
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["x-content-type-options"] == "nosniff"
            sent_at = email.utils.parsedate_to_datetime(response.headers["date"])
            assert sent_at.utcoffset() == dt.timedelta(0)

        # A head over the cap: a 431 problem, and the connection closed, before the app runs
        # (its answers have a request id); the server goes on.
        padding = b"x-padding: " + b"p" * REQUEST_HEAD_BYTES_MAX + b"\r\n"
        request = b"GET /v1/ledgers HTTP/1.1\r\nhost: t\r\n" + padding + b"\r\n"
        answer = _raw(port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b"\r\ncache-control: no-store" in head
        assert b"server:" not in head
        assert b"\r\nconnection: close" in head
        problem = json.loads(body)
        assert (problem["status"], problem["code"]) == (431, "request_headers_too_large")
        assert problem["request_id"] is None
        # 16 MB of one header: refused after the cap, not read whole (the connection may be
        # reset under the rest of it).
        huge = b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-big: " + b"b" * 16_000_000 + b"\r\n\r\n"
        answer = _raw(port, huge)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert b'request_id": null' in answer or answer == b""
        # A long URL is part of the head too.
        long_url = b"GET /v1/ledgers/" + b"l" * REQUEST_HEAD_BYTES_MAX + b" HTTP/1.1\r\n\r\n"
        answer = _raw(port, long_url)
        assert answer.startswith(b"HTTP/1.1 431 ")
        assert b'request_id": null' in answer

        # Under the cap, and a head that arrives with a large body in the same reads, on one
        # kept-alive connection: served.
        near = {**headers, "x-padding": "p" * (REQUEST_HEAD_BYTES_MAX - 1_024)}
        assert client.get("/v1/ledgers", headers=near).status_code == 200
        ledger = client.post("/v1/ledgers", headers=headers, json={"name": "l"}).json()["id"]
        accounts = [
            client.post(
                "/v1/accounts",
                headers=headers,
                json={"ledger_id": ledger, "asset": "USD", "normal_balance": side},
            ).json()["id"]
            for side in ("debit", "credit")
        ]
        move = {
            "ledger_id": ledger,
            "debit_account_id": accounts[0],
            "credit_account_id": accounts[1],
            "amount": 1,
        }
        batch = {"transfers": [move] * 4_000}
        for _ in range(2):
            response = client.post("/v1/transfers/batch", headers=near, json=batch)
            assert response.status_code == 200, response.text[:300]
        assert client.get("/healthz").status_code == 200
