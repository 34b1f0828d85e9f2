"""The model registry from the outside: `strongroom risk models` (register, shadow, promote,
retire, list) and the HTTP routes (list, read; promote and shadow with `risk:admin`, a user
stepping up first), tenants kept apart, and the Python client."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli import app
from strongroom.cli import risk_models as cli_models
from strongroom.client import AsyncClient, Client, NotFoundError
from strongroom.risk.registry import RiskModelRegistry
from tests.e2e.http_support import Api, problem_code, running, seed_tenant
from tests.support.risk_models import artefact, describe

FAST = {"password_memory_kib": 19 * 1024, "password_time_cost": 2, "password_parallelism": 1}


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr(cli_models, "DESCRIBE", [describe])
    runner = CliRunner()
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    return runner


def run(cli: CliRunner, *args: str, code: int = 0) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == code, (args, result.output)
    return result.output


def test_the_cli_registers_shadows_promotes_retires_and_lists(
    cli: CliRunner, tmp_path: Path
) -> None:
    paths = {}
    for version, ap in (("mdl_a", 0.61), ("mdl_b", 0.72)):
        paths[version] = tmp_path / f"{version}.json"
        paths[version].write_bytes(artefact(version, ap=ap))
    assert run(cli, "risk", "models", "register", str(paths["mdl_a"])) == "mdl_a: registered\n"
    again = run(cli, "risk", "models", "register", str(paths["mdl_a"]))
    assert again == "mdl_a: already registered\n"
    made = json.loads(run(cli, "risk", "models", "register", str(paths["mdl_b"]), "--json"))
    assert (made["version"], made["status"], made["created"]) == ("mdl_b", "registered", True)
    assert run(cli, "risk", "models", "promote", "mdl_a") == "mdl_a: live\n"
    assert run(cli, "risk", "models", "shadow", "mdl_b") == "mdl_b: shadow\n"
    listed = json.loads(run(cli, "risk", "models", "list", "--json"))
    assert [(m["version"], m["status"]) for m in listed] == [("mdl_a", "live"), ("mdl_b", "shadow")]
    assert listed[0]["metrics"]["average_precision"] == 0.61
    assert listed[0]["created_by"] == "cli"
    table = run(cli, "risk", "models", "list").splitlines()
    assert table[0].split() == ["VERSION", "STATUS", "AP", "AUC", "CREATED", "PROMOTED"]
    assert table[1].split()[:4] == ["mdl_a", "live", "0.6100", "0.9000"]
    assert table[2].split()[-1] == "-"  # never promoted
    assert run(cli, "risk", "models", "promote", "mdl_b") == "mdl_b: live\n"
    assert run(cli, "risk", "models", "retire", "mdl_b") == "mdl_b: retired\n"
    listed = json.loads(run(cli, "risk", "models", "list", "--json"))
    assert [m["status"] for m in listed] == ["retired", "retired"]


def test_the_cli_refuses_bad_input_with_a_code(cli: CliRunner, tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00 not a model")
    out = run(cli, "risk", "models", "register", str(junk), code=2)
    assert "invalid_model_artefact" in out
    out = run(cli, "risk", "models", "register", str(tmp_path / "missing.json"), code=2)
    assert "invalid_request" in out
    assert "not_found" in run(cli, "risk", "models", "promote", "mdl_nope", code=2)
    out = run(cli, "risk", "models", "list", "--tenant", "nobody", code=2)
    assert "no tenant is named" in out
    first = tmp_path / "first.json"
    first.write_bytes(artefact("mdl_x"))
    run(cli, "risk", "models", "register", str(first))
    other = tmp_path / "other.json"
    other.write_bytes(artefact("mdl_x", ap=0.1))
    assert "model_version_exists" in run(cli, "risk", "models", "register", str(other), code=2)
    run(cli, "risk", "models", "promote", "mdl_x")
    assert "invalid_model_transition" in run(cli, "risk", "models", "shadow", "mdl_x", code=2)
    assert json.loads(run(cli, "risk", "models", "list", "--json"))[0]["status"] == "live"


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[Api]:
    with running(db_url, keyring_path=str(tmp_path / "keyring.json"), **FAST) as api:
        yield api


def test_the_http_routes_read_promote_and_shadow_within_the_tenant(api: Api) -> None:
    alpha, beta = seed_tenant(api, "alpha"), seed_tenant(api, "beta")
    tenancy = api.app.state.tenancy
    alpha_id, beta_id = tenancy.ensure_tenant("alpha").id, tenancy.ensure_tenant("beta").id
    registry = RiskModelRegistry(api.app.state.engine, describe)
    for version in ("mdl_1", "mdl_2"):
        registry.register(alpha_id, artefact(version), actor="cli")
    registry.register(beta_id, artefact("mdl_beta"), actor="cli")
    reader = tenancy.create_api_key("alpha", ["risk:read"])[1]

    listed = api.ok("GET", "/v1/risk/models", key=reader)
    assert [m["version"] for m in listed["data"]] == ["mdl_1", "mdl_2"]
    assert listed["has_more"] is False
    page = api.ok("GET", "/v1/risk/models", key=reader, params={"limit": 1})
    assert (page["has_more"], page["data"][0]["version"]) == (True, "mdl_1")
    got = api.ok("GET", "/v1/risk/models/mdl_2", key=reader)
    assert (got["object"], got["status"], got["metrics"]["roc_auc"]) == (
        "risk_model", "registered", 0.9,
    )  # fmt: skip
    # risk:read does not promote; admin does (a key passes on its scope).
    refused = api.post("/v1/risk/models/mdl_1/promote", key=reader)
    assert (refused.status_code, problem_code(refused)) == (403, "insufficient_scope")
    live = api.ok("POST", "/v1/risk/models/mdl_1/promote", key=alpha.admin)
    assert (live["status"], live["promoted_at"] is not None) == ("live", True)
    assert api.ok("POST", "/v1/risk/models/mdl_2/shadow", key=alpha.admin)["status"] == "shadow"
    wrong = api.post("/v1/risk/models/mdl_1/shadow", key=alpha.admin)
    assert (wrong.status_code, problem_code(wrong)) == (409, "invalid_model_transition")
    # Another tenant's model answers as one that does not exist.
    for method, path in (
        ("GET", "/v1/risk/models/mdl_beta"),
        ("POST", "/v1/risk/models/mdl_beta/promote"),
        ("POST", "/v1/risk/models/mdl_beta/shadow"),
    ):
        response = api.request(method, path, key=alpha.admin)
        assert (response.status_code, problem_code(response)) == (404, "not_found")
    assert [m["version"] for m in api.ok("GET", "/v1/risk/models", key=beta.admin)["data"]] == [
        "mdl_beta"
    ]
    assert registry.get(beta_id, "mdl_beta").status.value == "registered"
    # The changes are the tenant's events, naming the actor's key in the audit log.
    events = api.ok("GET", "/v1/events", key=alpha.admin)["data"]
    assert {"risk.model_promoted", "risk.model_shadowed"} <= {e["type"] for e in events}
    leaves = api.app.state.audit.leaves(alpha_id, 0, 1_000)[0]
    promoted = [x["content"] for x in leaves if x["content"]["type"] == "risk.model_promoted"]
    assert promoted[0]["actor"].startswith("api_key:")


def test_a_user_steps_up_before_promoting(api: Api) -> None:
    alpha = seed_tenant(api, "alpha")
    tenant_id = api.app.state.tenancy.ensure_tenant("alpha").id
    RiskModelRegistry(api.app.state.engine, describe).register(
        tenant_id, artefact("mdl_1"), actor="cli"
    )
    password = secrets.token_hex(12)
    users = api.app.state.users
    users.create_user(tenant_id, "boss@alpha.example", "admin", password, actor="test")
    session = users.sign_in(tenant_id, "boss@alpha.example", password, None).token
    assert api.ok("GET", "/v1/risk/models/mdl_1", key=session)["status"] == "registered"
    for action in ("promote", "shadow"):
        refused = api.post(f"/v1/risk/models/mdl_1/{action}", key=session)
        assert (refused.status_code, problem_code(refused)) == (403, "step_up_required")
    assert api.ok("GET", "/v1/risk/models/mdl_1", key=alpha.admin)["status"] == "registered"


def test_the_python_client_reads_and_promotes(api: Api) -> None:
    alpha = seed_tenant(api, "alpha")
    tenant_id = api.app.state.tenancy.ensure_tenant("alpha").id
    registry = RiskModelRegistry(api.app.state.engine, describe)
    for version in ("mdl_1", "mdl_2", "mdl_3"):
        registry.register(tenant_id, artefact(version), actor="cli")
    transport = api.client._transport  # the app, in process (an async transport)

    async def use_the_client() -> None:
        async with AsyncClient("http://testserver", alpha.admin, transport=transport) as sr:
            seen = [m.version async for m in sr.iter_risk_models(limit=2)]
            assert seen == ["mdl_1", "mdl_2", "mdl_3"]
            assert (await sr.promote_risk_model("mdl_2")).status == "live"
            assert (await sr.shadow_risk_model("mdl_3")).status == "shadow"
            assert (await sr.get_risk_model("mdl_2")).promoted_at is not None
            with pytest.raises(NotFoundError):
                await sr.get_risk_model("mdl_404")

    api.run(use_the_client())
    assert callable(Client.promote_risk_model)
