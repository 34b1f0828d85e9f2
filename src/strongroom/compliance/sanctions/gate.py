"""The payee gate of the transfer pipeline (ledger.pipeline.Gate; ../shared/DESIGN.md): a
payment whose payer (its customer) is a confirmed match is blocked, whatever its payee (an
account opened after the freeze pays nobody either); the payee of every outbound payment
(Payment.payee naming a counterparty or a customer) is looked up in its stored screening, and
a `payee_name` (a payee Strongroom does not know) is screened in memory, each distinct name
once a batch, never stored: a confirmed match is blocked (`sanctions_blocked`), a probable one
(an undismissed score, or the name's best score, at or above the threshold) is held for review
(a pending transfer and a `sanctions_review` case), anything else passes. It reads state a
moment stale, as every gate may (a screening committed with its subject). Installed by
runtime.installed_gates when STRONGROOM_SCREENING is on, with a time budget and a fail policy
(STRONGROOM_SCREENING_FAIL): a lookup that fails (or no list loaded for a payee name) blocks
(`sanctions_unavailable`), holds or lets through, never silently (a WARNING log, and `failures`
counted by outcome for the metrics).

Screening payee names is the gate's one unbounded cost (a few ms for a 500-character name), and
the GateRunner only stops waiting at the budget: the worker of the shared gate pool would run
on. So the gate screens at most SCREENING_PAYEE_NAMES_PER_BATCH_MAX distinct names a batch and
looks at its own clock before each: the payments whose names were not screened, past either
bound, get the fail policy's answer (as a failed lookup's), counted and logged."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Final

from strongroom.compliance.sanctions.errors import (
    SANCTIONS_BLOCKED,
    SANCTIONS_GATE_ERRORS,
    SANCTIONS_UNAVAILABLE,
)
from strongroom.compliance.sanctions.service import CONFIRMED, PROBABLE
from strongroom.core.errors import ErrorCode
from strongroom.core.limits import SCREENING_PAYEE_NAMES_PER_BATCH_MAX
from strongroom.ledger.model import Action, Direction, GateDecision, NewTransfer, Verdict

_log = logging.getLogger(__name__)

GATE_NAME: Final = "sanctions"
SANCTIONS_REVIEW: Final = "sanctions_review"  # why a payment is held: not an error

# The tenant of each of the payers' accounts (unknown ones left out: the engine refuses them).
AccountTenants = Callable[[Sequence[str]], dict[str, str]]
# The stored screening status of a tenant's subjects (SanctionsService.statuses).
Statuses = Callable[[str, Sequence[str]], dict[str, str]]
# Whether a name is a probable match (its best score at least the threshold), screened in
# memory: a payment's `payee_name` (SanctionsService.is_hit).
ScreenName = Callable[[str], bool]
# Told of payments the gate could not screen: (what they got: closed, open or review, count).
OnUnscreened = Callable[[str, int], None]


def payee_subject(payee: str | None) -> str | None:
    """The screened subject a payee names: a counterparty's or a customer's id."""
    if payee is None:
        return None
    if payee.startswith("cpty_"):
        return f"counterparty:{payee}"
    if payee.startswith("cus_"):
        return f"customer:{payee}"
    return None  # a terminal or another party Strongroom does not screen


class SanctionsGate:
    name: str = GATE_NAME
    errors: Sequence[ErrorCode] = SANCTIONS_GATE_ERRORS

    def __init__(
        self,
        tenants: AccountTenants,
        statuses: Statuses,
        *,
        screen_name: ScreenName | None = None,
        fail: str = "closed",
        budget_ms: int = 250,
        names_max: int = SCREENING_PAYEE_NAMES_PER_BATCH_MAX,
        on_unscreened: OnUnscreened | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        assert fail in ("closed", "open", "review")
        assert budget_ms > 0
        assert 0 < names_max <= SCREENING_PAYEE_NAMES_PER_BATCH_MAX
        self.tenants = tenants
        self.statuses = statuses
        self.screen_name = screen_name
        self.fail = fail
        self.budget_ms = budget_ms
        self.names_max = names_max
        self.on_unscreened = on_unscreened
        self.monotonic = monotonic
        # GateRunner: past the budget, allow (open), hold (review) or block (closed).
        self.fail_open = fail == "open"
        self.fail_verdict = Verdict.REVIEW if fail == "review" else Verdict.BLOCK
        # Payments that could not be screened, by what they got (closed, open, review).
        self.failures: dict[str, int] = {"closed": 0, "open": 0, "review": 0}

    def _unscreened(self, count: int) -> None:
        self.failures[self.fail] += count
        if self.on_unscreened is not None:
            self.on_unscreened(self.fail, count)

    def decide(
        self, batch: Sequence[NewTransfer], actor: str | None
    ) -> Sequence[GateDecision | None]:
        del actor  # the payee's screening decides, whoever asked
        started_s = self.monotonic()
        deadline_s = started_s + self.budget_ms / 1000
        out: list[GateDecision | None] = [None] * len(batch)
        # batch index -> (payer account, payee subject or None, payee name or None, payer
        # subject): a payer whose match was confirmed pays nobody, whatever the payee.
        wanted: dict[int, tuple[str, str | None, str | None, str]] = {}
        for i, t in enumerate(batch):
            if t.payment is None or t.action is not Action.TRANSFER:
                continue
            subject = payee_subject(t.payment.payee)
            name = t.payment.payee_name if self.screen_name is not None else None
            account = _payer(t)
            if account is not None:
                wanted[i] = (account, subject, name, f"customer:{t.payment.customer_id}")
        if not wanted:
            return out
        try:
            tenant_of = self.tenants(sorted({w[0] for w in wanted.values()}))
            by_tenant: dict[str, set[str]] = {}
            for account, subject, _, payer in wanted.values():
                if account in tenant_of:
                    subjects = by_tenant.setdefault(tenant_of[account], set())
                    subjects.add(payer)
                    if subject is not None:
                        subjects.add(subject)
            found = {
                tenant: self.statuses(tenant, sorted(subjects))
                for tenant, subjects in by_tenant.items()
            }
            hits: dict[int, bool] = {}
            unscreened: set[int] = set()  # past the budget or the bound on names
            screened: dict[str, bool] = {}  # each distinct name once per batch
            for i, (account, _, name, _) in wanted.items():
                if name is not None and account in tenant_of:
                    assert self.screen_name is not None
                    if name not in screened:
                        if len(screened) >= self.names_max or self.monotonic() > deadline_s:
                            unscreened.add(i)
                            continue
                        screened[name] = self.screen_name(name)
                    hits[i] = screened[name]
        except Exception as exc:
            self._unscreened(len(wanted))
            _log.warning(
                "sanctions gate: the payees' screening could not be read (%s) for %d payments; "
                "STRONGROOM_SCREENING_FAIL=%s",
                type(exc).__name__,
                len(wanted),
                self.fail,
            )
            if self.fail == "open":
                return out
            for i in wanted:
                out[i] = GateDecision(GATE_NAME, self.fail_verdict, SANCTIONS_UNAVAILABLE)
            return out
        for i, (account, subject, _, payer) in wanted.items():
            tenant = tenant_of.get(account)
            status = None
            if tenant is not None and subject is not None:
                status = found.get(tenant, {}).get(subject)
            if tenant is not None and found.get(tenant, {}).get(payer) == CONFIRMED:
                status = CONFIRMED  # the payer itself is a confirmed match
            if status == CONFIRMED:
                out[i] = GateDecision(GATE_NAME, Verdict.BLOCK, SANCTIONS_BLOCKED)
            elif i in unscreened and self.fail != "open":
                out[i] = GateDecision(GATE_NAME, self.fail_verdict, SANCTIONS_UNAVAILABLE)
            elif status == PROBABLE or hits.get(i, False):
                out[i] = GateDecision(GATE_NAME, Verdict.REVIEW, SANCTIONS_REVIEW)
        if unscreened:
            self._unscreened(len(unscreened))
            _log.warning(
                "sanctions gate: %d payments' payee names not screened (past the budget of %d ms"
                " or the %d distinct names a batch; %d screened); STRONGROOM_SCREENING_FAIL=%s",
                len(unscreened),
                self.budget_ms,
                self.names_max,
                len(screened),
                self.fail,
            )
        return out


def _payer(t: NewTransfer) -> str | None:
    """The account a payment is paid from (its first debit leg's)."""
    if t.legs is not None:
        debits = [leg for leg in t.legs if leg.direction is Direction.DEBIT]
        return debits[0].account_id if debits else None
    return t.debit_account_id
