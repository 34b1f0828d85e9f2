"""Fair shares of a dispatcher's senders (events/scheduling.py) and the dispatcher's settings."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import WEBHOOK_LEASE_MARGIN_MS_MIN
from strongroom.events.dispatcher import DispatcherConfig
from strongroom.events.scheduling import DueEndpoint, allocate


def due(endpoint_id: str, tenant_id: str, oldest_due_us: int, count: int) -> DueEndpoint:
    return DueEndpoint(endpoint_id, tenant_id, oldest_due_us, count)


def test_senders_go_round_robin_across_tenants_oldest_first() -> None:
    # The slow tenant's backlog is the oldest; it still gets one sender per round.
    endpoints = [
        due("we_slow", "ten_slow", 1, 2),
        due("we_b", "ten_b", 5, 2),
        due("we_c", "ten_c", 3, 2),
    ]
    shares = allocate(
        endpoints,
        slots=4,
        endpoint_busy={},
        tenant_busy={},
        endpoint_concurrency=2,
        tenant_concurrency=4,
    )
    assert list(shares.items()) == [("we_slow", 2), ("we_c", 1), ("we_b", 1)]


def test_a_tenant_at_its_cap_gets_nothing_and_its_endpoints_share_its_senders() -> None:
    endpoints = [
        due("we_a1", "ten_a", 1, 2),
        due("we_a2", "ten_a", 2, 2),
        due("we_b", "ten_b", 3, 2),
    ]
    kw = {"endpoint_concurrency": 2, "tenant_concurrency": 2}
    assert allocate(endpoints, slots=8, endpoint_busy={}, tenant_busy={}, **kw) == {
        "we_a1": 1,
        "we_a2": 1,
        "we_b": 2,
    }
    busy = allocate(endpoints, slots=8, endpoint_busy={"we_a1": 2}, tenant_busy={"ten_a": 2}, **kw)
    assert busy == {"we_b": 2}
    assert allocate(endpoints, slots=0, endpoint_busy={}, tenant_busy={}, **kw) == {}


@st.composite
def situations(draw: st.DrawFn) -> tuple[list[DueEndpoint], int, int, int, Counter[str]]:
    endpoint_cap = draw(st.integers(1, 4))
    tenant_cap = draw(st.integers(endpoint_cap, 6))
    slots = draw(st.integers(0, 12))
    count = draw(st.integers(0, 8))
    endpoints = [
        due(
            f"we_{i}",
            f"ten_{draw(st.integers(0, 3))}",
            draw(st.integers(0, 5)),
            draw(st.integers(1, endpoint_cap)),
        )
        for i in range(count)
    ]
    busy = Counter({e.endpoint_id: draw(st.integers(0, endpoint_cap)) for e in endpoints})
    return endpoints, slots, endpoint_cap, tenant_cap, busy


@given(situations())
def test_shares_keep_every_cap_and_leave_no_sender_idle_that_could_work(
    situation: tuple[list[DueEndpoint], int, int, int, Counter[str]],
) -> None:
    endpoints, slots, endpoint_cap, tenant_cap, endpoint_busy = situation
    tenant_of = {e.endpoint_id: e.tenant_id for e in endpoints}
    tenant_busy: Counter[str] = Counter()
    for endpoint_id, n in endpoint_busy.items():
        tenant_busy[tenant_of[endpoint_id]] += n
    shares = allocate(
        endpoints,
        slots=slots,
        endpoint_busy=endpoint_busy,
        tenant_busy=tenant_busy,
        endpoint_concurrency=endpoint_cap,
        tenant_concurrency=tenant_cap,
    )
    assert sum(shares.values()) <= slots
    assert all(n > 0 for n in shares.values())
    tenant_total = Counter(tenant_busy)
    for e in endpoints:
        given_ = shares.get(e.endpoint_id, 0)
        assert given_ <= e.due
        assert endpoint_busy[e.endpoint_id] + given_ <= endpoint_cap
        tenant_total[e.tenant_id] += given_
    # Work-conserving: a sender is left idle only when no endpoint could take it.
    if sum(shares.values()) < slots:
        for e in endpoints:
            room = min(e.due, endpoint_cap - endpoint_busy[e.endpoint_id])
            assert shares.get(e.endpoint_id, 0) >= room or tenant_total[e.tenant_id] >= tenant_cap


def test_the_lease_must_outlast_the_deadline() -> None:
    DispatcherConfig(timeout_ms=1_000, lease_ms=1_000 + WEBHOOK_LEASE_MARGIN_MS_MIN)
    with pytest.raises(InvalidRequest) as info:
        DispatcherConfig(timeout_ms=1_000, lease_ms=1_000 + WEBHOOK_LEASE_MARGIN_MS_MIN - 1)
    assert info.value.param == "lease_ms"
    with pytest.raises(InvalidRequest) as info:
        DispatcherConfig(concurrency=4, tenant_concurrency=5)
    assert info.value.param == "tenant_concurrency"
    with pytest.raises(InvalidRequest) as info:
        DispatcherConfig(tenant_concurrency=2, endpoint_concurrency=3)
    assert info.value.param == "endpoint_concurrency"
