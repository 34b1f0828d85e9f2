"""Open banking's consents and payments replayed against the audit log: a change made to
`ob_consents` or `ob_payments` by hand, behind the services that write their leaves, is named.

Every change of a consent is a leaf of its tenant's log, written in the transaction that makes
it (resources/service.py, payments/sink.py): `openbanking.consent_created` (AWAU),
`_authorised` (AUTH, with the customer and the accounts chosen), `_rejected`, `_revoked`,
`_expired` and `_consumed` (COND, with the payment's id and, for a payment refused before
posting, the refusal's code: the payment's row is written with it). The compliance control
`openbanking_consents_audited` (compliance/controls/checks.py, wired by compliance/wiring.py)
runs `check`: every such leaf is read once, log by log, into the state the leaves describe,
which is then compared with the tables both ways:

- `ob_consents`: each row's kind, client, status, customer and selected accounts must be those
  its leaves leave it with; a row no leaf records was inserted by hand, and a consent a leaf
  records must still have its row. A consent its leaves consumed (COND) that the table says is
  AUTH or AWAU could pay again: the finding says so. A leaf that moved a consent from a status
  its leaves before had not left it in (its `from`) shows the row was edited in between, even
  once the edit was used and the row agrees again (a consumed consent set back to AUTH and
  paid a second time);
- `ob_payments`: each row needs the `openbanking.consent_consumed` leaf of its consent, naming
  the same payment, client and refusal (a row added by hand is a payment no one made), and each
  payment a leaf records must still have its row (deleting it, with the consent edited back to
  AUTH, is the way to pay twice).

The created leaf also pins what the row's later leaves never restate: the permissions
(sorted), the expiry (RFC 3339 or null) and `request_mac`, the HMAC-SHA256 of the stored request
(`ob_consents.request`, the canonical JSON it holds) under the consent
service's key (resources/model.py `request_mac_key`, derived alike by runtime.py and
compliance/wiring.py). A removed expiry, an added permission, a payment's amount raised or its
creditor changed is named by the field that differs. A created leaf written before these fields
(it has no `request_mac`) pins nothing: those columns of its consent are not compared.

Memory is one entry per consent (its payment with it), never per transfer. Ids, statuses,
permission names and expiries only in the findings: never a request, an account number or a
name.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy.engine import Engine

from strongroom.audit.records import Add, RecordLeaves, replay
from strongroom.core import clock
from strongroom.db.query import stream_rows
from strongroom.openbanking.consents import ConsentEvent, ConsentStatus
from strongroom.openbanking.resources.model import (
    CONSENT_CREATED,
    CONSENT_EVENT_NAMES,
    request_mac,
)

CONSENT_CONSUMED: Final = CONSENT_EVENT_NAMES[ConsentEvent.CONSUME]
CONSENT_AUTHORISED: Final = CONSENT_EVENT_NAMES[ConsentEvent.AUTHORISE]
TYPES: Final = frozenset({CONSENT_CREATED, *CONSENT_EVENT_NAMES.values()})
PAGE: Final = 500  # rows read at a time
_OPEN: Final = frozenset({ConsentStatus.AWAU.value, ConsentStatus.AUTH.value})

Key = tuple[str, str]  # (tenant, consent id)


@dataclass(slots=True)
class ObRecordsFacts:
    leaves: int = 0
    consents: int = 0
    payments: int = 0

    def counts(self) -> dict[str, int]:
        return {"leaves": self.leaves, "consents": self.consents, "payments": self.payments}


@dataclass(frozen=True, slots=True)
class _Pinned:
    """What a created leaf with `request_mac` pins of its row, which no later leaf changes."""

    permissions: tuple[str, ...]  # sorted
    expires_at: str | None  # RFC 3339, as clock.format_us writes it
    request_mac: str


@dataclass(slots=True)
class _Consent:
    """A consent as its leaves leave it."""

    kind: str
    client_id: str
    status: str
    customer_id: str | None = None
    account_ids: tuple[str, ...] = ()
    payment_id: str | None = None  # its consumed leaf's
    refusal: str | None = None
    # The first leaf that moved it from a status its leaves before had not left it in: its row
    # was edited between the two (a consumed consent set back to AUTH, then paid again).
    broken: str | None = None
    pinned: _Pinned | None = None  # its created leaf's, when that leaf records them


@dataclass(slots=True)
class _Recorded:
    consents: dict[Key, _Consent] = field(default_factory=dict)

    def take(self, tenant: str, index: int, kind: str, data: dict[str, Any]) -> None:
        key = (tenant, str(data["id"]))
        found = self.consents.get(key)
        if found is None:
            found = self.consents[key] = _Consent(
                str(data["kind"]), str(data["client_id"]), str(data["status"])
            )
        elif found.broken is None and "from" in data and str(data["from"]) != found.status:
            found.broken = (
                f"its {kind} leaf {index} moved it from {data['from']}, but its leaves before "
                f"left it {found.status}: its row was edited in between"
            )
        found.kind = str(data["kind"])
        found.client_id = str(data["client_id"])
        found.status = str(data["status"])
        if "customer_id" in data:
            found.customer_id = str(data["customer_id"])
        if kind == CONSENT_CREATED and "request_mac" in data:
            expires_at = data["expires_at"]
            found.pinned = _Pinned(
                tuple(sorted(str(p) for p in data.get("permissions", []))),
                None if expires_at is None else str(expires_at),
                str(data["request_mac"]),
            )
        if kind == CONSENT_AUTHORISED:
            found.account_ids = tuple(str(a) for a in data["account_ids"])
        elif kind == CONSENT_CONSUMED:
            found.payment_id = str(data["payment_id"])
            refusal = data.get("refusal")
            found.refusal = None if refusal is None else str(refusal)


def _rows(engine: Engine, query: str) -> Iterator[tuple[Any, ...]]:
    return stream_rows(engine, query, PAGE)


def _replay(
    record_leaves: RecordLeaves, add: Add, say: Callable[[str], None]
) -> tuple[_Recorded, int]:
    recorded = _Recorded()
    take = recorded.take
    return recorded, replay(record_leaves, TYPES, take, add, say, "open banking records")


def _account_ids(text: Any) -> tuple[str, ...] | None:
    """A row's selected accounts (JSON text), or None when they do not read."""
    if not text:
        return ()
    try:
        found = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(found, list):
        return None
    return tuple(str(a) for a in found)


