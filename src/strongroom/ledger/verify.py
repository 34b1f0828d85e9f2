"""`ledger verify`: check every invariant of the ledger against the database.

What is checked (docs/architecture.md, Invariants, says why each matters):
- every entry against its transfer: the entries the engine writes are derived again from the
  transfer rows (and the targets they name) and compared, account, direction, amount and
  pending delta, in order, none missing or extra;
- every entry's running totals are its predecessor's (prev_id) plus its own delta, versions run
  1..n per account, and each account's four totals equal the sum of its entries and its last
  entry's running totals;
- per ledger and asset, debits - credits is zero, posted and pending; each account's pending
  totals are the sum of its open pending transfers' legs; no account breaks its flags at any
  entry; accounts, ledgers and assets of every transfer agree; each pending transfer is
  resolved (posted, voided, expired) at most once and as its status says; reversals do not
  exceed what they reverse;
- every money value decodes: a hand edit (a float, text, a blob of the wrong width) is a
  problem named with its row, never a crash.

Memory is bounded by the number of accounts, whatever the length of the history: transfers
(by seq) and entries (by id, each joined with its predecessor) are read as streams and merged.
Entry ids and transfer seqs come from one id block per write transaction, and within a block
the engine writes the transfers it creates and their entries in the same order, so the run of
entries with one transfer id is the next created transfer's; any other run is the release of
an expired reservation (written later, under the pending transfer's id).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Final

from strongroom.core.limits import (
    AMOUNT_MAX,
    ID_BLOCK_BITS,
    LEGS_PER_TRANSFER_MAX,
    VERIFY_FETCH_ROWS,
    VERIFY_PROBLEMS_MAX,
    VERIFY_PROGRESS_ROWS,
)
from strongroom.core.money import from_stored_int
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.model import AccountFlag, Action, Direction, Status

_NO_OVERDRAFT_DEBITS = int(AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS)
_NO_OVERDRAFT_CREDITS = int(AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS)
# Both overdraft flags at once is refused at creation; any other bit is unknown.
_KNOWN_FLAGS: Final = _NO_OVERDRAFT_DEBITS | _NO_OVERDRAFT_CREDITS
_DEBIT, _CREDIT = int(Direction.DEBIT), int(Direction.CREDIT)
_ACTIONS = frozenset(int(a) for a in Action)
_STATUSES = frozenset(int(s) for s in Status)
_TOTALS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")


@dataclass(slots=True)
class VerifyReport:
    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    transfers_pending: int = 0  # open (status pending) transfers
    # The first VERIFY_PROBLEMS_MAX problems found, each naming its row; the rest are counted.
    problems: list[str] = field(default_factory=list)
    problems_more: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.problems_more

    def add(self, problem: str) -> None:
        if len(self.problems) < VERIFY_PROBLEMS_MAX:
            self.problems.append(problem)
        else:
            self.problems_more += 1


Progress = Callable[[VerifyReport], None]

# (account_id, direction, amount, pending_delta): one entry as the engine writes it.
Expected = tuple[str, int, int, int]


class _Account:
    """What verify keeps per account: the row's fields it checks against, and what the
    streams add up for it."""

    __slots__ = (
        "asset",
        "count",
        "flags",
        "id",
        "last_entry_id",
        "last_seen",
        "ledger_id",
        "open_pending",
        "sums",
        "totals",
        "version",
    )

    def __init__(
        self,
        id: str,
        ledger_id: str,
        asset: str,
        flags: int,
        totals: tuple[int, int, int, int] | None,
        version: int,
        last_entry_id: int | None,
    ) -> None:
        self.id = id
        self.ledger_id = ledger_id
        self.asset = asset
        self.flags = flags
        self.totals = totals  # None: a total does not decode (reported)
        self.version = version
        self.last_entry_id = last_entry_id
        self.sums = [0, 0, 0, 0]  # of its entries, in _TOTALS' order
        self.count = 0
        self.open_pending = [0, 0]  # debit and credit legs of its open pending transfers
        self.last_seen = False


class _Transfer:
    """A transfer row, decoded as far as it goes, with the entries it must have."""

    __slots__ = ("expected", "id", "ledger_id", "seq")

    def __init__(self, seq: int, id: str, ledger_id: str) -> None:
        self.seq = seq
        self.id = id
        self.ledger_id = ledger_id
        self.expected: list[Expected] | None = None  # None: cannot be derived (reported)


class _Entry:
    __slots__ = ("account_id", "amount", "direction", "id", "pending_delta", "transfer_id")

    def __init__(
        self,
        id: int,
        account_id: str,
        transfer_id: str,
        direction: int,
        amount: int | None,
        pending_delta: int | None,
    ) -> None:
        self.id = id
        self.account_id = account_id
        self.transfer_id = transfer_id
        self.direction = direction
        self.amount = amount
        self.pending_delta = pending_delta


# A transfer row decoded: (seq, id, ledger_id, action, status, debit, credit, amount,
# legs as (account, direction, amount) tuples or None, target_id, pending).
@dataclass(slots=True)
class _Row:
    seq: int
    id: str
    ledger_id: str
    action: int
    status: int
    debit_account_id: str | None
    credit_account_id: str | None
    amount: int
    legs: list[tuple[str, int, int]] | None
    target_id: str | None
    pending: bool

    def effective_legs(self) -> list[tuple[str, int, int]]:
        if self.legs is not None:
            return self.legs
        return [
            (str(self.debit_account_id), _DEBIT, self.amount),
            (str(self.credit_account_id), _CREDIT, self.amount),
        ]


def verify(uow: UnitOfWork, progress: Progress | None = None) -> VerifyReport:
    """Check every invariant in `uow`'s read transaction (one snapshot)."""
    return _Verifier(uow, progress).run()


