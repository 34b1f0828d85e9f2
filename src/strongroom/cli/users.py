"""`strongroom users`: people who sign in (security/auth). The password is prompted for (not
echoed) or read from a file, never taken on the command line where `ps` and the shell's history
would keep it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import (
    CLI_ACTOR,
    DbOption,
    build_ledger,
    open_engine,
    print_json,
    say_new_tenant,
)
from strongroom.core.errors import InvalidRequest
from strongroom.security.auth.passwords import PasswordPolicy, Passwords
from strongroom.security.auth.service import UserService
from strongroom.security.keys import open_key_manager
from strongroom.security.rbac import Role
from strongroom.tenancy.service import TenancyService

app = typer.Typer(no_args_is_help=True, help="People who sign in: staff and customers.")


def _read_password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8")
        except (OSError, UnicodeError) as exc:
            raise InvalidRequest(
                f"cannot read the password file ({type(exc).__name__})", param="password_file"
            ) from None
        return text.rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@app.command("create")
def users_create(
    tenant: Annotated[str, typer.Option(help="the tenant's name; created if new")],
    email: Annotated[str, typer.Option(help="the address the user signs in with")],
    role: Annotated[Role, typer.Option(help="what the user may do")],
    password_file: Annotated[
        Path | None,
        typer.Option(help="read the initial password from this file instead of a prompt"),
    ] = None,
    invite: Annotated[
        bool,
        typer.Option(
            help="no password: print an invitation (inv_..., good once for 7 days) that lets "
            "the user set one at POST /v1/auth/invitations"
        ),
    ] = False,
    database_url: DbOption = None,
) -> None:
    """Create a user with an initial password (prompted for, twice, unless --password-file)
    or an invitation. Prints the user's id and role; the email stays out of the output."""
    if invite and password_file is not None:
        raise InvalidRequest("give --invite or --password-file, not both", param="invite")
    password = None if invite else _read_password(password_file)
    engine, settings = open_engine(database_url)
    from strongroom.runtime import auth_config

    try:
        audit = build_ledger(engine, settings)[1]
        pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
        tenancy = TenancyService(engine, pepper=pepper, audit=audit)
        is_new = tenancy.tenant_by_name(tenant) is None
        tenant_id = tenancy.ensure_tenant(tenant).id
        if is_new:
            say_new_tenant(tenant, tenant_id)
        policy = PasswordPolicy(
            settings.password_memory_kib, settings.password_time_cost, settings.password_parallelism
        )
        users = UserService(
            engine,
            Passwords(policy),
            auth_config(settings),
            kms=open_key_manager(settings),
            audit=audit,
        )
        invitation = None
        if password is None:
            user, invitation = users.create_invited_user(
                tenant_id, email, role.value, actor=CLI_ACTOR
            )
        else:
            user = users.create_user(tenant_id, email, role.value, password, actor=CLI_ACTOR)
    finally:
        engine.dispose()
    out = {**user.public(), "tenant_id": tenant_id}
    if invitation is not None:
        out["invitation"] = invitation
    print_json(out)


@app.command("list")
def users_list(
    tenant: Annotated[str, typer.Option(help="the tenant's name")],
    email: Annotated[
        str | None, typer.Option(help="only the user who signs in with this address")
    ] = None,
    database_url: DbOption = None,
) -> None:
    """A tenant's users, one JSON line each (id, kind, role, customer, second factor), by id;
    with --email, the one user who signs in with that address. Addresses are never printed."""
    engine, settings = open_engine(database_url)
    from strongroom.runtime import auth_config

    try:
        pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
        found = TenancyService(engine, pepper=pepper).tenant_by_name(tenant)
        if found is None:
            raise InvalidRequest(f"no tenant named {tenant!r}", param="tenant")
        policy = PasswordPolicy(
            settings.password_memory_kib, settings.password_time_cost, settings.password_parallelism
        )
        users = UserService(
            engine, Passwords(policy), auth_config(settings), kms=open_key_manager(settings)
        )
        after: str | None = None
        while True:
            page, more = users.list_users(found.id, starting_after=after, limit=500, email=email)
            for user in page:
                print(json.dumps({**user.public(), "tenant_id": found.id}))
            if not more or not page:
                break
            after = page[-1].id
    finally:
        engine.dispose()
