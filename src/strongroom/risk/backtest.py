"""`strongroom risk backtest` (docs/risk-rules.md, "Backtest"): replays a history through the
same decision code as the gate (risk.decide.RiskPolicy.decide, in gate-sized batches) and
reports what a rule set would have flagged, with precision and recall where labels exist.

The data is CSV or Parquet, in one of two shapes:
- feature rows: every feature the rules (and the model) read is a column; they are used as is;
- a raw payment history (`id`, `time`, `customer`, `amount`, optional `payee`, `device`, `ip`,
  `channel`, `label`): it is replayed in time order through the feature engine
  (risk.features.FeatureEngine, or any FeatureSource), each payment's features computed as of
  its own time, before it is observed, exactly as the gate computes them online.

pandas is imported inside the functions that read files, so importing this module stays light.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from strongroom.core.errors import InvalidRequest
from strongroom.ledger.model import Verdict
from strongroom.risk.decide import RiskPolicy
from strongroom.risk.model import FeatureSource, PaymentEvent, RiskDecision, Scorer
from strongroom.risk.rules import RuleSet, RuleSetError

if TYPE_CHECKING:
    import pandas as pd

BACKTEST_ROWS_MAX: Final = 20_000_000
BATCH_ROWS_DEFAULT: Final = 256  # a gate-sized batch: decisions do not depend on it
BATCH_ROWS_MAX: Final = 8_190  # core.limits.BATCH_TRANSFERS_MAX: no gate batch is larger
PROGRESS_EVERY_ROWS: Final = 50_000
_CHUNK_ROWS: Final = 16_384  # feature rows made into dicts this many at a time

RAW_COLUMNS_REQUIRED: Final = ("id", "time", "customer", "amount")
RAW_COLUMNS_OPTIONAL: Final = ("payee", "device", "ip", "channel")
LABEL_COLUMN_DEFAULT: Final = "label"
FEATURE_ENGINE_MODULE: Final = "strongroom.risk.features"
ARTEFACT_MODULE: Final = "strongroom.risk.artefact"
DATA_SUFFIXES: Final = (".csv", ".csv.gz", ".parquet", ".pq")

Report = Callable[[str], None]
Sink = Callable[[int, RiskDecision], None]


class BacktestError(InvalidRequest):
    """The data cannot be backtested (unreadable, wrong shape, bad labels): nothing was run."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="invalid_backtest_data")


@dataclass(frozen=True, slots=True)
class Hits:
    """Rows that something flagged (a verdict, a rule, a score threshold), and how many of
    them were frauds; precision and recall are None without labels or with nothing to divide."""

    rows: int
    frauds: int | None
    precision: float | None
    recall: float | None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class BacktestReport:
    rules_version: str
    model_version: str | None
    data: str  # "features" (columns used as is) or "raw" (replayed through the feature engine)
    rows: int
    positives: int | None  # rows labelled fraud; None without labels
    verdicts: Mapping[str, int]
    flagged: Mapping[str, Hits]  # "review_or_block" and "block"
    rules: Mapping[str, tuple[str, Hits]]  # rule id -> (action, its hits), in the file's order
    scores: Mapping[str, Hits]  # "model_score", "anomaly_score": rows where the threshold acted

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules_version": self.rules_version,
            "model_version": self.model_version,
            "data": self.data,
            "rows": self.rows,
            "positives": self.positives,
            "verdicts": dict(self.verdicts),
            "flagged": {name: hits.to_dict() for name, hits in self.flagged.items()},
            "rules": [
                {"id": rule_id, "action": action, **hits.to_dict()}
                for rule_id, (action, hits) in self.rules.items()
            ],
            "scores": [{"code": code, **hits.to_dict()} for code, hits in self.scores.items()],
        }


@dataclass(slots=True)
class _Tally:
    labelled: bool
    rows: int = 0
    positives: int = 0
    verdicts: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))
    verdict_frauds: dict[Verdict, int] = field(default_factory=lambda: dict.fromkeys(Verdict, 0))
    codes: dict[str, int] = field(default_factory=dict)
    code_frauds: dict[str, int] = field(default_factory=dict)

    def add(self, decision: RiskDecision, fraud: bool) -> None:
        self.rows += 1
        self.positives += fraud
        self.verdicts[decision.verdict] += 1
        self.verdict_frauds[decision.verdict] += fraud
        for reason in decision.reasons:
            self.codes[reason.code] = self.codes.get(reason.code, 0) + 1
            self.code_frauds[reason.code] = self.code_frauds.get(reason.code, 0) + fraud

    def hits(self, rows: int, frauds: int) -> Hits:
        if not self.labelled:
            return Hits(rows, None, None, None)
        precision = frauds / rows if rows else None
        recall = frauds / self.positives if self.positives else None
        return Hits(rows, frauds, precision, recall)


