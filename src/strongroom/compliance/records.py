"""Compliance's own records replayed against the audit log: a change made to them by hand, behind
the service that writes their leaves, is named.

`strongroom audit verify` proves the leaves and replays the ledger's accounts (their freezes
included); the compliance tables are not the ledger, so their check lives here and runs as a
control of `strongroom compliance check` (controls/checks.py, `compliance_records_audited`).
Every record leaf of the kinds below is read once, log by log (ledger changes are skipped from
their first bytes), into the state the leaves describe, which is then compared with the tables
both ways:

- `kyc_customers`: each row's status and tier must be those of the customer's last
  `customer.kyc_updated` leaf; a row no leaf records was written by hand (a raised tier lifts
  the customer's caps), and a customer a leaf sets with no row left had it deleted;
- `sanctions_subjects`: a subject an officer confirmed (`sanctions.match_confirmed`) stays
  `confirmed` for good (no route lifts it; erasure keeps the row), so a confirmed subject whose
  row is gone or says otherwise was edited by hand (its freeze could then be lifted), and a
  `confirmed` row needs its leaf;
- `sanctions_dismissals`: each dismissal needs its `sanctions.match_dismissed` leaf, with the same
  id, list and entry (a dismissal added by hand silences a match);
- `aml_accounts`: each account's exemption and jurisdiction must be those of its last
  `account.aml_updated` leaf, and a profile a leaf sets must still be there;
- `cases`: each case's status and label must be those its last leaf gives (`case.created`:
  open; `case.approved`, `case.declined` with the analyst's label, the next model's training
  label; `case.closed`, no label) and so must its kind, transfer, gate and code (a case
  pointed at another transfer decides what was never held), a case no leaf created was
  inserted by hand,
  and a case a leaf created must still exist (a held payment released, or an alert silenced, by
  an edit of its row is named);
- `risk_events` labels (the next fraud model's training labels): a payment's `fraud` column
  must be what its last label leaf says (`risk.labelled`, or the decision of its risk review
  case: declined as fraud, approved genuine), a label no leaf gave was set by hand (a fraud
  relabelled genuine teaches the next model that it is), and a payment a leaf labelled must
  still carry that label and its row.

Memory is one entry per compliance object (customer, subject, dismissal, account profile,
case, labelled payment), never per transfer. Not covered here: `kyc_usage` (what the caps
counted: it is recounted from the ledger's transfers by its own control,
controls/kyc_usage.py), `aml_alerts` (the alerts' dedupe: a deleted row raises an alert again,
nothing more) and `risk_decisions` (what the risk gate decided: a transfer's leaf records the
gates' decisions that held or blocked it, not an allow's score or features).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.records import Add, RecordLeaves, replay
from strongroom.cases.model import TRAINING_LABEL_KINDS, Label
from strongroom.db.query import fetch_in, stream_rows
from strongroom.db.uow import UnitOfWork

KYC_UPDATED: Final = "customer.kyc_updated"
MATCH_CONFIRMED: Final = "sanctions.match_confirmed"
MATCH_DISMISSED: Final = "sanctions.match_dismissed"
AML_UPDATED: Final = "account.aml_updated"
CASE_STATUS: Final = {
    "case.created": "open",
    "case.approved": "approved",
    "case.declined": "declined",
    "case.closed": "closed",
}
RISK_LABELLED: Final = "risk.labelled"  # risk.service.LABELLED_EVENT
# A case decision that labels its payment (cases.service: approve genuine, decline fraud).
_LABELLING: Final = frozenset({"case.approved", "case.declined"})
TYPES: Final = frozenset(
    {KYC_UPDATED, MATCH_CONFIRMED, MATCH_DISMISSED, AML_UPDATED, RISK_LABELLED, *CASE_STATUS}
)
PAGE: Final = 500  # rows read at a time
# What a case is about, as every leaf of the case records it (cases.sink.case_leaf).
_CASE_REFS: Final = ("kind", "transfer_id", "gate", "code")

Key = tuple[str, str]  # (tenant, object id)


@dataclass(slots=True)
class RecordsFacts:
    leaves: int = 0
    kyc_rows: int = 0
    subjects: int = 0
    dismissals: int = 0
    aml_profiles: int = 0
    cases: int = 0
    risk_labels: int = 0


@dataclass(slots=True)
class _Recorded:
    """The state the leaves describe."""

    kyc: dict[Key, tuple[Any, Any]] = field(default_factory=dict)  # customer -> (status, tier)
    confirmed: set[Key] = field(default_factory=set)  # subjects
    dismissals: dict[Key, tuple[str, str, str]] = field(default_factory=dict)  # id -> ...
    aml: dict[Key, tuple[bool, Any]] = field(default_factory=dict)  # account -> (exempt, code)
    cases: dict[Key, tuple[str, Any]] = field(default_factory=dict)  # case -> (status, label)
    # case -> what it is about (kind, transfer, gate, code): every leaf of a case says it
    case_refs: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    labels: dict[Key, bool] = field(default_factory=dict)  # payment -> fraud, its last label

    def take(self, tenant: str, kind: str, data: dict[str, Any]) -> None:
        if kind == KYC_UPDATED:
            self.kyc[(tenant, str(data["customer_id"]))] = (data.get("status"), data.get("tier"))
        elif kind == MATCH_CONFIRMED:
            self.confirmed.add((tenant, str(data["subject"])))
        elif kind == MATCH_DISMISSED:
            self.dismissals[(tenant, str(data["id"]))] = (
                str(data["subject"]),
                str(data["list"]),
                str(data["entry_id"]),
            )
        elif kind == AML_UPDATED:
            key = (tenant, str(data["account_id"]))
            self.aml[key] = (bool(data.get("exempt")), data.get("jurisdiction"))
        elif kind == RISK_LABELLED:
            self.labels[(tenant, str(data["transfer_id"]))] = bool(data["fraud"])
        else:
            # An analyst's decision records the label (a training label of the next model);
            # a creation or a closure none.
            key = (tenant, str(data["case_id"]))
            self.cases[key] = (CASE_STATUS[kind], data.get("label"))
            if all(k in data for k in _CASE_REFS):
                self.case_refs[key] = tuple(data[k] for k in _CASE_REFS)
                # A risk review's decision labels its payment too (cases.service, the
                # LabelRecorder port), in the same transaction as this leaf.
                if (
                    kind in _LABELLING
                    and data["kind"] in TRAINING_LABEL_KINDS
                    and data["gate"] is not None
                    and data["transfer_id"] is not None
                    and "label" in data
                ):
                    self.labels[(tenant, str(data["transfer_id"]))] = data["label"] == Label.FRAUD


def _rows(engine: Engine, query: str) -> Iterator[tuple[Any, ...]]:
    return stream_rows(engine, query, PAGE)


def _replay(
    record_leaves: RecordLeaves, add: Add, say: Callable[[str], None]
) -> tuple[_Recorded, int]:
    recorded = _Recorded()

    def take(log_id: str, index: int, kind: str, data: Any) -> None:
        del index
        recorded.take(log_id, kind, data)

    return recorded, replay(record_leaves, TYPES, take, add, say, "compliance records")


def check(
    engine: Engine, record_leaves: RecordLeaves, add: Add, say: Callable[[str], None]
) -> RecordsFacts:
    """The KYC rows, sanctions subjects and dismissals, AML profiles and cases against the
    leaves that recorded them, both ways; problems to `add`."""
    facts = RecordsFacts()
    recorded, facts.leaves = _replay(record_leaves, add, say)

    seen: set[Key] = set()
    for tenant, customer, status, tier in _rows(
        engine, "SELECT tenant_id, customer_id, status, tier FROM kyc_customers"
    ):
        facts.kyc_rows += 1
        key = (tenant, customer)
        seen.add(key)
        where = {"table": "kyc_customers", "customer_id": customer}
        if key not in recorded.kyc:
            add(
                tenant,
                {
                    **where,
                    "problem": f"status {status}, tier {tier}: no {KYC_UPDATED} leaf records it",
                },
            )
        elif recorded.kyc[key] != (status, tier):
            leaf_status, leaf_tier = recorded.kyc[key]
            add(
                tenant,
                {
                    **where,
                    "problem": f"status {status}, tier {tier}, but its last "
                    f"{KYC_UPDATED} leaf says status {leaf_status}, "
                    f"tier {leaf_tier}",
                },
            )
    for tenant, customer in sorted(recorded.kyc.keys() - seen):
        add(
            tenant,
            {
                "table": "kyc_customers",
                "customer_id": customer,
                "problem": f"a {KYC_UPDATED} leaf sets it, but its row is gone",
            },
        )

    seen = set()
    for tenant, subject, status in _rows(
        engine, "SELECT tenant_id, subject, status FROM sanctions_subjects"
    ):
        facts.subjects += 1
        key = (tenant, subject)
        seen.add(key)
        where = {"table": "sanctions_subjects", "subject": subject}
        confirmed = key in recorded.confirmed
        if status == "confirmed" and not confirmed:
            add(
                tenant,
                {
                    **where,
                    "problem": f"confirmed, but no {MATCH_CONFIRMED} leaf records a confirmation",
                },
            )
        elif status != "confirmed" and confirmed:
            add(
                tenant,
                {
                    **where,
                    "problem": f"{status}, but an officer confirmed a match "
                    f"({MATCH_CONFIRMED} leaf) and nothing lifts it",
                },
            )
    for tenant, subject in sorted(recorded.confirmed - seen):
        add(
            tenant,
            {
                "table": "sanctions_subjects",
                "subject": subject,
                "problem": f"an officer confirmed a match ({MATCH_CONFIRMED} leaf), but "
                "the subject's row is gone: nothing blocks it",
            },
        )

    for tenant, subject, source, entry_id, dismissal_id in _rows(
        engine, "SELECT tenant_id, subject, source, entry_id, id FROM sanctions_dismissals"
    ):
        facts.dismissals += 1
        if recorded.dismissals.get((tenant, dismissal_id)) != (subject, source, entry_id):
            add(
                tenant,
                {
                    "table": "sanctions_dismissals",
                    "subject": subject,
                    "dismissal_id": dismissal_id,
                    "problem": f"dismissal of {source} entry {entry_id} with no "
                    f"{MATCH_DISMISSED} leaf",
                },
            )

    seen = set()
    for tenant, account, exempt, jurisdiction in _rows(
        engine, "SELECT tenant_id, account_id, exempt, jurisdiction FROM aml_accounts"
    ):
        facts.aml_profiles += 1
        key = (tenant, account)
        seen.add(key)
        found = recorded.aml.get(key)
        if found != (bool(exempt), jurisdiction):
            said = (
                "no leaf"
                if found is None
                else f"its last leaf says exempt {found[0]}, jurisdiction {found[1]}"
            )
            add(
                tenant,
                {
                    "table": "aml_accounts",
                    "account_id": account,
                    "problem": f"exempt {bool(exempt)}, jurisdiction {jurisdiction}: "
                    f"{said} ({AML_UPDATED})",
                },
            )
    for tenant, account in sorted(recorded.aml.keys() - seen):
        add(
            tenant,
            {
                "table": "aml_accounts",
                "account_id": account,
                "problem": f"an {AML_UPDATED} leaf sets it, but its row is gone",
            },
        )

    seen = set()
    for tenant, case_id, status, label, *refs in _rows(
        engine, f"SELECT tenant_id, id, status, label, {', '.join(_CASE_REFS)} FROM cases"
    ):
        facts.cases += 1
        key = (tenant, case_id)
        seen.add(key)
        leaf_status, leaf_label = recorded.cases.get(key, (None, None))
        leaf_refs = recorded.case_refs.get(key)
        if leaf_refs is not None and tuple(refs) != leaf_refs:
            # A case pointed at another transfer (another tenant's held payment, say), or made
            # another kind: what it decides is no longer what was held.
            stored = ", ".join(f"{k} {v}" for k, v in zip(_CASE_REFS, refs, strict=True))
            recorded_as = ", ".join(f"{k} {v}" for k, v in zip(_CASE_REFS, leaf_refs, strict=True))
            add(
                tenant,
                {
                    "table": "cases",
                    "case_id": case_id,
                    "problem": f"{stored}, but its leaves record {recorded_as}",
                },
            )
        if leaf_status is None:
            add(
                tenant,
                {
                    "table": "cases",
                    "case_id": case_id,
                    "problem": f"{status}: no leaf records the case",
                },
            )
        elif leaf_status != status:
            add(
                tenant,
                {
                    "table": "cases",
                    "case_id": case_id,
                    "problem": f"{status}, but its leaves leave it {leaf_status}",
                },
            )
        elif label != leaf_label:
            add(
                tenant,
                {
                    "table": "cases",
                    "case_id": case_id,
                    "problem": f"label {label}, but its leaves give it {leaf_label}",
                },
            )
    for tenant, case_id in sorted(recorded.cases.keys() - seen):
        add(
            tenant,
            {
                "table": "cases",
                "case_id": case_id,
                "problem": "its leaves record the case, but its row is gone",
            },
        )
    facts.risk_labels = _check_labels(engine, recorded.labels, add)
    return facts


def _label(fraud: bool) -> str:
    return "fraud" if fraud else "genuine"


def _check_labels(engine: Engine, labels: dict[Key, bool], add: Add) -> int:
    """The labelled payments' `fraud` column against their last label leaves, both ways;
    answers how many labelled rows were read."""
    seen: set[Key] = set()
    count = 0
    for tenant, transfer_id, fraud in _rows(
        engine, "SELECT tenant_id, transfer_id, fraud FROM risk_events WHERE fraud IS NOT NULL"
    ):
        count += 1
        key = (tenant, transfer_id)
        seen.add(key)
        expected = labels.get(key)
        where = {"table": "risk_events", "transfer_id": transfer_id}
        if expected is None:
            add(
                tenant,
                {**where, "problem": f"labelled {_label(bool(fraud))}: no leaf records a label"},
            )
        elif expected != bool(fraud):
            add(
                tenant,
                {
                    **where,
                    "problem": f"labelled {_label(bool(fraud))}, but its last label leaf says "
                    f"{_label(expected)}",
                },
            )
    # Those a leaf labelled that no labelled row was read for: the label cleared, or the row gone.
    unseen = sorted(labels.keys() - seen)
    present: set[Key] = set()  # of those, the rows still there (unlabelled)
    for start in range(0, len(unseen), PAGE):
        part = unseen[start : start + PAGE]
        with UnitOfWork(engine, write=False) as uow:
            found = fetch_in(
                uow,
                "SELECT tenant_id, transfer_id FROM risk_events",
                "transfer_id",
                sorted({transfer_id for _, transfer_id in part}),
            )
        present.update((tenant, transfer_id) for tenant, transfer_id in found)
    for key in unseen:
        tenant, transfer_id = key
        said = _label(labels[key])
        problem = (
            f"its last label leaf says {said}, but its risk event is gone"
            if key not in present
            else f"its last label leaf says {said}, but it carries no label"
        )
        add(tenant, {"table": "risk_events", "transfer_id": transfer_id, "problem": problem})
    return count
