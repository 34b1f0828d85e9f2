"""The one `strongroom` command, with a subcommand group per domain (cli/<group>.py), all
sharing one engine factory (cli/common.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom import __version__
from strongroom.cli import (
    aml,
    audit,
    bench,
    compliance,
    db,
    demo,
    keys,
    ledger,
    openbanking,
    risk,
    sanctions,
    server,
    users,
)
from strongroom.cli.common import reporting_errors
from strongroom.logs import configure_logging
from strongroom.settings import log_level_or_default

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Strongroom: a fintech core.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"strongroom {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Strongroom: a fintech core."""


app.add_typer(db.app, name="db")
app.add_typer(ledger.app, name="ledger")
app.command()(demo.demo)
app.command()(server.serve)
app.command()(server.worker)
app.add_typer(server.keys, name="api-keys")
app.add_typer(audit.app, name="audit")
app.add_typer(users.app, name="users")
app.add_typer(bench.app, name="bench")
app.add_typer(keys.app, name="keys")
app.add_typer(risk.app, name="risk")
app.add_typer(compliance.app, name="compliance")  # its commands report errors themselves
app.add_typer(sanctions.app, name="sanctions")
app.add_typer(aml.app, name="aml")
app.add_typer(openbanking.app, name="openbanking")

for _group in (
    app,
    db.app,
    ledger.app,
    server.keys,
    audit.app,
    bench.app,
    keys.app,
    users.app,
    sanctions.app,
    aml.app,
    openbanking.clients,
):
    for _command in _group.registered_commands:
        assert _command.callback is not None
        _command.callback = reporting_errors(_command.callback)


def main() -> None:
    # Before the settings are read, so that every command's log lines are JSON.
    configure_logging(log_level_or_default())
    app()
