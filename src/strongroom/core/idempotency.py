"""What a request carrying an `Idempotency-Key` tells the handlers that serve it.

The tenancy layer claims the key (tenancy.service) and puts an `IdempotentRequest` in the
request's scope state under STATE_KEY. Handlers mint the ids of what they create from it
(`ids`), not at random: every attempt of the same request (same tenant, key and claim) mints the
same ids, so an attempt that runs again after a crash, a 5xx or a lost answer finds what an
earlier attempt committed (the ledger answers `exists`) instead of creating it twice.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from strongroom.core import ids

STATE_KEY: Final = "idempotent_request"
# Where a route names the data subject (a customer, a counterparty) its answer concerns, in the
# request's scope state: the Idempotency-Key record keeps it, and erasing the subject replaces
# the records' stored answers (they hold its masked personal data) by a 410 data_erased.
SUBJECT_KEY: Final = "idempotency_subject"


@dataclass
class IdempotentRequest:
    tenant_id: str
    key: str
    # When the key was claimed (microseconds): a key reused after its retention is a new claim,
    # with a new time, and so mints new ids.
    claimed_at_us: int
    # True when an earlier attempt of this request ran (and may have committed) before.
    resumed: bool
    _minted: Counter[str] = field(default_factory=Counter, repr=False)

    @property
    def seed(self) -> bytes:
        text = f"{self.tenant_id}\0{self.key}\0{self.claimed_at_us}"
        return hashlib.sha256(text.encode()).digest()

    def new_ids(self, prefix: str, count: int) -> list[str]:
        """The next `count` ids of `prefix` of this request: the same on every attempt, as
        long as the handler asks for them in the same order (handlers are deterministic)."""
        start = self._minted[prefix]
        self._minted[prefix] += count
        return ids.derived_ids(prefix, self.seed, self.claimed_at_us, start, count)

    def new_id(self, prefix: str) -> str:
        return self.new_ids(prefix, 1)[0]


class Minter(Protocol):
    """Where a handler gets the ids of what it creates."""

    def new_id(self, prefix: str) -> str: ...

    def new_ids(self, prefix: str, count: int) -> list[str]: ...


class _RandomIds:
    """A request without an Idempotency-Key: new, time-ordered ids (core.ids)."""

    def new_id(self, prefix: str) -> str:
        return ids.new_id(prefix)

    def new_ids(self, prefix: str, count: int) -> list[str]:
        return ids.new_ids(prefix, count)


RANDOM_IDS: Final[Minter] = _RandomIds()


def request_of(state: Mapping[str, Any]) -> IdempotentRequest | None:
    """The idempotent request a scope's state holds, if any."""
    found = state.get(STATE_KEY)
    return found if isinstance(found, IdempotentRequest) else None


def minter_for(state: Mapping[str, Any]) -> Minter:
    """The ids of a request: derived from its Idempotency-Key's claim, or new ones."""
    return request_of(state) or RANDOM_IDS


def concerns(state: MutableMapping[str, Any], subject_id: str) -> None:
    """Name the data subject whose (masked) personal data this request's answer holds, so the
    answer its Idempotency-Key record stores (if any) becomes a 410 `data_erased` when the
    subject is erased. `state` is the request's scope state (`request.scope["state"]`)."""
    state[SUBJECT_KEY] = subject_id


def subject_of(state: Mapping[str, Any]) -> str | None:
    found = state.get(SUBJECT_KEY)
    return found if isinstance(found, str) else None
