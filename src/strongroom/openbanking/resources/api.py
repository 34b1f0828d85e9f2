"""The UK Open Banking v4.0 resource server of each tenant: account access consents and account
information (AISP), funds confirmation consents and funds confirmations (CBPII), under
RESOURCE_BASE (/ob/{tenant name}/open-banking/v4.0).

A separate API from /v1: not in the /v1 OpenAPI document (the OB documents are its contract),
outside the API-key middleware (which acts on /v1 only), authenticated instead by a DPoP-bound
access token that the authorization server checks (`Resources.token_check`, ports.TokenCheck).
Every answer carries `x-fapi-interaction-id` (the request's, or a new UUID) and, when it has a
body, `Content-Type: application/json; charset=utf-8`; errors are OB error bodies
(OBErrorResponse1) with the statuses the v4.0 documents declare:

- 401 (no body, as declared): the token check refused; `WWW-Authenticate: DPoP error=...`;
- 403: a token whose grant or scope does not cover the operation (insufficient_scope), another
  client's consent, a consent not in force, a permission the consent lacks;
- 400: a field, header or body refused; an unknown consent, account or page (OB's code set puts
  UK.OBIE.Resource.NotFound in the 400 category, and these operations declare no 404);
- 404: a tenant name no tenant has (an OB body: there is no account provider there);
- 415 (no body): a body that is not JSON; 500: anything unexpected (no internals).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from strongroom.core import clock, ids
from strongroom.core.errors import (
    InvalidRequest,
    NotFound,
    ServiceUnavailable,
    StrongroomError,
    echo,
)
from strongroom.openbanking import model as ob
from strongroom.openbanking import model_errors as me
from strongroom.openbanking import obcodes
from strongroom.openbanking.consents import ConsentKind, ConsentStatus
from strongroom.openbanking.errors import InvalidDpopProof
from strongroom.openbanking.ports import (
    RESOURCE_BASE,
    SCOPE_ACCOUNTS,
    SCOPE_FUNDS,
    AccessToken,
    Grant,
    TokenCheck,
)
from strongroom.openbanking.resources import errors, schemas, views
from strongroom.openbanking.resources.model import (
    OB_CONSENT_ID_LENGTH_MAX,
    OB_IDEMPOTENCY_KEY_LENGTH_MAX,
    Consent,
)
from strongroom.openbanking.resources.reads import AccountInformation, Cursor
from strongroom.openbanking.resources.service import (
    ConsentService,
    one_read_per_request,
    tpp_actor,
)

log = logging.getLogger("strongroom.openbanking")

router = APIRouter(prefix=RESOURCE_BASE, include_in_schema=False)

JSON_UTF8: Final = "application/json; charset=utf-8"
INTERACTION_ID: Final = "x-fapi-interaction-id"
_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
# OB's x-idempotency-key: ^(?!\s)(.*)(\S)$, at most 40 characters (printable ASCII here).
_IDEMPOTENCY_KEY: Final = re.compile(r"[!-~](?:[ -~]*[!-~])?")
# RFC 6750 / RFC 9449 error names a token check may answer; any other code is invalid_token.
_TOKEN_ERRORS: Final = frozenset({"invalid_token", "invalid_dpop_proof", "use_dpop_nonce"})
DPOP_ALGS: Final = "PS256 ES256 EdDSA"
# What a path keeps as it is (RFC 3986 pchar and `/`, and `%` of its own encodings).
_PATH_SAFE: Final = "/%!$&'()*+,;=:@-._~"
_BOOKING_DATETIME: Final = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})(?:T([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)

# Our error codes and the OB code each answers (obcodes.OB_CODE_BY_ERROR for the rest).
_OB_CODES: Final[Mapping[str, obcodes.ObErrorCode]] = {
    "consent_forbidden": obcodes.RESOURCE_CONSENT_MISMATCH,
    "consent_permission_missing": obcodes.RESOURCE_CONSENT_MISMATCH,
    "ob_token_not_allowed": obcodes.RESOURCE_CONSENT_MISMATCH,
    "ob_consent_id_mismatch": obcodes.RESOURCE_CONSENT_MISMATCH,
    "consent_not_in_force": obcodes.RESOURCE_INVALID_CONSENT_STATUS,
    "ob_idempotency_key_reused": obcodes.HEADER_INVALID,
    "ob_header_invalid": obcodes.HEADER_INVALID,
    "ob_tenant_not_found": obcodes.RESOURCE_NOT_FOUND,
}


def no_authorization_server(
    authorization: str | None, dpop_proof: str | None, method: str, url: str
) -> AccessToken:
    """The token check until an authorization server is wired in: every token is refused."""
    del authorization, dpop_proof, method, url
    raise errors.Unauthenticated("no authorization server is configured")


@dataclass
class Resources:
    """What the router serves from (app.state.ob_resources), set by the composition root."""

    consents: ConsentService
    reads: AccountInformation
    tenant_id: Callable[[str], str | None]  # a tenant's name -> its id (None: no such tenant)
    token_check: TokenCheck = no_authorization_server
    now_us: Callable[[], int] = clock.now_us
    # settings.public_base_url: the URLs a DPoP proof's htu and the Links name are this and the
    # path as sent, whatever scheme and host a TLS-terminating proxy or a client's Host header
    # give the request. None: the request's own URL.
    base_url: str | None = None


@dataclass(frozen=True)
class Call:
    """The request, as the operations read it (no Starlette object crosses into a thread)."""

    method: str
    url: str  # without the query: what a DPoP proof's htu names
    self_url: str  # with it: Links.Self
    tenant: str
    headers: Mapping[str, str]
    dpop_headers: int
    query: Mapping[str, str]
    path: Mapping[str, str]
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Refused(Exception):
    """An answer made on the way: a 401, a 415, or 400 field errors."""

    def __init__(self, answer: Answer | None = None, problems: list[obcodes.ObError] | None = None):
        super().__init__("refused")
        self.answer = answer
        self.problems = problems or []


Operation = Callable[[Resources, Call, str, AccessToken], Answer]


# -- the pipeline --------------------------------------------------------------------------


def _interaction(sent: str | None) -> str:
    """The request's x-fapi-interaction-id when it is a UUID, else a new one."""
    return sent if sent is not None and _UUID.fullmatch(sent) else str(uuid.uuid4())


