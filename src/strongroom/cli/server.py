"""`strongroom serve`, `strongroom worker` and `strongroom api-keys`."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from strongroom import __version__
from strongroom.cli.common import (
    CLI_ACTOR,
    DbOption,
    open_engine,
    print_json,
    say_new_tenant,
    settings_for,
    tenancy_service,
)
from strongroom.http.server import uvicorn_options
from strongroom.logs import configure_logging, logging_config
from strongroom.metrics import MULTIPROC_DIR_ENV, mark_process_dead
from strongroom.security.rbac import Role, role_scopes
from strongroom.tenancy.model import ApiKey, Scope
from strongroom.tenancy.service import TenancyService

if TYPE_CHECKING:
    import uvicorn

DEV_KEY_FILE: Final = ".strongroom/dev-key"  # relative to the directory serve runs in
APP_FACTORY: Final = "strongroom.runtime:create_app_from_env"
METRICS_DIR_PREFIX: Final = "strongroom-metrics-"  # then the supervisor's pid and a suffix

log = logging.getLogger("strongroom.serve")

keys = typer.Typer(no_args_is_help=True, help="API keys (Authorization: Bearer sk_...).")


def serve(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="the TCP port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="worker processes (uvicorn), 1 to 64")
    ] = 1,
    dev_key: Annotated[
        bool,
        typer.Option(
            "--dev-key",
            help=f"print an admin API key of tenant 'default': the one kept in {DEV_KEY_FILE} "
            "while it is valid on this database, else a new one (kept there, mode 0600)",
        ),
    ] = False,
    risk: Annotated[
        bool,
        typer.Option(
            "--risk",
            help="score payments for fraud (STRONGROOM_RISK=true; docs/risk.md): needs the "
            "risk extra, which `make run` installs",
        ),
    ] = False,
    database_url: DbOption = None,
) -> None:
    """Serve the HTTP API (uvicorn). The schema must be current: `strongroom db upgrade`.
    Logs are JSON lines on stderr; with several workers, /metrics counts all of them."""
    import uvicorn

    if database_url:
        os.environ["STRONGROOM_DATABASE_URL"] = database_url
    if risk:  # read by every worker's settings
        os.environ["STRONGROOM_RISK"] = "true"
    # Checked here too so that the message comes before any worker starts.
    engine, settings = open_engine(None, schema="current")
    try:
        # A missing or malformed STRONGROOM_KYC_TIERS: one line, now, before any key is made.
        from strongroom.compliance.kyc.service import load_tiers

        load_tiers(settings.kyc_tiers)
        if settings.risk:  # a bad rules file or model, or a missing extra: one line, now
            from strongroom.runtime import check_risk

            check_risk(settings, engine)
    finally:
        engine.dispose()
    # The keys too: made here on a fresh deployment (the leaf keys.created), once, before
    # the workers open them; never over existing data (one line naming the restore command).
    from strongroom.cli.keys import key_service

    with key_service(None):
        pass
    configure_logging(settings.log_level)
    if dev_key:
        key, secret, kept = _development_key(tenancy_service(None), Path(DEV_KEY_FILE))
        how = f"kept in {DEV_KEY_FILE}" if kept else f"new, kept in {DEV_KEY_FILE}"
        # For the person at the terminal, to paste: deliberately not a log line.
        typer.echo(
            f"development API key ({key.id}, tenant 'default', scope admin; {how}):", err=True
        )
        typer.echo(f"  export SR_KEY={secret}", err=True)
    log.info("strongroom %s on http://%s:%d (%d worker(s))", __version__, host, port, workers)
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "access_log": False,  # the app logs each request, with its request_id
        # uvicorn's lines as JSON too; each worker writes its lines together (logs.py).
        "log_config": logging_config(settings.log_level, batched=True),
        # The app believes X-Forwarded-* from STRONGROOM_TRUSTED_PROXIES only (runtime.py);
        # uvicorn's own handling would trust 127.0.0.1 whatever the settings say.
        "proxy_headers": False,
        **uvicorn_options(),  # no server banner, the request head capped
    }
    if workers == 1:
        uvicorn.run(APP_FACTORY, **options)
        return
    with metrics_dir() as path:
        # Read by prometheus_client when each worker imports it: set before they start.
        os.environ[MULTIPROC_DIR_ENV] = path
        _run_workers(uvicorn.Config(APP_FACTORY, **options), path)


@contextlib.contextmanager
def metrics_dir() -> Iterator[str]:
    """A private directory (mode 0700) for the workers' metrics, removed at exit; the ones a
    supervisor killed before its exit left behind are removed first."""
    tmp = Path(tempfile.gettempdir())
    for stale in tmp.glob(f"{METRICS_DIR_PREFIX}*"):
        pid = stale.name.removeprefix(METRICS_DIR_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)) and stale.stat().st_uid == os.getuid():
            shutil.rmtree(stale, ignore_errors=True)
    path = tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _run_workers(config: uvicorn.Config, path: str) -> None:
    """uvicorn's supervisor, which replaces a worker that dies, and here also marks each
    worker it replaces as dead in the metrics directory: its live gauges go, its counters stay
    (they were served). At exit the whole directory goes."""
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def keep_subprocess_alive(self) -> None:
            before = self.pids()
            super().keep_subprocess_alive()
            self.mark_gone(before)

        def restart_all(self) -> None:  # SIGHUP
            before = self.pids()
            super().restart_all()
            self.mark_gone(before)

        def pids(self) -> set[int]:
            return {p.pid for p in self.processes if p.pid is not None}

        def mark_gone(self, before: set[int]) -> None:
            for pid in before - self.pids():
                mark_process_dead(pid, path)

    sock = config.bind_socket()
    try:
        Supervisor(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _development_key(tenancy: TenancyService, path: Path) -> tuple[ApiKey, str, bool]:
    """The development key kept in `path` while this database still honours it (same
    database, not revoked); otherwise a new admin key of tenant 'default', written there with
    mode 0600. Returns the key, its secret and whether it was the kept one."""
    with contextlib.suppress(OSError, UnicodeError):
        secret = path.read_text(encoding="ascii").strip()
        key = tenancy.authenticate(secret)
        if key is not None and Scope.ADMIN in key.scopes:
            return key, secret, True
    key, secret = tenancy.create_api_key("default", ["admin"], actor=CLI_ACTOR)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secret + "\n")
    return key, secret, False


def worker(database_url: DbOption = None) -> None:
    """Deliver webhooks (the dispatcher) until SIGTERM or Ctrl-C; for a deployment that runs
    `serve` with STRONGROOM_DISPATCHER=false. Several workers may run at once."""
    from strongroom.events.dispatcher import main as dispatcher_main

    settings = settings_for(database_url)
    argv = ["--database-url", settings.database_url]
    if settings.webhook_allow_private_targets:
        argv.append("--allow-private-targets")
    dispatcher_main(argv)


@keys.command("create")
def api_keys_create(
    tenant: Annotated[
        str | None,
        typer.Option(help="the tenant's name; created if new (none for an operator's key)"),
    ] = None,
    scope: Annotated[
        list[Scope] | None, typer.Option(help="what the key may do; repeat for several")
    ] = None,
    role: Annotated[
        Role | None,
        typer.Option(help="give the key the role's scopes (docs/permissions.md)"),
    ] = None,
    transfer_ceiling: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="minor units one transfer of the key may move past "
            "STRONGROOM_STEP_UP_TRANSFER_AMOUNT (a machine cannot step up)",
        ),
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Create an API key and print its secret, once: only a keyed hash is stored. Give
    --scope, or --role for a role's scopes (with --scope: both); an operator's key
    (--role operator) belongs to the deployment's system tenant: give no --tenant."""
    scopes = {s.value for s in scope or ()}
    if role is not None:
        scopes |= {s.value for s in role_scopes(role)}
    tenancy = tenancy_service(database_url)
    is_new = tenant is not None and tenancy.tenant_by_name(tenant) is None
    key, secret = tenancy.create_api_key(
        tenant,
        sorted(scopes),
        actor=CLI_ACTOR,
        role=None if role is None else role.value,
        transfer_ceiling=transfer_ceiling,
    )
    if is_new:
        assert tenant is not None
        say_new_tenant(tenant, key.tenant_id)
    out: dict[str, object] = {
        "id": key.id,
        "tenant_id": key.tenant_id,
        "scopes": sorted(s.value for s in key.scopes),
        "role": key.role,
        "secret": secret,
    }
    if transfer_ceiling is not None:
        out["transfer_ceiling"] = transfer_ceiling
    print_json(out)


@keys.command("revoke")
def api_keys_revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (key_...)")],
    database_url: DbOption = None,
) -> None:
    """Revoke an API key (servers honour it within API_KEY_CACHE_TTL_S seconds)."""
    tenancy_service(database_url).revoke_api_key(key_id, actor=CLI_ACTOR)
    typer.echo(f"revoked {key_id}")
