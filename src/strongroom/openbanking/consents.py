"""The consent lifecycle: one state machine for the three consent kinds we serve.

UK Open Banking v4.0 gives each kind its own status enum (OBInternalConsentStatus1Code):

- account access (OBReadConsentResponse1):                 AWAU RJCT AUTH EXPD CANC
- funds confirmation (OBFundsConfirmationConsentResponse1): AWAU RJCT AUTH CANC EXPD
- domestic payment (OBWriteDomesticConsentResponse5):       AWAU RJCT AUTH COND

An event moves a consent along TRANSITIONS, a table keyed by (kind, status, event); any other
event is a ConsentStateError (`consent_state`, 409) and changes nothing. RJCT, EXPD, CANC and
COND are final. A payment consent has no EXPD and no CANC in v4.0: one whose authorisation
window closes is rejected (RJCT), and one authorised is used once (COND) and never revoked.

Pure: the store keeps ConsentState's fields and writes each Transition as an audit leaf.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from strongroom.openbanking.model_errors import ConsentStateError


class ConsentKind(StrEnum):
    ACCOUNT_ACCESS = "account_access"
    DOMESTIC_PAYMENT = "domestic_payment"
    FUNDS_CONFIRMATION = "funds_confirmation"


class ConsentStatus(StrEnum):
    """OBInternalConsentStatus1Code (its AWUP, for file payments, is not ours)."""

    AWAU = "AWAU"  # Awaiting Authorisation: created by the TPP, the PSU has not decided
    AUTH = "AUTH"  # Authorised by the PSU
    RJCT = "RJCT"  # Rejected (by the PSU, or its authorisation never completed)
    EXPD = "EXPD"  # Expired: its ExpirationDateTime passed
    CANC = "CANC"  # Cancelled: access withdrawn by the PSU, the TPP or the ASPSP
    COND = "COND"  # Consumed: the payment it allowed was submitted


class ConsentEvent(StrEnum):
    AUTHORISE = "authorise"  # the PSU approves on the consent page (with step-up)
    REJECT = "reject"  # the PSU declines on the consent page
    REVOKE = "revoke"  # the PSU (dashboard), the TPP (DELETE) or the ASPSP withdraws access
    EXPIRE = "expire"  # its expiry (or authorisation window) passed
    CONSUME = "consume"  # the TPP submitted the payment it allows


STATUS_NAMES: Final[Mapping[ConsentStatus, str]] = {
    ConsentStatus.AWAU: "Awaiting Authorisation",
    ConsentStatus.AUTH: "Authorised",
    ConsentStatus.RJCT: "Rejected",
    ConsentStatus.EXPD: "Expired",
    ConsentStatus.CANC: "Cancelled",
    ConsentStatus.COND: "Consumed",
}

_S = ConsentStatus
_E = ConsentEvent

STATUSES: Final[Mapping[ConsentKind, frozenset[ConsentStatus]]] = {
    ConsentKind.ACCOUNT_ACCESS: frozenset({_S.AWAU, _S.RJCT, _S.AUTH, _S.EXPD, _S.CANC}),
    ConsentKind.FUNDS_CONFIRMATION: frozenset({_S.AWAU, _S.RJCT, _S.AUTH, _S.CANC, _S.EXPD}),
    ConsentKind.DOMESTIC_PAYMENT: frozenset({_S.AWAU, _S.RJCT, _S.AUTH, _S.COND}),
}
INITIAL: Final = ConsentStatus.AWAU
TERMINAL: Final = frozenset({_S.RJCT, _S.EXPD, _S.CANC, _S.COND})

# Access to data (accounts, funds confirmation): granted until revoked or expired.
_ACCESS: Final[Mapping[tuple[ConsentStatus, ConsentEvent], ConsentStatus]] = {
    (_S.AWAU, _E.AUTHORISE): _S.AUTH,
    (_S.AWAU, _E.REJECT): _S.RJCT,
    (_S.AWAU, _E.REVOKE): _S.CANC,
    (_S.AWAU, _E.EXPIRE): _S.EXPD,
    (_S.AUTH, _E.REVOKE): _S.CANC,
    (_S.AUTH, _E.EXPIRE): _S.EXPD,
}
# A single payment: authorised once, used once.
_PAYMENT: Final[Mapping[tuple[ConsentStatus, ConsentEvent], ConsentStatus]] = {
    (_S.AWAU, _E.AUTHORISE): _S.AUTH,
    (_S.AWAU, _E.REJECT): _S.RJCT,
    (_S.AWAU, _E.EXPIRE): _S.RJCT,  # v4.0 PIS has no EXPD: an unfinished authorisation fails
    (_S.AUTH, _E.CONSUME): _S.COND,
}
TRANSITIONS: Final[Mapping[tuple[ConsentKind, ConsentStatus, ConsentEvent], ConsentStatus]] = {
    (kind, status, event): to
    for kind, table in (
        (ConsentKind.ACCOUNT_ACCESS, _ACCESS),
        (ConsentKind.FUNDS_CONFIRMATION, _ACCESS),
        (ConsentKind.DOMESTIC_PAYMENT, _PAYMENT),
    )
    for (status, event), to in table.items()
}
# The table agrees with the statuses: each kind moves only among its own, never out of a
# final status, and never to its own status.
assert all(
    {status, to} <= STATUSES[kind] and status not in TERMINAL and status != to
    for (kind, status, event), to in TRANSITIONS.items()
)
assert all(INITIAL in statuses and statuses & TERMINAL for statuses in STATUSES.values())

_PAST: Final[Mapping[ConsentEvent, str]] = {
    _E.AUTHORISE: "authorised",
    _E.REJECT: "rejected",
    _E.REVOKE: "revoked",
    _E.EXPIRE: "expired",
    _E.CONSUME: "consumed",
}


@dataclass(frozen=True, slots=True)
class ConsentState:
    """What the state machine knows of a consent: its kind, its status, when it was created
    and when its status last changed (epoch microseconds: OB's CreationDateTime and
    StatusUpdateDateTime)."""

    kind: ConsentKind
    status: ConsentStatus
    created_at_us: int
    status_updated_at_us: int

    def __post_init__(self) -> None:
        assert self.status in STATUSES[self.kind], (self.kind, self.status)
        assert 0 <= self.created_at_us <= self.status_updated_at_us

    @classmethod
    def new(cls, kind: ConsentKind, at_us: int) -> ConsentState:
        """A consent the TPP just created: awaiting authorisation."""
        return cls(kind, INITIAL, at_us, at_us)

    @property
    def final(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of status, as the audit log records it."""

    kind: ConsentKind
    event: ConsentEvent
    from_status: ConsentStatus
    to_status: ConsentStatus
    at_us: int

    def to_dict(self) -> dict[str, str | int]:
        return {
            "kind": str(self.kind),
            "event": str(self.event),
            "from": str(self.from_status),
            "to": str(self.to_status),
            "at_us": self.at_us,
        }


