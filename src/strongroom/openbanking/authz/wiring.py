"""What the composition root (runtime.py) needs of the authorization server: its settings and
its purge job."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from strongroom.openbanking.authz.replay import SUFFIX, FileReplayStore
from strongroom.openbanking.authz.service import AuthorizationServer, AuthzConfig, Keep
from strongroom.settings import Settings

log = logging.getLogger("strongroom.openbanking.authz")

PURGE_JOB: Final = "openbanking_authz_purge"  # /metrics' and /readyz's name of the job
# The issuer when STRONGROOM_PUBLIC_BASE_URL is unset: `serve`'s own address with its default
# port (and the default WebAuthn origin). Never taken from a request's Host header: an issuer
# that a request could choose would accept a client assertion made for another server.
FALLBACK_ISSUER: Final = "http://localhost:8000"


def config(settings: Settings) -> AuthzConfig:
    issuer = settings.public_base_url
    if issuer is None:
        issuer = FALLBACK_ISSUER
        log.warning(
            "STRONGROOM_PUBLIC_BASE_URL is unset: the open banking authorization server's "
            "issuer is %s; set it to the URL clients reach this server at",
            issuer,
        )
    return AuthzConfig(
        issuer=issuer,
        access_token_lifetime_s=settings.ob_access_token_lifetime_s,
        refresh_token_lifetime_s=settings.ob_refresh_token_lifetime_s,
    )


def purge_job(server: AuthorizationServer) -> Callable[[Keep], None]:
    """Expired jtis, pushed requests, codes and tokens deleted, a batch per transaction."""

    def run(keep: Keep) -> None:
        deleted = server.purge(keep)
        if deleted:
            log.info("openbanking authz purge: deleted %d expired rows", deleted)

    return run


def replay_store(sqlite_database: str | None) -> FileReplayStore | None:
    """A SQLite deployment's replay store of DPoP proofs: beside the database file (an
    in-memory database, one process's, keeps them in its table)."""
    if not sqlite_database or sqlite_database == ":memory:" or sqlite_database.startswith("file:"):
        return None
    return FileReplayStore(Path(sqlite_database + SUFFIX))
