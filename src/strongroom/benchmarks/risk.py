"""`strongroom bench risk`: the cost of a risk decision, in process and on the transfer path, and
the model's quality on the Fraud Detection Handbook's protocol.

Set-up (not timed): a payment history (the handbook's simulated transactions, a slice of weeks
from ../shared/data/fraud/fdh_simulated or `--data`; a synthetic history of the same shape
when that folder is absent: `info.history` says which) is replayed through a FeatureEngine, and
a model is trained on the replayed features (risk.trainer.train, on every feature the engine
computes, within a bounded budget). The engine is then warm: it holds the history's windows.

Rows (`ratio` = ours / the reference of the same run, higher is better; timings are the median
of `runs`, each run its own reference):

- decision: a full decision, one payment at a time as the gate makes it: the engine's features
  of the next payment of the history (FeatureEngine.features on one PaymentEvent), then
  RiskPolicy.decide on that row (the rules below, the model's calibrated score, the tree SHAP
  explanation when the verdict is review or block). The decided payments are not added to the
  windows, so every run decides the same payments on the same history. `explained_share`: the
  share of review and block decisions (the rest need no explanation); `explain_all_*`: the
  same decisions with an explanation on every one (score.review at 0). Reference: the same
  model's bare single-row predict (LightGBM's single-row fast path on an already encoded row).
- scored_transfers: the ledger's group-commit scenario (benchmarks/ledger.py run_group_commit:
  64 submitters, one coalescer) on the ledger as `serve` builds it (runtime.build_ledger, audit
  on), every transfer a payment of an existing customer with the risk gate installed
  (Settings(risk=True): the trained model and the rules, the feature store on the risk events,
  the risk sink), each payment's customer checked by the coalescer as for the API's requests;
  against the same scenario with no payments and no gate, in the same run: `ratio` = scored /
  unscored. A file SQLite database in WAL with synchronous=FULL. Each customer owns one payer
  account and pays two or three times in a run, as a population of everyday payers does;
  `verdicts` counts the decisions recorded. (Until 2026-12-07, 1,000 customers paid twenty
  times each within a second or two: a burst the rules hold for review, all of it between
  00:00 and 06:59 UTC (`night_burst`), so the row measured the hour it ran at.) A review's
  tree SHAP explanation is computed when read, not by the gate (risk/gate.py).
- handbook: average precision, ROC AUC and card precision@100 of risk.handbook.handbook_model on
  the handbook's protocol (risk.handbook.evaluate: four prequential folds); skipped by `--quick`
  and `--smoke` (it takes minutes) and without the data, saying so.

Targets (for a 2-core machine) are reported per row, never asserted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lightgbm
import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from strongroom.benchmarks.common import fsync_rate, sqlite_database
from strongroom.benchmarks.ledger import SUBMITTERS, Fixture, run_group_commit
from strongroom.customers.service import CustomerService
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.model import NewTransfer, Payment, TransferResult
from strongroom.ledger.service import DEFAULT_TENANT_ID
from strongroom.risk import handbook as hb
from strongroom.risk.artefact import ModelArtifact
from strongroom.risk.decide import RiskPolicy
from strongroom.risk.features import ALL_FEATURES, CHANNELS, FeatureEngine
from strongroom.risk.model import PaymentEvent
from strongroom.risk.rules import RuleSet
from strongroom.risk.trainer import train
from strongroom.security.envelope import Envelope
from strongroom.security.kms import LocalKeyring, master_key_from_secret, new_master_secret
from strongroom.settings import Settings

Progress = Callable[[str], None]

DEFAULT_DATA_DIR: Final = Path("../shared/data/fraud/fdh_simulated")
HISTORY_START: Final = dt.date(2018, 4, 1)  # the handbook's first day
WARM_UP_DAYS: Final = 7  # replayed rows of the first week fill the windows; not trained on
DECISION_TARGET_P99_MS: Final = 2.0
DECISION_TARGET_PER_S: Final = 1_000
SCORED_TARGET_RATIO: Final = 0.8
ACTOR: Final = "api_key:key_bench"

# A realistic rule set on the engine's feature names (docs/examples/risk-rules.yaml's, for the
# live engine), with the model's score thresholds.
RULES: Final[dict[str, Any]] = {
    "version": "bench-risk-1",
    "score": {"review": 0.5, "block": 0.9},
    "rules": [
        {
            "id": "large_amount",
            "when": {"feature": "amount", "op": ">", "value": 220},
            "action": "block",
            "reason": "amount above the card's hard ceiling",
        },
        {
            "id": "risky_payee",
            "when": {
                "all": [
                    {"feature": "payee_risk_7d", "op": ">=", "value": 0.5},
                    {"feature": "payee_nb_tx_7d", "op": ">=", "value": 2},
                ]
            },
            "action": "review",
            "reason": "payee with a recent history of fraud",
        },
        {
            "id": "amount_spike",
            "when": {
                "all": [
                    {
                        "feature": "amount",
                        "op": ">",
                        "value": {"feature": "customer_avg_amount_30d", "times": 3},
                    },
                    {"feature": "customer_nb_tx_30d", "op": ">=", "value": 5},
                ]
            },
            "action": "review",
            "reason": "amount far above the customer's own history",
        },
        {
            "id": "night_burst",
            "when": {
                "all": [
                    {"feature": "during_night", "op": "==", "value": 1},
                    {"feature": "customer_nb_tx_1d", "op": ">=", "value": 8},
                ]
            },
            "action": "review",
            "reason": "many payments in a day, at night",
        },
        {
            "id": "ip_burst",
            "when": {"feature": "ip_count_1h", "op": ">=", "value": 20},
            "action": "review",
            "reason": "many payments from one IP address in an hour",
        },
        {
            "id": "regular_small_payment",
            "when": {
                "all": [
                    {"feature": "amount", "op": "<", "value": 5},
                    {"feature": "customer_nb_tx_30d", "op": ">=", "value": 20},
                    {"not": {"feature": "during_weekend", "op": "in", "value": [1]}},
                ]
            },
            "action": "allow",
            "reason": "small payment of a long-standing customer",
        },
    ],
}


def explain_all_rules() -> dict[str, Any]:
    """RULES with every decision sent to review (so explained): score.review at 0, no allow
    rule to stop it."""
    return {
        **RULES,
        "version": "bench-risk-explain-all",
        "score": {"review": 0.0, "block": RULES["score"]["block"]},
        "rules": [r for r in RULES["rules"] if r["action"] != "allow"],
    }


@dataclass(frozen=True)
class Plan:
    history_days: int  # replayed before the decisions; the model trains on all but the first week
    budget_s: float  # the trainer's budget
    decisions: int  # per run
    transfers: int  # per run, scored and unscored each
    customers: int
    accounts: int
    runs: int
    handbook: bool

    def __post_init__(self) -> None:
        assert self.history_days >= 2
        assert self.budget_s > 0
        assert self.decisions >= 1
        assert self.transfers >= SUBMITTERS
        assert 1 <= self.customers <= self.accounts
        assert self.runs >= 1

    @classmethod
    def full(cls) -> Plan:
        return cls(
            history_days=35,
            budget_s=60.0,
            decisions=20_000,
            transfers=20_000,
            customers=10_000,
            accounts=10_000,
            runs=3,
            handbook=True,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            history_days=14,
            budget_s=15.0,
            decisions=5_000,
            transfers=5_000,
            customers=2_000,
            accounts=2_000,
            runs=3,
            handbook=False,
        )

    @classmethod
    def smoke(cls) -> Plan:
        """Seconds: every row from the same code, at sizes whose figures mean nothing."""
        return cls(
            history_days=5,
            budget_s=2.0,
            decisions=200,
            transfers=4 * SUBMITTERS,
            customers=100,
            accounts=100,
            runs=1,
            handbook=False,
        )

    @classmethod
    def named(cls, *, quick: bool, smoke: bool) -> Plan:
        assert not (quick and smoke), "--quick and --smoke exclude each other"
        return cls.smoke() if smoke else cls.quick() if quick else cls.full()


# --- the history ---------------------------------------------------------------------------------


def synthetic_transactions(days: int, seed: int = 1) -> pd.DataFrame:
    """A payment history of the handbook's shape (its columns) when its data is absent: 2,000
    customers paying 4,000 terminals about twice a day, amounts around each customer's own mean;
    frauds: compromised terminals (every payment there for two weeks) and compromised cards
    (a third of their payments for two weeks, at five times the amount), about 1%."""
    rng = np.random.default_rng(seed)
    customers, terminals = 2_000, 4_000
    rows = int(customers * 2 * days)
    at = np.sort(rng.uniform(0, days * 86_400, rows))
    customer = rng.integers(0, customers, rows)
    near = rng.integers(0, 100, rows)  # each customer pays the terminals near it
    terminal = (customer * 2 + near) % terminals
    amount = np.round(rng.gamma(2.0, rng.uniform(5, 50, customers)[customer] / 2.0), 2)
    fraud = np.zeros(rows, dtype=np.int64)
    day = (at // 86_400).astype(np.int64)
    for start in range(0, days, 1):
        bad_terminals = rng.choice(terminals, 2, replace=False)
        hit = np.isin(terminal, bad_terminals) & (day >= start) & (day < start + 14)
        fraud[hit] = 1
        bad_cards = rng.choice(customers, 3, replace=False)
        card = np.isin(customer, bad_cards) & (day >= start) & (day < start + 14)
        card &= rng.random(rows) < 1 / 3
        amount[card] *= 5
        fraud[card] = 1
    stamps = pd.Timestamp(HISTORY_START) + pd.to_timedelta(at, unit="s")
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(rows),
            "TX_DATETIME": stamps.astype("datetime64[ns]"),
            "CUSTOMER_ID": customer,
            "TERMINAL_ID": terminal,
            "TX_AMOUNT": amount,
            "TX_TIME_DAYS": day,
            "TX_FRAUD": fraud,
        }
    )


@dataclass
class Trained:
    engine: FeatureEngine  # warm: holds the history's windows
    artefact: ModelArtifact
    upcoming: list[PaymentEvent]  # the payments after the history, in time order
    history: str
    history_rows: int
    report: dict[str, Any]


def history_and_model(data_dir: Path, plan: Plan, progress: Progress) -> Trained:
    """Replay the history through a FeatureEngine and train the model on its features."""
    decision_days = 1 + math.ceil(plan.decisions / 5_000)  # the handbook: ~10,000 a day
    last = HISTORY_START + dt.timedelta(days=plan.history_days + decision_days - 1)
    if (data_dir / "transactions_2018-04.parquet").is_file():
        frame = hb.read_transactions(data_dir, HISTORY_START, last)
        source = f"handbook: {data_dir} {HISTORY_START}..{last}"
    else:
        frame = synthetic_transactions(plan.history_days + decision_days)
        source = f"synthetic (no handbook data at {data_dir})"
    cut = pd.Timestamp(HISTORY_START + dt.timedelta(days=plan.history_days))
    past = frame[cut > frame.TX_DATETIME].reset_index(drop=True)
    later = frame[cut <= frame.TX_DATETIME].reset_index(drop=True)
    upcoming = list(hb.payment_events(later))[: plan.decisions]
    if len(upcoming) < plan.decisions:  # a short synthetic day: wrap around in time order
        upcoming = (upcoming * math.ceil(plan.decisions / max(1, len(upcoming))))[: plan.decisions]
    # Labels become known later in life; the decisions see none of their own.
    upcoming = [
        PaymentEvent(e.event_id, e.at_s, e.amount, e.customer, e.payee, channel=_channel(i))
        for i, e in enumerate(upcoming)
    ]
    progress(f"history: {source}: replaying {len(past):,} payments through the feature engine")
    engine = FeatureEngine()
    t0 = time.perf_counter()
    x = hb.replay(past, ALL_FEATURES, engine)
    progress(f"history: replayed in {time.perf_counter() - t0:.1f} s")
    warm = min(WARM_UP_DAYS, plan.history_days // 2)
    keep = (pd.Timestamp(HISTORY_START + dt.timedelta(days=warm)) <= past.TX_DATETIME).to_numpy()
    table = pd.DataFrame(x[keep], columns=list(ALL_FEATURES))
    table["at_s"] = past.TX_DATETIME[keep].to_numpy().astype("datetime64[s]").astype(np.int64)
    table["fraud"] = past.TX_FRAUD[keep].to_numpy()
    progress(f"model: training on {len(table):,} rows, budget {plan.budget_s:g} s")
    result = train(
        table,
        "fraud",
        time="at_s",
        budget_s=plan.budget_s,
        progress=lambda line: progress(f"model: {line}"),
        source=source,
    )
    report = result.report
    progress(
        f"model: {result.artefact.version}: hold-out AP {report['average_precision']:.3f} "
        f"AUC {report['roc_auc']:.3f} in {report['seconds']} s"
    )
    return Trained(engine, result.artefact, upcoming, source, len(past), report)


def _channel(i: int) -> str:
    return CHANNELS[i % len(CHANNELS)]


# --- decision ------------------------------------------------------------------------------------


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank) in milliseconds."""
    ordered = sorted(samples_s)
    rank = max(0, math.ceil(len(ordered) * q / 100) - 1)
    return ordered[min(rank, len(ordered) - 1)] * 1000


