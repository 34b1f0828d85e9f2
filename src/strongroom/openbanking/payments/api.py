"""The UK Open Banking v4.0 payment initiation API of each tenant (PISP): domestic payment
consents, their funds confirmation, domestic payments and their details, under RESOURCE_BASE
beside the account information API, through the same pipeline (resources/api.py: DPoP-bound
tokens, x-fapi-interaction-id, OB error bodies), and with one addition: every answer that has a
body, errors included (the v4.0 document declares x-jws-signature on each), carries
`x-jws-signature` over its exact bytes (signing.py).

- POST /pisp/domestic-payment-consents: client credentials, scope payments, x-idempotency-key
  required (the same key and body: the same consent; another body: UK.OBIE.Header.Invalid);
- GET /pisp/domestic-payment-consents/{ConsentId}: client credentials, the client's consent;
- GET /pisp/domestic-payment-consents/{ConsentId}/funds-confirmation: a customer's token under
  that consent (authorised): whether the chosen account has the amount available now;
- POST /pisp/domestic-payments: a customer's token under an authorised domestic payment consent,
  x-idempotency-key required, the consent's exact Initiation and Risk (service.py);
- GET /pisp/domestic-payments/{DomesticPaymentId}[/payment-details]: client credentials, the
  client's payment, its status now.

Besides, GET /oauth2/jwks (public) serves the signing keys' JWK Set (the metadata's jwks_uri).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from strongroom.core.errors import InvalidRequest, NotFound, echo
from strongroom.http.errors import RefusalRenderer
from strongroom.openbanking import obcodes
from strongroom.openbanking.authz.model import JWKS_PATH
from strongroom.openbanking.consents import ConsentKind
from strongroom.openbanking.payments import schemas, views
from strongroom.openbanking.payments.errors import OB_CODES, OB_HEADER_MISSING, PaymentForbidden
from strongroom.openbanking.payments.model import OB_PAYMENT_ID_LENGTH_MAX
from strongroom.openbanking.payments.service import PaymentRequest, PaymentService, PaymentView
from strongroom.openbanking.payments.signing import ResponseSigner
from strongroom.openbanking.ports import RESOURCE_BASE, SCOPE_PAYMENTS, AccessToken, Grant
from strongroom.openbanking.resources import api as ob
from strongroom.openbanking.resources import errors
from strongroom.openbanking.resources.model import Consent
from strongroom.tenancy.access import public

log = logging.getLogger("strongroom.openbanking")

router = APIRouter(prefix=RESOURCE_BASE, include_in_schema=False)
keys_router = APIRouter(include_in_schema=False)

PAYMENT_CONSENTS: Final = "/pisp/domestic-payment-consents"
PAYMENTS: Final = "/pisp/domestic-payments"
CUSTOMER_IP: Final = "x-fapi-customer-ip-address"
_CUSTOMER_IP_LENGTH_MAX: Final = 45  # an IPv6 address with an IPv4 tail


@dataclass
class PaymentResources:
    """What the router serves from (app.state.ob_payments), set by the composition root."""

    payments: PaymentService
    signer: ResponseSigner


PaymentOperation = Callable[[PaymentResources, ob.Resources, ob.Call, str, AccessToken], ob.Answer]


async def _serve(request: Request, operation: PaymentOperation) -> Response:
    found: PaymentResources = request.app.state.ob_payments

    def run(
        resources: ob.Resources, call: ob.Call, tenant_id: str, token: AccessToken
    ) -> ob.Answer:
        return operation(found, resources, call, tenant_id, token)

    return await ob._serve(request, run, sign=found.signer.sign, ob_codes=OB_CODES)


def _required_key(call: ob.Call) -> str:
    key = ob._idempotency_key(call)
    if key is None:
        raise InvalidRequest(
            "x-idempotency-key is required", param="x-idempotency-key", code=OB_HEADER_MISSING
        )
    return key


def _customer_ip(call: ob.Call) -> str | None:
    sent = call.headers.get(CUSTOMER_IP)
    if sent is None:
        return None
    try:
        if len(sent) > _CUSTOMER_IP_LENGTH_MAX:
            raise ValueError(sent)
        return str(ipaddress.ip_address(sent))
    except ValueError:
        raise InvalidRequest(
            f"{CUSTOMER_IP} must be an IPv4 or IPv6 address",
            param=CUSTOMER_IP,
            code="ob_header_invalid",
        ) from None


def _consent_id_mismatch(param: str) -> InvalidRequest:
    return InvalidRequest(
        f"{param} is not the consent the access token was issued under",
        param=param,
        code="ob_consent_id_mismatch",
    )


# -- domestic payment consents -------------------------------------------------------------


def _create_consent(
    found: PaymentResources,
    resources: ob.Resources,
    call: ob.Call,
    tenant_id: str,
    token: AccessToken,
) -> ob.Answer:
    del resources
    ob._allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_PAYMENTS)
    key = _required_key(call)
    body = ob._parse(call, schemas.DomesticConsent)
    request = PaymentRequest(
        body.Data.Initiation.as_ob(), body.Risk.as_ob(), body.Data.ReadRefundAccount
    )
    consent, _ = found.payments.create_consent(tenant_id, token.client_id, request, key)
    return ob.Answer(201, views.payment_consent(consent, f"{call.url}/{consent.id}"))


def _get_consent(
    found: PaymentResources,
    resources: ob.Resources,
    call: ob.Call,
    tenant_id: str,
    token: AccessToken,
) -> ob.Answer:
    del found
    ob._allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_PAYMENTS)
    consent = ob._own_consent(resources, call, tenant_id, token, ConsentKind.DOMESTIC_PAYMENT)
    return ob.Answer(200, views.payment_consent(consent, call.self_url))


def _funds_confirmation(
    found: PaymentResources,
    resources: ob.Resources,
    call: ob.Call,
    tenant_id: str,
    token: AccessToken,
) -> ob.Answer:
    ob._allow(token, Grant.AUTHORIZATION_CODE, SCOPE_PAYMENTS)
    if call.path["ConsentId"] != token.consent_id:
        raise _consent_id_mismatch("ConsentId")
    consent = ob._bound_consent(resources, tenant_id, token, ConsentKind.DOMESTIC_PAYMENT)
    available = found.payments.funds_available(consent)
    return ob.Answer(200, views.funds_confirmation(available, resources.now_us(), call.self_url))


@router.post(PAYMENT_CONSENTS)
async def create_domestic_payment_consent(request: Request) -> Response:
    return await _serve(request, _create_consent)


@router.get(PAYMENT_CONSENTS + "/{ConsentId}")
async def get_domestic_payment_consent(request: Request) -> Response:
    return await _serve(request, _get_consent)


@router.get(PAYMENT_CONSENTS + "/{ConsentId}/funds-confirmation")
async def get_domestic_payment_consent_funds_confirmation(request: Request) -> Response:
    return await _serve(request, _funds_confirmation)


# -- domestic payments ---------------------------------------------------------------------


def _payment_consent(resources: ob.Resources, tenant_id: str, token: AccessToken) -> Consent:
    """The domestic payment consent the token was issued under: this tenant's, the token's
    client's and customer's, in whatever status (a repeated submission finds it consumed)."""
    if token.consent_id is None:
        raise errors.TokenNotAllowed("the access token was not issued under a consent")
    try:
        consent = resources.consents.get(token.consent_id)
    except NotFound:
        raise errors.ConsentNotInForce("the token's consent does not exist") from None
    if consent.tenant_id != tenant_id or token.tenant_id not in (None, tenant_id):
        raise errors.ConsentForbidden("the token's consent is another account provider's")
    if consent.kind is not ConsentKind.DOMESTIC_PAYMENT:
        raise errors.TokenNotAllowed("the token's consent is not a domestic payment consent")
    if consent.client_id != token.client_id or (
        token.customer_id is not None and token.customer_id != consent.customer_id
    ):
        raise errors.ConsentForbidden("the token's consent is another client's")
    return consent


def _create_payment(
    found: PaymentResources,
    resources: ob.Resources,
    call: ob.Call,
    tenant_id: str,
    token: AccessToken,
) -> ob.Answer:
    ob._allow(token, Grant.AUTHORIZATION_CODE, SCOPE_PAYMENTS)
    key = _required_key(call)
    consent = _payment_consent(resources, tenant_id, token)
    body = ob._parse(call, schemas.DomesticPayment)
    if body.Data.ConsentId != consent.id:
        raise _consent_id_mismatch("Data.ConsentId")
    request = PaymentRequest(body.Data.Initiation.as_ob(), body.Risk.as_ob())
    view = found.payments.submit(consent, token.client_id, key, request, ip=_customer_ip(call))
    return ob.Answer(201, views.payment(view, f"{call.url}/{view.id}"))


def _own_payment(
    found: PaymentResources, call: ob.Call, tenant_id: str, token: AccessToken
) -> PaymentView:
    """The payment of the path, if it is this tenant's and the client's."""
    ob._allow(token, Grant.CLIENT_CREDENTIALS, SCOPE_PAYMENTS)
    payment_id = call.path["DomesticPaymentId"]
    missing = NotFound(f"no domestic payment {echo(payment_id)}", param="DomesticPaymentId")
    if len(payment_id) > OB_PAYMENT_ID_LENGTH_MAX:
        raise missing
    try:
        view = found.payments.get(payment_id)
    except NotFound:
        raise missing from None
    if view.payment.tenant_id != tenant_id:
        raise missing
    if view.payment.client_id != token.client_id:
        raise PaymentForbidden(f"domestic payment {payment_id} is another client's")
    return view


def _get_payment(
    found: PaymentResources,
    resources: ob.Resources,
    call: ob.Call,
    tenant_id: str,
    token: AccessToken,
) -> ob.Answer:
    del resources
    view = _own_payment(found, call, tenant_id, token)
    return ob.Answer(200, views.payment(view, call.self_url))


def _get_payment_details(
    found: PaymentResources,
    resources: ob.Resources,
    call: ob.Call,
    tenant_id: str,
    token: AccessToken,
) -> ob.Answer:
    del resources
    view = _own_payment(found, call, tenant_id, token)
    return ob.Answer(200, views.payment_details(view, call.self_url))


@router.post(PAYMENTS)
async def create_domestic_payment(request: Request) -> Response:
    return await _serve(request, _create_payment)


@router.get(PAYMENTS + "/{DomesticPaymentId}")
async def get_domestic_payment(request: Request) -> Response:
    return await _serve(request, _get_payment)


@router.get(PAYMENTS + "/{DomesticPaymentId}/payment-details")
async def get_domestic_payment_details(request: Request) -> Response:
    return await _serve(request, _get_payment_details)


# -- the HTTP layer's refusals on these paths ----------------------------------------------


def _is_payment_path(path: str) -> bool:
    """Whether `path` is under /pisp of some tenant's RESOURCE_BASE."""
    head, _, tail = RESOURCE_BASE.partition("{tenant}")
    if not path.startswith(head):
        return False
    after_tenant = "/" + path.removeprefix(head).partition("/")[2]
    return after_tenant.startswith(tail + "/pisp/")


