"""Schema migrations, shipped inside the package and run by `strongroom db upgrade`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

from strongroom.core.errors import SchemaOutOfDate


def _config() -> Config:
    ini = resources.files("strongroom.db").joinpath("alembic.ini")
    return Config(str(ini))


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def describe(engine: Engine) -> str:
    """The database in words for a message: a SQLite file's absolute path (a relative URL
    depends on the current directory), else the URL without its password."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(Path(url.database).resolve())
    return url.render_as_string(hide_password=True)


def require_current(engine: Engine) -> None:
    current = current_revision(engine)
    if current is None:
        # Most often not a new deployment but the wrong database: a command run from another
        # directory than the one holding ./strongroom.db, or a URL not set in this shell.
        raise SchemaOutOfDate(
            f"database schema is at empty, this Strongroom needs {head_revision()}: "
            f"{describe(engine)} holds no Strongroom schema. If it is meant to be a new one, "
            "run `strongroom db upgrade`; if not, point STRONGROOM_DATABASE_URL at your "
            "database (the default, sqlite:///./strongroom.db, is in the current directory)"
        )
    if current != head_revision():
        raise SchemaOutOfDate(
            f"database schema is at {current}, this Strongroom needs "
            f"{head_revision()}: run `strongroom db upgrade`"
        )
