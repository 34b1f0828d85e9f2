"""The composition root, the one place that knows every domain: the ledger wired to its
pipeline (gates; the outbox and the audit log as sinks), as `serve`, the worker and the CLI all
run it, so that a change committed by any of them leaves the same trail; and the HTTP app
(`create_app`): services, background jobs (jobs.py: expiry, checkpoints, retention, each under
a lease) and the webhook dispatcher, routers, the tenancy middleware and the error catalogue
collected from every domain's declarations. Adding a domain edits this file and
none of the others'."""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from strongroom import __version__
from strongroom.audit import api as audit_api
from strongroom.audit.errors import AUDIT_ERRORS
from strongroom.audit.service import AuditLog
from strongroom.cases import api as cases_api
from strongroom.cases import store as cases_store
from strongroom.cases.errors import CASES_ERRORS
from strongroom.cases.gate import REVIEW_HOLD_ERRORS, ReviewHoldGate
from strongroom.cases.model import kind_for_gate
from strongroom.cases.service import CASE_EVENT_TYPES, CaseService, LabelRecorder
from strongroom.cases.sink import CaseSink
from strongroom.cases.work import CaseWork
from strongroom.compliance import wiring as compliance
from strongroom.compliance.aml.service import install as install_aml
from strongroom.compliance.kyc import api as kyc_api
from strongroom.compliance.kyc.errors import KYC_ERRORS, KYC_LIMIT_ERRORS
from strongroom.compliance.kyc.service import KYC_EVENT_TYPES, KycService, kyc_limits, load_tiers
from strongroom.compliance.sanctions import api as sanctions_api
from strongroom.compliance.sanctions import wiring as sanctions_wiring
from strongroom.compliance.sanctions.errors import SANCTIONS_ERRORS, SANCTIONS_GATE_ERRORS
from strongroom.compliance.sanctions.owners import refuse_confirmed
from strongroom.compliance.sanctions.service import ALERT_KIND, SANCTIONS_EVENT_TYPES
from strongroom.compliance.sanctions.sink import PaymentSubjectsSink
from strongroom.compliance.sanctions.wiring import build_sanctions, gate_screeners, sanctions_gate
from strongroom.core import clock
from strongroom.core.errors import CORE_ERRORS, ErrorCatalogue, NotFound, StrongroomError
from strongroom.customers import api as customers_api
from strongroom.customers.counterparties import CounterpartyService
from strongroom.customers.errors import CUSTOMERS_ERRORS
from strongroom.customers.service import (
    CUSTOMER_EVENT_TYPES,
    CustomerService,
    existing_customers,
)
from strongroom.db import migrate
from strongroom.db.engine import DB_ERRORS, create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.events import api as events_api
from strongroom.events.dispatcher import Dispatcher, DispatcherConfig
from strongroom.events.errors import EVENTS_ERRORS
from strongroom.events.hooks import EventType
from strongroom.events.outbox import Outbox
from strongroom.events.service import EventService
from strongroom.http.app import Middleware, build_api
from strongroom.http.errors import HTTP_ERRORS
from strongroom.jobs import JobRunner, JobSpec, Keep
from strongroom.ledger import api as ledger_api
from strongroom.ledger.coalescer import GroupCommitter
from strongroom.ledger.errors import LEDGER_ERRORS
from strongroom.ledger.pipeline import Gate, Sink
from strongroom.ledger.service import BatchObserver, LedgerService
from strongroom.logs import configure_logging
from strongroom.metrics import Metrics
from strongroom.openbanking.authz import api as ob_authz_api
from strongroom.openbanking.authz import wiring as ob_authz
from strongroom.openbanking.authz.errors import AUTHZ_ERRORS
from strongroom.openbanking.authz.service import AuthorizationServer
from strongroom.openbanking.consentpage import wiring as ob_consent_page
from strongroom.openbanking.dashboard import wiring as ob_dashboard
from strongroom.openbanking.errors import OPENBANKING_JOSE_ERRORS
from strongroom.openbanking.payments import wiring as ob_payments
from strongroom.openbanking.resources import wiring as ob_resources
from strongroom.openbanking.resources.model import request_mac_key
from strongroom.openbanking.tpp import api as openbanking_clients_api
from strongroom.openbanking.tpp.errors import TPP_ERRORS
from strongroom.openbanking.tpp.service import TppService
from strongroom.risk import api as risk_api
from strongroom.risk import registry_api as risk_models_api
from strongroom.risk import store as risk_store
from strongroom.risk.errors import RISK_ERRORS, RISK_GATE_ERRORS
from strongroom.risk.featurestore import FeatureStore
from strongroom.risk.gate import GATE_NAME as RISK_GATE_NAME
from strongroom.risk.gate import FailPolicy, RiskGate
from strongroom.risk.model import FeatureSource, Policy
from strongroom.risk.payments import Hasher
from strongroom.risk.registry import (
    REGISTRY_ERRORS,
    RISK_MODEL_EVENT_TYPES,
    ActiveModels,
    RiskModelRegistry,
    artefact_describe,
    drift_factory,
)
from strongroom.risk.service import RISK_EVENT_TYPES, RiskService
from strongroom.risk.sink import RiskSink
from strongroom.security.answers import SealedAnswers
from strongroom.security.auth import api as auth_api
from strongroom.security.auth import page as signin_page
from strongroom.security.auth import users_api
from strongroom.security.auth.errors import AUTH_ERRORS
from strongroom.security.auth.factors import Factors
from strongroom.security.auth.model import SESSION_COOKIE, AuthConfig
from strongroom.security.auth.passwords import PasswordPolicy, Passwords
from strongroom.security.auth.service import UserService, stepped_up_recently
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import SECURITY_ERRORS
from strongroom.security.keyops import KeyService
from strongroom.security.keys import KeysUnavailable, open_keys
from strongroom.security.kms import KeyManager
from strongroom.security.sealing import SealedSecrets
from strongroom.security.stepup_gate import STEP_UP_GATE_ERRORS, StepUpGate
from strongroom.security.vault import api as vault_api
from strongroom.security.vault.committer import GroupCommit
from strongroom.security.vault.errors import VAULT_ERRORS
from strongroom.security.vault.service import CARD_EVENT_TYPES, VaultService, VaultWrite
from strongroom.settings import InvalidSettings, Settings, load_settings
from strongroom.tenancy import api as tenancy_api
from strongroom.tenancy.errors import TENANCY_ERRORS
from strongroom.tenancy.middleware import Authenticate, Idempotency, RateLimit
from strongroom.tenancy.model import Scope
from strongroom.tenancy.ratelimit import Buckets, open_storage
from strongroom.tenancy.service import IDEMPOTENCY_FINGERPRINT, TenancyService

