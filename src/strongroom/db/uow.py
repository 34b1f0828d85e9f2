"""A unit of work over one pooled DBAPI connection: rolls back unless committed.

The ledger's hot path talks to the driver directly (set-oriented statements, executemany,
COPY); everything still goes through SQLAlchemy's pool and engine configuration.
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import TracebackType
from typing import Any

from sqlalchemy.engine import Engine


class UnitOfWork:
    def __init__(self, engine: Engine, *, write: bool = True) -> None:
        self._engine = engine
        self._write = write
        self.sqlite = engine.dialect.name == "sqlite"
        self._proxy: Any = None
        self.conn: Any = None
        self._open = False
        self._file_lock: int | None = None

    def __enter__(self) -> UnitOfWork:
        if self.sqlite and self._write:
            # Writers of other processes queue on a file lock, woken the moment it is free,
            # instead of polling SQLite's busy handler (which sleeps up to 100 ms a try).
            self._file_lock = _writer_lock(self._engine)
            fcntl.flock(self._file_lock, fcntl.LOCK_EX)
        self._proxy = self._engine.raw_connection()
        self.conn = self._proxy.driver_connection
        if self.sqlite:
            # BEGIN IMMEDIATE takes the write lock up front: the balance check and the update
            # that depends on it happen under one lock, with no upgrade deadlock. A read
            # transaction in WAL mode sees one snapshot.
            self.conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        elif not self._write:
            # Reads of several statements (verify, pages, history) see one snapshot.
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        self._open = True
        return self

    def cursor(self) -> Any:
        return self.conn.cursor()

    def commit(self) -> None:
        assert self._open
        self.conn.commit() if not self.sqlite else self.conn.execute("COMMIT")
        self._open = False

    def rollback(self) -> None:
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
        try:
            self.rollback()
        finally:
            if self._file_lock is not None:
                fcntl.flock(self._file_lock, fcntl.LOCK_UN)
                self._file_lock = None
            proxy, self._proxy = self._proxy, None
            if exc is not None and not self.sqlite and self.conn is not None and self.conn.closed:
                proxy.invalidate()
            proxy.close()


_lock_fds: dict[str, int] = {}
_lock_fds_guard = threading.Lock()


def _writer_lock(engine: Engine) -> int:
    """One descriptor per database file and process. flock excludes other processes only:
    threads of this process share it and are ordered by SQLite's own lock."""
    path = f"{engine.url.database}.writer-lock"
    with _lock_fds_guard:
        fd = _lock_fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            _lock_fds[path] = fd
        return fd
