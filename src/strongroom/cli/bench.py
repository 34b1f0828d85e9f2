"""`strongroom bench`: the benchmarks, each measuring its reference in the same run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True, help="Benchmarks (each measures its reference).")


JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object")]
QuickOption = Annotated[bool, typer.Option("--quick", help="a smaller run, under a minute")]
SmokeOption = Annotated[
    bool,
    typer.Option(
        "--smoke",
        help="tiny sizes, seconds: the same code and the same JSON rows and fields as a full "
        "run, to check that the benchmark works (its figures mean nothing)",
    ),
]


def _bench(
    run: Callable[..., dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    json_output: bool,
    **options: Any,
) -> dict[str, Any]:
    """Run a benchmark with its progress on stderr when the answer is JSON, then print the
    JSON object or the table."""
    if options["quick"] and options["smoke"]:
        raise typer.BadParameter("--quick and --smoke exclude each other")
    report = run(progress=lambda line: typer.echo(line, err=json_output), **options)
    if json_output:
        typer.echo(json.dumps(report))
    else:
        typer.echo("")
        typer.echo(table(report))
    return report


@app.command("ledger")
def bench_ledger(
    json_output: JsonOption = False,
    quick: QuickOption = False,
    smoke: SmokeOption = False,
    postgres_url: Annotated[
        str | None,
        typer.Option(help="maintenance database URL; a scratch database is created and dropped"),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    postgres: Annotated[
        bool,
        typer.Option(
            "--postgres/--no-postgres", help="also run on PostgreSQL (--no-postgres: SQLite only)"
        ),
    ] = True,
) -> None:
    """Ledger throughput and p99 latency per scenario and backend, with the storage limit."""
    from strongroom.benchmarks import ledger as bench

    url = postgres_url if postgres else None
    _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke, postgres_url=url)


@app.command("audit")
def bench_audit(
    json_output: JsonOption = False, quick: QuickOption = False, smoke: SmokeOption = False
) -> None:
    """Audit log appends (memory, SQLite), proof p50/p99 from a cold process, verification,
    and the ledger's bulk throughput with the log on vs off; pymerkle, measured in the same run
    as the reference, comes with the `bench` extra (`make install` has it)."""
    from strongroom.benchmarks import audit as bench

    _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke)


@app.command("http")
def bench_http(
    json_output: JsonOption = False, quick: QuickOption = False, smoke: SmokeOption = False
) -> None:
    """HTTP API req/s, p50 and p99 per scenario (`serve --workers 2` on SQLite, loopback), with
    a minimal FastAPI endpoint measured in the same run; exit 1 when any request failed."""
    from strongroom.benchmarks import http as bench

    report = _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke)
    if report["info"]["errors"]:
        raise typer.Exit(1)


@app.command("openbanking")
def bench_openbanking(
    json_output: JsonOption = False, quick: QuickOption = False, smoke: SmokeOption = False
) -> None:
    """Open banking: tokens issued a second (client_credentials, private_key_jwt and DPoP) and
    account-information reads a second, each with a new DPoP proof, against the plain
    GET /v1/accounts/{id} with an API key on the same server (`serve --workers 2` on SQLite,
    loopback) in the same run; exit 1 when any request failed."""
    from strongroom.benchmarks import openbanking as bench

    report = _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke)
    if report["info"]["errors"]:
        raise typer.Exit(1)


@app.command("security")
def bench_security(
    json_output: JsonOption = False, quick: QuickOption = False, smoke: SmokeOption = False
) -> None:
    """Card tokenizations and reveals per second through the vault (durable SQLite, shared
    commits, audit on), PII field sealing and opening, and the cost of field encryption on
    creating customers; each against raw AES-GCM of the same plaintexts in the same run."""
    from strongroom.benchmarks import security as bench

    _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke)


@app.command("risk")
def bench_risk(
    json_output: JsonOption = False,
    quick: QuickOption = False,
    smoke: SmokeOption = False,
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="the handbook's fdh_simulated folder; absent, a synthetic history is used",
            file_okay=False,
        ),
    ] = Path("../shared/data/fraud/fdh_simulated"),
) -> None:
    """Risk decisions per second and p50/p99 of a full decision in process (features, rules,
    model, explanation) against the bare model's single-row predict; scored transfers against
    unscored in the ledger's group-commit scenario; the handbook protocol's metrics (not with
    --quick)."""
    from strongroom.benchmarks import risk as bench

    _bench(bench.run, bench.table, json_output, quick=quick, smoke=smoke, data_dir=data)


@app.command("screening")
def bench_screening(
    json_output: JsonOption = False,
    quick: QuickOption = False,
    smoke: SmokeOption = False,
    data: Annotated[
        Path,
        typer.Option("--data", help="the shared sanctions data folder", file_okay=False),
    ] = Path("../shared/data/sanctions"),
    workers: Annotated[
        int, typer.Option(help="processes for the yente quality row (throughput: one thread)")
    ] = 1,
) -> None:
    """Sanctions screening: Watchman-compatible scores, name-pair F1 (nomenklatura), yente
    recall and false-positive rate, and screenings/s against the baseline linear scan."""
    from strongroom.benchmarks import screening as bench

    _bench(
        bench.run, bench.table, json_output, quick=quick, smoke=smoke, data=data, workers=workers
    )


@app.command("aml")
def bench_aml(
    json_output: JsonOption = False,
    quick: QuickOption = False,
    smoke: SmokeOption = False,
    seeds: Annotated[
        str | None,
        typer.Option(
            "--seeds",
            help="held-out seeds, comma-separated (default 101,102,103,104; --quick and "
            "--smoke the first two); 7, the seed the detectors were tuned on, is refused",
        ),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="histories simulated and scanned at once")
    ] = 2,
) -> None:
    """Per-typology recall and precision of the AML detectors on synthetic histories of
    held-out seeds at an alert budget of 0.5% of accounts, per seed with the mean and minimum,
    against a one-threshold baseline (largest movement) in the same run."""
    from strongroom.benchmarks import aml as bench

    chosen = _seeds(seeds, bench.TUNING_SEED, bench.SEEDS_MAX) if seeds is not None else None
    _bench(
        bench.run,
        bench.table,
        json_output,
        quick=quick,
        smoke=smoke,
        seeds=chosen,
        workers=workers,
    )


def _seeds(text: str, tuning_seed: int, seeds_max: int) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("comma-separated integers", param_hint="--seeds") from None
    if not seeds or len(seeds) != len(set(seeds)) or len(seeds) > seeds_max:
        raise typer.BadParameter(f"1 to {seeds_max} distinct seeds", param_hint="--seeds")
    if tuning_seed in seeds:
        raise typer.BadParameter(
            f"seed {tuning_seed} is the one the detectors were tuned on, not a hold-out",
            param_hint="--seeds",
        )
    return seeds
