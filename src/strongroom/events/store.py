"""All of the events' and webhooks' SQL. Statements are written with `?` (see _sql).

The outbox write (insert_events) is on the ledger's hot path: one sequence allocation, one
executemany (SQLite) or COPY (PostgreSQL) per table per batch, nothing per row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from strongroom.db.query import chunks as _chunks
from strongroom.db.query import fetch_in as _fetch_in
from strongroom.db.query import sql as _sql
from strongroom.db.query import sqlite_insert_many as _insert_many
from strongroom.db.uow import UnitOfWork
from strongroom.events.model import (
    ALL_EVENTS,
    Attempt,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EndpointStatus,
    Event,
    RecordResult,
)
from strongroom.events.render import event_data
from strongroom.events.scheduling import DueEndpoint
from strongroom.ledger.store import TRANSFER_COLS

EVENT_COLS = "seq, id, ledger_id, type, data, created_at, transfer_id"
_EVENT_NAMES = tuple(EVENT_COLS.split(", "))
# Written as a literal where it is None in every row (db.query.sqlite_insert_many).
_EVENT_CONSTANT_CANDIDATES = (_EVENT_NAMES.index("data"), _EVENT_NAMES.index("transfer_id"))
_TRANSFER_WIDTH = len(TRANSFER_COLS.split(", "))
# What a read selects: the event, and its transfer's row to render its data from (the data of
# events written before the rows named their transfer is stored in `data`).
_EVENT_READ = "e.seq, e.id, e.ledger_id, e.type, e.data, e.created_at, " + ", ".join(
    f"t.{c}" for c in TRANSFER_COLS.split(", ")
)
_EVENT_FROM = "FROM events e LEFT JOIN transfers t ON t.id = e.transfer_id"
ENDPOINT_COLS = (
    "id, tenant_id, url, secret, enabled_events, status, failure_count, created_at, updated_at"
)
STATE_COLS = "event_id, endpoint_id, status, attempts, next_attempt_at, lease_until, updated_at"
ATTEMPT_COLS = (
    "event_id, endpoint_id, attempt, status, response_status, error, duration_ms, "
    "next_attempt_at, created_at"
)

# (id, ledger_id, type, data, created_at): an event before it has a seq.
# (id, ledger_id, type, data or None, created_at, transfer_id)
NewEventRow = tuple[str, str, str, str | None, int, str]
# (seq, id, type, created_at, tenant_id or None): an event waiting to be routed.
UnroutedRow = tuple[int, str, str, int, str | None]
# (created_at, attempt, event_id): where an attempt stands in an endpoint's attempts, which
# are listed newest first in this order (with the endpoint, the primary key: a total order).
AttemptKey = tuple[int, int, str]
ATTEMPTS_NEWEST_FIRST = "ORDER BY created_at DESC, attempt DESC, event_id DESC"
ATTEMPTS_OLDEST_FIRST = "ORDER BY created_at, attempt, event_id"


# -- the outbox ----------------------------------------------------------------------------


def insert_events(uow: UnitOfWork, rows: Sequence[NewEventRow]) -> None:
    """Append events in the caller's transaction, and queue them for routing."""
    assert rows
    cur = uow.cursor()
    if uow.sqlite:
        # The write transaction (BEGIN IMMEDIATE) holds SQLite's only write lock, so the
        # next seqs are free and are handed out in commit order.
        (last,) = cur.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        _insert_many(
            cur,
            "events",
            _EVENT_NAMES,
            [(last + 1 + i, *row) for i, row in enumerate(rows)],
            _EVENT_CONSTANT_CANDIDATES,
        )
        cur.execute(
            "INSERT INTO events_unrouted (seq) SELECT seq FROM events WHERE seq > ?", (last,)
        )
        return
    cur.execute("SELECT nextval('events_seq') FROM generate_series(1, %s)", (len(rows),))
    seqs = sorted(r[0] for r in cur.fetchall())
    with cur.copy(f"COPY events ({EVENT_COLS}) FROM STDIN") as copy:
        for seq, row in zip(seqs, rows, strict=True):
            copy.write_row((seq, *row))
    with cur.copy("COPY events_unrouted (seq) FROM STDIN") as copy:
        for seq in seqs:
            copy.write_row((seq,))


