"""The ledger's vocabulary and its pure rules. No I/O here.

Amounts are integers of minor units. Balances are four counters per account (TigerBeetle's
shape): debits_posted, credits_posted, debits_pending, credits_pending; everything else is
derived from them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag, StrEnum
from typing import Any, Final

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import (
    AMOUNT_MAX,
    ID_LENGTH_MAX,
    LEGS_PER_TRANSFER_MAX,
    METADATA_BYTES_MAX,
    METADATA_INT_MAX,
    METADATA_KEY_LENGTH_MAX,
    METADATA_KEYS_MAX,
    NAME_LENGTH_MAX,
    PAYMENT_IP_LENGTH_MAX,
    PAYMENT_REF_LENGTH_MAX,
    PENDING_TIMEOUT_S_MAX,
    SCREENING_NAME_CHARS_MAX,
)
from strongroom.core.money import from_stored_int, validate_amount

Metadata = dict[str, str | int | bool | None]


class Direction(IntEnum):
    DEBIT = 0
    CREDIT = 1

    @property
    def label(self) -> str:
        return "debit" if self is Direction.DEBIT else "credit"

    @classmethod
    def parse(cls, value: object, param: str) -> Direction:
        if value in ("debit", Direction.DEBIT):
            return Direction.DEBIT
        if value in ("credit", Direction.CREDIT):
            return Direction.CREDIT
        raise InvalidRequest("must be 'debit' or 'credit'", param=param, code="invalid_direction")


class AccountFlag(IntFlag):
    NONE = 0
    DEBITS_MUST_NOT_EXCEED_CREDITS = 1
    CREDITS_MUST_NOT_EXCEED_DEBITS = 2

    @classmethod
    def parse(cls, names: object, param: str = "flags") -> AccountFlag:
        if not isinstance(names, list | tuple):
            raise InvalidRequest("flags must be a list", param=param, code="invalid_flags")
        flags = cls.NONE
        for name in names:
            member = _FLAG_BY_NAME.get(name) if isinstance(name, str) else None
            if member is None:
                raise InvalidRequest(f"unknown flag {name!r}", param=param, code="invalid_flags")
            flags |= member
        if (
            AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS in flags
            and AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS in flags
        ):
            raise InvalidRequest(
                "an account cannot refuse both overdraft directions",
                param=param,
                code="flags_are_mutually_exclusive",
            )
        return flags

    def names(self) -> list[str]:
        return [name for name, member in _FLAG_BY_NAME.items() if member in self]


_FLAG_BY_NAME = {
    "debits_must_not_exceed_credits": AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS,
    "credits_must_not_exceed_debits": AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS,
}


class Action(IntEnum):
    """What a transfer does. POST, VOID and REVERSE name a target transfer."""

    TRANSFER = 0
    POST = 1
    VOID = 2
    REVERSE = 3


class Status(IntEnum):
    POSTED = 0
    PENDING = 1
    VOIDED = 2
    EXPIRED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class TransferResult(StrEnum):
    """Ordered by precedence: the first failing check is the one reported."""

    CREATED = "created"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_LEDGER_ID = "exists_with_different_ledger_id"
    EXISTS_WITH_DIFFERENT_ACTION = "exists_with_different_action"
    EXISTS_WITH_DIFFERENT_TARGET_ID = "exists_with_different_target_id"
    EXISTS_WITH_DIFFERENT_DEBIT_ACCOUNT_ID = "exists_with_different_debit_account_id"
    EXISTS_WITH_DIFFERENT_CREDIT_ACCOUNT_ID = "exists_with_different_credit_account_id"
    EXISTS_WITH_DIFFERENT_AMOUNT = "exists_with_different_amount"
    EXISTS_WITH_DIFFERENT_LEGS = "exists_with_different_legs"
    EXISTS_WITH_DIFFERENT_PENDING = "exists_with_different_pending"
    EXISTS_WITH_DIFFERENT_TIMEOUT = "exists_with_different_timeout"
    EXISTS_WITH_DIFFERENT_EFFECTIVE_AT = "exists_with_different_effective_at"
    EXISTS_WITH_DIFFERENT_METADATA = "exists_with_different_metadata"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    # A gate of the transfer pipeline blocked it (ledger.pipeline); the outcome's `decision`
    # holds the gate's own stable code, which the API answers.
    BLOCKED_BY_GATE = "blocked_by_gate"
    LEDGER_NOT_FOUND = "ledger_not_found"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    LEDGER_MISMATCH = "ledger_mismatch"
    ASSET_MISMATCH = "asset_mismatch"
    ACCOUNT_CLOSED = "account_closed"
    # An account frozen (a confirmed sanctions match, an order): no debit nor credit until it
    # is unfrozen; a void or the expiry of a pending transfer still releases its reservation.
    ACCOUNT_FROZEN = "account_frozen"
    LEGS_UNBALANCED_PER_ASSET = "legs_unbalanced_per_asset"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    EXCEEDS_PENDING_TRANSFER_AMOUNT = "exceeds_pending_transfer_amount"
    REVERSAL_TARGET_NOT_FOUND = "reversal_target_not_found"
    REVERSAL_TARGET_NOT_POSTED = "reversal_target_not_posted"
    EXCEEDS_REVERSIBLE_AMOUNT = "exceeds_reversible_amount"
    PARTIAL_AMOUNT_NEEDS_TWO_LEGS = "partial_amount_needs_two_legs"
    OVERFLOWS_DEBITS_PENDING = "overflows_debits_pending"
    OVERFLOWS_CREDITS_PENDING = "overflows_credits_pending"
    OVERFLOWS_DEBITS_POSTED = "overflows_debits_posted"
    OVERFLOWS_CREDITS_POSTED = "overflows_credits_posted"
    OVERFLOWS_DEBITS = "overflows_debits"
    OVERFLOWS_CREDITS = "overflows_credits"
    INSUFFICIENT_FUNDS = "insufficient_funds"

    @property
    def ok(self) -> bool:
        return self is TransferResult.CREATED or self is TransferResult.EXISTS


class Verdict(StrEnum):
    """A gate's decision on one transfer (ledger.pipeline)."""

    ALLOW = "allow"
    REVIEW = "review"  # held as pending; a later decision posts or voids it
    BLOCK = "block"  # refused with the gate's stable code


