"""Envelope encryption on both backends and under both key managers (the local keyring and
PKCS#11 on SoftHSM2): per-subject data keys wrapped by a versioned KEK, fields bound to their
record, crypto-shredding, and rotation with rewrap."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from strongroom.core.errors import NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.security import aead
from strongroom.security import kms as kms_module
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import DataErased, KeyUnavailableError
from strongroom.security.kms import (
    KeyManager,
    KeyringError,
    KeyState,
    LocalKeyring,
    master_key_from_secret,
    new_master_secret,
)
from tests.support import softhsm


def make_key_manager(kind: str, tmp_path: Path) -> KeyManager:
    """A fresh key manager of `kind`: version 1 active, nothing else."""
    if kind == "local":
        master = master_key_from_secret(new_master_secret())
        return LocalKeyring.create(tmp_path / "keyring.json", master)
    from strongroom.security.pkcs11 import Pkcs11KeyManager

    token = softhsm.token_or_skip()
    hsm = Pkcs11KeyManager(token.module, token.label, token.pin)
    hsm.initialise()
    return hsm


@pytest.fixture(params=["local", "pkcs11"])
def keyring(request: pytest.FixtureRequest, tmp_path: Path) -> KeyManager:
    return make_key_manager(request.param, tmp_path)


def test_a_field_opens_only_in_its_own_record_and_field(
    db_engine: Engine, keyring: KeyManager
) -> None:
    envelope = Envelope(keyring)
    with UnitOfWork(db_engine) as uow:
        key = envelope.new_subject(uow, "ten_a", "cus_1", SubjectKind.CUSTOMER)
        uow.commit()
    sealed = key.seal("customers/cus_1", "email", b"ada@example.com")
    assert b"ada@example.com" not in sealed
    with UnitOfWork(db_engine, write=False) as uow:
        again = envelope.subject(uow, "ten_a", "cus_1")
        with pytest.raises(NotFound):
            envelope.subject(uow, "ten_b", "cus_1")  # another tenant's subject
    assert again.open("customers/cus_1", "email", sealed) == b"ada@example.com"
    with pytest.raises(aead.DecryptionFailed):
        again.open("customers/cus_2", "email", sealed)  # moved to another row
    with pytest.raises(aead.DecryptionFailed):
        again.open("customers/cus_1", "phone", sealed)  # moved to another field
    tampered = sealed[:-1] + bytes((sealed[-1] ^ 1,))
    with pytest.raises(aead.DecryptionFailed):
        again.open("customers/cus_1", "email", tampered)


def test_shredding_makes_the_data_unrecoverable(db_engine: Engine, keyring: KeyManager) -> None:
    envelope = Envelope(keyring)
    with UnitOfWork(db_engine) as uow:
        envelope.new_subject(uow, "ten_a", "cus_1", SubjectKind.CUSTOMER)
        uow.commit()
    with UnitOfWork(db_engine) as uow:
        assert envelope.shred(uow, "ten_a", "cus_1") is True
        uow.commit()
    with UnitOfWork(db_engine) as uow:
        assert envelope.shred(uow, "ten_a", "cus_1") is False
        with pytest.raises(DataErased):
            envelope.subject(uow, "ten_a", "cus_1")
        row = uow.cursor().execute("SELECT wrapped FROM subject_keys").fetchone()
    assert row[0] is None


def test_rotation_then_rewrap_moves_every_key_and_loses_none(
    db_engine: Engine, keyring: KeyManager
) -> None:
    envelope = Envelope(keyring)
    sealed = {}
    with UnitOfWork(db_engine) as uow:
        for n in range(1_200):  # more than one rewrap batch
            key = envelope.new_subject(uow, "ten_a", f"cus_{n}", SubjectKind.CUSTOMER)
            sealed[n] = key.seal(f"customers/cus_{n}", "name", f"name {n}".encode())
        uow.commit()
    assert keyring.rotate().version == 2
    assert envelope.wrapped_by_version(db_engine) == {1: 1_200}
    assert envelope.rewrap(db_engine) == 1_200
    assert envelope.wrapped_by_version(db_engine) == {2: 1_200}
    keyring.set_state(1, KeyState.DISABLED)
    with UnitOfWork(db_engine, write=False) as uow:
        for n, value in sealed.items():
            key = envelope.subject(uow, "ten_a", f"cus_{n}")
            assert key.open(f"customers/cus_{n}", "name", value) == f"name {n}".encode()


def test_a_disabled_version_refuses_what_it_wrapped(db_engine: Engine, keyring: KeyManager) -> None:
    envelope = Envelope(keyring)
    with UnitOfWork(db_engine) as uow:
        envelope.new_subject(uow, "ten_a", "cus_1", SubjectKind.CUSTOMER)
        uow.commit()
    keyring.rotate()
    keyring.set_state(1, KeyState.DISABLED)
    with UnitOfWork(db_engine, write=False) as uow, pytest.raises(KeyUnavailableError):
        envelope.subject(uow, "ten_a", "cus_1")
    keyring.set_state(1, KeyState.RETIRED)  # enabled again
    with UnitOfWork(db_engine, write=False) as uow:
        envelope.subject(uow, "ten_a", "cus_1")


def test_a_keyring_opens_only_under_its_master_key(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    LocalKeyring.create(path, master_key_from_secret(new_master_secret()))
    assert b"sealed" in path.read_bytes()
    with pytest.raises(KeyringError, match="does not open under this master key"):
        LocalKeyring(path, master_key_from_secret(new_master_secret()))


def test_another_process_sees_a_rotation(tmp_path: Path) -> None:
    """Two keyring objects on one file stand for two processes of one host."""
    path = tmp_path / "keyring.json"
    master = master_key_from_secret(new_master_secret())
    first = LocalKeyring.create(path, master)
    second = LocalKeyring(path, master)
    first.rotate()
    wrapped = first.wrap(b"k" * 32, b"ctx")
    assert wrapped.version == 2
    assert second.active_version() == 2
    assert second.unwrap(wrapped, b"ctx") == b"k" * 32
    assert first.mac("p", b"x") == second.mac("p", b"x") != first.mac("q", b"x")


def test_a_mac_is_hmac_sha256_under_its_purposes_key_whatever_came_before(
    tmp_path: Path,
) -> None:
    """Each mac works on a copy of the purpose's keyed HMAC: a mac never carries the data of an
    earlier one (the blind indexes stored by earlier versions still match)."""
    keyring = LocalKeyring.create(
        tmp_path / "keyring.json", master_key_from_secret(new_master_secret())
    )
    key = kms_module._hkdf(keyring._mac_root, b"strongroom mac\x1fp")
    for data in (b"", b"198.51.100.7", b"x" * 1_000, b"198.51.100.7"):
        assert keyring.mac("p", data) == hmac.new(key, data, hashlib.sha256).digest()