@dataclass
class DecisionRun:
    per_s: float
    p50_ms: float
    p99_ms: float
    explained: int
    verdicts: Counter[str]


def decide_one_at_a_time(
    engine: FeatureEngine, policy: RiskPolicy, events: Sequence[PaymentEvent]
) -> DecisionRun:
    """Each payment as the gate decides it alone: features, rules, score, explanation. The
    payments are not observed afterwards (the gate's `features` leaves no trace), so every run
    sees the same history: the replayed one."""
    latencies: list[float] = []
    verdicts: Counter[str] = Counter()
    explained = 0
    clock = time.perf_counter
    busy = 0.0
    for event in events:
        t0 = clock()
        rows = engine.features([event])
        (decision,) = policy.decide(rows)
        elapsed = clock() - t0
        latencies.append(elapsed)
        busy += elapsed
        verdicts[decision.verdict.value] += 1
        explained += bool(decision.contributions)
    return DecisionRun(
        per_s=len(events) / busy,
        p50_ms=percentile_ms(latencies, 50),
        p99_ms=percentile_ms(latencies, 99),
        explained=explained,
        verdicts=verdicts,
    )


def bare_predict_rate(artefact: ModelArtifact, rows: Sequence[dict[str, float]]) -> float:
    """Single-row predicts per second of the model alone, on rows encoded beforehand."""
    encoded = [artefact.encode([row]) for row in rows]
    t0 = time.perf_counter()
    for x in encoded:
        artefact.margin_matrix(x)
    return len(encoded) / (time.perf_counter() - t0)