log = logging.getLogger("strongroom.runtime")

# The event types of the domains other than the ledger (whose own the events domain knows).
EVENT_TYPES: tuple[EventType, ...] = (
    *CUSTOMER_EVENT_TYPES,
    *CASE_EVENT_TYPES,
    *(EventType(name, about) for name, about in CARD_EVENT_TYPES),
    *RISK_MODEL_EVENT_TYPES,
    *RISK_EVENT_TYPES,
    *compliance.COMPLIANCE_EVENT_TYPES,
    *SANCTIONS_EVENT_TYPES,
    *KYC_EVENT_TYPES,
    *ob_resources.OB_CONSENT_EVENT_TYPES,
    *ob_payments.OB_PAYMENT_EVENT_TYPES,
)


def build_ledger(
    engine: Engine,
    settings: Settings,
    *,
    on_batch: BatchObserver | None = None,
    gates: Sequence[Gate] | None = None,
    kms: KeyManager | None = None,
) -> tuple[LedgerService, AuditLog]:
    """The ledger with its pipeline as `serve` runs it: no gate installed yet (the domains
    that decide on transfers, risk and screening, install theirs here), the outbox and the
    audit log as sinks. The audit log's signing keys are sealed under `kms` (opened from the
    settings when not given: open_keys, which never makes keys over existing data)."""
    ledger: LedgerService | None = None
    given = kms

    def tenant_of(ledger_ids: Sequence[str], *, uow: UnitOfWork | None = None) -> dict[str, str]:
        assert ledger is not None
        return ledger.ledger_tenants(ledger_ids, uow=uow)

    key = settings.audit_signing_key
    audit = AuditLog(
        engine,
        origin=settings.audit_origin,
        tenant_of=tenant_of,
        signer_key=key.get_secret_value() if key is not None else None,
        secrets=_LazySealer(lambda: _sealer(engine, settings, given, audit)),
    )
    # The pipeline's sinks in their declared order: the outbox, the feature counters (risk
    # events and decisions, when risk scoring is on), the case queue (a case for each transfer
    # a gate held for review; its leaves and events), then the audit log last (it locks the
    # tenant's log row until the commit).
    cases = CaseSink(tenant_of, audit=audit, events=EventService(engine, event_types=EVENT_TYPES))
    sinks: list[Sink] = [Outbox()]
    if settings.risk:
        sinks.append(RiskSink(risk_hasher(settings, engine, given)))
    sinks.append(cases)
    # Every payment created pending has its payer and payee subjects kept, so that its post is
    # screened again against them (compliance/sanctions/sink.py), whether or not screening is
    # on now: a deployment that turns it on later screens the posts of older ones too.
    sinks.append(PaymentSubjectsSink(tenant_of))
    aml = install_aml(settings.aml, engine, sinks)  # AML monitoring (docs/aml.md), when on
    # An open banking payment consumes its consent in its posting transaction (its leaf and
    # event with it): a consent pays once, whatever raced (openbanking/payments/sink.py).
    sinks.append(ob_payments.PaymentSink(audit=audit, events=cases.events))
    if settings.audit:
        sinks.append(audit)
    ledger = LedgerService(
        engine,
        on_batch=on_batch,
        sinks=sinks,
        recorder=audit if settings.audit else None,
        gates=installed_gates(settings, engine=engine, kms=given) if gates is None else gates,
        # An account may name its owner: a customer of the ledger's tenant.
        customers=existing_customers,
        # KYC tier caps, checked inside the posting transaction (STRONGROOM_KYC_LIMITS).
        limits=kyc_limits(settings.kyc_limits, load_tiers(settings.kyc_tiers)),
        # A confirmed sanctions match's accounts stay frozen: none opened, none unfrozen.
        owners=refuse_confirmed,
    )
    audit.ledger = ledger
    if aml is not None:
        aml(ledger, CaseService(engine, ledger, audit=audit, events=cases.events))
    return ledger, audit


def _sealer(
    engine: Engine, settings: Settings, kms: KeyManager | None, audit: AuditLog
) -> SealedSecrets:
    """The sealer of the audit log's signing keys: over `kms`, or the configured key manager.
    Opened here it is opened inside the signing transaction, so a keyring made now (a CLI
    command that signs, on a deployment that never ran `serve`) gets no keys.created leaf:
    writing one would wait on that transaction's own write lock."""
    del audit
    if kms is None:
        kms, _ = open_keys(settings, engine)
    return SealedSecrets(Envelope(kms))


