"""The transfer pipeline's ports (../shared/DESIGN.md, "The transfer pipeline").

Every movement of money passes the same stages, whatever its door (a single transfer through
the group-commit coalescer, a batch, the CLI):

1. validate (ledger.model), pure;
2. gates: each decides per transfer `allow`, `review` or `block`, outside the write
   transaction, within its time budget, failing open or closed as it declares (`run_gates`);
3. post: the engine applies the batch in one transaction (limits that must not race are
   checked there, against locked rows);
4. sinks: inside that transaction, in one declared order (the outbox, feature counters, the
   audit log last), each handed one `CommittedBatch` with named fields.

Gates and sinks are installed by the composition root (runtime.py); the ledger knows only these
ports. With no gate installed, stage 2 costs nothing.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from strongroom.core.errors import ErrorCode
from strongroom.ledger.model import (
    Action,
    GateDecision,
    NewTransfer,
    Payment,
    TransferRow,
    Verdict,
)

if TYPE_CHECKING:
    from strongroom.db.uow import UnitOfWork
    from strongroom.ledger.engine import EntryRow

_log = logging.getLogger(__name__)

# Where each field is in a TransferRow (the store's TRANSFER_COLS order): sinks read rows by
# these names, never by bare numbers.
TR_SEQ: Final = 0
TR_ID: Final = 1
TR_LEDGER_ID: Final = 2
TR_ACTION: Final = 3
TR_STATUS: Final = 4
TR_AMOUNT: Final = 7
TR_TARGET_ID: Final = 9
TR_CREATED_AT: Final = 14

# The code of a transfer blocked because a fail-closed gate could not decide in its budget.
GATE_UNAVAILABLE: Final = "gate_unavailable"
# A transfer a gate sent to review inside a linked chain or an atomic batch: it cannot be held
# alone (the rest of the chain would post without it), so it is refused and the chain with it.
REVIEW_IN_CHAIN: Final = "review_in_chain"
# A post of a transfer held for review, but by its case: its code (the cases domain declares it).
HELD_FOR_REVIEW: Final = "held_for_review"
_POST: Final = Action.POST


ALLOW: Final = None  # what a gate answers for a transfer it lets through


class Gate(Protocol):
    """Decides on a whole batch before it is posted: one decision per transfer, in order
    (None, ALLOW, means allow). It runs outside the write transaction and may read state a
    moment stale; a ceiling that must never be crossed is a limit in the engine instead.
    `actor` asked for every transfer of the batch it is handed: of a batch gathered from
    several actors (the group-commit coalescer's), each actor's part is its own call."""

    name: str
    budget_ms: int  # past it the gate is treated as failed
    fail_open: bool  # failed: allow everything (True) or block everything (False)
    # The codes its blocks answer (status 422), declared like every domain's errors: the
    # composition root adds them to the catalogue.
    errors: Sequence[ErrorCode]

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]: ...


# A gate may declare `payments_only = True`: it allows every transfer without a `payment`, so
# the GateRunner does not ask it about a batch (or an actor's part of one) that carries none
# (the open banking consent gate: a bulk batch pays it nothing, not even a thread's hop).
# Likewise `posts_only = True`: it allows every transfer but a post of a pending one (the review
# hold, installed on every ledger: a batch without a post pays it one pass).


@runtime_checkable
class RecheckedGate(Protocol):
    """A gate whose blocks must not race a concurrent commit (the review hold: a post of a
    transfer whose hold another batch is committing): `recheck` is asked again inside the
    posting transaction, after the batch's target transfers are read (and locked, on
    PostgreSQL), so what it reads is what the engine will apply against. Only its blocks
    count there. A batch is rechecked when some rechecked gate wants it (a `posts_only` gate a
    batch with a post, a `payments_only` one a batch with a payment or a post), and then
    every rechecked gate is asked: one with nothing to ask about answers allow, reading
    nothing. Its answers in
    the transaction are final: a block it finds there refuses the transfer as its gate's block
    would (BLOCKED_BY_GATE with the decision)."""

    def recheck(
        self, uow: UnitOfWork, batch: Sequence[NewTransfer]
    ) -> Sequence[GateDecision | None]: ...


@runtime_checkable
class DecisionDetail(Protocol):
    """What a gate's GateDecision.detail may offer the API: a held transfer's answer carries
    `answer()` under `answer_key` (the risk gate's `risk` object), and a blocked one's problem
    detail names `reason_codes()` (stable codes, never personal data)."""

    answer_key: str

    def answer(self) -> dict[str, object]: ...

    def reason_codes(self) -> Sequence[str]: ...


@dataclass(slots=True)
class GateOutcome:
    """What the gates decided for a batch: only the transfers some gate did not allow."""

    blocked: dict[int, GateDecision] = field(default_factory=dict)  # by batch index
    held: dict[int, GateDecision] = field(default_factory=dict)  # by batch index
    decisions: dict[str, list[GateDecision]] = field(default_factory=dict)  # by transfer id
    # The allows that carry a gate's detail (GateDecision.detail), by transfer id: for the
    # gate's own sink (the risk gate records every decision), never for the audit leaf.
    allowed: dict[str, list[GateDecision]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.decisions)


class GateRunner:
    """Runs the installed gates, each in a worker thread so its budget can be enforced. A gate
    that overruns keeps running in its thread (Python cannot stop it); its answer is dropped."""

    def __init__(self, gates: Sequence[Gate]) -> None:
        names = [g.name for g in gates]
        assert len(set(names)) == len(names), "gate names are unique"
        for gate in gates:
            assert gate.budget_ms > 0, f"gate {gate.name} has a time budget"
        self.gates = tuple(gates)
        self._payments_only = tuple(bool(getattr(g, "payments_only", False)) for g in gates)
        self._posts_only = tuple(bool(getattr(g, "posts_only", False)) for g in gates)
        # The gates asked again inside the write transaction: (name, recheck, posts_only,
        # payments_only). A payments_only gate is rechecked about a batch with a payment or a
        # post (the post of a payment it held).
        self._rechecked: tuple[tuple[str, RecheckedGate, bool, bool], ...] = tuple(
            (g.name, g, posts_only, payments_only)
            for g, posts_only, payments_only in zip(
                gates, self._posts_only, self._payments_only, strict=True
            )
            if isinstance(g, RecheckedGate)
        )
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=max(2, 2 * len(self.gates)), thread_name_prefix="gate"
                )
            return self._pool

    def run(
        self,
        batch: Sequence[NewTransfer],
        actor: str | None,
        actors: Sequence[str | None] | None = None,
    ) -> GateOutcome:
        """Every gate's decisions on `batch`, asked by `actor`; or, for a batch gathered from
        several (`actors`, one per transfer), each gate asked once per actor about that actor's
        transfers (a gate decides by who asked), all at once, each within the gate's budget."""
        outcome = GateOutcome()
        if not self.gates:
            return outcome
        groups: list[tuple[str | None, list[int]]]
        if actors is None:
            groups = [(actor, list(range(len(batch))))]
        else:
            assert len(actors) == len(batch)
            by_actor: dict[str | None, list[int]] = {}
            for index, who in enumerate(actors):
                by_actor.setdefault(who, []).append(index)
            groups = list(by_actor.items())
        pool = self._executor()
        started = time.monotonic()
        asked = []
        # Whether each part carries a payment, or a post: asked only when a payments_only or a
        # posts_only gate is there.
        paid: dict[int, bool] = {}
        posting: dict[int, bool] = {}
        for gate, payments_only, posts_only in zip(
            self.gates, self._payments_only, self._posts_only, strict=True
        ):
            for k, (who, indexes) in enumerate(groups):
                part = batch if len(groups) == 1 else [batch[i] for i in indexes]
                if payments_only:
                    if k not in paid:
                        paid[k] = any(t.payment is not None for t in part)
                    if not paid[k]:
                        continue  # every transfer of the part allowed, without asking
                if posts_only:
                    if k not in posting:
                        posting[k] = any(t.action is _POST for t in part)
                    if not posting[k]:
                        continue
                asked.append((gate, indexes, pool.submit(gate.decide, part, who)))
        for gate, indexes, future in asked:
            left_s = max(0.0, started + gate.budget_ms / 1000 - time.monotonic())
            answers = self._answers(gate, future, len(indexes), left_s)
            for index, decision in zip(indexes, answers, strict=True):
                if decision is None:
                    continue
                if decision.verdict is Verdict.ALLOW:
                    if decision.detail is not None:
                        outcome.allowed.setdefault(batch[index].id, []).append(decision)
                    continue
                outcome.decisions.setdefault(batch[index].id, []).append(decision)
                if decision.verdict is Verdict.BLOCK:
                    outcome.blocked.setdefault(index, decision)
                else:
                    outcome.held.setdefault(index, decision)
        for index in outcome.blocked:  # a block wins over a hold
            outcome.held.pop(index, None)
        return outcome

    def rechecks(self, batch: Sequence[NewTransfer]) -> bool:
        """Whether `batch` is asked about again inside its write transaction (recheck)."""
        return any(self._asked_again(g, batch) for g in self._rechecked)

    @staticmethod
    def _asked_again(
        rechecked: tuple[str, RecheckedGate, bool, bool], batch: Sequence[NewTransfer]
    ) -> bool:
        _, _, posts_only, payments_only = rechecked
        if posts_only:
            return any(t.action is _POST for t in batch)
        if payments_only:
            return any(t.payment is not None or t.action is _POST for t in batch)
        return True

    def recheck(
        self,
        uow: UnitOfWork,
        batch: Sequence[NewTransfer],
        blocked: Mapping[str, GateDecision] | None,
    ) -> dict[str, GateDecision] | None:
        """`blocked` (the gates' blocks by transfer id, None for none) with what the
        rechecked gates block inside the posting transaction `uow` added; a block decided
        before the transaction is the one kept. Asked only about a batch `rechecks` accepts;
        each gate's recheck answers allow, with no read, for a batch it has nothing to ask
        about (no post for the review hold; no payment and no post for the payee gate)."""
        out = dict(blocked) if blocked else {}
        for name, gate, _, _ in self._rechecked:
            answers = gate.recheck(uow, batch)
            if len(answers) != len(batch):
                raise RuntimeError(
                    f"gate {name} rechecked {len(answers)} decisions for {len(batch)}"
                )
            for t, decision in zip(batch, answers, strict=True):
                if decision is not None and decision.verdict is Verdict.BLOCK:
                    out.setdefault(t.id, decision)
        return out or None

    @staticmethod
    def _answers(
        gate: Gate,
        future: concurrent.futures.Future[Sequence[GateDecision | None]],
        n: int,
        timeout_s: float,
    ) -> Sequence[GateDecision | None]:
        try:
            answers = future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            problem = f"over its budget of {gate.budget_ms} ms"
        except Exception as exc:
            problem = f"failed: {type(exc).__name__}"
        else:
            if len(answers) == n:
                return answers
            problem = f"answered {len(answers)} decisions for {n} transfers"
        # A gate may hold instead (an optional `fail_verdict` of Verdict.REVIEW): the risk
        # gate's STRONGROOM_RISK_FAIL=review.
        held = getattr(gate, "fail_verdict", None) is Verdict.REVIEW
        policy = "fails open" if gate.fail_open else "holds" if held else "fails closed"
        _log.warning("gate %s %s; it %s", gate.name, problem, policy)
        if gate.fail_open:
            return [None] * n
        if held:
            return [GateDecision(gate.name, Verdict.REVIEW, GATE_UNAVAILABLE)] * n
        return [GateDecision(gate.name, Verdict.BLOCK, GATE_UNAVAILABLE)] * n

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """What one write transaction changed in the ledger, handed to every sink inside it.

    `kinds[i]` is the event of `transfers[i]` (transfer.created, .posted, .voided, .reversed,
    .expired), each transfer row as stored after the change (TR_* names its fields); `entries`
    the account entries the transaction wrote, in the order of their transfers; `at_us` the
    transaction's time (the created_at of every transfer it created); `wide` False promises no
    money value of these rows is past 64 bits; `actor` who asked (an API key, a staff user, a
    customer, a system job: `api_key:<id>`, `cli`, `system:expiry`), None when not told;
    `actors`, when the batch was gathered from several, each transfer's actor by id instead;
    `decisions` the gates' decisions other than allow, by transfer id; `allowed` the allows that
    carry a gate's detail, by transfer id (for that gate's own sink; the audit leaf reads
    `decisions` only, so an allowed transfer's leaf is the same as without the gate);
    `payments` the payment of each transfer of the batch that carried one, by transfer id, None
    when none did (a bulk batch without payments builds nothing). Rows, not objects: a bulk
    batch has 8,190 of them and building objects would cost more than the rest of it."""

    kinds: Sequence[str]
    transfers: Sequence[TransferRow]
    entries: Sequence[EntryRow]
    at_us: int
    wide: bool = True
    actor: str | None = None
    actors: Mapping[str, str | None] | None = None
    decisions: Mapping[str, Sequence[GateDecision]] = field(default_factory=dict)
    allowed: Mapping[str, Sequence[GateDecision]] = field(default_factory=dict)
    payments: Mapping[str, Payment] | None = None

    def __post_init__(self) -> None:
        assert len(self.kinds) == len(self.transfers)


class Sink(Protocol):
    """Told of a write transaction's ledger changes inside that transaction, right before its
    commit. It writes through `uow`, so what it writes commits or rolls back with the ledger's
    rows; it is called again if the transaction is retried."""

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None: ...


@dataclass(frozen=True, slots=True)
class LimitItem:
    """What one transfer of a batch takes out of one payer, as a limit sees it: `index` in the
    batch, the payer (a customer of the ledger's tenant: the debited account's owner, else the
    payment's customer, ledger/limits.py limit_items), and `amount` of `asset` (one item per
    payer and asset of a transfer's debit legs; a transfer's items are consecutive).

    `posting`: the item is a post of a pending transfer (its payer: the owner of an account
    the pending transfer debits, `amount` what it debits). Its amounts were counted when the
    pending transfer was created: a limit checks the payer's standing (a KYC status) and
    neither checks nor counts them against a cap again (LimitsRun.record leaves them out)."""

    index: int
    transfer_id: str
    tenant_id: str
    customer_id: str
    asset: str
    amount: int
    posting: bool = False


class LimitCheck(Protocol):
    """One limit's answer on one batch, inside its write transaction: the transfers it refuses
    (a BLOCK decision with the limit's stable code, by transfer id), and `record`, told of the
    items whose transfers the engine created, so the counters it locked count them."""

    @property
    def blocked(self) -> Mapping[str, GateDecision]: ...

    def record(self, uow: UnitOfWork, created: Sequence[LimitItem]) -> None: ...


class Limit(Protocol):
    """A ceiling that must never be crossed (a KYC tier's caps): checked inside the posting
    transaction, after the batch's accounts are locked and before the engine applies it,
    against counters it locks in that same transaction (in a stable order). Its refusals are
    ledger refusals (BLOCKED_BY_GATE with its code), per transfer; a linked chain with a
    refused member fails as with any other refusal. Only batches that debit a customer's
    account or carry a payment reach it: with none installed it costs nothing."""

    name: str
    errors: Sequence[ErrorCode]  # the codes its refusals answer (status 422)

    def check(self, uow: UnitOfWork, items: Sequence[LimitItem], now_us: int) -> LimitCheck: ...