def bench_decision(trained: Trained, plan: Plan, progress: Progress) -> dict[str, Any]:
    policy = RiskPolicy(RuleSet.from_document(RULES), trained.artefact)
    explain_all = RiskPolicy(RuleSet.from_document(explain_all_rules()), trained.artefact)
    engine = trained.engine
    events = trained.upcoming
    # The rows the decisions will see, for the reference (features of a warm engine, not kept).
    rows = engine.features(events[: min(len(events), 2_000)])
    runs: list[DecisionRun] = []
    all_runs: list[DecisionRun] = []
    references: list[float] = []
    for run in range(plan.runs):
        # Every run decides the same payments on the same history (decide_one_at_a_time
        # leaves the engine as it found it).
        references.append(bare_predict_rate(trained.artefact, rows))
        runs.append(decide_one_at_a_time(engine, policy, events))
        all_runs.append(decide_one_at_a_time(engine, explain_all, events))
        last = runs[-1]
        progress(
            f"decision: run {run + 1}: {last.per_s:,.0f}/s p50 {last.p50_ms:.3f} ms p99 "
            f"{last.p99_ms:.3f} ms ({last.explained} explained of {len(events)}); explaining "
            f"all: {all_runs[-1].per_s:,.0f}/s p99 {all_runs[-1].p99_ms:.3f} ms; bare model "
            f"{references[-1]:,.0f}/s"
        )
    per_s = statistics.median(r.per_s for r in runs)
    reference = statistics.median(references)
    p99_ms = statistics.median(r.p99_ms for r in runs)
    verdicts = runs[0].verdicts
    return {
        "scenario": "decision",
        "decisions_per_s": round(per_s, 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 4),
        "p99_ms": round(p99_ms, 4),
        "reference_per_s": round(reference, 1),
        "ratio": round(per_s / reference, 4),
        "decisions": len(events),
        "runs": plan.runs,
        "runs_decisions_per_s": [round(r.per_s, 1) for r in runs],
        "runs_p99_ms": [round(r.p99_ms, 4) for r in runs],
        "runs_reference_per_s": [round(r, 1) for r in references],
        "explained_share": round(runs[0].explained / len(events), 4),
        "verdicts": {v: verdicts.get(v, 0) for v in ("allow", "review", "block")},
        "explain_all_decisions_per_s": round(statistics.median(r.per_s for r in all_runs), 1),
        "explain_all_p50_ms": round(statistics.median(r.p50_ms for r in all_runs), 4),
        "explain_all_p99_ms": round(statistics.median(r.p99_ms for r in all_runs), 4),
        "target": f"p99 <= {DECISION_TARGET_P99_MS:g} ms, >= {DECISION_TARGET_PER_S:,}/s",
        "meets_target": p99_ms <= DECISION_TARGET_P99_MS and per_s >= DECISION_TARGET_PER_S,
        "reference": "the same model's single-row predict (LightGBM's fast path, encoded row)",
        "note": (
            f"one payment at a time on a warm engine ({trained.history_rows:,} payments "
            f"replayed), {len(RULES['rules'])} rules, calibrated score, tree SHAP for review and "
            "block; explain_all_*: an explanation on every decision"
        ),
    }


