"""Counterparties: payees who are not customers (a name, an account identifier, a country).
They are subjects of their own, with their own data keys: the name and the account identifier
are sealed, the country (not personal) stays in clear for risk and compliance to read. Creation,
reveals and erasure are audit leaves committing to digests of the sealed values."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import NotFound
from strongroom.core.limits import PAGE_SIZE_DEFAULT
from strongroom.core.pagination import check_limit
from strongroom.customers import store
from strongroom.customers.errors import LegalHold
from strongroom.customers.model import (
    Counterparty,
    CounterpartyData,
    normalise_account_identifier,
    normalise_country,
    normalise_name,
)
from strongroom.customers.service import (
    ForgetAnswers,
    ForgetScreening,
    RetentionHold,
    ScreenName,
    digest,
)
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.service import Page
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import DataErased


def record_of(counterparty_id: str) -> str:
    return f"counterparties/{counterparty_id}"


class CounterpartyService:
    def __init__(
        self,
        engine: Engine,
        envelope: Envelope,
        *,
        audit: AuditRecorder | None = None,
        forget_answers: ForgetAnswers | None = None,
        screen_name: ScreenName | None = None,
        clock_: clock.MonotonicClock | None = None,
        retention_hold: RetentionHold | None = None,
        forget_screening: ForgetScreening | None = None,
    ) -> None:
        """`forget_answers`, `retention_hold` (an open sanctions alert on the counterparty)
        and `forget_screening`: as CustomerService's, for a counterparty's erasure;
        `screen_name`: as CustomerService's, at creation."""
        self.engine = engine
        self.screen_name = screen_name
        self.retention_hold = retention_hold
        self.forget_screening = forget_screening
        self.envelope = envelope
        self._forget_answers = forget_answers
        self._audit = audit
        self.clock = clock_ or clock.MonotonicClock()

    def _uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    def _row(
        self, uow: UnitOfWork, tenant_id: str, counterparty_id: str, *, lock: bool = False
    ) -> store.CounterpartyRow:
        row = store.get_counterparty(uow, counterparty_id, lock=lock)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound(f"no counterparty {counterparty_id}", param="counterparty_id")
        return row

    def _view(self, uow: UnitOfWork, row: store.CounterpartyRow) -> Counterparty:
        personal = None
        if row.erased_at is None:
            assert row.name_sealed is not None
            assert row.account_sealed is not None
            key = self.envelope.subject(uow, row.tenant_id, row.id)
            record = record_of(row.id)
            personal = CounterpartyData(
                key.open(record, "name", row.name_sealed).decode(),
                key.open(record, "account", row.account_sealed).decode(),
            )
        return Counterparty(row.id, row.tenant_id, row.country, personal, row.created_at,
                            row.erased_at)  # fmt: skip

    def _record(
        self, uow: UnitOfWork, tenant_id: str, actor: str, kind: str, row_id: str, data: Any
    ) -> None:
        if self._audit is not None:
            item = (kind, row_id, {"counterparty_id": row_id, **data})
            self._audit.record_all(uow, tenant_id, actor, [item])

    def create(
        self,
        tenant_id: str,
        name: object,
        account_identifier: object,
        country: object,
        *,
        actor: str,
        id: str | None = None,
    ) -> Counterparty:
        """With `id` (an idempotent request's), a counterparty of this tenant that already has
        it is the answer."""
        if id is not None:
            with contextlib.suppress(NotFound):
                return self.get(tenant_id, id)
        data = CounterpartyData(
            normalise_name(name), normalise_account_identifier(account_identifier)
        )
        where = normalise_country(country)
        counterparty_id = id or ids.new_id("cpty")
        now = self.clock.now_us()
        with self._uow() as uow:
            key = self.envelope.new_subject(
                uow, tenant_id, counterparty_id, SubjectKind.COUNTERPARTY
            )
            record = record_of(counterparty_id)
            sealed = {n: key.seal(record, n, raw) for n, raw in data.sealable().items()}
            row = store.CounterpartyRow(
                counterparty_id, tenant_id, sealed["name"], sealed["account"], where, actor, now,
                None,
            )  # fmt: skip
            store.insert_counterparty(uow, row)
            digests = {n: digest(blob) for n, blob in sorted(sealed.items())}
            self._record(
                uow, tenant_id, actor, "counterparty.created", counterparty_id,
                {"country": where, "sealed": digests},
            )  # fmt: skip
            if self.screen_name is not None:
                subject = f"counterparty:{counterparty_id}"
                self.screen_name(uow, tenant_id, subject, None, data.name, actor)
            uow.commit()
        return Counterparty(counterparty_id, tenant_id, where, data, now, None)

    def get(self, tenant_id: str, counterparty_id: str) -> Counterparty:
        with self._uow(write=False) as uow:
            return self._view(uow, self._row(uow, tenant_id, counterparty_id))

    def list_counterparties(
        self,
        tenant_id: str,
        *,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Counterparty]:
        check_limit(limit)
        with self._uow(write=False) as uow:
            rows = store.list_counterparties(uow, tenant_id, starting_after, limit + 1)
            data = [self._view(uow, row) for row in rows[:limit]]
        return Page(data, len(rows) > limit)

    def reveal(self, tenant_id: str, counterparty_id: str, *, actor: str) -> Counterparty:
        """In full, for a key with `pii:read`: an audit leaf `counterparty.pii_revealed`."""
        with self._uow() as uow:
            row = self._row(uow, tenant_id, counterparty_id)
            if row.erased_at is not None:
                raise DataErased(f"the personal data of {counterparty_id} was erased")
            view = self._view(uow, row)
            fields: Sequence[str] = ["account_identifier", "name"]
            self._record(
                uow, tenant_id, actor, "counterparty.pii_revealed", row.id, {"fields": fields}
            )
            uow.commit()
        return view

    def erase(self, tenant_id: str, counterparty_id: str, *, actor: str) -> Counterparty:
        """Crypto-shredding, as a customer's (refused, LegalHold, while `retention_hold`
        names a reason); again on an erased one: nothing more is done."""
        with self._uow() as uow:
            row = self._row(uow, tenant_id, counterparty_id, lock=True)
            if row.erased_at is None:
                held = self.retention_hold and self.retention_hold(uow, tenant_id, counterparty_id)
                if held:
                    raise LegalHold(held, param="counterparty_id")
                self.envelope.shred(uow, tenant_id, counterparty_id)
                store.erase_counterparty(uow, counterparty_id, self.clock.now_us())
                if self._forget_answers is not None:
                    self._forget_answers(uow, tenant_id, counterparty_id)
                if self.forget_screening is not None:
                    self.forget_screening(uow, tenant_id, f"counterparty:{counterparty_id}")
                self._record(uow, tenant_id, actor, "counterparty.erased", row.id, {})
            view = self._view(uow, self._row(uow, tenant_id, counterparty_id))
            uow.commit()
        return view