def insert_tenant_events(
    uow: UnitOfWork, tenant_id: str, rows: Sequence[tuple[str, str, str, int]]
) -> None:
    """(id, type, data, created_at): events of no ledger (a customer's), of `tenant_id`,
    appended in the caller's transaction and queued for routing. Off the ledger's hot path:
    a statement per event. Their ledger_id is '' (the column predates them)."""
    assert rows
    cur = uow.cursor()
    if uow.sqlite:
        # Under the write transaction's lock, as insert_events.
        (last,) = cur.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        seqs = [last + 1 + i for i in range(len(rows))]
    else:
        cur.execute("SELECT nextval('events_seq') FROM generate_series(1, %s)", (len(rows),))
        seqs = sorted(r[0] for r in cur.fetchall())
    cur.executemany(
        _sql(
            uow,
            "INSERT INTO events (seq, id, ledger_id, type, data, created_at, transfer_id, "
            "tenant_id) VALUES (?, ?, '', ?, ?, ?, NULL, ?)",
        ),
        [(seq, *row, tenant_id) for seq, row in zip(seqs, rows, strict=True)],
    )
    cur.executemany(
        _sql(uow, "INSERT INTO events_unrouted (seq) VALUES (?)"), [(seq,) for seq in seqs]
    )


def _event(row: Sequence[Any]) -> Event:
    data = row[4]
    if data is None:
        transfer = tuple(row[6 : 6 + _TRANSFER_WIDTH])
        data = event_data(row[3], transfer)
    return Event(int(row[0]), row[1], row[2], row[3], data, int(row[5]))


def get_event(uow: UnitOfWork, event_id: str) -> tuple[Event, str | None] | None:
    """The event and its tenant (that of its ledger, or its own for an event of no ledger)."""
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            f"SELECT {_EVENT_READ}, COALESCE(e.tenant_id, l.tenant_id) {_EVENT_FROM} "
            "LEFT JOIN ledgers l ON l.id = e.ledger_id WHERE e.id = ?",
        ),
        (event_id,),
    )
    row = cur.fetchone()
    return None if row is None else (_event(row), row[-1])


def list_events(
    uow: UnitOfWork,
    *,
    tenant_id: str | None,
    ledger_id: str | None,
    event_type: str | None,
    before_seq: int | None,
    limit: int,
    scan_rows_max: int,
) -> tuple[list[Event], int | None]:
    """Newest first, from before_seq (exclusive): up to `limit` events that pass the filters.
    A tenant's events are those of its ledgers (a join: a ledger's event carries the ledger id
    only, and a ledger's tenant never changes) and those of no ledger that name the tenant.
    No filter has an index of its own (one per tenant would cost every ledger write), so at
    most `scan_rows_max` events are examined, a range of the primary key: answers the events
    and, when that range was used up, the sequence number it ended at (the next range starts
    below it); None when the range reached the end."""
    where: list[str] = []
    params: list[Any] = []
    join = ""
    if tenant_id is not None:
        join = "LEFT JOIN ledgers l ON l.id = e.ledger_id"
        where.append("COALESCE(e.tenant_id, l.tenant_id) = ?")
        params.append(tenant_id)
    if ledger_id is not None:
        where.append("e.ledger_id = ?")
        params.append(ledger_id)
    if event_type is not None:
        where.append("e.type = ?")
        params.append(event_type)
    bound = "WHERE seq < ?" if before_seq is not None else ""
    bound_params = [before_seq] if before_seq is not None else []
    scanned = f"(SELECT seq FROM events {bound} ORDER BY seq DESC LIMIT ?) AS range_"
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            f"SELECT {_EVENT_READ} FROM {scanned} JOIN events e ON e.seq = range_.seq "
            f"LEFT JOIN transfers t ON t.id = e.transfer_id {join} {clause} "
            "ORDER BY e.seq DESC LIMIT ?",
        ),
        (*bound_params, scan_rows_max, *params, limit),
    )
    rows = [_event(r) for r in cur.fetchall()]
    if len(rows) >= limit:
        return rows, None
    cur.execute(
        _sql(uow, f"SELECT MIN(range_.seq), COUNT(*) FROM {scanned}"),
        (*bound_params, scan_rows_max),
    )
    lowest, count = cur.fetchone()
    return rows, (int(lowest) if count == scan_rows_max else None)


