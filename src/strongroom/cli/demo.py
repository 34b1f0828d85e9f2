"""`strongroom demo`: a small ledger, posted and verified, to look at."""

from __future__ import annotations

import random
from typing import Annotated

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, ledger_service
from strongroom.core import ids
from strongroom.ledger.model import AccountFlag, Action, Direction, NewTransfer
from strongroom.ledger.service import AccountSpec


def demo(
    transfers: Annotated[
        int, typer.Option(min=0, max=8000, help="random transfers between the customers")
    ] = 300,
    seed: Annotated[
        int, typer.Option(help="the random generator's seed (same seed, same run)")
    ] = 7,
    database_url: DbOption = None,
) -> None:
    """Create a ledger, accounts and a few hundred transfers, then print balances and the
    invariant check."""
    svc = ledger_service(database_url, upgrade=True)
    rng = random.Random(seed)
    ledger = svc.create_ledger("demo", actor=CLI_ACTOR)
    typer.echo(f"ledger {ledger.id} on {svc.engine.url.render_as_string(hide_password=True)}")
    bank = svc.create_account(ledger.id, "USD", Direction.DEBIT, name="bank", actor=CLI_ACTOR)
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
        ],
        actor=CLI_ACTOR,
    )
    batch = [NewTransfer(ids.new_id("tr"), ledger.id, bank.id, c.id, 100_000) for c in customers]
    for _ in range(transfers):
        a, b = rng.sample(customers, 2)
        batch.append(NewTransfer(ids.new_id("tr"), ledger.id, a.id, b.id, rng.randint(1, 40_000)))
    outcomes = svc.post_transfers(batch, actor=CLI_ACTOR)
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
    svc.post_transfers([hold], actor=CLI_ACTOR)
    svc.post_transfers(
        actor=CLI_ACTOR,
        batch=[
            NewTransfer(
                ids.new_id("tr"), ledger.id, action=Action.POST, target_id=hold.id, amount=2_000
            )
        ],
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
