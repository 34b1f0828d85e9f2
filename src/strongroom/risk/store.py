"""All of the risk domain's SQL (db/tables.py: risk_tails, risk_events, risk_decisions).

A tenant's `seq` and `label_seq` come from its row of risk_tails, taken by an upsert that
holds the row locked until the writing transaction commits (SQLite's one writer gives the same):
a tenant's counters become visible in the order they were drawn, so a reader that has seen
everything up to N and then reads `> N` misses nothing, on either database."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeGuard

import orjson

from strongroom.core.money import from_stored_int, iso_asset, to_stored_int
from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork
from strongroom.risk.errors import DecisionDamaged

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventRow:
    """A risk event as stored (payee, device and ip are keyed hashes, hex)."""

    tenant_id: str
    seq: int
    transfer_id: str
    at_us: int
    amount: int  # minor units
    scale: int
    customer_id: str
    payee: str | None
    channel: str | None
    device: str | None
    ip: str | None
    fraud: bool | None = None


@dataclass(frozen=True, slots=True)
class LabelRow:
    """A label recorded after its event: `label_seq` orders it among the tenant's rows."""

    label_seq: int
    transfer_id: str
    fraud: bool


@dataclass(frozen=True, slots=True)
class DecisionRow:
    transfer_id: str
    tenant_id: str
    verdict: str
    score: float | None
    reasons: list[dict[str, str]]
    model_version: str | None
    rules_version: str | None
    features: dict[str, float]
    contributions: list[dict[str, Any]] | None
    shadow_score: float | None
    shadow_version: str | None
    created_at: int


_EVENT_COLS = (
    "tenant_id, seq, transfer_id, at_us, amount, scale, customer_id, payee, channel, device, "
    "ip, fraud"
)
_DECISION_COLS = (
    "transfer_id, tenant_id, verdict, score, reasons, model_version, rules_version, features, "
    "contributions, shadow_score, shadow_version, created_at"
)


def draw_seqs(uow: UnitOfWork, tenant_id: str, n: int) -> int:
    """Draws `n` of the tenant's counter values and answers the first; the tenant's row stays
    locked until the caller's transaction ends."""
    assert n >= 1
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "INSERT INTO risk_tails (tenant_id, last_seq) VALUES (?, ?) ON CONFLICT (tenant_id) "
            "DO UPDATE SET last_seq = risk_tails.last_seq + ? RETURNING last_seq",
        ),
        (tenant_id, n, n),
    )
    (last,) = cur.fetchone()
    return int(last) - n + 1


def last_seq(uow: UnitOfWork, tenant_id: str) -> int:
    cur = uow.cursor()
    cur.execute(sql(uow, "SELECT last_seq FROM risk_tails WHERE tenant_id = ?"), (tenant_id,))
    row = cur.fetchone()
    return 0 if row is None else int(row[0])


def insert_events(uow: UnitOfWork, rows: Sequence[EventRow]) -> None:
    if not rows:
        return
    sqlite = uow.sqlite
    marks = ", ".join("?" * 12)
    uow.cursor().executemany(
        sql(uow, f"INSERT INTO risk_events ({_EVENT_COLS}) VALUES ({marks})"),
        [
            (
                r.tenant_id,
                r.seq,
                r.transfer_id,
                r.at_us,
                to_stored_int(r.amount) if sqlite else r.amount,
                r.scale,
                r.customer_id,
                r.payee,
                r.channel,
                r.device,
                r.ip,
                r.fraud,
            )
            for r in rows
        ],
    )


def _event(row: Sequence[Any]) -> EventRow:
    amount = row[4]
    return EventRow(
        tenant_id=row[0],
        seq=int(row[1]),
        transfer_id=row[2],
        at_us=int(row[3]),
        amount=int(amount) if isinstance(amount, Decimal) else from_stored_int(amount),
        scale=int(row[5]),
        customer_id=row[6],
        payee=row[7],
        channel=row[8],
        device=row[9],
        ip=row[10],
        fraud=None if row[11] is None else bool(row[11]),
    )


