"""The recovery export (security/backup.py): it round-trips, holds no key in clear, opens only
under its recovery secret, and refuses a tampered document or a KDF cost out of bounds."""

from __future__ import annotations

import base64
import json
import os

import pytest

from strongroom.security import backup
from strongroom.security.kms import KeyringMaterial, KeyState, KeyVersion

SECRET = b"a recovery passphrase of several words"
CHEAP = 10  # scrypt cost for these tests only (the CLI uses backup.SCRYPT_LOG2_N)


def _material() -> KeyringMaterial:
    versions = (
        KeyVersion(1, KeyState.DESTROYED, 1),
        KeyVersion(2, KeyState.RETIRED, 2),
        KeyVersion(3, KeyState.ACTIVE, 3),
    )
    return KeyringMaterial(versions, {2: os.urandom(32), 3: os.urandom(32)}, os.urandom(32))


def test_an_export_round_trips_and_holds_no_key_in_clear() -> None:
    material = _material()
    document = backup.export(material, SECRET, log2_n=CHEAP)
    for raw in (*material.keks.values(), material.mac_root):
        assert raw not in document
        assert base64.b64encode(raw) not in document
    assert backup.restore(document, SECRET) == material


def test_an_export_opens_only_under_its_secret_and_untampered() -> None:
    document = backup.export(_material(), SECRET, log2_n=CHEAP)
    with pytest.raises(backup.BackupError, match="recovery secret"):
        backup.restore(document, b"another passphrase, also long")
    doc = json.loads(document)
    sealed = bytearray(base64.b64decode(doc["sealed"]))
    sealed[-1] ^= 1
    doc["sealed"] = base64.b64encode(bytes(sealed)).decode()
    with pytest.raises(backup.BackupError, match="recovery secret"):
        backup.restore(json.dumps(doc).encode(), SECRET)
    doc = json.loads(document)
    doc["kdf"]["log2_n"] = 40  # a cost no restore should be made to pay
    with pytest.raises(backup.BackupError, match="out of bounds"):
        backup.restore(json.dumps(doc).encode(), SECRET)
    with pytest.raises(backup.BackupError, match="not a keyring export"):
        backup.restore(b'{"format": "something else", "kdf": {"name": "scrypt"}}', SECRET)


def test_a_short_recovery_secret_is_refused() -> None:
    with pytest.raises(backup.BackupError, match="at least 16"):
        backup.recovery_secret("short\n")
    assert backup.recovery_secret(" " + SECRET.decode() + "\n") == SECRET
