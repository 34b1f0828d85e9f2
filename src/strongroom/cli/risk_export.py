"""`strongroom risk export --out FILE`: a tenant's payments (the risk events the ledger
recorded) as a raw payment history, for `risk train` and `risk backtest`
(docs/risk-training.md). Payee, device and IP are keyed hashes, as stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import DbOption, open_engine, print_json, reporting_errors
from strongroom.cli.progress import progress
from strongroom.cli.risk import app
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.ledger.service import DEFAULT_TENANT_ID
from strongroom.risk.history import LABEL_DELAY_DAYS_DEFAULT, LABEL_DELAY_DAYS_MAX, export_history
from strongroom.tenancy.service import TenancyService


@app.command("export")
@reporting_errors
def export_command(
    out: Annotated[Path, typer.Option("--out", help="The file to write: .csv or .parquet.")],
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="The tenant's name (default: the deployment's default)."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Payments from this date or time on (ISO 8601, UTC), after a 37-day "
            "unlabelled warm-up.",
        ),
    ] = None,
    label_delay_days: Annotated[
        int,
        typer.Option(
            "--label-delay-days",
            min=0,
            max=LABEL_DELAY_DAYS_MAX,
            help="Unlabelled payments older than this count as genuine; newer ones get a "
            "blank label (not trained on). 0: every unlabelled payment is genuine.",
        ),
    ] = LABEL_DELAY_DAYS_DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    database_url: DbOption = None,
) -> None:
    """Write the tenant's payments as a raw payment history (CSV or Parquet)."""
    since_us = 0
    if since is not None:
        try:
            since_us = clock.parse_timestamp(since)
        except ValueError:
            raise InvalidRequest(
                f"--since {since!r} is not a date or time", param="since"
            ) from None
    engine, _settings = open_engine(database_url)
    try:
        tenant_id = DEFAULT_TENANT_ID
        if tenant is not None:
            found = TenancyService(engine).tenant_by_name(tenant)
            if found is None:
                raise NotFound(f"no tenant is named {tenant!r}", param="tenant")
            tenant_id = found.id
        with progress("export") as report:
            summary = export_history(
                engine,
                tenant_id,
                out,
                since_us=since_us,
                label_delay_days=label_delay_days,
                report=report,
            )
    finally:
        engine.dispose()
    if as_json:
        print_json({**summary.to_dict(), "path": str(out)})
        return
    typer.echo(
        f"{summary.rows:,} payments ({summary.frauds:,} fraud, {summary.genuine:,} genuine, "
        f"{summary.unlabelled:,} not labelled yet) written to {out}"
    )
