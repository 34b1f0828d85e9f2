"""SQL of sanctions screening (migration 0021): the list snapshots (deployment-wide), and per
tenant the subjects' screening status, their scores per entry, the dismissals and the blocking
index. Rows cross into the service as named objects."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from strongroom.core.limits import SQL_PARAMS_PER_STATEMENT_MAX
from strongroom.db.query import chunks, fetch_in, sql
from strongroom.db.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class VersionRow:
    source: str
    version: int
    sha256: str
    entry_count: int
    added: int
    changed: int
    removed: int
    loaded_at: int
    loaded_by: str
    # When the re-screening this version's changes call for completed (migration 0030);
    # None: still owed (a load stopped before it finished, or ran with rescreen=False).
    rescreened_at: int | None = None


@dataclass(frozen=True, slots=True)
class ResultRow:
    tenant_id: str
    subject: str
    source: str
    entry_id: str
    score: float
    fingerprint: str
    list_version: int
    name_digest: str
    case_id: str | None
    screened_at: int


@dataclass(frozen=True, slots=True)
class SubjectRow:
    tenant_id: str
    subject: str
    name_digest: str
    status: str
    best_score: float
    screened_at: int


@dataclass(frozen=True, slots=True)
class DismissalRow:
    tenant_id: str
    subject: str
    source: str
    entry_id: str
    id: str
    name_digest: str
    fingerprint: str
    reviewer: str
    reason: str | None
    created_at: int


_VERSION_COLS = (
    "source, version, sha256, entry_count, added, changed, removed, loaded_at, loaded_by, "
    "rescreened_at"
)


# -- list snapshots ----------------------------------------------------------------------------


def list_versions(uow: UnitOfWork, source: str | None = None) -> list[VersionRow]:
    cur = uow.cursor()
    if source is None:
        cur.execute(f"SELECT {_VERSION_COLS} FROM sanctions_list_versions ORDER BY source, version")
    else:
        cur.execute(
            sql(uow, f"SELECT {_VERSION_COLS} FROM sanctions_list_versions WHERE source = ? "
                "ORDER BY version"),
            (source,),
        )  # fmt: skip
    return [VersionRow(*row) for row in cur.fetchall()]


def stamp(uow: UnitOfWork) -> tuple[tuple[str, int], ...]:
    """The current version of each list: one small aggregate over the versions table (its
    primary key), what a process compares to notice a list loaded by another."""
    cur = uow.cursor()
    cur.execute(
        "SELECT source, MAX(version) FROM sanctions_list_versions GROUP BY source ORDER BY source"
    )
    return tuple((str(s), int(v)) for s, v in cur.fetchall())


def current_fingerprints(uow: UnitOfWork, source: str) -> dict[str, str]:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT entry_id, fingerprint FROM sanctions_entries "
            "WHERE source = ? AND last_version IS NULL"),
        (source,),
    )  # fmt: skip
    return {str(e): str(f) for e, f in cur.fetchall()}


def current_bodies(uow: UnitOfWork) -> list[str]:
    cur = uow.cursor()
    cur.execute(
        "SELECT body FROM sanctions_entries WHERE last_version IS NULL ORDER BY source, entry_id"
    )
    return [str(b) for (b,) in cur.fetchall()]


def entry_bodies(uow: UnitOfWork, source: str, entry_ids: Sequence[str]) -> list[str]:
    """The newest row of each of `entry_ids` (a removed entry's last version included)."""
    found: dict[str, tuple[int, str]] = {}
    rows = _entry_rows(uow, source, entry_ids)
    for entry_id, first, body in rows:
        if entry_id not in found or found[entry_id][0] < first:
            found[entry_id] = (first, body)
    return [body for _, body in found.values()]


def _entry_rows(
    uow: UnitOfWork, source: str, entry_ids: Sequence[str]
) -> list[tuple[str, int, str]]:
    rows = fetch_in(
        uow,
        "SELECT source, entry_id, first_version, body FROM sanctions_entries",
        "entry_id",
        entry_ids,
    )
    return [(str(e), int(f), str(b)) for s, e, f, b in rows if s == source]


def is_duplicate_key(exc: BaseException) -> bool:
    """Whether `exc` is a primary key or unique constraint violated: what a load meets when a
    concurrent load of the same list stored the version it was about to store."""
    if isinstance(exc, sqlite3.IntegrityError):
        return getattr(exc, "sqlite_errorcode", None) in (
            sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY,
            sqlite3.SQLITE_CONSTRAINT_UNIQUE,
        )
    try:
        import psycopg.errors as pe
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, pe.UniqueViolation)


