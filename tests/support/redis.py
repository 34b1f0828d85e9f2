"""Redis for the tests of the rate limit's Redis storage: STRONGROOM_TEST_REDIS_URL, else
redis://127.0.0.1:6379/15. Absent (or the `redis` package missing), those tests skip naming
it, unless STRONGROOM_REQUIRE_REDIS is on (CI), which makes the absence a failure."""

from __future__ import annotations

import os

from tests.support.flags import REQUIRE_REDIS, skip_or_fail

DEFAULT_URL = "redis://127.0.0.1:6379/15"


def redis_url_or_skip() -> str:
    url = os.environ.get("STRONGROOM_TEST_REDIS_URL", DEFAULT_URL)
    try:
        import redis
    except ImportError:
        skip_or_fail("the redis package is not installed (pip install -e '.[dev]')", REQUIRE_REDIS)
        raise AssertionError("unreachable") from None
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        skip_or_fail(f"no Redis at {url} ({type(exc).__name__})", REQUIRE_REDIS)
    return url


def flush(url: str) -> None:
    """Forget every bucket of the tests' database (only ours: strongroom:ratelimit:*)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="strongroom:ratelimit:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
