"""The minimal sign-in page: GET /signin (HTML) and its script, GET /signin.js, both served by
the app itself (no CDN) under a strict Content-Security-Policy: the script is the page's only
code, and it talks to this origin only. It signs in with a password (and TOTP), or a passkey,
registers a passkey, steps up and signs out, through the /v1/auth routes, with the session in
an HttpOnly cookie that the script never sees."""

from __future__ import annotations

from importlib import resources
from typing import Final

from fastapi import APIRouter
from fastapi.responses import Response

CSP: Final = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


def _asset(name: str) -> bytes:
    return resources.files("strongroom.security.auth").joinpath("static", name).read_bytes()


@router.get("/signin")
async def signin_page() -> Response:
    return Response(_asset("signin.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/signin.js")
async def signin_script() -> Response:
    return Response(
        _asset("signin.js"), media_type="text/javascript; charset=utf-8", headers=_HEADERS
    )
