"""Opening the configured key manager (settings `kms`, `master_key`, `keyring_path`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Final

from sqlalchemy.engine import make_url

from strongroom.core.errors import StrongroomError
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


def _master_key(settings: Settings, path: Path) -> bytes:
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
            dev.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(dev, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(new_master_secret() + "\n")
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


def open_key_manager(settings: Settings) -> KeyManager:
    """The configured key manager; a local keyring is created on first use."""
    if settings.kms == "pkcs11":
        raise KeysUnavailable("STRONGROOM_KMS=pkcs11: the PKCS#11 adapter is not built yet")
    path = keyring_path(settings)
    master = _master_key(settings, path)
    try:
        if not path.exists():
            log.warning("keys: created a new keyring at %s", path)
            return LocalKeyring.create(path, master)
        return LocalKeyring(path, master)
    except (KeyringError, OSError) as exc:
        raise KeysUnavailable(str(exc)) from None
