"""Signing in over the HTTP API, on SQLite and PostgreSQL: users created by an admin, password
sessions as bearer tokens or HttpOnly cookies, passkeys (a software authenticator here; the
browser test drives Chromium's), step-up before sensitive actions (API key creation), the
transfer step-up gate, lockout answers that say nothing of the email, and the sign-in page."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from strongroom.security.auth import totp
from tests.e2e.http_support import Api, check_problem, problem_code, running, seed_tenant
from tests.support.authenticator import SoftAuthenticator

PASSWORD = "a long enough passphrase"
FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}
ORIGIN = "http://localhost:8000"
STEP_UP = "transfer_step_up_required"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    with running(db_url, keyring_path=str(tmp_path / "keyring.json"), **FAST) as api:
        yield api


def _user(api: Api, admin: str, email: str, role: str) -> str:
    # A role that reveals (admin) is given by a key that holds the reveal scopes by name
    # (tenancy.access.require_grantable): the tenant owner's key beside `admin`.
    tenancy = api.app.state.tenancy
    found = tenancy.authenticate(admin)
    assert found is not None
    owner = tenancy.create_tenant_api_key(
        found.tenant_id, ["admin", "pii:read", "vault:reveal"], actor="test"
    )[1]
    body = api.ok(
        "POST",
        "/v1/users",
        201,
        key=owner,
        json={"email": email, "role": role, "password": PASSWORD},
    )
    assert body["role"] == role
    assert "email" not in body
    user_id: str = body["id"]
    return user_id


def _sign_in(api: Api, tenant: str, email: str, **extra: Any) -> str:
    body = api.ok(
        "POST",
        "/v1/auth/sessions",
        201,
        json={"tenant": tenant, "email": email, "password": PASSWORD, **extra},
    )
    token: str = body["token"]
    assert token.startswith("st_")
    return token


def _totp_secret(uri: str) -> bytes:
    text = parse_qs(urlsplit(uri).query)["secret"][0]
    return base64.b32decode(text + "=" * (-len(text) % 8))


def test_a_user_signs_in_and_acts_by_role(api: Api) -> None:
    acme = seed_tenant(api, "acme")
    admin_id = _user(api, acme.admin, "boss@acme.example", "admin")
    _user(api, acme.admin, "eve@acme.example", "auditor")
    boss = _sign_in(api, "acme", "BOSS@acme.example")
    eve = _sign_in(api, "acme", "eve@acme.example")
    me = api.ok("GET", "/v1/auth/sessions/current", key=boss)
    assert (me["user_id"], me["role"], me["stepped_up_until"]) == (admin_id, "admin", None)
    # The role's scopes: an auditor reads the ledger and writes nothing.
    assert api.ok("GET", f"/v1/accounts/{acme.alice}", key=eve)["id"] == acme.alice
    refused = api.post("/v1/ledgers", key=eve, json={"name": "mine"})
    assert (refused.status_code, problem_code(refused)) == (403, "insufficient_scope")
    api.ok("POST", "/v1/ledgers", 201, key=boss, json={"name": "boss's"})
    moved = api.ok(
        "POST",
        "/v1/transfers",
        201,
        key=boss,
        json={
            "ledger_id": acme.ledger,
            "debit_account_id": acme.bank,
            "credit_account_id": acme.alice,
            "amount": 7,
        },
    )
    assert moved["amount"] == 7
    # (The gates see the user as the actor: test_large_transfers_need_a_step_up_or_a_key_ceiling.)
    # Signing out ends the session at once.
    assert api.ok("DELETE", "/v1/auth/sessions/current", key=boss)["deleted"] is True
    gone = api.get("/v1/auth/sessions/current", key=boss)
    assert (gone.status_code, problem_code(gone)) == (401, "unauthenticated")


def test_the_cookie_is_httponly_secure_strict_and_carries_no_token_in_the_body(api: Api) -> None:
    acme = seed_tenant(api, "acme")
    _user(api, acme.admin, "boss@acme.example", "admin")
    response = api.post(
        "/v1/auth/sessions",
        json={"tenant": "acme", "email": "boss@acme.example", "password": PASSWORD, "cookie": True},
    )
    assert response.status_code == 201
    assert response.json()["token"] is None
    cookie = response.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    token = rest.split(";")[0]
    assert name == "strongroom_session"
    assert token.startswith("st_")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= attributes
    me = api.get("/v1/auth/sessions/current", headers={"cookie": f"strongroom_session={token}"})
    assert me.status_code == 200
    assert me.json()["role"] == "admin"


def test_a_cross_site_request_is_not_authenticated_by_the_cookie(api: Api) -> None:
    """SameSite=Strict keeps the cookie from other sites, not from a sibling subdomain (same
    site, another origin): a form there could POST as the user (seen failing before: a
    cross-origin form reversed a transfer). A state-changing request the browser marks as
    not same-origin (Sec-Fetch-Site) is not authenticated by the cookie; a bearer token is
    not ambient, so it is unaffected."""
    acme = seed_tenant(api, "acme")
    _user(api, acme.admin, "boss@acme.example", "admin")
    signed = api.post(
        "/v1/auth/sessions",
        json={"tenant": "acme", "email": "boss@acme.example", "password": PASSWORD, "cookie": True},
    )
    token = signed.headers["set-cookie"].partition("=")[2].split(";")[0]
    cookie = {"cookie": f"strongroom_session={token}"}
    form = {**cookie, "content-type": "application/x-www-form-urlencoded"}
    for site in ("same-site", "cross-site"):
        refused = api.request(
            "DELETE", "/v1/auth/sessions/current", headers={**form, "sec-fetch-site": site}
        )
        assert refused.status_code == 401
        assert check_problem(refused, api.app.state.errors)["code"] == "unauthenticated"
    # Reading is not a change; the page's own calls are same-origin.
    read = api.get("/v1/auth/sessions/current", headers={**cookie, "sec-fetch-site": "cross-site"})
    assert read.status_code == 200
    api.ok(
        "DELETE",
        "/v1/auth/sessions/current",
        headers={**cookie, "sec-fetch-site": "same-origin"},
    )
    assert api.get("/v1/auth/sessions/current", headers=cookie).status_code == 401


def test_failures_say_nothing_of_the_email_and_lock_the_account(
    db_url: str, tmp_path: Path
) -> None:
    settings = {**FAST, "keyring_path": str(tmp_path / "k.json"), "login_failures_max": 2}
    with running(db_url, **settings) as api:
        acme = seed_tenant(api, "acme")
        _user(api, acme.admin, "boss@acme.example", "admin")
        bodies = []
        for tenant, email, password in [
            ("acme", "boss@acme.example", "wrong wrong wrong"),
            ("acme", "nobody@acme.example", PASSWORD),
            ("nowhere", "boss@acme.example", PASSWORD),
            ("acme", "boss@acme.example", "wrong wrong wrong"),  # the second: locked now
            ("acme", "boss@acme.example", PASSWORD),  # right, but locked
        ]:
            response = api.post(
                "/v1/auth/sessions", json={"tenant": tenant, "email": email, "password": password}
            )
            assert (response.status_code, problem_code(response)) == (401, "invalid_credentials")
            body = response.json()
            bodies.append((body["detail"], body.get("param")))
            assert "boss" not in response.text
            assert "nobody" not in response.text
        assert len(set(bodies)) == 1


def test_api_key_creation_needs_a_step_up(api: Api) -> None:
    acme = seed_tenant(api, "acme")
    _user(api, acme.admin, "boss@acme.example", "admin")
    boss = _sign_in(api, "acme", "boss@acme.example")
    wanted = {"scopes": ["ledger:read"]}
    refused = api.post("/v1/api_keys", key=boss, json=wanted)
    assert (refused.status_code, problem_code(refused)) == (403, "step_up_required")
    # Enrol TOTP, confirm it with this step's code, step up with the next step's.
    uri = api.ok("POST", "/v1/auth/totp", 201, key=boss)["otpauth_uri"]
    secret = _totp_secret(uri)
    now = int(time.time())
    confirm = api.post("/v1/auth/totp/confirm", key=boss, json={"code": totp.totp(secret, now)})
    assert confirm.json() == {"totp_enrolled": True}
    replay = api.post("/v1/auth/step-up", key=boss, json={"totp": totp.totp(secret, now)})
    assert (replay.status_code, problem_code(replay)) == (400, "invalid_code")
    assert replay.json()["param"] == "totp"  # the body's own field name
    stepped = api.ok(
        "POST", "/v1/auth/step-up", key=boss, json={"totp": totp.totp(secret, now + 30)}
    )
    assert stepped["stepped_up_until"]
    made = api.ok("POST", "/v1/api_keys", 201, key=boss, json=wanted)
    assert made["secret"].startswith("sk_")
    assert made["scopes"] == ["ledger:read"]
    assert api.ok("GET", f"/v1/accounts/{acme.alice}", key=made["secret"])["id"] == acme.alice
    # A machine passes on its admin scope; an API key has no session to step up.
    assert api.ok("POST", "/v1/api_keys", 201, key=acme.admin, json=wanted)["id"]
    # A misspelt scope is refused naming the body's field, `scopes`.
    typo = api.post("/v1/api_keys", key=acme.admin, json={"scopes": ["ledger:raed"]})
    assert (typo.status_code, problem_code(typo)) == (400, "invalid_scope")
    assert typo.json()["param"] == "scopes"
    no_session = api.post("/v1/auth/step-up", key=acme.admin, json={"totp": "123456"})
    assert (no_session.status_code, problem_code(no_session)) == (403, "session_required")


def test_passkeys_register_sign_in_and_step_up(api: Api) -> None:
    acme = seed_tenant(api, "acme")
    user_id = _user(api, acme.admin, "boss@acme.example", "admin")
    boss = _sign_in(api, "acme", "boss@acme.example")
    device = SoftAuthenticator(ORIGIN)
    begun = api.ok("POST", "/v1/auth/passkeys/registration/options", key=boss)
    options = begun["options"]
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["rp"]["id"] == "localhost"
    answer = {"challenge_id": begun["challenge_id"], "credential": device.create(options)}
    api.ok("POST", "/v1/auth/passkeys/registration", 201, key=boss, json=answer)
    # A challenge is good once.
    again = api.post("/v1/auth/passkeys/registration", key=boss, json=answer)
    assert (again.status_code, problem_code(again)) == (400, "invalid_challenge")

    # Sign in with the passkey: no session, no email.
    begun = api.ok("POST", "/v1/auth/passkeys/authentication/options", json={"tenant": "acme"})
    assertion = device.get(begun["options"])
    session = api.ok(
        "POST",
        "/v1/auth/passkeys/authentication",
        201,
        json={"challenge_id": begun["challenge_id"], "credential": assertion},
    )
    assert session["user_id"] == user_id
    token = session["token"]
    replay = api.post(
        "/v1/auth/passkeys/authentication",
        json={"challenge_id": begun["challenge_id"], "credential": assertion},
    )
    assert (replay.status_code, problem_code(replay)) == (400, "invalid_challenge")

    # Another factor needs a step-up first: a stolen session cannot plant its own.
    for route in ("/v1/auth/passkeys/registration/options", "/v1/auth/totp"):
        planted = api.post(route, key=token)
        assert (planted.status_code, problem_code(planted)) == (403, "step_up_required")
    # Without user verification (no PIN, no biometric) the assertion is refused.
    device.verified = False
    begun = api.ok("POST", "/v1/auth/step-up/options", key=token)
    weak = api.post(
        "/v1/auth/step-up",
        key=token,
        json={"challenge_id": begun["challenge_id"], "credential": device.get(begun["options"])},
    )
    assert (weak.status_code, problem_code(weak)) == (400, "passkey_rejected")
    device.verified = True
    begun = api.ok("POST", "/v1/auth/step-up/options", key=token)
    assert begun["options"]["allowCredentials"]
    api.ok(
        "POST",
        "/v1/auth/step-up",
        key=token,
        json={"challenge_id": begun["challenge_id"], "credential": device.get(begun["options"])},
    )
    assert api.ok("POST", "/v1/api_keys", 201, key=token, json={"scopes": ["ledger:read"]})["id"]
    second = api.ok("POST", "/v1/auth/passkeys/registration/options", key=token)
    assert len(second["options"]["excludeCredentials"]) == 1  # the first one is not made again
    # Another origin's assertion (a phishing site relaying the challenge) is refused.
    begun = api.ok("POST", "/v1/auth/passkeys/authentication/options", json={"tenant": "acme"})
    phished = SoftAuthenticator("https://acme-login.example", credentials=device.credentials)
    bad = api.post(
        "/v1/auth/passkeys/authentication",
        json={"challenge_id": begun["challenge_id"], "credential": phished.get(begun["options"])},
    )
    assert (bad.status_code, problem_code(bad)) == (400, "passkey_rejected")


def test_large_transfers_need_a_step_up_or_a_key_ceiling(db_url: str, tmp_path: Path) -> None:
    settings = {**FAST, "keyring_path": str(tmp_path / "k.json"), "step_up_transfer_amount": 5000}
    with running(db_url, **settings) as api:
        acme = seed_tenant(api, "acme")
        _user(api, acme.admin, "boss@acme.example", "admin")
        boss = _sign_in(api, "acme", "boss@acme.example")
        move = {"ledger_id": acme.ledger, "debit_account_id": acme.bank}
        big = {**move, "credit_account_id": acme.alice, "amount": 5001}
        small = {**move, "credit_account_id": acme.alice, "amount": 5000}
        for key in (boss, acme.write):
            refused = api.post("/v1/transfers", key=key, json=big)
            assert refused.status_code == 422
            assert check_problem(refused, api.app.state.errors)["code"] == STEP_UP
            api.ok("POST", "/v1/transfers", 201, key=key, json=small)
        batch = api.ok(
            "POST", "/v1/transfers/batch", 200, key=acme.write, json={"transfers": [big, small]}
        )
        assert [(r["status"], r["code"]) for r in batch["results"]] == [
            ("refused", STEP_UP),
            ("created", "created"),
        ]
        # A key with a ceiling moves up to it (given by a key whose own ceiling covers it:
        # test_a_key_gives_no_transfer_ceiling_above_its_own).
        tenancy = api.app.state.tenancy
        tenant_id = tenancy.authenticate(acme.admin).tenant_id
        owner = tenancy.create_tenant_api_key(
            tenant_id, ["admin"], actor="test", transfer_ceiling=10_000
        )[1]
        capped = api.ok(
            "POST",
            "/v1/api_keys",
            201,
            key=owner,
            json={"scopes": ["ledger:write"], "transfer_ceiling": 10_000},
        )["secret"]
        api.ok("POST", "/v1/transfers", 201, key=capped, json={**big, "amount": 10_000})
        over = api.post("/v1/transfers", key=capped, json={**big, "amount": 10_001})
        assert check_problem(over, api.app.state.errors)["code"] == STEP_UP
        # A stepped-up user moves any amount.
        uri = api.ok("POST", "/v1/auth/totp", 201, key=boss)["otpauth_uri"]
        secret = _totp_secret(uri)
        now = int(time.time())
        api.request(
            "POST", "/v1/auth/totp/confirm", key=boss, json={"code": totp.totp(secret, now)}
        )
        api.ok("POST", "/v1/auth/step-up", key=boss, json={"totp": totp.totp(secret, now + 30)})
        api.ok("POST", "/v1/transfers", 201, key=boss, json={**big, "amount": 10**9})


def test_the_sign_in_page_has_a_strict_csp_and_no_third_party_code(
    sqlite_url: str, tmp_path: Path
) -> None:
    with running(sqlite_url, keyring_path=str(tmp_path / "keyring.json"), **FAST) as api:
        _check_page(api)


def _check_page(api: Api) -> None:
    page = api.get("/signin")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "http://" not in page.text
    assert "https://" not in page.text
    script = api.get("/signin.js")
    assert script.status_code == 200
    assert "navigator.credentials" in script.text
    assert "http://" not in script.text
    assert "https://" not in script.text


def test_a_key_gives_no_transfer_ceiling_above_its_own(db_url: str, tmp_path: Path) -> None:
    """The ceiling stands in for a machine's step-up: an admin key held to the threshold must
    not mint a key with a ceiling and move any amount with it (seen failing before: it could).
    A key gives a ceiling up to its own; a stepped-up user, who moves any amount, gives any."""
    settings = {**FAST, "keyring_path": str(tmp_path / "k.json"), "step_up_transfer_amount": 5000}
    with running(db_url, **settings) as api:
        acme = seed_tenant(api, "acme")
        tenancy = api.app.state.tenancy
        tenant_id = tenancy.authenticate(acme.admin).tenant_id
        for ceiling in (5001, 2**128 - 1):
            refused = api.post(
                "/v1/api_keys",
                key=acme.admin,
                json={"scopes": ["ledger:write"], "transfer_ceiling": ceiling},
            )
            assert refused.status_code == 403
            assert check_problem(refused, api.app.state.errors)["code"] == "insufficient_scope"
        capped = tenancy.create_tenant_api_key(
            tenant_id, ["admin"], actor="test", transfer_ceiling=8000
        )[1]
        over = api.post(
            "/v1/api_keys", key=capped, json={"scopes": ["ledger:write"], "transfer_ceiling": 8001}
        )
        assert check_problem(over, api.app.state.errors)["code"] == "insufficient_scope"
        for ceiling in (8000, 10, None):
            made = api.ok(
                "POST",
                "/v1/api_keys",
                201,
                key=capped,
                json={"scopes": ["ledger:write"], "transfer_ceiling": ceiling},
            )
            assert made["transfer_ceiling"] == ceiling
        _user(api, acme.admin, "boss@acme.example", "admin")
        boss = _sign_in(api, "acme", "boss@acme.example")
        secret = _totp_secret(api.ok("POST", "/v1/auth/totp", 201, key=boss)["otpauth_uri"])
        now = int(time.time())
        api.request(
            "POST", "/v1/auth/totp/confirm", key=boss, json={"code": totp.totp(secret, now)}
        )
        api.ok("POST", "/v1/auth/step-up", key=boss, json={"totp": totp.totp(secret, now + 30)})
        made = api.ok(
            "POST",
            "/v1/api_keys",
            201,
            key=boss,
            json={"scopes": ["ledger:write"], "transfer_ceiling": 10**9},
        )
        assert made["transfer_ceiling"] == 10**9


def test_the_python_client_signs_in_and_steps_up(sqlite_url: str, tmp_path: Path) -> None:
    from strongroom.client import Client, PermissionDeniedError
    from tests.e2e.http_support import Served, build_app

    app = build_app(sqlite_url, keyring_path=str(tmp_path / "keyring.json"), **FAST)
    # The owner's key: it may give the admin role, which reveals (require_grantable).
    admin = app.state.tenancy.create_api_key("acme", ["admin", "pii:read", "vault:reveal"])[1]
    with Served(app) as served:
        with Client(served.base_url, admin) as sr:
            user = sr.create_user("boss@acme.example", "admin", password=PASSWORD)
        with Client(served.base_url, "st_not_yet") as anonymous:
            session = anonymous.create_session("acme", "boss@acme.example", PASSWORD)
        assert session.token is not None
        with Client(served.base_url, session.token) as me:
            assert me.get_current_session().user_id == user.id
            with pytest.raises(PermissionDeniedError):
                me.create_api_key(["ledger:read"])
            secret = _totp_secret(me.create_totp_enrolment().otpauth_uri)
            now = int(time.time())
            assert me.confirm_totp(totp.totp(secret, now)).totp_enrolled
            assert me.step_up(totp=totp.totp(secret, now + 30)).stepped_up_until
            made = me.create_api_key(["ledger:read"], transfer_ceiling=5)
            assert made.transfer_ceiling == 5
            assert me.update_user(user.id, role="support").role == "support"
            assert me.delete_current_session().deleted


def test_an_invited_user_sets_a_password_then_signs_in(api: Api) -> None:
    acme = seed_tenant(api, "acme")
    both = {"email": "new@acme.example", "role": "support", "password": PASSWORD, "invite": True}
    refused = api.post("/v1/users", key=acme.admin, json=both)
    assert (refused.status_code, problem_code(refused)) == (400, "invalid_request")
    made = api.ok(
        "POST",
        "/v1/users",
        201,
        key=acme.admin,
        json={"email": "new@acme.example", "role": "support", "invite": True},
    )
    token = made["invitation"]
    assert token.startswith("inv_")
    accepted = api.ok("POST", "/v1/auth/invitations", json={"token": token, "password": PASSWORD})
    assert accepted["id"] == made["id"]
    assert accepted["invitation"] is None
    again = api.post("/v1/auth/invitations", json={"token": token, "password": PASSWORD})
    assert (again.status_code, problem_code(again)) == (400, "invalid_challenge")
    assert _sign_in(api, "acme", "new@acme.example")
    assert api.ok("GET", f"/v1/users/{made['id']}", key=acme.admin)["invitation"] is None


def test_a_flood_of_passkey_challenges_is_limited_not_stored(db_url: str, tmp_path: Path) -> None:
    """The options route is reached without credentials and stores a challenge: past the
    address's bucket it answers 429 and writes nothing more."""
    settings = {
        **FAST,
        "keyring_path": str(tmp_path / "k.json"),
        "auth_failure_limit_burst": 5,
        "auth_failure_limit_per_s": 0.01,
    }
    with running(db_url, **settings) as api:
        seed_tenant(api, "acme")
        path = "/v1/auth/passkeys/authentication/options"
        codes = [api.post(path, json={"tenant": "acme"}).status_code for _ in range(12)]
        assert codes[:5] == [200] * 5
        assert set(codes[6:]) == {429}
        with api.app.state.engine.connect() as conn:
            stored = conn.exec_driver_sql("SELECT COUNT(*) FROM auth_challenges").scalar()
        assert stored is not None
        assert stored <= 6


