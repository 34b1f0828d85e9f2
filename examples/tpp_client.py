"""A third-party provider (TPP) against a running Strongroom, end to end over HTTP.

    python examples/tpp_client.py --operator-key sk_... --tenant-key sk_... \
        [--base-url http://127.0.0.1:8000] [--tenant default]

It plays four parties, each with its own credentials:

- the deployment's operator (`--operator-key`, the `operator` role: tenants:admin of the system
  tenant) registers the TPP and its public key;
- the bank, a tenant (`--tenant-key`, an `admin` key of `--tenant`: `make run`'s dev key) sets
  up a test customer: a funded GBP account and an invited user with a password and TOTP;
- the TPP signs every request itself (private_key_jwt, DPoP, PKCE S256) and sees the customer
  only through the consent they give;
- the customer (PSU) goes through the consent page as a browser would: signs in, steps up with
  a TOTP code, reads the CSRF token and the accounts offered, and approves.

Standalone: httpx and joserfc only, nothing of Strongroom's own code. Prints one line per step;
exits 0 when every step did what it should, 1 with the server's answer otherwise.
docs/openbanking.md ("A TPP in one file") walks through it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeyParameters, KeySet
from joserfc.registry import HeaderParameter

REDIRECT_URI = "http://127.0.0.1:8910/callback"  # loopback: never served, the 303 is read
OB_BASE = "/ob/{tenant}/open-banking/v4.0"
PASSWORD = "correct horse battery staple"  # noqa: S105 (the test customer's, made here)
FUNDS_MINOR = 25_000  # 250.00 GBP
PAYMENT = {"Amount": "10.50", "Currency": "GBP"}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OB_CLAIMS = [f"http://openbanking.org.uk/{c}" for c in ("iat", "iss", "tan")]
FORM = {"content-type": "application/x-www-form-urlencoded"}


def say(who: str, what: str) -> None:
    print(f"{who + ':':<9} {what}", flush=True)


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        request = response.request
        # An OB API's 401 has no body: why it was refused is in WWW-Authenticate.
        why = response.text or response.headers.get("www-authenticate", "")
        sys.exit(f"{request.method} {request.url.path}: {response.status_code} {why}")
    return response


def check(ok: bool, why: str) -> None:
    """An expected failure (a wrong answer from the server), unlike an assert: exits 1."""
    if not ok:
        sys.exit(why)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- the TPP: its keys, assertions and DPoP proofs ---------------------------------------------


class Tpp:
    def __init__(self, base_url: str, tenant: str) -> None:
        params: KeyParameters = {"kid": "tpp-example-1", "use": "sig", "alg": "ES256"}
        self.key = ECKey.generate_key("P-256", parameters=params)
        self.dpop = ECKey.generate_key("P-256")  # a key of its own: tokens are bound to it
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.id = ""
        self.meta: dict[str, Any] = {}
        self.ob_base = OB_BASE.format(tenant=tenant)  # the bank's OB API

    def sign(self, header: dict[str, Any], claims: dict[str, Any], key: ECKey) -> str:
        return jws.serialize_compact({"alg": "ES256", **header}, json.dumps(claims), key)

    def auth(self) -> dict[str, str]:
        """private_key_jwt: an assertion for the issuer, good for a minute, used once."""
        now = int(time.time())
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": self.meta["issuer"],
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        assertion = self.sign({"kid": self.key.kid, "typ": "JWT"}, claims, self.key)
        return {
            "client_id": self.id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }

    def proof(self, method: str, url: str, token: str | None = None) -> str:
        """A DPoP proof for one request (RFC 9449): fresh for every call."""
        claims = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if token is not None:
            claims["ath"] = b64url(hashlib.sha256(token.encode()).digest())
        header = {"typ": "dpop+jwt", "jwk": self.dpop.as_dict(private=False)}
        return self.sign(header, claims, self.dpop)

    def endpoint(self, name: str) -> str:
        """The path of a metadata endpoint: requests go to --base-url, while the assertion's
        audience and the proofs name the issuer's URLs, as the server checks them."""
        return urlsplit(str(self.meta[name])).path

    def token(self, **form: str) -> dict[str, Any]:
        url = self.meta["token_endpoint"]
        proof = self.proof("POST", url)
        body = urlencode({**self.auth(), **form})
        sent = self.http.post(
            self.endpoint("token_endpoint"), content=body, headers={**FORM, "DPoP": proof}
        )
        answer: dict[str, Any] = expect(sent, 200).json()
        kind = answer["token_type"]
        check(kind == "DPoP", f"not a DPoP-bound token: {kind}")
        return answer

    def ob(
        self, method: str, path: str, token: str, body: Any = None, idempotent: bool = False
    ) -> httpx.Response:
        """A request to the bank's OB API: the DPoP-bound token and a proof naming its URL at
        the bank's public address, the issuer's. The request goes to --base-url and names the
        issuer's host (`Host`), so the URL the server expects is the proof's whether it takes
        it from its STRONGROOM_PUBLIC_BASE_URL or, without one, from the request: under
        `make run` the issuer is http://localhost:PORT while the demo calls 127.0.0.1."""
        issuer = str(self.meta["issuer"]).rstrip("/")
        url = f"{issuer}{self.ob_base}{path}"
        sent = {
            "Host": urlsplit(issuer).netloc,
            "Authorization": f"DPoP {token}",
            "DPoP": self.proof(method, url, token),
            "x-fapi-interaction-id": str(uuid.uuid4()),
        }
        if idempotent:  # a payment's POSTs: a retry with the same key is the same request
            sent["x-idempotency-key"] = uuid.uuid4().hex
        return self.http.request(method, f"{self.ob_base}{path}", json=body, headers=sent)

    def push(self, consent_id: str, scope: str) -> tuple[str, str, str]:
        """PAR: (request_uri, PKCE verifier, state); the code is bound to the DPoP key."""
        verifier = b64url(secrets.token_bytes(32))
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(16)
        form = {
            **self.auth(),
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": consent_id,
            "dpop_jkt": self.dpop.thumbprint(),
        }
        sent = self.http.post(
            self.endpoint("pushed_authorization_request_endpoint"),
            content=urlencode(form),
            headers=FORM,
        )
        pushed = expect(sent, 201).json()
        return pushed["request_uri"], verifier, state


