"""All of the ledger's SQL. SQLite and PostgreSQL share the statements where they can.

The hot path (load a batch's state, write its rows) is set-oriented: one statement per table
per batch (chunked IN lists on SQLite, arrays and COPY on PostgreSQL), no per-row round trips.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from strongroom.core.limits import (
    ACCOUNT_CACHE_MAX,
    ID_BLOCK_BITS,
    NATIVE_INT_MAX,
    SQL_PARAMS_PER_STATEMENT_MAX,
    VERIFY_FETCH_ROWS,
)
from strongroom.core.money import from_stored_int, to_stored_int
from strongroom.db.query import chunks, fetch_in, sql, sqlite_insert_many
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.engine import AccountState, BatchState, Writes
from strongroom.ledger.model import (
    Action,
    NewTransfer,
    Status,
    TransferRecord,
    record_from_row,
)

# `closed` as AccountState reads it: 0 open, 1 closed, 2 frozen (engine.ACCOUNT_*).
ACCOUNT_STATE_COLS = (
    "id, ledger_id, asset, normal_balance, flags, "
    "CASE WHEN closed THEN 1 WHEN frozen THEN 2 ELSE 0 END, debits_posted, credits_posted, "
    "debits_pending, credits_pending, version, last_entry_id, updated_at, customer_id"
)
TRANSFER_COLS = (
    "seq, id, ledger_id, action, status, debit_account_id, credit_account_id, amount, legs, "
    "target_id, pending, timeout_s, expires_at, metadata, created_at, effective_at"
)
ENTRY_COLS = (
    "id, account_id, version, prev_id, transfer_id, direction, amount, pending_delta, "
    "debits_posted, credits_posted, debits_pending, credits_pending, created_at"
)
_TRANSFER_NAMES = tuple(TRANSFER_COLS.split(", "))
_ENTRY_NAMES = tuple(ENTRY_COLS.split(", "))
# The columns of a written row that may be None or a bool (see db.query.sqlite_insert_many).
_TRANSFER_CONSTANT_CANDIDATES = tuple(
    _TRANSFER_NAMES.index(c)
    for c in (
        "debit_account_id",
        "credit_account_id",
        "legs",
        "target_id",
        "pending",
        "expires_at",
        "metadata",
        "effective_at",
    )
)
_ENTRY_CONSTANT_CANDIDATES = (_ENTRY_NAMES.index("prev_id"),)
ACCOUNT_COLS = (
    "id, ledger_id, name, asset, normal_balance, flags, closed, metadata, debits_posted, "
    "credits_posted, debits_pending, credits_pending, version, last_entry_id, created_at, "
    "updated_at, customer_id"
)


def account_state_from_row(row: Sequence[Any]) -> AccountState:
    dp, cp, dpend, cpend = row[6], row[7], row[8], row[9]
    wide = not (type(dp) is type(cp) is type(dpend) is type(cpend) is int)
    if wide:  # a counter in its wide stored form (SQLite), see core.money.to_stored_int
        dp, cp, dpend, cpend = (from_stored_int(v) for v in (dp, cp, dpend, cpend))
    wide = wide or max(dp, cp, dpend, cpend) > NATIVE_INT_MAX  # PostgreSQL's NUMERIC
    return AccountState(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        int(row[5]),
        dp,
        cp,
        dpend,
        cpend,
        row[10],
        row[11],
        row[12],
        wide,
        row[13],
    )


def _stored_rows(rows: Sequence[Sequence[Any]], money: slice) -> list[tuple[Any, ...]]:
    """SQLite: rows with their money columns in the stored form (core.money.to_stored_int)."""
    start, stop = money.start, money.stop
    return [(*r[:start], *(to_stored_int(v) for v in r[start:stop]), *r[stop:]) for r in rows]


# An Enum member read through its class costs a lookup through the metaclass.
_REVERSE = Action.REVERSE

# Where the money columns are in each row the engine writes.
TRANSFER_MONEY = slice(7, 8)
ENTRY_MONEY = slice(6, 12)
ACCOUNT_UPDATE_MONEY = slice(0, 4)


class AccountCache:
    """SQLite only: account states as this process last committed them.

    Valid only while no other transaction changed an account in between. Every transaction
    that changes an account takes the next id block (allocate_id_block) under SQLite's write
    lock, so "the block we were given is the one after our last commit" proves that nobody
    else wrote since, in this process or another. Anything else empties the cache. PostgreSQL
    has concurrent writers and never uses it.
    """

    def __init__(self, max_size: int = ACCOUNT_CACHE_MAX) -> None:
        self.states: dict[str, AccountState] = {}
        self._max_size = max_size
        self._last_block: int | None = None

    def begin(self, block: int) -> None:
        if self._last_block is None or block != self._last_block + 1:
            self.states.clear()
        self._last_block = None  # until this transaction commits

    def committed(self, block: int, dirty: Sequence[AccountState]) -> None:
        for account in dirty:
            account.dirty = False
        if len(self.states) > self._max_size:
            self.states.clear()
        self._last_block = block

    def invalidate(self) -> None:
        self.states.clear()
        self._last_block = None


def allocate_id_block(uow: UnitOfWork) -> int:
    """Take the next block number. Each block holds 2^ID_BLOCK_BITS ids for the entries and
    transfer sequence numbers of one transaction; see id_base()."""
    cur = uow.cursor()
    if uow.sqlite:
        row = cur.execute(
            "UPDATE id_blocks SET value = value + 1 WHERE name = 'ledger' RETURNING value"
        ).fetchone()
        if row is None:
            cur.execute("INSERT INTO id_blocks (name, value) VALUES ('ledger', 1)")
            block = 1
        else:
            block = row[0]
    else:
        cur.execute("SELECT nextval('id_block_seq')")
        block = cur.fetchone()[0]
    return int(block)


def id_base(block: int) -> int:
    return block << ID_BLOCK_BITS


def load_batch_state(
    uow: UnitOfWork,
    batch: Sequence[NewTransfer],
    now_us: Callable[[], int],
    cache: AccountCache | None = None,
) -> BatchState:
    """Read (and on PostgreSQL lock) everything the batch touches, in a fixed order:
    target transfers, then accounts, each sorted by id, so concurrent batches cannot deadlock
    on each other. Accounts come from `cache` where it holds them (SQLite). The batch's time is
    read from `now_us` once every lock is held: a post that waited for a lock past its pending
    transfer's deadline finds it expired, as the expiry job would have (it skips locked rows)."""
    block = allocate_id_block(uow)
    if cache is not None:
        cache.begin(block)
    targets = {t.target_id for t in batch if t.target_id is not None}
    ledger_ids = {t.ledger_id for t in batch}
    transfers: dict[str, TransferRecord] = {}
    lock = "" if uow.sqlite else "FOR UPDATE"
    if targets:
        for row in fetch_in(
            uow,
            f"SELECT {TRANSFER_COLS} FROM transfers",
            "id",
            sorted(targets),
            f"ORDER BY id {lock}",
        ):
            rec = record_from_row(row)
            transfers[rec.id] = rec
    # The batch's own ids, in batch order without repeats. This read takes no lock, so its
    # order does not matter (sorting 8,190 ids cost more than the rest of this function).
    own = dict.fromkeys([t.id for t in batch])
    rest = [i for i in own if i not in transfers] if transfers else list(own)
    for row in fetch_in(uow, f"SELECT {TRANSFER_COLS} FROM transfers", "id", rest):
        rec = record_from_row(row)
        transfers[rec.id] = rec
    reversed_amounts: dict[str, int] = {}
    # Only a batch that names targets can hold a reversal (most hold none: no pass over them).
    reversal_targets = (
        sorted({t.target_id for t in batch if t.action is _REVERSE and t.target_id})
        if targets
        else []
    )
    # Summed here, not in SQL: SQLite's SUM would overflow (or see blobs) past 64 bits.
    for target_id, amount in fetch_in(
        uow,
        "SELECT target_id, amount FROM transfers",
        "target_id",
        reversal_targets,
        f"AND action = {int(Action.REVERSE)}",
    ):
        reversed_amounts[target_id] = reversed_amounts.get(target_id, 0) + from_stored_int(amount)
    account_ids: set[str] = set()
    for t in batch:
        if t.legs is not None:
            account_ids.update(leg.account_id for leg in t.legs)
        elif t.debit_account_id is not None:
            account_ids.add(t.debit_account_id)
            account_ids.add(t.credit_account_id)  # type: ignore[arg-type]
    for rec in transfers.values():
        if rec.id in targets:
            account_ids.update(leg.account_id for leg in rec.effective_legs())
    accounts = load_accounts_for_update(uow, account_ids, cache)
    ledgers = {row[0] for row in fetch_in(uow, "SELECT id FROM ledgers", "id", sorted(ledger_ids))}
    return BatchState(
        accounts=accounts,
        transfers=transfers,
        reversed_amounts=reversed_amounts,
        ledgers=ledgers,
        now_us=now_us(),
        entry_id_next=id_base(block) + 1,
        seq_next=id_base(block) + 1,
        block=block,
    )


