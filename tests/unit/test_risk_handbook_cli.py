"""`strongroom risk handbook`: registered on the risk app; a missing data folder is a clear error
(the full run is tests/integration/test_risk_features.py's protocol test)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from strongroom.cli import app
from strongroom.cli.risk_handbook import _table


def test_a_missing_data_folder_is_refused_with_its_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(app, ["risk", "handbook", "--data", str(missing)])
    assert result.exit_code == 2
    assert "handbook data not found" in result.output
    assert str(missing) in result.output


def test_the_table_puts_our_mean_beside_the_published_results() -> None:
    fold = {"fold": 0, "test_first": "2018-08-29", "roc_auc": 0.9, "average_precision": 0.75}
    result = {
        "folds": [{**fold, "card_precision_at_100": 0.31}],
        "mean": {"roc_auc": 0.9, "average_precision": 0.75, "card_precision_at_100": 0.31},
        "published": [
            {
                "model": "XGBoost",
                "roc_auc": 0.87,
                "average_precision": 0.687,
                "card_precision_at_100": 0.303,
            }
        ],
        "model": "a forest",
    }
    lines = _table(result).splitlines()
    assert any(line.startswith("strongroom (mean)") and "0.750" in line for line in lines)
    assert any("XGBoost" in line and "0.687" in line and "0.303" in line for line in lines)
    assert lines[-1] == "model: a forest"
