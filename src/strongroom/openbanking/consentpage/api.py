"""The consent page's routes: the authorization endpoint (GET /oauth2/authorize, RFC 6749
section 3.1, with RFC 9126's client_id and request_uri), the decision it posts (POST
/oauth2/authorize/decision, a form, answered 303 to the client's redirect URI), and the page's
script and style, served by the app (no CDN).

Outside /v1: the tenancy middleware authenticates none of them. The page reads the browser's
session cookie itself (HttpOnly, SameSite=Strict: security/auth) and answers HTML under a
strict Content-Security-Policy, `X-Frame-Options: DENY` and (as every answer)
`Cache-Control: no-store`. A refusal is an HTML page naming its code, never a redirect: the
client's redirect URI is trusted only once a pending request vouches for it, and then only
for the customer's own decision. Left out of the OpenAPI document: they are a page, not the
API."""

from __future__ import annotations

from importlib import resources
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from strongroom.core.errors import InvalidRequest, StrongroomError
from strongroom.openbanking.authz.model import AUTHORIZE_PATH, media_type_is_form
from strongroom.openbanking.consentpage import model, render
from strongroom.openbanking.consentpage.model import Decision
from strongroom.openbanking.consentpage.service import ConsentPage
from strongroom.security.auth.model import SESSION_COOKIE
from strongroom.tenancy.access import public, session_only

router = APIRouter(include_in_schema=False)

HTML: Final = "text/html; charset=utf-8"
# The refusals a customer can mend on the page (sign in, step up, choose again): their error
# page leads back to the request.
_MENDABLE: Final = frozenset(
    {
        "customer_sign_in_required",
        "consent_decider_forbidden",
        "consent_page_forged",
        "step_up_required",
        "consent_accounts_invalid",
    }
)


def _page(request: Request) -> ConsentPage:
    page: ConsentPage = request.app.state.ob_consent_page
    return page


def _session(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


def _refused(exc: StrongroomError, back: str | None = None) -> Response:
    mendable = back if exc.code in _MENDABLE else None
    return Response(
        render.error_page(exc.code, exc.detail, mendable),
        status_code=exc.status,
        media_type=HTML,
        headers=model.page_headers(),
    )


@router.get(AUTHORIZE_PATH, openapi_extra=public())
async def authorize(request: Request) -> Response:
    """The page of a pushed request: sign in, step up, choose accounts, approve or reject."""
    page = _page(request)
    try:
        client_id, request_uri = model.authorization_params(request.query_params.multi_items())
        view = await run_in_threadpool(page.open, client_id, request_uri, _session(request))
    except StrongroomError as exc:
        return _refused(exc)
    return Response(
        render.page(view),
        media_type=HTML,
        headers=model.page_headers(view.pending.redirect_uri),
    )


@router.post(model.DECISION_PATH, openapi_extra=session_only())
async def decide(request: Request) -> Response:
    """The customer's decision: 303 to the client's redirect URI (a code, or
    error=access_denied; state and iss with both)."""
    page = _page(request)
    decision: Decision | None = None
    try:
        if not media_type_is_form(request.headers.get("content-type")):
            raise InvalidRequest("the decision is a form (application/x-www-form-urlencoded)")
        # The issuer's origin is the page's (the decision form is on it): never a Host
        # header's, which whoever sends the request chooses.
        own = model.origin_of(page.issuer)
        assert own is not None, page.issuer
        model.check_same_origin(
            request.headers.get("origin"), request.headers.get("sec-fetch-site"), {own}
        )
        decision = model.parse_decision(await request.body())
        redirect = await run_in_threadpool(page.decide, decision, _session(request))
    except StrongroomError as exc:
        back = model.authorize_url(decision.client_id, decision.request_uri) if decision else None
        return _refused(exc, back)
    headers = {**model.page_headers(), "Location": redirect, "Referrer-Policy": "no-referrer"}
    return Response(status_code=303, headers=headers)


def _asset(name: str) -> bytes:
    return (
        resources.files("strongroom.openbanking.consentpage").joinpath("static", name).read_bytes()
    )


@router.get(model.SCRIPT_PATH, openapi_extra=public())
async def consent_script() -> Response:
    return Response(
        _asset("consent.js"),
        media_type="text/javascript; charset=utf-8",
        headers=model.page_headers(),
    )


@router.get(model.STYLE_PATH, openapi_extra=public())
async def consent_style() -> Response:
    return Response(
        _asset("consent.css"), media_type="text/css; charset=utf-8", headers=model.page_headers()
    )