def events_by_id(uow: UnitOfWork, event_ids: Sequence[str]) -> dict[str, Event]:
    rows = _fetch_in(uow, f"SELECT {_EVENT_READ} {_EVENT_FROM}", "e.id", event_ids)
    return {r[1]: _event(r) for r in rows}


# -- routing: events to delivery states ----------------------------------------------------


def unrouted_events(uow: UnitOfWork, limit: int) -> list[UnroutedRow]:
    """The oldest events not yet routed, with their tenants; locked on PostgreSQL (skipping
    those another dispatcher is routing)."""
    lock = "" if uow.sqlite else "FOR UPDATE OF u SKIP LOCKED"
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            "SELECT u.seq, e.id, e.type, e.created_at, COALESCE(e.tenant_id, l.tenant_id) "
            "FROM events_unrouted u "
            "JOIN events e ON e.seq = u.seq LEFT JOIN ledgers l ON l.id = e.ledger_id "
            f"ORDER BY u.seq LIMIT ? {lock}",
        ),
        (limit,),
    )
    return [(int(r[0]), r[1], r[2], int(r[3]), r[4]) for r in cur.fetchall()]


def enabled_endpoints(uow: UnitOfWork, tenant_ids: Sequence[str]) -> list[Endpoint]:
    """Locked against deletion on PostgreSQL (FOR KEY SHARE, which leaves updates free), so
    that no delivery is queued for an endpoint deleted meanwhile: delete_endpoint waits for
    the routing transaction and then removes what it queued, or goes first and the endpoint
    is not found here."""
    lock = "" if uow.sqlite else "FOR KEY SHARE"
    rows = _fetch_in(
        uow,
        f"SELECT {ENDPOINT_COLS} FROM webhook_endpoints",
        "tenant_id",
        tenant_ids,
        f"AND status = '{EndpointStatus.ENABLED.value}' {lock}",
    )
    return [_endpoint(r) for r in rows]


def insert_deliveries(uow: UnitOfWork, rows: Sequence[tuple[str, str, int, int]]) -> None:
    """(event_id, endpoint_id, event_seq, now): new pending deliveries, due now. A delivery
    that exists already is left alone."""
    if not rows:
        return
    uow.cursor().executemany(
        _sql(
            uow,
            "INSERT INTO webhook_delivery_state (event_id, endpoint_id, event_seq, status, "
            f"attempts, next_attempt_at, lease_until, lease_owner, updated_at) VALUES "
            f"(?, ?, ?, '{DeliveryStatus.PENDING.value}', 0, ?, 0, NULL, ?) "
            "ON CONFLICT DO NOTHING",
        ),
        [(event_id, endpoint_id, seq, now, now) for event_id, endpoint_id, seq, now in rows],
    )


def delete_unrouted(uow: UnitOfWork, seqs: Sequence[int]) -> None:
    cur = uow.cursor()
    if uow.sqlite:
        for part in _chunks(seqs):
            cur.execute(
                f"DELETE FROM events_unrouted WHERE seq IN ({','.join('?' * len(part))})", part
            )
    else:
        cur.execute("DELETE FROM events_unrouted WHERE seq = ANY(%s)", (list(seqs),))


# -- claiming and recording attempts -------------------------------------------------------


def has_unrouted(uow: UnitOfWork) -> bool:
    cur = uow.cursor()
    cur.execute("SELECT 1 FROM events_unrouted LIMIT 1")
    return cur.fetchone() is not None


def backlog(uow: UnitOfWork) -> tuple[int, int]:
    """(events not yet routed to endpoints, deliveries still pending), for metrics."""
    cur = uow.cursor()
    cur.execute("SELECT COUNT(*) FROM events_unrouted")
    unrouted = int(cur.fetchone()[0])
    cur.execute(
        f"SELECT COUNT(*) FROM webhook_delivery_state "
        f"WHERE status = '{DeliveryStatus.PENDING.value}'"
    )
    return unrouted, int(cur.fetchone()[0])


# A delivery is due for a claim: pending, its time come, and no live lease on it (`?`: now,
# twice). Rows of `webhook_delivery_state s`; the index webhook_delivery_endpoint_due serves
# it per endpoint, oldest first.
_DUE = (
    f"s.status = '{DeliveryStatus.PENDING.value}' AND s.next_attempt_at <= ? AND s.lease_until <= ?"
)


