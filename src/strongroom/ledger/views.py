"""What the ledger hands its callers: ledgers, accounts and entries as named objects, the
API's rendering of a transfer, and the conversions from stored rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from strongroom.core import clock
from strongroom.core.money import from_stored_int
from strongroom.ledger.listing import Page
from strongroom.ledger.model import (
    AccountFlag,
    Balances,
    Direction,
    TransferRecord,
    derived_balances,
)

T = TypeVar("T")


DEFAULT_TENANT_ID = "ten_default"  # created by migration 0002; owns ledgers made without one


@dataclass(frozen=True, slots=True)
class Ledger:
    id: str
    name: str
    metadata: dict[str, Any] | None
    created_at: int
    tenant_id: str = DEFAULT_TENANT_ID

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "ledger",
            "name": self.name,
            "metadata": self.metadata or {},
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    ledger_id: str
    name: str | None
    asset: str
    normal_balance: Direction
    flags: AccountFlag
    closed: bool
    metadata: dict[str, Any] | None
    balances: Balances
    version: int
    created_at: int
    updated_at: int
    customer_id: str | None = None  # the customer who owns it (customers/), of its tenant
    frozen: bool = False  # refuses debits and credits (account_frozen) until unfrozen

    def balance_view(self) -> dict[str, int]:
        return derived_balances(self.normal_balance, self.balances)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "account",
            "ledger_id": self.ledger_id,
            "customer_id": self.customer_id,
            "name": self.name,
            "asset": self.asset,
            "normal_balance": self.normal_balance.label,
            "flags": self.flags.names(),
            "closed": self.closed,
            "frozen": self.frozen,
            "metadata": self.metadata or {},
            "balances": self.balance_view(),
            "version": self.version,
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    account_id: str
    version: int
    transfer_id: str
    direction: Direction
    amount: int
    pending_delta: int
    balances_after: Balances
    created_at: int

    def to_dict(self, normal: Direction) -> dict[str, Any]:
        return {
            "object": "entry",
            "account_id": self.account_id,
            "version": self.version,
            "transfer_id": self.transfer_id,
            "direction": self.direction.label,
            "amount": self.amount,
            "pending_amount": self.pending_delta,
            "balance_after": derived_balances(normal, self.balances_after),
            "created_at": clock.format_us(self.created_at),
        }


def transfer_to_dict(r: TransferRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": r.id,
        "object": "transfer",
        "ledger_id": r.ledger_id,
        "action": r.action.name.lower(),
        "status": r.status.label,
        "amount": r.amount,
        "pending": r.pending,
        "metadata": json.loads(r.metadata) if r.metadata else {},
        "created_at": clock.format_us(r.created_at),
        "effective_at": clock.format_us(
            r.effective_at if r.effective_at is not None else r.created_at
        ),
    }
    if r.legs is None:
        out["debit_account_id"] = r.debit_account_id
        out["credit_account_id"] = r.credit_account_id
    else:
        out["entries"] = [
            {"account_id": leg.account_id, "direction": leg.direction.label, "amount": leg.amount}
            for leg in r.legs
        ]
    if r.target_id is not None:
        out["target_id"] = r.target_id
    if r.expires_at is not None:
        out["expires_at"] = clock.format_us(r.expires_at)
    return out


def ledger_from_row(row: Sequence[Any]) -> Ledger:
    return Ledger(row[0], row[1], json.loads(row[2]) if row[2] else None, row[3], row[4])


def account_from_row(row: Sequence[Any]) -> Account:
    return Account(
        id=row[0],
        ledger_id=row[1],
        name=row[2],
        asset=row[3],
        normal_balance=Direction(row[4]),
        flags=AccountFlag(row[5]),
        closed=bool(row[6]),
        metadata=json.loads(row[7]) if row[7] else None,
        balances=balances_of(row[8:12]),
        version=row[12],
        created_at=row[14],
        updated_at=row[15],
        customer_id=row[16],
        # A row read back (ACCOUNT_READ_COLS) has it; one just written is not frozen.
        frozen=bool(row[17]) if len(row) > 17 else False,
    )


def entry_from_row(row: Sequence[Any]) -> Entry:
    return Entry(
        id=row[0],
        account_id=row[1],
        version=row[2],
        transfer_id=row[4],
        direction=Direction(row[5]),
        amount=from_stored_int(row[6]),
        pending_delta=from_stored_int(row[7]),
        balances_after=balances_of(row[8:12]),
        created_at=row[12],
    )


def balances_of(stored: Sequence[Any]) -> Balances:
    """The four counters of a stored row (any of them may be in core.money's stored form)."""
    dp, cp, dpend, cpend = (from_stored_int(v) for v in stored)
    return Balances(dp, cp, dpend, cpend)


def page_of(
    rows: list[tuple[Any, ...]], limit: int, *, backwards: bool, convert: Callable[[Any], T]
) -> Page[T]:
    """rows holds up to limit+1 rows, nearest the cursor first; a backwards page is turned
    around so that every page reads in the same order."""
    data = [convert(r) for r in rows[:limit]]
    if backwards:
        data.reverse()
    return Page(data, len(rows) > limit)
