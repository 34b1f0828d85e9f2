"""What every `strongroom` subcommand shares: the database option, the one engine factory
(settings, engine, schema check), the services built on it by the composition root, JSON
output and the error report."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Final

import typer
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine

from strongroom.audit.service import AuditLog
from strongroom.core.errors import StrongroomError
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.service import LedgerService
from strongroom.settings import Settings, load_settings
from strongroom.tenancy.service import TenancyService

CLI_ACTOR: Final = "cli"  # the actor of every change made from this command

DbOption = Annotated[
    str | None, typer.Option("--database-url", help="Overrides STRONGROOM_DATABASE_URL.")
]


def build_ledger(engine: Engine, settings: Settings) -> tuple[LedgerService, AuditLog]:
    """runtime.build_ledger, imported when first needed: the composition root brings the HTTP
    stack (FastAPI, ~1.5 s), which no command but `serve` uses."""
    from strongroom.runtime import build_ledger as build

    return build(engine, settings)


def settings_for(database_url: str | None) -> Settings:
    return load_settings(database_url=database_url) if database_url else load_settings()


def open_engine(database_url: str | None, *, schema: str = "current") -> tuple[Engine, Settings]:
    """The one engine factory of the CLI. `schema`: "current" refuses an out-of-date schema
    (naming `strongroom db upgrade`), "upgrade" applies pending migrations, "any" checks
    nothing (the `db` commands)."""
    settings = settings_for(database_url)
    engine = create_engine(
        settings.database_url,
        sqlite_cache_mib=settings.sqlite_cache_mib,
        sqlite_writer_lock_timeout_ms=settings.sqlite_writer_lock_timeout_ms,
    )
    if schema == "upgrade":
        migrate.upgrade(engine)
    elif schema == "current":
        migrate.require_current(engine)
    else:
        assert schema == "any", schema
    return engine, settings


def ledger_service(database_url: str | None, *, upgrade: bool = False) -> LedgerService:
    engine, settings = open_engine(database_url, schema="upgrade" if upgrade else "current")
    return build_ledger(engine, settings)[0]


def tenancy_service(database_url: str | None) -> TenancyService:
    engine, settings = open_engine(database_url)
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    return TenancyService(engine, pepper=pepper, audit=build_ledger(engine, settings)[1])


@contextlib.contextmanager
def audit_log(database_url: str | None) -> Iterator[AuditLog]:
    engine, settings = open_engine(database_url)
    try:
        yield build_ledger(engine, settings)[1]
    finally:
        engine.dispose()


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def say_new_tenant(name: str, tenant_id: str) -> None:
    """On stderr (stdout stays the JSON answer): a command that takes a tenant by name makes
    it when none has that name, so a misspelt name makes a new, empty tenant."""
    typer.echo(f"note: no tenant was named {name!r}: created it ({tenant_id})", err=True)


def reporting_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """An expected failure ends the command with its code and message on stderr, exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StrongroomError as exc:
            typer.echo(f"error: {exc.code}: {exc}", err=True)
            raise typer.Exit(2) from None
        except sa_exc.OperationalError as exc:
            # The database cannot be reached or opened: say which, not a driver traceback.
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            typer.echo(f"error: database_unavailable: {reason}", err=True)
            raise typer.Exit(2) from None

    return wrapper
