"""`strongroom bench http`: the HTTP API's throughput and latency, against the framework's floor.

`strongroom serve --workers 2` runs on a fresh SQLite file (WAL, synchronous=FULL) in a temporary
directory, with an API key of its own and rate limits high enough never to refuse. The load
generator (benchmarks/loadgen.py, in processes of its own) drives it over loopback with
concurrent keep-alive connections, each scenario bounded by a request count and a duration:

- single_transfer: POST /v1/transfers, each a new transfer between two random accounts (they
  have no balance limits, so none is refused); these go through the group-commit coalescer.
- batch_transfers: POST /v1/transfers/batch with 1,000 transfers per request.
- get_account: GET /v1/accounts/{id} over every account.

The reference, measured in the same run and served the same way (uvicorn, 2 workers, the same
load), is a FastAPI app with one route that returns `{}` (`minimal_app` below): what the
framework and the server cost before Strongroom does anything. Each ratio is the scenario's
requests per second over the reference's.

`--smoke` drives each scenario for a moment with a few connections, 20 accounts and batches of
50 (seconds in all): the same code and the same rows and fields, figures that mean nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from strongroom.benchmarks import loadgen
from strongroom.benchmarks.common import fsync_rate, median_ms, p99

HOST = "127.0.0.1"
WORKERS = 2
ACCOUNTS = 400
BATCH_SIZE = 1_000
# Distinct single-transfer bodies pre-encoded; a run longer than this reuses them (each is
# still a new transfer: the server assigns the id).
SINGLE_BODIES_MAX = 50_000
BATCH_BODIES = 8
SERVER_START_S_MAX = 60.0
SERVER_STOP_S_MAX = 20.0
CLI_STEP_S_MAX = 120.0
# High enough that the per-key token bucket never refuses a benchmark request.
RATE_LIMIT_PER_S = 10_000_000
RATE_LIMIT_BURST = 10_000_000
LOG_TAIL_CHARS = 2_000
# A measurement where one worker used more than this share of the server's CPU is taken again
# (new connections), up to the plan's `balance_attempts`; not with fewer connections than
# BALANCE_CONNECTIONS_MIN, where an even split is not to be expected.
BALANCE_SHARE_MAX = 0.7
BALANCE_ATTEMPTS_MAX = 5
BALANCE_CONNECTIONS_MIN = 8
assert 1 / WORKERS < BALANCE_SHARE_MAX < 1

SINGLE_TARGET_PER_S = 3_000
SINGLE_TARGET_P99_MS = 25.0
BATCH_TARGET_TRANSFERS_PER_S = 30_000

Progress = Callable[[str], None]


def minimal_app() -> FastAPI:
    """The reference: one route that does nothing, on the same framework and server."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {}

    return app


@dataclass(frozen=True)
class Plan:
    """How long and how hard each scenario is driven."""

    warmup_s: float
    duration_s: float
    connections: int
    batch_connections: int
    loadgen_processes: int
    requests_max: int
    batch_requests_max: int
    balance_attempts: int
    accounts: int = ACCOUNTS
    batch_size: int = BATCH_SIZE

    def __post_init__(self) -> None:
        assert 0 <= self.warmup_s <= loadgen.DURATION_S_MAX
        assert 0 < self.duration_s <= loadgen.DURATION_S_MAX
        assert 1 <= self.batch_connections <= self.connections <= loadgen.CONNECTIONS_MAX
        assert 1 <= self.loadgen_processes <= self.batch_connections
        assert 1 <= self.batch_requests_max <= self.requests_max <= loadgen.REQUESTS_MAX
        assert 1 <= self.balance_attempts <= BALANCE_ATTEMPTS_MAX
        assert 2 <= self.accounts <= ACCOUNTS
        assert 1 <= self.batch_size <= BATCH_SIZE

    @classmethod
    def full(cls) -> Plan:
        return cls(
            warmup_s=2.0,
            duration_s=15.0,
            connections=32,
            batch_connections=4,
            loadgen_processes=1,
            requests_max=500_000,
            batch_requests_max=5_000,
            balance_attempts=3,
        )

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            warmup_s=1.0,
            duration_s=4.0,
            connections=32,
            batch_connections=4,
            loadgen_processes=1,
            requests_max=100_000,
            batch_requests_max=1_000,
            balance_attempts=2,
        )

    @classmethod
    def smoke(cls) -> Plan:
        return cls(
            warmup_s=0.0,
            duration_s=1.0,
            connections=4,
            batch_connections=2,
            loadgen_processes=1,
            requests_max=300,
            batch_requests_max=10,
            balance_attempts=1,
            accounts=20,
            batch_size=50,
        )


