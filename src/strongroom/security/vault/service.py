"""The card vault: tokenize, show masked, reveal (audited), delete (crypto-shredding).

Each card is a subject of the envelope (SubjectKind.CARD) with its own data key: its number and
its holder's name are sealed under it, bound to the card's row and field, and deleting the card
deletes its row and shreds the key. A keyed hash of the number (the fingerprint, per tenant)
recognises the same card without storing it. The security code is checked by the caller
(model.check_card) and never reaches this service.

Writes go in batches (`write`): a tokenization is sealed by its caller (`seal`, no database),
then written with others by the vault's group committer (committer.py), with its audit leaf in
the same transaction. A reveal's audit leaf is written the same way before the number is sent.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.security.envelope import DataKey, Envelope, SubjectKind
from strongroom.security.kms import WrappedKey
from strongroom.security.vault import store
from strongroom.security.vault.model import Brand, CardInput, masked

FINGERPRINT_PURPOSE: Final = "card.pan"
FINGERPRINT_BYTES: Final = 16  # of the HMAC-SHA256: 128 bits, base64url in 22 characters
FINGERPRINT_PATTERN: Final = r"^[A-Za-z0-9_-]{22}$"
# Audit leaf types (the leaf names the token only: never the number, never the fingerprint).
CARD_CREATED: Final = "card.created"
CARD_REVEALED: Final = "card.revealed"
CARD_DELETED: Final = "card.deleted"
# The events the vault emits (type, what it means), for the webhooks' documentation; their data
# is the token alone, as the audit leaves'.
CARD_EVENT_TYPES: Final = (
    (CARD_CREATED, "A card was tokenized: `data.card` is its token (GET it for the masked card)."),
    (CARD_DELETED, "A card was deleted, its data key shredded: `data.card` is its token."),
)


class EventEmitter(Protocol):
    """Where the vault's events go, in its own transaction (the events domain's emitter)."""

    def emit(
        self, uow: UnitOfWork, tenant_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None: ...


def _record(card_id: str) -> str:
    """The record a card's sealed fields are bound to (their associated data)."""
    return f"cards/{card_id}"