def load_due_pending(uow: UnitOfWork, now_us: int, limit: int) -> list[TransferRecord]:
    lock = "" if uow.sqlite else "FOR UPDATE SKIP LOCKED"
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {TRANSFER_COLS} FROM transfers WHERE status = 1 AND expires_at IS NOT NULL "
            f"AND expires_at <= ? ORDER BY expires_at, id LIMIT ? {lock}",
        ),
        (now_us, limit),
    )
    return [record_from_row(row) for row in cur.fetchall()]


def load_accounts_for_update(
    uow: UnitOfWork, account_ids: Iterable[str], cache: AccountCache | None = None
) -> dict[str, AccountState]:
    """On PostgreSQL the rows are locked (FOR UPDATE) in id order."""
    wanted = set(account_ids)
    accounts: dict[str, AccountState] = {}
    if cache is not None:
        cached = cache.states
        for account_id in wanted:
            state = cached.get(account_id)
            if state is not None:
                accounts[account_id] = state
        wanted -= accounts.keys()
    lock = "" if uow.sqlite else "FOR UPDATE"
    for row in fetch_in(
        uow,
        f"SELECT {ACCOUNT_STATE_COLS} FROM accounts",
        "id",
        sorted(wanted),
        f"ORDER BY id {lock}",
    ):
        state = account_state_from_row(row)
        accounts[state.id] = state
        if cache is not None:
            cache.states[state.id] = state
    return accounts