@dataclass
class HttpRow:
    scenario: str
    requests_per_s: float
    transfers_per_s: float | None  # None where the scenario moves no money
    p50_ms: float
    p99_ms: float
    reference_per_s: float
    ratio: float  # requests/s over the reference's requests/s
    requests: int
    errors: int
    target: str
    target_met: bool | None
    server_cpu_ms_per_request: float  # the figure least disturbed by other load on the machine
    worker_cpu_shares: list[float]
    loadgen_cpu_ms_per_request: float
    other_load_cores: float  # CPU used by other processes meanwhile
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("requests_per_s", "transfers_per_s", "reference_per_s"):
            if out[key] is not None:
                out[key] = round(out[key], 1)
        for key in ("p50_ms", "p99_ms"):
            out[key] = round(out[key], 3)
        out["ratio"] = round(out["ratio"], 4)
        for key in ("server_cpu_ms_per_request", "loadgen_cpu_ms_per_request"):
            out[key] = round(out[key], 4)
        out["worker_cpu_shares"] = [round(x, 3) for x in out["worker_cpu_shares"]]
        out["other_load_cores"] = round(out["other_load_cores"], 2)
        return out


# -- processes -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _strongroom(*args: str) -> list[str]:
    """The `strongroom` command line of this interpreter (works without the console script)."""
    return [sys.executable, "-c", "from strongroom.cli import main; main()", *args]


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """A `strongroom` step, run in the scratch directory (where nothing shadows a module)."""
    return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=CLI_STEP_S_MAX, check=False
    )


def _cli_ok(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = _cli(args, env, cwd)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[3:])} failed: {done.stderr.strip()[-LOG_TAIL_CHARS:]}")
    return done.stdout


def _log_tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except FileNotFoundError:
        return ""


@contextlib.contextmanager
def _server(
    args: list[str], env: dict[str, str], log_path: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process (its own process group), ready when `ready_url` answers 200; always
    stopped on the way out: SIGTERM, then SIGKILL to its group after SERVER_STOP_S_MAX."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            args,
            env=env,
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_START_S_MAX
        with httpx.Client(timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"the server exited with {proc.returncode}:\n{_log_tail(log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(ready_url).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the server was not ready in {SERVER_START_S_MAX:.0f} s:\n"
                        f"{_log_tail(log_path)}"
                    )
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=SERVER_STOP_S_MAX)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # A worker left behind by a supervisor that died would hold the port and a core.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    env["STRONGROOM_DATABASE_URL"] = database_url
    env["STRONGROOM_RATE_LIMIT_PER_S"] = str(RATE_LIMIT_PER_S)
    env["STRONGROOM_RATE_LIMIT_BURST"] = str(RATE_LIMIT_BURST)
    return env


# -- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixture:
    port: int
    secret: str
    ledger_id: str
    accounts: list[str]

    def headers(self) -> list[tuple[str, str]]:
        return [("Authorization", f"Bearer {self.secret}"), ("Content-Type", "application/json")]

    def post(self, path: str, body: dict[str, Any]) -> bytes:
        return loadgen.encode_request(
            "POST",
            path,
            f"{HOST}:{self.port}",
            body=json.dumps(body, separators=(",", ":")).encode(),
            headers=self.headers(),
        )

    def transfer(self, rng: random.Random) -> dict[str, Any]:
        debit, credit = rng.sample(self.accounts, 2)
        return {
            "ledger_id": self.ledger_id,
            "debit_account_id": debit,
            "credit_account_id": credit,
            "amount": rng.randint(1, 10_000),
        }


