"""Every way the product opens a database gives it durable commits.

SQLite: WAL journal and synchronous=FULL (PRAGMA synchronous answers 2), so that a commit's WAL
frames are fsynced before the commit returns. PostgreSQL: synchronous_commit=on (the commit
waits for its WAL flush) on a server with fsync=on.

The settings are per connection, so they are checked on every connection a pool hands out (the
pooled ones, the overflow ones, and new ones after dispose), on the engines that the product's
entry points build (the CLI, `serve`'s create_app), and a scan of the source checks that no other
module opens a database by itself.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

import strongroom
from strongroom.cli import app as cli_app
from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.authz import store
from strongroom.runtime import create_app
from strongroom.settings import Settings

SQLITE_SYNCHRONOUS_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
SRC = Path(strongroom.__file__).resolve().parent
# The only modules allowed to open a database without db/engine.create_engine, and why.
OWN_CONNECTIONS_ALLOWED = {
    "db/engine.py": "the engine factory itself",
    "benchmarks/common.py": "an AUTOCOMMIT admin engine that only creates and drops databases",
}


def durability_settings(dialect: str, dbapi_conn: Any) -> dict[str, Any]:
    """What the database says about this (DBAPI) connection's durability. DBAPI connections,
    not sa.Connection: on SQLite the engine begins every transaction with BEGIN IMMEDIATE, and
    several connections held at once would wait on each other's write lock."""

    def ask(statement: str) -> Any:
        cur = dbapi_conn.cursor()
        try:
            cur.execute(statement)
            return cur.fetchone()[0]
        finally:
            cur.close()

    if dialect == "sqlite":
        return {
            "journal_mode": ask("PRAGMA journal_mode"),
            "synchronous": ask("PRAGMA synchronous"),
        }
    return {"synchronous_commit": ask("SHOW synchronous_commit"), "fsync": ask("SHOW fsync")}


def expected_settings(engine: Engine) -> dict[str, Any]:
    if engine.dialect.name == "sqlite":
        return {"journal_mode": "wal", "synchronous": SQLITE_SYNCHRONOUS_FULL}
    return {"synchronous_commit": "on", "fsync": "on"}


def assert_every_connection_durable(engine: Engine, count: int) -> None:
    """`count` connections held at once (so the pool must open that many), each checked."""
    expected = expected_settings(engine)
    conns = []
    try:
        for _ in range(count):
            conns.append(engine.raw_connection())
        for k, conn in enumerate(conns):
            assert durability_settings(engine.dialect.name, conn) == expected, (engine.url, k)
    finally:
        for conn in conns:
            conn.close()


@pytest.mark.parametrize(
    "options",
    [{}, {"pool_size": 1}, {"pool_size": 2, "sqlite_cache_mib": 2}],
    ids=["defaults", "one", "small"],
)
def test_create_engine_makes_every_connection_durable(db_url: str, options: dict[str, int]) -> None:
    engine = create_engine(db_url, **options)
    try:
        pool_size = options.get("pool_size", 8)
        overflow = min(pool_size * 2, 16)
        assert_every_connection_durable(engine, pool_size + overflow)
        engine.dispose()  # connections opened afresh are set up again
        assert_every_connection_durable(engine, 2)
        # The same after the schema is built and a write transaction has run.
        migrate.upgrade(engine)
        with engine.begin() as conn:
            dbapi_conn = conn.connection.dbapi_connection
            assert durability_settings(conn.dialect.name, dbapi_conn) == expected_settings(engine)
    finally:
        engine.dispose()


@pytest.fixture
def engines_built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Engine]]:
    """Every engine SQLAlchemy builds while the test runs, whoever asks for it."""
    built: list[Engine] = []
    real = sa.create_engine

    def spy(*args: Any, **kwargs: Any) -> Engine:
        engine = real(*args, **kwargs)
        built.append(engine)
        return engine

    monkeypatch.setattr(sa, "create_engine", spy)
    yield built
    for engine in built:
        engine.dispose()


def test_cli_and_serve_open_only_durable_connections(
    db_url: str, engines_built: list[Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", db_url)
    runner = CliRunner()
    for args in (
        ["db", "upgrade"],
        ["db", "current"],
        ["ledger", "create-ledger", "durable"],
        ["audit", "verify"],
    ):
        result = runner.invoke(cli_app, args)
        assert result.exit_code == 0, (args, result.output)
    app = create_app(Settings(database_url=db_url))
    assert app.state.engine in engines_built
    assert len(engines_built) >= 5
    for engine in engines_built:
        assert_every_connection_durable(engine, 2)


def _opens_a_database(call: ast.Call) -> str | None:
    """`sa.create_engine(...)`, `sqlite3.connect(...)`, `psycopg.connect(...)` and the like."""
    func = call.func
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner, name = func.value.id, func.attr
        if name == "create_engine" and owner in {"sa", "sqlalchemy"}:
            return f"{owner}.{name}"
        if name == "connect" and owner in {"sqlite3", "psycopg", "psycopg2", "asyncpg"}:
            return f"{owner}.{name}"
    return None


def _imports_a_driver_connect(node: ast.ImportFrom) -> bool:
    names = {alias.name for alias in node.names}
    if node.module in {"sqlalchemy", "sqlite3", "psycopg", "psycopg2"}:
        return bool(names & {"create_engine", "connect", "Connection"})
    return False


def test_no_module_opens_a_database_by_itself() -> None:
    """Every other path goes through db/engine.create_engine, which the tests above check."""
    found: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (what := _opens_a_database(node)):
                if relative not in OWN_CONNECTIONS_ALLOWED:
                    found.append(f"{relative}:{node.lineno}: {what}")
            elif isinstance(node, ast.ImportFrom) and _imports_a_driver_connect(node):
                found.append(f"{relative}:{node.lineno}: from {node.module} import ...")
    assert not found, "open the database with strongroom.db.engine.create_engine:\n" + "\n".join(
        found
    )
    assert (SRC / "db" / "engine.py").is_file()


def test_a_non_durable_unit_of_work_is_relaxed_for_itself_alone(db_url: str) -> None:
    """UnitOfWork(durable=False), the DPoP replay store's at a resource request: its own commit
    does not wait for the disk (SQLite synchronous=NORMAL, PostgreSQL synchronous_commit=off),
    what it wrote is committed, and its connection goes back to the pool durable again."""
    engine = create_engine(db_url, pool_size=1)
    try:
        migrate.upgrade(engine)
        with UnitOfWork(engine, durable=False) as uow:
            relaxed = uow.conn
            if uow.sqlite:
                assert durability_settings("sqlite", relaxed)["synchronous"] == 1  # NORMAL
            else:
                assert durability_settings("postgresql", relaxed)["synchronous_commit"] == "off"
            assert store.first_use(uow, "k" * 64, 2**62, 0)
            uow.commit()
        with UnitOfWork(engine) as uow:
            assert uow.conn is relaxed  # the pool's one connection, handed out again
            assert durability_settings(engine.dialect.name, uow.conn) == expected_settings(engine)
            assert not store.first_use(uow, "k" * 64, 2**62, 0)  # it was committed
        with pytest.raises(RuntimeError), UnitOfWork(engine, durable=False):
            raise RuntimeError("rolled back")
        assert_every_connection_durable(engine, 1)
    finally:
        engine.dispose()
