"""Which due deliveries a dispatcher claims next: fair shares of its senders. Pure; no I/O.

A dispatcher has `concurrency` senders. Without a rule, it would claim the oldest due
deliveries, and one tenant with a slow endpoint and a backlog (all older than anyone else's
events) would fill every sender with requests that each take the whole deadline: every other
tenant would wait. So a dispatcher holds at most `endpoint_concurrency` requests in flight to
one endpoint and `tenant_concurrency` to one tenant's endpoints, and hands out free senders
round robin: one to each tenant with due deliveries (the tenant whose oldest due delivery is
oldest first), then a second to each, and so on; within a tenant, round robin across its
endpoints. With `tenant_concurrency < concurrency`, at least `concurrency -
tenant_concurrency` senders are always free for the other tenants, whatever one tenant's
receivers do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DueEndpoint:
    """An enabled endpoint with due deliveries."""

    endpoint_id: str
    tenant_id: str
    oldest_due_us: int  # next_attempt_at of its oldest due delivery
    due: int  # how many are due (counted up to endpoint_concurrency at most)


def allocate(
    due: Sequence[DueEndpoint],
    *,
    slots: int,
    endpoint_busy: Mapping[str, int],
    tenant_busy: Mapping[str, int],
    endpoint_concurrency: int,
    tenant_concurrency: int,
) -> dict[str, int]:
    """How many deliveries to claim from each endpoint, `slots` at most in all: round robin
    across tenants, then across each tenant's endpoints, within the caps (`*_busy`: what this
    dispatcher has in flight already). Endpoints are listed in the order of their first
    share; a tenant or endpoint that is at its cap gets nothing."""
    assert slots >= 0
    assert 1 <= endpoint_concurrency <= tenant_concurrency
    tenants: dict[str, list[DueEndpoint]] = {}
    for d in sorted(due, key=lambda d: (d.oldest_due_us, d.endpoint_id)):
        tenants.setdefault(d.tenant_id, []).append(d)
    endpoint_room = {
        d.endpoint_id: min(d.due, endpoint_concurrency - endpoint_busy.get(d.endpoint_id, 0))
        for d in due
    }
    tenant_room = {t: tenant_concurrency - tenant_busy.get(t, 0) for t in tenants}
    turn = dict.fromkeys(tenants, 0)  # where each tenant's round robin over endpoints is
    shares: dict[str, int] = {}
    # Each pass gives each tenant one sender or ends the loop: at most `slots` + 1 passes.
    while slots > 0:
        given = 0
        for tenant, endpoints in tenants.items():
            if slots == 0:
                break
            if tenant_room[tenant] <= 0:
                continue
            for k in range(len(endpoints)):
                chosen = endpoints[(turn[tenant] + k) % len(endpoints)]
                if endpoint_room[chosen.endpoint_id] > 0:
                    endpoint_room[chosen.endpoint_id] -= 1
                    tenant_room[tenant] -= 1
                    shares[chosen.endpoint_id] = shares.get(chosen.endpoint_id, 0) + 1
                    turn[tenant] = (turn[tenant] + k + 1) % len(endpoints)
                    slots -= 1
                    given += 1
                    break
        if given == 0:
            break
    for endpoint_id, share in shares.items():
        assert share <= endpoint_concurrency - endpoint_busy.get(endpoint_id, 0)
    return shares
