"""All of the case queue's SQL (migration 0019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from strongroom.cases.model import Case, CaseNote, CaseStatus, Label
from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork

CASE_COLS: Final = (
    "id, tenant_id, kind, status, transfer_id, gate, code, detail, created_at, created_by, "
    "decided_at, decided_by, decision_reason, label, assignee"
)
_MARKS: Final = ",".join("?" * len(CASE_COLS.split(", ")))


def case_of(row: Sequence[Any]) -> Case:
    return Case(
        id=row[0],
        tenant_id=row[1],
        kind=row[2],
        status=CaseStatus(row[3]),
        transfer_id=row[4],
        gate=row[5],
        code=row[6],
        detail=row[7],
        created_at=int(row[8]),
        created_by=row[9],
        decided_at=None if row[10] is None else int(row[10]),
        decided_by=row[11],
        decision_reason=row[12],
        label=None if row[13] is None else Label(row[13]),
        assignee=row[14],
    )


def insert_cases(uow: UnitOfWork, cases: Sequence[Case]) -> None:
    if not cases:
        return
    values = [
        (
            c.id, c.tenant_id, c.kind, c.status.value, c.transfer_id, c.gate, c.code, c.detail,
            c.created_at, c.created_by, c.decided_at, c.decided_by, c.decision_reason,
            c.label.value if c.label is not None else None, c.assignee,
        )
        for c in cases
    ]  # fmt: skip
    uow.cursor().executemany(sql(uow, f"INSERT INTO cases ({CASE_COLS}) VALUES ({_MARKS})"), values)


def get_case(uow: UnitOfWork, case_id: str, *, lock: bool = False) -> Case | None:
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {CASE_COLS} FROM cases WHERE id = ?{suffix}"), (case_id,))
    row = cur.fetchone()
    return None if row is None else case_of(row)


def list_cases(
    uow: UnitOfWork,
    tenant_id: str,
    *,
    status: str | None,
    kind: str | None,
    starting_after: str | None,
    limit: int,
    assignee: str | None = None,
) -> list[Case]:
    """Newest first (ids are time-ordered), after the case `starting_after` (a cursor)."""
    where = ["tenant_id = ?"]
    params: list[Any] = [tenant_id]
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if kind is not None:
        where.append("kind = ?")
        params.append(kind)
    if assignee is not None:
        where.append("assignee = ?")
        params.append(assignee)
    if starting_after is not None:
        where.append("id < ?")
        params.append(starting_after)
    params.append(limit)
    text = f"SELECT {CASE_COLS} FROM cases WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    cur = uow.cursor()
    cur.execute(sql(uow, text), params)
    return [case_of(row) for row in cur.fetchall()]


def open_cases_of_transfers(
    uow: UnitOfWork, transfer_ids: Sequence[str], *, lock: bool = False
) -> list[Case]:
    """The open cases of these transfers (the rows are locked on PostgreSQL with `lock`)."""
    suffix = "AND status = 'open' ORDER BY id" + (" FOR UPDATE" if lock and not uow.sqlite else "")
    rows = fetch_in(
        uow, f"SELECT {CASE_COLS} FROM cases", "transfer_id", sorted(set(transfer_ids)), suffix
    )
    return [case_of(row) for row in rows]


def decide(
    uow: UnitOfWork,
    case_id: str,
    status: CaseStatus,
    *,
    at_us: int,
    actor: str,
    reason: str | None,
    label: Label | None,
) -> bool:
    """Sets an open case's decision; False when the case was no longer open (nothing
    written)."""
    assert status is not CaseStatus.OPEN
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE cases SET status = ?, decided_at = ?, decided_by = ?, decision_reason = ?, "
            "label = ? WHERE id = ? AND status = 'open'",
        ),
        (
            status.value,
            at_us,
            actor,
            reason,
            label.value if label is not None else None,
            case_id,
        ),
    )
    return bool(cur.rowcount == 1)


def assign(uow: UnitOfWork, case_id: str, assignee: str | None) -> None:
    cur = uow.cursor()
    cur.execute(sql(uow, "UPDATE cases SET assignee = ? WHERE id = ?"), (assignee, case_id))


NOTE_COLS: Final = "id, case_id, tenant_id, author, body, created_at"


def insert_note(uow: UnitOfWork, note: CaseNote) -> None:
    uow.cursor().execute(
        sql(uow, f"INSERT INTO case_notes ({NOTE_COLS}) VALUES (?, ?, ?, ?, ?, ?)"),
        (note.id, note.case_id, note.tenant_id, note.author, note.body, note.created_at),
    )


def count_notes(uow: UnitOfWork, case_id: str) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT COUNT(*) FROM case_notes WHERE case_id = ?"), (case_id,))
    row = cur.fetchone()
    return int(row[0]) if row is not None else 0


def list_notes(uow: UnitOfWork, case_id: str, *, limit: int) -> list[CaseNote]:
    """Oldest first (the order they were written), at most `limit`."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {NOTE_COLS} FROM case_notes WHERE case_id = ? ORDER BY id LIMIT ?"),
        (case_id, limit),
    )
    return [
        CaseNote(
            id=r[0], case_id=r[1], tenant_id=r[2], author=r[3], body=r[4], created_at=int(r[5])
        )
        for r in cur.fetchall()
    ]
