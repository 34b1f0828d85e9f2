"""Helpers for the HTTP end-to-end tests: an app with its lifespan running on a private event
loop, driven through httpx's ASGI transport from plain (sync) tests, and a seeded tenant.

Every response an `Api` receives is checked on the way: a `Request-Id` header on every answer,
and on every error an RFC 9457 body whose `code` is in the app's error catalogue (ERROR_CODES
for the app `serve` builds, runtime.error_catalogue) with the status it is declared with. The
codes seen are collected in EMITTED_CODES for the error-catalogue test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount

from strongroom.core.errors import ErrorCatalogue
from strongroom.core.limits import ERROR_DETAIL_CHARS_MAX, ERROR_PARAM_CHARS_MAX
from strongroom.http.errors import PROBLEM_JSON
from strongroom.http.middleware import SECURITY_HEADERS
from strongroom.http.routing import ExactRoutes, PrefixRoutes
from strongroom.openbanking.authz import api as ob_authz_api
from strongroom.openbanking.consentpage import model as consent_page
from strongroom.openbanking.ports import RESOURCE_BASE
from strongroom.runtime import create_app, error_catalogue
from strongroom.settings import Settings
from tests.support import schema

T = TypeVar("T")

BASE_URL = "http://test"
# The catalogue of the app `serve` builds (no gate installed).
ERROR_CODES: ErrorCatalogue = error_catalogue()
# Every code a response of any test carried; read by the error-catalogue test.
EMITTED_CODES: set[str] = set()
# Members of a problem body: RFC 9457's five, and the extensions every Strongroom problem has.
PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "request_id"})
PROBLEM_MEMBERS_OPTIONAL = frozenset({"param"})
# The authorization server's form routes answer their errors as OAuth 2.0 does, not as problems
# (openbanking/authz/api.py); the body limit and the NUL check still answer problems there.
OAUTH_PATHS = frozenset(ob_authz_api.FORM_PATHS)
# Every route of the authorization server's (its metadata's rate limit too) answers OAuth errors.
OAUTH_ERROR_PATHS = frozenset(ob_authz_api.PATHS)
OAUTH_ERROR_MEMBERS = frozenset({"error", "error_description"})
# The consent page (openbanking/consentpage/) answers its refusals as HTML pages naming their
# code (`data-code`), never as problems: a person reads them.
PAGE_PATHS = frozenset(consent_page.PAGE_PATHS)
_PAGE_CODE = re.compile(r'id="error" data-code="([a-z_]+)"')


def build_app(url: str, **settings: Any) -> FastAPI:
    """A migrated database and an app on it, as `strongroom serve` would build it (the schema:
    a copy of one migrated once per process, tests/support/schema.py)."""
    schema.upgrade(url)
    return create_app(Settings(database_url=url, **settings))


def check_response(response: httpx.Response, catalogue: ErrorCatalogue = ERROR_CODES) -> None:
    """What holds for every answer of the API, whatever the request."""
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    if response.status_code < 500:
        # A 5xx has none at present: see test_a_500_carries_the_request_id_header (a BUG).
        assert response.headers.get_list("request-id"), f"no Request-Id on {where}"
    # Nothing is cached, no media type is sniffed (http.middleware.SECURITY_HEADERS).
    for name, value in SECURITY_HEADERS:
        sent = response.headers.get_list(name.decode())
        assert sent == [value.decode()], f"{where}: {name.decode()} {sent}"
    if response.status_code >= 400:
        media = response.headers.get("content-type", "").split(";")[0]
        if response.request.url.path in OAUTH_ERROR_PATHS and media == "application/json":
            check_oauth_error(response, catalogue)
        elif response.request.url.path in PAGE_PATHS and media == "text/html":
            check_error_page(response, catalogue)
        else:
            check_problem(response, catalogue)


def check_oauth_error(
    response: httpx.Response, catalogue: ErrorCatalogue = ERROR_CODES
) -> dict[str, Any]:
    """An OAuth 2.0 error body (RFC 6749 section 5.2) whose `error` is catalogued with this
    status; returns the body."""
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    body = response.json()
    assert isinstance(body, dict), where
    assert set(body) == OAUTH_ERROR_MEMBERS, f"{where}: members {set(body)}"
    code = body["error"]
    EMITTED_CODES.add(code)
    assert code in catalogue, f"{where}: error {code!r} is not in the error catalogue"
    assert catalogue[code].status == response.status_code, f"{where}: {code} is declared as another"
    description = body["error_description"]
    assert isinstance(description, str), where
    assert len(description) <= ERROR_DETAIL_CHARS_MAX, where
    # RFC 6749: printable ASCII but `"` and `\`.
    assert all(" " <= c <= "~" and c not in '"\\' for c in description), where
    return body


def check_error_page(response: httpx.Response, catalogue: ErrorCatalogue = ERROR_CODES) -> str:
    """A consent page refusal: an HTML page under the page's policy naming a code that is
    catalogued with this status; returns the code."""
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    assert "default-src 'none'" in response.headers["content-security-policy"], where
    assert response.headers["x-frame-options"] == "DENY", where
    assert "location" not in response.headers, f"{where}: a refusal is never a redirect"
    found = _PAGE_CODE.search(response.text)
    assert found is not None, f"{where}: no error code on the page"
    code = found.group(1)
    EMITTED_CODES.add(code)
    assert code in catalogue, f"{where}: code {code!r} is not in the error catalogue"
    assert catalogue[code].status == response.status_code, f"{where}: {code} is declared as another"
    return code


def check_declared(app: FastAPI, method: str, path: str, response: httpx.Response) -> None:
    """A problem's code is one the OpenAPI document lists for the operation that answered."""
    if response.status_code < 400 or response.status_code == 405:
        return
    operation = operation_of(app.openapi(), method, path.split("?")[0])
    if operation is None:  # no documented operation has this path: a 404 of the router's
        return
    code = response.json()["code"]
    assert code in operation["x-error-codes"], f"{method} {path}: {code} is not documented"


