"""KYC's error codes (see core.errors): the limit's refusals (ledger refusals, 422) and the
API's input codes. None carries personal data: a refusal names the window and the cap."""

from __future__ import annotations

from typing import Final

from strongroom.compliance.kyc.model import KYC_LIMIT_EXCEEDED, KYC_UNVERIFIED
from strongroom.core.errors import ErrorCode

KYC_LIMIT_ERRORS: Final = (
    ErrorCode(
        KYC_UNVERIFIED,
        422,
        "The paying customer is not verified (KYC): only a verified customer may send money",
    ),
    ErrorCode(
        KYC_LIMIT_EXCEEDED,
        422,
        "The payment would cross a cap of the paying customer's KYC tier (the detail names the "
        "window and the cap)",
    ),
)
KYC_ERRORS: Final = (
    *KYC_LIMIT_ERRORS,
    ErrorCode(
        "invalid_kyc_status",
        400,
        "A KYC status is unverified, pending, verified or rejected",
        ("status",),
    ),
    ErrorCode("invalid_kyc_tier", 400, "The KYC tier is not one of the tenant's tiers", ("tier",)),
)
