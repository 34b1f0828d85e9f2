"""KYC's vocabulary, pure: verification statuses, tiers and their caps, and the rolling windows.

A tier caps what a customer's payments take out, per asset: one payment (`per_transfer`), the
rolling 24 hours (`daily`) and the rolling 30 days (`monthly`). Usage is counted in hourly
buckets (BUCKET_US): a window of W hours at time t sums the buckets that start at or after
hour(t) - W, i.e. the current partial hour and the W full hours before it, so an amount counts
against a window for at least W hours and at most W + 1 (never less than the window: a cap is
crossed never, early release never happens; it may be released up to an hour late).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from strongroom.core.limits import AMOUNT_MAX

BUCKET_US: Final = 3_600_000_000  # one hour: the granularity of the rolling windows
DAY_BUCKETS: Final = 24
MONTH_BUCKETS: Final = 30 * 24
ANY_ASSET: Final = "*"  # a tier's caps for the assets it does not name

KYC_UNVERIFIED: Final = "kyc_unverified"
KYC_LIMIT_EXCEEDED: Final = "kyc_limit_exceeded"


class Status(StrEnum):
    """A customer without a KYC record is UNVERIFIED. Only VERIFIED may send money."""

    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class Window(StrEnum):
    """Which cap refused a payment (named in the refusal's detail)."""

    PER_TRANSFER = "per_transfer"
    DAILY = "24h"
    MONTHLY = "30d"


@dataclass(frozen=True, slots=True)
class Caps:
    """One asset's caps, in its minor units; None is no cap."""

    per_transfer: int | None
    daily: int | None
    monthly: int | None

    def __post_init__(self) -> None:
        for cap in (self.per_transfer, self.daily, self.monthly):
            assert cap is None or 0 <= cap <= AMOUNT_MAX, "a cap is an amount"


# The tiers every tenant gets unless it overrides them (docs/kyc.md, STRONGROOM_KYC_TIERS):
# caps in minor units of whatever asset (ANY_ASSET), e.g. EUR cents. A tenant's settings name
# its assets.
DEFAULT_TIERS: Final[Mapping[str, Mapping[str, Caps]]] = {
    "basic": {ANY_ASSET: Caps(per_transfer=50_000, daily=100_000, monthly=500_000)},
    "standard": {ANY_ASSET: Caps(per_transfer=500_000, daily=1_000_000, monthly=5_000_000)},
    "enhanced": {ANY_ASSET: Caps(per_transfer=5_000_000, daily=20_000_000, monthly=100_000_000)},
}
DEFAULT_TIER: Final = "basic"


@dataclass(frozen=True, slots=True)
class TierTable:
    """Tiers by name, each its caps by asset (ANY_ASSET for the others); `overrides` by tenant
    id replace the default table for that tenant as a whole."""

    tiers: Mapping[str, Mapping[str, Caps]]
    overrides: Mapping[str, Mapping[str, Mapping[str, Caps]]]

    def for_tenant(self, tenant_id: str) -> Mapping[str, Mapping[str, Caps]]:
        return self.overrides.get(tenant_id, self.tiers)

    def caps(self, tenant_id: str, tier: str, asset: str) -> Caps | None:
        """None: the tier is unknown to this tenant's table (a payment is refused as if every
        cap were 0) or names neither the asset nor ANY_ASSET."""
        by_asset = self.for_tenant(tenant_id).get(tier)
        if by_asset is None:
            return Caps(0, 0, 0)
        return by_asset.get(asset, by_asset.get(ANY_ASSET))


DEFAULT_TABLE: Final = TierTable(DEFAULT_TIERS, {})


def parse_tiers(text: str) -> TierTable:
    """A tier table from JSON: `{"default": {TIER: {ASSET: {"per_transfer": N, "daily": N,
    "monthly": N}}}, "tenants": {TENANT_ID: {TIER: ...}}}`, both optional (an absent
    "default" keeps DEFAULT_TIERS); a cap null or absent is no cap. Raises ValueError."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or set(doc) - {"default", "tenants"}:
        raise ValueError('a tier table is an object with "default" and/or "tenants"')
    tiers = _tiers(doc["default"]) if "default" in doc else DEFAULT_TIERS
    tenants = doc.get("tenants", {})
    if not isinstance(tenants, dict):
        raise ValueError('"tenants" is an object of tenant id -> tiers')
    return TierTable(tiers, {str(k): _tiers(v) for k, v in tenants.items()})


def _tiers(doc: Any) -> dict[str, dict[str, Caps]]:
    if not isinstance(doc, dict) or not doc:
        raise ValueError("tiers are an object of tier name -> asset -> caps")
    out: dict[str, dict[str, Caps]] = {}
    for tier, assets in doc.items():
        if not isinstance(assets, dict) or not assets:
            raise ValueError(f"tier {tier!r}: an object of asset -> caps")
        out[str(tier)] = {str(a): _caps(tier, a, c) for a, c in assets.items()}
    return out


def _caps(tier: str, asset: str, doc: Any) -> Caps:
    if not isinstance(doc, dict) or set(doc) - {"per_transfer", "daily", "monthly"}:
        raise ValueError(f"tier {tier!r} asset {asset!r}: per_transfer, daily, monthly")
    values = []
    for name in ("per_transfer", "daily", "monthly"):
        v = doc.get(name)
        if v is not None and (type(v) is not int or not 0 <= v <= AMOUNT_MAX):
            raise ValueError(f"tier {tier!r} asset {asset!r}: {name} is an amount or null")
        values.append(v)
    return Caps(*values)


def bucket_of(at_us: int) -> int:
    """The hour an instant falls in (hours since the epoch)."""
    return at_us // BUCKET_US


def window_sums(buckets: Mapping[int, int], now_us: int) -> tuple[int, int]:
    """(rolling 24 hours, rolling 30 days) of one customer's usage of one asset, from its
    hourly buckets (hour -> amount): see the module's note on their precision."""
    hour = bucket_of(now_us)
    day = month = 0
    for start, amount in buckets.items():
        if start >= hour - MONTH_BUCKETS:
            month += amount
            if start >= hour - DAY_BUCKETS:
                day += amount
    return day, month


def over_cap(caps: Caps | None, amount: int, day: int, month: int) -> tuple[Window, int] | None:
    """The first cap a payment of `amount` would cross, given what the windows hold already
    (`day`, `month`), and that cap; None when it passes every one. No caps: nothing passes."""
    if caps is None:
        return Window.PER_TRANSFER, 0
    if caps.per_transfer is not None and amount > caps.per_transfer:
        return Window.PER_TRANSFER, caps.per_transfer
    if caps.daily is not None and day + amount > caps.daily:
        return Window.DAILY, caps.daily
    if caps.monthly is not None and month + amount > caps.monthly:
        return Window.MONTHLY, caps.monthly
    return None
