"""Migrated databases for the tests without running every migration for every test: the schema
is migrated once per test process into a template (a PostgreSQL database made by
tests/support/postgres.py, a SQLite file in a temporary directory), and a test's fresh database
is a copy of it: `postgres_template()` for CREATE DATABASE ... TEMPLATE (the db_url fixture
of a test that uses db_engine), `upgrade(url)` for a SQLite file not yet created (a file copy).
Anything else (a file that exists, a PostgreSQL database) is migrated by migrate.upgrade as
before. Tests of the migrations themselves use empty databases and never come here."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from tests.support import postgres as pg

_lock = threading.Lock()
_templates: dict[str, str] = {}  # backend -> the template's URL (sqlite: its file's path)
_templates_made: list[tuple[str, str]] = []  # (backend, its URL or directory) to remove
_owner = os.getpid()
atexit.register(lambda: os.getpid() == _owner and cleanup())


def _upgrade(url: str) -> None:
    engine = create_engine(url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def cleanup() -> None:
    """Remove this process's templates (pytest_sessionfinish; atexit as a fallback)."""
    with _lock:
        made, _templates_made[:] = list(_templates_made), []
        _templates.clear()
    for kind, where in made:
        if kind == "sqlite":
            shutil.rmtree(where, ignore_errors=True)
        else:
            pg.drop_database(where)


def _sqlite_template() -> str:
    directory = Path(tempfile.mkdtemp(prefix="strongroom-schema-"))
    _templates_made.append(("sqlite", str(directory)))
    path = directory / "template.db"
    _upgrade(f"sqlite:///{path}")
    # The last connection closed checkpointed the WAL into the file and removed it.
    assert not Path(f"{path}-wal").exists()
    return str(path)


def postgres_template() -> str:
    """The URL of this process's migrated PostgreSQL template (made on first use)."""
    return _template("postgresql")


def _postgres_template() -> str:
    url = pg.create_database("srtpl")
    _templates_made.append(("postgresql", url))
    _upgrade(url)
    return url


def _template(backend: str) -> str:
    with _lock:
        if backend not in _templates:
            _templates[backend] = (
                _sqlite_template() if backend == "sqlite" else _postgres_template()
            )
        return _templates[backend]


def upgrade(url: str) -> None:
    """The database at `url` migrated to head, as `migrate.upgrade` leaves it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        siblings = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
        if not any(p.exists() for p in siblings):
            shutil.copyfile(_template("sqlite"), path)
            return
    _upgrade(url)
