"""Looking for known secret values (test card numbers, security codes, personal data, keys)
where they must never be: every column of every table, every log line, every event payload.

A value is searched for as its UTF-8 bytes, its hex (both cases) and its base64 (standard and
URL-safe, with and without padding); a stored blob is also searched after zlib decompression
(idempotency records keep their answers compressed) and after zstd decompression (the audit
log's bundles), so a value compressed or encoded on the
way to the database is still found.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from strongroom.core import frames
from strongroom.core.limits import AUDIT_BUNDLE_BYTES_MAX
from strongroom.logs import JsonFormatter


@dataclass(frozen=True)
class Leak:
    where: str  # "table.column" or "log" or "event <id>"
    label: str  # which secret (never the secret itself in an assertion message)


def forms(value: str) -> list[bytes]:
    raw = value.encode()
    b64 = base64.b64encode(raw)
    url = base64.urlsafe_b64encode(raw)
    return [
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        b64,
        b64.rstrip(b"="),
        url.rstrip(b"="),
    ]


def _as_bytes(value: object) -> list[bytes]:
    if value is None:
        return []
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes | bytearray):
        out = [bytes(value)]
        with contextlib.suppress(zlib.error):
            out.append(zlib.decompress(bytes(value)))
        if frames.is_frame(out[0]):  # the audit log's bundles
            with contextlib.suppress(ValueError):
                out.append(frames.decompress(out[0], AUDIT_BUNDLE_BYTES_MAX))
        return out
    return [str(value).encode()]


def database_cells(engine: Engine) -> Iterator[tuple[str, bytes]]:
    """("table.column", bytes) for every non-null cell of every table."""
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            columns = [c["name"] for c in inspector.get_columns(table)]
            quoted = ", ".join(f'"{c}"' for c in columns)
            for row in conn.execute(sa.text(f'SELECT {quoted} FROM "{table}"')):
                for column, value in zip(columns, row, strict=True):
                    for blob in _as_bytes(value):
                        yield f"{table}.{column}", blob


def find(haystacks: Iterable[tuple[str, bytes]], secrets: dict[str, str]) -> list[Leak]:
    """Every (place, secret label) where a form of a secret occurs."""
    wanted = [(label, form) for label, value in secrets.items() for form in forms(value)]
    found: set[Leak] = set()
    for where, blob in haystacks:
        for label, form in wanted:
            if form in blob:
                found.add(Leak(where, label))
    return sorted(found, key=lambda leak: (leak.where, leak.label))


@contextlib.contextmanager
def captured_logs() -> Iterator[tuple[list[logging.LogRecord], io.StringIO]]:
    """Every record of every logger, raw, and the JSON lines `serve` would write from them."""
    records: list[logging.LogRecord] = []
    lines = io.StringIO()

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep, json_lines = Keep(logging.DEBUG), logging.StreamHandler(lines)
    json_lines.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(keep)
    root.addHandler(json_lines)
    try:
        yield records, lines
    finally:
        root.removeHandler(keep)
        root.removeHandler(json_lines)
        root.setLevel(level)