def insert_transfers_sqlite(
    cur: Any,
    transfer_rows: Sequence[Sequence[Any]],
    entry_rows: Sequence[Sequence[Any]],
    actor_ref: int | None = None,
) -> None:
    """SQLite: insert transfer and entry rows (money already in stored form) the fastest way
    known (db.query.sqlite_insert_many). The ledger benchmark's storage-limit reference inserts
    its rows with this too, so that the reference is the limit of the same inserts.
    `actor_ref`: every transfer's, written once into the statement."""
    literals = () if actor_ref is None else (("actor_ref", actor_ref),)
    sqlite_insert_many(
        cur, "transfers", _TRANSFER_NAMES, transfer_rows, _TRANSFER_CONSTANT_CANDIDATES, literals
    )
    sqlite_insert_many(cur, "entries", _ENTRY_NAMES, entry_rows, _ENTRY_CONSTANT_CANDIDATES)


# Who created a batch's transfers: one actor ref for all, or one per transfer id (a batch the
# group-commit coalescer gathered from several principals).
ActorRefs = int | Mapping[str, int | None] | None


def _with_refs(rows: Sequence[Sequence[Any]], refs: Mapping[str, int | None]) -> list[Any]:
    return [(*r, refs.get(r[1])) for r in rows]


def write_batch(
    uow: UnitOfWork, state: BatchState, writes: Writes, actor_refs: ActorRefs = None
) -> None:
    cur = uow.cursor()
    dirty = writes.dirty_accounts(state)
    writes.dirty = dirty
    account_rows = [
        (a.dp, a.cp, a.dpend, a.cpend, a.version, a.last_entry_id, a.updated_at, a.id)
        for a in dirty
    ]
    status_rows = [(int(s), i) for i, s in writes.status_changes.items()]
    transfer_rows = writes.transfers
    if uow.sqlite:
        entry_rows: Sequence[Sequence[Any]] = writes.entries
        if writes.wide:
            transfer_rows = _stored_rows(transfer_rows, TRANSFER_MONEY)
            entry_rows = _stored_rows(entry_rows, ENTRY_MONEY)
            account_rows = _stored_rows(account_rows, ACCOUNT_UPDATE_MONEY)
        if isinstance(actor_refs, Mapping):
            sqlite_insert_many(
                cur,
                "transfers",
                (*_TRANSFER_NAMES, "actor_ref"),
                _with_refs(transfer_rows, actor_refs),
                _TRANSFER_CONSTANT_CANDIDATES,
            )
            sqlite_insert_many(cur, "entries", _ENTRY_NAMES, entry_rows, _ENTRY_CONSTANT_CANDIDATES)
        else:
            insert_transfers_sqlite(cur, transfer_rows, entry_rows, actor_refs)
        if status_rows:
            cur.executemany("UPDATE transfers SET status = ? WHERE id = ?", status_rows)
        if account_rows:
            cur.executemany(
                "UPDATE accounts SET debits_posted = ?, credits_posted = ?, debits_pending = ?, "
                "credits_pending = ?, version = ?, last_entry_id = ?, updated_at = ? WHERE id = ?",
                account_rows,
            )
    else:
        if transfer_rows:
            with cur.copy(f"COPY transfers ({TRANSFER_COLS}, actor_ref) FROM STDIN") as copy:
                if isinstance(actor_refs, Mapping):
                    for row in _with_refs(transfer_rows, actor_refs):
                        copy.write_row(row)
                else:
                    for row in transfer_rows:
                        copy.write_row((*row, actor_refs))
        if writes.entries:
            with cur.copy(f"COPY entries ({ENTRY_COLS}) FROM STDIN") as copy:
                for entry in writes.entries:
                    copy.write_row(entry)
        if status_rows:
            cur.execute(
                "UPDATE transfers t SET status = u.status FROM "
                "unnest(%s::smallint[], %s::text[]) AS u(status, id) WHERE t.id = u.id",
                ([r[0] for r in status_rows], [r[1] for r in status_rows]),
            )
        if account_rows:
            columns = list(zip(*account_rows, strict=True))
            cur.execute(
                "UPDATE accounts a SET debits_posted = u.dp, credits_posted = u.cp, "
                "debits_pending = u.dpend, credits_pending = u.cpend, version = u.version, "
                "last_entry_id = u.last_entry_id, updated_at = u.updated_at FROM unnest("
                "%s::numeric[], %s::numeric[], %s::numeric[], %s::numeric[], %s::bigint[], "
                "%s::bigint[], %s::bigint[], %s::text[]) AS u(dp, cp, dpend, cpend, version, "
                "last_entry_id, updated_at, id) WHERE a.id = u.id",
                [list(c) for c in columns],
            )
    if writes.index_rows:
        cur.executemany(
            sql(
                uow,
                "INSERT INTO entry_index (account_id, version, entry_id, created_at) "
                "VALUES (?,?,?,?)",
            ),
            writes.index_rows,
        )


