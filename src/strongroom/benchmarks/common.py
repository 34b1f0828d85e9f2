"""Shared benchmark plumbing: timing, percentiles, the disk's fsync rate, databases."""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from strongroom.db import migrate
from strongroom.db.engine import create_engine
from strongroom.runtime import settle_heap

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def server_heap() -> Iterator[None]:
    """A timed part runs with the heap as a server process has it (runtime.settle_heap):
    what the process holds when it starts (the modules, the fixture, the benchmark's own
    prepared input, which a server never holds) frozen out of the cyclic collector, and the
    server's thresholds. Otherwise one full collection walks the prepared input (for the
    ledger's bulk row, 24 batches of 8,190 transfers: ~430k objects, ~150 ms a walk) and the
    benchmark measures its own set-up. Unfrozen and the thresholds restored afterwards."""
    thresholds = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    settle_heap()
    try:
        yield
    finally:
        if not frozen_before:  # what a caller froze before stays frozen
            gc.unfreeze()
        gc.set_threshold(*thresholds)


@dataclass
class Row:
    scenario: str
    backend: str
    transfers_per_s: float
    p99_ms: float
    reference_per_s: float
    ratio: float
    transfers: int
    note: str = ""
    target: str = ""  # for a 2-core machine; reported, never asserted
    meets_target: bool | None = None  # None where the row has no target

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("transfers_per_s", "reference_per_s"):
            out[key] = round(out[key], 1)
        out["p99_ms"] = round(out["p99_ms"], 3)
        out["ratio"] = round(out["ratio"], 3)
        return out


def p99(samples_s: list[float]) -> float:
    """99th percentile in milliseconds (nearest rank)."""
    if not samples_s:
        return 0.0
    ordered = sorted(samples_s)
    rank = max(0, int(len(ordered) * 0.99 + 0.5) - 1)
    return ordered[min(rank, len(ordered) - 1)] * 1000


def median_ms(samples_s: list[float]) -> float:
    return statistics.median(samples_s) * 1000 if samples_s else 0.0


def fsync_rate(directory: Path, seconds: float = 1.0) -> float:
    """How many 4 KiB write+fsync pairs per second the disk under `directory` sustains."""
    fd, name = tempfile.mkstemp(dir=directory, prefix=".fsync-probe-")
    try:
        block = os.urandom(4096)
        count = 0
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            count += 1
        return count / (time.perf_counter() - start)
    finally:
        os.close(fd)
        os.unlink(name)


@contextlib.contextmanager
def sqlite_database(directory: Path, name: str) -> Iterator[str]:
    path = directory / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}{suffix}")


def postgres_admin_ok(admin_url: str) -> str | None:
    """None when the server answers, else the reason."""
    try:
        engine = sa.create_engine(_psycopg(admin_url), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def _psycopg(url: str) -> sa.URL:
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@contextlib.contextmanager
def postgres_database(admin_url: str, name: str) -> Iterator[str]:
    dbname = f"srbench_{name}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(_psycopg(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    url = _psycopg(admin_url).set(database=dbname).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()


def migrated_engine(url: str, pool_size: int = 8) -> sa.Engine:
    engine = create_engine(url, pool_size=pool_size)
    migrate.upgrade(engine)
    return engine


def postgres_settings(engine: sa.Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            name: str(conn.execute(sa.text(f"SHOW {name}")).scalar())
            for name in ("fsync", "synchronous_commit", "server_version")
        }
