"""The HTTP routes of users: an admin creates them and changes their roles (each an audit
leaf). A user signed in as an admin must have stepped up; an admin API key passes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.errors import InvalidRequest
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.params import IdPath
from strongroom.security.auth.model import parse_role
from strongroom.security.auth.schemas import UserCreate, UserOut, UserUpdate
from strongroom.security.auth.service import UserService
from strongroom.security.roles import ROLE_SCOPES
from strongroom.tenancy.access import require_grantable, require_scope, require_step_up
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["users"])


def _users(request: Request) -> UserService:
    users: UserService = request.app.state.users
    return users


def _admin(request: Request) -> Principal:
    principal: Principal = request.state.api_key
    require_scope(principal, Scope.ADMIN)
    require_step_up(principal)
    return principal


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    openapi_extra=error_codes(
        "step_up_required", "email_taken", "invalid_email", "invalid_role", "weak_password"
    ),
)
async def create_user(body: UserCreate, request: Request) -> Any:
    """A staff or customer user of the caller's tenant, with an initial password, or an
    invitation (`invite`) that lets them set it."""
    principal = _admin(request)
    require_grantable(principal, ROLE_SCOPES[parse_role(body.role)])
    if body.invite:
        if body.password is not None:
            raise InvalidRequest("give a password or invite, not both", param="invite")
        invited, token = await run_in_threadpool(
            lambda: _users(request).create_invited_user(
                principal.tenant_id,
                body.email,
                body.role,
                actor=principal.actor,
                customer_id=body.customer_id,
            )
        )
        return {**invited.public(), "invitation": token}
    user = await run_in_threadpool(
        lambda: _users(request).create_user(
            principal.tenant_id,
            body.email,
            body.role,
            body.password,
            actor=principal.actor,
            customer_id=body.customer_id,
        )
    )
    return user.public()


@router.get("/users/{user_id}", response_model=UserOut, openapi_extra=error_codes("not_found"))
async def get_user(user_id: IdPath, request: Request) -> Any:
    principal: Principal = request.state.api_key
    if principal.id != user_id:
        require_scope(principal, Scope.ADMIN)
    user = await run_in_threadpool(_users(request).get_user, principal.tenant_id, user_id)
    return user.public()


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    openapi_extra=error_codes("not_found", "step_up_required", "invalid_role"),
)
async def update_user(user_id: IdPath, body: UserUpdate, request: Request) -> Any:
    """Change a user's role; it applies to their sessions at once."""
    principal = _admin(request)
    require_grantable(principal, ROLE_SCOPES[parse_role(body.role)])
    user = await run_in_threadpool(
        lambda: _users(request).set_role(
            principal.tenant_id, user_id, body.role, actor=principal.actor
        )
    )
    return user.public()
