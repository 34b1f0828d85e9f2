"""The HTTP routes of signing in: sessions (password and TOTP, or a passkey), TOTP enrolment,
passkey registration, step-up (docs/authentication.md). Signing in is public; the rest needs a
user's session (cookie or `Bearer st_...`)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, StrongroomError
from strongroom.core.limits import RATE_LIMIT_UNITS_PER_TOKEN
from strongroom.http.errors import ERROR_RESPONSES, problem
from strongroom.http.openapi import error_codes
from strongroom.security.auth.errors import InvalidChallenge, InvalidCredentials, SessionRequired
from strongroom.security.auth.factors import Factors
from strongroom.security.auth.model import SESSION_COOKIE, UserPrincipal
from strongroom.security.auth.schemas import (
    Challenge,
    InvitationAccept,
    PasskeyAnswer,
    PasskeyOut,
    PasskeySignIn,
    SessionCreate,
    SessionDeleted,
    SessionOut,
    SteppedUp,
    StepUp,
    TenantOnly,
    TotpCode,
    TotpConfirmed,
    TotpEnrolment,
    UserOut,
)
from strongroom.security.auth.service import NewSession, UserService
from strongroom.tenancy.access import SESSION, declared_access, public, session_only
from strongroom.tenancy.ratelimit import Buckets
from strongroom.tenancy.service import TenancyService

router = APIRouter(prefix="/v1/auth", responses=ERROR_RESPONSES, tags=["authentication"])

SIGN_IN_PATH: Final = "/v1/auth/sessions"
PASSKEY_OPTIONS_PATH: Final = "/v1/auth/passkeys/authentication/options"
PASSKEY_SIGN_IN_PATH: Final = "/v1/auth/passkeys/authentication"
INVITATION_PATH: Final = "/v1/auth/invitations"
# Reached without a session or an API key: the tenancy middleware lets them through (each is
# declared public(); a test holds the two lists equal).
PUBLIC_PATHS: Final = frozenset(
    {SIGN_IN_PATH, PASSKEY_OPTIONS_PATH, PASSKEY_SIGN_IN_PATH, INVITATION_PATH}
)


def _users(request: Request) -> UserService:
    users: UserService = request.app.state.users
    return users


def _factors(request: Request) -> Factors:
    factors: Factors = request.app.state.factors
    return factors


async def _principal(request: Request) -> UserPrincipal:
    """The signed-in user of a route declared session_only() (any role: their own session);
    a dependency, so that a key is refused before the body is read. Async: FastAPI runs a
    plain `def` dependency in the threadpool."""
    assert declared_access(request.scope.get("route")) == SESSION, "declare session_only()"
    principal = request.state.api_key
    if not isinstance(principal, UserPrincipal):
        raise SessionRequired("sign in as a user: an API key has no session")
    return principal


Me = Annotated[UserPrincipal, Depends(_principal)]


async def _limited(request: Request, *, spend: bool = True) -> Response | None:
    """A failed sign-in spends a token of the address's failed-authentication bucket, as a
    bad API key does; past it, the answer is 429 with Retry-After instead. `spend` False
    only looks (before a password is checked: past the limit even the right one is refused,
    else the limit would hide the failures and still tell a password sprayer each hit)."""
    failures: Buckets | None = getattr(request.app.state, "auth_failures", None)
    if failures is None:
        return None
    address = request.client.host if request.client else "unknown"
    if spend:
        verdict = await failures.take(address, RATE_LIMIT_UNITS_PER_TOKEN)
    else:
        verdict = await failures.peek(address, RATE_LIMIT_UNITS_PER_TOKEN)
    if verdict.allowed:
        return None
    wait_s = max(1, math.ceil(verdict.retry_after_ms / 1000))
    return problem(
        request,
        "rate_limited",
        "too many failed sign-ins from this address",
        headers={"Retry-After": str(wait_s)},
    )


def _session_out(request: Request, response: Response, new: NewSession, cookie: bool) -> Any:
    config = _users(request).config
    if cookie:
        response.set_cookie(
            SESSION_COOKIE,
            new.token,
            max_age=config.session_ttl_s,
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
    return {
        "object": "session",
        "token": None if cookie else new.token,
        "expires_at": clock.format_us(new.expires_at),
        "user_id": new.principal.user_id,
        "role": new.principal.role.value,
        "stepped_up_until": None,
    }


async def _tenant_id(request: Request, name: str) -> str | None:
    tenancy: TenancyService = request.app.state.tenancy
    tenant = await run_in_threadpool(tenancy.tenant_by_name, name)
    # A suspended tenant's users sign in no more (nor do its sessions authenticate).
    return None if tenant is None or tenant.suspended_at is not None else tenant.id


@router.post(
    "/sessions",
    status_code=201,
    response_model=SessionOut,
    openapi_extra=error_codes("invalid_credentials", "totp_required", "rate_limited") | public(),
)
async def create_session(body: SessionCreate, request: Request, response: Response) -> Any:
    """Sign in with an email and a password (and a TOTP code once enrolled)."""
    limited = await _limited(request, spend=False)
    if limited is not None:
        return limited
    tenant_id = await _tenant_id(request, body.tenant)
    users = _users(request)
    try:
        new = await run_in_threadpool(
            users.sign_in, tenant_id, body.email, body.password, body.totp
        )
    except InvalidCredentials:
        limited = await _limited(request)
        if limited is not None:
            return limited
        raise
    return _session_out(request, response, new, body.cookie)


@router.post(
    "/invitations",
    response_model=UserOut,
    openapi_extra=error_codes("invalid_challenge", "weak_password", "rate_limited") | public(),
    operation_id="updatePasswordFromInvitation",
)
async def accept_invitation(body: InvitationAccept, request: Request) -> Any:
    """Set an invited user's first password with their invitation (`inv_...`, good once);
    then they sign in at POST /v1/auth/sessions."""
    try:
        user = await run_in_threadpool(_users(request).accept_invitation, body.token, body.password)
    except InvalidChallenge:
        limited = await _limited(request)
        if limited is not None:
            return limited
        raise
    return user.public()


@router.get(
    "/sessions/current",
    response_model=SessionOut,
    openapi_extra=error_codes("session_required") | session_only(),
    operation_id="getCurrentSession",
)
async def current_session(request: Request, principal: Me) -> Any:
    """Who this session is, and until when its last step-up counts."""
    until = principal.stepped_up_until_us
    now = clock.now_us()
    return {
        "object": "session",
        "token": None,
        "expires_at": clock.format_us(principal.expires_at_us),
        "user_id": principal.user_id,
        "role": principal.role.value,
        "stepped_up_until": clock.format_us(until) if until > now else None,
    }


@router.delete(
    "/sessions/current",
    response_model=SessionDeleted,
    openapi_extra=error_codes("session_required") | session_only(),
    operation_id="deleteCurrentSession",
)
async def delete_session(request: Request, response: Response, principal: Me) -> Any:
    """Sign out: the session is revoked and the browser's cookie cleared."""
    await run_in_threadpool(_users(request).sign_out, principal)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return {"object": "session", "deleted": True}


