"""External vectors for the primitives of sign-in: RFC 9106 Argon2id through argon2-cffi (its
low-level API, with a secret key and associated data), RFC 4226 HOTP and RFC 6238 TOTP (SHA-1,
SHA-256, SHA-512) through security/auth/totp.py, and RFC 4231 HMAC-SHA-256/512 through the
same module's HMAC helper. The vectors come from ../shared/data/vectors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from argon2.low_level import ARGON2_VERSION, Type, core, ffi, hash_secret_raw, lib

from strongroom.security.auth import totp


def _records(path: Path) -> list[dict[str, str]]:
    """The `KEY = value` blocks of a pyca/cryptography vector file."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        if not line:
            if current:
                records.append(current)
                current = {}
            continue
        key, _, value = line.partition("=")
        current[key.strip().lower()] = value.strip()
    if current:
        records.append(current)
    return records


def _argon2id(record: dict[str, str]) -> bytes:
    """Argon2id through argon2-cffi's core, which takes the optional secret and associated
    data that hash_secret_raw does not."""
    password = bytes.fromhex(record.get("pass", ""))
    salt = bytes.fromhex(record["salt"])
    secret = bytes.fromhex(record.get("secret", ""))
    ad = bytes.fromhex(record.get("ad", ""))
    length = int(record["length"])
    out = ffi.new("uint8_t[]", length)
    keep: list[Any] = []

    def buffer(data: bytes) -> Any:
        if not data:
            return ffi.NULL
        made = ffi.new("uint8_t[]", data)
        keep.append(made)
        return made

    ctx = ffi.new(
        "argon2_context *",
        {
            "out": out,
            "outlen": length,
            "pwd": buffer(password),
            "pwdlen": len(password),
            "salt": buffer(salt),
            "saltlen": len(salt),
            "secret": buffer(secret),
            "secretlen": len(secret),
            "ad": buffer(ad),
            "adlen": len(ad),
            "t_cost": int(record["iter"]),
            "m_cost": int(record["memcost"]),
            "lanes": int(record["lanes"]),
            "threads": int(record["lanes"]),
            "allocate_cbk": ffi.NULL,
            "free_cbk": ffi.NULL,
            "flags": lib.ARGON2_DEFAULT_FLAGS,
            "version": ARGON2_VERSION,
        },
    )
    assert core(ctx, Type.ID.value) == lib.ARGON2_OK
    return bytes(ffi.buffer(out, length))


def test_rfc_9106_argon2id_vector_with_secret_and_associated_data(shared_data: Path) -> None:
    records = _records(shared_data / "vectors" / "cryptography-vectors" / "argon2id.txt")
    rfc = next(r for r in records if "secret" in r and "ad" in r)
    # RFC 9106 section 5.3, the Argon2id test vector.
    assert rfc["output"] == "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
    assert _argon2id(rfc).hex() == rfc["output"]


def test_every_argon2id_vector(shared_data: Path) -> None:
    records = _records(shared_data / "vectors" / "cryptography-vectors" / "argon2id.txt")
    checked = 0
    for record in records:
        if "output" not in record or int(record["memcost"]) > 256 * 1024:
            continue
        assert _argon2id(record).hex() == record["output"], record.get("count")
        if "secret" not in record and "ad" not in record:
            # The high-level entry point agrees where it can take the input.
            raw = hash_secret_raw(
                bytes.fromhex(record.get("pass", "")),
                bytes.fromhex(record["salt"]),
                int(record["iter"]),
                int(record["memcost"]),
                int(record["lanes"]),
                int(record["length"]),
                Type.ID,
            )
            assert raw.hex() == record["output"]
        checked += 1
    assert checked >= 3


def _misc(shared_data: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (shared_data / "vectors" / "strongroom-misc-vectors.json").read_text()
    )
    return data


def test_rfc_4226_hotp(shared_data: Path) -> None:
    vector = _misc(shared_data)["rfc4226_hotp"]
    secret = vector["secret_ascii"].encode()
    got = [totp.hotp(secret, counter, digits=vector["digits"]) for counter in range(10)]
    assert got == vector["values"]


def test_rfc_6238_totp_sha1_sha256_sha512(shared_data: Path) -> None:
    vectors = _misc(shared_data)["rfc6238_totp"]["vectors"]
    assert {v["algorithm"] for v in vectors} == {"SHA1", "SHA256", "SHA512"}
    for v in vectors:
        got = totp.totp(
            v["seed_ascii"].encode(),
            v["time"],
            digits=v["digits"],
            algorithm=v["algorithm"],
            step_s=v["step"],
        )
        assert got == v["otp"], v


@pytest.mark.parametrize(("name", "algorithm"), [("sha256", "SHA256"), ("sha512", "SHA512")])
def test_rfc_4231_hmac(shared_data: Path, name: str, algorithm: str) -> None:
    path = shared_data / "vectors" / "cryptography-vectors" / f"rfc-4231-{name}.txt"
    cases = [r for r in _records(path) if "md" in r]
    assert len(cases) >= 6
    for case in cases:
        mac = totp.hmac_digest(algorithm, bytes.fromhex(case["key"]), bytes.fromhex(case["msg"]))
        assert mac.hex() == case["md"]


def test_a_code_is_accepted_once_and_within_one_step() -> None:
    secret = b"12345678901234567890"
    now = 1_111_111_109
    code = totp.totp(secret, now)
    step = totp.verify(secret, code, now, after_step=None)
    assert step == totp.time_step(now)
    assert totp.verify(secret, code, now, after_step=step) is None  # used once
    assert totp.verify(secret, code, now + 30, after_step=None) == step  # drift of a step
    assert totp.verify(secret, code, now + 90, after_step=None) is None  # too old
    assert totp.verify(secret, "12345", now, after_step=None) is None  # malformed


def test_the_otpauth_uri_names_no_email() -> None:
    uri = totp.otpauth_uri(b"\x01" * 20, issuer="Strongroom", account="usr_1")
    assert uri.startswith("otpauth://totp/Strongroom:usr_1?secret=AEAQCAIBAEAQCAIBAEAQCAIBAEAQCAIB")
    assert "issuer=Strongroom" in uri