def due_endpoints(uow: UnitOfWork, *, now_us: int, count_max: int) -> list[DueEndpoint]:
    """The enabled endpoints that have due deliveries: for each, when its oldest due delivery
    was due, and how many are due (counted up to `count_max`). One probe of the index per
    enabled endpoint, each walking past that endpoint's deliveries in flight at most, however
    long its backlog: the cost grows with the number of enabled endpoints, not of deliveries."""
    assert count_max >= 1
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            "SELECT w.id, w.tenant_id, "
            "(SELECT s.next_attempt_at FROM webhook_delivery_state s "
            f"WHERE s.endpoint_id = w.id AND {_DUE} ORDER BY s.next_attempt_at LIMIT 1), "
            "(SELECT COUNT(*) FROM (SELECT 1 FROM webhook_delivery_state s "
            f"WHERE s.endpoint_id = w.id AND {_DUE} LIMIT ?) AS counted) "
            f"FROM webhook_endpoints w WHERE w.status = '{EndpointStatus.ENABLED.value}'",
        ),
        (now_us, now_us, now_us, now_us, count_max),
    )
    # Filtered here: in SQL, a filter on the first probe would run it twice.
    return [
        DueEndpoint(r[0], r[1], int(r[2]), int(r[3])) for r in cur.fetchall() if r[2] is not None
    ]


def claim_due(
    uow: UnitOfWork,
    *,
    endpoint_id: str,
    now_us: int,
    lease_until: int,
    owner: str,
    limit: int,
) -> list[tuple[str, str, int]]:
    """Lease up to `limit` of an enabled endpoint's due deliveries, oldest first, to `owner`
    until `lease_until` and count the attempt; returns (event_id, endpoint_id, attempt
    number). A delivery whose lease has not run out is not due, so two dispatchers never
    send the same attempt; on PostgreSQL rows another dispatcher is claiming are skipped,
    not waited for."""
    due = (
        "SELECT s.event_id, s.endpoint_id FROM webhook_delivery_state s "
        "JOIN webhook_endpoints w ON w.id = s.endpoint_id "
        f"WHERE s.endpoint_id = ? AND {_DUE} "
        f"AND w.status = '{EndpointStatus.ENABLED.value}' ORDER BY s.next_attempt_at LIMIT ?"
    )
    cur = uow.cursor()
    if uow.sqlite:
        # One writer at a time: the rows picked are the rows updated.
        cur.execute(
            "UPDATE webhook_delivery_state SET lease_until = ?, lease_owner = ?, "
            f"attempts = attempts + 1, updated_at = ? WHERE (event_id, endpoint_id) IN ({due}) "
            "RETURNING event_id, endpoint_id, attempts",
            (lease_until, owner, now_us, endpoint_id, now_us, now_us, limit),
        )
    else:
        # Materialized, so the pick runs once: as an IN (subquery), PostgreSQL may run it
        # again for the update, and with SKIP LOCKED a second run picks other rows (more
        # than `limit` in all).
        cur.execute(
            f"WITH picked AS MATERIALIZED ({due} FOR UPDATE OF s SKIP LOCKED) "
            "UPDATE webhook_delivery_state d SET lease_until = ?, lease_owner = ?, "
            "attempts = d.attempts + 1, updated_at = ? FROM picked "
            "WHERE d.event_id = picked.event_id AND d.endpoint_id = picked.endpoint_id "
            "RETURNING d.event_id, d.endpoint_id, d.attempts".replace("?", "%s"),
            (endpoint_id, now_us, now_us, limit, lease_until, owner, now_us),
        )
    claimed = [(r[0], r[1], int(r[2])) for r in cur.fetchall()]
    assert len(claimed) <= limit
    return claimed