def test_past_the_address_limit_even_the_right_password_is_refused(
    db_url: str, tmp_path: Path
) -> None:
    """The failed sign-ins of an address are limited: past the limit a sign-in is answered 429
    before the password is checked, the right one too. Else the limit hid only failures, and a
    password sprayer (one guess an account, under each lockout) still learnt each hit (seen
    failing before: the right password was let in)."""
    settings = {
        **FAST,
        "keyring_path": str(tmp_path / "k.json"),
        "auth_failure_limit_burst": 3,
        "auth_failure_limit_per_s": 0.01,
    }
    with running(db_url, **settings) as api:
        acme = seed_tenant(api, "acme")
        _user(api, acme.admin, "boss@acme.example", "admin")
        guess = {"tenant": "acme", "password": PASSWORD}
        codes = [
            api.post("/v1/auth/sessions", json={**guess, "email": f"u{i}@acme.example"}).status_code
            for i in range(5)
        ]
        assert codes[:3] == [401] * 3
        assert codes[4] == 429
        hit = api.post("/v1/auth/sessions", json={**guess, "email": "boss@acme.example"})
        assert hit.status_code == 429
        assert check_problem(hit, api.app.state.errors)["code"] == "rate_limited"
        assert "token" not in hit.text


def test_an_admin_lists_users_and_finds_one_by_address_without_seeing_any(api: Api) -> None:
    acme, bravo = seed_tenant(api, "acme"), seed_tenant(api, "bravo")
    officer = _user(api, acme.admin, "Officer@Acme.example", "compliance_officer")
    support = _user(api, acme.admin, "help@acme.example", "support")
    theirs = _user(api, bravo.admin, "officer@acme.example", "auditor")
    listed = api.ok("GET", "/v1/users", key=acme.admin)
    assert [u["id"] for u in listed["data"]] == sorted([officer, support])
    assert "acme.example" not in json.dumps(listed).lower()
    paged = api.ok("GET", "/v1/users", key=acme.admin, params={"limit": 1})
    assert paged["has_more"] is True
    assert len(paged["data"]) == 1
    found = api.ok("GET", "/v1/users", key=acme.admin, params={"email": "officer@ACME.example"})
    assert [(u["id"], u["role"]) for u in found["data"]] == [(officer, "compliance_officer")]
    # B's user with the same address is B's: A's admin never sees it, nor B's listing A's.
    assert theirs not in json.dumps(found)
    assert [u["id"] for u in api.ok("GET", "/v1/users", key=bravo.admin)["data"]] == [theirs]
    bad = api.get("/v1/users", key=acme.admin, params={"email": "not an address"})
    assert (bad.status_code, problem_code(bad)) == (400, "invalid_email")
    refused = api.get("/v1/users", key=acme.read)
    assert refused.status_code == 403