def recent_events(
    uow: UnitOfWork, tenant_id: str, since_us: int, up_to_seq: int, limit: int
) -> list[EventRow]:
    """The tenant's events at or after `since_us` with seq at most `up_to_seq`, the newest
    `limit` of them, oldest first (a warm start: by the (tenant_id, at_us) index)."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {_EVENT_COLS} FROM risk_events WHERE tenant_id = ? AND at_us >= ? "
            "AND seq <= ? ORDER BY at_us DESC, seq DESC LIMIT ?",
        ),
        (tenant_id, since_us, up_to_seq, limit),
    )
    rows = [_event(r) for r in cur.fetchall()]
    rows.sort(key=lambda r: r.seq)
    return rows


_LAST = "(SELECT last_seq FROM risk_tails WHERE tenant_id = ?)"


def tail(uow: UnitOfWork, tenant_id: str, after: int, limit: int) -> list[EventRow | LabelRow]:
    """What the tenant's rows gained after counter value `after`, up to its `last_seq` in
    risk_tails: new events (by seq) and new labels (by label_seq), at most `limit`
    of each, in counter order. One statement, each half by an index (the primary key,
    risk_events_label). Every row the sink or a label writes is numbered from risk_tails, so a
    number past `last_seq` was not drawn there (a hand edit): read, it would move the reader's
    `after` past every later real row and freeze the tenant's features without a word."""
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT * FROM (SELECT 0 AS k, seq AS n, {_EVENT_COLS} FROM risk_events "
            f"WHERE tenant_id = ? AND seq > ? AND seq <= {_LAST} ORDER BY seq LIMIT ?) AS e "
            f"UNION ALL SELECT * FROM (SELECT 1 AS k, label_seq AS n, {_EVENT_COLS} "
            f"FROM risk_events WHERE tenant_id = ? AND label_seq > ? AND label_seq <= {_LAST} "
            "ORDER BY label_seq LIMIT ?) AS l",
        ),
        (tenant_id, after, tenant_id, limit, tenant_id, after, tenant_id, limit),
    )
    out: list[tuple[int, EventRow | LabelRow]] = []
    for row in cur.fetchall():
        event = _event(row[2:])
        if row[0] == 0:
            out.append((int(row[1]), event))
        else:
            assert event.fraud is not None
            out.append((int(row[1]), LabelRow(int(row[1]), event.transfer_id, event.fraud)))
    out.sort(key=lambda pair: pair[0])
    # Where one half stopped at its limit, what lies after its last row is unread: keep only
    # what comes before it, so the caller's next `after` skips nothing.
    for kind in (0, 1):
        mine = [n for n, r in out if isinstance(r, EventRow) == (kind == 0)]
        if len(mine) >= limit:
            out = [(n, r) for n, r in out if n <= mine[-1]]
    return [r for _, r in out]


def label(
    uow: UnitOfWork, tenant_id: str, transfer_id: str, fraud: bool, now_us: int
) -> EventRow | None:
    """Records the label of the tenant's payment `transfer_id`; None when it has none."""
    seq = draw_seqs(uow, tenant_id, 1)
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            "UPDATE risk_events SET fraud = ?, labelled_at = ?, label_seq = ? "
            "WHERE tenant_id = ? AND transfer_id = ?",
        ),
        (fraud, now_us, seq, tenant_id, transfer_id),
    )
    if cur.rowcount != 1:
        return None
    cur.execute(
        sql(uow, f"SELECT {_EVENT_COLS} FROM risk_events WHERE transfer_id = ?"), (transfer_id,)
    )
    return _event(cur.fetchone())


class PayerAccount(NamedTuple):
    """A payment's payer account as the risk and payee gates see it."""

    tenant_id: str  # its ledger's
    scale: int  # its asset's
    ledger_id: str


def payment_accounts(uow: UnitOfWork, account_ids: Sequence[str]) -> dict[str, PayerAccount]:
    """account id -> its ledger's tenant, its asset's scale and its ledger, for the accounts
    that exist: an ISO 4217 currency's scale is its exponent, a custom asset's is in
    `assets`."""
    rows = fetch_in(
        uow,
        "SELECT a.id, l.tenant_id, a.asset, s.scale, a.ledger_id FROM accounts a "
        "JOIN ledgers l ON l.id = a.ledger_id LEFT JOIN assets s ON s.code = a.asset",
        "a.id",
        sorted(set(account_ids)),
    )
    out = {}
    for account_id, tenant_id, code, custom, ledger_id in rows:
        iso = iso_asset(code)
        scale = iso.scale if iso is not None else custom
        assert scale is not None, f"asset {code} has a scale"
        out[account_id] = PayerAccount(tenant_id, int(scale), ledger_id)
    return out


def _decision_params(d: DecisionRow) -> tuple[Any, ...]:
    return (
        d.transfer_id,
        d.tenant_id,
        d.verdict,
        d.score,
        orjson.dumps(d.reasons).decode(),
        d.model_version,
        d.rules_version,
        # Sorted keys, as before: 51 floats a row, ten times faster than the json module.
        orjson.dumps(d.features, option=orjson.OPT_SORT_KEYS).decode(),
        None if d.contributions is None else orjson.dumps(d.contributions).decode(),
        d.shadow_score,
        d.shadow_version,
        d.created_at,
    )


def upsert_decisions(uow: UnitOfWork, rows: Sequence[DecisionRow], *, replace: bool) -> None:
    """`replace`: a decision already recorded under the id is replaced (a transfer created now,
    whose earlier attempt was blocked); otherwise it is kept (a blocked attempt never
    overwrites the decision of a transfer that exists)."""
    if not rows:
        return
    marks = ", ".join("?" * 12)
    if replace:
        names = [c.strip() for c in _DECISION_COLS.split(",")][1:]
        action = "DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in names)
    else:
        action = "DO NOTHING"
    uow.cursor().executemany(
        sql(
            uow,
            f"INSERT INTO risk_decisions ({_DECISION_COLS}) VALUES ({marks}) "
            f"ON CONFLICT (transfer_id) {action}",
        ),
        [_decision_params(d) for d in rows],
    )


