"""The client without a server: typed errors, configuration, retries and pagination, against
httpx's mock transport (what a real server does is in tests/e2e/test_client.py)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from strongroom.client import (
    ApiError,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    DataErasedError,
    GateUnavailableError,
    IdempotencyError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    InvalidRequestError,
    LedgerRefusedError,
    MissingApiKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    resources,
)
from strongroom.client._spec import Paged, retry_after_s
from strongroom.client.errors import error_class, error_from
from strongroom.ledger.model import TransferResult
from strongroom.runtime import error_catalogue

KEY = "sk_test_not_a_real_secret"
NOW = "2026-01-01T00:00:00.000000Z"

# -- typed errors --------------------------------------------------------------------------

BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: ConflictError,
    410: DataErasedError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    431: InvalidRequestError,
    422: LedgerRefusedError,
    429: RateLimitedError,
    500: ServerError,
    503: ServiceUnavailableError,
}


def test_every_code_of_the_server_has_its_class() -> None:
    """Each code the server can answer gets the class of its status (the idempotency codes
    and gate_unavailable a narrower one), never bare ApiError."""
    catalogue = error_catalogue()
    assert set(BY_STATUS) == {e.status for e in catalogue.values()}
    for code, declared in catalogue.items():
        cls = error_class(declared.status, code)
        assert issubclass(cls, BY_STATUS[declared.status]) or code == "idempotency_key_reused"
        assert cls is not ApiError
    assert error_class(409, "idempotency_key_in_use") is IdempotencyKeyInUseError
    assert issubclass(IdempotencyKeyInUseError, ConflictError)
    assert error_class(422, "idempotency_key_reused") is IdempotencyKeyReusedError
    assert not issubclass(IdempotencyKeyReusedError, LedgerRefusedError)
    assert error_class(400, "invalid_idempotency_key") is InvalidIdempotencyKeyError
    for cls in (IdempotencyKeyInUseError, IdempotencyKeyReusedError, InvalidIdempotencyKeyError):
        assert issubclass(cls, IdempotencyError)
    assert error_class(422, "gate_unavailable") is GateUnavailableError
    # Every refusal of the ledger is a LedgerRefusedError carrying the result.
    for result in TransferResult:
        if not result.ok:
            refused = error_from(422, {"code": result.value})
            assert isinstance(refused, LedgerRefusedError)
            assert refused.result == result


def test_unknown_codes_keep_their_status_class_and_code() -> None:
    problem = {"code": "a_new_code", "detail": "d", "param": "p", "request_id": "req_1"}
    found = error_from(404, problem)
    assert (type(found), found.code, found.param, found.request_id) == (
        NotFoundError,
        "a_new_code",
        "p",
        "req_1",
    )
    blocked = error_from(422, {"code": "sanctions_hit"})  # an installed gate's own code
    assert isinstance(blocked, LedgerRefusedError)
    assert blocked.result == "sanctions_hit"
    teapot = error_from(418, {"code": "teapot"})
    assert (type(teapot), teapot.code, teapot.status) == (ApiError, "teapot", 418)
    assert type(error_from(502, {})) is ServerError
    assert str(error_from(400, {"code": "invalid_limit", "detail": "x"})) == "400 invalid_limit: x"


# -- configuration -------------------------------------------------------------------------


def test_the_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRONGROOM_API_KEY", raising=False)
    monkeypatch.delenv("STRONGROOM_BASE_URL", raising=False)
    with pytest.raises(MissingApiKeyError, match="STRONGROOM_API_KEY"):
        Client()
    with pytest.raises(MissingApiKeyError):
        AsyncClient()
    monkeypatch.setenv("STRONGROOM_API_KEY", KEY)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})

    with Client(transport=httpx.MockTransport(handler)) as sr:
        assert sr.base_url == "http://127.0.0.1:8000"
        sr.list_ledgers()
        assert KEY not in repr(sr)
    assert str(seen[0].url) == "http://127.0.0.1:8000/v1/ledgers"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert seen[0].headers["user-agent"].startswith("strongroom-python/")
    monkeypatch.setenv("STRONGROOM_BASE_URL", "https://ledger.example/")
    with Client(transport=httpx.MockTransport(handler)) as sr:
        assert sr.base_url == "https://ledger.example"
    # Arguments win over the environment.
    with Client("http://other:1", "sk_other", transport=httpx.MockTransport(handler)) as sr:
        sr.list_ledgers()
    assert seen[-1].headers["authorization"] == "Bearer sk_other"
    assert str(seen[-1].url).startswith("http://other:1/")


# -- a scripted server ---------------------------------------------------------------------


class Script:
    """Answers in order; records every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("idempotency-key") for r in self.requests]

    def params(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests]


