"""Key operations, deployment-wide, each one a leaf of the audit log: the keyring's creation,
rotation, rewrap (counts), disabling, enabling, destruction, recovery export and restore.

Where their leaves go: key operations belong to the deployment, audit logs to tenants (log id
= tenant id), so they go to the log of the default tenant `ten_default` (migration 0002), the
operator's own tenant: it always exists, its log is checkpointed and proven like any other, and
its admin key reads it through the audit API. A leaf names versions and counts, never a key.
Routine unwraps to serve a request are not leaves (reveals are, in their own domain).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.db.uow import UnitOfWork
from strongroom.security import backup
from strongroom.security import store as keys_store
from strongroom.security.envelope import REWRAP_BATCH, Envelope
from strongroom.security.errors import KeyInUse, KeyStateError, RecoveryFailed
from strongroom.security.kms import KeyManager, KeyringError, KeyState, KeyVersion, LocalKeyring

KEYS_LOG_ID: Final = "ten_default"
CREATED: Final = "keys.created"
ROTATED: Final = "keys.rotated"
REWRAPPED: Final = "keys.rewrapped"
DISABLED: Final = "keys.disabled"
ENABLED: Final = "keys.enabled"
DESTROYED: Final = "keys.destroyed"
EXPORTED: Final = "keys.exported"
RESTORED: Final = "keys.restored"


@dataclass(frozen=True, slots=True)
class VersionStatus:
    version: int
    state: KeyState
    created_at: int  # µs
    wraps: int  # live data keys wrapped under it

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "state": self.state.value,
            "created_at": self.created_at,
            "wraps": self.wraps,
        }


class KeyService:
    def __init__(self, engine: Engine, kms: KeyManager, audit: AuditRecorder | None) -> None:
        self.engine = engine
        self.kms = kms
        self.envelope = Envelope(kms)
        self._audit = audit

    def record(self, actor: str, event_type: str, data: dict[str, Any]) -> None:
        if self._audit is None:
            return
        with UnitOfWork(self.engine) as uow:
            self._audit.record_all(uow, KEYS_LOG_ID, actor, [(event_type, None, data)])
            uow.commit()

    def created(self, actor: str) -> None:
        """The leaf of a keyring (or token) created on this deployment's first start."""
        self.record(actor, CREATED, {"kms": self.kms.name, "version": self.kms.active_version()})

    def status(self) -> list[VersionStatus]:
        wraps = self.envelope.wrapped_by_version(self.engine)
        return [
            VersionStatus(v.version, v.state, v.created_at, wraps.get(v.version, 0))
            for v in self.kms.versions()
        ]

    def pending_rewrap(self) -> int:
        """Live data keys under a version other than the active one."""
        active = self.kms.active_version()
        wraps = self.envelope.wrapped_by_version(self.engine)
        return sum(n for version, n in wraps.items() if version != active)

    def rotate(self, actor: str) -> KeyVersion:
        previous = self.kms.active_version()
        version = self.kms.rotate()
        self.record(actor, ROTATED, {"version": version.version, "previous": previous})
        return version

    def rewrap(
        self,
        actor: str,
        *,
        keep: Callable[[], bool] = lambda: True,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Moves every live data key to the active version, a batch per transaction, without
        downtime (both versions unwrap meanwhile); `progress(moved, total)` after each batch.
        One leaf with the counts moved from each version, when any moved."""
        before = self.envelope.wrapped_by_version(self.engine)
        target = self.kms.active_version()
        total = sum(n for version, n in before.items() if version < target)
        moved = 0
        while keep():
            step = self.envelope.rewrap(self.engine, batches_max=1)
            moved += step
            if progress is not None:
                progress(moved, total)
            if step < REWRAP_BATCH:
                break
        if moved:
            after = self.envelope.wrapped_by_version(self.engine)
            counts = {str(v): n - after.get(v, 0) for v, n in sorted(before.items()) if v < target}
            self.record(actor, REWRAPPED, {"to_version": target, "moved": moved, "from": counts})
        return moved

    def _set(self, version: int, state: KeyState) -> KeyVersion:
        try:
            return self.kms.set_state(version, state)
        except KeyringError as exc:
            raise KeyStateError(str(exc)) from None

    def disable(self, version: int, actor: str) -> KeyVersion:
        """The version unwraps nothing until enabled again: what it still wraps (`wraps`)
        answers key_unavailable meanwhile."""
        wraps = self.envelope.wrapped_by_version(self.engine).get(version, 0)
        found = self._set(version, KeyState.DISABLED)
        self.record(actor, DISABLED, {"version": version, "wraps": wraps})
        return found

    def enable(self, version: int, actor: str) -> KeyVersion:
        found = self._set(version, KeyState.RETIRED)
        self.record(actor, ENABLED, {"version": version})
        return found

    def destroy(self, version: int, actor: str) -> KeyVersion:
        """Gone for good; refused while any live data key is still wrapped under it."""
        with UnitOfWork(self.engine, write=False) as uow:
            wraps = keys_store.count_by_version(uow).get(version, 0)
        if wraps:
            raise KeyInUse(
                f"version {version} still wraps {wraps} data keys: run `strongroom keys "
                "rewrap` first"
            )
        found = self._set(version, KeyState.DESTROYED)
        self.record(actor, DESTROYED, {"version": version})
        return found

    def export(self, secret: bytes, actor: str, *, log2_n: int = backup.SCRYPT_LOG2_N) -> bytes:
        """The recovery export (backup.py) of a local keyring."""
        if not isinstance(self.kms, LocalKeyring):
            raise RecoveryFailed(
                f"the {self.kms.name} key manager keeps its keys itself: back it up with its "
                "own tools (docs/security.md, Keys)"
            )
        material = self.kms.material()
        document = backup.export(material, secret, log2_n=log2_n)
        versions = [v.version for v in material.versions]
        self.record(actor, EXPORTED, {"versions": versions})
        return document


def restore_keyring(path: Path, master_key: bytes, document: bytes, secret: bytes) -> LocalKeyring:
    """A keyring at `path` sealed under `master_key`, holding the keys of a recovery export;
    refuses to replace an existing file (move a keyring that no longer opens aside first)."""
    if path.exists():
        raise RecoveryFailed(
            f"a keyring exists at {path}: move it aside first (a restore never overwrites one)"
        )
    try:
        material = backup.restore(document, secret)
    except backup.BackupError as exc:
        raise RecoveryFailed(str(exc)) from None
    return LocalKeyring.from_material(path, master_key, material)


def restored(service: KeyService, actor: str) -> None:
    """The leaf of a restore, once the restored keyring is open."""
    versions = [v.version for v in service.kms.versions()]
    service.record(actor, RESTORED, {"kms": service.kms.name, "versions": versions})