# -- the customer: their authenticator app and their browser -------------------------------------


class Authenticator:
    """The customer's TOTP app (RFC 6238). The server takes a code of the previous, current or
    next 30-second step, and each step once, in increasing order: so the next code is the
    earliest unused step still safely inside that window (waiting when none is left)."""

    def __init__(self, otpauth_uri: str) -> None:
        query = parse_qs(urlsplit(otpauth_uri).query)
        text = query["secret"][0]
        self.secret = base64.b32decode(text + "=" * (-len(text) % 8))
        self.period = int(query.get("period", ["30"])[0])
        self.digits = int(query.get("digits", ["6"])[0])
        self.algorithm = query.get("algorithm", ["SHA1"])[0].lower()
        self.last = -1

    def code(self) -> str:
        while True:
            now = time.time()
            step = int(now // self.period)
            # The previous step, unless it ends before the server reads the code.
            earliest = step - 1 if now % self.period < self.period - 5 else step
            wanted = max(self.last + 1, earliest)
            if wanted <= step + 1:
                self.last = wanted
                mac = hmac.new(self.secret, wanted.to_bytes(8, "big"), self.algorithm).digest()
                offset = mac[-1] & 0x0F
                number = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFF_FFFF
                return str(number % 10**self.digits).zfill(self.digits)
            time.sleep((step + 1) * self.period - now + 0.1)


class Page(HTMLParser):
    """What the consent page says: its stage, what is asked, the form's fields, the accounts
    offered (id and label)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stage, self.asked = "", ""
        self.fields: dict[str, str] = {}
        self.accounts: list[list[str]] = []
        self.text: list[str] | None = None  # of the element being read
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.stage = a.get("data-stage", "")
        elif a.get("id") == "grant-title":
            self.text = []
        elif tag == "input" and a.get("name") == "account_id":
            self.accounts.append([a["value"], ""])
            self.text = []
        elif tag == "input" and a.get("type") == "hidden" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self.text is None:
            return
        if tag == "h2":
            self.asked = "".join(self.text).strip()
        elif tag == "label":
            self.accounts[-1][1] = "".join(self.text).strip()
        else:
            return
        self.text = None


class Customer:
    def __init__(self, base_url: str, tenant: str, email: str, app: Authenticator) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.tenant, self.email, self.app = tenant, email, app

    def open(self, url: str) -> Page:
        return Page(expect(self.http.get(url), 200).text)

    def approve(self, authorize_url: str) -> str:
        """From the authorization URL to the TPP's redirect URI, as a browser: the answer's
        Location (a 303), which the TPP would read at its callback."""
        page = self.open(authorize_url)
        say("customer", f"opened the consent page: {page.asked!r} (stage {page.stage})")
        if page.stage == "sign_in":
            body = {
                "tenant": self.tenant,
                "email": self.email,
                "password": PASSWORD,
                "totp": self.app.code(),
                "cookie": True,
            }
            signed_in = expect(self.http.post("/v1/auth/sessions", json=body), 201)
            # The HttpOnly, Secure cookie a browser would keep: sent by hand over plain http.
            cookie = next(iter(signed_in.cookies.jar))
            self.http.cookies.clear()
            self.http.headers["Cookie"] = f"{cookie.name}={cookie.value}"
            page = self.open(authorize_url)
            say("customer", f"signed in with password and TOTP (stage {page.stage})")
        if page.stage == "step_up":
            expect(self.http.post("/v1/auth/step-up", json={"totp": self.app.code()}), 200)
            page = self.open(authorize_url)
            say("customer", f"stepped up with a TOTP code (stage {page.stage})")
        check(page.stage == "decide" and bool(page.accounts), f"cannot decide: {page.stage}")
        chosen = page.accounts[0]
        say("customer", f"{len(page.accounts)} account(s) offered; approved {chosen[0]}")
        form = {**page.fields, "account_id": chosen[0], "decision": "approve"}
        decided = self.http.post(
            "/oauth2/authorize/decision", content=urlencode(form), headers=FORM
        )
        return expect(decided, 303).headers["location"]


# -- the bank (a tenant) and the operator --------------------------------------------------------


def bank_customer(base_url: str, key: str, tenant: str) -> tuple[str, Authenticator]:
    """A customer with a GBP account funded from the bank's settlement account, and their
    user: invited, with a password set from the invitation and TOTP enrolled."""
    bank = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    customer = expect(bank.post("/v1/customers", json={"name": "Ada Lovelace"}), 201).json()["id"]
    ledger = expect(bank.post("/v1/ledgers", json={"name": "TPP example"}), 201).json()["id"]
    settlement = {
        "ledger_id": ledger,
        "asset": "GBP",
        "normal_balance": "debit",
        "name": "settlement",
    }
    everyday = {
        "ledger_id": ledger,
        "asset": "GBP",
        "normal_balance": "credit",
        "name": "Everyday",
        "customer_id": customer,
        "flags": ["debits_must_not_exceed_credits"],
    }
    source = expect(bank.post("/v1/accounts", json=settlement), 201).json()["id"]
    account = expect(bank.post("/v1/accounts", json=everyday), 201).json()["id"]
    deposit = {
        "ledger_id": ledger,
        "debit_account_id": source,
        "credit_account_id": account,
        "amount": FUNDS_MINOR,
    }
    moved = bank.post("/v1/transfers", json=deposit, headers={"Idempotency-Key": uuid.uuid4().hex})
    check(expect(moved, 201).json()["status"] == "posted", "the deposit did not post")
    say("bank", f"customer {customer}: account {account} funded with {FUNDS_MINOR / 100:.2f} GBP")

    email = f"ada.{secrets.token_hex(4)}@example.com"
    user = {"email": email, "role": "customer", "customer_id": customer, "invite": True}
    invitation = expect(bank.post("/v1/users", json=user), 201).json()["invitation"]
    person = httpx.Client(base_url=base_url, timeout=30)
    accepted = {"token": invitation, "password": PASSWORD}
    expect(person.post("/v1/auth/invitations", json=accepted), 200)
    app = _enrol_totp(person, {"tenant": tenant, "email": email, "password": PASSWORD})
    say("bank", "invited the customer's user: password set from the invitation, TOTP enrolled")
    return email, app


def _enrol_totp(person: httpx.Client, sign_in: dict[str, str]) -> Authenticator:
    signed_in = person.post("/v1/auth/sessions", json=sign_in)
    tenant = sign_in["tenant"]
    check(signed_in.status_code != 401, f"the user is not in {tenant!r}: is --tenant-key its key?")
    session = expect(signed_in, 201).json()["token"]
    bearer = {"Authorization": f"Bearer {session}"}
    uri = expect(person.post("/v1/auth/totp", headers=bearer), 201).json()["otpauth_uri"]
    app = Authenticator(uri)
    expect(person.post("/v1/auth/totp/confirm", json={"code": app.code()}, headers=bearer), 200)
    expect(person.delete("/v1/auth/sessions/current", headers=bearer), 200)
    return app


def register(tpp: Tpp, key: str) -> None:
    public = tpp.key.as_dict(private=False)
    body = {
        "name": "Budget App (example)",
        "redirect_uris": [REDIRECT_URI],
        "jwks": {"keys": [public]},
    }
    sent = tpp.http.post(
        "/v1/openbanking/clients", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    client = expect(sent, 201).json()
    tpp.id = client["id"]
    say("operator", f"registered the TPP as {tpp.id} (scopes {' '.join(client['scopes'])})")


# -- the flows -----------------------------------------------------------------------------------


def authorize(tpp: Tpp, customer: Customer, consent_id: str, scope: str) -> dict[str, Any]:
    """PAR, the customer's approval, the code exchanged: the customer's tokens."""
    request_uri, verifier, state = tpp.push(consent_id, scope)
    say("tpp", "pushed the authorization request (PKCE S256, dpop_jkt)")
    query = urlencode({"client_id": tpp.id, "request_uri": request_uri})
    location = customer.approve(f"{tpp.endpoint('authorization_endpoint')}?{query}")
    check(location.startswith(REDIRECT_URI + "?"), f"redirected elsewhere: {location}")
    answer = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    check("code" in answer, f"no code: {answer.get('error')}")
    check(answer.get("state") == state, "the state came back changed")
    check(answer.get("iss") == tpp.meta["issuer"], "the answer names another issuer")
    say("tpp", "redirected with code, state and iss (state and iss checked)")
    tokens = tpp.token(
        grant_type="authorization_code",
        code=answer["code"],
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    refresh = ", and a refresh token" if "refresh_token" in tokens else ""
    say("tpp", f"code exchanged: a DPoP-bound access token for {tokens['expires_in']} s{refresh}")
    return tokens


def read_accounts(tpp: Tpp, token: str) -> None:
    for account in expect(tpp.ob("GET", "/aisp/accounts", token), 200).json()["Data"]["Account"]:
        say(
            "tpp",
            f"account {account['AccountId']} {account.get('Nickname', '')} "
            f"{account['Currency']} {account['Status']}",
        )


def read_balances(tpp: Tpp, token: str) -> None:
    for balance in expect(tpp.ob("GET", "/aisp/balances", token), 200).json()["Data"]["Balance"]:
        amount = balance["Amount"]
        say(
            "tpp",
            f"balance {balance['AccountId']} {balance['Type']} {amount['Amount']} "
            f"{amount['Currency']} {balance['CreditDebitIndicator']}",
        )


def verify_signature(tpp: Tpp, response: httpx.Response) -> bool:
    """The bank's x-jws-signature over the body (detached, PS256, OB's three claims in crit),
    checked with the keys at the metadata's jwks_uri; False where the answer has none."""
    signature = response.headers.get("x-jws-signature")
    if signature is None or "jwks_uri" not in tpp.meta:
        return False
    published = expect(tpp.http.get(urlsplit(tpp.meta["jwks_uri"]).path), 200).json()
    claims = {c: HeaderParameter(c, "int" if c.endswith("iat") else "str") for c in OB_CLAIMS}
    registry = jws.JWSRegistry(header_registry=claims, algorithms=["PS256"])
    header, _, mac = signature.partition("..")
    try:
        compact = f"{header}.{b64url(response.content)}.{mac}"
        jws.deserialize_compact(compact, KeySet.import_key_set(published), registry=registry)
    except JoseError as exc:
        sys.exit(f"the bank's x-jws-signature does not verify: {exc.error}")
    return True


