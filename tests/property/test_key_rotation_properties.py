"""Rotation and rewrap never lose data: whatever sequence of subject creations, rotations,
rewraps, disabling of versions that no longer wrap anything, and shreds is applied, every live
subject's value still opens (and only under its own record), and no shredded subject's value
ever opens again."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.security import aead
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import DataErased
from strongroom.security.kms import (
    KeyState,
    LocalKeyring,
    master_key_from_secret,
    new_master_secret,
)

Op = tuple[str, int]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 7)),
        st.tuples(st.just("rotate"), st.just(0)),
        st.tuples(st.just("rewrap"), st.just(0)),
        st.tuples(st.just("disable_old"), st.just(0)),
        st.tuples(st.just("shred"), st.integers(0, 7)),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ops)
def test_rotation_and_rewrap_never_lose_or_resurrect_data(sequence: list[Op]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'p.db'}", sqlite_cache_mib=2)
        try:
            migrate.upgrade(engine)
            keyring = LocalKeyring.create(
                Path(tmp) / "keyring.json", master_key_from_secret(new_master_secret())
            )
            _check(engine, Envelope(keyring), keyring, sequence)
        finally:
            engine.dispose()


def _check(engine: Engine, envelope: Envelope, keyring: LocalKeyring, sequence: list[Op]) -> None:
    live: dict[str, bytes] = {}  # subject -> its sealed value
    shredded: dict[str, bytes] = {}
    for op, n in sequence:
        subject = f"cus_{n}"
        if op == "create" and subject not in live and subject not in shredded:
            with UnitOfWork(engine) as uow:
                key = envelope.new_subject(uow, "ten_a", subject, SubjectKind.CUSTOMER)
                uow.commit()
            live[subject] = key.seal(f"customers/{subject}", "name", subject.encode())
        elif op == "rotate":
            keyring.rotate()
        elif op == "rewrap":
            envelope.rewrap(engine)
        elif op == "disable_old":
            # An operator disables the retired versions that the status shows as wrapping
            # nothing (the CLI refuses nothing here: this is the safe use).
            wraps = envelope.wrapped_by_version(engine)
            for v in keyring.versions():
                if v.state is KeyState.RETIRED and not wraps.get(v.version):
                    keyring.set_state(v.version, KeyState.DISABLED)
        elif op == "shred" and subject in live:
            with UnitOfWork(engine) as uow:
                assert envelope.shred(uow, "ten_a", subject)
                uow.commit()
            shredded[subject] = live.pop(subject)
        _invariants(engine, envelope, live, shredded)


def _invariants(
    engine: Engine, envelope: Envelope, live: dict[str, bytes], shredded: dict[str, bytes]
) -> None:
    with UnitOfWork(engine, write=False) as uow:
        for subject, sealed in live.items():
            key = envelope.subject(uow, "ten_a", subject)
            assert key.open(f"customers/{subject}", "name", sealed) == subject.encode()
            try:
                key.open("customers/other", "name", sealed)
            except aead.DecryptionFailed:
                pass
            else:
                raise AssertionError("a value opened under another record")
        for subject in shredded:
            try:
                envelope.subject(uow, "ten_a", subject)
            except DataErased:
                continue
            raise AssertionError(f"{subject} was shredded but its key came back")
