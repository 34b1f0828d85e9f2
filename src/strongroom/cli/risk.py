"""`strongroom risk`: train, evaluate and backtest fraud models and rules (docs/risk.md).

Each command lives in its own module (cli/risk_*.py), registered on this app; the heavy
libraries (LightGBM, pandas) are imported inside the commands, so `strongroom --help` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    no_args_is_help=True,
    help="Fraud models and rules: train, evaluate, backtest, shadow and promote.",
)

from strongroom.cli import risk_backtest as _risk_backtest  # noqa: E402, F401 -- registers `risk backtest`
from strongroom.cli import risk_models  # noqa: E402, F401 (registers `risk models` on app)
from strongroom.cli import risk_train  # noqa: E402, F401 (registers train and evaluate on app)
from strongroom.cli import risk_handbook as _risk_handbook  # noqa: E402, F401 - registers `handbook`