# --- scored transfers ----------------------------------------------------------------------------


class PaymentFixture(Fixture):
    """The ledger benchmark's fixture whose transfers are payments: each payer account belongs
    to one of `customers` (existing customers of the ledger's tenant), who pays the credit
    account (the payee) from a device and an IP address of their own, by one of the channels."""

    customers: list[str]

    def transfers(self, count: int, rng: random.Random, hot: float = 0.0) -> list[NewTransfer]:
        out = super().transfers(count, rng, hot)
        customers = self.customers
        for t in out:
            assert t.debit_account_id is not None
            k = self.owner[t.debit_account_id]
            t.payment = Payment(
                customer_id=customers[k],
                payee=t.credit_account_id,
                channel=CHANNELS[k % len(CHANNELS)],
                device=f"dev_{k}",
                ip=f"10.{(k >> 8) & 255}.{k & 255}.{1 + k % 7}",
            )
        return out

    def add_customers(self, envelope: Envelope, count: int) -> None:
        service = CustomerService(self.engine, envelope)
        self.customers = [
            service.create(DEFAULT_TENANT_ID, "person", {"name": f"Customer {i}"}, actor=ACTOR).id
            for i in range(count)
        ]
        self.owner = {a: i % count for i, a in enumerate(self.accounts)}