def pay(tpp: Tpp, customer: Customer, ais_token: str) -> bool:
    """A domestic payment of PAYMENT to a payee's sort code and account number, from the
    account the customer chooses; False where the server has no payments yet (a 404)."""
    token = tpp.token(grant_type="client_credentials", scope="payments")["access_token"]
    initiation = {
        "InstructionIdentification": secrets.token_hex(8),
        "EndToEndIdentification": "example-rent",
        "InstructedAmount": PAYMENT,
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.SortCodeAccountNumber",
            "Identification": "08080021325698",
            "Name": "Bob's Flats",
        },
        "RemittanceInformation": {"Unstructured": ["Rent"]},
    }
    body = {"Data": {"Initiation": initiation}, "Risk": {}}
    made = tpp.ob("POST", "/pisp/domestic-payment-consents", token, body, idempotent=True)
    if made.status_code == 404:
        return False
    consent = expect(made, 201).json()["Data"]
    consent_id = consent["ConsentId"]
    say(
        "tpp",
        f"domestic payment consent {consent_id} for {PAYMENT['Amount']} GBP ({consent['Status']})",
    )
    tokens = authorize(tpp, customer, consent_id, "payments")
    order = {"Data": {"ConsentId": consent_id, "Initiation": initiation}, "Risk": {}}
    paid = tpp.ob("POST", "/pisp/domestic-payments", tokens["access_token"], order, True)
    status = expect(paid, 201).json()["Data"]["Status"]
    signed = "signature verified" if verify_signature(tpp, paid) else "unsigned"
    say("tpp", f"payment submitted: status {status} ({signed})")
    read_balances(tpp, ais_token)
    return True


