"""Request and response bodies of the operator's open banking client routes (pydantic,
strict). The bounds here are the documented maxima; the rules themselves are model.py's,
applied alike to the API and the CLI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.clock import Timestamp
from strongroom.openbanking.tpp.model import (
    JWK_KID_LENGTH_MAX,
    JWK_MEMBER_LENGTH_MAX,
    JWKS_KEYS_MAX,
    NAME_LENGTH_MAX,
    REDIRECT_URI_LENGTH_MAX,
    REDIRECT_URIS_MAX,
    SOFTWARE_ID_LENGTH_MAX,
)

Member = Annotated[str | None, Field(max_length=JWK_MEMBER_LENGTH_MAX)]
Word = Annotated[str | None, Field(max_length=16)]


class OpenbankingClientJwk(BaseModel):
    """A public signing key (RFC 7517): EC P-256, RSA of 2048 to 4096 bits, or OKP Ed25519."""

    model_config = ConfigDict(extra="forbid", strict=True)

    kty: str = Field(max_length=8, description="EC, RSA or OKP")
    kid: str | None = Field(
        default=None, max_length=JWK_KID_LENGTH_MAX, description="required, unique in the set"
    )
    use: Word = Field(default=None, description="sig, or absent")
    alg: Word = Field(default=None, description="PS256 (RSA), ES256 (EC) or EdDSA (OKP), or absent")
    crv: Word = Field(default=None, description="P-256 (EC) or Ed25519 (OKP)")
    x: Member = None
    y: Member = None
    n: Member = None
    e: Member = None
    # Private key material: read only to be refused by name (400 jwks_private_key).
    d: Member = Field(default=None, description="refused: private key material")
    p: Member = Field(default=None, description="refused: private key material")
    q: Member = Field(default=None, description="refused: private key material")
    dp: Member = Field(default=None, description="refused: private key material")
    dq: Member = Field(default=None, description="refused: private key material")
    qi: Member = Field(default=None, description="refused: private key material")
    k: Member = Field(default=None, description="refused: a symmetric key")


class OpenbankingClientJwks(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    keys: list[OpenbankingClientJwk] = Field(
        max_length=JWKS_KEYS_MAX, description="1 to 10 public keys"
    )


class OpenbankingClientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=NAME_LENGTH_MAX)
    software_id: str | None = Field(
        default=None,
        max_length=SOFTWARE_ID_LENGTH_MAX,
        description="the TPP's software statement id, if it has one: A-Z, a-z, 0-9, '.', '_', '-'",
    )
    redirect_uris: list[Annotated[str, Field(max_length=REDIRECT_URI_LENGTH_MAX)]] = Field(
        max_length=REDIRECT_URIS_MAX,
        description="1 to 10 unique absolute https URIs without a fragment (http only for "
        "127.0.0.1, [::1] or localhost, for development), matched exactly",
    )
    scopes: list[Annotated[str, Field(max_length=32)]] | None = Field(
        default=None,
        max_length=8,
        description="what the TPP may ask consent for: accounts, payments, fundsconfirmations "
        "(all three when absent)",
    )
    jwks: OpenbankingClientJwks


class OpenbankingClientJwksUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    jwks: OpenbankingClientJwks


class OpenbankingClientJwksOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[dict[str, str]]


class OpenbankingClientOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["openbanking_client"]
    name: str
    software_id: str | None
    redirect_uris: list[str]
    scopes: list[str]
    jwks: OpenbankingClientJwksOut  # public keys only
    status: Literal["active", "disabled"]
    created_at: Timestamp
    created_by: str  # the actor: api_key:<id>, user:<id>, cli
    updated_at: Timestamp


class OpenbankingClientList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    object: Literal["list"]
    data: list[OpenbankingClientOut]
    has_more: bool
