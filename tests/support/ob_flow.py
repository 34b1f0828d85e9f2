"""A TPP driving Strongroom's open banking over HTTP, as a real one would: a client credentials
token, a consent created at the tenant's OB API, a pushed authorization request
(private_key_jwt, PKCE S256, `dpop_jkt`), the code exchanged at the token endpoint (with the
verifier and a DPoP proof), and resource reads with the DPoP-bound token. It speaks through a
`send(method, path, content=..., headers=...)` callable: the in-process test client
(tests/e2e/http_support.Api.request) or an httpx client of a served process."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from strongroom.openbanking.authz import model
from strongroom.openbanking.ports import RESOURCE_BASE
from tests.support.ob_authz import DpopKey, Tpp, pkce_pair

Send = Callable[..., httpx.Response]
FORM = {"content-type": "application/x-www-form-urlencoded"}
PERMISSIONS = ("ReadAccountsBasic", "ReadBalances", "ReadTransactionsBasic",
               "ReadTransactionsCredits", "ReadTransactionsDebits")  # fmt: skip


def public_jwks(tpp: Tpp) -> dict[str, Any]:
    """The JWK set a TPP registers: its signing key's public half."""
    return {"keys": [{**tpp.key.as_dict(private=False), "kid": tpp.kid, "use": "sig"}]}


def redirect_params(url: str) -> dict[str, str]:
    """The query of an authorization response, each parameter once."""
    found = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in found.values()), url
    return {k: v[0] for k, v in found.items()}


@dataclass
class Pushed:
    request_uri: str
    verifier: str
    state: str
    redirect_uri: str


@dataclass
class TppAgent:
    """A registered TPP (`tpp`, its id the registry's) at the server whose issuer is `issuer`
    (the base of every URL a proof or an assertion names)."""

    tpp: Tpp
    issuer: str
    send: Send
    dpop: DpopKey = field(default_factory=DpopKey)

    @staticmethod
    def now_s() -> int:
        return int(time.time())

    def post_form(
        self, path: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.send(
            "POST", path, content=urlencode(form).encode(), headers={**FORM, **(headers or {})}
        )

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        url = self.issuer + model.TOKEN_PATH
        proof = self.dpop.proof("POST", url, self.now_s())
        full = {**self.tpp.auth(url, self.now_s()), **form}
        response = self.post_form(model.TOKEN_PATH, full, {"DPoP": proof})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def client_token(self, scope: str = "accounts") -> str:
        return str(self.token({"grant_type": "client_credentials", "scope": scope})["access_token"])

    def ob(
        self, method: str, tenant: str, path: str, token: str, body: Any = None
    ) -> httpx.Response:
        """A request to the tenant's OB API with the DPoP-bound `token` and a fresh proof."""
        full_path = RESOURCE_BASE.format(tenant=tenant) + path
        proof = self.dpop.proof(method, self.issuer + full_path, self.now_s(), access_token=token)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        content = None
        if body is not None:
            headers["content-type"] = "application/json"
            content = json.dumps(body).encode()
        return self.send(method, full_path, content=content, headers=headers)

    def account_access_consent(
        self, tenant: str, permissions: tuple[str, ...] = PERMISSIONS
    ) -> str:
        body = {"Data": {"Permissions": list(permissions)}, "Risk": {}}
        response = self.ob(
            "POST", tenant, "/aisp/account-access-consents", self.client_token(), body
        )
        assert response.status_code == 201, response.text
        return str(response.json()["Data"]["ConsentId"])

    def push(self, consent_id: str, scope: str = "accounts", **extra: str) -> Pushed:
        """A pushed authorization request for the consent, bound to this agent's DPoP key."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(12)
        redirect_uri = self.tpp.redirect_uris[0]
        form = {
            **self.tpp.auth(self.issuer, self.now_s()),
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
            "dpop_jkt": self.dpop.jkt,
            **extra,
        }
        response = self.post_form(model.PAR_PATH, form)
        assert response.status_code == 201, response.text
        return Pushed(response.json()["request_uri"], verifier, state, redirect_uri)

    def authorize_path(self, pushed: Pushed) -> str:
        query = urlencode({"client_id": self.tpp.id, "request_uri": pushed.request_uri})
        return f"{model.AUTHORIZE_PATH}?{query}"

    def exchange(self, code: str, pushed: Pushed) -> dict[str, Any]:
        return self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": pushed.redirect_uri,
                "code_verifier": pushed.verifier,
            }
        )