# The x-jws-signature of a body's exact bytes (openbanking/payments/signing.py), called in a
# worker thread (the first call may read or make the signing key).
BodySigner = Callable[[bytes], str]
JWS_SIGNATURE: Final = "x-jws-signature"


async def _serve(
    request: Request,
    operation: Operation,
    *,
    sign: BodySigner | None = None,
    ob_codes: Mapping[str, obcodes.ObErrorCode] | None = None,
) -> Response:
    """Runs `operation` and answers it the OB way. `sign`: every answer with a body (errors
    included, as the payment initiation document declares) carries x-jws-signature over its
    exact bytes; `ob_codes`: the OB code of the caller's own error codes (beside _OB_CODES)."""
    sent = request.headers.get(INTERACTION_ID)
    interaction = _interaction(sent)
    try:
        if sent is not None and interaction != sent:
            raise InvalidRequest(
                "x-fapi-interaction-id must be a UUID (RFC 4122)",
                param=INTERACTION_ID,
                code="ob_header_invalid",
            )
        resources: Resources = request.app.state.ob_resources
        url = request_url(request, resources.base_url)
        query = request.scope.get("query_string") or b""
        call = Call(
            method=request.method,
            url=url,
            self_url=f"{url}?{query.decode('latin-1')}" if query else url,
            tenant=request.path_params["tenant"],
            headers={k.lower(): v for k, v in request.headers.items()},
            dpop_headers=len(request.headers.getlist("dpop")),
            query=dict(request.query_params),
            path=dict(request.path_params),
            content_type=request.headers.get("content-type"),
            body=await request.body() if request.method == "POST" else b"",
        )
        answer = await run_in_threadpool(_run, resources, call, operation)
    except Exception as exc:  # every refusal, and a bug, is an OB answer
        answer = _answer_error(exc, interaction, ob_codes)
    headers = {**answer.headers, INTERACTION_ID: interaction}
    if answer.body is None:
        return Response(status_code=answer.status, headers=headers)
    content = json.dumps(answer.body, separators=(",", ":"), ensure_ascii=False).encode()
    if sign is not None:
        try:
            headers[JWS_SIGNATURE] = await run_in_threadpool(sign, content)
        except Exception:  # no signature, no answer: a TPP must be able to trust every body
            log.exception("open banking: the response could not be signed")
            error = obcodes.ObError(obcodes.UNEXPECTED_ERROR, "the response could not be signed")
            body = obcodes.error_body(500, [error], error_id=interaction)
            content = json.dumps(body, separators=(",", ":")).encode()
            return Response(content, 500, {INTERACTION_ID: interaction}, media_type=JSON_UTF8)
    return Response(content, status_code=answer.status, headers=headers, media_type=JSON_UTF8)


