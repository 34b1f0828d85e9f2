"""Strongroom's own AES-256-GCM wrapper (security/aead.py encrypt/decrypt) and its HKDF-SHA256
(security/kms.py hkdf_sha256) against published vectors: Wycheproof's aes_gcm_test.json and
hkdf_sha256_test.json, and RFC 5869's SHA-256 test cases (vectors/cryptography-vectors).

What is skipped, and why: the wrapper is AES-256 only (it asserts a 32-byte key: Strongroom
never uses AES-128 or AES-192), so the 128- and 192-bit key groups are not run. Every 256-bit
case is run. The primitive underneath (`cryptography`, OpenSSL) takes nonces of 8 to 128
bytes (Strongroom's own seal always draws 12): for a case whose nonce is outside that range
(SmallIv, ZeroLengthIv and the 2,056-bit LongIv case) the check is that the wrapper refuses it,
encrypting and decrypting alike, rather than answering anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.security import aead
from strongroom.security.kms import hkdf_sha256
from tests.conftest import SHARED_DATA

WYCHEPROOF = Path("vectors") / "wycheproof"
RFC5869 = Path("vectors") / "cryptography-vectors" / "rfc-5869-HKDF-SHA256.txt"
MISSING = "<shared data missing>"
NONCE_BYTES_MIN, NONCE_BYTES_MAX = 8, 128  # the nonces `cryptography`'s AESGCM takes


def _cases(name: str, keep: Any) -> list[str]:
    """Test ids `tcId` of the file's cases that `keep(group)` selects, listed at collection;
    without the data one placeholder remains, which the `shared_data` fixture skips (or fails
    when the data is required)."""
    path = SHARED_DATA / WYCHEPROOF / name
    if not path.is_file():
        return [MISSING]
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [str(t["tcId"]) for g in doc["testGroups"] if keep(g) for t in g["tests"]]


def _case(shared_data: Path, name: str, tc_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = json.loads((shared_data / WYCHEPROOF / name).read_text(encoding="utf-8"))
    for group in doc["testGroups"]:
        for test in group["tests"]:
            if str(test["tcId"]) == tc_id:
                return group, test
    raise AssertionError(f"no case {tc_id} in {name}")


def _aes256(group: dict[str, Any]) -> bool:
    return int(group["keySize"]) == 8 * aead.KEY_BYTES


def _all(group: dict[str, Any]) -> bool:
    del group
    return True


def test_the_vectors_cover_every_aes256_group(shared_data: Path) -> None:
    """The filter above leaves out the smaller keys only: every 256-bit test is collected."""
    doc = json.loads((shared_data / WYCHEPROOF / "aes_gcm_test.json").read_text())
    expected = sum(len(g["tests"]) for g in doc["testGroups"] if g["keySize"] == 256)
    assert len(_cases("aes_gcm_test.json", _aes256)) == expected > 80


@pytest.mark.parametrize("tc_id", _cases("aes_gcm_test.json", _aes256))
def test_wycheproof_aes_256_gcm(shared_data: Path, tc_id: str) -> None:
    group, t = _case(shared_data, "aes_gcm_test.json", tc_id)
    assert _aes256(group)
    assert int(group["tagSize"]) == 8 * aead.TAG_BYTES
    key, iv, aad = bytes.fromhex(t["key"]), bytes.fromhex(t["iv"]), bytes.fromhex(t["aad"])
    msg, sealed = bytes.fromhex(t["msg"]), bytes.fromhex(t["ct"] + t["tag"])
    if not NONCE_BYTES_MIN <= len(iv) <= NONCE_BYTES_MAX:
        with pytest.raises(ValueError, match="Nonce"):
            aead.encrypt(key, iv, msg, aad)
        with pytest.raises(aead.DecryptionFailed):
            aead.decrypt(key, iv, sealed, aad)
        return
    if t["result"] == "valid":
        assert aead.encrypt(key, iv, msg, aad) == sealed
        assert aead.decrypt(key, iv, sealed, aad) == msg
        return
    # Invalid: a modified tag and the like. Never opens.
    with pytest.raises(aead.DecryptionFailed):
        aead.decrypt(key, iv, sealed, aad)


@pytest.mark.parametrize("tc_id", _cases("hkdf_sha256_test.json", _all))
def test_wycheproof_hkdf_sha256(shared_data: Path, tc_id: str) -> None:
    _, t = _case(shared_data, "hkdf_sha256_test.json", tc_id)
    ikm, salt, info = bytes.fromhex(t["ikm"]), bytes.fromhex(t["salt"]), bytes.fromhex(t["info"])
    size = int(t["size"])
    if t["result"] == "valid":
        assert hkdf_sha256(ikm, info, salt=salt, length=size).hex() == t["okm"]
        return
    with pytest.raises(ValueError, match="larger than"):  # over 255 hash lengths
        hkdf_sha256(ikm, info, salt=salt, length=size)


def _rfc5869(text: str) -> list[dict[str, str]]:
    cases: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith("COUNT"):
            cases.append({})
        elif "=" in line and cases:
            name, _, value = line.partition("=")
            cases[-1][name.strip()] = value.strip()
    return cases


def test_rfc5869_hkdf_sha256(shared_data: Path) -> None:
    cases = _rfc5869((shared_data / RFC5869).read_text(encoding="ascii"))
    assert len(cases) == 3
    for case in cases:
        assert case["Hash"] == "SHA-256"
        okm = hkdf_sha256(
            bytes.fromhex(case["IKM"]),
            bytes.fromhex(case["info"]),
            salt=bytes.fromhex(case["salt"]),
            length=int(case["L"]),
        )
        assert okm.hex() == case["OKM"]
