"""The dashboard's one query: a customer's consents in a tenant, a page by id. The consents'
own SQL (insert, update, the expiry sweep) is resources/store.py's; this reads the same rows
through its columns and row mapping, on the `ob_consents_customer` index (customer_id, id)."""

from __future__ import annotations

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.resources.model import Consent
from strongroom.openbanking.resources.store import COLS, consent_of


def customer_consents(
    uow: UnitOfWork, tenant_id: str, customer_id: str, starting_after: str | None, limit: int
) -> list[Consent]:
    """The customer's consents of the tenant (those they authorised or rejected), by id, after
    `starting_after` when given, at most `limit`."""
    where = "customer_id = ? AND tenant_id = ?"
    params: list[object] = [customer_id, tenant_id]
    if starting_after is not None:
        where += " AND id > ?"
        params.append(starting_after)
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {COLS} FROM ob_consents WHERE {where} ORDER BY id LIMIT ?"),
        (*params, limit),
    )
    return [consent_of(row) for row in cur.fetchall()]
