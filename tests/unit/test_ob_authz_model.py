"""The authorization server's pure rules (openbanking/authz/model.py): forms, the parameters of
a pushed authorization request and of a token request, client credentials, secrets, the
authorization response, the Authorization header of a resource request, and the declarations
of its errors."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.errors import CORE_ERRORS, ErrorCatalogue, InvalidRequest, oauth_text
from strongroom.openbanking.authz import model
from strongroom.openbanking.authz.errors import (
    AUTHZ_ERRORS,
    InvalidRequestUri,
    InvalidScope,
    TokenRefused,
    UnsupportedGrantType,
    UnsupportedResponseType,
)
from strongroom.openbanking.authz.model import (
    ClientGrant,
    CodeGrant,
    Endpoints,
    PushedRequest,
    RefreshGrant,
)
from strongroom.openbanking.clientauth import CLIENT_ASSERTION_TYPE
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.errors import OPENBANKING_JOSE_ERRORS, InvalidClient
from strongroom.openbanking.pkce import s256_challenge
from strongroom.tenancy.errors import TENANCY_ERRORS
from tests.support.ob_authz import REDIRECT_URI, new_tpp

TPP = new_tpp("tpp_unit_0001", scopes=frozenset({"accounts", "payments"}))
CLIENT = TPP.registered()
CHALLENGE = s256_challenge("v" * 43)


def pushed(**overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        "response_type": "code",
        "client_id": CLIENT.id,
        "redirect_uri": REDIRECT_URI,
        "scope": "accounts",
        "state": "af0ifjsldkj",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "consent_id": "aac_0001",
        **overrides,
    }
    return {k: v for k, v in form.items() if v is not None}


# -- errors ----------------------------------------------------------------------------------


def test_every_error_class_is_declared_with_its_status() -> None:
    catalogue = ErrorCatalogue(CORE_ERRORS, OPENBANKING_JOSE_ERRORS, AUTHZ_ERRORS, TENANCY_ERRORS)
    for cls in (
        UnsupportedGrantType,
        UnsupportedResponseType,
        InvalidScope,
        InvalidRequestUri,
        TokenRefused,
    ):
        assert catalogue[cls.code].status == cls.status, cls


def test_www_authenticate_names_the_error_and_quotes_nothing_unsafe() -> None:
    refused = TokenRefused('a "quoted" \\ détail', error="invalid_token")
    assert refused.www_authenticate == (
        'DPoP error="invalid_token", error_description="a ?quoted? ? d?tail", '
        'algs="PS256 ES256 EdDSA"'
    )
    assert oauth_text("ok ~!#[]") == "ok ~!#[]"
    with pytest.raises(AssertionError):
        TokenRefused("x", error="server_error")


# -- secrets ---------------------------------------------------------------------------------


def test_secrets_are_32_random_bytes_and_stored_as_their_digest() -> None:
    made = {model.new_secret() for _ in range(100)}
    assert len(made) == 100
    assert all(model.is_secret(s) and len(s) == 43 for s in made)
    secret = next(iter(made))
    assert model.digest(secret) != secret
    assert model.digest(secret) == model.digest(secret)
    assert len(model.digest(secret)) == 43
    request_uri, key = model.new_request_uri()
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    assert model.request_uri_digest(request_uri) == key
    for bad in ("urn:ietf:params:oauth:request_uri:short", "https://x", None, 7):
        with pytest.raises(InvalidRequest):
            model.request_uri_digest(bad)


# -- forms -----------------------------------------------------------------------------------


def test_a_form_parses_and_drops_empty_values() -> None:
    form = model.parse_form(b"grant_type=client_credentials&scope=&x=a+b%2Bc")
    assert form == {"grant_type": "client_credentials", "x": "a b+c"}
    assert model.parse_form(b"") == {}


@pytest.mark.parametrize(
    "body",
    [
        b"a=1&a=2",
        b"a=1&b=%00",
        b"a=%ff",
        "a=é".encode(),
        b"a=" + b"x" * (model.FORM_VALUE_CHARS_MAX + 1),
        b"x" * (model.FORM_BYTES_MAX + 1),
        b"&".join(b"p%d=1" % n for n in range(model.FORM_FIELDS_MAX + 1)),
        b"n" * (model.ID_CHARS_MAX + 1) + b"=1",
        b"a=1&&b=2",
    ],
)
def test_a_malformed_form_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidRequest):
        model.parse_form(body)


def test_the_form_media_type() -> None:
    assert model.media_type_is_form("application/x-www-form-urlencoded; charset=UTF-8")
    assert model.media_type_is_form("Application/X-WWW-Form-Urlencoded")
    assert not model.media_type_is_form("application/json")
    assert not model.media_type_is_form(None)


# -- client credentials ----------------------------------------------------------------------


def test_client_credentials_take_the_client_from_the_form_or_the_assertion() -> None:
    assertion = TPP.assertion("https://bank.example", 1_767_225_600)
    form = {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
    assert model.client_credentials(form).client_id == TPP.id  # its sub
    named = model.client_credentials({**form, "client_id": "tpp_other"})
    assert named.client_id == "tpp_other"  # the signature check refuses the mismatch later
    assert named.assertion == assertion


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"client_assertion_type": "urn:other", "client_assertion": "a.b.c"},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": "not a jws"},
        {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": "e30.e30.c2ln"},
        {
            "client_assertion_type": CLIENT_ASSERTION_TYPE,
            "client_assertion": "e30.e30.c2ln",
            "client_id": "bad id with spaces",
        },
    ],
)
def test_client_credentials_are_private_key_jwt_only(form: dict[str, str]) -> None:
    with pytest.raises(InvalidClient):
        model.client_credentials(form)


# -- pushed requests -------------------------------------------------------------------------


def test_a_pushed_request_parses() -> None:
    request = model.parse_pushed(pushed(dpop_jkt="A" * 43), CLIENT)
    assert request == PushedRequest(
        client_id=CLIENT.id,
        redirect_uri=REDIRECT_URI,
        scopes=frozenset({"accounts"}),
        state="af0ifjsldkj",
        code_challenge=CHALLENGE,
        consent_id="aac_0001",
        dpop_jkt="A" * 43,
    )
    assert PushedRequest.from_json(request.to_json()) == request
    assert model.parse_pushed(pushed(client_id=None), CLIENT).client_id == CLIENT.id
    model.check_consent_scope(request, ConsentKind.ACCOUNT_ACCESS)
    with pytest.raises(InvalidScope):
        model.check_consent_scope(request, ConsentKind.DOMESTIC_PAYMENT)


@pytest.mark.parametrize(
    ("overrides", "error", "param"),
    [
        ({"request_uri": "urn:x"}, InvalidRequest, "request_uri"),
        ({"request": "a.b.c"}, InvalidRequest, "request"),
        ({"client_id": "tpp_other"}, InvalidRequest, "client_id"),
        ({"response_type": None}, InvalidRequest, "response_type"),
        ({"response_type": "code id_token"}, UnsupportedResponseType, "response_type"),
        ({"redirect_uri": None}, InvalidRequest, "redirect_uri"),
        ({"redirect_uri": REDIRECT_URI + "/"}, InvalidRequest, "redirect_uri"),
        ({"redirect_uri": REDIRECT_URI.upper()}, InvalidRequest, "redirect_uri"),
        ({"scope": None}, InvalidScope, "scope"),
        ({"scope": "openid"}, InvalidScope, "scope"),
        ({"scope": "fundsconfirmations"}, InvalidScope, "scope"),  # not the client's
        ({"scope": "a" * 201}, InvalidScope, "scope"),
        ({"state": None}, InvalidRequest, "state"),
        ({"state": "tab\there"}, InvalidRequest, "state"),
        ({"state": "s" * (model.STATE_CHARS_MAX + 1)}, InvalidRequest, "state"),
        ({"code_challenge_method": "plain"}, InvalidRequest, "code_challenge_method"),
        ({"code_challenge_method": None}, InvalidRequest, "code_challenge_method"),
        ({"code_challenge": None}, InvalidRequest, "code_challenge"),
        ({"code_challenge": "short"}, InvalidRequest, "code_challenge"),
        ({"consent_id": None}, InvalidRequest, "consent_id"),
        ({"consent_id": "a b"}, InvalidRequest, "consent_id"),
        ({"dpop_jkt": "A" * 42}, InvalidRequest, "dpop_jkt"),
    ],
)
def test_a_pushed_request_is_refused(
    overrides: dict[str, str | None], error: type[Exception], param: str
) -> None:
    with pytest.raises(error) as caught:
        model.parse_pushed(pushed(**overrides), CLIENT)
    assert getattr(caught.value, "param", None) == param


# -- the authorization response --------------------------------------------------------------


def test_the_authorization_response_adds_to_the_query() -> None:
    params = {"code": "c", "state": "a b&c", "iss": "https://bank.example"}
    assert model.authorization_response("https://tpp.example/cb", params) == (
        "https://tpp.example/cb?code=c&state=a+b%26c&iss=https%3A%2F%2Fbank.example"
    )
    assert model.authorization_response("https://tpp.example/cb?x=1", {"error": "e"}) == (
        "https://tpp.example/cb?x=1&error=e"
    )


# -- token requests --------------------------------------------------------------------------


def test_the_grants_parse() -> None:
    code = {"grant_type": "authorization_code", "code": "c", "redirect_uri": "r"}
    assert model.parse_grant(code) == CodeGrant("c", "r", None)
    refresh = {"grant_type": "refresh_token", "refresh_token": "t", "scope": "accounts"}
    assert model.parse_grant(refresh) == RefreshGrant("t", frozenset({"accounts"}))
    assert model.parse_grant({"grant_type": "client_credentials"}) == ClientGrant(frozenset())


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({}, InvalidRequest),
        ({"grant_type": "password"}, UnsupportedGrantType),
        ({"grant_type": "implicit"}, UnsupportedGrantType),
        ({"grant_type": "authorization_code"}, InvalidRequest),
        ({"grant_type": "refresh_token"}, InvalidRequest),
        ({"grant_type": "client_credentials", "scope": "admin"}, InvalidScope),
    ],
)
def test_a_grant_is_refused(form: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        model.parse_grant(form)


def test_the_token_response_and_lifetimes() -> None:
    body = model.token_response("a", 300, frozenset({"payments", "accounts"}), None)
    assert body == {
        "access_token": "a",
        "token_type": "DPoP",
        "expires_in": 300,
        "scope": "accounts payments",
    }
    assert model.token_response("a", 1, frozenset({"accounts"}), "r")["refresh_token"] == "r"
    assert model.lifetime_end_us(1_000, 2) == 2_001_000
    assert model.lifetime_end_us(1_000, 2, None, 5_000, 9_000_000) == 5_000


# -- endpoints -------------------------------------------------------------------------------


def test_the_endpoints_and_metadata() -> None:
    endpoints = Endpoints("https://bank.example")
    assert endpoints.par == "https://bank.example/oauth2/par"
    assert endpoints.token == "https://bank.example/oauth2/token"
    assert endpoints.jwks == "https://bank.example/oauth2/jwks"
    found: dict[str, Any] = model.metadata(endpoints)
    assert found["issuer"] == "https://bank.example"
    assert found["require_pushed_authorization_requests"] is True
    assert found["code_challenge_methods_supported"] == ["S256"]
    for bad in ("https://bank.example/", "ftp://bank.example", "https://bank.example?x=1"):
        with pytest.raises(AssertionError):
            Endpoints(bad)


# -- resource requests -----------------------------------------------------------------------


def test_the_access_token_of_an_authorization_header() -> None:
    token = model.new_secret()
    assert model.access_token_of(f"DPoP {token}") == token
    assert model.access_token_of(f"dpop  {token} ") == token
    for header, error in (
        (None, None),
        ("", None),
        (f"Bearer {token}", "invalid_request"),
        (f"Basic {token}", "invalid_request"),
        ("DPoP", "invalid_token"),
        ("DPoP short", "invalid_token"),
    ):
        with pytest.raises(TokenRefused) as caught:
            model.access_token_of(header)
        assert caught.value.error == error
        assert caught.value.status == 401
