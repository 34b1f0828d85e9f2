"""The ledger's own payment history, for training (docs/risk-training.md).

- `export_history`: a tenant's payments (risk_events) written as a raw payment history, the
  file format `strongroom risk backtest` reads (risk/backtest.py): `id`, `time` (seconds since
  the epoch), `customer`, `amount` (major units), `payee`, `device`, `ip` (keyed hashes, as
  stored: nothing personal in clear), `channel`, `label`. Each payment's values are those the
  feature store feeds the feature engine (risk.featurestore.event_of_row), so a replay of the
  file computes what the gate computed.
- `engine_features`: a raw history replayed in time order through the feature engine, by the
  gate's own call (risk.backtest.raw_feature_rows), into a table of ALL_FEATURES columns that
  `risk.trainer.train` takes: the model reads only what the live engine computes.

Labels: 1 fraud, 0 genuine. A payment nobody labelled counts as genuine once it is older than
the label delay (as card schemes' chargeback windows do: no chargeback by then, none coming);
a newer one has a blank label: it is replayed (its neighbours' features need it) but not
trained on. An export `--since` a date starts WARM_DAYS earlier (the longest window and the
label delay, what the gate's engine retains), those rows with blank labels, so that every
labelled row's features are computed from the history the gate had. pandas and pyarrow are
imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.engine import Engine

from strongroom.core import clock
from strongroom.db.uow import UnitOfWork
from strongroom.risk import store
from strongroom.risk.backtest import (
    BACKTEST_ROWS_MAX,
    LABEL_COLUMN_DEFAULT,
    BacktestError,
    raw_feature_rows,
    read_raw_history,
)
from strongroom.risk.features import ALL_FEATURES, LABEL_DELAY_DAYS, FeatureEngine
from strongroom.risk.featurestore import WARM_DAYS, event_of_row

if TYPE_CHECKING:
    import pandas as pd

EXPORT_CHUNK_ROWS: Final = 10_000  # rows read, and written, at once: memory stays bounded
EXPORT_ROWS_MAX: Final = BACKTEST_ROWS_MAX  # what the backtest and the training can read
LABEL_DELAY_DAYS_DEFAULT: Final = LABEL_DELAY_DAYS
LABEL_DELAY_DAYS_MAX: Final = 365
EXPORT_SUFFIXES: Final = (".csv", ".parquet", ".pq")
COLUMNS: Final = ("id", "time", "customer", "amount", "payee", "device", "ip", "channel")
LABEL: Final = LABEL_COLUMN_DEFAULT  # the backtest reads it without --label
TIME: Final = "time"
ID: Final = "id"
_DAY_US: Final = 86_400 * 1_000_000
PROGRESS_EVERY_ROWS: Final = 50_000
assert EXPORT_CHUNK_ROWS <= PROGRESS_EVERY_ROWS

Report = Callable[[str], None]
Row = tuple[Any, ...]  # COLUMNS then LABEL, as written


class HistoryError(BacktestError):
    """The export cannot be written as asked (a bad path, too many rows): nothing was."""


@dataclass(frozen=True, slots=True)
class ExportSummary:
    rows: int
    frauds: int  # labelled fraud
    genuine: int  # labelled genuine, or unlabelled and older than the label delay
    unlabelled: int  # blank, not trained on: too recent and unlabelled, or the warm-up
    first_time: str | None  # the first and last payments' times, ISO 8601
    last_time: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "frauds": self.frauds,
            "genuine": self.genuine,
            "unlabelled": self.unlabelled,
            "first_time": self.first_time,
            "last_time": self.last_time,
        }


def _quiet(_: str) -> None:
    return None


def history_rows(
    engine: Engine,
    tenant_id: str,
    *,
    since_us: int = 0,
    label_delay_days: int = LABEL_DELAY_DAYS_DEFAULT,
    now_us: int | None = None,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
) -> Iterator[list[Row]]:
    """The tenant's payments from `since_us` on, in (time, seq) order, a chunk at a time,
    each chunk read in a short transaction of its own (keyset pages: nothing held open).
    From `since_us` > 0, the WARM_DAYS before it come first with blank labels (a warm-up:
    replayed, so the later payments' windows are full, as the gate's were, never trained on)."""
    assert 0 <= label_delay_days <= LABEL_DELAY_DAYS_MAX
    assert chunk_rows >= 1
    cutoff_us = (clock.now_us() if now_us is None else now_us) - label_delay_days * _DAY_US
    start_us = max(0, since_us - WARM_DAYS * _DAY_US) if since_us > 0 else 0
    after: tuple[int, int] | None = None
    while True:
        with UnitOfWork(engine, write=False) as uow:
            page = store.history_page(uow, tenant_id, start_us, after, chunk_rows)
        if not page:
            return
        rows: list[Row] = []
        for event_row in page:
            # The values the feature store feeds the engine: the same floats, bit for bit.
            e = event_of_row(event_row)
            if event_row.at_us < since_us:
                label: int | None = None  # the warm-up
            elif event_row.fraud is not None:
                label = int(event_row.fraud)
            else:
                label = 0 if event_row.at_us <= cutoff_us else None
            rows.append((e.event_id, e.at_s, e.customer, e.amount, e.payee, e.device, e.ip,
                         e.channel, label))  # fmt: skip
        yield rows
        after = (page[-1].at_us, page[-1].seq)


def export_history(
    engine: Engine,
    tenant_id: str,
    out: Path,
    *,
    since_us: int = 0,
    label_delay_days: int = LABEL_DELAY_DAYS_DEFAULT,
    now_us: int | None = None,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
    report: Report = _quiet,
) -> ExportSummary:
    """Writes the tenant's payments to `out` (CSV or Parquet, by its suffix), through a
    temporary file renamed at the end: a failed export leaves no partial file."""
    suffix = _suffix(out)
    if not 0 <= label_delay_days <= LABEL_DELAY_DAYS_MAX:
        raise HistoryError(f"the label delay must be 0 to {LABEL_DELAY_DAYS_MAX} days")
    if not out.parent.is_dir():
        raise HistoryError(f"{out.parent}: no such folder")
    partial = out.with_name(f".{out.name}.partial")
    chunks = history_rows(
        engine,
        tenant_id,
        since_us=since_us,
        label_delay_days=label_delay_days,
        now_us=now_us,
        chunk_rows=chunk_rows,
    )
    rows = frauds = genuine = 0
    first: float | None = None
    last: float | None = None
    try:
        with _Writer(partial, suffix) as write:
            for chunk in chunks:
                rows += len(chunk)
                if rows > EXPORT_ROWS_MAX:
                    raise HistoryError(f"over {EXPORT_ROWS_MAX:,} payments: export less (--since)")
                for row in chunk:
                    frauds += row[-1] == 1
                    genuine += row[-1] == 0
                first = chunk[0][1] if first is None else first
                last = chunk[-1][1]
                write(chunk)
                if rows % PROGRESS_EVERY_ROWS < len(chunk):
                    report(f"{rows:,} payments")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    report(f"{rows:,} payments written")

    def iso(seconds: float | None) -> str | None:
        return None if seconds is None else clock.format_us(round(seconds * 1_000_000))

    return ExportSummary(rows, frauds, genuine, rows - frauds - genuine, iso(first), iso(last))


def _suffix(out: Path) -> str:
    name = out.name.lower()
    for suffix in EXPORT_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise HistoryError(f"{out.name}: write .csv or .parquet ({', '.join(EXPORT_SUFFIXES)})")


class _Writer:
    """Appends chunks of rows to a CSV or Parquet file."""

    def __init__(self, path: Path, suffix: str) -> None:
        self.path = path
        self.suffix = suffix
        self._close: Callable[[], None] = _nothing

    def __enter__(self) -> Callable[[list[Row]], None]:
        if self.suffix == ".csv":
            handle = self.path.open("w", newline="", encoding="utf-8")
            self._close = handle.close
            writer = csv.writer(handle)
            writer.writerow([*COLUMNS, LABEL])

            def write_csv(chunk: list[Row]) -> None:
                # Floats as repr: the shortest text that reads back as the same float.
                writer.writerows([_csv_cell(v) for v in row] for row in chunk)

            return write_csv
        import pyarrow as pa
        import pyarrow.parquet as pq

        text, number = pa.string(), pa.float64()
        schema = pa.schema(
            [(name, number if name in (TIME, "amount") else text) for name in COLUMNS]
            + [(LABEL, pa.int8())]
        )
        parquet = pq.ParquetWriter(self.path, schema)
        self._close = parquet.close

        def write_parquet(chunk: list[Row]) -> None:
            columns = list(zip(*chunk, strict=True))
            parquet.write_table(pa.Table.from_arrays(
                [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)],
                schema=schema,
            ))  # fmt: skip

        return write_parquet

    def __exit__(self, *exc: object) -> None:
        self._close()


def _nothing() -> None:
    return None


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        assert math.isfinite(value), value
        return repr(value)
    return value


# --- training on a raw history ------------------------------------------------------------------


def engine_features(
    path: Path, label: str | None = None, *, report: Report = _quiet
) -> pd.DataFrame:
    """A raw payment history replayed in time order through a fresh feature engine, each
    payment's features computed as the gate computes them (before it is observed), then
    observed with its label. Answers a table of `id`, `time`, ALL_FEATURES and the label
    (0/1; rows with a blank label are replayed, and dropped from the table)."""
    import numpy as np
    import pandas as pd

    history = read_raw_history(path, label)
    if history.label is None:
        raise BacktestError(f"{path.name}: a raw history to train on needs a label column")
    frame, label = history.frame, history.label
    labels = _optional_labels(frame[label], label)
    engine = FeatureEngine()
    names = ALL_FEATURES
    x = np.empty((len(frame), len(names)), dtype=np.float64)
    rows = raw_feature_rows(frame, engine, [v is True for v in labels])
    for i, row in enumerate(rows):
        x[i] = [row[name] for name in names]
        if (i + 1) % PROGRESS_EVERY_ROWS == 0:
            report(f"{i + 1:,} / {len(frame):,} payments replayed")
    report(f"{len(frame):,} payments replayed through the feature engine")
    table = pd.DataFrame(x, columns=list(names))
    table.insert(0, TIME, frame[TIME].to_numpy(dtype=np.float64))
    table.insert(0, ID, frame[ID].astype(str).to_numpy())
    table[label] = [1 if v else 0 for v in labels]
    known = np.array([v is not None for v in labels], dtype=bool)
    return table[known].reset_index(drop=True)


def _optional_labels(column: pd.Series, name: str) -> list[bool | None]:
    """0/1 labels, blanks as None (not known yet); any other value is refused."""
    import pandas as pd

    if not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)):
        raise BacktestError(f"label column {name!r} is not numeric (0, 1 or blank)")
    values: Sequence[float] = column.to_numpy(dtype=float, na_value=math.nan).tolist()
    bad = sum(1 for v in values if not (math.isnan(v) or v in (0.0, 1.0)))
    if bad:
        raise BacktestError(f"label column {name!r}: {bad:,} values are not 0, 1 or blank")
    return [None if math.isnan(v) else v == 1.0 for v in values]


__all__ = [
    "EXPORT_CHUNK_ROWS",
    "ExportSummary",
    "HistoryError",
    "engine_features",
    "export_history",
    "history_rows",
]