def is_retryable(exc: BaseException) -> bool:
    """Serialization failures, deadlocks and a concurrent insert of the same transfer id are
    retried with the whole batch; SQLite's busy timeout likewise."""
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    try:
        import psycopg.errors as pe
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, pe.SerializationFailure | pe.DeadlockDetected | pe.UniqueViolation)


# -- accounts, ledgers, assets -------------------------------------------------------------


LEDGER_COLS = "id, name, metadata, created_at, tenant_id"


def insert_ledger(
    uow: UnitOfWork, row: tuple[str, str, str | None, int, str], created_by: str | None = None
) -> None:
    uow.cursor().execute(
        sql(uow, f"INSERT INTO ledgers ({LEDGER_COLS}, created_by) VALUES (?,?,?,?,?,?)"),
        (*row, created_by),
    )


# -- actors --------------------------------------------------------------------------------


def intern_actor(uow: UnitOfWork, actor: str, now_us: int) -> int:
    """The id of `actor` in `actors`, added if new (one statement decides, so two writers
    cannot add it twice)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO actors (actor, created_at) VALUES (?, ?) ON CONFLICT (actor) DO NOTHING",
        ),
        (actor, now_us),
    )
    cur.execute(sql(uow, "SELECT id FROM actors WHERE actor = ?"), (actor,))
    return int(cur.fetchone()[0])


def transfer_actors(uow: UnitOfWork, transfer_ids: Sequence[str]) -> dict[str, str | None]:
    """transfer id -> the actor who created it (None: not recorded, before migration 0016)."""
    return {
        str(r[0]): None if r[1] is None else str(r[1])
        for r in fetch_in(
            uow,
            "SELECT t.id, a.actor FROM transfers t LEFT JOIN actors a ON a.id = t.actor_ref",
            "t.id",
            sorted(set(transfer_ids)),
        )
    }


def get_ledger(uow: UnitOfWork, ledger_id: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {LEDGER_COLS} FROM ledgers WHERE id = ?"), (ledger_id,))
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def list_ledgers(
    uow: UnitOfWork,
    tenant_id: str | None,
    after_id: str | None,
    limit: int,
    before_id: str | None = None,
) -> list[tuple[Any, ...]]:
    """By id; with before_id, the page just before it, nearest first."""
    return _page_by_id(
        uow, "ledgers", LEDGER_COLS, "tenant_id", tenant_id, after_id, before_id, limit
    )


def ledger_tenants(uow: UnitOfWork, ledger_ids: Sequence[str]) -> dict[str, str]:
    return {
        r[0]: r[1] for r in fetch_in(uow, "SELECT id, tenant_id FROM ledgers", "id", ledger_ids)
    }


def insert_asset(
    uow: UnitOfWork, code: str, scale: int, now_us: int, created_by: str | None = None
) -> bool:
    """False when the code exists already."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO assets (code, scale, created_at, created_by) VALUES (?,?,?,?) "
            "ON CONFLICT (code) DO NOTHING",
        ),
        (code, scale, now_us, created_by),
    )
    return int(cur.rowcount) == 1


