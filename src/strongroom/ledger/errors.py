"""The ledger's error codes (see core.errors: the composition root collects every domain's)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError
from strongroom.ledger.model import AccountResult, TransferResult
from strongroom.ledger.pipeline import GATE_UNAVAILABLE, REVIEW_IN_CHAIN

REFUSED_TITLE: Final = "The ledger refused the transfer"
PAYMENT_CUSTOMER_MISMATCH: Final = "payment_customer_mismatch"
ACCOUNT_EXISTS_TITLE: Final = "The account exists with other fields"

LEDGER_ERRORS: Final = (
    ErrorCode("invalid_id", 400, "An id is malformed", ("id", "*_id")),
    ErrorCode("invalid_name", 400, "A name is malformed", ("name",)),
    ErrorCode("invalid_metadata", 400, "Metadata is malformed"),
    ErrorCode("metadata_too_large", 400, "Metadata is too large"),
    ErrorCode("invalid_metadata_filter", 400, "A metadata filter is malformed"),
    ErrorCode("invalid_legs", 400, "Transfer legs are malformed", ("entries",)),
    ErrorCode("unbalanced_legs", 400, "Debits and credits differ"),
    ErrorCode("duplicate_leg_account", 400, "An account appears in two legs"),
    ErrorCode("invalid_direction", 400, "A direction is 'debit' or 'credit'"),
    ErrorCode("invalid_flags", 400, "Account flags are malformed", ("flags",)),
    ErrorCode("flags_are_mutually_exclusive", 400, "Account flags contradict each other"),
    ErrorCode("invalid_timeout", 400, "timeout_s is out of range"),
    ErrorCode("invalid_payment", 400, "A transfer's payment fields are malformed"),
    ErrorCode(
        PAYMENT_CUSTOMER_MISMATCH,
        422,
        "A payment names a customer other than the owner of an account it debits",
    ),
    ErrorCode("unknown_asset", 400, "The asset does not exist"),
    ErrorCode("batch_too_large", 400, "Too many items in one request", ("transfers",)),
    ErrorCode("invalid_version", 400, "A version is out of range"),
    ErrorCode("invalid_cursor", 400, "A pagination cursor names nothing"),
    # A fail-closed gate of the transfer pipeline could not decide within its time budget.
    ErrorCode(GATE_UNAVAILABLE, 422, "A check the transfer must pass is unavailable; retry later"),
    ErrorCode(
        REVIEW_IN_CHAIN,
        422,
        "A transfer sent to review cannot be held inside a linked chain or an atomic batch",
    ),
    # Ledger refusals: result values of the engine, answered as 422 problems.
    *(ErrorCode(r.value, 422, REFUSED_TITLE) for r in TransferResult if not r.ok),
    # Account creation with a client-chosen id; the codes it shares with transfers
    # (..._ledger_id, ..._metadata) keep the transfers' title.
    *(
        ErrorCode(r.value, 422, ACCOUNT_EXISTS_TITLE)
        for r in AccountResult
        if not r.ok and r.value not in {t.value for t in TransferResult}
    ),
)

# The codes each kind of ledger request answers itself, besides those of the layers every request
# crosses (http.openapi): the OpenAPI document lists them per operation.
METADATA_ERRORS: Final = ("invalid_metadata", "metadata_too_large")
AMOUNT_ERRORS: Final = ("amount_not_integer", "amount_not_positive", "amount_too_large")
TRANSFER_INPUT_ERRORS: Final = (
    *AMOUNT_ERRORS,
    *METADATA_ERRORS,
    "not_found",
    "invalid_id",
    "invalid_legs",
    "unbalanced_legs",
    "duplicate_leg_account",
    "invalid_direction",
    "invalid_timeout",
    "invalid_timestamp",
    "invalid_payment",
    PAYMENT_CUSTOMER_MISMATCH,
)
# A refusal of one transfer (an API transfer in another ledger answers account_not_found), and a
# fail-closed gate that could not decide; through the group committer, a full queue.
TRANSFER_REFUSALS: Final = (
    *(r.value for r in TransferResult if not r.ok and r is not TransferResult.LEDGER_MISMATCH),
    GATE_UNAVAILABLE,
    REVIEW_IN_CHAIN,
    "overloaded",
)
ACCOUNT_INPUT_ERRORS: Final = (
    *METADATA_ERRORS,
    "not_found",
    "invalid_name",
    "unknown_asset",
    "invalid_direction",
    "invalid_flags",
    "flags_are_mutually_exclusive",
)
# The owner guard's refusal (ledger.base.OwnerGuard; runtime.py wires compliance's, whose
# catalogue declares the code): an account created for, or unfrozen of, a barred customer.
OWNER_REFUSALS: Final = ("sanctions_confirmed",)
LISTING_ERRORS: Final = ("not_found", "invalid_cursor")


class PaymentCustomerMismatch(StrongroomError):
    """A payment's `customer_id` is not the owner of a customer's account the transfer debits:
    a customer's account pays as that customer (its KYC caps, its risk profile). Nothing is
    written."""

    code = PAYMENT_CUSTOMER_MISMATCH
    status = 422