def bench_scored_transfers(
    tmp: Path, trained: Trained, plan: Plan, progress: Progress
) -> dict[str, Any]:
    keyring = LocalKeyring.create(tmp / "keyring.json", master_key_from_secret(new_master_secret()))
    model_path = tmp / "model.json"
    trained.artefact.save(model_path)
    rules_path = tmp / "rules.json"
    rules_path.write_text(json.dumps(RULES), encoding="utf-8")
    rng = random.Random(7)
    scored: list[float] = []
    unscored: list[float] = []
    batches: list[float] = []
    results: Counter[TransferResult] = Counter()
    verdicts: Counter[str] = Counter()
    for run in range(plan.runs):
        with sqlite_database(tmp, f"scored{run}") as url:
            settings = Settings(
                database_url=url,
                audit=True,
                risk=True,
                risk_model=str(model_path),
                risk_rules=str(rules_path),
            )
            fx = PaymentFixture(url, plan.accounts, settings, kms=keyring)
            try:
                fx.add_customers(Envelope(keyring), plan.customers)
                count, seconds, _latencies, mean_batch = run_group_commit(
                    fx,
                    plan.transfers,
                    rng,
                    refusals=(TransferResult.BLOCKED_BY_GATE,),
                    results=results,
                )
                scored.append(count / seconds)
                batches.append(mean_batch)
                verdicts.update(_recorded_verdicts(fx.engine))
            finally:
                fx.close()
        with sqlite_database(tmp, f"unscored{run}") as url:
            bare = Fixture(url, plan.accounts, Settings(database_url=url, audit=True), kms=keyring)
            try:
                count, seconds, _latencies, _ = run_group_commit(bare, plan.transfers, rng)
                unscored.append(count / seconds)
            finally:
                bare.close()
        progress(
            f"scored_transfers: run {run + 1}: scored {scored[-1]:,.0f}/s "
            f"({batches[-1]:.0f} a commit), unscored {unscored[-1]:,.0f}/s, ratio "
            f"{scored[-1] / unscored[-1]:.3f}"
        )
    scored_per_s = statistics.median(scored)
    unscored_per_s = statistics.median(unscored)
    ratio = statistics.median(s / u for s, u in zip(scored, unscored, strict=True))
    return {
        "scenario": "scored_transfers",
        "scored_per_s": round(scored_per_s, 1),
        "unscored_per_s": round(unscored_per_s, 1),
        "reference_per_s": round(unscored_per_s, 1),
        "ratio": round(ratio, 4),
        "transfers": plan.transfers,
        "runs": plan.runs,
        "runs_scored_per_s": [round(r, 1) for r in scored],
        "runs_unscored_per_s": [round(r, 1) for r in unscored],
        "transfers_per_commit": round(statistics.median(batches), 1),
        "results": {r.value: n for r, n in sorted(results.items())},
        "verdicts": {v: verdicts.get(v, 0) for v in ("allow", "review", "block")},
        "target": f"ratio >= {SCORED_TARGET_RATIO:g}",
        "meets_target": ratio >= SCORED_TARGET_RATIO,
        "reference": "the same scenario, no payments and no risk gate (same run)",
        "note": (
            f"{SUBMITTERS} submitters through the group-commit coalescer, the ledger as serve "
            f"builds it (audit on); scored: every transfer a payment of one of "
            f"{plan.customers:,} customers (one payer account each), its customer checked "
            "first as the route does, the "
            "risk gate (trained model, rules), feature store and risk sink; SQLite WAL "
            "synchronous=FULL"
        ),
    }