def get_asset_scale(uow: UnitOfWork, code: str) -> int | None:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT scale FROM assets WHERE code = ?"), (code,))
    row = cur.fetchone()
    return None if row is None else int(row[0])


def list_assets(uow: UnitOfWork) -> list[tuple[str, int]]:
    cur = uow.cursor()
    cur.execute("SELECT code, scale FROM assets ORDER BY code")
    return [(r[0], int(r[1])) for r in cur.fetchall()]


def insert_accounts(
    uow: UnitOfWork, rows: Sequence[tuple[Any, ...]], created_by: str | None = None
) -> None:
    uow.cursor().executemany(
        sql(
            uow,
            f"INSERT INTO accounts ({ACCOUNT_COLS}, created_by) VALUES ({','.join('?' * 18)})",
        ),
        [(*r, created_by) for r in rows],
    )


# What a read of an account answers: its columns as written, then `frozen` (migration 0022).
ACCOUNT_READ_COLS = f"{ACCOUNT_COLS}, frozen"


def account_owners(uow: UnitOfWork, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """account id -> (its ledger, the customer who owns it or None), for those that exist."""
    rows = fetch_in(uow, "SELECT id, ledger_id, customer_id FROM accounts", "id", sorted(ids))
    return {str(r[0]): (str(r[1]), None if r[2] is None else str(r[2])) for r in rows}


def get_account_rows(uow: UnitOfWork, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    return fetch_in(uow, f"SELECT {ACCOUNT_READ_COLS} FROM accounts", "id", ids)


def get_account_row(
    uow: UnitOfWork, account_id: str, *, lock: bool = False
) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur.execute(
        sql(uow, f"SELECT {ACCOUNT_READ_COLS} FROM accounts WHERE id = ?{suffix}"),
        (account_id,),
    )
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def list_account_rows(
    uow: UnitOfWork,
    ledger_id: str | None,
    after_id: str | None,
    limit: int,
    before_id: str | None = None,
) -> list[tuple[Any, ...]]:
    """By id; with before_id, the page just before it, nearest first."""
    return _page_by_id(
        uow, "accounts", ACCOUNT_READ_COLS, "ledger_id", ledger_id, after_id, before_id, limit
    )


def list_customer_account_rows(
    uow: UnitOfWork,
    customer_id: str,
    after_id: str | None,
    limit: int,
    before_id: str | None = None,
) -> list[tuple[Any, ...]]:
    """A customer's accounts by id (the partial index accounts_customer)."""
    return _page_by_id(
        uow,
        "accounts",
        ACCOUNT_READ_COLS,
        "customer_id",
        customer_id,
        after_id,
        before_id,
        limit,
    )


def _page_by_id(
    uow: UnitOfWork,
    table: str,
    columns: str,
    owner_column: str,
    owner: str | None,
    after_id: str | None,
    before_id: str | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    where, params = [], []
    if owner is not None:
        where.append(f"{owner_column} = ?")
        params.append(owner)
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "DESC" if before_id is not None else "ASC"
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {columns} FROM {table} {clause} ORDER BY id {order} LIMIT ?"),
        (*params, limit),
    )
    return list(cur.fetchall())


def set_account_frozen(uow: UnitOfWork, account_id: str, frozen: bool, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE accounts SET frozen = ?, updated_at = ? WHERE id = ?"),
        (frozen, now_us, account_id),
    )


def customer_account_ids(uow: UnitOfWork, customer_id: str) -> list[str]:
    """Every account a customer owns (the partial index accounts_customer), by id."""
    cur = uow.cursor()
    cur.execute(
        sql(uow, "SELECT id FROM accounts WHERE customer_id = ? ORDER BY id"), (customer_id,)
    )
    return [r[0] for r in cur.fetchall()]


def set_account_closed(uow: UnitOfWork, account_id: str, closed: bool, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE accounts SET closed = ?, updated_at = ? WHERE id = ?"),
        (closed, now_us, account_id),
    )


# -- transfers and entries -----------------------------------------------------------------


def get_transfer_row(uow: UnitOfWork, transfer_id: str) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {TRANSFER_COLS} FROM transfers WHERE id = ?"), (transfer_id,))
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def resolution_row(uow: UnitOfWork, pending_id: str) -> tuple[Any, ...] | None:
    """The post or void of a pending transfer (at most one of them exists), by the index on
    target_id."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {TRANSFER_COLS} FROM transfers WHERE target_id = ? AND action IN (?, ?) "
            "ORDER BY seq LIMIT 1",
        ),
        (pending_id, int(Action.POST), int(Action.VOID)),
    )
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


def _transfer_filters(
    uow: UnitOfWork,
    ledger_id: str | None,
    status: Status | None,
    created_after: int | None,
    created_before: int | None,
    metadata: tuple[str, str] | None,
) -> tuple[list[str], list[Any]]:
    """WHERE terms and their parameters for a listing's filters (none has an index)."""
    where: list[str] = []
    params: list[Any] = []
    if ledger_id is not None:
        where.append("ledger_id = ?")
        params.append(ledger_id)
    if status is not None:
        where.append("status = ?")
        params.append(int(status))
    if created_after is not None:
        where.append("created_at >= ?")
        params.append(created_after)
    if created_before is not None:
        where.append("created_at < ?")
        params.append(created_before)
    if metadata is not None:
        key, value = metadata
        if uow.sqlite:
            # As PostgreSQL's ->>: the value as text, booleans as 'true'/'false'.
            where.append(
                "(CASE json_type(metadata, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
                "ELSE CAST(json_extract(metadata, ?) AS TEXT) END) = ?"
            )
            path = f'$."{key}"'
            params.extend([path, path, value])
        else:
            where.append("(metadata::jsonb ->> ?) = ?")
            params.extend([key, value])
    return where, params


@dataclass(frozen=True, slots=True)
class TransferFilter:
    """What a transfer listing keeps; None keeps everything."""

    ledger_id: str | None = None
    status: Status | None = None
    created_after: int | None = None
    created_before: int | None = None
    metadata: tuple[str, str] | None = None

    @property
    def empty(self) -> bool:
        return (
            self.ledger_id is None
            and self.status is None
            and self.created_after is None
            and self.created_before is None
            and self.metadata is None
        )

    def terms(self, uow: UnitOfWork) -> tuple[list[str], list[Any]]:
        return _transfer_filters(
            uow, self.ledger_id, self.status, self.created_after, self.created_before, self.metadata
        )


def list_transfer_rows(
    uow: UnitOfWork,
    keep: TransferFilter,
    *,
    before_seq: int | None,
    after_seq: int | None,
    limit: int,
    scan_rows_max: int,
) -> tuple[list[tuple[Any, ...]], int | None]:
    """Transfers by sequence, newest first from before_seq (exclusive), or with after_seq the
    newer ones just after it, nearest first: up to `limit` rows that pass `keep`.

    No filter has an index, so at most `scan_rows_max` transfers are examined (a range of the
    primary key). Answers the rows and, when that range was used up, the sequence number it
    ended at (the next range starts past it); None when the range reached the end.
    """
    forward = after_seq is None
    bound: list[str] = []
    params: list[Any] = []
    if before_seq is not None:
        bound.append("seq < ?")
        params.append(before_seq)
    if after_seq is not None:
        bound.append("seq > ?")
        params.append(after_seq)
    order = "DESC" if forward else "ASC"
    cur = uow.cursor()
    if keep.empty:
        clause = f"WHERE {' AND '.join(bound)}" if bound else ""
        cur.execute(
            sql(
                uow, f"SELECT {TRANSFER_COLS} FROM transfers {clause} ORDER BY seq {order} LIMIT ?"
            ),
            (*params, limit),
        )
        return list(cur.fetchall()), None
    # The rows of the range this request may examine that pass the filter: the outer LIMIT
    # stops the inner scan early where matches are dense.
    clause = f"WHERE {' AND '.join(bound)}" if bound else ""
    where, filter_params = keep.terms(uow)
    cur.execute(
        sql(
            uow,
            f"SELECT {TRANSFER_COLS} FROM (SELECT {TRANSFER_COLS} FROM transfers {clause} "
            f"ORDER BY seq {order} LIMIT ?) AS range_ WHERE {' AND '.join(where)} "
            f"ORDER BY seq {order} LIMIT ?",
        ),
        (*params, scan_rows_max, *filter_params, limit),
    )
    rows = list(cur.fetchall())
    if len(rows) >= limit:
        return rows, None
    # A short page: whether the range was cut short, and where it ended.
    far = "MIN" if forward else "MAX"
    cur.execute(
        sql(
            uow,
            f"SELECT {far}(seq), COUNT(*) FROM (SELECT seq FROM transfers {clause} "
            f"ORDER BY seq {order} LIMIT ?) AS range_",
        ),
        (*params, scan_rows_max),
    )
    end_seq, examined = cur.fetchone()
    return rows, (int(end_seq) if examined >= scan_rows_max else None)


def transfers_by_id(
    uow: UnitOfWork, transfer_ids: Sequence[str], keep: TransferFilter
) -> dict[str, tuple[Any, ...]]:
    """The rows of those transfers that pass `keep`, by id."""
    where, params = keep.terms(uow)
    suffix = "".join(f" AND {term}" for term in where)
    out: dict[str, tuple[Any, ...]] = {}
    cur = uow.cursor()
    for part in chunks(transfer_ids, SQL_PARAMS_PER_STATEMENT_MAX - len(params)):
        if uow.sqlite:
            marks = ",".join("?" * len(part))
            cur.execute(
                f"SELECT {TRANSFER_COLS} FROM transfers WHERE id IN ({marks}){suffix}",
                (*part, *params),
            )
        else:
            cur.execute(
                sql(uow, f"SELECT {TRANSFER_COLS} FROM transfers WHERE id = ANY(?){suffix}"),
                (list(part), *params),
            )
        for row in cur.fetchall():
            out[row[1]] = row
    return out


def transfer_seqs(uow: UnitOfWork, transfer_ids: Sequence[str]) -> dict[str, int]:
    return {
        r[0]: int(r[1]) for r in fetch_in(uow, "SELECT id, seq FROM transfers", "id", transfer_ids)
    }


def get_entry(uow: UnitOfWork, entry_id: int) -> tuple[Any, ...] | None:
    cur = uow.cursor()
    cur.execute(sql(uow, f"SELECT {ENTRY_COLS} FROM entries WHERE id = ?"), (entry_id,))
    row: tuple[Any, ...] | None = cur.fetchone()
    return row


_ENTRY_CHAIN_COLS = ", ".join(c.strip() for c in ENTRY_COLS.split(","))


def walk_entries(uow: UnitOfWork, start_id: int | None, limit: int) -> list[tuple[Any, ...]]:
    """Follow an account's chain of entries backwards (newest first) from start_id: `limit`
    entries at most, in one statement (a recursive query, one primary-key look-up each)."""
    if start_id is None or limit <= 0:
        return []
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"WITH RECURSIVE chain (depth_, {_ENTRY_CHAIN_COLS}) AS ("
            f"SELECT 1, {ENTRY_COLS} FROM entries WHERE id = ? "
            f"UNION ALL SELECT c.depth_ + 1, "
            f"{', '.join('e.' + c.strip() for c in ENTRY_COLS.split(','))} "
            "FROM chain c JOIN entries e ON e.id = c.prev_id WHERE c.depth_ < ?) "
            f"SELECT {_ENTRY_CHAIN_COLS} FROM chain ORDER BY depth_",
        ),
        (start_id, limit),
    )
    rows: list[tuple[Any, ...]] = list(cur.fetchall())
    assert rows, f"entry chain broken at {start_id}"
    assert len(rows) == limit or rows[-1][3] is None, f"entry chain broken after {rows[-1][0]}"
    return rows


