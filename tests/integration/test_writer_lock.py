"""The SQLite writer file lock (`<database>.writer-lock`): a writer waits for another
process's lock at most the engine's timeout, then fails with `DatabaseBusy` having written
nothing; and the lock is released on every way out of a unit of work (the connection failing,
BEGIN IMMEDIATE failing, the body raising, COMMIT failing), so the next writer gets it at once.

"Another process" is a real child process holding flock on its own descriptor; the lock being
free is checked the same way (a descriptor of our own, LOCK_NB): what another process would
see."""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from strongroom.core.errors import DatabaseBusy
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork, writer_lock

pytestmark = pytest.mark.timeout(30)

# The child: takes the lock, says so, and holds it until its stdin closes.
_HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()\n"
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "lock.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE notes (body TEXT NOT NULL)")
        conn.commit()
    return path


def _engine(path: Path, timeout_ms: int) -> Engine:
    return create_engine(
        f"sqlite:///{path}", sqlite_cache_mib=2, sqlite_writer_lock_timeout_ms=timeout_ms
    )


@contextlib.contextmanager
def _held_by_another_process(db_path: Path) -> Iterator[Callable[[], None]]:
    """Holds the writer lock from a child process; yields a function that releases it."""
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, f"{db_path}.writer-lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None

    def release() -> None:
        if child.poll() is None:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(timeout=30)

    try:
        assert child.stdout.readline().strip() == "held"
        yield release
    finally:
        release()
        child.stdout.close()


def _lock_is_free(db_path: Path) -> bool:
    """Whether another process could take the lock now, without waiting."""
    fd = os.open(f"{db_path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the descriptor drops its lock
    return True


def _notes(db_path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        return [row[0] for row in conn.execute("SELECT body FROM notes")]


def _write(engine: Engine, body: str) -> None:
    with UnitOfWork(engine) as uow:
        uow.cursor().execute("INSERT INTO notes (body) VALUES (?)", (body,))
        uow.commit()


def test_a_writer_gives_up_after_the_timeout_and_writes_nothing(db_path: Path) -> None:
    engine = _engine(db_path, timeout_ms=200)
    try:
        with _held_by_another_process(db_path) as release:
            assert not _lock_is_free(db_path)
            with pytest.raises(DatabaseBusy) as busy:
                _write(engine, "refused")
            assert busy.value.code == "database_busy"
            assert busy.value.status == 503
            assert busy.value.retry_after_s >= 1
            # Again: the helper still blocked for the first wait does not change the answer.
            with pytest.raises(DatabaseBusy):
                _write(engine, "refused again")
            release()
        # The abandoned wait does not keep the lock once it is freed (or this never ends).
        while not _lock_is_free(db_path):
            threading.Event().wait(0.01)
        _write(engine, "after")
        assert _notes(db_path) == ["after"]
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_a_waiting_writer_goes_on_when_the_other_process_lets_go(db_path: Path) -> None:
    engine = _engine(db_path, timeout_ms=60_000)
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            _write(engine, "waited")
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    try:
        with _held_by_another_process(db_path) as release:
            thread = threading.Thread(target=writer)
            thread.start()
            thread.join(timeout=0.3)
            assert thread.is_alive(), "the writer did not wait for the other process"
            assert _notes(db_path) == []
            release()
            thread.join(timeout=30)
            assert not thread.is_alive()
        assert errors == []
        assert _notes(db_path) == ["waited"]
        assert _lock_is_free(db_path)
    finally:
        engine.dispose()


def test_threads_of_one_process_take_turns(db_path: Path) -> None:
    engine = _engine(db_path, timeout_ms=100)
    outcome: list[str] = []

    def second_writer() -> None:
        try:
            _write(engine, "second")
            outcome.append("wrote")
        except DatabaseBusy:
            outcome.append("busy")

    try:
        with UnitOfWork(engine) as first:
            # Another thread of this process waits for this writer, then gives up.
            thread = threading.Thread(target=second_writer)
            thread.start()
            thread.join(timeout=30)
            assert outcome == ["busy"]
            first.cursor().execute("INSERT INTO notes (body) VALUES (?)", ("first",))
            first.commit()
        second_writer()
        assert outcome == ["busy", "wrote"]
        assert _notes(db_path) == ["first", "second"]
    finally:
        engine.dispose()


class _Injected(Exception):
    pass


class _FailingConnection:
    """A sqlite3 connection whose `execute` of one statement raises."""

    def __init__(self, real: sqlite3.Connection, fail_on: str) -> None:
        self._real = real
        self._fail_on = fail_on

    def execute(self, statement: str, *args: Any) -> Any:
        if statement == self._fail_on:
            raise sqlite3.OperationalError(f"injected failure at {statement}")
        return self._real.execute(statement, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class _FailingProxy:
    def __init__(self, real: Any, fail_on: str) -> None:
        self._real = real
        self.driver_connection = _FailingConnection(real.driver_connection, fail_on)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _inject(engine: Engine, where: str) -> None:
    real_raw_connection = engine.raw_connection

    def raw_connection() -> Any:
        if where == "connect":
            raise sqlite3.OperationalError("injected failure at connect")
        return _FailingProxy(real_raw_connection(), where)

    engine.raw_connection = raw_connection  # type: ignore[method-assign]


def _write_failing_in_the_body(engine: Engine, *, raise_in_body: bool) -> None:
    with UnitOfWork(engine) as uow:
        uow.cursor().execute("INSERT INTO notes (body) VALUES (?)", ("lost",))
        if raise_in_body:
            raise _Injected("the body failed")
        uow.commit()


@pytest.mark.parametrize(
    ("where", "raised"),
    [
        ("connect", sqlite3.OperationalError),
        ("BEGIN IMMEDIATE", sqlite3.OperationalError),
        ("body", _Injected),
        ("COMMIT", sqlite3.OperationalError),
        ("ROLLBACK", sqlite3.OperationalError),  # the body raised, and so did ROLLBACK
    ],
)
def test_the_lock_is_released_on_every_failure(
    db_path: Path, where: str, raised: type[BaseException]
) -> None:
    failing = _engine(db_path, timeout_ms=5_000)
    # The next writer may not wait at all: it gets the lock at once or fails.
    next_writer = _engine(db_path, timeout_ms=0)
    try:
        _inject(failing, where)
        with pytest.raises(raised):
            _write_failing_in_the_body(failing, raise_in_body=where in ("body", "ROLLBACK"))
        assert _lock_is_free(db_path)
        assert failing.pool.checkedout() == 0  # type: ignore[attr-defined]
        _write(next_writer, "next")
        assert _notes(db_path) == ["next"]
    finally:
        failing.dispose()
        next_writer.dispose()


def test_a_forked_child_takes_its_own_lock_not_its_parents(db_path: Path) -> None:
    """An inherited descriptor would share the parent's flock: the child would write while the
    parent holds the lock. The child opens its own, and waits like any other process."""
    engine = _engine(db_path, timeout_ms=5_000)
    lock = writer_lock(engine)
    lock.acquire(timeout_ms=0)
    try:
        pid = os.fork()
        if pid == 0:  # the child: report by exit status only
            code = 1
            try:
                child_engine = _engine(db_path, timeout_ms=100)
                try:
                    _write(child_engine, "child")
                    code = 2
                except DatabaseBusy:
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, "the child wrote under the parent's lock"
    finally:
        lock.release()
        engine.dispose()
    assert _notes(db_path) == []
