"""The HTTP routes of users: a principal holding users:admin (an admin) creates them, reads
them and changes their roles (each an audit leaf). Creating a user and changing a role are
sensitive: a user signed in as an admin must have stepped up; an admin API key passes. A user
reads their own session at GET /v1/auth/sessions/current."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.security.auth.model import EMAIL_CHARS_MAX, parse_role
from strongroom.security.auth.schemas import UserCreate, UserList, UserOut, UserUpdate
from strongroom.security.auth.service import UserService
from strongroom.security.rbac import role_scopes
from strongroom.tenancy.access import authorize, require_grantable, require_step_up, requires
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES, tags=["users"])


def _users(request: Request) -> UserService:
    users: UserService = request.app.state.users
    return users


async def _caller(request: Request) -> Principal:
    """The caller, let in on the route's declared scopes before its body is read."""
    principal: Principal = request.state.api_key
    authorize(request.scope, principal)
    return principal


Caller = Annotated[Principal, Depends(_caller)]


@router.post(
    "/users",
    status_code=201,
    response_model=UserOut,
    openapi_extra=error_codes(
        "step_up_required", "email_taken", "invalid_email", "invalid_role", "weak_password"
    )
    | requires(Scope.USERS_ADMIN),
)
async def create_user(body: UserCreate, request: Request, principal: Caller) -> Any:
    """A staff or customer user of the caller's tenant, with an initial password, or an
    invitation (`invite`) that lets them set it."""
    require_step_up(principal)
    # A role that reveals is given only by whoever holds its reveal scopes by name.
    require_grantable(principal, role_scopes(parse_role(body.role)))
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


@router.get(
    "/users",
    response_model=UserList,
    openapi_extra=error_codes("invalid_email") | requires(Scope.USERS_ADMIN),
)
async def list_users(
    request: Request,
    principal: Caller,
    limit: Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)] = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
    email: Annotated[str | None, Query(min_length=1, max_length=EMAIL_CHARS_MAX)] = None,
) -> Any:
    """The tenant's users by id (staff and customers; never their addresses). With `email`:
    the one user who signs in with that address, if any (to find a colleague's id, e.g. to
    assign a case)."""
    page, has_more = await run_in_threadpool(
        lambda: _users(request).list_users(
            principal.tenant_id, starting_after=starting_after, limit=limit, email=email
        )
    )
    return list_body([u.public() for u in page], has_more)


@router.get(
    "/users/{user_id}",
    response_model=UserOut,
    openapi_extra=error_codes("not_found") | requires(Scope.USERS_ADMIN),
)
async def get_user(user_id: IdPath, request: Request, principal: Caller) -> Any:
    user = await run_in_threadpool(_users(request).get_user, principal.tenant_id, user_id)
    return user.public()


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    openapi_extra=error_codes("not_found", "step_up_required", "invalid_role")
    | requires(Scope.USERS_ADMIN),
)
async def update_user(
    user_id: IdPath, body: UserUpdate, request: Request, principal: Caller
) -> Any:
    """Change a user's role; it applies to their sessions at once."""
    require_step_up(principal)
    # A role that reveals is given only by whoever holds its reveal scopes by name.
    require_grantable(principal, role_scopes(parse_role(body.role)))
    user = await run_in_threadpool(
        lambda: _users(request).set_role(
            principal.tenant_id, user_id, body.role, actor=principal.actor
        )
    )
    return user.public()