def transfer_entry_versions(
    uow: UnitOfWork, account_id: str, transfer_id: str, seq: int
) -> tuple[int, int] | None:
    """(lowest, highest) version of the entries the transfer wrote on the account when it was
    created; None when it wrote none there. The transaction that created the transfer took its
    sequence number and its entries' ids from one id block (allocate_id_block), so this reads
    one primary-key range: at most the entries of one transaction."""
    block = seq >> ID_BLOCK_BITS
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT MIN(version), MAX(version) FROM entries WHERE id > ? AND id < ? "
            "AND account_id = ? AND transfer_id = ?",
        ),
        (id_base(block), id_base(block + 1), account_id, transfer_id),
    )
    row = cur.fetchone()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


def created_with(entry_id: int, seq: int) -> bool:
    """Whether the entry was written by the transaction that created the transfer with that
    sequence number (false for the release entries of an expiry, which name an older one)."""
    return entry_id >> ID_BLOCK_BITS == seq >> ID_BLOCK_BITS


def index_at_or_after_version(
    uow: UnitOfWork, account_id: str, version: int
) -> tuple[int, int] | None:
    """The first indexed entry (version, entry_id) at or after `version`."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT version, entry_id FROM entry_index WHERE account_id = ? AND version >= ? "
            "ORDER BY version LIMIT 1",
        ),
        (account_id, version),
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


def index_first_after_time(uow: UnitOfWork, account_id: str, at_us: int) -> tuple[int, int] | None:
    """The first indexed entry (version, entry_id) created after `at_us`. Entry times never
    decrease along an account's versions, so this is also the first by version."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "SELECT version, entry_id FROM entry_index WHERE account_id = ? AND created_at > ? "
            "ORDER BY version LIMIT 1",
        ),
        (account_id, at_us),
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), int(row[1]))


