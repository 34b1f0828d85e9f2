"""`UnitOfWork.after_commit`: a callback runs once its transaction has committed, never when it
rolls back (explicitly, by leaving the block without a commit, or by the body raising); one
that raises is logged and does not undo the commit nor stop the others."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from strongroom.db.uow import UnitOfWork


def test_callbacks_run_after_a_commit_only(
    db_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    ran: list[str] = []
    with UnitOfWork(db_engine) as uow:
        uow.after_commit(lambda: ran.append("rolled back"))
        uow.rollback()
    with UnitOfWork(db_engine) as uow:
        uow.after_commit(lambda: ran.append("left without a commit"))

    def body_fails() -> None:
        with UnitOfWork(db_engine) as uow:
            uow.after_commit(lambda: ran.append("raised"))
            raise RuntimeError("the body fails")

    with pytest.raises(RuntimeError):
        body_fails()
    assert ran == []

    def fails() -> None:
        raise ValueError("a callback fails")

    with UnitOfWork(db_engine) as uow:
        uow.cursor().execute("DELETE FROM aml_alerts")
        uow.after_commit(fails)
        uow.after_commit(lambda: ran.append("committed"))
        uow.commit()
    assert ran == ["committed"]
    assert "a callback after a commit failed" in caplog.text
