"""One view for operators: `strongroom serve --workers 2` as a real process. Its /metrics
counts every worker's requests whichever worker answers the scrape, a killed worker's
requests included; it can require a token and names no tenant; and every line the server,
its workers, uvicorn and the webhook worker write is JSON."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from strongroom.core import clock
from strongroom.db import leases, migrate
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from tests.e2e.http_support import Api, Tenant, auth, problem_code, running, seed_tenant

TOKEN = "metrics-token-for-tests-0123456789"
BOGUS_KEY = "sk_bogus_key_that_must_never_be_logged_0123"
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
STARTUP_S_MAX = 180.0  # a bound on waiting, not an assertion on speed
CLI = [sys.executable, "-c", "from strongroom.cli import main; main()"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def samples_of(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def requests_of(samples: Samples, route: str, status: str = "200") -> float:
    labels = (("method", "GET"), ("route", route), ("status", status))
    return samples.get(("strongroom_http_requests_total", labels), 0.0)


def answered(samples: Samples, status: str) -> float:
    """Requests answered with `status`, whatever the route (a refused key has none)."""
    return sum(
        value
        for (name, labels), value in samples.items()
        if name == "strongroom_http_requests_total" and dict(labels)["status"] == status
    )


def worker_pids(samples: Samples) -> set[str]:
    return {
        dict(labels)["pid"] for name, labels in samples if name == "process_resident_memory_bytes"
    }


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    stderr: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        # A new connection each time, so that either worker may accept it.
        return httpx.get(self.base + path, timeout=30, **kwargs)

    def scrape(self) -> tuple[Samples, str]:
        response = self.get("/metrics", headers=auth(TOKEN))
        assert response.status_code == 200, response.text
        return samples_of(response.text), response.headers["request-id"]

    def log_lines(self) -> list[dict[str, Any]]:
        text = self.stderr.read_text(encoding="utf-8")
        # A line still being written is left for the next read.
        return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]

    def pid_of(self, request_id: str) -> int | None:
        for line in self.log_lines():
            if line.get("request_id") == request_id:
                return int(line["pid"])
        return None

    def wait_for(self, condition: str, check: Any) -> Any:
        deadline = time.monotonic() + STARTUP_S_MAX
        while True:
            assert self.process.poll() is None, self.stderr.read_text()
            with_value = check()
            if with_value:
                return with_value
            assert time.monotonic() < deadline, f"never: {condition}"
            time.sleep(0.2)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    url = f"sqlite:///{tmp_path / 'ops.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "STRONGROOM_DATABASE_URL": url,
        "STRONGROOM_METRICS_TOKEN": TOKEN,
        "STRONGROOM_LOG_LEVEL": "info",
        # Jobs run often, under short leases: a killed holder's are taken over in about 1 s.
        "STRONGROOM_JOB_LEASE_S": "0.75",
        "STRONGROOM_AUDIT_CHECKPOINT_INTERVAL_S": "0.2",
        "STRONGROOM_RETENTION_INTERVAL_S": "0.2",
        "TMPDIR": str(tmp_path),  # where serve makes its private metrics directory
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    stderr = tmp_path / "serve.stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [*CLI, "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=tmp_path,
        )
    server = Server(process, f"http://127.0.0.1:{port}", stderr)
    try:
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        assert process.stdout is not None
        process.stdout.close()


def metrics_ready(server: Server) -> Samples | None:
    """The samples once both workers have built their app, else None."""
    try:
        samples, _ = server.scrape()
    except httpx.TransportError:
        return None
    return samples if len(worker_pids(samples)) == 2 else None


@pytest.mark.slow
def test_two_workers_give_one_view_in_metrics_and_json_logs(server: Server) -> None:
    samples = server.wait_for("both workers serve", lambda: metrics_ready(server))
    unauthenticated = server.get("/metrics")
    assert unauthenticated.status_code == 401
    assert problem_code(unauthenticated) == "metrics_token_required"
    assert server.get("/metrics", headers=auth(TOKEN + "x")).status_code == 401

    made = 40
    for _ in range(made):
        assert server.get("/healthz").status_code == 200
    refused = 5
    for _ in range(refused):
        assert server.get("/v1/ledgers", headers=auth(BOGUS_KEY)).status_code == 401

    # The last request's count is written just after its answer: wait until it is in, then
    # every scrape, answered by either worker, must say exactly what was made.
    server.wait_for(
        "the requests are counted",
        lambda: requests_of(server.scrape()[0], "/healthz") == made,
    )
    answered_by: set[int] = set()
    scrapes = 0
    while len(answered_by) < 2 or scrapes < 20:
        samples, request_id = server.scrape()
        scrapes += 1
        assert requests_of(samples, "/healthz") == made
        assert answered(samples, "401") == refused + 2  # and the two scrapes without the token
        assert samples[("strongroom_build_info", _build_labels(samples))] == 1
        assert len(worker_pids(samples)) == 2
        pid = server.wait_for("the scrape is logged", lambda rid=request_id: server.pid_of(rid))
        answered_by.add(pid)
        assert scrapes < 500, f"every scrape went to worker {answered_by}"
    assert {str(p) for p in answered_by} == worker_pids(samples)

    # A worker killed outright: uvicorn starts another; its requests stay counted, and its
    # process series go (mark_process_dead).
    killed = sorted(worker_pids(samples))[0]
    os.kill(int(killed), signal.SIGKILL)

    def replaced() -> Samples | None:
        samples = metrics_ready(server)
        return samples if samples is not None and killed not in worker_pids(samples) else None

    samples = server.wait_for("the killed worker is replaced", replaced)
    assert requests_of(samples, "/healthz") == made
    assert answered(samples, "401") == refused + 2  # and the two scrapes without the token

    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(60) == 0
    assert server.process.stdout is not None
    assert server.process.stdout.read() == b""  # every line goes to stderr, as JSON
    metrics_dirs = list(Path(server.stderr.parent).glob("strongroom-metrics-*"))
    assert metrics_dirs == [], "serve removes its metrics directory at exit"

    text = server.stderr.read_text(encoding="utf-8")
    assert BOGUS_KEY not in text
    assert TOKEN not in text
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    for line in lines:
        assert TIME.match(line["time"]), line
        assert line["level"] in {"debug", "info", "warning", "error", "critical"}, line
        assert line["logger"], line
        assert isinstance(line["message"], str), line
        assert isinstance(line["pid"], int), line
    loggers = {line["logger"] for line in lines}
    assert {"strongroom.serve", "strongroom.http", "uvicorn.error"} <= loggers
    requests = [line for line in lines if line["logger"] == "strongroom.http"]
    assert requests
    assert all(line["request_id"].startswith("req_") for line in requests)
    assert len({line["pid"] for line in requests}) >= 2


@pytest.mark.slow
def test_a_stop_by_sigterm_writes_every_request_line(server: Server) -> None:
    """The workers write their request lines together (logs.LineBatchingHandler); a stop by
    SIGTERM (what a service manager sends; uvicorn then ends by the signal, without atexit)
    still writes each one, the last answered just before the signal included."""
    server.wait_for("both workers serve", lambda: metrics_ready(server))
    request_ids = []
    for _ in range(60):
        answer = server.get("/healthz")
        assert answer.status_code == 200
        request_ids.append(answer.headers["request-id"])
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(60)
    lines = [json.loads(line) for line in server.stderr.read_text(encoding="utf-8").splitlines()]
    logged = {line.get("request_id") for line in lines if line["logger"] == "strongroom.http"}
    assert set(request_ids) <= logged
    finished = [line for line in lines if line["message"].startswith("Finished server process")]
    assert len({line["pid"] for line in finished}) >= 2  # each worker's last line


def job_holder(server: Server, job: str, excluded: int | None = None) -> int | None:
    """The pid of the last worker to log that it took `job`'s lease (other than `excluded`)."""
    taken = [
        int(line["pid"])
        for line in server.log_lines()
        if line["message"] == f"job {job}: this process runs it now"
    ]
    return next((pid for pid in reversed(taken) if pid != excluded), None)


