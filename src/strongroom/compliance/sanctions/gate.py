"""The payee gate of the transfer pipeline (ledger.pipeline.Gate; ../shared/DESIGN.md): a
payment whose payer (its customer) is a confirmed match is blocked, whatever its payee (an
account opened after the freeze pays nobody either); the payee of every outbound payment
(Payment.payee naming a counterparty or a customer) is looked up in its stored screening, and
a `payee_name` (a payee Strongroom does not know) is screened in memory, each distinct name
once a batch, never stored: a confirmed match is blocked (`sanctions_blocked`), a probable one
(an undismissed score, or the name's best score, at or above the threshold) is held for review
(a pending transfer and a `sanctions_review` case, whose detail names the matched list entry
and its score, or the payee subject, never the payee name), anything else passes. A payee name
with no letter or digit to screen is held for review too. It reads state a moment stale, as
every gate may (a screening committed with its subject), and screens names with the newest
screener built (the previous lists' while a new version's builds: it never waits for a build).
Installed by runtime.installed_gates when STRONGROOM_SCREENING is on, with a time budget and a
fail policy (STRONGROOM_SCREENING_FAIL): a lookup that fails, or a payee name with no screener
to screen it (no list loaded, or this process's first screener still building), blocks
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
from typing import TYPE_CHECKING, Final

from strongroom.compliance.sanctions.errors import (
    SANCTIONS_BLOCKED,
    SANCTIONS_GATE_ERRORS,
    SANCTIONS_UNAVAILABLE,
    InvalidName,
    ListsNotLoaded,
    ScreenerNotReady,
)
from strongroom.compliance.sanctions.model import PayeeMatch
from strongroom.compliance.sanctions.screener import ScreenerCache
from strongroom.compliance.sanctions.service import CONFIRMED, PROBABLE
from strongroom.core.errors import ErrorCode
from strongroom.core.limits import SCREENING_PAYEE_NAMES_PER_BATCH_MAX
from strongroom.core.readonce import ReadOnce
from strongroom.ledger.model import (
    Action,
    Direction,
    GateDecision,
    NewTransfer,
    Payment,
    Verdict,
)

if TYPE_CHECKING:
    from strongroom.cases.model import Case
    from strongroom.db.uow import UnitOfWork

_log = logging.getLogger(__name__)

GATE_NAME: Final = "sanctions"
SANCTIONS_REVIEW: Final = "sanctions_review"  # why a payment is held: not an error

# The tenant and the ledger of each of the payers' accounts (unknown ones left out: the engine
# refuses them, as it refuses another ledger's account: neither is screened).
AccountTenants = Callable[[Sequence[str]], dict[str, tuple[str, str]]]
# The stored screening status of a tenant's subjects (SanctionsService.statuses).
Statuses = Callable[[str, Sequence[str]], dict[str, str]]
# A name's best match if it is a probable one (its score at least the threshold), screened in
# memory: a payment's `payee_name` (SanctionsService.payee_match). A name with no letter or
# digit raises InvalidName; a screener not built yet, ScreenerNotReady (never waited for).
ScreenName = Callable[[str], PayeeMatch | None]
# Told of payments the gate could not screen: (what they got: closed, open or review, count).
OnUnscreened = Callable[[str, int], None]
# The same statuses read inside the caller's transaction (SanctionsService.statuses_in): the
# recheck's.
StatusesIn = Callable[["UnitOfWork", str, Sequence[str]], dict[str, str]]
# The open cases of these transfers, read inside the caller's transaction (the case queue's).
OpenCasesIn = Callable[["UnitOfWork", Sequence[str]], Sequence["Case"]]
# The payer and payee subjects stored of these transfers that were payments created pending
# (sink.PaymentSubjectsSink): transfer id -> (tenant, subjects).
PendingSubjectsIn = Callable[["UnitOfWork", Sequence[str]], dict[str, tuple[str, list[str]]]]
# Account -> (tenant, ledger) pairs the gate keeps once read: an account's never change.
TENANTS_CACHED_MAX: Final = 100_000


def payment_subjects(payment: Payment) -> tuple[str, str | None]:
    """The screened subjects of a payment: its payer's (`customer:<id>`) and its payee's."""
    return f"customer:{payment.customer_id}", payee_subject(payment.payee)


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
    # It decides only payments (ledger.pipeline: a batch without one is not asked); its
    # recheck, about a batch with a payment or a post.
    payments_only: bool = True

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
        screeners: ScreenerCache | None = None,
        statuses_in: StatusesIn | None = None,
        open_cases_in: OpenCasesIn | None = None,
        pending_subjects_in: PendingSubjectsIn | None = None,
    ) -> None:
        """`screeners`: the cache behind `screen_name`, for the composition root to share
        and warm (wiring.gate_screeners); the gate itself never reads it. `statuses_in` and
        `open_cases_in` and `pending_subjects_in`: what `recheck` reads inside the posting
        transaction (without `statuses_in`, nothing is rechecked)."""
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
        self.screeners = screeners
        self.statuses_in = statuses_in
        self.open_cases_in = open_cases_in
        self.pending_subjects_in = pending_subjects_in
        # Payer accounts' (tenant, ledger), read by decide, again by recheck: they never change.
        self._tenants: ReadOnce[tuple[str, str]] = ReadOnce(TENANTS_CACHED_MAX)
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
            payer, subject = payment_subjects(t.payment)
            name = t.payment.payee_name if self.screen_name is not None else None
            account = _payer(t)
            if account is not None:
                wanted[i] = (account, subject, name, payer)
        if not wanted:
            return out
        try:
            accounts = self._payer_tenants(sorted({w[0] for w in wanted.values()}))
            # Each payment's tenant: its payer account's, when that account is of the
            # transfer's ledger (another ledger's is the engine's to refuse, never screened
            # under that ledger's tenant: its statuses are no business of this payment's).
            tenant_of: dict[int, str] = {}
            for i, (account, _, _, _) in wanted.items():
                payer_account = accounts.get(account)
                if payer_account is not None and payer_account[1] == batch[i].ledger_id:
                    tenant_of[i] = payer_account[0]
            by_tenant: dict[str, set[str]] = {}
            for i, (_, subject, _, payer) in wanted.items():
                if i in tenant_of:
                    subjects = by_tenant.setdefault(tenant_of[i], set())
                    subjects.add(payer)
                    if subject is not None:
                        subjects.add(subject)
            found = {
                tenant: self.statuses(tenant, sorted(subjects))
                for tenant, subjects in by_tenant.items()
            }
            # The evidence of each payee name held for review: its best match, or why it
            # could not be screened (no letter or digit). A name that is clear is not here.
            hits: dict[int, dict[str, object]] = {}
            # Past the budget or the bound on names, or no screener to screen them with (no
            # list loaded, or this process's first one still building): the fail policy's.
            unscreened: set[int] = set()
            screened: dict[str, dict[str, object] | None] = {}  # each distinct name once
            no_screener: str | None = None  # why there is none: the exception's name
            for i, (_, _, name, _) in wanted.items():
                if name is not None and i in tenant_of:
                    if name not in screened:
                        if (
                            no_screener is not None
                            or len(screened) >= self.names_max
                            or self.monotonic() > deadline_s
                        ):
                            unscreened.add(i)
                            continue
                        try:
                            screened[name] = self._screen(name)
                        except (ScreenerNotReady, ListsNotLoaded) as exc:
                            no_screener = type(exc).__name__
                            unscreened.add(i)
                            continue
                    evidence = screened[name]
                    if evidence is not None:
                        hits[i] = evidence
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
        for i, (_, subject, _, payer) in wanted.items():
            tenant = tenant_of.get(i)
            status = None
            if tenant is not None and subject is not None:
                status = found.get(tenant, {}).get(subject)
            if tenant is not None and found.get(tenant, {}).get(payer) == CONFIRMED:
                status = CONFIRMED  # the payer itself is a confirmed match
            if status == CONFIRMED:
                out[i] = GateDecision(GATE_NAME, Verdict.BLOCK, SANCTIONS_BLOCKED)
            elif i in unscreened and self.fail != "open":
                out[i] = GateDecision(GATE_NAME, self.fail_verdict, SANCTIONS_UNAVAILABLE)
            elif i in hits:
                # The case's evidence: the list entry matched (public list data) and its
                # score, never the payee name the payer typed.
                out[i] = GateDecision(
                    GATE_NAME, Verdict.REVIEW, SANCTIONS_REVIEW, detail={"payee_name": hits[i]}
                )
            elif status == PROBABLE:
                assert subject is not None
                out[i] = GateDecision(
                    GATE_NAME, Verdict.REVIEW, SANCTIONS_REVIEW,
                    detail={"payee": {"subject": subject, "status": PROBABLE}},
                )  # fmt: skip
        if unscreened:
            self._unscreened(len(unscreened))
            why = (
                f"no screener: {no_screener}"
                if no_screener is not None
                else f"past the budget of {self.budget_ms} ms or the {self.names_max} distinct "
                "names a batch"
            )
            _log.warning(
                "sanctions gate: %d payments' payee names not screened (%s; %d screened); "
                "STRONGROOM_SCREENING_FAIL=%s",
                len(unscreened),
                why,
                len(screened),
                self.fail,
            )
        return out

    def _payer_tenants(self, account_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """`tenants`, each account read once: an account's tenant and ledger never change."""
        return self._tenants.get(account_ids, self.tenants)

    def recheck(self, uow: UnitOfWork, batch: Sequence[NewTransfer]) -> list[GateDecision | None]:
        """Inside the posting transaction (ledger.pipeline.RecheckedGate), the statuses that
        block, read again (SanctionsService.statuses_in: a confirmation committed before the
        read is seen, one after it is ordered after the payment): a payment whose payer or
        payee subject is a confirmed match now is blocked (`sanctions_blocked`), though decide
        read it clear a moment before; and a post of a payment created pending (its payer and
        payee subjects stored with it, sink.PaymentSubjectsSink, or the payee its open
        `sanctions_review` case names) whose payer or payee has been confirmed since, a
        client's two-phase post or a case's approval, is blocked too: an analyst declines it.
        Only blocks are answered here; a payee name is not screened again."""
        out: list[GateDecision | None] = [None] * len(batch)
        if self.statuses_in is None:
            return out
        # batch index -> (payer account or None, the subjects whose confirmation blocks it)
        wanted: dict[int, tuple[str | None, list[str]]] = {}
        posts: dict[int, str] = {}
        for i, t in enumerate(batch):
            if t.payment is not None and t.action is Action.TRANSFER:
                payer, payee = payment_subjects(t.payment)
                wanted[i] = (_payer(t), [payer] if payee is None else [payer, payee])
            elif t.action is Action.POST and t.target_id is not None:
                posts[i] = t.target_id
        tenant_of: dict[int, str] = {}
        if wanted:
            accounts = self._payer_tenants(sorted({a for a, _ in wanted.values() if a is not None}))
            for i, (account, _) in wanted.items():
                found = accounts.get(account) if account is not None else None
                if found is not None and found[1] == batch[i].ledger_id:
                    tenant_of[i] = found[0]
        if posts:
            targets = sorted(set(posts.values()))
            # transfer -> (tenant, subjects): those stored with the pending payment, and the
            # payee a sanctions case names (a payment held before the subjects were stored).
            held: dict[str, tuple[str, list[str]]] = {}
            if self.pending_subjects_in is not None:
                held.update(self.pending_subjects_in(uow, targets))
            if self.open_cases_in is not None:
                for case in self.open_cases_in(uow, targets):
                    payee = case.detail_dict().get("payee") if case.gate == GATE_NAME else None
                    subject = payee.get("subject") if isinstance(payee, dict) else None
                    if isinstance(subject, str) and case.transfer_id is not None:
                        tenant, subjects = held.get(case.transfer_id, (case.tenant_id, []))
                        if tenant == case.tenant_id:
                            held[case.transfer_id] = (tenant, [*subjects, subject])
            for i, target in posts.items():
                if target in held:
                    tenant_of[i] = held[target][0]
                    wanted[i] = (None, held[target][1])
        by_tenant: dict[str, set[str]] = {}
        for i, tenant in tenant_of.items():
            by_tenant.setdefault(tenant, set()).update(wanted[i][1])
        statuses = {
            tenant: self.statuses_in(uow, tenant, sorted(subjects))
            for tenant, subjects in sorted(by_tenant.items())
        }
        block = GateDecision(GATE_NAME, Verdict.BLOCK, SANCTIONS_BLOCKED)
        for i, tenant in tenant_of.items():
            if any(statuses[tenant].get(s) == CONFIRMED for s in wanted[i][1]):
                out[i] = block
        return out

    def _screen(self, name: str) -> dict[str, object] | None:
        """A payee name's evidence if it holds the payment: its best match at or above the
        threshold, or that it has nothing to screen; None when it is clear."""
        assert self.screen_name is not None
        try:
            found = self.screen_name(name)
        except InvalidName:
            return {"unscreenable": True}
        return None if found is None else found.to_dict()


def _payer(t: NewTransfer) -> str | None:
    """The account a payment is paid from (its first debit leg's)."""
    if t.legs is not None:
        debits = [leg for leg in t.legs if leg.direction is Direction.DEBIT]
        return debits[0].account_id if debits else None
    return t.debit_account_id
