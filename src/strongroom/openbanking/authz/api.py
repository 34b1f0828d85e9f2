"""The authorization server's HTTP endpoints: RFC 8414 metadata, the pushed authorization
request endpoint (RFC 9126) and the token endpoint. Public (no API key: a client authenticates
with its assertion), form-encoded, answering OAuth error bodies (http.errors.oauth_error) and
never cached (every answer carries `Cache-Control: no-store`: http.middleware). Left out of the
OpenAPI document: a client discovers them from the metadata, as OAuth 2.0 has it.

The consent page (GET /oauth2/authorize) is not here: openbanking/consentpage/ builds it on the
service's `begin` and `complete`.

Rate limits (docs/deployment.md "Rate limits"): every request here spends a token of its client
address's bucket; a PAR or token request naming a `client_id` is refused too while that
client's bucket is empty, and spends one of its tokens only once the client has authenticated
(STRONGROOM_OAUTH_RATE_LIMIT_PER_S and _BURST, each bucket; shared by every worker, as /v1's):
naming a victim's client id without its key costs the sender's address, never the victim.
Over either, the answer is 429 `rate_limited` as an OAuth error body, with Retry-After, before
anything is written (an over-limit client's assertion is verified, its jti not remembered)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Final

from anyio import from_thread
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from strongroom.core.errors import InvalidRequest, StrongroomError
from strongroom.core.limits import RATE_LIMIT_UNITS_PER_TOKEN
from strongroom.http.errors import oauth_error
from strongroom.openbanking.authz import model
from strongroom.openbanking.authz.service import Authenticated, AuthorizationServer
from strongroom.openbanking.errors import InvalidDpopProof
from strongroom.tenancy.access import public
from strongroom.tenancy.middleware import RateLimited, client_address
from strongroom.tenancy.ratelimit import Buckets, Verdict

router = APIRouter(include_in_schema=False)

# The routes whose body is a form (http.middleware.BodyLimit lets it through to them).
FORM_PATHS: Final = (model.PAR_PATH, model.TOKEN_PATH)
# Every route of this router: reached without an API key or a session.
PATHS: Final = (model.METADATA_PATH, *FORM_PATHS)


def _server(request: Request) -> AuthorizationServer:
    server: AuthorizationServer = request.app.state.ob_authz
    return server


class _OverClientLimit(RateLimited):
    """The authenticated client's bucket ran out (raised in the worker thread by the hook
    `_spend_client` makes, answered as the other 429s)."""

    def __init__(self, detail: str, wait_s: int) -> None:
        super().__init__(detail)
        self.wait_s = wait_s


def _limits(request: Request) -> Buckets | None:
    buckets: Buckets | None = getattr(request.app.state, "ob_authz_limits", None)
    return buckets


def _detail(buckets: Buckets, whose: str) -> str:
    return f"too many requests from {whose} ({buckets.per_s:g} a second, {buckets.burst} at once)"


def _wait_s(verdict: Verdict) -> int:
    return max(1, math.ceil(verdict.retry_after_ms / 1000))


def _refused(request: Request, exc: RateLimited, wait_s: int) -> Response:
    return oauth_error(request, exc, {"Retry-After": str(wait_s)})


async def _over_limit(request: Request, form: Mapping[str, str] | None = None) -> Response | None:
    """Without `form`: a token of the request's client address's bucket spent; with it, the
    bucket of the client id it names only looked at (nothing when it names none): the client
    has not authenticated yet, and whoever names a client id must not spend its tokens. The
    429 when the bucket is empty, else None."""
    buckets = _limits(request)
    if buckets is None:
        return None
    if form is None:
        name = f"address:{client_address(request.scope)}"
        verdict, whose = await buckets.take(name, RATE_LIMIT_UNITS_PER_TOKEN), "this address"
    elif form.get("client_id"):
        name = f"client:{form['client_id']}"
        verdict, whose = await buckets.peek(name, RATE_LIMIT_UNITS_PER_TOKEN), "this client"
    else:
        return None
    if verdict.allowed:
        return None
    return _refused(request, RateLimited(_detail(buckets, whose)), _wait_s(verdict))


def _spend_client(request: Request) -> Authenticated | None:
    """The hook the service calls, in its worker thread, once the client has authenticated:
    a token of that client's bucket spent (on the event loop, where the buckets live), or
    _OverClientLimit before anything is written."""
    buckets = _limits(request)
    if buckets is None:
        return None
    limits = buckets

    def spend(client_id: str) -> None:
        verdict = from_thread.run(limits.take, f"client:{client_id}", RATE_LIMIT_UNITS_PER_TOKEN)
        if not verdict.allowed:
            raise _OverClientLimit(_detail(limits, "this client"), _wait_s(verdict))

    return spend


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
        answer = await run_in_threadpool(
            partial(server.push, form, authenticated=_spend_client(request))
        )
    except _OverClientLimit as exc:
        return _refused(request, exc, exc.wait_s)
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
            partial(
                server.token,
                form,
                dpop,
                request.method,
                server.endpoints.token,
                authenticated=_spend_client(request),
            )
        )
    except _OverClientLimit as exc:
        return _refused(request, exc, exc.wait_s)
    except StrongroomError as exc:
        return oauth_error(request, exc)
    return JSONResponse(answer)
