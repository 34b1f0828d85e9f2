"""Accounts' AML profiles: what the monitor trusts about an account besides its transfers,
set only by compliance (docs/aml.md, "Exempt accounts and jurisdictions"). A key that moves
money (ledger:write) writes an account's metadata, so the metadata is never read for this: a
payer could otherwise exempt itself, or hide (or invent) a high-risk jurisdiction. Each change
is an audit leaf and an `account.aml_updated` event (ids, the flag and the code) in its
transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.compliance.aml import store
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.customers.model import normalise_country
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.service import LedgerService

AML_UPDATED: Final = "account.aml_updated"
AML_EVENT_TYPES: Final = (
    EventType(
        AML_UPDATED,
        "An account's AML profile was set by compliance: its id, whether it is exempt from "
        "the AML monitor's alerts and its jurisdiction.",
    ),
)


@dataclass(frozen=True, slots=True)
class AccountAml:
    account_id: str
    exempt: bool
    jurisdiction: str | None
    updated_by: str | None
    updated_at: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "account_aml",
            "account_id": self.account_id,
            "exempt": self.exempt,
            "jurisdiction": self.jurisdiction,
            "updated_by": self.updated_by,
            "updated_at": None if self.updated_at is None else clock.format_us(self.updated_at),
        }


class AmlProfiles:
    def __init__(
        self,
        engine: Engine,
        ledger: LedgerService,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self._audit = audit
        self._events = events
        self.clock = clock_ or clock.MonotonicClock()

    def _check_account(self, tenant_id: str, account_id: str) -> None:
        """NotFound for an account that does not exist or is another tenant's."""
        account = self.ledger.get_account(account_id)
        if self.ledger.ledger_tenants([account.ledger_id]).get(account.ledger_id) != tenant_id:
            raise NotFound(f"no account {account_id}", param="account_id")

    def get(self, tenant_id: str, account_id: str) -> AccountAml:
        """An account never set: monitored, no jurisdiction."""
        self._check_account(tenant_id, account_id)
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_profile(uow, tenant_id, account_id)
        if row is None:
            return AccountAml(account_id, False, None, None, None)
        return AccountAml(account_id, row.exempt, row.jurisdiction, row.updated_by, row.updated_at)

    def set(
        self, tenant_id: str, account_id: str, *, exempt: bool, jurisdiction: str | None,
        actor: str,
    ) -> AccountAml:  # fmt: skip
        """Set both (a PUT): the monitor's sink reads them with each batch that names the
        account; a scan reads them as they are when it runs."""
        code = None if jurisdiction is None else normalise_country(jurisdiction, "jurisdiction")
        self._check_account(tenant_id, account_id)
        now = self.clock.now_us()
        row = store.ProfileRow(tenant_id, account_id, exempt, code, actor, now)
        with UnitOfWork(self.engine) as uow:
            store.put_profile(uow, row)
            data = {"account_id": account_id, "exempt": exempt, "jurisdiction": code}
            if self._audit is not None:
                self._audit.record_all(uow, tenant_id, actor, [(AML_UPDATED, account_id, data)])
            if self._events is not None:
                event = {"object": "account_aml", **data}
                self._events.emit(uow, tenant_id, [(AML_UPDATED, event)])
            uow.commit()
        return AccountAml(account_id, exempt, code, actor, now)
