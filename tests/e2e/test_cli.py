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


def _leaf_commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = getattr(command, "commands", None)
    if subs is None:
        return [path]
    return [leaf for name, sub in subs.items() for leaf in _leaf_commands(sub, (*path, name))]


def test_every_command_option_and_argument_has_help() -> None:
    import typer

    root = typer.main.get_command(app)
    leaves = _leaf_commands(root)
    assert len(leaves) >= 30
    missing = []
    for path in leaves:
        command: object = root
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        if not getattr(command, "help", None):
            missing.append(" ".join(path))
        for param in command.params:  # type: ignore[attr-defined]
            names = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
            assert not any(n.startswith("--no-no-") for n in names), (path, names)
            if not getattr(param, "help", None):
                missing.append(f"{' '.join(path)} {names or param.name}")
    assert not missing, missing


def test_choices_are_listed_and_match_the_model() -> None:
    from strongroom.cli.ledger import FlagName, NormalBalance, StatusName
    from strongroom.ledger.model import AccountFlag, Direction, Status

    assert [c.value for c in NormalBalance] == [d.label for d in Direction]
    assert [c.value for c in StatusName] == [s.label for s in Status]
    assert {c.value for c in FlagName} == {
        f.name.lower() for f in AccountFlag if f is not AccountFlag.NONE
    }
    out = CliRunner().invoke(app, ["ledger", "transfers", "--help"], env={"COLUMNS": "200"})
    assert "posted|pending|voided|expired" in out.output
    out = CliRunner().invoke(app, ["ledger", "transfers", "--status", "lost"])
    assert out.exit_code == 2
    assert "lost" in out.output


def test_version() -> None:
    from strongroom import __version__

    assert run(CliRunner(), "--version").strip() == f"strongroom {__version__}"


def test_dev_key_is_kept_while_the_database_honours_it(cli: CliRunner, tmp_path: Path) -> None:
    from strongroom.cli.common import tenancy_service
    from strongroom.cli.server import _development_key

    run(cli, "db", "upgrade")
    tenancy = tenancy_service(None)
    path = tmp_path / "state" / "dev-key"
    key, secret, kept = _development_key(tenancy, path)
    assert not kept
    assert path.read_text().strip() == secret
    assert path.stat().st_mode & 0o777 == 0o600
    again, secret_again, kept = _development_key(tenancy, path)
    assert kept
    assert (again.id, secret_again) == (key.id, secret)
    tenancy.revoke_api_key(key.id)
    tenancy._cache.clear()  # what API_KEY_CACHE_TTL_S later sees
    fresh, fresh_secret, kept = _development_key(tenancy, path)
    assert not kept
    assert fresh.id != key.id
    assert path.read_text().strip() == fresh_secret


def test_a_bad_setting_is_one_line_naming_the_variable(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRONGROOM_RATE_LIMIT_PER_S", "abc-secretish")
    result = cli.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: invalid_setting: STRONGROOM_RATE_LIMIT_PER_S: ")
    assert "secretish" not in result.output  # the value is never echoed


def _factory_stderr(**env: str) -> list[str]:
    """The stderr lines of `create_app_from_env` (what uvicorn's factory runs) in a fresh
    process with `env` added; it must exit 2."""
    import os
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from strongroom.runtime import create_app_from_env as f; f()"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    return done.stderr.strip().splitlines()


def test_the_server_factory_reports_a_bad_setting_in_one_line(tmp_path: Path) -> None:
    assert _factory_stderr(
        STRONGROOM_SQLITE_CACHE_MIB="1", STRONGROOM_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}"
    ) == [
        "error: invalid_setting: STRONGROOM_SQLITE_CACHE_MIB: "
        "Input should be greater than or equal to 2"
    ]


def test_progress_is_live_on_a_terminal_and_lines_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from strongroom.cli.progress import progress

    with progress("job") as show:
        show("step 1")
        show("step 2")
    assert capsys.readouterr().err.splitlines() == ["step 1", "step 2"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress("job") as show:
        show("step 1")
    err = capsys.readouterr().err
    assert "job: done" in err
    assert "step 1\n" not in err  # a live display, not the plain lines


@pytest.mark.parametrize(
    ("url", "line"),
    [
        ("postgresql://nobody@127.0.0.1:1/x", "error: database_unavailable: connection failed"),
        (None, "error: schema_out_of_date: database schema is at empty"),
    ],
)
def test_the_server_factory_reports_an_unusable_database_in_one_line(
    tmp_path: Path, url: str | None, line: str
) -> None:
    lines = _factory_stderr(STRONGROOM_DATABASE_URL=url or f"sqlite:///{tmp_path / 'e.db'}")
    assert len(lines) == 1, lines
    assert lines[0].startswith(line), lines[0]
    if url is None:  # an empty database is named: often the wrong directory, not a new one
        assert str((tmp_path / "e.db").resolve()) in lines[0]
        assert "STRONGROOM_DATABASE_URL" in lines[0]
