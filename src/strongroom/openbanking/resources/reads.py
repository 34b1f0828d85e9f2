"""What an authorised consent reads of the ledger, through the ledger's service: the accounts
the customer selected (still theirs, in the consent's tenant, in a currency OB can express),
their balances, their booked entries as transactions (a bounded page at a time), and whether
an account's available balance covers an amount (funds confirmation: never the balance).

Signs are the account holder's: a ledger credit is money in (OB `Credit`), a balance is credits
less debits. `available` is the booked balance less outgoing reservations (pending debits), as
the ledger computes it for a credit-normal account; incoming reservations are not spendable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from strongroom.core.errors import InvalidRequest, NotFound, echo
from strongroom.core.limits import PAGE_SIZE_MAX
from strongroom.core.money import Asset
from strongroom.ledger.model import Balances, Direction
from strongroom.ledger.service import LedgerService
from strongroom.ledger.views import Account, Entry
from strongroom.openbanking.model import CreditDebit, Money, ob_asset
from strongroom.openbanking.resources.model import (
    OB_TRANSACTIONS_PAGE_SIZE,
    OB_TRANSACTIONS_SCAN_MAX,
    Consent,
)

LEDGER_TENANTS_CACHED: Final = 4_096


@dataclass(frozen=True, slots=True)
class ObAccount:
    """A ledger account as a consent shows it."""

    account: Account
    asset: Asset

    @property
    def id(self) -> str:
        return self.account.id


def booked(balances: Balances) -> int:
    """The account holder's booked balance: credits less debits (negative: overdrawn)."""
    return balances.credits_posted - balances.debits_posted


def available(balances: Balances) -> int:
    """Booked less outgoing reservations."""
    return booked(balances) - balances.debits_pending


