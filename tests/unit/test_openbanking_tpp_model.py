"""The TPP registry's checks (openbanking/tpp/model.py), with no database: what registers a
client, and every refusal with its code and the field it names."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from strongroom.core.errors import InvalidRequest
from strongroom.openbanking.tpp.model import (
    JWK_KID_LENGTH_MAX,
    JWK_MEMBER_LENGTH_MAX,
    JWKS_KEYS_MAX,
    NAME_LENGTH_MAX,
    REDIRECT_URI_LENGTH_MAX,
    REDIRECT_URIS_MAX,
    SOFTWARE_ID_LENGTH_MAX,
    TppClient,
    TppScope,
    TppStatus,
    check_jwks,
    check_name,
    check_redirect_uris,
    check_scopes,
    check_software_id,
    parse_jwks_text,
    registration,
)
from tests.support.jwks import ec_key, jwks, okp_key, private_ec_key, rsa_key

CB = "https://tpp.example.com/cb"


def refused(code: str, param: str, check: Any, *args: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        check(*args)
    assert (caught.value.code, caught.value.param) == (code, param), caught.value
    return caught.value


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# -- what is accepted ---------------------------------------------------------------------


def test_a_registration_of_each_key_type_is_accepted_and_canonical() -> None:
    keys = [
        ec_key("a", use="sig", alg="ES256"),
        rsa_key("b", alg="PS256"),
        okp_key("c", alg="EdDSA"),
    ]
    checked = registration(
        "  Acme   Payments ",
        [CB, "http://127.0.0.1:8080/cb", "http://[::1]/cb", "http://localhost/cb"],
        {"keys": keys},
        scopes=["payments", "accounts", "payments"],
        software_id="abc.DEF_1-2",
    )
    assert checked.name == "Acme Payments"
    assert checked.software_id == "abc.DEF_1-2"
    assert checked.redirect_uris[0] == CB
    assert checked.scopes == {TppScope.ACCOUNTS, TppScope.PAYMENTS}
    assert checked.jwks.kids == ("a", "b", "c")
    assert len(set(checked.jwks.thumbprints)) == 3
    assert json.loads(checked.jwks.text) == {"keys": keys}
    assert checked.jwks.text == json.dumps({"keys": keys}, sort_keys=True, separators=(",", ":"))


def test_no_scopes_means_every_scope_and_no_software_id_is_none() -> None:
    assert check_scopes(None) == frozenset(TppScope)
    assert check_software_id(None) is None


def test_a_client_parses_its_keys_and_shows_them() -> None:
    keys = jwks(ec_key("a"), rsa_key("b"))
    text = check_jwks(keys).text
    client = TppClient(
        "tpp_1", "Acme", None, text, (CB,), frozenset({TppScope.ACCOUNTS}),
        TppStatus.ACTIVE, 0, "cli", 1_000_000,
    )  # fmt: skip
    assert [k.kid for k in client.key_set().keys] == ["a", "b"]
    shown = client.public()
    assert shown["jwks"] == keys
    assert shown["scopes"] == ["accounts"]
    assert shown["updated_at"] == "1970-01-01T00:00:01Z"
    assert client.active


# -- name, software id, scopes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", "   ", None, 7, "x" * (NAME_LENGTH_MAX + 1), "a\x07b", "a\u202eb"]
)
def test_a_name_is_1_to_100_displayable_characters(name: object) -> None:
    refused("invalid_name", "name", check_name, name)


def test_a_name_of_100_characters_is_taken() -> None:
    assert check_name("x" * NAME_LENGTH_MAX) == "x" * NAME_LENGTH_MAX


@pytest.mark.parametrize("value", ["", "a b", "a/b", "é", "x" * (SOFTWARE_ID_LENGTH_MAX + 1), 5])
def test_a_software_id_is_short_and_plain(value: object) -> None:
    refused("invalid_software_id", "software_id", check_software_id, value)


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([], "scopes"),
        ("accounts", "scopes"),
        (["accounts", "cards"], "scopes[1]"),
        ([1], "scopes[0]"),
    ],
)
def test_scopes_are_a_non_empty_subset_of_the_three(value: object, param: str) -> None:
    refused("invalid_scope", param, check_scopes, value)


# -- redirect URIs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uris", "param"),
    [
        (CB, "redirect_uris"),
        ([], "redirect_uris"),
        ([f"{CB}/{i}" for i in range(REDIRECT_URIS_MAX + 1)], "redirect_uris"),
        ([CB, "https://b.example/cb", CB], "redirect_uris[2]"),
        ([None], "redirect_uris[0]"),
        ([""], "redirect_uris[0]"),
        ([CB + "/" + "x" * REDIRECT_URI_LENGTH_MAX], "redirect_uris[0]"),
        (["https://tpp.example.com/c b"], "redirect_uris[0]"),
        (["https://tpp.example.com/cé"], "redirect_uris[0]"),
        (["https://tpp.example.com\\@evil.example/cb"], "redirect_uris[0]"),
        ([CB + "#frag"], "redirect_uris[0]"),
        ([CB + "#"], "redirect_uris[0]"),
        (["/cb"], "redirect_uris[0]"),
        (["tpp.example.com/cb"], "redirect_uris[0]"),
        (["ftp://tpp.example.com/cb"], "redirect_uris[0]"),
        (["com.tpp.app:/cb"], "redirect_uris[0]"),
        (["https:///cb"], "redirect_uris[0]"),
        (["https://:443/cb"], "redirect_uris[0]"),
        (["https://user@tpp.example.com/cb"], "redirect_uris[0]"),
        (["https://tpp.example.com:99999/cb"], "redirect_uris[0]"),
        (["https://tpp.example.com:port/cb"], "redirect_uris[0]"),
        (["https://[::1/cb"], "redirect_uris[0]"),
        (["http://tpp.example.com/cb"], "redirect_uris[0]"),
        (["http://127.0.0.1.evil.example/cb"], "redirect_uris[0]"),
        (["http://localhost.evil.example/cb"], "redirect_uris[0]"),
        (["http://10.0.0.1/cb"], "redirect_uris[0]"),
    ],
)
def test_a_redirect_uri_is_absolute_https_without_a_fragment(uris: object, param: str) -> None:
    refused("invalid_redirect_uri", param, check_redirect_uris, uris)


def test_ten_redirect_uris_are_taken_and_kept_exactly() -> None:
    uris = [f"{CB}/{i}?a=1" for i in range(REDIRECT_URIS_MAX)]
    assert check_redirect_uris(uris) == tuple(uris)
    # Not normalised: compared later as exact strings.
    assert check_redirect_uris(["HTTPS://TPP.example.com/CB"]) == ("HTTPS://TPP.example.com/CB",)


# -- the JWK set ------------------------------------------------------------------------------


def _refused_jwks(value: object, param: str, code: str = "invalid_jwks") -> str:
    return refused(code, param, check_jwks, value).detail


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_key_material_is_refused_by_name(member: str) -> None:
    key = {**ec_key(), member: "AAAA"}
    detail = _refused_jwks(jwks(ec_key("ok"), key), f"jwks.keys[1].{member}", "jwks_private_key")
    assert "AAAA" not in detail


def test_a_whole_private_key_is_refused_and_not_echoed() -> None:
    key = private_ec_key()
    detail = _refused_jwks(jwks(key), "jwks.keys[0].d", "jwks_private_key")
    assert key["d"] not in detail


def test_a_symmetric_key_is_refused_as_private() -> None:
    _refused_jwks(jwks({"kty": "oct", "k": "c2VjcmV0", "kid": "s"}), "jwks.keys[0].k",
                  "jwks_private_key")  # fmt: skip


@pytest.mark.parametrize(
    ("value", "param"),
    [
        ([ec_key()], "jwks"),
        ("{}", "jwks"),
        ({"keys": [ec_key()], "extra": 1}, "jwks.extra"),
        ({}, "jwks.keys"),
        ({"keys": ec_key()}, "jwks.keys"),
        ({"keys": []}, "jwks.keys"),
        ({"keys": [ec_key(f"k{i}") for i in range(JWKS_KEYS_MAX + 1)]}, "jwks.keys"),
        ({"keys": ["a key"]}, "jwks.keys[0]"),
    ],
)
def test_a_jwk_set_is_an_object_of_1_to_10_keys(value: object, param: str) -> None:
    _refused_jwks(value, param)


def _without(key: dict[str, Any], member: str) -> dict[str, Any]:
    return {k: v for k, v in key.items() if k != member}


def _bits(bits: int) -> dict[str, Any]:
    return {**rsa_key(), "n": _b64((1 << (bits - 1)) | 1)}


@pytest.mark.parametrize(
    ("key", "param"),
    [
        (_without(ec_key(), "kty"), "jwks.keys[0].kty"),
        ({**ec_key(), "kty": "oct"}, "jwks.keys[0].kty"),
        ({**ec_key(), "kty": 1}, "jwks.keys[0].kty"),
        ({**ec_key(), "x5c": ["MIIB"]}, "jwks.keys[0].x5c"),
        ({**ec_key(), "n": "AQAB"}, "jwks.keys[0].n"),
        ({**rsa_key(), "crv": "P-256"}, "jwks.keys[0].crv"),
        ({**ec_key(), "key_ops": ["verify"]}, "jwks.keys[0].key_ops"),
        ({**ec_key(), "use": None}, "jwks.keys[0].use"),
        ({**ec_key(), "x": 5}, "jwks.keys[0].x"),
        (_without(ec_key(), "kid"), "jwks.keys[0].kid"),
        (ec_key(""), "jwks.keys[0].kid"),
        (ec_key("k" * (JWK_KID_LENGTH_MAX + 1)), "jwks.keys[0].kid"),
        (ec_key("a\nb"), "jwks.keys[0].kid"),
        (ec_key(use="enc"), "jwks.keys[0].use"),
        (ec_key(alg="RS256"), "jwks.keys[0].alg"),
        (ec_key(alg="HS256"), "jwks.keys[0].alg"),
        (ec_key(alg="none"), "jwks.keys[0].alg"),
        (ec_key(alg="PS256"), "jwks.keys[0].alg"),
        (rsa_key(alg="ES256"), "jwks.keys[0].alg"),
        (okp_key(alg="ES256"), "jwks.keys[0].alg"),
        (ec_key(crv="P-384"), "jwks.keys[0].crv"),
        (_without(ec_key(), "crv"), "jwks.keys[0].crv"),
        (okp_key(crv="X25519"), "jwks.keys[0].crv"),
        (okp_key(crv="Ed448"), "jwks.keys[0].crv"),
        (_without(ec_key(), "y"), "jwks.keys[0].y"),
        (_without(rsa_key(), "e"), "jwks.keys[0].e"),
        (ec_key(x="not+base64/"), "jwks.keys[0].x"),
        (ec_key(x="AAAA="), "jwks.keys[0].x"),
        (ec_key(x="AAAAA"), "jwks.keys[0].x"),
        (ec_key(x="A" * (JWK_MEMBER_LENGTH_MAX + 1)), "jwks.keys[0].x"),
        (_bits(1024), "jwks.keys[0].n"),
        (_bits(2047), "jwks.keys[0].n"),
        (_bits(4097), "jwks.keys[0].n"),
        ({**ec_key(), "y": ec_key()["x"]}, "jwks.keys[0]"),  # not on the curve
        (ec_key(x="AAAA"), "jwks.keys[0]"),
        (okp_key(x="AAAA"), "jwks.keys[0]"),
        (rsa_key(e="AA"), "jwks.keys[0]"),
    ],
)
def test_each_key_is_a_public_signing_key_that_loads(key: dict[str, Any], param: str) -> None:
    _refused_jwks(jwks(key), param)


def test_kids_are_unique_in_the_set() -> None:
    detail = _refused_jwks(jwks(ec_key("a"), rsa_key("b"), okp_key("a")), "jwks.keys[2].kid")
    assert "jwks.keys[0]" in detail


def test_an_unknown_members_name_is_echoed_clipped() -> None:
    long = "m" * 500
    error = refused("invalid_jwks", f"jwks.keys[0].{'m' * 64}...", check_jwks,
                    jwks({**ec_key(), long: "v"}))  # fmt: skip
    assert long not in error.detail


def test_a_jwks_file_that_is_not_json_is_invalid_jwks() -> None:
    refused("invalid_jwks", "jwks", parse_jwks_text, "{not json")
    assert parse_jwks_text('{"keys": []}') == {"keys": []}