def request_url(request: Request, base_url: str | None = None) -> str:
    """The URL the client called, without its query: its path as sent (`raw_path`, its
    percent-encodings kept), any octet that may not stand in a URL percent-encoded, after
    `base_url` when a public base URL is configured (a proxy's scheme and host, or a forged
    Host header, then change nothing), else after the request's own scheme and host. It is
    what a DPoP proof's htu names (RFC 9449 section 4.3), and always a plain ASCII URL:
    Starlette's request.url carries the decoded path, in which an id with a space or a
    non-ASCII character is no URL at all (dpop.normalise_htu refused it: a 500, found by
    schemathesis)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    path = quote(bytes(raw), safe=_PATH_SAFE)
    if base_url is not None:
        return base_url + path
    return str(request.url.replace(path=path, query=""))


def render_refusal(
    scope: Mapping[str, Any], status: int, code: str, detail: str
) -> tuple[int, dict[str, str], bytes]:
    """The HTTP layer's refusals on the OB paths (http.errors.RefusalRenderer) as OB answers:
    with x-fapi-interaction-id; 404, 405 and 415 without a body, as the v4.0 documents declare
    them; a head or body too large or a NUL as a 400 (OB declares no 413 or 431), a 5xx as a
    500, each with an OB error body."""
    sent = next((v for k, v in scope.get("headers", ()) if k == b"x-fapi-interaction-id"), None)
    interaction = _interaction(None if sent is None else bytes(sent).decode("latin-1"))
    headers = {INTERACTION_ID: interaction}
    if status in (404, 405, 415):
        return status, headers, b""
    if status >= 500:
        status, ob_code = 500, obcodes.UNEXPECTED_ERROR
    else:
        headers_at_fault = code == "request_headers_too_large"
        status, ob_code = 400, obcodes.HEADER_INVALID if headers_at_fault else obcodes.FIELD_INVALID
    body = obcodes.error_body(status, [obcodes.ObError(ob_code, detail)], error_id=interaction)
    headers["content-type"] = JSON_UTF8
    return status, headers, json.dumps(body, separators=(",", ":")).encode()


def _run(resources: Resources, call: Call, operation: Operation) -> Answer:
    tenant_id = resources.tenant_id(call.tenant)
    if tenant_id is None:
        raise errors.TenantNotFound(f"no account provider {echo(call.tenant)!r}", param="tenant")
    # The token check and the operation read the token's consent once between them.
    with one_read_per_request():
        return operation(resources, call, tenant_id, _token(resources, call))


def _token(resources: Resources, call: Call) -> AccessToken:
    try:
        if call.dpop_headers > 1:  # RFC 9449 section 4.3: exactly one
            raise InvalidDpopProof("send one DPoP header", param="DPoP")
        return resources.token_check(
            call.headers.get("authorization"), call.headers.get("dpop"), call.method, call.url
        )
    except ServiceUnavailable:  # the replay store full, say: not the token's fault
        raise
    except StrongroomError as exc:
        raise _Refused(Answer(401, headers=_challenge(exc))) from None


def _challenge(exc: StrongroomError) -> dict[str, str]:
    """RFC 9449 section 7.1's WWW-Authenticate (or the check's own, when it gives one) and
    any header the check adds (a DPoP-Nonce)."""
    given = getattr(exc, "www_authenticate", None)
    if isinstance(given, str):
        challenge = given
    else:
        error = exc.code if exc.code in _TOKEN_ERRORS else "invalid_token"
        challenge = f'DPoP error="{error}", algs="{DPOP_ALGS}"'
    extra = getattr(exc, "headers", None)
    found = dict(extra) if isinstance(extra, Mapping) else {}
    return {**found, "WWW-Authenticate": challenge}


def _answer_error(
    exc: Exception,
    interaction: str,
    ob_codes: Mapping[str, obcodes.ObErrorCode] | None = None,
) -> Answer:
    if isinstance(exc, _Refused):
        if exc.answer is not None:
            return exc.answer
        return Answer(400, obcodes.error_body(400, exc.problems, error_id=interaction))
    if not isinstance(exc, StrongroomError):
        log.exception("open banking: unhandled error")
        error = obcodes.ObError(obcodes.UNEXPECTED_ERROR, "an internal error occurred")
        return Answer(500, obcodes.error_body(500, [error], error_id=interaction))
    status = _ob_status(exc)
    code = (
        (ob_codes or {}).get(exc.code)
        or _OB_CODES.get(exc.code)
        or obcodes.ob_code_for(exc.code, status)
    )
    error = obcodes.ObError(code, exc.detail, path=exc.param)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.TokenNotAllowed):
        headers["WWW-Authenticate"] = f'DPoP error="insufficient_scope", algs="{DPOP_ALGS}"'
    if isinstance(exc, ServiceUnavailable):  # answered 500, the OB's status; retry says when
        headers["Retry-After"] = str(exc.retry_after_s)
    return Answer(status, obcodes.error_body(status, [error], error_id=interaction), headers)


def _ob_status(exc: StrongroomError) -> int:
    """The status an error answers with among those the OB documents declare."""
    if isinstance(exc, errors.TenantNotFound):
        return 404
    if exc.status in (400, 403):
        return exc.status
    if exc.status in (404, 409):  # Resource.NotFound, InvalidConsentStatus: the 400 category
        return 400
    return 500


# -- what every operation checks -----------------------------------------------------------


def _allow(token: AccessToken, grant: Grant, scope: str) -> None:
    if token.grant is not grant or scope not in token.scopes:
        how = "client credentials" if grant is Grant.CLIENT_CREDENTIALS else "a customer's consent"
        raise errors.TokenNotAllowed(f"this operation needs a token of {how} with scope {scope}")


def _own_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken, kind: ConsentKind
) -> Consent:
    """The consent of the path, if it is this tenant's, of this kind, and the client's."""
    consent_id = call.path["ConsentId"]
    missing = NotFound(f"no {_kind_name(kind)} consent {echo(consent_id)}", param="ConsentId")
    if len(consent_id) > OB_CONSENT_ID_LENGTH_MAX:
        raise missing
    try:
        consent = resources.consents.get(consent_id)
    except NotFound:
        raise missing from None
    if consent.tenant_id != tenant_id or consent.kind is not kind:
        raise missing
    if consent.client_id != token.client_id:
        raise errors.ConsentForbidden(f"consent {consent_id} is another client's")
    return consent


def _bound_consent(
    resources: Resources, tenant_id: str, token: AccessToken, kind: ConsentKind
) -> Consent:
    """The consent the token was issued under: this tenant's, of this kind, the token's
    client's and customer's, and in force now."""
    if token.consent_id is None:
        raise errors.TokenNotAllowed("the access token was not issued under a consent")
    try:
        consent = resources.consents.get(token.consent_id)
    except NotFound:
        raise errors.ConsentNotInForce("the token's consent does not exist") from None
    if consent.tenant_id != tenant_id or token.tenant_id not in (None, tenant_id):
        raise errors.ConsentForbidden("the token's consent is another account provider's")
    if consent.kind is not kind:
        raise errors.TokenNotAllowed(f"the token's consent is not a {_kind_name(kind)} consent")
    if consent.client_id != token.client_id or (
        token.customer_id is not None and token.customer_id != consent.customer_id
    ):
        raise errors.ConsentForbidden("the token's consent is another client's")
    if not consent.in_force(resources.now_us()):
        raise errors.ConsentNotInForce(
            f"the consent is {consent.status} and not authorised now"
            if consent.status is not ConsentStatus.AUTH
            else "the consent's ExpirationDateTime has passed"
        )
    return consent


def _kind_name(kind: ConsentKind) -> str:
    return str(kind).replace("_", " ")


ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse(call: Call, model: type[ModelT]) -> ModelT:
    media = (call.content_type or "").partition(";")[0].strip().lower()
    if media != "application/json":
        raise _Refused(Answer(415))
    try:
        parsed = json.loads(call.body)
    except (ValueError, UnicodeDecodeError):
        problem = obcodes.ObError(obcodes.RESOURCE_INVALID_FORMAT, "the body is not JSON")
        raise _Refused(problems=[problem]) from None
    try:
        return model.model_validate(parsed)
    except ValidationError as exc:
        raise _Refused(problems=[_field_error(e) for e in exc.errors()]) from None


def _field_error(error: Any) -> obcodes.ObError:
    path = ""
    for part in error.get("loc", ()):
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = str(error.get("type", ""))
    code = {"missing": obcodes.FIELD_MISSING, "extra_forbidden": obcodes.FIELD_UNEXPECTED}.get(
        kind, obcodes.FIELD_INVALID
    )
    # pydantic's message names the rule broken, never the value sent.
    return obcodes.ObError(code, f"{path or 'body'}: {error.get('msg', 'invalid')}", path or None)


def _idempotency_key(call: Call) -> str | None:
    key = call.headers.get("x-idempotency-key")
    if key is not None and (
        len(key) > OB_IDEMPOTENCY_KEY_LENGTH_MAX or not _IDEMPOTENCY_KEY.fullmatch(key)
    ):
        raise InvalidRequest(
            f"x-idempotency-key is 1 to {OB_IDEMPOTENCY_KEY_LENGTH_MAX} printable characters",
            param="x-idempotency-key",
            code="ob_header_invalid",
        )
    return key


def _datetime(value: str | None, path: str) -> int | None:
    return None if value is None else ob.parse_ob_datetime(value, path=path)


def booking_datetime(value: str | None, path: str) -> int | None:
    """fromBookingDateTime / toBookingDateTime: a UTC date-time whose time is optional
    (00:00:00) and whose zone, if any, is ignored (the v4.0 parameters' description)."""
    if value is None:
        return None
    found = _BOOKING_DATETIME.fullmatch(value)
    if found is not None:
        day, time, fraction = found.group(1), found.group(2) or "00:00:00", found.group(3) or ""
        try:
            return ob.parse_ob_datetime(f"{day}T{time}{fraction}+00:00", path=path)
        except InvalidRequest:
            pass
    raise InvalidRequest(
        f"{path} must be an ISO 8601 date-time such as 2017-04-05T10:43:07",
        param=path,
        code=me.INVALID_OB_DATETIME,
    )


def _created(consent: Consent, call: Call, body: dict[str, Any]) -> Answer:
    body["Links"]["Self"] = f"{call.url}/{consent.id}"
    return Answer(201, body)


# -- account access consents ---------------------------------------------------------------

AA_CONSENTS: Final = "/aisp/account-access-consents"


def _create_account_access_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken
) -> Answer:
    _allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_ACCOUNTS)
    key = _idempotency_key(call)
    data = _parse(call, schemas.ReadConsent).Data
    ob.validate_permissions(list(data.Permissions))
    permissions = [ob.Permission(p) for p in data.Permissions]
    expires = _datetime(data.ExpirationDateTime, "Data.ExpirationDateTime")
    first = _datetime(data.TransactionFromDateTime, "Data.TransactionFromDateTime")
    last = _datetime(data.TransactionToDateTime, "Data.TransactionToDateTime")
    if first is not None and last is not None and last < first:
        raise InvalidRequest(
            "Data.TransactionToDateTime must not be before Data.TransactionFromDateTime",
            param="Data.TransactionToDateTime",
            code=me.INVALID_OB_DATETIME,
        )
    request: dict[str, Any] = {"Permissions": [p.value for p in permissions]}
    for name, value in (
        ("ExpirationDateTime", expires),
        ("TransactionFromDateTime", first),
        ("TransactionToDateTime", last),
    ):
        if value is not None:
            request[name] = ob.ob_datetime(value)
    consent, _ = resources.consents.create(
        tenant_id,
        token.client_id,
        ConsentKind.ACCOUNT_ACCESS,
        request,
        permissions=permissions,
        expires_at_us=expires,
        idempotency_key=key,
    )
    return _created(consent, call, views.account_access_consent(consent, call.url))


