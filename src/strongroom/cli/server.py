"""`strongroom serve`, `strongroom worker` and `strongroom api-keys`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from strongroom import __version__
from strongroom.cli.common import (
    CLI_ACTOR,
    DbOption,
    open_engine,
    print_json,
    settings_for,
    tenancy_service,
)

keys = typer.Typer(no_args_is_help=True, help="API keys (Authorization: Bearer sk_...).")


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    dev_key: Annotated[
        bool, typer.Option(help="create an admin API key for tenant 'default' and print it")
    ] = False,
    database_url: DbOption = None,
) -> None:
    """Serve the HTTP API (uvicorn). The schema must be current: `strongroom db upgrade`."""
    import uvicorn

    if database_url:
        os.environ["STRONGROOM_DATABASE_URL"] = database_url
    # Checked here too so that the message comes before any worker starts.
    open_engine(None, schema="current")[0].dispose()
    if dev_key:
        key, secret = tenancy_service(None).create_api_key("default", ["admin"])
        typer.echo(f"development API key ({key.id}, tenant 'default', scope admin):", err=True)
        typer.echo(f"  export SR_KEY={secret}", err=True)
    typer.echo(f"strongroom {__version__} on http://{host}:{port} ({workers} worker(s))", err=True)
    uvicorn.run(
        "strongroom.runtime:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


def worker(database_url: DbOption = None) -> None:
    """Deliver webhooks (the dispatcher) until SIGTERM or Ctrl-C; for a deployment that runs
    `serve` with STRONGROOM_DISPATCHER=false. Several workers may run at once."""
    from strongroom.events.dispatcher import main as dispatcher_main

    settings = settings_for(database_url)
    argv = ["--database-url", settings.database_url]
    if settings.webhook_allow_private_targets:
        argv.append("--allow-private-targets")
    dispatcher_main(argv)


@keys.command("create")
def api_keys_create(
    tenant: Annotated[str, typer.Option(help="the tenant's name; created if new")],
    scope: Annotated[list[str], typer.Option(help="ledger:read, ledger:write or admin")],
    database_url: DbOption = None,
) -> None:
    """Create an API key and print its secret, once: only a keyed hash is stored."""
    key, secret = tenancy_service(database_url).create_api_key(tenant, scope, actor=CLI_ACTOR)
    print_json(
        {
            "id": key.id,
            "tenant_id": key.tenant_id,
            "scopes": sorted(s.value for s in key.scopes),
            "secret": secret,
        }
    )


@keys.command("revoke")
def api_keys_revoke(key_id: str, database_url: DbOption = None) -> None:
    """Revoke an API key (servers honour it within API_KEY_CACHE_TTL_S seconds)."""
    tenancy_service(database_url).revoke_api_key(key_id, actor=CLI_ACTOR)
    typer.echo(f"revoked {key_id}")
