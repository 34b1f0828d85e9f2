"""Stage 3's limits (ledger/pipeline.py `Limit`), run inside the posting transaction: what a
batch's new transfers take out of their payers (the customers who own the debited accounts,
limit_items) handed to each installed limit after the batch's accounts are locked and before
the engine applies it; what the engine created is then recorded on the limits' locked
counters, in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.engine import BatchState
from strongroom.ledger.model import (
    Action,
    Direction,
    GateDecision,
    NewTransfer,
    Status,
    TransferOutcome,
    TransferRecord,
    TransferResult,
)
from strongroom.ledger.pipeline import Limit, LimitCheck, LimitItem


@dataclass(slots=True)
class LimitsRun:
    """The limits' answers on one batch: `blocked` merged over the gates' blocks (a gate's
    block, decided first, is the one reported), and each limit's check to record on."""

    blocked: dict[str, GateDecision] | None
    checks: list[tuple[LimitCheck, list[LimitItem]]]

    def record(self, uow: UnitOfWork, outcomes: Sequence[TransferOutcome]) -> None:
        for check, items in self.checks:
            created = [
                i
                for i in items
                if not i.posting and outcomes[i.index].result is TransferResult.CREATED
            ]
            if created:
                check.record(uow, created)


def limit_items(
    uow: UnitOfWork,
    batch: Sequence[NewTransfer],
    state: BatchState,
    blocked: Mapping[str, GateDecision] | None = None,
) -> list[LimitItem]:
    """What each new transfer of `batch` (pending or not) takes out of its payers: one item per
    payer and asset it debits. The payer of a debit is the customer who owns the debited
    account, whatever the transfer's `payment` says (a payment naming another customer is
    refused before, LedgerService.check_payment_customers); of an account no customer owns,
    the payment's customer, if it carries one. So a transfer without `payment` that debits a
    customer's account is capped as the customer's; one debiting two customers' accounts (legs)
    counts against each. A transfer that already exists (a replay: the engine answers
    `exists`), that a gate blocked, whose ledger does not exist, or whose debit account does not
    exist or is in another ledger (the engine refuses it) is left out. No item at all, and no
    query, for a batch whose accounts no customer owns and whose transfers carry no payment.

    A post of a pending transfer gives `posting` items: one per customer who owns an account
    the pending transfer debits (its amounts were counted when it was created; a limit checks
    the customer's standing only, so a payer rejected since cannot have it posted). A void and
    a reversal give none."""
    accounts = state.accounts
    if not any(a.customer_id is not None for a in accounts.values()) and not any(
        t.payment is not None for t in batch
    ):
        return []
    skip = blocked or {}
    wanted: list[tuple[int, NewTransfer, dict[tuple[str, str], int], bool]] = []
    posts: list[tuple[int, NewTransfer, TransferRecord]] = []
    for i, t in enumerate(batch):
        if t.id in state.transfers or t.id in skip:
            continue
        if t.action is Action.POST:
            target = state.transfers.get(t.target_id or "")
            if target is not None and target.pending and target.status is Status.PENDING:
                posts.append((i, t, target))
            continue
        if t.action is not Action.TRANSFER:
            continue
        payer = t.payment.customer_id if t.payment is not None else None
        out: dict[tuple[str, str], int] = {}  # (customer, asset) -> amount
        if t.legs is None:
            debits = [(t.debit_account_id or "", t.amount)]
        else:
            debits = [(g.account_id, g.amount) for g in t.legs if g.direction is Direction.DEBIT]
        for account_id, amount in debits:
            acc = accounts.get(account_id)
            if acc is None or acc.ledger_id != t.ledger_id:
                continue  # refused by the engine; another ledger's owner is none of its business
            who = acc.customer_id or payer
            if who is not None:
                out[(who, acc.asset)] = out.get((who, acc.asset), 0) + amount
        if out:
            wanted.append((i, t, out, False))
    for i, t, target in posts:
        owed: dict[tuple[str, str], int] = {}
        for leg in target.effective_legs():
            acc = accounts.get(leg.account_id)
            if leg.direction is not Direction.DEBIT or acc is None or acc.customer_id is None:
                continue
            if acc.ledger_id != target.ledger_id:
                continue
            owed[(acc.customer_id, acc.asset)] = owed.get((acc.customer_id, acc.asset), 0) + (
                leg.amount
            )
        if owed:
            wanted.append((i, t, owed, True))
    if not wanted:
        return []
    wanted.sort(key=lambda w: w[0])  # a limit decides a transfer's items together, in order
    tenants = store.ledger_tenants(uow, sorted({t.ledger_id for _, t, _, _ in wanted}))
    items: list[LimitItem] = []
    for i, t, out, posting in wanted:
        tenant = tenants.get(t.ledger_id)
        if tenant is None:
            continue
        for (customer, asset), amount in sorted(out.items()):
            items.append(LimitItem(i, t.id, tenant, customer, asset, amount, posting))
    return items


def run_limits(
    uow: UnitOfWork,
    limits: Sequence[Limit],
    batch: Sequence[NewTransfer],
    state: BatchState,
    blocked: dict[str, GateDecision] | None,
) -> LimitsRun:
    items = limit_items(uow, batch, state, blocked)
    run = LimitsRun(blocked, [])
    if not items:
        return run
    for limit in limits:
        check = limit.check(uow, items, state.now_us)
        run.checks.append((check, items))
        if check.blocked:
            merged = dict(check.blocked)
            merged.update(run.blocked or {})
            run.blocked = merged
    return run
