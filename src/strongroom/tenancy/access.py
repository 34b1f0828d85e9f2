"""Scopes checked by the routes of every domain: an API key may do what its scopes allow."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from strongroom.core import clock
from strongroom.core.errors import StrongroomError
from strongroom.tenancy.model import DEDICATED_SCOPES, Principal, Scope


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


async def spend(state: Any, units: int) -> None:
    """Charge a request's API key `units` more (hundredths of a token) for work a route learns
    of only once the body is read (a batch: 1/100 token a transfer). Over the limit it raises
    the 429 `rate_limited` (tenancy.middleware.RateLimited), before the work is done. `state`
    is the request's (`request.state`); without a rate limit installed it charges nothing."""
    charge = getattr(state, "rate_limit", None)
    if charge is not None and units > 0:
        await charge.spend(units)