def operation_of(document: Mapping[str, Any], method: str, path: str) -> Any:
    """The operation of `document` that serves `method` on `path`, or None."""
    for template, item in document["paths"].items():
        pattern = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in item:
            return item[method.lower()]
    return None


def check_problem(
    response: httpx.Response, catalogue: ErrorCatalogue = ERROR_CODES
) -> dict[str, Any]:
    """An RFC 9457 problem whose code is catalogued with this status; returns the body."""
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    media = response.headers.get("content-type", "").split(";")[0]
    assert media == PROBLEM_JSON, f"{where}: content-type {media!r}"
    body = response.json()
    assert isinstance(body, dict), where
    members = set(body)
    assert members >= PROBLEM_MEMBERS, f"{where}: missing {PROBLEM_MEMBERS - members}"
    assert members <= PROBLEM_MEMBERS | PROBLEM_MEMBERS_OPTIONAL, f"{where}: extra {members}"
    code = body["code"]
    EMITTED_CODES.add(code)
    assert code in catalogue, f"{where}: code {code!r} is not in the error catalogue"
    assert body["status"] == response.status_code, f"{where}: body status {body['status']}"
    assert catalogue[code].status == response.status_code, f"{where}: {code} is declared as another"
    assert body["type"] == f"urn:strongroom:error:{code}", where
    assert body["title"] == catalogue[code].title, where
    assert isinstance(body["detail"], str), where
    assert body.get("param") is None or isinstance(body["param"], str), where
    # Input is echoed in a short prefix at most (core.limits.ERROR_*_CHARS_MAX).
    assert len(body["detail"]) <= ERROR_DETAIL_CHARS_MAX, where
    assert len(body.get("param") or "") <= ERROR_PARAM_CHARS_MAX, where
    headers = set(response.headers.get_list("request-id"))
    # A replay is the stored answer of the first request, with that request's id.
    if response.headers.get("idempotent-replayed") != "true" and (
        headers or response.status_code < 500
    ):
        assert isinstance(body["request_id"], str), where
        assert headers == {body["request_id"]}, where
    return body


def problem_code(response: httpx.Response) -> str:
    code = check_problem(response)["code"]
    assert isinstance(code, str)
    return code


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