def lock_endpoints(uow: UnitOfWork, endpoint_ids: Sequence[str]) -> None:
    """Lock endpoints before recording attempts to them (PostgreSQL; SQLite has one writer).
    In id order, and before any delivery state, so that two dispatchers, or a dispatcher
    and delete_endpoint (endpoint first, then its deliveries), always lock in the same order
    and never deadlock; and so that an endpoint is not deleted between record_attempt's
    check that the delivery exists and its insert. FOR NO KEY UPDATE is the lock
    record_attempt's update of the endpoint takes anyway."""
    if not uow.sqlite:
        _fetch_in(
            uow,
            "SELECT id FROM webhook_endpoints",
            "id",
            sorted(endpoint_ids),
            "ORDER BY id FOR NO KEY UPDATE",
        )


def record_attempt(
    uow: UnitOfWork,
    attempt: Attempt,
    *,
    owner: str,
    delivery_status: DeliveryStatus,
    disable_endpoint: bool,
    failures_max: int,
) -> RecordResult:
    """Record an attempt, settle the delivery if it is still pending and this owner still
    holds its lease for this attempt (or the attempt succeeded), and count the endpoint's
    consecutive failures (disabling it at failures_max or when `disable_endpoint`). The
    caller holds the endpoint's lock (lock_endpoints).

    An attempt whose delivery no longer exists (its endpoint was deleted while the request
    was in flight) is not recorded: nothing of a deleted endpoint comes back."""
    cur = uow.cursor()
    a = attempt
    cur.execute(
        _sql(
            uow,
            "SELECT 1 FROM webhook_delivery_state WHERE event_id = ? AND endpoint_id = ?",
        ),
        (a.event_id, a.endpoint_id),
    )
    if cur.fetchone() is None:
        return RecordResult.DELIVERY_GONE
    cur.execute(
        _sql(uow, f"INSERT INTO webhook_deliveries ({ATTEMPT_COLS}) VALUES (?,?,?,?,?,?,?,?,?)"),
        (
            a.event_id,
            a.endpoint_id,
            a.attempt,
            a.status.value,
            a.response_status,
            a.error,
            a.duration_ms,
            a.next_attempt_at,
            a.created_at,
        ),
    )
    cur.execute(
        _sql(
            uow,
            "UPDATE webhook_delivery_state SET status = ?, next_attempt_at = ?, lease_until = 0, "
            "lease_owner = NULL, updated_at = ? "
            f"WHERE event_id = ? AND endpoint_id = ? AND status = '{DeliveryStatus.PENDING.value}' "
            "AND ((lease_owner = ? AND attempts = ?) OR ?)",
        ),
        (
            delivery_status.value,
            a.next_attempt_at if a.next_attempt_at is not None else a.created_at,
            a.created_at,
            a.event_id,
            a.endpoint_id,
            owner,
            a.attempt,
            # A success settles the delivery even after its lease was lost (and it clears the
            # new owner's lease, so that owner's attempt settles nothing): once a success is
            # on record, the delivery is never claimed again.
            a.status is AttemptStatus.SUCCEEDED,
        ),
    )
    settled = bool(cur.rowcount)
    if a.status is AttemptStatus.SUCCEEDED:
        cur.execute(
            _sql(
                uow,
                "UPDATE webhook_endpoints SET failure_count = 0, updated_at = ? "
                "WHERE id = ? AND failure_count <> 0",
            ),
            (a.created_at, a.endpoint_id),
        )
    else:
        cur.execute(
            _sql(
                uow,
                "UPDATE webhook_endpoints SET failure_count = failure_count + 1, "
                f"status = CASE WHEN ? OR failure_count + 1 >= ? "
                f"THEN '{EndpointStatus.DISABLED.value}' ELSE status END, updated_at = ? "
                "WHERE id = ?",
            ),
            (disable_endpoint, failures_max, a.created_at, a.endpoint_id),
        )
    return RecordResult.SETTLED if settled else RecordResult.LEASE_LOST


def _attempt(row: Sequence[Any]) -> Attempt:
    return Attempt(
        event_id=row[0],
        endpoint_id=row[1],
        attempt=int(row[2]),
        status=AttemptStatus(row[3]),
        response_status=row[4],
        error=row[5],
        duration_ms=int(row[6]),
        next_attempt_at=row[7],
        created_at=int(row[8]),
    )


