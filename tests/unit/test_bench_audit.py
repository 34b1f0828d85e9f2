"""`strongroom bench audit` at tiny sizes: every row is there with its figures, in the JSON
shape the other benchmarks use, and the scratch folder is removed. No timing is asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strongroom.benchmarks import audit as bench

TINY = bench.Plan(
    leaves=3_000,
    batch_leaves=1_000,
    proofs=bench.CHILD_CHECKS,
    ledger_runs=1,
    ledger_batches_per_run=1,
    ledger_batch_transfers=200,
    pymerkle_build_s_max=30.0,
    ledger_accounts=200,
    verify_transfers=400,
)

FIGURES = {
    "append_memory": {"appends_per_s", "extend_per_s", "reference_per_s", "leaves"},
    "append_persisted": {"appends_per_s", "reference_per_s", "leaves", "p99_ms"},
    "inclusion_proof": {"p50_ms", "p99_ms", "reference_p50_ms", "reference_p99_ms", "tree_size"},
    "consistency_proof": {"p50_ms", "p99_ms", "reference_p50_ms", "reference_p99_ms"},
    "verify": {"us_per_proof", "reference_us_per_proof"},
    "ledger_overhead": {"audit_on_per_s", "audit_off_per_s", "reference_per_s", "transfers"},
    "verify_memory": {"replay_peak_rss_mib", "verify_peak_rss_mib", "base_rss_mib", "transfers"},
}


def test_the_benchmark_reports_every_row_at_tiny_sizes(tmp_path: Path) -> None:
    lines: list[str] = []
    report = bench.run(quick=True, progress=lines.append, plan=TINY, directory=tmp_path)

    report = json.loads(json.dumps(report))  # what --json prints
    assert report["info"]["leaves"] == TINY.leaves
    assert report["info"]["leaf_bytes_mean"] > 200
    rows = {r["scenario"]: r for r in report["results"]}
    assert list(rows) == list(FIGURES)
    for scenario, figures in FIGURES.items():
        row = rows[scenario]
        assert figures <= row.keys(), (scenario, figures - row.keys())
        for key in figures:
            assert row[key] > 0, (scenario, key)
        assert {"backend", "reference", "ratio", "target", "meets_target", "note"} <= row.keys()
        if scenario != "verify":
            assert row["ratio"] > 0
            assert isinstance(row["meets_target"], bool)
    assert rows["append_memory"]["reference_leaves"] == TINY.leaves
    assert rows["inclusion_proof"]["proofs"] == TINY.proofs
    assert rows["ledger_overhead"]["transfers"] == TINY.ledger_batch_transfers
    assert list(tmp_path.iterdir()) == []  # the scratch folder and its databases are gone
    assert lines
    assert lines[-1].startswith("done in")

    text = bench.table(report)
    assert all(f"| {scenario} |" in text for scenario in FIGURES)


def test_a_missing_pymerkle_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(bench.importlib, "import_module", missing)
    with pytest.raises(bench.BenchDependencyMissing, match=r"\[bench\]"):
        bench.run(quick=True, progress=lambda _line: None)
