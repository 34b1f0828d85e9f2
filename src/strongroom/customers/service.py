"""Customers: the use cases the API calls. Each personal-data field is sealed under the
customer's own data key (security/envelope.py) and bound to its row and field; the email and the
national id are found through blind indexes, never by decrypting everything. Every change is an
audit leaf (committing to a digest of the sealed value, never the value) and an event (ids
only), in the change's transaction. Erasure shreds the data key: the values are gone for
everyone, the ledger and the audit log still verify."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import PAGE_SIZE_DEFAULT
from strongroom.core.pagination import check_limit
from strongroom.customers import store
from strongroom.customers.errors import CustomerErased, LegalHold
from strongroom.customers.model import (
    EMAIL_INDEX,
    NATIONAL_ID_INDEX,
    PII_FIELDS,
    Customer,
    CustomerKind,
    PersonalData,
    merged,
    normalise_email,
    normalise_national_id,
    parse_personal_data,
)
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.service import Account, LedgerService, Page, canonical_metadata
from strongroom.security.envelope import DataKey, Envelope, SubjectKind
from strongroom.security.errors import DataErased

CUSTOMER_EVENT_TYPES: Final = (
    EventType("customer.created", "A customer was created: its id and kind, no personal data."),
    EventType(
        "customer.updated",
        "A customer's personal data or metadata changed: the names of the fields, never values.",
    ),
    EventType(
        "customer.erased",
        "A customer's personal data was erased (its data key destroyed): its id only.",
    ),
)


def record_of(customer_id: str) -> str:
    """The record a customer's fields are sealed for (the associated data names it)."""
    return f"customers/{customer_id}"


def digest(sealed: bytes) -> str:
    """What an audit leaf commits to for a sealed value: its SHA-256, which says nothing of
    the value and outlives its erasure."""
    return hashlib.sha256(sealed).hexdigest()


def existing_customers(uow: UnitOfWork, tenant_id: str, customer_ids: Sequence[str]) -> set[str]:
    """The ledger's port (ledger.base.CustomerCheck): those of `customer_ids` that are
    customers of `tenant_id` (erased ones included: their accounts remain)."""
    return store.existing_customer_ids(uow, tenant_id, customer_ids)


def _today(now_us: int) -> dt.date:
    return dt.datetime.fromtimestamp(now_us / 1_000_000, dt.UTC).date()


# Replaces a tenant's stored Idempotency-Key answers that concern a data subject (by a 410
# data_erased), in the caller's transaction (TenancyService.erase_subject_answers, wired by
# runtime.py).
ForgetAnswers = Callable[[UnitOfWork, str, str], object]

# Why a customer's records must be kept now (compliance.gdpr: AML record keeping), or None:
# read in an erasure's transaction, which holds the customer's row (wired by runtime.py).
RetentionHold = Callable[[UnitOfWork, str, str], str | None]
# A screening point (sanctions screening, wired by runtime.py): a customer's or counterparty's
# name is screened inside the transaction that creates it or changes its name, so that its
# screening (and any alert) commits with it: (uow, tenant id, subject `customer:<id>` or
# `counterparty:<id>`, kind `person`, `business` or None, the name, the actor).
ScreenName = Callable[[UnitOfWork, str, str, "str | None", str, str], object]
# Deletes what screening stored of a subject (sanctions screening, wired by runtime.py), in an
# erasure's transaction: (uow, tenant id, subject `customer:<id>` or `counterparty:<id>`).
ForgetScreening = Callable[[UnitOfWork, str, str], object]


