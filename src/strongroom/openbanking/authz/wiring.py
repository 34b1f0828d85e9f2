"""What the composition root (runtime.py) needs of the authorization server: its settings,
its purge job, and stand-ins for the ports it is given until what provides them is wired in
(no client, no consent: every request that needs one is refused)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from strongroom.core.errors import NotFound
from strongroom.openbanking.authz.service import AuthorizationServer, AuthzConfig, Keep
from strongroom.openbanking.errors import InvalidClient
from strongroom.openbanking.ports import ConsentRef, RegisteredClient
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


def no_clients(client_id: str) -> RegisteredClient:
    """The ClientLookup until the TPP registry is wired: no client is known."""
    del client_id
    raise InvalidClient("the client is unknown or disabled", param="client_id")


def no_consents(consent_id: str) -> ConsentRef:
    """The ConsentLookup until the consent resources are wired: no consent is known."""
    del consent_id
    raise NotFound("no such consent")
