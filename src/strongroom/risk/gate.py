"""The risk gate (a Gate of the transfer pipeline, ledger/pipeline.py): scores the payments of a
batch before they post, and answers allow, review (held as pending: `risk_review`) or block
(`risk_blocked`).

Per batch: only plain transfers that carry a payment are scored (a bulk batch without payments
costs one pass over it). Each becomes a PaymentEvent (the amount in major units of its payer
account's asset); the feature store computes all their features at once, per tenant; then one
`policy.decide` call per tenant (usually one a batch) decides them with that tenant's models.
Every decision rides on its GateDecision (`detail`, a Scored) to the risk sink, which records
it in the posting transaction; the decisions of blocked payments, which post nothing, are
recorded here in a short write of their own.

When scoring fails (an exception here, or the budget STRONGROOM_RISK_BUDGET_MS passed, which
the GateRunner enforces), STRONGROOM_RISK_FAIL says what happens, never silently (a WARNING
log, and `failures` counted by outcome for the metrics): `closed` blocks the payments
(`risk_unavailable`; past the budget the runner blocks the batch with `gate_unavailable`),
`open` lets them through, `review` holds them for review.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from strongroom.core import clock
from strongroom.core.errors import ErrorCode
from strongroom.core.readonce import ReadOnce
from strongroom.ledger.model import Action, GateDecision, NewTransfer, Verdict
from strongroom.risk import store
from strongroom.risk.errors import RISK_BLOCKED, RISK_GATE_ERRORS, RISK_REVIEW, RISK_UNAVAILABLE
from strongroom.risk.model import (
    Contribution,
    Explain,
    PaymentEvent,
    Policy,
    Reason,
    RiskDecision,
)
from strongroom.risk.payments import Hasher, event_of, keyed, payer

_log = logging.getLogger(__name__)

GATE_NAME: Final = "risk"
ACCOUNTS_CACHED_MAX: Final = 65_536  # payer accounts whose tenant and scale are kept
SCORING_FAILED: Final = "scoring_failed"


class FailPolicy(StrEnum):
    """STRONGROOM_RISK_FAIL: what a payment gets when it cannot be scored."""

    CLOSED = "closed"  # blocked (risk_unavailable)
    OPEN = "open"  # allowed, with a WARNING and a metric
    REVIEW = "review"  # held for review


@dataclass(frozen=True, slots=True)
class Scored:
    """The risk gate's detail on a GateDecision: the decision and whose it is."""

    tenant_id: str
    decision: RiskDecision
    # When the payment's features were computed (the gate's clock): its risk event's time, so
    # that a replay of the recorded events computes the same features (risk/history.py).
    at_us: int | None = None
    # The payment's (payee, device, ip) keyed hashes as the gate computed them, for the risk
    # sink to store without hashing them again; None: the sink computes them.
    keyed: tuple[str | None, ...] | None = None
    # Explains a review or block when its answer is built (the gate decides without tree SHAP:
    # at 2-5 ms a payment it would hold the batch, and a burst of reviews would run the gate
    # past its budget); None: the answer shows what the decision carries.
    explain: Explain | None = field(default=None, compare=False, repr=False)
    # The paying customer's id (no personal data): the subject of a review's case and report.
    customer_id: str | None = None
    # The scale of the payer account's asset, as the gate read it (the risk sink's amount in
    # major units); None: the sink reads it.
    scale: int | None = None
    answer_key = "risk"  # ledger.pipeline.DecisionDetail

    def answer(self) -> dict[str, object]:
        """The held payment's `risk` object, its explanation computed now (off the posting
        path: the API awaits this in its thread pool after the commit)."""
        return risk_answer(self.decision, self.contributions())

    def contributions(self) -> tuple[Contribution, ...]:
        """The decision's contributions: those it carries, else those its model computes now
        for a review or block (none for an allow, or when that model is nowhere any more)."""
        d = self.decision
        if d.contributions or d.verdict is Verdict.ALLOW:
            return d.contributions
        # The transfer has committed: its answer stands without one if explaining fails.
        return explained(self.explain, self.tenant_id, d.model_version, d.features) or ()

    def to_dict(self) -> dict[str, object]:
        """What a case keeps of the decision (cases.model.detail_json): the tenant and the
        decision's fields as dataclasses.asdict gives them, built directly (asdict deep-copies
        every feature: most of a held payment's cost in the case sink); no keyed hashes."""
        d = self.decision
        return {
            "tenant_id": self.tenant_id,
            **({"subject": f"customer:{self.customer_id}"} if self.customer_id else {}),
            "decision": {
                "verdict": d.verdict,
                "score": d.score,
                "reasons": [{"code": r.code, "text": r.text} for r in d.reasons],
                "model_version": d.model_version,
                "rules_version": d.rules_version,
                "features": dict(d.features),
                "contributions": contributions_json(d.contributions),
                "shadow_score": d.shadow_score,
                "shadow_version": d.shadow_version,
            },
        }

    def reason_codes(self) -> list[str]:
        return [r.code for r in self.decision.reasons]