def next_status(
    kind: ConsentKind, status: ConsentStatus, event: ConsentEvent
) -> ConsentStatus | None:
    """Where `event` takes a consent of `kind` in `status`, or None when it may not."""
    return TRANSITIONS.get((kind, status, event))


def allowed_events(kind: ConsentKind, status: ConsentStatus) -> tuple[ConsentEvent, ...]:
    return tuple(e for e in ConsentEvent if (kind, status, e) in TRANSITIONS)


def apply(state: ConsentState, event: ConsentEvent, at_us: int) -> tuple[ConsentState, Transition]:
    """The consent after `event` at `at_us`, and the transition to record. An event the
    kind and status do not allow raises ConsentStateError (409) and changes nothing.

    The status update time never goes back: an `at_us` earlier than the last update (another
    worker's clock a little behind) is taken as the last update's time."""
    to = next_status(state.kind, state.status, event)
    if to is None:
        raise ConsentStateError(_refusal(state, event))
    at_us = max(at_us, state.status_updated_at_us)
    after = ConsentState(state.kind, to, state.created_at_us, at_us)
    return after, Transition(state.kind, event, state.status, to, at_us)


def _refusal(state: ConsentState, event: ConsentEvent) -> str:
    kind = str(state.kind).replace("_", " ")
    article = "an" if kind[0] in "aeiou" else "a"
    status = f"{state.status} ({STATUS_NAMES[state.status]})"
    allowed = allowed_events(state.kind, state.status)
    then = (
        "it is final" if not allowed else "it may only be " + " or ".join(_PAST[e] for e in allowed)
    )
    return f"{article} {kind} consent in status {status} cannot be {_PAST[event]}: {then}"
