"""The audit logs' state and write side: appends in the caller's transaction, signing keys and
signed checkpoints (audit/service.py composes AuditLog from this and its readers and verifier)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from sqlalchemy.engine import Engine as SAEngine

from strongroom.audit import leaf as leaves_
from strongroom.audit import note as notes
from strongroom.audit import store
from strongroom.audit.checkpoint import Checkpoint
from strongroom.audit.errors import CheckpointPending
from strongroom.audit.tiles import TileLayout
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.service import LedgerService
from strongroom.security.envelope import SubjectKind
from strongroom.security.sealing import DEPLOYMENT, SecretSealer
from strongroom.security.sealing import PREFIX as SEALED_PREFIX

# Tree levels per stored tile. A storage format constant: changing it needs a migration that
# rewrites every tile. 4 keeps a proof at a million leaves to ~5 tiles and ~75 hashes.
TILE_HEIGHT: Final = 4
LEAVES_PAGE_MAX: Final = 1000
KEY_ROTATED: Final = "audit.key_rotated"


class TenantLookup(Protocol):
    """ledger id -> tenant id (LedgerService.ledger_tenants), through the caller's unit of
    work when given."""

    def __call__(
        self, ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None
    ) -> dict[str, str]: ...


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    log_id: str
    size: int
    root: bytes
    note: str
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "object": "audit_checkpoint",
            "tree_size": self.size,
            "root_hash": base64.b64encode(self.root).decode(),
            "note": self.note,
            "created_at": clock.format_us(self.created_at),
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class AuditBase:
    """The logs' state and their write side: appending leaves (in the caller's transaction),
    the signing keys and the signed checkpoints."""

    def __init__(
        self,
        engine: SAEngine,
        *,
        origin: str = "strongroom.localhost/audit",
        tenant_of: TenantLookup | None = None,
        signer_key: str | None = None,
        secrets: SecretSealer | None = None,
    ) -> None:
        """`origin` prefixes each log's origin (`<origin>/<tenant id>`) and names the signing
        key; `tenant_of(ledger_ids)` says which tenant (log) each ledger's changes go to;
        `signer_key` (a C2SP signer key, PRIVATE+KEY+...) signs checkpoints instead of a key
        generated and kept in the database, its private half sealed by `secrets`
        (security/sealing.py; `serve` and the CLI always give it)."""
        self.engine = engine
        self._secrets = secrets
        self.origin = origin
        self.layout = TileLayout(TILE_HEIGHT)
        self._tenant_of = tenant_of
        self._tenants: dict[str, str] = {}  # ledger id -> tenant id; never changes
        self._configured = notes.Signer(signer_key) if signer_key else None
        # A key being replaced co-signs the checkpoints of the transaction that replaces it.
        self._outgoing: list[notes.Signer] = []
        # The ledger whose history statements are cut from (set by the composition root).
        self.ledger: LedgerService | None = None

    def origin_of(self, log_id: str) -> str:
        return f"{self.origin}/{log_id}"

    @contextlib.contextmanager
    def _uow(self, write: bool) -> Iterator[UnitOfWork]:
        with UnitOfWork(self.engine, write=write) as uow:
            yield uow

    def _tenants_of(self, uow: UnitOfWork, ledger_ids: set[str]) -> dict[str, str]:
        missing = [i for i in ledger_ids if i not in self._tenants]
        if missing:
            if self._tenant_of is None:
                raise RuntimeError("the audit log was given no way to find a ledger's tenant")
            self._tenants.update(self._tenant_of(missing, uow=uow))
        return self._tenants

    def append(
        self,
        uow: UnitOfWork,
        log_id: str,
        items: Sequence[tuple[str, str | None, bytes]],
        *,
        at_us: int | None = None,
    ) -> int:
        """Append (type, ref, leaf bytes) items to a log through `uow`, as one bundle of time
        `at_us` (default now); a leaf with a ref is also indexed by it. The first index."""
        datas = [data for _, _, data in items]
        refs = [(ref, k) for k, (_, ref, _) in enumerate(items) if ref is not None]
        return self._append(uow, log_id, datas, refs, at_us)

    def _append(
        self,
        uow: UnitOfWork,
        log_id: str,
        datas: Sequence[bytes],
        refs: Sequence[tuple[str, int]],
        at_us: int | None,
    ) -> int:
        """`refs`: (ref, position in datas)."""
        now = clock.now_us()
        size = store.lock_log(uow, log_id, now)
        layout = self.layout
        edge = store.read_tiles(uow, log_id, layout.edge_tiles(size))
        sha, leaf = hashlib.sha256, b"\x00"
        tiles = layout.append(size, edge, [sha(leaf + data).digest() for data in datas])
        indexed = [(ref, size + k) for ref, k in refs]
        store.append(uow, log_id, size, datas, indexed, tiles, now, now if at_us is None else at_us)
        return size

    def record_all(
        self,
        uow: UnitOfWork,
        log_id: str,
        actor: str,
        items: Sequence[tuple[str, str | None, dict[str, Any]]],
    ) -> None:
        """(type, ref, data) leaves of actions outside the transfers, in `uow`."""
        now = clock.now_us()
        encode = leaves_.record_leaf
        self.append(uow, log_id, [(t, ref, encode(t, now, actor, data)) for t, ref, data in items])

    def record(
        self,
        log_id: str,
        event_type: str,
        actor: str,
        data: dict[str, Any],
        *,
        ref: str | None = None,
        uow: UnitOfWork | None = None,
    ) -> int:
        """A leaf for an action outside the ledger; in `uow` when given, else on its own."""
        item = (event_type, ref, leaves_.record_leaf(event_type, clock.now_us(), actor, data))
        if uow is not None:
            return self.append(uow, log_id, [item])
        with self._uow(write=True) as own:
            index = self.append(own, log_id, [item])
            own.commit()
        return index

    # -- the private halves, sealed ----------------------------------------------------------

    def _owner(self, key_id: str) -> str:
        return f"audit_key:{key_id}"

    def _seal(self, uow: UnitOfWork, key_id: str, skey: str) -> str:
        if self._secrets is None:
            return skey
        owner = self._owner(key_id)
        return self._secrets.seal(uow, DEPLOYMENT, owner, SubjectKind.AUDIT_KEY, skey)

    def _signer(self, uow: UnitOfWork, key_id: str, stored: str) -> notes.Signer:
        if self._secrets is None:
            assert not stored.startswith(SEALED_PREFIX), "a sealed signing key and no sealer"
            return notes.Signer(stored)
        return notes.Signer(self._secrets.open(uow, DEPLOYMENT, self._owner(key_id), stored))

    def _retire(self, uow: UnitOfWork, keep: str, now_us: int) -> None:
        """Every key but `keep` retired, its private half dropped and its data key shredded."""
        if self._secrets is not None:
            for row in store.keys(uow):
                if row[0] != keep and row[5] is None and row[3] is not None:
                    self._secrets.forget(uow, DEPLOYMENT, self._owner(row[0]))
        store.retire_keys(uow, keep, now_us)

    def seal_clear_keys(self) -> int:
        """Seals the private halves still stored in clear (written before they were sealed);
        how many. `serve` runs it at start."""
        assert self._secrets is not None, "no sealer to seal with"
        with self._uow(write=True) as uow:
            store.lock_keys(uow)
            sealed = 0
            for key_id, clear in store.clear_signer_keys(uow, SEALED_PREFIX):
                sealed += store.set_signer_key(uow, key_id, clear, self._seal(uow, key_id, clear))
            uow.commit()
        return sealed

    def _signers(self, uow: UnitOfWork) -> list[notes.Signer]:
        """The active signing key(s), the first use creating one. A newly configured key
        takes over from the active one as a rotation does (a leaf in every log); the old key
        also signs this transaction's checkpoints when its private half is here."""
        store.lock_keys(uow)
        everything = store.keys(uow)
        rows = [r for r in everything if r[5] is None]
        if self._configured is not None:
            signer = self._configured
            key_id = f"{signer.key_id:08x}"
            if not any(r[0] == key_id for r in rows):
                now = clock.now_us()
                old = rows[-1] if rows else None
                if any(r[0] == key_id for r in everything):
                    store.reactivate_key(uow, key_id)
                else:
                    store.insert_key(uow, key_id, signer.name, signer.verifier_key, None, now)
                if old is not None and old[3] is not None:
                    self._outgoing = [self._signer(uow, old[0], old[3])]
                self._retire(uow, key_id, now)
                if old is not None:
                    self._hand_over(uow, old[2], signer.verifier_key)
            return [*self._outgoing, signer]
        usable = [(r[0], r[3]) for r in rows if r[3] is not None]
        if usable:
            return [self._signer(uow, *usable[-1])]
        signer = notes.generate_signer(self.origin)
        key_id, now = f"{signer.key_id:08x}", clock.now_us()
        sealed = self._seal(uow, key_id, signer.skey)
        store.insert_key(uow, key_id, signer.name, signer.verifier_key, sealed, now)
        if rows:  # a configured key no longer configured: this one takes over from it
            self._retire(uow, key_id, now)
            self._hand_over(uow, rows[-1][2], signer.verifier_key)
        return [signer]

    def verifier_keys(self) -> list[dict[str, Any]]:
        """Every key that ever signed a checkpoint, the active one last."""
        with self._uow(write=False) as uow:
            rows = store.keys(uow)
        return [
            {
                "object": "audit_key",
                "key_id": r[0],
                "name": r[1],
                "verifier_key": r[2],
                "created_at": clock.format_us(r[4]),
                "retired_at": None if r[5] is None else clock.format_us(r[5]),
            }
            for r in rows
        ]

    def _publish_in(
        self,
        uow: UnitOfWork,
        log_id: str,
        signers: Sequence[notes.Signer],
        force: bool = False,
    ) -> SignedCheckpoint | None:
        """A checkpoint of the log as it is, signed by `signers`; the latest one when the log
        has not grown (unless `force`: a key hand-over signs anew)."""
        size = store.log_size(uow, log_id)
        latest = store.latest_checkpoint(uow, log_id)
        if latest is not None and latest[0] == size and not force:
            return SignedCheckpoint(log_id, *latest)
        if size == 0:
            return None
        layout = self.layout
        root = layout.root(size, store.read_tiles(uow, log_id, layout.root_tiles(size)))
        text = Checkpoint(self.origin_of(log_id), size, root).to_text()
        signed = notes.sign(text, signers)
        now = clock.now_us()
        if not store.insert_checkpoint(uow, log_id, size, root, signed, now):
            found = store.checkpoint(uow, log_id, size)
            assert found is not None
            return SignedCheckpoint(log_id, *found)
        return SignedCheckpoint(log_id, size, root, signed, now)

    def publish(self, log_ids: Sequence[str] | None = None) -> list[SignedCheckpoint]:
        """A checkpoint of every log (or those given) that grew since its last one."""
        published: list[SignedCheckpoint] = []
        with self._uow(write=True) as uow:
            # Once, and first: a key change's leaves go into these checkpoints.
            signers = self._signers(uow)
            try:
                for log_id in log_ids if log_ids is not None else store.log_ids(uow):
                    found = self._publish_in(uow, log_id, signers)
                    if found is not None:
                        published.append(found)
                uow.commit()
            finally:
                self._outgoing = []
        return published

    def _hand_over(self, uow: UnitOfWork, old_key: str, new_key: str) -> None:
        """The rotation leaf, in every log: a verifier that trusts the old key learns the new
        one from a checkpoint the old key signed."""
        data = {"old_key": old_key, "new_key": new_key}
        for log_id in store.log_ids(uow):
            self.record(log_id, KEY_ROTATED, "system", data, uow=uow)

    def rotate_key(self) -> str:
        """A new signing key: the rotation is a leaf of every log, and the first checkpoint
        that holds it is signed by the old key and the new one. Returns the new verifier key.
        """
        if self._configured is not None:
            raise InvalidRequest(
                "the signing key is configured (STRONGROOM_AUDIT_SIGNING_KEY): rotate it there",
                param="key",
            )
        with self._uow(write=True) as uow:
            old = self._signers(uow)[0]
            new = notes.generate_signer(self.origin)
            now = clock.now_us()
            new_id = f"{new.key_id:08x}"
            sealed = self._seal(uow, new_id, new.skey)
            store.insert_key(uow, new_id, new.name, new.verifier_key, sealed, now)
            if not store.log_ids(uow):  # nothing signed yet: nothing to hand over
                if self._secrets is not None:
                    self._secrets.forget(uow, DEPLOYMENT, self._owner(f"{old.key_id:08x}"))
                store.delete_key(uow, f"{old.key_id:08x}")
            else:
                self._hand_over(uow, old.verifier_key, new.verifier_key)
            self._retire(uow, new_id, now)
            for log_id in store.log_ids(uow):
                self._publish_in(uow, log_id, [old, new], force=True)
            uow.commit()
        return new.verifier_key

    def latest(self, log_id: str) -> SignedCheckpoint:
        with self._uow(write=False) as uow:
            found = store.latest_checkpoint(uow, log_id)
        if found is None:
            raise NotFound("this log has no checkpoint yet", param="tree_size")
        return SignedCheckpoint(log_id, *found)

    def checkpoint(self, log_id: str, size: int) -> SignedCheckpoint:
        with self._uow(write=False) as uow:
            found = store.checkpoint(uow, log_id, size)
        if found is None:
            raise NotFound(f"no checkpoint of tree size {size}", param="tree_size")
        return SignedCheckpoint(log_id, *found)

    def covering(self, log_id: str, index: int, *, publish: bool = True) -> SignedCheckpoint:
        """The latest checkpoint if it holds leaf `index`, else a new one published now; or,
        with `publish` false (a read: it never writes), CheckpointPending."""
        with self._uow(write=False) as uow:
            found = store.latest_checkpoint(uow, log_id)
        if found is not None and found[0] > index:
            return SignedCheckpoint(log_id, *found)
        if not publish:
            raise CheckpointPending(
                "no published checkpoint holds this yet",
                retry_after_s=1,
                published_at_us=None if found is None else found[3],
            )
        published = self.publish([log_id])
        if not published or published[0].size <= index:
            raise NotFound(f"no leaf {index} in this log", param="leaf_index")
        return published[0]
