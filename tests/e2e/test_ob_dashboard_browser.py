"""The consent dashboard end to end in a real browser: Debian's headless Chromium through its
chromedriver (tests/e2e/test_passkeys_browser.py's driver and skip rules). A customer opens the
dashboard without a session and is sent to the sign-in page, signs in there with a password,
opens /openbanking/consents again, sees their TPP's consent with its expiry, clicks Revoke, and
the row shows Revoked; the API and the consent service agree it is CANC.

Needs the Debian packages `chromium` and `chromium-driver`; without them the test skips,
unless STRONGROOM_REQUIRE_BROWSER is on (CI installs them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.core import clock, ids
from strongroom.ledger.accounts import AccountSpec
from strongroom.ledger.model import Direction, NewTransfer
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.dashboard.model import API_PATH, PAGE_PATH
from strongroom.openbanking.model import Permission, ob_datetime
from tests.e2e.http_support import Served, build_app
from tests.e2e.test_passkeys_browser import _FETCH, WAIT_S, _click, _fill, _wait_status
from tests.support.browser import browser_paths, chromium
from tests.support.jwks import ec_key, jwks

PASSWORD = "a long enough passphrase"
FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}
DAY_US = 86_400_000_000


def _seed(app: Any) -> tuple[str, str]:
    """Tenant acme with a customer (Ada: a GBP account, a customer user), a registered TPP and
    an account access consent Ada authorised, expiring in 90 days: (its id, its expiry)."""
    state = app.state
    tenant = state.tenancy.create_tenant("acme", actor="test")
    customer = state.customers.create(tenant.id, "person", {"name": "Ada"}, actor="test")
    book = state.ledger.create_ledger("acme books", tenant_id=tenant.id).id
    bank, wallet = (
        a.id
        for a in state.ledger.create_accounts(
            [
                AccountSpec(book, "GBP", Direction.DEBIT, name="bank"),
                AccountSpec(book, "GBP", Direction.CREDIT, customer_id=customer.id),
            ]
        )
    )
    state.ledger.post_transfers([NewTransfer(ids.new_id("tr"), book, bank, wallet, 5_000)])
    tpp = state.openbanking_clients.register(
        name="Budget Buddy", redirect_uris=["https://buddy.example/cb"], jwks=jwks(ec_key()),
        actor="test",
    )  # fmt: skip
    expires = clock.now_us() + 90 * DAY_US
    permissions = [Permission.READ_ACCOUNTS_BASIC, Permission.READ_BALANCES]
    consent, _ = state.ob_resources.consents.create(
        tenant.id, tpp.id, ConsentKind.ACCOUNT_ACCESS,
        {"Permissions": [p.value for p in permissions], "ExpirationDateTime": ob_datetime(expires)},
        permissions=permissions, expires_at_us=expires,
    )  # fmt: skip
    state.ob_resources.consents.authorise(consent.id, customer.id, [wallet])
    state.users.create_user(
        tenant.id, "ada@acme.example", "customer", PASSWORD, actor="test", customer_id=customer.id
    )
    return consent.id, clock.format_us(expires)


def test_a_customer_revokes_a_tpps_access_in_one_click_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chromium_path, driver_path = browser_paths("the consent dashboard browser test")
    pytest.importorskip("selenium.webdriver")
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must fetch nothing
    app = build_app(
        f"sqlite:///{tmp_path / 'strongroom.db'}",
        keyring_path=str(tmp_path / "keyring.json"),
        dispatcher=False,
        **FAST,
    )
    consent_id, expires_at = _seed(app)
    row_css = f'tr[data-consent-id="{consent_id}"]'

    def cell(driver: Any, name: str) -> Any:
        return driver.find_element(By.CSS_SELECTOR, f"{row_css} td.{name}")

    with (
        Served(app) as served,
        chromium(chromium_path, driver_path, tmp_path / "chromedriver.log", monkeypatch) as driver,
    ):
        origin = served.base_url.replace("127.0.0.1", "localhost")
        driver.set_script_timeout(WAIT_S)
        # The script re-renders a row when it changes: an element looked up before may go stale.
        wait = WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
        # Without a session the dashboard sends the visitor to the sign-in page.
        driver.get(f"{origin}{PAGE_PATH}")
        wait.until(lambda d: d.current_url == f"{origin}/signin")
        _fill(driver, "tenant", "acme")
        _fill(driver, "email", "ada@acme.example")
        _fill(driver, "password", PASSWORD)
        _click(driver, "signin-password")
        _wait_status(driver, "signed in")

        driver.get(f"{origin}{PAGE_PATH}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, row_css))
        assert cell(driver, "tpp").text == "Budget Buddy"
        assert cell(driver, "status").text == "Active"
        assert "balances" in cell(driver, "covers").text
        expires = cell(driver, "expires")
        assert expires.get_attribute("data-expires-at") == expires_at
        assert expires_at[:4] in expires.text  # the year, whatever the browser's locale

        # One click: the row shows Revoked, and has no Revoke button any more.
        driver.find_element(By.CSS_SELECTOR, f"{row_css} button.revoke").click()
        wait.until(lambda d: cell(d, "status").text == "Revoked")
        assert not driver.find_elements(By.CSS_SELECTOR, f"{row_css} button.revoke")
        assert "no access" in driver.find_element(By.ID, "status").text

        # The API says so too, with the browser's own session.
        listed = driver.execute_async_script(_FETCH, "GET", API_PATH, None)
        assert listed["status"] == 200, listed["body"]
        (shown,) = json.loads(listed["body"])["data"]
        assert (shown["id"], shown["status"], shown["in_force"]) == (consent_id, "CANC", False)
    assert app.state.ob_resources.consents.get(consent_id).status == "CANC"
