"""The GDPR side's SQL, read-only: a customer's relationship (its accounts' count, open count and
last activity, for the AML hold), the customers past retention, and, for an export, the cases and
risk decisions that concern a customer's transfers. These read the ledger's, the case queue's
and the risk domain's tables in set-oriented statements (one per table per export, where going
through each service would cost a round trip per transfer); nothing here writes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from strongroom.compliance.gdpr.model import Relationship
from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork
from strongroom.risk.store import VERDICTS, stored_number, stored_reasons

log = logging.getLogger(__name__)


def relationship(uow: UnitOfWork, customer_id: str) -> Relationship:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN closed THEN 0 ELSE 1 END), 0), "
            "MAX(updated_at) FROM accounts WHERE customer_id = ?",
        ),
        (customer_id,),
    )
    count, open_, last = cur.fetchone()
    return Relationship(int(count), int(open_), None if last is None else int(last))


def past_retention(
    uow: UnitOfWork, cutoff_us: int, *, after: str = "", limit: int
) -> list[tuple[str, str, int]]:
    """(tenant id, customer id, last activity) of the customers not erased and under no manual
    hold, whose accounts are all closed and were last active before `cutoff_us`, by id after
    `after`."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT c.tenant_id, c.id, MAX(a.updated_at) FROM customers c "
            "JOIN accounts a ON a.customer_id = c.id "
            "WHERE c.erased_at IS NULL AND c.legal_hold = ? AND c.id > ? "
            "GROUP BY c.tenant_id, c.id "
            "HAVING SUM(CASE WHEN a.closed THEN 0 ELSE 1 END) = 0 AND MAX(a.updated_at) < ? "
            "ORDER BY c.id LIMIT ?",
        ),
        (False, after, cutoff_us, limit),
    )
    return [(t, c, int(last)) for t, c, last in cur.fetchall()]


def open_alerts(
    uow: UnitOfWork, tenant_id: str, subject: str, customer_id: str | None = None
) -> list[str]:
    """The ids of the tenant's open sanctions alerts on `subject` (`customer:<id>`,
    `counterparty:<id>`: the cases its stored matches carry; sanctions screening keeps the
    match of an undecided alert) and, given `customer_id`, its open AML alerts (on any of the
    customer's accounts, or on the customer: an alert across its accounts is keyed by its id),
    by id."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT c.id FROM sanctions_results r JOIN cases c ON c.id = r.case_id "
            "WHERE r.tenant_id = ? AND r.subject = ? AND c.tenant_id = ? AND c.status = ?",
        ),
        (tenant_id, subject, tenant_id, "open"),
    )
    found = {str(i) for (i,) in cur.fetchall()}
    if customer_id is not None:
        cur.execute(
            sql(
                uow,
                "SELECT c.id FROM accounts a JOIN aml_alerts al ON al.account_id = a.id "
                "JOIN cases c ON c.id = al.case_id "
                "WHERE a.customer_id = ? AND al.tenant_id = ? AND c.tenant_id = ? "
                "AND c.status = ?",
            ),
            (customer_id, tenant_id, tenant_id, "open"),
        )
        found.update(str(i) for (i,) in cur.fetchall())
        cur.execute(
            sql(
                uow,
                "SELECT c.id FROM aml_alerts al JOIN cases c ON c.id = al.case_id "
                "WHERE al.account_id = ? AND al.tenant_id = ? AND c.tenant_id = ? "
                "AND c.status = ?",
            ),
            (customer_id, tenant_id, tenant_id, "open"),
        )
        found.update(str(i) for (i,) in cur.fetchall())
    return sorted(found)


_CASE_COLS = (
    "id, tenant_id, kind, status, transfer_id, gate, code, detail, created_at, decided_at, label"
)


def _case(row: Sequence[Any]) -> dict[str, Any]:
    return dict(zip([c.strip() for c in _CASE_COLS.split(",")], row, strict=True))


# Cases an export leaves out: sanctions and AML alerts and holds. Telling a customer that they
# are screened or monitored as a suspect is tipping-off (FATF Recommendation 21; UK POCA s.333A;
# the GDPR's Art. 23 restriction for the prevention of crime): their records are kept, not
# disclosed.
UNDISCLOSED_KINDS = ("sanctions_", "aml_")


def cases_of(
    uow: UnitOfWork, tenant_id: str, customer_id: str, transfer_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The tenant's cases on any of `transfer_ids` (a fraud review of the customer's payment),
    by id; never a sanctions or AML alert or hold (UNDISCLOSED_KINDS)."""
    del customer_id  # alerts about the customer are exactly what an export must not disclose
    found: dict[str, dict[str, Any]] = {}
    select = f"SELECT {_CASE_COLS} FROM cases"
    for row in fetch_in(uow, select, "transfer_id", list(transfer_ids)):
        case = _case(row)
        if not str(case["kind"]).startswith(UNDISCLOSED_KINDS):
            found[case["id"]] = case
    mine = [c for c in found.values() if c.pop("tenant_id") == tenant_id]
    return sorted(mine, key=lambda c: c["id"])


def _damaged(transfer_id: object, column: str) -> None:
    """A WARNING: a decision's part is not what the risk gate writes (it is exported as null),
    naming the transfer and the part, never its value."""
    log.warning(
        "gdpr: the stored %s of risk decision %s is damaged; exported as null", column, transfer_id
    )


_DECISION_COLS = "transfer_id, tenant_id, verdict, score, reasons, model_version, created_at"


def decisions_of(
    uow: UnitOfWork, tenant_id: str, transfer_ids: Sequence[str]
) -> list[dict[str, Any]]:
    rows = fetch_in(
        uow, f"SELECT {_DECISION_COLS} FROM risk_decisions", "transfer_id", list(transfer_ids)
    )
    out = []
    for transfer_id, tenant, verdict, score, reasons, model_version, created_at in rows:
        if tenant != tenant_id:
            continue
        # A damaged part (a hand edit) reads as none, with a WARNING: the export stands.
        if verdict not in VERDICTS:
            _damaged(transfer_id, "verdict")
            verdict = None
        if type(created_at) is not int:
            _damaged(transfer_id, "created_at")
            created_at = None
        out.append(
            {
                "transfer_id": transfer_id,
                "verdict": verdict,
                "score": stored_number(score, transfer_id, "score"),
                "reasons": stored_reasons(reasons, transfer_id) if reasons else [],
                "model_version": model_version,
                "created_at": created_at,
            }
        )
    return sorted(out, key=lambda d: d["transfer_id"])
