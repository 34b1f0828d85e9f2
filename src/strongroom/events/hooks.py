"""What other domains see of the events: a way to add events of their own (a customer's, say)
inside their own transaction, so that an event exists if and only if its change committed. A
protocol, so that they depend on no more than this; EventService implements it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.db.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class EventType:
    """An event type a domain emits, with what it means (the OpenAPI document's `webhooks`)."""

    name: str
    about: str


class EventEmitter(Protocol):
    def emit(
        self, uow: UnitOfWork, tenant_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> None:
        """(type, data) events of tenant `tenant_id`, written through `uow`: delivered to the
        tenant's webhook endpoints once it commits. `data` holds ids, never personal data."""
