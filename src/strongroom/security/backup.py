"""Recovery export of the local keyring (`strongroom keys export` / `restore`).

The export is every key-encryption key version (with its state) and the MAC root, sealed with
AES-256-GCM under a key derived from a *recovery secret* by scrypt. The recovery secret is not
the master secret: it may be a passphrase kept offline (a safe, a password manager of the
security officers), so that losing the master secret, or the keyring file, loses no data:
restore the export into a keyring sealed under a new master key (docs/security.md "Keys").
scrypt is slow and memory-hard on purpose: an export that leaks is a passphrase to guess, and
each guess costs about 128 MiB and a fraction of a second.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, Final

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from strongroom.security import aead
from strongroom.security.kms import KeyringMaterial, KeyState, KeyVersion

EXPORT_FORMAT: Final = "strongroom-keyring-export/1"
RECOVERY_SECRET_CHARS_MIN: Final = 16  # a passphrase of several words, or random bytes
# scrypt's cost: N = 2^17, r = 8 (128 MiB), p = 1, as RFC 7914 suggests for file encryption.
SCRYPT_LOG2_N: Final = 17
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
SCRYPT_LOG2_N_MAX: Final = 20  # what a restore accepts from a file (1 GiB at r = 8)
SALT_BYTES: Final = 16
_AAD: Final = aead.context("strongroom keyring export v1")


class BackupError(Exception):
    """The export is malformed, or does not open under this recovery secret."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def recovery_secret(text: str) -> bytes:
    """The recovery secret from a file's text (surrounding whitespace ignored)."""
    secret = text.strip()
    if len(secret) < RECOVERY_SECRET_CHARS_MIN:
        raise BackupError(f"the recovery secret is at least {RECOVERY_SECRET_CHARS_MIN} characters")
    return secret.encode()


def _derive(secret: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=aead.KEY_BYTES, n=2**log2_n, r=r, p=p).derive(secret)


def export(material: KeyringMaterial, secret: bytes, *, log2_n: int = SCRYPT_LOG2_N) -> bytes:
    """The export document (JSON): only the KDF's parameters and the sealed keys."""
    body = {
        "versions": [
            {
                "version": v.version,
                "state": v.state.value,
                "created_at": v.created_at,
                "key": _b64(material.keks[v.version]) if v.version in material.keks else None,
            }
            for v in material.versions
        ],
        "mac_root": _b64(material.mac_root),
    }
    salt = os.urandom(SALT_BYTES)
    key = _derive(secret, salt, log2_n, SCRYPT_R, SCRYPT_P)
    doc = {
        "format": EXPORT_FORMAT,
        "kdf": {"name": "scrypt", "log2_n": log2_n, "r": SCRYPT_R, "p": SCRYPT_P},
        "salt": _b64(salt),
        "sealed": _b64(aead.seal(key, json.dumps(body).encode(), _AAD)),
    }
    return json.dumps(doc, indent=1).encode()


def restore(document: bytes, secret: bytes) -> KeyringMaterial:
    """The keys of an export; BackupError when it is not one or the secret is wrong."""
    try:
        doc: dict[str, Any] = json.loads(document)
        if doc.get("format") != EXPORT_FORMAT or doc["kdf"]["name"] != "scrypt":
            raise BackupError(f"not a keyring export of format {EXPORT_FORMAT}")
        log2_n, r, p = int(doc["kdf"]["log2_n"]), int(doc["kdf"]["r"]), int(doc["kdf"]["p"])
        if not (10 <= log2_n <= SCRYPT_LOG2_N_MAX and 1 <= r <= 32 and 1 <= p <= 16):
            raise BackupError("the export's scrypt parameters are out of bounds")
        key = _derive(secret, _unb64(doc["salt"]), log2_n, r, p)
        body = json.loads(aead.open_sealed(key, _unb64(doc["sealed"]), _AAD))
        versions = tuple(
            KeyVersion(int(v["version"]), KeyState(v["state"]), int(v["created_at"]))
            for v in body["versions"]
        )
        keks = {int(v["version"]): _unb64(v["key"]) for v in body["versions"] if v["key"]}
        material = KeyringMaterial(versions, keks, _unb64(body["mac_root"]))
    except aead.DecryptionFailed:
        raise BackupError("the export does not open under this recovery secret") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BackupError(f"the export is malformed ({type(exc).__name__})") from None
    for v in material.versions:
        if v.state is not KeyState.DESTROYED and v.version not in material.keks:
            raise BackupError(f"the export lacks the key of version {v.version}")
    if sum(v.state is KeyState.ACTIVE for v in material.versions) != 1:
        raise BackupError("the export does not have exactly one active version")
    return material
