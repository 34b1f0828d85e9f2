"""AML typology detectors over a stream of posted transfers (docs/aml.md). Pure: no database,
no third-party import (an import-linter contract holds it).

Each detector is fed transfer by transfer (`Detectors.feed`), in the order they posted, and
answers the hits that transfer completes. The batch job over history feeds the same object
the same stream (`Detectors.run`): one code path, so a scan and the live sink agree.

A customer's accounts are also looked at together (`AccountInfo.customer`): the typologies
that splitting money over several accounts of one customer would evade (CUSTOMER_TYPOLOGIES:
structuring, rapid movement, fan-in, fan-out, high-risk jurisdictions, round-tripping) are
judged on the customer's view as well, the movements of all of its monitored accounts with
anyone but itself (a transfer between two of its own accounts is not in the view). A hit of
the view counts only when it spans two accounts or more (else the account's own hit says the
same); it then replaces the accounts' own hits of that typology in that feed, and every hit of
these typologies on a customer's account names the customer (`Hit.customer`), so the alerts
are deduped per customer: one alert for the activity, never one per account plus one for the
customer. Large transactions (one movement) and dormant reactivation (an account's own
silence) stay per account.

State is bounded: per account a deque of its recent movements (at most
`AmlConfig.events_per_account_max`, none older than the longest window), a bounded set of
provenance marks for round-tripping, and the time it was last seen; at most
`AmlConfig.accounts_max` accounts are kept, the least recently active evicted first (an
evicted account's history starts again: a detector may then miss what spans the eviction).
Per customer the same (`events_per_customer_max`, `customers_max`), with the accounts seen in
its view (at most CUSTOMER_ACCOUNTS_MAX, the least recently active dropped first); a view is
judged only while two of its accounts or more moved within the longest window, so a customer
with one account costs one more deque push per movement.

A full deque (account or view) is compacted rather than cut at its oldest end: its movements
below `AmlConfig.kept_amount_min` (which no typology judges one by one) are folded into tallies
that keep their sums, then the oldest are dropped until it holds 3/4 of its bound (counted in
`moves_folded` and `moves_dropped`), so a flood of tiny movements cannot push out the ones that
make a pattern (`Detectors._compact`).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

US_PER_DAY: Final = 86_400 * 1_000_000
US_PER_HOUR: Final = 3_600 * 1_000_000
EVIDENCE_TRANSFERS_MAX: Final = 20  # transfer ids named in one hit's evidence
EVIDENCE_ACCOUNTS_MAX: Final = 20  # account ids named in a customer hit's evidence
CUSTOMER_ACCOUNTS_MAX: Final = 64  # accounts a customer's view remembers (the most recent)


class Typology(StrEnum):
    STRUCTURING = "structuring"
    RAPID_MOVEMENT = "rapid_movement"
    FAN_IN = "fan_in"
    FAN_OUT = "fan_out"
    ROUND_TRIPPING = "round_tripping"
    DORMANT_REACTIVATION = "dormant_reactivation"
    HIGH_RISK_JURISDICTION = "high_risk_jurisdiction"
    LARGE_TRANSACTION = "large_transaction"


# Judged per customer as well as per account: what splitting over a customer's accounts evades
# (a count, a total or a number of counterparties under its threshold in each account; money
# back at another account of its origin's owner). Not large transactions (one movement: a
# split one is structuring) nor dormant reactivation (an account's own silence).
CUSTOMER_TYPOLOGIES: Final = frozenset(
    {
        Typology.STRUCTURING,
        Typology.RAPID_MOVEMENT,
        Typology.FAN_IN,
        Typology.FAN_OUT,
        Typology.HIGH_RISK_JURISDICTION,
        Typology.ROUND_TRIPPING,
    }
)


@dataclass(frozen=True, slots=True)
class Posted:
    """One posted movement of money: `amount` minor units of `asset` from `debit` to `credit`
    at `at_us` (microseconds since the epoch)."""

    id: str
    at_us: int
    debit: str
    credit: str
    amount: int
    asset: str
    ledger: str = ""


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """What the detectors know of an account besides its transfers. `monitored` False: a
    system account (a settlement, cash or fee account, a bank outside this ledger) that is
    never an alert's subject; `jurisdiction` an ISO 3166 alpha-2 code when known."""

    customer: str | None = None
    jurisdiction: str | None = None
    monitored: bool = True


NO_INFO: Final = AccountInfo()