def insert_version(uow: UnitOfWork, row: VersionRow) -> None:
    uow.cursor().execute(
        sql(uow, f"INSERT INTO sanctions_list_versions ({_VERSION_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        (row.source, row.version, row.sha256, row.entry_count, row.added, row.changed,
         row.removed, row.loaded_at, row.loaded_by, row.rescreened_at),
    )  # fmt: skip


def owed_versions(uow: UnitOfWork) -> list[VersionRow]:
    """The versions whose re-screening has not completed, every list's, oldest first."""
    cur = uow.cursor()
    cur.execute(
        f"SELECT {_VERSION_COLS} FROM sanctions_list_versions WHERE rescreened_at IS NULL "
        "ORDER BY source, version"
    )
    return [VersionRow(*row) for row in cur.fetchall()]


def version_bodies(uow: UnitOfWork, source: str, version: int) -> list[str]:
    """The entries `version` of `source` touched: an added or changed entry's row as it
    stored it, a removed entry's last row (the one that ended at the version before)."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT e.body FROM sanctions_changes c JOIN sanctions_entries e "
            "ON e.source = c.source AND e.entry_id = c.entry_id "
            "WHERE c.source = ? AND c.version = ? AND ("
            "(c.change <> 'removed' AND e.first_version = c.version) OR "
            "(c.change = 'removed' AND e.last_version = c.version - 1)) "
            "ORDER BY c.entry_id"),
        (source, version),
    )  # fmt: skip
    return [str(b) for (b,) in cur.fetchall()]


def mark_rescreened(uow: UnitOfWork, source: str, versions: Sequence[int], at: int) -> None:
    """The re-screening of these versions of `source` completed at `at` (a version already
    marked keeps its time)."""
    for version in versions:
        uow.cursor().execute(
            sql(uow, "UPDATE sanctions_list_versions SET rescreened_at = ? "
                "WHERE source = ? AND version = ? AND rescreened_at IS NULL"),
            (at, source, version),
        )  # fmt: skip


def close_entries(uow: UnitOfWork, source: str, entry_ids: Sequence[str], last: int) -> None:
    """The current rows of `entry_ids` end at version `last`."""
    if not entry_ids:
        return
    uow.cursor().executemany(
        sql(uow, "UPDATE sanctions_entries SET last_version = ? "
            "WHERE source = ? AND entry_id = ? AND last_version IS NULL"),
        [(last, source, e) for e in entry_ids],
    )  # fmt: skip


def insert_entries(
    uow: UnitOfWork, source: str, version: int, rows: Iterable[tuple[str, str, str]]
) -> None:
    """(entry id, fingerprint, body) rows current from `version` on."""
    values = [(source, e, version, f, b) for e, f, b in rows]
    if values:
        uow.cursor().executemany(
            sql(uow, "INSERT INTO sanctions_entries "
                "(source, entry_id, first_version, last_version, fingerprint, body) "
                "VALUES (?, ?, ?, NULL, ?, ?)"),
            values,
        )  # fmt: skip


def insert_changes(
    uow: UnitOfWork, source: str, version: int, changes: Iterable[tuple[str, str]]
) -> None:
    values = [(source, version, e, c) for e, c in changes]
    if values:
        uow.cursor().executemany(
            sql(uow, "INSERT INTO sanctions_changes (source, version, entry_id, change) "
                "VALUES (?, ?, ?, ?)"),
            values,
        )  # fmt: skip


def changes(uow: UnitOfWork, source: str, version: int) -> list[tuple[str, str]]:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT entry_id, change FROM sanctions_changes WHERE source = ? AND version = ? "
            "ORDER BY entry_id"),
        (source, version),
    )  # fmt: skip
    return [(str(e), str(c)) for e, c in cur.fetchall()]


# -- subjects, results, dismissals (per tenant) ------------------------------------------------


def get_subject(
    uow: UnitOfWork, tenant_id: str, subject: str, *, lock: bool = False
) -> SubjectRow | None:
    """With `lock`, the row is locked (FOR UPDATE on PostgreSQL) for a read that decides what
    to write: a confirmation committing meanwhile (which updates the row) is then seen, never
    overwritten."""
    cur = uow.cursor()
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur.execute(
        sql(uow, "SELECT tenant_id, subject, name_digest, status, best_score, screened_at "
            f"FROM sanctions_subjects WHERE tenant_id = ? AND subject = ?{suffix}"),
        (tenant_id, subject),
    )  # fmt: skip
    found = cur.fetchone()
    return SubjectRow(*found) if found else None


def put_subject(uow: UnitOfWork, row: SubjectRow) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "DELETE FROM sanctions_subjects WHERE tenant_id = ? AND subject = ?"),
        (row.tenant_id, row.subject),
    )
    cur.execute(
        sql(uow, "INSERT INTO sanctions_subjects "
            "(tenant_id, subject, name_digest, status, best_score, screened_at) "
            "VALUES (?, ?, ?, ?, ?, ?)"),
        (row.tenant_id, row.subject, row.name_digest, row.status, row.best_score,
         row.screened_at),
    )  # fmt: skip


def set_status(uow: UnitOfWork, tenant_id: str, subject: str, status: str) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE sanctions_subjects SET status = ? WHERE tenant_id = ? AND subject = ?"),
        (status, tenant_id, subject),
    )


ERASED_DIGEST = ""  # the name digest of an erased subject's kept status row


def forget_subject(uow: UnitOfWork, tenant_id: str, subject: str, *, keep_status: str) -> None:
    """Deletes a subject's matches, dismissals, blocking keys and status row; a status row of
    `keep_status` stays, its name digest blanked and its best score zeroed."""
    cur = uow.cursor()
    for table in ("sanctions_results", "sanctions_dismissals", "sanctions_subject_keys"):
        cur.execute(
            sql(uow, f"DELETE FROM {table} WHERE tenant_id = ? AND subject = ?"),
            (tenant_id, subject),
        )
    cur.execute(
        sql(uow, "DELETE FROM sanctions_subjects WHERE tenant_id = ? AND subject = ? "
            "AND status <> ?"),
        (tenant_id, subject, keep_status),
    )  # fmt: skip
    cur.execute(
        sql(uow, "UPDATE sanctions_subjects SET name_digest = ?, best_score = 0 "
            "WHERE tenant_id = ? AND subject = ?"),
        (ERASED_DIGEST, tenant_id, subject),
    )  # fmt: skip


def subject_count(uow: UnitOfWork) -> int:
    cur = uow.cursor()
    cur.execute("SELECT COUNT(*) FROM sanctions_subjects")
    return int(cur.fetchone()[0])


def tenants(uow: UnitOfWork) -> list[str]:
    cur = uow.cursor()
    cur.execute("SELECT DISTINCT tenant_id FROM sanctions_subject_keys ORDER BY tenant_id")
    return [str(t) for (t,) in cur.fetchall()]


_RESULT_COLS = (
    "tenant_id, subject, source, entry_id, score, fingerprint, list_version, name_digest, "
    "case_id, screened_at"
)


def results(uow: UnitOfWork, tenant_id: str, subject: str) -> list[ResultRow]:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_RESULT_COLS} FROM sanctions_results "
            "WHERE tenant_id = ? AND subject = ? ORDER BY score DESC, source, entry_id"),
        (tenant_id, subject),
    )  # fmt: skip
    return [ResultRow(*row) for row in cur.fetchall()]


def replace_results(
    uow: UnitOfWork, tenant_id: str, subject: str, rows: Sequence[ResultRow]
) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "DELETE FROM sanctions_results WHERE tenant_id = ? AND subject = ?"),
        (tenant_id, subject),
    )
    if rows:
        marks = ", ".join("?" * 10)
        cur.executemany(
            sql(uow, f"INSERT INTO sanctions_results ({_RESULT_COLS}) VALUES ({marks})"),
            [(r.tenant_id, r.subject, r.source, r.entry_id, r.score, r.fingerprint,
              r.list_version, r.name_digest, r.case_id, r.screened_at) for r in rows],
        )  # fmt: skip


def open_cases(uow: UnitOfWork, tenant_id: str, case_ids: Sequence[str]) -> set[str]:
    """Those of `case_ids` that are open cases of `tenant_id` (a match whose alert is still
    open is kept by a screening that no longer makes it). Reads the case queue's table, as the
    compliance domain's other stores do."""
    rows = fetch_in(uow, "SELECT id, tenant_id, status FROM cases", "id", sorted(set(case_ids)))
    return {str(i) for i, t, st in rows if t == tenant_id and st == "open"}


