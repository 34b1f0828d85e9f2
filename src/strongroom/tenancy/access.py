"""Scopes checked by the routes of every domain: a principal may do what its scopes allow.

Every /v1 route declares the scopes it accepts, as data on the route: `openapi_extra=
requires(Scope.LEDGER_READ)` (merged with error_codes). The declaration is published in the
OpenAPI document (`x-required-scopes`), rendered as the permission matrix (docs/permissions.md,
security/rbac.py) and enforced by `authorize`, which each domain's request context calls before
the route runs (before its body or parameters are validated): what a route declares is what it
enforces, and a route that declares nothing is refused to everyone."""

from __future__ import annotations

from typing import Any, Final, cast

from strongroom.core.errors import StrongroomError
from strongroom.tenancy.model import Principal, Scope

# The OpenAPI extension naming a route's scopes: any one of them lets a principal in.
REQUIRED_SCOPES: Final = "x-required-scopes"
_CACHED: Final = "_strongroom_required_scopes"
_UNSET: Final = object()


class InsufficientScope(StrongroomError):
    code = "insufficient_scope"
    status = 403


def require_scope(key: Principal, scope: Scope) -> None:
    if not key.allows(scope):
        raise InsufficientScope(f"this API key lacks the scope {scope.value}")


def requires(*scopes: Scope) -> dict[str, Any]:
    """A route's `openapi_extra` declaring the scopes it accepts (any one suffices); merge it
    with error_codes: `openapi_extra=error_codes(...) | requires(Scope.LEDGER_READ)`."""
    assert scopes, "a route accepts at least one scope"
    return {REQUIRED_SCOPES: [s.value for s in scopes]}


def declared_scopes(route: Any) -> tuple[Scope, ...] | None:
    """The scopes a route (a FastAPI APIRoute) declares, None when it declares none; worked out
    once a route and kept on it (it is on the path of every request)."""
    cached = getattr(route, _CACHED, _UNSET)
    if cached is not _UNSET:
        return cast("tuple[Scope, ...] | None", cached)
    extra = getattr(route, "openapi_extra", None) or {}
    values = extra.get(REQUIRED_SCOPES)
    found = tuple(Scope(v) for v in values) if values else None
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
    for wanted in declared:
        if principal.allows(wanted):
            return
    names = " or ".join(s.value for s in declared)
    raise InsufficientScope(f"this API key lacks the scope {names}")


async def spend(state: Any, units: int) -> None:
    """Charge a request's API key `units` more (hundredths of a token) for work a route learns
    of only once the body is read (a batch: 1/100 token a transfer). Over the limit it raises
    the 429 `rate_limited` (tenancy.middleware.RateLimited), before the work is done. `state`
    is the request's (`request.state`); without a rate limit installed it charges nothing."""
    charge = getattr(state, "rate_limit", None)
    if charge is not None and units > 0:
        await charge.spend(units)