def _get_account_access_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken
) -> Answer:
    _allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_ACCOUNTS)
    consent = _own_consent(resources, call, tenant_id, token, ConsentKind.ACCOUNT_ACCESS)
    return Answer(200, views.account_access_consent(consent, call.self_url))


def _delete_account_access_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken
) -> Answer:
    _allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_ACCOUNTS)
    consent = _own_consent(resources, call, tenant_id, token, ConsentKind.ACCOUNT_ACCESS)
    resources.consents.revoke(consent.id, actor=tpp_actor(token.client_id))
    return Answer(204)


@router.post(AA_CONSENTS)
async def create_account_access_consent(request: Request) -> Response:
    return await _serve(request, _create_account_access_consent)


@router.get(AA_CONSENTS + "/{ConsentId}")
async def get_account_access_consent(request: Request) -> Response:
    return await _serve(request, _get_account_access_consent)


@router.delete(AA_CONSENTS + "/{ConsentId}")
async def delete_account_access_consent(request: Request) -> Response:
    return await _serve(request, _delete_account_access_consent)


# -- account information -------------------------------------------------------------------


def _ais(resources: Resources, tenant_id: str, token: AccessToken, endpoint: str) -> Consent:
    """The token's consent, if its permissions open `endpoint` (a v4.0 path template)."""
    _allow(token, Grant.AUTHORIZATION_CODE, SCOPE_ACCOUNTS)
    consent = _bound_consent(resources, tenant_id, token, ConsentKind.ACCOUNT_ACCESS)
    if not ob.endpoint_allowed(consent.permissions, endpoint):
        raise errors.PermissionMissing(f"the consent's permissions do not open {endpoint}")
    return consent