def problem(status: int, code: str, **headers: str) -> httpx.Response:
    body = {"code": code, "detail": code, "status": status, "request_id": "req_x"}
    return httpx.Response(status, json=body, headers=headers)


def ledger_json(id: str = "lg_1") -> dict[str, Any]:
    return {"id": id, "object": "ledger", "name": "main", "metadata": {}, "created_at": NOW}


class Recording(Client):
    """A client that records its waits instead of sleeping."""

    def __init__(self, script: Script, **options: Any) -> None:
        super().__init__("http://test", KEY, transport=httpx.MockTransport(script), **options)
        self.slept: list[float] = []

    def _sleep(self, delay_s: float) -> None:
        self.slept.append(delay_s)


class AsyncRecording(AsyncClient):
    def __init__(self, script: Script, **options: Any) -> None:
        super().__init__("http://test", KEY, transport=httpx.MockTransport(script), **options)
        self.slept: list[float] = []

    async def _sleep(self, delay_s: float) -> None:
        self.slept.append(delay_s)


# -- retries -------------------------------------------------------------------------------


def test_a_post_keeps_its_idempotency_key_across_retries() -> None:
    script = Script(
        httpx.ConnectError("reset"),
        problem(500, "internal_error"),
        problem(409, "idempotency_key_in_use"),
        httpx.Response(201, json=ledger_json()),
    )
    with Recording(script) as sr:
        assert sr.create_ledger("main").id == "lg_1"
        assert sr.slept == [0.05, 0.1, 0.2]
    assert len(set(script.keys)) == 1
    assert script.keys[0] is not None
    # Two calls without a key of their own: two keys.
    script = Script(
        httpx.Response(201, json=ledger_json()), httpx.Response(201, json=ledger_json())
    )
    with Recording(script) as sr:
        sr.create_ledger("main")
        sr.create_ledger("main", idempotency_key="mine")
    assert script.keys[1] == "mine"
    assert script.keys[0] not in (None, "mine")


def test_429_and_503_wait_their_retry_after_within_a_bound() -> None:
    script = Script(
        problem(429, "rate_limited", **{"Retry-After": "2"}),
        problem(503, "overloaded", **{"Retry-After": "1"}),
        httpx.Response(200, json=ledger_json()),
    )
    with Recording(script) as sr:
        sr.get_ledger("lg_1")
        assert sr.slept == [2.0, 1.0]
    # Past the bound: raised at once, saying when to come back.
    script = Script(problem(429, "rate_limited", **{"Retry-After": "120"}))
    with Recording(script, retry_after_max_s=30) as sr, pytest.raises(RateLimitedError) as info:
        sr.get_ledger("lg_1")
    assert (info.value.retry_after_s, sr.slept, len(script.requests)) == (120.0, [], 1)
    # Retries run out: the last error is raised.
    script = Script(*[problem(503, "database_busy", **{"Retry-After": "1"})] * 3)
    with Recording(script, max_retries=2) as sr, pytest.raises(ServiceUnavailableError) as busy:
        sr.create_ledger("main")
    assert (busy.value.code, busy.value.retry_after_s, len(script.requests)) == (
        "database_busy",
        1.0,
        3,
    )
    assert len(set(script.keys)) == 1


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_s(format_datetime(now + timedelta(seconds=7), usegmt=True), now) == 7.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=7), usegmt=True), now) == 0.0
    assert retry_after_s("soon", now) is None
    assert retry_after_s(None, now) is None


def test_client_errors_are_not_retried() -> None:
    for status, code, cls in (
        (400, "invalid_limit", InvalidRequestError),
        (404, "not_found", NotFoundError),
        (422, "insufficient_funds", LedgerRefusedError),
        (422, "idempotency_key_reused", IdempotencyKeyReusedError),
    ):
        script = Script(problem(status, code))
        with Recording(script) as sr, pytest.raises(cls) as info:
            sr.create_transfer("lg_1", debit_account_id="a", credit_account_id="b", amount=1)
        assert (info.value.status, info.value.code, sr.slept) == (status, code, [])
    # A body that is not a problem (a proxy's page) is still an ApiError, briefly.
    script = Script(httpx.Response(404, text="<html>" + "x" * 1000))
    with Recording(script) as sr, pytest.raises(NotFoundError) as info:
        sr.get_ledger("lg_1")
    assert info.value.code == "http_error"
    assert len(info.value.detail) == 200


