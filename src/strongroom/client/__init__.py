"""A typed Python client for Strongroom's HTTP API, on httpx: `Client`, and `AsyncClient`
with the same methods (awaited; `iter_*` are async iterators).

    with Client() as sr:  # STRONGROOM_API_KEY, STRONGROOM_BASE_URL (default 127.0.0.1:8000)
        ledger = sr.create_ledger("main")
        account = sr.create_account(ledger.id, "USD", "credit")
        for transfer in sr.iter_transfers(account_id=account.id):
            ...

    async with AsyncClient("http://127.0.0.1:8000", api_key="sk_...") as sr:
        async for event in sr.iter_events(type="transfer.created"):
            ...

Every operation of the API has a method (`resources`, `customers`, `cases`, `kyc`,
`compliance`, `risk_models`, `screenings` and `openbanking` list them). `list_*` answer one
page; `iter_*` walk every page as the server says to go on
(`next_cursor` through the short pages of listings that examine a bounded range per request).
Answers are the API's
pydantic models, fields the client does not know ignored.

Every POST carries an Idempotency-Key (yours, or a fresh one per call), the same on each of its
retries, so the server answers a retry with the first request's answer. A connection error, a
5xx or a key still in flight (409) is retried with backoff, 429 and 503 after their Retry-After
(up to `retry_after_max_s`), `max_retries` times at most. Errors are typed exceptions under
`ApiError`, with the problem's stable `code` (`errors` maps each code and status to its class).
"""

from __future__ import annotations

from strongroom.client import cases as k
from strongroom.client import compliance as g
from strongroom.client import customers as c
from strongroom.client import kyc as ky
from strongroom.client import openbanking as ob
from strongroom.client import resources as r
from strongroom.client import risk as rk
from strongroom.client import risk_models as rm
from strongroom.client import screenings as sc
from strongroom.client._spec import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, MissingApiKeyError
from strongroom.client._transport import (
    AsyncTransport,
    SyncTransport,
    async_call,
    async_iter,
    async_list,
    sync_call,
    sync_iter,
    sync_list,
)
from strongroom.client.errors import (
    ApiConnectionError,
    ApiError,
    AuthenticationError,
    CaseNotOpenError,
    CaseTransferRefusedError,
    ConflictError,
    DataErasedError,
    GateUnavailableError,
    IdempotencyError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    InvalidRequestError,
    LedgerRefusedError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
)

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "ApiConnectionError",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "CaseNotOpenError",
    "CaseTransferRefusedError",
    "Client",
    "ConflictError",
    "DataErasedError",
    "GateUnavailableError",
    "IdempotencyError",
    "IdempotencyKeyInUseError",
    "IdempotencyKeyReusedError",
    "InvalidIdempotencyKeyError",
    "InvalidRequestError",
    "LedgerRefusedError",
    "MissingApiKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "ServiceUnavailableError",
]


