"""`strongroom bench aml`: per-typology recall of the AML detectors on the synthetic history
(compliance/aml/simulate.py) at an alert budget of 0.5% of the monitored accounts per
typology, against a naive single-threshold baseline measured in the same run (docs/aml.md).

Each typology's alerted accounts are ranked by their best hit's score; the top
ceil(0.5% x accounts) are the ones an analyst would see. `recall`: the share of the
typology's labelled accounts among them; `precision`: the share of them that are labelled;
`alert_rate`: the accounts alerted within the budget over the accounts; `raw_alert_rate`:
every account the detector raised, before the budget. The baseline ranks the accounts by
their largest single movement (the one-threshold rule), same budget: `ratio` = recall over
the baseline's recall (the baseline's recall 0 gives `ratio` null)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from strongroom.compliance.aml.simulate import TYPOLOGIES, simulate
from strongroom.compliance.aml.typologies import (
    AccountInfo,
    Detectors,
    Posted,
    Typology,
    best_per_account,
)

BUDGET_PCT = 0.5
TARGET_RECALL = 0.90
SEED = 7


def run(
    *,
    progress: Callable[[str], None] = print,
    quick: bool = False,
    smoke: bool = False,
    accounts: int | None = None,
    seed: int = SEED,
) -> dict[str, Any]:
    n = accounts or (1_000 if smoke else 5_000 if quick else 10_000)
    started = time.perf_counter()
    sim = simulate(n, seed)
    gen_s = time.perf_counter() - started
    progress(f"aml: simulated {n:,} accounts, {len(sim.transfers):,} transfers in {gen_s:.1f}s")
    infos = {a.id: AccountInfo(None, a.jurisdiction, a.monitored) for a in sim.accounts}
    detectors = Detectors(info=lambda acc: infos[acc])
    started = time.perf_counter()
    hits = detectors.run(
        Posted(t.id, t.at_us, t.debit, t.credit, t.amount, t.asset, t.ledger) for t in sim.transfers
    )
    detect_s = time.perf_counter() - started
    progress(f"aml: {len(hits):,} hits in {detect_s:.1f}s")
    # The monitor's learning period: until its longest lookback holds history, it judges
    # every account new (a deployment rebuilds that history at start: docs/aml.md).
    learned_us = sim.transfers[0].at_us + detectors.config.window_max_us
    hits = [h for h in hits if h.at_us >= learned_us]
    monitored = sim.monitored
    budget = max(1, math.ceil(monitored * BUDGET_PCT / 100))
    best = best_per_account(hits)
    # The baseline: each monitored account's largest single movement.
    largest: dict[str, int] = {}
    is_monitored = {a.id for a in sim.accounts if a.monitored}
    for t in sim.transfers:
        for acc in (t.debit, t.credit):
            if acc in is_monitored and t.amount > largest.get(acc, 0):
                largest[acc] = t.amount
    baseline_top = {a for a, _ in sorted(largest.items(), key=lambda kv: (-kv[1], kv[0]))[:budget]}
    rows = []
    for name in TYPOLOGIES:
        labelled = sim.labels[name]
        ranked = sorted(best[Typology(name)].values(), key=lambda h: (-h.score, h.account))
        top = {h.account for h in ranked[:budget]}
        found = len(top & labelled)
        recall = found / len(labelled) if labelled else 0.0
        base_recall = len(baseline_top & labelled) / len(labelled) if labelled else 0.0
        rows.append(
            {
                "scenario": name,
                "recall": round(recall, 3),
                "precision": round(found / len(top), 3) if top else 0.0,
                "alert_rate": round(len(top) / monitored, 5),
                "raw_alert_rate": round(len(ranked) / monitored, 5),
                "labelled": len(labelled),
                "alerted": len(top),
                "reference_recall": round(base_recall, 3),
                "ratio": round(recall / base_recall, 3) if base_recall else None,
                "target": f"recall >= {TARGET_RECALL} at {BUDGET_PCT}% of accounts",
                "meets_target": recall >= TARGET_RECALL,
            }
        )
    return {
        "results": rows,
        "info": {
            "accounts": monitored,
            "transfers": len(sim.transfers),
            "seed": seed,
            "days": sim.days,
            "budget_accounts": budget,
            "budget_pct": BUDGET_PCT,
            "reference": "largest single movement per account (one threshold), same budget",
            "learning_days": round(detectors.config.window_max_us / 86_400_000_000, 1),
            "simulate_s": round(gen_s, 2),
            "detect_s": round(detect_s, 2),
            "transfers_per_s": round(len(sim.transfers) / detect_s, 1) if detect_s else 0.0,
            "smoke": smoke,
            "quick": quick,
        },
    }


def table(report: dict[str, Any]) -> str:
    info = report["info"]
    lines = [
        f"AML typologies: {info['accounts']:,} accounts, {info['transfers']:,} transfers, "
        f"budget {info['budget_accounts']} accounts ({info['budget_pct']}%) per typology; "
        f"detectors {info['transfers_per_s']:,.0f} transfers/s",
        "| typology | recall | precision | alert rate | labelled | baseline recall | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        lines.append(
            f"| {r['scenario']} | {r['recall']:.3f} | {r['precision']:.3f} | "
            f"{r['alert_rate']:.4f} | {r['labelled']} | {r['reference_recall']:.3f} | {ratio} |"
        )
    return "\n".join(lines)