@router.post(
    "/totp",
    status_code=201,
    response_model=TotpEnrolment,
    openapi_extra=error_codes("session_required", "totp_already_enrolled", "step_up_required")
    | session_only(),
    operation_id="createTotpEnrolment",
)
async def enrol_totp(request: Request, principal: Me) -> Any:
    """A new TOTP secret as an otpauth URI, shown once; confirm it with a first code."""
    uri = await run_in_threadpool(_factors(request).enrol_totp, principal)
    return {"otpauth_uri": uri}


@router.post(
    "/totp/confirm",
    response_model=TotpConfirmed,
    openapi_extra=error_codes(
        "session_required", "invalid_code", "totp_not_enrolled", "totp_already_enrolled"
    )
    | session_only(),
    operation_id="createTotpConfirmation",
)
async def confirm_totp(body: TotpCode, request: Request, principal: Me) -> Any:
    """Confirm the enrolment with a first code: from now on a password sign-in needs one."""
    await run_in_threadpool(_factors(request).confirm_totp, principal, body.code)
    return {"totp_enrolled": True}


@router.post(
    "/passkeys/registration/options",
    response_model=Challenge,
    openapi_extra=error_codes("session_required", "step_up_required") | session_only(),
    operation_id="createPasskeyRegistrationOptions",
)
async def passkey_registration_options(request: Request, principal: Me) -> Any:
    """Options for navigator.credentials.create(); the challenge is kept server-side."""
    challenge_id, options = await run_in_threadpool(
        _factors(request).registration_options, principal
    )
    return {"challenge_id": challenge_id, "options": options}


