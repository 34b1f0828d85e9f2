"""`verify`'s replay: each tenant's leaves replayed into account state, compared with every
account row and every entry row of the ledger (docs/audit.md, "What verify checks").

The tree check proves that the leaves are the ones signed; this proves that the ledger's rows
are the ones the leaves describe, so a change made behind both (an entry and its account's
totals raised together, a flag removed, an account closed by hand) is caught and named.

Memory is per account, never per entry or transfer:

- the leaves are replayed in log order into one `_Account` per account (created by its
  `account.created` leaf or the baseline, then each entry's version must follow the last and its
  four totals must be the previous ones plus its amounts);
- the ledger's entries are read once by id (commit order on SQLite) and matched, by (account,
  version), to the leaf entries read in step from their tenant's log: a side runs ahead of the
  other by at most AUDIT_REPLAY_WINDOW_ENTRIES (PostgreSQL commits transactions a little out of
  id order); what is still unmatched past that, or at the end, is a problem.

History before the audit log (a database upgraded from before migration 0005) is marked by
`audit.baseline` leaves (migration 0007): each holds accounts' state when the log began for
them; the replay starts those accounts there, and neither their earlier entries nor the
transfers up to the baseline's `transfer_seq` need a leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from strongroom.audit import leaf as leaves_
from strongroom.audit import store
from strongroom.core.errors import StrongroomError
from strongroom.core.limits import AUDIT_REPLAY_PROBLEMS_MAX, AUDIT_REPLAY_WINDOW_ENTRIES
from strongroom.core.money import from_stored_int
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import AccountFlag

BASELINE_EVENT: Final = "audit.baseline"  # its leaves are also indexed by this ref
PROGRESS_EVERY: Final = 100_000  # ledger entries between two progress lines
_BUNDLES_PAGE: Final = 2  # bundles a log's reader holds (a bulk batch's is ~2 MB)
_DIRECTIONS: Final = ("debit", "credit")
_TOTALS: Final = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
_ENTRY_FIELDS: Final = ("transfer", "direction", "amount", "pending_delta", *_TOTALS, "at")

Key = tuple[str, int]  # (account id, version)
LeafEntry = tuple[int, str, list[Any]]  # (leaf index, transfer id, the leaf's entry)


class Problems:
    """At most `cap` lines, then a count of the rest."""

    def __init__(self, cap: int = AUDIT_REPLAY_PROBLEMS_MAX) -> None:
        self.cap = cap
        self.lines: list[str] = []
        self.more = 0

    def add(self, line: str) -> None:
        if len(self.lines) < self.cap:
            self.lines.append(line)
        else:
            self.more += 1

    def out(self) -> list[str]:
        tail = [f"and {self.more} more problems replaying the leaves"] if self.more else []
        return self.lines + tail


@dataclass(slots=True)
class Baseline:
    """Where audited history begins, from the `audit.baseline` leaves (found by their ref)."""

    accounts: dict[str, tuple[str, int, int]] = field(default_factory=dict)
    """account id -> (log id, leaf index, version): entries up to that version have no leaf"""
    transfer_seq: int = -1  # transfers up to this seq may have no leaf
    leaves: set[tuple[str, int]] = field(default_factory=set)  # (log id, index)
    problems: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        """Where each log's baseline is and how many accounts it vouches for: history the log
        cannot prove (an operator who sees one appear after the upgrade that wrote it knows
        something wrote it since)."""
        by_log: dict[str, tuple[set[int], int]] = {}
        for log_id, index, _version in self.accounts.values():
            indexes, count = by_log.get(log_id, (set(), 0))
            by_log[log_id] = (indexes | {index}, count + 1)
        return [
            f"log {log_id}: {count} accounts start from the audit baseline at leaf "
            f"{min(indexes)} (their history before it has no leaves)"
            for log_id, (indexes, count) in sorted(by_log.items())
        ]


@dataclass(slots=True)
class ReplayReport:
    accounts: int = 0
    entries: int = 0  # ledger entries compared with their leaf
    entries_before_log: int = 0  # ledger entries older than the baseline, without a leaf
    problems: list[str] = field(default_factory=list)


class _Account:
    """An account as its leaves describe it so far."""

    __slots__ = (
        "asset",
        "closed",
        "flags",
        "frozen",
        "ledger_id",
        "log_id",
        "normal",
        "totals",
        "version",
    )

    def __init__(
        self,
        log_id: str,
        ledger_id: str,
        asset: str,
        normal: str,
        flags: int,
        closed: bool,
        version: int,
        totals: tuple[int, int, int, int],
    ) -> None:
        self.log_id = log_id
        self.ledger_id = ledger_id
        self.asset = asset
        self.normal = normal
        self.flags = flags
        self.closed = closed
        self.frozen = False  # account.frozen / account.unfrozen leaves (migration 0022)
        self.version = version
        self.totals = totals


class _Log:
    """One log's leaves, read in order as the ledger's entries ask for them."""

    __slots__ = ("id", "leaves", "pending")

    def __init__(self, log_id: str, leaves: Iterator[tuple[int, bytes]]) -> None:
        self.id = log_id
        self.leaves = leaves
        self.pending: dict[Key, LeafEntry] = {}  # read, not matched yet; oldest first


def log_leaves(uow: UnitOfWork, log_id: str) -> Iterator[tuple[int, bytes]]:
    """The log's leaves as (index, data), in order, two bundles read at a time; a bundle that
    does not unpack is skipped (the tree check names it)."""
    for first, _count, data in store.iter_bundles(uow, log_id, page=_BUNDLES_PAGE):
        try:
            bundle = store.unpack_bundle(data)
        except ValueError:
            continue  # the tree check names it
        yield from enumerate(bundle, first)


def _flags(names: object) -> int:
    try:
        return int(AccountFlag.parse(names))
    except StrongroomError as exc:
        raise ValueError(str(exc)) from None


def _flag_names(flags: int) -> str:
    try:
        return "[" + ", ".join(AccountFlag(flags).names()) + "]"
    except ValueError:
        return str(flags)


def _diff(ledger: dict[str, Any], leaf: dict[str, Any], whose: str) -> str:
    return ", ".join(
        f"{k} {ledger[k]} in the ledger, {leaf[k]} in {whose}"
        for k in ledger
        if ledger[k] != leaf[k]
    )


def load_baseline(uow: UnitOfWork) -> Baseline:
    """The baseline leaves of every log. A leaf the tree does not hold is named by the tree
    check; one not indexed by its ref is named by the replay when it reaches it."""
    found = Baseline()
    for log_id in store.log_ids(uow):
        indexes = sorted(store.ref_indexes(uow, log_id, BASELINE_EVENT))
        # Migration 0007 writes one baseline, as consecutive leaves, once: anything else was
        # written by someone else, and a baseline vouches for balances without entries.
        if indexes and indexes != list(range(indexes[0], indexes[0] + len(indexes))):
            found.problems.append(
                f"log {log_id}: audit baseline leaves at {indexes} are not one group: only "
                "the upgrade writes a baseline, once"
            )
        for index in indexes:
            try:
                found_leaves = store.leaves(uow, log_id, index, index + 1)
            except store.BundleDamaged:
                continue  # the tree check names the bundle; the replay, what it vouched for
            for at, data in found_leaves:
                try:
                    content = leaves_.parse(data)
                    if content.get("type") != BASELINE_EVENT:
                        continue
                    body = content["data"]
                    found.transfer_seq = max(found.transfer_seq, int(body["transfer_seq"]))
                    for a in body["accounts"]:
                        found.accounts[str(a[0])] = (log_id, at, int(a[6]))
                except (leaves_.LeafError, KeyError, TypeError, ValueError, IndexError):
                    continue  # the replay names it
                found.leaves.add((log_id, at))
    return found


class Replay:
    def __init__(
        self,
        uow: UnitOfWork,
        baseline: Baseline,
        say: Callable[[str], None],
        window: int = AUDIT_REPLAY_WINDOW_ENTRIES,
    ) -> None:
        self.uow = uow
        self.baseline = baseline
        self.say = say
        self.window = window
        self.problems = Problems()
        self.report = ReplayReport()
        self.accounts: dict[str, _Account] = {}
        self.logs = {log_id: _Log(log_id, log_leaves(uow, log_id)) for log_id in store.log_ids(uow)}
        self.waiting: dict[Key, tuple[Any, ...]] = {}  # ledger entries whose leaf is not read yet
        self.held = 0  # leaf entries read and not matched, all logs together

    def run(self) -> ReplayReport:
        uow, say = self.uow, self.say
        # account id -> its ledger's tenant: which log holds its leaves.
        routes = {r[0]: r[11] for r in store.account_rows(uow)}
        say("replaying the leaves against the ledger's entries")
        for count, row in enumerate(store.entry_rows(uow), 1):
            try:
                self._ledger_entry(row, routes.get(row[1]))
            except (ValueError, TypeError, OverflowError) as exc:
                # A row edited by hand into something no write makes (a version that is no
                # number...): named, and the replay goes on.
                self.problems.add(
                    f"entry {row[0]}: a column holds what no write stores ({why(exc)})"
                )
            if count % PROGRESS_EVERY == 0:
                say(f"  {count} entries")
        del routes
        for log in self.logs.values():
            self._pull(log, None)
        for row in self.waiting.values():
            self._no_leaf(row)
        self.waiting.clear()
        for log in self.logs.values():
            for (account, version), (index, tid, _e) in log.pending.items():
                self.problems.add(
                    f"log {log.id}: leaf {index} has entry {version} of account {account} "
                    f"(transfer {tid}), the ledger does not"
                )
            log.pending.clear()
        say("the leaves' accounts against the ledger's")
        self._accounts()
        self.report.problems = self.problems.out()
        return self.report

    # -- the ledger's side -----------------------------------------------------------------

    def _ledger_entry(self, row: Sequence[Any], tenant: str | None) -> None:
        account, version = row[1], int(row[2])
        base = self.baseline.accounts.get(account)
        if base is not None and version <= base[2]:
            self.report.entries_before_log += 1
            return
        key = (account, version)
        log = self.logs.get(tenant) if tenant is not None else None
        if log is not None:
            found = log.pending.pop(key, None)
            if found is not None:
                self.held -= 1
            else:
                found = self._pull(log, key)
            if found is not None:
                self._compare(row, log.id, found)
                return
        if key in self.waiting:
            self.problems.add(f"entry {row[0]}: account {account} has two entries {version}")
            return
        self.waiting[key] = tuple(row)
        if len(self.waiting) > self.window:
            self._no_leaf(self.waiting.pop(next(iter(self.waiting))))

    def _no_leaf(self, row: Sequence[Any]) -> None:
        self.problems.add(
            f"entry {row[0]} (account {row[1]} version {row[2]}, transfer {row[4]}) has no leaf "
            "in the audit log"
        )

    def _compare(self, row: Sequence[Any], log_id: str, found: LeafEntry) -> None:
        self.report.entries += 1
        index, tid, e = found
        money = row[6:12]
        if not all(type(v) is int for v in money):
            try:
                money = [from_stored_int(v) for v in money]
            except ValueError as exc:
                self.problems.add(f"entry {row[0]}: a money column: {exc}")
                return
        direction = row[5]
        ledger = (
            row[4],
            _DIRECTIONS[direction] if direction in (0, 1) else direction,
            *money,
            row[12],
        )
        leaf = (tid, *e[2:10])
        if ledger != leaf:
            said = _diff(
                dict(zip(_ENTRY_FIELDS, ledger, strict=True)),
                dict(zip(_ENTRY_FIELDS, leaf, strict=True)),
                "the leaf",
            )
            self.problems.add(
                f"entry {row[0]} (account {row[1]} version {row[2]}) differs from leaf {index} "
                f"of log {log_id}: {said}"
            )

    # -- the log's side --------------------------------------------------------------------

    def _pull(self, log: _Log, want: Key | None) -> LeafEntry | None:
        """Read the log's leaves, replaying each, until the entry `want` (None: to the end) or
        a window of entries; each entry read is matched with a waiting ledger entry or held."""
        found: LeafEntry | None = None
        read = 0
        waiting = self.waiting
        for index, data in log.leaves:
            try:
                content = leaves_.parse(data)
            except leaves_.LeafError as exc:
                self.problems.add(f"log {log.id}: leaf {index} does not decode: {exc}")
                continue
            entries = content.get("entries")
            if entries is None:
                self._record(log.id, index, content)
                continue
            tid = content["transfer"]["id"]
            for e in entries:
                if not self._apply(log.id, index, e):
                    continue
                key = (e[0], e[1])
                item = (index, tid, e)
                read += 1
                if key == want:
                    found = item
                elif key in waiting:
                    self._compare(waiting.pop(key), log.id, item)
                else:
                    # A second leaf entry of one version (named by _apply) replaces the first.
                    self.held += key not in log.pending
                    log.pending[key] = item
                    if self.held > self.window:
                        self._leaf_unmatched(log)
            if found is not None or (want is not None and read >= self.window):
                break
        return found

    def _leaf_unmatched(self, log: _Log) -> None:
        (account, version), (index, tid, _e) = next(iter(log.pending.items()))
        del log.pending[(account, version)]
        self.held -= 1
        self.problems.add(
            f"log {log.id}: leaf {index} has entry {version} of account {account} "
            f"(transfer {tid}), the ledger does not"
        )

    def _apply(self, log_id: str, index: int, e: list[Any]) -> bool:
        """Replay one leaf entry into its account; False for an entry older than the baseline
        (written before the log began for its account: the ledger's is not read either)."""
        account, version = e[0], e[1]
        base = self.baseline.accounts.get(account)
        if base is not None and version <= base[2]:
            return False
        acc = self.accounts.get(account)
        if acc is None or acc.log_id != log_id:
            self.problems.add(
                f"log {log_id}: leaf {index} has an entry of account {account}, which no earlier "
                "leaf of this log creates"
            )
            return True
        if version != acc.version + 1:
            self.problems.add(
                f"log {log_id}: leaf {index}: account {account}'s entry {version} follows "
                f"entry {acc.version}"
            )
        dp, cp, dpend, cpend = acc.totals
        if e[2] == "debit":
            dp, dpend = dp + e[3], dpend + e[4]
        else:
            cp, cpend = cp + e[3], cpend + e[4]
        after = (e[5], e[6], e[7], e[8])
        if (dp, cp, dpend, cpend) != after:
            self.problems.add(
                f"log {log_id}: leaf {index}: account {account}'s entry {version} has totals "
                "that are not its previous ones plus its amounts"
            )
        acc.version, acc.totals = version, after
        return True

    def _record(self, log_id: str, index: int, content: dict[str, Any]) -> None:
        kind, data = content["type"], content["data"]
        try:
            if kind == "account.created":
                self._created(log_id, index, data)
            elif kind in ("account.closed", "account.reopened"):
                account = str(data["account_id"])
                acc = self.accounts.get(account)
                base = self.baseline.accounts.get(account)
                if acc is not None and acc.log_id == log_id:
                    acc.closed = kind == "account.closed"
                elif base is None or base[0] != log_id or base[1] < index:
                    self.problems.add(
                        f"log {log_id}: leaf {index} ({kind}) names account {account}, which no "
                        "earlier leaf of this log creates"
                    )
            elif kind in ("account.frozen", "account.unfrozen"):
                account = str(data["account_id"])
                acc = self.accounts.get(account)
                base = self.baseline.accounts.get(account)
                if acc is not None and acc.log_id == log_id:
                    acc.frozen = kind == "account.frozen"
                # One before the account's baseline in this log is history the baseline holds.
                elif base is None or base[0] != log_id or base[1] < index:
                    self.problems.add(
                        f"log {log_id}: leaf {index} ({kind}) names account {account}, which no "
                        "earlier leaf of this log creates"
                    )
            elif kind == BASELINE_EVENT:
                self._baseline(log_id, index, data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            self.problems.add(f"log {log_id}: leaf {index} ({kind}) does not read: {exc!r}")

    def _created(self, log_id: str, index: int, data: dict[str, Any]) -> None:
        account = str(data["account_id"])
        if account in self.accounts:
            self.problems.add(f"log {log_id}: leaf {index} creates account {account} again")
            return
        normal = str(data["normal_balance"])
        if normal not in _DIRECTIONS:
            raise ValueError(f"normal balance {normal!r}")
        self.accounts[account] = _Account(
            log_id,
            str(data["ledger_id"]),
            str(data["asset"]),
            normal,
            _flags(data["flags"]),
            False,
            0,
            (0, 0, 0, 0),
        )

    def _baseline(self, log_id: str, index: int, data: dict[str, Any]) -> None:
        if (log_id, index) not in self.baseline.leaves:
            self.problems.add(
                f"log {log_id}: leaf {index} is a baseline that audit_refs does not index "
                f"under {BASELINE_EVENT!r}"
            )
        for a in data["accounts"]:
            account = str(a[0])
            if account in self.accounts:
                self.problems.add(f"log {log_id}: leaf {index} starts account {account} again")
                continue
            normal = str(a[3])
            if normal not in _DIRECTIONS:
                raise ValueError(f"normal balance {normal!r}")
            totals = (int(a[7]), int(a[8]), int(a[9]), int(a[10]))
            self.accounts[account] = _Account(
                log_id, str(a[1]), str(a[2]), normal, _flags(a[4]), bool(a[5]), int(a[6]), totals
            )

    # -- accounts --------------------------------------------------------------------------

    def _accounts(self) -> None:
        for row in store.account_rows(self.uow):
            self.report.accounts += 1
            try:
                self._account(row)
            except (ValueError, TypeError, OverflowError) as exc:
                # A row edited by hand into something no write makes (flags that are no
                # number...): named, and the comparison goes on.
                self.problems.add(
                    f"account {row[0]}: a column holds what no write stores ({why(exc)})"
                )
        for account in sorted(self.accounts):
            self.problems.add(f"the audit log has account {account}, the ledger does not")
        self.accounts.clear()

    def _account(self, row: Sequence[Any]) -> None:
        problems = self.problems
        account = row[0]
        acc = self.accounts.pop(account, None)
        if acc is None:
            problems.add(f"account {account} has no account.created leaf in the audit log")
            return
        if row[11] != acc.log_id:
            problems.add(
                f"account {account}: its ledger {row[1]} is tenant {row[11]}'s, its leaves "
                f"are in log {acc.log_id}"
            )
        try:
            totals = [from_stored_int(v) for v in row[6:10]]
        except ValueError as exc:
            problems.add(f"account {account}: a total: {exc}")
            return
        normal = row[3]
        ledger = {
            "ledger": row[1],
            "asset": row[2],
            "normal balance": _DIRECTIONS[normal] if normal in (0, 1) else normal,
            "flags": _flag_names(int(row[4])),
            "closed": bool(row[5]),
            "frozen": bool(row[12]),
            "version": int(row[10]),
            **dict(zip(_TOTALS, totals, strict=True)),
        }
        leaves = {
            "ledger": acc.ledger_id,
            "asset": acc.asset,
            "normal balance": acc.normal,
            "flags": _flag_names(acc.flags),
            "closed": acc.closed,
            "frozen": acc.frozen,
            "version": acc.version,
            **dict(zip(_TOTALS, acc.totals, strict=True)),
        }
        if ledger != leaves:
            problems.add(
                f"account {account} differs from its leaves: {_diff(ledger, leaves, 'them')}"
            )


def why(exc: BaseException) -> str:
    """An exception as a verifier names it: its kind and the start of its message (a value the
    message quotes is clipped)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:60]}{'...' if len(text) > 60 else ''}"


def check(uow: UnitOfWork, baseline: Baseline, say: Callable[[str], None]) -> ReplayReport:
    """Replay every log's leaves and compare them with every account and entry row."""
    return Replay(uow, baseline, say).run()
