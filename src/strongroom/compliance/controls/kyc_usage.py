"""The KYC usage counters recomputed from the ledger: `kyc_usage` holds what each customer's
payments took out, per asset and hour, and the caps read it in the posting transaction
(compliance/kyc/limit.py). A counter lowered or deleted by hand lets a customer pay past its
caps, and nothing else notices (the records control replays KYC's states, not its usage). The
control `kyc_usage_counted` (checks.py) runs this.

What the caps count (docs/kyc.md, ledger/limits.py limit_items), recounted here: every transfer
of action `transfer` (pending or not, whatever became of it since) at the hour it was created,
each of its debit legs against the customer who owns the debited account (an account of the
transfer's ledger), in that account's asset. A payment from an account no customer owns counts
against its `payment.customer_id`, which the ledger does not keep: those are not recounted, so
a stored bucket may hold more than the ledger shows (never a finding), but never less.

The hours compared are those the caps still read: the last 30 days (MONTH_BUCKETS hours before
the current one; not the oldest of them, which a payment meanwhile may prune), from the hour
after `kyc_limits_since` (when the limits were first on, recorded once by the first posting
transaction that writes a bucket, never later than the earliest: payments before were never
counted, and that first hour, from its middle, is left out). Never from the earliest bucket
stored: deleting the older buckets would move it. A bucket below what the ledger's transfers
took is a finding, and so is a missing one (stored 0); so are buckets stored with no
`kyc_limits_since` (then compared from the hour after the earliest, as before it existed), and
a bucket older than the hour of `kyc_limits_since` (moved later by hand).

Cost: one read of the transfers, newest first by sequence, down to the first one created
SKEW_US before the window (sequence and creation time may disagree by a transaction's length;
there is no index on the creation time), joined to their ledger and debit account; the debit
accounts' owners of multi-leg transfers (cached, at most OWNERS_CACHED_MAX); then the buckets
stored for the window. Memory: one entry per (customer, asset, hour) with usage, at most
KYC_USAGE_CHECK_BUCKETS_MAX per pass: with more buckets stored than that, the customers are
split by a hash of their id into as many passes as needed, each reading the window again.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.compliance.controls import store
from strongroom.compliance.kyc.model import BUCKET_US, MONTH_BUCKETS, bucket_of
from strongroom.core import clock
from strongroom.core.limits import CONTROL_SCAN_BATCH_ROWS, KYC_USAGE_CHECK_BUCKETS_MAX
from strongroom.core.money import from_stored_int
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Action, Direction, legs_from_json

SKEW_US: Final = BUCKET_US  # how much later than a newer one a transfer may have been created
OWNERS_CACHED_MAX: Final = 65_536  # debit accounts of multi-leg transfers, kept once read
PROGRESS_EVERY: Final = 100_000  # transfers between two progress lines

_Key = tuple[str, str, str, int]  # (tenant, customer, asset, hour)


@dataclass(frozen=True, slots=True)
class WrongBucket:
    """A stored bucket below what the ledger's transfers took (`stored` 0: none stored)."""

    tenant_id: str
    customer_id: str
    asset: str
    hour: int
    stored: int
    counted: int

    @property
    def key(self) -> _Key:
        return (self.tenant_id, self.customer_id, self.asset, self.hour)

    def detail(self) -> dict[str, Any]:
        """Ids, an hour and amounts: no personal data."""
        return {
            "table": "kyc_usage",
            "customer_id": self.customer_id,
            "asset": self.asset,
            "hour": clock.format_us(self.hour * BUCKET_US),
            "stored": self.stored,
            "counted": self.counted,
        }


@dataclass(slots=True)
class UsageCheck:
    since_hour: int  # the first hour compared
    until_hour: int  # the last (the current hour)
    first_stored_hour: int | None  # the earliest bucket stored (None: none is)
    limits_since: int | None  # when the limits were first on (kyc_limits_since; None: unknown)
    passes: int
    payments: int = 0  # transfers of the window read
    buckets: int = 0  # stored buckets compared
    wrong: int = 0
    first: WrongBucket | None = None  # the first wrong bucket, by tenant, customer, asset, hour
    overflow: bool = False  # a pass found more buckets in the ledger than it may hold

    @property
    def unmarked(self) -> bool:
        """Buckets stored, and no record of when the limits were first on."""
        return self.limits_since is None and self.first_stored_hour is not None

    @property
    def before_marked(self) -> bool:
        """A bucket stored for an hour before the limits were first on."""
        return (
            self.limits_since is not None
            and self.first_stored_hour is not None
            and self.first_stored_hour < bucket_of(self.limits_since)
        )


