"""`strongroom audit`: the verifiable audit log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.common import DbOption, audit_log, print_json
from strongroom.cli.progress import progress
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest

app = typer.Typer(no_args_is_help=True, help="The verifiable audit log.")


@app.command("verify")
def audit_verify(
    database_url: DbOption = None,
    public_key: Annotated[
        list[str] | None,
        typer.Option(help="a verifier key you hold (the log's first; repeatable)"),
    ] = None,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            help="a signed checkpoint kept outside the database (its note, or the JSON of GET "
            "/v1/audit/checkpoint); the log must still hold it (repeatable)",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Recompute every log from the database against its tiles and every stored checkpoint
    (signed by a key you trust, or handed over to by one), and check the ledger's transfers
    against their leaves; exit 1 naming the first bad leaf. A checkpoint kept outside the
    database (--checkpoint) also catches leaves removed together with the checkpoints that
    held them."""
    held = [_checkpoint_note(path) for path in checkpoint or []]
    with audit_log(database_url) as audit, progress("audit verify") as show:
        report = audit.verify(progress=show, trusted_keys=public_key, held_checkpoints=held)
    typer.echo(
        f"logs: {report.logs}  leaves: {report.leaves}  checkpoints: {report.checkpoints}  "
        f"transfers: {report.transfers}"
    )
    if report.held_checkpoints:
        typer.echo(f"held checkpoints: {report.held_checkpoints} (given, kept outside)")
    typer.echo(f"signatures checked against {report.trust}")
    for line in report.baseline:
        typer.echo(f"baseline: {line}")
    for note in report.notes:
        typer.echo(f"note: {note}")
    for problem in report.problems:
        typer.echo(f"TAMPERED: {problem}")
    typer.echo("audit log: ok" if report.ok else f"audit log: {len(report.problems)} problems")
    if not report.ok:
        raise typer.Exit(1)