class _LazySealer:
    """Opens the key manager on first use: the CLI's ledger and verify commands never sign,
    so they never need the keys (nor print the development-keys warning)."""

    def __init__(self, make: Callable[[], SealedSecrets]) -> None:
        self._make = make
        self._sealer: SealedSecrets | None = None

    def _get(self) -> SealedSecrets:
        if self._sealer is None:
            self._sealer = self._make()
        return self._sealer

    def seal(
        self, uow: UnitOfWork, tenant_id: str, owner_id: str, kind: SubjectKind, clear: str
    ) -> str:
        return self._get().seal(uow, tenant_id, owner_id, kind, clear)

    def open(self, uow: UnitOfWork, tenant_id: str, owner_id: str, stored: str) -> str:
        return self._get().open(uow, tenant_id, owner_id, stored)

    def forget(self, uow: UnitOfWork, tenant_id: str, owner_id: str) -> None:
        self._get().forget(uow, tenant_id, owner_id)


def make_policy(
    settings: Settings,
    engine: Engine,
    *,
    on_psi: Callable[[str, str, float], object] | None = None,
) -> Callable[[str], Policy]:
    """Each tenant's risk policy (risk/policies.py): the rules of STRONGROOM_RISK_RULES, the
    tenant's live and shadow models from the model registry (a promotion is seen within a
    second), or the artefacts of STRONGROOM_RISK_MODEL and _SHADOW_MODEL for a tenant with none
    registered; the live model's drift monitor (STRONGROOM_RISK_DRIFT_PSI) feeds `on_psi`. A
    rules file or a model that reads a feature the engine does not compute is refused here, at
    start, with a one-line error."""
    from strongroom.risk.features import ALL_FEATURES
    from strongroom.risk.policies import TenantPolicies, load_model, starter_rules
    from strongroom.risk.rules import RuleSet, RuleSetError

    try:
        rules = RuleSet.load(Path(settings.risk_rules)) if settings.risk_rules else starter_rules()
        live = load_model(settings.risk_model, ALL_FEATURES)
        shadow = load_model(settings.risk_shadow_model, ALL_FEATURES)
        policies = TenantPolicies(rules, ALL_FEATURES, live=live, shadow=shadow)
    except RuleSetError as exc:
        raise InvalidSettings(f"STRONGROOM_RISK_RULES: {exc.detail}") from None
    except StrongroomError as exc:
        raise InvalidSettings(f"STRONGROOM_RISK_MODEL: {exc.detail}") from None
    events = EventService(engine, event_types=EVENT_TYPES)
    registry = RiskModelRegistry(engine, artefact_describe, events=events)
    policies.active = ActiveModels(
        registry,
        policies.load,
        drift=drift_factory(
            engine,
            events,
            threshold=settings.risk_drift_psi,
            min_rows=settings.risk_drift_min_rows,
            on_psi=on_psi,
        ),
        background=True,  # a promoted model loads beside the payments, never in their path
    )
    return policies


def check_risk(settings: Settings, engine: Engine) -> None:
    """What `serve --risk` checks before it starts: the risk extra is installed, and the rules
    file and models load and read only features the engine computes (InvalidSettings, one
    line, otherwise)."""
    try:
        make_policy(settings, engine)
        make_feature_source(settings)
    except ModuleNotFoundError as exc:
        raise InvalidSettings(
            f"STRONGROOM_RISK is on, but the risk extra is not installed ({exc.name} is "
            "missing): pip install 'strongroom[risk]' (`make run` installs it)"
        ) from None


def make_feature_source(settings: Settings) -> Callable[[], FeatureSource]:
    """A new tenant's feature source: the feature engine (risk/features.py)."""
    del settings
    from strongroom.risk.features import FeatureEngine

    return FeatureEngine


RISK_HASHES_KEPT_MAX: Final = 65_536  # (tenant, purpose, value) -> keyed hash, kept once made


def risk_hasher(settings: Settings, engine: Engine, kms: KeyManager | None) -> Hasher:
    """The keyed hash of payees, devices and IPs (Envelope.blind_index: per tenant and
    purpose), over `kms` or the configured key manager, opened at first use."""
    opened: list[Envelope] = []
    # A payee, device or IP seen again (most are) is not hashed again: a key's MAC never
    # changes. Bounded: emptied when full, as the ledger's caches of payers are.
    known: dict[tuple[str, str, bytes], bytes] = {}

    def hasher(tenant_id: str, purpose: str, value: bytes) -> bytes:
        key = (tenant_id, purpose, value)
        found = known.get(key)
        if found is not None:
            return found
        if not opened:
            opened.append(Envelope(kms if kms is not None else open_keys(settings, engine)[0]))
        found = opened[0].blind_index(tenant_id, purpose, value)
        if len(known) >= RISK_HASHES_KEPT_MAX:
            known.clear()
        known[key] = found
        return found

    return hasher


