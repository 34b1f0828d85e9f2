"""Every `strongroom bench NAME --smoke --json`, run as a user runs it (a fresh process), answers
with every row of a full run and every figure of each row: a benchmark that crashes or loses a
row fails here, not on the day someone runs the full benchmark. No figure's size is asserted,
only that it is a number where a number must be (and > 0 where a zero would mean nothing was
measured)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import strongroom
from strongroom.benchmarks import aml as bench_aml
from strongroom.benchmarks import audit as bench_audit
from strongroom.benchmarks import http as bench_http
from strongroom.benchmarks import ledger as bench_ledger
from strongroom.benchmarks import openbanking as bench_openbanking
from strongroom.benchmarks import risk as bench_risk
from strongroom.benchmarks import screening as bench_screening
from strongroom.benchmarks import security as bench_security
from strongroom.cli import app
from tests.support import postgres as pg

pytestmark = pytest.mark.slow

# One smoke run takes seconds; this is the point past which it is stuck, not slow.
BENCH_S_MAX = 240

LEDGER_SCENARIOS = ["bulk", "single", "group_commit", "hot_account", "two_phase"]
LEDGER_ROWS = {
    "sqlite": ["bulk", "bulk_full", *LEDGER_SCENARIOS[1:]],
    "postgresql": LEDGER_SCENARIOS,
}
AUDIT_ROWS = [
    "append_memory",
    "append_persisted",
    "inclusion_proof",
    "consistency_proof",
    "verify",
    "ledger_overhead",
    "verify_memory",
]
HTTP_ROWS = ["single_transfer", "batch_transfers", "get_account"]
SECURITY_ROWS = ["tokenize", "detokenize", "pii_encrypt", "pii_decrypt", "customer_create_overhead"]
RISK_ROWS = ["decision", "scored_transfers", "handbook"]
SCREENING_ROWS = ["watchman_jw", "nomenklatura_pairs", "yente", "throughput"]
OPENBANKING_ROWS = ["ais_read", "token"]


def run_bench(name: str, cwd: Path, *args: str) -> tuple[dict[str, Any], str]:
    """The JSON object and the progress (stderr) of `strongroom bench NAME --smoke --json`,
    run from `cwd` with the same strongroom package as this test."""
    env = dict(os.environ)
    src = str(Path(strongroom.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-c", "from strongroom.cli import main; main()"]
    done = subprocess.run(
        [*command, "bench", name, "--smoke", "--json", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=BENCH_S_MAX,
        check=False,
    )
    assert done.returncode == 0, f"bench {name} exited {done.returncode}:\n{done.stderr[-4000:]}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"bench {name} printed no JSON:\n{done.stderr[-4000:]}"
    report = json.loads(lines[-1])
    assert report["info"]["smoke"] is True
    assert report["info"]["quick"] is False
    assert list(cwd.iterdir()) == [], "the benchmark left files behind"
    return report, done.stderr


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_fields(
    row: dict[str, Any], positive: set[str], types: dict[str, tuple[Any, ...]]
) -> None:
    """`positive`: numbers > 0; `types`: field -> the types its value may have (a bool is
    not taken for an int)."""
    where = f"{row.get('scenario')}/{row.get('backend', '')}"
    missing = (positive | types.keys()) - row.keys()
    assert not missing, f"{where}: fields missing: {sorted(missing)}"
    for key in positive:
        assert is_number(row[key]), f"{where}: {key} = {row[key]!r}"
        assert row[key] > 0, f"{where}: {key} = {row[key]!r}"
    for key, allowed in types.items():
        value = row[key]
        ok = isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))
        assert ok, f"{where}: {key} = {value!r}, not {allowed}"


OPTIONAL_BOOL = (bool, type(None))
NUMBER = (int, float)


def test_bench_ledger_smoke_has_every_row_and_figure(tmp_path: Path) -> None:
    url = pg.server_url()
    if url is None and pg.require_postgres():
        pytest.fail(pg.postgres_unavailable_reason())
    backends = ["sqlite", "postgresql"] if url else ["sqlite"]
    args = ["--postgres-url", url] if url else ["--no-postgres"]

    report, progress = run_bench("ledger", tmp_path, *args)

    expected = [(scenario, b) for b in backends for scenario in LEDGER_ROWS[b]]
    assert [(r["scenario"], r["backend"]) for r in report["results"]] == expected
    plan = bench_ledger.Plan.smoke()
    assert report["info"]["accounts"] == plan.accounts
    if url:
        assert isinstance(report["info"]["postgresql"], dict), report["info"]["postgresql"]
    for row in report["results"]:
        check_fields(
            row,
            positive={"transfers_per_s", "p99_ms", "reference_per_s", "ratio", "transfers"},
            types={
                "transfers": (int,),
                "note": (str,),
                "target": (str,),
                "meets_target": OPTIONAL_BOOL,
            },
        )
        assert f"{row['backend']}: {row['scenario']} ..." in progress
    by_name = {(r["scenario"], r["backend"]): r for r in report["results"]}
    assert by_name["bulk", "sqlite"]["transfers"] == plan.bulk_batches * plan.batch_transfers
    assert by_name["bulk_full", "sqlite"]["transfers"] == plan.bulk_batches * plan.batch_transfers
    assert by_name["bulk_full", "sqlite"]["target"] == ">= 40,000 transfers/s"
    assert isinstance(by_name["bulk_full", "sqlite"]["meets_target"], bool)
    assert by_name["single", "sqlite"]["transfers"] == plan.single_transfers
    assert progress.splitlines()[-1].startswith("done in")

    table = bench_ledger.table(report)
    assert all(f"| {s} | {b} |" in table for s, b in expected)


def test_bench_audit_smoke_has_every_row_and_figure(tmp_path: Path) -> None:
    report, progress = run_bench("audit", tmp_path)

    assert [r["scenario"] for r in report["results"]] == AUDIT_ROWS
    plan = bench_audit.Plan.smoke()
    assert report["info"]["leaves"] == plan.leaves
    figures = {
        "append_memory": {"appends_per_s", "extend_per_s", "reference_per_s", "leaves"},
        "append_persisted": {"appends_per_s", "reference_per_s", "leaves", "p50_ms", "p99_ms"},
        "inclusion_proof": {"p50_ms", "p99_ms", "reference_p50_ms", "reference_p99_ms", "proofs"},
        "consistency_proof": {"p50_ms", "p99_ms", "reference_p50_ms", "reference_p99_ms"},
        "verify": {"us_per_proof", "reference_us_per_proof", "consistency_us_per_proof"},
        "ledger_overhead": {"audit_on_per_s", "audit_off_per_s", "reference_per_s", "transfers"},
        "verify_memory": {
            "replay_peak_rss_mib",
            "replay_peak_rss_mib_quarter",
            "verify_peak_rss_mib",
            "verify_peak_rss_mib_quarter",
            "base_rss_mib",
            "replay_s",
            "verify_s",
            "transfers",
        },
    }
    for row in report["results"]:
        check_fields(
            row,
            positive=figures[row["scenario"]] | {"ratio"},
            types={
                "backend": (str,),
                "reference": (str,),
                "target": (str,),
                "meets_target": OPTIONAL_BOOL,
                "note": (str,),
            },
        )
        assert f"{row['scenario']}:" in progress
    rows = {r["scenario"]: r for r in report["results"]}
    assert rows["ledger_overhead"]["transfers"] == (
        plan.ledger_runs * plan.ledger_batches_per_run * plan.ledger_batch_transfers
    )
    assert rows["verify_memory"]["transfers"] == plan.verify_transfers
    assert progress.splitlines()[-1].startswith("done in")

    table = bench_audit.table(report)
    assert all(f"| {scenario} |" in table for scenario in AUDIT_ROWS)


def test_bench_http_smoke_has_every_row_and_figure(tmp_path: Path) -> None:
    report, progress = run_bench("http", tmp_path)

    assert [r["scenario"] for r in report["results"]] == HTTP_ROWS
    info = report["info"]
    assert info["errors"] == 0
    assert info["verify"] == "invariants: ok"
    plan = bench_http.Plan.smoke()
    assert info["accounts"] == plan.accounts
    assert info["batch_size"] == plan.batch_size
    assert is_number(info["reference"]["requests_per_s"])
    assert info["reference"]["requests_per_s"] > 0
    for row in report["results"]:
        check_fields(
            row,
            positive={"requests_per_s", "p50_ms", "p99_ms", "reference_per_s", "ratio", "requests"},
            types={
                "transfers_per_s": (*NUMBER, type(None)),
                "errors": (int,),
                "target": (str,),
                "target_met": OPTIONAL_BOOL,
                "server_cpu_ms_per_request": NUMBER,
                "worker_cpu_shares": (list,),
                "loadgen_cpu_ms_per_request": NUMBER,
                "other_load_cores": NUMBER,
                "note": (str,),
            },
        )
        assert row["errors"] == 0
        assert f"{row['scenario']} ..." in progress
    rows = {r["scenario"]: r for r in report["results"]}
    assert rows["batch_transfers"]["transfers_per_s"] == pytest.approx(
        rows["batch_transfers"]["requests_per_s"] * plan.batch_size, rel=0.01
    )
    assert rows["single_transfer"]["transfers_per_s"] > 0
    assert rows["get_account"]["transfers_per_s"] is None

    table = bench_http.table(report)
    assert all(f"| {scenario} |" in table for scenario in HTTP_ROWS)


def test_bench_openbanking_smoke_has_every_row_and_figure(tmp_path: Path) -> None:
    """Token issuance and DPoP-protected reads, each row against the plain read of the same
    run: every request answered 2xx (a proof refused would show as an error)."""
    report, progress = run_bench("openbanking", tmp_path)

    assert [r["scenario"] for r in report["results"]] == OPENBANKING_ROWS
    info = report["info"]
    assert info["errors"] == 0
    assert info["alg"] == "ES256"
    assert info["accounts_per_consent"] == bench_openbanking.ACCOUNTS_PER_CONSENT
    reference = info["reference"]
    assert is_number(reference["requests_per_s"])
    assert reference["requests_per_s"] > 0
    assert reference["errors"] == 0
    plan = bench_openbanking.Plan.smoke()
    for row in report["results"]:
        check_fields(
            row,
            positive={"requests_per_s", "p50_ms", "p99_ms", "reference_per_s", "ratio", "requests"},
            types={
                "errors": (int,),
                "pregenerated": (int,),
                "target": (str,),
                "meets_target": OPTIONAL_BOOL,
                "server_cpu_ms_per_request": NUMBER,
                "worker_cpu_shares": (list,),
                "loadgen_cpu_ms_per_request": NUMBER,
                "other_load_cores": NUMBER,
                "note": (str,),
            },
        )
        assert row["errors"] == 0
        assert row["pregenerated"] == plan.requests_max
        assert 0 < row["requests"] <= row["pregenerated"]
        assert row["reference_per_s"] == reference["requests_per_s"]
        assert row["ratio"] == pytest.approx(
            row["requests_per_s"] / row["reference_per_s"], rel=1e-3, abs=5e-5
        )
        assert f"{row['scenario']} ..." in progress
    rows = {r["scenario"]: r for r in report["results"]}
    assert rows["ais_read"]["target"] == ">= 0.5 of the plain read"
    assert isinstance(rows["ais_read"]["meets_target"], bool)
    assert rows["token"]["meets_target"] is None
    assert progress.splitlines()[-1].startswith("done in")

    table = bench_openbanking.table(report)
    assert all(f"| {scenario} |" in table for scenario in OPENBANKING_ROWS)


def test_bench_security_smoke_has_every_row_and_figure(tmp_path: Path) -> None:
    report, progress = run_bench("security", tmp_path)

    assert [r["scenario"] for r in report["results"]] == SECURITY_ROWS
    plan = bench_security.Plan.smoke()
    assert report["info"]["cards"] == plan.cards
    assert report["info"]["runs"] == plan.runs
    for row in report["results"]:
        check_fields(
            row,
            positive={"ops_per_s", "reference_per_s", "ratio", "ops"},
            types={
                "ops": (int,),
                "runs": (int,),
                "runs_ops_per_s": (list,),
                "reference": (str,),
                "target": (str,),
                "meets_target": OPTIONAL_BOOL,
                "note": (str,),
            },
        )
        assert len(row["runs_ops_per_s"]) == plan.runs
        assert f"{row['scenario'].split('_')[0]}" in progress
    rows = {r["scenario"]: r for r in report["results"]}
    assert rows["tokenize"]["target"] == ">= 5,000/s"
    assert isinstance(rows["tokenize"]["meets_target"], bool)
    assert rows["tokenize"]["ops"] == plan.cards
    assert rows["tokenize"]["cards_per_commit"] >= 1
    assert is_number(rows["tokenize"]["threads_ops_per_s"])
    assert rows["tokenize"]["threads_ops_per_s"] > 0
    assert report["info"]["callers"] == plan.callers
    assert rows["pii_encrypt"]["fields_per_op"] == 6
    assert progress.splitlines()[-1].startswith("done in")

    table = bench_security.table(report)
    assert all(f"| {scenario} |" in table for scenario in SECURITY_ROWS)


@pytest.mark.parametrize("history", ["handbook", "synthetic"])
def test_bench_risk_smoke_has_every_row_and_figure(
    history: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """On the handbook's data (skipped without it) and on the synthetic history that stands in
    for it when absent: every row, its figures, and the ratios computed from them."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    data = (
        request.getfixturevalue("shared_data") / "fraud" / "fdh_simulated"
        if history == "handbook"
        else tmp_path / "no-such-data"
    )
    report, progress = run_bench("risk", cwd, "--data", str(data))

    assert [r["scenario"] for r in report["results"]] == RISK_ROWS
    info = report["info"]
    plan = bench_risk.Plan.smoke()
    assert (info["decisions"], info["transfers"], info["runs"]) == (
        plan.decisions,
        plan.transfers,
        plan.runs,
    )
    assert info["history"].startswith("handbook" if history == "handbook" else "synthetic")
    assert info["history_rows"] > 0
    assert info["model"]["version"].startswith("mdl_")
    assert info["model"]["features"] == len(bench_risk.ALL_FEATURES)
    decision, scored, book = report["results"]
    check_fields(
        decision,
        positive={
            "decisions_per_s",
            "p50_ms",
            "p99_ms",
            "reference_per_s",
            "ratio",
            "explain_all_decisions_per_s",
            "explain_all_p50_ms",
            "explain_all_p99_ms",
        },
        types={
            "decisions": (int,),
            "explained_share": NUMBER,
            "verdicts": (dict,),
            "target": (str,),
            "meets_target": (bool,),
            "note": (str,),
        },
    )
    assert decision["decisions"] == plan.decisions
    assert sum(decision["verdicts"].values()) == plan.decisions
    assert 0 <= decision["explained_share"] <= 1
    assert decision["p50_ms"] <= decision["p99_ms"]
    assert decision["ratio"] == pytest.approx(
        decision["decisions_per_s"] / decision["reference_per_s"], rel=1e-3, abs=5e-5
    )  # the ratio is rounded to 4 decimal places
    check_fields(
        scored,
        positive={"scored_per_s", "unscored_per_s", "reference_per_s", "ratio"},
        types={"results": (dict,), "target": (str,), "meets_target": (bool,), "note": (str,)},
    )
    # Every scored transfer was decided: posted (allowed or held) or blocked by the gate.
    assert sum(scored["results"].values()) == plan.transfers * plan.runs
    assert set(scored["results"]) <= {"created", "blocked_by_gate"}
    assert scored["ratio"] == pytest.approx(
        scored["scored_per_s"] / scored["unscored_per_s"], rel=1e-3, abs=5e-5
    )
    assert scored["reference_per_s"] == scored["unscored_per_s"]
    assert "skipped by --quick and --smoke" in book["skipped"]
    assert book["average_precision"] is None
    assert book["meets_target"] is None
    for row in RISK_ROWS:
        assert f"{row}:" in progress
    assert progress.splitlines()[-1].startswith("done in")

    table = bench_risk.table(report)
    assert all(f"| {scenario} |" in table for scenario in RISK_ROWS)


