"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, in Go's sumdb/note key formats.

A note is UTF-8 text ending in a newline, a blank line, then lines `— <key name> base64(key ID ||
signature)`. Key ID = SHA-256(name || 0x0A || 0x01 || public key)[:4], so a (name, key ID) pair
picks out one key. Opening a note follows the spec's rules: signatures by unknown keys are
ignored, every signature by a known key must verify, and at least one must.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ALG_ED25519: Final = 0x01
ED25519_KEY_SIZE: Final = 32
ED25519_SIGNATURE_SIZE: Final = 64
KEY_ID_SIZE: Final = 4
# The spec asks verifiers to accept at least 16 signatures and to bound them; Go allows 100.
NOTE_SIGNATURES_MAX: Final = 100
NOTE_BYTES_MAX: Final = 1 << 20  # bounds the work a hostile note can cause
assert NOTE_SIGNATURES_MAX >= 16

_SIGNATURE_PREFIX: Final = "— "  # em dash (U+2014), space
_PRIVATE_KEY_PREFIX: Final = "PRIVATE+KEY+"


class NoteError(ValueError):
    """A note, key or signature is malformed, or the note is not verified by a known key."""


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: int
    signature: bytes  # the algorithm's signature, without the key ID

    def line(self) -> str:
        blob = self.key_id.to_bytes(KEY_ID_SIZE, "big") + self.signature
        return f"{_SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text and the signatures that verified (and those left unchecked)."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def key_id(name: str, public_key: bytes, alg: int = ALG_ED25519) -> int:
    """SHA-256(name || 0x0A || alg || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int.from_bytes(digest[:KEY_ID_SIZE], "big")


def is_valid_name(name: str) -> bool:
    """Non-empty, no Unicode space, no '+' (the key-string separator), no control character."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() or c < "\x20" for c in name)
        and _is_utf8(name)
    )


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise NoteError(f"{what} is not valid base64") from e


def _parse_key_id(text: str, what: str) -> int:
    if len(text) != 2 * KEY_ID_SIZE or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise NoteError(f"{what} key ID must be 8 hex digits")
    return int(text, 16)


class Verifier:
    """A public key from a verifier key string `name+hex8(key ID)+base64(0x01 || public key)`."""

    __slots__ = ("_public", "key_id", "name", "public_key")

    def __init__(self, vkey: str) -> None:
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not is_valid_name(parts[0]):
            raise NoteError("malformed verifier key")
        name, id_hex, key_b64 = parts
        expected_id = _parse_key_id(id_hex, "verifier")
        key = _b64decode(key_b64, "verifier key")
        if len(key) != 1 + ED25519_KEY_SIZE or key[0] != ALG_ED25519:
            raise NoteError("verifier key is not an Ed25519 key")
        public_key = key[1:]
        if key_id(name, public_key) != expected_id:
            raise NoteError("verifier key ID does not match its key")
        self.name = name
        self.key_id = expected_id
        self.public_key = public_key
        self._public = Ed25519PublicKey.from_public_bytes(public_key)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"


class Signer:
    """A private key from `PRIVATE+KEY+name+hex8(key ID)+base64(0x01 || 32-byte seed)`."""

    __slots__ = ("_private", "key_id", "name", "public_key")

    def __init__(self, skey: str) -> None:
        if not skey.startswith(_PRIVATE_KEY_PREFIX):
            raise NoteError("malformed signer key")
        parts = skey[len(_PRIVATE_KEY_PREFIX) :].split("+", 2)
        if len(parts) != 3 or not is_valid_name(parts[0]):
            raise NoteError("malformed signer key")
        name, id_hex, key_b64 = parts
        expected_id = _parse_key_id(id_hex, "signer")
        key = _b64decode(key_b64, "signer key")
        if len(key) != 1 + ED25519_KEY_SIZE or key[0] != ALG_ED25519:
            raise NoteError("signer key is not an Ed25519 key")
        private = Ed25519PrivateKey.from_private_bytes(key[1:])
        public_key = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        if key_id(name, public_key) != expected_id:
            raise NoteError("signer key ID does not match its key")
        self.name = name
        self.key_id = expected_id
        self.public_key = public_key
        self._private = private

    @property
    def verifier_key(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    @property
    def skey(self) -> str:
        """The private key string: a secret, to be stored encrypted, never logged."""
        seed = self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
        return f"{_PRIVATE_KEY_PREFIX}{self.name}+{self.key_id:08x}+{encoded}"

    def verifier(self) -> Verifier:
        return Verifier(self.verifier_key)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:  # never the key itself
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"


def generate_signer(name: str) -> Signer:
    """A fresh Ed25519 signer; keep `.skey` secret and publish `.verifier_key`."""
    if not is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}")
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public_key = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode()
    return Signer(f"{_PRIVATE_KEY_PREFIX}{name}+{key_id(name, public_key):08x}+{encoded}")


