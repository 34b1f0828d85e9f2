"""The ledger's accounts: creation (idempotent by a client-chosen id), reads, lists, closing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.core import ids
from strongroom.core.errors import Conflict, InvalidRequest, NotFound
from strongroom.core.limits import (
    BATCH_TRANSFERS_MAX,
    PAGE_SIZE_DEFAULT,
)
from strongroom.core.money import Asset, iso_asset, validate_custom_asset
from strongroom.core.pagination import check_limit
from strongroom.db.uow import UnitOfWork
from strongroom.ledger import store
from strongroom.ledger.base import LedgerBase
from strongroom.ledger.listing import Page
from strongroom.ledger.model import (
    AccountFlag,
    AccountResult,
    Direction,
    canonical_metadata,
    validate_id,
    validate_name,
)
from strongroom.ledger.views import (
    Account,
    account_from_row,
    page_of,
)


@dataclass(frozen=True, slots=True)
class AccountSpec:
    ledger_id: str
    asset: str
    normal_balance: Direction
    flags: AccountFlag = AccountFlag.NONE
    name: str | None = None
    metadata: dict[str, Any] | None = None
    id: str | None = None
    customer_id: str | None = None  # its owner, a customer of the ledger's tenant


@dataclass(slots=True)
class AccountOutcome:
    index: int
    result: AccountResult
    account_id: str
    account: Account | None  # the account as stored, when result.ok and nothing differed


class AccountExists(Conflict):
    """An account with the id exists with other fields: `code` names the first that differs."""

    status = 422

    def __init__(self, result: AccountResult, index: int | None = None) -> None:
        field_name = result.value.removeprefix("exists_with_different_")
        super().__init__(
            f"an account with this id exists with a different {field_name.replace('_', ' ')}",
            param=field_name if index is None else f"accounts[{index}].{field_name}",
        )
        self.code = result.value


_ACCOUNT_FIELDS: Final = (
    (1, AccountResult.EXISTS_WITH_DIFFERENT_LEDGER_ID),
    (3, AccountResult.EXISTS_WITH_DIFFERENT_ASSET),
    (4, AccountResult.EXISTS_WITH_DIFFERENT_NORMAL_BALANCE),
    (5, AccountResult.EXISTS_WITH_DIFFERENT_FLAGS),
    (2, AccountResult.EXISTS_WITH_DIFFERENT_NAME),
    (7, AccountResult.EXISTS_WITH_DIFFERENT_METADATA),
    (16, AccountResult.EXISTS_WITH_DIFFERENT_CUSTOMER_ID),
)


def _compare_account(new: Sequence[Any], stored: Sequence[Any]) -> AccountResult:
    for column, result in _ACCOUNT_FIELDS:
        if new[column] != stored[column]:
            return result
    return AccountResult.EXISTS


class AssetExists(Conflict):
    code = "asset_exists"


class AccountUseCases(LedgerBase):
    """Accounts: created in batches (idempotent by client-chosen id), read, listed, closed;
    and the custom assets they hold."""

    def create_asset(
        self, code: object, scale: object, *, retry: bool = False, actor: str | None = None
    ) -> Asset:
        """`retry`: an attempt of a request that ran before (an idempotent retry after a crash):
        the asset it may have created, with the same scale, is the answer, not a conflict.
        `actor`: who asks (the row's `created_by`)."""
        asset = validate_custom_asset(code, scale)
        with self._uow() as uow:
            # One statement decides, so two concurrent creations cannot both pass a check.
            now = self.clock.now_us()
            created = store.insert_asset(uow, asset.code, asset.scale, now, actor)
            uow.commit()
        if not created:
            if retry and self.get_asset(asset.code) == asset:
                return asset
            raise AssetExists(f"asset {asset.code} exists already", param="code")
        return asset

    def get_asset(self, code: str) -> Asset:
        found = iso_asset(code)
        if found is not None:
            return found
        with self._uow(write=False) as uow:
            scale = store.get_asset_scale(uow, code)
        if scale is None:
            raise InvalidRequest(f"unknown asset {code!r}", param="asset", code="unknown_asset")
        return Asset(code, scale)

    def create_accounts(
        self, specs: Sequence[AccountSpec], *, actor: str = "ledger"
    ) -> list[Account]:
        """All or nothing: any invalid spec raises and nothing is written. A spec whose
        client-chosen id exists with the same fields is `exists` (the stored account comes
        back, nothing is written for it); with a field that differs, AccountExists names it
        (`exists_with_different_<field>`) and nothing is written."""
        outcomes = self.create_accounts_results(specs, actor=actor)
        for i, outcome in enumerate(outcomes):
            if not outcome.result.ok:
                raise AccountExists(outcome.result, i)
        return [o.account for o in outcomes if o.account is not None]

    def create_accounts_results(
        self, specs: Sequence[AccountSpec], *, actor: str = "ledger"
    ) -> list[AccountOutcome]:
        """Like create_accounts, a result per spec (TransferOutcome's shape): created, exists
        or exists_with_different_<field>. Bad input still raises; when any spec differs from
        the account its id names, nothing is written. `actor`: who asks (each new row's
        `created_by`, and its audit leaf's actor)."""
        if not 1 <= len(specs) <= BATCH_TRANSFERS_MAX:
            raise InvalidRequest(
                f"a batch has 1 to {BATCH_TRANSFERS_MAX} accounts",
                param="accounts",
                code="batch_too_large",
            )
        now = self.clock.now_us()
        rows = []
        assets: dict[str, Asset] = {}
        new_ids = ids.new_ids("acc", len(specs))
        for i, (spec, new) in enumerate(zip(specs, new_ids, strict=True)):
            if spec.asset not in assets:
                assets[spec.asset] = self.get_asset(spec.asset)
            if spec.name is not None:
                validate_name(spec.name, f"accounts[{i}].name")
            meta = canonical_metadata(spec.metadata, f"accounts[{i}].metadata")
            if (
                AccountFlag.DEBITS_MUST_NOT_EXCEED_CREDITS in spec.flags
                and AccountFlag.CREDITS_MUST_NOT_EXCEED_DEBITS in spec.flags
            ):
                raise InvalidRequest(
                    "an account cannot refuse both overdraft directions",
                    param=f"accounts[{i}].flags",
                    code="flags_are_mutually_exclusive",
                )
            account_id = validate_id(spec.id, f"accounts[{i}].id") if spec.id is not None else new
            rows.append(
                (
                    account_id,
                    spec.ledger_id,
                    spec.name,
                    spec.asset,
                    int(spec.normal_balance),
                    int(spec.flags),
                    False,
                    meta,
                    0,
                    0,
                    0,
                    0,
                    0,
                    None,
                    now,
                    now,
                    validate_id(spec.customer_id, f"accounts[{i}].customer_id")
                    if spec.customer_id is not None
                    else None,
                )
            )
        with self._uow() as uow:
            tenants: dict[str, str] = {}
            for ledger_id in {s.ledger_id for s in specs}:
                found = store.get_ledger(uow, ledger_id)
                if found is None:
                    raise NotFound(f"no ledger {ledger_id}", param="ledger_id")
                tenants[ledger_id] = found[4]
            self._check_customers(uow, specs, tenants)
            stored = {r[0]: r for r in store.get_account_rows(uow, sorted({r[0] for r in rows}))}
            outcomes: list[AccountOutcome] = []
            new_rows = []
            for i, row in enumerate(rows):
                existing = stored.get(row[0])
                if existing is None:
                    stored[row[0]] = row  # a later spec of this batch with its id compares
                    new_rows.append(row)
                    outcomes.append(AccountOutcome(i, AccountResult.CREATED, row[0], None))
                    continue
                result = _compare_account(row, existing)
                outcomes.append(AccountOutcome(i, result, row[0], None))
            if all(o.result.ok for o in outcomes):
                if new_rows:
                    owned: dict[str, set[str]] = {}
                    for r in new_rows:
                        if r[16] is not None:
                            owned.setdefault(tenants[r[1]], set()).add(r[16])
                    self._guard_owners(uow, owned)
                    store.insert_accounts(uow, new_rows, actor)
                    if self._audit_sink is not None:
                        self._audit_accounts(uow, tenants, new_rows, actor)
                    uow.commit()
                for o in outcomes:
                    o.account = account_from_row(stored[o.account_id])
        return outcomes

    def _check_customers(
        self, uow: UnitOfWork, specs: Sequence[AccountSpec], tenants: dict[str, str]
    ) -> None:
        """Every customer an account names is a customer of its ledger's tenant; another
        tenant's is not found, as one nobody has."""
        wanted: dict[str, set[str]] = {}
        for spec in specs:
            if spec.customer_id is not None:
                wanted.setdefault(tenants[spec.ledger_id], set()).add(spec.customer_id)
        for tenant_id, customer_ids in sorted(wanted.items()):
            found = set()
            if self._customers is not None:
                found = self._customers(uow, tenant_id, sorted(customer_ids))
            missing = sorted(customer_ids - found)
            if missing:
                raise NotFound(f"no customer {missing[0]}", param="customer_id")

    def _guard_owners(self, uow: UnitOfWork, owners: dict[str, set[str]]) -> None:
        """The owner guard (ledger.base.OwnerGuard) asked about these customers, by tenant:
        it raises when one may not hold a live account (a confirmed sanctions match)."""
        if self._owner_guard is not None:
            for tenant_id, customer_ids in sorted(owners.items()):
                self._owner_guard(uow, tenant_id, sorted(customer_ids))

    def _audit_accounts(
        self,
        uow: UnitOfWork,
        tenants: dict[str, str],
        rows: Sequence[tuple[Any, ...]],
        actor: str,
    ) -> None:
        """One leaf per account created: what it is, not its name or metadata (which may be
        personal data, and the log cannot forget)."""
        assert self._audit_sink is not None
        by_log: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        for r in rows:
            data: dict[str, Any] = {
                "account_id": r[0],
                "ledger_id": r[1],
                "asset": r[3],
                "normal_balance": Direction(r[4]).label,
                "flags": AccountFlag(r[5]).names(),
            }
            if r[16] is not None:
                data["customer_id"] = r[16]
            by_log.setdefault(tenants[r[1]], []).append(("account.created", r[0], data))
        for log_id in sorted(by_log):
            self._audit_sink.record_all(uow, log_id, actor, by_log[log_id])

    def create_account(
        self,
        ledger_id: str,
        asset: str,
        normal_balance: Direction,
        *,
        flags: AccountFlag = AccountFlag.NONE,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        actor: str = "ledger",
    ) -> Account:
        spec = AccountSpec(ledger_id, asset, normal_balance, flags, name, metadata)
        return self.create_accounts([spec], actor=actor)[0]

    def get_account(self, account_id: str) -> Account:
        with self._uow(write=False) as uow:
            row = store.get_account_row(uow, account_id)
        if row is None:
            raise NotFound(f"no account {account_id}", param="account_id")
        return account_from_row(row)

    def list_accounts(
        self,
        ledger_id: str | None = None,
        starting_after: str | None = None,
        limit: int = PAGE_SIZE_DEFAULT,
        ending_before: str | None = None,
        *,
        customer_id: str | None = None,
    ) -> Page[Account]:
        """By id; `ending_before` gives the page before a cursor (in the same order). With
        `customer_id`, that customer's accounts (in any ledger) instead of a ledger's."""
        check_limit(limit)
        with self._uow(write=False) as uow:
            if customer_id is not None:
                assert ledger_id is None, "list a ledger's accounts or a customer's"
                rows = store.list_customer_account_rows(
                    uow, customer_id, starting_after, limit + 1, ending_before
                )
            else:
                rows = store.list_account_rows(
                    uow, ledger_id, starting_after, limit + 1, ending_before
                )
        return page_of(rows, limit, backwards=ending_before is not None, convert=account_from_row)

    def close_account(self, account_id: str, *, closed: bool = True) -> Account:
        with self._ledger_write() as (uow, _cache):
            # Taking a block tells every process's account cache that an account changed.
            store.allocate_id_block(uow)
            row = store.get_account_row(uow, account_id, lock=True)
            if row is None:
                raise NotFound(f"no account {account_id}", param="account_id")
            if closed and (row[10] or row[11]):
                raise Conflict(
                    "the account has pending transfers: post or void them first", param="account_id"
                )
            store.set_account_closed(uow, account_id, closed, self.clock.now_us())
            if self._audit_sink is not None:
                ledger_row = store.get_ledger(uow, row[1])
                assert ledger_row is not None
                kind = "account.closed" if closed else "account.reopened"
                item = (kind, account_id, {"account_id": account_id})
                self._audit_sink.record_all(uow, ledger_row[4], "ledger", [item])
            uow.commit()
        return self.get_account(account_id)

    def freeze_account(
        self,
        account_id: str,
        *,
        frozen: bool = True,
        tenant_id: str | None = None,
        actor: str = "ledger",
        on_change: FreezeObserver | None = None,
    ) -> Account:
        """Freeze (or unfreeze) an account: while frozen it refuses debits and credits
        (account_frozen); a void or expiry of its pending transfers still releases them. With
        `tenant_id`, another tenant's account is not found. A change is an audit leaf
        (`account.frozen` / `account.unfrozen`, by `actor`) and is told to `on_change` in its
        transaction (the compliance domain's event); asking for the state it has changes
        nothing."""
        self.freeze_accounts(
            [account_id], frozen=frozen, tenant_id=tenant_id, actor=actor, on_change=on_change
        )
        return self.get_account(account_id)

    def freeze_customer_accounts(
        self,
        tenant_id: str,
        customer_id: str,
        actor: str,
        *,
        frozen: bool = True,
        on_change: FreezeObserver | None = None,
    ) -> list[str]:
        """Freeze (or unfreeze) every account `customer_id` owns in `tenant_id`'s ledgers, in
        one transaction; the ids of those whose state changed."""

        def work() -> list[str]:
            with self._ledger_write() as (uow, _cache):
                changed = self.freeze_customer_accounts_in(
                    uow, tenant_id, customer_id, actor, frozen=frozen, on_change=on_change
                )
                uow.commit()
                return changed

        return self._with_retries(work)

    def freeze_customer_accounts_in(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        customer_id: str,
        actor: str,
        *,
        frozen: bool = True,
        on_change: FreezeObserver | None = None,
    ) -> list[str]:
        """freeze_customer_accounts inside the caller's write transaction (a confirmed sanctions
        match: the case decision, the confirmation and the freeze commit together or not at
        all). The caller takes its locks in the ledger's order: nothing of the ledger's
        (accounts, the tenant's audit log) before this."""
        owned = store.customer_account_ids(uow, customer_id)
        if not owned:
            return []
        return self.freeze_accounts_in(
            uow,
            owned,
            frozen=frozen,
            tenant_id=tenant_id,
            actor=actor,
            on_change=on_change,
            missing_ok=True,
        )

    def freeze_accounts(
        self,
        account_ids: Sequence[str],
        *,
        frozen: bool,
        tenant_id: str | None,
        actor: str,
        on_change: FreezeObserver | None = None,
        missing_ok: bool = False,
    ) -> list[str]:
        def work() -> list[str]:
            with self._ledger_write() as (uow, _cache):
                changed = self.freeze_accounts_in(
                    uow,
                    account_ids,
                    frozen=frozen,
                    tenant_id=tenant_id,
                    actor=actor,
                    on_change=on_change,
                    missing_ok=missing_ok,
                )
                uow.commit()
                return changed

        return self._with_retries(work)

    def freeze_accounts_in(
        self,
        uow: UnitOfWork,
        account_ids: Sequence[str],
        *,
        frozen: bool,
        tenant_id: str | None,
        actor: str,
        on_change: FreezeObserver | None = None,
        missing_ok: bool = False,
    ) -> list[str]:
        """Freeze (or unfreeze) `account_ids` in `uow`, uncommitted; the ids whose state
        changed. Unfreezing asks the owner guard about the accounts' owners first (a confirmed
        sanctions match stays frozen: it raises, nothing written), before any account is
        locked. On SQLite the account cache needs no care: the id block taken here tells every
        process's cache that an account changed, and a rollback leaves nothing to tell."""
        wanted = sorted(set(account_ids))  # locked in id order
        if not frozen and self._owner_guard is not None:
            # Unlocked reads: an account's ledger and owner never change.
            found = store.account_owners(uow, wanted)
            tenants = store.ledger_tenants(uow, sorted({ledger for ledger, _ in found.values()}))
            owners: dict[str, set[str]] = {}
            for ledger_id, owner in found.values():
                tenant = tenants.get(ledger_id)
                if owner is not None and tenant is not None and tenant_id in (None, tenant):
                    owners.setdefault(tenant, set()).add(owner)
            self._guard_owners(uow, owners)
        # Taking a block tells every process's account cache that an account changed.
        store.allocate_id_block(uow)
        changed: list[str] = []
        by_log: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        for account_id in wanted:
            row = store.get_account_row(uow, account_id, lock=True)
            ledger_row = None if row is None else store.get_ledger(uow, row[1])
            if (
                row is None
                or ledger_row is None
                or (tenant_id is not None and ledger_row[4] != tenant_id)
            ):
                if missing_ok:
                    continue
                raise NotFound(f"no account {account_id}", param="account_id")
            if bool(row[17]) == frozen:
                continue
            store.set_account_frozen(uow, account_id, frozen, self.clock.now_us())
            kind = "account.frozen" if frozen else "account.unfrozen"
            by_log.setdefault(ledger_row[4], []).append(
                (kind, account_id, {"account_id": account_id})
            )
            changed.append(account_id)
            if on_change is not None:
                on_change(uow, ledger_row[4], account_id, frozen)
        if self._audit_sink is not None:
            for log_id, items in sorted(by_log.items()):
                self._audit_sink.record_all(uow, log_id, actor, items)
        return changed


# (uow, tenant id, account id, frozen) told of each account frozen or unfrozen, inside that
# transaction: how the compliance domain emits its event without the ledger knowing events.
FreezeObserver = Callable[[UnitOfWork, str, str, bool], None]
