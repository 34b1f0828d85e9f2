"""`strongroom risk handbook`: our model on the Fraud Detection Handbook's data and protocol, beside
the handbook's published results (docs/risk-features.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.common import print_json
from strongroom.cli.progress import progress
from strongroom.cli.risk import app

DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        help="the fdh_simulated folder (transactions_2018-MM.parquet)",
        file_okay=False,
    ),
]


@app.command("handbook")
def handbook(
    data: DataOption = Path("../shared/data/fraud/fdh_simulated"),
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Our model on the Fraud Detection Handbook's data and protocol, beside its results.

    Replays the transactions through the feature engine, trains on the four prequential folds
    and prints AUC, average precision and card precision@100 per fold and mean."""
    from strongroom.risk import handbook as hb

    if not data.is_dir():
        typer.echo(f"error: handbook data not found at {data} (pass --data DIR)", err=True)
        raise typer.Exit(2)
    with progress("handbook") as report:
        report("replaying the transactions through the feature engine")
        loaded = hb.load(data)
        report(f"{len(loaded.frame)} transactions; training {hb.FOLDS} folds")
        result = hb.evaluate(hb.handbook_model(), loaded, progress=report)
    result["model"] = hb.MODEL_DESCRIPTION
    result["published"] = [
        {"model": name, "roc_auc": auc, "average_precision": ap, "card_precision_at_100": cp}
        for name, auc, ap, cp in hb.PUBLISHED
    ]
    result["targets"] = hb.TARGETS
    if json_output:
        print_json(result)
        return
    typer.echo(_table(result))


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'':28} {'AUC ROC':>8} {'AP':>8} {'CP@100':>8}"]

    def row(name: str, auc: float, ap: float, cp: float) -> None:
        lines.append(f"{name:28} {auc:8.3f} {ap:8.3f} {cp:8.3f}")

    for fold in result["folds"]:
        label = f"fold {fold['fold']} (test {fold['test_first']})"
        row(label, fold["roc_auc"], fold["average_precision"], fold["card_precision_at_100"])
    mean = result["mean"]
    row(
        "strongroom (mean)",
        mean["roc_auc"],
        mean["average_precision"],
        mean["card_precision_at_100"],
    )
    lines.append("published (handbook, test set):")
    for entry in result["published"]:
        row(
            f"  {entry['model']}",
            entry["roc_auc"],
            entry["average_precision"],
            entry["card_precision_at_100"],
        )
    lines.append(f"model: {result['model']}")
    return "\n".join(lines)