def _seed(base_url: str, secret: str, port: int, accounts: int) -> Fixture:
    """A ledger and `accounts` accounts, over the API (no balance limits: nothing is
    refused)."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30.0
    ) as client:
        answer = client.post("/v1/ledgers", json={"name": "bench"})
        answer.raise_for_status()
        ledger_id = answer.json()["id"]
        ids = []
        for _ in range(accounts):
            answer = client.post(
                "/v1/accounts",
                json={"ledger_id": ledger_id, "asset": "USD", "normal_balance": "credit"},
            )
            answer.raise_for_status()
            ids.append(answer.json()["id"])
    return Fixture(port, secret, ledger_id, ids)


# -- CPU accounting (Linux /proc; empty elsewhere) ------------------------------------------


def _tree_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of a process and of its descendants, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        proc = Path(f"/proc/{current}")
        try:
            fields = (proc / "stat").read_text().rpartition(")")[2].split()
            # Fields 14 and 15 of stat (utime, stime); the split starts at field 3.
            out[current] = (int(fields[11]) + int(fields[12])) / ticks
            for task in (proc / "task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError, IndexError):
            continue
    return out


def _machine_busy_s() -> float:
    """CPU seconds spent by every process on the machine, all CPUs together (0 without /proc)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    result: loadgen.LoadResult
    server_cpu_ms_per_request: float
    # Each server process's share of the server's CPU: a lopsided split means one worker
    # took most connections.
    worker_cpu_shares: list[float]
    loadgen_cpu_ms_per_request: float
    # CPU used by other processes on the machine meanwhile, in cores: the noise in the figures.
    other_load_cores: float

    def describe(self) -> str:
        shares = "/".join(f"{100 * s:.0f}" for s in self.worker_cpu_shares) or "?"
        return (
            f"{_describe(self.result)}\n{'':<17}server CPU {self.server_cpu_ms_per_request:.3f} "
            f"ms/request (workers {shares}%), load generator "
            f"{self.loadgen_cpu_ms_per_request:.3f} ms/request, other processes "
            f"{self.other_load_cores:.2f} cores"
        )


def _measure(
    server_pid: int,
    port: int,
    requests: list[bytes],
    connections: int,
    requests_max: int,
    plan: Plan,
) -> Measured:
    cpu_before = _tree_cpu_s(server_pid)
    busy_before = _machine_busy_s()
    wall_before = time.monotonic()
    result = _drive(port, requests, connections, requests_max, plan)
    wall_s = time.monotonic() - wall_before
    busy_s = _machine_busy_s() - busy_before
    cpu_after = _tree_cpu_s(server_pid)
    by_process = {p: cpu_after[p] - cpu_before.get(p, 0.0) for p in cpu_after}
    server_s = sum(by_process.values())
    answered = max(1, result.completed + result.warmup_completed)
    # The workers are the busiest processes; the supervisor and helpers barely run.
    workers = sorted(by_process.values(), reverse=True)[:WORKERS]
    return Measured(
        result=result,
        server_cpu_ms_per_request=1000 * server_s / answered,
        worker_cpu_shares=[v / server_s for v in workers] if server_s else [],
        loadgen_cpu_ms_per_request=1000 * result.cpu_s / answered,
        other_load_cores=max(0.0, busy_s - server_s - result.cpu_s) / wall_s if busy_s else 0.0,
    )


