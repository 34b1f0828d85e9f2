"""A suspicious-activity report draft of a case (pure): the fields a financial intelligence unit
asks for (FinCEN's SAR, the UK NCA's SAR: the reporting institution, the subject, the activity
with its dates, amounts and transactions, the reason for suspicion and the narrative), built
from the case, its evidence, its transfers and its notes; and the same as an HTML page. A
draft: an officer completes and files it, Strongroom files nothing."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from strongroom.cases.model import Case, CaseNote
from strongroom.core import clock
from strongroom.ledger.model import TransferRecord
from strongroom.ledger.views import transfer_to_dict

REPORT_OBJECT: Final = "suspicious_activity_report_draft"


def evidence_transfer_ids(case: Case, bound: int) -> tuple[list[str], int]:
    """The transfers a case names (its own, then its evidence's `transfer_ids`, as AML's
    detectors record them), each once, at most `bound`; and how many were left out."""
    evidence = case.detail_dict().get("evidence")
    named: list[str] = [case.transfer_id] if case.transfer_id else []
    if isinstance(evidence, dict):
        listed = evidence.get("transfer_ids")
        if isinstance(listed, list):
            named += [t for t in listed if isinstance(t, str)]
    unique = list(dict.fromkeys(named))
    return unique[:bound], max(0, len(unique) - bound)


def _transfer(t: TransferRecord, asset: str) -> dict[str, Any]:
    return {**transfer_to_dict(t), "asset": asset}


def build(
    case: Case,
    *,
    transfers: Sequence[tuple[TransferRecord, str]],
    omitted: int,
    notes: Sequence[CaseNote],
    subject: Mapping[str, Any] | None,
    generated_by: str,
    generated_at_us: int,
) -> dict[str, Any]:
    detail = case.detail_dict()
    totals: dict[str, int] = {}
    for t, asset in transfers:
        totals[asset] = totals.get(asset, 0) + t.amount
    times = sorted(t.created_at for t, _ in transfers)
    return {
        "object": REPORT_OBJECT,
        "status": "draft",
        "generated_at": clock.format_us(generated_at_us),
        "generated_by": generated_by,
        "reporting_institution": {"tenant_id": case.tenant_id},
        "case": case.to_dict(),
        "subject": dict(subject) if subject is not None else {"reference": detail.get("subject")},
        "suspicious_activity": {
            "category": case.kind,
            "code": case.code,
            "reason": detail.get("reasons") or detail.get("evidence"),
            "first_at": clock.format_us(times[0]) if times else None,
            "last_at": clock.format_us(times[-1]) if times else None,
            "transfer_count": len(transfers),
            "transfers_omitted": omitted,
            "totals": [{"asset": a, "amount": totals[a]} for a in sorted(totals)],
            "transfers": [_transfer(t, asset) for t, asset in transfers],
        },
        "narrative": [n.to_dict() for n in notes],
        "officer": case.assignee or case.decided_by,
        "decision": {
            "status": case.status.value,
            "decided_by": case.decided_by,
            "decided_at": clock.format_us(case.decided_at) if case.decided_at else None,
            "reason": case.decision_reason,
        },
    }


def _cell(value: Any) -> str:
    if value is None:
        return "<em>none</em>"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
        return f"<pre>{html.escape(text)}</pre>"
    return html.escape(str(value))


def _table(rows: Mapping[str, Any]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_cell(v)}</td></tr>" for k, v in rows.items()
    )
    return f"<table>{body}</table>"


def to_html(report: Mapping[str, Any]) -> str:
    """A self-contained page (no script, no external asset); every value escaped."""
    activity = report["suspicious_activity"]
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(t.get(k))}</td>" for k in _COLUMNS) + "</tr>"
        for t in activity["transfers"]
    )
    head = "".join(f"<th>{html.escape(k)}</th>" for k in _COLUMNS)
    notes = "".join(
        f"<li><p>{html.escape(n['body'])}</p><small>{html.escape(n['author'])}, "
        f"{html.escape(n['created_at'])}</small></li>"
        for n in report["narrative"]
    )
    case = report["case"]
    summary = {k: v for k, v in activity.items() if k != "transfers"}
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Suspicious activity report draft: {html.escape(case['id'])}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Suspicious activity report: draft</h1>"
        f"<p>Generated {html.escape(report['generated_at'])} by "
        f"{html.escape(report['generated_by'])}. A draft for an officer to complete and file."
        "</p>"
        f"<h2>Reporting institution</h2>{_table(report['reporting_institution'])}"
        f"<h2>Subject</h2>{_table(report['subject'])}"
        f"<h2>Suspicious activity</h2>{_table(summary)}"
        f"<h2>Transactions</h2><table><tr>{head}</tr>{rows}</table>"
        f"<h2>Narrative</h2><ol>{notes or '<li><em>no notes yet</em></li>'}</ol>"
        f"<h2>Case</h2>{_table(_case_rows(report))}"
        "</body></html>"
    )


def _case_rows(report: Mapping[str, Any]) -> dict[str, Any]:
    case = report["case"]
    return {
        "id": case["id"],
        "kind": case["kind"],
        "status": case["status"],
        # What held or raised it: the gate's decision (a risk review's score, reasons,
        # features and explanation) or the alert's evidence.
        "evidence": case["decision"],
        "officer": report["officer"],
        "decision": report["decision"],
    }


_COLUMNS: Final = (
    "id",
    "created_at",
    "asset",
    "amount",
    "debit_account_id",
    "credit_account_id",
    "status",
)
_STYLE: Final = (
    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto}"
    "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;padding:.3rem;"
    "text-align:left;vertical-align:top}pre{margin:0;white-space:pre-wrap}"
)