@pytest.mark.parametrize(
    "args",
    [
        ["ledger", "--no-postgres"],
        ["audit"],
        ["http"],
        ["security"],
        ["risk"],
        ["screening"],
        ["aml"],
        ["openbanking"],
    ],
    ids=lambda a: a[0],
)
def test_quick_and_smoke_exclude_each_other(args: list[str]) -> None:
    result = CliRunner().invoke(app, ["bench", *args, "--quick", "--smoke"])
    assert result.exit_code == 2, result.output
    assert "exclude each other" in result.output


def test_bench_screening_smoke_has_every_row_and_figure(tmp_path: Path, shared_data: Path) -> None:
    """On the shared sanctions data (skipped without it): every row and its figures."""
    data = shared_data / "sanctions"
    report, progress = run_bench("screening", tmp_path, "--data", str(data))

    assert [r["scenario"] for r in report["results"]] == SCREENING_ROWS
    watchman, pairs, yente, throughput = report["results"]
    check_fields(watchman, positive={"max_abs_error", "cases"}, types={"meets_target": (bool,)})
    assert watchman["cases"] == 94
    check_fields(
        pairs,
        positive={"f1", "precision", "recall", "pairs", "reference_f1", "reference_f1_odd"},
        types={"split": (str,), "meets_target": (bool,)},
    )
    assert pairs["reference_f1"] == pytest.approx(0.790, abs=0.001)  # logic-v2, all its rows
    check_fields(
        yente,
        positive={"recall", "positives", "negatives", "threshold"},
        types={"false_positive_rate": NUMBER, "expected_resolved": (dict,), "split": (str,)},
    )
    plan = bench_screening.Plan.smoke()
    assert yente["negatives"] == plan.negatives  # two files, odd rows only
    check_fields(
        throughput,
        positive={"screenings_per_s", "p99_ms", "reference_per_s", "ratio", "names"},
        types={"meets_target": (bool,), "reference": (str,)},
    )
    assert throughput["ratio"] == pytest.approx(
        throughput["screenings_per_s"] / throughput["reference_per_s"], rel=0.01
    )
    assert progress.splitlines()[-1].startswith("done in")
    table = bench_screening.table(report)
    assert all(f"| {scenario} |" in table for scenario in SCREENING_ROWS)


