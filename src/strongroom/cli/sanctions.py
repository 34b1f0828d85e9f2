"""`strongroom sanctions`: load list versions, list them, screen names (docs/sanctions.md).

`load PATH...` parses the files (the source told from their names and content, or
`--source`), stores each list as a new version when its content changed (the same content
again is a no-op that says so), prints the version and the diff counts, and re-screens the
customers and counterparties the changed entries could match. `screen NAME... [--file FILE]`
prints one JSON object a line per name: `name`, `hit` (the best match scores at least the
threshold) and `matches`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.common import CLI_ACTOR, DbOption, open_engine, print_json
from strongroom.cli.progress import progress
from strongroom.compliance.sanctions import store
from strongroom.compliance.sanctions.errors import InvalidName
from strongroom.compliance.sanctions.model import EntryKind, ListSource, Query
from strongroom.compliance.sanctions.service import LoadResult, SanctionsService, check_name
from strongroom.compliance.sanctions.views import match_dict
from strongroom.core import clock
from strongroom.core.errors import InvalidRequest
from strongroom.db.uow import UnitOfWork
from strongroom.settings import Settings

app = typer.Typer(no_args_is_help=True, help="Sanctions lists: load, list, screen names.")

# The lists `load` takes (the PEP file is for tests and benchmarks: `--source pep` only).
LOADABLE = (ListSource.UN, ListSource.OFAC_SDN, ListSource.OFAC_CONS, ListSource.BIS_DPL)
SCREEN_NAMES_MAX = 1_000_000  # one call; each line is screened and printed as it is read
NAME_CHARS_MAX = 500

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


def detect_source(path: Path) -> ListSource:
    """A list file's source, from its name, then its first bytes."""
    name = path.name.lower()
    if name.endswith(".xml") or name.startswith("un_"):
        return ListSource.UN
    if "dpl" in name:
        return ListSource.BIS_DPL
    if "cons" in name:
        return ListSource.OFAC_CONS
    if "sdn" in name or "ofac" in name:
        return ListSource.OFAC_SDN
    with path.open("rb") as f:
        head = f.read(4096).decode("utf-8", "replace")
    if "<CONSOLIDATED_LIST" in head:
        return ListSource.UN
    if head.lstrip("\ufeff").startswith('"Name"\t'):
        return ListSource.BIS_DPL
    raise InvalidRequest(
        f"cannot tell which list {path.name} is: name it with --source", param="source"
    )


@contextmanager
def _service(database_url: str | None, *, screening_points: bool) -> Iterator[SanctionsService]:
    """The service; with `screening_points` (re-screening after a load) wired to the case
    queue and the customers as `serve` wires it (keys opened only when some subject exists)."""
    engine, settings = open_engine(database_url)
    try:
        with UnitOfWork(engine, write=False) as uow:
            subjects = store.subject_count(uow)
        if not screening_points or not subjects:
            yield SanctionsService(engine, threshold=settings.screening_threshold)
        else:
            yield _wired(engine, settings)
    finally:
        engine.dispose()


def _wired(engine: Any, settings: Settings) -> SanctionsService:
    from strongroom.cases.service import CaseService
    from strongroom.compliance.sanctions.wiring import build_sanctions
    from strongroom.customers.counterparties import CounterpartyService
    from strongroom.customers.service import CustomerService
    from strongroom.events.service import EventService
    from strongroom.runtime import EVENT_TYPES, build_ledger, risk_hasher
    from strongroom.security.envelope import Envelope
    from strongroom.security.keys import open_keys

    kms, _ = open_keys(settings, engine)
    ledger, audit = build_ledger(engine, settings, kms=kms)
    envelope = Envelope(kms)
    events = EventService(engine, audit=audit, event_types=EVENT_TYPES)
    return build_sanctions(
        settings,
        engine,
        risk_hasher(settings, engine, kms),
        customers=CustomerService(engine, envelope, audit=audit, events=events, ledger=ledger),
        counterparties=CounterpartyService(engine, envelope, audit=audit),
        cases=CaseService(engine, ledger, audit=audit, events=events),
        audit=audit,
        events=events,
    )


def _groups(paths: Sequence[Path], source: ListSource | None) -> dict[ListSource, list[Path]]:
    groups: dict[ListSource, list[Path]] = {}
    for path in paths:
        if not path.is_file():
            raise InvalidRequest(f"no file {path}", param="path")
        groups.setdefault(source or detect_source(path), []).append(path)
    return groups