@dataclass(frozen=True, slots=True)
class AssetLimits:
    """The amounts of one asset, in its minor units. Defaults: a currency of scale 2 with a
    reporting threshold of 10,000.00 (the US CTR's and many EU thresholds)."""

    reporting_threshold: int = 1_000_000  # structuring: deposits just below it
    large_threshold: int = 1_000_000  # a large-transaction report at or above it
    rapid_amount_min: int = 500_000  # rapid movement: at least this passed through
    fan_amount_min: int = 20_000  # fan-in/out: a counterparty counts from this amount
    dormant_amount_min: int = 300_000  # dormant reactivation: moved since it woke
    jurisdiction_amount_min: int = 100_000  # high-risk jurisdictions: moved in the window
    round_trip_amount_min: int = 100_000  # round-tripping: the least leg followed
    round_unit: int = 10_000  # fan-in/out: a "round" amount is a multiple of this (100.00)


@dataclass(frozen=True, slots=True)
class AmlConfig:
    """Every detector's parameters; amounts per asset (`limits`, else `default_limits`)."""

    default_limits: AssetLimits = AssetLimits()
    limits: Mapping[str, AssetLimits] = field(default_factory=dict)
    # Structuring: at least `structuring_count_min` deposits in [threshold x (1 - margin),
    # threshold) within the window (FATF: several deposits over a few days).
    structuring_margin_pct: int = 15
    structuring_count_min: int = 3
    structuring_window_us: int = 10 * US_PER_DAY
    # Rapid movement: money out within the window of coming in, at least ratio of it.
    rapid_window_us: int = 48 * US_PER_HOUR
    rapid_ratio_pct: int = 80
    # Fan-in / fan-out: distinct counterparties (each at least fan_amount_min) in the window.
    fan_window_us: int = 7 * US_PER_DAY
    fan_counterparties_min: int = 8
    # The weeks before the window: a counterparty seen then is not new (a landlord's tenants,
    # an employer's staff come back; a mule's senders are new), and the number seen then is
    # the account's usual number (a shop's customers are new, but as many came each week).
    fan_lookback_us: int = 28 * US_PER_DAY
    # An account whose fan hit already raised is looked at again at most this often (a shop
    # or a payroll run would otherwise rescan its week at every payment).
    fan_recheck_us: int = US_PER_HOUR
    # Round-tripping: money back at its origin within the window, after 3 to 6 hops.
    round_trip_window_us: int = 14 * US_PER_DAY
    round_trip_hops_min: int = 3
    round_trip_hops_max: int = 6
    round_trip_marks_max: int = 128  # provenance marks kept per account, the newest
    # A hop carries the money on when it moves 50% to 110% of what the last hop moved (the
    # same funds passed along, less fees), so ordinary spending does not make cycles.
    round_trip_hop_pct_min: int = 50
    round_trip_hop_pct_max: int = 110
    # Dormant reactivation: no movement for dormant_us, then amount moved within window.
    dormant_us: int = 180 * US_PER_DAY
    dormant_window_us: int = 30 * US_PER_DAY
    # High-risk jurisdictions (FATF "black" and "grey" lists change: configure them).
    high_risk_jurisdictions: frozenset[str] = frozenset({"KP", "IR", "MM"})
    jurisdiction_window_us: int = 30 * US_PER_DAY
    # Bounds of the state.
    events_per_account_max: int = 512
    accounts_max: int = 1_000_000
    events_per_customer_max: int = 1_024  # a customer's view holds all of its accounts' moves
    customers_max: int = 1_000_000
    # A full deque folds its small movements (below kept_amount_min) into tallies, one per
    # asset, direction, account and risk within this span; see Detectors._compact.
    tally_span_us: int = US_PER_HOUR

    def of(self, asset: str) -> AssetLimits:
        return self.limits.get(asset, self.default_limits)

    def kept_amount_min(self, asset: str) -> int:
        """The least amount a typology judges one movement by (a fan counterparty, a
        near-threshold deposit): a smaller one matters only in sums, so a full deque may fold
        it into a tally."""
        lim = self.of(asset)
        low = lim.reporting_threshold * (100 - self.structuring_margin_pct) // 100
        return min(lim.fan_amount_min, low)

    @property
    def window_max_us(self) -> int:
        """How far back any detector looks (what a restart replays)."""
        return max(
            self.structuring_window_us,
            self.rapid_window_us,
            self.fan_window_us + self.fan_lookback_us,
            self.round_trip_window_us,
            self.dormant_window_us,
            self.jurisdiction_window_us,
        )

    def window_of(self, typology: Typology) -> int:
        return {
            Typology.STRUCTURING: self.structuring_window_us,
            Typology.RAPID_MOVEMENT: self.rapid_window_us,
            Typology.FAN_IN: self.fan_window_us,
            Typology.FAN_OUT: self.fan_window_us,
            Typology.ROUND_TRIPPING: self.round_trip_window_us,
            Typology.DORMANT_REACTIVATION: self.dormant_window_us,
            Typology.HIGH_RISK_JURISDICTION: self.jurisdiction_window_us,
            Typology.LARGE_TRANSACTION: US_PER_DAY,
        }[typology]


