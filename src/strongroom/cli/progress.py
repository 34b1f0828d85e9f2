"""Progress of long commands (verify, export) on stderr: a live rich display on a terminal, one
line per report otherwise (logs, CI, pipes), so that output captured to a file stays readable."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import typer


@contextlib.contextmanager
def progress(title: str) -> Iterator[Callable[[str], None]]:
    """A callback that shows each progress report (a short line) under `title`."""
    if not sys.stderr.isatty():
        yield lambda line: typer.echo(line, err=True)
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as display:
        task = display.add_task(title)

        def report(line: str) -> None:
            display.update(task, description=f"{title}: {line}")

        yield report
        display.update(task, description=f"{title}: done")
