"""Public JWKs for the open banking tests, made with joserfc: one of each key type the TPP
registry accepts, and a JWK set of them."""

from __future__ import annotations

import functools
from typing import Any

from joserfc.jwk import ECKey, OKPKey, RSAKey


def ec_key(kid: str = "ec-1", **members: str) -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=False).as_dict()
    return {**key, "kid": kid, **members}


@functools.cache
def _rsa(bits: int) -> dict[str, Any]:
    key: dict[str, Any] = RSAKey.generate_key(bits, private=False).as_dict()
    return key


def rsa_key(kid: str = "rsa-1", **members: str) -> dict[str, Any]:
    return {**_rsa(2048), "kid": kid, **members}


def okp_key(kid: str = "okp-1", **members: str) -> dict[str, Any]:
    key = OKPKey.generate_key("Ed25519", private=False).as_dict()
    return {**key, "kid": kid, **members}


def private_ec_key(kid: str = "leaked") -> dict[str, Any]:
    key: dict[str, Any] = ECKey.generate_key("P-256", private=True).as_dict(private=True)
    return {**key, "kid": kid}


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys) or [ec_key()]}
