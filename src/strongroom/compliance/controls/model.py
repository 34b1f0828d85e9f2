"""The vocabulary of compliance controls, pure: a control's outcome (pass, fail, not applicable,
error) with its findings as evidence, a run's report, a tenant's view of it, its Markdown and HTML
renderings, and the card-number detector (Luhn-valid runs of 13 to 19 digits with a card brand's
prefix). No database, no framework: the checks (checks.py) feed it."""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from strongroom.core import frames
from strongroom.core.limits import AUDIT_BUNDLE_BYTES_MAX, CONTROL_FINDINGS_MAX

REPORT_FORMAT: Final = "strongroom-compliance-report/1"
# The deployment's own tenant: its log records key operations (security.keyops.KEYS_LOG_ID); it
# gets the deployment's findings, and its view of the report is the operator's.
DEPLOYMENT_TENANT: Final = "ten_default"


class Scope(StrEnum):
    """Whose a control's findings are. TENANT: each finding is a tenant's (or, owned by none,
    the deployment's), and each tenant's outcome is judged on its own; DEPLOYMENT: the
    deployment's as a whole (its keys, its audit log, its sanctions lists): every tenant sees
    the outcome, only the deployment's tenant the evidence."""

    TENANT = "tenant"
    DEPLOYMENT = "deployment"


# Controls of the deployment as a whole (a stored report older than `scope` reads them so).
_DEPLOYMENT_CONTROLS: Final = frozenset({"keys_rotated", "audit_log_verifies",
                                         "sanctions_lists_fresh"})  # fmt: skip
_NONE: Final = ""  # found_by_tenant's key for findings no tenant owns