# -- invariants: read by ledger/verify.py as streams, so memory does not grow with history ---


def stream(uow: UnitOfWork, query: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows of `query`, fetched VERIFY_FETCH_ROWS at a time: a server-side cursor on
    PostgreSQL (a plain one would load the whole result), SQLite's own stepping otherwise."""
    if uow.sqlite:
        cur = uow.cursor()
        cur.execute(query, params)
        while rows := cur.fetchmany(VERIFY_FETCH_ROWS):
            yield from rows
        return
    with uow.conn.cursor(name=f"strongroom_stream_{next(_cursor_numbers)}") as cur:
        cur.itersize = VERIFY_FETCH_ROWS
        cur.execute(sql(uow, query), params)
        yield from cur


_cursor_numbers = itertools.count()  # names server-side cursors, unique within a process

VERIFY_ACCOUNT_COLS = (
    "id, ledger_id, asset, flags, debits_posted, credits_posted, debits_pending, "
    "credits_pending, version, last_entry_id"
)


def verify_accounts(uow: UnitOfWork) -> Iterator[tuple[Any, ...]]:
    """Every account (VERIFY_ACCOUNT_COLS), money columns as stored, by id."""
    return stream(uow, f"SELECT {VERIFY_ACCOUNT_COLS} FROM accounts ORDER BY id")


def verify_transfers(uow: UnitOfWork) -> Iterator[tuple[Any, ...]]:
    """Every transfer (TRANSFER_COLS), as stored, by seq."""
    return stream(uow, f"SELECT {TRANSFER_COLS} FROM transfers ORDER BY seq")


def transfer_rows_by_id(uow: UnitOfWork, ids: Sequence[str]) -> list[tuple[Any, ...]]:
    return fetch_in(uow, f"SELECT {TRANSFER_COLS} FROM transfers", "id", sorted(ids))


def verify_entries(uow: UnitOfWork) -> Iterator[tuple[Any, ...]]:
    """Every entry (ENTRY_COLS but created_at) by id, followed by its predecessor's (prev_id)
    account_id, version and four running totals, NULL where there is none."""
    return stream(
        uow,
        "SELECT e.id, e.account_id, e.version, e.prev_id, e.transfer_id, e.direction, e.amount, "
        "e.pending_delta, e.debits_posted, e.credits_posted, e.debits_pending, "
        "e.credits_pending, p.account_id, p.version, p.debits_posted, p.credits_posted, "
        "p.debits_pending, p.credits_pending FROM entries e "
        "LEFT JOIN entries p ON p.id = e.prev_id ORDER BY e.id",
    )


def unresolved_pending(uow: UnitOfWork) -> Iterator[tuple[Any, ...]]:
    """(id, status) of pending transfers marked posted or voided that no post or void names."""
    return stream(
        uow,
        "SELECT t.id, t.status FROM transfers t WHERE t.action = 0 AND t.pending "
        "AND t.status IN (0, 2) AND NOT EXISTS (SELECT 1 FROM transfers r "
        "WHERE r.target_id = t.id AND r.action = (CASE t.status WHEN 0 THEN 1 ELSE 2 END)) "
        "ORDER BY t.seq",
    )


def repeated_resolutions(uow: UnitOfWork) -> Iterator[tuple[Any, ...]]:
    """(target_id, count) of transfers named by more than one post or void."""
    return stream(
        uow,
        "SELECT target_id, COUNT(*) FROM transfers WHERE target_id IS NOT NULL "
        "AND action IN (1, 2) GROUP BY target_id HAVING COUNT(*) > 1 ORDER BY target_id",
    )


def reversals_by_target(uow: UnitOfWork) -> Iterator[tuple[Any, ...]]:
    """(target_id, id, amount as stored) of every reversal, grouped by target."""
    return stream(
        uow,
        "SELECT target_id, id, amount FROM transfers WHERE target_id IS NOT NULL "
        "AND action = 3 ORDER BY target_id, seq",
    )
