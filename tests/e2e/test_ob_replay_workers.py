"""A DPoP proof replayed at the other worker of a real `strongroom serve --workers 2` on
SQLite: the resource requests' replay store is the file beside the database that every worker
maps (openbanking/authz/replay.py), so the same proof is taken once whichever worker answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.openbanking.ports import RESOURCE_BASE
from strongroom.tenancy.service import TenancyService
from tests.support.ob_authz import new_tpp
from tests.support.ob_flow import TppAgent, public_jwks
from tests.support.serve import free_port

CLI = [sys.executable, "-c", "from strongroom.cli import main; main()"]
START_S_MAX = 180.0  # a bound on waiting, not an assertion on speed
SENDS = 40  # the same proof, each on a new connection: both workers get some


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """(base URL, an operator key, the stderr log) of `serve --workers 2` on SQLite."""
    url = f"sqlite:///{tmp_path / 'strongroom.db'}"
    engine = create_engine(url, sqlite_cache_mib=16)
    try:
        migrate.upgrade(engine)
        tenancy = TenancyService(engine)
        tenancy.create_api_key("acme", ["admin"])
        operator = tenancy.create_api_key(None, ["tenants:admin"])[1]
    finally:
        engine.dispose()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "STRONGROOM_DATABASE_URL": url,
        "STRONGROOM_PUBLIC_BASE_URL": base,
        "STRONGROOM_LOG_LEVEL": "info",
        "STRONGROOM_DISPATCHER": "false",
        "TMPDIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = tmp_path / "serve.stderr"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*CLI, "serve", "--workers", "2", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_S_MAX
        while len(_pids(log)) < 2 or not _healthy(base):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        yield base, operator, log
    finally:
        try:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _lines(log: Path) -> list[dict[str, object]]:
    text = log.read_text(encoding="utf-8", errors="replace")
    found = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
    return found


def _pids(log: Path) -> set[object]:
    return {line["pid"] for line in _lines(log) if "pid" in line} - {None}


@pytest.mark.slow
def test_a_proof_is_taken_once_whichever_worker_answers(
    served: tuple[str, str, Path], tmp_path: Path
) -> None:
    base, operator, log = served
    tpp = new_tpp(name="Replayer", redirect_uris=("https://tpp.example/cb",))
    with httpx.Client(base_url=base, timeout=30) as client:
        registered = client.post(
            "/v1/openbanking/clients",
            headers={"Authorization": f"Bearer {operator}"},
            json={
                "name": tpp.name,
                "redirect_uris": list(tpp.redirect_uris),
                "jwks": public_jwks(tpp),
            },
        )
        assert registered.status_code == 201, registered.text
        tpp.id = registered.json()["id"]
        agent = TppAgent(tpp, base, client.request)
        consent = agent.account_access_consent("acme")
        token = agent.client_token()
    path = RESOURCE_BASE.format(tenant="acme") + f"/aisp/account-access-consents/{consent}"
    proof = agent.dpop.proof("GET", base + path, agent.now_s(), access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    answers = []
    for _ in range(SENDS):
        # A new connection each time, so that either worker may accept it.
        response = httpx.get(base + path, headers=headers, timeout=30)
        answers.append((response.status_code, response.headers.get("request-id")))
    statuses = [status for status, _ in answers]
    assert statuses.count(200) == 1, statuses
    assert statuses.count(401) == SENDS - 1, statuses
    # Both workers answered some of them (else the test proved nothing about sharing).
    ids = {rid for _, rid in answers}
    deadline = time.monotonic() + 30
    while True:
        answering = {line.get("pid") for line in _lines(log) if line.get("request_id") in ids} - {
            None
        }
        if len(answering) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(answering) == 2, answering
    assert (tmp_path / "strongroom.db.dpop-replay").stat().st_mode & 0o777 == 0o600
