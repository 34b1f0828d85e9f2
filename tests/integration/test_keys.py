"""Key operations end to end: the `strongroom keys` commands, their audit leaves, the recovery
export restored into a fresh deployment, the refusal to make fresh keys over existing data, the
rewrap job, and the server's own secrets sealed (no clear secret left in the database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from strongroom import runtime
from strongroom.audit.service import AuditLog
from strongroom.cli import app
from strongroom.db.engine import create_engine
from strongroom.db.uow import UnitOfWork
from strongroom.events.service import EventService
from strongroom.security.envelope import Envelope, SubjectKind
from strongroom.security.errors import DataErased
from strongroom.security.keyops import KEYS_LOG_ID, KeyService
from strongroom.security.keys import KeysUnavailable, open_keys
from strongroom.security.kms import new_master_secret
from strongroom.security.sealing import PREFIX
from strongroom.settings import load_settings

RECOVERY = "correct horse battery staple"


def run(*args: str, env: dict[str, str], code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, (args, result.output)
    return result.stdout if code == 0 else result.output  # progress lines go to stderr


def _deployment(tmp_path: Path, name: str, db_url: str | None = None) -> dict[str, str]:
    """The environment of a deployment: its database, keyring file and master key."""
    home = tmp_path / name
    home.mkdir()
    return {
        "STRONGROOM_DATABASE_URL": db_url or f"sqlite:///{home / 'strongroom.db'}",
        "STRONGROOM_KEYRING_PATH": str(home / "keyring.json"),
        "STRONGROOM_MASTER_KEY": new_master_secret(),
    }


def _seal_one(env: dict[str, str], subject: str, value: bytes) -> bytes:
    settings = load_settings(**{k.removeprefix("STRONGROOM_").lower(): v for k, v in env.items()})
    engine = create_engine(settings.database_url, sqlite_cache_mib=16)
    try:
        kms, _ = open_keys(settings, engine)
        with UnitOfWork(engine) as uow:
            key = Envelope(kms).new_subject(uow, "ten_a", subject, SubjectKind.CUSTOMER)
            uow.commit()
        return key.seal(f"customers/{subject}", "name", value)
    finally:
        engine.dispose()


def _open_one(env: dict[str, str], subject: str, sealed: bytes) -> bytes:
    settings = load_settings(**{k.removeprefix("STRONGROOM_").lower(): v for k, v in env.items()})
    engine = create_engine(settings.database_url, sqlite_cache_mib=16)
    try:
        kms, created = open_keys(settings, engine)
        assert not created
        with UnitOfWork(engine, write=False) as uow:
            key = Envelope(kms).subject(uow, "ten_a", subject)
        return key.open(f"customers/{subject}", "name", sealed)
    finally:
        engine.dispose()


def _key_leaves(db_url: str) -> list[tuple[str, dict[str, Any]]]:
    """The key operations' leaves, from the default tenant's log, in order."""
    engine = create_engine(db_url, sqlite_cache_mib=16)
    try:
        found, _ = AuditLog(engine).leaves(KEYS_LOG_ID, 0, 1000)
    finally:
        engine.dispose()
    return [
        (leaf["type"], leaf["content"]["data"])
        for leaf in found
        if leaf["type"].startswith("keys.")
    ]


def test_rotate_rewrap_disable_destroy_and_their_audit_leaves(tmp_path: Path) -> None:
    env = _deployment(tmp_path, "one")
    run("db", "upgrade", env=env)
    status = json.loads(run("keys", "status", env=env))  # the first use makes the keyring
    assert [(v["version"], v["state"], v["wraps"]) for v in status["versions"]] == [
        (1, "active", 0)
    ]
    sealed = _seal_one(env, "cus_1", b"Ada Lovelace")
    assert json.loads(run("keys", "status", env=env))["versions"][0]["wraps"] == 1
    assert json.loads(run("keys", "rotate", env=env)) == {"active_version": 2}
    assert "key_in_use" in run("keys", "destroy", "1", env=env, code=2)  # still wraps cus_1
    assert json.loads(run("keys", "rewrap", env=env))["moved"] == 1
    assert json.loads(run("keys", "disable", "1", env=env))["state"] == "disabled"
    assert json.loads(run("keys", "enable", "1", env=env))["state"] == "retired"
    assert json.loads(run("keys", "destroy", "1", env=env))["state"] == "destroyed"
    assert "invalid_key_state" in run("keys", "disable", "2", env=env, code=2)  # active
    assert _open_one(env, "cus_1", sealed) == b"Ada Lovelace"
    found = _key_leaves(env["STRONGROOM_DATABASE_URL"])
    assert [t for t, _ in found] == [
        "keys.created",
        "keys.rotated",
        "keys.rewrapped",
        "keys.disabled",
        "keys.enabled",
        "keys.destroyed",
    ]
    assert found[2][1] == {"to_version": 2, "moved": 1, "from": {"1": 1}}
    keyring = json.loads(Path(env["STRONGROOM_KEYRING_PATH"]).read_text())
    for _, data in found:  # no key material in any leaf
        text = json.dumps(data)
        assert all(k["sealed"] is None or k["sealed"] not in text for k in keyring["keks"])
        assert env["STRONGROOM_MASTER_KEY"] not in text


def test_a_recovery_export_restores_into_a_fresh_deployment(tmp_path: Path) -> None:
    env = _deployment(tmp_path, "old")
    secret_file = tmp_path / "recovery.txt"
    secret_file.write_text(RECOVERY + "\n")
    run("db", "upgrade", env=env)
    run("keys", "status", env=env)
    sealed = _seal_one(env, "cus_1", b"Grace Hopper")
    run("keys", "rotate", env=env)  # two versions, both needed: cus_1 is still under 1
    export = tmp_path / "keys.export"
    run("keys", "export", "--recovery-secret-file", str(secret_file), "--out", str(export), env=env)
    assert b"Grace" not in export.read_bytes()
    # The master secret and the keyring are lost: a new master key, the same database.
    new = _deployment(tmp_path, "new", env["STRONGROOM_DATABASE_URL"])
    out = run("keys", "status", env=new, code=2)
    assert "keys restore" in out  # it refuses to make a new keyring over the data
    assert not Path(new["STRONGROOM_KEYRING_PATH"]).exists()
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the recovery secret at all")
    args = ["keys", "restore", "--in", str(export)]
    assert "recovery_failed" in run(*args, "--recovery-secret-file", str(wrong), env=new, code=2)
    restored = json.loads(run(*args, "--recovery-secret-file", str(secret_file), env=new))
    assert [v["state"] for v in restored["versions"]] == ["retired", "active"]
    assert _open_one(new, "cus_1", sealed) == b"Grace Hopper"
    assert "recovery_failed" in run(
        *args, "--recovery-secret-file", str(secret_file), env=new, code=2
    )
    # The old master key does not open the restored keyring.
    old_master = {**new, "STRONGROOM_MASTER_KEY": env["STRONGROOM_MASTER_KEY"]}
    assert "keys restore" in run("keys", "status", env=old_master, code=2)
    kinds = [t for t, _ in _key_leaves(env["STRONGROOM_DATABASE_URL"])]
    assert kinds == ["keys.created", "keys.rotated", "keys.exported", "keys.restored"]


def test_no_fresh_keys_over_existing_data(db_engine: Engine, tmp_path: Path) -> None:
    env = _deployment(tmp_path, "d", str(db_engine.url.render_as_string(hide_password=False)))
    settings = load_settings(**{k.removeprefix("STRONGROOM_").lower(): v for k, v in env.items()})
    _seal_one(env, "cus_1", b"x")
    Path(env["STRONGROOM_KEYRING_PATH"]).unlink()
    with pytest.raises(KeysUnavailable, match="strongroom keys restore"):
        open_keys(settings, db_engine)
    assert not Path(env["STRONGROOM_KEYRING_PATH"]).exists()
    with pytest.raises(KeysUnavailable, match="strongroom keys restore"):
        runtime.create_app(settings)


def test_the_rewrap_job_moves_every_key_after_a_rotation(db_engine: Engine, tmp_path: Path) -> None:
    env = _deployment(tmp_path, "d", str(db_engine.url.render_as_string(hide_password=False)))
    settings = load_settings(**{k.removeprefix("STRONGROOM_").lower(): v for k, v in env.items()})
    kms, _ = open_keys(settings, db_engine)
    keys = KeyService(db_engine, kms, AuditLog(db_engine))
    sealed = {n: _seal_one(env, f"cus_{n}", f"n{n}".encode()) for n in range(3)}
    job = runtime.rewrap_job(keys)
    job(lambda: True)
    assert keys.pending_rewrap() == 0  # nothing to do: nothing done
    keys.rotate("test")
    assert keys.pending_rewrap() == 3
    job(lambda: True)
    assert keys.pending_rewrap() == 0
    keys.disable(1, "test")
    for n, value in sealed.items():
        assert _open_one(env, f"cus_{n}", value) == f"n{n}".encode()
    kinds = [leaf["type"] for leaf in AuditLog(db_engine).leaves(KEYS_LOG_ID, 0, 100)[0]]
    assert kinds == ["keys.rotated", "keys.rewrapped", "keys.disabled"]


def test_no_clear_secret_remains_after_start(db_engine: Engine, tmp_path: Path) -> None:
    """Secrets written in clear (as before this release: no sealer) are sealed at start, and
    still work: the webhook secret reads back the same, the audit key still signs."""
    events = EventService(db_engine, allow_private_targets=True)
    endpoint = events.create_endpoint("ten_default", "http://127.0.0.1:9/hook")
    audit = AuditLog(db_engine)
    audit.record("ten_default", "test.thing", "test", {"n": 1})
    assert audit.publish()
    with UnitOfWork(db_engine, write=False) as uow:
        cur = uow.cursor()
        assert cur.execute("SELECT secret FROM webhook_endpoints").fetchone()[0] == endpoint.secret
        assert cur.execute("SELECT signer_key FROM audit_keys").fetchone()[0].startswith("PRIVATE")
    env = _deployment(tmp_path, "d", str(db_engine.url.render_as_string(hide_password=False)))
    settings = load_settings(
        **{k.removeprefix("STRONGROOM_").lower(): v for k, v in env.items()},
        webhook_allow_private_targets=True,
    )
    app_ = runtime.create_app(settings)
    try:
        with UnitOfWork(db_engine, write=False) as uow:
            cur = uow.cursor()
            stored = [r[0] for r in cur.execute("SELECT secret FROM webhook_endpoints")]
            signers = [r[0] for r in cur.execute("SELECT signer_key FROM audit_keys")]
        assert stored
        assert all(s.startswith(PREFIX) for s in stored)
        assert signers
        assert all(s.startswith(PREFIX) for s in signers)
        assert endpoint.secret not in str(stored)
        served: EventService = app_.state.events
        assert served.get_endpoint(endpoint.id).secret == endpoint.secret
        served_audit: AuditLog = app_.state.audit
        served_audit.record("ten_default", "test.thing", "test", {"n": 2})
        assert served_audit.publish()  # signs with the sealed key
        new = served.create_endpoint("ten_default", "http://127.0.0.1:9/other")
        with UnitOfWork(db_engine, write=False) as uow:
            row = uow.cursor().execute(
                "SELECT secret FROM webhook_endpoints WHERE id = ?".replace("?", f"'{new.id}'")
            )
            assert row.fetchone()[0].startswith(PREFIX)
        served.delete_endpoint(new.id)  # its data key is shredded with it
        with UnitOfWork(db_engine, write=False) as uow:
            row = uow.cursor().execute(
                "SELECT wrapped FROM subject_keys WHERE subject_id = ?".replace("?", f"'{new.id}'")
            )
            assert row.fetchone()[0] is None
    finally:
        app_.state.engine.dispose()


def test_pkcs11_settings_open_the_token_and_refuse_an_empty_one_over_data(
    db_engine: Engine,
) -> None:
    import pkcs11

    from tests.support import softhsm

    token = softhsm.token_or_skip()
    settings = load_settings(
        kms="pkcs11",
        pkcs11_module=token.module,
        pkcs11_token_label=token.label,
        pkcs11_pin=token.pin,
    )
    kms, created = open_keys(settings, db_engine)
    assert created
    assert kms.name == "pkcs11"
    with UnitOfWork(db_engine) as uow:
        key = Envelope(kms).new_subject(uow, "ten_a", "cus_1", SubjectKind.CUSTOMER)
        uow.commit()
    sealed = key.seal("customers/cus_1", "name", b"Hedy Lamarr")
    again, created = open_keys(settings, db_engine)
    assert not created
    with UnitOfWork(db_engine, write=False) as uow:
        opened = Envelope(again).subject(uow, "ten_a", "cus_1")
    assert opened.open("customers/cus_1", "name", sealed) == b"Hedy Lamarr"
    found = pkcs11.lib(token.module).get_token(token_label=token.label)
    with found.open(rw=True) as session:  # logged in already, by the key manager
        (kek,) = session.get_objects({pkcs11.Attribute.LABEL: "strongroom-kek-1"})
        assert kek[pkcs11.Attribute.SENSITIVE]
        assert not kek[pkcs11.Attribute.EXTRACTABLE]
    softhsm.token_or_skip()  # the token emptied: the keys are lost
    with pytest.raises(KeysUnavailable, match="strongroom keys restore"):
        open_keys(settings, db_engine)
    wrong = settings.model_copy(update={"pkcs11_pin": SecretStr("9999")})
    with pytest.raises(KeysUnavailable, match="PIN"):
        open_keys(wrong, None)


def test_a_sealed_secret_opens_only_for_its_owner(db_engine: Engine, tmp_path: Path) -> None:
    from strongroom.security import aead
    from strongroom.security.kms import LocalKeyring, master_key_from_secret
    from strongroom.security.sealing import SealedSecrets

    master = master_key_from_secret(new_master_secret())
    sealer = SealedSecrets(Envelope(LocalKeyring.create(tmp_path / "k.json", master)))
    kind = SubjectKind.WEBHOOK_ENDPOINT
    with UnitOfWork(db_engine) as uow:
        first = sealer.seal(uow, "ten_a", "we_1", kind, "whsec_first")
        sealer.seal(uow, "ten_a", "we_2", kind, "whsec_second")
        uow.commit()
    with UnitOfWork(db_engine) as uow:
        assert sealer.open(uow, "ten_a", "we_1", first) == "whsec_first"
        with pytest.raises(aead.DecryptionFailed):
            sealer.open(uow, "ten_a", "we_2", first)  # moved to another endpoint's row
        sealer.forget(uow, "ten_a", "we_1")
        uow.commit()
    with UnitOfWork(db_engine, write=False) as uow, pytest.raises(DataErased):
        sealer.open(uow, "ten_a", "we_1", first)  # shredded with its endpoint
