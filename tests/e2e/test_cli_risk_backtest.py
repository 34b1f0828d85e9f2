"""`strongroom risk backtest` end to end, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from strongroom.cli import app

RULES = """
version: cli-1
rules:
  - id: big
    when: {feature: amount, op: ">", value: 100}
    action: block
    reason: big amount
  - id: odd
    when: {feature: x, op: "==", value: 1}
    action: review
    reason: odd
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    data = tmp_path / "history.parquet"
    pd.DataFrame(
        {"amount": [150, 200, 50, 50, 10], "x": [0, 1, 1, 0, 0], "fraud": [1, 0, 1, 0, 1]}
    ).to_parquet(data)
    return rules, data


def test_json_report(files: tuple[Path, Path]) -> None:
    rules, data = files
    result = CliRunner().invoke(
        app, ["risk", "backtest", str(rules), "--data", str(data), "--label", "fraud", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["rules_version"].startswith("cli-1:")
    assert report["rows"] == 5
    assert report["positives"] == 3
    assert report["verdicts"] == {"allow": 2, "review": 1, "block": 2}
    assert report["flagged"]["review_or_block"] == {
        "rows": 3,
        "frauds": 2,
        "precision": 2 / 3,
        "recall": 2 / 3,
    }
    assert report["flagged"]["block"] == {"rows": 2, "frauds": 1, "precision": 0.5, "recall": 1 / 3}
    assert [(r["id"], r["rows"], r["frauds"]) for r in report["rules"]] == [
        ("big", 2, 1),
        ("odd", 2, 1),
    ]
    assert "5 rows decided" in result.stderr


def test_text_report(files: tuple[Path, Path]) -> None:
    rules, data = files
    result = CliRunner().invoke(
        app, ["risk", "backtest", str(rules), "--data", str(data), "--label", "fraud"]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[1] == "rows 5  labelled frauds 3"
    assert any(line.split() == ["block", "2", "40.00%"] for line in lines)
    assert any(
        line.split() == ["review", "or", "block", "3", "2", "66.67%", "66.67%"] for line in lines
    )
    assert any(line.split() == ["big", "block", "2", "1", "50.00%", "33.33%"] for line in lines)


def test_a_bad_rules_file_or_bad_data_exits_nonzero_with_the_reason(
    files: tuple[Path, Path],
) -> None:
    rules, data = files
    rules.write_text(RULES.replace('op: "=="', 'op: "=>"'))
    result = CliRunner().invoke(app, ["risk", "backtest", str(rules), "--data", str(data)])
    assert result.exit_code == 2
    assert (
        'error: invalid_rules: rules.yaml: rules[1].when.op: unknown operator "=>"' in result.stderr
    )
    rules.write_text(RULES)
    result = CliRunner().invoke(
        app, ["risk", "backtest", str(rules), "--data", str(data.with_suffix(".csv"))]
    )
    assert result.exit_code == 2
    assert "error: invalid_backtest_data: history.csv: no such file" in result.stderr