def _measure_balanced(
    server_pid: int,
    port: int,
    requests: list[bytes],
    connections: int,
    requests_max: int,
    plan: Plan,
    progress: Progress,
) -> Measured:
    """`_measure`, again with new connections while one worker did most of the work: uvicorn's
    workers share one listening socket, and the kernel does not spread keep-alive connections
    evenly between them (often one worker takes nearly all), which would measure one worker."""
    for attempt in range(1, plan.balance_attempts + 1):
        measured = _measure(server_pid, port, requests, connections, requests_max, plan)
        shares = measured.worker_cpu_shares
        if connections < BALANCE_CONNECTIONS_MIN or not shares or max(shares) <= BALANCE_SHARE_MAX:
            break
        split = "/".join(f"{100 * x:.0f}" for x in shares)
        if attempt < plan.balance_attempts:
            progress(f"  workers lopsided ({split}% of the CPU): again, with new connections")
        else:
            progress(f"  workers still lopsided ({split}%) after {attempt} tries: kept")
    return measured


def _drive(
    port: int, requests: list[bytes], connections: int, requests_max: int, plan: Plan
) -> loadgen.LoadResult:
    spec = loadgen.LoadSpec(
        host=HOST,
        port=port,
        requests=tuple(requests),
        connections=connections,
        requests_max=requests_max,
        duration_s=plan.duration_s,
        warmup_s=plan.warmup_s,
    )
    return loadgen.run(spec, processes=min(plan.loadgen_processes, connections))


def _describe(result: loadgen.LoadResult) -> str:
    text = (
        f"{result.per_s:>9,.0f} req/s  p50 {median_ms(result.latencies_s):7.2f} ms  "
        f"p99 {p99(result.latencies_s):7.2f} ms  ({result.completed:,} requests)"
    )
    if result.failed or result.timed_out:
        statuses = {s: n for s, n in sorted(result.statuses.items()) if not 200 <= s < 300}
        text += (
            f"\n  ERRORS: {result.not_2xx} non-2xx {statuses}, "
            f"{result.transport_errors} transport errors"
            + (", the run timed out" if result.timed_out else "")
        )
        for sample in result.error_samples:
            text += f"\n    {sample}"
    return text


def _probe_batch(base_url: str, secret: str, request: bytes) -> None:
    """A batch answers 200 even when it refuses some of its transfers, and the load generator
    reads statuses only: send one of the benchmark's batches first and check that every
    transfer in it was created."""
    body = request.partition(b"\r\n\r\n")[2]
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        answer = client.post(
            "/v1/transfers/batch",
            content=body,
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        )
    answer.raise_for_status()
    refused = [r for r in answer.json()["results"] if r["status"] != "created"]
    assert not refused, f"the benchmark's batch transfers were refused: {refused[:3]}"


def _reference(directory: Path, plan: Plan, progress: Progress) -> Measured:
    port = _free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "strongroom.benchmarks.http:minimal_app",
        "--factory",
        "--workers",
        str(WORKERS),
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    progress(f"reference: minimal FastAPI app (GET / returns {{}}), uvicorn, {WORKERS} workers ...")
    env = _server_env("sqlite:///unused.db")
    with _server(args, env, directory / "reference.log", f"http://{HOST}:{port}/") as proc:
        get = loadgen.encode_request("GET", "/", f"{HOST}:{port}")
        return _measure_balanced(
            proc.pid, port, [get], plan.connections, plan.requests_max, plan, progress
        )


def _row(
    scenario: str,
    measured: Measured,
    reference_per_s: float,
    transfers_per_request: int | None,
    note: str,
) -> HttpRow:
    result = measured.result
    rate = result.per_s
    transfers = None if transfers_per_request is None else rate * transfers_per_request
    p99_ms = p99(result.latencies_s)
    target, met = "", None
    if scenario == "single_transfer":
        target = f">= {SINGLE_TARGET_PER_S:,} req/s, p99 <= {SINGLE_TARGET_P99_MS:g} ms"
        met = rate >= SINGLE_TARGET_PER_S and p99_ms <= SINGLE_TARGET_P99_MS
    elif scenario == "batch_transfers":
        assert transfers is not None
        target = f">= {BATCH_TARGET_TRANSFERS_PER_S:,} transfers/s"
        met = transfers >= BATCH_TARGET_TRANSFERS_PER_S
    errors = result.failed + result.timed_out
    if errors:
        note = f"{note}; ERRORS: {errors}"
        met = False if met is not None else None
    return HttpRow(
        scenario=scenario,
        requests_per_s=rate,
        transfers_per_s=transfers,
        p50_ms=median_ms(result.latencies_s),
        p99_ms=p99_ms,
        reference_per_s=reference_per_s,
        ratio=rate / reference_per_s if reference_per_s else 0.0,
        requests=result.completed,
        errors=errors,
        target=target,
        target_met=met,
        server_cpu_ms_per_request=measured.server_cpu_ms_per_request,
        worker_cpu_shares=measured.worker_cpu_shares,
        loadgen_cpu_ms_per_request=measured.loadgen_cpu_ms_per_request,
        other_load_cores=measured.other_load_cores,
        note=note,
    )


