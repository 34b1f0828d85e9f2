"""Passkeys end to end in a real browser: Debian's headless Chromium, driven through its
chromedriver, with a DevTools virtual authenticator (CTAP2, internal, resident keys, user
verification), so that the browser's own WebAuthn code builds every credential and assertion.
On the sign-in page a user signs in with a password, registers a passkey, signs out, signs in
with the passkey, steps up with it, and then creates an API key (a call that needs the
step-up) with the session cookie.

Needs the Debian packages `chromium` and `chromium-driver` (/usr/bin/chromium,
/usr/bin/chromedriver); without them the test skips, unless STRONGROOM_REQUIRE_BROWSER is on
(CI installs them). The driver is named explicitly: selenium-manager never downloads a browser
or a driver (a downloaded browser build cannot run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.tenancy.service import TenancyService
from tests.support.browser import browser_paths, chromium
from tests.support.serve import free_port, serve

PASSWORD = "a long enough passphrase"
WAIT_S = 30


def _wait_status(driver: Any, prefix: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def done(d: Any) -> str | None:
        text: str = d.find_element(By.ID, "status").text
        return text if text.startswith(prefix) or " failed" in text.split("\n")[0] else None

    text: str = WebDriverWait(driver, WAIT_S).until(done)
    assert text.startswith(prefix), text
    return text


def _click(driver: Any, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()


def _fill(driver: Any, element_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


_FETCH = """
const [method, path, body, done] = arguments;
fetch(path, {method, credentials: "same-origin",
             headers: body ? {"content-type": "application/json"} : {},
             body: body ? JSON.stringify(body) : undefined})
  .then(async (r) => done({status: r.status, body: await r.text()}))
  .catch((e) => done({status: 0, body: String(e)}));
"""


def test_passkey_register_sign_in_and_step_up_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium_path, driver_path = browser_paths("the passkey browser test")
    url = f"sqlite:///{tmp_path / 'strongroom.db'}"
    engine = create_engine(url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(engine)
        # The owner's key: the admin role reveals, so it is given by a key that holds the
        # reveal scopes by name (tenancy.access.require_grantable).
        admin = TenancyService(engine).create_api_key(
            "acme", ["admin", "pii:read", "vault:reveal"]
        )[1]
    finally:
        engine.dispose()
    port = free_port()
    origin = f"http://localhost:{port}"
    settings = {
        "STRONGROOM_WEBAUTHN_RP_ID": "localhost",
        "STRONGROOM_WEBAUTHN_ORIGINS": origin,
        "STRONGROOM_KEYRING_PATH": str(tmp_path / "keyring.json"),
        "STRONGROOM_PASSWORD_MEMORY_KIB": str(19 * 1024),
        "STRONGROOM_PASSWORD_TIME_COST": "2",
        "STRONGROOM_PASSWORD_PARALLELISM": "1",
        "STRONGROOM_DISPATCHER": "false",
    }
    with serve(url, tmp_path / "serve.log", port, **settings) as (_proc, base):
        made = httpx.post(
            f"{base}/v1/users",
            headers={"Authorization": f"Bearer {admin}"},
            json={"email": "boss@acme.example", "role": "admin", "password": PASSWORD},
        )
        assert made.status_code == 201, made.text
        user_id = made.json()["id"]
        log = tmp_path / "chromedriver.log"
        with chromium(chromium_path, driver_path, log, monkeypatch) as driver:
            driver.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
            added = driver.execute_cdp_cmd(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            authenticator = added["authenticatorId"]
            driver.set_script_timeout(WAIT_S)
            driver.get(f"{origin}/signin")
            # The page's CSP lets only its own script run (no inline code, no CDN).
            _fill(driver, "tenant", "acme")
            _fill(driver, "email", "boss@acme.example")
            _fill(driver, "password", PASSWORD)
            _click(driver, "signin-password")
            assert user_id in _wait_status(driver, "signed in")

            _click(driver, "register-passkey")
            _wait_status(driver, "passkey registered")
            stored = driver.execute_cdp_cmd(
                "WebAuthn.getCredentials", {"authenticatorId": authenticator}
            )["credentials"]
            assert len(stored) == 1
            assert stored[0]["isResidentCredential"] is True

            _click(driver, "signout")
            _wait_status(driver, "signed out")
            gone = driver.execute_async_script(_FETCH, "GET", "/v1/auth/sessions/current", None)
            assert gone["status"] == 401

            # A passkey sign-in: the tenant only, no email, no password.
            driver.get(f"{origin}/signin")
            _fill(driver, "tenant", "acme")
            _click(driver, "signin-passkey")
            assert user_id in _wait_status(driver, "signed in")

            # Creating an API key is sensitive: refused before the step-up, allowed after.
            wanted = {"scopes": ["ledger:read"]}
            before = driver.execute_async_script(_FETCH, "POST", "/v1/api_keys", wanted)
            assert before["status"] == 403
            assert "step_up_required" in before["body"]
            _click(driver, "step-up-passkey")
            _wait_status(driver, "stepped up")
            after = driver.execute_async_script(_FETCH, "POST", "/v1/api_keys", wanted)
            assert after["status"] == 201, after["body"]
            me = driver.execute_async_script(_FETCH, "GET", "/v1/auth/sessions/current", None)
            assert me["status"] == 200
            assert user_id in me["body"]
            assert '"stepped_up_until":null' not in me["body"].replace(" ", "")
            # The session cookie is HttpOnly: the page's script cannot read it.
            assert "strongroom_session" not in driver.execute_script("return document.cookie")
            cookies = {c["name"]: c for c in driver.get_cookies()}
            assert cookies["strongroom_session"]["httpOnly"] is True
            assert cookies["strongroom_session"]["sameSite"] == "Strict"
            # The authenticator signed the sign-in and the step-up (its counter is what the
            # server checks against clones).
            stored = driver.execute_cdp_cmd(
                "WebAuthn.getCredentials", {"authenticatorId": authenticator}
            )["credentials"]
            assert stored[0]["signCount"] >= 2