def _differences(row: _Consent, leaf: _Consent) -> list[str]:
    """What of `row` is not what the leaves say, in words (ids and statuses only)."""
    out = []
    if row.status != leaf.status:
        if leaf.status == ConsentStatus.COND.value and row.status in _OPEN:
            out.append(
                f"status {row.status}, but its {CONSENT_CONSUMED} leaf consumed it (payment "
                f"{leaf.payment_id}): it could pay again"
            )
        else:
            out.append(f"status {row.status}, but its leaves leave it {leaf.status}")
    for name, mine, theirs in (
        ("kind", row.kind, leaf.kind),
        ("client_id", row.client_id, leaf.client_id),
        ("customer_id", row.customer_id, leaf.customer_id),
    ):
        if mine != theirs:
            out.append(f"{name} {mine}, but its leaves say {theirs}")
    if row.account_ids != leaf.account_ids:
        out.append(
            f"selected accounts {list(row.account_ids)}, but its {CONSENT_AUTHORISED} leaf "
            f"says {list(leaf.account_ids)}"
        )
    return out


def _expiry(stored: Any) -> str | None:
    """A row's `expires_at` (epoch microseconds) as the created leaf writes it."""
    if stored is None:
        return None
    try:
        return clock.format_us(int(stored))
    except (OverflowError, TypeError, ValueError):
        return f"{stored} (not a time)"


def _pinned_differences(
    pinned: _Pinned, permissions: Any, expires_at: Any, request: Any, key: bytes
) -> list[str]:
    """What of the row's permissions, expiry and request is not what its created leaf pinned,
    in words: the permissions' names and the expiries, never the request."""
    out = []
    mine = tuple(sorted(str(permissions or "").split()))
    if mine != pinned.permissions:
        out.append(
            f"permissions {list(mine)}, but its {CONSENT_CREATED} leaf records "
            f"{list(pinned.permissions)}"
        )
    expiry = _expiry(expires_at)
    if expiry != pinned.expires_at:
        out.append(
            f"expires_at {expiry or 'none'}, but its {CONSENT_CREATED} leaf records "
            f"{pinned.expires_at or 'none'}"
        )
    mac = request_mac(key, str(request))
    if not hmac.compare_digest(mac.encode(), pinned.request_mac.encode()):
        out.append(
            f"its stored request (a payment's amount, creditor, references) is not the one its "
            f"{CONSENT_CREATED} leaf's request_mac records"
        )
    return out


