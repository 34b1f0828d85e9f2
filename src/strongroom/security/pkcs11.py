"""The PKCS#11 key manager: key-encryption keys that never leave a hardware security module
(tested against SoftHSM2; python-pkcs11, the optional extra `hsm`).

On the token (STRONGROOM_PKCS11_TOKEN_LABEL, logged in with STRONGROOM_PKCS11_PIN):
- each KEK version is an AES-256 secret key labelled `strongroom-kek-<n>`, created inside the
  token, sensitive and not extractable. Wrapping is AES-GCM *inside the token* (C_Encrypt with
  a random 96-bit nonce and the caller's associated data), so a blob is
  `1 || nonce || ciphertext || tag`, as security/aead.py seals.
- a version's state is the key's own attributes, so the token enforces it: active = CKA_ENCRYPT
  and CKA_DECRYPT; retired = CKA_DECRYPT only; disabled = neither. Its creation time is its
  CKA_ID (decimal µs). Destroying a version destroys the key object after leaving a data object
  `strongroom-kek-<n>-destroyed`, so that `status` still lists it. A rotation creates the new
  key before it retires the old one: should it stop between the two, the highest version that
  may encrypt is the active one, and the next rotation retires the other.
- the MAC key (blind indexes) is a generic secret `strongroom-mac`, HMAC-SHA256 inside the
  token over the purpose (length-prefixed) and the data: one key, separated by purpose.

A token that holds none of these is initialised on first open (version 1 and the MAC key).
The backup of a token is the HSM's business (its own wrapped backups, or a second token of the
same cluster): `strongroom keys export` applies to the local keyring only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from typing import Any, Final

from strongroom.core import clock
from strongroom.security import aead
from strongroom.security.kms import KeyringError, KeyState, KeyUnavailable, KeyVersion, WrappedKey

KEK_LABEL: Final = "strongroom-kek-{}"
DESTROYED_LABEL: Final = "strongroom-kek-{}-destroyed"
MAC_LABEL: Final = "strongroom-mac"
_KEK_RE: Final = re.compile(r"^strongroom-kek-(\d+)$")
_DESTROYED_RE: Final = re.compile(r"^strongroom-kek-(\d+)-destroyed$")


class HsmError(KeyringError):
    """The module, the token or the PIN cannot be used (the message names which, never the
    PIN), or a state change the token refuses."""


def _import() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise HsmError(
            "the PKCS#11 adapter needs python-pkcs11: pip install 'strongroom[hsm]'"
        ) from None
    return pkcs11


# A PKCS#11 login belongs to the process, not to a session: a second login fails
# (CKR_USER_ALREADY_LOGGED_IN) whatever its PIN. So the process keeps one logged-in session per
# token, shared by every key manager on it, and checks each one's PIN against the PIN that
# logged in (by digest), so that a wrong PIN is refused here too.
_SESSIONS: dict[tuple[str, str], tuple[Any, bytes, threading.RLock]] = {}
_SESSIONS_LOCK = threading.Lock()


def _session(lib: Any, module: str, label: str, pin: str) -> tuple[Any, threading.RLock]:
    digest = hashlib.sha256(pin.encode()).digest()
    with _SESSIONS_LOCK:
        found = _SESSIONS.get((module, label))
        if found is not None:
            if not hmac.compare_digest(found[1], digest):
                raise HsmError(f"the PIN of token {label!r} is wrong")
            return found[0], found[2]
        try:
            token = lib.lib(module).get_token(token_label=label)
            try:
                session = token.open(user_pin=pin, rw=True)
            except lib.exceptions.UserAlreadyLoggedIn:  # by another user of the library
                session = token.open(rw=True)
        except lib.exceptions.NoSuchToken:
            raise HsmError(f"no PKCS#11 token labelled {label!r} in {module}") from None
        except lib.exceptions.PinIncorrect:
            raise HsmError(f"the PIN of token {label!r} is wrong") from None
        except (OSError, RuntimeError) as exc:
            raise HsmError(f"PKCS#11 module {module}: {type(exc).__name__}") from None
        lock = threading.RLock()
        _SESSIONS[(module, label)] = (session, digest, lock)
        return session, lock


class Pkcs11KeyManager:
    """The KeyManager port over the process's session on a PKCS#11 token (calls are
    serialised by the session's lock: a session is not to be used by two threads at once)."""

    name = "pkcs11"

    def __init__(self, module: str, token_label: str, pin: str) -> None:
        self._p = _import()
        self._session, self._lock = _session(self._p, module, token_label, pin)
        self._mac: Any = None
        self._keks: dict[int, Any] = {}

    @property
    def empty(self) -> bool:
        """No Strongroom key on the token yet."""
        return not self.versions() and self._find_mac() is None

    def initialise(self) -> None:
        """Version 1 and the MAC key on a token that has neither."""
        assert self.empty, "the token already holds Strongroom keys"
        p = self._p
        with self._lock:
            self._session.generate_key(
                p.KeyType.GENERIC_SECRET,
                256,
                label=MAC_LABEL,
                store=True,
                capabilities=p.MechanismFlag.SIGN | p.MechanismFlag.VERIFY,
                template=self._private(),
            )
            self._new_kek(1)

    # -- the token's objects -----------------------------------------------------------------

    def _private(self) -> dict[Any, Any]:
        a = self._p.Attribute
        return {a.TOKEN: True, a.PRIVATE: True, a.SENSITIVE: True, a.EXTRACTABLE: False}

    def _new_kek(self, version: int) -> None:
        p = self._p
        self._session.generate_key(
            p.KeyType.AES,
            256,
            label=KEK_LABEL.format(version),
            id=str(clock.now_us()).encode(),
            store=True,
            capabilities=p.MechanismFlag.ENCRYPT | p.MechanismFlag.DECRYPT,
            template=self._private(),
        )

    def _find_mac(self) -> Any:
        a = self._p.Attribute
        found = list(self._session.get_objects({a.LABEL: MAC_LABEL}))
        return found[0] if found else None

    def _scan(self) -> tuple[dict[int, Any], set[int]]:
        """The KEK objects by version, and the versions marked destroyed."""
        a, o = self._p.Attribute, self._p.ObjectClass
        keks: dict[int, Any] = {}
        destroyed: set[int] = set()
        with self._lock:
            for obj in self._session.get_objects({a.CLASS: o.SECRET_KEY}):
                found = _KEK_RE.match(obj[a.LABEL] or "")
                if found:
                    keks[int(found.group(1))] = obj
            for obj in self._session.get_objects({a.CLASS: o.DATA}):
                found = _DESTROYED_RE.match(obj[a.LABEL] or "")
                if found:
                    destroyed.add(int(found.group(1)))
        return keks, destroyed

    def _state(self, obj: Any, active: int | None, version: int) -> KeyState:
        a = self._p.Attribute
        if not obj[a.DECRYPT]:
            return KeyState.DISABLED
        return KeyState.ACTIVE if version == active else KeyState.RETIRED

    def _active_of(self, keks: dict[int, Any]) -> int | None:
        a = self._p.Attribute
        encrypting = [v for v, obj in keks.items() if obj[a.ENCRYPT] and obj[a.DECRYPT]]
        return max(encrypting, default=None)

    # -- the port ------------------------------------------------------------------------------

    def versions(self) -> list[KeyVersion]:
        a = self._p.Attribute
        keks, destroyed = self._scan()
        with self._lock:
            active = self._active_of(keks)
            out = [
                KeyVersion(v, self._state(obj, active, v), int(bytes(obj[a.ID]) or b"0"))
                for v, obj in keks.items()
                if v not in destroyed
            ]
        out += [KeyVersion(v, KeyState.DESTROYED, 0) for v in destroyed]
        return sorted(out, key=lambda v: v.version)

    def active_version(self) -> int:
        keks, _ = self._scan()
        with self._lock:
            active = self._active_of(keks)
        if active is None:
            raise KeyUnavailable("the token holds no active key-encryption key")
        return active

    def _kek(self, version: int) -> Any:
        obj = self._keks.get(version)
        if obj is None:
            keks, destroyed = self._scan()
            obj = None if version in destroyed else keks.get(version)
            if obj is None:
                raise KeyUnavailable(f"key-encryption key version {version} is not usable")
            self._keks[version] = obj
        return obj

    def wrap(self, key: bytes, aad: bytes) -> WrappedKey:
        version = self.active_version()
        nonce = os.urandom(aead.NONCE_BYTES)
        params = self._p.mechanisms.GCMParams(nonce, aad, 8 * aead.TAG_BYTES)
        with self._lock:
            sealed = self._kek(version).encrypt(
                key, mechanism=self._p.Mechanism.AES_GCM, mechanism_param=params
            )
        return WrappedKey(version, bytes((aead.SEALED_V1,)) + nonce + bytes(sealed))

    def unwrap(self, wrapped: WrappedKey, aad: bytes) -> bytes:
        blob = wrapped.blob
        if len(blob) < aead.SEALED_OVERHEAD_BYTES or blob[0] != aead.SEALED_V1:
            raise aead.DecryptionFailed("not a wrapped key of a known version")
        nonce, body = blob[1 : 1 + aead.NONCE_BYTES], blob[1 + aead.NONCE_BYTES :]
        params = self._p.mechanisms.GCMParams(nonce, aad, 8 * aead.TAG_BYTES)
        errors = self._p.exceptions
        with self._lock:
            kek = self._kek(wrapped.version)
            try:
                if not kek[self._p.Attribute.DECRYPT]:
                    raise KeyUnavailable(
                        f"key-encryption key version {wrapped.version} is disabled"
                    )
                return bytes(
                    kek.decrypt(body, mechanism=self._p.Mechanism.AES_GCM, mechanism_param=params)
                )
            except errors.ObjectHandleInvalid:  # destroyed by another process since
                self._keks.pop(wrapped.version, None)
                raise KeyUnavailable(
                    f"key-encryption key version {wrapped.version} is gone"
                ) from None
            except (errors.KeyHandleInvalid, errors.KeyTypeInconsistent):
                raise KeyUnavailable(
                    f"key-encryption key version {wrapped.version} is disabled"
                ) from None
            except errors.PKCS11Error:  # the tag does not match (SoftHSM: CKR_GENERAL_ERROR)
                raise aead.DecryptionFailed("the value does not unwrap under this key") from None

    def mac(self, purpose: str, data: bytes) -> bytes:
        label = purpose.encode()
        message = len(label).to_bytes(2, "big") + label + data
        with self._lock:
            if self._mac is None:
                self._mac = self._find_mac()
                if self._mac is None:
                    raise KeyUnavailable("the token holds no MAC key")
            return bytes(self._mac.sign(message, mechanism=self._p.Mechanism.SHA256_HMAC))

    def rotate(self) -> KeyVersion:
        a = self._p.Attribute
        keks, destroyed = self._scan()
        version = max([*keks, *destroyed], default=0) + 1
        with self._lock:
            self._new_kek(version)
            for obj in keks.values():  # every earlier one stops wrapping
                if obj[a.ENCRYPT]:
                    obj[a.ENCRYPT] = False
        return next(v for v in self.versions() if v.version == version)

    def set_state(self, version: int, state: KeyState) -> KeyVersion:
        assert state in (KeyState.RETIRED, KeyState.DISABLED, KeyState.DESTROYED)
        a, o = self._p.Attribute, self._p.ObjectClass
        current = {v.version: v for v in self.versions()}.get(version)
        if current is None:
            raise HsmError(f"no key version {version}")
        if current.state is KeyState.ACTIVE:
            raise HsmError(f"version {version} is active: rotate first")
        if current.state is KeyState.DESTROYED:
            raise HsmError(f"version {version} is destroyed")
        keks, _ = self._scan()
        with self._lock:
            obj = keks[version]
            if state is KeyState.DESTROYED:
                label = DESTROYED_LABEL.format(version)
                self._session.create_object(
                    {a.CLASS: o.DATA, a.TOKEN: True, a.LABEL: label, a.VALUE: b"destroyed"}
                )
                obj.destroy()
                self._keks.pop(version, None)
            else:
                obj[a.DECRYPT] = state is KeyState.RETIRED
        return next(v for v in self.versions() if v.version == version)