@dataclass(frozen=True, slots=True)
class GateDecision:
    """One gate's decision on one transfer. `code` is stable and snake_case: the refusal a
    blocked transfer answers (e.g. `sanctions_match`), or why one is held for review."""

    gate: str
    verdict: Verdict
    code: str | None = None
    # The gate's own account of its decision (the risk gate's RiskDecision), for its own sink
    # and the API's answer: never part of the audit leaf (to_dict) nor of equality. An allow
    # that carries one reaches the sinks too (CommittedBatch.allowed).
    detail: object = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        assert self.verdict is Verdict.ALLOW or self.code, "a review or block names its code"

    def to_dict(self) -> dict[str, str | None]:
        return {"gate": self.gate, "verdict": self.verdict.value, "code": self.code}


class Channel(StrEnum):
    """How a payment was made (Payment.channel)."""

    CARD_PRESENT = "card_present"
    CARD_NOT_PRESENT = "card_not_present"
    BANK_TRANSFER = "bank_transfer"
    WALLET = "wallet"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Payment:
    """The payment fields of a transfer marked as a payment (a customer-initiated card or
    account payment), which the risk gate scores (risk/). Only `customer_id` is required; the
    rest are used where known."""

    customer_id: str
    payee: str | None = None  # the other side: a terminal or counterparty id
    channel: str | None = None  # e.g. card_present, card_not_present, bank_transfer, wallet
    device: str | None = None  # a device id the caller vouches for
    ip: str | None = None  # the payer's IP address, as text
    # The payee's name, for a payee Strongroom does not know (no counterparty): screened by the
    # sanctions gate in memory, never stored, logged nor recorded by a sink.
    payee_name: str | None = None
    # The open banking consent a payment is made under (an `obc_` id): the consent gate checks
    # it is authorised for this customer and account; the open banking sink consumes it in the
    # posting transaction (openbanking/payments/). None for every other payment.
    consent_id: str | None = None


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: str
    direction: Direction
    amount: int


@dataclass(slots=True)
class NewTransfer:
    """A request to the engine. `id` is client-chosen and is the idempotency key.

    - TRANSFER: either debit_account_id + credit_account_id + amount, or `legs`.
      `pending=True` reserves instead of posting; `timeout_s` > 0 expires the reservation.
    - POST / VOID: `target_id` names a pending transfer; POST's `amount` 0 means the full amount.
    - REVERSE: `target_id` names a posted transfer; `amount` 0 means what is left to reverse.
    `linked=True` chains this transfer with the next: they succeed or fail together.
    """

    id: str
    ledger_id: str
    debit_account_id: str | None = None
    credit_account_id: str | None = None
    amount: int = 0
    legs: tuple[Leg, ...] | None = None
    action: Action = Action.TRANSFER
    target_id: str | None = None
    pending: bool = False
    timeout_s: int = 0
    linked: bool = False
    metadata: str | None = None  # canonical JSON, see canonical_metadata()
    # When the transfer counts for reporting (epoch us), if not when it was recorded.
    effective_at: int | None = None
    # A plain transfer (action TRANSFER) marked as a payment: the risk gate scores it. The
    # engine ignores it; it is not stored on the transfer (risk_events holds it, keyed).
    payment: Payment | None = None


