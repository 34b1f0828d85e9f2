"""GDPR rights over the customers' service: the export of everything held about a customer
(Art. 15 and 20), the AML record-keeping hold erasure is refused under (customers.service calls
`hold_reason` through its port, in the erasure's transaction), and the retention job that
erases, through the customers' service (crypto-shredding), the customers whose period has
passed."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.compliance.gdpr import store
from strongroom.compliance.gdpr.model import aml_hold, retention_cutoff_us
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.core.limits import (
    GDPR_ERASE_BATCH_MAX,
    GDPR_EXPORT_ACCOUNTS_MAX,
    GDPR_EXPORT_TOTAL_TRANSFERS_MAX,
    GDPR_EXPORT_TRANSFERS_MAX,
    PAGE_SIZE_MAX,
)
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.errors import LegalHold
from strongroom.customers.service import CustomerService
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.service import LedgerService
from strongroom.ledger.views import transfer_to_dict
from strongroom.security.errors import DataErased

log = logging.getLogger("strongroom.compliance.gdpr")

EXPORT_FORMAT: Final = "strongroom-gdpr-export/1"
ALERT_CASES_NAMED_MAX: Final = 5  # the open cases an erasure's refusal names
RETENTION_ACTOR: Final = "system:aml_retention"
GDPR_EVENT_TYPES: Final = (
    EventType(
        "customer.retention_erased",
        "A customer past its AML retention period was erased by the retention job: its id "
        "and the end of its period, no personal data.",
    ),
)
# Ids of counterparties and cards that a transfer's metadata may name (a payee, a card used).
_REFERENCED: Final = re.compile(r"\b(cpty|card)_[0-9a-z]{10,40}\b")

# The card vault's masked view of a card, if the vault is wired: (tenant, card id) -> dict.
CardView = Callable[[str, str], dict[str, Any] | None]


@dataclass(frozen=True, slots=True)
class RetentionRun:
    examined: int
    erased: int
    skipped: int  # held meanwhile (a manual hold, an account reopened) or already erased


class GdprService:
    def __init__(
        self,
        engine: Engine,
        customers: CustomerService,
        counterparties: CounterpartyService,
        ledger: LedgerService,
        *,
        retention_days: int,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        cards: CardView | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        assert retention_days >= 0
        self.engine = engine
        self.customers = customers
        self.counterparties = counterparties
        self.ledger = ledger
        self.retention_days = retention_days
        self._audit = audit
        self._events = events
        self._cards = cards
        self._now_us = now_us

    # -- the hold --------------------------------------------------------------------------

    def hold_reason(self, uow: UnitOfWork, tenant_id: str, customer_id: str) -> str | None:
        """The customers' service's port (customers.service.RetentionHold): why erasure is
        refused now, or None. Read in the erasure's transaction, which holds the customer's
        row: an account opened for the customer meanwhile is seen. Besides the AML retention
        of the relationship, an open sanctions or AML alert on the customer holds its records
        until an officer decides it (a customer with no account included): erasing them would
        destroy the evidence a report may need, and the refusal names no kind of alert, so
        relaying it tips nobody off."""
        hold = aml_hold(store.relationship(uow, customer_id), self.retention_days, self._now_us())
        if hold is not None:
            return hold.reason(customer_id)
        alerts = store.open_alerts(uow, tenant_id, f"customer:{customer_id}", customer_id)
        return _alert_hold(f"customer {customer_id}", alerts)

    def counterparty_hold_reason(
        self, uow: UnitOfWork, tenant_id: str, counterparty_id: str
    ) -> str | None:
        """The counterparties' service's port: an open sanctions alert on the counterparty
        holds its records, as a customer's."""
        alerts = store.open_alerts(uow, tenant_id, f"counterparty:{counterparty_id}")
        return _alert_hold(f"counterparty {counterparty_id}", alerts)

    # -- the export ------------------------------------------------------------------------

    def export(
        self,
        tenant_id: str,
        customer_id: str,
        *,
        actor: str,
        starting_after: str | None = None,
    ) -> dict[str, Any]:
        """Everything held about the customer, as one JSON document: the profile and its
        personal data in full (an audit leaf `customer.pii_revealed`, as any reveal), its
        accounts (by id, after `starting_after`) with their balances and, per account, its
        newest GDPR_EXPORT_TRANSFERS_MAX transfers (`transfers_has_more` and
        `transfers_next_cursor` lead to the rest through the account's transfer listing), the
        counterparties and cards those transfers' metadata name (masked), the risk decisions
        on those transfers, the cases about them or about the customer. At most
        GDPR_EXPORT_TOTAL_TRANSFERS_MAX transfers in all and GDPR_EXPORT_ACCOUNTS_MAX accounts:
        when accounts are left past either, `truncated` is true and `next_starting_after`
        names the last account listed, from which the next request goes on. The export itself
        is an audit leaf `customer.exported` (counts, no values)."""
        transfers_max = GDPR_EXPORT_TOTAL_TRANSFERS_MAX
        customer = self.customers.get(tenant_id, customer_id)  # NotFound: another tenant's
        personal: dict[str, Any] | None
        try:
            personal = self.customers.reveal(tenant_id, customer_id, actor=actor)
            personal.pop("object", None)
            personal.pop("customer_id", None)
        except DataErased:
            personal = None
        accounts: list[dict[str, Any]] = []
        transfer_ids: list[str] = []
        referenced: set[str] = set()
        after = starting_after
        truncated = False
        while True:
            page = self.customers.accounts(
                tenant_id, customer_id, starting_after=after, limit=PAGE_SIZE_MAX
            )
            for account in page.data:
                budget = min(GDPR_EXPORT_TRANSFERS_MAX, transfers_max - len(transfer_ids))
                full = len(accounts) >= GDPR_EXPORT_ACCOUNTS_MAX or budget <= 0
                if full:
                    # Accounts are left (this one at least): the next request goes on.
                    truncated = True
                    break
                body = account.to_dict()
                transfers, more, cursor = self._transfers(account.id, budget)
                for t in transfers:
                    transfer_ids.append(t["id"])
                    referenced.update(m.group() for m in _REFERENCED.finditer(str(t)))
                body["transfers"] = transfers
                body["transfers_has_more"] = more
                body["transfers_next_cursor"] = cursor
                accounts.append(body)
            if truncated or not page.has_more or not page.data:
                break
            after = page.data[-1].id
        with UnitOfWork(self.engine, write=False) as uow:
            unique = sorted(set(transfer_ids))
            decisions = store.decisions_of(uow, tenant_id, unique)
            cases = store.cases_of(uow, tenant_id, customer_id, unique)
        for d in decisions:
            d["created_at"] = clock.format_us(d["created_at"])
        for c in cases:
            for name in ("created_at", "decided_at"):
                c[name] = None if c[name] is None else clock.format_us(int(c[name]))
        counterparties = []
        cards = []
        for ref in sorted(referenced):
            if ref.startswith("cpty_"):
                try:
                    counterparties.append(self.counterparties.get(tenant_id, ref).to_dict())
                except NotFound:
                    continue
            elif self._cards is not None:
                card = self._cards(tenant_id, ref)
                if card is not None:
                    cards.append(card)
        document = {
            "object": "gdpr_export",
            "format": EXPORT_FORMAT,
            "customer": customer.to_dict(),
            "personal_data": personal,
            "accounts": accounts,
            "accounts_has_more": truncated,
            "truncated": truncated,
            "next_starting_after": accounts[-1]["id"] if truncated else None,
            "counterparties": counterparties,
            "cards": cards,
            "risk_decisions": decisions,
            "cases": cases,
            "consents": [],  # none are kept yet (open banking consents will be listed here)
            "exported_at": clock.format_us(self._now_us()),
        }
        counts = {
            "accounts": len(accounts),
            "transfers": len(unique),
            "counterparties": len(counterparties),
            "cards": len(cards),
            "risk_decisions": len(decisions),
            "cases": len(cases),
        }
        if self._audit is not None:
            with UnitOfWork(self.engine) as uow:
                item = ("customer.exported", customer_id, {"customer_id": customer_id, **counts})
                self._audit.record_all(uow, tenant_id, actor, [item])
                uow.commit()
        return document

    def _transfers(
        self, account_id: str, budget: int
    ) -> tuple[list[dict[str, Any]], bool, str | None]:
        """The account's newest `budget` transfers, whether it has more, and the cursor of its
        transfer listing that goes on after the last one given (pages never read past the
        budget, so the cursor skips nothing)."""
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        more = False
        while len(out) < budget:
            page = self.ledger.list_transfers(
                account_id=account_id, cursor=cursor, limit=min(PAGE_SIZE_MAX, budget - len(out))
            )
            out.extend(transfer_to_dict(r) for r in page.data)
            more = page.has_more
            cursor = page.next_cursor
            if not more or cursor is None:
                break
        return out, more, cursor if more else None

    # -- retention -------------------------------------------------------------------------

    def past_retention(self, *, limit: int = GDPR_ERASE_BATCH_MAX) -> list[tuple[str, str, int]]:
        """(tenant, customer, last activity) of customers past their AML retention period."""
        cutoff = retention_cutoff_us(self.retention_days, self._now_us())
        with UnitOfWork(self.engine, write=False) as uow:
            return store.past_retention(uow, cutoff, limit=limit)

    def count_past_retention(self) -> PastRetention:
        return count_past_retention(self.engine, self.retention_days, self._now_us())

    def erase_due(
        self, keep: Callable[[], bool] = lambda: True, on_erased: Callable[[], None] | None = None
    ) -> RetentionRun:
        """Erase, one customer per transaction through the customers' service, each customer
        past retention; each erasure is its `customer.erased` leaf and event (the service's),
        plus a leaf and an event `customer.retention_erased`. A customer held meanwhile is
        skipped (the service checks again under its lock). Stops when `keep()` says so."""
        examined = erased = skipped = 0
        after = ""
        while keep():
            cutoff = retention_cutoff_us(self.retention_days, self._now_us())
            with UnitOfWork(self.engine, write=False) as uow:
                due = store.past_retention(uow, cutoff, after=after, limit=GDPR_ERASE_BATCH_MAX)
            for tenant_id, customer_id, last in due:
                if not keep():
                    break
                examined += 1
                try:
                    self.customers.erase(tenant_id, customer_id, actor=RETENTION_ACTOR)
                except (LegalHold, NotFound):
                    skipped += 1
                    continue
                self._erased(tenant_id, customer_id, last)
                erased += 1
                if on_erased is not None:
                    on_erased()
            if len(due) < GDPR_ERASE_BATCH_MAX:
                break
            after = due[-1][1]
        if erased or skipped:
            log.info("aml retention: erased %d customers, skipped %d", erased, skipped)
        return RetentionRun(examined, erased, skipped)

    def _erased(self, tenant_id: str, customer_id: str, last_us: int) -> None:
        data = {
            "customer_id": customer_id,
            "retention_days": self.retention_days,
            "last_activity_at": clock.format_us(last_us),
        }
        with UnitOfWork(self.engine) as uow:
            if self._audit is not None:
                item = ("customer.retention_erased", customer_id, data)
                self._audit.record_all(uow, tenant_id, RETENTION_ACTOR, [item])
            if self._events is not None:
                event = {"object": "customer", "id": customer_id, **data}
                del event["customer_id"]
                self._events.emit(uow, tenant_id, [("customer.retention_erased", event)])
            uow.commit()