@app.command()
def load(
    paths: Annotated[list[Path], typer.Argument(help="the list's files (an OFAC set: several)")],
    source: Annotated[
        ListSource | None,
        typer.Option("--source", help="the list (default: told from the files)"),
    ] = None,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """Store each list as a new version (when its content changed) and re-screen the
    customers and counterparties its changed entries could match."""
    from strongroom.compliance.sanctions.lists import ListFormatError
    from strongroom.compliance.sanctions.lists import load as parse

    results: list[LoadResult] = []
    with _service(database_url, screening_points=True) as service:
        for list_source, files in _groups(paths, source).items():
            with progress(f"sanctions {list_source.value}") as report:
                report(f"{list_source.value}: parsing {len(files)} file(s)")
                try:
                    entries = parse(list_source, files)
                except ListFormatError as exc:
                    raise InvalidRequest(f"{list_source.value}: {exc}", param="path") from None
                report(f"{list_source.value}: {len(entries)} entries parsed; storing")

                def rescreened(done: int, total: int, name: str = list_source.value) -> None:
                    if done == total or done % 500 == 0:
                        report(f"{name}: re-screening {done}/{total}")

                results.append(
                    service.load(list_source, entries, actor=CLI_ACTOR, progress=rescreened)
                )
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    for r in results:
        if r.unchanged:
            typer.echo(
                f"{r.source.value}: unchanged (version {r.version}, {r.entry_count} entries): "
                "nothing stored"
                + (f"; re-screened {r.rescreened} subjects still owed it" if r.rescreened else "")
            )
        else:
            typer.echo(
                f"{r.source.value}: version {r.version}, {r.entry_count} entries "
                f"(+{r.added} added, ~{r.changed} changed, -{r.removed} removed); "
                f"re-screened {r.rescreened} of {r.subjects} subjects"
            )


@app.command("lists")
def lists_(as_json: JsonOption = False, database_url: DbOption = None) -> None:
    """Every loaded version of every list."""
    with _service(database_url, screening_points=False) as service:
        rows = service.versions()
    if as_json:
        print_json(
            [
                {
                    "source": r.source, "version": r.version, "entries": r.entry_count,
                    "added": r.added, "changed": r.changed, "removed": r.removed,
                    "sha256": r.sha256, "loaded_at": clock.format_us(r.loaded_at),
                    "loaded_by": r.loaded_by,
                    "rescreened_at": (
                        clock.format_us(r.rescreened_at) if r.rescreened_at is not None else None
                    ),
                    "rescreen_owed": r.rescreened_at is None,
                }
                for r in rows
            ]
        )  # fmt: skip
        return
    if not rows:
        typer.echo("no list loaded: strongroom sanctions load PATH...")
        return
    typer.echo(f"{'list':<10} {'version':>7} {'entries':>8} {'+added':>7} {'~changed':>8} "
               f"{'-removed':>8}  loaded_at            by")  # fmt: skip
    for r in rows:
        when = clock.format_us(r.loaded_at)[:19].replace("T", " ")
        typer.echo(
            f"{r.source:<10} {r.version:>7} {r.entry_count:>8} {r.added:>7} {r.changed:>8} "
            f"{r.removed:>8}  {when}  {r.loaded_by}"
        )
    for r in rows:
        if r.rescreened_at is None:
            typer.echo(
                f"{r.source} version {r.version}: re-screening still owed (a running "
                "server's job sanctions_rescreen completes it, as does the next "
                "`strongroom sanctions load`)"
            )


def _names(names: Sequence[str], file: Path | None) -> Iterator[tuple[str, str]]:
    """(where, name): each argument, then each non-blank line of `file` (`-`: stdin)."""
    for number, name in enumerate(names, 1):
        yield f"argument {number}", name
    if file is not None:
        try:
            stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
        except OSError as exc:
            raise InvalidRequest(f"cannot read {file}: {exc.strerror}", param="file") from None
        try:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    yield f"line {number}", line.strip()
        except UnicodeDecodeError:
            raise InvalidRequest(f"{file} is not UTF-8 text", param="file") from None
        finally:
            if stream is not sys.stdin:
                stream.close()


@app.command()
def screen(
    names: Annotated[list[str] | None, typer.Argument(help="names to screen")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="a name a line (`-`: standard input)")
    ] = None,
    kind: Annotated[EntryKind | None, typer.Option("--type", help="person or organization")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="a hit from this score (default STRONGROOM_SCREENING_THRESHOLD)",
        ),
    ] = None,
    min_score: Annotated[
        float, typer.Option("--min-score", min=0.0, max=1.0, help="the matches shown")
    ] = 0.5,
    limit: Annotated[int, typer.Option("--limit", min=1, max=100, help="matches per name")] = 5,
    as_json: JsonOption = False,
    database_url: DbOption = None,
) -> None:
    """Screen names against every loaded list: one line per name (JSON with --json). A name
    with no letter or digit is not screened: an `error: invalid_name` line on stderr naming
    where it was, the others screened, and exit code 2."""
    if not names and file is None:
        raise InvalidRequest("give names, or --file FILE", param="names")
    if file is not None and str(file) != "-" and not file.is_file():
        raise InvalidRequest(f"no file {file}", param="file")
    refused = 0
    with _service(database_url, screening_points=False) as service:
        hit_from = service.threshold if threshold is None else threshold
        screener, _ = service.screener()
        for count, (where, name) in enumerate(_names(names or [], file), 1):
            if count > SCREEN_NAMES_MAX:
                raise InvalidRequest(f"at most {SCREEN_NAMES_MAX} names a call", param="file")
            if len(name) > NAME_CHARS_MAX:
                raise InvalidRequest(f"a name is at most {NAME_CHARS_MAX} characters")
            try:
                check_name(name)
            except InvalidName as exc:
                typer.echo(f"error: {exc.code}: {where}: {exc.detail}", err=True)
                refused += 1
                continue
            found = screener.screen(Query(name, kind), limit=limit, min_score=min_score)
            hit = bool(found) and found[0].score >= hit_from
            if as_json:
                line = {"name": name, "hit": hit, "matches": [match_dict(m) for m in found]}
                typer.echo(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
            elif found:
                best = found[0]
                mark = "HIT " if hit else "    "
                typer.echo(
                    f"{mark}{name}: {best.score:.3f} {best.entry.source.value} "
                    f"{best.entry.entry_id} {best.entry.names[0]!r}"
                )
            else:
                typer.echo(f"    {name}: no match")
    if refused:
        typer.echo(f"error: {refused} name(s) not screened: nothing to screen", err=True)
        raise typer.Exit(2)
