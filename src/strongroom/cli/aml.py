"""`strongroom aml`: the synthetic generator and the scan over the ledger's history
(docs/aml.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import DbOption, build_ledger, open_engine, print_json
from strongroom.cli.progress import progress
from strongroom.core.clock import time_param

app = typer.Typer(no_args_is_help=True, help="AML monitoring: simulate, scan.")


@app.command("simulate")
def simulate(
    out: Annotated[
        Path, typer.Option("--out", help="the transfers file: .csv or .parquet", dir_okay=False)
    ],
    accounts: Annotated[
        int,
        typer.Option(
            "--accounts", min=500, max=1_000_000, help="how many accounts the history holds"
        ),
    ] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", help="the random seed: the same seed, the same history")
    ] = 7,
    days: Annotated[
        int, typer.Option("--days", min=220, max=3_650, help="how many days the history covers")
    ] = 240,
) -> None:
    """A synthetic history with every typology planted among normal activity: the transfers
    (OUT), the accounts and the ground-truth labels beside it (<stem>.accounts.csv,
    <stem>.labels.csv)."""
    from strongroom.compliance.aml import simulate as sim

    if out.suffix not in (".csv", ".parquet"):
        raise typer.BadParameter("--out ends in .csv or .parquet", param_hint="--out")
    result = sim.simulate(accounts, seed, days)
    paths = sim.write(result, out)
    print_json(
        {
            "accounts": result.monitored,
            "transfers": len(result.transfers),
            "labels": sim.label_counts(result),
            "files": [str(p) for p in paths],
        }
    )


@app.command("scan")
def scan(
    since: Annotated[
        str | None,
        typer.Option("--since", help="only transfers created after this RFC 3339 time"),
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Run the detectors over the ledger's posted transfers, oldest first, and open a case
    per new alert (one per account and typology per window, shared with the live sink)."""
    from strongroom.cases.service import CaseService
    from strongroom.compliance.aml.service import AmlService
    from strongroom.events.service import EventService
    from strongroom.runtime import EVENT_TYPES

    since_us = time_param(since, "since") if since else None
    engine, settings = open_engine(database_url)
    try:
        ledger, audit = build_ledger(engine, settings)
        events = EventService(engine, event_types=EVENT_TYPES)
        cases = CaseService(engine, ledger, audit=audit, events=events)
        service = AmlService(engine, ledger, cases)
        with progress("aml scan") as report:
            result = service.scan(since_us, progress=report)
        print_json(result.to_dict())
    finally:
        engine.dispose()
