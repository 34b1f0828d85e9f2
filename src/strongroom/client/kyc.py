"""KYC's and account freezing's operations as request values, for both clients (as
`resources`: each function becomes a method of `Client` and `AsyncClient`)."""

from __future__ import annotations

from strongroom.client._spec import Call, model, segment
from strongroom.compliance.kyc.schemas import KycOut
from strongroom.ledger.schemas import AccountOut


def get_customer_kyc(customer_id: str) -> Call[KycOut]:
    """The customer's KYC status and tier (`compliance:read`); never set: `unverified`."""
    return Call("GET", f"/v1/customers/{segment(customer_id)}/kyc", model(KycOut))


def update_customer_kyc(customer_id: str, status: str, *, tier: str | None = None) -> Call[KycOut]:
    """Set the status (unverified, pending, verified, rejected) and, given, the tier
    (`compliance:write`). Only a verified customer's payments post, within its tier's caps."""
    body = {"status": status, **({"tier": tier} if tier is not None else {})}
    return Call("PUT", f"/v1/customers/{segment(customer_id)}/kyc", model(KycOut), json=body)


def freeze_account(account_id: str, *, idempotency_key: str | None = None) -> Call[AccountOut]:
    """Freeze an account (`compliance:write`): it refuses debits and credits (account_frozen)."""
    return Call(
        "POST",
        f"/v1/accounts/{segment(account_id)}/freeze",
        model(AccountOut),
        idempotency_key=idempotency_key,
    )


def unfreeze_account(account_id: str, *, idempotency_key: str | None = None) -> Call[AccountOut]:
    """Lift an account's freeze (`compliance:write`)."""
    return Call(
        "POST",
        f"/v1/accounts/{segment(account_id)}/unfreeze",
        model(AccountOut),
        idempotency_key=idempotency_key,
    )
