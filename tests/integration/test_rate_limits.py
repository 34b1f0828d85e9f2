"""Rate-limit buckets shared by processes (tenancy/ratelimit.py): the embedded file and Redis.
Several processes spend from one bucket; together they get what one would, not one bucket each.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import struct
import time
from pathlib import Path

import pytest

from strongroom.core.limits import RATE_LIMIT_UNITS_PER_TOKEN
from strongroom.tenancy.ratelimit import (
    Buckets,
    FileStorage,
    find_bucket,
    open_storage,
    open_table,
    request_cost,
)
from tests.integration.workers.limiter import spend
from tests.support.redis import redis_url_or_skip

UNIT = RATE_LIMIT_UNITS_PER_TOKEN


def _shared(setting: str, database_url: str, sqlite_path: str | None) -> None:
    """Four processes, 300 requests each, against a bucket of 100 refilling at 1 a second:
    together they pass at most 100 + 1 * elapsed (the old per-process buckets passed 400)."""
    per_s, burst, processes, requests = 1.0, 100, 4, 300
    context = multiprocessing.get_context("spawn")
    args = (setting, database_url, sqlite_path, per_s, burst, requests, UNIT)
    start = time.monotonic()
    with context.Pool(processes) as pool:
        allowed = pool.starmap(spend, [args] * processes)
    elapsed = time.monotonic() - start
    assert burst <= sum(allowed) <= burst + per_s * elapsed + 1, (allowed, elapsed)


def test_processes_share_one_file_bucket(tmp_path: Path) -> None:
    _shared("file", "sqlite:///x", str(tmp_path / "x.db"))
    assert (tmp_path / "x.db.ratelimit").exists()


def test_processes_share_one_redis_bucket(tmp_path: Path) -> None:
    url = redis_url_or_skip()
    # The namespace comes from the database URL: a fresh one, so a fresh bucket.
    _shared(url, f"postgresql://test/{tmp_path.name}-{time.time_ns()}", None)


def test_a_bucket_spends_refuses_and_reports() -> None:
    async def run(path: Path) -> None:
        storage = FileStorage(path)
        buckets = Buckets(storage, "key", 0.001, 10)
        first = await buckets.take("a", 3 * UNIT)
        assert (first.allowed, first.remaining_units // UNIT) == (True, 7)
        # A peek spends nothing.
        assert (await buckets.peek("a", 7 * UNIT)).allowed
        assert (await buckets.take("a", 7 * UNIT)).allowed
        refused = await buckets.take("a", UNIT)
        assert not refused.allowed
        assert refused.retry_after_ms > 0
        assert buckets.seconds(refused) > 0
        # Another name has its own bucket; a cost above the whole bucket costs the bucket.
        other = await buckets.take("b", 50 * UNIT)
        assert (other.allowed, other.remaining_units) == (True, 0)
        await storage.close()

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(Path(tmp) / "b.ratelimit"))


def test_a_full_set_gives_up_its_closest_to_full_bucket(tmp_path: Path) -> None:
    """A table of one set of two slots: a third name takes the slot of the bucket owed least."""
    table = open_table(tmp_path / "t", sets=1, slots=2)
    now_us = time.time_ns() // 1000
    a, b, c = (table.digest(n) for n in "abc")
    with table.locked(a) as offset:
        at, tat = find_bucket(table, offset, a)
        assert tat == 0
        table.write(at, a, now_us + 5_000_000)
        at, _ = find_bucket(table, offset, b)
        table.write(at, b, now_us + 1_000_000)
        assert find_bucket(table, offset, a)[1] == now_us + 5_000_000
        at, tat = find_bucket(table, offset, c)
        assert tat == 0
        assert find_bucket(table, offset, b)[0] == at  # b's slot: the least owed
    table.close()


def test_a_changed_layout_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "t"
    open_table(path, sets=4, slots=2).close()
    table = open_table(path, sets=8, slots=2)
    assert path.stat().st_size == 32 + 8 * 2 * 24
    table.close()


def test_a_file_of_the_old_layout_starts_afresh(tmp_path: Path) -> None:
    """A rate-limit file written before the digests were keyed (a 16-byte header: magic, sets,
    slots) with a bucket in the first slot. Read with the new 32-byte header, its magic and
    layout matched and the first bucket's digest (an unkeyed BLAKE2b of a name such as an
    address: anyone can compute it) became the file's key, and the file, 16 bytes short, could
    not be mapped: every rate-limited request failed after the upgrade."""
    path = tmp_path / "t"
    sets, slots = 8, 2
    old_header = struct.pack("<8sII", b"SRRATE01", sets, slots)
    first = hashlib.blake2b(b"ip:203.0.113.7", digest_size=16).digest()
    old_slot = struct.pack("<16sq", first, time.time_ns() // 1000 + 10**6)
    path.write_bytes(old_header + old_slot + bytes(sets * slots * 24 - len(old_slot)))
    path.chmod(0o600)  # as the old code made it
    table = open_table(path, sets=sets, slots=slots)
    try:
        assert path.stat().st_size == 32 + sets * slots * 24
        assert table.digest("x") != hashlib.blake2b(b"x", digest_size=16, key=first).digest()
        with table.locked(table.digest("x")) as offset:
            assert find_bucket(table, offset, table.digest("x"))[1] == 0
    finally:
        table.close()


@pytest.mark.parametrize(
    ("method", "path", "query", "tokens"),
    [
        ("GET", "/v1/ledgers", b"", 1),
        ("GET", "/v1/ledgers", b"limit=20", 1),
        ("GET", "/v1/transfers", b"ledger_id=l&limit=100", 1.8),
        ("GET", "/v1/transfers", b"limit=5000", 1.8),  # refused by the route, capped here
        ("GET", "/v1/accounts/acc_1/statement", b"from=a&to=b", 21),
        ("GET", "/v1/accounts/acc_1/statement", b"limit=100", 3),
        ("POST", "/v1/transfers/batch", b"", 1),  # + N/100 charged by the route
    ],
)
def test_request_costs(method: str, path: str, query: bytes, tokens: float) -> None:
    assert request_cost(method, path, query) == round(tokens * UNIT)


def test_open_storage_defaults_next_to_sqlite(tmp_path: Path) -> None:
    storage = open_storage("file", "sqlite:///db", str(tmp_path / "db"))
    assert isinstance(storage, FileStorage)
    assert storage.path == tmp_path / "db.ratelimit"
    asyncio.run(storage.close())
    elsewhere = open_storage(f"file:{tmp_path / 'rl'}", "sqlite:///db", None)
    assert isinstance(elsewhere, FileStorage)
    assert elsewhere.path == tmp_path / "rl"
    asyncio.run(elsewhere.close())
