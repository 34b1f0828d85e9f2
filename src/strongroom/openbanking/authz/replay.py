"""The replay store of resource requests' DPoP proofs on a SQLite deployment: a memory-mapped
file (core.slotfile) that every worker process of the host maps, beside the database
(`<database>.dpop-replay`).

A SQLite deployment's workers are on one host (SQLite's own condition), so a file they all
map is a store they all share: a proof used at one worker is a replay at any other. It costs
a few microseconds where a row in the database cost a write transaction (the write lock, WAL
pages, checkpoints) on every read. PostgreSQL deployments, which may span hosts, keep the
table `ob_dpop_jti` (authz.store.first_use).

Durability, as the issue allows ("need not be durable"): nothing is fsynced. A restart of
Strongroom forgets nothing (the file stays); a crash of the machine may forget the last
proofs, which could then be replayed within the rest of their 60 s. A proof is remembered
until it expires; a set of 16 slots full of unexpired proofs refuses a new one with
`replay_cache_full` (Retry-After; the OB resources answer it 500 U000, the status their
documents declare) rather than forget one that could then be replayed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

from strongroom.core.limits import OB_REPLAY_FILE_SETS, OB_REPLAY_FILE_SLOTS_PER_SET
from strongroom.core.slotfile import SlotFile, SlotFileHandle
from strongroom.openbanking.errors import ReplayCacheFull

_MAGIC: Final = b"SRDPOP01"
_US: Final = 1_000_000
SUFFIX: Final = ".dpop-replay"


class FileReplayStore:
    """Replay keys (DpopProof.replay_key) remembered in a SlotFile at `path` until their
    expiry: one slot a key, its number the expiry (epoch microseconds). `serve` opens it as
    it starts (runtime.py); it is opened on first use otherwise, and again after `close`."""

    def __init__(
        self,
        path: Path,
        *,
        sets: int = OB_REPLAY_FILE_SETS,
        slots: int = OB_REPLAY_FILE_SLOTS_PER_SET,
    ) -> None:
        self.path = path
        self._file = SlotFileHandle(lambda: SlotFile(path, magic=_MAGIC, sets=sets, slots=slots))

    def open(self) -> SlotFile:
        """The file (SlotFileHandle.open)."""
        return self._file.open()

    def first_use(self, key: str, expires_at_us: int, now_us: int) -> bool:
        """True the first time `key` is offered before its expiry (remembered until
        `expires_at_us`); False while it is remembered unexpired (a replay). ReplayCacheFull
        when its set holds only unexpired keys of others."""
        table = self.open()
        digest = table.digest(key)
        with table.locked(digest) as offset:
            slot = table.lookup(offset, digest)
            if slot.value > now_us:
                if slot.found:
                    return False
                raise ReplayCacheFull(
                    "too many unexpired DPoP proofs are remembered",
                    retry_after_s=max(1, math.ceil((slot.value - now_us) / _US)),
                )
            table.write(slot.at, digest, expires_at_us)
            return True

    def close(self) -> None:
        self._file.close()