@dataclass(frozen=True, slots=True)
class Hit:
    """A detector's finding: `account` showed `typology` in [window_start_us, at_us]; `score`
    ranks hits of one typology (larger: more suspicious), `amount` the money involved.

    `customer`: the account's owner, on a hit of CUSTOMER_TYPOLOGIES (the alert's dedupe is
    then the customer's). `accounts`: a customer hit's accounts (two or more; `account` is the
    one whose movement completed it); empty on an account's own hit."""

    typology: Typology
    account: str
    asset: str
    at_us: int
    window_start_us: int
    score: float
    amount: int
    transfer_ids: tuple[str, ...]
    counterparties: int = 0
    customer: str | None = None
    accounts: tuple[str, ...] = ()

    @property
    def subject(self) -> str:
        """What the alert is about: `customer:<id>` for a customer hit, else `account:<id>`."""
        if self.accounts:
            assert self.customer is not None, "a customer hit names its customer"
            return f"customer:{self.customer}"
        return f"account:{self.account}"

    @property
    def owner(self) -> str:
        """Whose activity it is, for the dedupe: the customer's id when the hit names one (a
        customer's accounts raise one alert per typology and window between them), else the
        account's."""
        return self.account if self.customer is None else self.customer

    def evidence(self) -> dict[str, object]:
        out: dict[str, object] = {
            "typology": self.typology.value,
            "asset": self.asset,
            "amount": self.amount,
            "window_start_us": self.window_start_us,
            "window_end_us": self.at_us,
            "transfer_ids": list(self.transfer_ids[:EVIDENCE_TRANSFERS_MAX]),
            "counterparties": self.counterparties,
            "score": round(self.score, 4),
        }
        if self.accounts:
            out["customer"] = self.customer
            out["accounts"] = list(self.accounts[:EVIDENCE_ACCOUNTS_MAX])
        return out


@dataclass(frozen=True, slots=True)
class _Move:
    at_us: int
    inbound: bool
    counterparty: str
    amount: int
    asset: str
    transfer_id: str
    account: str = ""  # in a customer's view: which of its accounts moved ("" in an account's)
    # A tally: small movements (below `AmlConfig.kept_amount_min`) folded together when the
    # deque was full, `amount` their sum, `at_us` the first's time, `transfer_id` the last's,
    # no counterparty; `risky`: their counterparties are in high-risk jurisdictions.
    tally: bool = False
    risky: bool = False


@dataclass(slots=True)
class _Mark:
    """Money that left `origin` at `at_us` reached this account after `hops` hops."""

    origin: str
    at_us: int
    hops: int
    amount: int  # the last hop's amount
    asset: str
    path: tuple[str, ...]  # transfer ids
    first_amount: int = 0


@dataclass(slots=True)
class _Account:
    moves: deque[_Move]
    marks: list[_Mark] = field(default_factory=list)
    last_seen_us: int | None = None
    woke_at_us: int | None = None  # when a dormant account moved again
    fan_hit_at_us: list[int | None] = field(default_factory=lambda: [None, None])  # out, in
    # A customer's view only: its accounts seen within the longest window, by when last seen
    # (least recent first).
    members: OrderedDict[str, int] | None = None

    def copy(self) -> _Account:
        """A copy to feed what may still roll back (marks are replaced, never changed in place,
        so the copy shares them)."""
        return _Account(
            deque(self.moves, maxlen=self.moves.maxlen),
            list(self.marks),
            self.last_seen_us,
            self.woke_at_us,
            list(self.fan_hit_at_us),
            None if self.members is None else OrderedDict(self.members),
        )


AccountsOf = Callable[[str], AccountInfo]


