"""The SQL of the background jobs' leases (table `job_leases`, migration 0010).

A lease is taken with one conditional upsert: inserted when the job has no row, updated when
this owner holds it already or when its holder let it run out (it was killed, or stalled past
it). Whoever's statement commits first wins; the other's condition no longer holds and it
gets no row back. Times are integer microseconds since the epoch, from each process's clock
(as the idempotency and webhook leases are): hosts sharing a database keep their clocks in
step (NTP), and a lease is long against their drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.db.query import sql
from strongroom.db.uow import UnitOfWork

JOB_ERROR_CHARS_MAX = 200  # the column's width: an error's type name, never its message


@dataclass(frozen=True, slots=True)
class LeaseRow:
    """A job's lease and its last run, as the database holds them."""

    name: str
    owner: str
    lease_until: int
    last_success_at: int | None
    last_error_at: int | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """What a holder writes of its runs with its lease (None: it knows nothing newer)."""

    last_success_at: int | None = None
    last_error_at: int | None = None
    last_error: str | None = None


_COLS = "name, owner, lease_until, last_success_at, last_error_at, last_error"


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _row(r: Sequence[Any]) -> LeaseRow:
    name, owner, until, success, error_at, error = r
    return LeaseRow(name, owner, int(until), _optional_int(success), _optional_int(error_at), error)


def get(uow: UnitOfWork, name: str) -> LeaseRow | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {_COLS} FROM job_leases WHERE name = ?"), (name,))
    row = cur.fetchone()
    return None if row is None else _row(row)


def all_leases(uow: UnitOfWork) -> dict[str, LeaseRow]:
    cur = uow.cursor()
    cur.execute(f"SELECT {_COLS} FROM job_leases")
    return {r[0]: _row(r) for r in cur.fetchall()}


def take(
    uow: UnitOfWork, name: str, owner: str, *, now_us: int, lease_until: int, status: RunStatus
) -> bool:
    """Take or renew `name`'s lease for `owner` until `lease_until`, writing what `status`
    knows (what it does not know is left as it was): True when `owner` holds it now; False
    when another owner's lease has not run out at `now_us`."""
    assert lease_until > now_us
    error = None if status.last_error is None else status.last_error[:JOB_ERROR_CHARS_MAX]
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"INSERT INTO job_leases ({_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "lease_until = excluded.lease_until, "
            "last_success_at = COALESCE(excluded.last_success_at, job_leases.last_success_at), "
            "last_error_at = COALESCE(excluded.last_error_at, job_leases.last_error_at), "
            "last_error = COALESCE(excluded.last_error, job_leases.last_error) "
            "WHERE job_leases.owner = excluded.owner OR job_leases.lease_until <= ? "
            "RETURNING owner",
        ),
        (
            name,
            owner,
            lease_until,
            status.last_success_at,
            status.last_error_at,
            error,
            now_us,
        ),
    )
    row = cur.fetchone()
    return row is not None and row[0] == owner


def release(uow: UnitOfWork, name: str, owner: str, status: RunStatus) -> None:
    """End `owner`'s lease now (a clean stop), so that another process takes the job at once,
    writing what `status` knows of its runs (a run that ended as the process stopped is
    kept)."""
    error = None if status.last_error is None else status.last_error[:JOB_ERROR_CHARS_MAX]
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE job_leases SET lease_until = 0, "
            "last_success_at = COALESCE(?, last_success_at), "
            "last_error_at = COALESCE(?, last_error_at), "
            "last_error = COALESCE(?, last_error) "
            "WHERE name = ? AND owner = ?",
        ),
        (status.last_success_at, status.last_error_at, error, name, owner),
    )
