"""The AML monitor as a sink of the transfer pipeline and as a scan over the ledger's history
(docs/aml.md, "Running it").

- **The sink** (`AmlService.__call__`, installed with STRONGROOM_AML=true) feeds every
  batch's posted movements, inside the posting transaction, to a copy of its accounts' state
  (`Monitor.trial`) and opens a case per new alert through CaseService.open_alerts in that
  transaction: an alert exists if and only if the transfer that raised it committed. The
  monitor's own state takes the batch only once the transaction has committed
  (`UnitOfWork.after_commit`), so a batch rolled back leaves no flow behind. Its state is
  process memory, bounded (compliance/aml/typologies.py); it is not persisted but rebuilt,
  before the first batch after a start (inside that batch's transaction: its one slow
  commit), from the ledger's last `AmlConfig.window_max_us` of posted transfers (the newest
  AML_WARM_TRANSFERS_MAX), whose hits are dropped (their alerts were raised when they
  posted). With several processes each sees only the batches it posts, so a pattern spread
  over processes may be missed live: the scan (scheduled) covers it.
- **The scan** (`AmlService.scan`, `strongroom aml scan [--since]`) reads the posted
  transfers through the ledger service, oldest first, feeds fresh detectors the same way, and
  raises the alerts of each page in one transaction.

Whether an account is exempt and its jurisdiction come from its AML profile, which only
compliance sets (compliance/aml/profiles.py), never from its metadata: the sink reads the
profiles of each batch's accounts in the batch's transaction.

Both dedupe through `aml_alerts`: one alert per owner and typology per window (the hit's time
rounded down to the typology's window), whichever raised it first. The owner is the account,
or for the typologies judged per customer as well (typologies.CUSTOMER_TYPOLOGIES) the
customer who owns it: its accounts' hits and its customer hits raise one alert between them.
The key's `account_id` column then holds the customer's id."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.cases.model import Alert
from strongroom.cases.service import CaseService
from strongroom.compliance.aml import store
from strongroom.compliance.aml.monitor import NO_PROFILE, Monitor
from strongroom.compliance.aml.typologies import AccountInfo, AmlConfig, Hit
from strongroom.core import clock
from strongroom.core.errors import NotFound
from strongroom.core.limits import AML_SCAN_PAGE_TRANSFERS, AML_WARM_TRANSFERS_MAX
from strongroom.core.pagination import NEWER, encode_cursor
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import Status, TransferRow, record_to_row
from strongroom.ledger.pipeline import CommittedBatch, Sink
from strongroom.ledger.service import LedgerService

log = logging.getLogger("strongroom.compliance.aml")

ACTOR: Final = "system:aml"
KIND_PREFIX: Final = "aml_"
_BY_SEQ: Final = "s"  # the ledger's by-sequence listing (ledger/listing.py)

Progress = Callable[[str], None]


@dataclass(slots=True)
class ScanReport:
    transfers: int = 0
    hits: int = 0
    raised: int = 0
    by_typology: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "transfers": self.transfers,
            "hits": self.hits,
            "alerts_raised": self.raised,
            "by_typology": dict(sorted(self.by_typology.items())),
        }


def alert_of(hit: Hit) -> Alert:
    """The case an alert opens: kind `aml_<typology>`, about `account:<id>` (or, for a hit
    across a customer's accounts, `customer:<id>`, the accounts named in the evidence), the
    transfer ids, amount and window as evidence (ids and amounts only). No `transfer_id`: one
    transfer may raise alerts on both its accounts, and a case names a transfer once per
    kind."""
    return Alert(
        kind=f"{KIND_PREFIX}{hit.typology.value}",
        subject=hit.subject,
        evidence=hit.evidence(),
        code=hit.typology.value,
    )


class AmlService:
    def __init__(
        self,
        engine: Engine,
        ledger: LedgerService,
        cases: CaseService | None = None,
        *,
        config: AmlConfig | None = None,
        clock_: clock.MonotonicClock | None = None,
    ) -> None:
        self.engine = engine
        self.ledger = ledger
        self.cases = cases
        self.config = config or AmlConfig()
        self.clock = clock_ or clock.MonotonicClock()
        self.monitor = Monitor(self.config, self._account_infos)
        self._warm = False

    # -- the sink ---------------------------------------------------------------------------

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        if not batch.transfers:
            return
        if not self._warm:
            self.warm()
        rows = batch.transfers
        profiles = store.profiles(uow, sorted(self.monitor.accounts_of(rows)))
        trial = self.monitor.trial(rows, profiles)
        if trial.hits:
            self.raise_hits(uow, trial.hits)
        monitor = self.monitor
        uow.after_commit(lambda: monitor.commit(trial))

    def warm(self, progress: Progress | None = None) -> int:
        """Rebuild the sink's state from the ledger's recent history (see the module's doc);
        answers how many transfers it read."""
        self._warm = True
        since = self.clock.now_us() - self.config.window_max_us
        # Newest first, up to the bound, then fed oldest first: past the bound, what is left
        # out is the oldest part of the history, not the newest.
        newest: list[TransferRow] = []
        cursor: str | None = None
        while len(newest) < AML_WARM_TRANSFERS_MAX:
            page = self.ledger.list_transfers(
                status=Status.POSTED,
                created_after=since,
                cursor=cursor,
                limit=AML_SCAN_PAGE_TRANSFERS,
            )
            newest.extend(record_to_row(r) for r in page.data)
            cursor = page.next_cursor
            if cursor is None:
                break
        newest.reverse()
        self.monitor.posted(newest)
        count = len(newest)
        if count:
            log.info("aml: rebuilt the monitor from %d recent transfers", count)
            if progress is not None:
                progress(f"aml: rebuilt the monitor from {count} recent transfers")
        return count

    # -- the scan ---------------------------------------------------------------------------

    def scan(self, since_us: int | None = None, progress: Progress | None = None) -> ScanReport:
        """Every posted transfer created after `since_us` (all, when None), oldest first,
        through fresh detectors; alerts raised page by page."""
        monitor = Monitor(self.config, self._account_infos)
        report = ScanReport()
        for rows in self._pages(since_us):
            hits = monitor.posted(rows)
            report.transfers += len(rows)
            report.hits += len(hits)
            if hits:
                with UnitOfWork(self.engine) as uow:
                    raised = self.raise_hits(uow, hits)
                    uow.commit()
                report.raised += len(raised)
                for key in raised:
                    report.by_typology[key.typology] = report.by_typology.get(key.typology, 0) + 1
            if progress is not None and report.transfers % 10_000 < len(rows):
                progress(
                    f"aml scan: {report.transfers:,} transfers, {report.hits:,} hits, "
                    f"{report.raised:,} alerts raised"
                )
        return report

    def _pages(self, since_us: int | None) -> Iterator[list[TransferRow]]:
        """The posted transfers created after `since_us`, oldest first, a page at a time."""
        # The by-sequence listing from its start towards newer transfers (an opaque cursor to
        # clients; here the ledger's own listing, read through its service).
        cursor: str | None = encode_cursor(_BY_SEQ, NEWER, 0)
        while cursor is not None:
            page = self.ledger.list_transfers(
                status=Status.POSTED,
                created_after=since_us,
                cursor=cursor,
                limit=AML_SCAN_PAGE_TRANSFERS,
            )
            rows = [record_to_row(r) for r in reversed(page.data)]  # newest first: turned
            if rows:
                yield rows
            cursor = page.next_cursor

    # -- alerts -----------------------------------------------------------------------------

    def raise_hits(self, uow: UnitOfWork, hits: Sequence[tuple[str, Hit]]) -> list[store.AlertKey]:
        """Open a case for each hit whose (owner, typology, window) has none yet, in `uow`:
        the owner is the customer for a hit that names one (Hit.owner), else the account."""
        tenants = self.ledger.ledger_tenants(sorted({ledger for ledger, _ in hits}), uow=uow)
        fresh: dict[store.AlertKey, Hit] = {}
        for ledger_id, hit in hits:
            tenant = tenants.get(ledger_id)
            if tenant is None:
                continue
            window = self.config.window_of(hit.typology)
            key = store.AlertKey(
                tenant, hit.owner, hit.typology.value, hit.at_us // window * window
            )
            fresh.setdefault(key, hit)
        now = self.clock.now_us()
        claimed = [key for key in fresh if store.claim(uow, key, "", now)]
        if not claimed:
            return []
        assert self.cases is not None, "the AML monitor raises alerts through the case queue"
        by_tenant: dict[str, list[store.AlertKey]] = {}
        for key in claimed:
            by_tenant.setdefault(key.tenant_id, []).append(key)
        for tenant, keys in sorted(by_tenant.items()):
            cases = self.cases.open_alerts(
                uow, tenant, [alert_of(fresh[k]) for k in keys], actor=ACTOR
            )
            for key, case in zip(keys, cases, strict=True):
                store.set_case(uow, key, case.id)
        return claimed

    def raised(self, tenant_id: str) -> list[store.AlertKey]:
        with UnitOfWork(self.engine, write=False) as uow:
            return store.raised(uow, tenant_id)

    # -- accounts -----------------------------------------------------------------------------

    def _account_infos(self, account_ids: Sequence[str]) -> dict[str, tuple[str, AccountInfo]]:
        """(asset, info) of accounts: the owner from the account, whether it is exempt and its
        jurisdiction from its AML profile (compliance's; never the account's metadata, which
        a key that moves money writes)."""
        accounts = {}
        for account_id in account_ids:
            try:
                accounts[account_id] = self.ledger.get_account(account_id)
            except NotFound:
                continue
        with UnitOfWork(self.engine, write=False) as uow:
            profiles = store.profiles(uow, sorted(accounts))
        out = {}
        for account_id, account in accounts.items():
            profile = profiles.get(account_id, NO_PROFILE)
            out[account_id] = (
                account.asset,
                AccountInfo(
                    customer=account.customer_id,
                    jurisdiction=profile.jurisdiction,
                    monitored=not profile.exempt,
                ),
            )
        return out


def install(
    settings_aml: bool,
    engine: Engine,
    sinks: list[Sink],
) -> Callable[[LedgerService, CaseService], AmlService] | None:
    """runtime.build_ledger's wiring: with STRONGROOM_AML on, a place in the sinks (before the
    audit log's) now, and the service once the ledger and the case queue exist."""
    if not settings_aml:
        return None
    holder: list[AmlService] = []

    def sink(uow: UnitOfWork, batch: CommittedBatch) -> None:
        if holder:
            holder[0](uow, batch)

    sinks.append(sink)

    def bind(ledger: LedgerService, cases: CaseService) -> AmlService:
        service = AmlService(engine, ledger, cases)
        holder.append(service)
        return service

    return bind
