"""Working a case: assigning it to a staff user, notes (the narrative), and the draft of a
suspicious-activity report. Each assignment and note is an audit leaf and an event (ids only:
a note's text stays in its row). The report reads the case, its notes, the transfers it names
(bounded by CASE_REPORT_TRANSFERS_MAX) and its subject through a port (the customers domain,
wired by the composition root), revealing personal data only when asked by a caller allowed
to (the customers domain records that reveal as an audit leaf of its own)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.cases import report, store
from strongroom.cases.errors import CaseNotOpen
from strongroom.cases.model import Case, CaseNote, CaseStatus
from strongroom.cases.service import CaseService
from strongroom.core import ids
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import (
    CASE_NOTE_CHARS_MAX,
    CASE_NOTES_MAX,
    CASE_REPORT_TRANSFERS_MAX,
)
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import TransferRecord

# Whether `user_id` is a staff user of the tenant: (tenant id, user id) -> bool.
UserCheck = Callable[[str, str], bool]
# A case's subject (`customer:<id>`, `counterparty:<id>`) as a report shows it: (tenant id,
# subject, reveal, actor) -> its fields (masked unless `reveal`), or None when unknown.
SubjectResolver = Callable[[str, str, bool, str], Mapping[str, Any] | None]


class CaseWork:
    def __init__(
        self,
        cases: CaseService,
        *,
        users: UserCheck | None = None,
        subjects: SubjectResolver | None = None,
    ) -> None:
        self.cases = cases
        self.users = users
        self.subjects = subjects

    def _case(self, uow: UnitOfWork, tenant_id: str, case_id: str, lock: bool = False) -> Case:
        case = store.get_case(uow, case_id, lock=lock)
        if case is None or case.tenant_id != tenant_id:
            raise NotFound(f"no case {case_id}", param="case_id")
        return case

    def assign(self, tenant_id: str, case_id: str, assignee: str | None, *, actor: str) -> Case:
        """Assigns an open case to a staff user of the tenant (None: unassigns it)."""
        if assignee is not None and self.users is not None and not self.users(tenant_id, assignee):
            raise NotFound(f"no staff user {assignee}", param="assignee")
        with self.cases.uow() as uow:
            case = self._case(uow, tenant_id, case_id, lock=True)
            if case.status is not CaseStatus.OPEN:
                raise CaseNotOpen(f"case {case_id} is {case.status.value}", param="case_id")
            if case.assignee != assignee:
                store.assign(uow, case_id, assignee)
                self.cases.record(uow, case, "case.assigned", actor, {"assignee": assignee})
            uow.commit()
        return self.cases.get(tenant_id, case_id).case

    def add_note(self, tenant_id: str, case_id: str, body: str, *, actor: str) -> CaseNote:
        """A note on a case, open or decided (the narrative may go on after the decision)."""
        if not body.strip() or len(body) > CASE_NOTE_CHARS_MAX:
            raise InvalidRequest(
                f"a note is 1 to {CASE_NOTE_CHARS_MAX} characters, not only spaces", param="body"
            )
        with self.cases.uow() as uow:
            case = self._case(uow, tenant_id, case_id, lock=True)
            if store.count_notes(uow, case_id) >= CASE_NOTES_MAX:
                raise InvalidRequest(
                    f"a case holds at most {CASE_NOTES_MAX} notes",
                    param="case_id",
                    code="case_notes_full",
                )
            note = CaseNote(
                id=ids.new_ids("note", 1)[0],
                case_id=case_id,
                tenant_id=tenant_id,
                author=actor,
                body=body,
                created_at=self.cases.clock.now_us(),
            )
            store.insert_note(uow, note)
            self.cases.record(uow, case, "case.note_added", actor, {"note_id": note.id})
            uow.commit()
        return note

    def notes(self, tenant_id: str, case_id: str) -> list[CaseNote]:
        with self.cases.uow(write=False) as uow:
            self._case(uow, tenant_id, case_id)
            return store.list_notes(uow, case_id, limit=CASE_NOTES_MAX)

    def report(
        self, tenant_id: str, case_id: str, *, actor: str, reveal: bool = False
    ) -> dict[str, Any]:
        """The suspicious-activity report draft of the case (cases.report)."""
        with self.cases.uow(write=False) as uow:
            case = self._case(uow, tenant_id, case_id)
            notes = store.list_notes(uow, case_id, limit=CASE_NOTES_MAX)
        # As the case view shows it: a risk review's explanation is computed when read.
        case = self.cases.completed(case)
        named, omitted = report.evidence_transfer_ids(case, CASE_REPORT_TRANSFERS_MAX)
        transfers = self._transfers(tenant_id, named)
        subject = None
        detail_subject = _subject_of(case)
        if detail_subject is not None and self.subjects is not None:
            subject = self.subjects(tenant_id, detail_subject, reveal, actor)
        return report.build(
            case,
            transfers=transfers,
            omitted=omitted,
            notes=notes,
            subject=subject,
            generated_by=actor,
            generated_at_us=self.cases.clock.now_us(),
        )

    def _transfers(self, tenant_id: str, named: list[str]) -> list[tuple[TransferRecord, str]]:
        """The named transfers of the tenant that exist, each with its asset."""
        ledger = self.cases.ledger
        found: list[TransferRecord] = []
        for transfer_id in named:
            try:
                found.append(ledger.get_transfer(transfer_id))
            except NotFound:
                continue
        tenants = ledger.ledger_tenants(sorted({t.ledger_id for t in found}))
        assets: dict[str, str] = {}
        out = []
        for t in found:
            if tenants.get(t.ledger_id) != tenant_id:
                continue  # never another tenant's, whatever the evidence says
            account_id = t.effective_legs()[0].account_id
            if account_id not in assets:
                assets[account_id] = ledger.get_account(account_id).asset
            out.append((t, assets[account_id]))
        return out


def _subject_of(case: Case) -> str | None:
    subject = case.detail_dict().get("subject")
    return subject if isinstance(subject, str) else None
