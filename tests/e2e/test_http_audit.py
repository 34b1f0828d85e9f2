"""The audit log over HTTP: checkpoints, proofs, leaves, receipts, and the offline verifiers
of the CLI (`audit verify-receipt`, `audit export` + `verify-export`) on what it serves."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from strongroom.audit import note as notes
from strongroom.audit.checkpoint import parse as parse_checkpoint
from strongroom.audit.leaf import parse
from strongroom.audit.merkle import leaf_hash, verify_consistency, verify_inclusion
from strongroom.cli import app as cli_app
from strongroom.db.tables import audit_checkpoints
from tests.e2e.http_support import Api, Tenant, problem_code, running, seed_tenant


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with running(db_url) as app:
        yield app


@pytest.fixture
def acme(api: Api) -> Tenant:
    return seed_tenant(api, "acme")


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _cli(*args: str, url: str | None = None) -> Result:
    env = {"STRONGROOM_DATABASE_URL": url} if url is not None else None
    return CliRunner().invoke(cli_app, list(args), env=env)


def _move(api: Api, t: Tenant, amount: int) -> str:
    body = {
        "ledger_id": t.ledger,
        "debit_account_id": t.bank,
        "credit_account_id": t.alice,
        "amount": amount,
    }
    transfer_id = api.ok("POST", "/v1/transfers", 201, key=t.write, json=body)["id"]
    assert isinstance(transfer_id, str)
    return transfer_id


def test_checkpoints_proofs_and_leaves(api: Api, acme: Tenant) -> None:
    response = api.get("/v1/audit/checkpoint", key=acme.read)
    assert (response.status_code, problem_code(response)) == (404, "not_found")
    # The seed's three API keys, ledger, two accounts, deposit and hold are leaves 0 to 7;
    # publish, grow, publish.
    first = api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)
    assert first["tree_size"] == 8
    moved = [_move(api, acme, 5 + i) for i in range(5)]
    second = api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)
    assert second["tree_size"] == 13
    assert api.ok("GET", "/v1/audit/checkpoint", key=acme.read) == second
    assert api.ok("GET", "/v1/audit/checkpoints/8", key=acme.read) == first

    [key] = api.ok("GET", "/v1/audit/keys", key=acme.read)["data"]
    verifier = notes.Verifier(key["verifier_key"])
    cp8 = parse_checkpoint(notes.open(first["note"], [verifier]).text)
    cp13 = parse_checkpoint(notes.open(second["note"], [verifier]).text)
    assert cp13.root_hash == _b64(second["root_hash"])

    leaves = api.ok("GET", "/v1/audit/leaves", key=acme.read, params={"limit": 4})
    assert (len(leaves["data"]), leaves["has_more"], leaves["tree_size"]) == (4, True, 13)
    rest = api.ok("GET", "/v1/audit/leaves", key=acme.read, params={"start": 4})
    assert [x["index"] for x in rest["data"]] == list(range(4, 13))
    assert rest["has_more"] is False
    datas = [_b64(x["leaf"]) for x in leaves["data"] + rest["data"]]
    assert [parse(d)["transfer"]["id"] for d in datas[8:]] == moved
    kinds = [x["content"]["type"] for x in leaves["data"] + rest["data"]][:6]
    assert kinds == [*["api_key.created"] * 3, "ledger.created", *["account.created"] * 2]
    assert leaves["data"][0]["content"]["data"]["scopes"] == ["admin"]  # no secret, no hint

    for index in range(13):
        proof = api.ok(
            "GET",
            "/v1/audit/proofs/inclusion",
            key=acme.read,
            params={"leaf_index": index, "tree_size": 13},
        )
        assert _b64(proof["leaf_hash"]) == leaf_hash(datas[index])
        hashes = [_b64(h) for h in proof["proof"]]
        verify_inclusion(leaf_hash(datas[index]), index, 13, hashes, cp13.root_hash)
    by_transfer = api.ok(
        "GET",
        "/v1/audit/proofs/inclusion",
        key=acme.read,
        params={"transfer_id": moved[2], "tree_size": 13},
    )
    assert by_transfer["leaf_index"] == 10
    consistency = api.ok(
        "GET", "/v1/audit/proofs/consistency", key=acme.read, params={"first": 8, "second": 13}
    )
    proof = [_b64(h) for h in consistency["proof"]]
    verify_consistency(8, 13, proof, cp8.root_hash, cp13.root_hash)

    for params in (
        {"leaf_index": 13, "tree_size": 13},
        {"leaf_index": 0, "tree_size": 14},
        {"tree_size": 13},
        {"leaf_index": 0, "transfer_id": moved[0], "tree_size": 13},
    ):
        response = api.get("/v1/audit/proofs/inclusion", key=acme.read, params=params)
        assert response.status_code == 400, params
    response = api.get(
        "/v1/audit/proofs/consistency", key=acme.read, params={"first": 13, "second": 8}
    )
    assert (response.status_code, response.json()["param"]) == (400, "first")
    response = api.get("/v1/audit/checkpoints/9", key=acme.read)
    assert (response.status_code, problem_code(response)) == (404, "not_found")
    response = api.post("/v1/audit/checkpoints", key=acme.write)
    assert (response.status_code, problem_code(response)) == (403, "insufficient_scope")
    for params, param in (
        ({"from": "soon", "to": "2030-01-01T00:00:00Z"}, "from"),
        ({"from": "2020-01-01T00:00:00Z", "to": "10000-01-01T00:00:00Z"}, "to"),
    ):
        response = api.get(f"/v1/accounts/{acme.alice}/statement", key=acme.read, params=params)
        assert (response.status_code, problem_code(response)) == (400, "invalid_timestamp")
        assert response.json()["param"] == param


def test_admin_actions_are_leaves(api: Api, acme: Tenant) -> None:
    before = api.ok("GET", "/v1/audit/leaves", key=acme.read)["tree_size"]
    url = "https://hooks.acme.example.com/x?token=hush"
    endpoint = api.ok("POST", "/v1/webhook_endpoints", 201, key=acme.admin, json={"url": url})
    api.ok(
        "POST", f"/v1/webhook_endpoints/{endpoint['id']}", key=acme.admin, json={"enabled": False}
    )
    api.ok("DELETE", f"/v1/webhook_endpoints/{endpoint['id']}", key=acme.admin)
    key, _secret = api.app.state.tenancy.create_api_key("acme", ["ledger:read"])
    api.app.state.tenancy.revoke_api_key(key.id)
    leaves = api.ok("GET", "/v1/audit/leaves", key=acme.read, params={"start": before})["data"]
    admin = api.app.state.tenancy.authenticate(acme.admin)
    by_admin = f"api_key:{admin.id}"  # who asked, by key id; never the secret
    assert [(x["content"]["type"], x["content"]["actor"]) for x in leaves] == [
        ("webhook_endpoint.created", by_admin),
        ("webhook_endpoint.disabled", by_admin),
        ("webhook_endpoint.deleted", by_admin),
        ("api_key.created", "tenancy"),
        ("api_key.revoked", "tenancy"),
    ]
    assert leaves[0]["content"]["data"] == {"endpoint_id": endpoint["id"], "enabled_events": None}
    raw = b"".join(_b64(x["leaf"]) for x in leaves)
    assert acme.admin.encode() not in raw
    assert b"hush" not in raw
    assert endpoint["secret"].encode() not in raw
    assert leaves[-1]["content"]["data"] == {"key_id": key.id}


def test_each_tenant_sees_only_its_own_log(api: Api, acme: Tenant) -> None:
    other = seed_tenant(api, "other")
    _move(api, other, 3)
    mine = api.ok("GET", "/v1/audit/leaves", key=acme.read)
    theirs = api.ok("GET", "/v1/audit/leaves", key=other.read)
    assert (mine["tree_size"], theirs["tree_size"]) == (8, 9)
    assert other.marker.encode() not in b"".join(_b64(x["leaf"]) for x in mine["data"])
    response = api.get(f"/v1/transfers/{other.posted}/receipt", key=acme.read)
    assert (response.status_code, problem_code(response)) == (404, "not_found")
    response = api.get(
        "/v1/audit/proofs/inclusion",
        key=acme.read,
        params={"transfer_id": other.posted, "tree_size": 2},
    )
    assert (response.status_code, problem_code(response)) == (404, "not_found")


def test_receipt_verifies_offline_and_a_forged_one_does_not(
    api: Api, acme: Tenant, tmp_path: Path
) -> None:
    transfer_id = _move(api, acme, 42)
    api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)  # a receipt needs a published one
    receipt = api.ok("GET", f"/v1/transfers/{transfer_id}/receipt", key=acme.read)
    assert receipt["object"] == "audit_receipt"
    [key] = api.ok("GET", "/v1/audit/keys", key=acme.read)["data"]
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(receipt))
    good = _cli("audit", "verify-receipt", str(path), "--public-key", key["verifier_key"])
    assert good.exit_code == 0, good.output
    assert "receipt: ok" in good.output
    assert '"amount": 42' in good.output

    leaf = _b64(receipt["leaves"][0]["leaf"])
    forged = {**receipt, "leaves": [{**receipt["leaves"][0], "leaf": ""}]}
    forged["leaves"][0]["leaf"] = base64.b64encode(leaf[:-1] + bytes([leaf[-1] ^ 1])).decode()
    path.write_text(json.dumps(forged))
    bad = _cli("audit", "verify-receipt", str(path), "--public-key", key["verifier_key"])
    assert bad.exit_code == 1
    assert "not in the checkpoint's tree" in bad.output
    # Another key (a log that is not this one) does not verify the genuine receipt either.
    path.write_text(json.dumps(receipt))
    stranger = notes.generate_signer("strongroom.localhost/audit").verifier_key
    wrong = _cli("audit", "verify-receipt", str(path), "--public-key", stranger)
    assert wrong.exit_code == 1
    assert "the checkpoint does not verify" in wrong.output


def test_export_verifies_offline(api: Api, acme: Tenant, tmp_path: Path, db_url: str) -> None:
    for i in range(3):
        _move(api, acme, i + 1)
    api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)
    _move(api, acme, 9)
    api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)
    out = tmp_path / "export"
    exported = _cli("audit", "export", str(out), url=db_url)
    assert exported.exit_code == 0, exported.output
    checked = _cli("audit", "verify-export", str(out))
    assert checked.exit_code == 0, checked.output
    # acme's 12 leaves and 2 checkpoints; and, when this test's server made the keyring (not
    # an existing one, as PostgreSQL's tests share), the default tenant's log with its
    # keys.created leaf (security/keyops.py) and the checkpoint `audit export` made of it.
    found = re.search(r"logs: (\d+)  leaves: (\d+)  checkpoints: (\d+)", checked.output)
    assert found is not None, checked.output
    logs, leaves, checkpoints = map(int, found.groups())
    assert logs - 1 == leaves - 12 == checkpoints - 2 in (0, 1), checked.output
    verified = _cli("audit", "verify", url=db_url)
    assert verified.exit_code == 0, verified.output
    # An exported entry changed after the fact is caught offline.
    bundle = next(p for p in out.glob("*/tile/entries/**/*") if p.is_file())
    assert bundle.is_file()
    raw = bundle.read_bytes()
    bundle.write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    tampered = _cli("audit", "verify-export", str(out))
    assert tampered.exit_code == 1
    assert "do not give its root" in tampered.output


def _checkpoints(api: Api) -> list[tuple[str, int]]:
    with api.app.state.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_checkpoints.c.log_id, audit_checkpoints.c.size).order_by(
                audit_checkpoints.c.log_id, audit_checkpoints.c.size
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def test_a_read_key_never_signs_a_checkpoint(api: Api, acme: Tenant) -> None:
    """Receipts and statements are proved against a published checkpoint: a ledger:read key
    asking for one the publisher has not made yet (serve's interval here is 10 s) gets 503
    `checkpoint_pending` with Retry-After, and nothing is written."""
    transfer_id = _move(api, acme, 42)
    before = _checkpoints(api)
    assert before == []  # nothing published yet
    response = api.get(f"/v1/transfers/{transfer_id}/receipt", key=acme.read)
    assert (response.status_code, problem_code(response)) == (503, "checkpoint_pending")
    assert 1 <= int(response.headers["retry-after"]) <= 10
    period = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
    url = f"/v1/accounts/{acme.alice}/statement"
    response = api.get(url, key=acme.read, params=period)
    assert (response.status_code, problem_code(response)) == (503, "checkpoint_pending")
    assert _checkpoints(api) == before
    # Once one is published (an admin's POST, or serve's publisher), the same reads answer.
    published = api.ok("POST", "/v1/audit/checkpoints", key=acme.admin)
    receipt = api.ok("GET", f"/v1/transfers/{transfer_id}/receipt", key=acme.read)
    assert receipt["checkpoint"] == published["note"]
    api.ok("GET", url, key=acme.read, params=period)
    assert len(_checkpoints(api)) == 1


def test_a_receipt_waits_for_the_publisher(db_url: str) -> None:
    """With checkpoints published often (configuration), a receipt asked for right after its
    transfer waits for the next one instead of signing its own."""
    with running(db_url, audit_checkpoint_interval_s=0.2) as api:
        acme = seed_tenant(api, "acme")
        transfer_id = _move(api, acme, 7)
        receipt = api.ok("GET", f"/v1/transfers/{transfer_id}/receipt", key=acme.read)
        [index] = [leaf["index"] for leaf in receipt["leaves"]]
        sizes = [size for log, size in _checkpoints(api) if log == acme_log(api, acme)]
        assert any(size > index for size in sizes)


def acme_log(api: Api, tenant: Tenant) -> str:
    key = api.app.state.tenancy.authenticate(tenant.read)
    assert key is not None
    return str(key.tenant_id)
