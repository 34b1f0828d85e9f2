"""The dashboard page: GET /openbanking/consents (HTML) and its script, both served by the app
(no CDN) under the sign-in page's strict Content-Security-Policy: the script is the page's
only code (no inline script, no inline style), it talks to this origin only, and no other site
may frame the page (a one-click Revoke must not be clickjacked). Without a live session the
page sends the visitor to the sign-in page (303 to /signin); the script lists the signed-in
customer's consents through GET /v1/openbanking/consents and revokes one through its
POST .../revoke, with the session in its HttpOnly cookie, which the script never sees."""

from __future__ import annotations

from importlib import resources
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from strongroom.openbanking.dashboard.model import PAGE_PATH, SCRIPT_PATH, SIGN_IN_PATH
from strongroom.openbanking.dashboard.service import ConsentDashboard
from strongroom.security.auth.model import SESSION_COOKIE
from strongroom.security.auth.page import CSP

_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def _asset(name: str) -> bytes:
    return resources.files("strongroom.openbanking.dashboard").joinpath("static", name).read_bytes()


@router.get(PAGE_PATH)
async def consents_page(request: Request) -> Response:
    dashboard: ConsentDashboard = request.app.state.ob_dashboard
    token = request.cookies.get(SESSION_COOKIE)
    # The session's check refuses a malformed token before any lookup.
    principal = await run_in_threadpool(dashboard.session_of, token) if token else None
    if principal is None:
        return RedirectResponse(SIGN_IN_PATH, status_code=303, headers=_HEADERS)
    return Response(
        _asset("consents.html"), media_type="text/html; charset=utf-8", headers=_HEADERS
    )


@router.get(SCRIPT_PATH)
async def consents_script() -> Response:
    return Response(
        _asset("consents.js"), media_type="text/javascript; charset=utf-8", headers=_HEADERS
    )