def _recorded_verdicts(engine: Engine) -> Counter[str]:
    """The risk decisions the run recorded, by verdict."""
    with UnitOfWork(engine, write=False) as uow:
        cur = uow.cursor()
        cur.execute("SELECT verdict, count(*) FROM risk_decisions GROUP BY verdict")
        return Counter({str(v): int(n) for v, n in cur.fetchall()})


# --- handbook ------------------------------------------------------------------------------------


def bench_handbook(data_dir: Path, plan: Plan, progress: Progress) -> dict[str, Any]:
    row: dict[str, Any] = {
        "scenario": "handbook",
        "average_precision": None,
        "roc_auc": None,
        "card_precision_at_100": None,
        "target": ", ".join(f"{k} >= {v:g}" for k, v in hb.TARGETS.items()),
        "meets_target": None,
        "skipped": None,
        "note": hb.MODEL_DESCRIPTION,
    }
    if not plan.handbook:
        row["skipped"] = "skipped by --quick and --smoke (the protocol takes minutes)"
    elif not (data_dir / "transactions_2018-04.parquet").is_file():
        row["skipped"] = f"skipped: no handbook data at {data_dir}"
    if row["skipped"]:
        progress(f"handbook: {row['skipped']}")
        return row
    progress("handbook: replaying the protocol's period through the feature engine")
    t0 = time.perf_counter()
    loaded = hb.load(data_dir)
    result = hb.evaluate(
        hb.handbook_model(), loaded, progress=lambda line: progress(f"handbook: {line}")
    )
    mean = result["mean"]
    row.update({k: round(mean[k], 4) for k in hb.TARGETS})
    row["meets_target"] = all(mean[k] >= v for k, v in hb.TARGETS.items())
    row["seconds"] = round(time.perf_counter() - t0, 1)
    progress(
        f"handbook: AP {mean['average_precision']:.3f} AUC {mean['roc_auc']:.3f} "
        f"CP@100 {mean['card_precision_at_100']:.3f} in {row['seconds']:.0f} s"
    )
    return row