def _accounts(resources: Resources, call: Call, tenant_id: str, token: AccessToken) -> Answer:
    consent = _ais(resources, tenant_id, token, "/accounts")
    return Answer(200, views.accounts(resources.reads.accounts(consent), call.self_url))


def _account(resources: Resources, call: Call, tenant_id: str, token: AccessToken) -> Answer:
    consent = _ais(resources, tenant_id, token, "/accounts/{AccountId}")
    found = resources.reads.account(consent, call.path["AccountId"])
    return Answer(200, views.accounts([found], call.self_url))


def _balances(resources: Resources, call: Call, tenant_id: str, token: AccessToken) -> Answer:
    account_id = call.path.get("AccountId")
    endpoint = "/balances" if account_id is None else "/accounts/{AccountId}/balances"
    consent = _ais(resources, tenant_id, token, endpoint)
    if account_id is None:
        found = resources.reads.accounts(consent)
        if not found:  # OBReadBalance1 holds at least one balance: the bulk read declares 404
            return Answer(404)
    else:
        found = [resources.reads.account(consent, account_id)]
    return Answer(200, views.balances(found, resources.now_us(), call.self_url))


def _transactions(resources: Resources, call: Call, tenant_id: str, token: AccessToken) -> Answer:
    account_id = call.path.get("AccountId")
    endpoint = "/transactions" if account_id is None else "/accounts/{AccountId}/transactions"
    consent = _ais(resources, tenant_id, token, endpoint)
    reads = resources.reads
    accounts = (
        reads.accounts(consent) if account_id is None else [reads.account(consent, account_id)]
    )
    first = booking_datetime(call.query.get("fromBookingDateTime"), "fromBookingDateTime")
    last = booking_datetime(call.query.get("toBookingDateTime"), "toBookingDateTime")
    # The consent's own period bounds every query.
    allowed_first = _datetime(consent.request.get("TransactionFromDateTime"), "consent")
    allowed_last = _datetime(consent.request.get("TransactionToDateTime"), "consent")
    if allowed_first is not None:
        first = allowed_first if first is None else max(first, allowed_first)
    if allowed_last is not None:
        last = allowed_last if last is None else min(last, allowed_last)
    cursor = None
    page_text = call.query.get("page")
    if page_text is not None:
        cursor = Cursor.decode(page_text)
        if cursor is None:
            raise NotFound("no such page", param="page")
    page = reads.transactions(
        accounts,
        ob.transaction_directions(consent.permissions),
        from_us=first,
        to_us=last,
        cursor=cursor,
    )
    next_url = None
    if page.next is not None:
        query = {k: v for k, v in call.query.items() if k != "page"}
        next_url = _with_query(call.url, {**query, "page": page.next.encode()})
    body = views.transactions(
        page.items,
        detail=ob.shows_detail(consent.permissions, endpoint),
        self_url=call.self_url,
        next_url=next_url,
    )
    return Answer(200, body)


