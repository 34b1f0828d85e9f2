"""`strongroom openbanking clients`: register, list, show, rotate-keys, disable and enable a
TPP on the database directly; every change a leaf of the system tenant's log by `cli`; a
refusal prints its code, exits 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from strongroom.audit.service import AuditLog
from strongroom.cli import app
from strongroom.db.engine import create_engine
from strongroom.tenancy.service import TenancyService
from tests.support.jwks import ec_key, jwks, okp_key, private_ec_key

CB = "https://tpp.example.com/cb"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", url)
    monkeypatch.setenv("STRONGROOM_KEYRING_PATH", str(tmp_path / "keyring.json"))
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    return url


def run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["openbanking", "clients", *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if code == 0 else result.output


def _file(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)
    return str(path)


def _leaves(url: str, client_id: str) -> list[tuple[str, str]]:
    engine = create_engine(url, sqlite_cache_mib=16)
    try:
        log_id = TenancyService(engine).system_tenant().id
        found = AuditLog(engine).records_for(log_id, [client_id]).get(client_id, [])
        return [(leaf["type"], leaf["actor"]) for leaf in found]
    finally:
        engine.dispose()


def test_register_list_show_rotate_disable_enable(url: str, tmp_path: Path) -> None:
    keys = jwks(ec_key("a"))
    registered = run(
        "register",
        "--name", "Acme TPP",
        "--redirect-uri", CB,
        "--redirect-uri", "http://127.0.0.1:8080/cb",
        "--jwks", _file(tmp_path, "keys.json", keys),
        "--scope", "accounts",
        "--scope", "fundsconfirmations",
        "--software-id", "sw-1",
    )  # fmt: skip
    client_id = registered["id"]
    assert client_id.startswith("tpp_")
    assert registered["redirect_uris"] == [CB, "http://127.0.0.1:8080/cb"]
    assert registered["scopes"] == ["accounts", "fundsconfirmations"]
    assert registered["jwks"] == keys
    assert registered["created_by"] == "cli"
    assert run("show", client_id) == registered
    other = run("register", "--name", "B", "--redirect-uri", CB,
                "--jwks", _file(tmp_path, "b.json", jwks()))  # fmt: skip
    assert other["scopes"] == ["accounts", "fundsconfirmations", "payments"]
    assert [c["id"] for c in run("list")] == sorted([client_id, other["id"]])

    new_keys = jwks(ec_key("a"), okp_key("b"))
    rotated = run("rotate-keys", client_id, "--jwks", _file(tmp_path, "new.json", new_keys))
    assert rotated["jwks"] == new_keys
    assert run("disable", client_id)["status"] == "disabled"
    assert run("enable", client_id)["status"] == "active"
    assert _leaves(url, client_id) == [
        ("openbanking_client.created", "cli"),
        ("openbanking_client.keys_rotated", "cli"),
        ("openbanking_client.disabled", "cli"),
        ("openbanking_client.enabled", "cli"),
    ]


def test_refusals_print_their_code_exit_2_and_write_nothing(url: str, tmp_path: Path) -> None:
    leaked = private_ec_key()
    cases = [
        (["--jwks", _file(tmp_path, "private.json", jwks(leaked))], "jwks_private_key"),
        (["--jwks", _file(tmp_path, "bad.json", "{not json")], "invalid_jwks"),
        (["--jwks", str(tmp_path / "absent.json")], "invalid_jwks"),
        (["--jwks", _file(tmp_path, "big.json", " " * (256 * 1024 + 1))], "invalid_jwks"),
        (["--jwks", _file(tmp_path, "ok.json", jwks()), "--software-id", "a b"],
         "invalid_software_id"),
    ]  # fmt: skip
    for extra, code in cases:
        output = run("register", "--name", "Acme", "--redirect-uri", CB, *extra, code=2)
        assert f"error: {code}:" in output
        assert leaked["d"] not in output
    output = run("register", "--name", "Acme", "--redirect-uri", "http://tpp.example.com/cb",
                 "--jwks", _file(tmp_path, "ok2.json", jwks()), code=2)  # fmt: skip
    assert "error: invalid_redirect_uri:" in output
    # An unknown scope is a usage error of the command line itself.
    output = run("register", "--name", "Acme", "--redirect-uri", CB, "--scope", "cards",
                 "--jwks", _file(tmp_path, "ok3.json", jwks()), code=2)  # fmt: skip
    assert run("list") == []
    assert "error: not_found:" in run("show", "tpp_missing", code=2)
    assert "error: not_found:" in run("disable", "tpp_missing", code=2)
    assert "error: not_found:" in run(
        "rotate-keys", "tpp_missing", "--jwks", _file(tmp_path, "r.json", jwks()), code=2
    )
