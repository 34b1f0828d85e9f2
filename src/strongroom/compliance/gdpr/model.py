"""The AML record-keeping hold, pure. Records of a customer's business relationship must be
kept for a period after it ends (5 years in the EU's AMLD, Art. 40): while a customer has an
open account the relationship goes on; once every account is closed it ended at the last
activity of any (an account's last posting or its closing), and the hold lasts
`retention_days` from then. A customer who never had an account is under no AML hold."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

DAY_US: Final = 24 * 3600 * 1_000_000


@dataclass(frozen=True, slots=True)
class Relationship:
    """A customer's accounts, as the hold needs them."""

    accounts: int
    open_accounts: int
    last_activity_us: int | None  # the latest `updated_at` of the customer's accounts

    def __post_init__(self) -> None:
        assert 0 <= self.open_accounts <= self.accounts, self
        assert (self.accounts == 0) == (self.last_activity_us is None), self


@dataclass(frozen=True, slots=True)
class AmlHold:
    """Why erasure is refused now: `open_accounts` (the relationship goes on), or the time the
    retention period ends (`until_us`)."""

    open_accounts: int
    until_us: int | None

    def reason(self, customer_id: str) -> str:
        if self.open_accounts:
            return (
                f"customer {customer_id} has {self.open_accounts} open account(s): their records "
                "are kept for AML record keeping until the relationship ends and its retention "
                "period has passed"
            )
        return (
            f"customer {customer_id}'s records are kept for AML record keeping until "
            f"{_date(self.until_us)} (STRONGROOM_AML_RETENTION_DAYS after the last activity of "
            "their closed accounts)"
        )


def _date(us: int | None) -> str:
    assert us is not None
    return dt.datetime.fromtimestamp(us / 1_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def aml_hold(rel: Relationship, retention_days: int, now_us: int) -> AmlHold | None:
    """The hold that applies at `now_us`, or None when erasure is allowed."""
    if rel.accounts == 0:
        return None
    if rel.open_accounts:
        return AmlHold(rel.open_accounts, None)
    assert rel.last_activity_us is not None
    until = rel.last_activity_us + retention_days * DAY_US
    return AmlHold(0, until) if now_us < until else None


def retention_cutoff_us(retention_days: int, now_us: int) -> int:
    """Customers whose accounts are all closed, last active before this, are past retention."""
    return now_us - retention_days * DAY_US
