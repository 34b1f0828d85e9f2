"""The consent page's rules that need no database: its paths and headers, the authorization
request's query, the decision form, the CSRF token, the same-origin check, and what a consent
grants, in words. Pure: no database, no HTTP framework.

The CSRF token of a decision is an HMAC (SHA-256, under a key the key manager derives for this
purpose alone) of the session's id and the pushed request's handle: it binds one session to
one authorization, needs nothing stored, and is worth nothing to another session or for
another request. The session cookie is SameSite=Strict besides, and a browser that says
another origin sent the decision (Origin, Sec-Fetch-Site) is refused whatever it carries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlencode, urlsplit

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.openbanking.authz.model import (
    AUTHORIZE_PATH,
    FORM_BYTES_MAX,
    ID_CHARS_MAX,
    PendingAuthorization,
    form_pairs,
)
from strongroom.openbanking.consentpage.errors import Forged
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.model import Permission
from strongroom.openbanking.ports import AUTHZ_PREFIX
from strongroom.openbanking.resources.model import OB_CONSENT_ACCOUNTS_MAX, Consent

# -- routes ----------------------------------------------------------------------------------
DECISION_PATH: Final = f"{AUTHORIZE_PATH}/decision"
SCRIPT_PATH: Final = f"{AUTHZ_PREFIX}/consent.js"
STYLE_PATH: Final = f"{AUTHZ_PREFIX}/consent.css"
# The routes that answer HTML, their refusals included (an error page, never a redirect).
PAGE_PATHS: Final = (AUTHORIZE_PATH, DECISION_PATH)
# The route whose body is a form (http.middleware.BodyLimit lets it through).
FORM_PATHS: Final = (DECISION_PATH,)

# -- bounds ----------------------------------------------------------------------------------
# The decision form: its four fields and one account_id per account selected.
DECISION_SINGLE_FIELDS: Final = ("client_id", "request_uri", "csrf_token", "decision")
DECISION_FIELDS_MAX: Final = len(DECISION_SINGLE_FIELDS) + OB_CONSENT_ACCOUNTS_MAX
# The longest text of a consent's request the page shows (a name, a reference).
SHOWN_CHARS_MAX: Final = 140
CSRF_CHARS: Final = 43  # base64url of an HMAC-SHA256, unpadded
# The key manager's MAC purpose of the CSRF key (security.kms.KeyManager.mac).
CSRF_PURPOSE: Final = "openbanking.consent_page.csrf"
CSRF_KEY_INFO: Final = b"strongroom consent page csrf v1"

assert DECISION_FIELDS_MAX * (ID_CHARS_MAX + 16) + 2_000 <= FORM_BYTES_MAX

# -- headers ---------------------------------------------------------------------------------
_CSP_BASE: Final = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# An origin that may stand in a CSP source list as it is: no quote, space, comma or semicolon.
_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?")


def content_security_policy(form_targets: Sequence[str] = ()) -> str:
    """The page's policy: its own script and style only, no inline code, no framing, and
    forms that post to this origin only. `form_targets` are origins a form's answer may
    redirect to (the client's redirect URI's: browsers hold a redirect after a form post to
    form-action too)."""
    for target in form_targets:
        assert _ORIGIN.fullmatch(target), target
    form_action = " ".join(["'self'", *form_targets])
    return f"{_CSP_BASE}; form-action {form_action}"


def page_headers(redirect_uri: str | None = None) -> dict[str, str]:
    """The headers of every answer of the page (Cache-Control: no-store comes with every
    answer of the app: http.middleware.SECURITY_HEADERS). `Referrer-Policy: same-origin`:
    a browser sends the decision form's Origin (under no-referrer it would send `null`),
    and nothing of the page's address to the client's site."""
    target = origin_of(redirect_uri) if redirect_uri is not None else None
    return {
        "Content-Security-Policy": content_security_policy([target] if target else []),
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
    }


def origin_of(url: str | None) -> str | None:
    """The origin of an http(s) URL as a browser writes it in `Origin` (scheme://host[:port],
    lower case, the default port left out); None for anything else."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        shown = f"{shown}:{port}"
    origin = f"{scheme}://{shown}"
    return origin if _ORIGIN.fullmatch(origin) else None


# -- the authorization request ---------------------------------------------------------------


