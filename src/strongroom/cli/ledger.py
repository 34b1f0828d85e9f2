"""`strongroom ledger`: the double-entry ledger."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, ledger_service, print_json
from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest
from strongroom.core.money import parse_amount_text
from strongroom.http.errors import time_param
from strongroom.ledger.model import (
    AccountFlag,
    Action,
    Direction,
    NewTransfer,
    Status,
    canonical_metadata,
    derived_balances,
)
from strongroom.ledger.service import AccountSpec, LedgerService, transfer_to_dict
from strongroom.ledger.verify import VerifyReport

app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")


@app.command("create-ledger")
def create_ledger(name: str, database_url: DbOption = None) -> None:
    """Create a ledger (of the default tenant) and print it."""
    print_json(ledger_service(database_url).create_ledger(name).to_dict())


@app.command("create-asset")
def create_asset(code: str, scale: int, database_url: DbOption = None) -> None:
    """Register a custom asset CODE with SCALE decimal places (0 to 18); ISO 4217 currencies
    exist already."""
    asset = ledger_service(database_url).create_asset(code, scale)
    print_json({"code": asset.code, "scale": asset.scale})


@app.command("create-account")
def create_account(
    ledger_id: str,
    asset: str,
    normal_balance: Annotated[str, typer.Option(help="debit or credit")] = "credit",
    flag: Annotated[
        list[str] | None,
        typer.Option(help="debits_must_not_exceed_credits or credits_must_not_exceed_debits"),
    ] = None,
    name: str | None = None,
    id: Annotated[
        str | None,
        typer.Option(help="your own id: the same id and fields again answer the stored account"),
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Create an account in LEDGER_ID holding ASSET and print it; with --id, creating it
    again with the same fields prints the stored account."""
    svc = ledger_service(database_url)
    spec = AccountSpec(
        ledger_id,
        asset,
        Direction.parse(normal_balance, "normal_balance"),
        AccountFlag.parse(flag or []),
        name,
        id=id,
    )
    [account] = svc.create_accounts([spec])
    print_json(account.to_dict())


@app.command("close-account")
def close_account(account_id: str, database_url: DbOption = None) -> None:
    """Close an account (no pending transfer may be open on it); transfers to or from it are
    refused until it is reopened."""
    print_json(ledger_service(database_url).close_account(account_id).to_dict())


@app.command("account")
def show_account(account_id: str, database_url: DbOption = None) -> None:
    """Print an account with its four totals and derived balances."""
    print_json(ledger_service(database_url).get_account(account_id).to_dict())


def _post_one(svc: LedgerService, t: NewTransfer) -> None:
    outcome = svc.post_transfers([t], actor=CLI_ACTOR)[0]
    if not outcome.result.ok:
        typer.echo(f"refused: {outcome.result.value}", err=True)
        raise typer.Exit(1)
    print_json(
        {"result": outcome.result.value, "transfer": transfer_to_dict(svc.get_transfer(t.id))}
    )


@app.command("transfer")
def transfer(
    ledger_id: str,
    debit_account_id: str,
    credit_account_id: str,
    amount: Annotated[str, typer.Argument(help="integer minor units")],
    id: Annotated[str | None, typer.Option(help="client id; resubmitting it is idempotent")] = None,
    pending: bool = False,
    timeout_s: int = 0,
    metadata: Annotated[str | None, typer.Option(help="a JSON object")] = None,
    database_url: DbOption = None,
) -> None:
    """Move AMOUNT minor units from the debit account to the credit account."""
    svc = ledger_service(database_url)
    _post_one(
        svc,
        NewTransfer(
            id=id or ids.new_id("tr"),
            ledger_id=ledger_id,
            debit_account_id=debit_account_id,
            credit_account_id=credit_account_id,
            amount=parse_amount_text(amount),
            pending=pending,
            timeout_s=timeout_s,
            metadata=_metadata_option(metadata) if metadata else None,
        ),
    )


def _resolve(
    action: Action, target_id: str, amount: str | None, id: str | None, database_url: str | None
) -> None:
    svc = ledger_service(database_url)
    target = svc.get_transfer(target_id)
    _post_one(
        svc,
        NewTransfer(
            id=id or ids.new_id("tr"),
            ledger_id=target.ledger_id,
            action=action,
            target_id=target_id,
            amount=parse_amount_text(amount) if amount else 0,
        ),
    )


@app.command("post")
def post(
    target_id: str, amount: str | None = None, id: str | None = None, database_url: DbOption = None
) -> None:
    """Post a pending transfer, fully or partially (AMOUNT)."""
    _resolve(Action.POST, target_id, amount, id, database_url)


