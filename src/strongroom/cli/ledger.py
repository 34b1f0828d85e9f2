"""`strongroom ledger`: the double-entry ledger."""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Annotated, Any

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, ledger_service, print_json
from strongroom.cli.progress import progress
from strongroom.core import clock, ids
from strongroom.core.clock import time_param
from strongroom.core.errors import InvalidRequest
from strongroom.core.money import parse_amount_text
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


class NormalBalance(StrEnum):
    """The choices of --normal-balance (ledger.model.Direction's labels)."""

    DEBIT = "debit"
    CREDIT = "credit"


class FlagName(StrEnum):
    """The choices of --flag (ledger.model.AccountFlag's names)."""

    DEBITS_MUST_NOT_EXCEED_CREDITS = "debits_must_not_exceed_credits"
    CREDITS_MUST_NOT_EXCEED_DEBITS = "credits_must_not_exceed_debits"


class StatusName(StrEnum):
    """The choices of --status (ledger.model.Status's labels)."""

    POSTED = "posted"
    PENDING = "pending"
    VOIDED = "voided"
    EXPIRED = "expired"


LedgerIdArg = Annotated[str, typer.Argument(help="the ledger's id (ldg_...)")]
AccountIdArg = Annotated[str, typer.Argument(help="the account's id (acc_...)")]
PendingIdArg = Annotated[str, typer.Argument(help="the pending transfer's id (tr_...)")]
PostedIdArg = Annotated[str, typer.Argument(help="the posted transfer's id (tr_...)")]
NewIdOption = Annotated[
    str | None,
    typer.Option(help="your own id for the new transfer; resubmitting it is idempotent"),
]
PartAmountOption = Annotated[
    str | None, typer.Option(help="integer minor units; default: the whole remaining amount")
]
LimitOption = Annotated[int, typer.Option(help="at most this many rows (1 to 100)")]


@app.command("create-ledger")
def create_ledger(
    name: Annotated[str, typer.Argument(help="a name for people (up to 200 characters)")],
    database_url: DbOption = None,
) -> None:
    """Create a ledger (of the default tenant) and print it."""
    print_json(ledger_service(database_url).create_ledger(name, actor=CLI_ACTOR).to_dict())


@app.command("create-asset")
def create_asset(
    code: Annotated[
        str, typer.Argument(help="2 to 16 characters of A-Z, 0-9 and _, starting with a letter")
    ],
    scale: Annotated[int, typer.Argument(help="decimal places of one whole unit, 0 to 18")],
    database_url: DbOption = None,
) -> None:
    """Register a custom asset CODE with SCALE decimal places (0 to 18); ISO 4217 currencies
    exist already."""
    asset = ledger_service(database_url).create_asset(code, scale, actor=CLI_ACTOR)
    print_json({"code": asset.code, "scale": asset.scale})


@app.command("create-account")
def create_account(
    ledger_id: LedgerIdArg,
    asset: Annotated[str, typer.Argument(help="an ISO 4217 currency or a created asset code")],
    normal_balance: Annotated[
        NormalBalance, typer.Option(help="the side that grows the balance")
    ] = NormalBalance.CREDIT,
    flag: Annotated[
        list[FlagName] | None, typer.Option(help="a balance limit; repeat for several")
    ] = None,
    name: Annotated[str | None, typer.Option(help="a name for people")] = None,
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
        Direction.parse(normal_balance.value, "normal_balance"),
        AccountFlag.parse([f.value for f in flag or []]),
        name,
        id=id,
    )
    [account] = svc.create_accounts([spec], actor=CLI_ACTOR)
    print_json(account.to_dict())


@app.command("close-account")
def close_account(account_id: AccountIdArg, database_url: DbOption = None) -> None:
    """Close an account (no pending transfer may be open on it); transfers to or from it are
    refused until it is reopened."""
    print_json(ledger_service(database_url).close_account(account_id).to_dict())


@app.command("account")
def show_account(account_id: AccountIdArg, database_url: DbOption = None) -> None:
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
    ledger_id: LedgerIdArg,
    debit_account_id: Annotated[str, typer.Argument(help="the account debited (acc_...)")],
    credit_account_id: Annotated[str, typer.Argument(help="the account credited (acc_...)")],
    amount: Annotated[str, typer.Argument(help="integer minor units")],
    id: NewIdOption = None,
    pending: Annotated[
        bool, typer.Option("--pending", help="reserve the amount; post or void it later")
    ] = False,
    timeout_s: Annotated[
        int, typer.Option(help="a pending transfer expires after this many seconds; 0: never")
    ] = 0,
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
    target_id: PendingIdArg,
    amount: PartAmountOption = None,
    id: NewIdOption = None,
    database_url: DbOption = None,
) -> None:
    """Post a pending transfer, fully or partially (AMOUNT)."""
    _resolve(Action.POST, target_id, amount, id, database_url)


@app.command("void")
def void(target_id: PendingIdArg, id: NewIdOption = None, database_url: DbOption = None) -> None:
    """Void a pending transfer, releasing its reservation."""
    _resolve(Action.VOID, target_id, None, id, database_url)


@app.command("reverse")
def reverse(
    target_id: PostedIdArg,
    amount: PartAmountOption = None,
    id: NewIdOption = None,
    database_url: DbOption = None,
) -> None:
    """Reverse a posted transfer, fully or partially (AMOUNT)."""
    _resolve(Action.REVERSE, target_id, amount, id, database_url)


@app.command("transfers")
def list_transfers(
    ledger_id: Annotated[str | None, typer.Option(help="only this ledger's transfers")] = None,
    account_id: Annotated[
        str | None, typer.Option(help="only transfers to or from this account")
    ] = None,
    status: Annotated[StatusName | None, typer.Option(help="only transfers in this state")] = None,
    limit: LimitOption = 20,
    starting_after: Annotated[
        str | None, typer.Option(help="the last transfer id of the previous page")
    ] = None,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page")] = None,
    database_url: DbOption = None,
) -> None:
    """List transfers, newest first. A page may hold fewer than --limit while has_more (a
    filter's scan budget ran out): go on with --cursor NEXT_CURSOR."""
    svc = ledger_service(database_url)
    page = svc.list_transfers(
        ledger_id=ledger_id,
        account_id=account_id,
        status=Status[status.name] if status else None,
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
    account_id: AccountIdArg,
    limit: LimitOption = 20,
    starting_after: Annotated[
        int | None,
        typer.Option(help="the last version of the previous page (entries are by version)"),
    ] = None,
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
    account_id: AccountIdArg,
    version: Annotated[
        int | None, typer.Option(help="the balances right after this version")
    ] = None,
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
    with progress("ledger verify") as show:

        def report_progress(report: VerifyReport) -> None:
            show(
                f"verify: {report.transfers} transfers, {report.entries} entries checked, "
                f"{len(report.problems) + report.problems_more} problems "
                f"({time.monotonic() - started:.0f} s)"
            )

        report = ledger_service(database_url).verify(report_progress)
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
