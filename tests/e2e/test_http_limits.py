"""Rate limits over HTTP: what a request costs, failed authentications limited per client
address, trusted proxies (X-Forwarded-For believed only from them), the public base URL, and
the limit held across the worker processes of a real `strongroom serve --workers 2`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.tenancy.service import TenancyService
from tests.e2e.http_support import Api, Tenant, auth, problem_code, running, seed_tenant
from tests.support.redis import redis_url_or_skip

SLOW = 0.001  # tokens a second: nothing refills while a test runs


def _remaining(response: httpx.Response) -> int:
    return int(response.headers["ratelimit-remaining"])


@pytest.fixture
def slow(db_url: str) -> Iterator[tuple[Api, Tenant]]:
    with running(db_url, rate_limit_per_s=SLOW, rate_limit_burst=10, dispatcher=False) as api:
        yield api, seed_tenant(api, "acme")


def _fresh_key(api: Api, scope: str) -> str:
    secret: str = api.app.state.tenancy.create_api_key("acme", [scope])[1]
    return secret


def test_expensive_requests_cost_more(slow: tuple[Api, Tenant]) -> None:
    """1 token a request; a listing 1/100 more an item past the default page of 20; a
    statement page 1/50 an entry; a batch 1/100 a transfer. Refused, a batch posts nothing."""
    api, acme = slow
    key = _fresh_key(api, "ledger:write")
    assert _remaining(api.get("/v1/ledgers", key=key)) == 9  # 10 - 1
    listing = {"ledger_id": acme.ledger, "limit": 100}
    assert _remaining(api.get("/v1/transfers", key=key, params=listing)) == 7  # 9 - 1.8 = 7.2
    move = {
        "ledger_id": acme.ledger,
        "debit_account_id": acme.bank,
        "credit_account_id": acme.alice,
        "amount": 1,
    }
    batch = {"transfers": [move] * 100}
    response = api.post("/v1/transfers/batch", key=key, json=batch)
    assert response.status_code == 200, response.text
    assert _remaining(response) == 5  # 7.2 - 2 = 5.2
    reader = _fresh_key(api, "ledger:read")
    period = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "limit": 200}
    statement = api.get(f"/v1/accounts/{acme.alice}/statement", key=reader, params=period)
    assert _remaining(statement) == 5  # 10 - (1 + 200/50)
    before = api.ok("GET", "/v1/transfers", key=reader, params={"ledger_id": acme.ledger})
    # 5.2 left, a batch of 500 costs 6: refused before anything is posted.
    refused = api.post("/v1/transfers/batch", key=key, json={"transfers": [move] * 500})
    assert (refused.status_code, problem_code(refused)) == (429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "10"
    after = api.ok("GET", "/v1/transfers", key=reader, params={"ledger_id": acme.ledger})
    assert after["data"][0]["id"] == before["data"][0]["id"]


def test_failed_authentication_is_limited_per_address(sqlite_url: str) -> None:
    """50 wrong keys in a row: the first `burst` are 401, the rest 429 with Retry-After; a good
    key from that same address is still let through (one client behind a NAT or an untrusted
    proxy must not lock out the others)."""
    with running(
        sqlite_url, auth_failure_limit_per_s=SLOW, auth_failure_limit_burst=5, dispatcher=False
    ) as api:
        good = _fresh_key(api, "ledger:read")
        answers = [api.get("/v1/ledgers", key="sk_" + "x" * 43) for _ in range(50)]
        codes = [(r.status_code, problem_code(r)) for r in answers]
        assert codes == [(401, "unauthenticated")] * 5 + [(429, "rate_limited")] * 45
        assert all(int(r.headers["retry-after"]) >= 1 for r in answers[5:])
        no_key = api.get("/v1/ledgers")
        assert (no_key.status_code, problem_code(no_key)) == (429, "rate_limited")
        api.app.state.tenancy._cache.clear()  # not let through by a cached lookup
        response = api.get("/v1/ledgers", key=good)
        assert response.status_code == 200, response.text
        # Another address has its own bucket.
        assert _from(api, "192.0.2.9", "/v1/ledgers", key="sk_" + "y" * 43).status_code == 401


def _from(
    api: Api, peer: str, path: str, *, key: str | None = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A request whose TCP peer is `peer`."""
    transport = httpx.ASGITransport(app=api.app, client=(peer, 4321))

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get(path, headers={**(auth(key) if key else {}), **(headers or {})})

    return api.run(call())