class AccountResult(StrEnum):
    """Creating an account with a client-chosen id, as transfers do: identical fields under an
    existing id are `exists`; otherwise the first field that differs, in this order."""

    CREATED = "created"
    EXISTS = "exists"
    EXISTS_WITH_DIFFERENT_LEDGER_ID = "exists_with_different_ledger_id"
    EXISTS_WITH_DIFFERENT_ASSET = "exists_with_different_asset"
    EXISTS_WITH_DIFFERENT_NORMAL_BALANCE = "exists_with_different_normal_balance"
    EXISTS_WITH_DIFFERENT_FLAGS = "exists_with_different_flags"
    EXISTS_WITH_DIFFERENT_NAME = "exists_with_different_name"
    EXISTS_WITH_DIFFERENT_METADATA = "exists_with_different_metadata"
    EXISTS_WITH_DIFFERENT_CUSTOMER_ID = "exists_with_different_customer_id"

    @property
    def ok(self) -> bool:
        return self is AccountResult.CREATED or self is AccountResult.EXISTS


@dataclass(slots=True)  # not frozen: frozen __init__ costs a microsecond per transfer
class TransferOutcome:
    index: int
    result: TransferResult
    transfer_id: str
    # The row written, for a transfer CREATED by this batch: callers need not read it back.
    row: TransferRow | None = None
    # The gate decision that blocked it (BLOCKED_BY_GATE) or held it for review (CREATED,
    # pending), if any.
    decision: GateDecision | None = None


@dataclass(slots=True)
class Balances:
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0


def derived_balances(normal: Direction, b: Balances) -> dict[str, int]:
    """posted: the normal side minus the other; pending: what posted would be if every open
    pending transfer posted; available: posted less outgoing reservations (incoming ones
    are not spendable until posted)."""
    if normal is Direction.CREDIT:
        posted = b.credits_posted - b.debits_posted
        pending = posted + b.credits_pending - b.debits_pending
        available = posted - b.debits_pending
    else:
        posted = b.debits_posted - b.credits_posted
        pending = posted + b.debits_pending - b.credits_pending
        available = posted - b.credits_pending
    return {
        "debits_posted": b.debits_posted,
        "credits_posted": b.credits_posted,
        "debits_pending": b.debits_pending,
        "credits_pending": b.credits_pending,
        "posted": posted,
        "pending": pending,
        "available": available,
    }


# -- validation at the edge: raises InvalidRequest, so nothing is written --------------------


