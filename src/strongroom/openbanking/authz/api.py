"""The authorization server's HTTP endpoints: RFC 8414 metadata, the pushed authorization
request endpoint (RFC 9126) and the token endpoint. Public (no API key: a client authenticates
with its assertion), form-encoded, answering OAuth error bodies (http.errors.oauth_error) and
never cached (every answer carries `Cache-Control: no-store`: http.middleware). Left out of the
OpenAPI document: a client discovers them from the metadata, as OAuth 2.0 has it.

The consent page (GET /oauth2/authorize) is not here: openbanking/consentpage/ builds it on the
service's `begin` and `complete`.

Rate limits (docs/deployment.md "Rate limits"): every request here spends a token of its client
address's bucket, and a PAR or token request naming a `client_id` one of that client's too
(STRONGROOM_OAUTH_RATE_LIMIT_PER_S and _BURST, each bucket; shared by every worker, as /v1's).
Over either, the answer is 429 `rate_limited` as an OAuth error body, with Retry-After, before
anything is verified or written."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from strongroom.core.errors import InvalidRequest, StrongroomError
from strongroom.core.limits import RATE_LIMIT_UNITS_PER_TOKEN
from strongroom.http.errors import oauth_error
from strongroom.openbanking.authz import model
from strongroom.openbanking.authz.service import AuthorizationServer
from strongroom.openbanking.errors import InvalidDpopProof
from strongroom.tenancy.access import public
from strongroom.tenancy.middleware import RateLimited, client_address
from strongroom.tenancy.ratelimit import Buckets

router = APIRouter(include_in_schema=False)

# The routes whose body is a form (http.middleware.BodyLimit lets it through to them).
FORM_PATHS: Final = (model.PAR_PATH, model.TOKEN_PATH)
# Every route of this router: reached without an API key or a session.
PATHS: Final = (model.METADATA_PATH, *FORM_PATHS)


def _server(request: Request) -> AuthorizationServer:
    server: AuthorizationServer = request.app.state.ob_authz
    return server


async def _over_limit(request: Request, form: Mapping[str, str] | None = None) -> Response | None:
    """Without `form`: a token of the request's client address's bucket; with it, a token of
    the bucket of the client id it names (nothing when it names none). The 429 when the
    bucket is empty, else None."""
    buckets: Buckets | None = getattr(request.app.state, "ob_authz_limits", None)
    if buckets is None:
        return None
    if form is None:
        name, whose = f"address:{client_address(request.scope)}", "this address"
    elif form.get("client_id"):
        name, whose = f"client:{form['client_id']}", "this client"
    else:
        return None
    verdict = await buckets.take(name, RATE_LIMIT_UNITS_PER_TOKEN)
    if verdict.allowed:
        return None
    refused = RateLimited(
        f"too many requests from {whose} ({buckets.per_s:g} a second, {buckets.burst} at once)"
    )
    wait_s = max(1, math.ceil(verdict.retry_after_ms / 1000))
    return oauth_error(request, refused, {"Retry-After": str(wait_s)})


async def _form(request: Request) -> dict[str, str]:
    if not model.media_type_is_form(request.headers.get("content-type")):
        raise InvalidRequest(f"the body must be {model.FORM_MEDIA_TYPE}")
    return model.parse_form(await request.body())


def _dpop(request: Request) -> str | None:
    """The request's one DPoP header (RFC 9449 section 4.3: exactly one), None without."""
    values = request.headers.getlist("dpop")
    if len(values) > 1:
        raise InvalidDpopProof("send exactly one DPoP header", param="DPoP")
    return values[0] if values else None


@router.get(model.METADATA_PATH, openapi_extra=public())
async def authorization_server_metadata(request: Request) -> Response:
    refused = await _over_limit(request)
    return refused or JSONResponse(_server(request).metadata())


@router.post(model.PAR_PATH, openapi_extra=public())
async def pushed_authorization_request(request: Request) -> Response:
    server = _server(request)
    refused = await _over_limit(request)
    if refused is not None:
        return refused
    try:
        form = await _form(request)
        refused = await _over_limit(request, form)
        if refused is not None:
            return refused
        answer = await run_in_threadpool(server.push, form)
    except StrongroomError as exc:
        return oauth_error(request, exc)
    return JSONResponse(answer, status_code=201)


@router.post(model.TOKEN_PATH, openapi_extra=public())
async def token(request: Request) -> Response:
    server = _server(request)
    refused = await _over_limit(request)
    if refused is not None:
        return refused
    try:
        form = await _form(request)
        refused = await _over_limit(request, form)
        if refused is not None:
            return refused
        dpop = _dpop(request)
        # The proof's htu is the token endpoint's URL as the metadata publishes it: the one
        # the client called, whatever proxy stands between.
        answer = await run_in_threadpool(
            server.token, form, dpop, request.method, server.endpoints.token
        )
    except StrongroomError as exc:
        return oauth_error(request, exc)
    return JSONResponse(answer)