def installed_gates(
    settings: Settings,
    *,
    engine: Engine | None = None,
    kms: KeyManager | None = None,
    on_unscored: Callable[[str, int], None] | None = None,
    on_psi: Callable[[str, str, float], object] | None = None,
    on_unscreened: Callable[[str, int], None] | None = None,
) -> list[Gate]:
    """The gates every door of the ledger passes (`serve`, the worker, the CLI), in the order
    they run: with a database, the open banking consent gate and the review hold (a transfer
    held for review posts only by its case); the transfer step-up gate when
    STRONGROOM_STEP_UP_TRANSFER_AMOUNT is set, the
    risk gate when STRONGROOM_RISK is on (off, neither is installed and neither costs
    anything), and the sanctions payee gate when STRONGROOM_SCREENING is on.
    `on_unscored(outcome, count)`: told of payments the risk gate could not score (a metric);
    `on_psi(tenant, feature, psi)`: the live models' drift (a metric); `on_unscreened(outcome,
    count)`: payments the payee gate could not screen (a metric)."""
    gates: list[Gate] = []
    if engine is not None:
        # A payment under an open banking consent is the one it authorised (asked about
        # batches with payments only: a bulk batch pays nothing for it).
        gates.append(ob_payments.ConsentGate(engine))
        # A transfer held for review posts only by its case's approval, whether or not the
        # gates that hold transfers are on now (a case opened before still holds).
        gates.append(ReviewHoldGate(engine))
    threshold = settings.step_up_transfer_amount
    if threshold is not None:
        assert engine is not None, "the step-up gate reads sessions and API keys"
        window_s = settings.step_up_window_s
        keys = TenancyService(engine)
        gates.append(
            StepUpGate(
                threshold,
                lambda user_id: stepped_up_recently(engine, user_id, window_s),
                keys.transfer_ceiling,
            )
        )
    if settings.risk:
        assert engine is not None, "the risk gate reads the accounts and the risk events"
        service = RiskService(engine)
        policy = make_policy(settings, engine, on_psi=on_psi)
        gates.append(
            RiskGate(
                policy,
                FeatureStore(engine, make_feature_source(settings)),
                service.payment_accounts,
                risk_hasher(settings, engine, kms),
                fail=FailPolicy(settings.risk_fail),
                budget_ms=settings.risk_budget_ms,
                record_blocked=service.record_blocked,
                on_unscored=on_unscored,
                # A review's or block's tree SHAP explanation is computed when it is read (its
                # answer, its case, its decision), by the model that decided.
                explain=getattr(policy, "explain", None),
            )
        )
    if settings.screening:
        assert engine is not None, "the payee gate reads the accounts and the screenings"
        gates.append(
            sanctions_gate(
                settings,
                engine,
                on_unscreened=on_unscreened,
                open_cases_in=cases_store.open_cases_of_transfers,
            )
        )
    return gates


def case_labels(settings: Settings, *, engine: Engine | None = None) -> LabelRecorder | None:
    """Where a decided case's label goes for the next training run, besides the case row
    itself (its `label` column): the payment's risk event (risk/store.py), in the decision's
    transaction, so the feature store's payee risk and `strongroom risk train` see it. A case
    whose transfer is no payment (another gate's review) has no risk event: nothing to label."""
    del settings, engine

    def record(uow: UnitOfWork, tenant_id: str, transfer_id: str, fraud: bool) -> None:
        risk_store.label(uow, tenant_id, transfer_id, fraud, clock.now_us())

    return record


# Every code a gate or a limit that `serve` may install answers (the open banking consent
# gate's aside: /v1's payments name no consent), whichever this process installs: the API
# document lists them on the routes that run the transfer pipeline, so that it is the same
# whatever the settings (docs/openapi.json is that document).
PIPELINE_ERRORS: Final = (
    *STEP_UP_GATE_ERRORS,
    *REVIEW_HOLD_ERRORS,
    *RISK_GATE_ERRORS,
    *SANCTIONS_GATE_ERRORS,
    *KYC_LIMIT_ERRORS,
)