def main() -> None:
    try:
        run()
    except httpx.TransportError as exc:  # no server there: a sentence, not a traceback
        url = exc.request.url
        sys.exit(f"cannot reach {url.scheme}://{url.netloc.decode()}: {exc} (is it serving?)")


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--operator-key", required=True, help="tenants:admin (role operator)")
    parser.add_argument("--tenant-key", required=True, help="an admin key of the tenant")
    parser.add_argument("--tenant", default="default", help="the bank: a tenant's name")
    args = parser.parse_args()

    tpp = Tpp(args.base_url, args.tenant)
    say("tpp", "generated its EC P-256 signing key (kid tpp-example-1) and a DPoP key")
    tpp.meta = expect(tpp.http.get("/.well-known/oauth-authorization-server"), 200).json()
    say(
        "tpp",
        f"discovered issuer {tpp.meta['issuer']} "
        f"(PAR required: {tpp.meta['require_pushed_authorization_requests']})",
    )
    provider = tpp.http.get(f"{tpp.ob_base}/aisp/accounts")  # 401 without a token, if it exists
    check(provider.status_code != 404, f"no tenant {args.tenant!r} on this server (--tenant)")
    register(tpp, args.operator_key)
    email, app = bank_customer(args.base_url, args.tenant_key, args.tenant)
    customer = Customer(args.base_url, args.tenant, email, app)

    token = tpp.token(grant_type="client_credentials", scope="accounts")["access_token"]
    say("tpp", "client credentials token (private_key_jwt, DPoP-bound)")
    permissions = [
        "ReadAccountsBasic",
        "ReadBalances",
        "ReadTransactionsBasic",
        "ReadTransactionsCredits",
        "ReadTransactionsDebits",
    ]
    body = {"Data": {"Permissions": permissions}, "Risk": {}}
    consent = expect(tpp.ob("POST", "/aisp/account-access-consents", token, body), 201).json()
    say(
        "tpp",
        f"account access consent {consent['Data']['ConsentId']} ({consent['Data']['Status']})",
    )
    tokens = authorize(tpp, customer, consent["Data"]["ConsentId"], "accounts")
    read_accounts(tpp, tokens["access_token"])
    refreshed = tpp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    check(refreshed["refresh_token"] != tokens["refresh_token"], "the refresh token was kept")
    say("tpp", "refreshed: a new access token, and the refresh token rotated")
    read_balances(tpp, refreshed["access_token"])

    if not pay(tpp, customer, refreshed["access_token"]):
        say("tpp", "payments are not available on this server (404): done after the reads")


if __name__ == "__main__":
    main()