def set_contributions(
    uow: UnitOfWork, tenant_id: str, transfer_id: str, contributions: list[dict[str, Any]]
) -> None:
    """A decision's contributions, computed when it was first read (the gate stores none);
    never over ones stored already."""
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE risk_decisions SET contributions = ? WHERE transfer_id = ? AND tenant_id = ? "
            "AND contributions IS NULL",
        ),
        (orjson.dumps(contributions).decode(), transfer_id, tenant_id),
    )


def get_decision(uow: UnitOfWork, tenant_id: str, transfer_id: str) -> DecisionRow | None:
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {_DECISION_COLS} FROM risk_decisions WHERE transfer_id = ? AND tenant_id = ?",
        ),
        (transfer_id, tenant_id),
    )
    r = cur.fetchone()
    if r is None:
        return None
    for column, ok in (("verdict", r[2] in VERDICTS), ("created_at", type(r[11]) is int)):
        if not ok:
            _damaged(r[0], column, "cannot be read")
            raise DecisionDamaged(
                f"the stored risk decision of transfer {r[0]} is damaged: its {column} is not "
                "one the risk gate writes (the server's log names it)"
            )
    return DecisionRow(
        transfer_id=r[0],
        tenant_id=r[1],
        verdict=r[2],
        score=stored_number(r[3], r[0], "score"),
        reasons=stored_reasons(r[4], r[0]),
        model_version=r[5],
        rules_version=r[6],
        features=_stored_features(r[7], r[0]),
        contributions=_stored_contributions(r[8]),
        shadow_score=stored_number(r[9], r[0], "shadow_score"),
        shadow_version=r[10],
        created_at=r[11],
    )


# A stored decision's parts as the gate writes them, checked on read: a part that is not (a hand
# edit of the database) reads as empty, with a WARNING naming the transfer and the column (never
# the value), so the decision, its case and a GDPR export are still answered.


VERDICTS: Final = frozenset({"allow", "review", "block"})


def _damaged(transfer_id: object, column: str, then: str = "read as empty") -> None:
    _log.warning("risk: the stored %s of decision %s is damaged; %s", column, transfer_id, then)


def _parsed(text: object) -> object:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _number(value: object) -> TypeGuard[float]:
    """A finite JSON number (a bool is none)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def stored_number(value: object, transfer_id: object, column: str) -> float | None:
    if value is None or _number(value):
        return value
    _damaged(transfer_id, column)
    return None


def stored_reasons(text: object, transfer_id: object) -> list[dict[str, str]]:
    """A decision's reasons: a JSON list of {code, text} strings, or [] (damaged: a WARNING)."""
    found = _parsed(text)
    if isinstance(found, list) and all(
        isinstance(r, dict)
        and r.keys() == {"code", "text"}
        and isinstance(r["code"], str)
        and isinstance(r["text"], str)
        for r in found
    ):
        return found
    _damaged(transfer_id, "reasons")
    return []


def _stored_features(text: object, transfer_id: object) -> dict[str, float]:
    """A decision's features: a JSON object of finite numbers, or {} (damaged: a WARNING)."""
    found = _parsed(text)
    if isinstance(found, dict) and all(_number(v) for v in found.values()):
        return found
    _damaged(transfer_id, "features")
    return {}


def _stored_contributions(text: str | None) -> list[dict[str, Any]] | None:
    """A decision's stored explanation (a JSON list, set on its first read), or None: none
    stored yet, or what is stored is not one (a hand edit: the read computes them again)."""
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, list) or not all(
        isinstance(c, dict)
        and c.keys() == {"feature", "value", "contribution"}
        and isinstance(c["feature"], str)
        and _number(c["value"])
        and _number(c["contribution"])
        for c in found
    ):
        return None
    return found


def history_page(
    uow: UnitOfWork, tenant_id: str, since_us: int, after: tuple[int, int] | None, limit: int
) -> list[EventRow]:
    """The tenant's events at or after `since_us`, in (at_us, seq) order, the first `limit`
    after the key `after` (at_us, seq): a keyset page of `strongroom risk export`, by the
    (tenant_id, at_us) index."""
    assert limit >= 1
    where, params = "tenant_id = ? AND at_us >= ?", [tenant_id, since_us]
    if after is not None:
        where += " AND (at_us > ? OR (at_us = ? AND seq > ?))"
        params += [after[0], after[0], after[1]]
    cur = uow.cursor()
    cur.execute(
        sql(
            uow, f"SELECT {_EVENT_COLS} FROM risk_events WHERE {where} ORDER BY at_us, seq LIMIT ?"
        ),
        (*params, limit),
    )
    return [_event(r) for r in cur.fetchall()]