def validate_id(value: object, param: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= ID_LENGTH_MAX:
        raise InvalidRequest(
            f"must be a string of 1 to {ID_LENGTH_MAX} characters", param=param, code="invalid_id"
        )
    if not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidRequest(
            "must be printable ASCII without spaces", param=param, code="invalid_id"
        )
    return value


def validate_name(value: object, param: str = "name") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= NAME_LENGTH_MAX:
        raise InvalidRequest(
            f"must be a string of 1 to {NAME_LENGTH_MAX} characters",
            param=param,
            code="invalid_name",
        )
    if "\x00" in value or not _encodable(value):
        raise InvalidRequest(
            "must be valid Unicode text without NUL", param=param, code="invalid_name"
        )
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def canonical_metadata(value: object, param: str = "metadata") -> str | None:
    """Metadata is a flat JSON object of at most METADATA_KEYS_MAX keys whose values are
    strings, integers, booleans or null, stored as canonical JSON of at most
    METADATA_BYTES_MAX bytes. Floats are refused, as everywhere money may hide."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be an object", param=param, code="invalid_metadata")
    if len(value) > METADATA_KEYS_MAX:
        raise InvalidRequest(
            f"metadata has more than {METADATA_KEYS_MAX} keys",
            param=param,
            code="metadata_too_large",
        )
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= METADATA_KEY_LENGTH_MAX:
            raise InvalidRequest(
                f"metadata keys are strings of 1 to {METADATA_KEY_LENGTH_MAX} characters",
                param=param,
                code="invalid_metadata",
            )
        if item is not None and not isinstance(item, str | int | bool):
            raise InvalidRequest(
                f"metadata[{key}] must be a string, integer, boolean or null",
                param=f"{param}[{key}]",
                code="invalid_metadata",
            )
        if type(item) is int and not -METADATA_INT_MAX <= item <= METADATA_INT_MAX:
            # Metadata is for references, not amounts: an integer a JSON parser of any
            # language (JavaScript's included) reads exactly.
            raise InvalidRequest(
                f"metadata[{key}] integers are at most {METADATA_INT_MAX} in magnitude",
                param=f"{param}[{key}]",
                code="invalid_metadata",
            )
    if not value:
        return None
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        raise InvalidRequest(
            "metadata must be valid Unicode (no lone surrogates)",
            param=param,
            code="invalid_metadata",
        ) from None
    if size > METADATA_BYTES_MAX:
        raise InvalidRequest(
            f"metadata is larger than {METADATA_BYTES_MAX} bytes",
            param=param,
            code="metadata_too_large",
        )
    return text


# An Enum member read through its class costs a lookup through the metaclass; the bulk
# check below reads it once per transfer.
_ACTION_TRANSFER: Final = Action.TRANSFER


def simple_transfer_ok(t: NewTransfer) -> bool:
    """The bulk case, checked without building error messages; anything else (or anything
    wrong) takes the slow path, which names the offending field.

    Called once per transfer of every batch, so written for speed: each field read once into
    a local, the enum member bound at module level (an Enum attribute costs a lookup through
    its metaclass) and the id check inlined. Every condition is a plain test with no side
    effect, so their order changes nothing but how soon a bad transfer is sent to the slow
    path."""
    if t.action is not _ACTION_TRANSFER or t.legs is not None or t.target_id is not None:
        return False
    if t.metadata is not None or t.payment is not None:
        return False
    amount = t.amount
    if type(amount) is not int or not 0 < amount <= AMOUNT_MAX:
        return False
    timeout_s = t.timeout_s
    if type(timeout_s) is not int or (
        timeout_s and not (t.pending and 0 < timeout_s <= PENDING_TIMEOUT_S_MAX)
    ):
        return False
    # The transfer's own id is stored: printable ASCII without spaces (validate_id).
    tid = t.id
    if (
        type(tid) is not str
        or not 0 < len(tid) <= ID_LENGTH_MAX
        or not tid.isascii()
        or not tid.isprintable()
        or " " in tid
    ):
        return False
    # Ids that are only looked up need no character check: a bad one is simply not found.
    ledger_id, debit_id, credit_id = t.ledger_id, t.debit_account_id, t.credit_account_id
    return (
        type(ledger_id) is str
        and 0 < len(ledger_id) <= ID_LENGTH_MAX
        and type(debit_id) is str
        and 0 < len(debit_id) <= ID_LENGTH_MAX
        and type(credit_id) is str
        and 0 < len(credit_id) <= ID_LENGTH_MAX
    )


def validate_transfer(t: NewTransfer, prefix: str = "") -> None:
    """Shape checks that need no database. Raises InvalidRequest naming the field, after
    `prefix` (`transfers[3].` inside a batch)."""
    if simple_transfer_ok(t):
        return
    if t.metadata is not None:
        # NewTransfer carries canonical JSON (canonical_metadata()); anything else is refused.
        try:
            parsed = json.loads(t.metadata) if isinstance(t.metadata, str) else None
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or canonical_metadata(parsed, f"{prefix}metadata") != (
            t.metadata
        ):
            raise InvalidRequest(
                "metadata must be the canonical JSON of an object (see canonical_metadata)",
                param=f"{prefix}metadata",
                code="invalid_metadata",
            )
    validate_id(t.id, f"{prefix}id")
    validate_id(t.ledger_id, f"{prefix}ledger_id")
    if t.payment is not None:
        if t.action is not Action.TRANSFER:
            raise InvalidRequest(
                "only a transfer can be a payment (not a post, void or reversal)",
                param=f"{prefix}payment",
                code="invalid_payment",
            )
        validate_payment(t.payment, f"{prefix}payment")
    if t.action is Action.TRANSFER:
        if t.target_id is not None:
            raise InvalidRequest(
                "target_id is only for post, void and reverse",
                param=f"{prefix}target_id",
                code="invalid_request",
            )
        if t.legs is None:
            validate_id(t.debit_account_id, f"{prefix}debit_account_id")
            validate_id(t.credit_account_id, f"{prefix}credit_account_id")
            validate_amount(t.amount, f"{prefix}amount")
        else:
            if t.debit_account_id is not None or t.credit_account_id is not None or t.amount:
                raise InvalidRequest(
                    "give either legs or debit_account_id/credit_account_id/amount, not both",
                    param=f"{prefix}legs",
                    code="invalid_request",
                )
            validate_legs(t.legs, f"{prefix}legs")
        if isinstance(t.timeout_s, bool) or not isinstance(t.timeout_s, int):
            raise InvalidRequest(
                "timeout_s must be an integer", param=f"{prefix}timeout_s", code="invalid_timeout"
            )
        if not 0 <= t.timeout_s <= PENDING_TIMEOUT_S_MAX:
            raise InvalidRequest(
                f"timeout_s must be from 0 to {PENDING_TIMEOUT_S_MAX}",
                param=f"{prefix}timeout_s",
                code="invalid_timeout",
            )
        if t.timeout_s and not t.pending:
            raise InvalidRequest(
                "timeout_s applies to pending transfers only",
                param=f"{prefix}timeout_s",
                code="invalid_timeout",
            )
    else:
        validate_id(t.target_id, f"{prefix}target_id")
        if t.legs is not None or t.debit_account_id is not None or t.credit_account_id is not None:
            raise InvalidRequest(
                f"{t.action.name.lower()} takes its accounts from the target transfer",
                param=f"{prefix}target_id",
                code="invalid_request",
            )
        if t.pending or t.timeout_s:
            raise InvalidRequest(
                f"{t.action.name.lower()} cannot itself be pending",
                param=f"{prefix}pending",
                code="invalid_request",
            )
        if t.action is Action.VOID and t.amount:
            raise InvalidRequest(
                "void releases the whole reservation and takes no amount",
                param=f"{prefix}amount",
                code="invalid_request",
            )
        if t.amount:
            validate_amount(t.amount, f"{prefix}amount")


def validate_payment(p: object, param: str = "payment") -> Payment:
    """A payment's fields: the customer an id, the payee and device printable references of
    at most PAYMENT_REF_LENGTH_MAX characters, the channel one of Channel, the IP an IPv4 or
    IPv6 address. The customer's tenant is checked against the database by the service."""
    if not isinstance(p, Payment):
        raise InvalidRequest("must be a Payment", param=param, code="invalid_payment")
    validate_id(p.customer_id, f"{param}.customer_id")
    for name in ("payee", "device"):
        value = getattr(p, name)
        if value is None:
            continue
        if (
            not isinstance(value, str)
            or not 1 <= len(value) <= PAYMENT_REF_LENGTH_MAX
            or not value.isprintable()
            or not _encodable(value)
        ):
            raise InvalidRequest(
                f"must be printable text of 1 to {PAYMENT_REF_LENGTH_MAX} characters",
                param=f"{param}.{name}",
                code="invalid_payment",
            )
    if p.channel is not None and p.channel not in _CHANNELS:
        raise InvalidRequest(
            f"must be one of {', '.join(_CHANNELS)}",
            param=f"{param}.channel",
            code="invalid_payment",
        )
    payee_name = p.payee_name
    if payee_name is not None and (
        not isinstance(payee_name, str)
        or not 1 <= len(payee_name) <= SCREENING_NAME_CHARS_MAX
        or not payee_name.isprintable()
        or not _encodable(payee_name)
    ):
        raise InvalidRequest(
            f"must be printable text of 1 to {SCREENING_NAME_CHARS_MAX} characters",
            param=f"{param}.payee_name",
            code="invalid_payment",
        )
    if p.consent_id is not None:
        validate_id(p.consent_id, f"{param}.consent_id")
    if p.ip is not None:
        ok = isinstance(p.ip, str) and 0 < len(p.ip) <= PAYMENT_IP_LENGTH_MAX
        if ok and not DOTTED_QUAD.fullmatch(p.ip):  # the usual case: 0.5 us, not 6
            try:
                ipaddress.ip_address(p.ip)
            except ValueError:
                ok = False
        if not ok:
            raise InvalidRequest(
                "must be an IPv4 or IPv6 address", param=f"{param}.ip", code="invalid_payment"
            )
    return p


# An IPv4 address as ipaddress spells it: four decimal octets, no leading zeros.
_OCTET: Final = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
DOTTED_QUAD: Final = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII)

