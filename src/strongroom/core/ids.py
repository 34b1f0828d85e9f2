"""Prefixed, time-ordered ids (`acc_...`, `tr_...`): 48-bit millisecond time + 80 random bits,
Crockford base32, so ids sort by creation time and B-tree inserts append."""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

PREFIXES = frozenset(
    {
        "ldg",
        "acc",
        "tr",
        "evt",
        "ten",
        "key",
        "req",
        "we",
        "cus",
        "cpty",
        "card",
        "usr",
        "chl",
        "case",
        "note",  # a note on a case
    }
    | {"mdl"}  # a fraud model's version (risk.registry)
    | {"crep"}  # a compliance report (compliance.controls)
    | {"sdis"}  # a dismissed sanctions match (compliance.sanctions)
    | {"tpp"}  # an open banking client: a third-party provider (openbanking.tpp)
    | {"obc", "obf"}  # an open banking consent, a funds confirmation (openbanking.resources)
    | {"obt"}  # an open banking access or refresh token (openbanking.authz): its row
)


class _Generator:
    """Monotonic within a millisecond: the random part is incremented, as in ULID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_rand = 0
        # Ids are names, not secrets: a generator seeded from the OS once (and again in a
        # forked child) makes them unique without a system call per id.
        self._random = random.Random(os.urandom(32))
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._random.seed(os.urandom(32))

    def next_value(self) -> int:
        return self.next_values(1)

    def next_values(self, count: int) -> int:
        """The first of `count` consecutive values (one lock and one clock read for all)."""
        with self._lock:
            ms = time.time_ns() // 1_000_000
            if ms <= self._last_ms:
                ms = self._last_ms
                first = self._last_rand + 1
            else:
                first = self._random.getrandbits(79)
            self._last_rand = first + count - 1
            assert self._last_rand < 2**80
            self._last_ms = ms
            return (ms << 80) | first


_generator = _Generator()


# Two characters per table lookup: 13 lookups for the 26 characters of 130 bits.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def _encode(value: int) -> str:
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(120, -1, -10)])


def new_id(prefix: str) -> str:
    assert prefix in PREFIXES, prefix
    return f"{prefix}_{_encode(_generator.next_value())}"


def new_ids(prefix: str, count: int) -> list[str]:
    assert prefix in PREFIXES, prefix
    first = _generator.next_values(count)
    low = first & 0xFFFFF
    if low + count <= 0x100000:
        # Consecutive values share all but their last 20 bits (two characters' pairs) here.
        head = f"{prefix}_{_encode(first)[:-4]}"
        pairs = _PAIRS
        return [head + pairs[v >> 10] + pairs[v & 1023] for v in range(low, low + count)]
    return [f"{prefix}_{_encode(value)}" for value in range(first, first + count)]


def derived_ids(prefix: str, seed: bytes, at_us: int, start: int, count: int) -> list[str]:
    """`count` ids that are a function of `seed` alone: the same seed, start and count give
    the same ids in any process, at any time. Their time part is `at_us`'s millisecond, so they
    sort with the ids made then; their random part is `seed`'s hash plus start, start + 1, ...
    (consecutive, as new_ids makes them). For the ids an idempotent request mints
    (core.idempotency): a retry of the request mints the same ones."""
    assert prefix in PREFIXES, prefix
    assert start >= 0
    assert count >= 0
    assert start + count <= 2**32
    digest = hashlib.sha256(prefix.encode() + b"\0" + seed).digest()
    first = (int.from_bytes(digest[:10], "big") >> 2) + start  # < 2**78 + 2**32 < 2**80
    head = (at_us // 1000) << 80
    return [f"{prefix}_{_encode(head | value)}" for value in range(first, first + count)]
