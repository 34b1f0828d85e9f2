"""The key-management port and the local keyring adapter.

Key-encryption keys (KEKs) never leave their keeper: a `KeyManager` wraps and unwraps data keys
under them, keyed hashes (blind indexes, card fingerprints) are computed under its MAC keys, and
each KEK has versions (one active; older ones still unwrap until disabled). Two adapters:
`LocalKeyring` here (a file sealed under a master secret) and PKCS#11 (`security/pkcs11.py`).
A Vault transit or cloud KMS adapter implements the same five operations (docs/security.md).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from strongroom.core import clock
from strongroom.security import aead

KEYRING_FORMAT: Final = "strongroom-keyring/1"
MASTER_KEY_BYTES: Final = 32
MAC_BYTES: Final = 32  # HMAC-SHA256


class KeyState(StrEnum):
    ACTIVE = "active"  # wraps new data keys (exactly one version)
    RETIRED = "retired"  # unwraps what it wrapped; a rewrap moves those to the active one
    DISABLED = "disabled"  # unwraps nothing; can be enabled again
    DESTROYED = "destroyed"  # gone for good


@dataclass(frozen=True, slots=True)
class KeyVersion:
    version: int
    state: KeyState
    created_at: int  # µs


@dataclass(frozen=True, slots=True)
class WrappedKey:
    version: int  # of the KEK that wrapped it
    blob: bytes


class KeyUnavailable(Exception):
    """The KEK version a value was wrapped under is disabled, destroyed or unknown."""


class KeyManager(Protocol):
    """What Strongroom needs from a key keeper."""

    name: str

    def active_version(self) -> int: ...

    def versions(self) -> list[KeyVersion]: ...

    def wrap(self, key: bytes, aad: bytes) -> WrappedKey: ...

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        """Raises KeyUnavailable (version not usable) or aead.DecryptionFailed."""
        ...

    def mac(self, purpose: str, data: bytes) -> bytes:
        """A keyed hash under the MAC key of `purpose` (stable across KEK rotation)."""
        ...

    def rotate(self) -> KeyVersion:
        """A new active version; the previous one is retired."""
        ...

    def set_state(self, version: int, state: KeyState) -> KeyVersion: ...


def hkdf_sha256(ikm: bytes, info: bytes, *, salt: bytes | None = None, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869), the one key derivation of the keyring: the master key from its
    secret and each purpose's MAC key from the MAC root (checked against RFC 5869's and
    Wycheproof's vectors)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _hkdf(root: bytes, info: bytes) -> bytes:
    return hkdf_sha256(root, info)


def master_key_from_secret(secret: str) -> bytes:
    """The master key from its text form: 32 random bytes in base64 (`strongroom keys
    init` prints one); anything else is refused, a passphrase too (it would need a slow KDF
    and is not what an operator should keep)."""
    try:
        raw = base64.b64decode(secret.strip(), validate=True)
    except ValueError:
        raw = b""
    if len(raw) != MASTER_KEY_BYTES:
        raise ValueError("the master key is 32 random bytes in base64 (44 characters)")
    return _hkdf(raw, b"strongroom keyring master v1")


def new_master_secret() -> str:
    return base64.b64encode(os.urandom(MASTER_KEY_BYTES)).decode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@dataclass(frozen=True, slots=True)
class KeyringMaterial:
    """Every key of a keyring in clear, for a recovery export and a restore only (backup.py):
    never logged, never stored unsealed."""

    versions: tuple[KeyVersion, ...]
    keks: dict[int, bytes] = field(repr=False)  # destroyed versions have none
    mac_root: bytes = field(repr=False)


class KeyringError(Exception):
    """The keyring file is missing, unreadable, or does not open under this master key."""


class WrongMasterKey(KeyringError):
    """The keyring file is there and well formed, but this master key does not open it."""


class LocalKeyring:
    """KEK versions and a MAC root key in one JSON file, each sealed (AES-256-GCM) under the
    master key with its own role as associated data. The file holds no key in clear: without
    the master secret it is useless, and with a wrong one it does not open.

    Several processes may share the file (one host): every change is written to a temporary
    file, fsynced and renamed over it under an exclusive lock, and a process that meets a
    version it does not know, or whose file changed, reads it again."""

    name = "local"

    def __init__(self, path: Path, master_key: bytes) -> None:
        assert len(master_key) == 32
        self.path = path
        self._master = master_key
        self._lock = threading.Lock()
        self._stat: tuple[int, int] | None = None
        self._keks: dict[int, bytes] = {}
        self._versions: dict[int, KeyVersion] = {}
        self._mac_root = b""
        # Per purpose, an HMAC keyed and never updated: each mac works on a copy of it, which
        # skips the key schedule (1.6 us a mac instead of 3.8; thread-safe, the copy is C's).
        self._mac_keys: dict[str, hmac.HMAC] = {}
        self._load()

    # -- creation and persistence ------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, master_key: bytes) -> LocalKeyring:
        """A new keyring with version 1 active; refuses to overwrite an existing file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": KEYRING_FORMAT,
            "mac_root": _b64(aead.seal(master_key, os.urandom(32), b"keyring\x1fmac_root")),
            "keks": [_kek_entry(master_key, 1, KeyState.ACTIVE, aead.new_key(), clock.now_us())],
        }
        _write_new(path, doc)
        return cls(path, master_key)

    @classmethod
    def from_material(
        cls, path: Path, master_key: bytes, material: KeyringMaterial
    ) -> LocalKeyring:
        """A keyring holding `material` (a restored export), sealed under `master_key`;
        refuses to overwrite an existing file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        keks = []
        for v in material.versions:
            kek = material.keks.get(v.version, b"")
            entry = _kek_entry(master_key, v.version, v.state, kek, v.created_at)
            if v.state is KeyState.DESTROYED:
                entry["sealed"] = None
            keks.append(entry)
        doc = {
            "format": KEYRING_FORMAT,
            "mac_root": _b64(aead.seal(master_key, material.mac_root, b"keyring\x1fmac_root")),
            "keks": keks,
        }
        _write_new(path, doc)
        return cls(path, master_key)

    def material(self) -> KeyringMaterial:
        """Every key in clear, for `strongroom keys export` (sealed there at once)."""
        self._refresh()
        return KeyringMaterial(tuple(self.versions()), dict(self._keks), self._mac_root)

    def _read(self) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            raise KeyringError(f"no keyring at {self.path}") from None
        except (OSError, ValueError) as exc:
            raise KeyringError(f"the keyring at {self.path} is unreadable: {exc}") from None
        if doc.get("format") != KEYRING_FORMAT:
            raise KeyringError(f"{self.path} is not a keyring of format {KEYRING_FORMAT}")
        return doc

    def _load(self) -> None:
        doc = self._read()
        try:
            mac_root = aead.open_sealed(
                self._master, _unb64(doc["mac_root"]), b"keyring\x1fmac_root"
            )
            keks: dict[int, bytes] = {}
            versions: dict[int, KeyVersion] = {}
            for entry in doc["keks"]:
                version = KeyVersion(
                    int(entry["version"]), KeyState(entry["state"]), int(entry["created_at"])
                )
                versions[version.version] = version
                if version.state is not KeyState.DESTROYED:
                    keks[version.version] = aead.open_sealed(
                        self._master, _unb64(entry["sealed"]), _kek_aad(version.version)
                    )
        except aead.DecryptionFailed:
            raise WrongMasterKey(
                f"the keyring at {self.path} does not open under this master key"
            ) from None
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyringError(f"the keyring at {self.path} is malformed: {exc}") from None
        active = [v for v in versions.values() if v.state is KeyState.ACTIVE]
        if len(active) != 1:
            raise KeyringError(f"the keyring at {self.path} has {len(active)} active versions")
        st = os.stat(self.path)
        self._stat = (st.st_mtime_ns, st.st_ino)
        self._keks, self._versions = keks, versions
        if mac_root != self._mac_root:
            self._mac_root, self._mac_keys = mac_root, {}

    def _refresh(self) -> None:
        """Read the file again if another process changed it."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise KeyringError(f"no keyring at {self.path}") from None
        if (st.st_mtime_ns, st.st_ino) != self._stat:
            with self._lock:
                self._load()

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The file's document, under an exclusive lock, written back atomically."""
        import fcntl

        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+b") as lock, self._lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                doc = self._read()
                yield doc
                _replace(self.path, doc)
                self._load()
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    # -- the port ----------------------------------------------------------------------------

    def active_version(self) -> int:
        self._refresh()
        return next(v.version for v in self._versions.values() if v.state is KeyState.ACTIVE)

    def versions(self) -> list[KeyVersion]:
        self._refresh()
        return sorted(self._versions.values(), key=lambda v: v.version)

    def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        version = self.active_version()
        return WrappedKey(version, aead.seal(self._keks[version], key, aad))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        # Every time (a stat of the file): `strongroom keys disable` runs in another process,
        # and a server that only reads must stop unwrapping under the version at once, not
        # when something next makes it read the file. A file gone or unreadable meanwhile
        # (moved aside for a restore) leaves the versions as last read.
        with contextlib.suppress(KeyringError):
            self._refresh()
        state = self._versions.get(wrapped.version)
        kek = self._keks.get(wrapped.version)
        if state is None or state.state in (KeyState.DISABLED, KeyState.DESTROYED) or kek is None:
            raise KeyUnavailable(f"key-encryption key version {wrapped.version} is not usable")
        return aead.open_sealed(kek, wrapped.blob, aad)

    def mac(self, purpose: str, data: bytes) -> bytes:
        keyed = self._mac_keys.get(purpose)
        if keyed is None:
            key = _hkdf(self._mac_root, b"strongroom mac\x1f" + purpose.encode())
            keyed = self._mac_keys[purpose] = hmac.new(key, digestmod=hashlib.sha256)
        mac = keyed.copy()
        mac.update(data)
        return mac.digest()

    def rotate(self) -> KeyVersion:
        with self._editing() as doc:
            now = clock.now_us()
            version = max(int(e["version"]) for e in doc["keks"]) + 1
            for entry in doc["keks"]:
                if entry["state"] == KeyState.ACTIVE:
                    entry["state"] = KeyState.RETIRED.value
            doc["keks"].append(
                _kek_entry(self._master, version, KeyState.ACTIVE, aead.new_key(), now)
            )
        return self._versions[version]

    def set_state(self, version: int, state: KeyState) -> KeyVersion:
        assert state in (KeyState.RETIRED, KeyState.DISABLED, KeyState.DESTROYED)
        with self._editing() as doc:
            entry = next((e for e in doc["keks"] if int(e["version"]) == version), None)
            if entry is None:
                raise KeyringError(f"no key version {version}")
            if entry["state"] == KeyState.ACTIVE:
                raise KeyringError(f"version {version} is active: rotate first")
            if entry["state"] == KeyState.DESTROYED:
                raise KeyringError(f"version {version} is destroyed")
            entry["state"] = state.value
            if state is KeyState.DESTROYED:
                entry["sealed"] = None
        return self._versions[version]


def _kek_aad(version: int) -> bytes:
    return f"keyring\x1fkek\x1f{version}".encode()


def _kek_entry(
    master: bytes, version: int, state: KeyState, kek: bytes, now_us: int
) -> dict[str, Any]:
    return {
        "version": version,
        "state": state.value,
        "created_at": now_us,
        "sealed": _b64(aead.seal(master, kek, _kek_aad(version))),
    }


def _write_new(path: Path, doc: dict[str, Any]) -> None:
    """A new file, whole or not at all: written beside it, then linked to its name, which
    raises FileExistsError when another process made it first (never overwritten)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json.dumps(doc, indent=1).encode())
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)


def _replace(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(doc, indent=1).encode())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