def _checkpoint_note(path: Path) -> str:
    """A checkpoint file's signed note: the file is the note, or a checkpoint's JSON (`note`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read {path}: {exc}", param="checkpoint") from None
    if text.lstrip().startswith("{"):
        try:
            found = json.loads(text).get("note")
        except (ValueError, AttributeError):
            found = None
        if not isinstance(found, str):
            raise InvalidRequest(f"{path}: a JSON checkpoint has a `note`", param="checkpoint")
        return found
    return text


@app.command("checkpoint")
def audit_checkpoint(database_url: DbOption = None) -> None:
    """Sign and publish a checkpoint of every log that grew; print them."""
    with audit_log(database_url) as audit:
        published = audit.publish()
    print_json([{"log": cp.log_id, **cp.to_dict()} for cp in published])


@app.command("keys")
def audit_keys(database_url: DbOption = None) -> None:
    """The public (verifier) keys that sign checkpoints, retired ones included."""
    with audit_log(database_url) as audit:
        print_json(audit.verifier_keys())


@app.command("rotate-key")
def audit_rotate_key(database_url: DbOption = None) -> None:
    """A new signing key: a leaf in every log, the transition checkpoint signed by both."""
    with audit_log(database_url) as audit:
        typer.echo(audit.rotate_key())


@app.command("export")
def audit_export(
    directory: Annotated[Path, typer.Argument(help="created if missing")],
    database_url: DbOption = None,
) -> None:
    """Write every log (C2SP tlog-tiles: tiles, entry bundles, all checkpoints) and the
    public keys, for a third party to verify with `audit verify-export`."""
    with audit_log(database_url) as audit, progress("audit export") as show:
        count = audit.export(directory, show)
    typer.echo(f"exported {count} leaves to {directory}")


@app.command("verify-export")
def audit_verify_export(
    directory: Annotated[Path, typer.Argument(help="a directory written by `audit export`")],
    public_key: Annotated[
        list[str] | None, typer.Option(help="verifier key; default: the export's keys.txt")
    ] = None,
) -> None:
    """Offline: recompute each exported log and check every checkpoint against it."""
    from strongroom.audit.offline import verify_export

    if not public_key:
        typer.echo(
            "warning: checking against the export's own keys.txt; give --public-key with a key "
            "you hold for a check the export cannot fake"
        )
    keys = public_key or (directory / "keys.txt").read_text().split()
    result = verify_export(directory, keys)
    typer.echo(f"logs: {result.logs}  leaves: {result.leaves}  checkpoints: {result.checkpoints}")
    for problem in result.problems:
        typer.echo(f"BAD: {problem}")
    typer.echo("export: ok" if not result.problems else "export: does not verify")
    if result.problems or not result.checkpoints:
        raise typer.Exit(1)


@app.command("verify-receipt")
def audit_verify_receipt(
    file: Annotated[Path, typer.Argument(help="a receipt (GET /v1/transfers/{id}/receipt)")],
    public_key: Annotated[
        list[str], typer.Option(help="the log's verifier key (GET /v1/audit/keys)")
    ],
    origin: Annotated[
        str | None, typer.Option(help="the log it must be from (<origin>/<tenant id>)")
    ] = None,
) -> None:
    """Offline, with no database and no server: the receipt's checkpoint is signed by the key
    and each of its leaves is in that tree. Exit 1 saying what failed."""
    from strongroom.audit.offline import ReceiptError, load_receipt, verify_receipt

    try:
        checked = verify_receipt(load_receipt(file), public_key)
        if origin is not None and checked.origin != origin:
            raise ReceiptError(f"the receipt is from log {checked.origin}, not {origin}")
    except ReceiptError as exc:
        typer.echo(f"receipt: INVALID: {exc}")
        raise typer.Exit(1) from None
    for item in checked.leaves:
        leaf = item["leaf"]
        what = leaf.get("transfer", leaf.get("data", {}))
        typer.echo(f"leaf {item['index']}: {leaf['type']} {json.dumps(what, sort_keys=True)}")
    typer.echo(f"receipt: ok (log {checked.origin}, tree size {checked.tree_size})")


@app.command("verify-statement")
def audit_verify_statement(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="a statement's pages in order (GET /v1/accounts/{id}/statement, then with "
            "cursor=next_cursor), one file each, or one file holding the list of them"
        ),
    ],
    public_key: Annotated[
        list[str], typer.Option(help="the log's verifier key (GET /v1/audit/keys)")
    ],
    origin: Annotated[
        str | None, typer.Option(help="the log it must be from (<origin>/<tenant id>)")
    ] = None,
) -> None:
    """Offline: every entry of the account in the period is there (gap-free versions from the
    opening entry to the first one after, across the pages), unaltered (each leaf proved in a
    signed checkpoint) and adding up (each balance follows from the one before). Exit 1 if
    not."""
    from strongroom.audit.offline import load_receipt
    from strongroom.audit.statement import StatementError, verify_statement

    try:
        pages: list[Any] = []
        for file in files:
            document = load_receipt(file)
            pages.extend(document if isinstance(document, list) else [document])
        checked = verify_statement(pages, public_key)
        if origin is not None and checked.origin != origin:
            raise StatementError(f"the statement is from log {checked.origin}, not {origin}")
    except (StatementError, ValueError) as exc:
        typer.echo(f"statement: INVALID: {exc}")
        raise typer.Exit(1) from None
    names = ("debits_posted", "credits_posted", "debits_pending", "credits_pending")
    period = f"({clock.format_us(checked.from_us)}, {clock.format_us(checked.to_us)}]"
    typer.echo(f"account {checked.account_id}, period {period}, log {checked.origin}")
    typer.echo(f"  opening {dict(zip(names, checked.opening, strict=True))}")
    for e in checked.entries:
        typer.echo(
            f"  v{e.version} {clock.format_us(e.at)} {e.direction} {e.amount} "
            f"pending {e.pending_delta:+d}  {e.transfer_id}  (leaf {e.leaf_index})"
        )
    typer.echo(f"  closing {dict(zip(names, checked.closing, strict=True))}")
    tail = (
        "the next entry proves the period's end"
        if checked.has_boundary
        else ("no later entry when it was made")
    )
    paged = f", {checked.pages} pages" if checked.pages > 1 else ""
    typer.echo(
        f"statement: ok, complete: {len(checked.entries)} entries, {tail} "
        f"(log {checked.origin}, tree size {checked.tree_size}{paged})"
    )