def authorization_params(query: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """(client_id, request_uri) of the authorization request's query: each exactly once
    (RFC 9126 section 4); any other parameter is ignored, as the pushed request holds them."""
    found: dict[str, str] = {}
    for name, value in query:
        if name not in ("client_id", "request_uri"):
            continue
        if name in found:
            raise InvalidRequest(f"{name} is given more than once", param=name)
        found[name] = value
    for name in ("client_id", "request_uri"):
        if not found.get(name):
            raise InvalidRequest(f"{name} is required", param=name)
        if len(found[name]) > FORM_BYTES_MAX:
            raise InvalidRequest(f"{name} is too long", param=name)
    return found["client_id"], found["request_uri"]


def authorize_url(client_id: str, request_uri: str) -> str:
    """The page's own relative address for this request (the way back after a refusal)."""
    return f"{AUTHORIZE_PATH}?{urlencode({'client_id': client_id, 'request_uri': request_uri})}"


# -- the decision ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    client_id: str
    request_uri: str
    csrf_token: str
    approve: bool
    account_ids: tuple[str, ...]  # in the order sent; none on a rejection


def parse_decision(body: bytes) -> Decision:
    """The decision form (application/x-www-form-urlencoded): client_id, request_uri,
    csrf_token and decision (`approve` or `reject`) once each, and an `account_id` per account
    selected (at most OB_CONSENT_ACCOUNTS_MAX; the consent service checks them). Refused
    (InvalidRequest): a body over FORM_BYTES_MAX or not ASCII, too many fields, a field twice
    or unknown, a NUL, a missing field, an account id that is not an id."""
    pairs = form_pairs(body, DECISION_FIELDS_MAX, "fields")
    single: dict[str, str] = {}
    accounts: list[str] = []
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequest("text may not contain the NUL character")
        if name == "account_id":
            if not value or len(value) > ID_CHARS_MAX:
                raise InvalidRequest("an account_id is not an account id", param="account_id")
            accounts.append(value)
        elif name in DECISION_SINGLE_FIELDS:
            if name in single:
                raise InvalidRequest(f"{name} is given more than once", param=name)
            single[name] = value
        else:
            raise InvalidRequest("the form has a field the page does not send")
    for name in DECISION_SINGLE_FIELDS:
        if not single.get(name):
            raise InvalidRequest(f"{name} is required", param=name)
    if single["decision"] not in ("approve", "reject"):
        raise InvalidRequest("decision is approve or reject", param="decision")
    approve = single["decision"] == "approve"
    return Decision(
        client_id=single["client_id"],
        request_uri=single["request_uri"],
        csrf_token=single["csrf_token"],
        approve=approve,
        account_ids=tuple(accounts) if approve else (),
    )


def csrf_token(key: bytes, session_id: str, handle: str) -> str:
    """The decision form's token for this session and this pushed request (its handle)."""
    assert len(key) >= 32
    mac = hmac.new(key, f"{session_id}\x1f{handle}".encode(), hashlib.sha256).digest()
    token = base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")
    assert len(token) == CSRF_CHARS
    return token


def csrf_matches(key: bytes, session_id: str, handle: str, sent: str) -> bool:
    """Whether `sent` is the token of this session and request (compared in constant time)."""
    if len(sent) != CSRF_CHARS or not sent.isascii():
        return False
    return hmac.compare_digest(csrf_token(key, session_id, handle).encode(), sent.encode())


def check_same_origin(origin: str | None, fetch_site: str | None, own: Collection[str]) -> None:
    """Refuses (Forged) a decision a browser says another site or origin sent: a
    `Sec-Fetch-Site` other than same-origin, or an `Origin` that is not one of `own` (`null`,
    from a sandboxed frame or an opaque origin, included). A client that sends neither (no
    browser) is left to the CSRF token."""
    if fetch_site is not None and fetch_site.strip().lower() != "same-origin":
        raise Forged("the decision came from another site or origin")
    if origin is not None and origin.strip().lower() not in own:
        raise Forged("the decision came from another origin")


# -- the page --------------------------------------------------------------------------------


class Stage(StrEnum):
    """What the page asks of whoever is at it."""

    SIGN_IN = "sign_in"  # no session: sign in (password and TOTP, or a passkey)
    OTHER_USER = "other_user"  # a staff user, or another tenant's customer: sign out
    STEP_UP = "step_up"  # the customer, not stepped up lately
    DECIDE = "decide"  # the customer, stepped up: choose accounts, approve or reject


@dataclass(frozen=True, slots=True)
class AccountChoice:
    """One of the customer's accounts the consent may be given (the consent service's rules:
    theirs, in the consent's tenant, in a currency OB can express; and open)."""

    id: str
    name: str | None
    currency: str

    @property
    def label(self) -> str:
        return f"{self.name or 'Account'} ({self.currency}, ending {self.id[-6:]})"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a consent asks for, in the customer's words."""

    title: str
    items: tuple[str, ...]
    details: tuple[tuple[str, str], ...]  # (label, value)
    expiry: str


@dataclass(frozen=True, slots=True)
class PageView:
    stage: Stage
    pending: PendingAuthorization
    request_uri: str  # as the user agent brought it (the decision form sends it back)
    grant: Grant
    tenant_name: str
    totp_enrolled: bool = False
    accounts: tuple[AccountChoice, ...] = ()
    csrf_token: str | None = None  # DECIDE only

    def __post_init__(self) -> None:
        assert (self.stage is Stage.DECIDE) == (self.csrf_token is not None)

    @property
    def several_accounts(self) -> bool:
        """An account access consent is given one or more accounts; the others exactly one."""
        return self.pending.consent_kind is ConsentKind.ACCOUNT_ACCESS


PERMISSION_WORDS: Final[Mapping[Permission, str]] = {
    Permission.READ_ACCOUNTS_BASIC: "the names and currencies of the accounts you choose",
    Permission.READ_ACCOUNTS_DETAIL: "their account numbers and sort codes",
    Permission.READ_BALANCES: "their balances",
    Permission.READ_BENEFICIARIES_BASIC: "the payees you saved",
    Permission.READ_BENEFICIARIES_DETAIL: "your saved payees' account details",
    Permission.READ_DIRECT_DEBITS: "your direct debits",
    Permission.READ_OFFERS: "offers on your accounts",
    Permission.READ_PAN: "your card numbers",
    Permission.READ_PARTY: "the account holders' details",
    Permission.READ_PARTY_PSU: "your own details as the account holder",
    Permission.READ_PRODUCTS: "the products your accounts are",
    Permission.READ_SCHEDULED_PAYMENTS_BASIC: "your scheduled payments",
    Permission.READ_SCHEDULED_PAYMENTS_DETAIL: "your scheduled payments' payee details",
    Permission.READ_STANDING_ORDERS_BASIC: "your standing orders",
    Permission.READ_STANDING_ORDERS_DETAIL: "your standing orders' payee details",
    Permission.READ_STATEMENTS_BASIC: "your statements",
    Permission.READ_STATEMENTS_DETAIL: "your statements in full",
    Permission.READ_TRANSACTIONS_BASIC: "your transactions",
    Permission.READ_TRANSACTIONS_CREDITS: "the money coming in",
    Permission.READ_TRANSACTIONS_DEBITS: "the money going out",
    Permission.READ_TRANSACTIONS_DETAIL: "your transactions in full (payees, references)",
}
assert set(PERMISSION_WORDS) == set(Permission)


def when(us: int) -> str:
    """An instant as the page shows it: `5 April 2025, 10:43 UTC`."""
    moment = clock.to_datetime(us)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _text(value: Any) -> str | None:
    """A string of the consent's request, cut to SHOWN_CHARS_MAX; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    return value if len(value) <= SHOWN_CHARS_MAX else value[: SHOWN_CHARS_MAX - 1] + "\u2026"


def _member(request: Mapping[str, Any], *path: str) -> str | None:
    found: Any = request
    for name in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(name)
    return _text(found)


def _lines(request: Mapping[str, Any], *path: str) -> str | None:
    """Text lines (RemittanceInformation.Unstructured: a list of strings, as the payment API
    takes it; or one string) in one line, cut to SHOWN_CHARS_MAX."""
    found: Any = request
    for name in path:
        if not isinstance(found, Mapping):
            return None
        found = found.get(name)
    if isinstance(found, list):
        found = " / ".join(line for line in found if isinstance(line, str) and line)
    return _text(found)


def _account(request: Mapping[str, Any], *path: str) -> str | None:
    """An OB account identification (SchemeName, Identification, Name) in one line."""
    identification = _member(request, *path, "Identification")
    if identification is None:
        return None
    name = _member(request, *path, "Name")
    scheme = _member(request, *path, "SchemeName")
    shown = f"{name}, {identification}" if name else identification
    return f"{shown} ({scheme})" if scheme else shown


def describe(consent: Consent) -> Grant:
    """What the consent grants, from its kind, its permissions and its request's Data."""
    request = consent.request
    expiry = (
        f"Until {when(consent.expires_at_us)}, unless you withdraw it before."
        if consent.expires_at_us is not None
        else "Until you withdraw it."
    )
    details: list[tuple[str, str]] = []
    if consent.kind is ConsentKind.ACCOUNT_ACCESS:
        first = _member(request, "TransactionFromDateTime")
        last = _member(request, "TransactionToDateTime")
        if first or last:
            details.append(("Transactions", f"from {first or 'the first'} to {last or 'now'}"))
        return Grant(
            "Read your account information",
            tuple(PERMISSION_WORDS[p] for p in consent.permissions),
            tuple(details),
            expiry,
        )
    if consent.kind is ConsentKind.FUNDS_CONFIRMATION:
        debtor = _account(request, "DebtorAccount")
        if debtor is not None:
            details.append(("Account named by the provider", debtor))
        return Grant(
            "Confirm whether funds are available",
            ("a yes or no answer to whether an amount is available in the account you choose "
             "(never its balance)",),
            tuple(details),
            expiry,
        )  # fmt: skip
    initiation = request.get("Initiation")
    data = initiation if isinstance(initiation, Mapping) else request
    amount = _member(data, "InstructedAmount", "Amount")
    currency = _member(data, "InstructedAmount", "Currency")
    if amount is not None:
        details.append(("Amount", f"{amount} {currency or ''}".strip()))
    for label, value in (
        ("To", _account(data, "CreditorAccount")),
        ("Reference", _member(data, "RemittanceInformation", "Reference")),
        ("Description", _lines(data, "RemittanceInformation", "Unstructured")),
        ("Account named by the provider", _account(data, "DebtorAccount")),
    ):
        if value is not None:
            details.append((label, value))
    return Grant(
        "Make a payment from your account",
        ("one payment, of the amount and to the payee below, from the account you choose",),
        tuple(details),
        "Once: the provider may submit this payment once.",
    )
