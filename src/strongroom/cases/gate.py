"""The review hold (a Gate of the transfer pipeline, ledger/pipeline.py): a transfer a gate held
for review posts only by its case's decision.

A post of a held transfer whose case is open, by any other door (POST /v1/transfers/{id}/post,
a batch, the CLI), is blocked with `held_for_review`: otherwise any key that may write the
ledger could release a payment the risk gate sent to an analyst. The case's own approval posts
under the transfer id derived from the case (cases.model.decision_transfer_id), which passes.
A void stays open to every door (nothing moves, and the case closes as `transfer_voided`).

Installed on every ledger with a database (runtime.installed_gates), whichever gates hold
transfers now: a case opened while risk scoring or screening was on still holds its transfer
after they are turned off. `posts_only`: the runner asks it only about batches with a post (a
batch without one costs one pass over it); one with posts costs one indexed read of their
open cases before the write transaction, and the same read again inside it (`recheck`), where
no other batch can commit a hold between the read and the post.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.cases import store
from strongroom.cases.model import decision_transfer_id
from strongroom.core.errors import ErrorCode
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Action, GateDecision, NewTransfer, Verdict
from strongroom.ledger.pipeline import HELD_FOR_REVIEW

REVIEW_HOLD_ERRORS: Final = (
    ErrorCode(
        HELD_FOR_REVIEW,
        422,
        "The transfer is held for review: an analyst approves its case "
        "(POST /v1/cases/{id}/approve) to post it",
    ),
)


class ReviewHoldGate:
    name: str = "review_hold"
    budget_ms: int = 2_000
    fail_open: bool = False  # a lookup that fails must not release a held payment
    errors: Sequence[ErrorCode] = REVIEW_HOLD_ERRORS
    posts_only: bool = True  # ledger.pipeline.GateRunner asks it only about posts

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        del actor  # whoever asks: only the case's decision posts a held transfer
        if not any(t.action is Action.POST and t.target_id is not None for t in batch):
            return [None] * len(batch)
        with UnitOfWork(self.engine, write=False) as uow:
            return self._holds(uow, batch)

    def recheck(
        self, uow: UnitOfWork, batch: Sequence[NewTransfer]
    ) -> Sequence[GateDecision | None]:
        """The same, inside the posting transaction (ledger.pipeline.RecheckedGate): a held
        transfer's case commits with it, so once the transaction sees the held transfer it
        sees its case. Without it, a post whose gate read no case before another batch
        committed the hold (a batch request racing the payment's own) posted the held
        payment."""
        return self._holds(uow, batch)

    def _holds(self, uow: UnitOfWork, batch: Sequence[NewTransfer]) -> list[GateDecision | None]:
        out: list[GateDecision | None] = [None] * len(batch)
        posts = [
            i for i, t in enumerate(batch) if t.action is Action.POST and t.target_id is not None
        ]
        if not posts:
            return out
        targets = [batch[i].target_id for i in posts]
        cases = store.open_cases_of_transfers(uow, [t for t in targets if t is not None])
        # Every open case of a held transfer may decide it (two gates that held it opened one
        # each): a post under any of their decision ids passes; any other post is blocked.
        deciders: dict[str, set[str]] = {}
        for c in cases:
            if c.transfer_id is not None:
                deciders.setdefault(c.transfer_id, set()).add(
                    decision_transfer_id(c.id, c.created_at)
                )
        block = GateDecision(self.name, Verdict.BLOCK, HELD_FOR_REVIEW)
        for i in posts:
            allowed = deciders.get(batch[i].target_id or "")
            if allowed is not None and batch[i].id not in allowed:
                out[i] = block
        return out