def test_path_parameters_are_escaped() -> None:
    script = Script(httpx.Response(200, json=ledger_json()))
    with Recording(script) as sr:
        sr.get_ledger("../transfers?x=1")
    assert script.requests[0].url.raw_path == b"/v1/ledgers/..%2Ftransfers%3Fx%3D1"


def test_fields_the_client_does_not_know_are_ignored() -> None:
    account = {
        "id": "acc_1",
        "object": "account",
        "ledger_id": "lg_1",
        "customer_id": None,
        "name": None,
        "asset": "USD",
        "normal_balance": "credit",
        "flags": [],
        "closed": False,
        "metadata": {"k": "v"},
        "balances": dict.fromkeys(
            (
                "debits_posted",
                "credits_posted",
                "debits_pending",
                "credits_pending",
                "posted",
                "pending",
                "available",
                "a_new_total",
            ),
            1,
        ),
        "version": 3,
        "created_at": NOW,
        "a_new_field": {"nested": True},
    }
    page = {"object": "list", "data": [account], "has_more": False, "a_new_list_field": 1}
    script = Script(httpx.Response(200, json=page))
    with Recording(script) as sr:
        (found,) = sr.list_accounts("lg_1").data
    assert (found.id, found.balances.available, found.metadata) == ("acc_1", 1, {"k": "v"})


# -- pagination ----------------------------------------------------------------------------


def transfer_json(id: str) -> dict[str, Any]:
    return {
        "id": id,
        "object": "transfer",
        "ledger_id": "lg_1",
        "action": "transfer",
        "status": "posted",
        "amount": 1,
        "pending": False,
        "metadata": {},
        "created_at": NOW,
        "effective_at": NOW,
        "debit_account_id": "a",
        "credit_account_id": "b",
    }


def page(data: list[dict[str, Any]], has_more: bool, **more: Any) -> httpx.Response:
    return httpx.Response(200, json={"object": "list", "data": data, "has_more": has_more, **more})


def test_transfers_follow_next_cursor_through_short_and_empty_pages() -> None:
    script = Script(
        page([transfer_json("tr_1"), transfer_json("tr_2")], True, next_cursor="cur_a"),
        page([], True, next_cursor="cur_b"),  # the scan budget ran out before a match
        page([transfer_json("tr_3")], True, next_cursor="cur_c"),
        page([], False),
    )
    with Recording(script) as sr:
        found = [t.id for t in sr.iter_transfers(ledger_id="lg_1", metadata={"k": "v"}, limit=2)]
    assert found == ["tr_1", "tr_2", "tr_3"]
    assert script.params() == [
        {"ledger_id": "lg_1", "metadata[k]": "v", "limit": "2"},
        {"ledger_id": "lg_1", "metadata[k]": "v", "limit": "2", "cursor": "cur_a"},
        {"ledger_id": "lg_1", "metadata[k]": "v", "limit": "2", "cursor": "cur_b"},
        {"ledger_id": "lg_1", "metadata[k]": "v", "limit": "2", "cursor": "cur_c"},
    ]


def test_id_listings_go_on_after_the_last_id_and_stop_at_the_end() -> None:
    script = Script(
        page([ledger_json("lg_1"), ledger_json("lg_2")], True),
        page([ledger_json("lg_3")], False),
    )
    with Recording(script) as sr:
        found = sr.iter_ledgers(limit=2)
        assert isinstance(found, Iterator)
        assert script.requests == []  # lazy: nothing fetched before it is read
        assert [x.id for x in found] == ["lg_1", "lg_2", "lg_3"]
    assert script.params() == [{"limit": "2"}, {"limit": "2", "starting_after": "lg_2"}]


def test_a_listing_that_does_not_advance_is_a_server_bug_not_a_loop() -> None:
    script = Script(page([], True))  # has_more, no next_cursor
    with Recording(script) as sr, pytest.raises(RuntimeError, match="server bug"):
        list(sr.iter_events())
    script = Script(page([], True, next_cursor="cur_a"), page([], True, next_cursor="cur_a"))
    with Recording(script) as sr, pytest.raises(RuntimeError, match="did not advance"):
        list(sr.iter_events())