class Client(SyncTransport):
    """`Client(base_url=None, api_key=None, *, timeout_s=30, max_retries=3,
    retry_after_max_s=30, transport=None)`; unset, the base URL and key come from
    STRONGROOM_BASE_URL and STRONGROOM_API_KEY."""

    create_ledger = sync_call(r.create_ledger)
    list_ledgers = sync_call(r.list_ledgers)
    iter_ledgers = sync_iter(r.iter_ledgers)
    get_ledger = sync_call(r.get_ledger)
    create_asset = sync_call(r.create_asset)
    create_account = sync_call(r.create_account)
    list_accounts = sync_call(r.list_accounts)
    iter_accounts = sync_iter(r.iter_accounts)
    get_account = sync_call(r.get_account)
    get_balance = sync_call(r.get_balance)
    list_entries = sync_call(r.list_entries)
    iter_entries = sync_iter(r.iter_entries)
    statement = sync_call(r.statement)
    iter_statement_pages = sync_iter(r.iter_statement_pages)
    statement_pages = sync_list(r.statement_pages)
    create_transfer = sync_call(r.create_transfer)
    create_batch = sync_call(r.create_batch)
    post_transfer = sync_call(r.post_transfer)
    void_transfer = sync_call(r.void_transfer)
    reverse_transfer = sync_call(r.reverse_transfer)
    list_transfers = sync_call(r.list_transfers)
    iter_transfers = sync_iter(r.iter_transfers)
    get_transfer = sync_call(r.get_transfer)
    get_transfer_receipt = sync_call(r.get_transfer_receipt)
    list_events = sync_call(r.list_events)
    iter_events = sync_iter(r.iter_events)
    get_event = sync_call(r.get_event)
    create_card = sync_call(r.create_card)
    list_cards = sync_call(r.list_cards)
    iter_cards = sync_iter(r.iter_cards)
    get_card = sync_call(r.get_card)
    get_card_number = sync_call(r.get_card_number)
    delete_card = sync_call(r.delete_card)
    create_webhook_endpoint = sync_call(r.create_webhook_endpoint)
    list_webhook_endpoints = sync_call(r.list_webhook_endpoints)
    iter_webhook_endpoints = sync_iter(r.iter_webhook_endpoints)
    get_webhook_endpoint = sync_call(r.get_webhook_endpoint)
    update_webhook_endpoint = sync_call(r.update_webhook_endpoint)
    delete_webhook_endpoint = sync_call(r.delete_webhook_endpoint)
    list_webhook_attempts = sync_call(r.list_webhook_attempts)
    iter_webhook_attempts = sync_iter(r.iter_webhook_attempts)
    get_latest_checkpoint = sync_call(r.get_latest_checkpoint)
    publish_checkpoint = sync_call(r.publish_checkpoint)
    get_checkpoint = sync_call(r.get_checkpoint)
    list_audit_keys = sync_call(r.list_audit_keys)
    list_audit_leaves = sync_call(r.list_audit_leaves)
    iter_audit_leaves = sync_iter(r.iter_audit_leaves)
    get_inclusion_proof = sync_call(r.get_inclusion_proof)
    get_consistency_proof = sync_call(r.get_consistency_proof)
    create_tenant = sync_call(r.create_tenant)
    list_tenants = sync_call(r.list_tenants)
    iter_tenants = sync_iter(r.iter_tenants)
    get_tenant = sync_call(r.get_tenant)
    suspend_tenant = sync_call(r.suspend_tenant)
    resume_tenant = sync_call(r.resume_tenant)
    # risk (client/risk.py)
    get_transfer_risk = sync_call(rk.get_transfer_risk)
    create_risk_label = sync_call(rk.create_risk_label)
    # customers and counterparties (client/customers.py)
    create_customer = sync_call(c.create_customer)
    list_customers = sync_call(c.list_customers)
    iter_customers = sync_iter(c.iter_customers)
    search_customers = sync_call(c.search_customers)
    get_customer = sync_call(c.get_customer)
    update_customer = sync_call(c.update_customer)
    get_customer_personal_data = sync_call(c.get_customer_personal_data)
    delete_customer_personal_data = sync_call(c.delete_customer_personal_data)
    create_customer_legal_hold = sync_call(c.create_customer_legal_hold)
    delete_customer_legal_hold = sync_call(c.delete_customer_legal_hold)
    list_customer_accounts = sync_call(c.list_customer_accounts)
    iter_customer_accounts = sync_iter(c.iter_customer_accounts)
    create_counterparty = sync_call(c.create_counterparty)
    list_counterparties = sync_call(c.list_counterparties)
    iter_counterparties = sync_iter(c.iter_counterparties)
    get_counterparty = sync_call(c.get_counterparty)
    get_counterparty_personal_data = sync_call(c.get_counterparty_personal_data)
    delete_counterparty_personal_data = sync_call(c.delete_counterparty_personal_data)
    # GDPR and compliance (client/compliance.py)
    get_customer_export = sync_call(g.get_customer_export)
    get_compliance_report = sync_call(g.get_compliance_report)
    get_account_aml = sync_call(g.get_account_aml)
    update_account_aml = sync_call(g.update_account_aml)
    # the review queue (client/cases.py)
    list_cases = sync_call(k.list_cases)
    iter_cases = sync_iter(k.iter_cases)
    get_case = sync_call(k.get_case)
    approve_case = sync_call(k.approve_case)
    decline_case = sync_call(k.decline_case)
    assign_case = sync_call(k.assign_case)
    create_case_note = sync_call(k.create_case_note)
    list_case_notes = sync_call(k.list_case_notes)
    get_case_report = sync_call(k.get_case_report)
    # KYC and account freezing (client/kyc.py)
    get_customer_kyc = sync_call(ky.get_customer_kyc)
    update_customer_kyc = sync_call(ky.update_customer_kyc)
    freeze_account = sync_call(ky.freeze_account)
    unfreeze_account = sync_call(ky.unfreeze_account)
    create_session = sync_call(r.create_session)
    get_current_session = sync_call(r.get_current_session)
    delete_current_session = sync_call(r.delete_current_session)
    create_totp_enrolment = sync_call(r.create_totp_enrolment)
    confirm_totp = sync_call(r.confirm_totp)
    create_passkey_registration_options = sync_call(r.create_passkey_registration_options)
    create_passkey = sync_call(r.create_passkey)
    create_passkey_authentication_options = sync_call(r.create_passkey_authentication_options)
    create_passkey_session = sync_call(r.create_passkey_session)
    create_step_up_options = sync_call(r.create_step_up_options)
    step_up = sync_call(r.step_up)
    create_user = sync_call(r.create_user)
    accept_invitation = sync_call(r.accept_invitation)
    list_users = sync_call(r.list_users)
    iter_users = sync_iter(r.iter_users)
    get_user = sync_call(r.get_user)
    update_user = sync_call(r.update_user)
    create_api_key = sync_call(r.create_api_key)
    # fraud models (client/risk_models.py)
    list_risk_models = sync_call(rm.list_risk_models)
    iter_risk_models = sync_iter(rm.iter_risk_models)
    get_risk_model = sync_call(rm.get_risk_model)
    promote_risk_model = sync_call(rm.promote_risk_model)
    shadow_risk_model = sync_call(rm.shadow_risk_model)
    # sanctions screening (client/screenings.py)
    create_screening = sync_call(sc.create_screening)
    get_screening_subject = sync_call(sc.get_screening_subject)
    dismiss_screening_match = sync_call(sc.dismiss_screening_match)
    confirm_screening_match = sync_call(sc.confirm_screening_match)
    # the operator's open banking clients, the TPPs (client/openbanking.py)
    create_openbanking_client = sync_call(ob.create_openbanking_client)
    list_openbanking_clients = sync_call(ob.list_openbanking_clients)
    iter_openbanking_clients = sync_iter(ob.iter_openbanking_clients)
    get_openbanking_client = sync_call(ob.get_openbanking_client)
    update_openbanking_client_jwks = sync_call(ob.update_openbanking_client_jwks)
    disable_openbanking_client = sync_call(ob.disable_openbanking_client)
    enable_openbanking_client = sync_call(ob.enable_openbanking_client)
    # a customer's open banking consents: the dashboard (client/openbanking.py)
    list_openbanking_consents = sync_call(ob.list_openbanking_consents)
    iter_openbanking_consents = sync_iter(ob.iter_openbanking_consents)
    revoke_openbanking_consent = sync_call(ob.revoke_openbanking_consent)