def refusal_renderer(signer: ResponseSigner) -> RefusalRenderer:
    """The OB paths' renderer of the HTTP layer's refusals (resources/api.py render_refusal),
    with x-jws-signature on those of the payment paths that have a body, as on the routes' own
    answers: a body too large or holding a NUL, a head too large (a 400 whose signature v4.0
    requires; found unsigned by tests/e2e/test_ob_schemathesis.py). It signs on the event loop:
    CPU only once the key is loaded (the first signature of the process may read or make it).
    A body that could not be signed is not sent: 500 U000, unsigned, as in resources' _serve."""

    def render(
        scope: Mapping[str, Any], status: int, code: str, detail: str
    ) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = ob.render_refusal(scope, status, code, detail)
        if not body or not _is_payment_path(str(scope.get("path", ""))):
            return status, headers, body
        try:
            headers[ob.JWS_SIGNATURE] = signer.sign(body)
        except Exception:
            log.exception("open banking: a refusal could not be signed")
            error = obcodes.ObError(obcodes.UNEXPECTED_ERROR, "the response could not be signed")
            found = obcodes.error_body(500, [error], error_id=headers[ob.INTERACTION_ID])
            return 500, headers, json.dumps(found, separators=(",", ":")).encode()
        return status, headers, body

    return render


# -- the signing keys ----------------------------------------------------------------------


@keys_router.get(JWKS_PATH, openapi_extra=public())
async def signing_keys(request: Request) -> Response:
    """The JWK Set of the keys that sign the payment API's answers (jwks_uri)."""
    found: PaymentResources = request.app.state.ob_payments
    return JSONResponse(await run_in_threadpool(found.signer.jwks))
