"""Scopes checked by the routes of every domain: an API key may do what its scopes allow."""

from __future__ import annotations

from typing import Any

from strongroom.core.errors import StrongroomError
from strongroom.tenancy.model import ApiKey, Scope


class InsufficientScope(StrongroomError):
    code = "insufficient_scope"
    status = 403


def require_scope(key: ApiKey, scope: Scope) -> None:
    if not key.allows(scope):
        raise InsufficientScope(f"this API key lacks the scope {scope.value}")


async def spend(state: Any, units: int) -> None:
    """Charge a request's API key `units` more (hundredths of a token) for work a route learns
    of only once the body is read (a batch: 1/100 token a transfer). Over the limit it raises
    the 429 `rate_limited` (tenancy.middleware.RateLimited), before the work is done. `state`
    is the request's (`request.state`); without a rate limit installed it charges nothing."""
    charge = getattr(state, "rate_limit", None)
    if charge is not None and units > 0:
        await charge.spend(units)
