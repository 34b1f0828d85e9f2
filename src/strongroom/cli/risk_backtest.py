"""`strongroom risk backtest RULES --data PATH`: what a rule set (and a model) would have
flagged on a history, with precision and recall where labels exist (docs/risk-rules.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import print_json, reporting_errors
from strongroom.cli.progress import progress
from strongroom.cli.risk import app
from strongroom.risk.backtest import (
    BATCH_ROWS_DEFAULT,
    BATCH_ROWS_MAX,
    BacktestReport,
    Hits,
    backtest_file,
    load_model,
)
from strongroom.risk.rules import RuleSet


@app.command()
@reporting_errors
def backtest(
    rules: Annotated[Path, typer.Argument(help="The rule set, YAML or JSON.")],
    data: Annotated[
        Path,
        typer.Option("--data", help="CSV or Parquet: feature columns, or a raw payment history."),
    ],
    label: Annotated[
        str | None,
        typer.Option("--label", help="The 0/1 fraud column (a raw history's default: label)."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="A model artefact: its score thresholds act.")
    ] = None,
    batch_rows: Annotated[
        int,
        typer.Option(
            "--batch-rows",
            min=1,
            max=BATCH_ROWS_MAX,
            help="Rows per decision batch, as the gate batches (decisions do not depend on it).",
        ),
    ] = BATCH_ROWS_DEFAULT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a history through the rules (and model) and report what they would have flagged."""
    rule_set = RuleSet.load(rules)
    scorer = load_model(model) if model is not None else None
    with progress(f"backtest {rule_set.version}") as report:
        result = backtest_file(
            rule_set, data, label=label, model=scorer, batch_rows=batch_rows, report=report
        )
    if as_json:
        print_json(result.to_dict())
    else:
        typer.echo(render(result))


def render(report: BacktestReport) -> str:
    """The report as aligned text tables."""
    lines = [
        f"rules {report.rules_version}  model {report.model_version or '-'}  data {report.data}",
        f"rows {report.rows:,}"
        + (f"  labelled frauds {report.positives:,}" if report.positives is not None else ""),
        "",
        f"{'verdict':<16}{'rows':>10}{'share':>9}",
    ]
    for verdict, count in report.verdicts.items():
        share = count / report.rows if report.rows else 0.0
        lines.append(f"{verdict:<16}{count:>10,}{share:>9.2%}")
    lines += ["", _header("flagged", "")]
    lines.append(_line("review or block", "", report.flagged["review_or_block"]))
    lines.append(_line("block", "", report.flagged["block"]))
    lines += ["", _header("rule", "action")]
    for rule_id, (action, hits) in report.rules.items():
        lines.append(_line(rule_id, action, hits))
    for code, hits in report.scores.items():
        lines.append(_line(code, "score", hits))
    return "\n".join(lines)


def _header(first: str, second: str) -> str:
    return f"{first:<28}{second:<8}{'hits':>10}{'frauds':>9}{'precision':>11}{'recall':>9}"


def _line(name: str, action: str, hits: Hits) -> str:
    frauds = f"{hits.frauds:,}" if hits.frauds is not None else "-"
    return (
        f"{name:<28}{action:<8}{hits.rows:>10,}{frauds:>9}"
        f"{_percent(hits.precision):>11}{_percent(hits.recall):>9}"
    )


def _percent(value: float | None) -> str:
    return f"{value:.2%}" if value is not None else "-"