_DISMISSAL_COLS = (
    "tenant_id, subject, source, entry_id, id, name_digest, fingerprint, reviewer, reason, "
    "created_at"
)


def dismissals(uow: UnitOfWork, tenant_id: str, subject: str) -> list[DismissalRow]:
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {_DISMISSAL_COLS} FROM sanctions_dismissals "
            "WHERE tenant_id = ? AND subject = ?"),
        (tenant_id, subject),
    )  # fmt: skip
    return [DismissalRow(*row) for row in cur.fetchall()]


def put_dismissal(uow: UnitOfWork, row: DismissalRow) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "DELETE FROM sanctions_dismissals "
            "WHERE tenant_id = ? AND subject = ? AND source = ? AND entry_id = ?"),
        (row.tenant_id, row.subject, row.source, row.entry_id),
    )  # fmt: skip
    cur.execute(
        sql(uow, f"INSERT INTO sanctions_dismissals ({_DISMISSAL_COLS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        (row.tenant_id, row.subject, row.source, row.entry_id, row.id, row.name_digest,
         row.fingerprint, row.reviewer, row.reason, row.created_at),
    )  # fmt: skip


def replace_keys(uow: UnitOfWork, tenant_id: str, subject: str, keys: Iterable[str]) -> None:
    cur = uow.cursor()
    cur.execute(
        sql(uow, "DELETE FROM sanctions_subject_keys WHERE tenant_id = ? AND subject = ?"),
        (tenant_id, subject),
    )
    values = [(tenant_id, k, subject) for k in sorted(set(keys))]
    if values:
        cur.executemany(
            sql(uow, "INSERT INTO sanctions_subject_keys (tenant_id, key, subject) "
                "VALUES (?, ?, ?)"),
            values,
        )  # fmt: skip


