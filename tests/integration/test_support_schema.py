"""Self-test of tests/support/schema.py: a test's database made from the migrated template is
what migrate.upgrade makes (same revision, tables and columns), each copy is its own, and a
database that already holds something is migrated in place, never replaced."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from tests.conftest import postgres_url_or_skip
from tests.support import postgres as pg
from tests.support import schema


def _shape(url: str) -> dict[str, list[str]]:
    engine = create_engine(url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
        inspector = sa.inspect(engine)
        return {
            table: sorted(str(c["name"]) for c in inspector.get_columns(table))
            for table in sorted(inspector.get_table_names())
        }
    finally:
        engine.dispose()


def _empty(db_url: str, tmp_path: Path, name: str) -> str:
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / name}"
    return postgres_url_or_skip()


def _copy(db_url: str, tmp_path: Path, name: str) -> str:
    """A fresh database from the template, as the db_url fixture of a db_engine test makes it."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / name}"
        schema.upgrade(url)
        return url
    return postgres_url_or_skip(migrated=True)


def _count_tenants(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT COUNT(*) FROM tenants")).scalar_one())
    finally:
        engine.dispose()


def _add_tenant(url: str, tenant_id: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO tenants (id, name, created_at) VALUES (:i, :i, 1)"),
                {"i": tenant_id},
            )
    finally:
        engine.dispose()


def test_a_copy_is_what_the_migrations_make_and_its_own(db_url: str, tmp_path: Path) -> None:
    plain = _empty(db_url, tmp_path, "plain.db")
    first = _copy(db_url, tmp_path, "first.db")
    second = None
    try:
        engine = create_engine(plain)
        migrate.upgrade(engine)
        engine.dispose()
        assert _shape(first) == _shape(plain)
        assert _count_tenants(first) == _count_tenants(plain) == 1  # the default tenant
        _add_tenant(first, "ten_copy_1")
        second = _copy(db_url, tmp_path, "second.db")
        assert _count_tenants(second) == 1  # the first copy's write is not in the next
        assert _count_tenants(first) == 2
    finally:
        for url in (plain, first, second):
            if url is not None and url.startswith("postgresql"):
                pg.drop_database(url)


def test_a_database_holding_anything_is_migrated_in_place(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE keep_me (x integer)"))
            conn.execute(sa.text("INSERT INTO keep_me VALUES (7)"))
        schema.upgrade(db_url)
        assert migrate.current_revision(engine) == migrate.head_revision()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT x FROM keep_me")).scalar_one() == 7
    finally:
        engine.dispose()