def replay(
    policy: RiskPolicy, rows: Iterable[Mapping[str, float]], *, batch_rows: int
) -> Iterator[RiskDecision]:
    """Decides `rows` through the policy in batches of `batch_rows`, as the gate does."""
    assert 0 < batch_rows <= BATCH_ROWS_MAX, batch_rows
    batch: list[Mapping[str, float]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_rows:
            yield from policy.decide(batch)
            batch = []
    if batch:
        yield from policy.decide(batch)


def backtest_rows(
    policy: RiskPolicy,
    rows: Iterable[Mapping[str, float]],
    labels: Sequence[bool] | None,
    *,
    total: int | None = None,
    data: str = "features",
    batch_rows: int = BATCH_ROWS_DEFAULT,
    report: Report | None = None,
    sink: Sink | None = None,
) -> BacktestReport:
    """Decides every row and tallies the decisions; `sink(i, decision)` sees each one."""
    tally = _Tally(labelled=labels is not None)
    for i, decision in enumerate(replay(policy, rows, batch_rows=batch_rows)):
        tally.add(decision, labels[i] if labels is not None else False)
        if sink is not None:
            sink(i, decision)
        if report is not None and (i + 1) % PROGRESS_EVERY_ROWS == 0:
            report(f"{i + 1:,} / {total:,} rows" if total else f"{i + 1:,} rows")
    if labels is not None:
        assert tally.rows == len(labels), "one label per row"
    if report is not None:
        report(f"{tally.rows:,} rows decided")

    review, block = Verdict.REVIEW, Verdict.BLOCK
    flagged = {
        "review_or_block": tally.hits(
            tally.verdicts[review] + tally.verdicts[block],
            tally.verdict_frauds[review] + tally.verdict_frauds[block],
        ),
        "block": tally.hits(tally.verdicts[block], tally.verdict_frauds[block]),
    }
    rules = {
        rule.id: (
            rule.action.value,
            tally.hits(tally.codes.get(rule.id, 0), tally.code_frauds.get(rule.id, 0)),
        )
        for rule in policy.rules.rules
    }
    score_codes = ["model_score"] if policy.model is not None else []
    if policy.anomaly is not None and policy.rules.score.anomaly_review is not None:
        score_codes.append("anomaly_score")
    scores = {
        code: tally.hits(tally.codes.get(code, 0), tally.code_frauds.get(code, 0))
        for code in score_codes
    }
    return BacktestReport(
        rules_version=policy.rules.version,
        model_version=policy.model_version,
        data=data,
        rows=tally.rows,
        positives=tally.positives if labels is not None else None,
        verdicts={verdict.value: tally.verdicts[verdict] for verdict in Verdict},
        flagged=flagged,
        rules=rules,
        scores=scores,
    )


def backtest_file(
    rules: RuleSet,
    path: Path,
    *,
    label: str | None = None,
    model: Scorer | None = None,
    batch_rows: int = BATCH_ROWS_DEFAULT,
    report: Report | None = None,
    sink: Sink | None = None,
    engine_factory: Callable[[], FeatureSource] | None = None,
) -> BacktestReport:
    """Backtests `rules` (and `model`) on a CSV or Parquet file of feature rows or of raw
    payments. `engine_factory` makes the feature engine of a raw history (by default
    risk.features.FeatureEngine)."""
    if not 0 < batch_rows <= BATCH_ROWS_MAX:
        raise BacktestError(f"the batch size must be 1 to {BATCH_ROWS_MAX}, not {batch_rows}")
    policy = RiskPolicy(rules, model)
    needed = set(rules.features) | set(model.feature_names if model is not None else ())
    columns = _columns(path)
    if label is not None and label not in columns:
        raise BacktestError(f"{path.name}: no label column {label!r}")
    if needed <= set(columns):
        frame = _read(path, sorted(needed | ({label} if label else set())))
        labels = _labels(frame, label) if label else None
        rows = _feature_rows(frame, sorted(needed), path.name)
        return backtest_rows(
            policy, rows, labels, total=len(frame), batch_rows=batch_rows, report=report, sink=sink
        )
    missing_raw = [c for c in RAW_COLUMNS_REQUIRED if c not in columns]
    if missing_raw:
        raise BacktestError(
            f"{path.name} holds neither the features read by the rules and the model "
            f"(missing: {', '.join(sorted(needed - set(columns)))}) nor a raw payment history "
            f"(missing: {', '.join(missing_raw)})"
        )
    engine = (engine_factory or _feature_engine)()
    try:
        rules.check(engine.names)
    except RuleSetError as exc:
        raise RuleSetError(
            [f"{e} (not computed by the feature engine)" for e in exc.errors]
        ) from None
    if model is not None and (unknown := sorted(set(model.feature_names) - set(engine.names))):
        raise BacktestError(f"the model reads features the engine lacks: {', '.join(unknown)}")
    history = read_raw_history(path, label, columns=columns)
    frame, label = history.frame, history.label
    labels = _labels(frame, label) if label else None
    events = raw_feature_rows(frame, engine, labels)
    return backtest_rows(
        policy,
        events,
        labels,
        total=len(frame),
        data="raw",
        batch_rows=batch_rows,
        report=report,
        sink=sink,
    )


@dataclass(frozen=True, slots=True)
class RawHistory:
    """A raw payment history as read: `frame` in time order (stable: ties keep the file's
    order), `time` in seconds since the epoch; `label` names its label column, if any."""

    frame: pd.DataFrame
    label: str | None


def is_raw_history(columns: Iterable[str]) -> bool:
    """The file holds a raw payment history's required columns."""
    return set(RAW_COLUMNS_REQUIRED) <= set(columns)


def history_columns(path: Path) -> list[str]:
    """A CSV or Parquet file's column names (its rows counted against BACKTEST_ROWS_MAX)."""
    return _columns(path)


def read_raw_history(
    path: Path, label: str | None = None, *, columns: Sequence[str] | None = None
) -> RawHistory:
    """Reads a raw payment history (the raw columns, and `label`, by default the column
    LABEL_COLUMN_DEFAULT when there is one), checked and put in time order."""
    columns = _columns(path) if columns is None else columns
    missing = [c for c in RAW_COLUMNS_REQUIRED if c not in columns]
    if missing:
        raise BacktestError(
            f"{path.name}: not a raw payment history (missing: {', '.join(missing)})"
        )
    if label is None and LABEL_COLUMN_DEFAULT in columns:
        label = LABEL_COLUMN_DEFAULT
    if label is not None and label not in columns:
        raise BacktestError(f"{path.name}: no label column {label!r}")
    wanted = [*RAW_COLUMNS_REQUIRED, *(c for c in RAW_COLUMNS_OPTIONAL if c in columns)]
    frame = _read(path, [*wanted, *([label] if label else [])], text=wanted)
    return RawHistory(_time_ordered(frame, path.name), label)


def load_model(path: Path) -> Scorer:
    """A trained model artefact (risk.artefact.ModelArtifact.load), imported when needed."""
    try:
        module = importlib.import_module(ARTEFACT_MODULE)
    except ImportError:
        raise BacktestError(
            "this build has no model artefacts (strongroom.risk.artefact)"
        ) from None
    loaded: Scorer = module.ModelArtifact.load(path)
    return loaded


def _feature_engine() -> FeatureSource:
    try:
        module = importlib.import_module(FEATURE_ENGINE_MODULE)
    except ImportError:
        raise BacktestError(
            "a raw payment history needs the feature engine (strongroom.risk.features), "
            "which this build lacks: give a file of feature columns instead"
        ) from None
    engine: FeatureSource = module.FeatureEngine()
    return engine


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in DATA_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise BacktestError(f"{path.name}: not a CSV or Parquet file ({', '.join(DATA_SUFFIXES)})")


def _columns(path: Path) -> list[str]:
    suffix = _suffix(path)
    if not path.is_file():
        raise BacktestError(f"{path.name}: no such file")
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            schema = pq.read_schema(path)
            rows = pq.ParquetFile(path).metadata.num_rows
            names = list(schema.names)
        else:
            import pandas as pd

            names = [str(c) for c in pd.read_csv(path, nrows=0).columns]
            rows = 0  # counted once read
    except (OSError, ValueError) as exc:
        raise BacktestError(f"{path.name}: unreadable ({type(exc).__name__})") from None
    if rows > BACKTEST_ROWS_MAX:
        raise BacktestError(f"{path.name}: {rows:,} rows, over {BACKTEST_ROWS_MAX:,}")
    return names


def _read(path: Path, columns: Sequence[str], *, text: Sequence[str] = ()) -> pd.DataFrame:
    import pandas as pd

    try:
        if _suffix(path) in (".parquet", ".pq"):
            frame = pd.read_parquet(path, columns=list(columns))
        else:
            dtypes = {c: "string" for c in text if c not in ("time", "amount")}
            frame = pd.read_csv(path, usecols=list(columns), dtype=dtypes)
    except (OSError, ValueError) as exc:
        raise BacktestError(f"{path.name}: unreadable ({type(exc).__name__})") from None
    if len(frame) > BACKTEST_ROWS_MAX:
        raise BacktestError(f"{path.name}: {len(frame):,} rows, over {BACKTEST_ROWS_MAX:,}")
    return frame


def _numeric(frame: pd.DataFrame, column: str, source: str) -> list[float]:
    import pandas as pd

    series = frame[column]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise BacktestError(f"{source}: column {column!r} is not numeric")
    values: list[float] = series.to_numpy(dtype=float, na_value=math.nan).tolist()
    return values


def _labels(frame: pd.DataFrame, column: str) -> list[bool]:
    values = _numeric(frame, column, f"label column {column!r}")
    bad = sum(1 for v in values if v not in (0.0, 1.0))
    if bad:
        raise BacktestError(f"label column {column!r}: {bad:,} values are not 0 or 1")
    return [v == 1.0 for v in values]


def _feature_rows(
    frame: pd.DataFrame, names: Sequence[str], source: str
) -> Iterator[dict[str, float]]:
    columns = [_numeric(frame, name, source) for name in names]
    if not names:
        for _ in range(len(frame)):
            yield {}
        return
    for start in range(0, len(frame), _CHUNK_ROWS):
        chunk = [column[start : start + _CHUNK_ROWS] for column in columns]
        for values in zip(*chunk, strict=True):
            yield dict(zip(names, values, strict=True))


_TIME_ABS_MAX_S: Final = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def _time_ordered(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Sorted by time, ties in the file's order; `time` becomes seconds since the epoch."""
    import pandas as pd

    time = frame["time"]
    if pd.api.types.is_numeric_dtype(time):
        seconds = time.astype(float)
    else:
        try:
            stamps = pd.to_datetime(time, utc=True)
        except (ValueError, TypeError):
            raise BacktestError(
                f"{source}: column 'time' is neither seconds nor timestamps"
            ) from None
        seconds = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    if seconds.isna().any():
        raise BacktestError(f"{source}: column 'time' has {int(seconds.isna().sum()):,} blanks")
    # Seconds a clock can give (years 1 to 9999): an infinite or astronomical time cannot be
    # placed in a window (it overflowed converting to a date).
    far = ~seconds.abs().le(_TIME_ABS_MAX_S)
    if far.any():
        raise BacktestError(
            f"{source}: column 'time' has {int(far.sum()):,} values that are no time "
            "(infinite, or past the year 9999)"
        )
    for column in ("id", "customer"):
        if frame[column].isna().any():
            raise BacktestError(f"{source}: column {column!r} has blanks")
    amounts = frame["amount"]
    if not pd.api.types.is_numeric_dtype(amounts) or amounts.isna().any():
        raise BacktestError(f"{source}: column 'amount' must be numbers, with no blanks")
    if (~amounts.abs().lt(float("inf"))).any():
        raise BacktestError(f"{source}: column 'amount' has infinite values")
    ordered = frame.assign(time=seconds)
    return ordered.sort_values("time", kind="stable").reset_index(drop=True)


def raw_feature_rows(
    frame: pd.DataFrame, engine: FeatureSource, labels: Sequence[bool] | None
) -> Iterator[dict[str, float]]:
    """Each payment of a time-ordered raw history (RawHistory.frame): its features before it
    is observed, by the gate's own call (`engine.features`), then observed with its label (the
    engine applies its own label delay)."""
    columns = {c: frame[c].tolist() for c in frame.columns}
    optional = [c for c in RAW_COLUMNS_OPTIONAL if c in columns]
    for i in range(len(frame)):
        extra = {c: _text(columns[c][i]) for c in optional}
        event = PaymentEvent(
            event_id=str(columns["id"][i]),
            at_s=float(columns["time"][i]),
            amount=float(columns["amount"][i]),
            customer=str(columns["customer"][i]),
            **extra,  # type: ignore[arg-type]
        )
        yield engine.features([event])[0]
        engine.observe(dataclasses.replace(event, fraud=labels[i]) if labels is not None else event)


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    import pandas as pd

    return None if value is pd.NA else str(value)


__all__ = [
    "BACKTEST_ROWS_MAX",
    "BATCH_ROWS_DEFAULT",
    "BacktestError",
    "BacktestReport",
    "Hits",
    "RawHistory",
    "backtest_file",
    "backtest_rows",
    "history_columns",
    "is_raw_history",
    "load_model",
    "raw_feature_rows",
    "read_raw_history",
    "replay",
]