class Detectors:
    """All typologies over one stream. `info(account)` tells an account's owner, its
    jurisdiction and whether it is monitored (default: every account monitored, no owner, no
    jurisdiction)."""

    def __init__(self, config: AmlConfig | None = None, info: AccountsOf | None = None) -> None:
        self.config = config or AmlConfig()
        self.info: AccountsOf = info or (lambda _account: NO_INFO)
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._customers: OrderedDict[str, _Account] = OrderedDict()  # the customers' views
        self._window_max_us = self.config.window_max_us  # read at every push
        self.fed = 0
        self.evicted = 0
        self.moves_folded = 0  # small movements folded into tallies by a full deque
        self.moves_dropped = 0  # kept movements dropped, oldest first, by a full deque

    # -- the stream -----------------------------------------------------------------------

    def run(self, stream: Iterable[Posted]) -> list[Hit]:
        """The batch job: every hit of a stream, as feeding it transfer by transfer would."""
        hits: list[Hit] = []
        for t in stream:
            hits.extend(self.feed(t))
        return hits

    def feed(self, t: Posted) -> list[Hit]:
        assert t.amount > 0, "a posted movement moves money"
        self.fed += 1
        hits: list[Hit] = []
        debit_info, credit_info = self.info(t.debit), self.info(t.credit)
        sender = self._account(t.debit)
        receiver = self._account(t.credit)
        out = _Move(t.at_us, False, t.credit, t.amount, t.asset, t.id)
        into = _Move(t.at_us, True, t.debit, t.amount, t.asset, t.id)
        # Dormancy is judged on the time before this movement.
        for acc_id, acc, info in ((t.debit, sender, debit_info), (t.credit, receiver, credit_info)):
            if info.monitored:
                hit = self._dormant(acc_id, acc, t)
                if hit is not None:
                    hits.append(hit)
        # Round-tripping follows the money before the receiver's state changes.
        if credit_info.monitored or debit_info.monitored:
            hits.extend(self._round_trip(t, sender, receiver, credit_info))
        cap = self.config.events_per_account_max
        self._push(sender, out, cap)
        self._push(receiver, into, cap)
        if debit_info.monitored:
            hits.extend(self._on_out(t.debit, sender, t, credit_info))
        if credit_info.monitored:
            hits.extend(self._on_in(t.credit, receiver, t, debit_info))
        # The customers' views: a movement between two accounts of one customer is none.
        payer = debit_info.customer if debit_info.monitored else None
        payee = credit_info.customer if credit_info.monitored else None
        if payer is not None and payer == payee:
            return _owned(hits, t, payer, payee)
        if payer is not None:
            moved = _Move(t.at_us, False, t.credit, t.amount, t.asset, t.id, t.debit)
            hits.extend(self._on_view(payer, moved, t, credit_info))
        if payee is not None:
            moved = _Move(t.at_us, True, t.debit, t.amount, t.asset, t.id, t.credit)
            hits.extend(self._on_view(payee, moved, t, debit_info))
        return _owned(hits, t, payer, payee)

    def _account(self, account_id: str) -> _Account:
        acc = self._accounts.get(account_id)
        if acc is None:
            acc = _Account(deque())
            self._accounts[account_id] = acc
            if len(self._accounts) > self.config.accounts_max:
                self._accounts.popitem(last=False)
                self.evicted += 1
        else:
            self._accounts.move_to_end(account_id)
        return acc

    def _view(self, customer: str) -> _Account:
        view = self._customers.get(customer)
        if view is None:
            view = _Account(deque(), members=OrderedDict())
            self._customers[customer] = view
            if len(self._customers) > self.config.customers_max:
                self._customers.popitem(last=False)
                self.evicted += 1
        else:
            self._customers.move_to_end(customer)
        return view

    def _push(self, acc: _Account, move: _Move, cap: int) -> None:
        horizon = move.at_us - self._window_max_us
        moves = acc.moves
        while moves and moves[0].at_us < horizon:
            moves.popleft()
        moves.append(move)
        acc.last_seen_us = move.at_us
        if len(moves) > cap:
            self._compact(acc, cap)

    def _compact(self, acc: _Account, cap: int) -> None:
        """A full deque (more than `cap` movements within the longest window): fold its small
        movements into tallies (one per asset, direction, account and risk per tally_span_us),
        which keep their sums for the typologies that add amounts up, so a flood of tiny
        movements cannot push out the ones a typology judges one by one. Then, while it still
        holds more than 3/4 of `cap`, drop the oldest (`moves_dropped`): each compaction frees a
        quarter of the deque, so it costs O(1) a push amortized."""
        cfg = self.config
        risky = cfg.high_risk_jurisdictions
        span = cfg.tally_span_us
        kept: list[_Move] = []
        open_: dict[tuple[str, bool, str, bool], int] = {}  # a key's open tally, its index
        folded = 0
        for m in acc.moves:
            if not m.tally and m.amount >= cfg.kept_amount_min(m.asset):
                kept.append(m)
                continue
            bad = m.risky if m.tally else self.info(m.counterparty).jurisdiction in risky
            key = (m.asset, m.inbound, m.account, bad)
            i = open_.get(key)
            if i is not None and m.at_us - kept[i].at_us < span:
                last = kept[i]
                kept[i] = replace(last, amount=last.amount + m.amount, transfer_id=m.transfer_id)
            else:
                open_[key] = len(kept)
                kept.append(
                    _Move(
                        m.at_us, m.inbound, "", m.amount, m.asset, m.transfer_id, m.account,
                        tally=True, risky=bad,
                    )
                )  # fmt: skip
            folded += not m.tally
        self.moves_folded += folded
        drop = max(0, len(kept) - cap * 3 // 4)
        self.moves_dropped += sum(not m.tally for m in kept[:drop])
        acc.moves = deque(kept[drop:])

    @property
    def accounts(self) -> int:
        return len(self._accounts)

    @property
    def customers(self) -> int:
        return len(self._customers)

    # -- a customer's view ----------------------------------------------------------------------

    def _on_view(self, customer: str, move: _Move, t: Posted, other: AccountInfo) -> list[Hit]:
        """Push `move` (of one of `customer`'s accounts, with someone else) into the customer's
        view, and answer the view's hits that span two of its accounts or more, once two of
        them moved within the longest window (one account alone: its own hits say it all)."""
        view = self._view(customer)
        self._push(view, move, self.config.events_per_customer_max)
        members = view.members
        assert members is not None, "a customer's view keeps its accounts"
        members[move.account] = move.at_us
        members.move_to_end(move.account)
        horizon = move.at_us - self._window_max_us
        while members and next(iter(members.values())) < horizon:
            members.popitem(last=False)
        while len(members) > CUSTOMER_ACCOUNTS_MAX:
            members.popitem(last=False)
        if len(members) < 2:
            return []
        if move.inbound:
            found = self._on_in(move.account, view, t, other, view=True)
        else:
            found = self._on_out(move.account, view, t, other, view=True)
        return [replace(h, customer=customer) for h in found]

    # -- trials (compliance/aml/monitor.py: movements that may still roll back) ---------------

    def trial(self, accounts: Iterable[str]) -> Detectors:
        """Detectors holding a copy of `accounts`' state only, and of their owners' views (all
        that a movement between two of them reads or writes), to feed what may still roll back
        without changing this one; `adopt` takes its state once that has committed."""
        copy = Detectors(self.config, self.info)
        for account_id in accounts:
            acc = self._accounts.get(account_id)
            if acc is not None:
                copy._accounts[account_id] = acc.copy()
            customer = self.info(account_id).customer
            if customer is not None and customer not in copy._customers:
                view = self._customers.get(customer)
                if view is not None:
                    copy._customers[customer] = view.copy()
        return copy

    def adopt(self, trial: Detectors) -> None:
        """Take each account's state (and each customer's view) from `trial` (made by `trial`,
        fed since), as though this one had been fed what it was; the caller makes sure nothing
        else was fed meanwhile. The least recently active accounts and customers are evicted
        past their bounds, after the batch rather than during it."""
        for account_id, acc in trial._accounts.items():
            self._accounts[account_id] = acc
            self._accounts.move_to_end(account_id)
        for customer, view in trial._customers.items():
            self._customers[customer] = view
            self._customers.move_to_end(customer)
        while len(self._accounts) > self.config.accounts_max:
            self._accounts.popitem(last=False)
            self.evicted += 1
        while len(self._customers) > self.config.customers_max:
            self._customers.popitem(last=False)
            self.evicted += 1
        self.fed += trial.fed
        self.moves_folded += trial.moves_folded
        self.moves_dropped += trial.moves_dropped

    # -- per direction ----------------------------------------------------------------------

    def _on_in(
        self, account: str, acc: _Account, t: Posted, sender: AccountInfo, *, view: bool = False
    ) -> list[Hit]:
        """The hits a movement into `account` completes; `view`: `acc` is its owner's view
        (no large transaction, and only the hits that span two accounts or more)."""
        cfg = self.config
        lim = cfg.of(t.asset)
        hits: list[Hit] = []
        low = lim.reporting_threshold * (100 - cfg.structuring_margin_pct) // 100
        if low <= t.amount < lim.reporting_threshold:
            since = t.at_us - cfg.structuring_window_us
            near = [
                m
                for m in _recent(acc, since, t.asset)
                if m.inbound and low <= m.amount < lim.reporting_threshold and not m.tally
            ]
            if len(near) >= cfg.structuring_count_min:
                # Structuring splits one sum into deposits under the threshold: ranked by the
                # most that one source (a cash desk, one payer) paid in that way, times its
                # share of them. A firm paid near-threshold invoices by many clients is paid
                # many sums, not one sum split.
                by_source: dict[str, int] = {}
                for m in near:
                    by_source[m.counterparty] = by_source.get(m.counterparty, 0) + m.amount
                split = max(by_source.values())
                total = sum(m.amount for m in near)
                score = split * (split / total)
                hits.append(_hit(Typology.STRUCTURING, account, t, near, score, total, len(near)))
        hits.extend(self._fan(account, acc, t, inbound=True, view=view))  # fan-out may rise too
        hits.extend(self._jurisdiction(account, acc, t, sender))
        if view:
            return [h for h in hits if len(h.accounts) >= 2]
        if t.amount >= lim.large_threshold:
            hits.append(
                _hit(Typology.LARGE_TRANSACTION, account, t, [], float(t.amount), t.amount, 1)
            )
        return hits

    def _on_out(
        self, account: str, acc: _Account, t: Posted, receiver: AccountInfo, *, view: bool = False
    ) -> list[Hit]:
        """The hits a movement out of `account` completes (`view`: as in _on_in)."""
        cfg = self.config
        lim = cfg.of(t.asset)
        hits: list[Hit] = []
        # Rapid movement: what came in within the window before this outflow, and what has
        # gone out since the first of it.
        since = t.at_us - cfg.rapid_window_us
        ins: list[_Move] = []
        outs: list[_Move] = []
        inflow = outflow = 0
        for m in reversed(acc.moves):  # newest first; an outflow counts after the first inflow
            if m.at_us < since:
                break
            if m.asset != t.asset:
                continue
            if m.inbound:
                ins.append(m)
                inflow += m.amount
            else:
                outs.append(m)
        if ins:
            ins.reverse()
            first_in = ins[0].at_us
            outs = [m for m in reversed(outs) if m.at_us >= first_in]
            outflow = sum(m.amount for m in outs)
            passed = min(inflow, outflow)
            if passed >= lim.rapid_amount_min and outflow * 100 >= inflow * cfg.rapid_ratio_pct:
                # Money straight through an account with few counterparties on either side
                # ranks above a busy account that happens to balance.
                sides = len({m.counterparty for m in ins if not m.tally}) + len(
                    {m.counterparty for m in outs if not m.tally}
                )
                score = passed / max(1.0, sides / 2)
                hits.append(
                    _hit(Typology.RAPID_MOVEMENT, account, t, ins + outs, score, passed, sides)
                )
        hits.extend(self._fan(account, acc, t, inbound=False, view=view))  # fan-in may rise too
        hits.extend(self._jurisdiction(account, acc, t, receiver))
        if view:
            return [h for h in hits if len(h.accounts) >= 2]
        if t.amount >= lim.large_threshold:
            hits.append(
                _hit(Typology.LARGE_TRANSACTION, account, t, [], float(t.amount), t.amount, 1)
            )
        return hits

    # -- typologies ---------------------------------------------------------------------------

    def _fan(
        self, account: str, acc: _Account, t: Posted, *, inbound: bool, view: bool = False
    ) -> list[Hit]:
        """Fan-in and fan-out after a movement of the account (`inbound`: it came in; that
        side's hit first): distinct counterparties of at least fan_amount_min on a side in the
        window. Both sides are looked at on every movement (money sent on after a fan-in raises
        its score), in one pass over the window. The typology is a burst: many counterparties
        at once, unusual for this account. Ranked by a weighted sum of three shares, then by
        the total:

        - the surge, 0.5: the window's new counterparties (not seen in the lookback before it)
          beyond the account's usual number per window (its distinct counterparties of
          fan_amount_min in the lookback, scaled to the window), over all of the window's. A
          mule's senders are new and it had one or two before; a landlord's tenants and an
          employer's staff come back each month (not new); a high-ticket shop or a firm
          paid by many clients has new ones every week, and as many in the weeks before;
        - the share of the total matched by the other side in the window (collected and sent
          on, or funded just before and sent out), 0.3;
        - the share of round amounts (AMLworld: "large or rounded amounts"), 0.2.

        In a customer's view (`view`) a hit that spans one account only is dropped before it
        counts as raised (the account's own look raised it)."""
        cfg = self.config
        lim = cfg.of(t.asset)
        if t.amount < lim.fan_amount_min:
            return []
        # Per side (0: out, 1: in), unless that side raised within fan_recheck_us.
        looked = [
            last is None or t.at_us - last >= cfg.fan_recheck_us for last in acc.fan_hit_at_us
        ]
        if not any(looked):
            return []
        since = t.at_us - cfg.fan_window_us
        horizon = since - cfg.fan_lookback_us
        same: tuple[list[_Move], list[_Move]] = ([], [])  # the window's, of fan_amount_min
        moved = [0, 0]  # the window's total per side, any amount
        seen: tuple[set[str], set[str]] = (set(), set())  # the lookback's counterparties
        usual: tuple[set[str], set[str]] = (set(), set())  # of them, of fan_amount_min
        parties_min = cfg.fan_counterparties_min
        counted = False
        for m in reversed(acc.moves):  # newest first: the window, then the lookback
            if m.at_us >= since:
                if m.asset == t.asset:
                    moved[m.inbound] += m.amount
                    if m.amount >= lim.fan_amount_min and not m.tally:
                        same[m.inbound].append(m)
                continue
            if not counted:  # the window is read: most accounts stop here
                looked = [
                    looked[k] and len({x.counterparty for x in same[k]}) >= parties_min
                    for k in (0, 1)
                ]
                if not any(looked):
                    return []
                counted = True
            if m.at_us < horizon:
                break
            if m.asset == t.asset and not m.tally:  # a tally names no counterparty
                seen[m.inbound].add(m.counterparty)
                if m.amount >= lim.fan_amount_min:
                    usual[m.inbound].add(m.counterparty)
        hits = []
        for side in (1, 0) if inbound else (0, 1):
            moves = same[side]
            parties = {m.counterparty for m in moves}
            if not looked[side] or len(parties) < parties_min:
                continue
            moves.reverse()  # oldest first
            total = sum(m.amount for m in moves)
            matched = min(1.0, moved[1 - side] / total)
            # AMLworld and AMLSim describe the laundering fans as "large or rounded amounts":
            # a share of round sums raises the rank; salaries, rents and sales are rarely round.
            rounded = sum(1 for m in moves if m.amount % lim.round_unit == 0) / len(moves)
            per_window = len(usual[side]) * cfg.fan_window_us / cfg.fan_lookback_us
            surge = max(0.0, len(parties - seen[side]) - per_window) / len(parties)
            score = 10 * (0.5 * surge + 0.3 * matched + 0.2 * rounded) + math.log10(total) / 20
            typology = Typology.FAN_IN if side else Typology.FAN_OUT
            hit = _hit(typology, account, t, moves, score, total, len(parties))
            if view and len(hit.accounts) < 2:
                continue
            acc.fan_hit_at_us[side] = t.at_us
            hits.append(hit)
        return hits

    def _jurisdiction(
        self, account: str, acc: _Account, t: Posted, counterparty: AccountInfo
    ) -> list[Hit]:
        cfg = self.config
        risky = cfg.high_risk_jurisdictions
        if counterparty.jurisdiction not in risky:
            return []
        since = t.at_us - cfg.jurisdiction_window_us
        moves = [
            m
            for m in _recent(acc, since, t.asset)
            if (m.risky if m.tally else self.info(m.counterparty).jurisdiction in risky)
        ]
        total = sum(m.amount for m in moves)
        if total < cfg.of(t.asset).jurisdiction_amount_min:
            return []
        return [_hit(Typology.HIGH_RISK_JURISDICTION, account, t, moves, float(total), total, 1)]

    def _dormant(self, account: str, acc: _Account, t: Posted) -> Hit | None:
        cfg = self.config
        if acc.last_seen_us is not None and t.at_us - acc.last_seen_us >= cfg.dormant_us:
            acc.woke_at_us = t.at_us
        woke = acc.woke_at_us
        if woke is None:
            return None
        if t.at_us - woke > cfg.dormant_window_us:
            acc.woke_at_us = None
            return None
        moves = _recent(acc, woke, t.asset)
        moves.append(_Move(t.at_us, t.credit == account, "", t.amount, t.asset, t.id))
        total = sum(m.amount for m in moves)
        if total < cfg.of(t.asset).dormant_amount_min:
            return None
        return _hit(Typology.DORMANT_REACTIVATION, account, t, moves, float(total), total, 1)

    def _round_trip(
        self, t: Posted, sender: _Account, receiver: _Account, receiver_info: AccountInfo
    ) -> list[Hit]:
        """Money followed along transfers of at least round_trip_amount_min: a transfer out
        of X marks its receiver with (origin X, hops 1); a receiver passing money on within
        the window carries its marks one hop further. Money reaching its own origin after
        hops_min..hops_max hops within the window is a round trip (a refund, 2 hops, is not).
        A hop carries a mark only when it moves about what the last hop did (the same money
        passed on). Ranked by the share of the first hop's amount that came back.

        Money back at another account of its origin's owner is a round trip too (a customer
        hit naming both accounts), and is followed no further, as money back at its origin."""
        cfg = self.config
        receiver_monitored = receiver_info.monitored
        owner = receiver_info.customer if receiver_monitored else None
        if t.amount < cfg.of(t.asset).round_trip_amount_min:
            return []
        since = t.at_us - cfg.round_trip_window_us
        hits: list[Hit] = []
        low, high = cfg.round_trip_hop_pct_min, cfg.round_trip_hop_pct_max
        carried: list[_Mark] = []
        live: list[_Mark] = []  # the sender's marks still within the window
        hops_max, scaled = cfg.round_trip_hops_max, t.amount * 100
        for m in sender.marks:
            if m.at_us < since:
                continue
            live.append(m)
            if (
                m.asset == t.asset
                and m.hops < hops_max
                and m.amount * low <= scaled <= m.amount * high
            ):
                carried.append(m)
        sender.marks = live
        home: set[str] = {t.credit}  # the origins this movement brings money back to
        if owner is not None:
            home.update(
                m.origin
                for m in carried
                if m.origin != t.credit and self.info(m.origin).customer == owner
            )
        for mark in carried:
            if mark.origin in home:
                hops = mark.hops + 1
                if hops >= cfg.round_trip_hops_min and receiver_monitored:
                    # What came back, and how much of what left it is.
                    kept = t.amount / mark.first_amount
                    sibling = mark.origin != t.credit
                    hits.append(
                        Hit(
                            Typology.ROUND_TRIPPING, t.credit, t.asset, t.at_us, mark.at_us,
                            min(kept, 1.0) * 10 + math.log10(t.amount) / 20, t.amount,
                            (*mark.path, t.id), hops, owner if sibling else None,
                            tuple(sorted((mark.origin, t.credit))) if sibling else (),
                        )
                    )  # fmt: skip
        marks = [m for m in receiver.marks if m.at_us >= since]
        new = [
            _Mark(m.origin, m.at_us, m.hops + 1, t.amount, t.asset, (*m.path, t.id), m.first_amount)
            for m in carried
            if m.origin not in home
        ]
        new.append(_Mark(t.debit, t.at_us, 1, t.amount, t.asset, (t.id,), t.amount))
        marks.extend(new)
        if len(marks) > cfg.round_trip_marks_max:  # keep those that arrived last
            marks = marks[-cfg.round_trip_marks_max :]
        receiver.marks = marks
        return hits


def _recent(acc: _Account, since_us: int, asset: str) -> list[_Move]:
    """The account's moves of `asset` at or after `since_us`, oldest first: read from the
    newest back, so a short window costs what it holds, not the account's whole deque."""
    out = []
    for m in reversed(acc.moves):
        if m.at_us < since_us:
            break
        if m.asset == asset:
            out.append(m)
    out.reverse()
    return out


def _hit(
    typology: Typology,
    account: str,
    t: Posted,
    moves: list[_Move],
    score: float,
    amount: int,
    counterparties: int,
) -> Hit:
    start = moves[0].at_us if moves else t.at_us  # moves are oldest first
    # The evidence names the newest transfers involved, at most EVIDENCE_TRANSFERS_MAX.
    recent = [m.transfer_id for m in moves[-EVIDENCE_TRANSFERS_MAX:]]
    ids = tuple(dict.fromkeys([*recent, t.id]))[-EVIDENCE_TRANSFERS_MAX:]
    # A customer's view: every account of the moves (an account's moves name none).
    accounts = tuple(sorted({m.account for m in moves})) if moves and moves[0].account else ()
    return Hit(
        typology, account, t.asset, t.at_us, start, score, amount, ids, counterparties,
        None, accounts,
    )  # fmt: skip


def _owned(hits: list[Hit], t: Posted, payer: str | None, payee: str | None) -> list[Hit]:
    """`hits` of one movement with their owners named: an account's hit of CUSTOMER_TYPOLOGIES
    names the customer who owns the account (`payer` owns the debited one, `payee` the credited
    one, each when monitored), and is dropped when a customer hit of that typology and customer
    was raised by the same movement (it spans that account's movements and more)."""
    if not hits or (payer is None and payee is None):
        return hits
    owners = {t.debit: payer, t.credit: payee}
    joint = {(h.customer, h.typology) for h in hits if h.accounts}
    out: list[Hit] = []
    for h in hits:
        owner = owners.get(h.account)
        if h.accounts or owner is None or h.typology not in CUSTOMER_TYPOLOGIES:
            out.append(h)
        elif (owner, h.typology) not in joint:
            out.append(replace(h, customer=owner))
    return out


def best_per_owner(hits: Iterable[Hit]) -> dict[Typology, dict[str, Hit]]:
    """Each typology's hits reduced to one per owner (`Hit.owner`: the customer for the
    typologies judged per customer, else the account), its highest score: one alert each, as
    the monitor's dedupe raises them."""
    out: dict[Typology, dict[str, Hit]] = {t: {} for t in Typology}
    for h in hits:
        best = out[h.typology].get(h.owner)
        if best is None or h.score > best.score:
            out[h.typology][h.owner] = h
    return out


def best_per_account(hits: Iterable[Hit]) -> dict[Typology, dict[str, Hit]]:
    """Each typology's hits reduced to one per account: its highest score."""
    out: dict[Typology, dict[str, Hit]] = {t: {} for t in Typology}
    for h in hits:
        best = out[h.typology].get(h.account)
        if best is None or h.score > best.score:
            out[h.typology][h.account] = h
    return out
