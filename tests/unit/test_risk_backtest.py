"""The backtest (risk.backtest): metrics computed by hand on a tiny labelled file, the exact
agreement of backtest and gate decisions, raw histories replayed through a feature engine."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from strongroom.ledger.model import Verdict
from strongroom.risk import backtest as backtest_module
from strongroom.risk.backtest import BacktestError, Hits, backtest_file
from strongroom.risk.decide import RiskPolicy
from strongroom.risk.model import Contribution, FeatureSource, PaymentEvent, RiskDecision
from strongroom.risk.rules import RuleSet, RuleSetError
from tests.support import flags

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "risk-rules.yaml"
EXAMPLE_DOC = EXAMPLE.parents[1] / "risk-rules.md"

RULES = RuleSet.from_document(
    {
        "version": "bt",
        "score": {"review": 0.5, "block": 0.9},
        "rules": [
            {
                "id": "big",
                "when": {"feature": "amount", "op": ">", "value": 100},
                "action": "block",
                "reason": "big amount",
            },
            {
                "id": "odd",
                "when": {"feature": "x", "op": "==", "value": 1},
                "action": "review",
                "reason": "odd",
            },
            {
                "id": "trusted",
                "when": {"feature": "t", "op": "==", "value": 1},
                "action": "allow",
                "reason": "trusted",
            },
        ],
    }
)

# amount, x, t, label, and the verdict each row gets by hand.
TINY = [
    (150, 0, 0, 1),  # block (big)
    (200, 1, 0, 0),  # block (big, odd)
    (50, 1, 0, 1),  # review (odd)
    (50, 1, 0, 0),  # review (odd)
    (10, 0, 0, 1),  # allow: a missed fraud
    (10, 0, 1, 0),  # allow (trusted)
    (120, 0, 1, 1),  # block (big, trusted): an allow rule never lifts a rule's block
    (5, 0, 0, 0),  # allow
]


class FakeScorer:
    def __init__(self) -> None:
        self.version = "fake-1"
        self.feature_names = ("p",)

    def score(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        return [row["p"] for row in rows]

    def explain(self, rows: Sequence[Mapping[str, float]], top: int) -> list[list[Contribution]]:
        return [[Contribution("p", row["p"], row["p"] - 0.1)][:top] for row in rows]


def write_tiny(path: Path) -> Path:
    frame = pd.DataFrame(TINY, columns=["amount", "x", "t", "fraud"])
    frame.insert(0, "note", ["n"] * len(TINY))  # a text column the rules do not read
    frame.to_csv(path, index=False)
    return path


def test_metrics_on_a_tiny_labelled_file_match_the_hand_count(tmp_path: Path) -> None:
    reports: list[str] = []
    report = backtest_file(
        RULES, write_tiny(tmp_path / "tiny.csv"), label="fraud", report=reports.append
    )
    assert report.data == "features"
    assert report.rows == 8
    assert report.positives == 4
    assert report.rules_version == RULES.version
    assert report.model_version is None
    assert report.verdicts == {"allow": 3, "review": 2, "block": 3}
    assert report.flagged["review_or_block"] == Hits(5, 3, 3 / 5, 3 / 4)
    assert report.flagged["block"] == Hits(3, 2, 2 / 3, 2 / 4)
    assert report.rules == {
        "big": ("block", Hits(3, 2, 2 / 3, 2 / 4)),
        "odd": ("review", Hits(3, 1, 1 / 3, 1 / 4)),
        "trusted": ("allow", Hits(2, 1, 1 / 2, 1 / 4)),
    }
    assert report.scores == {}
    assert reports == ["8 rows decided"]
    as_dict = report.to_dict()
    assert as_dict["rules"][0] == {
        "id": "big",
        "action": "block",
        "rows": 3,
        "frauds": 2,
        "precision": 2 / 3,
        "recall": 0.5,
    }


def test_without_labels_only_counts_are_reported(tmp_path: Path) -> None:
    report = backtest_file(RULES, write_tiny(tmp_path / "tiny.csv"))
    assert report.positives is None
    assert report.flagged["block"] == Hits(3, None, None, None)
    assert report.rules["odd"] == ("review", Hits(3, None, None, None))


def test_precision_and_recall_are_none_where_nothing_divides(tmp_path: Path) -> None:
    path = tmp_path / "clean.csv"
    pd.DataFrame({"amount": [1, 2], "x": [0, 0], "t": [0, 0], "fraud": [0, 0]}).to_csv(
        path, index=False
    )
    report = backtest_file(RULES, path, label="fraud")
    assert report.flagged["block"] == Hits(0, 0, None, None)


def random_rows(count: int, seed: int) -> list[dict[str, float]]:
    rng = random.Random(seed)
    return [
        {
            "amount": round(rng.lognormvariate(3.5, 1.2), 2),
            "x": float(rng.random() < 0.1),
            "t": float(rng.random() < 0.2),
            "p": rng.random(),
        }
        for _ in range(count)
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_backtest_and_gate_decisions_agree_exactly(tmp_path: Path, suffix: str) -> None:
    rows = random_rows(2_000, seed=7)
    labels = [int(random.Random(i).random() < 0.05) for i in range(len(rows))]
    path = tmp_path / f"history{suffix}"
    frame = pd.DataFrame(rows).assign(fraud=labels)
    if suffix == ".csv":
        frame.to_csv(path, index=False, float_format="%.17g")
    else:
        frame.to_parquet(path)

    # The gate: one RiskPolicy, decide() once per coalesced batch, batches of varying size.
    gate = RiskPolicy(RULES, FakeScorer())
    rng = random.Random(3)
    live: list[RiskDecision] = []
    start = 0
    while start < len(rows):
        size = rng.randint(1, 64)
        live.extend(gate.decide(rows[start : start + size]))
        start += size

    replayed: dict[int, RiskDecision] = {}
    report = backtest_file(
        RULES, path, label="fraud", model=FakeScorer(), sink=replayed.__setitem__
    )
    assert [replayed[i] for i in range(len(rows))] == live
    assert {d.verdict for d in live} == set(Verdict)
    assert any(d.contributions for d in live)
    assert report.model_version == "fake-1"
    assert report.verdicts["block"] == sum(d.verdict is Verdict.BLOCK for d in live)
    assert report.scores["model_score"].rows == sum(
        any(r.code == "model_score" for r in d.reasons) for d in live
    )


class FakeEngine:
    """A FeatureSource: the amount, the customer's payments so far (itself included) and the
    customer's observed frauds. Records what it observed."""

    names = ("amount", "customer_count", "customer_frauds")

    def __init__(self) -> None:
        self.observed: list[PaymentEvent] = []

    def observe(self, event: PaymentEvent) -> None:
        self.observed.append(event)

    def label(self, event_id: str, fraud: bool) -> None:
        raise AssertionError("the backtest labels through observe")

    def features(self, events: Sequence[PaymentEvent]) -> list[dict[str, float]]:
        assert len(events) == 1
        assert events[0].fraud is None, "a label must not leak into features"
        event = events[0]
        mine = [e for e in self.observed if e.customer == event.customer]
        return [
            {
                "amount": event.amount,
                "customer_count": float(len(mine) + 1),
                "customer_frauds": float(sum(bool(e.fraud) for e in mine)),
            }
        ]