_CHANNELS: Final = tuple(c.value for c in Channel)


def validate_legs(legs: object, param: str) -> None:
    if not isinstance(legs, tuple) or not 2 <= len(legs) <= LEGS_PER_TRANSFER_MAX:
        raise InvalidRequest(
            f"a transfer has 2 to {LEGS_PER_TRANSFER_MAX} legs", param=param, code="invalid_legs"
        )
    debits = credits = 0
    seen: set[str] = set()
    for i, leg in enumerate(legs):
        if not isinstance(leg, Leg):
            raise InvalidRequest("each leg is a Leg", param=f"{param}[{i}]", code="invalid_legs")
        validate_id(leg.account_id, f"{param}[{i}].account_id")
        if leg.account_id in seen:
            raise InvalidRequest(
                "an account appears in at most one leg of a transfer",
                param=f"{param}[{i}].account_id",
                code="duplicate_leg_account",
            )
        seen.add(leg.account_id)
        validate_amount(leg.amount, f"{param}[{i}].amount")
        if leg.direction is Direction.DEBIT:
            debits += leg.amount
        else:
            credits += leg.amount
    # Per-asset balance needs the accounts' assets; the engine checks it again per asset.
    if debits != credits:
        raise InvalidRequest(
            f"legs are unbalanced: debits {debits} != credits {credits}",
            param=param,
            code="unbalanced_legs",
        )
    if debits > AMOUNT_MAX:  # the transfer's amount is the sum of its debits
        raise InvalidRequest(
            "the legs' debits add up to more than 2^128-1", param=param, code="amount_too_large"
        )


