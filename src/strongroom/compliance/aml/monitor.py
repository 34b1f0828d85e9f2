"""From the ledger's transfers to the detectors' movements, and the incremental monitor that
the sink and the scan share (docs/aml.md, "Running it"). No database here: the service
(compliance/aml/service.py) reads and writes.

A transfer is a movement of money when it moved money: a single-phase transfer created
posted, or the post of a pending transfer (its `post` row, with the amount posted). A pending
transfer, a void, an expiry and a reversal (the ledger undoing a movement) are not. A transfer
of several legs is split into flows, per asset, from each debited account to each credited one,
pro rata (`flows`): what each account sent and received adds up exactly."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.compliance.aml.typologies import (
    AccountInfo,
    AmlConfig,
    Detectors,
    Hit,
    Posted,
)
from strongroom.core.money import from_stored_int
from strongroom.ledger.model import Action, Direction, Status, TransferRow, legs_from_json

# Fields of a TransferRow (the ledger store's TRANSFER_COLS order; ledger/pipeline.py names
# some of them as TR_*).
_ID: Final = 1
_LEDGER: Final = 2
_ACTION: Final = 3
_STATUS: Final = 4
_DEBIT: Final = 5
_CREDIT: Final = 6
_AMOUNT: Final = 7
_LEGS: Final = 8
_PENDING: Final = 10
_CREATED_AT: Final = 14

ACCOUNT_INFOS_MAX: Final = 100_000  # accounts whose asset and jurisdiction are kept
RECENT_TRANSFERS_MAX: Final = 65_536  # transfers whose hits are kept for a retried batch


@dataclass(frozen=True, slots=True)
class Profile:
    """An account's AML profile, set by compliance (`PUT /v1/accounts/{id}/aml`, store.py),
    never by the account's metadata: `exempt`, never an alert's subject (a cash desk, a
    settlement account); `jurisdiction`, an ISO 3166 alpha-2 code when known."""

    exempt: bool = False
    jurisdiction: str | None = None


NO_PROFILE: Final = Profile()


def _amount(value: Any) -> int:
    return value if type(value) is int else from_stored_int(value)


def movements(row: TransferRow, asset_of: Callable[[str], str]) -> list[tuple[str, str, int, str]]:
    """(debit, credit, amount, asset) of each movement a stored transfer row made."""
    action = row[_ACTION]
    if action == Action.POST:
        pass
    elif action != Action.TRANSFER or row[_PENDING] or row[_STATUS] != Status.POSTED:
        return []
    amount = _amount(row[_AMOUNT])
    if amount <= 0:
        return []
    debit, credit = row[_DEBIT], row[_CREDIT]
    if debit is not None and credit is not None:
        return [(debit, credit, amount, asset_of(debit))]
    legs_text = row[_LEGS]
    if legs_text is None:
        return []
    # Per asset, in the order the legs name them: (account, amount) of each side, an account
    # named twice on a side taken once with the sum.
    sides: dict[str, tuple[dict[str, int], dict[str, int]]] = {}
    for leg in legs_from_json(legs_text):
        if leg.amount <= 0:
            continue
        debits, credits = sides.setdefault(asset_of(leg.account_id), ({}, {}))
        side = debits if leg.direction is Direction.DEBIT else credits
        side[leg.account_id] = side.get(leg.account_id, 0) + leg.amount
    out: list[tuple[str, str, int, str]] = []
    for asset, (debits, credits) in sides.items():
        out.extend(
            (src, dst, amount, asset)
            for src, dst, amount in flows(list(debits.items()), list(credits.items()))
            if src != dst  # an account paying itself moved nothing
        )
    return out


def flows(
    debits: Sequence[tuple[str, int]], credits: Sequence[tuple[str, int]]
) -> list[tuple[str, str, int]]:
    """(debit, credit, amount) of the money one balanced side of a transfer moved: each debit
    leg's amount shared among the credit legs pro rata to theirs, in integers, so that what
    each account sent and received sums exactly to its leg (each flow within one minor unit of
    its exact share, none negative, none zero). Sides that do not balance (never, for a posted
    transfer of one asset) give nothing. At most len(debits) x len(credits) flows: with
    LEGS_PER_TRANSFER_MAX legs, 32 x 32."""
    total = sum(amount for _, amount in debits)
    if total <= 0 or total != sum(amount for _, amount in credits):
        return []
    if len(debits) == 1 or len(credits) == 1:  # the usual case: exact without rounding
        if len(debits) == 1:
            return [(debits[0][0], c, n) for c, n in credits]
        return [(d, credits[0][0], n) for d, n in debits]
    # Each share rounded down, then the units left over given out so that every row and column
    # sums exactly: a row i lacks r[i] < len(credits) units, a column j lacks s[j] <
    # len(debits), and both add up to the same number. Filling each row with one unit in the
    # columns that lack the most (Gale-Ryser's construction) always completes it: the exact
    # shares' fractions are a solution, so an integer one exists.
    share = [[d * c // total for _, c in credits] for _, d in debits]
    fraction = [[d * c % total for _, c in credits] for _, d in debits]
    row_short = [d - sum(row) for (_, d), row in zip(debits, share, strict=True)]
    col_short = [c - sum(row[j] for row in share) for j, (_, c) in enumerate(credits)]
    for i in sorted(range(len(debits)), key=lambda i: -row_short[i]):
        wanted = row_short[i]
        if not wanted:
            continue
        # The columns lacking the most first; among equals, the larger fraction, then order.
        order = sorted(
            (j for j in range(len(credits)) if col_short[j] > 0),
            key=lambda j: (-col_short[j], -fraction[i][j], j),
        )
        assert len(order) >= wanted, "the shares of a balanced transfer always complete"
        for j in order[:wanted]:
            share[i][j] += 1
            col_short[j] -= 1
    assert not any(col_short), "every credit leg received exactly its amount"
    return [
        (src, dst, share[i][j])
        for i, (src, _) in enumerate(debits)
        for j, (dst, _) in enumerate(credits)
        if share[i][j] > 0
    ]


@dataclass(frozen=True, slots=True)
class Trial:
    """A batch fed to a copy of the detectors' state (Monitor.trial): the hits it raises, and
    the state to take once the batch has committed (Monitor.commit)."""

    rows: Sequence[TransferRow]
    hits: list[tuple[str, Hit]]
    detectors: Detectors
    generation: int  # the monitor's, when the copy was taken


class Monitor:
    """The detectors over the ledger's stream, shared by the threads that post (a lock), with
    account details read once (`info_of(account_ids)`, bounded cache) and each transfer's hits
    kept a while, so a transfer already fed (a retried transaction, the rebuild reading a
    batch that committed meanwhile) is not fed twice.

    Two ways in: `posted` feeds committed transfers (the scan, the rebuild); `trial` feeds a
    batch that may still roll back to a copy of its accounts' state, answering the hits, and
    `commit` takes that state once the batch has committed (the sink: a rolled-back batch
    leaves nothing behind)."""

    def __init__(
        self,
        config: AmlConfig,
        info_of: Callable[[Sequence[str]], dict[str, tuple[str, AccountInfo]]],
    ) -> None:
        self.config = config
        self._info_of = info_of
        self._infos: OrderedDict[str, tuple[str, AccountInfo]] = OrderedDict()
        self._recent: OrderedDict[str, list[Hit]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every change of the detectors' state
        self.detectors = Detectors(config, self._info)

    def _info(self, account: str) -> AccountInfo:
        found = self._infos.get(account)
        return found[1] if found is not None else AccountInfo()

    def _asset(self, account: str) -> str:
        found = self._infos.get(account)
        return found[0] if found is not None else ""

    def _load(self, accounts: Iterable[str]) -> None:
        missing = sorted({a for a in accounts if a not in self._infos})
        if missing:
            for account, info in self._info_of(missing).items():
                self._infos[account] = info
        while len(self._infos) > ACCOUNT_INFOS_MAX:
            self._infos.popitem(last=False)

    @staticmethod
    def accounts_of(rows: Sequence[TransferRow]) -> set[str]:
        """Every account the rows name."""
        accounts: set[str] = set()
        for row in rows:
            for account in (row[_DEBIT], row[_CREDIT]):
                if account is not None:
                    accounts.add(account)
            if row[_LEGS] is not None and row[_DEBIT] is None:
                accounts.update(leg.account_id for leg in legs_from_json(row[_LEGS]))
        return accounts

    def _refresh(self, accounts: Iterable[str], profiles: Mapping[str, Profile]) -> None:
        """The compliance profile of each of `accounts` as read now (none: monitored, no
        jurisdiction), over what the cache held."""
        for account in accounts:
            found = self._infos.get(account)
            if found is None:
                continue
            asset, info = found
            profile = profiles.get(account, NO_PROFILE)
            if (info.monitored, info.jurisdiction) != (not profile.exempt, profile.jurisdiction):
                self._infos[account] = (
                    asset,
                    AccountInfo(info.customer, profile.jurisdiction, not profile.exempt),
                )

    def _feed(self, detectors: Detectors, row: TransferRow) -> list[Hit]:
        tid = row[_ID]
        hits: list[Hit] = []
        for debit, credit, amount, asset in movements(row, self._asset):
            hits.extend(
                detectors.feed(
                    Posted(tid, int(row[_CREATED_AT]), debit, credit, amount, asset, row[_LEDGER])
                )
            )
        return hits

    def _remember(self, tid: str, hits: list[Hit]) -> None:
        self._recent[tid] = hits
        if len(self._recent) > RECENT_TRANSFERS_MAX:
            self._recent.popitem(last=False)

    def posted(self, rows: Sequence[TransferRow]) -> list[tuple[str, Hit]]:
        """Feed the movements of `rows` (committed transfer rows, in the order they posted)
        and answer (ledger id, hit) for each hit they complete."""
        with self._lock:
            self._load(self.accounts_of(rows))
            out: list[tuple[str, Hit]] = []
            for row in rows:
                hits = self._recent.get(row[_ID])
                if hits is None:
                    hits = self._feed(self.detectors, row)
                    self._remember(row[_ID], hits)
                    self._generation += 1
                out.extend((row[_LEDGER], h) for h in hits)
            return out

    def trial(
        self, rows: Sequence[TransferRow], profiles: Mapping[str, Profile] | None = None
    ) -> Trial:
        """The hits `rows` (a batch not yet committed) would raise, from a copy of their
        accounts' state: nothing here changes until `commit`. `profiles`: the accounts'
        compliance profiles as the batch's transaction reads them (those it does not name have
        none)."""
        with self._lock:
            accounts = self.accounts_of(rows)
            self._load(accounts)
            if profiles is not None:
                self._refresh(accounts, profiles)
            copy = self.detectors.trial(accounts)
            out: list[tuple[str, Hit]] = []
            for row in rows:
                hits = self._recent.get(row[_ID])
                if hits is None:
                    hits = self._feed(copy, row)
                out.extend((row[_LEDGER], h) for h in hits)
            return Trial(rows, out, copy, self._generation)

    def commit(self, trial: Trial) -> None:
        """The batch of `trial` has committed: its state becomes the monitor's, or, when
        another batch changed the state since the copy was taken, the batch is fed again
        (its hits then dropped: its alerts were raised with it)."""
        with self._lock:
            fresh = [row for row in trial.rows if row[_ID] not in self._recent]
            if not fresh:
                return
            if trial.generation == self._generation and len(fresh) == len(trial.rows):
                self.detectors.adopt(trial.detectors)
                for row in fresh:
                    self._remember(row[_ID], [])
            else:
                for row in fresh:
                    self._feed(self.detectors, row)
                    self._remember(row[_ID], [])
            self._generation += 1
