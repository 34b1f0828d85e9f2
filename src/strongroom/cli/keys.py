"""`strongroom keys`: the key-encryption keys (docs/security.md "Keys"). Every change is a
leaf of the audit log of the default tenant (security/keyops.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, open_engine, print_json
from strongroom.cli.progress import progress
from strongroom.security import backup
from strongroom.security.errors import RecoveryFailed
from strongroom.security.keyops import KeyService, restore_keyring, restored
from strongroom.security.keys import KeysUnavailable, keyring_path, master_key, open_keys
from strongroom.security.kms import new_master_secret

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from strongroom.audit.service import AuditLog
    from strongroom.security.kms import KeyManager
    from strongroom.settings import Settings

app = typer.Typer(
    no_args_is_help=True,
    help="Key-encryption keys: status, rotation, rewrap, disabling, recovery export.",
)

Version = Annotated[int, typer.Argument(min=1, help="the key-encryption key version")]
SecretFile = Annotated[
    Path,
    typer.Option(
        "--recovery-secret-file",
        help="a file holding the recovery secret (a passphrase of 16 characters or more)",
    ),
]


@contextlib.contextmanager
def key_service(database_url: str | None) -> Iterator[KeyService]:
    engine, settings = open_engine(database_url)
    try:
        kms, created = open_keys(settings, engine)
        audit = _audit_log(engine, settings, kms)
        service = KeyService(engine, kms, audit if settings.audit else None)
        if created:
            service.created(CLI_ACTOR)
        yield service
    finally:
        engine.dispose()


def _audit_log(engine: Engine, settings: Settings, kms: KeyManager) -> AuditLog:
    """The audit log as the composition root builds it, its keys sealed under `kms`."""
    from strongroom.runtime import build_ledger

    return build_ledger(engine, settings, kms=kms)[1]


def _read_secret(path: Path) -> bytes:
    try:
        return backup.recovery_secret(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecoveryFailed(f"{path}: cannot read it ({type(exc).__name__})") from None
    except (UnicodeError, backup.BackupError) as exc:
        raise RecoveryFailed(f"{path}: {exc}") from None


@app.command("new-master-key")
def new_master_key() -> None:
    """Print a fresh master key (32 random bytes, base64) for STRONGROOM_MASTER_KEY or
    STRONGROOM_MASTER_KEY_FILE. Nothing is stored: keep it in your secret store."""
    typer.echo(new_master_secret())


@app.command()
def status(database_url: DbOption = None) -> None:
    """Each version's state and how many data keys it wraps."""
    with key_service(database_url) as keys:
        print_json(
            {
                "kms": keys.kms.name,
                "active_version": keys.kms.active_version(),
                "pending_rewrap": keys.pending_rewrap(),
                "versions": [v.to_dict() for v in keys.status()],
            }
        )


@app.command()
def rotate(database_url: DbOption = None) -> None:
    """A new active version: new data keys are wrapped by it; the old one is retired (it still
    unwraps). Then `strongroom keys rewrap`, or let a running server's rewrap job do it."""
    with key_service(database_url) as keys:
        version = keys.rotate(CLI_ACTOR)
        print_json({"active_version": version.version})


@app.command()
def rewrap(database_url: DbOption = None) -> None:
    """Move every data key to the active version, a batch per transaction, while the server
    keeps serving."""
    with key_service(database_url) as keys, progress("rewrap") as report:
        moved = keys.rewrap(CLI_ACTOR, progress=lambda n, total: report(f"{n}/{total}"))
        print_json({"moved": moved, "active_version": keys.kms.active_version()})


@app.command()
def disable(version: Version, database_url: DbOption = None) -> None:
    """The version unwraps nothing until enabled again (what it still wraps answers
    key_unavailable meanwhile)."""
    with key_service(database_url) as keys:
        found = keys.disable(version, CLI_ACTOR)
        wraps = {v.version: v.wraps for v in keys.status()}.get(version, 0)
        print_json({"version": found.version, "state": found.state.value, "wraps": wraps})


@app.command()
def enable(version: Version, database_url: DbOption = None) -> None:
    """A disabled version unwraps again (retired: it wraps nothing new)."""
    with key_service(database_url) as keys:
        found = keys.enable(version, CLI_ACTOR)
        print_json({"version": found.version, "state": found.state.value})


@app.command()
def destroy(version: Version, database_url: DbOption = None) -> None:
    """Destroy a version for good; refused while any data key is still wrapped by it."""
    with key_service(database_url) as keys:
        found = keys.destroy(version, CLI_ACTOR)
        print_json({"version": found.version, "state": found.state.value})


@app.command("export")
def export_keys(
    recovery_secret_file: SecretFile,
    out: Annotated[Path, typer.Option("--out", help="the export file to write (new, 0600)")],
    database_url: DbOption = None,
) -> None:
    """Write the keyring's keys sealed under the recovery secret (scrypt, AES-256-GCM): with
    it and the export, a new master key can open this deployment's data again."""
    secret = _read_secret(recovery_secret_file)
    with key_service(database_url) as keys:
        document = keys.export(secret, CLI_ACTOR)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RecoveryFailed(f"{out} exists: a recovery export never overwrites") from None
    with os.fdopen(fd, "wb") as f:
        f.write(document)
        f.flush()
        os.fsync(f.fileno())
    typer.echo(f"exported the keyring to {out}", err=True)


@app.command()
def restore(
    recovery_secret_file: SecretFile,
    in_: Annotated[Path, typer.Option("--in", help="the recovery export to restore")],
    database_url: DbOption = None,
) -> None:
    """Write a keyring sealed under the current master key (STRONGROOM_MASTER_KEY or its file)
    from a recovery export; refuses while a keyring file exists."""
    secret = _read_secret(recovery_secret_file)
    engine, settings = open_engine(database_url)
    try:
        if settings.kms != "local":
            raise KeysUnavailable("restore writes a local keyring: STRONGROOM_KMS is not local")
        path = keyring_path(settings)
        try:
            document = in_.read_bytes()
        except OSError as exc:
            raise RecoveryFailed(f"{in_}: cannot read it ({type(exc).__name__})") from None
        if path.exists():
            raise RecoveryFailed(
                f"a keyring exists at {path}: move it aside first (a restore never overwrites)"
            )
        restore_keyring(path, master_key(settings, path), document, secret)
    finally:
        engine.dispose()
    with key_service(database_url) as keys:
        restored(keys, CLI_ACTOR)
        versions = [v.to_dict() for v in keys.status()]
    print_json({"keyring": str(path), "versions": versions})