def check_usage(
    engine: Engine,
    now_us: int,
    on_wrong: Callable[[WrongBucket], None],
    progress: Callable[[str], None] | None = None,
    *,
    buckets_max: int = KYC_USAGE_CHECK_BUCKETS_MAX,
) -> UsageCheck:
    """Recount the usage of the hours the caps still read from the ledger's transfers and
    compare it with the stored buckets: each bucket below its recount is handed to `on_wrong`
    (stored rows in key order, then per pass the buckets no row holds)."""
    say = progress or (lambda _m: None)
    until = bucket_of(now_us)
    oldest = until - MONTH_BUCKETS + 1
    with UnitOfWork(engine, write=False) as uow:
        marked = store.kyc_limits_since(uow)
        first, stored = store.kyc_usage_span(uow, oldest)
    if marked is not None:
        since = max(oldest, bucket_of(marked) + 1)
    else:  # a finding when buckets are stored (unmarked)
        since = oldest if first is None else max(oldest, first + 1)
    passes = max(1, -(-stored // buckets_max))
    check = UsageCheck(since, until, first, marked, passes)
    owners: OrderedDict[str, tuple[str, str, str | None]] = OrderedDict()

    def wrong(bucket: WrongBucket) -> None:
        check.wrong += 1
        if check.first is None or bucket.key < check.first.key:
            check.first = bucket
        on_wrong(bucket)

    for part in range(passes):
        with UnitOfWork(engine, write=False) as uow:
            # The transfers first, then the buckets: a payment committed in between is in the
            # buckets and not in the recount (never a finding), not the other way round.
            counted = _recount(uow, check, owners, part, 2 * buckets_max, say)
            if counted is None:
                check.overflow = True
                return check
            for tenant, customer, asset, hour, amount in store.kyc_usage_rows(
                uow, since, until, CONTROL_SCAN_BATCH_ROWS
            ):
                if passes > 1 and _part(customer, passes) != part:
                    continue
                check.buckets += 1
                value = from_stored_int(amount)
                owed = counted.pop((tenant, customer, asset, hour), 0)
                if value < owed:
                    wrong(WrongBucket(tenant, customer, asset, hour, value, owed))
            for (tenant, customer, asset, hour), owed in sorted(counted.items()):
                wrong(WrongBucket(tenant, customer, asset, hour, 0, owed))
        say(f"kyc usage: pass {part + 1}/{passes}: {check.buckets} buckets compared")
    return check


def _recount(
    uow: UnitOfWork,
    check: UsageCheck,
    owners: OrderedDict[str, tuple[str, str, str | None]],
    part: int,
    keys_max: int,
    say: Callable[[str], None],
) -> dict[_Key, int] | None:
    """What the ledger's transfers of the window took from the customers of pass `part`, per
    bucket; None past `keys_max` buckets."""
    start_us = check.since_hour * BUCKET_US
    end_us = (check.until_hour + 1) * BUCKET_US
    counted: dict[_Key, int] = {}
    read = 0
    for p in store.payments_newest_first(uow, Action.TRANSFER, CONTROL_SCAN_BATCH_ROWS):
        if p.created_at < start_us - SKEW_US:
            break
        if not start_us <= p.created_at < end_us:
            continue
        read += 1
        if read % PROGRESS_EVERY == 0:
            say(f"kyc usage: {read:,} transfers recounted")
        hour = p.created_at // BUCKET_US
        if p.legs is None:
            if p.debit_owner is None or p.debit_ledger_id != p.ledger_id:
                continue
            assert p.debit_asset is not None, "an account has an asset"
            debits = [(p.debit_owner, p.debit_asset, from_stored_int(p.amount))]
        else:
            debits = _leg_debits(uow, p.ledger_id, p.legs, owners)
        for customer, asset, amount in debits:
            if check.passes > 1 and _part(customer, check.passes) != part:
                continue
            key = (p.tenant_id, customer, asset, hour)
            counted[key] = counted.get(key, 0) + amount
            if len(counted) > keys_max:
                return None
    if part == 0:
        check.payments = read
    return counted


def _leg_debits(
    uow: UnitOfWork,
    ledger_id: str,
    legs_json: str,
    owners: OrderedDict[str, tuple[str, str, str | None]],
) -> list[tuple[str, str, int]]:
    """(customer, asset, amount) of each debit leg of a multi-leg transfer that debits a
    customer's account of its ledger."""
    legs = [leg for leg in legs_from_json(legs_json) if leg.direction is Direction.DEBIT]
    known = {leg.account_id: owners[leg.account_id] for leg in legs if leg.account_id in owners}
    missing = [leg.account_id for leg in legs if leg.account_id not in known]
    if missing:
        found = store.account_owners(uow, missing)
        known.update(found)
        owners.update(found)
        while len(owners) > OWNERS_CACHED_MAX:
            owners.popitem(last=False)
    out = []
    for leg in legs:
        found_owner = known.get(leg.account_id)
        if found_owner is None:
            continue
        account_ledger, asset, customer = found_owner
        if customer is not None and account_ledger == ledger_id:
            out.append((customer, asset, leg.amount))
    return out


def _part(customer_id: str, passes: int) -> int:
    return zlib.crc32(customer_id.encode()) % passes
