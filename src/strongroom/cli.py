"""The one `strongroom` command, with a subcommand group per domain."""

from __future__ import annotations

import contextlib
import functools
import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom import __version__
from strongroom.audit.service import AuditLog
from strongroom.core import clock, ids
from strongroom.core.errors import StrongroomError
from strongroom.core.money import parse_amount_text
from strongroom.db import migrate
from strongroom.db.engine import create_engine
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
from strongroom.runtime import build_ledger
from strongroom.settings import Settings
from strongroom.tenancy.service import TenancyService

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Strongroom: a fintech core.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
ledger_app = typer.Typer(no_args_is_help=True, help="The double-entry ledger.")
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")

DbOption = Annotated[
    str | None, typer.Option("--database-url", help="Overrides STRONGROOM_DATABASE_URL.")
]


def _settings(database_url: str | None) -> Settings:
    return Settings(database_url=database_url) if database_url else Settings()


def _service(database_url: str | None, *, upgrade: bool = False) -> LedgerService:
    settings = _settings(database_url)
    engine = create_engine(settings.database_url, sqlite_cache_mib=settings.sqlite_cache_mib)
    if upgrade:
        migrate.upgrade(engine)
    else:
        migrate.require_current(engine)
    return build_ledger(engine, settings)[0]


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _reporting_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """An expected failure ends the command with its code and message on stderr, exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except StrongroomError as exc:
            typer.echo(f"error: {exc.code}: {exc}", err=True)
            raise typer.Exit(2) from None

    return wrapper


def main() -> None:
    app()


# -- db ------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(database_url: DbOption = None) -> None:
    """Apply every pending migration."""
    settings = _settings(database_url)
    engine = create_engine(settings.database_url)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine)
    typer.echo(f"schema: {before or 'empty'} -> {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current(database_url: DbOption = None) -> None:
    """Print the schema revision of the database and the one this Strongroom needs."""
    engine = create_engine(_settings(database_url).database_url)
    typer.echo(f"database: {migrate.current_revision(engine) or 'empty'}")
    typer.echo(f"needed:   {migrate.head_revision()}")


# -- ledger --------------------------------------------------------------------------------


@ledger_app.command("create-ledger")
def create_ledger(name: str, database_url: DbOption = None) -> None:
    _print(_service(database_url).create_ledger(name).to_dict())


@ledger_app.command("create-asset")
def create_asset(code: str, scale: int, database_url: DbOption = None) -> None:
    asset = _service(database_url).create_asset(code, scale)
    _print({"code": asset.code, "scale": asset.scale})


@ledger_app.command("create-account")
def create_account(
    ledger_id: str,
    asset: str,
    normal_balance: Annotated[str, typer.Option(help="debit or credit")] = "credit",
    flag: Annotated[
        list[str] | None,
        typer.Option(help="debits_must_not_exceed_credits or credits_must_not_exceed_debits"),
    ] = None,
    name: str | None = None,
    database_url: DbOption = None,
) -> None:
    svc = _service(database_url)
    account = svc.create_account(
        ledger_id,
        asset,
        Direction.parse(normal_balance, "normal_balance"),
        flags=AccountFlag.parse(flag or []),
        name=name,
    )
    _print(account.to_dict())


@ledger_app.command("close-account")
def close_account(account_id: str, database_url: DbOption = None) -> None:
    _print(_service(database_url).close_account(account_id).to_dict())


@ledger_app.command("account")
def show_account(account_id: str, database_url: DbOption = None) -> None:
    _print(_service(database_url).get_account(account_id).to_dict())


def _post_one(svc: LedgerService, t: NewTransfer) -> None:
    outcome = svc.post_transfers([t])[0]
    if not outcome.result.ok:
        typer.echo(f"refused: {outcome.result.value}", err=True)
        raise typer.Exit(1)
    _print({"result": outcome.result.value, "transfer": transfer_to_dict(svc.get_transfer(t.id))})


@ledger_app.command("transfer")
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
    svc = _service(database_url)
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
            metadata=canonical_metadata(json.loads(metadata)) if metadata else None,
        ),
    )


def _resolve(
    action: Action, target_id: str, amount: str | None, id: str | None, database_url: str | None
) -> None:
    svc = _service(database_url)
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


@ledger_app.command("post")
def post(
    target_id: str, amount: str | None = None, id: str | None = None, database_url: DbOption = None
) -> None:
    """Post a pending transfer, fully or partially (AMOUNT)."""
    _resolve(Action.POST, target_id, amount, id, database_url)


@ledger_app.command("void")
def void(target_id: str, id: str | None = None, database_url: DbOption = None) -> None:
    """Void a pending transfer, releasing its reservation."""
    _resolve(Action.VOID, target_id, None, id, database_url)


@ledger_app.command("reverse")
def reverse(
    target_id: str, amount: str | None = None, id: str | None = None, database_url: DbOption = None
) -> None:
    """Reverse a posted transfer, fully or partially (AMOUNT)."""
    _resolve(Action.REVERSE, target_id, amount, id, database_url)


@ledger_app.command("transfers")
def list_transfers(
    ledger_id: str | None = None,
    account_id: str | None = None,
    status: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
    database_url: DbOption = None,
) -> None:
    svc = _service(database_url)
    page = svc.list_transfers(
        ledger_id=ledger_id,
        account_id=account_id,
        status=Status[status.upper()] if status else None,
        limit=limit,
        starting_after=starting_after,
    )
    _print({"data": [transfer_to_dict(r) for r in page.data], "has_more": page.has_more})


@ledger_app.command("entries")
def list_entries(
    account_id: str,
    limit: int = 20,
    starting_after: int | None = None,
    database_url: DbOption = None,
) -> None:
    svc = _service(database_url)
    account = svc.get_account(account_id)
    page = svc.list_entries(account_id, limit=limit, starting_after=starting_after)
    _print(
        {"data": [e.to_dict(account.normal_balance) for e in page.data], "has_more": page.has_more}
    )


@ledger_app.command("balance")
def balance(
    account_id: str,
    version: int | None = None,
    as_of: Annotated[str | None, typer.Option(help="RFC 3339 time")] = None,
    database_url: DbOption = None,
) -> None:
    """The account's balances now, after a version, or as of a time."""
    svc = _service(database_url)
    if version is None and as_of is None:
        account = svc.get_account(account_id)
        _print({"version": account.version, "balances": account.balance_view()})
        return
    at, balances, normal = svc.balance_at(
        account_id, version=version, as_of_us=clock.parse_timestamp(as_of) if as_of else None
    )
    _print({"version": at, "balances": derived_balances(normal, balances)})