def test_forwarded_for_is_believed_from_trusted_proxies_only(sqlite_url: str) -> None:
    settings: dict[str, Any] = {
        "auth_failure_limit_per_s": SLOW,
        "auth_failure_limit_burst": 2,
        "trusted_proxies": "10.0.0.0/8, 192.0.2.1",
        "dispatcher": False,
    }
    with running(sqlite_url, **settings) as api:
        bad = "sk_" + "z" * 43
        # Through the trusted proxy, each client address has its own bucket.
        via = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        codes = [_from(api, "10.1.2.3", "/v1/ledgers", key=bad, headers=via).status_code]
        codes += [_from(api, "192.0.2.1", "/v1/ledgers", key=bad, headers=via).status_code]
        codes += [_from(api, "10.1.2.3", "/v1/ledgers", key=bad, headers=via).status_code]
        assert codes == [401, 401, 429]
        other = {"X-Forwarded-For": "203.0.113.8"}
        assert _from(api, "10.1.2.3", "/v1/ledgers", key=bad, headers=other).status_code == 401
        # From an untrusted peer the header is ignored: spoofing it buys no fresh bucket.
        spoofs = [
            _from(
                api,
                "198.51.100.1",
                "/v1/ledgers",
                key=bad,
                headers={"X-Forwarded-For": f"1.1.1.{i}"},
            ).status_code
            for i in range(3)
        ]
        assert spoofs == [401, 401, 429]
        # A client that forwards a chain through the proxy is the last address before it.
        chain = {"X-Forwarded-For": "203.0.113.7, 198.51.100.50"}
        assert _from(api, "10.1.2.3", "/v1/ledgers", key=bad, headers=chain).status_code == 401


def test_no_proxy_is_trusted_by_default(sqlite_url: str) -> None:
    with running(
        sqlite_url, auth_failure_limit_per_s=SLOW, auth_failure_limit_burst=1, dispatcher=False
    ) as api:
        bad = "sk_" + "z" * 43
        codes = [
            _from(
                api, "127.0.0.1", "/v1/ledgers", key=bad, headers={"X-Forwarded-For": f"1.1.1.{i}"}
            ).status_code
            for i in range(2)
        ]
        assert codes == [401, 429]


def test_the_public_base_url_is_the_documents_server(sqlite_url: str) -> None:
    with running(sqlite_url, public_base_url="https://api.example.com/", dispatcher=False) as api:
        assert api.ok("GET", "/openapi.json")["servers"] == [{"url": "https://api.example.com"}]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRUSTED_PROXIES", "10.0.0.0/8,not-an-address"),
        ("PUBLIC_BASE_URL", "strongroom-public-host"),
        ("RATE_LIMIT_STORAGE", "memcached://x"),
    ],
)
def test_bad_deployment_settings_are_named(name: str, value: str) -> None:
    from strongroom.settings import InvalidSettings, load_settings

    os.environ[f"STRONGROOM_{name}"] = value
    try:
        with pytest.raises(InvalidSettings) as info:
            load_settings()
    finally:
        del os.environ[f"STRONGROOM_{name}"]
    assert str(info.value).startswith(f"STRONGROOM_{name}: ")
    assert value not in str(info.value)


# -- a real `strongroom serve --workers 2` ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _two_workers(tmp_path: Path, storage: str | None) -> tuple[int, int, float]:
    """(requests let through, requests sent, seconds) for 200 requests, each on a new
    connection, to `serve --workers 2` with a burst of 20 tokens and 1 token a second."""
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    secret = TenancyService(engine).create_api_key("acme", ["ledger:read"])[1]
    engine.dispose()
    env = {
        **os.environ,
        "STRONGROOM_DATABASE_URL": url,
        "STRONGROOM_RATE_LIMIT_PER_S": "1",
        "STRONGROOM_RATE_LIMIT_BURST": "20",
        "STRONGROOM_DISPATCHER": "false",
    }
    if storage is not None:
        env["STRONGROOM_RATE_LIMIT_STORAGE"] = storage
    port = _free_port()
    command = "from strongroom.cli import main; main()"
    # The server's log (a JSON line a request) goes to a file: a pipe nobody reads would fill
    # and block the workers.
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-c", command, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "serve did not start in 60 s"
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        # Both workers must be up: each answers /readyz; new connections are spread by the
        # kernel over the workers' accepts.
        sent, passed = 200, 0
        start = time.monotonic()
        for _ in range(sent):
            with httpx.Client(base_url=base, timeout=10) as client:  # a new connection each
                response = client.get("/v1/ledgers", headers=auth(secret))
            assert response.status_code in (200, 429), response.text
            passed += response.status_code == 200
        elapsed = time.monotonic() - start
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    pids = {
        json.loads(line).get("pid")
        for line in (tmp_path / "serve.log").read_text().splitlines()
        if '"route": "/v1/ledgers"' in line
    }
    assert len(pids) == 2, f"requests were answered by {len(pids)} worker(s), not 2"
    return passed, sent, elapsed


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["file", "redis"])
def test_two_workers_share_one_limit(tmp_path: Path, storage: str) -> None:
    """With a burst B = 20 and r = 1 token a second, over T seconds at most B + r*T requests
    pass across both workers (each with a bucket of its own, up to 2B + 2rT did)."""
    setting = redis_url_or_skip() if storage == "redis" else None
    passed, sent, elapsed = _two_workers(tmp_path, setting)
    print(f"two workers, {storage}: {passed} of {sent} passed in {elapsed:.2f} s")
    assert 20 <= passed <= 20 + 1 * elapsed + 1, (passed, elapsed)
