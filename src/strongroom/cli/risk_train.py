"""`strongroom risk train` and `strongroom risk evaluate` (docs/risk-models.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import print_json, reporting_errors
from strongroom.cli.progress import progress
from strongroom.cli.risk import app


@app.command("train")
@reporting_errors
def train_command(
    data: Annotated[Path, typer.Option("--data", help="A labelled CSV or Parquet file.")],
    label: Annotated[str, typer.Option("--label", help="The binary label column.")],
    time: Annotated[
        str | None, typer.Option("--time", help="Timestamp or seconds column: the split's order.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id", help="An id column, not a feature.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the model (default: ./VERSION.json)."),
    ] = None,
    budget_s: Annotated[
        float | None,
        typer.Option(
            "--budget-s",
            min=1.0,
            help="Time budget of the whole run, seconds (default: scaled to the data, <= 600).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the hold-out metrics as JSON.")
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the search and the model.")] = 0,
) -> None:
    """Train a fraud model on labelled history, with a time-ordered hold-out, and write it."""
    from strongroom.risk.trainer import load_frame, summary_lines, train

    frame = load_frame(data)
    with progress("training") as report:
        result = train(frame, label, time, id_column, budget_s, report, seed=seed, source=data.name)
    path = out if out is not None else Path(f"{result.artefact.version}.json")
    result.artefact.save(path)
    if as_json:
        print_json({**result.report, "model_path": str(path)})
        return
    for line in summary_lines(result.report):
        typer.echo(line)
    typer.echo(f"written to {path}")


@app.command("evaluate")
@reporting_errors
def evaluate_command(
    model: Annotated[Path, typer.Option("--model", help="A model file from `risk train`.")],
    data: Annotated[Path, typer.Option("--data", help="A labelled CSV or Parquet file.")],
    label: Annotated[str, typer.Option("--label", help="The binary label column.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for report.md and its plots.")] = Path(
        "risk-report"
    ),
) -> None:
    """Evaluate a model on labelled data: a Markdown report with PNG plots."""
    from strongroom.risk.artefact import ModelArtifact
    from strongroom.risk.evaluate import evaluate
    from strongroom.risk.trainer import load_frame

    artefact = ModelArtifact.load(model)
    frame = load_frame(data)
    result = evaluate(artefact, frame, label, out)
    typer.echo(str(result.report_path))