class Outcome(StrEnum):
    PASS = "pass"  # noqa: S105 (an outcome, not a password)
    FAIL = "fail"
    NOT_APPLICABLE = "not_applicable"  # nothing to check here (with the reason)
    ERROR = "error"  # the check could not run (the exception's type, never its message)


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence against a control: what and where (ids, table and column names,
    a masked card number), never a secret or personal data. `tenant_id` None: the deployment's
    (keys, the audit log, list snapshots) or a row no tenant owns."""

    detail: dict[str, Any]
    tenant_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"tenant_id": self.tenant_id, **self.detail}


@dataclass(slots=True)
class ControlResult:
    name: str
    title: str
    outcome: Outcome
    summary: str  # one line: what was checked, and what was found
    findings: list[Finding] = field(default_factory=list)
    found: int = 0  # every finding counted, though at most CONTROL_FINDINGS_MAX are kept
    facts: dict[str, Any] = field(default_factory=dict)  # what was examined (counts, ages)
    scope: Scope = Scope.TENANT
    # Every finding counted by its tenant ("" for none), kept or not: a tenant's own count.
    found_by_tenant: dict[str, int] = field(default_factory=dict)
    # Facts of one tenant (its staff users, its open cases), shown to that tenant only.
    tenant_facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The names of the facts that every tenant may see (thresholds, the schema scanned):
    # the others are the deployment's (counts over every tenant, the key manager).
    shared_facts: tuple[str, ...] = ()

    def add(self, finding: Finding) -> None:
        self.found += 1
        owner = finding.tenant_id or _NONE
        self.found_by_tenant[owner] = self.found_by_tenant.get(owner, 0) + 1
        if len(self.findings) < CONTROL_FINDINGS_MAX:
            self.findings.append(finding)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "title": self.title,
            "scope": self.scope.value,
            "outcome": self.outcome.value,
            "summary": self.summary,
            "found": self.found,
            "findings": [f.to_dict() for f in self.findings],
            "facts": self.facts,
        }
        if self.found_by_tenant:
            out["found_by_tenant"] = dict(sorted(self.found_by_tenant.items()))
        if self.tenant_facts:
            out["tenant_facts"] = dict(sorted(self.tenant_facts.items()))
        if self.shared_facts:
            out["shared_facts"] = list(self.shared_facts)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ControlResult:
        findings = []
        for item in data["findings"]:
            detail = {k: v for k, v in item.items() if k != "tenant_id"}
            findings.append(Finding(detail, item.get("tenant_id")))
        name = data["name"]
        default = Scope.DEPLOYMENT if name in _DEPLOYMENT_CONTROLS else Scope.TENANT
        return cls(
            name,
            data["title"],
            Outcome(data["outcome"]),
            data["summary"],
            findings,
            int(data["found"]),
            dict(data.get("facts", {})),
            Scope(data.get("scope", default)),
            {str(k): int(v) for k, v in data.get("found_by_tenant", {}).items()},
            {str(k): dict(v) for k, v in data.get("tenant_facts", {}).items()},
            tuple(data.get("shared_facts", ())),
        )

    def for_tenant(self, tenant_id: str) -> ControlResult:
        """What `tenant_id` sees of this result (Report.for_tenant)."""
        operator = tenant_id == DEPLOYMENT_TENANT
        facts = {k: v for k, v in self.facts.items() if k in self.shared_facts}
        if self.scope is Scope.DEPLOYMENT:
            if operator:
                return ControlResult(self.name, self.title, self.outcome, self.summary,
                                     list(self.findings), self.found, dict(self.facts),
                                     self.scope)  # fmt: skip
            return ControlResult(self.name, self.title, self.outcome, _deployment_summary(self),
                                 [], self.found, facts, self.scope)  # fmt: skip
        owners = {tenant_id, None} if operator else {tenant_id}
        mine = [f for f in self.findings if f.tenant_id in owners]
        facts |= self.tenant_facts.get(tenant_id, {})
        if self.found_by_tenant or not self.found:
            found = self.found_by_tenant.get(tenant_id, 0)
            if operator:
                found += self.found_by_tenant.get(_NONE, 0)
        else:
            # A report stored before the counts by tenant: the kept findings, and when they
            # are a sample, a failure that may be this tenant's beyond them.
            found = len(mine) if self.found == len(self.findings) else max(len(mine), 1)
        outcome = self.outcome
        if outcome in (Outcome.PASS, Outcome.FAIL):
            outcome = Outcome.FAIL if found else Outcome.PASS
        return ControlResult(self.name, self.title, outcome, _tenant_summary(self, outcome,
                             found), mine, found, facts, self.scope)  # fmt: skip


def _tenant_summary(c: ControlResult, outcome: Outcome, found: int) -> str:
    """A tenant-scoped control's line as one tenant sees it: no count over other tenants."""
    if outcome is Outcome.PASS:
        return f"{c.title}: nothing found of this tenant"
    if outcome is Outcome.FAIL:
        return f"{c.title}: {found} finding(s) of this tenant"
    return c.summary  # error (the exception's type) or not applicable (why)


def _deployment_summary(c: ControlResult) -> str:
    """A deployment control's line as a tenant sees it: the outcome, not the evidence."""
    if c.outcome is Outcome.PASS:
        return f"{c.title}: yes (a control of the deployment, shared by every tenant)"
    if c.outcome is Outcome.FAIL:
        return f"{c.title}: no (a control of the deployment: its operator has the evidence)"
    if c.outcome is Outcome.NOT_APPLICABLE:
        return f"{c.title}: not applicable to this deployment"
    return c.summary  # error: the exception's type only


