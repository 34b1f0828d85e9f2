"""From the ledger's transfers to the detectors' movements, and the incremental monitor that
the sink and the scan share (docs/aml.md, "Running it"). No database here: the service
(compliance/aml/service.py) reads and writes.

A transfer is a movement of money when it moved money: a single-phase transfer created
posted, or the post of a pending transfer (its `post` row, with the amount posted). A pending
transfer, a void, an expiry and a reversal (the ledger undoing a movement) are not. A transfer
of several legs is split into movements when it has one debit leg (or one credit leg); others
are passed over (documented limitation)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
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
    legs = legs_from_json(legs_text)
    debits = [leg for leg in legs if leg.direction is Direction.DEBIT]
    credits = [leg for leg in legs if leg.direction is Direction.CREDIT]
    if len(debits) == 1:
        src = debits[0].account_id
        return [(src, c.account_id, c.amount, asset_of(src)) for c in credits if c.amount > 0]
    if len(credits) == 1:
        dst = credits[0].account_id
        return [(d.account_id, dst, d.amount, asset_of(dst)) for d in debits if d.amount > 0]
    return []


class Monitor:
    """The detectors over the ledger's stream, shared by the threads that post (a lock), with
    account details read once (`info_of(account_ids)`, bounded cache) and each transfer's hits
    kept a while, so a retried transaction (the sink is called again) raises the same hits
    instead of feeding the detectors twice."""

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

    def posted(self, rows: Sequence[TransferRow]) -> list[tuple[str, Hit]]:
        """Feed the movements of `rows` (stored transfer rows, in the order they posted) and
        answer (ledger id, hit) for each hit they complete."""
        with self._lock:
            accounts: set[str] = set()
            for row in rows:
                for account in (row[_DEBIT], row[_CREDIT]):
                    if account is not None:
                        accounts.add(account)
                if row[_LEGS] is not None and row[_DEBIT] is None:
                    accounts.update(leg.account_id for leg in legs_from_json(row[_LEGS]))
            self._load(accounts)
            out: list[tuple[str, Hit]] = []
            for row in rows:
                tid = row[_ID]
                hits = self._recent.get(tid)
                if hits is None:
                    hits = []
                    for debit, credit, amount, asset in movements(row, self._asset):
                        hits.extend(
                            self.detectors.feed(
                                Posted(tid, int(row[_CREATED_AT]), debit, credit, amount, asset,
                                       row[_LEDGER])
                            )
                        )  # fmt: skip
                    self._recent[tid] = hits
                    if len(self._recent) > RECENT_TRANSFERS_MAX:
                        self._recent.popitem(last=False)
                out.extend((row[_LEDGER], h) for h in hits)
            return out