def _block(row_id: int) -> int:
    return row_id >> ID_BLOCK_BITS


def _describe(x: Expected) -> str:
    account_id, direction, amount, pending_delta = x
    side = "debit" if direction == _DEBIT else "credit" if direction == _CREDIT else direction
    return f"{side} {amount} (pending {pending_delta:+d}) on {account_id}"


class _Verifier:
    def __init__(self, uow: UnitOfWork, progress: Progress | None) -> None:
        self.uow = uow
        self.progress = progress
        self.report = VerifyReport()
        self.accounts: dict[str, _Account] = {}
        self.last_entry_owner: dict[int, str] = {}
        self.rows_seen = 0
        # Pending transfers by status, and the releases of expired reservations found.
        self.pending_by_status = [0, 0, 0, 0]
        self.expiries = 0

    def problem(self, text: str) -> None:
        self.report.add(text)

    def tick(self) -> None:
        self.rows_seen += 1
        if self.progress is not None and not self.rows_seen % VERIFY_PROGRESS_ROWS:
            self.progress(self.report)

    def money(self, value: object, what: str) -> int | None:
        try:
            return from_stored_int(value)
        except ValueError as exc:
            self.problem(f"{what} is not a stored money value ({value!r}: {exc})")
            return None

    def run(self) -> VerifyReport:
        self.load_accounts()
        self.walk()
        self.check_accounts()
        self.check_resolutions()
        self.check_reversals()
        return self.report

    # -- accounts --------------------------------------------------------------------------

    def load_accounts(self) -> None:
        for row in store.verify_accounts(self.uow):
            account_id, ledger_id, asset, flags, *money, version, last_entry_id = row
            self.report.accounts += 1
            totals = [
                self.money(v, f"account {account_id}: {n}")
                for n, v in zip(_TOTALS, money, strict=True)
            ]
            dp, cp, dpend, cpend = totals
            decoded = (
                None
                if dp is None or cp is None or dpend is None or cpend is None
                else (dp, cp, dpend, cpend)
            )
            if type(flags) is not int or type(version) is not int:
                self.problem(
                    f"account {account_id}: flags {flags!r} or version {version!r} is not an "
                    "integer"
                )
                flags = flags if type(flags) is int else 0
            elif flags & ~_KNOWN_FLAGS or flags == _KNOWN_FLAGS:
                self.problem(f"account {account_id}: flags {flags} are not a valid combination")
            acc = _Account(account_id, ledger_id, asset, flags, decoded, version, last_entry_id)
            self.accounts[account_id] = acc
            if last_entry_id is not None:
                self.last_entry_owner[last_entry_id] = account_id

    def check_accounts(self) -> None:
        sums: dict[tuple[str, str], list[int]] = {}
        for acc in self.accounts.values():
            if acc.count != acc.version:
                self.problem(f"account {acc.id}: version {acc.version} but {acc.count} entries")
            if acc.version == 0 and acc.last_entry_id is not None:
                self.problem(f"account {acc.id}: no entries but last entry {acc.last_entry_id}")
            if acc.version and not acc.last_seen:
                self.problem(
                    f"account {acc.id}: last entry {acc.last_entry_id} is not one of its entries"
                )
            if acc.totals is None:
                continue
            dp, cp, dpend, cpend = acc.totals
            if list(acc.totals) != acc.sums:
                self.problem(
                    f"account {acc.id}: balances differ from the sum of its entries "
                    f"(totals {acc.totals}, entries add up to {tuple(acc.sums)})"
                )
            if [dpend, cpend] != acc.open_pending:
                self.problem(
                    f"account {acc.id}: pending totals ({dpend}, {cpend}) differ from the open "
                    f"pending transfers' legs ({acc.open_pending[0]}, {acc.open_pending[1]})"
                )
            self.check_flags(acc, acc.totals, f"account {acc.id}")
            total = sums.setdefault((acc.ledger_id, acc.asset), [0, 0])
            total[0] += dp - cp
            total[1] += dpend - cpend
        for (ledger_id, asset), (posted, pending) in sorted(sums.items()):
            if posted or pending:
                self.problem(
                    f"ledger {ledger_id} asset {asset}: debits - credits = {posted} posted, "
                    f"{pending} pending (must be 0)"
                )

    def check_flags(self, acc: _Account, totals: Sequence[int], where: str) -> None:
        dp, cp, dpend, cpend = totals
        if acc.flags & _NO_OVERDRAFT_DEBITS and dp + dpend > cp:
            self.problem(
                f"{where}: debits {dp} + {dpend} pending exceed credits {cp} "
                "(account flag debits_must_not_exceed_credits)"
            )
        if acc.flags & _NO_OVERDRAFT_CREDITS and cp + cpend > dp:
            self.problem(
                f"{where}: credits {cp} + {cpend} pending exceed debits {dp} "
                "(account flag credits_must_not_exceed_debits)"
            )

    # -- the merge of transfers and entries --------------------------------------------------

    def walk(self) -> None:
        transfers = self.created_transfers()
        head = next(transfers, None)
        group: list[_Entry] = []
        group_size = 0  # may pass len(group): a forged run longer than any transfer's
        for row in store.verify_entries(self.uow):
            try:
                entry = self.entry(row)
            except (TypeError, ValueError) as exc:  # a column edited to a value of another type
                self.problem(f"entry {row[0]}: a column holds a value of the wrong type ({exc})")
                entry = _Entry(row[0], str(row[1]), str(row[4]), -1, None, None)
            if group and (
                entry.transfer_id != group[0].transfer_id or _block(entry.id) != _block(group[0].id)
            ):
                head = self.match(group, group_size, head, transfers)
                group, group_size = [], 0
            group_size += 1
            if len(group) <= LEGS_PER_TRANSFER_MAX:
                group.append(entry)
        if group:
            head = self.match(group, group_size, head, transfers)
        while head is not None:
            self.problem(f"transfer {head.id}: no entries")
            head = next(transfers, None)

    def match(
        self,
        group: list[_Entry],
        size: int,
        head: _Transfer | None,
        transfers: Iterator[_Transfer],
    ) -> _Transfer | None:
        """Match a run of entries with one transfer id to its transfer; returns the next
        created transfer not matched yet."""
        first = group[0]
        block = _block(first.id)
        while head is not None and _block(head.seq) < block:
            self.problem(f"transfer {head.id}: no entries")
            head = next(transfers, None)
        if head is not None and head.id == first.transfer_id and _block(head.seq) == block:
            self.compare(head.id, head.ledger_id, head.expected, group, size)
            return next(transfers, None)
        rows = store.transfer_rows_by_id(self.uow, [first.transfer_id])
        if not rows:
            self.problem(
                f"entry {first.id}: entries of transfer {first.transfer_id}, which is not stored"
            )
            return head
        seq = rows[0][0]
        if _block(seq) == block:  # created in this transaction, after transfers with no entries
            if head is None or head.seq > seq:
                self.problem(
                    f"transfer {first.transfer_id}: entry {first.id} is extra (its entries are "
                    "not consecutive, or repeated)"
                )
                return head
            while head is not None and head.seq < seq:
                self.problem(f"transfer {head.id}: no entries")
                head = next(transfers, None)
            assert head is not None
            assert head.seq == seq
            self.compare(head.id, head.ledger_id, head.expected, group, size)
            return next(transfers, None)
        stored = self.decode(rows[0], report=False)  # reported in its place if it does not
        if (
            stored is not None
            and stored.action == Action.TRANSFER
            and stored.pending
            and stored.status == Status.EXPIRED
            and _block(stored.seq) < block
        ):
            self.expiries += 1
            expected = [(a, d, 0, -n) for a, d, n in stored.effective_legs()]
            self.compare(stored.id, stored.ledger_id, expected, group, size)
            return head
        self.problem(
            f"transfer {first.transfer_id}: entry {first.id} is extra (written after the "
            "transfer, which is not an expired pending transfer)"
        )
        return head

    def compare(
        self,
        transfer_id: str,
        ledger_id: str,
        expected: list[Expected] | None,
        group: list[_Entry],
        size: int,
    ) -> None:
        for entry in group:
            acc = self.accounts.get(entry.account_id)
            if acc is not None and acc.ledger_id != ledger_id:
                self.problem(
                    f"transfer {transfer_id}: entry {entry.id} is on account {acc.id} of "
                    f"ledger {acc.ledger_id}, not the transfer's {ledger_id}"
                )
                return
        if expected is None:
            return  # the transfer row itself is wrong, and reported
        for k, (entry, want) in enumerate(zip_longest(group, expected)):
            if entry is None:
                self.problem(
                    f"transfer {transfer_id}: entry {k + 1} of {len(expected)} is missing "
                    f"(expected {_describe(want)}, after entry {group[-1].id})"
                )
                return
            if want is None:
                self.problem(
                    f"transfer {transfer_id}: entry {entry.id} is extra ({size} entries, "
                    f"expected {len(expected)})"
                )
                return
            if entry.amount is None or entry.pending_delta is None:
                return  # reported when decoded
            got = (entry.account_id, entry.direction, entry.amount, entry.pending_delta)
            if got != want:
                self.problem(
                    f"transfer {transfer_id}: entry {entry.id} is {_describe(got)}, "
                    f"expected {_describe(want)}"
                )
                return
        if size > len(group):
            self.problem(
                f"transfer {transfer_id}: {size} entries from entry {group[0].id}, "
                f"expected {len(expected)}"
            )

    # -- entries -----------------------------------------------------------------------------

    def entry(self, row: Sequence[Any]) -> _Entry:
        """Check an entry against its predecessor and add it to its account's sums. Messages
        are built only for problems: this runs once per entry."""
        self.tick()
        self.report.entries += 1
        entry_id, account_id, version, prev_id, transfer_id, direction = row[:6]
        decoded = _decode_all(row[6:12])
        values: list[int | None]
        if decoded is not None:
            values = list(decoded)
        else:
            where = f"account {account_id}: entry {entry_id}"
            values = [
                self.money(v, f"{where}: {n}") for n, v in zip(_ENTRY_MONEY, row[6:12], strict=True)
            ]
        amount, pending_delta = values[0], values[1]
        entry = _Entry(entry_id, account_id, transfer_id, direction, amount, pending_delta)
        acc = self.accounts.get(account_id)
        if acc is None:
            self.problem(f"account {account_id}: entry {entry_id}: the account does not exist")
            return entry
        acc.count += 1
        if direction != _DEBIT and direction != _CREDIT:
            self.problem(
                f"account {account_id}: entry {entry_id}: direction {direction!r} is neither "
                "debit nor credit"
            )
            return entry
        if amount is not None and pending_delta is not None:
            acc.sums[direction] += amount
            acc.sums[2 + direction] += pending_delta
            if amount < 0:
                self.problem(f"account {account_id}: entry {entry_id}: negative amount {amount}")
        base: list[int] | None
        if prev_id is None:
            if version != 1:
                self.problem(
                    f"account {account_id}: entry {entry_id} (version {version}) has no "
                    "previous entry"
                )
            base = [0, 0, 0, 0]
        elif row[12] is None:
            self.problem(
                f"account {account_id}: entry {entry_id} (version {version}) follows a missing "
                f"entry {prev_id}"
            )
            base = None
        else:
            if row[12] != account_id or row[13] != version - 1:
                self.problem(
                    f"account {account_id}: entry {entry_id} (version {version}) follows entry "
                    f"{prev_id} of account {row[12]} version {row[13]}, not version "
                    f"{version - 1} of its own"
                )
            # A predecessor's value that does not decode is reported with its own row.
            base = _decode_all(row[14:18])
        totals = _ints(values[2:])
        if entry_id == acc.last_entry_id:
            acc.last_seen = True
            if version != acc.version or (acc.totals is not None and totals != list(acc.totals)):
                self.problem(
                    f"account {acc.id}: last entry's running balance differs (entry {entry_id} "
                    f"version {version}: {values[2:]}; account version {acc.version}: "
                    f"{acc.totals})"
                )
        elif entry_id in self.last_entry_owner:
            self.problem(
                f"account {self.last_entry_owner[entry_id]}: last entry {entry_id} is "
                f"account {account_id}'s"
            )
        if base is None or totals is None or amount is None or pending_delta is None:
            return entry
        base[direction] += amount
        base[2 + direction] += pending_delta
        if base != totals:
            self.problem(
                f"account {account_id}: entry {entry_id}: running totals {tuple(totals)} are "
                f"not its predecessor's plus its own "
                f"{_describe((account_id, direction, amount, pending_delta))}: expected "
                f"{tuple(base)}"
            )
            return entry
        dp, cp, dpend, cpend = totals
        if min(totals) < 0 or dp + dpend > AMOUNT_MAX or cp + cpend > AMOUNT_MAX:
            self.problem(
                f"account {account_id}: entry {entry_id}: running totals {tuple(totals)} "
                "out of range"
            )
        if acc.flags:
            self.check_flags(acc, totals, f"account {account_id}: entry {entry_id}")
        return entry

    # -- transfers ---------------------------------------------------------------------------

    def created_transfers(self) -> Iterator[_Transfer]:
        """Transfers by seq, each checked and given the entries it must have; the targets
        of a page of them are read together."""
        page: list[tuple[Any, ...]] = []
        for row in store.verify_transfers(self.uow):
            page.append(row)
            if len(page) == VERIFY_FETCH_ROWS:
                yield from self.transfer_page(page)
                page = []
        yield from self.transfer_page(page)

    def transfer_page(self, rows: list[tuple[Any, ...]]) -> Iterator[_Transfer]:
        decoded = [self.decode(row) for row in rows]
        target_ids = {r.target_id for r in decoded if r is not None and r.target_id is not None}
        targets: dict[str, _Row | None] = {}
        for row in store.transfer_rows_by_id(self.uow, sorted(target_ids)):
            targets[row[1]] = self.decode(row, report=False)
        for row, r in zip(rows, decoded, strict=True):
            self.tick()
            self.report.transfers += 1
            t = _Transfer(row[0], row[1], row[2])
            if r is not None:
                target = targets.get(r.target_id) if r.target_id else None
                try:
                    t.expected = self.transfer(r, target)
                except (TypeError, ValueError) as exc:  # as for entries
                    self.problem(
                        f"transfer {r.id}: a column holds a value of the wrong type ({exc})"
                    )
            yield t

    def decode(self, row: Sequence[Any], *, report: bool = True) -> _Row | None:
        """A transfer row as numbers, or None (reported unless `report` is False: a target
        is decoded again, and reported, in its own place in the stream)."""
        seq, transfer_id, ledger_id, action, status, debit, credit, amount, legs_json = row[:9]
        target_id, pending = row[9], row[10]
        what = f"transfer {transfer_id}"
        try:
            value = from_stored_int(amount)
        except ValueError as exc:
            if report:
                self.problem(f"{what}: amount is not a stored money value ({amount!r}: {exc})")
            return None
        legs = None
        if legs_json is not None:
            try:
                parsed = json.loads(legs_json)
                legs = [(str(a), int(d), _int(n)) for a, d, n in parsed]
            except (ValueError, TypeError) as exc:
                if report:
                    self.problem(f"{what}: legs do not parse ({exc})")
                return None
        if action not in _ACTIONS or status not in _STATUSES:
            if report:
                self.problem(f"{what}: action {action!r} or status {status!r} is unknown")
            return None
        return _Row(
            seq,
            transfer_id,
            ledger_id,
            action,
            status,
            debit,
            credit,
            value,
            legs,
            target_id,
            bool(pending),
        )

    def transfer(self, t: _Row, target: _Row | None) -> list[Expected] | None:
        """Check a transfer row; the entries it must have, or None where they cannot be
        derived (reported)."""
        what = f"transfer {t.id}"
        if t.amount <= 0:
            self.problem(f"{what}: amount {t.amount} is not positive")
        if t.action == Action.TRANSFER:
            if not self.check_accounts_of(t):
                return None
            if t.pending:
                self.pending_by_status[t.status] += 1
                if t.status == Status.PENDING:
                    self.report.transfers_pending += 1
                    for account_id, direction, amount in t.effective_legs():
                        self.accounts[account_id].open_pending[direction] += amount
                return [(a, d, 0, n) for a, d, n in t.effective_legs()]
            if t.status != Status.POSTED:
                self.problem(f"{what}: status {Status(t.status).label} but not pending")
            return [(a, d, n, 0) for a, d, n in t.effective_legs()]
        if t.target_id is None:
            self.problem(f"{what}: {Action(t.action).name.lower()} without a target")
            return None
        if target is None:
            self.problem(f"{what}: target {t.target_id} is not stored (or does not decode)")
            return None
        if target.seq >= t.seq or target.ledger_id != t.ledger_id:
            self.problem(
                f"{what}: target {target.id} comes later or is in another ledger "
                f"({target.ledger_id})"
            )
        if t.action == Action.REVERSE:
            return self.reversal(t, target)
        return self.resolution(t, target)

    def check_accounts_of(self, t: _Row) -> bool:
        """A TRANSFER's accounts exist, are in its ledger, and balance per asset."""
        if t.legs is None:  # the common case, without building messages when all is well
            debit = self.accounts.get(str(t.debit_account_id))
            credit = self.accounts.get(str(t.credit_account_id))
            if (
                debit is not None
                and credit is not None
                and debit is not credit
                and debit.ledger_id == credit.ledger_id == t.ledger_id
                and debit.asset == credit.asset
            ):
                return True
        what = f"transfer {t.id}"
        legs = t.effective_legs()
        if t.legs is not None and not 2 <= len(legs) <= LEGS_PER_TRANSFER_MAX:
            self.problem(f"{what}: {len(legs)} legs")
            return False
        if len({a for a, _, _ in legs}) != len(legs):
            self.problem(f"{what}: an account appears in two legs")
            return False
        net: dict[str, int] = {}
        for account_id, direction, amount in legs:
            acc = self.accounts.get(account_id)
            if acc is None:
                self.problem(f"{what}: account {account_id} does not exist")
                return False
            if acc.ledger_id != t.ledger_id:
                self.problem(
                    f"{what}: account {account_id} is in ledger {acc.ledger_id}, not {t.ledger_id}"
                )
            if direction not in (_DEBIT, _CREDIT) or amount <= 0:
                self.problem(f"{what}: leg on {account_id} is not a positive debit or credit")
                return False
            net[acc.asset] = net.get(acc.asset, 0) + (amount if direction == _DEBIT else -amount)
        if t.legs is None:
            debit, credit = (self.accounts[a] for a, _, _ in legs)
            if debit.asset != credit.asset:
                self.problem(
                    f"{what}: accounts {debit.id} ({debit.asset}) and {credit.id} "
                    f"({credit.asset}) hold different assets"
                )
        else:
            if any(net.values()):
                self.problem(f"{what}: legs do not balance per asset ({net})")
            if t.amount != sum(n for _, d, n in legs if d == _DEBIT):
                self.problem(f"{what}: amount {t.amount} is not the sum of its debit legs")
        return True

    def resolution(self, t: _Row, target: _Row) -> list[Expected] | None:
        """A POST or VOID: per leg of the target, what was posted and the release of the
        leg's reservation."""
        what = f"transfer {t.id}"
        post = t.action == Action.POST
        status = Status.POSTED if post else Status.VOIDED
        if target.action != Action.TRANSFER or not target.pending:
            self.problem(f"{what}: target {target.id} is not a pending transfer")
            return None
        if target.status != status or t.status != status:
            self.problem(
                f"{what}: {status.label} {target.id}, but their statuses are "
                f"{Status(t.status).label} and {Status(target.status).label}"
            )
        if (t.debit_account_id, t.credit_account_id) != (
            target.debit_account_id,
            target.credit_account_id,
        ):
            self.problem(f"{what}: accounts differ from its target {target.id}'s")
        legs = target.effective_legs()
        if t.amount > target.amount or (not post and t.amount != target.amount):
            self.problem(
                f"{what}: amount {t.amount}, but its target {target.id} holds {target.amount}"
            )
        if t.legs is not None and [(a, d) for a, d, _ in t.legs] != [(a, d) for a, d, _ in legs]:
            self.problem(f"{what}: legs are not its target {target.id}'s")
            return None
        if (t.legs is None) != (target.legs is None):
            self.problem(f"{what}: legs are not its target {target.id}'s")
            return None
        if not post:
            return [(a, d, 0, -n) for a, d, n in legs]
        posted = [n for _, _, n in t.legs] if t.legs is not None else [t.amount] * len(legs)
        return [(a, d, p, -n) for (a, d, n), p in zip(legs, posted, strict=True)]

    def reversal(self, t: _Row, target: _Row) -> list[Expected] | None:
        """A REVERSE: its own legs (the target's swapped, what moved), in the target's leg
        order; a simple reversal's debit account is the target's credit account."""
        what = f"transfer {t.id}"
        if target.status != Status.POSTED or target.pending or t.status != Status.POSTED:
            self.problem(f"{what}: reverses {target.id}, which is not a posted transfer")
        if (t.debit_account_id, t.credit_account_id) != (
            target.credit_account_id,
            target.debit_account_id,
        ) or (t.legs is None) != (target.legs is None):
            self.problem(f"{what}: accounts are not its target {target.id}'s, swapped")
            return None
        if t.legs is None:
            return [
                (str(t.credit_account_id), _CREDIT, t.amount, 0),
                (str(t.debit_account_id), _DEBIT, t.amount, 0),
            ]
        target_legs = target.effective_legs()
        if [(a, 1 - d) for a, d, _ in target_legs] != [(a, d) for a, d, _ in t.legs]:
            self.problem(f"{what}: legs are not its target {target.id}'s, swapped")
            return None
        return [(a, d, n, 0) for a, d, n in t.legs]

    # -- after the walk ----------------------------------------------------------------------

    def check_resolutions(self) -> None:
        """Each pending transfer is posted, voided or expired at most once, and as its status
        says (the counts are kept on the walk; the queries name the rows)."""
        for target_id, count in store.repeated_resolutions(self.uow):
            self.problem(f"transfer {target_id}: posted or voided {count} times")
        for transfer_id, status in store.unresolved_pending(self.uow):
            self.problem(
                f"transfer {transfer_id}: status {Status(status).label}, but no transfer "
                f"{'posts' if status == Status.POSTED else 'voids'} it"
            )
        expired = self.pending_by_status[Status.EXPIRED]
        if self.expiries != expired:
            self.problem(
                f"{expired} pending transfers have expired, but {self.expiries} releases of "
                "expired reservations were found"
            )

    def check_reversals(self) -> None:
        """Reversals of one transfer add up to at most its amount."""
        target_id: str | None = None
        total = 0
        batch: list[tuple[str, int]] = []
        for row_target, _reversal_id, amount in store.reversals_by_target(self.uow):
            value = _quiet(amount)  # a bad amount is reported with its transfer
            if row_target != target_id:
                if target_id is not None:
                    batch.append((target_id, total))
                target_id, total = row_target, 0
                if len(batch) >= VERIFY_FETCH_ROWS:
                    self.check_reversed(batch)
                    batch = []
            total += value or 0
        if target_id is not None:
            batch.append((target_id, total))
        self.check_reversed(batch)

    def check_reversed(self, batch: list[tuple[str, int]]) -> None:
        amounts = {
            row[1]: _quiet(row[7])
            for row in store.transfer_rows_by_id(self.uow, [t for t, _ in batch])
        }
        for target_id, total in batch:
            amount = amounts.get(target_id)
            if amount is not None and total > amount:
                self.problem(
                    f"transfer {target_id}: reversed {total} in all, more than its {amount}"
                )


_ENTRY_MONEY = ("amount", "pending_delta", *_TOTALS)


def _quiet(value: object) -> int | None:
    try:
        return from_stored_int(value)
    except ValueError:
        return None


def _decode_all(values: Sequence[object]) -> list[int] | None:
    """Stored money values as ints, or None if one of them does not decode."""
    try:
        return [v if type(v) is int else from_stored_int(v) for v in values]
    except ValueError:
        return None


def _ints(values: Sequence[int | None]) -> list[int] | None:
    """The values, or None if one of them did not decode."""
    ints = [v for v in values if v is not None]
    return ints if len(ints) == len(values) else None


def _int(value: object) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not an integer")
    return value
