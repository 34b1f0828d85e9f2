"""`strongroom risk models`: the model registry (risk/registry.py, docs/risk-models-registry.md).
Register a trained artefact, put it in shadow, promote it live, retire it, list them. Models
are per tenant: `--tenant NAME` (the default tenant without it). Each change is an audit leaf
and an event naming the actor `cli`; a running server serves a promotion within about a
second."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.common import (
    CLI_ACTOR,
    DbOption,
    build_ledger,
    open_engine,
    print_json,
    reporting_errors,
)
from strongroom.cli.risk import app as risk_app
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.events.service import EventService
from strongroom.ledger.service import DEFAULT_TENANT_ID
from strongroom.risk.registry import (
    ARTEFACT_BYTES_MAX,
    RISK_MODEL_EVENT_TYPES,
    Describe,
    RiskModel,
    RiskModelRegistry,
    artefact_describe,
)
from strongroom.tenancy.service import TenancyService

app = typer.Typer(
    no_args_is_help=True, help="Fraud models: register, shadow, promote, retire, list."
)

risk_app.add_typer(app, name="models")

# How an artefact is read (risk.artefact's describe); tests put a fake one here.
DESCRIBE: list[Describe] = [artefact_describe]

TenantOption = Annotated[
    str | None,
    typer.Option("--tenant", help="the tenant's name (default: the deployment's default tenant)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


@contextmanager
def _registry(
    database_url: str | None, tenant: str | None
) -> Iterator[tuple[RiskModelRegistry, str]]:
    engine, settings = open_engine(database_url)
    try:
        audit = build_ledger(engine, settings)[1]
        tenant_id = DEFAULT_TENANT_ID
        if tenant is not None:
            found = TenancyService(engine).tenant_by_name(tenant)
            if found is None:  # never made here: a misspelt name would hold a model nobody uses
                raise NotFound(f"no tenant is named {tenant!r}", param="tenant")
            tenant_id = found.id
        events = EventService(engine, audit=audit, event_types=RISK_MODEL_EVENT_TYPES)
        yield RiskModelRegistry(engine, DESCRIBE[0], audit=audit, events=events), tenant_id
    finally:
        engine.dispose()


def _metric(model: RiskModel, name: str) -> str:
    value = model.metrics.get(name)
    return f"{value:.4f}" if isinstance(value, int | float) else "-"


def _when(us: int | None) -> str:
    return clock.format_us(us)[:19].replace("T", " ") if us else "-"


def _say(model: RiskModel, as_json: bool) -> None:
    if as_json:
        print_json(model.to_dict())
    else:
        typer.echo(f"{model.version}: {model.status.value}")


@app.command("register")
@reporting_errors
def models_register(
    path: Annotated[Path, typer.Argument(help="the model artefact (strongroom risk train)")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """Store a trained model's artefact as `registered` (idempotent: the same file again does
    nothing; another file under a registered version is refused)."""
    try:
        if path.stat().st_size > ARTEFACT_BYTES_MAX:
            raise InvalidRequest(
                f"a model artefact is at most {ARTEFACT_BYTES_MAX} bytes", param="path"
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path} ({type(exc).__name__})", param="path") from None
    with _registry(database_url, tenant) as (registry, tenant_id):
        model, created = registry.register(tenant_id, raw, actor=CLI_ACTOR)
    if as_json:
        print_json({**model.to_dict(), "created": created})
    else:
        typer.echo(f"{model.version}: {'registered' if created else 'already registered'}")


@app.command("shadow")
@reporting_errors
def models_shadow(
    version: Annotated[str, typer.Argument(help="the model's version, mdl_...")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """Run the model in shadow: scored beside the live one, acting on nothing (the previous
    shadow model goes back to registered)."""
    with _registry(database_url, tenant) as (registry, tenant_id):
        _say(registry.shadow(tenant_id, version, actor=CLI_ACTOR), as_json)


@app.command("promote")
@reporting_errors
def models_promote(
    version: Annotated[str, typer.Argument(help="the model's version, mdl_...")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """Make the model live (the previous live model is retired); a retired model may come
    back so (a rollback)."""
    with _registry(database_url, tenant) as (registry, tenant_id):
        _say(registry.promote(tenant_id, version, actor=CLI_ACTOR), as_json)


@app.command("retire")
@reporting_errors
def models_retire(
    version: Annotated[str, typer.Argument(help="the model's version, mdl_...")],
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """Take the model out of service (retiring the live one leaves the rules alone to decide)."""
    with _registry(database_url, tenant) as (registry, tenant_id):
        _say(registry.retire(tenant_id, version, actor=CLI_ACTOR), as_json)


@app.command("list")
@reporting_errors
def models_list(
    tenant: TenantOption = None,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """The tenant's models, oldest first: version, status, hold-out average precision and ROC
    AUC, when registered and when last promoted."""
    models: list[RiskModel] = []
    with _registry(database_url, tenant) as (registry, tenant_id):
        after = None
        while True:
            page = registry.list_models(tenant_id, starting_after=after, limit=100)
            models += page.data
            if not page.has_more:
                break
            after = page.data[-1].version
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    rows: list[tuple[Any, ...]] = [("VERSION", "STATUS", "AP", "AUC", "CREATED", "PROMOTED")]
    for m in models:
        rows.append(
            (
                m.version, m.status.value, _metric(m, "average_precision"),
                _metric(m, "roc_auc"), _when(m.created_at), _when(m.promoted_at),
            )
        )  # fmt: skip
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
