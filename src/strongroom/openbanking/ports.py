"""What open banking's parts see of each other: the TPP registry (tpp/), the authorization server
(authz/) and the consent resources (resources/), wired together in runtime.py. Pure types and
callables, so each part depends on no more than this.

- the authorization server looks a client up (ClientLookup) to check its assertions and redirect
  URIs, and a consent up (ConsentLookup) when a pushed request names one;
- the consent resources check a request's DPoP-bound access token through the authorization
  server (TokenCheck) and hand it a customer's decision (ConsentDecided);
- ids are unique in the deployment (core/ids.py prefixes), so a consent is found by its id
  alone; its tenant comes with it.

Scopes are the UK Open Banking ones: `accounts`, `payments`, `fundsconfirmations`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.jose import ClientJwks

# One authorization server per deployment (issuer: STRONGROOM_PUBLIC_BASE_URL, its endpoints at
# /.well-known/oauth-authorization-server and /oauth2/...); each tenant an account provider whose
# resources are the UK OB v4.0 paths under its own base (tenant: the tenant's name).
AUTHZ_PREFIX: Final = "/oauth2"
RESOURCE_BASE: Final = "/ob/{tenant}/open-banking/v4.0"

SCOPE_ACCOUNTS: Final = "accounts"
SCOPE_PAYMENTS: Final = "payments"
SCOPE_FUNDS: Final = "fundsconfirmations"
SCOPES: Final = frozenset({SCOPE_ACCOUNTS, SCOPE_PAYMENTS, SCOPE_FUNDS})
# The scope a consent kind is authorised under.
KIND_SCOPE: Final = {
    ConsentKind.ACCOUNT_ACCESS: SCOPE_ACCOUNTS,
    ConsentKind.DOMESTIC_PAYMENT: SCOPE_PAYMENTS,
    ConsentKind.FUNDS_CONFIRMATION: SCOPE_FUNDS,
}


@dataclass(frozen=True, slots=True)
class RegisteredClient:
    """An active TPP (tpp/): what the authorization server needs of it."""

    id: str
    name: str
    redirect_uris: tuple[str, ...]
    scopes: frozenset[str]
    jwks: ClientJwks


# A client by id; raises openbanking.errors' invalid_client when unknown or disabled.
ClientLookup = Callable[[str], RegisteredClient]


@dataclass(frozen=True, slots=True)
class ConsentRef:
    """A consent as the authorization server sees it."""

    id: str
    tenant_id: str
    client_id: str
    kind: ConsentKind
    status: ConsentStatus
    customer_id: str | None  # the PSU who decided it (None while AWAU)
    expires_at_us: int | None  # ExpirationDateTime, when it has one


# A consent by id; raises core.errors.NotFound when there is none.
ConsentLookup = Callable[[str], ConsentRef]


class Grant(StrEnum):
    CLIENT_CREDENTIALS = "client_credentials"  # the TPP itself: creates and reads consents
    AUTHORIZATION_CODE = "authorization_code"  # on a PSU's behalf, under one consent


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A checked access token: its DPoP proof verified for this request, bound to the proof's
    key (`jkt`), unexpired and unrevoked."""

    id: str  # the token's row id (never the token)
    client_id: str
    grant: Grant
    scopes: frozenset[str]
    jkt: str
    expires_at_us: int
    consent_id: str | None = None  # AUTHORIZATION_CODE only
    tenant_id: str | None = None  # AUTHORIZATION_CODE only: the consent's tenant
    customer_id: str | None = None  # AUTHORIZATION_CODE only: the PSU


# (Authorization header, DPoP header, method, full request URL without query) -> the token;
# raises the authorization server's refusals (401 invalid_token / invalid_dpop_proof).
TokenCheck = Callable[[str | None, str | None, str, str], AccessToken]