class CustomerService:
    def __init__(
        self,
        engine: Engine,
        envelope: Envelope,
        *,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        ledger: LedgerService | None = None,
        forget_answers: ForgetAnswers | None = None,
        screen_name: ScreenName | None = None,
        clock_: clock.MonotonicClock | None = None,
        retention_hold: RetentionHold | None = None,
        forget_screening: ForgetScreening | None = None,
    ) -> None:
        """`audit` and `events` record each change in its transaction; `ledger` lists a
        customer's accounts; `forget_answers` replaces, in an erasure's transaction, the stored
        Idempotency-Key answers that concern the subject (they hold its masked data);
        `retention_hold` refuses an erasure while the law keeps the records (AML record
        keeping, an open compliance alert); `screen_name` screens a new customer's name, and a
        changed one (sanctions); `forget_screening` deletes, in an erasure's transaction, what
        screening stored of the customer (keyed hashes of its name, its matches)."""
        self.engine = engine
        self.retention_hold = retention_hold
        self.screen_name = screen_name
        self.forget_screening = forget_screening
        self.envelope = envelope
        self._forget_answers = forget_answers
        self._audit = audit
        self._events = events
        self._ledger = ledger
        self.clock = clock_ or clock.MonotonicClock()

    def _uow(self, write: bool = True) -> UnitOfWork:
        return UnitOfWork(self.engine, write=write)

    # -- reads -----------------------------------------------------------------------------

    def _row(
        self, uow: UnitOfWork, tenant_id: str, customer_id: str, *, lock: bool = False
    ) -> store.CustomerRow:
        row = store.get_customer(uow, customer_id, lock=lock)
        if row is None or row.tenant_id != tenant_id:  # another tenant's: as one nobody has
            raise NotFound(f"no customer {customer_id}", param="customer_id")
        return row

    def _open(self, uow: UnitOfWork, row: store.CustomerRow) -> PersonalData | None:
        if row.erased_at is not None:
            return None
        key = self.envelope.subject(uow, row.tenant_id, row.id)
        record = record_of(row.id)
        return PersonalData.from_opened(
            {name: key.open(record, name, sealed) for name, sealed in row.sealed.items()}
        )

    def _view(self, uow: UnitOfWork, row: store.CustomerRow) -> Customer:
        return Customer(
            id=row.id,
            tenant_id=row.tenant_id,
            kind=CustomerKind(row.kind),
            personal=self._open(uow, row),
            legal_hold=row.legal_hold,
            metadata=json.loads(row.metadata) if row.metadata else None,
            created_at=row.created_at,
            updated_at=row.updated_at,
            erased_at=row.erased_at,
        )

    def get(self, tenant_id: str, customer_id: str) -> Customer:
        with self._uow(write=False) as uow:
            return self._view(uow, self._row(uow, tenant_id, customer_id))

    def list_customers(
        self,
        tenant_id: str,
        *,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
        email: str | None = None,
        national_id: str | None = None,
        actor: str | None = None,
    ) -> Page[Customer]:
        """By id. With `email` or `national_id`, exact lookup through its blind index: the
        normalised value's keyed hash, compared in SQL; nothing else is decrypted. A lookup
        says whether a value is some customer's (an oracle on personal data: the API lets only
        `pii:read` make one), so each is an audit leaf `customer.looked_up` naming `actor`, the
        field and the count found, never the value."""
        check_limit(limit)
        index = None
        if email is not None and national_id is not None:
            raise InvalidRequest(
                "look up by email or by national_id, not both",
                param="national_id",
                code="invalid_lookup",
            )
        if email is not None:
            index = ("email_index", self._index(tenant_id, EMAIL_INDEX, normalise_email(email)))
        elif national_id is not None:
            value = normalise_national_id(national_id)
            index = ("national_id_index", self._index(tenant_id, NATIONAL_ID_INDEX, value))
        with self._uow(write=index is not None) as uow:
            rows = store.list_customers(uow, tenant_id, starting_after, limit + 1, index=index)
            data = [self._view(uow, row) for row in rows[:limit]]
            if index is not None:
                field = "email" if email is not None else "national_id"
                if self._audit is not None:
                    looked = {"field": field, "found": len(data)}
                    item = ("customer.looked_up", None, looked)
                    self._audit.record_all(uow, tenant_id, actor or "unknown", [item])
                uow.commit()
        return Page(data, len(rows) > limit)

    def reveal(
        self,
        tenant_id: str,
        customer_id: str,
        *,
        actor: str,
        fields: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The personal data in full (`fields`: only those), for a key with `pii:read`. Every
        call is an audit leaf `customer.pii_revealed`: who, whose, which fields, never the
        values. An erased customer's is `data_erased` (410)."""
        only = frozenset(fields) if fields else None
        if only is not None and not only <= set(PII_FIELDS):
            raise InvalidRequest(
                f"fields are among {', '.join(PII_FIELDS)}", param="fields", code="invalid_request"
            )
        with self._uow() as uow:
            row = self._row(uow, tenant_id, customer_id)
            if row.erased_at is not None:
                raise DataErased(f"the personal data of {customer_id} was erased")
            personal = self._open(uow, row)
            assert personal is not None
            shown = sorted(n for n in row.sealed if only is None or n in only)
            self._record(uow, tenant_id, actor, "customer.pii_revealed", row.id, {"fields": shown})
            uow.commit()
        return {
            "object": "customer_personal_data",
            "customer_id": row.id,
            **personal.revealed(only),
        }

    # -- writes ----------------------------------------------------------------------------

    def _index(self, tenant_id: str, purpose: str, value: str) -> bytes:
        return self.envelope.blind_index(tenant_id, purpose, value.encode())

    def _indexes(self, tenant_id: str, personal: PersonalData) -> dict[str, bytes]:
        out = {}
        if personal.email is not None:
            out["email_index"] = self._index(tenant_id, EMAIL_INDEX, personal.email)
        if personal.national_id is not None:
            value = personal.national_id
            out["national_id_index"] = self._index(tenant_id, NATIONAL_ID_INDEX, value)
        return out

    @staticmethod
    def _seal(key: DataKey, customer_id: str, personal: PersonalData) -> dict[str, bytes]:
        record = record_of(customer_id)
        return {name: key.seal(record, name, raw) for name, raw in personal.sealable().items()}

    def _record(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        actor: str,
        kind: str,
        customer_id: str,
        data: dict[str, Any],
    ) -> None:
        if self._audit is not None:
            item = (kind, customer_id, {"customer_id": customer_id, **data})
            self._audit.record_all(uow, tenant_id, actor, [item])

    def _emit(self, uow: UnitOfWork, tenant_id: str, kind: str, data: dict[str, Any]) -> None:
        if self._events is not None:
            self._events.emit(uow, tenant_id, [(kind, {"object": "customer", **data})])

    def create(
        self,
        tenant_id: str,
        kind: str,
        personal: Mapping[str, object],
        metadata: dict[str, Any] | None = None,
        *,
        actor: str,
        id: str | None = None,
    ) -> Customer:
        """With `id` (an idempotent request's, core.idempotency), a customer of this tenant
        that already has it is the answer: the request ran before."""
        if id is not None:
            with contextlib.suppress(NotFound):
                return self.get(tenant_id, id)
        now = self.clock.now_us()
        customer_kind = CustomerKind.parse(kind)
        data = parse_personal_data(personal, customer_kind, _today(now))
        if data.name is None:
            raise InvalidRequest("a customer has a name", param="name", code="invalid_name")
        meta = canonical_metadata(metadata)
        customer_id = id or ids.new_id("cus")
        with self._uow() as uow:
            key = self.envelope.new_subject(uow, tenant_id, customer_id, SubjectKind.CUSTOMER)
            sealed = self._seal(key, customer_id, data)
            row = store.CustomerRow(
                customer_id, tenant_id, customer_kind.value, sealed, False, meta, actor, now, now,
                None,
            )  # fmt: skip
            store.insert_customer(uow, row, self._indexes(tenant_id, data))
            digests = {name: digest(blob) for name, blob in sorted(sealed.items())}
            self._record(
                uow, tenant_id, actor, "customer.created", customer_id,
                {"kind": customer_kind.value, "sealed": digests},
            )  # fmt: skip
            created = {"id": customer_id, "kind": customer_kind.value}
            self._emit(uow, tenant_id, "customer.created", created)
            if self.screen_name is not None:
                subject = f"customer:{customer_id}"
                self.screen_name(uow, tenant_id, subject, customer_kind.value, data.name, actor)
            view = self._view(uow, row)
            uow.commit()
        return view

    def update(
        self,
        tenant_id: str,
        customer_id: str,
        personal: Mapping[str, object],
        metadata: dict[str, Any] | None = None,
        *,
        actor: str,
    ) -> Customer:
        """The fields given are replaced, each sealed again (a fresh nonce) and its blind
        index recomputed; metadata, when given, replaces the whole."""
        now = self.clock.now_us()
        meta = canonical_metadata(metadata) if metadata is not None else None
        with self._uow() as uow:
            row = self._row(uow, tenant_id, customer_id, lock=True)
            if row.erased_at is not None:
                raise CustomerErased(f"the personal data of {customer_id} was erased")
            changes = parse_personal_data(personal, CustomerKind(row.kind), _today(now))
            key = self.envelope.subject(uow, tenant_id, customer_id)
            sealed = self._seal(key, customer_id, changes)
            new_meta = meta if metadata is not None else row.metadata
            store.update_customer(
                uow, customer_id, sealed, self._indexes(tenant_id, changes), new_meta, now
            )
            changed = sorted(sealed) + (["metadata"] if new_meta != row.metadata else [])
            digests = {name: digest(blob) for name, blob in sorted(sealed.items())}
            self._record(
                uow, tenant_id, actor, "customer.updated", customer_id,
                {"fields": changed, "sealed": digests},
            )  # fmt: skip
            self._emit(uow, tenant_id, "customer.updated", {"id": customer_id, "fields": changed})
            if self.screen_name is not None and changes.name is not None:
                subject = f"customer:{customer_id}"
                self.screen_name(uow, tenant_id, subject, row.kind, changes.name, actor)
            current = self._open(uow, row)
            assert current is not None
            view = Customer(
                customer_id, tenant_id, CustomerKind(row.kind), merged(current, changes),
                row.legal_hold, json.loads(new_meta) if new_meta else None, row.created_at,
                now, None,
            )  # fmt: skip
            uow.commit()
        return view

    def set_legal_hold(
        self, tenant_id: str, customer_id: str, held: bool, *, actor: str
    ) -> Customer:
        """A customer under legal hold cannot be erased (retention that overrides erasure)."""
        with self._uow() as uow:
            row = self._row(uow, tenant_id, customer_id, lock=True)
            if row.legal_hold != held:
                store.set_legal_hold(uow, customer_id, held, self.clock.now_us())
                kind = "customer.legal_hold_set" if held else "customer.legal_hold_cleared"
                self._record(uow, tenant_id, actor, kind, customer_id, {})
            view = self._view(uow, self._row(uow, tenant_id, customer_id))
            uow.commit()
        return view

    def erase(self, tenant_id: str, customer_id: str, *, actor: str) -> Customer:
        """Crypto-shredding: the data key destroyed, the sealed fields and blind indexes
        nulled, `erased_at` set, what screening stored of the customer deleted, in one
        transaction. The customer, its accounts, the ledger and the audit log remain. Refused
        (LegalHold) under a manual hold or one `retention_hold` names (an open account, the
        AML retention period, an open sanctions or AML alert). Again on an erased customer:
        nothing more is done."""
        with self._uow() as uow:
            row = self._row(uow, tenant_id, customer_id, lock=True)
            if row.erased_at is None:
                if row.legal_hold:
                    raise LegalHold(
                        f"customer {customer_id} is under legal hold: clear it to erase",
                        param="customer_id",
                    )
                held = self.retention_hold and self.retention_hold(uow, tenant_id, customer_id)
                if held:
                    raise LegalHold(held, param="customer_id")
                self.envelope.shred(uow, tenant_id, customer_id)
                store.erase_customer(uow, customer_id, self.clock.now_us())
                if self._forget_answers is not None:
                    self._forget_answers(uow, tenant_id, customer_id)
                if self.forget_screening is not None:
                    self.forget_screening(uow, tenant_id, f"customer:{customer_id}")
                erased = {"fields": sorted(row.sealed)}
                self._record(uow, tenant_id, actor, "customer.erased", customer_id, erased)
                self._emit(uow, tenant_id, "customer.erased", {"id": customer_id})
            view = self._view(uow, self._row(uow, tenant_id, customer_id))
            uow.commit()
        return view

    def accounts(
        self,
        tenant_id: str,
        customer_id: str,
        *,
        starting_after: str | None = None,
        ending_before: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
    ) -> Page[Account]:
        """The customer's accounts by id, through the ledger's service (they are in ledgers
        of the customer's tenant: account creation checks it)."""
        assert self._ledger is not None, "no ledger wired to list accounts"
        with self._uow(write=False) as uow:
            self._row(uow, tenant_id, customer_id)  # not found, or another tenant's
        return self._ledger.list_accounts(
            None, starting_after, limit, ending_before, customer_id=customer_id
        )
