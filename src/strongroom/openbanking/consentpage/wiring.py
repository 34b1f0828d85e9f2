"""What the composition root (runtime.py) needs of the consent page: the page itself, its
router, its form route and its error codes."""

from __future__ import annotations

from typing import Final

from strongroom.ledger.service import LedgerService
from strongroom.openbanking.authz.service import AuthorizationServer
from strongroom.openbanking.consentpage import model
from strongroom.openbanking.consentpage.api import router
from strongroom.openbanking.consentpage.errors import CONSENT_PAGE_ERRORS
from strongroom.openbanking.consentpage.service import ConsentPage
from strongroom.openbanking.resources.service import ConsentService
from strongroom.security.auth.service import UserService
from strongroom.security.kms import KeyManager
from strongroom.tenancy.service import TenancyService

__all__ = ["ERRORS", "FORM_PATHS", "ConsentPage", "build", "router"]

ERRORS: Final = CONSENT_PAGE_ERRORS
FORM_PATHS: Final = model.FORM_PATHS


def build(
    authz: AuthorizationServer,
    consents: ConsentService,
    ledger: LedgerService,
    users: UserService,
    tenancy: TenancyService,
    kms: KeyManager,
) -> ConsentPage:
    """The page, its CSRF key derived by the key manager (the same in every worker, and
    nothing a copy of the database holds)."""
    csrf_key = kms.mac(model.CSRF_PURPOSE, model.CSRF_KEY_INFO)
    return ConsentPage(authz, consents, ledger, users, tenancy, csrf_key=csrf_key)
