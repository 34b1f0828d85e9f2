"""`strongroom compliance check`: runs the compliance controls once (docs/compliance-controls.md),
stores the report (served by GET /v1/compliance/report), and writes it as Markdown or HTML, and
JSON. Progress on stderr. Exit status 1 when a control failed, so a pipeline can stop on it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, open_engine, reporting_errors
from strongroom.cli.progress import progress

app = typer.Typer(no_args_is_help=True, help="Automated compliance controls and their report.")


class Format(StrEnum):
    MD = "md"
    HTML = "html"
    JSON = "json"


@app.command("check")
@reporting_errors
def check(
    database_url: DbOption = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="the report's format on stdout or beside the JSON")
    ] = Format.MD,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="a directory to write compliance-report.<format> and compliance-report.json "
            "into (else the report goes to stdout)",
        ),
    ] = None,
) -> None:
    """Run every control, store the report, write it; exit 1 when a control failed."""
    from strongroom.compliance.controls.model import Outcome, to_html, to_markdown
    from strongroom.compliance.wiring import controls_service
    from strongroom.events.service import EventService
    from strongroom.runtime import EVENT_TYPES, build_ledger
    from strongroom.security.keys import open_keys

    engine, settings = open_engine(database_url)
    try:
        kms, _created = open_keys(settings, engine)
        audit = build_ledger(engine, settings, kms=kms)[1]
        events = EventService(engine, event_types=EVENT_TYPES)
        service = controls_service(settings, engine, kms, audit, events)
        with progress("compliance check") as show:
            report = service.run(actor=CLI_ACTOR, progress=show)
    finally:
        engine.dispose()
    if fmt is Format.MD:
        rendered = to_markdown(report)
    elif fmt is Format.HTML:
        rendered = to_html(report)
    else:
        rendered = report.to_json() + "\n"
    if out is None:
        typer.echo(rendered, nl=False)
    else:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compliance-report.json").write_text(report.to_json() + "\n", encoding="utf-8")
        if fmt is not Format.JSON:
            (out / f"compliance-report.{fmt.value}").write_text(rendered, encoding="utf-8")
        typer.echo(f"report {report.id}: {report.outcome.value}; written to {out}", err=True)
    if report.outcome is Outcome.FAIL:
        raise typer.Exit(1)
