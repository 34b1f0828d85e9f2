"""All of the customers' and counterparties' SQL (migration 0013). Personal data arrives here
sealed (bytes this module cannot read) or as a blind index (a keyed hash)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.customers.model import PII_FIELDS
from strongroom.db.query import fetch_in, sql
from strongroom.db.uow import UnitOfWork

_SEALED: Final = tuple(f"{name}_sealed" for name in PII_FIELDS)
CUSTOMER_COLS: Final = ", ".join(
    (
        "id",
        "tenant_id",
        "kind",
        *_SEALED,
        "email_index",
        "national_id_index",
        "legal_hold",
        "metadata",
        "created_by",
        "created_at",
        "updated_at",
        "erased_at",
    )
)
COUNTERPARTY_COLS: Final = (
    "id, tenant_id, name_sealed, account_sealed, country, created_by, created_at, erased_at"
)
INDEXES: Final = ("email_index", "national_id_index")  # the blind-index columns


def _blob(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    id: str
    tenant_id: str
    kind: str
    sealed: dict[str, bytes]  # field -> sealed value, for the fields that are set
    legal_hold: bool
    metadata: str | None
    created_by: str
    created_at: int
    updated_at: int
    erased_at: int | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> CustomerRow:
        n = len(PII_FIELDS)
        sealed = {
            name: bytes(value)
            for name, value in zip(PII_FIELDS, row[3 : 3 + n], strict=True)
            if value is not None
        }
        rest = row[3 + n + 2 :]
        return cls(
            id=row[0],
            tenant_id=row[1],
            kind=row[2],
            sealed=sealed,
            legal_hold=bool(rest[0]),
            metadata=rest[1],
            created_by=rest[2],
            created_at=int(rest[3]),
            updated_at=int(rest[4]),
            erased_at=None if rest[5] is None else int(rest[5]),
        )


def insert_customer(uow: UnitOfWork, row: CustomerRow, indexes: Mapping[str, bytes]) -> None:
    values = (
        row.id,
        row.tenant_id,
        row.kind,
        *(row.sealed.get(name) for name in PII_FIELDS),
        *(indexes.get(column) for column in INDEXES),
        row.legal_hold,
        row.metadata,
        row.created_by,
        row.created_at,
        row.updated_at,
        row.erased_at,
    )
    marks = ",".join("?" * len(values))
    uow.cursor().execute(
        sql(uow, f"INSERT INTO customers ({CUSTOMER_COLS}) VALUES ({marks})"), values
    )


def get_customer(uow: UnitOfWork, customer_id: str, *, lock: bool = False) -> CustomerRow | None:
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {CUSTOMER_COLS} FROM customers WHERE id = ?{suffix}"), (customer_id,)
    )
    row = cur.fetchone()
    return None if row is None else CustomerRow.of(row)


def update_customer(
    uow: UnitOfWork,
    customer_id: str,
    sealed: Mapping[str, bytes],
    indexes: Mapping[str, bytes],
    metadata: str | None,
    now_us: int,
) -> None:
    """Sets the sealed fields and blind indexes given, the metadata, and updated_at."""
    sets = [f"{name}_sealed = ?" for name in sealed] + [f"{c} = ?" for c in indexes]
    params: list[Any] = [*sealed.values(), *indexes.values()]
    uow.cursor().execute(
        sql(
            uow,
            f"UPDATE customers SET {''.join(s + ', ' for s in sets)}metadata = ?, "
            "updated_at = ? WHERE id = ?",
        ),
        (*params, metadata, now_us, customer_id),
    )


def set_legal_hold(uow: UnitOfWork, customer_id: str, held: bool, now_us: int) -> None:
    uow.cursor().execute(
        sql(uow, "UPDATE customers SET legal_hold = ?, updated_at = ? WHERE id = ?"),
        (held, now_us, customer_id),
    )


def erase_customer(uow: UnitOfWork, customer_id: str, now_us: int) -> None:
    """The sealed fields and the blind indexes nulled (the data key is shredded besides)."""
    nulls = ", ".join(f"{c} = NULL" for c in (*_SEALED, *INDEXES))
    uow.cursor().execute(
        sql(uow, f"UPDATE customers SET {nulls}, erased_at = ?, updated_at = ? WHERE id = ?"),
        (now_us, now_us, customer_id),
    )


def list_customers(
    uow: UnitOfWork,
    tenant_id: str,
    after_id: str | None,
    limit: int,
    *,
    index: tuple[str, bytes] | None = None,
) -> list[CustomerRow]:
    """A tenant's customers by id; with `index` (column, blind index), those it matches."""
    assert index is None or index[0] in INDEXES
    where, params = ["tenant_id = ?"], [tenant_id]
    if index is not None:
        where.append(f"{index[0]} = ?")
        params.append(index[1])  # type: ignore[arg-type]  # bytes, beside the strs
    if after_id is not None:
        where.append("id > ?")
        params.append(after_id)
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {CUSTOMER_COLS} FROM customers WHERE {' AND '.join(where)} "
            "ORDER BY id LIMIT ?",
        ),
        (*params, limit),
    )
    return [CustomerRow.of(r) for r in cur.fetchall()]