def legs_to_json(legs: tuple[Leg, ...]) -> str:
    return json.dumps([[leg.account_id, int(leg.direction), leg.amount] for leg in legs])


def legs_from_json(text: str) -> tuple[Leg, ...]:
    return tuple(Leg(a, Direction(d), n) for a, d, n in json.loads(text))


@dataclass(slots=True)
class TransferRecord:
    """A stored transfer as the engine needs it."""

    id: str
    ledger_id: str
    action: Action
    status: Status
    debit_account_id: str | None
    credit_account_id: str | None
    amount: int
    legs: tuple[Leg, ...] | None
    target_id: str | None
    pending: bool
    timeout_s: int
    expires_at: int | None
    metadata: str | None
    created_at: int
    seq: int = 0
    effective_at: int | None = None  # None: effective when recorded (created_at)

    def effective_legs(self) -> tuple[Leg, ...]:
        if self.legs is not None:
            return self.legs
        assert self.debit_account_id is not None
        assert self.credit_account_id is not None
        return (
            Leg(self.debit_account_id, Direction.DEBIT, self.amount),
            Leg(self.credit_account_id, Direction.CREDIT, self.amount),
        )


# A transfer row in the order of the store's TRANSFER_COLS:
# (seq, id, ledger_id, action, status, debit_account_id, credit_account_id, amount, legs,
#  target_id, pending, timeout_s, expires_at, metadata, created_at, effective_at)
TransferRow = tuple[
    int,
    str,
    str,
    int,
    int,
    str | None,
    str | None,
    int,
    str | None,
    str | None,
    bool,
    int,
    int | None,
    str | None,
    int,
    int | None,
]


def record_to_row(r: TransferRecord) -> TransferRow:
    return (
        r.seq,
        r.id,
        r.ledger_id,
        int(r.action),
        int(r.status),
        r.debit_account_id,
        r.credit_account_id,
        r.amount,
        legs_to_json(r.legs) if r.legs is not None else None,
        r.target_id,
        r.pending,
        r.timeout_s,
        r.expires_at,
        r.metadata,
        r.created_at,
        r.effective_at,
    )


def record_from_row(row: Sequence[Any]) -> TransferRecord:
    """From a stored row (an amount past 64 bits may be in its stored form, see
    core.money.to_stored_int) or a row the engine made."""
    amount = row[7]
    return TransferRecord(
        seq=row[0],
        id=row[1],
        ledger_id=row[2],
        action=Action(row[3]),
        status=Status(row[4]),
        debit_account_id=row[5],
        credit_account_id=row[6],
        amount=amount if type(amount) is int else from_stored_int(amount),
        legs=legs_from_json(row[8]) if row[8] is not None else None,
        target_id=row[9],
        pending=bool(row[10]),
        timeout_s=row[11],
        expires_at=row[12],
        metadata=row[13],
        created_at=row[14],
        effective_at=row[15],
    )
