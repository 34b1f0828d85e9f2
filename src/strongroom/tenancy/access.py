"""Scopes checked by the routes of every domain: an API key may do what its scopes allow."""

from __future__ import annotations

from strongroom.core.errors import StrongroomError
from strongroom.tenancy.model import ApiKey, Scope


class InsufficientScope(StrongroomError):
    code = "insufficient_scope"
    status = 403


def require_scope(key: ApiKey, scope: Scope) -> None:
    if not key.allows(scope):
        raise InsufficientScope(f"this API key lacks the scope {scope.value}")
