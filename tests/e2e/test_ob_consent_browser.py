"""The consent page end to end in a real browser (Debian's headless Chromium, through its
chromedriver: tests/support/browser.py), against `strongroom serve` on a free loopback port.

A TPP is registered; its consent is made at the tenant's OB API and its authorization request
pushed (private_key_jwt, PKCE S256, dpop_jkt). The browser opens /oauth2/authorize; the
customer signs in with a password and a TOTP code, steps up with the next code, chooses an
account and approves; the browser lands on the TPP's redirect URI (a tiny callback served on
another loopback port: another site) with code, state and iss; the TPP exchanges the code with
its PKCE verifier and a DPoP proof and reads the customer's accounts with the DPoP-bound token.
Then the TPP's own page sends the browser to a second request: the SameSite=Strict session
cookie does not come along on that cross-site navigation, the page finds the session by a
same-origin request and reloads itself with it, and the customer rejects: the browser lands
with error=access_denied. The server's log holds none of the secrets the flow handled."""

from __future__ import annotations

import base64
import contextlib
import html
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.security.auth import totp
from strongroom.tenancy.service import TenancyService
from tests.support.browser import browser_paths, chromium, wait_until
from tests.support.ob_authz import new_tpp
from tests.support.ob_flow import TppAgent, public_jwks, redirect_params
from tests.support.serve import free_port, serve

PASSWORD = "a long enough passphrase"
EMAIL = "ada@acme.example"