def _by_event_and_endpoint(event_id: str | None, endpoint_id: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause (or none) and its parameters for the filters given."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("event_id", event_id), ("endpoint_id", endpoint_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


def list_attempts(
    uow: UnitOfWork, *, event_id: str | None, endpoint_id: str | None, limit: int
) -> list[Attempt]:
    """Newest first."""
    clause, params = _by_event_and_endpoint(event_id, endpoint_id)
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            f"SELECT {ATTEMPT_COLS} FROM webhook_deliveries {clause} "
            f"{ATTEMPTS_NEWEST_FIRST}, endpoint_id DESC LIMIT ?",
        ),
        (*params, limit),
    )
    return [_attempt(r) for r in cur.fetchall()]


def attempt_key(
    uow: UnitOfWork, *, event_id: str, endpoint_id: str, attempt: int
) -> AttemptKey | None:
    """Where a recorded attempt stands in its endpoint's list; None if there is none."""
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            "SELECT created_at FROM webhook_deliveries "
            "WHERE event_id = ? AND endpoint_id = ? AND attempt = ?",
        ),
        (event_id, endpoint_id, attempt),
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), attempt, event_id)


def list_endpoint_attempts(
    uow: UnitOfWork,
    endpoint_id: str,
    *,
    after: AttemptKey | None,
    before: AttemptKey | None,
    limit: int,
) -> list[Attempt]:
    """A page of an endpoint's attempts by keyset: newest first, those after `after` (or
    from the newest); with `before`, the ones just before it, nearest it first (oldest
    first: the caller turns the page around)."""
    assert after is None or before is None
    where = "endpoint_id = ?"
    params: list[Any] = [endpoint_id]
    order = ATTEMPTS_NEWEST_FIRST
    # The bound on created_at alone is implied by the row comparison; it is there so that
    # the index (endpoint_id, created_at) narrows the scan.
    if after is not None:
        where += " AND created_at <= ? AND (created_at, attempt, event_id) < (?, ?, ?)"
        params.extend((after[0], *after))
    if before is not None:
        where += " AND created_at >= ? AND (created_at, attempt, event_id) > (?, ?, ?)"
        params.extend((before[0], *before))
        order = ATTEMPTS_OLDEST_FIRST
    cur = uow.cursor()
    cur.execute(
        _sql(uow, f"SELECT {ATTEMPT_COLS} FROM webhook_deliveries WHERE {where} {order} LIMIT ?"),
        (*params, limit),
    )
    return [_attempt(r) for r in cur.fetchall()]


def list_deliveries(
    uow: UnitOfWork, *, event_id: str | None, endpoint_id: str | None, limit: int
) -> list[Delivery]:
    """Oldest event first."""
    clause, params = _by_event_and_endpoint(event_id, endpoint_id)
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            f"SELECT {STATE_COLS} FROM webhook_delivery_state {clause} "
            "ORDER BY event_seq, endpoint_id LIMIT ?",
        ),
        (*params, limit),
    )
    return [
        Delivery(r[0], r[1], DeliveryStatus(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]))
        for r in cur.fetchall()
    ]


# -- endpoints -----------------------------------------------------------------------------


def _endpoint(row: Sequence[Any]) -> Endpoint:
    events = None if row[4] == ALL_EVENTS else tuple(json.loads(row[4]))
    return Endpoint(
        id=row[0],
        tenant_id=row[1],
        url=row[2],
        secret=row[3],
        enabled_events=events,
        status=EndpointStatus(row[5]),
        failure_count=int(row[6]),
        created_at=int(row[7]),
        updated_at=int(row[8]),
    )


def insert_endpoint(uow: UnitOfWork, e: Endpoint, created_by: str | None = None) -> None:
    events = ALL_EVENTS if e.enabled_events is None else json.dumps(list(e.enabled_events))
    uow.cursor().execute(
        _sql(
            uow,
            f"INSERT INTO webhook_endpoints ({ENDPOINT_COLS}, created_by) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
        ),
        (
            e.id,
            e.tenant_id,
            e.url,
            e.secret,
            events,
            e.status.value,
            e.failure_count,
            e.created_at,
            e.updated_at,
            created_by,
        ),
    )


def get_endpoint(uow: UnitOfWork, endpoint_id: str, *, lock: bool = False) -> Endpoint | None:
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur = uow.cursor()
    cur.execute(
        _sql(uow, f"SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = ?{suffix}"),
        (endpoint_id,),
    )
    row = cur.fetchone()
    return None if row is None else _endpoint(row)