@app.command("void")
def void(target_id: str, id: str | None = None, database_url: DbOption = None) -> None:
    """Void a pending transfer, releasing its reservation."""
    _resolve(Action.VOID, target_id, None, id, database_url)


@app.command("reverse")
def reverse(
    target_id: str, amount: str | None = None, id: str | None = None, database_url: DbOption = None
) -> None:
    """Reverse a posted transfer, fully or partially (AMOUNT)."""
    _resolve(Action.REVERSE, target_id, amount, id, database_url)


@app.command("transfers")
def list_transfers(
    ledger_id: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page")] = None,
    database_url: DbOption = None,
) -> None:
    """A page may hold fewer than `limit` while has_more: go on with --cursor NEXT_CURSOR."""
    svc = ledger_service(database_url)
    page = svc.list_transfers(
        ledger_id=ledger_id,
        account_id=account_id,
        status=_status_option(status) if status else None,
        limit=limit,
        starting_after=starting_after,
        cursor=cursor,
    )
    out: dict[str, Any] = {
        "data": [transfer_to_dict(r) for r in page.data],
        "has_more": page.has_more,
    }
    if page.next_cursor is not None:
        out["next_cursor"] = page.next_cursor
    print_json(out)


@app.command("entries")
def list_entries(
    account_id: str,
    limit: int = 20,
    starting_after: int | None = None,
    database_url: DbOption = None,
) -> None:
    """Print an account's entries, newest first: each with the balances after it and its version."""
    svc = ledger_service(database_url)
    account = svc.get_account(account_id)
    page = svc.list_entries(account_id, limit=limit, starting_after=starting_after)
    print_json(
        {"data": [e.to_dict(account.normal_balance) for e in page.data], "has_more": page.has_more}
    )


@app.command("balance")
def balance(
    account_id: str,
    version: int | None = None,
    as_of: Annotated[str | None, typer.Option(help="RFC 3339 time")] = None,
    database_url: DbOption = None,
) -> None:
    """The account's balances now, after a version, or as of a time."""
    svc = ledger_service(database_url)
    if version is None and as_of is None:
        account = svc.get_account(account_id)
        print_json({"version": account.version, "balances": account.balance_view()})
        return
    at, balances, normal = svc.balance_at(
        account_id, version=version, as_of_us=time_param(as_of, "as_of") if as_of else None
    )
    print_json({"version": at, "balances": derived_balances(normal, balances)})


@app.command("expire")
def expire(
    watch: Annotated[
        float | None, typer.Option(help="keep expiring every SECONDS until interrupted")
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Expire pending transfers whose timeout has passed, releasing their reservations."""
    svc = ledger_service(database_url)
    if watch is None:
        typer.echo(f"expired: {svc.expire_due()}")
        return
    if not 0.1 <= watch <= 3600:
        raise typer.BadParameter("--watch takes 0.1 to 3600 seconds")
    total = 0
    try:
        while True:
            count = svc.expire_due()
            while count:  # a backlog larger than one batch drains without waiting
                total += count
                typer.echo(f"{clock.format_us(clock.now_us())} expired {count} (total {total})")
                count = svc.expire_due()
            time.sleep(watch)
    except KeyboardInterrupt:
        typer.echo(f"stopped; expired {total} in all")


@app.command("verify")
def verify(database_url: DbOption = None) -> None:
    """Check every ledger invariant on the database; exit 1 on any violation. Progress goes
    to stderr every VERIFY_PROGRESS_ROWS rows read."""
    started = time.monotonic()

    def progress(report: VerifyReport) -> None:
        typer.echo(
            f"verify: {report.transfers} transfers, {report.entries} entries checked, "
            f"{len(report.problems) + report.problems_more} problems "
            f"({time.monotonic() - started:.0f} s)",
            err=True,
        )

    report = ledger_service(database_url).verify(progress)
    typer.echo(
        f"accounts: {report.accounts}  transfers: {report.transfers}  "
        f"entries: {report.entries}  open pending transfers: {report.transfers_pending}"
    )
    for problem in report.problems:
        typer.echo(f"VIOLATION: {problem}")
    if report.problems_more:
        typer.echo(f"VIOLATION: and {report.problems_more} more")
    count = len(report.problems) + report.problems_more
    typer.echo("invariants: ok" if report.ok else f"invariants: {count} violated")
    if not report.ok:
        raise typer.Exit(1)


def _metadata_option(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidRequest(
            "metadata must be a JSON object", param="metadata", code="invalid_metadata"
        ) from None
    return canonical_metadata(value)


def _status_option(text: str) -> Status:
    try:
        return Status[text.upper()]
    except KeyError:
        names = ", ".join(s.label for s in Status)
        raise InvalidRequest(f"status is one of {names}", param="status") from None