def _check_characters(text: str, what: str) -> None:
    """Valid UTF-8 and no ASCII control character other than newline (spec §Format)."""
    if not _is_utf8(text):
        raise NoteError(f"{what} is not valid UTF-8")
    if any(c < "\x20" and c != "\n" for c in text):
        raise NoteError(f"{what} contains a control character")


def sign(text: str, signers: Iterable[Signer]) -> str:
    """The signed note: `text` (ending in a newline), a blank line, one line per signer."""
    _check_characters(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    lines = [Signature(s.name, s.key_id, s.sign(text.encode())).line() for s in signers]
    if not lines:
        raise NoteError("a note needs at least one signer")
    if len(lines) > NOTE_SIGNATURES_MAX:
        raise NoteError(f"more than {NOTE_SIGNATURES_MAX} signatures")
    return text + "\n" + "".join(lines)


def _parse_signature(line: str) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise NoteError("signature line must start with an em dash and a space")
    name, sep, b64 = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not sep or not b64 or not is_valid_name(name):
        raise NoteError("malformed signature line")
    blob = _b64decode(b64, "signature")
    if len(blob) <= KEY_ID_SIZE:
        raise NoteError("signature is too short")
    return Signature(name, int.from_bytes(blob[:KEY_ID_SIZE], "big"), blob[KEY_ID_SIZE:])


def parse_unverified(note: str | bytes) -> tuple[str, list[Signature]]:
    """A note's text and signature lines, checked for form only.

    The spec says to ignore the text unless a trusted key verified it: use `open` for that. This
    is for tools that inspect notes (say, to list who cosigned).
    """
    if isinstance(note, bytes):
        if len(note) > NOTE_BYTES_MAX:
            raise NoteError(f"note is longer than {NOTE_BYTES_MAX} bytes")
        try:
            note = note.decode()
        except UnicodeDecodeError as e:
            raise NoteError("note is not valid UTF-8") from e
    if len(note) > NOTE_BYTES_MAX:
        raise NoteError(f"note is longer than {NOTE_BYTES_MAX} characters")
    _check_characters(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > NOTE_SIGNATURES_MAX:
        raise NoteError(f"more than {NOTE_SIGNATURES_MAX} signatures")
    return text, [_parse_signature(line) for line in lines]


def open(note: str | bytes, verifiers: Iterable[Verifier]) -> Note:
    """Parse and verify a signed note, or raise NoteError.

    Unknown keys (name and key ID not both matching) are ignored, as the spec requires; a bad
    signature by a known key rejects the whole note; no good known signature rejects it too.
    """
    text, signatures = parse_unverified(note)
    known: dict[tuple[str, int], Verifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other.public_key != v.public_key:
            raise NoteError(f"two verifier keys share name {v.name!r} and key ID {v.key_id:08x}")

    message = text.encode()
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if not verifier.verify(message, sig.signature):
            raise NoteError(f"invalid signature by known key {sig.name!r}")
        if all((s.name, s.key_id) != (sig.name, sig.key_id) for s in verified):
            verified.append(sig)
    if not verified:
        raise NoteError("no signature by a known key")
    return Note(text, tuple(verified), tuple(unverified))