class Api:
    """A FastAPI app with its lifespan started, and an httpx client on it. The event loop is
    private and runs only while a call is being made, so tests stay synchronous."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._lifespan = app.router.lifespan_context(app)
        self.run(self._lifespan.__aenter__())
        # 5xx answers come back as responses (to be reported), not as exceptions in the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)

    def close(self) -> None:
        try:
            self.run(self.client.aclose())
            self.run(self._lifespan.__aexit__(None, None, None))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def gather(self, calls: Sequence[Awaitable[T]]) -> list[T]:
        async def all_of() -> list[T]:
            return list(await asyncio.gather(*calls))

        return self.run(all_of())

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json: Any = None,
        content: bytes | None = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = {**(auth(key) if key else {}), **(headers or {})}
        response = await self.client.request(
            method, path, json=json, content=content, params=params, headers=all_headers
        )
        check_response(response, self.app.state.errors)
        check_declared(self.app, method, path, response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.run(self.arequest(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> dict[str, Any]:
        """The JSON body of a call that must succeed with `status`."""
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        body = response.json()
        assert isinstance(body, dict)
        return body


@contextlib.contextmanager
def running(url: str, **settings: Any) -> Iterator[Api]:
    api = Api(build_app(url, **settings))
    try:
        yield api
    finally:
        api.close()


@dataclass(frozen=True)
class Tenant:
    """One tenant's keys and objects: a ledger with two USD accounts, `bank` (debit normal,
    may go negative) and `alice` (credit normal, may not be overdrawn); `alice` holds 1,000
    from a posted deposit, and 100 more is held by an open pending transfer."""

    name: str
    admin: str  # secrets
    write: str
    read: str
    ledger: str
    bank: str
    alice: str
    posted: str  # the deposit
    pending: str
    marker: str  # a string only this tenant's objects carry, to spot leaks


def seed_tenant(api: Api, name: str) -> Tenant:
    tenancy = api.app.state.tenancy
    admin = tenancy.create_api_key(name, ["admin"])[1]
    write = tenancy.create_api_key(name, ["ledger:write"])[1]
    read = tenancy.create_api_key(name, ["ledger:read"])[1]
    marker = f"marker-of-{name}"
    ledger = api.ok(
        "POST",
        "/v1/ledgers",
        201,
        key=write,
        json={"name": f"{name} books", "metadata": {"owner": marker}},
    )["id"]
    account = {"ledger_id": ledger, "asset": "USD", "metadata": {"owner": marker}}
    bank = api.ok(
        "POST", "/v1/accounts", 201, key=write, json={**account, "normal_balance": "debit"}
    )["id"]
    alice = api.ok(
        "POST",
        "/v1/accounts",
        201,
        key=write,
        json={
            **account,
            "normal_balance": "credit",
            "name": f"{name} alice",
            "flags": ["debits_must_not_exceed_credits"],
        },
    )["id"]
    move = {"ledger_id": ledger, "metadata": {"owner": marker}}
    posted = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=write,
        json={**move, "debit_account_id": bank, "credit_account_id": alice, "amount": 1000},
    )["id"]
    pending = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=write,
        json={
            **move,
            "debit_account_id": bank,
            "credit_account_id": alice,
            "amount": 100,
            "pending": True,
        },
    )["id"]
    return Tenant(name, admin, write, read, ledger, bank, alice, posted, pending, marker)


def add_failing_route(api: Api) -> None:
    """A route that raises, as a bug would: POST /v1/test-only/boom."""

    async def boom() -> None:
        raise RuntimeError("internal detail: sk_live_do_not_leak")

    api.app.add_api_route("/v1/test-only/boom", boom, methods=["POST"])


def balances(api: Api, tenant: Tenant, account_id: str) -> dict[str, int]:
    body = api.ok("GET", f"/v1/accounts/{account_id}", key=tenant.read)
    result: dict[str, int] = body["balances"]
    return result


def transfer_ids(api: Api, key: str, **params: str) -> list[str]:
    """Every transfer id matching the filters, walking all pages."""
    found: list[str] = []
    query: dict[str, str | int] = {**params, "limit": 100}
    while True:
        page = api.ok("GET", "/v1/transfers", key=key, params=query)
        found += [t["id"] for t in page["data"]]
        if not page["has_more"]:
            return found
        query["starting_after"] = found[-1]


# -- routes --------------------------------------------------------------------------------


# Routes of the separate APIs the app also serves: UK Open Banking's resources of each tenant
# (docs/openbanking.md). Outside /v1, they are not in the /v1 OpenAPI document (the OB documents
# are their contract) and the API-key middleware (/v1 only) never authenticates them: a
# DPoP-bound token of the authorization server does. tests/e2e/test_openbanking_*.py walk them.
SEPARATE_API_PREFIXES: tuple[str, ...] = (RESOURCE_BASE.split("{", 1)[0],)


def separate_api(path: str) -> bool:
    return path.startswith(SEPARATE_API_PREFIXES)


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app's own API (/v1 and the server's
    pages), HEAD left out; the separate APIs' routes are separate_api_routes."""
    return [r for r in all_routes(app) if not separate_api(r[1])]


def separate_api_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [r for r in all_routes(app) if separate_api(r[1])]


def all_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, HEAD left out. FastAPI keeps an
    included router as one route object; its routes are walked with the include's prefix."""
    found: list[tuple[str, str]] = []

    def walk(routes: list[BaseRoute], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                context = route.include_context  # type: ignore[attr-defined]
                walk(included.routes, prefix + context.prefix)
                continue
            if isinstance(route, Mount):  # static files (the docs' scripts): no API route
                continue
            if isinstance(route, PrefixRoutes):  # a separate API's routes, with full paths
                walk(route.routes, prefix)
                continue
            if isinstance(route, ExactRoutes):  # an index of routes that are listed elsewhere
                continue
            path = getattr(route, "path", None)
            methods = getattr(route, "methods", None)
            assert isinstance(path, str), f"a route of unknown shape: {route!r}"
            assert methods, f"a route of unknown shape: {route!r}"
            found.extend((m, prefix + path) for m in sorted(methods) if m != "HEAD")

    walk(list(app.routes), "")
    return sorted(found)


def openapi_operations(document: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }


# -- a real server, for tests that need real sockets and real threads -----------------------


class Served:
    """The app under uvicorn on 127.0.0.1, in a thread, with its lifespan."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            app, http="h11", ws="none", lifespan="on", log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start in 10 s"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
        assert not self.thread.is_alive(), "the server did not stop in 10 s"


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()
