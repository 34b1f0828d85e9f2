"""The feature store: per tenant, a FeatureSource (risk.features.FeatureEngine) kept in step
with `risk_events`, the source of truth every process writes through the risk sink.

Before each scoring call the tenant's new rows are read in one indexed statement (events after
the last counter seen, and labels recorded since), at most TAIL_ROWS_MAX of each: a burst
larger than that is caught up over the next calls (the issue allows counters a moment stale).
At first use a tenant's source is warm-started with its last WARM_DAYS of payments, at most
WARM_ROWS_MAX. Several processes each keep their own source; none is authoritative, so none
needs coordinating."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Final

from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.db.uow import UnitOfWork
from strongroom.risk import store
from strongroom.risk.model import FeatureSource, PaymentEvent
from strongroom.risk.payments import event_of

WARM_DAYS: Final = 37  # the longest window (30 days) and the terminal label delay (7 days)
WARM_ROWS_MAX: Final = 1_000_000
TAIL_ROWS_MAX: Final = 10_000
_DAY_US: Final = 86_400 * 1_000_000


def event_of_row(row: store.EventRow) -> PaymentEvent:
    return event_of(
        row.transfer_id,
        row.at_us,
        row.amount,
        row.scale,
        row.customer_id,
        (row.payee, row.device, row.ip),
        row.channel,
        row.fraud,
    )


class _Tenant:
    def __init__(self) -> None:
        self.source: FeatureSource | None = None  # set by the warm start
        self.after = -1  # the last counter value applied; -1: not warm yet
        self.lock = threading.Lock()


class FeatureStore:
    def __init__(
        self,
        engine: Engine,
        make_source: Callable[[], FeatureSource],
        *,
        now_us: Callable[[], int] = clock.now_us,
        tail_rows_max: int = TAIL_ROWS_MAX,
        warm_rows_max: int = WARM_ROWS_MAX,
    ) -> None:
        assert tail_rows_max >= 1
        assert warm_rows_max >= 1
        self.engine = engine
        self.make_source = make_source
        self.now_us = now_us
        self.tail_rows_max = tail_rows_max
        self.warm_rows_max = warm_rows_max
        self._tenants: dict[str, _Tenant] = {}
        self._lock = threading.Lock()

    def _tenant(self, tenant_id: str) -> _Tenant:
        with self._lock:
            found = self._tenants.get(tenant_id)
            if found is None:
                found = self._tenants[tenant_id] = _Tenant()
            return found

    def features(self, tenant_id: str, events: Sequence[PaymentEvent]) -> list[dict[str, float]]:
        """Each event's features as of the tenant's rows now (synced first)."""
        tenant = self._tenant(tenant_id)
        with tenant.lock:
            self._sync(tenant_id, tenant)
            assert tenant.source is not None, "warm after a sync"
            return tenant.source.features(events)

    def sync(self, tenant_id: str) -> int:
        """Applies the tenant's new rows; answers how many."""
        tenant = self._tenant(tenant_id)
        with tenant.lock:
            return self._sync(tenant_id, tenant)

    def _sync(self, tenant_id: str, tenant: _Tenant) -> int:
        with UnitOfWork(self.engine, write=False) as uow:
            if tenant.after < 0:
                # The counter first: every row at or below it has committed (store's docstring).
                last = store.last_seq(uow, tenant_id)
                since = self.now_us() - WARM_DAYS * _DAY_US
                rows = store.recent_events(uow, tenant_id, since, last, self.warm_rows_max)
                # Into a fresh source, kept only once every row is in: a warm start that fails
                # half-way (a damaged row) is retried from nothing, never on top of its half.
                source = self.make_source()
                for row in rows:
                    source.observe(event_of_row(row))
                tenant.source = source
                tenant.after = last
                return len(rows)
            changes = store.tail(uow, tenant_id, tenant.after, self.tail_rows_max)
        assert tenant.source is not None, "warm before a tail"
        for change in changes:
            if isinstance(change, store.EventRow):
                tenant.source.observe(event_of_row(change))
                tenant.after = max(tenant.after, change.seq)
            else:
                tenant.source.label(change.transfer_id, change.fraud)
                tenant.after = max(tenant.after, change.label_seq)
        return len(changes)
