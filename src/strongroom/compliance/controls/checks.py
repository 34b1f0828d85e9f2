"""The controls, each a function of what it examines that answers a ControlResult: pass, fail
(with findings), not applicable (with the reason) or error. CONTROLS lists them in report order.
Their thresholds are settings (Thresholds); what they read is given (Sources), so a test points
each at what it plants and the sanctions-list control at whichever table keeps the snapshots."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.records import Add, RecordLeaves
from strongroom.audit.verify import VerifyReport
from strongroom.compliance import records
from strongroom.compliance.controls import store
from strongroom.compliance.controls.kyc_usage import check_usage
from strongroom.compliance.controls.model import ControlResult, Finding, Outcome, Scope
from strongroom.compliance.controls.scan import scan_card_numbers
from strongroom.core import clock
from strongroom.db.uow import UnitOfWork
from strongroom.security.kms import KeyManager, KeyState

DAY_US: Final = 24 * 3600 * 1_000_000
HOUR_US: Final = 3600 * 1_000_000
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Thresholds:
    key_rotation_days: int
    case_sla_hours: int
    sanctions_list_max_age_days: int
    aml_retention_days: int


OpenBankingRecords = Callable[[RecordLeaves, Add, Progress], Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class Sources:
    engine: Engine
    kms: KeyManager
    verify_audit: Callable[[Progress], VerifyReport]
    # (count, first (tenant, customer id)s, count by tenant) of customers past their AML
    # retention period (compliance.gdpr.service.PastRetention).
    past_retention: Callable[[], tuple[int, list[tuple[str, str]], dict[str, int]]]
    # The newest snapshot of each sanctions list, or why there are none (store.list_snapshots).
    list_snapshots: Callable[[Engine], store.ListSnapshots | str] = store.list_snapshots
    # AuditLog.record_leaves: the compliance records are replayed against their leaves.
    record_leaves: RecordLeaves | None = None
    # STRONGROOM_KYC_LIMITS: the KYC caps count usage (kyc_usage), which is then recounted.
    kyc_limits: bool = False
    # openbanking.records.check bound to the engine (compliance/wiring.py): open banking's
    # consents and payments replayed against their leaves, problems to the `Add` given; what it
    # compared (leaves, consents, payments). Given, so that the controls import nothing of
    # open banking; None: `openbanking_consents_audited` is not applicable.
    openbanking_records: OpenBankingRecords | None = None


Control = Callable[[Sources, Thresholds, int, Progress], ControlResult]


def _age_days(now_us: int, at_us: int) -> float:
    return round((now_us - at_us) / DAY_US, 1)


def card_numbers_in_clear(
    src: Sources, th: Thresholds, now_us: int, say: Progress
) -> ControlResult:
    del th, now_us
    r = ControlResult("card_numbers_in_clear", "No card number in clear", Outcome.PASS, "")
    scanned = scan_card_numbers(src.engine, r.add, say)
    r.facts = {
        "tables": scanned.tables,
        "columns": scanned.columns,
        "rows": scanned.rows,
        "values": scanned.values,
    }
    r.shared_facts = ("tables", "columns")  # the schema's; rows and values are every tenant's
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = f"{r.found} card number(s) in clear in {scanned.columns} text columns scanned"
    else:
        r.summary = (
            f"no Luhn-valid 13-19 digit card number in {scanned.values} values of "
            f"{scanned.columns} text and binary columns of {scanned.tables} tables"
        )
    return r


def keys_rotated(src: Sources, th: Thresholds, now_us: int, say: Progress) -> ControlResult:
    del say
    r = ControlResult("keys_rotated", "Every key rotated within its period", Outcome.PASS, "")
    r.scope = Scope.DEPLOYMENT
    r.shared_facts = ("period_days",)
    versions = src.kms.versions()
    active = [v for v in versions if v.state is KeyState.ACTIVE]
    r.facts = {"kms": src.kms.name, "versions": len(versions), "period_days": th.key_rotation_days}
    for v in active:
        age = _age_days(now_us, v.created_at)
        r.facts["active_version"] = v.version
        r.facts["active_age_days"] = age
        if now_us - v.created_at > th.key_rotation_days * DAY_US:
            r.add(
                Finding(
                    {
                        "key": f"kek v{v.version}",
                        "created_at": clock.format_us(v.created_at),
                        "age_days": age,
                    }
                )
            )
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = (
            f"the active key-encryption key is older than {th.key_rotation_days} days: "
            "run `strongroom keys rotate`"
        )
    else:
        r.summary = f"the active key-encryption key is younger than {th.key_rotation_days} days"
    return r


def staff_second_factor(src: Sources, th: Thresholds, now_us: int, say: Progress) -> ControlResult:
    del th, now_us, say
    r = ControlResult(
        "staff_second_factor", "Every staff user has a second factor", Outcome.PASS, ""
    )
    with UnitOfWork(src.engine, write=False) as uow:
        staff, without = store.staff_without_factor(uow)
    total = sum(staff.values())
    r.facts = {"staff_users": total}
    r.tenant_facts = {t: {"staff_users": n} for t, n in staff.items()}
    for tenant, user, role in without:
        r.add(Finding({"user_id": user, "role": role}, tenant))
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = f"{r.found} of {total} staff users have neither a TOTP nor a passkey"
    else:
        r.summary = f"each of {total} staff users has a confirmed TOTP or a passkey"
    return r


def audit_log_verifies(src: Sources, th: Thresholds, now_us: int, say: Progress) -> ControlResult:
    del th, now_us
    r = ControlResult("audit_log_verifies", "The audit log verifies", Outcome.PASS, "")
    r.scope = Scope.DEPLOYMENT
    report = src.verify_audit(say)
    r.facts = {"logs": report.logs, "leaves": report.leaves, "transfers": report.transfers}
    for problem in report.problems:
        r.add(Finding({"problem": problem}))
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = f"`strongroom audit verify` finds {r.found} problem(s)"
    else:
        r.summary = f"{report.logs} logs, {report.leaves} leaves recomputed: no problem"
    return r


def case_service_level(src: Sources, th: Thresholds, now_us: int, say: Progress) -> ControlResult:
    del say
    r = ControlResult(
        "case_service_level", "No open alert older than its service level", Outcome.PASS, ""
    )
    with UnitOfWork(src.engine, write=False) as uow:
        open_, late = store.open_cases_before(uow, now_us - th.case_sla_hours * HOUR_US)
    total = sum(open_.values())
    r.facts = {"open_cases": total, "service_level_hours": th.case_sla_hours}
    r.tenant_facts = {t: {"open_cases": n} for t, n in open_.items()}
    r.shared_facts = ("service_level_hours",)
    for tenant, case_id, kind, created in late:
        age_h = round((now_us - created) / HOUR_US, 1)
        r.add(Finding({"case_id": case_id, "kind": kind, "age_hours": age_h}, tenant))
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = f"{r.found} open case(s) older than {th.case_sla_hours} hours"
    else:
        r.summary = f"none of {total} open cases is older than {th.case_sla_hours} hours"
    return r


def sanctions_lists_fresh(
    src: Sources, th: Thresholds, now_us: int, say: Progress
) -> ControlResult:
    del say
    r = ControlResult(
        "sanctions_lists_fresh",
        "Sanctions lists younger than their maximum age",
        Outcome.PASS,
        "",
    )
    r.scope = Scope.DEPLOYMENT
    r.shared_facts = ("max_age_days",)
    found = src.list_snapshots(src.engine)
    if isinstance(found, str):
        r.outcome = Outcome.NOT_APPLICABLE
        r.summary = found
        return r
    r.facts = {
        "table": found.table,
        "lists": len(found.latest),
        "max_age_days": th.sanctions_list_max_age_days,
    }
    if not found.latest:
        r.outcome = Outcome.FAIL
        r.summary = "no sanctions list has been loaded"
        r.add(Finding({"problem": "no list loaded"}))
        return r
    for name, loaded in sorted(found.latest.items()):
        if now_us - loaded > th.sanctions_list_max_age_days * DAY_US:
            r.add(
                Finding(
                    {
                        "list": name,
                        "loaded_at": clock.format_us(loaded),
                        "age_days": _age_days(now_us, loaded),
                    }
                )
            )
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = (
            f"{r.found} of {len(found.latest)} lists older than "
            f"{th.sanctions_list_max_age_days} days"
        )
    else:
        r.summary = (
            f"each of {len(found.latest)} lists is younger than "
            f"{th.sanctions_list_max_age_days} days"
        )
    return r


def customers_within_retention(
    src: Sources, th: Thresholds, now_us: int, say: Progress
) -> ControlResult:
    del now_us, say
    r = ControlResult("customers_within_retention", "No customer past retention", Outcome.PASS, "")
    count, first, by_tenant = src.past_retention()
    r.facts = {"retention_days": th.aml_retention_days}
    r.shared_facts = ("retention_days",)
    for tenant, customer in first:
        r.add(Finding({"customer_id": customer}, tenant))
    r.found = count  # the first are kept as evidence; every one is counted, by tenant too
    r.found_by_tenant = dict(by_tenant)
    if count:
        r.outcome = Outcome.FAIL
        r.summary = (
            f"{count} customer(s) past their AML retention period are not erased (the "
            "retention job erases them)"
        )
    else:
        r.summary = "no customer is past their AML retention period unerased"
    return r


def compliance_records_audited(
    src: Sources, th: Thresholds, now_us: int, say: Progress
) -> ControlResult:
    del th, now_us
    r = ControlResult(
        "compliance_records_audited",
        "KYC, sanctions decisions, AML profiles, cases and risk labels match their audit leaves",
        Outcome.PASS,
        "",
    )
    if src.record_leaves is None:
        r.outcome = Outcome.NOT_APPLICABLE
        r.summary = "no audit log to replay the records against"
        return r
    facts = records.check(
        src.engine, src.record_leaves, lambda tenant, detail: r.add(Finding(detail, tenant)), say
    )
    r.facts = {
        "leaves": facts.leaves,
        "kyc_rows": facts.kyc_rows,
        "sanctions_subjects": facts.subjects,
        "sanctions_dismissals": facts.dismissals,
        "aml_profiles": facts.aml_profiles,
        "cases": facts.cases,
        "risk_labels": facts.risk_labels,
    }
    checked = (
        f"{facts.kyc_rows} KYC rows, {facts.subjects} sanctions subjects, {facts.dismissals} "
        f"dismissals, {facts.aml_profiles} AML profiles, {facts.cases} cases and "
        f"{facts.risk_labels} risk labels against {facts.leaves} leaves"
    )
    if r.found:
        r.outcome = Outcome.FAIL
        r.summary = f"{r.found} record(s) differ from their audit leaves ({checked})"
    else:
        r.summary = f"{checked}: they match"
    return r


def kyc_usage_counted(src: Sources, th: Thresholds, now_us: int, say: Progress) -> ControlResult:
    del th
    r = ControlResult(
        "kyc_usage_counted",
        "The KYC usage counters hold what the ledger's payments took",
        Outcome.PASS,
        "",
    )
    if not src.kyc_limits:
        r.outcome = Outcome.NOT_APPLICABLE
        r.summary = "the KYC limits are off (STRONGROOM_KYC_LIMITS): no usage is counted"
        return r
    found = check_usage(src.engine, now_us, lambda w: r.add(Finding(w.detail(), w.tenant_id)), say)
    hours = found.until_hour - found.since_hour + 1
    r.facts = {
        "since": clock.format_us(found.since_hour * HOUR_US),
        "hours": hours,
        "payments": found.payments,
        "buckets": found.buckets,
        "passes": found.passes,
    }
    r.shared_facts = ("since", "hours")
    # When the limits were first on bounds the hours compared: its row gone, or moved past a
    # stored bucket, is a hand edit (the limits write it before their first bucket).
    marker = None
    if found.unmarked:
        marker = "usage buckets stored, and no record of when the KYC limits were first on"
    elif found.before_marked:
        marker = "a usage bucket older than when the KYC limits were first on"
    if marker is not None:
        r.add(Finding({"table": "kyc_limits_since", "problem": marker}))
    if found.overflow:
        r.outcome = Outcome.FAIL
        r.summary = (
            "the ledger's payments fill more usage buckets than twice those stored: counters "
            "deleted, or payments posted without the KYC limits"
        )
        r.add(Finding({"problem": "more usage in the ledger than in the counters"}))
    elif found.first is not None:
        w = found.first
        r.outcome = Outcome.FAIL
        r.summary = (
            f"{r.found} usage bucket(s) below what the ledger's payments took; the first: "
            f"customer {w.customer_id}, {w.asset}, hour {w.detail()['hour']}: {w.stored} "
            f"stored, {w.counted} taken"
        )
    elif marker is not None:
        r.outcome = Outcome.FAIL
        r.summary = f"{marker} (kyc_limits_since)"
    else:
        r.summary = (
            f"{found.buckets} usage buckets of the last {hours} hours hold at least what the "
            f"ledger's {found.payments} transfers of the window took from customers"
        )
    return r


def openbanking_consents_audited(
    src: Sources, th: Thresholds, now_us: int, say: Progress
) -> ControlResult:
    del th, now_us
    r = ControlResult(
        "openbanking_consents_audited",
        "Open banking consents and payments match their audit leaves",
        Outcome.PASS,
        "",
    )
    if src.record_leaves is None:
        r.outcome = Outcome.NOT_APPLICABLE
        r.summary = "no audit log to replay the consents and payments against"
        return r
    if src.openbanking_records is None:
        r.outcome = Outcome.NOT_APPLICABLE
        r.summary = "open banking's records are not given to the controls"
        return r
    first: list[Finding] = []

    def add(tenant: str, detail: dict[str, Any]) -> None:
        finding = Finding(detail, tenant)
        if not first:
            first.append(finding)
        r.add(finding)

    counts = src.openbanking_records(src.record_leaves, add, say)
    r.facts = dict(counts)
    checked = (
        f"{counts['consents']} consents and {counts['payments']} payments against "
        f"{counts['leaves']} leaves"
    )
    if first:
        w = first[0]
        what = w.detail.get("payment_id") if w.detail["table"] == "ob_payments" else None
        row = what or w.detail.get("consent_id") or f"leaf {w.detail.get('leaf')}"
        r.outcome = Outcome.FAIL
        r.summary = (
            f"{r.found} row(s) differ from their audit leaves ({checked}); the first: "
            f"{w.detail['table']} {row} of {w.tenant_id}: {w.detail['problem']}"
        )
    else:
        r.summary = f"{checked}: they match"
    return r


CONTROLS: Final[tuple[Control, ...]] = (
    card_numbers_in_clear,
    keys_rotated,
    staff_second_factor,
    audit_log_verifies,
    case_service_level,
    sanctions_lists_fresh,
    customers_within_retention,
    compliance_records_audited,
    kyc_usage_counted,
    openbanking_consents_audited,
)