def jobs_report(server: Server) -> dict[str, Any] | None:
    try:
        response = server.get("/readyz")
    except httpx.TransportError:
        return None
    jobs: dict[str, Any] = response.json()["jobs"]
    return jobs


@pytest.mark.slow
def test_a_killed_job_holder_is_replaced_and_every_worker_reports_the_jobs(
    server: Server,
) -> None:
    """Each leased job runs in one worker; killed outright, its jobs move to another worker
    once the lease runs out, and /readyz, whichever worker answers, shows them running and
    succeeding again."""
    server.wait_for("both workers serve", lambda: metrics_ready(server))
    holders = {
        job: server.wait_for(f"{job} has a holder", lambda job=job: job_holder(server, job))
        for job in LEASED_JOBS
    }
    victim = holders["retention"]
    os.kill(victim, signal.SIGKILL)
    killed_at = clock.now_us()
    for job, pid in holders.items():
        if pid == victim:
            server.wait_for(
                f"{job} is taken over",
                lambda job=job: job_holder(server, job, excluded=victim),
            )

    def ran_since_the_kill() -> dict[str, Any] | None:
        jobs = jobs_report(server)
        if jobs is None:
            return None
        for job in LEASED_JOBS:
            success = jobs[job]["last_success_at"]
            if not jobs[job]["running"] or success is None:
                return None
            if clock.parse_timestamp(success) <= killed_at:
                return None
        return jobs

    jobs = server.wait_for("every job runs again", ran_since_the_kill)
    assert {jobs[job]["last_error"] for job in LEASED_JOBS} == {None}
    samples = server.wait_for("both workers serve again", lambda: metrics_ready(server))
    for job in LEASED_JOBS:
        assert samples[("strongroom_job_running", (("job", job),))] == 1
        last = samples[("strongroom_job_last_success_timestamp_seconds", (("job", job),))]
        assert last * 1_000_000 > killed_at


