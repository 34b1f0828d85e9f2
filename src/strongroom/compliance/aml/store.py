"""All of the AML monitor's SQL: the raised alerts, keyed for the dedupe (migration 0023), and
the accounts' AML profiles compliance sets (migration 0027)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strongroom.compliance.aml.monitor import Profile
from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AlertKey:
    """An alert's dedupe. `account_id`: the hit's owner (typologies.Hit.owner), the account or,
    for the typologies judged per customer, the customer's id."""

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


# -- accounts' AML profiles (migration 0027) ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileRow:
    tenant_id: str
    account_id: str
    exempt: bool
    jurisdiction: str | None
    updated_by: str
    updated_at: int


_PROFILE_COLS = "tenant_id, account_id, exempt, jurisdiction, updated_by, updated_at"


def profiles(uow: UnitOfWork, account_ids: Sequence[str]) -> dict[str, Profile]:
    """The profiles of those of `account_ids` that have one (account ids are unique across
    tenants)."""
    rows = fetch_in(
        uow, "SELECT account_id, exempt, jurisdiction FROM aml_accounts", "account_id", account_ids
    )
    return {str(r[0]): Profile(bool(r[1]), r[2]) for r in rows}


def get_profile(uow: UnitOfWork, tenant_id: str, account_id: str) -> ProfileRow | None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow, f"SELECT {_PROFILE_COLS} FROM aml_accounts WHERE tenant_id = ? AND account_id = ?"
        ),
        (tenant_id, account_id),
    )
    r = cur.fetchone()
    return None if r is None else ProfileRow(r[0], r[1], bool(r[2]), r[3], r[4], int(r[5]))


def put_profile(uow: UnitOfWork, row: ProfileRow) -> None:
    uow.cursor().execute(
        sql(
            uow,
            f"INSERT INTO aml_accounts ({_PROFILE_COLS}) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (account_id) DO UPDATE SET exempt = excluded.exempt, "
            "jurisdiction = excluded.jurisdiction, updated_by = excluded.updated_by, "
            "updated_at = excluded.updated_at",
        ),
        (row.tenant_id, row.account_id, row.exempt, row.jurisdiction, row.updated_by,
         row.updated_at),
    )  # fmt: skip