def _with_query(url: str, query: Mapping[str, str]) -> str:
    return f"{url}?{urlencode(query)}"


@router.get("/aisp/accounts")
async def get_accounts(request: Request) -> Response:
    return await _serve(request, _accounts)


@router.get("/aisp/accounts/{AccountId}")
async def get_account(request: Request) -> Response:
    return await _serve(request, _account)


@router.get("/aisp/accounts/{AccountId}/balances")
async def get_account_balances(request: Request) -> Response:
    return await _serve(request, _balances)


@router.get("/aisp/balances")
async def get_balances(request: Request) -> Response:
    return await _serve(request, _balances)


@router.get("/aisp/accounts/{AccountId}/transactions")
async def get_account_transactions(request: Request) -> Response:
    return await _serve(request, _transactions)


@router.get("/aisp/transactions")
async def get_transactions(request: Request) -> Response:
    return await _serve(request, _transactions)


# -- funds confirmation --------------------------------------------------------------------

FUNDS_CONSENTS: Final = "/cbpii/funds-confirmation-consents"


def _create_funds_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken
) -> Answer:
    _allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_FUNDS)
    key = _idempotency_key(call)
    data = _parse(call, schemas.FundsConsent).Data
    debtor = ob.parse_account_identification(
        data.DebtorAccount.model_dump(exclude_none=True), path="Data.DebtorAccount"
    )
    expires = _datetime(data.ExpirationDateTime, "Data.ExpirationDateTime")
    request: dict[str, Any] = {"DebtorAccount": debtor.to_ob()}
    if expires is not None:
        request["ExpirationDateTime"] = ob.ob_datetime(expires)
    consent, _ = resources.consents.create(
        tenant_id,
        token.client_id,
        ConsentKind.FUNDS_CONFIRMATION,
        request,
        expires_at_us=expires,
        idempotency_key=key,
    )
    return _created(consent, call, views.funds_confirmation_consent(consent, call.url))