class Features(Protocol):
    """risk.featurestore.FeatureStore."""

    def features(
        self, tenant_id: str, events: Sequence[PaymentEvent]
    ) -> list[dict[str, float]]: ...


# account ids -> {account id: its ledger's tenant, its asset's scale, its ledger}, for those
# that exist.
AccountLookup = Callable[[Sequence[str]], Mapping[str, store.PayerAccount]]
# The decisions of blocked payments, written in a transaction of their own.
RecordBlocked = Callable[[Sequence[store.DecisionRow]], None]


def decision_row(
    transfer_id: str, scored: Scored, now_us: int, tenant_id: str | None = None
) -> store.DecisionRow:
    """The row recording `scored`'s decision, under `tenant_id` (the payer's tenant as the
    ledger knows it) when given, else the one the gate scored for."""
    d = scored.decision
    return store.DecisionRow(
        transfer_id=transfer_id,
        tenant_id=scored.tenant_id if tenant_id is None else tenant_id,
        verdict=d.verdict.value,
        score=d.score,
        reasons=[{"code": r.code, "text": r.text} for r in d.reasons],
        model_version=d.model_version,
        rules_version=d.rules_version,
        features=dict(d.features),
        contributions=contributions_json(d.contributions) if d.contributions else None,
        shadow_score=d.shadow_score,
        shadow_version=d.shadow_version,
        created_at=now_us,
    )


class OverBudgetError(RuntimeError):
    """The gate's own budget passed in the middle of a batch."""