def check(
    engine: Engine,
    record_leaves: RecordLeaves,
    add: Add,
    say: Callable[[str], None],
    *,
    request_mac_key: bytes,
) -> ObRecordsFacts:
    """The consents and payments against the leaves that recorded them, both ways; problems
    to `add`, one per wrong row. `request_mac_key`: the consent service's key of the created
    leaves' `request_mac`."""
    facts = ObRecordsFacts()
    recorded, facts.leaves = _replay(record_leaves, add, say)

    seen: set[Key] = set()
    for (
        tenant, consent_id, kind, client_id, status, customer_id, accounts, permissions,
        expires_at, request,
    ) in _rows(
        engine,
        "SELECT tenant_id, id, kind, client_id, status, customer_id, account_ids, permissions, "
        "expires_at, request FROM ob_consents",
    ):  # fmt: skip
        facts.consents += 1
        key = (tenant, consent_id)
        seen.add(key)
        where = {"table": "ob_consents", "consent_id": consent_id}
        leaf = recorded.consents.get(key)
        if leaf is None:
            add(
                tenant,
                {**where, "problem": f"{kind} consent, status {status}: no leaf records it"},
            )
            continue
        account_ids = _account_ids(accounts)
        if account_ids is None:
            add(tenant, {**where, "problem": "its selected accounts do not read"})
            continue
        row = _Consent(kind, client_id, status, customer_id, account_ids)
        wrong = ([leaf.broken] if leaf.broken else []) + _differences(row, leaf)
        if leaf.pinned is not None:
            wrong += _pinned_differences(
                leaf.pinned, permissions, expires_at, request, request_mac_key
            )
        if wrong:
            add(tenant, {**where, "problem": "; ".join(wrong)})
    for tenant, consent_id in sorted(recorded.consents.keys() - seen):
        leaf = recorded.consents[(tenant, consent_id)]
        gone = f"its leaves record the consent ({leaf.status}), but its row is gone"
        add(
            tenant,
            {
                "table": "ob_consents",
                "consent_id": consent_id,
                "problem": "; ".join([leaf.broken, gone] if leaf.broken else [gone]),
            },
        )

    paid: set[Key] = set()  # consents whose consumed leaf's payment has its row
    for tenant, payment_id, client_id, consent_id, refusal in _rows(
        engine, "SELECT tenant_id, id, client_id, consent_id, refusal FROM ob_payments"
    ):
        facts.payments += 1
        key = (tenant, consent_id)
        where = {"table": "ob_payments", "payment_id": payment_id, "consent_id": consent_id}
        leaf = recorded.consents.get(key)
        if leaf is None or leaf.payment_id is None:
            add(tenant, {**where, "problem": f"no {CONSENT_CONSUMED} leaf records the payment"})
            continue
        if leaf.payment_id != payment_id:
            add(
                tenant,
                {
                    **where,
                    "problem": f"its consent's {CONSENT_CONSUMED} leaf names payment "
                    f"{leaf.payment_id}",
                },
            )
            continue
        paid.add(key)
        wrong = [
            f"{name} {mine}, but its {CONSENT_CONSUMED} leaf says {theirs}"
            for name, mine, theirs in (
                ("client_id", client_id, leaf.client_id),
                ("refusal", refusal, leaf.refusal),
            )
            if mine != theirs
        ]
        if wrong:
            add(tenant, {**where, "problem": "; ".join(wrong)})
    for tenant, consent_id in sorted(recorded.consents.keys() - paid):
        leaf = recorded.consents[(tenant, consent_id)]
        if leaf.payment_id is None:
            continue
        add(
            tenant,
            {
                "table": "ob_payments",
                "payment_id": leaf.payment_id,
                "consent_id": consent_id,
                "problem": f"its consent's {CONSENT_CONSUMED} leaf records the payment, but "
                "its row is gone",
            },
        )
    return facts