def existing_customer_ids(uow: UnitOfWork, tenant_id: str, ids: Sequence[str]) -> set[str]:
    rows = fetch_in(uow, "SELECT id, tenant_id FROM customers", "id", ids)
    return {r[0] for r in rows if r[1] == tenant_id}


# -- counterparties ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CounterpartyRow:
    id: str
    tenant_id: str
    name_sealed: bytes | None
    account_sealed: bytes | None
    country: str
    created_by: str
    created_at: int
    erased_at: int | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> CounterpartyRow:
        return cls(
            row[0],
            row[1],
            _blob(row[2]),
            _blob(row[3]),
            row[4],
            row[5],
            int(row[6]),
            None if row[7] is None else int(row[7]),
        )


def insert_counterparty(uow: UnitOfWork, row: CounterpartyRow) -> None:
    uow.cursor().execute(
        sql(uow, f"INSERT INTO counterparties ({COUNTERPARTY_COLS}) VALUES (?,?,?,?,?,?,?,?)"),
        (
            row.id,
            row.tenant_id,
            row.name_sealed,
            row.account_sealed,
            row.country,
            row.created_by,
            row.created_at,
            row.erased_at,
        ),
    )


def get_counterparty(
    uow: UnitOfWork, counterparty_id: str, *, lock: bool = False
) -> CounterpartyRow | None:
    suffix = " FOR UPDATE" if lock and not uow.sqlite else ""
    cur = uow.cursor()
    cur.execute(
        sql(uow, f"SELECT {COUNTERPARTY_COLS} FROM counterparties WHERE id = ?{suffix}"),
        (counterparty_id,),
    )
    row = cur.fetchone()
    return None if row is None else CounterpartyRow.of(row)


def list_counterparties(
    uow: UnitOfWork, tenant_id: str, after_id: str | None, limit: int
) -> list[CounterpartyRow]:
    where, params = "tenant_id = ?", [tenant_id]
    if after_id is not None:
        where += " AND id > ?"
        params.append(after_id)
    cur = uow.cursor()
    cur.execute(
        sql(
            uow,
            f"SELECT {COUNTERPARTY_COLS} FROM counterparties WHERE {where} ORDER BY id LIMIT ?",
        ),
        (*params, limit),
    )
    return [CounterpartyRow.of(r) for r in cur.fetchall()]


def erase_counterparty(uow: UnitOfWork, counterparty_id: str, now_us: int) -> None:
    uow.cursor().execute(
        sql(
            uow,
            "UPDATE counterparties SET name_sealed = NULL, account_sealed = NULL, "
            "erased_at = ? WHERE id = ?",
        ),
        (now_us, counterparty_id),
    )