def _alert_hold(who: str, case_ids: list[str]) -> str | None:
    """Why erasure is refused while compliance cases on the subject are open: their ids (a
    staff user with cases:read finds them), never their kind."""
    if not case_ids:
        return None
    shown = ", ".join(case_ids[:ALERT_CASES_NAMED_MAX])
    more = len(case_ids) - ALERT_CASES_NAMED_MAX
    return (
        f"{who} is the subject of {len(case_ids)} open compliance case(s) ({shown}"
        f"{f' and {more} more' if more > 0 else ''}): their records are kept until an officer "
        "decides them"
    )


class PastRetention(NamedTuple):
    total: int
    first: list[tuple[str, str]]  # (tenant, customer) of the first few
    by_tenant: dict[str, int]


def count_past_retention(
    engine: Engine, retention_days: int, now_us: int, *, first_max: int = 100
) -> PastRetention:
    """How many customers are past their AML retention period, (tenant, customer) of the
    first `first_max`, and how many of each tenant; read a bounded batch at a time."""
    cutoff = retention_cutoff_us(retention_days, now_us)
    total = 0
    first: list[tuple[str, str]] = []
    by_tenant: dict[str, int] = {}
    after = ""
    with UnitOfWork(engine, write=False) as uow:
        while True:
            rows = store.past_retention(uow, cutoff, after=after, limit=GDPR_ERASE_BATCH_MAX)
            total += len(rows)
            first.extend((t, c) for t, c, _ in rows[: max(0, first_max - len(first))])
            for tenant, _, _ in rows:
                by_tenant[tenant] = by_tenant.get(tenant, 0) + 1
            if len(rows) < GDPR_ERASE_BATCH_MAX:
                return PastRetention(total, first, by_tenant)
            after = rows[-1][1]
