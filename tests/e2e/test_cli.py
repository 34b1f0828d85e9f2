"""The `strongroom` command end to end, in-process, on a SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli import app
from strongroom.db import migrate


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return CliRunner()


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_demo_posts_transfers_and_checks_invariants(cli: CliRunner) -> None:
    out = run(cli, "demo", "--transfers", "50")
    assert "posted 55 transfers in one batch" in out
    assert "verify: 6 accounts" in out
    assert "all invariants hold" in out


def test_commands_refuse_bad_input_and_stale_schema(cli: CliRunner) -> None:
    out = run(cli, "ledger", "create-ledger", "main", code=2)
    assert "strongroom db upgrade" in out  # the schema is missing: the message names the fix
    assert f"schema: empty -> {migrate.head_revision()}" in run(cli, "db", "upgrade")
    ledger = json.loads(run(cli, "ledger", "create-ledger", "main"))["id"]
    bank = json.loads(
        run(cli, "ledger", "create-account", ledger, "USD", "--normal-balance", "debit")
    )
    alice = json.loads(
        run(
            cli,
            "ledger",
            "create-account",
            ledger,
            "USD",
            "--flag",
            "debits_must_not_exceed_credits",
        )
    )
    assert alice["flags"] == ["debits_must_not_exceed_credits"]
    deposit = ["ledger", "transfer", ledger, bank["id"], alice["id"]]
    assert json.loads(run(cli, *deposit, "1000", "--id", "d1"))["result"] == "created"
    assert json.loads(run(cli, *deposit, "1000", "--id", "d1"))["result"] == "exists"
    assert "amount_not_integer" in run(cli, *deposit, "12.5", code=2)
    assert "amount_not_positive" in run(cli, *deposit, "0", code=2)
    assert "unknown_asset" in run(cli, "ledger", "create-account", ledger, "XYZ", code=2)
    spend = ["ledger", "transfer", ledger, alice["id"], bank["id"]]
    assert "refused: insufficient_funds" in run(cli, *spend, "5000", code=1)
    balance = json.loads(run(cli, "ledger", "balance", alice["id"]))
    assert balance == {
        "version": 1,
        "balances": {
            "debits_posted": 0,
            "credits_posted": 1000,
            "debits_pending": 0,
            "credits_pending": 0,
            "posted": 1000,
            "pending": 1000,
            "available": 1000,
        },
    }


def test_two_phase_history_and_verify(cli: CliRunner, tmp_path: Path) -> None:
    run(cli, "db", "upgrade")
    ledger = json.loads(run(cli, "ledger", "create-ledger", "main"))["id"]
    a = json.loads(run(cli, "ledger", "create-account", ledger, "EUR"))["id"]
    b = json.loads(run(cli, "ledger", "create-account", ledger, "EUR"))["id"]
    run(cli, "ledger", "transfer", ledger, a, b, "300", "--pending", "--id", "hold")
    posted = json.loads(run(cli, "ledger", "post", "hold", "--amount", "200"))
    assert posted["transfer"]["amount"] == 200
    assert "pending_transfer_already_posted" in run(cli, "ledger", "void", "hold", code=1)
    entries = json.loads(run(cli, "ledger", "entries", b, "--limit", "1"))
    assert entries["has_more"] is True
    assert entries["data"][0]["balance_after"]["posted"] == 200
    at_one = json.loads(run(cli, "ledger", "balance", b, "--version", "1"))
    assert at_one["balances"]["pending"] == 300
    assert at_one["balances"]["posted"] == 0
    listed = json.loads(run(cli, "ledger", "transfers", "--account-id", b))
    assert [t["id"] for t in listed["data"]][-1] == "hold"
    assert "invariants: ok" in run(cli, "ledger", "verify")
    # Tamper with a balance behind the ledger's back: verify names it and exits 1.
    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = ?", (b,))
    out = run(cli, "ledger", "verify", code=1)
    assert f"account {b}: balances differ from the sum of its entries" in out


def test_create_account_with_an_id_is_idempotent(cli: CliRunner) -> None:
    run(cli, "db", "upgrade")
    ledger = json.loads(run(cli, "ledger", "create-ledger", "main"))["id"]
    args = ("ledger", "create-account", ledger, "USD", "--id", "acc_ops", "--name", "ops")
    first = json.loads(run(cli, *args))
    assert first["id"] == "acc_ops"
    assert json.loads(run(cli, *args)) == first  # exists: the stored account
    out = run(cli, *args[:-1], "other", code=2)
    assert "exists_with_different_name" in out
