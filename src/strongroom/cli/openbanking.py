"""`strongroom openbanking clients`: the third-party providers (TPPs) registered with the
deployment's authorization server (docs/openbanking-tpp.md), on the database directly: the
operator's commands, as the API's operator routes. Each prints the client as JSON; a refusal
prints its code and exits 2, having written nothing. Changes are leaves of the system tenant's
audit log, by the actor `cli`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Final

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, build_ledger, open_engine, print_json
from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import PAGE_SIZE_MAX
from strongroom.openbanking.tpp.model import CODE_JWKS, TppScope, parse_jwks_text
from strongroom.openbanking.tpp.service import TppService
from strongroom.tenancy.service import TenancyService

JWKS_FILE_BYTES_MAX: Final = 256 * 1024

app = typer.Typer(no_args_is_help=True, help="Open banking: the authorization server's clients.")
clients = typer.Typer(
    no_args_is_help=True, help="Third-party providers (TPPs): register, list, rotate keys."
)
app.add_typer(clients, name="clients")

JwksFile = Annotated[
    Path,
    typer.Option("--jwks", help='a JSON file holding the TPP\'s public JWK set {"keys": [...]}'),
]
IdArgument = Annotated[str, typer.Argument(help="the client's id (tpp_...)")]


@contextlib.contextmanager
def _service(database_url: str | None) -> Iterator[TppService]:
    """The registry as `serve` wires it: its changes audited in the system tenant's log."""
    engine, settings = open_engine(database_url)
    try:
        audit = build_ledger(engine, settings)[1]
        tenancy = TenancyService(engine)
        yield TppService(engine, audit=audit, log_id=lambda: tenancy.system_tenant().id)
    finally:
        engine.dispose()


def _read_jwks(path: Path) -> object:
    try:
        with path.open("rb") as f:
            data = f.read(JWKS_FILE_BYTES_MAX + 1)
    except OSError as exc:
        raise InvalidRequest(
            f"cannot read the JWKS file ({type(exc).__name__})", param="jwks", code=CODE_JWKS
        ) from None
    if len(data) > JWKS_FILE_BYTES_MAX:
        raise InvalidRequest(
            f"the JWKS file is larger than {JWKS_FILE_BYTES_MAX} bytes",
            param="jwks",
            code=CODE_JWKS,
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the JWKS file is not UTF-8", param="jwks", code=CODE_JWKS) from None
    return parse_jwks_text(text)


@clients.command("register")
def register(
    name: Annotated[str, typer.Option("--name", help="the TPP's name, 1 to 100 characters")],
    redirect_uri: Annotated[
        list[str],
        typer.Option(
            "--redirect-uri",
            help="an absolute https URI (repeat for each, at most 10); http only for "
            "127.0.0.1, [::1] or localhost, for development",
        ),
    ],
    jwks: JwksFile,
    scope: Annotated[
        list[TppScope] | None,
        typer.Option("--scope", help="what it may ask consent for (repeat); default: all"),
    ] = None,
    software_id: Annotated[
        str | None, typer.Option("--software-id", help="its software statement id, if any")
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Register a TPP: it starts active."""
    keys = _read_jwks(jwks)
    scopes = None if not scope else [s.value for s in scope]
    with _service(database_url) as service:
        client = service.register(
            name=name,
            redirect_uris=list(redirect_uri),
            jwks=keys,
            scopes=scopes,
            software_id=software_id,
            actor=CLI_ACTOR,
        )
    print_json(client.public())


@clients.command("list")
def list_(database_url: DbOption = None) -> None:
    """Every registered client, by id (a JSON array)."""
    out = []
    with _service(database_url) as service:
        after = None
        while True:
            page, more = service.list_clients(starting_after=after, limit=PAGE_SIZE_MAX)
            out += [c.public() for c in page]
            if not more:
                break
            after = page[-1].id
    print_json(out)


@clients.command("show")
def show(client_id: IdArgument, database_url: DbOption = None) -> None:
    """One client, its public keys included."""
    with _service(database_url) as service:
        client = service.get(client_id)
    print_json(client.public())


@clients.command("disable")
def disable(client_id: IdArgument, database_url: DbOption = None) -> None:
    """Disable a client: the authorization server refuses it; its registration is kept."""
    with _service(database_url) as service:
        client = service.set_enabled(client_id, False, actor=CLI_ACTOR)
    print_json(client.public())


@clients.command("enable")
def enable(client_id: IdArgument, database_url: DbOption = None) -> None:
    """Enable a disabled client again."""
    with _service(database_url) as service:
        client = service.set_enabled(client_id, True, actor=CLI_ACTOR)
    print_json(client.public())


@clients.command("rotate-keys")
def rotate_keys(client_id: IdArgument, jwks: JwksFile, database_url: DbOption = None) -> None:
    """Replace a client's JWK set with the file's (keep the current key in it until the TPP
    signs with the new one): keys left out stop verifying at once."""
    keys = _read_jwks(jwks)
    with _service(database_url) as service:
        client = service.rotate_keys(client_id, keys, actor=CLI_ACTOR)
    print_json(client.public())