RAW_RULES = RuleSet.from_document(
    {
        "version": "raw",
        "rules": [
            {
                "id": "third_payment",
                "when": {"feature": "customer_count", "op": ">=", "value": 3},
                "action": "review",
                "reason": "third payment",
            },
            {
                "id": "known_fraudster",
                "when": {"feature": "customer_frauds", "op": ">=", "value": 1},
                "action": "block",
                "reason": "a fraud before",
            },
        ],
    }
)


def test_a_raw_history_is_replayed_in_time_order_through_the_feature_engine(tmp_path: Path) -> None:
    path = tmp_path / "payments.csv"
    path.write_text(
        "id,time,customer,payee,amount,device,label\n"
        "p3,2026-01-01T10:03:00Z,c1,m1,30.5,,0\n"
        "p1,2026-01-01T10:01:00Z,c1,m1,10,d1,1\n"
        "p4,2026-01-01T10:04:00Z,c2,m2,40,d2,0\n"
        "p2,2026-01-01T10:02:00Z,c1,m2,20,d1,0\n"
        "p5,2026-01-01T10:02:00Z,c2,m2,50,,0\n"
    )
    engines: list[FakeEngine] = []

    def make() -> FeatureSource:
        engines.append(FakeEngine())
        return engines[-1]

    seen: dict[int, RiskDecision] = {}
    report = backtest_file(RAW_RULES, path, engine_factory=make, sink=seen.__setitem__)
    [engine] = engines
    assert [e.event_id for e in engine.observed] == ["p1", "p2", "p5", "p3", "p4"]
    assert [e.fraud for e in engine.observed] == [True, False, False, False, False]
    first = engine.observed[0]
    assert (first.customer, first.payee, first.device, first.ip, first.amount) == (
        "c1",
        "m1",
        "d1",
        None,
        10.0,
    )
    assert first.at_s == pd.Timestamp("2026-01-01T10:01:00Z").timestamp()
    assert engine.observed[2].device is None
    verdicts = [seen[i].verdict for i in range(5)]
    assert verdicts == [Verdict.ALLOW, Verdict.BLOCK, Verdict.ALLOW, Verdict.BLOCK, Verdict.ALLOW]
    assert [r.code for r in seen[3].reasons] == ["third_payment", "known_fraudster"]
    assert seen[3].features == {"amount": 30.5, "customer_count": 3.0, "customer_frauds": 1.0}
    assert report.data == "raw"
    assert report.positives == 1
    assert report.rules["known_fraudster"] == ("block", Hits(2, 0, 0.0, 0.0))


