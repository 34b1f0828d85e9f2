"""The dashboard's use cases: a page of a customer's consents, each with its TPP's name; and
revoking one, checked against who asks. The change itself is the consent service's
(ConsentService.revoke: CANC through the state machine, its tokens revoked, an audit leaf and
an event in the same transaction, with the asker as the actor).

Who may see or revoke what is decided by the caller (api.py) and handed in: a customer's own
consents (those they authorised or rejected), or, for staff, any consent of their tenant. A
consent outside that is not found (404), exactly as one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.core.errors import NotFound, echo
from strongroom.core.limits import PAGE_SIZE_MAX
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.consents import ConsentStatus
from strongroom.openbanking.dashboard import store
from strongroom.openbanking.dashboard.model import consent_view
from strongroom.openbanking.model_errors import ConsentStateError
from strongroom.openbanking.resources.service import ConsentService
from strongroom.tenancy.model import Principal

# A TPP's name by its client id (None: no longer registered).
TppName = Callable[[str], str | None]
# The customer a principal acts as: a customer user's customer_id; None for anyone else (an
# API key, a staff user, a customer user bound to no customer).
CustomerOf = Callable[[Principal], str | None]
# The principal of a live session token (the page's cookie), None otherwise.
SessionOf = Callable[[str], Principal | None]


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose consents a request may see or revoke: one customer's of the tenant, or (staff)
    every consent of the tenant. `customer_id` None and not staff: nobody's."""

    tenant_id: str
    customer_id: str | None
    staff: bool = False

    def may(self, tenant_id: str, customer_id: str | None) -> bool:
        if tenant_id != self.tenant_id:
            return False
        return self.staff or (self.customer_id is not None and customer_id == self.customer_id)


class ConsentDashboard:
    def __init__(
        self,
        engine: Engine,
        consents: ConsentService,
        *,
        tpp_name: TppName,
        customer_of: CustomerOf,
        session_of: SessionOf,
        now_us: Callable[[], int] | None = None,
    ) -> None:
        self.engine = engine
        self.consents = consents
        self.tpp_name = tpp_name
        self.customer_of = customer_of
        self.session_of = session_of
        # The consents' clock: what is in force here is what the resource server serves.
        self.now_us = now_us or consents.now_us

    def page(
        self, tenant_id: str, customer_id: str, *, starting_after: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The customer's consents of the tenant by id (oldest first), after `starting_after`,
        at most `limit`, each with its TPP's name; and whether more follow."""
        assert 1 <= limit <= PAGE_SIZE_MAX, limit
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.customer_consents(uow, tenant_id, customer_id, starting_after, limit + 1)
        page = rows[:limit]
        names = {client: self.tpp_name(client) for client in sorted({c.client_id for c in page})}
        now = self.now_us()
        return [consent_view(c, names[c.client_id], now) for c in page], len(rows) > limit

    def revoke(self, consent_id: str, owner: Owner, *, actor: str) -> dict[str, Any]:
        """CANC, if the consent is `owner`'s (404 not_found otherwise, as one that does not
        exist) and authorised or awaiting authorisation; a consent already ended (revoked,
        rejected, expired, consumed), or whose expiry passed before the expiry job marked it,
        is 409 consent_state. Nothing is written on a refusal."""
        missing = NotFound(f"no consent {echo(consent_id)}", param="consent_id")
        try:
            consent = self.consents.get(consent_id)
        except NotFound:
            raise missing from None
        if not owner.may(consent.tenant_id, consent.customer_id):
            raise missing
        now = self.now_us()
        if consent.status is ConsentStatus.AUTH and not consent.in_force(now):
            assert consent.expires_at_us is not None
            raise ConsentStateError(
                f"the consent expired at {clock.format_us(consent.expires_at_us)}: it gives no "
                "access left to revoke"
            )
        after = self.consents.revoke(consent.id, actor=actor)
        return consent_view(after, self.tpp_name(after.client_id), now)
