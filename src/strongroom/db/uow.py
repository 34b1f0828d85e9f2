"""A unit of work over one pooled DBAPI connection: rolls back unless committed.

The ledger's hot path talks to the driver directly (set-oriented statements, executemany,
COPY); everything still goes through SQLAlchemy's pool and engine configuration.

On SQLite a writer first takes the database's writer file lock (`<database>.writer-lock`), for
at most the engine's writer-lock timeout; past it the write fails with `DatabaseBusy` (503,
nothing written). The lock is released on every way out: the connection failing, BEGIN
IMMEDIATE failing, the body raising, COMMIT or ROLLBACK failing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sqlalchemy.engine import Engine

from strongroom.core.errors import DatabaseBusy
from strongroom.core.limits import (
    SQLITE_WRITER_LOCK_TIMEOUT_MS_DEFAULT,
    SQLITE_WRITER_LOCK_TIMEOUT_MS_MAX,
    UNAVAILABLE_RETRY_AFTER_S,
)

_log = logging.getLogger(__name__)

# SQLITE_BUSY and SQLITE_LOCKED
_SQLITE_BUSY = frozenset({5, 6})
# The engine execution option that carries the writer-lock timeout (db.engine.create_engine).
WRITER_LOCK_TIMEOUT_OPTION = "strongroom_writer_lock_timeout_ms"


class UnitOfWork:
    """`durable=False`: a write whose commit need not survive a crash (a replay store's
    entries, which expire within minutes anyway): its commit does not wait for the disk.
    SQLite runs it with synchronous=NORMAL (in WAL mode: consistent, and durable at the next
    checkpoint or the next durable commit), PostgreSQL with synchronous_commit=off (durable
    within three of the WAL writer's delays). Every other transaction stays durable."""

    def __init__(self, engine: Engine, *, write: bool = True, durable: bool = True) -> None:
        self._engine = engine
        self._write = write
        self._relaxed = write and not durable
        self.sqlite = engine.dialect.name == "sqlite"
        self._proxy: Any = None
        self.conn: Any = None
        self._open = False
        self._file_lock: WriterLock | None = None
        self._after_commit: list[Callable[[], None]] = []

    def __enter__(self) -> UnitOfWork:
        if self.sqlite and self._write:
            # Writers (of this process and of others) queue on the writer lock, woken the
            # moment it is free, instead of polling SQLite's busy handler (which sleeps up to
            # 100 ms a try).
            lock = writer_lock(self._engine)
            lock.acquire(writer_lock_timeout_ms(self._engine))
            self._file_lock = lock
        try:
            self._proxy = self._engine.raw_connection()
            self.conn = self._proxy.driver_connection
            if self.sqlite:
                if self._relaxed:
                    # Outside a transaction only; set back to FULL when the connection is
                    # given back (_finish).
                    self.conn.execute("PRAGMA synchronous=NORMAL")
                # BEGIN IMMEDIATE takes the write lock up front: the balance check and the
                # update that depends on it happen under one lock, with no upgrade deadlock. A
                # read transaction in WAL mode sees one snapshot.
                self.conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
            elif not self._write:
                # Reads of several statements (verify, pages, history) see one snapshot.
                self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            elif self._relaxed:
                self.conn.execute("SET LOCAL synchronous_commit TO OFF")  # this transaction
        except BaseException as exc:
            # __exit__ does not run when __enter__ raises: give back what was taken here.
            self._finish(broken=True)
            if (
                isinstance(exc, sqlite3.OperationalError)
                and getattr(exc, "sqlite_errorcode", None) in _SQLITE_BUSY
            ):
                # SQLite's busy handler gave up on BEGIN: as retryable as the file lock's wait.
                raise DatabaseBusy(
                    "the database stayed locked by another writer: nothing was written, "
                    "retry shortly",
                    retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
                ) from exc
            raise
        self._open = True
        return self

    def cursor(self) -> Any:
        return self.conn.cursor()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this transaction has committed, never if it rolls back: for
        state kept in memory that must follow the database (a sink's counters). It runs in
        `commit`, after COMMIT; it must not raise (one that does is logged and the others
        still run: the transaction has committed whatever it does)."""
        assert self._open
        self._after_commit.append(callback)

    def commit(self) -> None:
        assert self._open
        self.conn.commit() if not self.sqlite else self.conn.execute("COMMIT")
        self._open = False
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                _log.exception("a callback after a commit failed")

    def rollback(self) -> None:
        self._after_commit = []
        if self._open:
            if self.sqlite:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()
            self._open = False

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        broken = False
        try:
            self.rollback()
        except BaseException:
            broken = True
            raise
        finally:
            if exc is not None and not self.sqlite and self.conn is not None and self.conn.closed:
                broken = True
            self._finish(broken=broken)

    def _finish(self, *, broken: bool) -> None:
        """Releases the file lock and gives the connection back (discarding it if `broken`:
        it may still hold a transaction)."""
        self._open = False
        self._after_commit = []
        lock, self._file_lock = self._file_lock, None
        proxy, self._proxy = self._proxy, None
        try:
            if proxy is not None:
                if self._relaxed and self.sqlite and not broken:
                    try:
                        proxy.driver_connection.execute("PRAGMA synchronous=FULL")
                    except Exception:
                        broken = True  # never give the pool back a connection left relaxed
                if broken:
                    proxy.invalidate()
                proxy.close()
        finally:
            if lock is not None:
                lock.release()


def writer_lock_timeout_ms(engine: Engine) -> int:
    timeout_ms = engine.get_execution_options().get(
        WRITER_LOCK_TIMEOUT_OPTION, SQLITE_WRITER_LOCK_TIMEOUT_MS_DEFAULT
    )
    assert isinstance(timeout_ms, int)
    assert 0 <= timeout_ms <= SQLITE_WRITER_LOCK_TIMEOUT_MS_MAX
    return timeout_ms


class WriterLock:
    """The writer lock of one database: one writer at a time, across processes (flock on the
    lock file, one descriptor per database and process) and between the threads of this
    process (a condition). SQLite admits one writer anyway; queueing here wakes the next one
    the moment the lock is free, where SQLite's busy handler would poll.

    Every release unlocks the file, so writers of other processes get their turn between
    two of this process's. A thread that finds the file locked by another process waits for
    at most its timeout; one helper thread at a time blocks in flock on behalf of all such
    waiters (the kernel wakes it when the file is unlocked), so abandoned waits never pile
    up threads, and a lock the helper gets after every waiter gave up is unlocked at once.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._cond = threading.Condition()
        self._held = False  # a thread of this process holds the lock
        self._handed = False  # the helper got the flock; the next waiter takes it
        self._blocking = False  # the helper is blocked in flock
        self._waiters = 0

    def acquire(self, timeout_ms: int) -> None:
        deadline = time.monotonic() + timeout_ms / 1000
        with self._cond:
            self._waiters += 1
            try:
                while True:
                    if not self._held:
                        if self._handed:
                            self._handed = False
                            break
                        # While the helper blocks in flock on this descriptor, a second flock
                        # on it would succeed along with the helper's: leave it to the helper.
                        if not self._blocking:
                            if self._try_flock():
                                break
                            self._blocking = True
                            threading.Thread(
                                target=self._block, name="writer-lock", daemon=True
                            ).start()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise DatabaseBusy(
                            f"the database's writer lock stayed taken for over {timeout_ms} "
                            f"ms: nothing was written, retry shortly",
                            retry_after_s=UNAVAILABLE_RETRY_AFTER_S,
                        )
                    self._cond.wait(left)
                self._held = True
            finally:
                self._waiters -= 1

    def release(self) -> None:
        with self._cond:
            assert self._held
            self._held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._cond.notify_all()

    def _try_flock(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _block(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        with self._cond:
            self._blocking = False
            if self._waiters == 0:
                # Everyone it waited for gave up: do not keep other processes out.
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            else:
                self._handed = True
                self._cond.notify_all()


_locks: dict[str, WriterLock] = {}
_locks_guard = threading.Lock()


def _forget_locks_in_child() -> None:
    """A forked child shares its parent's open lock files, and with them the parent's flock:
    it opens its own. (Closing the inherited descriptors would not unlock the parent's.)"""
    global _locks_guard
    for lock in _locks.values():
        os.close(lock._fd)
    _locks.clear()
    _locks_guard = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_in_child)


def writer_lock(engine: Engine) -> WriterLock:
    """The writer lock of the engine's database file (one per file and process)."""
    path = f"{engine.url.database}.writer-lock"
    with _locks_guard:
        lock = _locks.get(path)
        if lock is None:
            lock = _locks[path] = WriterLock(path)
        return lock