def test_bench_aml_smoke_has_every_row_and_figure(tmp_path: Path) -> None:
    """One row per typology, each with its recall and precision at the budget per held-out
    seed with their mean and minimum, the alert rate and the one-threshold baseline's recall
    measured in the same run; the tuning seed is not among the seeds."""
    report, progress = run_bench("aml", tmp_path)
    from strongroom.compliance.aml.simulate import TYPOLOGIES

    assert [r["scenario"] for r in report["results"]] == list(TYPOLOGIES)
    info = report["info"]
    assert info["accounts"] == 1_000
    assert info["transfers"] > 0
    assert info["budget_accounts"] == 5
    assert info["budget_pct"] == bench_aml.BUDGET_PCT
    seeds = [str(s) for s in info["seeds"]]
    assert info["seeds"] == list(bench_aml.HELD_OUT_SEEDS[:2])
    assert info["tuning_seed"] not in info["seeds"]
    assert list(info["transfers_by_seed"]) == seeds
    assert sum(info["transfers_by_seed"].values()) == info["transfers"]
    for seed in seeds:
        assert f"aml: seed {seed}: simulated" in progress
    for row in report["results"]:
        check_fields(
            row,
            positive={"labelled"},
            types={
                "recall": NUMBER,
                "recall_min": NUMBER,
                "recall_by_seed": (dict,),
                "precision": NUMBER,
                "precision_min": NUMBER,
                "precision_by_seed": (dict,),
                "alert_rate": NUMBER,
                "raw_alert_rate": NUMBER,
                "reference_recall": NUMBER,
                "ratio": (int, float, type(None)),
                "alerted": (int,),
                "found": (int,),
                "target": (str,),
                "meets_target": (bool,),
            },
        )
        assert list(row["recall_by_seed"]) == list(row["precision_by_seed"]) == seeds
        assert 0 <= row["recall_min"] <= row["recall"] <= 1
        assert row["recall"] == pytest.approx(
            sum(row["recall_by_seed"].values()) / len(seeds), abs=0.002
        )
        assert 0 <= row["alert_rate"] <= 0.005
        if row["ratio"] is not None:
            expected = row["recall"] / row["reference_recall"]
            assert row["ratio"] == pytest.approx(expected, rel=0.01)