def endpoints_by_id(uow: UnitOfWork, endpoint_ids: Sequence[str]) -> dict[str, Endpoint]:
    rows = _fetch_in(uow, f"SELECT {ENDPOINT_COLS} FROM webhook_endpoints", "id", endpoint_ids)
    return {r[0]: _endpoint(r) for r in rows}


def list_endpoints(
    uow: UnitOfWork, tenant_id: str | None, after_id: str | None, limit: int
) -> list[Endpoint]:
    where: list[str] = []
    params: list[Any] = []
    if tenant_id is not None:
        where.append("tenant_id = ?")
        params.append(tenant_id)
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cur = uow.cursor()
    cur.execute(
        _sql(uow, f"SELECT {ENDPOINT_COLS} FROM webhook_endpoints {clause} ORDER BY id LIMIT ?"),
        (*params, limit),
    )
    return [_endpoint(r) for r in cur.fetchall()]


def count_endpoints(uow: UnitOfWork, tenant_id: str) -> int:
    cur = uow.cursor()
    cur.execute(
        _sql(uow, "SELECT COUNT(*) FROM webhook_endpoints WHERE tenant_id = ?"), (tenant_id,)
    )
    return int(cur.fetchone()[0])


def set_endpoint_status(
    uow: UnitOfWork, endpoint_id: str, status: EndpointStatus, now_us: int
) -> None:
    """Enabling also forgets the failures that disabled it."""
    uow.cursor().execute(
        _sql(
            uow,
            "UPDATE webhook_endpoints SET status = ?, updated_at = ?, "
            "failure_count = CASE WHEN ? THEN 0 ELSE failure_count END WHERE id = ?",
        ),
        (status.value, now_us, status is EndpointStatus.ENABLED, endpoint_id),
    )


def delete_endpoint(uow: UnitOfWork, endpoint_id: str) -> None:
    """The endpoint, its delivery states and its attempts. The caller holds the endpoint's
    lock (get_endpoint(lock=True)): on PostgreSQL a dispatcher recording an attempt to it
    (lock_endpoints) or routing events to it (enabled_endpoints) has committed before these
    statements run, or waits and then finds it gone. Unbounded by design: deleting an
    endpoint removes all it has, in one transaction."""
    cur = uow.cursor()
    for statement in (
        "DELETE FROM webhook_delivery_state WHERE endpoint_id = ?",
        "DELETE FROM webhook_deliveries WHERE endpoint_id = ?",
        "DELETE FROM webhook_endpoints WHERE id = ?",
    ):
        cur.execute(_sql(uow, statement), (endpoint_id,))


def clear_secrets(uow: UnitOfWork, sealed_prefix: str, limit: int) -> list[tuple[str, str, str]]:
    """Up to `limit` endpoints whose secret is still stored in clear (written before secrets
    were sealed): (id, tenant_id, secret)."""
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            "SELECT id, tenant_id, secret FROM webhook_endpoints "
            "WHERE substr(secret, 1, ?) <> ? ORDER BY id LIMIT ?",
        ),
        (len(sealed_prefix), sealed_prefix, limit),
    )
    return [(r[0], r[1], r[2]) for r in cur.fetchall()]


def set_secret(uow: UnitOfWork, endpoint_id: str, old: str, new: str) -> int:
    cur = uow.cursor()
    cur.execute(
        _sql(uow, "UPDATE webhook_endpoints SET secret = ? WHERE id = ? AND secret = ?"),
        (new, endpoint_id, old),
    )
    return int(cur.rowcount)


# -- retention -----------------------------------------------------------------------------


def _delete_in(uow: UnitOfWork, table: str, column: str, keys: Sequence[Any]) -> int:
    """DELETE FROM table WHERE column IN keys; the count deleted."""
    if not keys:
        return 0
    cur = uow.cursor()
    if not uow.sqlite:
        cur.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", (list(keys),))
        return int(cur.rowcount)
    deleted = 0
    for part in _chunks(keys):
        cur.execute(f"DELETE FROM {table} WHERE {column} IN ({','.join('?' * len(part))})", part)
        deleted += int(cur.rowcount)
    return deleted


def endpoint_ids(uow: UnitOfWork) -> list[str]:
    cur = uow.cursor()
    cur.execute("SELECT id FROM webhook_endpoints ORDER BY id")
    return [r[0] for r in cur.fetchall()]