class AsyncClient(AsyncTransport):
    """`Client`'s methods, awaited; `iter_*` are async iterators. Close it with `aclose()` or
    `async with`."""

    create_ledger = async_call(r.create_ledger)
    list_ledgers = async_call(r.list_ledgers)
    iter_ledgers = async_iter(r.iter_ledgers)
    get_ledger = async_call(r.get_ledger)
    create_asset = async_call(r.create_asset)
    create_account = async_call(r.create_account)
    list_accounts = async_call(r.list_accounts)
    iter_accounts = async_iter(r.iter_accounts)
    get_account = async_call(r.get_account)
    get_balance = async_call(r.get_balance)
    list_entries = async_call(r.list_entries)
    iter_entries = async_iter(r.iter_entries)
    statement = async_call(r.statement)
    iter_statement_pages = async_iter(r.iter_statement_pages)
    statement_pages = async_list(r.statement_pages)
    create_transfer = async_call(r.create_transfer)
    create_batch = async_call(r.create_batch)
    post_transfer = async_call(r.post_transfer)
    void_transfer = async_call(r.void_transfer)
    reverse_transfer = async_call(r.reverse_transfer)
    list_transfers = async_call(r.list_transfers)
    iter_transfers = async_iter(r.iter_transfers)
    get_transfer = async_call(r.get_transfer)
    get_transfer_receipt = async_call(r.get_transfer_receipt)
    list_events = async_call(r.list_events)
    iter_events = async_iter(r.iter_events)
    get_event = async_call(r.get_event)
    create_card = async_call(r.create_card)
    list_cards = async_call(r.list_cards)
    iter_cards = async_iter(r.iter_cards)
    get_card = async_call(r.get_card)
    get_card_number = async_call(r.get_card_number)
    delete_card = async_call(r.delete_card)
    create_webhook_endpoint = async_call(r.create_webhook_endpoint)
    list_webhook_endpoints = async_call(r.list_webhook_endpoints)
    iter_webhook_endpoints = async_iter(r.iter_webhook_endpoints)
    get_webhook_endpoint = async_call(r.get_webhook_endpoint)
    update_webhook_endpoint = async_call(r.update_webhook_endpoint)
    delete_webhook_endpoint = async_call(r.delete_webhook_endpoint)
    list_webhook_attempts = async_call(r.list_webhook_attempts)
    iter_webhook_attempts = async_iter(r.iter_webhook_attempts)
    get_latest_checkpoint = async_call(r.get_latest_checkpoint)
    publish_checkpoint = async_call(r.publish_checkpoint)
    get_checkpoint = async_call(r.get_checkpoint)
    list_audit_keys = async_call(r.list_audit_keys)
    list_audit_leaves = async_call(r.list_audit_leaves)
    iter_audit_leaves = async_iter(r.iter_audit_leaves)
    get_inclusion_proof = async_call(r.get_inclusion_proof)
    get_consistency_proof = async_call(r.get_consistency_proof)
    create_tenant = async_call(r.create_tenant)
    list_tenants = async_call(r.list_tenants)
    iter_tenants = async_iter(r.iter_tenants)
    get_tenant = async_call(r.get_tenant)
    suspend_tenant = async_call(r.suspend_tenant)
    resume_tenant = async_call(r.resume_tenant)
    # risk (client/risk.py)
    get_transfer_risk = async_call(rk.get_transfer_risk)
    create_risk_label = async_call(rk.create_risk_label)
    # customers and counterparties (client/customers.py)
    create_customer = async_call(c.create_customer)
    list_customers = async_call(c.list_customers)
    iter_customers = async_iter(c.iter_customers)
    search_customers = async_call(c.search_customers)
    get_customer = async_call(c.get_customer)
    update_customer = async_call(c.update_customer)
    get_customer_personal_data = async_call(c.get_customer_personal_data)
    delete_customer_personal_data = async_call(c.delete_customer_personal_data)
    create_customer_legal_hold = async_call(c.create_customer_legal_hold)
    delete_customer_legal_hold = async_call(c.delete_customer_legal_hold)
    list_customer_accounts = async_call(c.list_customer_accounts)
    iter_customer_accounts = async_iter(c.iter_customer_accounts)
    create_counterparty = async_call(c.create_counterparty)
    list_counterparties = async_call(c.list_counterparties)
    iter_counterparties = async_iter(c.iter_counterparties)
    get_counterparty = async_call(c.get_counterparty)
    get_counterparty_personal_data = async_call(c.get_counterparty_personal_data)
    delete_counterparty_personal_data = async_call(c.delete_counterparty_personal_data)
    # GDPR and compliance (client/compliance.py)
    get_customer_export = async_call(g.get_customer_export)
    get_compliance_report = async_call(g.get_compliance_report)
    get_account_aml = async_call(g.get_account_aml)
    update_account_aml = async_call(g.update_account_aml)
    # the review queue (client/cases.py)
    list_cases = async_call(k.list_cases)
    iter_cases = async_iter(k.iter_cases)
    get_case = async_call(k.get_case)
    approve_case = async_call(k.approve_case)
    decline_case = async_call(k.decline_case)
    assign_case = async_call(k.assign_case)
    create_case_note = async_call(k.create_case_note)
    list_case_notes = async_call(k.list_case_notes)
    get_case_report = async_call(k.get_case_report)
    # KYC and account freezing (client/kyc.py)
    get_customer_kyc = async_call(ky.get_customer_kyc)
    update_customer_kyc = async_call(ky.update_customer_kyc)
    freeze_account = async_call(ky.freeze_account)
    unfreeze_account = async_call(ky.unfreeze_account)
    create_session = async_call(r.create_session)
    get_current_session = async_call(r.get_current_session)
    delete_current_session = async_call(r.delete_current_session)
    create_totp_enrolment = async_call(r.create_totp_enrolment)
    confirm_totp = async_call(r.confirm_totp)
    create_passkey_registration_options = async_call(r.create_passkey_registration_options)
    create_passkey = async_call(r.create_passkey)
    create_passkey_authentication_options = async_call(r.create_passkey_authentication_options)
    create_passkey_session = async_call(r.create_passkey_session)
    create_step_up_options = async_call(r.create_step_up_options)
    step_up = async_call(r.step_up)
    create_user = async_call(r.create_user)
    accept_invitation = async_call(r.accept_invitation)
    list_users = async_call(r.list_users)
    iter_users = async_iter(r.iter_users)
    get_user = async_call(r.get_user)
    update_user = async_call(r.update_user)
    create_api_key = async_call(r.create_api_key)
    # fraud models (client/risk_models.py)
    list_risk_models = async_call(rm.list_risk_models)
    iter_risk_models = async_iter(rm.iter_risk_models)
    get_risk_model = async_call(rm.get_risk_model)
    promote_risk_model = async_call(rm.promote_risk_model)
    shadow_risk_model = async_call(rm.shadow_risk_model)
    # sanctions screening (client/screenings.py)
    create_screening = async_call(sc.create_screening)
    get_screening_subject = async_call(sc.get_screening_subject)
    dismiss_screening_match = async_call(sc.dismiss_screening_match)
    confirm_screening_match = async_call(sc.confirm_screening_match)
    # the operator's open banking clients, the TPPs (client/openbanking.py)
    create_openbanking_client = async_call(ob.create_openbanking_client)
    list_openbanking_clients = async_call(ob.list_openbanking_clients)
    iter_openbanking_clients = async_iter(ob.iter_openbanking_clients)
    get_openbanking_client = async_call(ob.get_openbanking_client)
    update_openbanking_client_jwks = async_call(ob.update_openbanking_client_jwks)
    disable_openbanking_client = async_call(ob.disable_openbanking_client)
    enable_openbanking_client = async_call(ob.enable_openbanking_client)
    # a customer's open banking consents: the dashboard (client/openbanking.py)
    list_openbanking_consents = async_call(ob.list_openbanking_consents)
    iter_openbanking_consents = async_iter(ob.iter_openbanking_consents)
    revoke_openbanking_consent = async_call(ob.revoke_openbanking_consent)