class Callback:
    """The TPP's site on its own loopback port: `/callback` records what the browser brought
    back; `/start?to=<url>` is a page linking to the bank (a navigation from another site)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.seen.append(self.path)
                parts = urlsplit(self.path)
                if parts.path == "/start":
                    target = html.escape(parse_qs(parts.query)["to"][0], quote=True)
                    body = f'<!doctype html><a id="go" href="{target}">Connect your bank</a>'
                else:
                    body = "<!doctype html><p id='done'>Back at the TPP</p>"
                raw = body.encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    @contextlib.contextmanager
    def running(self) -> Iterator[Callback]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


class Authenticator:
    """The customer's authenticator app: a code of a time-step later than the last one used,
    within the server's drift window (one step either side of now)."""

    def __init__(self, otpauth_uri: str) -> None:
        text = parse_qs(urlsplit(otpauth_uri).query)["secret"][0]
        self.secret = base64.b32decode(text + "=" * (-len(text) % 8))
        self.last: int | None = None

    def code(self) -> str:
        while True:
            now = time.time()
            step = int(now // totp.STEP_S)
            # The step before now is still accepted, unless the next step comes too soon.
            earliest = step - 1 if now % totp.STEP_S < 20 else step
            wanted = earliest if self.last is None else max(self.last + 1, earliest)
            if wanted <= step + 1:
                self.last = wanted
                return totp.hotp(self.secret, wanted)
            time.sleep((step + 1) * totp.STEP_S - now + 0.2)


def _stage(driver: Any) -> str:
    return str(driver.execute_script("return document.body.dataset.stage || ''"))


def _await_stage(driver: Any, stage: str) -> None:
    def reached(d: Any) -> bool:
        return _stage(d) == stage

    wait_until(driver, reached, f"the page's {stage} stage (status: {_status(driver)!r})")


def _status(driver: Any) -> str:
    return str(driver.execute_script("var s = document.getElementById('status'); "
                                     "return s ? s.textContent : ''"))  # fmt: skip


def _fill(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def _click(driver: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def _landed(driver: Any, callback: Callback) -> dict[str, str]:
    """The authorization response the browser brought to the TPP's redirect URI."""

    def there(d: Any) -> str | None:
        url = str(d.current_url)
        return url if url.startswith(callback.redirect_uri + "?") else None

    url = wait_until(driver, there, "the TPP's redirect URI")
    assert any(p.startswith("/callback?") for p in callback.seen)
    return redirect_params(url)


def _setup(client: httpx.Client, admin: str, operator: str, callback: Callback) -> dict[str, Any]:
    """Over the API, as operators do: the TPP registered, a customer with two accounts and a
    customer user of theirs with a password; the TPP's agent."""
    tpp = new_tpp(name="Moneywise", redirect_uris=(callback.redirect_uri,))
    registered = client.post(
        "/v1/openbanking/clients",
        headers={"Authorization": f"Bearer {operator}"},
        json={"name": tpp.name, "redirect_uris": [callback.redirect_uri], "jwks": public_jwks(tpp)},
    )
    assert registered.status_code == 201, registered.text
    tpp.id = registered.json()["id"]
    key = {"Authorization": f"Bearer {admin}"}

    def made(path: str, body: dict[str, Any]) -> str:
        response = client.post(path, headers=key, json=body)
        assert response.status_code == 201, (path, response.text)
        return str(response.json()["id"])

    customer = made("/v1/customers", {"name": "Ada Lovelace"})
    ledger = made("/v1/ledgers", {"name": "acme books"})
    account = {"ledger_id": ledger, "normal_balance": "credit", "customer_id": customer}
    everyday = made("/v1/accounts", {**account, "asset": "GBP", "name": "Everyday"})
    travel = made("/v1/accounts", {**account, "asset": "EUR", "name": "Travel"})
    made(
        "/v1/users",
        {"email": EMAIL, "role": "customer", "customer_id": customer, "password": PASSWORD},
    )
    return {"tpp": tpp, "customer": customer, "everyday": everyday, "travel": travel}


def _enrol_totp(client: httpx.Client) -> Authenticator:
    """The customer enrols an authenticator app (from a session of their own, not the
    browser's: the browser signs in afresh)."""
    signed_in = client.post(
        "/v1/auth/sessions", json={"tenant": "acme", "email": EMAIL, "password": PASSWORD}
    )
    assert signed_in.status_code == 201, signed_in.text
    session = {"Authorization": f"Bearer {signed_in.json()['token']}"}
    enrolled = client.post("/v1/auth/totp", headers=session)
    assert enrolled.status_code == 201, enrolled.text
    app = Authenticator(enrolled.json()["otpauth_uri"])
    confirmed = client.post("/v1/auth/totp/confirm", headers=session, json={"code": app.code()})
    assert confirmed.status_code == 200, confirmed.text
    assert client.delete("/v1/auth/sessions/current", headers=session).status_code == 200
    return app


def test_a_customer_approves_and_rejects_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium_path, driver_path = browser_paths("the consent page's browser test")
    url = f"sqlite:///{tmp_path / 'strongroom.db'}"
    engine = create_engine(url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(engine)
        tenancy = TenancyService(engine)
        admin = tenancy.create_api_key("acme", ["admin", "pii:read", "vault:reveal"])[1]
        operator = tenancy.create_api_key(None, ["tenants:admin"])[1]
    finally:
        engine.dispose()
    port = free_port()
    origin = f"http://localhost:{port}"
    settings = {
        "STRONGROOM_PUBLIC_BASE_URL": origin,
        "STRONGROOM_WEBAUTHN_RP_ID": "localhost",
        "STRONGROOM_WEBAUTHN_ORIGINS": origin,
        "STRONGROOM_KEYRING_PATH": str(tmp_path / "keyring.json"),
        "STRONGROOM_PASSWORD_MEMORY_KIB": str(19 * 1024),
        "STRONGROOM_PASSWORD_TIME_COST": "2",
        "STRONGROOM_PASSWORD_PARALLELISM": "1",
        "STRONGROOM_DISPATCHER": "false",
    }
    log = tmp_path / "serve.log"
    callback = Callback()
    with (
        callback.running(),
        serve(url, log, port, **settings),
        httpx.Client(base_url=origin, timeout=30) as client,
        chromium(chromium_path, driver_path, tmp_path / "chromedriver.log", monkeypatch) as driver,
    ):
        world = _setup(client, admin, operator, callback)
        agent = TppAgent(world["tpp"], origin, client.request)
        app = _enrol_totp(client)

        # -- approve ---------------------------------------------------------------------
        pushed = agent.push(agent.account_access_consent("acme"))
        driver.get(origin + agent.authorize_path(pushed))
        _await_stage(driver, "sign_in")
        assert "Moneywise asks for your consent" in driver.page_source
        _fill(driver, "email", EMAIL)
        _fill(driver, "password", PASSWORD)
        _fill(driver, "totp", app.code())
        _click(driver, "signin-password")
        _await_stage(driver, "step_up")
        _fill(driver, "step-up-code", app.code())
        _click(driver, "step-up-totp")
        _await_stage(driver, "decide")
        # The customer's accounts are offered; they share the everyday one.
        assert f'value="{world["travel"]}"' in driver.page_source
        _click(driver, f"account-{world['everyday']}")
        _click(driver, "approve")
        approved = _landed(driver, callback)
        assert set(approved) == {"code", "state", "iss"}
        assert (approved["state"], approved["iss"]) == (pushed.state, origin)
        tokens = agent.exchange(approved["code"], pushed)
        accounts = agent.ob("GET", "acme", "/aisp/accounts", tokens["access_token"])
        assert accounts.status_code == 200, accounts.text
        listed = accounts.json()["Data"]["Account"]
        assert [a["AccountId"] for a in listed] == [world["everyday"]]
        # The session cookie stayed out of the page's reach, and off other sites.
        driver.get(origin + "/oauth2/consent.css")
        session_cookie = {c["name"]: c for c in driver.get_cookies()}["strongroom_session"]
        assert (session_cookie["httpOnly"], session_cookie["sameSite"]) == (True, "Strict")

        # -- reject, arriving from the TPP's site -----------------------------------------
        second_consent = agent.account_access_consent("acme")
        second = agent.push(second_consent)
        to = urlencode({"to": origin + agent.authorize_path(second)})
        start = f"http://127.0.0.1:{callback.port}/start?{to}"
        driver.get(start)
        _click(driver, "go")
        _await_stage(driver, "decide")  # still stepped up: the page went straight on
        _click(driver, "reject")
        rejected = _landed(driver, callback)
        assert rejected == {"error": "access_denied", "state": second.state, "iss": origin}
        consent = agent.ob(
            "GET",
            "acme",
            f"/aisp/account-access-consents/{second_consent}",
            agent.client_token(),
        )
        assert consent.json()["Data"]["Status"] == "RJCT"

    written = log.read_text()
    for secret in (
        pushed.request_uri.rsplit(":", 1)[1],
        second.request_uri.rsplit(":", 1)[1],
        approved["code"],
        tokens["access_token"],
        PASSWORD,
        EMAIL,
        base64.b32encode(app.secret).decode().rstrip("="),
    ):
        assert secret not in written
