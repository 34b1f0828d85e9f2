"""AES-256-GCM, the one cipher of the envelope encryption (pure: `cryptography`'s AESGCM).

A sealed value is `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
nonce is random: every data key seals a handful of fields and every key-encryption key wraps
far fewer than the 2^32 values NIST SP 800-38D allows one key under random 96-bit nonces
(`strongroom keys rotate` starts a new one long before that).
"""

from __future__ import annotations

import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32  # AES-256
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
SEALED_V1: Final = 1
SEALED_OVERHEAD_BYTES: Final = 1 + NONCE_BYTES + TAG_BYTES


class DecryptionFailed(Exception):
    """The ciphertext, its tag or its associated data do not match the key: tampered with,
    moved to another record, or sealed under another key. Carries no detail on purpose."""


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """`ciphertext || tag` (the primitive, as test vectors give it)."""
    assert len(key) == KEY_BYTES, "AES-256 only"
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes:
    assert len(key) == KEY_BYTES, "AES-256 only"
    if len(ciphertext_and_tag) < TAG_BYTES:
        raise DecryptionFailed("ciphertext shorter than its tag")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext_and_tag, aad)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("the value does not decrypt under this key and context") from None


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return bytes((SEALED_V1,)) + nonce + encrypt(key, nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < SEALED_OVERHEAD_BYTES or sealed[0] != SEALED_V1:
        raise DecryptionFailed("not a sealed value of a known version")
    nonce = sealed[1 : 1 + NONCE_BYTES]
    return decrypt(key, nonce, sealed[1 + NONCE_BYTES :], aad)


def context(*parts: str) -> bytes:
    """Associated data from its parts, unambiguously (a part may not hold the separator)."""
    for part in parts:
        assert "\x1f" not in part, "a context part holds the unit separator"
    return "\x1f".join(parts).encode()
