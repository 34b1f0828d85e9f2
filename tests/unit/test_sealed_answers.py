"""Stored idempotency answers are sealed per tenant and key: one copied to another key or
tenant does not open, and the key is the key manager's (a keyring with another MAC root
cannot open it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from strongroom.security.aead import DecryptionFailed
from strongroom.security.answers import SealedAnswers
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret


def _keyring(path: Path) -> LocalKeyring:
    return LocalKeyring.create(path, master_key_from_secret(new_master_secret()))


def test_an_answer_opens_only_for_its_tenant_and_key(tmp_path: Path) -> None:
    answers = SealedAnswers(_keyring(tmp_path / "k.json"))
    sealed = answers.seal("ten_a", "key-1", b'{"secret":"whsec_x"}')
    assert b"whsec_x" not in sealed
    assert answers.open("ten_a", "key-1", sealed) == b'{"secret":"whsec_x"}'
    for tenant, key in (("ten_b", "key-1"), ("ten_a", "key-2")):
        with pytest.raises(DecryptionFailed):
            answers.open(tenant, key, sealed)
    other = SealedAnswers(_keyring(tmp_path / "other.json"))
    with pytest.raises(DecryptionFailed):
        other.open("ten_a", "key-1", sealed)
