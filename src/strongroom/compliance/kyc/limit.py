"""The KYC tier caps as a limit of the transfer pipeline (ledger/pipeline.py `Limit`): checked
inside the posting transaction, against the payers' usage read under their KYC rows' locks.
A payer is the customer who owns the debited account (whatever the transfer's `payment` says),
else the payment's customer (ledger/limits.py limit_items).

A batch's payments are taken in batch order: each is checked against what its payers' windows
hold plus what the batch's earlier payments of those payers passed, and a payment that passes
counts against the later ones even if the engine then refuses it (conservative: a cap is never
crossed; a payment may be refused that a failed earlier one would have let through). Only the
payments the engine created are added to the buckets. docs/kyc.md tells the rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from strongroom.compliance.kyc import store
from strongroom.compliance.kyc.errors import KYC_LIMIT_ERRORS
from strongroom.compliance.kyc.model import (
    DEFAULT_TABLE,
    KYC_LIMIT_EXCEEDED,
    KYC_UNVERIFIED,
    MONTH_BUCKETS,
    Status,
    TierTable,
    Window,
    bucket_of,
    over_cap,
    window_sums,
)
from strongroom.core.errors import ErrorCode
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import GateDecision, Verdict
from strongroom.ledger.pipeline import LimitItem

_Key = tuple[str, str, str]  # (tenant, customer, asset)


@dataclass(frozen=True, slots=True)
class CapDetail:
    """Which cap refused a payment: the window, the cap and its asset; no personal data."""

    window: Window
    cap: int
    asset: str
    answer_key: str = "kyc"

    def answer(self) -> dict[str, object]:
        return {"window": self.window.value, "limit": self.cap, "asset": self.asset}

    def reason_codes(self) -> Sequence[str]:
        return (f"window {self.window.value}", f"limit {self.cap} {self.asset}")


@dataclass(slots=True)
class KycCheck:
    blocked: dict[str, GateDecision]
    hour: int
    usage: store.Usage
    stale: set[tuple[str, str]] = field(default_factory=set)  # payers with buckets past 30 days
    since_us: int | None = None  # when limits_since is not yet known recorded: the check's time

    def record(self, uow: UnitOfWork, created: Sequence[LimitItem]) -> None:
        if self.since_us is not None:
            # Before any bucket it writes (same transaction): the control compares from there.
            store.mark_limits_since(uow, self.since_us)
        added: dict[_Key, int] = {}
        for item in created:
            if item.posting:  # counted when its pending transfer was created
                continue
            key = (item.tenant_id, item.customer_id, item.asset)
            added[key] = added.get(key, 0) + item.amount
        rows = [
            (t, c, a, self.hour, self.usage.get((t, c, a), {}).get(self.hour, 0) + amount)
            for (t, c, a), amount in sorted(added.items())
        ]
        store.put_usage(uow, rows)
        if self.stale:
            store.prune_usage(uow, [c for _, c in self.stale], self.hour - MONTH_BUCKETS)


class KycLimit:
    """Refuses a payment one of whose payers is not verified (kyc_unverified), or that would
    cross a cap of a payer's tier (kyc_limit_exceeded). A post of a pending transfer whose
    debited account's owner is no longer verified is refused too (kyc_unverified); its caps
    were counted when it was created, so they are neither checked nor counted again."""

    name: str = "kyc"
    errors: Sequence[ErrorCode] = KYC_LIMIT_ERRORS

    def __init__(self, tiers: TierTable = DEFAULT_TABLE) -> None:
        self.tiers = tiers
        # Whether kyc_limits_since was seen recorded: until then, each posting transaction
        # records it (when none is) with its buckets, so it is never later than the earliest.
        self._since_seen = False

    def check(self, uow: UnitOfWork, items: Sequence[LimitItem], now_us: int) -> KycCheck:
        hour = bucket_of(now_us)
        states = {(r[0], r[1]): r for r in store.lock_states(uow, [i.customer_id for i in items])}
        verified = [c for (t, c), r in states.items() if r[2] == Status.VERIFIED.value]
        usage = store.load_usage(uow, verified) if verified else {}
        check = KycCheck({}, hour, usage)
        if not self._since_seen:
            self._since_seen = store.limits_since(uow) is not None
            if not self._since_seen:
                check.since_us = now_us
        oldest = hour - MONTH_BUCKETS
        for (tenant, customer, _), buckets in usage.items():
            if min(buckets) < oldest:
                check.stale.add((tenant, customer))
        sums: dict[_Key, tuple[int, int]] = {}
        unverified = GateDecision(self.name, Verdict.BLOCK, KYC_UNVERIFIED)
        # A transfer's items are consecutive (one per payer and asset it debits): decided
        # together.
        start = 0
        while start < len(items):
            end = start + 1
            while end < len(items) and items[end].index == items[start].index:
                end += 1
            group = items[start:end]
            start = end
            first = group[0]
            # Every payer the transfer debits must be verified, and every debit within its
            # payer's caps: one refusal refuses the whole transfer.
            refused: GateDecision | None = None
            for item in group:
                state = states.get((item.tenant_id, item.customer_id))
                if state is None or state[2] != Status.VERIFIED.value:
                    refused = unverified
                    break
            if refused is None:
                for item in group:
                    if item.posting:  # counted when the pending transfer was created
                        continue
                    key = (item.tenant_id, item.customer_id, item.asset)
                    if key not in sums:
                        sums[key] = window_sums(usage.get(key, {}), now_us)
                    day, month = sums[key]
                    tier = states[(item.tenant_id, item.customer_id)][3]
                    caps = self.tiers.caps(item.tenant_id, tier, item.asset)
                    over = over_cap(caps, item.amount, day, month)
                    if over is not None:
                        window, cap = over
                        detail = CapDetail(window, cap, item.asset)
                        refused = GateDecision(self.name, Verdict.BLOCK, KYC_LIMIT_EXCEEDED, detail)
                        break
            if refused is not None:
                check.blocked[first.transfer_id] = refused
                continue
            for item in group:
                if item.posting:
                    continue
                key = (item.tenant_id, item.customer_id, item.asset)
                day, month = sums[key]
                sums[key] = (day + item.amount, month + item.amount)
        return check
