"""Schema migrations, shipped inside the package and run by `strongroom db upgrade`."""

from __future__ import annotations

from importlib import resources

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


def require_current(engine: Engine) -> None:
    current = current_revision(engine)
    if current != head_revision():
        raise SchemaOutOfDate(
            f"database schema is at {current or 'empty'}, this Strongroom needs "
            f"{head_revision()}: run `strongroom db upgrade`"
        )