@dataclass(slots=True)
class Report:
    id: str
    started_at: str  # RFC 3339
    finished_at: str
    controls: list[ControlResult]

    @property
    def outcome(self) -> Outcome:
        """fail when any control failed or could not run; else pass."""
        bad = {Outcome.FAIL, Outcome.ERROR}
        return Outcome.FAIL if any(c.outcome in bad for c in self.controls) else Outcome.PASS

    @property
    def failed(self) -> list[ControlResult]:
        return [c for c in self.controls if c.outcome in (Outcome.FAIL, Outcome.ERROR)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "compliance_report",
            "format": REPORT_FORMAT,
            "id": self.id,
            "outcome": self.outcome.value,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "controls": [c.to_dict() for c in self.controls],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        return cls(
            data["id"],
            data["started_at"],
            data["finished_at"],
            [ControlResult.from_dict(c) for c in data["controls"]],
        )

    def for_tenant(self, tenant_id: str) -> Report:
        """What a tenant sees: of each control of tenants' data (card numbers, staff users,
        cases, retention) its own findings, counts and facts, the outcome judged on those
        alone; of each control of the deployment (keys, the audit log, sanctions lists) the
        outcome, not the evidence; of every control only the facts safe to share
        (`shared_facts`: thresholds, the schema scanned). Another tenant's findings are
        neither shown nor counted, nor are those no tenant owns. The deployment's own tenant
        (DEPLOYMENT_TENANT, the operator's) sees the deployment's evidence and facts and the
        findings no tenant owns besides its own."""
        out = [c.for_tenant(tenant_id) for c in self.controls]
        return Report(self.id, self.started_at, self.finished_at, out)


# -- card numbers ----------------------------------------------------------------------------

CARD_DIGITS_MIN: Final = 13
CARD_DIGITS_MAX: Final = 19
# A run of digits, with at most one space or dash between digits (a number as people write it),
# not touching other digits.
_RUN: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,}(?![0-9])")
_DIGITS: Final = frozenset("0123456789")
# Issuer prefixes (ISO/IEC 7812 IINs of the major brands): a Luhn-valid run without one is an
# amount, a timestamp or an id, far more often than a card number.
_BRAND_PREFIX: Final = re.compile(
    r"^(?:4|5[1-5]|2(?:22[1-9]|2[3-9][0-9]|[3-6][0-9]{2}|7[01][0-9]|720)|3[47]|3(?:0[0-5]|[68])"
    r"|6(?:011|5|4[4-9]|22)|35(?:2[89]|[3-8][0-9])|62|81|50|5[6-9]|6[0-9])"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def masked(digits: str) -> str:
    """The first six and the last four (PCI DSS 3.4.1's most), the rest as `*`."""
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


HEX_DIGEST_CHARS_MIN: Final = 32  # a 128-bit digest in hex; SHA-256's is 64
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def _in_hex_digest(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] lies inside a run of at least HEX_DIGEST_CHARS_MIN hex
    characters holding a letter: a digest or a key fingerprint, whose digits are no card
    number whatever Luhn says (one SHA-256 in ten has a Luhn-valid 16-digit stretch)."""
    left, right = start, end
    while left > 0 and text[left - 1] in _HEX:
        left -= 1
    while right < len(text) and text[right] in _HEX:
        right += 1
    run = text[left:right]
    return len(run) >= HEX_DIGEST_CHARS_MIN and not run.isdigit()


def _decimal_fraction(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] is the fraction of a decimal number (`1.4398037835090485`,
    `-0.41...`: the risk domain's features, scores and model weights hold thousands of those,
    one in ten Luhn-valid): digits alone, after a dot after digits that stand alone (not a
    version `v1.`, an address `10.0.0.1.`, a date `2024-01-05.`)."""
    if start < 2 or text[start - 1] != "." or text[start - 2] not in _DIGITS:
        return False
    if any(c not in _DIGITS for c in text[start:end]):  # a fraction has no spaces or dashes
        return False
    i = start - 2
    while i >= 0 and text[i] in _DIGITS:
        i -= 1
    if i < 0:
        return True
    before = text[i]
    if before == "-":  # a sign, unless digits precede it (a date, a range)
        return i == 0 or text[i - 1] not in _DIGITS
    return not (before.isalnum() or before == ".")


def card_numbers(text: str) -> Iterator[str]:
    """Each card number in `text` (its digits): a Luhn-valid run of 13 to 19 digits that
    starts with a brand's prefix, not inside a hex digest."""
    if len(text) < CARD_DIGITS_MIN:
        return
    for match in _RUN.finditer(text):
        if _in_hex_digest(text, match.start(), match.end()) or _decimal_fraction(
            text, match.start(), match.end()
        ):
            continue
        digits = match.group().replace(" ", "").replace("-", "")
        if (
            CARD_DIGITS_MIN <= len(digits) <= CARD_DIGITS_MAX
            and _BRAND_PREFIX.match(digits)
            and luhn_valid(digits)
        ):
            yield digits


def as_text(value: object) -> str | None:
    """A column's value as text to scan: bytes as Latin-1 (every byte a character, so the
    digits of a number stored as bytes are found), a zstd frame as what it holds (the audit
    log's bundles are stored compressed: core/frames.py) when its header says at most
    AUDIT_BUNDLE_BYTES_MAX (64 MiB, so a value never costs more memory than that), otherwise
    or when it does not open as stored; numbers and None not at all."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        if frames.is_frame(data):
            with contextlib.suppress(ValueError):
                data = frames.decompress(data, AUDIT_BUNDLE_BYTES_MAX)
        return data.decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value)
    return None


# -- renderings ------------------------------------------------------------------------------

_MARK: Final = {
    Outcome.PASS: "PASS",
    Outcome.FAIL: "FAIL",
    Outcome.NOT_APPLICABLE: "N/A",
    Outcome.ERROR: "ERROR",
}


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _finding_text(finding: Finding) -> str:
    parts = [f"{k}={v}" for k, v in finding.to_dict().items() if v is not None]
    return ", ".join(parts)


def to_markdown(report: Report) -> str:
    lines = [
        f"# Compliance report {report.id}",
        "",
        f"Outcome: **{report.outcome.value}** (started {report.started_at}, finished "
        f"{report.finished_at})",
        "",
        "| control | outcome | summary |",
        "|---|---|---|",
    ]
    lines += [f"| `{c.name}` | {_MARK[c.outcome]} | {_cell(c.summary)} |" for c in report.controls]
    for c in report.controls:
        lines += ["", f"## {c.title} (`{c.name}`): {_MARK[c.outcome]}", "", c.summary]
        if c.facts:
            lines += ["", "Examined: " + ", ".join(f"{k}={v}" for k, v in c.facts.items())]
        if c.findings:
            lines.append("")
            lines += [f"- {_finding_text(f)}" for f in c.findings]
            if c.found > len(c.findings):
                lines.append(f"- ... and {c.found - len(c.findings)} more")
    return "\n".join(lines) + "\n"


def to_html(report: Report) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(c.name)}</code></td><td class={c.outcome.value}>"
        f"{_MARK[c.outcome]}</td><td>{esc(c.summary)}</td></tr>"
        for c in report.controls
    )
    sections = []
    for c in report.controls:
        items = "".join(f"<li>{esc(_finding_text(f))}</li>" for f in c.findings)
        if c.found > len(c.findings):
            items += f"<li>... and {c.found - len(c.findings)} more</li>"
        facts = ", ".join(f"{k}={v}" for k, v in c.facts.items())
        sections.append(
            f"<h2>{esc(c.title)} (<code>{esc(c.name)}</code>): {_MARK[c.outcome]}</h2>"
            f"<p>{esc(c.summary)}</p>"
            + (f"<p>Examined: {esc(facts)}</p>" if facts else "")
            + (f"<ul>{items}</ul>" if items else "")
        )
    return (
        "<!doctype html><html><head><meta charset=utf-8>"
        f"<title>Compliance report {esc(report.id)}</title>"
        "<style>td.pass{color:green}td.fail,td.error{color:#b00}td{padding:0 1em}</style>"
        f"</head><body><h1>Compliance report {esc(report.id)}</h1>"
        f"<p>Outcome: <b>{report.outcome.value}</b> (started {esc(report.started_at)}, "
        f"finished {esc(report.finished_at)})</p>"
        f"<table><tr><th>control</th><th>outcome</th><th>summary</th></tr>{rows}</table>"
        + "".join(sections)
        + "</body></html>\n"
    )


def outcomes(controls: Sequence[ControlResult]) -> dict[str, str]:
    return {c.name: c.outcome.value for c in controls}