# --- driver --------------------------------------------------------------------------------------


def run(
    *,
    quick: bool,
    progress: Progress,
    smoke: bool = False,
    data_dir: Path = DEFAULT_DATA_DIR,
    directory: Path | None = None,
) -> dict[str, Any]:
    plan = Plan.named(quick=quick, smoke=smoke)
    info: dict[str, Any] = {
        "quick": quick,
        "smoke": smoke,
        "runs": plan.runs,
        "decisions": plan.decisions,
        "transfers": plan.transfers,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "lightgbm": lightgbm.__version__,
    }
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    trained = history_and_model(data_dir, plan, progress)
    info["history"] = trained.history
    info["history_rows"] = trained.history_rows
    info["model"] = {
        "version": trained.artefact.version,
        "features": len(trained.artefact.feature_names),
        "rounds": trained.report["rounds"],
        "budget_s": trained.report["budget_s"],
        "holdout_average_precision": round(trained.report["average_precision"], 4),
        "holdout_roc_auc": round(trained.report["roc_auc"], 4),
    }
    rows.append(bench_decision(trained, plan, progress))
    parent = (directory or Path(".")).resolve()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-risk-", dir=parent) as name:
        tmp = Path(name)
        info["fsync_per_s"] = round(fsync_rate(tmp, seconds=0.2 if smoke else 0.5), 1)
        progress(f"disk: {info['fsync_per_s']:,.0f} fsyncs/s; {plan.runs} run(s) of each row")
        rows.append(bench_scored_transfers(tmp, trained, plan, progress))
    rows.append(bench_handbook(data_dir, plan, progress))
    info["elapsed_s"] = round(time.perf_counter() - started, 1)
    progress(f"done in {info['elapsed_s']:.0f} s")
    return {"info": info, "results": rows}


def _verdicts(counts: dict[str, int]) -> str:
    total = sum(counts.values()) or 1
    return ", ".join(f"{v} {100 * n / total:.1f}%" for v, n in counts.items())


def _met(row: dict[str, Any]) -> str:
    return {True: "met", False: "MISSED", None: ""}[row["meets_target"]]


def table(report: dict[str, Any]) -> str:
    decision, scored, book = report["results"]
    lines = [
        "| row | figures | reference | ratio | target (2 cores) | |",
        "|---|---|---:|---:|---|---|",
        f"| decision | {decision['decisions_per_s']:,.0f}/s, p50 {decision['p50_ms']:.3f} ms, "
        f"p99 {decision['p99_ms']:.3f} ms ({decision['explained_share']:.1%} explained; "
        f"explaining all: {decision['explain_all_decisions_per_s']:,.0f}/s, p99 "
        f"{decision['explain_all_p99_ms']:.3f} ms) | {decision['reference_per_s']:,.0f}/s "
        f"| {decision['ratio']:.3f} | {decision['target']} | {_met(decision)} |",
        f"| scored_transfers | scored {scored['scored_per_s']:,.0f}/s, unscored "
        f"{scored['unscored_per_s']:,.0f}/s ({_verdicts(scored['verdicts'])}) "
        f"| {scored['reference_per_s']:,.0f}/s "
        f"| {scored['ratio']:.3f} | {scored['target']} | {_met(scored)} |",
    ]
    if book["skipped"]:
        lines.append(f"| handbook | {book['skipped']} | | | {book['target']} | |")
    else:
        lines.append(
            f"| handbook | AP {book['average_precision']:.3f}, AUC {book['roc_auc']:.3f}, "
            f"CP@100 {book['card_precision_at_100']:.3f} | | | {book['target']} | {_met(book)} |"
        )
    info = report["info"]
    lines.append("")
    lines.append(
        f"median of {info['runs']} run(s); history: {info['history']}; model "
        f"{info['model']['version']} ({info['model']['features']} features); decision "
        "reference: the same model's single-row predict; scored_transfers reference: the same "
        "scenario unscored; ratio: ours / reference"
    )
    return "\n".join(lines)