def test_the_next_page_of_each_listing() -> None:
    """Each iter_ goes on the way its route documents."""

    def second(paged: Paged[Any, Any], body: dict[str, Any]) -> dict[str, Any] | None:
        parsed = paged.first.parse(body)
        following = paged.next_call(paged.first, parsed)
        return None if following is None else dict(following.params)

    entry = {
        "object": "entry",
        "account_id": "acc_1",
        "version": 7,
        "transfer_id": "tr_1",
        "direction": "credit",
        "amount": 1,
        "pending_amount": 0,
        "balance_after": dict.fromkeys(
            (
                "debits_posted",
                "credits_posted",
                "debits_pending",
                "credits_pending",
                "posted",
                "pending",
                "available",
            ),
            0,
        ),
        "created_at": NOW,
    }
    listed = {"object": "list", "has_more": True}
    assert second(resources.iter_entries("acc_1", limit=1), {**listed, "data": [entry]}) == {
        "limit": 1,
        "starting_after": 7,
    }
    leaf = {
        "object": "audit_leaf",
        "index": 41,
        "type": "t",
        "leaf": "",
        "leaf_hash": "",
        "content": None,
    }
    assert second(
        resources.iter_audit_leaves(limit=1), {**listed, "data": [leaf], "tree_size": 50}
    ) == {"start": 42, "limit": 1}
    assert (
        second(
            resources.iter_webhook_attempts("we_1", limit=1, starting_after="wa_0"),
            {**listed, "data": [], "has_more": False},
        )
        is None
    )


def test_async_client_shares_retries_and_pagination() -> None:
    script = Script(
        problem(503, "overloaded", **{"Retry-After": "1"}),
        httpx.Response(201, json=ledger_json()),
        page([transfer_json("tr_1")], True, next_cursor="cur_a"),
        page([], True, next_cursor="cur_b"),
        page([transfer_json("tr_2")], False),
        problem(404, "not_found"),
    )

    async def run() -> list[str]:
        async with AsyncRecording(script) as sr:
            created = await sr.create_ledger("main")
            assert created.id == "lg_1"
            assert sr.slept == [1.0]
            found = [t.id async for t in sr.iter_transfers(account_id="acc_1")]
            with pytest.raises(NotFoundError):
                await sr.get_transfer("tr_x")
            return found

    assert asyncio.run(run()) == ["tr_1", "tr_2"]
    assert script.keys[0] == script.keys[1] is not None
    assert [p.get("cursor") for p in script.params()[2:5]] == [None, "cur_a", "cur_b"]


def test_both_clients_have_every_operation_with_its_signature_and_doc() -> None:
    builders = {
        name: fn
        for name, fn in vars(resources).items()
        if inspect.isfunction(fn)
        and not name.startswith("_")
        and fn.__module__ == resources.__name__
    }
    sync, async_ = Client("http://test", KEY), AsyncClient("http://test", KEY)
    try:
        for name, build in builders.items():
            for client in (sync, async_):
                assert getattr(type(client), name).__doc__ == build.__doc__
                bound: Callable[..., Any] = getattr(client, name)
                expected = list(inspect.signature(build).parameters)
                assert list(inspect.signature(bound).parameters) == expected, (client, name)
        public = {n for n in dir(Client) if not n.startswith("_")}
        assert public == {n for n in dir(AsyncClient) if not n.startswith("_")} - {"aclose"} | {
            "close"
        }
        assert set(builders) <= public
    finally:
        sync.close()
        asyncio.run(async_.aclose())


def test_an_api_key_never_reaches_an_error_message() -> None:
    script = Script(problem(401, "unauthenticated"))
    with Recording(script) as sr, pytest.raises(AuthenticationError) as denied:
        sr.list_ledgers()
    assert KEY not in str(denied.value)
    assert KEY not in repr(sr)


def test_no_answer_after_the_retries_is_an_api_connection_error() -> None:
    from strongroom.client import ApiConnectionError, ApiError

    script = Script(*(httpx.ConnectError("refused") for _ in range(4)))
    with Recording(script) as sr, pytest.raises(ApiConnectionError) as caught:
        sr.create_ledger("main")
    assert isinstance(caught.value, ApiError)
    assert (caught.value.status, caught.value.code) == (0, "connection_error")
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert len(set(script.keys)) == 1  # every try carried the same Idempotency-Key
