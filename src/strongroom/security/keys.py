"""Opening the configured key manager (settings `kms`, `master_key`, `keyring_path`,
`pkcs11_*`), and refusing to start over existing data with keys that cannot open it.

A deployment whose database holds wrapped data keys never gets a fresh keyring silently: a
missing keyring file, an empty token, a master key that does not open the keyring, or a
missing development master key each stop `serve` and the CLI with one line naming the
restore command (docs/security.md "Keys": losing the master secret)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from sqlalchemy.engine import Engine, make_url

from strongroom.core.errors import StrongroomError
from strongroom.db.uow import UnitOfWork
from strongroom.security import store as keys_store
from strongroom.security.kms import (
    KeyManager,
    KeyringError,
    LocalKeyring,
    master_key_from_secret,
    new_master_secret,
)
from strongroom.settings import Settings

log = logging.getLogger("strongroom.security")

KEYRING_DEFAULT: Final = ".strongroom/keyring.json"
DEV_MASTER_SUFFIX: Final = ".dev-master-key"
RESTORE_HINT: Final = (
    "restore the keyring with `strongroom keys restore --recovery-secret-file FILE --in "
    "EXPORT` (docs/security.md, Keys)"
)


class KeysUnavailable(StrongroomError):
    """The key manager cannot be opened: no keyring, a wrong master key, no HSM."""

    code = "keys_unavailable"
    status = 500


def keyring_path(settings: Settings) -> Path:
    if settings.keyring_path:
        return Path(settings.keyring_path)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return Path(f"{url.database}-keyring.json")
    return Path(KEYRING_DEFAULT)


def master_key(settings: Settings, path: Path) -> bytes:
    if settings.master_key is not None:
        secret = settings.master_key.get_secret_value()
        source = "STRONGROOM_MASTER_KEY"
    elif settings.master_key_file:
        source = "STRONGROOM_MASTER_KEY_FILE"
        try:
            secret = Path(settings.master_key_file).read_text(encoding="ascii")
        except (OSError, UnicodeError) as exc:
            raise KeysUnavailable(f"{source}: cannot read it ({type(exc).__name__})") from None
    else:
        dev = path.with_name(path.name + DEV_MASTER_SUFFIX)
        source = str(dev)
        if not dev.exists():
            if path.exists():
                # A new development key would not open the keyring: never make one then.
                raise KeysUnavailable(
                    f"the keyring {path} exists but its development master key {dev} is gone "
                    "and no STRONGROOM_MASTER_KEY is set; " + RESTORE_HINT
                )
            dev.parent.mkdir(parents=True, exist_ok=True)
            _write_once(dev, new_master_secret() + "\n")
            log.warning(
                "DEVELOPMENT KEYS: generated a master key in %s, beside the keyring it "
                "protects. Anyone who can read both can decrypt every customer's data. In "
                "production set STRONGROOM_MASTER_KEY or STRONGROOM_MASTER_KEY_FILE "
                "(docs/security.md).",
                dev,
            )
        else:
            log.warning("DEVELOPMENT KEYS: the master key is the development one in %s", dev)
        secret = dev.read_text(encoding="ascii")
    try:
        return master_key_from_secret(secret)
    except ValueError as exc:
        raise KeysUnavailable(f"{source}: {exc}") from None


def _write_once(path: Path, text: str) -> None:
    """`text` into a new file of mode 0600; when another process wrote it first, theirs is
    kept (a content written whole before the rename, so never read half-written)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(tmp, path)  # fails if it exists: the first writer wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


def wrapped_keys(engine: Engine | None) -> int:
    """How many live data keys the database holds (0 without a database, or before its
    schema has the table: a fresh deployment)."""
    if engine is None:
        return 0
    with UnitOfWork(engine, write=False) as uow:
        return sum(keys_store.count_by_version(uow).values())


def _refuse_fresh_keys(engine: Engine | None, what: str) -> None:
    held = wrapped_keys(engine)
    if held:
        raise KeysUnavailable(
            f"{what}, but the database holds {held} data keys wrapped by the lost keys: "
            f"refusing to make new keys over them; {RESTORE_HINT}"
        )


def open_keys(settings: Settings, engine: Engine | None = None) -> tuple[KeyManager, bool]:
    """The configured key manager, and whether it was created now (a fresh deployment: a new
    keyring file, or a token initialised). With `engine`, keys are created only while the
    database holds no wrapped data key."""
    if settings.kms == "pkcs11":
        return _open_pkcs11(settings, engine)
    path = keyring_path(settings)
    if not path.exists():
        _refuse_fresh_keys(engine, f"no keyring at {path}")
    master = master_key(settings, path)
    try:
        if not path.exists():
            try:
                created = LocalKeyring.create(path, master)
            except FileExistsError:  # another process of this deployment made it just now
                return LocalKeyring(path, master), False
            log.warning("keys: created a new keyring at %s", path)
            return created, True
        return LocalKeyring(path, master), False
    except KeyringError as exc:
        raise KeysUnavailable(f"{exc}; {RESTORE_HINT}") from None
    except OSError as exc:
        raise KeysUnavailable(str(exc)) from None


def _open_pkcs11(settings: Settings, engine: Engine | None) -> tuple[KeyManager, bool]:
    from strongroom.security.pkcs11 import HsmError, Pkcs11KeyManager

    missing = [
        name
        for name, value in (
            ("STRONGROOM_PKCS11_MODULE", settings.pkcs11_module),
            ("STRONGROOM_PKCS11_TOKEN_LABEL", settings.pkcs11_token_label),
            ("STRONGROOM_PKCS11_PIN", settings.pkcs11_pin),
        )
        if not value
    ]
    if missing:
        raise KeysUnavailable(f"STRONGROOM_KMS=pkcs11 needs {', '.join(missing)}")
    assert settings.pkcs11_pin is not None
    try:
        hsm = Pkcs11KeyManager(
            settings.pkcs11_module,
            settings.pkcs11_token_label,
            settings.pkcs11_pin.get_secret_value(),
        )
        if not hsm.empty:
            return hsm, False
        _refuse_fresh_keys(engine, f"the token {settings.pkcs11_token_label!r} holds no keys")
        hsm.initialise()
    except HsmError as exc:
        raise KeysUnavailable(str(exc)) from None
    log.warning("keys: initialised token %r with version 1", settings.pkcs11_token_label)
    return hsm, True


def open_key_manager(settings: Settings, engine: Engine | None = None) -> KeyManager:
    """The configured key manager; local keys are created on first use (open_keys)."""
    return open_keys(settings, engine)[0]
