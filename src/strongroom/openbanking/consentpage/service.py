"""The consent page's use cases: what the page shows to whoever arrives with a pushed request
(`open`), and the customer's decision on it (`decide`).

The decision is one transaction: the pushed request is used up, the consent authorised or
rejected (with its audit leaf and event) and the code written together, in the authorization
server's `complete` (its `decided` hook runs the consent service's change in that
transaction). Whatever fails (an account refused, the consent changed meanwhile, a crash)
leaves all three as they were: never a consent authorised with no code issued, nor a code for
a consent that was not. A second decision finds the request used up (invalid_request_uri).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.service import LedgerService
from strongroom.openbanking.authz import model as authz_model
from strongroom.openbanking.authz.errors import InvalidRequestUri
from strongroom.openbanking.authz.model import PendingAuthorization
from strongroom.openbanking.authz.service import UNKNOWN_REQUEST_URI, AuthorizationServer
from strongroom.openbanking.consentpage import model
from strongroom.openbanking.consentpage.errors import (
    CustomerSignInRequired,
    DeciderForbidden,
    Forged,
)
from strongroom.openbanking.consentpage.model import (
    AccountChoice,
    Decision,
    PageView,
    Stage,
)
from strongroom.openbanking.model import ob_asset
from strongroom.openbanking.resources.errors import accounts_invalid
from strongroom.openbanking.resources.model import OB_CONSENT_ACCOUNTS_MAX, Consent
from strongroom.openbanking.resources.service import ConsentService
from strongroom.security.auth.model import UserKind, UserPrincipal
from strongroom.security.auth.service import UserService
from strongroom.tenancy.access import require_step_up
from strongroom.tenancy.service import TenancyService

log = logging.getLogger("strongroom.openbanking.consentpage")

DECIDED: Final = "open banking consent decided"


class ConsentPage:
    """Built on the authorization server (`begin`, `complete`), the consent service (the
    consent, its transition), the ledger (the customer's accounts), the users (the session,
    the customer a user is) and the tenancy (the tenant's name). `csrf_key` is the key
    manager's MAC key of model.CSRF_PURPOSE: every worker derives the same one."""

    def __init__(
        self,
        authz: AuthorizationServer,
        consents: ConsentService,
        ledger: LedgerService,
        users: UserService,
        tenancy: TenancyService,
        *,
        csrf_key: bytes,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        assert len(csrf_key) >= 32
        self.authz = authz
        self.consents = consents
        self.ledger = ledger
        self.users = users
        self.tenancy = tenancy
        self.csrf_key = csrf_key
        self.now_us = now_us

    @property
    def issuer(self) -> str:
        return self.authz.issuer

    # -- the page --------------------------------------------------------------------------

    def open(self, client_id: str, request_uri: str, session_token: str | None) -> PageView:
        """The page for this pushed request (authz `begin`: InvalidRequestUri for one unknown,
        expired, used or another client's) and whoever holds the session: sign in, sign out
        (not the consent's customer), step up, or decide."""
        pending = self.authz.begin(client_id, request_uri)
        consent = self.consents.get(pending.consent_id)
        grant = model.describe(consent)
        tenant_name = self.tenancy.tenant(pending.tenant_id).name
        principal = self._principal(session_token)
        if principal is None:
            return PageView(Stage.SIGN_IN, pending, request_uri, grant, tenant_name)
        customer_id = self._customer_of(principal, pending)
        if customer_id is None:
            return PageView(Stage.OTHER_USER, pending, request_uri, grant, tenant_name)
        if principal.stepped_up_until_us <= self.now_us():
            user = self.users.get_user(principal.tenant_id, principal.user_id)
            return PageView(
                Stage.STEP_UP,
                pending,
                request_uri,
                grant,
                tenant_name,
                totp_enrolled=user.totp_enrolled,
            )
        return PageView(
            Stage.DECIDE,
            pending,
            request_uri,
            grant,
            tenant_name,
            accounts=tuple(
                self.eligible_accounts(pending.tenant_id, customer_id, _currency(consent))
            ),
            csrf_token=model.csrf_token(self.csrf_key, principal.session_id, pending.handle),
        )

    def eligible_accounts(
        self, tenant_id: str, customer_id: str, currency: str | None = None
    ) -> list[AccountChoice]:
        """The customer's open accounts in ledgers of `tenant_id`, in a currency OB can
        express and, with `currency` (a payment consent's instructed one), in that currency:
        the consent service's rules (`_check_accounts`), which judge again in the decision's
        transaction. At most OB_CONSENT_ACCOUNTS_MAX, by id."""
        page = self.ledger.list_accounts(
            None, None, OB_CONSENT_ACCOUNTS_MAX, customer_id=customer_id
        )
        tenants = self.ledger.ledger_tenants(sorted({a.ledger_id for a in page.data}))
        return [
            AccountChoice(a.id, a.name, a.asset)
            for a in page.data
            if a.customer_id == customer_id
            and tenants.get(a.ledger_id) == tenant_id
            and ob_asset(a.asset) is not None
            and (currency is None or a.asset == currency)
            and not a.closed
        ]

    # -- the decision ----------------------------------------------------------------------

    def decide(self, decision: Decision, session_token: str | None) -> str:
        """The customer's decision: the URL to send the user agent to (the client's redirect
        URI with a code, or error=access_denied; state and iss with both). In this order, each
        refusal writing nothing: a customer's session (customer_sign_in_required); the form's
        CSRF token is this session's for this request (consent_page_forged); the request is
        pending (invalid_request_uri: unknown, expired or decided already); the user is a
        customer of the consent's tenant (consent_decider_forbidden); they stepped up lately
        (step_up_required); an approval's accounts are among theirs the page offers
        (consent_accounts_invalid). Then the one transaction of the module's docstring."""
        principal = self._principal(session_token)
        if principal is None:
            raise CustomerSignInRequired("sign in to decide: the session is missing or over")
        try:
            handle = authz_model.request_uri_digest(decision.request_uri)
        except InvalidRequest:
            raise InvalidRequestUri(UNKNOWN_REQUEST_URI, param="request_uri") from None
        if not model.csrf_matches(self.csrf_key, principal.session_id, handle, decision.csrf_token):
            raise Forged("the form's token is not this session's for this request")
        pending = self.authz.begin(decision.client_id, decision.request_uri)
        customer_id = self._customer_of(principal, pending)
        if customer_id is None:
            raise DeciderForbidden("only a customer of the consent's account provider decides")
        require_step_up(principal, now_us=self.now_us())
        consent_id, actor = pending.consent_id, principal.actor
        if decision.approve:
            currency = _currency(self.consents.get(consent_id))
            offered = {
                a.id for a in self.eligible_accounts(pending.tenant_id, customer_id, currency)
            }
            if not decision.account_ids:
                raise accounts_invalid("choose an account to share")
            if any(a not in offered for a in decision.account_ids):
                raise accounts_invalid("an account chosen is not one of yours the page offers")
            chosen = decision.account_ids

            def decided(uow: UnitOfWork) -> object:
                return self.consents.authorise(
                    consent_id, customer_id, chosen, actor=actor, uow=uow
                )

        else:

            def decided(uow: UnitOfWork) -> object:
                return self.consents.reject(consent_id, customer_id, actor=actor, uow=uow)

        redirect = self.authz.complete(pending, decision.approve, customer_id, decided=decided)
        log.info(
            DECIDED,
            extra={
                "consent_id": consent_id,
                "client_id": pending.client_id,
                "decision": "approve" if decision.approve else "reject",
            },
        )
        return redirect

    # -- who is at the page ----------------------------------------------------------------

    def _principal(self, session_token: str | None) -> UserPrincipal | None:
        if not session_token:
            return None
        return self.users.authenticate(session_token)

    def _customer_of(self, principal: UserPrincipal, pending: PendingAuthorization) -> str | None:
        """The customer the session's user is, if a customer user of the consent's tenant."""
        if principal.kind is not UserKind.CUSTOMER or principal.tenant_id != pending.tenant_id:
            return None
        user = self.users.get_user(principal.tenant_id, principal.user_id)
        return user.customer_id


def _currency(consent: Consent) -> str | None:
    """The currency a payment consent instructs (its account must hold it); None for the
    other kinds, whose accounts may hold any OB currency."""
    details = consent.payment_details
    return None if details is None else details.money.asset.code
