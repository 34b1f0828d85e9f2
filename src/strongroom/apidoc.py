"""The OpenAPI document of the HTTP API, and the command that writes it to docs/openapi.json.

The committed file is what clients and reviewers read; a test fails when it differs from what
the app serves. Regenerate it with `.venv/bin/python -m strongroom.apidoc`, and the permission
matrix drawn from it (docs/permissions.md, security/rbac.py) with `--permissions`.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.runtime import create_app
from strongroom.security import rbac
from strongroom.settings import Settings

REGENERATE_COMMAND = ".venv/bin/python -m strongroom.apidoc"
# src/strongroom/apidoc.py -> the repository root
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PERMISSIONS_OUTPUT = DEFAULT_OUTPUT.parent / "permissions.md"
PERMISSIONS_COMMAND = REGENERATE_COMMAND + " --permissions"


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """The document the app serves at /openapi.json (a copy: the app caches its own)."""
    document = copy.deepcopy(app.openapi())
    assert document.get("openapi", "").startswith("3."), "FastAPI emits OpenAPI 3.x"
    return document


def render(document: dict[str, Any]) -> str:
    """Byte-for-byte stable: sorted keys, two-space indent, one trailing newline."""
    return json.dumps(document, sort_keys=True, indent=2) + "\n"


def build_document() -> dict[str, Any]:
    """The document of an app built on a throwaway SQLite database: the routes and their
    schemas do not depend on the database or on any setting."""
    with tempfile.TemporaryDirectory(prefix="strongroom-openapi-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'openapi.db'}"
        engine = create_engine(url, sqlite_cache_mib=2)
        try:
            migrate.upgrade(engine)
        finally:
            engine.dispose()
        app = create_app(Settings(database_url=url))
        try:
            return openapi_document(app)
        finally:
            app.state.engine.dispose()


def permissions(document: dict[str, Any]) -> str:
    """docs/permissions.md: the permission matrix of the document's routes."""
    return rbac.render_matrix(rbac.routes_of(document))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m strongroom.apidoc",
        description="Write the OpenAPI document of the HTTP API (default: docs/openapi.json).",
    )
    parser.add_argument("--output", type=Path, default=None, help="where to write it")
    parser.add_argument(
        "--permissions",
        action="store_true",
        help="write the permission matrix instead (default: docs/permissions.md)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from the generated document",
    )
    args = parser.parse_args(argv)
    document = build_document()
    text = permissions(document) if args.permissions else render(document)
    output: Path = args.output or (PERMISSIONS_OUTPUT if args.permissions else DEFAULT_OUTPUT)
    command = PERMISSIONS_COMMAND if args.permissions else REGENERATE_COMMAND
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else None
        if current != text:
            print(f"{output} is out of date: run {command}", file=sys.stderr)
            return 1
        print(f"{output} is up to date")
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
