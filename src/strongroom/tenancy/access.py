"""Scopes checked by the routes of every domain: a principal may do what its scopes allow.

Every /v1 route declares the scopes it accepts, as data on the route: `openapi_extra=
requires(Scope.LEDGER_READ)` (merged with error_codes). The declaration is published in the
OpenAPI document (`x-required-scopes`), rendered as the permission matrix (docs/permissions.md,
security/rbac.py) and enforced by `authorize`, which each domain's request context calls before
the route runs (before its body or parameters are validated): what a route declares is what it
enforces, and a route that declares nothing is refused to everyone.

Two kinds of route declare no scope but their access instead (`x-access`): `public()` ones
(signing in: no principal yet; the authentication middleware lets them through) and
`session_only()` ones (a signed-in user's own session and factors: any user, whatever their
role, and no API key, which has no session)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, cast

from strongroom.core import clock
from strongroom.core.errors import StrongroomError
from strongroom.tenancy.model import DEDICATED_SCOPES, Principal, Scope

# The OpenAPI extension naming a route's scopes: any one of them lets a principal in.
REQUIRED_SCOPES: Final = "x-required-scopes"
# The OpenAPI extension of a route that declares no scope: "public" or "session".
ACCESS: Final = "x-access"
PUBLIC: Final = "public"
SESSION: Final = "session"
_CACHED: Final = "_strongroom_required_scopes"
_UNSET: Final = object()


class InsufficientScope(StrongroomError):
    code = "insufficient_scope"
    status = 403


class StepUpRequired(StrongroomError):
    """A sensitive action by a person whose session has not stepped up lately (a passkey
    assertion or a TOTP code at POST /v1/auth/step-up)."""

    code = "step_up_required"
    status = 403


def require_scope(key: Principal, scope: Scope) -> None:
    if not key.allows(scope):
        who = "this API key" if key.machine else "this user's role"
        raise InsufficientScope(f"{who} lacks the scope {scope.value}")


def require_grantable(principal: Principal, scopes: Iterable[Scope]) -> None:
    """The reveal scopes (pii:read, vault:reveal) are never implied by admin, so they are not
    admin's to hand on either: whoever grants one (to a new API key, or through a user's role)
    must hold it by name (403 `insufficient_scope`). Else an admin key would mint a key, or
    invite a user, that reveals."""
    for scope in sorted(set(scopes) & DEDICATED_SCOPES):
        require_scope(principal, scope)


def require_step_up(
    principal: Principal, dedicated: Scope | None = None, *, now_us: int | None = None
) -> None:
    """For a sensitive action (revealing personal data or a card, creating an API key): a
    user must have stepped up within the step-up window (403 `step_up_required`); a machine,
    which cannot step up, must hold `dedicated` by name (pii:read, vault:reveal) when one is
    given (403 `insufficient_scope`), and passes on its scopes otherwise."""
    if dedicated is not None:
        require_scope(principal, dedicated)
    if principal.machine:
        return
    if principal.stepped_up_until_us <= (clock.now_us() if now_us is None else now_us):
        raise StepUpRequired("step up first: POST /v1/auth/step-up with a passkey or a TOTP code")


def requires(*scopes: Scope) -> dict[str, Any]:
    """A route's `openapi_extra` declaring the scopes it accepts (any one suffices); merge it
    with error_codes: `openapi_extra=error_codes(...) | requires(Scope.LEDGER_READ)`."""
    assert scopes, "a route accepts at least one scope"
    return {REQUIRED_SCOPES: [s.value for s in scopes]}


def requires_all(*scopes: Scope) -> dict[str, Any]:
    """A route's `openapi_extra` declaring scopes that are all needed together (a route that
    serves two domains' data): one entry of `x-required-scopes`, the scopes space-separated
    as in an OAuth scope string."""
    assert len(scopes) > 1, "requires() for one scope"
    return {REQUIRED_SCOPES: [" ".join(s.value for s in scopes)]}


def public() -> dict[str, Any]:
    """A route's `openapi_extra`: reached without a principal (signing in)."""
    return {ACCESS: PUBLIC}


def session_only() -> dict[str, Any]:
    """A route's `openapi_extra`: a signed-in user's own session, whatever their role; an API
    key is refused (403 session_required, by the route)."""
    return {ACCESS: SESSION}


def declared_access(route: Any) -> str | None:
    """ "public" or "session" for a route that declares its access so, None otherwise."""
    extra = getattr(route, "openapi_extra", None) or {}
    value = extra.get(ACCESS)
    assert value in (None, PUBLIC, SESSION), value
    return cast("str | None", value)


Requirement = tuple[Scope, ...]  # all of these scopes


def parse_required(values: Iterable[str]) -> tuple[Requirement, ...]:
    """`x-required-scopes` read back: alternatives, any one of which lets a principal in, each
    one or more scopes (space-separated) that are all needed."""
    return tuple(tuple(Scope(v) for v in value.split()) for value in values)


def describe(declared: Iterable[Requirement]) -> str:
    return " or ".join(" and ".join(s.value for s in need) for need in declared)


def satisfied(declared: Iterable[Requirement], allows: Callable[[Scope], bool]) -> bool:
    """Whether a principal allowed the scopes `allows` says yes to meets one alternative."""
    return any(all(allows(s) for s in need) for need in declared)


def declared_scopes(route: Any) -> tuple[Requirement, ...] | None:
    """The scopes a route (a FastAPI APIRoute) declares, None when it declares none; worked out
    once a route and kept on it (it is on the path of every request)."""
    cached = getattr(route, _CACHED, _UNSET)
    if cached is not _UNSET:
        return cast("tuple[Requirement, ...] | None", cached)
    extra = getattr(route, "openapi_extra", None) or {}
    values = extra.get(REQUIRED_SCOPES)
    found = parse_required(values) if values else None
    if route is not None:
        setattr(route, _CACHED, found)
    return found


def authorize(scope: Any, principal: Principal) -> None:
    """Refuse (403 insufficient_scope) a principal that holds none of the scopes the matched
    route declares. `scope` is the request's ASGI scope (`request.scope`): routing put the
    route there. A route that declares nothing is refused: a missing declaration is a bug to
    find in a test, not a door left open."""
    declared = declared_scopes(scope.get("route"))
    if declared is None:
        raise InsufficientScope("this route declares no scope: nobody may call it")
    if satisfied(declared, principal.allows):
        return
    who = "this API key" if principal.machine else "this user's role"
    raise InsufficientScope(f"{who} lacks the scope {describe(declared)}")


async def spend(state: Any, units: int) -> None:
    """Charge a request's API key `units` more (hundredths of a token) for work a route learns
    of only once the body is read (a batch: 1/100 token a transfer). Over the limit it raises
    the 429 `rate_limited` (tenancy.middleware.RateLimited), before the work is done. `state`
    is the request's (`request.state`); without a rate limit installed it charges nothing."""
    charge = getattr(state, "rate_limit", None)
    if charge is not None and units > 0:
        await charge.spend(units)