def error_catalogue(gates: Sequence[Gate] = ()) -> ErrorCatalogue:
    """Every code a client can see: each domain's declaration, and the codes the installed
    gates block with."""
    return ErrorCatalogue(
        CORE_ERRORS,
        DB_ERRORS,
        HTTP_ERRORS,
        LEDGER_ERRORS,
        EVENTS_ERRORS,
        TENANCY_ERRORS,
        AUDIT_ERRORS,
        SECURITY_ERRORS,
        CUSTOMERS_ERRORS,
        CASES_ERRORS,
        VAULT_ERRORS,
        AUTH_ERRORS,
        REGISTRY_ERRORS,
        RISK_ERRORS,
        REVIEW_HOLD_ERRORS,
        SANCTIONS_ERRORS,
        SANCTIONS_GATE_ERRORS,
        KYC_ERRORS,
        PIPELINE_ERRORS,
        TPP_ERRORS,
        ob_resources.ERRORS,
        ob_payments.ERRORS,
        OPENBANKING_JOSE_ERRORS,
        AUTHZ_ERRORS,
        ob_consent_page.ERRORS,
        *(gate.errors for gate in gates),
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The HTTP API as `strongroom serve` runs it."""
    settings = settings or load_settings()
    # On SQLite as many pooled connections as the threadpool has threads (40), so that busy
    # requests do not open and close connections; PostgreSQL's are a server resource.
    sqlite = settings.database_url.startswith("sqlite")
    engine = create_engine(
        settings.database_url,
        sqlite_cache_mib=settings.sqlite_cache_mib,
        pool_size=40 if sqlite else 16,
        sqlite_writer_lock_timeout_ms=settings.sqlite_writer_lock_timeout_ms,
    )
    # Refuse to start on an out-of-date schema, naming the command that fixes it.
    migrate.require_current(engine)
    metrics = Metrics()
    # Data keys of customers, counterparties and cards, and the server's own secrets (audit
    # signing keys, webhook secrets), wrapped by the key manager's KEKs. Keys are made on a
    # fresh deployment only: never over a database that holds wrapped keys (security/keys.py).
    try:
        kms, created = open_keys(settings, engine)
    except KeysUnavailable:
        engine.dispose()
        raise
    envelope = Envelope(kms)
    sealer = SealedSecrets(envelope)
    gates = installed_gates(
        settings,
        engine=engine,
        kms=kms,
        on_unscored=metrics.observe_risk_unscored,
        on_psi=metrics.observe_psi,
        on_unscreened=metrics.observe_screening_unscreened,
    )
    ledger, audit = build_ledger(
        engine, settings, on_batch=metrics.observe_batch, gates=gates, kms=kms
    )
    keys = KeyService(engine, kms, audit if settings.audit else None)
    if created:
        keys.created(KEYS_ACTOR)
    events = EventService(
        engine,
        allow_private_targets=settings.webhook_allow_private_targets,
        audit=audit,
        event_types=EVENT_TYPES,
        secrets=sealer,
    )
    # Secrets written in clear before they were sealed are sealed now, before any request.
    resealed = events.seal_clear_secrets() + audit.seal_clear_keys()
    if resealed:
        log.info("keys: sealed %d secrets that were stored in clear", resealed)
    # The card vault: each card a subject of the envelope; tokenizations and reveals audited.
    vault = VaultService(engine, envelope, audit if settings.audit else None, events)

    # Every change and every reveal of personal data is a leaf, whatever STRONGROOM_AUDIT says
    # of the ledger's transfers (as the API keys' and webhook endpoints' changes are).
    # An erasure replaces the stored Idempotency-Key answers that hold the subject's masked
    # data (by a 410 data_erased), in its transaction. `tenancy` is made below.
    def forget(uow: UnitOfWork, tenant_id: str, subject_id: str) -> int:
        return tenancy.erase_subject_answers(uow, tenant_id, subject_id)

    customers = CustomerService(
        engine, envelope, audit=audit, events=events, ledger=ledger, forget_answers=forget
    )
    counterparties = CounterpartyService(engine, envelope, audit=audit, forget_answers=forget)
    # Fraud models (risk/registry.py): every change an audit leaf and an event.
    risk_models = RiskModelRegistry(engine, artefact_describe, audit=audit, events=events)
    # The review queue: deciding a case posts or voids its held transfer through the ledger;
    # every decision is a leaf, an event and a label (case_labels: the risk domain's, later).
    labels = case_labels(settings, engine=engine)
    cases = CaseService(engine, ledger, audit=audit, events=events, labels=labels)
    # Sanctions screening: customers and counterparties screened in the transaction that
    # creates or renames them, hits opening alerts in the case queue; a confirmed match
    # freezes the customer's accounts (KYC's freezing, through the ledger).
    kyc = KycService(
        engine,
        ledger,
        customers=existing_customers,
        tiers=load_tiers(settings.kyc_tiers),
        audit=audit,
        events=events,
    )
    sanctions = build_sanctions(
        settings, engine, risk_hasher(settings, engine, kms), customers=customers,
        counterparties=counterparties, cases=cases, audit=audit, events=events,
        freeze_customer=kyc.freeze_customer_accounts_in, screeners=gate_screeners(gates),
    )  # fmt: skip
    # An officer's decision on a sanctions alert confirms (decline) or dismisses (approve) it.
    cases.on_decided(ALERT_KIND, sanctions.decided)
    # Sanctions and AML alerts are compliance's to decide: cases:write and compliance:write.
    for prefix in ("sanctions_", "aml_"):
        cases.restrict(prefix, Scope.COMPLIANCE_WRITE.value)
    # A decision read explains an allow with the model that made it, while it is loaded.
    policies = next((g.policy_for for g in gates if isinstance(g, RiskGate)), None)
    explain = getattr(policies, "explain", None)  # risk.policies.TenantPolicies (risk on)
    risk = RiskService(engine, audit=audit, events=events, explain=explain)
    # The gate holds a payment without explaining it: its case explains it when read.
    cases.on_view(kind_for_gate(RISK_GATE_NAME), risk.explain_case)
    metrics.watch_backlog(events)
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    tenancy = TenancyService(
        engine,
        pepper=pepper,
        audit=audit,
        idempotency_lease_s=settings.idempotency_lease_s,
        answers=SealedAnswers(kms),
        # Idempotent requests' fingerprints are keyed by the key manager, not by anything in
        # the database: a request body may carry a card number or personal data.
        fingerprint_key=kms.mac(IDEMPOTENCY_FINGERPRINT, b"strongroom idempotency v1"),
    )
    # Rate limits shared by every worker process (tenancy/ratelimit.py).
    limits = open_storage(
        settings.rate_limit_storage,
        settings.database_url,
        engine.url.database if sqlite else None,
    )
    per_key = Buckets(limits, "key", settings.rate_limit_per_s, settings.rate_limit_burst)
    failures = Buckets(
        limits, "auth", settings.auth_failure_limit_per_s, settings.auth_failure_limit_burst
    )
    oauth_limits = Buckets(
        limits, "oauth", settings.oauth_rate_limit_per_s, settings.oauth_rate_limit_burst
    )
    users = UserService(
        engine,
        Passwords(
            PasswordPolicy(
                settings.password_memory_kib,
                settings.password_time_cost,
                settings.password_parallelism,
            )
        ),
        auth_config(settings),
        kms=envelope.kms,
        audit=audit,
    )
    factors = Factors(users)
    work = case_work(cases, users, customers, counterparties)
    # GDPR export, the AML retention hold and job, and the compliance controls (and their job).
    regulated = compliance.build(
        settings, engine, kms=kms, audit=audit, events=events, customers=customers,
        counterparties=counterparties, ledger=ledger, cards=compliance.card_view(vault),
        on_erased=lambda n: metrics.observe_deleted("customers", n),
    )  # fmt: skip

    # Open banking's consents and account information (docs/openbanking.md).
    openbanking = ob_resources.build(
        engine, ledger, tenancy, audit=audit, events=events, interval_s=settings.expiry_interval_s,
        request_mac_key=request_mac_key(kms.mac),
    )  # fmt: skip
    # TPPs are the deployment's: their changes are leaves of the system tenant's log.
    tpps = TppService(engine, audit=audit, log_id=lambda: tenancy.system_tenant().id)
    # Open banking's authorization server, deployment-wide (docs/openbanking.md): its clients
    # are the registry's, its consents the resources', whose tokens it checks, and revokes in
    # the transaction that ends a consent.
    # Resource requests' DPoP proofs: on SQLite in a file every worker maps (one host).
    replay = ob_authz.replay_store(engine.url.database) if sqlite else None
    authz = AuthorizationServer(
        engine,
        ob_authz.config(settings),
        clients=tpps.lookup,
        consents=openbanking.consents.lookup,
        replay=replay,
    )
    openbanking.resources.token_check = authz.check
    # A DPoP proof's htu names the public URL, whatever a proxy or a Host header says.
    openbanking.resources.base_url = settings.public_base_url
    openbanking.consents.revoke_tokens = lambda uow, consent: authz.revoke_for_consent(
        consent, uow=uow
    )
    # The consent page (GET /oauth2/authorize): the customer decides on the server's requests.
    consent_page = ob_consent_page.build(authz, openbanking.consents, ledger, users, tenancy, kms)
    # The customer's consent dashboard (docs/openbanking.md): their consents, revoked in a click.
    dashboard = ob_dashboard.build(engine, openbanking.consents, tpps, users)
    # Domestic payments (docs/openbanking.md, "Payments"): their answers signed by the
    # deployment's key (sealed like the audit log's), published at the issuer's jwks_uri.
    payments = ob_payments.build(
        engine, ledger, openbanking.consents, audit=audit, events=events, sealer=sealer,
        issuer=authz.issuer,
    )  # fmt: skip
    jobs = JobRunner(
        engine,
        [
            JobSpec(EXPIRY_JOB, settings.expiry_interval_s, expiry_job(ledger)),
            JobSpec(
                CHECKPOINTS_JOB,
                settings.audit_checkpoint_interval_s,
                checkpoints_job(audit),
                first_run_delayed=True,
            ),
            JobSpec(
                RETENTION_JOB,
                settings.retention_interval_s,
                retention_job(events, tenancy, settings.event_retention_days, metrics, users.purge),
            ),
            JobSpec(REWRAP_JOB, settings.rewrap_interval_s, rewrap_job(keys)),
            *regulated.jobs,
            *openbanking.jobs,
            JobSpec(ob_authz.PURGE_JOB, settings.ob_purge_interval_s, ob_authz.purge_job(authz)),
            sanctions_wiring.rescreen_spec(sanctions),  # what a crashed load left owed
        ],
        lease_s=settings.job_lease_s,
        observe=metrics.observe_job,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if replay is not None:  # a replay file that cannot be used stops the start, clearly
            replay.open()
        committer = GroupCommitter(
            ledger,
            wait_us=settings.group_commit_wait_us,
            queue_max=settings.group_commit_queue_max,
        )
        app.state.committer = committer
        vault_committer: GroupCommit[VaultWrite] = GroupCommit(
            vault.commit, wait_us=settings.group_commit_wait_us
        )
        app.state.vault_committer = vault_committer
        # The sanctions screener, built before the first request (the payee gate never waits).
        await run_in_threadpool(sanctions.warm)
        jobs.start()
        dispatcher = None
        reporter = None
        if settings.dispatcher:
            reporter = jobs.track(DISPATCHER_JOB)
            dispatcher = Dispatcher(
                engine,
                DispatcherConfig(allow_private_targets=settings.webhook_allow_private_targets),
                on_attempts=metrics.observe_attempts,
                on_round=reporter,
                sealer=sealer,
            )
            dispatcher.start()
        app.state.dispatcher = dispatcher
        try:
            yield
        finally:
            if dispatcher is not None:
                dispatcher.stop()
                dispatcher.close()
            if reporter is not None:
                reporter.stopped()
            await jobs.stop()
            committer.close()
            vault_committer.close()
            await limits.close()
            if replay is not None:
                replay.close()
            engine.dispose()

    async def readiness(request: Request) -> dict[str, str]:
        checks: dict[str, str] = {}
        try:
            current = await run_in_threadpool(migrate.current_revision, engine)
            checks["database"] = "ok"
            checks["migrations"] = "ok" if current == migrate.head_revision() else "out of date"
        except Exception as exc:  # the database is unreachable: say so, do not raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        state = request.app.state
        committer = getattr(state, "committer", None)
        checks["committer"] = "ok" if committer is not None else "not running"
        # A job's loop is alive in this process (whether it holds the lease or stands by).
        for name in (EXPIRY_JOB, CHECKPOINTS_JOB, RETENTION_JOB, REWRAP_JOB):
            checks[name] = "ok" if jobs.alive(name) else "not running"
        if settings.dispatcher:
            dispatcher = getattr(state, "dispatcher", None)
            running = dispatcher is not None and dispatcher.running
            checks[DISPATCHER_JOB] = "ok" if running else "not running"
        return checks

    async def readiness_details(request: Request) -> dict[str, Any]:
        del request
        return {"jobs": await run_in_threadpool(jobs.report)}

    app = build_api(
        gate_codes=[
            # /v1's payments name no consent: the consent gate's codes are not its answers.
            *(e.code for e in PIPELINE_ERRORS),
            *(e.code for g in gates if g.name != ob_payments.CONSENT_GATE_NAME for e in g.errors),
            *(e.code for limit in ledger.limits for e in limit.errors),
        ],
        title="Strongroom",
        version=__version__,
        summary="A self-hostable fintech core: double-entry ledger API.",
        catalogue=error_catalogue(gates),
        routers=[
            ledger_api.router,
            events_api.router,
            audit_api.router,
            customers_api.router,
            cases_api.router,
            kyc_api.router,
            risk_api.router,
            vault_api.router,
            auth_api.router,
            users_api.router,
            risk_models_api.router,
            sanctions_api.router,
            tenancy_api.router,
            openbanking_clients_api.router,
            signin_page.router,
            ob_authz_api.router,
            ob_consent_page.router,
            *regulated.routers,
            *ob_dashboard.ROUTERS,
            *openbanking.routers,  # a separate API: outside /v1, DPoP-bound tokens
            *payments.routers,  # beside it: the payment initiation API, and its signing keys
        ],
        form_paths=(*ob_authz_api.FORM_PATHS, *ob_consent_page.FORM_PATHS),
        webhooks=[events_api.webhooks_router(EVENT_TYPES)],
        # Their own error format (the payments' renderer signs those on its paths).
        separate_apis={**openbanking.separate_apis, **payments.separate_apis},
        # Innermost first: the client's address (from a trusted proxy), authentication, then
        # the rate limit per key, then idempotency.
        middleware=[
            (Idempotency, {"tenancy": tenancy}),
            (RateLimit, {"buckets": per_key}),
            (
                Authenticate,
                {
                    "tenancy": tenancy,
                    "failures": failures,
                    "sessions": users,
                    "session_cookie": SESSION_COOKIE,
                    "public": auth_api.PUBLIC_PATHS,
                },
            ),
            *_proxy_headers(settings),
        ],
        lifespan=lifespan,
        readiness=readiness,
        readiness_details=readiness_details,
        metrics=metrics.exposition,
        observe_request=metrics.observe_request,
        metrics_token=(
            settings.metrics_token.get_secret_value() if settings.metrics_token else None
        ),
    )
    if settings.public_base_url is not None:
        _announce_server(app, settings.public_base_url)
    app.state.settings = settings
    app.state.engine = engine
    app.state.ledger = ledger
    app.state.audit = audit
    app.state.tenancy = tenancy
    app.state.openbanking_clients = tpps
    app.state.ob_authz = authz
    app.state.ob_consent_page = consent_page
    app.state.envelope = envelope
    app.state.keys = keys
    app.state.customers = customers
    app.state.counterparties = counterparties
    app.state.risk_models = risk_models
    app.state.cases = cases
    app.state.case_work = work
    app.state.kyc = kyc
    app.state.risk = risk
    app.state.sanctions = sanctions
    app.state.vault = vault
    app.state.users = users
    app.state.factors = factors
    app.state.auth_failures = failures
    app.state.events = events
    app.state.metrics = metrics
    app.state.jobs = jobs
    app.state.gdpr = regulated.gdpr
    app.state.ob_resources = openbanking.resources
    app.state.ob_dashboard = dashboard
    app.state.ob_payments = payments.resources
    app.state.ob_authz_limits = oauth_limits
    app.state.compliance_controls = regulated.controls
    app.state.aml_profiles = regulated.aml_profiles
    app.state.ledger_tenants = {}
    return app


def _proxy_headers(settings: Settings) -> list[Middleware]:
    """uvicorn's proxy-headers middleware for the trusted proxies only: X-Forwarded-For and
    X-Forwarded-Proto from any other peer are ignored (serve turns uvicorn's own off)."""
    if not settings.trusted_proxy_list:
        return []
    # uvicorn's middleware is typed with its own ASGI types, which are Starlette's in shape.
    middleware: Any = ProxyHeadersMiddleware
    return [(middleware, {"trusted_hosts": settings.trusted_proxy_list})]


def _announce_server(app: FastAPI, url: str) -> None:
    """The OpenAPI document names the public base URL as its server."""
    document = app.openapi

    def with_server() -> dict[str, Any]:
        found = document()
        found["servers"] = [{"url": url}]
        return found

    app.openapi = with_server  # type: ignore[method-assign]


# The background loops' names, in /readyz (checks and jobs) and /metrics (label `job`).
EXPIRY_JOB = "expiry"
CHECKPOINTS_JOB = "audit_checkpoints"
RETENTION_JOB = "retention"
DISPATCHER_JOB = "dispatcher"  # runs in every process, under per-delivery leases
REWRAP_JOB = "rewrap"
KEYS_ACTOR = "system"  # the actor of key operations the server does by itself
_DAY_US = 24 * 3600 * 1_000_000


def expiry_job(ledger: LedgerService) -> Callable[[Keep], None]:
    """Pending transfers past their timeout are expired, a batch per transaction until none
    is due."""

    def run(keep: Keep) -> None:
        while keep() and ledger.expire_due():
            pass

    return run


def checkpoints_job(audit: AuditLog) -> Callable[[Keep], None]:
    """A signed checkpoint of every log that grew. Should two processes publish at once (a
    lease taken over from a stalled holder), a checkpoint of a size already published is the
    same tree and is kept once."""

    def run(keep: Keep) -> None:
        if keep():
            audit.publish()

    return run


def rewrap_job(keys: KeyService) -> Callable[[Keep], None]:
    """After `strongroom keys rotate`, data keys still wrapped by an older version are moved
    to the active one, a batch per transaction, while the server serves (both versions
    unwrap meanwhile); then the old version can be disabled. Nothing to do, nothing done."""

    def run(keep: Keep) -> None:
        if keep() and keys.pending_rewrap():
            moved = keys.rewrap(KEYS_ACTOR, keep=keep)
            log.info("rewrap: moved %d data keys to version %d", moved, keys.kms.active_version())

    return run


def case_work(
    cases: CaseService,
    users: UserService,
    customers: CustomerService,
    counterparties: CounterpartyService,
) -> CaseWork:
    """Working a case (assignment to a staff user, notes, the report draft), with the staff
    users and a case's subject (`customer:<id>`, `counterparty:<id>`) read through their
    services: masked, or revealed (an audit leaf of the customers domain) when asked."""

    def staff(tenant_id: str, user_id: str) -> bool:
        try:
            users.get_user(tenant_id, user_id)
        except NotFound:
            return False
        return True

    def subject(tenant_id: str, name: str, reveal: bool, actor: str) -> dict[str, Any] | None:
        kind, _, subject_id = name.partition(":")
        try:
            if kind == "customer":
                found = customers.get(tenant_id, subject_id).to_dict()
                if reveal and not found["erased"]:
                    found["personal_data"] = customers.reveal(tenant_id, subject_id, actor=actor)
                return found
            if kind == "counterparty":
                if reveal:
                    party = counterparties.reveal(tenant_id, subject_id, actor=actor)
                    return party.to_dict(reveal=True)
                return counterparties.get(tenant_id, subject_id).to_dict()
        except NotFound:
            return None
        return None

    return CaseWork(cases, users=staff, subjects=subject)


def auth_config(settings: Settings) -> AuthConfig:
    """Sign-in's settings, as the users' service takes them."""
    return AuthConfig(
        session_ttl_s=settings.session_ttl_s,
        session_idle_s=settings.session_idle_s,
        step_up_window_s=settings.step_up_window_s,
        login_failures_max=settings.login_failures_max,
        lockout_s=settings.lockout_s,
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        origins=settings.webauthn_origin_list,
    )


def retention_job(
    events: EventService,
    tenancy: TenancyService,
    retention_days: int,
    metrics: Metrics,
    purge_sessions: Callable[[], int] | None = None,
) -> Callable[[Keep], None]:
    """Events and webhook attempts older than `retention_days`, and idempotency records past
    their 24 hours, are deleted, a bounded batch per transaction; never the ledger or the audit
    log, never an event a delivery still needs (EventService.prune)."""

    def run(keep: Keep) -> None:
        now = clock.now_us()
        pruned = events.prune(before_us=now - retention_days * _DAY_US, keep=keep)
        purged = tenancy.purge_idempotency(now_us=now, keep=keep)
        if purge_sessions is not None and keep():
            purge_sessions()  # expired sessions and sign-in challenges
        for kind, count in (
            ("events", pruned.events),
            ("webhook_deliveries", pruned.deliveries),
            ("webhook_attempts", pruned.attempts),
            ("idempotency_records", purged),
        ):
            metrics.observe_deleted(kind, count)
        if pruned.events or pruned.attempts or purged:
            log.info(
                "retention: deleted %d events, %d webhook deliveries, %d webhook attempts, "
                "%d idempotency records",
                pruned.events,
                pruned.deliveries,
                pruned.attempts,
                purged,
            )

    return run


def create_app_from_env() -> FastAPI:
    """For `uvicorn --factory` (each worker process builds its own app). Logs are JSON lines
    (`configure_logging`), uvicorn's own included when it was given `logging_config()`,
    written together (logs.LineBatchingHandler)."""
    try:
        settings = load_settings()
    except InvalidSettings as exc:
        # uvicorn would print the traceback of a factory that raises: one line instead.
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, batched=True)
    try:
        app = create_app(settings)
    except StrongroomError as exc:  # an out-of-date schema, say
        print(f"error: {exc.code}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except sa_exc.OperationalError as exc:  # the database cannot be reached or opened
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        print(f"error: database_unavailable: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    settle_heap()
    return app


# The collector's thresholds of a server process (settle_heap).
SERVER_GC_THRESHOLDS: Final = (50_000, 20, 20)


def settle_heap() -> None:
    """What a server process does with its heap once started: a process keeps ~100k
    long-lived objects (modules, routes, caches); they are frozen out of the cyclic collector,
    and young objects are collected less often. Full collections otherwise paused a worker for
    60-80 ms about once a second under load (measured with py-spy). The benchmarks run their
    timed parts the same way (benchmarks.common.server_heap)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVER_GC_THRESHOLDS)