@ledger_app.command("expire")
def expire(
    watch: Annotated[
        float | None, typer.Option(help="keep expiring every SECONDS until interrupted")
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Expire pending transfers whose timeout has passed, releasing their reservations."""
    svc = _service(database_url)
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


@ledger_app.command("verify")
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

    report = _service(database_url).verify(progress)
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


# -- demo ----------------------------------------------------------------------------------


@app.command()
def demo(transfers: int = 300, seed: int = 7, database_url: DbOption = None) -> None:
    """Create a ledger, accounts and a few hundred transfers, then print balances and the
    invariant check."""
    svc = _service(database_url, upgrade=True)
    rng = random.Random(seed)
    ledger = svc.create_ledger("demo")
    typer.echo(f"ledger {ledger.id} on {svc.engine.url.render_as_string(hide_password=True)}")
    bank = svc.create_account(ledger.id, "USD", Direction.DEBIT, name="bank")
    names = ["alice", "bob", "carol", "dave", "erin"]
    customers = svc.create_accounts(
        [
            AccountSpec(
                ledger.id,
                "USD",
                Direction.CREDIT,
                AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
                name=n,
            )
            for n in names
        ]
    )
    batch = [NewTransfer(ids.new_id("tr"), ledger.id, bank.id, c.id, 100_000) for c in customers]
    for _ in range(transfers):
        a, b = rng.sample(customers, 2)
        batch.append(NewTransfer(ids.new_id("tr"), ledger.id, a.id, b.id, rng.randint(1, 40_000)))
    outcomes = svc.post_transfers(batch)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result.value] = counts.get(o.result.value, 0) + 1
    typer.echo(f"posted {len(batch)} transfers in one batch: {counts}")
    hold = NewTransfer(
        ids.new_id("tr"),
        ledger.id,
        customers[0].id,
        customers[1].id,
        2_500,
        pending=True,
        timeout_s=3600,
    )
    svc.post_transfers([hold])
    svc.post_transfers(
        [
            NewTransfer(
                ids.new_id("tr"), ledger.id, action=Action.POST, target_id=hold.id, amount=2_000
            )
        ]
    )
    typer.echo("two-phase: reserved 25.00 from alice to bob, posted 20.00, released the rest")
    typer.echo("")
    usd = svc.get_asset("USD")
    typer.echo(f"{'account':<8} {'posted':>14} {'available':>14} {'version':>8}")
    for acc in [bank, *customers]:
        fresh = svc.get_account(acc.id)
        view = fresh.balance_view()
        typer.echo(
            f"{fresh.name:<8} {usd.format(view['posted']):>14} "
            f"{usd.format(view['available']):>14} {fresh.version:>8}"
        )
    report = svc.verify()
    typer.echo("")
    typer.echo(
        f"verify: {report.accounts} accounts, {report.entries} entries, "
        f"{'all invariants hold' if report.ok else report.problems}"
    )


# -- server and API keys -------------------------------------------------------------------

keys_app = typer.Typer(no_args_is_help=True, help="API keys (Authorization: Bearer sk_...).")
app.add_typer(keys_app, name="api-keys")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
    dev_key: Annotated[
        bool, typer.Option(help="create an admin API key for tenant 'default' and print it")
    ] = False,
    database_url: DbOption = None,
) -> None:
    """Serve the HTTP API (uvicorn). The schema must be current: `strongroom db upgrade`."""
    import os

    import uvicorn

    if database_url:
        os.environ["STRONGROOM_DATABASE_URL"] = database_url
    settings = Settings()
    # Checked here too so that the message comes before any worker starts.
    migrate.require_current(create_engine(settings.database_url))
    if dev_key:
        key, secret = _tenancy(None).create_api_key("default", ["admin"])
        typer.echo(f"development API key ({key.id}, tenant 'default', scope admin):", err=True)
        typer.echo(f"  export SR_KEY={secret}", err=True)
    typer.echo(f"strongroom {__version__} on http://{host}:{port} ({workers} worker(s))", err=True)
    uvicorn.run(
        "strongroom.http.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="warning",
    )


@app.command()
def worker(database_url: DbOption = None) -> None:
    """Deliver webhooks (the dispatcher) until SIGTERM or Ctrl-C; for a deployment that runs
    `serve` with STRONGROOM_DISPATCHER=false. Several workers may run at once."""
    from strongroom.events.dispatcher import main as dispatcher_main

    settings = _settings(database_url)
    argv = ["--database-url", settings.database_url]
    if settings.webhook_allow_private_targets:
        argv.append("--allow-private-targets")
    dispatcher_main(argv)


def _tenancy(database_url: str | None) -> TenancyService:
    settings = _settings(database_url)
    engine = create_engine(settings.database_url)
    migrate.require_current(engine)
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    return TenancyService(engine, pepper=pepper, audit=build_ledger(engine, settings)[1])


@keys_app.command("create")
def api_keys_create(
    tenant: Annotated[str, typer.Option(help="the tenant's name; created if new")],
    scope: Annotated[list[str], typer.Option(help="ledger:read, ledger:write or admin")],
    database_url: DbOption = None,
) -> None:
    """Create an API key and print its secret, once: only a keyed hash is stored."""
    key, secret = _tenancy(database_url).create_api_key(tenant, scope, actor="cli")
    _print(
        {
            "id": key.id,
            "tenant_id": key.tenant_id,
            "scopes": sorted(s.value for s in key.scopes),
            "secret": secret,
        }
    )


@keys_app.command("revoke")
def api_keys_revoke(key_id: str, database_url: DbOption = None) -> None:
    """Revoke an API key (servers honour it within API_KEY_CACHE_TTL_S seconds)."""
    _tenancy(database_url).revoke_api_key(key_id, actor="cli")
    typer.echo(f"revoked {key_id}")


# -- bench ---------------------------------------------------------------------------------

audit_app = typer.Typer(no_args_is_help=True, help="The verifiable audit log.")
app.add_typer(audit_app, name="audit")


@contextlib.contextmanager
def _audit(database_url: str | None) -> Iterator[AuditLog]:
    settings = _settings(database_url)
    engine = create_engine(settings.database_url, sqlite_cache_mib=settings.sqlite_cache_mib)
    try:
        migrate.require_current(engine)
        yield build_ledger(engine, settings)[1]
    finally:
        engine.dispose()


@audit_app.command("verify")
def audit_verify(
    database_url: DbOption = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(help="a verifier key you hold (the log's first; repeatable)"),
    ] = None,
) -> None:
    """Recompute every log from the database against its tiles and every stored checkpoint
    (signed by a key you trust, or handed over to by one), and check the ledger's transfers
    against their leaves; exit 1 naming the first bad leaf."""
    with _audit(database_url) as audit:
        report = audit.verify(
            progress=lambda line: typer.echo(line, err=True), trusted_keys=public_key
        )
    typer.echo(
        f"logs: {report.logs}  leaves: {report.leaves}  checkpoints: {report.checkpoints}  "
        f"transfers: {report.transfers}"
    )
    typer.echo(f"signatures checked against {report.trust}")
    for problem in report.problems:
        typer.echo(f"TAMPERED: {problem}")
    typer.echo("audit log: ok" if report.ok else f"audit log: {len(report.problems)} problems")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(database_url: DbOption = None) -> None:
    """Sign and publish a checkpoint of every log that grew; print them."""
    with _audit(database_url) as audit:
        published = audit.publish()
    _print([{"log": cp.log_id, **cp.to_dict()} for cp in published])


@audit_app.command("keys")
def audit_keys(database_url: DbOption = None) -> None:
    """The public (verifier) keys that sign checkpoints, retired ones included."""
    with _audit(database_url) as audit:
        _print(audit.verifier_keys())


@audit_app.command("rotate-key")
def audit_rotate_key(database_url: DbOption = None) -> None:
    """A new signing key: a leaf in every log, the transition checkpoint signed by both."""
    with _audit(database_url) as audit:
        typer.echo(audit.rotate_key())


@audit_app.command("export")
def audit_export(
    directory: Annotated[Path, typer.Argument(help="created if missing")],
    database_url: DbOption = None,
) -> None:
    """Write every log (C2SP tlog-tiles: tiles, entry bundles, all checkpoints) and the
    public keys, for a third party to verify with `audit verify-export`."""
    with _audit(database_url) as audit:
        count = audit.export(directory, lambda line: typer.echo(line, err=True))
    typer.echo(f"exported {count} leaves to {directory}")


@audit_app.command("verify-export")
def audit_verify_export(
    directory: Path,
    public_key: Annotated[
        list[str] | None, typer.Option(help="verifier key; default: the export's keys.txt")
    ] = None,
) -> None:
    """Offline: recompute each exported log and check every checkpoint against it."""
    from strongroom.audit.offline import verify_export

    if not public_key:
        typer.echo(
            "warning: checking against the export's own keys.txt; give --public-key with a key "
            "you hold for a check the export cannot fake"
        )
    keys = public_key or (directory / "keys.txt").read_text().split()
    result = verify_export(directory, keys)
    typer.echo(f"logs: {result.logs}  leaves: {result.leaves}  checkpoints: {result.checkpoints}")
    for problem in result.problems:
        typer.echo(f"BAD: {problem}")
    typer.echo("export: ok" if not result.problems else "export: does not verify")
    if result.problems or not result.checkpoints:
        raise typer.Exit(1)


@audit_app.command("verify-receipt")
def audit_verify_receipt(
    file: Annotated[Path, typer.Argument(help="a receipt (GET /v1/transfers/{id}/receipt)")],
    public_key: Annotated[
        list[str], typer.Option(help="the log's verifier key (GET /v1/audit/keys)")
    ],
    origin: Annotated[
        str | None, typer.Option(help="the log it must be from (<origin>/<tenant id>)")
    ] = None,
) -> None:
    """Offline, with no database and no server: the receipt's checkpoint is signed by the key
    and each of its leaves is in that tree. Exit 1 saying what failed."""
    from strongroom.audit.offline import ReceiptError, load_receipt, verify_receipt

    try:
        checked = verify_receipt(load_receipt(file), public_key)
        if origin is not None and checked.origin != origin:
            raise ReceiptError(f"the receipt is from log {checked.origin}, not {origin}")
    except ReceiptError as exc:
        typer.echo(f"receipt: INVALID: {exc}")
        raise typer.Exit(1) from None
    for item in checked.leaves:
        leaf = item["leaf"]
        what = leaf.get("transfer", leaf.get("data", {}))
        typer.echo(f"leaf {item['index']}: {leaf['type']} {json.dumps(what, sort_keys=True)}")
    typer.echo(f"receipt: ok (log {checked.origin}, tree size {checked.tree_size})")


@audit_app.command("verify-statement")
def audit_verify_statement(
    file: Annotated[Path, typer.Argument(help="a statement (GET /v1/accounts/{id}/statement)")],
    public_key: Annotated[
        list[str], typer.Option(help="the log's verifier key (GET /v1/audit/keys)")
    ],
    origin: Annotated[
        str | None, typer.Option(help="the log it must be from (<origin>/<tenant id>)")
    ] = None,
) -> None:
    """Offline: every entry of the account in the period is there (gap-free versions from the
    opening entry to the first one after), unaltered (each leaf proved in the signed
    checkpoint) and adding up (each balance follows from the one before). Exit 1 if not."""
    from strongroom.audit.offline import load_receipt
    from strongroom.audit.statement import StatementError, verify_statement

    try:
        checked = verify_statement(load_receipt(file), public_key)
        if origin is not None and checked.origin != origin:
            raise StatementError(f"the statement is from log {checked.origin}, not {origin}")
    except (StatementError, ValueError) as exc:
        typer.echo(f"statement: INVALID: {exc}")
        raise typer.Exit(1) from None
    names = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
    period = f"({clock.format_us(checked.from_us)}, {clock.format_us(checked.to_us)}]"
    typer.echo(f"account {checked.account_id}, period {period}, log {checked.origin}")
    typer.echo(f"  opening {dict(zip(names, checked.opening, strict=True))}")
    for e in checked.entries:
        typer.echo(
            f"  v{e.version} {clock.format_us(e.at)} {e.direction} {e.amount} "
            f"pending {e.pending_delta:+d}  {e.transfer_id}  (leaf {e.leaf_index})"
        )
    typer.echo(f"  closing {dict(zip(names, checked.closing, strict=True))}")
    tail = (
        "the next entry proves the period's end"
        if checked.has_boundary
        else ("no later entry when it was made")
    )
    typer.echo(
        f"statement: ok, complete: {len(checked.entries)} entries, {tail} "
        f"(log {checked.origin}, tree size {checked.tree_size})"
    )


bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (each measures its reference).")
app.add_typer(bench_app, name="bench")


JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object")]
QuickOption = Annotated[bool, typer.Option(help="a smaller run, under a minute")]
SmokeOption = Annotated[
    bool,
    typer.Option(
        help="tiny sizes, seconds: the same code and the same JSON rows and fields as a full "
        "run, to check that the benchmark works (its figures mean nothing)"
    ),
]


def _bench(
    run: Callable[..., dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    json_output: bool,
    **options: Any,
) -> dict[str, Any]:
    """Run a benchmark with its progress on stderr when the answer is JSON, then print the
    JSON object or the table."""
    if options["quick"] and options["smoke"]:
        raise typer.BadParameter("--quick and --smoke exclude each other")
    report = run(progress=lambda line: typer.echo(line, err=json_output), **options)
    if json_output:
        typer.echo(json.dumps(report))
    else:
        typer.echo("")
        typer.echo(table(report))
    return report


@bench_app.command("ledger")
def bench_ledger(
    json_output: JsonOption = False,
    quick: QuickOption = False,
    smoke: SmokeOption = False,
    postgres_url: Annotated[
        str | None,
        typer.Option(help="maintenance database URL; a scratch database is created and dropped"),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    no_postgres: bool = False,
) -> None:
    """Ledger throughput and p99 latency per scenario and backend, with the storage limit."""
    from strongroom.benchmarks import ledger as bench

    url = None if no_postgres else postgres_url
    _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke, postgres_url=url)


@bench_app.command("audit")
def bench_audit(
    json_output: JsonOption = False, quick: QuickOption = False, smoke: SmokeOption = False
) -> None:
    """Audit log appends (memory, SQLite), proof p50/p99 from a cold process, verification,
    and the ledger's bulk throughput with the log on vs off; pymerkle, measured in the same run
    as the reference, comes with the `bench` extra (`make install` has it)."""
    from strongroom.benchmarks import audit as bench

    _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke)


@bench_app.command("http")
def bench_http(
    json_output: JsonOption = False, quick: QuickOption = False, smoke: SmokeOption = False
) -> None:
    """HTTP API req/s, p50 and p99 per scenario (`serve --workers 2` on SQLite, loopback), with
    a minimal FastAPI endpoint measured in the same run; exit 1 when any request failed."""
    from strongroom.benchmarks import http as bench

    report = _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke)
    if report["info"]["errors"]:
        raise typer.Exit(1)


for _group in (app, db_app, ledger_app, keys_app, audit_app, bench_app):
    for _command in _group.registered_commands:
        assert _command.callback is not None
        _command.callback = _reporting_errors(_command.callback)