@dataclass(frozen=True, slots=True)
class Card:
    """What may be shown of a card: never its number, never its holder's name."""

    id: str
    tenant_id: str
    fingerprint: str
    bin: str
    last4: str
    digits: int
    brand: Brand
    exp_month: int
    exp_year: int
    created_at: int
    created_by: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Card:
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            int(row[5]),
            Brand(row[6]),
            int(row[7]),
            int(row[8]),
            int(row[9]),
            row[10],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "card",
            "brand": self.brand.value,
            "bin": self.bin,
            "last4": self.last4,
            "masked_number": masked(self.bin, self.last4, self.digits),
            "exp_month": self.exp_month,
            "exp_year": self.exp_year,
            "fingerprint": self.fingerprint,
            "created_at": clock.format_us(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class NewCard:
    """A tokenization sealed and ready to write; holds the number only sealed."""

    card: Card
    key: tuple[DataKey, WrappedKey] = field(repr=False)
    sealed_number: bytes = field(repr=False)
    sealed_holder_name: bytes = field(repr=False)

    def row(self) -> tuple[Any, ...]:
        c = self.card
        return (
            c.id,
            c.tenant_id,
            c.fingerprint,
            c.bin,
            c.last4,
            c.digits,
            c.brand.value,
            c.exp_month,
            c.exp_year,
            c.created_at,
            c.created_by,
            self.sealed_number,
            self.sealed_holder_name,
        )


@dataclass(frozen=True, slots=True)
class Revealed:
    """A card's number and holder in clear, for the one answer that carries them."""

    card: Card
    number: str = field(repr=False)
    holder_name: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuditNote:
    """An audit leaf to write with a batch (a reveal's): type, tenant, actor, card."""

    type: str
    tenant_id: str
    actor: str
    card_id: str


VaultWrite = NewCard | AuditNote


@dataclass(frozen=True, slots=True)
class CardPage:
    data: list[Card]
    has_more: bool


class VaultService:
    def __init__(
        self,
        engine: Engine,
        envelope: Envelope,
        recorder: AuditRecorder | None = None,
        events: EventEmitter | None = None,
    ) -> None:
        """`recorder` writes the audit leaves, `events` the webhooks' events, each in the
        vault's transaction; without them, none is written."""
        self.engine = engine
        self.envelope = envelope
        self.recorder = recorder
        self.events = events

    def fingerprint(self, tenant_id: str, pan: str) -> str:
        digest = self.envelope.blind_index(tenant_id, FINGERPRINT_PURPOSE, pan.encode())
        return base64.urlsafe_b64encode(digest[:FINGERPRINT_BYTES]).decode().rstrip("=")

    def seal(self, tenant_id: str, actor: str, card: CardInput, card_id: str) -> NewCard:
        """The card's row, sealed under a fresh data key of its own; touches no database."""
        key, wrapped = self.envelope.prepare_subject(tenant_id, card_id)
        record = _record(card_id)
        shown = Card(
            card_id,
            tenant_id,
            self.fingerprint(tenant_id, card.pan),
            card.bin,
            card.last4,
            len(card.pan),
            card.brand,
            card.exp_month,
            card.exp_year,
            clock.now_us(),
            actor,
        )
        return NewCard(
            shown,
            (key, wrapped),
            key.seal(record, "number", card.pan.encode()),
            key.seal(record, "holder_name", card.holder_name.encode()),
        )

    # -- writes ------------------------------------------------------------------------------

    def write(self, uow: UnitOfWork, items: Sequence[VaultWrite]) -> None:
        """A batch of tokenizations and audit notes, in the caller's transaction. A token that
        exists already (a retried request's first attempt committed it) is left as it is,
        without a second leaf."""
        cards = [i for i in items if isinstance(i, NewCard)]
        exists = store.existing(uow, [c.card.id for c in cards]) if cards else set()
        if exists:
            items = [i for i in items if not (isinstance(i, NewCard) and i.card.id in exists)]
            cards = [c for c in cards if c.card.id not in exists]
        self.envelope.store_subjects(uow, SubjectKind.CARD, [c.key for c in cards])
        store.insert_cards(uow, [c.row() for c in cards])
        if self.events is not None:
            by_tenant: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
            for c in cards:
                by_tenant.setdefault(c.card.tenant_id, []).append(
                    (CARD_CREATED, {"card": c.card.id})
                )
            for tenant, events in by_tenant.items():
                self.events.emit(uow, tenant, events)
        if self.recorder is None:
            return
        leaves: dict[tuple[str, str], list[tuple[str, str | None, dict[str, Any]]]] = {}
        for item in items:
            if isinstance(item, NewCard):
                tenant, actor, kind, card_id = (
                    item.card.tenant_id,
                    item.card.created_by,
                    CARD_CREATED,
                    item.card.id,
                )
            else:
                tenant, actor, kind, card_id = item.tenant_id, item.actor, item.type, item.card_id
            leaves.setdefault((tenant, actor), []).append((kind, card_id, {"card": card_id}))
        for (tenant, actor), found in leaves.items():
            self.recorder.record_all(uow, tenant, actor, found)

    def commit(self, items: Sequence[VaultWrite]) -> None:
        """`write` in a transaction of its own (the group committer's commit)."""
        with UnitOfWork(self.engine) as uow:
            self.write(uow, items)
            uow.commit()

    def tokenize(self, tenant_id: str, actor: str, card: CardInput, card_id: str) -> Card:
        """One tokenization in its own transaction (the API batches them: committer.py)."""
        new = self.seal(tenant_id, actor, card, card_id)
        self.commit([new])
        return new.card

    def delete(self, tenant_id: str, card_id: str, actor: str) -> None:
        """Deletes the card's row and shreds its data key: copies of the sealed values in
        backups or the write-ahead log no longer open, by anyone."""
        with UnitOfWork(self.engine) as uow:
            if store.delete_card(uow, tenant_id, card_id) != 1:
                raise NotFound(f"no card {card_id}", param="card_id")
            self.envelope.shred(uow, tenant_id, card_id)
            if self.events is not None:
                self.events.emit(uow, tenant_id, [(CARD_DELETED, {"card": card_id})])
            if self.recorder is not None:
                self.recorder.record_all(
                    uow, tenant_id, actor, [(CARD_DELETED, card_id, {"card": card_id})]
                )
            uow.commit()

    # -- reads -------------------------------------------------------------------------------

    def get(self, tenant_id: str, card_id: str) -> Card:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_card(uow, tenant_id, card_id)
        if row is None:
            raise NotFound(f"no card {card_id}", param="card_id")
        return Card.from_row(row)

    def find(self, tenant_id: str, card_id: str) -> Card | None:
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_card(uow, tenant_id, card_id)
        return None if row is None else Card.from_row(row)

    def list(
        self,
        tenant_id: str,
        *,
        fingerprint: str | None = None,
        starting_after: str | None = None,
        limit: int,
    ) -> CardPage:
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.list_cards(
                uow,
                tenant_id,
                fingerprint=fingerprint,
                starting_after=starting_after,
                limit=limit + 1,
            )
        return CardPage([Card.from_row(r) for r in rows[:limit]], len(rows) > limit)

    def open(self, tenant_id: str, card_id: str) -> Revealed:
        """The card in clear, with no audit leaf: the caller writes the leaf (an AuditNote
        through the committer, or `reveal`) before it sends the number anywhere."""
        with UnitOfWork(self.engine, write=False) as uow:
            row = store.get_sealed(uow, tenant_id, card_id)
            if row is None:
                raise NotFound(f"no card {card_id}", param="card_id")
            key = self.envelope.subject(uow, tenant_id, card_id)
        card = Card.from_row(row)
        record = _record(card_id)
        number = key.open(record, "number", bytes(row[11])).decode()
        holder = key.open(record, "holder_name", bytes(row[12])).decode()
        return Revealed(card, number, holder)

    def reveal(self, tenant_id: str, card_id: str, actor: str) -> Revealed:
        """`open`, its `card.revealed` leaf committed first (the API batches these)."""
        revealed = self.open(tenant_id, card_id)
        self.commit([AuditNote(CARD_REVEALED, tenant_id, actor, card_id)])
        return revealed
