"""`strongroom db`: the database schema."""

from __future__ import annotations

import typer

from strongroom.cli.common import DbOption, open_engine
from strongroom.db import migrate

app = typer.Typer(no_args_is_help=True, help="Database schema.")


@app.command("upgrade")
def db_upgrade(database_url: DbOption = None) -> None:
    """Apply every pending migration."""
    engine, _settings = open_engine(database_url, schema="any")
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    typer.echo(f"schema: {before or 'empty'} -> {migrate.current_revision(engine)}")


@app.command("current")
def db_current(database_url: DbOption = None) -> None:
    """Print the schema revision of the database and the one this Strongroom needs."""
    engine, _settings = open_engine(database_url, schema="any")
    typer.echo(f"database: {migrate.current_revision(engine) or 'empty'}")
    typer.echo(f"needed:   {migrate.head_revision()}")