def prune_attempts(uow: UnitOfWork, endpoint_id: str, before_us: int, limit: int) -> int:
    """Delete up to `limit` of an endpoint's oldest attempts made before `before_us` (through
    the index on (endpoint_id, created_at)); the count deleted. A pending delivery loses its
    old attempts only: its state keeps their count, so the next attempt's number is new."""
    cur = uow.cursor()
    cur.execute(
        _sql(
            uow,
            "SELECT event_id, attempt FROM webhook_deliveries "
            "WHERE endpoint_id = ? AND created_at < ? ORDER BY created_at LIMIT ?",
        ),
        (endpoint_id, before_us, limit),
    )
    old = [(r[0], int(r[1])) for r in cur.fetchall()]
    if old:
        cur.executemany(
            _sql(
                uow,
                "DELETE FROM webhook_deliveries "
                "WHERE event_id = ? AND endpoint_id = ? AND attempt = ?",
            ),
            [(event_id, endpoint_id, attempt) for event_id, attempt in old],
        )
    return len(old)


def prune_events(
    uow: UnitOfWork, *, after_seq: int, before_us: int, limit: int
) -> tuple[int, int, int, int | None]:
    """Delete, from the `limit` events after `after_seq` (a range of the primary key, oldest
    first), those created before `before_us` with their settled delivery states and their
    attempts. Kept: an event still to be routed (events_unrouted) or with a pending delivery
    (the dispatcher sends it from its row), and the newest event of all (SQLite numbers the
    next events from it: deleting it would hand its seq out again, and listing cursors hold
    seqs). Answers (events, deliveries, attempts) deleted and the seq to go on after, or None
    when the range reached an event created at or after `before_us`, or the end: events are
    numbered in commit order, so the ones after it are as new (on PostgreSQL, a transaction
    that committed later with an earlier time is pruned by the next pass)."""
    cur = uow.cursor()
    cur.execute(
        _sql(uow, "SELECT seq, id, created_at FROM events WHERE seq > ? ORDER BY seq LIMIT ?"),
        (after_seq, limit),
    )
    rows = [(int(r[0]), r[1], int(r[2])) for r in cur.fetchall()]
    cur.execute("SELECT MAX(seq) FROM events")
    (newest,) = cur.fetchone()
    old = []
    ended = len(rows) < limit
    for seq, event_id, created_at in rows:
        if created_at >= before_us or seq == newest:
            ended = True
            break
        old.append((seq, event_id))
    if not old:
        assert ended
        return 0, 0, 0, None
    unrouted = {int(r[0]) for r in _fetch_in(uow, "SELECT seq FROM events_unrouted", "seq",
                                             [seq for seq, _ in old])}  # fmt: skip
    pending = {
        r[0]
        for r in _fetch_in(
            uow,
            "SELECT event_id FROM webhook_delivery_state",
            "event_id",
            [event_id for _, event_id in old],
            f"AND status = '{DeliveryStatus.PENDING.value}'",
        )
    }
    gone = [(seq, e) for seq, e in old if seq not in unrouted and e not in pending]
    gone_ids = [e for _, e in gone]
    if not uow.sqlite:
        # PostgreSQL: the endpoints first, in id order, as delete_endpoint locks its endpoint
        # before its deliveries (FOR KEY SHARE: it waits for us, or we for it, and a
        # dispatcher recording attempts, FOR NO KEY UPDATE, is not held up); then the states
        # before the attempts, in delete_endpoint's order.
        endpoints = _fetch_in(
            uow, "SELECT DISTINCT endpoint_id FROM webhook_delivery_state", "event_id", gone_ids
        )
        _fetch_in(
            uow,
            "SELECT id FROM webhook_endpoints",
            "id",
            sorted(r[0] for r in endpoints),
            "ORDER BY id FOR KEY SHARE",
        )
    deliveries = _delete_in(uow, "webhook_delivery_state", "event_id", gone_ids)
    attempts = _delete_in(uow, "webhook_deliveries", "event_id", gone_ids)
    events = _delete_in(uow, "events", "seq", [seq for seq, _ in gone])
    assert events == len(gone)
    return events, deliveries, attempts, None if ended else old[-1][0]
