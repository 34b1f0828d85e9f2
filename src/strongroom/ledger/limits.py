"""Stage 3's limits (ledger/pipeline.py `Limit`), run inside the posting transaction: the
payments of a batch handed to each installed limit after the batch's accounts are locked and
before the engine applies it; what the engine created is then recorded on the limits' locked
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
    TransferOutcome,
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
            created = [i for i in items if outcomes[i.index].result is TransferResult.CREATED]
            if created:
                check.record(uow, created)


def limit_items(
    uow: UnitOfWork,
    batch: Sequence[NewTransfer],
    state: BatchState,
    blocked: Mapping[str, GateDecision] | None = None,
) -> list[LimitItem]:
    """The payments of `batch` that take money out (new transfers, pending or not, that carry a
    payment), one item per asset they debit. A transfer that already exists (a replay: the
    engine answers `exists`), that a gate blocked, or whose ledger or debit account does not
    exist (the engine refuses it), is left out."""
    skip = blocked or {}
    wanted = [
        (i, t)
        for i, t in enumerate(batch)
        if t.payment is not None
        and t.action is Action.TRANSFER
        and t.id not in state.transfers
        and t.id not in skip
    ]
    if not wanted:
        return []
    tenants = store.ledger_tenants(uow, sorted({t.ledger_id for _, t in wanted}))
    accounts = state.accounts
    items: list[LimitItem] = []
    for i, t in wanted:
        assert t.payment is not None
        tenant = tenants.get(t.ledger_id)
        if tenant is None:
            continue
        out: dict[str, int] = {}
        if t.legs is None:
            debit = accounts.get(t.debit_account_id or "")
            if debit is not None:
                out[debit.asset] = t.amount
        else:
            for leg in t.legs:
                acc = accounts.get(leg.account_id)
                if acc is not None and leg.direction is Direction.DEBIT:
                    out[acc.asset] = out.get(acc.asset, 0) + leg.amount
        for asset, amount in sorted(out.items()):
            items.append(LimitItem(i, t.id, tenant, t.payment.customer_id, asset, amount))
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