def run(*, quick: bool, progress: Progress, seed: int = 1, smoke: bool = False) -> dict[str, Any]:
    assert not (quick and smoke), "--quick and --smoke exclude each other"
    plan = Plan.smoke() if smoke else Plan.quick() if quick else Plan.full()
    rng = random.Random(seed)
    info: dict[str, Any] = {
        "quick": quick,
        "smoke": smoke,
        "workers": WORKERS,
        "database": "sqlite (WAL, synchronous=FULL)",
        "accounts": plan.accounts,
        "batch_size": plan.batch_size,
        "connections": plan.connections,
        "batch_connections": plan.batch_connections,
        "loadgen_processes": plan.loadgen_processes,
        "warmup_s": plan.warmup_s,
        "duration_s": plan.duration_s,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    rows: list[HttpRow] = []
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-http-") as tmp:
        directory = Path(tmp)
        info["fsync_per_s"] = round(fsync_rate(directory, seconds=0.5), 1)
        progress(f"disk: {info['fsync_per_s']:,.0f} fsyncs/s (4 KiB write + fsync, in {tmp})")
        progress(
            f"load: {plan.connections} keep-alive connections ({plan.batch_connections} for "
            f"batches), {plan.loadgen_processes} load generator process(es), "
            f"{plan.warmup_s:g} s warm-up + {plan.duration_s:g} s per scenario, on "
            f"{os.cpu_count()} CPUs shared with the server's {WORKERS} workers"
        )

        # The reference first, alone on the machine.
        ref = _reference(directory, plan, progress)
        progress(f"reference:       {ref.describe()}")
        reference_per_s = ref.result.per_s
        info["reference"] = {
            "app": "FastAPI, one route GET / returning {}",
            "requests_per_s": round(reference_per_s, 1),
            "p50_ms": round(median_ms(ref.result.latencies_s), 3),
            "p99_ms": round(p99(ref.result.latencies_s), 3),
            "requests": ref.result.completed,
            "errors": ref.result.failed + ref.result.timed_out,
            "server_cpu_ms_per_request": round(ref.server_cpu_ms_per_request, 4),
            "worker_cpu_shares": [round(x, 3) for x in ref.worker_cpu_shares],
            "loadgen_cpu_ms_per_request": round(ref.loadgen_cpu_ms_per_request, 4),
            "other_load_cores": round(ref.other_load_cores, 2),
        }
        errors = info["reference"]["errors"]

        # Strongroom.
        database_url = f"sqlite:///{directory / 'strongroom.db'}"
        env = _server_env(database_url)
        progress(f"strongroom: {database_url}, db upgrade, API key, serve --workers {WORKERS} ...")
        _cli_ok(_strongroom("db", "upgrade"), env, directory)
        created = _cli_ok(
            _strongroom("api-keys", "create", "--tenant", "bench", "--scope", "ledger:write"),
            env,
            directory,
        )
        secret = json.loads(created)["secret"]
        port = _free_port()
        base_url = f"http://{HOST}:{port}"
        serve_args = _strongroom(
            "serve", "--workers", str(WORKERS), "--host", HOST, "--port", str(port)
        )
        log_path = directory / "strongroom.log"
        with _server(serve_args, env, log_path, f"{base_url}/readyz") as proc:
            fx = _seed(base_url, secret, port, plan.accounts)
            progress(f"strongroom: ledger {fx.ledger_id}, {len(fx.accounts)} accounts")

            def measure(
                scenario: str,
                requests: list[bytes],
                connections: int,
                requests_max: int,
                transfers_per_request: int | None,
                note: str,
            ) -> None:
                progress(f"{scenario} ...")
                measured = _measure_balanced(
                    proc.pid, port, requests, connections, requests_max, plan, progress
                )
                progress(f"{scenario:<16} {measured.describe()}")
                row = _row(scenario, measured, reference_per_s, transfers_per_request, note)
                if row.transfers_per_s is not None and transfers_per_request != 1:
                    progress(f"{'':<17}{row.transfers_per_s:,.0f} transfers/s")
                progress(
                    f"{'':<17}ratio to reference {row.ratio:.3f}"
                    + (
                        f"; target {row.target}: {'met' if row.target_met else 'MISSED'}"
                        if row.target
                        else ""
                    )
                )
                rows.append(row)

            singles = [
                fx.post("/v1/transfers", fx.transfer(rng))
                for _ in range(min(plan.requests_max, SINGLE_BODIES_MAX))
            ]
            measure(
                "single_transfer",
                singles,
                plan.connections,
                plan.requests_max,
                1,
                "POST /v1/transfers, one new transfer each, through group commit",
            )
            del singles
            batches = [
                fx.post(
                    "/v1/transfers/batch",
                    {"transfers": [fx.transfer(rng) for _ in range(plan.batch_size)]},
                )
                for _ in range(BATCH_BODIES)
            ]
            _probe_batch(base_url, secret, batches[0])
            measure(
                "batch_transfers",
                batches,
                plan.batch_connections,
                plan.batch_requests_max,
                plan.batch_size,
                f"POST /v1/transfers/batch of {plan.batch_size:,} on {plan.batch_connections} "
                "connections; ratio on requests/s",
            )
            gets = [
                loadgen.encode_request(
                    "GET", f"/v1/accounts/{a}", f"{HOST}:{port}", headers=fx.headers()[:1]
                )
                for a in fx.accounts
            ]
            measure(
                "get_account",
                gets,
                plan.connections,
                plan.requests_max,
                None,
                "GET /v1/accounts/{id}, every account in turn",
            )
        errors += sum(r.errors for r in rows)

        progress("verify: checking every ledger invariant on the database ...")
        verified = _cli(_strongroom("ledger", "verify"), env, directory)
        lines = (verified.stdout or verified.stderr).strip().splitlines()
        info["verify"] = lines[-1] if lines else f"exit code {verified.returncode}"
        progress(f"verify: {info['verify']}")
        if verified.returncode != 0:
            errors += 1
    info["errors"] = errors
    if errors:
        progress(f"THE RUN HAD ERRORS ({errors}): its figures do not stand for the server.")
    return {"info": info, "results": [r.to_dict() for r in rows]}


def table(report: dict[str, Any]) -> str:
    lines = [
        "| scenario | requests/s | transfers/s | p50 ms | p99 ms | reference /s | ratio "
        "| server CPU ms/req | target | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in report["results"]:
        transfers = "" if r["transfers_per_s"] is None else f"{r['transfers_per_s']:,.0f}"
        target = ""
        if r["target"]:
            target = f"{r['target']}: {'met' if r['target_met'] else 'MISSED'}"
        lines.append(
            f"| {r['scenario']} | {r['requests_per_s']:,.0f} | {transfers} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['reference_per_s']:,.0f} "
            f"| {r['ratio']:.3f} | {r['server_cpu_ms_per_request']:.3f} | {target} "
            f"| {r['errors']} |"
        )
    ref = report["info"]["reference"]
    lines.append(
        f"| reference (FastAPI, GET / returns {{}}) | {ref['requests_per_s']:,.0f} | "
        f"| {ref['p50_ms']:.2f} | {ref['p99_ms']:.2f} | | 1.000 "
        f"| {ref['server_cpu_ms_per_request']:.3f} | | {ref['errors']} |"
    )
    return "\n".join(lines)
