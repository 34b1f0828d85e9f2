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

# Each command's module registers itself on `app` (imported last: they import `app`).
from strongroom.cli import (  # noqa: E402
    risk_backtest,  # noqa: F401 -- `risk backtest`
    risk_export,  # noqa: F401 -- `risk export`
    risk_handbook,  # noqa: F401 -- `risk handbook`
    risk_models,  # noqa: F401 -- `risk models ...`
    risk_train,  # noqa: F401 -- `risk train`, `risk evaluate`
)