def _get_funds_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken
) -> Answer:
    _allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_FUNDS)
    consent = _own_consent(resources, call, tenant_id, token, ConsentKind.FUNDS_CONFIRMATION)
    return Answer(200, views.funds_confirmation_consent(consent, call.self_url))


def _delete_funds_consent(
    resources: Resources, call: Call, tenant_id: str, token: AccessToken
) -> Answer:
    _allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_FUNDS)
    consent = _own_consent(resources, call, tenant_id, token, ConsentKind.FUNDS_CONFIRMATION)
    resources.consents.revoke(consent.id, actor=tpp_actor(token.client_id))
    return Answer(204)


def _confirm_funds(resources: Resources, call: Call, tenant_id: str, token: AccessToken) -> Answer:
    _allow(token, Grant.AUTHORIZATION_CODE, SCOPE_FUNDS)
    consent = _bound_consent(resources, tenant_id, token, ConsentKind.FUNDS_CONFIRMATION)
    data = _parse(call, schemas.FundsConfirmation).Data
    if data.ConsentId != consent.id:
        raise InvalidRequest(
            "Data.ConsentId is not the consent this token was issued under",
            param="Data.ConsentId",
            code="ob_consent_id_mismatch",
        )
    money = ob.parse_ob_money(data.InstructedAmount.model_dump(), path="Data.InstructedAmount")
    (account_id,) = consent.account_ids
    account = resources.reads.account(consent, account_id)
    funds_available = resources.reads.funds_available(account, money)
    body = views.funds_confirmation(
        ids.new_id("obf"),
        consent.id,
        resources.now_us(),
        data.Reference,
        money,
        funds_available,
        call.url,
    )
    return Answer(201, body)


@router.post(FUNDS_CONSENTS)
async def create_funds_confirmation_consent(request: Request) -> Response:
    return await _serve(request, _create_funds_consent)


@router.get(FUNDS_CONSENTS + "/{ConsentId}")
async def get_funds_confirmation_consent(request: Request) -> Response:
    return await _serve(request, _get_funds_consent)


@router.delete(FUNDS_CONSENTS + "/{ConsentId}")
async def delete_funds_confirmation_consent(request: Request) -> Response:
    return await _serve(request, _delete_funds_consent)


@router.post("/cbpii/funds-confirmations")
async def create_funds_confirmation(request: Request) -> Response:
    return await _serve(request, _confirm_funds)
