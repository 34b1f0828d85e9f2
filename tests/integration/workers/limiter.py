"""A process spending tokens of one shared bucket, for tests/integration/test_rate_limits.py:
`spend(storage, database_url, sqlite_path, ...)` runs in a child process and returns how many
of its requests were let through."""

from __future__ import annotations

import asyncio

from strongroom.tenancy.ratelimit import Buckets, open_storage


def spend(
    setting: str,
    database_url: str,
    sqlite_path: str | None,
    per_s: float,
    burst: int,
    requests: int,
    units: int,
) -> int:
    async def run() -> int:
        storage = open_storage(setting, database_url, sqlite_path)
        buckets = Buckets(storage, "key", per_s, burst)
        allowed = 0
        try:
            for _ in range(requests):
                verdict = await buckets.take("key_shared", units)
                allowed += verdict.allowed
        finally:
            await storage.close()
        return allowed

    return asyncio.run(run())
