"""Compliance's own records replayed against the audit log: a change made to them by hand, behind
the service that writes their leaves, is named.

`strongroom audit verify` proves the leaves and replays the ledger's accounts (their freezes
included); the compliance tables are not the ledger, so their check lives here and runs as a
control of `strongroom compliance check` (controls/checks.py, `compliance_records_audited`):

- `kyc_customers`: each row's status and tier must be those of the customer's last
  `customer.kyc_updated` leaf; a row with no such leaf was written by hand (a raised tier lifts
  the customer's caps);
- `sanctions_subjects`: a subject an officer confirmed (`sanctions.match_confirmed`) stays
  `confirmed` (no route lifts it), and a `confirmed` row needs that leaf;
- `sanctions_dismissals`: each dismissal needs its `sanctions.match_dismissed` leaf, with the same
  id, list and entry (a dismissal added by hand silences a match).

Each row's leaves are found by their ref (the customer id, the subject), a few queries a row, in
chunks of CHUNK refs. Not covered: `kyc_usage` (what the caps have counted: recomputing it needs
the ledger's transfers per customer and hour), and rows deleted by hand (a deleted KYC row makes
the customer `unverified` in the default tier, a deleted subject is screened again on its next
change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.db.uow import UnitOfWork

KYC_UPDATED: Final = "customer.kyc_updated"
MATCH_CONFIRMED: Final = "sanctions.match_confirmed"
MATCH_DISMISSED: Final = "sanctions.match_dismissed"
CHUNK: Final = 500  # refs looked up per call of the audit port
PROGRESS_EVERY: Final = 10_000  # rows between two progress lines

# AuditLog.records_for: (log id, refs) -> each ref's record leaves, decoded, oldest first.
RecordsFor = Callable[[str, Sequence[str]], dict[str, list[dict[str, Any]]]]
# A problem found: (tenant id, detail of ids and values, never a name).
Add = Callable[[str, dict[str, Any]], None]


@dataclass(slots=True)
class RecordsFacts:
    kyc_rows: int = 0
    subjects: int = 0
    dismissals: int = 0


def _rows(engine: Engine, query: str) -> Iterator[tuple[Any, ...]]:
    with UnitOfWork(engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute(query)
        while batch := cur.fetchmany(CHUNK):
            yield from batch


def _by_tenant_chunks(
    rows: Iterator[tuple[Any, ...]],
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Rows ordered by tenant first, in runs of at most CHUNK of one tenant."""
    tenant: str | None = None
    run: list[tuple[Any, ...]] = []
    for row in rows:
        if (row[0] != tenant or len(run) >= CHUNK) and run:
            assert tenant is not None
            yield tenant, run
            run = []
        tenant = row[0]
        run.append(row)
    if run:
        assert tenant is not None
        yield tenant, run


def _of(leaves: list[dict[str, Any]] | None, kind: str) -> list[dict[str, Any]]:
    return [leaf for leaf in leaves or () if leaf.get("type") == kind]


def check(
    engine: Engine, records_for: RecordsFor, add: Add, say: Callable[[str], None]
) -> RecordsFacts:
    """Every KYC row, sanctions subject and dismissal against its leaves; problems to `add`."""
    facts = RecordsFacts()
    kyc = _rows(
        engine,
        "SELECT tenant_id, customer_id, status, tier FROM kyc_customers "
        "ORDER BY tenant_id, customer_id",
    )
    for tenant, rows in _by_tenant_chunks(kyc):
        found = records_for(tenant, [r[1] for r in rows])
        for _, customer, status, tier in rows:
            facts.kyc_rows += 1
            updates = _of(found.get(customer), KYC_UPDATED)
            where = {"table": "kyc_customers", "customer_id": customer}
            if not updates:
                problem = f"status {status}, tier {tier}: no {KYC_UPDATED} leaf records it"
                add(tenant, {**where, "problem": problem})
                continue
            data = updates[-1].get("data") or {}
            if (data.get("status"), data.get("tier")) != (status, tier):
                problem = (
                    f"status {status}, tier {tier}, but its last {KYC_UPDATED} leaf says "
                    f"status {data.get('status')}, tier {data.get('tier')}"
                )
                add(tenant, {**where, "problem": problem})
        if facts.kyc_rows % PROGRESS_EVERY < len(rows):
            say(f"compliance records: {facts.kyc_rows} KYC rows checked")
    subjects = _rows(
        engine,
        "SELECT tenant_id, subject, status FROM sanctions_subjects ORDER BY tenant_id, subject",
    )
    for tenant, rows in _by_tenant_chunks(subjects):
        found = records_for(tenant, [r[1] for r in rows])
        for _, subject, status in rows:
            facts.subjects += 1
            confirmed = _of(found.get(subject), MATCH_CONFIRMED)
            where = {"table": "sanctions_subjects", "subject": subject}
            if status == "confirmed" and not confirmed:
                problem = (
                    f"confirmed, but no {MATCH_CONFIRMED} leaf records an officer's confirmation"
                )
                add(tenant, {**where, "problem": problem})
            elif status != "confirmed" and confirmed:
                problem = (
                    f"{status}, but an officer confirmed a match ({MATCH_CONFIRMED} leaf) and "
                    "nothing lifts it"
                )
                add(tenant, {**where, "problem": problem})
        if facts.subjects % PROGRESS_EVERY < len(rows):
            say(f"compliance records: {facts.subjects} sanctions subjects checked")
    dismissals = _rows(
        engine,
        "SELECT tenant_id, subject, source, entry_id, id FROM sanctions_dismissals "
        "ORDER BY tenant_id, subject, source, entry_id",
    )
    for tenant, rows in _by_tenant_chunks(dismissals):
        found = records_for(tenant, sorted({r[1] for r in rows}))
        for _, subject, source, entry_id, dismissal_id in rows:
            facts.dismissals += 1
            recorded = {
                (str(d.get("id")), str(d.get("list")), str(d.get("entry_id")))
                for leaf in _of(found.get(subject), MATCH_DISMISSED)
                for d in [leaf.get("data") or {}]
            }
            if (dismissal_id, source, entry_id) not in recorded:
                problem = f"dismissal of {source} entry {entry_id} with no {MATCH_DISMISSED} leaf"
                add(tenant, {"table": "sanctions_dismissals", "subject": subject,
                             "dismissal_id": dismissal_id, "problem": problem})  # fmt: skip
    return facts
