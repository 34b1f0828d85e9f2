"""Findings of the attack on key management (issue 10's review), each kept as the test that
failed before its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from strongroom.db.uow import UnitOfWork
from strongroom.security import aead
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import KeyUnavailableError
from strongroom.security.kms import KeyState, LocalKeyring


def _keyring(tmp_path: Path) -> tuple[Path, bytes]:
    path, master = tmp_path / "keyring.json", aead.new_key()
    LocalKeyring.create(path, master)
    return path, master


def test_a_version_disabled_by_another_process_unwraps_nothing_here(
    db_engine: Engine, tmp_path: Path
) -> None:
    """`strongroom keys disable 1` runs in its own process while the servers run: a server
    that only reads (no wrap since) must honour it at once, not go on unwrapping under the
    disabled version from its copy of the keyring until something makes it read the file."""
    path, master = _keyring(tmp_path)
    server = Envelope(LocalKeyring(path, master))
    with UnitOfWork(db_engine) as uow:
        server.new_subject(uow, "ten_a", "cus_1", SubjectKind.CUSTOMER)
        uow.commit()
    with UnitOfWork(db_engine, write=False) as uow:
        server.subject(uow, "ten_a", "cus_1")  # opens, under version 1
    cli = LocalKeyring(path, master)  # the CLI's process
    cli.rotate()
    cli.set_state(1, KeyState.DISABLED)
    with UnitOfWork(db_engine, write=False) as uow, pytest.raises(KeyUnavailableError):
        server.subject(uow, "ten_a", "cus_1")
    cli.set_state(1, KeyState.RETIRED)  # enabled again: opens again
    with UnitOfWork(db_engine, write=False) as uow:
        server.subject(uow, "ten_a", "cus_1")


def test_a_disabled_version_does_not_stop_the_rewrap_of_the_others(
    db_engine: Engine, tmp_path: Path
) -> None:
    """Disabling a version that still wraps data keys is allowed (its subjects answer
    key_unavailable): the rewrap job must still move every other version's keys, not fail on
    the first key it cannot unwrap, batch after batch, for ever."""
    path, master = _keyring(tmp_path)
    kms = LocalKeyring(path, master)
    envelope = Envelope(kms)
    with UnitOfWork(db_engine) as uow:
        envelope.new_subject(uow, "ten_a", "cus_a", SubjectKind.CUSTOMER)  # under version 1
        kms.rotate()
        envelope.new_subject(uow, "ten_a", "cus_b", SubjectKind.CUSTOMER)  # under version 2
        uow.commit()
    kms.rotate()
    kms.set_state(1, KeyState.DISABLED)
    assert envelope.rewrap(db_engine) == 1
    assert envelope.wrapped_by_version(db_engine) == {1: 1, 3: 1}
    with UnitOfWork(db_engine, write=False) as uow:
        envelope.subject(uow, "ten_a", "cus_b")
        with pytest.raises(KeyUnavailableError):
            envelope.subject(uow, "ten_a", "cus_a")