LEASED_JOBS = (
    "expiry",
    "audit_checkpoints",
    "retention",
    "rewrap",
    "openbanking_consent_expiry",
)
# Leased too, on intervals of an hour and a day (at least a minute): reported, not waited for.
SLOW_JOBS = ("aml_retention", "compliance_controls", "sanctions_rescreen")
# Leased as well: the open banking authorization server's purge (every minute by default).
OB_JOBS = ("openbanking_authz_purge",)
ALL_JOBS = (*LEASED_JOBS, *OB_JOBS, "dispatcher")


def test_readyz_and_metrics_report_each_jobs_last_run(sqlite_url: str) -> None:
    fast = {
        "expiry_interval_s": 0.05,
        "audit_checkpoint_interval_s": 0.05,
        "retention_interval_s": 0.05,
        "rewrap_interval_s": 0.05,
        "ob_purge_interval_s": 0.05,
        "job_lease_s": 0.3,
    }
    with running(sqlite_url, **fast) as api:
        deadline = time.monotonic() + STARTUP_S_MAX
        while True:
            ready = api.ok("GET", "/readyz")
            if all(ready["jobs"][job]["last_success_at"] for job in ALL_JOBS):
                break
            assert time.monotonic() < deadline, ready
            api.run(asyncio.sleep(0.05))  # the jobs run while the app's event loop does
        assert ready["status"] == "ok"
        assert ready["checks"] == {
            "database": "ok",
            "migrations": "ok",
            "committer": "ok",
            "expiry": "ok",
            "audit_checkpoints": "ok",
            "retention": "ok",
            "rewrap": "ok",
            "dispatcher": "ok",
        }
        assert set(SLOW_JOBS) <= set(ready["jobs"])
        for job in ALL_JOBS:
            report = ready["jobs"][job]
            assert (report["running"], report["running_here"]) == (True, True), job
            assert report["last_error"] is None
            assert report["last_error_at"] is None
            clock.parse_timestamp(report["last_success_at"])
        samples = samples_of(api.get("/metrics").text)
        for job in ALL_JOBS:
            assert samples[("strongroom_job_running", (("job", job),))] == 1
            assert samples[("strongroom_job_last_success_timestamp_seconds", (("job", job),))] > 0
        for kind in ("events", "webhook_attempts", "idempotency_records"):
            assert ("strongroom_retention_deleted_total", (("kind", kind),)) in samples
    # Stopped: the process gave its leases up, so another one takes them at once.
    engine = create_engine(sqlite_url)
    try:
        with UnitOfWork(engine, write=False) as uow:
            rows = leases.all_leases(uow)
    finally:
        engine.dispose()
    assert set(LEASED_JOBS) <= set(rows) <= {*LEASED_JOBS, *OB_JOBS, *SLOW_JOBS}
    assert {row.lease_until for row in rows.values()} == {0}
    assert all(rows[job].last_success_at for job in (*LEASED_JOBS, *OB_JOBS))


