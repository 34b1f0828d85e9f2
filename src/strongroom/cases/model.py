"""The case queue's pure part: statuses, kinds, the decision transfer's id, the stored detail
and the view callers get. No database here (an import-linter contract may hold it)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from strongroom.core import clock, ids
from strongroom.core.limits import CASE_DETAIL_BYTES_MAX, CASE_KIND_LENGTH_MAX

log = logging.getLogger(__name__)


class CaseStatus(StrEnum):
    """`open` until decided: `approved` or `declined` by an analyst (the queue's own decision,
    a training label), or `closed` when its transfer was posted, voided or expired by another
    door (no label: nobody looked at it here)."""

    OPEN = "open"
    APPROVED = "approved"
    DECLINED = "declined"
    CLOSED = "closed"


class Label(StrEnum):
    """A decided case as a training label: `fraud` (the transfer was fraudulent) or
    `genuine`. Approve labels genuine; decline labels fraud unless told otherwise."""

    FRAUD = "fraud"
    GENUINE = "genuine"


# A gate's kind of case, by gate name; any other gate's review is `<gate>_review`. Screening
# and monitoring alerts (the compliance issue) add their kinds here or name their own.
KIND_BY_GATE: Final[Mapping[str, str]] = {"risk": "risk_review"}
# The kinds whose decision is a fraud label for the risk domain's training (the LabelRecorder
# port): the risk gate's holds only. Another gate's hold is declined for reasons of its own (a
# `sanctions_review`: a listed payee, which says nothing of fraud), and an alert holds no
# payment of its own.
TRAINING_LABEL_KINDS: Final = frozenset({KIND_BY_GATE["risk"]})

# Why a case was closed without an analyst: its transfer was posted, voided or expired by
# another door (the event that closed it).
CLOSED_BY_EVENT: Final[Mapping[str, str]] = {
    "transfer.posted": "transfer_posted",
    "transfer.voided": "transfer_voided",
    "transfer.expired": "transfer_expired",
}


def kind_for_gate(gate: str) -> str:
    kind = KIND_BY_GATE.get(gate, f"{gate}_review")
    assert len(kind) <= CASE_KIND_LENGTH_MAX, f"a case kind is at most {CASE_KIND_LENGTH_MAX}"
    return kind


def decision_transfer_id(case_id: str, created_at_us: int) -> str:
    """The id of the one transfer that carries out a case's decision (a post or a void of its
    held transfer): a function of the case alone, so a decision retried after a crash finds
    what the first attempt posted (the ledger answers `exists`), and an approve and a decline
    racing on one case cannot both be carried out (the second is `exists_with_different_...`).
    Its time part is the case's creation (`created_at_us`), so it sorts with the ids of then."""
    seed = hashlib.sha256(b"strongroom case decision v1\0" + case_id.encode()).digest()
    return ids.derived_ids("tr", seed, created_at_us, 0, 1)[0]


def _plain(value: Any) -> Any:
    """JSON's default for what a gate may hand over: numpy scalars (`.item()`), sets, tuples."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"a case's detail holds JSON values, not {type(value).__name__}")


def detail_json(detail: object) -> str | None:
    """The gate's decision detail (a mapping; or an object with `to_dict()`, or a dataclass)
    as canonical JSON, at most CASE_DETAIL_BYTES_MAX bytes: past it, the largest members are
    left out (and named in `omitted`) until it fits."""
    if detail is None:
        return None
    if not isinstance(detail, Mapping):
        to_dict = getattr(detail, "to_dict", None)
        if callable(to_dict):
            detail = to_dict()
        elif dataclasses.is_dataclass(detail) and not isinstance(detail, type):
            detail = dataclasses.asdict(detail)
    assert isinstance(detail, Mapping), "a gate's decision detail is a mapping"
    if not detail:
        return None
    members = {str(k): v for k, v in detail.items()}

    def encode(value: Mapping[str, Any]) -> str:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_plain
        )

    text = encode(members)
    if len(text.encode()) <= CASE_DETAIL_BYTES_MAX:
        return text
    sizes = sorted(members, key=lambda k: (-len(encode({k: members[k]})), k))
    omitted: list[str] = []
    for key in sizes:
        del members[key]
        omitted.append(key)
        text = encode({**members, "omitted": sorted(omitted)})
        if len(text.encode()) <= CASE_DETAIL_BYTES_MAX:
            return text
    raise AssertionError("the names of a detail's members fit its bound")


@dataclass(frozen=True, slots=True)
class Alert:
    """A case that holds no transfer: a screening hit or a monitoring alert (the compliance
    domain raises them through CaseService.open_alerts, in its own transaction). `kind` names
    its source (`sanctions_match`, `aml_structuring`, ...); `subject` what it is about
    (`customer:<id>`, `counterparty:<id>`, `account:<id>`); `transfer_id` the transfer that
    raised it, if one did; `evidence` what an officer needs to decide (list entry ids, scores,
    transfer ids: never personal data in clear)."""

    kind: str
    subject: str
    evidence: Mapping[str, Any]
    transfer_id: str | None = None
    code: str | None = None  # a stable reason code, e.g. the typology or the list


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    tenant_id: str
    kind: str
    status: CaseStatus
    transfer_id: str | None
    gate: str | None
    code: str | None
    detail: str | None  # canonical JSON
    created_at: int
    created_by: str | None
    decided_at: int | None
    decided_by: str | None
    decision_reason: str | None
    label: Label | None
    assignee: str | None = None  # the staff user working it (a user id)

    def detail_dict(self, *, strict: bool = False) -> dict[str, Any]:
        """The stored detail parsed: a JSON object (`detail_json` writes only those), or {}
        when there is none, or when the stored text is not one (a hand edit of the database:
        logged, and the case is still read and listed). `strict`: ValueError instead, for a
        decision that acts on the detail (nothing is then written)."""
        if not self.detail:
            return {}
        try:
            found = json.loads(self.detail)
        except (ValueError, RecursionError):
            found = None
        if not isinstance(found, dict):
            if strict:
                raise ValueError(f"the stored detail of case {self.id} is not a JSON object")
            log.warning("cases: the stored detail of case %s is not a JSON object", self.id)
            return {}
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "case",
            "kind": self.kind,
            "status": self.status.value,
            "transfer_id": self.transfer_id,
            "decision": {
                "gate": self.gate,
                "code": self.code,
                "detail": self.detail_dict(),
            },
            "created_at": clock.format_us(self.created_at),
            "decided_at": clock.format_us(self.decided_at) if self.decided_at else None,
            "decided_by": self.decided_by,
            "reason": self.decision_reason,
            "label": self.label.value if self.label is not None else None,
            "assignee": self.assignee,
        }


@dataclass(frozen=True, slots=True)
class CaseNote:
    """An officer's note on a case: free text, in the order written."""

    id: str
    case_id: str
    tenant_id: str
    author: str
    body: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "case_note",
            "case_id": self.case_id,
            "author": self.author,
            "body": self.body,
            "created_at": clock.format_us(self.created_at),
        }
