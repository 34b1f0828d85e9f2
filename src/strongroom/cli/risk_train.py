"""`strongroom risk train` and `strongroom risk evaluate` (docs/risk-models.md). On a raw
payment history (`strongroom risk export`), `risk train` trains on the live feature engine's
features of it (docs/risk-training.md)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import print_json, reporting_errors
from strongroom.cli.progress import progress
from strongroom.cli.risk import app
from strongroom.core.errors import InvalidRequest


class FeaturesFrom(StrEnum):
    """`--features`: what the model is trained on."""

    AUTO = "auto"
    ENGINE = "engine"  # the feature engine's replay of a raw history: usable live
    COLUMNS = "columns"  # the file's own columns


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
    features: Annotated[
        FeaturesFrom,
        typer.Option(
            "--features",
            help="engine: replay a raw payment history through the live feature engine and "
            "train on its features (a model the gate can use); columns: train on the file's "
            "own columns; auto: engine when the file holds a raw history's columns only.",
        ),
    ] = FeaturesFrom.AUTO,
) -> None:
    """Train a fraud model on labelled history, with a time-ordered hold-out, and write it."""
    from strongroom.risk.trainer import load_frame, summary_lines, train

    with progress("training") as report:
        if _engine_mode(data, label, features):
            from strongroom.risk.history import ID, TIME, engine_features

            if time not in (None, TIME) or id_column not in (None, ID):
                raise InvalidRequest(
                    f"a raw payment history's time and id are its {TIME!r} and {ID!r} columns",
                    param="time" if time not in (None, TIME) else "id",
                )
            frame = engine_features(data, label, report=report)
            time, id_column = TIME, ID
        else:
            frame = load_frame(data)
        result = train(frame, label, time, id_column, budget_s, report, seed=seed, source=data.name)
    path = out if out is not None else Path(f"{result.artefact.version}.json")
    result.artefact.save(path)
    if as_json:
        print_json({**result.report, "model_path": str(path)})
        return
    for line in summary_lines(result.report):
        typer.echo(line)
    typer.echo(f"written to {path}")


def _engine_mode(data: Path, label: str, features: FeaturesFrom) -> bool:
    """Whether to train on the feature engine's replay of `data` (a raw payment history):
    asked for, or (auto) the file holds the raw columns and nothing else but the label."""
    if features is FeaturesFrom.COLUMNS:
        return False
    from strongroom.risk.backtest import (
        RAW_COLUMNS_OPTIONAL,
        RAW_COLUMNS_REQUIRED,
        history_columns,
        is_raw_history,
    )

    if features is FeaturesFrom.ENGINE:
        return True
    try:
        columns = history_columns(data)
    except InvalidRequest:
        return False  # not a file the backtest reads: load_frame says why, if it cannot either
    raw = {*RAW_COLUMNS_REQUIRED, *RAW_COLUMNS_OPTIONAL, label}
    return is_raw_history(columns) and set(columns) <= raw


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