def subjects_with_keys(uow: UnitOfWork, tenant_id: str, keys: Sequence[str]) -> set[str]:
    """The subjects of `tenant_id` with any of `keys` in the blocking index."""
    out: set[str] = set()
    cur = uow.cursor()
    if uow.sqlite:
        for part in chunks(keys, SQL_PARAMS_PER_STATEMENT_MAX - 1):
            marks = ",".join("?" * len(part))
            cur.execute(
                "SELECT subject FROM sanctions_subject_keys "
                f"WHERE tenant_id = ? AND key IN ({marks})",
                (tenant_id, *part),
            )
            out.update(str(s) for (s,) in cur.fetchall())
    elif keys:
        cur.execute(
            "SELECT subject FROM sanctions_subject_keys WHERE tenant_id = %s AND key = ANY(%s)",
            (tenant_id, list(keys)),
        )
        out.update(str(s) for (s,) in cur.fetchall())
    return out


def statuses(
    uow: UnitOfWork, tenant_id: str, subjects: Sequence[str], *, lock: bool = False
) -> dict[str, str]:
    """The screening status of those of `subjects` that were screened; with `lock`, their rows
    share-locked on PostgreSQL in subject order (a confirmation, which updates the row, waits
    for the reader's commit, or the reader for the confirmation's)."""
    out: dict[str, str] = {}
    cur = uow.cursor()
    suffix = " ORDER BY subject FOR SHARE" if lock and not uow.sqlite else ""
    for part in chunks(sorted(subjects), SQL_PARAMS_PER_STATEMENT_MAX - 1):
        marks = ",".join("?" * len(part))
        cur.execute(
            sql(uow, "SELECT subject, status FROM sanctions_subjects "
                f"WHERE tenant_id = ? AND subject IN ({marks}){suffix}"),
            (tenant_id, *part),
        )  # fmt: skip
        out.update((str(s), str(st)) for s, st in cur.fetchall())
    return out


# -- the subjects of pending payments (migration 0033) ---------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentSubjects:
    """Who pays (`customer:<id>`) and who is paid (a subject, or None) by a pending payment."""

    transfer_id: str
    tenant_id: str
    payer: str
    payee: str | None


def put_payment_subjects(uow: UnitOfWork, rows: Sequence[PaymentSubjects], at_us: int) -> None:
    if not rows:
        return
    uow.cursor().executemany(
        sql(uow, "INSERT INTO payment_subjects (transfer_id, tenant_id, payer, payee, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (transfer_id) DO NOTHING"),
        [(r.transfer_id, r.tenant_id, r.payer, r.payee, at_us) for r in rows],
    )  # fmt: skip


def payment_subjects(uow: UnitOfWork, transfer_ids: Sequence[str]) -> list[PaymentSubjects]:
    """The stored subjects of those of these transfers that were pending payments."""
    rows = fetch_in(
        uow,
        "SELECT transfer_id, tenant_id, payer, payee FROM payment_subjects",
        "transfer_id",
        sorted(set(transfer_ids)),
    )
    return [PaymentSubjects(*row) for row in rows]