@router.post(
    "/passkeys/registration",
    status_code=201,
    response_model=PasskeyOut,
    openapi_extra=error_codes("session_required", "invalid_challenge", "passkey_rejected")
    | session_only(),
    operation_id="createPasskey",
)
async def register_passkey(body: PasskeyAnswer, request: Request, principal: Me) -> Any:
    credential_id = await run_in_threadpool(
        _factors(request).register, principal, body.challenge_id, body.credential
    )
    return {"id": credential_id, "object": "passkey"}


@router.post(
    "/passkeys/authentication/options",
    response_model=Challenge,
    openapi_extra=error_codes("invalid_credentials", "rate_limited") | public(),
    operation_id="createPasskeyAuthenticationOptions",
)
async def passkey_authentication_options(body: TenantOnly, request: Request) -> Any:
    """Options for navigator.credentials.get() to sign in with a passkey of the tenant.
    Anyone may ask and each answer stores a challenge: each spends a token of the address's
    failed-authentication bucket, so a flood is answered 429 rather than written."""
    limited = await _limited(request)
    if limited is not None:
        return limited
    tenant_id = await _tenant_id(request, body.tenant)
    if tenant_id is None:
        raise InvalidCredentials("no such tenant here")
    challenge_id, options = await run_in_threadpool(
        _factors(request).authentication_options, tenant_id
    )
    return {"challenge_id": challenge_id, "options": options}


@router.post(
    "/passkeys/authentication",
    status_code=201,
    response_model=SessionOut,
    openapi_extra=error_codes("invalid_challenge", "passkey_rejected", "rate_limited") | public(),
    operation_id="createPasskeySession",
)
async def passkey_sign_in(body: PasskeySignIn, request: Request, response: Response) -> Any:
    """Sign in with a passkey's assertion for a challenge of the options route."""
    try:
        new = await run_in_threadpool(_factors(request).sign_in, body.challenge_id, body.credential)
    except StrongroomError:
        limited = await _limited(request)
        if limited is not None:
            return limited
        raise
    return _session_out(request, response, new, body.cookie)


@router.post(
    "/step-up/options",
    response_model=Challenge,
    openapi_extra=error_codes("session_required", "no_passkey") | session_only(),
    operation_id="createStepUpOptions",
)
async def step_up_options(request: Request, principal: Me) -> Any:
    """Options for navigator.credentials.get() with this user's passkeys."""
    challenge_id, options = await run_in_threadpool(_factors(request).step_up_options, principal)
    return {"challenge_id": challenge_id, "options": options}


@router.post(
    "/step-up",
    response_model=SteppedUp,
    openapi_extra=error_codes(
        "session_required",
        "invalid_code",
        "totp_not_enrolled",
        "invalid_challenge",
        "passkey_rejected",
    )
    | session_only(),
    operation_id="createStepUp",
)
async def step_up(body: StepUp, request: Request, principal: Me) -> Any:
    """Prove presence again (a passkey assertion or a TOTP code): sensitive actions are
    allowed for STRONGROOM_STEP_UP_WINDOW_S after."""
    factors = _factors(request)
    if body.totp is not None:
        until = await run_in_threadpool(factors.step_up_totp, principal, body.totp)
    elif body.challenge_id is not None and body.credential is not None:
        until = await run_in_threadpool(
            factors.step_up_passkey, principal, body.challenge_id, body.credential
        )
    else:
        raise InvalidRequest("send `totp`, or `challenge_id` and `credential`", param="totp")
    return {"stepped_up_until": clock.format_us(until)}
