"""The transfer step-up gate (a Gate of the transfer pipeline, ledger/pipeline.py).

A transfer that moves more than STRONGROOM_STEP_UP_TRANSFER_AMOUNT minor units (any asset) is
blocked with `transfer_step_up_required` unless whoever asked may move it:
- a user (`user:<id>`) with a session stepped up within the step-up window (the gate knows
  the actor, not the session: any live session of the user that stepped up counts);
- an API key (`api_key:<id>`) whose `transfer_ceiling` is at least the amount (machines
  cannot step up: the ceiling stands in for it).
Other actors are the operators' own doors (`cli`, system jobs, a library caller that names
none): they pass. The gate is installed only when the setting is on, so a deployment without it
pays nothing; with it, a batch costs one lookup of its actor, and only when some transfer of
the batch is over the threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from strongroom.core.errors import ErrorCode
from strongroom.ledger.model import Action, Direction, GateDecision, NewTransfer, Verdict

STEP_UP_CODE: Final = "transfer_step_up_required"
STEP_UP_GATE_ERRORS: Final = (
    ErrorCode(
        STEP_UP_CODE,
        422,
        "The amount needs a stepped-up user session or an API key with a transfer ceiling",
    ),
)
_USER: Final = "user:"
_API_KEY: Final = "api_key:"


def moved(transfer: NewTransfer) -> int:
    """What a new transfer moves: its amount, or its debit legs' total."""
    if transfer.legs is not None:
        return sum(leg.amount for leg in transfer.legs if leg.direction is Direction.DEBIT)
    return transfer.amount


class StepUpGate:
    name: str = "step_up"
    budget_ms: int = 2_000
    fail_open: bool = False  # a lookup that fails must not let a large transfer through
    errors: Sequence[ErrorCode] = STEP_UP_GATE_ERRORS

    def __init__(
        self,
        threshold: int,
        stepped_up: Callable[[str], bool],
        ceiling: Callable[[str], int | None],
    ) -> None:
        """`stepped_up(user_id)`: whether the user stepped up lately; `ceiling(key_id)`: the
        live API key's transfer ceiling, None for none."""
        assert threshold >= 0
        self.threshold = threshold
        self.stepped_up = stepped_up
        self.ceiling = ceiling

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        threshold = self.threshold
        large = [
            i for i, t in enumerate(batch) if t.action is Action.TRANSFER and moved(t) > threshold
        ]
        out: list[GateDecision | None] = [None] * len(batch)
        if not large or actor is None:
            return out
        if actor.startswith(_USER):
            if self.stepped_up(actor.removeprefix(_USER)):
                return out
            allowed = -1
        elif actor.startswith(_API_KEY):
            found = self.ceiling(actor.removeprefix(_API_KEY))
            allowed = -1 if found is None else found
        else:
            return out
        block = GateDecision(self.name, Verdict.BLOCK, STEP_UP_CODE)
        for i in large:
            if moved(batch[i]) > allowed:
                out[i] = block
        return out