class RiskGate:
    name: str = GATE_NAME
    errors: Sequence[ErrorCode] = RISK_GATE_ERRORS

    def __init__(
        self,
        policy: Policy | Callable[[str], Policy],
        features: Features,
        accounts: AccountLookup,
        hasher: Hasher,
        *,
        fail: FailPolicy = FailPolicy.CLOSED,
        budget_ms: int = 250,
        record_blocked: RecordBlocked | None = None,
        now_us: Callable[[], int] = clock.now_us,
        on_unscored: Callable[[str, int], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        explain: Explain | None = None,
    ) -> None:
        assert budget_ms > 0
        # One policy for every tenant, or each tenant's own (risk.policies.TenantPolicies:
        # the tenant's live and shadow models).
        self.policy_for: Callable[[str], Policy] = (
            policy if callable(policy) else (lambda _tenant_id: policy)
        )
        self.features = features
        self.accounts = accounts
        self.hasher = hasher
        self.fail = fail
        self.budget_ms = budget_ms
        # GateRunner: past the budget, allow (open), hold (review) or block (closed).
        self.fail_open = fail is FailPolicy.OPEN
        self.fail_verdict = Verdict.REVIEW if fail is FailPolicy.REVIEW else Verdict.BLOCK
        self.record_blocked = record_blocked
        self.now_us = now_us
        self.on_unscored = on_unscored
        self.monotonic = monotonic
        # A review's or block's explanation, computed when its answer is read (Scored.answer):
        # the gate decides without one.
        self.explain = explain
        # Blocked decisions not recorded because the gate ran past its budget (the runner had
        # dropped its answer and answered gate_unavailable or the fail policy's verdict).
        self.unrecorded = 0
        # account -> its tenant, ledger and scale: they never change.
        self._known: ReadOnce[store.PayerAccount] = ReadOnce(ACCOUNTS_CACHED_MAX)
        # Payments that could not be scored, by what they got (closed, open, review).
        self.failures: dict[str, int] = {p.value: 0 for p in FailPolicy}

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        del actor  # risk is the payment's, whoever asked
        out: list[GateDecision | None] = [None] * len(batch)
        wanted = [
            i for i, t in enumerate(batch) if t.payment is not None and t.action is Action.TRANSFER
        ]
        if not wanted:
            return out
        started_s = self.monotonic()
        try:
            self._decide(batch, wanted, out, started_s)
        except Exception as exc:
            self._failed(batch, wanted, out, exc, started_s)
            return out
        if self.monotonic() - started_s > self.budget_ms / 1000:
            # Finished, but past the budget: the runner has dropped these answers and applied
            # the fail policy, so these payments were not scored either: counted as such.
            self.failures[self.fail.value] += len(wanted)
            if self.on_unscored is not None:
                self.on_unscored(self.fail.value, len(wanted))
            _log.warning(
                "risk gate: scored %d payments past its budget of %d ms; STRONGROOM_RISK_FAIL=%s"
                " applied",
                len(wanted),
                self.budget_ms,
                self.fail.value,
            )
        return out

    def _in_budget(self, started_s: float) -> None:
        """Past its budget the runner has answered without this call: the work left is
        abandoned between its steps (an exception, counted as a failure), rather than holding
        a worker of the shared gate pool for nothing."""
        if self.monotonic() - started_s > self.budget_ms / 1000:
            raise OverBudgetError(f"over the budget of {self.budget_ms} ms")

    def _payers(self, account_ids: Sequence[str]) -> dict[str, store.PayerAccount]:
        return self._known.get(account_ids, self.accounts)

    def _decide(
        self,
        batch: Sequence[NewTransfer],
        wanted: list[int],
        out: list[GateDecision | None],
        started_s: float,
    ) -> None:
        now_us = self.now_us()
        payers = {i: payer(batch[i]) for i in wanted}
        known = self._payers([a for a, _ in payers.values() if a is not None])
        by_tenant: dict[str, list[tuple[int, PaymentEvent]]] = {}
        hashed: dict[int, tuple[str | None, ...]] = {}
        scales: dict[int, int] = {}
        for i in wanted:
            account_id, amount = payers[i]
            found = known.get(account_id) if account_id is not None else None
            t = batch[i]
            if found is None or found.ledger_id != t.ledger_id:
                # The engine refuses it (account_not_found): nothing to score. Another ledger's
                # account is never scored under that ledger's tenant (its policy, its answer).
                continue
            tenant_id, scale = found.tenant_id, found.scale
            p = t.payment
            assert p is not None
            fields = keyed(p, tenant_id, self.hasher)
            hashed[i] = fields
            scales[i] = scale
            event = event_of(t.id, now_us, amount, scale, p.customer_id, fields, p.channel)
            by_tenant.setdefault(tenant_id, []).append((i, event))
        order: list[tuple[int, str]] = []
        rows: list[dict[str, float]] = []
        decisions: list[RiskDecision] = []
        for tenant_id, items in sorted(by_tenant.items()):
            self._in_budget(started_s)
            mine = self.features.features(tenant_id, [e for _, e in items])
            self._in_budget(started_s)
            # One call for the tenant's part, explanations left to when they are read.
            decided = self.policy_for(tenant_id).decide(mine, explain=self.explain is None)
            if len(decided) != len(mine):
                raise RuntimeError(f"the policy answered {len(decided)} decisions for {len(mine)}")
            rows.extend(mine)
            decisions.extend(decided)
            order.extend((i, tenant_id) for i, _ in items)
        if not rows:
            return
        blocked: list[store.DecisionRow] = []
        for (i, tenant_id), row, decision in zip(order, rows, decisions, strict=True):
            if not decision.features:
                decision = _with_features(decision, row)
            payment = batch[i].payment
            scored = Scored(
                tenant_id,
                decision,
                now_us,
                hashed[i],
                self.explain,
                customer_id=payment.customer_id if payment is not None else None,
                scale=scales[i],
            )
            out[i] = _gate_decision(scored)
            if decision.verdict is Verdict.BLOCK:
                blocked.append(decision_row(batch[i].id, scored, now_us))
        self._record(blocked, started_s)

    def _failed(
        self,
        batch: Sequence[NewTransfer],
        wanted: list[int],
        out: list[GateDecision | None],
        exc: Exception,
        started_s: float,
    ) -> None:
        self.failures[self.fail.value] += len(wanted)
        if self.on_unscored is not None:
            self.on_unscored(self.fail.value, len(wanted))
        _log.warning(
            "risk gate: scoring failed (%s) for %d payments; STRONGROOM_RISK_FAIL=%s",
            type(exc).__name__,
            len(wanted),
            self.fail.value,
        )
        if self.fail is FailPolicy.OPEN:
            return
        verdict = Verdict.BLOCK if self.fail is FailPolicy.CLOSED else Verdict.REVIEW
        decision = RiskDecision(
            verdict=verdict,
            score=None,
            reasons=(Reason(SCORING_FAILED, "the payment could not be scored"),),
            model_version=None,
            rules_version=None,
        )
        now_us = self.now_us()
        blocked = []
        for i in wanted:
            p = batch[i].payment
            assert p is not None
            # The tenant is unknown when the lookup is what failed: the decision is answered
            # and audited with the transfer, and recorded only where the tenant is known.
            found = self._known.peek(payer(batch[i])[0] or "")
            if found is not None and found.ledger_id != batch[i].ledger_id:
                found = None  # another ledger's account: not that tenant's to record
            scored = Scored(found.tenant_id if found else "", decision, customer_id=p.customer_id)
            code = RISK_UNAVAILABLE
            out[i] = GateDecision(GATE_NAME, verdict, code, detail=scored)
            if verdict is Verdict.BLOCK and found is not None:
                blocked.append(decision_row(batch[i].id, scored, now_us))
        self._record(blocked, started_s)

    def _record(self, blocked: list[store.DecisionRow], started_s: float) -> None:
        if not blocked or self.record_blocked is None:
            return
        if self.monotonic() - started_s > self.budget_ms / 1000:
            # Past the budget the runner (which started its clock before this call began) has
            # dropped this answer: the payments got gate_unavailable or the fail policy's
            # verdict, not these decisions. Recorded, they would contradict the answer given,
            # and a refused batch of 8,190 payments would write 8,190 rows for nothing.
            self.unrecorded += len(blocked)
            _log.warning(
                "risk gate: over its budget of %d ms; %d blocked decisions not recorded",
                self.budget_ms,
                len(blocked),
            )
            return
        try:
            self.record_blocked(blocked)
        except Exception as exc:  # the refusal stands; only its record is lost: say so
            _log.warning(
                "risk gate: could not record %d blocked decisions (%s)",
                len(blocked),
                type(exc).__name__,
            )


def _with_features(decision: RiskDecision, row: Mapping[str, float]) -> RiskDecision:
    return RiskDecision(
        verdict=decision.verdict,
        score=decision.score,
        reasons=decision.reasons,
        model_version=decision.model_version,
        rules_version=decision.rules_version,
        features=dict(row),
        contributions=decision.contributions,
        shadow_score=decision.shadow_score,
        shadow_version=decision.shadow_version,
    )


def _gate_decision(scored: Scored) -> GateDecision:
    verdict = scored.decision.verdict
    if verdict is Verdict.BLOCK:
        return GateDecision(GATE_NAME, verdict, RISK_BLOCKED, detail=scored)
    if verdict is Verdict.REVIEW:
        return GateDecision(GATE_NAME, verdict, RISK_REVIEW, detail=scored)
    return GateDecision(GATE_NAME, Verdict.ALLOW, None, detail=scored)


def scored_of(decisions: Sequence[GateDecision] | None) -> Scored | None:
    """The risk gate's detail among a transfer's gate decisions, if any."""
    for d in decisions or ():
        if d.gate == GATE_NAME and isinstance(d.detail, Scored):
            return d.detail
    return None


def risk_answer(
    d: RiskDecision, contributions: Sequence[Contribution] | None = None
) -> dict[str, object]:
    """The `risk` object of a held transfer's answer (risk.schemas.RiskOut); `contributions`
    in place of the decision's own, when computed apart."""
    return {
        "verdict": d.verdict.value,
        "score": d.score,
        "reasons": [{"code": r.code, "text": r.text} for r in d.reasons],
        "model_version": d.model_version,
        "rules_version": d.rules_version,
        "contributions": contributions_json(
            d.contributions if contributions is None else contributions
        ),
    }


def contributions_json(contributions: Sequence[Contribution]) -> list[dict[str, object]]:
    """Contributions as the API answers and the store keeps them."""
    return [
        {"feature": c.feature, "value": c.value, "contribution": c.contribution}
        for c in contributions
    ]


def explained(
    explain: Explain | None, tenant_id: str, version: object, features: object
) -> tuple[Contribution, ...] | None:
    """The contributions of a decision's `features` under the tenant's model `version`,
    computed now (by the decision's answer, its case or its read); None when there is no
    explainer, nothing to explain (a row edited by hand included), or explaining failed (a
    WARNING naming the exception's type: a read stands without an explanation)."""
    if explain is None or not isinstance(version, str):
        return None
    if not isinstance(features, Mapping) or not features:
        return None
    try:
        return tuple(explain(tenant_id, version, features))
    except Exception as exc:
        _log.warning(
            "risk: could not explain a decision of model %s (%s)", version, type(exc).__name__
        )
        return None
