"""Webhooks end to end: an endpoint created over the API receives, from the dispatcher the
app's lifespan runs, a signed `transfer.created` for a transfer posted over the API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from strongroom.client import ApiError, Client
from strongroom.events import signing
from tests.e2e.http_support import (
    Api,
    Served,
    Tenant,
    build_app,
    problem_code,
    running,
    seed_tenant,
)

WAIT_S = 10.0


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A threading HTTP server on 127.0.0.1 that answers 204 and records every POST."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        with self.lock:
            raise AssertionError(f"{len(self.received)} deliveries in {timeout_s} s: {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            rec = holder["receiver"]
            with rec.lock:
                rec.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["receiver"] = rec = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _transfer(api: Api, t: Tenant, amount: int) -> str:
    body = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=t.write,
        json={
            "ledger_id": t.ledger,
            "debit_account_id": t.bank,
            "credit_account_id": t.alice,
            "amount": amount,
        },
    )
    transfer_id = body["id"]
    assert isinstance(transfer_id, str)
    return transfer_id


def _poll(check: Any, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(0.05)


def test_a_transfer_is_delivered_signed(db_url: str, receiver: Receiver) -> None:
    with running(db_url, webhook_allow_private_targets=True) as api:
        assert api.app.state.dispatcher is not None
        assert api.app.state.dispatcher.running
        t = seed_tenant(api, "acme")
        endpoint = api.ok(
            "POST", "/v1/webhook_endpoints", 201, key=t.admin, json={"url": receiver.url}
        )
        assert endpoint["object"] == "webhook_endpoint"
        assert endpoint["id"].startswith("we_")
        assert endpoint["url"] == receiver.url
        assert endpoint["status"] == "enabled"
        assert endpoint["enabled_events"] == ["*"]
        secret = endpoint["secret"]
        assert secret.startswith(signing.SECRET_PREFIX)
        listed = api.ok("GET", "/v1/webhook_endpoints", key=t.admin)["data"]
        assert [e["id"] for e in listed] == [endpoint["id"]]
        got = api.ok("GET", f"/v1/webhook_endpoints/{endpoint['id']}", key=t.admin)
        assert got == endpoint

        transfer_id = _transfer(api, t, 7)
        deliveries = receiver.wait_for(1)
        # Only events created once the endpoint existed are delivered: the seed's are not.
        ours = [d for d in deliveries if json.loads(d.body)["data"].get("id") == transfer_id]
        assert len(ours) == 1, [json.loads(d.body) for d in deliveries]
        delivery = ours[0]
        assert delivery.path == "/hooks"
        verdict = signing.verify(secret, delivery.headers, delivery.body, now_s=int(time.time()))
        assert verdict is signing.Verification.OK, verdict
        wrong = signing.verify(
            signing.new_secret(), delivery.headers, delivery.body, now_s=int(time.time())
        )
        assert wrong is signing.Verification.NO_MATCHING_SIGNATURE
        payload = json.loads(delivery.body)
        assert payload["type"] == "transfer.created"
        assert payload["data"]["id"] == transfer_id
        event_id = payload["id"]
        assert delivery.headers["webhook-id"] == event_id
        assert event_id.startswith("evt_")

        # The event is there to replay.
        events = api.ok("GET", "/v1/events", key=t.read, params={"limit": 100})["data"]
        assert event_id in [e["id"] for e in events]
        event = api.ok("GET", f"/v1/events/{event_id}", key=t.read)
        assert event["type"] == "transfer.created"
        assert event["ledger_id"] == t.ledger
        assert event["data"]["id"] == transfer_id
        created = api.ok(
            "GET", "/v1/events", key=t.read, params={"type": "transfer.created", "limit": 100}
        )["data"]
        assert event_id in [e["id"] for e in created]
        assert {e["type"] for e in created} == {"transfer.created"}

        # The attempt is recorded (after the answer came: poll for it).
        def succeeded() -> list[dict[str, Any]]:
            attempts = api.ok(
                "GET", f"/v1/webhook_endpoints/{endpoint['id']}/attempts", key=t.admin
            )["data"]
            return [a for a in attempts if a["event_id"] == event_id and a["status"] == "succeeded"]

        attempts = _poll(succeeded)
        assert len(attempts) == 1, attempts
        assert attempts[0]["endpoint_id"] == endpoint["id"]
        assert attempts[0]["response_status"] == 204
        assert attempts[0]["attempt"] == 1

        # Disabled: no more deliveries, and its attempts stay readable.
        path = f"/v1/webhook_endpoints/{endpoint['id']}"
        disabled = api.ok("POST", path, key=t.admin, json={"enabled": False})
        assert disabled == {**endpoint, "status": "disabled"}
        assert api.ok("GET", path, key=t.admin)["status"] == "disabled"
        count = len(receiver.received)
        later = _transfer(api, t, 3)
        assert _poll(
            lambda: any(
                e["data"]["id"] == later for e in api.ok("GET", "/v1/events", key=t.read)["data"]
            )
        )
        time.sleep(1.0)
        assert len(receiver.received) == count
        attempts_after = api.ok("GET", f"{path}/attempts", key=t.admin)["data"]
        assert attempts[0] in attempts_after

        # Deleted: gone, with its attempts, for good.
        deleted = api.ok("DELETE", path, key=t.admin)
        assert deleted == {"id": endpoint["id"], "object": "webhook_endpoint", "deleted": True}
        for method, route in (
            ("GET", path),
            ("GET", f"{path}/attempts"),
            ("DELETE", path),
            ("POST", path),
        ):
            body = {"enabled": True} if method == "POST" else None
            response = api.request(method, route, key=t.admin, json=body)
            assert (response.status_code, problem_code(response)) == (404, "not_found"), route
        assert api.ok("GET", "/v1/webhook_endpoints", key=t.admin)["data"] == []


def _attempts(api: Api, key: str, endpoint_id: str, **params: Any) -> dict[str, Any]:
    return api.ok("GET", f"/v1/webhook_endpoints/{endpoint_id}/attempts", key=key, params=params)


def test_attempts_page_with_cursors_both_ways(db_url: str, receiver: Receiver) -> None:
    with running(db_url, webhook_allow_private_targets=True) as api:
        a, b = seed_tenant(api, "acme"), seed_tenant(api, "bravo")
        hooks = {"url": receiver.url}
        first = api.ok("POST", "/v1/webhook_endpoints", 201, key=a.admin, json=hooks)["id"]
        second = api.ok("POST", "/v1/webhook_endpoints", 201, key=a.admin, json=hooks)["id"]
        theirs = api.ok("POST", "/v1/webhook_endpoints", 201, key=b.admin, json=hooks)["id"]
        for amount in range(1, 6):
            _transfer(api, a, amount)
        _transfer(api, b, 1)
        expected = {(a.admin, first): 5, (a.admin, second): 5, (b.admin, theirs): 1}
        assert _poll(
            lambda: all(
                len(_attempts(api, key, endpoint, limit=100)["data"]) == count
                for (key, endpoint), count in expected.items()
            )
        ), "the attempts were not all recorded in time"

        everything = _attempts(api, a.admin, first, limit=100)
        assert not everything["has_more"]
        newest_first = [x["id"] for x in everything["data"]]
        assert len(set(newest_first)) == 5
        assert all(x.startswith("wa_") for x in newest_first)
        assert {x["endpoint_id"] for x in everything["data"]} == {first}
        times = [x["created_at"] for x in everything["data"]]
        assert times == sorted(times, reverse=True)
        # An attempt's id is stable: the same on every read.
        assert [x["id"] for x in _attempts(api, a.admin, first)["data"]] == newest_first

        # Forward, pages of two: every attempt once, in order; has_more until the last page.
        forward: list[str] = []
        pages: list[bool] = []
        page = _attempts(api, a.admin, first, limit=2)
        while True:
            forward += [x["id"] for x in page["data"]]
            pages.append(page["has_more"])
            if not page["has_more"]:
                break
            page = _attempts(api, a.admin, first, limit=2, starting_after=forward[-1])
        assert forward == newest_first
        assert pages == [True, True, False]
        # Backward from the oldest: the four before it, in the same order on every page.
        backward: list[str] = []
        pages = []
        page = _attempts(api, a.admin, first, limit=2, ending_before=newest_first[-1])
        while True:
            backward = [x["id"] for x in page["data"]] + backward
            pages.append(page["has_more"])
            if not page["has_more"]:
                break
            page = _attempts(api, a.admin, first, limit=2, ending_before=backward[0])
        assert backward == newest_first[:-1]
        assert pages == [True, False]
        # Past either end: an empty page with nothing more.
        for cursor, id_ in (
            ("starting_after", newest_first[-1]),
            ("ending_before", newest_first[0]),
        ):
            assert _attempts(api, a.admin, first, **{cursor: id_}) == {
                "object": "list",
                "data": [],
                "has_more": False,
            }

        # Another endpoint's attempt (the same tenant's or another's), an id of another kind
        # and garbage are no cursor, alike.
        second_attempt = _attempts(api, a.admin, second)["data"][0]["id"]
        their_attempt = _attempts(api, b.admin, theirs)["data"][0]["id"]
        for cursor in (second_attempt, their_attempt, a.posted, "wa_nope", "garbage"):
            for param in ("starting_after", "ending_before"):
                response = api.get(
                    f"/v1/webhook_endpoints/{first}/attempts",
                    key=a.admin,
                    params={param: cursor},
                )
                assert response.status_code == 400, (cursor, param, response.text)
                assert problem_code(response) == "invalid_cursor", (cursor, param)
                assert response.json()["param"] == param
        # B's own attempt as a cursor on A's endpoint: the endpoint is not found, as ever.
        response = api.get(
            f"/v1/webhook_endpoints/{first}/attempts",
            key=b.admin,
            params={"starting_after": their_attempt},
        )
        assert (response.status_code, problem_code(response)) == (404, "not_found")
        both = {"starting_after": newest_first[0], "ending_before": newest_first[-1]}
        response = api.get(f"/v1/webhook_endpoints/{first}/attempts", key=a.admin, params=both)
        assert (response.status_code, problem_code(response)) == (400, "invalid_request")
        assert response.json()["param"] == "ending_before"
        for limit in (0, 101):
            response = api.get(
                f"/v1/webhook_endpoints/{first}/attempts", key=a.admin, params={"limit": limit}
            )
            assert response.status_code == 400, limit

        # Deleting one endpoint leaves the others' attempts alone.
        api.ok("DELETE", f"/v1/webhook_endpoints/{second}", key=a.admin)
        assert [x["id"] for x in _attempts(api, a.admin, first)["data"]] == newest_first
        assert len(_attempts(api, b.admin, theirs)["data"]) == 1


def test_an_endpoint_is_disabled_and_enabled_again(db_url: str) -> None:
    with running(db_url, dispatcher=False) as api:
        t = seed_tenant(api, "acme")
        endpoint = api.ok(
            "POST",
            "/v1/webhook_endpoints",
            201,
            key=t.admin,
            json={"url": "https://hooks.example.com/x"},
        )
        path = f"/v1/webhook_endpoints/{endpoint['id']}"
        for body in ({}, {"enabled": "false"}, {"enabled": 0}, {"enabled": False, "url": "x"}):
            response = api.post(path, key=t.admin, json=body)
            assert (response.status_code, problem_code(response)) == (400, "invalid_request"), body
        assert api.ok("POST", path, key=t.admin, json={"enabled": False})["status"] == "disabled"
        assert api.ok("POST", path, key=t.admin, json={"enabled": False})["status"] == "disabled"
        assert api.ok("POST", path, key=t.admin, json={"enabled": True}) == endpoint
        assert api.ok("GET", path, key=t.admin) == endpoint


def test_private_targets_are_refused_by_default(db_url: str, receiver: Receiver) -> None:
    with running(db_url, dispatcher=False) as api:
        t = seed_tenant(api, "acme")
        for url in (receiver.url, "http://localhost:8080/hooks", "http://10.0.0.1/hooks"):
            response = api.post("/v1/webhook_endpoints", key=t.admin, json={"url": url})
            assert response.status_code == 400, (url, response.text)
            assert problem_code(response) == "invalid_url", url
            assert response.json()["param"] == "url", url
        assert api.ok("GET", "/v1/webhook_endpoints", key=t.admin)["data"] == []
        ok = api.post(
            "/v1/webhook_endpoints", key=t.admin, json={"url": "https://hooks.example.com/x"}
        )
        assert ok.status_code == 201, ok.text


def test_webhook_endpoints_need_an_admin_key(db_url: str) -> None:
    with running(db_url, dispatcher=False) as api:
        t = seed_tenant(api, "acme")
        endpoint = api.ok(
            "POST",
            "/v1/webhook_endpoints",
            201,
            key=t.admin,
            json={"url": "https://hooks.example.com/x"},
        )
        path = f"/v1/webhook_endpoints/{endpoint['id']}"
        for key in (t.read, t.write):
            for method, route, body in (
                ("POST", "/v1/webhook_endpoints", {"url": "https://hooks.example.com/y"}),
                ("GET", "/v1/webhook_endpoints", None),
                ("GET", path, None),
                ("GET", f"{path}/attempts", None),
                ("POST", path, {"enabled": False}),
                ("DELETE", path, None),
            ):
                response = api.request(method, route, key=key, json=body)
                assert (response.status_code, problem_code(response)) == (
                    403,
                    "insufficient_scope",
                ), (method, route)
                assert endpoint["secret"] not in response.text
        # Nothing changed; a read key still reads events.
        assert api.ok("GET", path, key=t.admin)["status"] == "enabled"
        assert len(api.ok("GET", "/v1/webhook_endpoints", key=t.admin)["data"]) == 1
        assert api.get("/v1/events", key=t.read).status_code == 200


def test_the_client_manages_endpoints_and_pages_attempts(
    sqlite_url: str, receiver: Receiver
) -> None:
    app = build_app(sqlite_url, webhook_allow_private_targets=True)
    api = Api(app)
    try:
        t = seed_tenant(api, "acme")
    finally:
        api.close()
    with Served(app) as served, Client(served.base_url, t.admin) as sr:
        endpoint = sr.create_webhook_endpoint(receiver.url, ["transfer.created"])
        assert endpoint.enabled_events == ["transfer.created"]
        assert sr.get_webhook_endpoint(endpoint.id) == endpoint
        assert [e.id for e in sr.list_webhook_endpoints().data] == [endpoint.id]
        with Client(served.base_url, t.write) as writer:
            for amount in range(1, 4):
                writer.create_transfer(
                    t.ledger, debit_account_id=t.bank, credit_account_id=t.alice, amount=amount
                )
        assert _poll(lambda: len(sr.list_webhook_attempts(endpoint.id).data) == 3)
        everything = sr.list_webhook_attempts(endpoint.id)
        first = sr.list_webhook_attempts(endpoint.id, limit=2)
        rest = sr.list_webhook_attempts(endpoint.id, limit=2, starting_after=first.data[-1].id)
        assert (first.has_more, rest.has_more) == (True, False)
        assert first.data + rest.data == everything.data
        before = sr.list_webhook_attempts(endpoint.id, ending_before=rest.data[0].id)
        assert (before.data, before.has_more) == (first.data, False)

        assert sr.update_webhook_endpoint(endpoint.id, enabled=False).status == "disabled"
        assert sr.update_webhook_endpoint(endpoint.id, enabled=True).status == "enabled"
        deleted = sr.delete_webhook_endpoint(endpoint.id)
        assert (deleted.id, deleted.object, deleted.deleted) == (
            endpoint.id,
            "webhook_endpoint",
            True,
        )
        for call in (
            lambda: sr.get_webhook_endpoint(endpoint.id),
            lambda: sr.list_webhook_attempts(endpoint.id),
            lambda: sr.delete_webhook_endpoint(endpoint.id),
        ):
            with pytest.raises(ApiError) as info:
                call()
            assert (info.value.status, info.value.code) == (404, "not_found")
        assert sr.list_webhook_endpoints().data == []
