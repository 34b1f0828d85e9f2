"""The ledger's owner guard (ledger.base.OwnerGuard), wired by runtime.py: a customer whose
sanctions subject is `confirmed` (an officer confirmed a match, which froze every account of
theirs in the same transaction) may not hold a live account. Creating an account for them, or
unfreezing one of theirs, is refused with 409 `sanctions_confirmed`, nothing written.

Asked in the account's write transaction, before the ledger locks or writes any account row:
the subjects' rows are share-locked (PostgreSQL), so a confirmation running at the same time
either commits first (and is seen here) or waits for this transaction (and then finds the new
or unfrozen account to freeze). Locks in the order subject, accounts, audit log: the order of a
confirmation too (SanctionsService.confirm), so the two cannot deadlock."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.compliance.sanctions import store
from strongroom.compliance.sanctions.errors import SanctionsConfirmed
from strongroom.compliance.sanctions.service import CONFIRMED
from strongroom.db.uow import UnitOfWork


def refuse_confirmed(uow: UnitOfWork, tenant_id: str, customer_ids: Sequence[str]) -> None:
    """Raises SanctionsConfirmed naming the first of `customer_ids` (of `tenant_id`) whose
    subject is confirmed; a customer never screened is not."""
    subjects = [f"customer:{c}" for c in sorted(set(customer_ids))]
    found = store.statuses(uow, tenant_id, subjects, lock=True)
    for subject in subjects:
        if found.get(subject) == CONFIRMED:
            raise SanctionsConfirmed(
                f"customer {subject.partition(':')[2]} is a confirmed sanctions match: their "
                "accounts stay frozen and no new one is opened"
            )