def indicator(direction: Direction) -> CreditDebit:
    return CreditDebit.CREDIT if direction is Direction.CREDIT else CreditDebit.DEBIT


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a transactions page goes on: the account, and the entry version below which it
    reads (0: from the newest entry in the period)."""

    account_id: str
    before_version: int

    def encode(self) -> str:
        return f"{self.account_id}.{self.before_version}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        account_id, _, version = text.rpartition(".")
        if not account_id or not version.isascii() or not version.isdigit() or len(version) > 19:
            return None
        return cls(account_id, int(version))


@dataclass(frozen=True, slots=True)
class TransactionsPage:
    items: list[tuple[ObAccount, Entry]]
    next: Cursor | None  # None: the last page


class AccountInformation:
    def __init__(self, ledger: LedgerService) -> None:
        self.ledger = ledger
        # ledger id -> tenant id: a ledger never changes tenant, so what was read holds (as
        # the /v1 routes keep it); at most LEDGER_TENANTS_CACHED, emptied when full.
        self._ledger_tenants: dict[str, str] = {}

    def accounts(self, consent: Consent) -> list[ObAccount]:
        """The consent's accounts in the order selected, leaving out any that is no longer
        the customer's in the tenant (or no longer exists)."""
        found = [self._shown(consent, account_id) for account_id in consent.account_ids]
        return [a for a in found if a is not None]

    def account(self, consent: Consent, account_id: str) -> ObAccount:
        """One account of the consent; NotFound for any other (whether or not it exists)."""
        found = self._shown(consent, account_id) if account_id in consent.account_ids else None
        if found is None:
            raise NotFound(f"no account {echo(account_id)} under this consent", param="AccountId")
        return found

    def _shown(self, consent: Consent, account_id: str) -> ObAccount | None:
        """The account as the consent shows it, if it exists, is still the consent's
        customer's, in the consent's tenant, and in a currency OB can express."""
        try:
            account = self.ledger.get_account(account_id)
        except NotFound:
            return None
        asset = ob_asset(account.asset)
        if account.customer_id != consent.customer_id or asset is None:
            return None
        if self._tenant_of(account.ledger_id) != consent.tenant_id:
            return None
        return ObAccount(account, asset)

    def _tenant_of(self, ledger_id: str) -> str | None:
        tenant = self._ledger_tenants.get(ledger_id)
        if tenant is None:
            tenant = self.ledger.ledger_tenants([ledger_id]).get(ledger_id)
            if tenant is not None:
                if len(self._ledger_tenants) >= LEDGER_TENANTS_CACHED:
                    self._ledger_tenants.clear()
                self._ledger_tenants[ledger_id] = tenant
        return tenant

    def transactions(
        self,
        accounts: Sequence[ObAccount],
        directions: frozenset[CreditDebit],
        *,
        from_us: int | None,
        to_us: int | None,
        cursor: Cursor | None,
    ) -> TransactionsPage:
        """Booked entries (a posted amount; reservations are not transactions) of `accounts`
        in that order, each account's newest first, booked within [from_us, to_us] and in
        `directions`: at most OB_TRANSACTIONS_PAGE_SIZE items, examining at most
        OB_TRANSACTIONS_SCAN_MAX entries, so a page may hold fewer items and still lead on."""
        start = 0
        if cursor is not None:
            ids = [a.id for a in accounts]
            if cursor.account_id not in ids:
                raise NotFound("no such page", param="page")
            start = ids.index(cursor.account_id)
        items: list[tuple[ObAccount, Entry]] = []
        examined = 0
        for index in range(start, len(accounts)):
            ob_account = accounts[index]
            before = cursor.before_version if cursor is not None and index == start else 0
            before = before or self._top(ob_account, to_us)
            known_last = ob_account.account.version
            done = False
            while not done and before > 1:
                if len(items) >= OB_TRANSACTIONS_PAGE_SIZE or examined >= OB_TRANSACTIONS_SCAN_MAX:
                    return TransactionsPage(items, Cursor(ob_account.id, before))
                # The ledger's cursor names an existing version; above the newest known one,
                # read from the newest and skip what was appended since the first page.
                page = self.ledger.list_entries(
                    ob_account.id,
                    starting_after=before if before <= known_last else None,
                    limit=min(OB_TRANSACTIONS_SCAN_MAX - examined, PAGE_SIZE_MAX),
                )
                known_last = max([known_last, *(e.version for e in page.data)])
                for entry in page.data:
                    if entry.version >= before:
                        continue
                    examined += 1
                    before = entry.version
                    if from_us is not None and entry.created_at < from_us:
                        done = True  # older than the period: this account is done
                        break
                    if to_us is not None and entry.created_at > to_us:
                        continue
                    if entry.amount and indicator(entry.direction) in directions:
                        items.append((ob_account, entry))
                        if len(items) >= OB_TRANSACTIONS_PAGE_SIZE:
                            break
                else:
                    done = not page.has_more
            if len(items) >= OB_TRANSACTIONS_PAGE_SIZE:
                if not done and before > 1:
                    return TransactionsPage(items, Cursor(ob_account.id, before))
                if index + 1 < len(accounts):
                    return TransactionsPage(items, Cursor(accounts[index + 1].id, 0))
                return TransactionsPage(items, None)
        return TransactionsPage(items, None)

    def _top(self, ob_account: ObAccount, to_us: int | None) -> int:
        """The version just above the newest entry booked at or before `to_us` (the newest of
        all without it): where an account's first page starts reading."""
        if to_us is None:
            return ob_account.account.version + 1
        version, _, _ = self.ledger.balance_at(ob_account.id, as_of_us=to_us)
        return version + 1

    def funds_available(self, ob_account: ObAccount, money: Money) -> bool:
        """Whether the account's available balance covers `money` (in its currency)."""
        if money.asset != ob_account.asset:
            raise InvalidRequest(
                f"the consent's account holds {ob_account.asset.code}",
                param="Data.InstructedAmount.Currency",
                code="consent_currency_mismatch",
            )
        current = self.ledger.get_account(ob_account.id)
        return available(current.balances) >= money.amount
