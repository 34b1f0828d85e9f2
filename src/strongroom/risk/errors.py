"""The risk domain's error codes (core.errors: the composition root collects every domain's).
`risk_blocked` and `risk_unavailable` are ledger refusals a risk gate answers (422, like the
refusal they stand in for, `blocked_by_gate`); docs/errors.md lists them in that order."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, StrongroomError

RISK_BLOCKED: Final = "risk_blocked"
RISK_UNAVAILABLE: Final = "risk_unavailable"
# Why a transfer is held: not an error. A batch answers it as a held transfer's result code.
RISK_REVIEW: Final = "risk_review"

RISK_GATE_ERRORS: Final = (
    ErrorCode(RISK_BLOCKED, 422, "Risk scoring blocked the payment"),
    ErrorCode(RISK_UNAVAILABLE, 422, "Risk scoring is unavailable and fails closed; retry later"),
)
RISK_DECISION_DAMAGED: Final = "risk_decision_damaged"
RISK_ERRORS: Final = (
    *RISK_GATE_ERRORS,
    ErrorCode(RISK_DECISION_DAMAGED, 500, "The stored risk decision is damaged"),
)


class DecisionDamaged(StrongroomError):
    """A stored risk decision whose verdict or time is not what the gate writes (a hand edit of
    the database): it cannot be answered. Its other parts read as empty instead (risk/store.py)."""

    code = RISK_DECISION_DAMAGED
    status = 500