def _build_labels(samples: Samples) -> tuple[tuple[str, str], ...]:
    (labels,) = [labels for name, labels in samples if name == "strongroom_build_info"]
    assert {name for name, _ in labels} == {"version", "python"}
    return labels


@pytest.fixture
def acme(sqlite_url: str) -> Iterator[tuple[Api, Tenant]]:
    with running(sqlite_url, dispatcher=False) as api:
        yield api, seed_tenant(api, "acme")


def test_metrics_name_no_tenant_key_or_object(acme: tuple[Api, Tenant]) -> None:
    api, tenant = acme
    api.get(f"/v1/accounts/{tenant.alice}", key=tenant.read)
    api.get("/v1/accounts/acc_missing", key=tenant.read)
    api.get("/v1/ledgers", key=BOGUS_KEY)
    response = api.get("/metrics")
    assert response.status_code == 200
    tenancy = api.app.state.tenancy
    key = tenancy.authenticate(tenant.read)
    forbidden = {
        tenant.name,
        key.tenant_id,
        key.id,
        tenant.ledger,
        tenant.alice,
        tenant.bank,
        tenant.marker,
        "acc_missing",
    }
    label_names: set[str] = set()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            label_names.update(sample.labels)
            for value in sample.labels.values():
                assert not any(f in value for f in forbidden), (sample.name, value)
    assert label_names <= {
        *("method", "route", "status", "result", "le", "version", "python"),
        *("job", "kind"),  # the background jobs, and what retention deleted
    }
    for secret in (tenant.read, tenant.write, tenant.admin, BOGUS_KEY, *forbidden):
        assert secret not in response.text


def test_metrics_need_the_token_when_one_is_set(sqlite_url: str) -> None:
    with running(sqlite_url, dispatcher=False, metrics_token=TOKEN) as api:
        for headers in ({}, auth(TOKEN[:-1]), auth(TOKEN + "0"), {"Authorization": TOKEN}):
            response = api.get("/metrics", headers=headers)
            assert response.status_code == 401
            assert problem_code(response) == "metrics_token_required"
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "strongroom_" not in response.text
        response = api.get("/metrics", headers=auth(TOKEN))
        assert response.status_code == 200
        assert "strongroom_build_info" in response.text
        assert "process_cpu_seconds_total" in response.text
        # The other open routes stay open.
        assert api.get("/healthz").status_code == 200


def test_a_short_metrics_token_is_refused(sqlite_url: str) -> None:
    done = subprocess.run(
        [*CLI, "db", "upgrade"],
        env={**os.environ, "STRONGROOM_DATABASE_URL": sqlite_url, "STRONGROOM_METRICS_TOKEN": "x"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: invalid_setting: STRONGROOM_METRICS_TOKEN: ")
    assert "'x'" not in done.stderr


def test_the_webhook_worker_logs_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    stderr = tmp_path / "worker.stderr"
    with stderr.open("wb") as err:
        process = subprocess.Popen(
            [*CLI, "worker"],
            env={**os.environ, "STRONGROOM_DATABASE_URL": url},
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + STARTUP_S_MAX
        while "started" not in stderr.read_text():
            assert process.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "the worker never started"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    lines = [json.loads(line) for line in stderr.read_text().splitlines()]
    assert lines
    for line in lines:
        assert TIME.match(line["time"]), line
        assert {"level", "logger", "message", "pid"} <= set(line), line
    assert any(line["logger"] == "strongroom.events.dispatcher" for line in lines)
