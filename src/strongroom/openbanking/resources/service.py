"""The consents' use cases: a TPP creates, reads and deletes its consents; the customer
authorises (choosing accounts) or rejects one on the consent page; the expiry job ends those
whose ExpirationDateTime passed. Each change goes through the state machine
(openbanking/consents.py) in one transaction with its audit leaf (in the tenant's log) and its
event to the tenant; a consent that ends (revoked or expired) has its tokens revoked in that
transaction too, through the port the composition root sets (`revoke_tokens`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import InvalidRequest, NotFound, echo
from strongroom.db.uow import UnitOfWork
from strongroom.events.hooks import EventEmitter, EventType
from strongroom.ledger.service import LedgerService
from strongroom.openbanking import consents as machine
from strongroom.openbanking import model_errors as me
from strongroom.openbanking.consents import ConsentEvent, ConsentKind, ConsentState, ConsentStatus
from strongroom.openbanking.model import Permission, ob_asset
from strongroom.openbanking.ports import ConsentRef
from strongroom.openbanking.resources import store
from strongroom.openbanking.resources.errors import accounts_invalid
from strongroom.openbanking.resources.model import (
    CONSENT_CREATED,
    CONSENT_EVENT_NAMES,
    OB_CONSENT_ACCOUNTS_MAX,
    OB_CONSENT_REQUEST_BYTES_MAX,
    OB_IDEMPOTENCY_KEY_LENGTH_MAX,
    Consent,
    created_fields,
    leaf_data,
    request_mac,
)

# The events of the changes served here (a payment consent's `consume` is the payments'
# to declare, with the use that emits it).
OB_CONSENT_EVENT_TYPES: Final = (
    EventType(
        CONSENT_CREATED,
        "A TPP created an open banking consent: ids, kind, status, permissions, expiry and a "
        "keyed MAC of its request.",
    ),
    EventType(
        CONSENT_EVENT_NAMES[ConsentEvent.AUTHORISE],
        "A customer authorised an open banking consent: ids of the consent, the customer and "
        "the accounts selected.",
    ),
    EventType(
        CONSENT_EVENT_NAMES[ConsentEvent.REJECT],
        "A customer rejected an open banking consent: ids only.",
    ),
    EventType(
        CONSENT_EVENT_NAMES[ConsentEvent.REVOKE],
        "An open banking consent was revoked (by the TPP, the customer or the operator).",
    ),
    EventType(
        CONSENT_EVENT_NAMES[ConsentEvent.EXPIRE],
        "An open banking consent passed its ExpirationDateTime.",
    ),
)
EXPIRY_ACTOR: Final = "system:openbanking_expiry"
EXPIRY_BATCH_MAX: Final = 500  # consents ended per transaction by the expiry job

# The authorization server's revocation of a consent's tokens, in the transaction that ends
# the consent (so a token never outlives its consent's end by a commit).
TokensRevoker = Callable[[UnitOfWork, str], object]


# The consents read during one resource request (`one_read_per_request`), by id.
_REQUEST_READS: ContextVar[dict[str, Consent] | None] = ContextVar(
    "ob_consent_request_reads", default=None
)


@contextlib.contextmanager
def one_read_per_request() -> Iterator[None]:
    """Within it (one resource request, in one thread), `ConsentService.get` and `lookup` read
    a consent from the database once: the token check and the operation then judge the same
    read, as if they had read it at the same instant (each read alone is one instant too), at
    the cost of one read instead of two. A change through the service forgets what was
    read."""
    token = _REQUEST_READS.set({})
    try:
        yield
    finally:
        _REQUEST_READS.reset(token)


def _forget_request_reads() -> None:
    reads = _REQUEST_READS.get()
    if reads is not None:
        reads.clear()


def tpp_actor(client_id: str) -> str:
    return f"tpp:{client_id}"


def customer_actor(customer_id: str) -> str:
    return f"customer:{customer_id}"


class ConsentService:
    def __init__(
        self,
        engine: Engine,
        ledger: LedgerService,
        *,
        request_mac_key: bytes,
        audit: AuditRecorder | None = None,
        events: EventEmitter | None = None,
        revoke_tokens: TokensRevoker | None = None,
        now_us: Callable[[], int] = clock.now_us,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        # model.request_mac_key: the created leaf's `request_mac`.
        self._request_mac_key = request_mac_key
        self._audit = audit
        self._events = events
        self.revoke_tokens = revoke_tokens  # set at wiring, once the authorization server is
        self.now_us = now_us

    # -- reads -----------------------------------------------------------------------------

    def get(self, consent_id: str) -> Consent:
        reads = _REQUEST_READS.get()
        found = reads.get(consent_id) if reads is not None else None
        if found is None:
            with UnitOfWork(self.engine, write=False) as uow:
                found = store.get(uow, consent_id)
            if found is None:
                raise NotFound(f"no consent {echo(consent_id)}", param="ConsentId")
            if reads is not None:
                reads[consent_id] = found
        return found

    def lookup(self, consent_id: str) -> ConsentRef:
        """ports.ConsentLookup: the consent as the authorization server sees it."""
        return self.get(consent_id).to_ref()

    # -- the TPP's -------------------------------------------------------------------------

    def create(
        self,
        tenant_id: str,
        client_id: str,
        kind: ConsentKind,
        request: Mapping[str, Any],
        *,
        permissions: Sequence[Permission] = (),
        expires_at_us: int | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[Consent, bool]:
        """A new consent awaiting authorisation (AWAU), and True; or, for an idempotency key
        this client used before with the same request, that consent and False (the key with
        another request is ob_idempotency_key_reused). `request` is the OB Data as kept; an
        ExpirationDateTime not in the future is refused."""
        body = store.request_json(request)
        if len(body.encode()) > OB_CONSENT_REQUEST_BYTES_MAX:
            raise InvalidRequest(
                f"the consent request is over {OB_CONSENT_REQUEST_BYTES_MAX} bytes",
                param="Data",
                code="consent_request_too_large",
            )
        if idempotency_key is not None:
            assert 1 <= len(idempotency_key) <= OB_IDEMPOTENCY_KEY_LENGTH_MAX
        now = self.now_us()
        if expires_at_us is not None and expires_at_us <= now:
            raise InvalidRequest(
                "Data.ExpirationDateTime must be in the future",
                param="Data.ExpirationDateTime",
                code=me.INVALID_OB_DATETIME,
            )
        digest = hashlib.sha256(f"{kind}\n{body}".encode()).hexdigest()
        consent = Consent(
            id=ids.new_id("obc"),
            tenant_id=tenant_id,
            client_id=client_id,
            state=ConsentState.new(kind, now),
            expires_at_us=expires_at_us,
            permissions=tuple(permissions),
            request=dict(request),
        )
        with UnitOfWork(self.engine) as uow:
            if not store.insert(uow, consent, idempotency_key, digest):
                assert idempotency_key is not None, "only a repeated key conflicts"
                found = store.by_idempotency_key(uow, tenant_id, client_id, idempotency_key)
                assert found is not None, "the conflicting consent is there"
                if found[1] != digest:
                    raise InvalidRequest(
                        "this x-idempotency-key was used with another request",
                        param="x-idempotency-key",
                        code="ob_idempotency_key_reused",
                    )
                return found[0], False
            created = created_fields(consent, request_mac(self._request_mac_key, body))
            self._record(uow, consent, None, CONSENT_CREATED, tpp_actor(client_id), created)
            uow.commit()
        return consent, True

    def revoke(self, consent_id: str, *, actor: str) -> Consent:
        """CANC: access withdrawn (the TPP's DELETE, the customer's dashboard, the operator);
        the consent's tokens are revoked with it."""
        return self._change(consent_id, ConsentEvent.REVOKE, actor)

    # -- the customer's (the consent page) -------------------------------------------------

    def authorise(
        self,
        consent_id: str,
        customer_id: str,
        account_ids: Sequence[str],
        *,
        actor: str | None = None,
        uow: UnitOfWork | None = None,
    ) -> Consent:
        """AUTH: the customer approves, granting these accounts of theirs (of the consent's
        tenant, in a currency OB can express; exactly one for a funds confirmation consent).
        A consent whose ExpirationDateTime passed is not authorised (consent_state). With
        `uow`, the change is made in that transaction, which the caller commits (the consent
        page's, which issues the authorization code in it)."""
        consent = self.get(consent_id)
        chosen = self._check_accounts(consent, customer_id, account_ids)
        if consent.expires_at_us is not None and consent.expires_at_us <= self.now_us():
            raise me.ConsentStateError("the consent expired before it was authorised")

        decided = {"customer_id": customer_id, "account_ids": chosen}
        return self._change(
            consent_id, ConsentEvent.AUTHORISE, actor or customer_actor(customer_id), decided, uow
        )

    def reject(
        self,
        consent_id: str,
        customer_id: str,
        *,
        actor: str | None = None,
        uow: UnitOfWork | None = None,
    ) -> Consent:
        """RJCT: the customer declines (in `uow`, when given, as `authorise`)."""

        decided = {"customer_id": customer_id}
        return self._change(
            consent_id, ConsentEvent.REJECT, actor or customer_actor(customer_id), decided, uow
        )

    def _check_accounts(
        self, consent: Consent, customer_id: str, account_ids: Sequence[str]
    ) -> tuple[str, ...]:
        wanted = tuple(account_ids)
        if len(set(wanted)) != len(wanted):
            raise accounts_invalid("an account is selected twice")
        if consent.kind is ConsentKind.ACCOUNT_ACCESS:
            if not 1 <= len(wanted) <= OB_CONSENT_ACCOUNTS_MAX:
                raise accounts_invalid(f"select 1 to {OB_CONSENT_ACCOUNTS_MAX} accounts")
        elif len(wanted) != 1:
            raise accounts_invalid(f"a {consent.kind.replace('_', ' ')} consent is for one account")
        accounts = []
        for account_id in wanted:
            try:
                accounts.append(self.ledger.get_account(account_id))
            except NotFound:
                raise accounts_invalid(f"no account {account_id} of this customer") from None
        tenants = self.ledger.ledger_tenants(sorted({a.ledger_id for a in accounts}))
        for account in accounts:
            if account.customer_id != customer_id or tenants.get(account.ledger_id) != (
                consent.tenant_id
            ):
                raise accounts_invalid(f"no account {account.id} of this customer")
            if ob_asset(account.asset) is None:
                raise accounts_invalid(
                    f"account {account.id} holds {account.asset}, which Open Banking cannot "
                    "express (an ISO 4217 currency)"
                )
            details = consent.payment_details
            if details is not None and account.asset != details.money.asset.code:
                raise accounts_invalid(
                    f"account {account.id} holds {account.asset}: the payment is in "
                    f"{details.money.asset.code}"
                )
        return wanted

    # -- the expiry job --------------------------------------------------------------------

    def expire_due(self, *, limit: int = EXPIRY_BATCH_MAX) -> int:
        """EXPD for the open consents whose ExpirationDateTime passed, at most `limit` in one
        transaction; how many. A payment consent (none has an expiry yet) would be rejected."""
        now = self.now_us()
        done = 0
        with UnitOfWork(self.engine) as uow:
            for consent_id in store.due(uow, now, limit):
                consent = store.get(uow, consent_id, lock=True)
                # Locked and read again: another worker's change may have ended it meanwhile.
                if consent is None or consent.state.final or consent.expires_at_us is None:
                    continue
                if consent.expires_at_us > now:
                    continue
                self._apply(uow, consent, ConsentEvent.EXPIRE, EXPIRY_ACTOR, now, None)
                done += 1
            uow.commit()
        return done

    # -- transitions -----------------------------------------------------------------------

    def _change(
        self,
        consent_id: str,
        event: ConsentEvent,
        actor: str,
        decided: Mapping[str, Any] | None = None,
        within: UnitOfWork | None = None,
    ) -> Consent:
        _forget_request_reads()
        with contextlib.ExitStack() as stack:
            # The caller's transaction, which the caller commits, or one of our own.
            uow = within or stack.enter_context(UnitOfWork(self.engine))
            consent = store.get(uow, consent_id, lock=True)
            if consent is None:
                raise NotFound(f"no consent {echo(consent_id)}", param="ConsentId")
            after = self._apply(uow, consent, event, actor, self.now_us(), decided)
            if within is None:
                uow.commit()
        return after

    def _apply(
        self,
        uow: UnitOfWork,
        consent: Consent,
        event: ConsentEvent,
        actor: str,
        now: int,
        decided: Mapping[str, Any] | None,
    ) -> Consent:
        """One event through the state machine (consent_state, nothing written, when it may
        not), with what the customer decided (their id, the accounts), written with its leaf,
        its event and, when it ends access, the tokens' end."""
        state, transition = machine.apply(consent.state, event, now)
        after = dataclasses.replace(consent, state=state, **(decided or {}))
        store.update(uow, after)
        self._record(uow, after, transition, CONSENT_EVENT_NAMES[event], actor)
        # Every end of access, whatever it ended from: a code issued before a TPP's DELETE of an
        # AWAU consent must not become a token afterwards.
        ended = state.status in (ConsentStatus.CANC, ConsentStatus.EXPD, ConsentStatus.RJCT)
        if ended and self.revoke_tokens is not None:
            self.revoke_tokens(uow, consent.id)
        return after

    def _record(
        self,
        uow: UnitOfWork,
        consent: Consent,
        transition: machine.Transition | None,
        kind: str,
        actor: str,
        created: Mapping[str, Any] | None = None,
    ) -> None:
        data = leaf_data(consent, transition, created=created)
        if self._audit is not None:
            self._audit.record_all(uow, consent.tenant_id, actor, [(kind, consent.id, data)])
        if self._events is not None:
            self._events.emit(uow, consent.tenant_id, [(kind, data)])
