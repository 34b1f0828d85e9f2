"""`strongroom users create`: the password from a prompt (twice) or a file, never from the
command line; the output names the user's id and role, not the email; the user signs in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli import app
from strongroom.db.engine import create_engine
from strongroom.runtime import auth_config
from strongroom.security.auth.passwords import PasswordPolicy, Passwords
from strongroom.security.auth.service import UserService
from strongroom.security.keys import open_key_manager
from strongroom.settings import Settings
from strongroom.tenancy.service import TenancyService

PASSWORD = "a long enough passphrase"


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("STRONGROOM_DATABASE_URL", url)
    monkeypatch.setenv("STRONGROOM_PASSWORD_MEMORY_KIB", str(19 * 1024))
    monkeypatch.setenv("STRONGROOM_PASSWORD_TIME_COST", "2")
    monkeypatch.setenv("STRONGROOM_PASSWORD_PARALLELISM", "1")
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    return url


def _signs_in(url: str, email: str) -> bool:
    settings = Settings(database_url=url)
    engine = create_engine(url, sqlite_cache_mib=16)
    try:
        users = UserService(
            engine,
            Passwords(PasswordPolicy(19 * 1024, 2, 1)),
            auth_config(settings),
            kms=open_key_manager(settings),
        )
        tenant = TenancyService(engine).tenant_by_name("acme")
        assert tenant is not None
        return bool(users.sign_in(tenant.id, email, PASSWORD, None).token)
    finally:
        engine.dispose()


def test_users_create_prompts_twice_and_prints_no_email(url: str) -> None:
    result = CliRunner().invoke(
        app,
        ["users", "create", "--tenant", "acme", "--email", "Boss@Acme.example", "--role", "admin"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output[result.output.index("{") :])
    assert body["role"] == "admin"
    assert body["id"].startswith("usr_")
    assert "acme.example" not in result.output.lower()
    assert PASSWORD not in result.output
    assert _signs_in(url, "boss@acme.example")


def test_users_create_reads_a_password_file_and_refuses_a_short_one(
    url: str, tmp_path: Path
) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    args = ["users", "create", "--tenant", "acme", "--email", "ops@acme.example"]
    result = CliRunner().invoke(app, [*args, "--role", "support", "--password-file", str(secret)])
    assert result.exit_code == 0, result.output
    assert _signs_in(url, "ops@acme.example")
    again = CliRunner().invoke(app, [*args, "--role", "support", "--password-file", str(secret)])
    assert again.exit_code == 2
    assert "email_taken" in again.output
    secret.write_text("short\n")
    weak = CliRunner().invoke(
        app, ["users", "create", "--tenant", "acme", "--email", "x@acme.example", "--role",
              "auditor", "--password-file", str(secret)],
    )  # fmt: skip
    assert weak.exit_code == 2
    assert "weak_password" in weak.output
    bad_role = CliRunner().invoke(app, [*args, "--role", "root", "--password-file", str(secret)])
    assert bad_role.exit_code != 0


def test_users_create_invite_prints_an_invitation(url: str) -> None:
    args = ["users", "create", "--tenant", "acme", "--email", "new@acme.example"]
    result = CliRunner().invoke(app, [*args, "--role", "support", "--invite"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["invitation"].startswith("inv_")


def test_a_new_tenant_is_named_on_stderr(url: str, tmp_path: Path) -> None:
    """A tenant is taken by name and made when none has it: a misspelt name would make an
    empty tenant whose users never sign in where expected, so the command says so."""
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    args = ["--email", "ops@acme.example", "--role", "support", "--password-file", str(secret)]
    first = CliRunner().invoke(app, ["users", "create", "--tenant", "acme", *args])
    assert first.exit_code == 0, first.output
    tenant_id = json.loads(first.stdout)["tenant_id"]
    assert first.stderr == f"note: no tenant was named 'acme': created it ({tenant_id})\n"
    again = CliRunner().invoke(
        app, ["users", "create", "--tenant", "acme", *args[2:], "--email", "two@acme.example"]
    )
    assert again.exit_code == 0, again.output
    assert again.stderr == ""
    # api-keys create likewise; its stdout stays the JSON answer (the README pipes it).
    typo = CliRunner().invoke(app, ["api-keys", "create", "--tenant", "acme_", "--scope", "admin"])
    assert typo.exit_code == 0, typo.output
    made = json.loads(typo.stdout)
    assert made["tenant_id"] != tenant_id
    assert "no tenant was named 'acme_'" in typo.stderr
    known = CliRunner().invoke(app, ["api-keys", "create", "--tenant", "acme", "--scope", "admin"])
    assert known.exit_code == 0, known.output
    assert json.loads(known.stdout)["tenant_id"] == tenant_id
    assert known.stderr == ""


def test_users_list_prints_each_user_and_finds_one_by_email_without_printing_it(
    url: str, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    made = {}
    for email, role in (("boss@acme.example", "admin"), ("Officer@Acme.example", "auditor")):
        result = CliRunner().invoke(
            app,
            ["users", "create", "--tenant", "acme", "--email", email, "--role", role,
             "--password-file", str(secret)],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        made[role] = json.loads(result.output[result.output.index("{") :])["id"]
    listed = CliRunner().invoke(app, ["users", "list", "--tenant", "acme"])
    assert listed.exit_code == 0, listed.output
    lines = [json.loads(line) for line in listed.stdout.splitlines() if line.startswith("{")]
    assert [(u["id"], u["role"]) for u in lines] == sorted(
        [(made["admin"], "admin"), (made["auditor"], "auditor")]
    )
    assert "acme.example" not in listed.output.lower()
    one = CliRunner().invoke(
        app, ["users", "list", "--tenant", "acme", "--email", "officer@acme.EXAMPLE"]
    )
    assert one.exit_code == 0, one.output
    (found,) = [json.loads(line) for line in one.stdout.splitlines() if line.startswith("{")]
    assert found["id"] == made["auditor"]
    nobody = CliRunner().invoke(app, ["users", "list", "--tenant", "acme", "--email", "x@y.org"])
    assert nobody.exit_code == 0
    assert "{" not in nobody.stdout
    unknown = CliRunner().invoke(app, ["users", "list", "--tenant", "nope"])
    assert unknown.exit_code == 2
    assert "no tenant named 'nope'" in unknown.output