def test_a_raw_history_takes_times_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "payments.parquet"
    pd.DataFrame(
        {
            "id": [1, 2, 3],
            "time": [30, 10, 20],
            "customer": [7, 7, 7],
            "payee": ["a", None, "b"],
            "amount": [1.0, 2.0, 3.0],
        }
    ).to_parquet(path)
    engine = FakeEngine()
    report = backtest_file(RAW_RULES, path, engine_factory=lambda: engine)
    assert [(e.event_id, e.at_s, e.customer, e.payee) for e in engine.observed] == [
        ("2", 10.0, "7", None),
        ("3", 20.0, "7", "b"),
        ("1", 30.0, "7", "a"),
    ]
    assert report.verdicts == {"allow": 2, "review": 1, "block": 0}
    assert report.positives is None


def test_a_raw_history_refuses_rules_on_features_the_engine_lacks(tmp_path: Path) -> None:
    path = tmp_path / "payments.csv"
    path.write_text("id,time,customer,amount\np1,1,c1,5\n")
    with pytest.raises(
        RuleSetError, match=r"unknown feature 'x' \(not computed by the feature engine\)"
    ):
        backtest_file(RULES, path, engine_factory=FakeEngine)


def test_a_raw_history_without_the_feature_engine_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backtest_module, "FEATURE_ENGINE_MODULE", "strongroom.risk.no_such_module")
    path = tmp_path / "payments.csv"
    path.write_text("id,time,customer,amount\np1,1,c1,5\n")
    with pytest.raises(BacktestError, match="needs the feature engine"):
        backtest_file(RAW_RULES, path)


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("a.txt", "amount\n1\n", {}, "a.txt: not a CSV or Parquet file"),
        ("gone.csv", None, {}, "gone.csv: no such file"),
        (
            "a.csv",
            "amount,x\n1,0\n",
            {},
            "a.csv holds neither the features read by the rules and the model (missing: t) "
            "nor a raw payment history (missing: id, time, customer)",
        ),
        ("a.csv", "amount,x,t\n1,0,0\n", {"label": "fraud"}, "a.csv: no label column 'fraud'"),
        (
            "a.csv",
            "amount,x,t,fraud\n1,0,0,2\n1,0,0,\n",
            {"label": "fraud"},
            "label column 'fraud': 2 values are not 0 or 1",
        ),
        ("a.csv", "amount,x,t\nlots,0,0\n", {}, "a.csv: column 'amount' is not numeric"),
        ("a.parquet", "not parquet", {}, "a.parquet: unreadable"),
        ("a.csv", "amount,x,t\n1,0,0\n", {"batch_rows": 0}, "the batch size must be 1 to 8190"),
        (
            "a.csv",
            "id,time,customer,amount\np1,yesterday-ish,c1,5\n",
            {"engine_factory": FakeEngine},
            "a.csv: column 'time' is neither seconds nor timestamps",
        ),
        (
            "a.csv",
            "id,time,customer,amount\np1,1,c1,\n",
            {"engine_factory": FakeEngine},
            "a.csv: column 'amount' must be numbers, with no blanks",
        ),
        (
            "a.csv",
            "id,time,customer,amount\np1,1,,5\n",
            {"engine_factory": FakeEngine},
            "a.csv: column 'customer' has blanks",
        ),
        (
            "a.csv",
            "id,time,customer,amount\np1,inf,c1,5\n",
            {"engine_factory": FakeEngine},
            "a.csv: column 'time' has 1 values that are no time",
        ),
        (
            "a.csv",
            "id,time,customer,amount\np1,1e300,c1,5\n",
            {"engine_factory": FakeEngine},
            "a.csv: column 'time' has 1 values that are no time",
        ),
        (
            "a.csv",
            "id,time,customer,amount\np1,1,c1,inf\n",
            {"engine_factory": FakeEngine},
            "a.csv: column 'amount' has infinite values",
        ),
    ],
)
def test_bad_data_is_refused_clearly(
    tmp_path: Path, name: str, content: str | None, kwargs: dict[str, Any], message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    rules = RAW_RULES if "engine_factory" in kwargs else RULES
    with pytest.raises(BacktestError) as caught:
        backtest_file(rules, path, **kwargs)
    assert caught.value.code == "invalid_backtest_data"
    assert message in str(caught.value)


def test_the_model_features_must_be_in_a_feature_file(tmp_path: Path) -> None:
    path = write_tiny(tmp_path / "tiny.csv")  # no column p, no raw columns
    with pytest.raises(BacktestError, match=r"missing: p\)"):
        backtest_file(RULES, path, model=FakeScorer())


def test_decisions_record_the_versions(tmp_path: Path) -> None:
    rows = random_rows(10, seed=1)
    path = tmp_path / "h.parquet"
    pd.DataFrame(rows).to_parquet(path)
    seen: list[RiskDecision] = []
    backtest_file(RULES, path, model=FakeScorer(), sink=lambda _, d: seen.append(d))
    assert {(d.model_version, d.rules_version) for d in seen} == {("fake-1", RULES.version)}


def test_the_documented_run_on_the_handbook_week(shared_data: Path) -> None:
    """docs/risk-rules.md's run: the example rule set on the handbook's transformed week. Its
    frauds of scenario 1 are exactly the amounts over 220, so `large_amount` is exact."""
    path = shared_data / "fraud" / "fdh_simulated" / "features_oracle_2018-09-01_to_07.parquet"
    if not path.is_file():
        flags.skip_or_fail(f"external test data not found at {path}", flags.REQUIRE_SHARED_DATA)
    report = backtest_file(RuleSet.load(EXAMPLE), path, label="TX_FRAUD")
    assert (report.rows, report.positives) == (66_986, 599)
    assert report.verdicts == {"allow": 66_058, "review": 789, "block": 139}
    assert report.rules["large_amount"] == ("block", Hits(139, 139, 1.0, 139 / 599))
    assert report.rules_version == "2026-12-handbook-1:cb14c1cf4d36"
    assert report.rules_version in EXAMPLE_DOC.read_text(encoding="utf-8")
