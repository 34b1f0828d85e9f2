"""The consent page's pure parts: the decision form, the CSRF token, the same-origin check, the
policy's form targets, what a consent grants in words, and the HTML (every value escaped)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.openbanking.authz.model import FORM_BYTES_MAX, PendingAuthorization
from strongroom.openbanking.consentpage import model, render
from strongroom.openbanking.consentpage.errors import Forged
from strongroom.openbanking.consentpage.model import (
    AccountChoice,
    Decision,
    PageView,
    Stage,
)
from strongroom.openbanking.consents import ConsentKind, ConsentState
from strongroom.openbanking.model import Permission
from strongroom.openbanking.resources.model import OB_CONSENT_ACCOUNTS_MAX, Consent

KEY = bytes(range(32))
HANDLE = "h" * 43
SESSION = "s" * 64


def _form(*pairs: tuple[str, str]) -> bytes:
    return urlencode(pairs).encode()


BASE = (
    ("client_id", "tpp_1"),
    ("request_uri", "urn:ietf:params:oauth:request_uri:abc"),
    ("csrf_token", "t" * 43),
)


def test_a_decision_form_is_read_with_its_accounts() -> None:
    approve = model.parse_decision(
        _form(*BASE, ("decision", "approve"), ("account_id", "acc_1"), ("account_id", "acc_2"))
    )
    assert approve == Decision(
        "tpp_1", "urn:ietf:params:oauth:request_uri:abc", "t" * 43, True, ("acc_1", "acc_2")
    )
    reject = model.parse_decision(_form(*BASE, ("decision", "reject"), ("account_id", "acc_1")))
    assert (reject.approve, reject.account_ids) == (False, ())


@pytest.mark.parametrize(
    "body",
    [
        b"",
        _form(*BASE),  # no decision
        _form(*BASE[1:], ("decision", "approve")),  # no client_id
        _form(*BASE, ("decision", "approve"), ("decision", "reject")),
        _form(*BASE, ("decision", "maybe")),
        _form(*BASE, ("decision", "approve"), ("extra", "1")),
        _form(*BASE, ("decision", "approve"), ("account_id", "")),
        _form(*BASE, ("decision", "approve"), ("account_id", "a" * 65)),
        _form(*BASE, ("decision", "approve"), ("account_id", "acc\x00")),
        _form(*BASE, ("decision", "approve"), *[("account_id", f"a{i}") for i in range(101)]),
        b"decision=approve&\xff",
        b"a" * (FORM_BYTES_MAX + 1),
        b"==&&",
    ],
)
def test_a_malformed_decision_form_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        model.parse_decision(body)


def test_the_form_bound_fits_every_account_a_consent_may_have() -> None:
    accounts = [("account_id", "acc_" + "x" * 60) for _ in range(OB_CONSENT_ACCOUNTS_MAX)]
    body = _form(*BASE, ("decision", "approve"), *accounts)
    assert len(body) <= FORM_BYTES_MAX
    assert len(model.parse_decision(body).account_ids) == OB_CONSENT_ACCOUNTS_MAX


def test_the_csrf_token_binds_a_session_to_one_request() -> None:
    token = model.csrf_token(KEY, SESSION, HANDLE)
    assert len(token) == model.CSRF_CHARS
    assert token == model.csrf_token(KEY, SESSION, HANDLE)
    assert model.csrf_matches(KEY, SESSION, HANDLE, token)
    others = {
        model.csrf_token(KEY, "s" * 63 + "t", HANDLE),
        model.csrf_token(KEY, SESSION, "h" * 42 + "i"),
        model.csrf_token(bytes(32), SESSION, HANDLE),
        # The separator keeps (session, handle) pairs apart.
        model.csrf_token(KEY, SESSION + "h", HANDLE[1:]),
    }
    assert token not in others
    assert len(others) == 4
    for sent in ("", token[:-1], token + "A", "é" * 43, others.pop()):
        assert not model.csrf_matches(KEY, SESSION, HANDLE, sent)


@pytest.mark.parametrize(
    ("origin", "site", "allowed"),
    [
        ("https://bank.example", "same-origin", True),
        (None, None, True),  # no browser: the token alone
        ("https://bank.example", None, True),
        (None, "same-origin", True),
        ("HTTPS://BANK.EXAMPLE", "Same-Origin", True),
        ("https://evil.example", "same-origin", False),
        ("null", "same-origin", False),
        ("https://bank.example:8443", None, False),
        ("https://bank.example", "same-site", False),
        ("https://bank.example", "cross-site", False),
        ("https://bank.example", "none", False),
    ],
)
def test_a_decision_another_origin_sent_is_refused(
    origin: str | None, site: str | None, allowed: bool
) -> None:
    own = {"https://bank.example"}
    if allowed:
        model.check_same_origin(origin, site, own)
    else:
        with pytest.raises(Forged):
            model.check_same_origin(origin, site, own)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://tpp.example/cb?x=1", "https://tpp.example"),
        ("https://TPP.example:443/cb", "https://tpp.example"),
        ("http://127.0.0.1:8123/cb", "http://127.0.0.1:8123"),
        ("http://localhost:80/", "http://localhost"),
        ("http://[::1]:9000/cb", "http://[::1]:9000"),
        ("https://tpp.example;script-src:1/cb", None),
        ("https://tpp.example:99999/", None),
        ("ftp://tpp.example/", None),
        ("javascript:alert(1)", None),
        ("", None),
        (None, None),
    ],
)
def test_the_origin_of_a_redirect_uri(url: str | None, origin: str | None) -> None:
    assert model.origin_of(url) == origin


def test_the_policy_lets_forms_post_here_and_redirect_to_the_client_only() -> None:
    headers = model.page_headers("https://tpp.example/cb")
    csp = headers["Content-Security-Policy"]
    assert csp.endswith("; form-action 'self' https://tpp.example")
    assert "default-src 'none'" in csp
    assert "script-src 'self';" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    plain = model.page_headers()["Content-Security-Policy"]
    assert plain.endswith("; form-action 'self'")
    # A redirect URI whose origin cannot stand in a policy as it is adds nothing to it.
    odd = model.page_headers("https://a.example;x/cb")["Content-Security-Policy"]
    assert odd == plain
    with pytest.raises(AssertionError):
        model.content_security_policy(["https://x.example 'unsafe-inline'"])


def test_the_authorization_request_names_client_and_request_once() -> None:
    assert model.authorization_params(
        [("client_id", "c"), ("request_uri", "r"), ("response_type", "code")]
    ) == ("c", "r")
    for query in (
        [("client_id", "c")],
        [("request_uri", "r")],
        [("client_id", ""), ("request_uri", "r")],
        [("client_id", "c"), ("request_uri", "r"), ("request_uri", "r")],
    ):
        with pytest.raises(InvalidRequest):
            model.authorization_params(query)


def _consent(kind: ConsentKind, request: dict[str, Any], **fields: Any) -> Consent:
    permissions = (Permission.READ_ACCOUNTS_BASIC, Permission.READ_BALANCES)
    return Consent(
        id="obc_1",
        tenant_id="ten_1",
        client_id="tpp_1",
        state=ConsentState.new(kind, 0),
        expires_at_us=fields.get("expires_at_us"),
        permissions=permissions if kind is ConsentKind.ACCOUNT_ACCESS else (),
        request=request,
    )


def test_what_each_kind_of_consent_grants_in_words() -> None:
    access = model.describe(
        _consent(
            ConsentKind.ACCOUNT_ACCESS,
            {"TransactionFromDateTime": "2025-01-01T00:00:00+00:00"},
            expires_at_us=1_743_849_787_000_000,
        )
    )
    assert access.title == "Read your account information"
    assert access.items == (
        "the names and currencies of the accounts you choose",
        "their balances",
    )
    assert access.details == (("Transactions", "from 2025-01-01T00:00:00+00:00 to now"),)
    assert access.expiry == "Until 5 April 2025, 10:43 UTC, unless you withdraw it before."

    debtor = {"SchemeName": "UK.OBIE.IBAN", "Identification": "GB33BUKB20201555555555"}
    funds = model.describe(_consent(ConsentKind.FUNDS_CONFIRMATION, {"DebtorAccount": debtor}))
    assert funds.details == (
        ("Account named by the provider", "GB33BUKB20201555555555 (UK.OBIE.IBAN)"),
    )
    assert funds.expiry == "Until you withdraw it."

    initiation = {
        "InstructedAmount": {"Amount": "10.50", "Currency": "GBP"},
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.SortCodeAccountNumber",
            "Identification": "08080021325698",
            "Name": "ACME Inc",
        },
        "RemittanceInformation": {"Reference": "FRESCO-101", "Unstructured": "x" * 500},
    }
    payment = model.describe(_consent(ConsentKind.DOMESTIC_PAYMENT, {"Initiation": initiation}))
    assert payment.title == "Make a payment from your account"
    shown = dict(payment.details)
    assert shown["Amount"] == "10.50 GBP"
    assert shown["To"] == "ACME Inc, 08080021325698 (UK.OBIE.SortCodeAccountNumber)"
    assert shown["Reference"] == "FRESCO-101"
    assert len(shown["Description"]) == model.SHOWN_CHARS_MAX
    # As the payment API takes it: Unstructured is a list of lines (shown, joined), and the
    # account the TPP named, if any, is shown beside the customer's choice.
    initiation["RemittanceInformation"] = {"Unstructured": ["invoice 42", "May"]}
    initiation["DebtorAccount"] = debtor
    shown = dict(
        model.describe(_consent(ConsentKind.DOMESTIC_PAYMENT, {"Initiation": initiation})).details
    )
    assert shown["Description"] == "invoice 42 / May"
    assert shown["Account named by the provider"] == "GB33BUKB20201555555555 (UK.OBIE.IBAN)"
    # What is not text is not shown.
    odd = model.describe(_consent(ConsentKind.DOMESTIC_PAYMENT, {"Initiation": {"x": [1]}}))
    assert odd.details == ()


def _pending(name: str, kind: ConsentKind = ConsentKind.ACCOUNT_ACCESS) -> PendingAuthorization:
    return PendingAuthorization(
        handle=HANDLE,
        client_id='tpp_"1',
        client_name=name,
        redirect_uri="https://tpp.example/cb",
        scopes=frozenset({"accounts"}),
        state="s",
        consent_id="obc_1",
        consent_kind=kind,
        tenant_id="ten_1",
        code_challenge="c" * 43,
        dpop_jkt=None,
        expires_at_us=0,
    )


HOSTILE = "<script>alert('x')</script>\"&"


def test_every_value_on_the_page_is_escaped() -> None:
    grant = model.describe(_consent(ConsentKind.ACCOUNT_ACCESS, {}))
    account = AccountChoice('acc_"><img src=x>', HOSTILE, "GBP")
    for stage in Stage:
        view = PageView(
            stage,
            _pending(HOSTILE),
            'urn:"><b>',
            grant,
            HOSTILE,
            totp_enrolled=True,
            accounts=(account,),
            csrf_token="t" * 43 if stage is Stage.DECIDE else None,
        )
        html = render.page(view).decode()
        assert "<script>alert" not in html
        assert "<img" not in html
        assert "<b>" not in html
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/oauth2/consent.js" defer>']
        assert f'data-stage="{stage.value}"' in html
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&amp;" in html
    error = render.error_page("consent_state", HOSTILE, "/oauth2/authorize?x=%22").decode()
    assert "This consent cannot be decided any more." in error
    unknown = render.error_page("something_new", HOSTILE).decode()
    assert "<script>alert" not in unknown
    with pytest.raises(AssertionError):
        render.error_page("consent_state", "x", "//evil.example/")


def test_one_account_kinds_offer_radios_and_access_offers_checkboxes() -> None:
    grant = model.describe(_consent(ConsentKind.ACCOUNT_ACCESS, {}))
    accounts = (AccountChoice("acc_1", None, "GBP"), AccountChoice("acc_2", "Travel", "EUR"))
    for kind, shape in (
        (ConsentKind.ACCOUNT_ACCESS, "checkbox"),
        (ConsentKind.FUNDS_CONFIRMATION, "radio"),
        (ConsentKind.DOMESTIC_PAYMENT, "radio"),
    ):
        view = PageView(
            Stage.DECIDE, _pending("T", kind), "u", grant, "acme", accounts=accounts, csrf_token="t"
        )
        html = render.page(view).decode()
        assert html.count(f'type="{shape}"') == 2
        assert "Account (GBP, ending acc_1)" in html
        assert "Travel (EUR, ending acc_2)" in html
    empty = PageView(Stage.DECIDE, _pending("T"), "u", grant, "acme", csrf_token="t")
    html = render.page(empty).decode()
    assert 'id="no-accounts"' in html
    assert 'value="approve" disabled' in html


def test_a_payments_reference_and_a_tpps_name_are_shown_escaped() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    initiation = {
        "InstructedAmount": {"Amount": "1.00", "Currency": "GBP"},
        "RemittanceInformation": {"Unstructured": [hostile, HOSTILE]},
    }
    grant = model.describe(_consent(ConsentKind.DOMESTIC_PAYMENT, {"Initiation": initiation}))
    view = PageView(Stage.SIGN_IN, _pending(hostile, ConsentKind.DOMESTIC_PAYMENT), "urn:x",
                    grant, "acme")  # fmt: skip
    html = render.page(view).decode()
    assert "<img" not in html
    assert "<script>alert" not in html
    assert "&lt;img src=x onerror=alert(1)&gt; / &lt;script&gt;" in html
