"""All of the AML monitor's SQL (migration 0023): the raised alerts, keyed for the dedupe."""

from __future__ import annotations

from dataclasses import dataclass

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AlertKey:
    tenant_id: str
    account_id: str
    typology: str
    window_start: int


def claim(uow: UnitOfWork, key: AlertKey, case_id: str, at_us: int) -> bool:
    """Record the alert of `key` (True), or find it already raised (False: by this process,
    another one or a scan; the insert does nothing, so two racing transactions cannot both
    raise it, and neither fails)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO aml_alerts (tenant_id, account_id, typology, window_start, case_id, "
            "created_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (tenant_id, account_id, typology, window_start) DO NOTHING",
        ),
        (key.tenant_id, key.account_id, key.typology, key.window_start, case_id, at_us),
    )
    return bool(cur.rowcount == 1)


def raised(uow: UnitOfWork, tenant_id: str) -> list[AlertKey]:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT tenant_id, account_id, typology, window_start FROM aml_alerts "
            "WHERE tenant_id = ? ORDER BY account_id, typology, window_start",
        ),
        (tenant_id,),
    )
    return [AlertKey(r[0], r[1], r[2], int(r[3])) for r in cur.fetchall()]


def set_case(uow: UnitOfWork, key: AlertKey, case_id: str) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE aml_alerts SET case_id = ? WHERE tenant_id = ? AND account_id = ? "
            "AND typology = ? AND window_start = ?",
        ),
        (case_id, key.tenant_id, key.account_id, key.typology, key.window_start),
    )
