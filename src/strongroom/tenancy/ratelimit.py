"""Rate limits that hold across every worker process of a deployment.

A limit is a token bucket per name (an API key, a client address), run by pyrate-limiter's
`TokenBucket` (a GCRA: one number a bucket, the time the bucket will next be full). The numbers
live where every worker reads and writes them, with no durable write per request:

- `file` (the default): a memory-mapped file shared by the processes of one host, each set of
  slots guarded by an fcntl byte-range lock. Nothing is fsynced: the kernel writes the pages
  back when it likes, and a crash loses at most some spent tokens. On SQLite the file sits next
  to the database (`<database>.ratelimit`); on PostgreSQL in a private directory of the system's
  temporary directory, named after the database URL.
- `redis://...` (or `rediss://`): Redis, through pyrate-limiter's `RedisStateStore` (one Lua
  script a check), for PostgreSQL deployments spread over several hosts.

Costs are counted in hundredths of a token (RATE_LIMIT_UNITS_PER_TOKEN) so that a batch of N
transfers costs 1 + N/100 tokens exactly; `request_cost` says what a request costs before its
body is read, and a route that learns more (a batch's size) charges the rest itself
(`tenancy.access.spend`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import tempfile
import time
from inspect import isawaitable
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol
from urllib.parse import parse_qsl

from pyrate_limiter import Rate, StateStore, TokenBucket

from strongroom.core.limits import (
    PAGE_SIZE_DEFAULT,
    PAGE_SIZE_MAX,
    RATE_LIMIT_FILE_SETS,
    RATE_LIMIT_FILE_SLOTS_PER_SET,
    RATE_LIMIT_KEY_LENGTH_MAX,
    RATE_LIMIT_UNITS_PER_LISTED_ITEM,
    RATE_LIMIT_UNITS_PER_STATEMENT_ENTRY,
    RATE_LIMIT_UNITS_PER_TOKEN,
    STATEMENT_PAGE_ENTRIES_MAX,
)
from strongroom.core.slotfile import SlotFile, SlotFileHandle

log = logging.getLogger("strongroom.ratelimit")

ALGORITHM: Final = TokenBucket()
# A rate as pyrate-limiter takes it: `limit` units per `interval` ms. The interval is long so
# that fractional rates (0.2 failed logins a second) stay exact in whole units.
_INTERVAL_MS: Final = 1_000_000


class Verdict(NamedTuple):
    allowed: bool
    remaining_units: int  # left in the bucket after this request
    retry_after_ms: int  # until a request of this cost would pass; 0 when it did


class Storage(Protocol):
    """Where the buckets' numbers live: a pyrate-limiter StateStore for each bucket name."""

    def store(self, name: str) -> StateStore: ...

    async def close(self) -> None: ...


def _now_ms() -> int:
    # Wall-clock time: the numbers are compared across processes (and hosts, with Redis) and
    # outlive a reboot in the file, where a monotonic clock would restart from zero.
    return time.time_ns() // 1_000_000


class Buckets:
    """Token buckets of one rate and burst (in tokens), a bucket per name."""

    def __init__(self, storage: Storage, prefix: str, per_s: float, burst: int) -> None:
        assert per_s > 0
        assert burst >= 1
        self.storage = storage
        self.prefix = prefix
        self.per_s = per_s
        self.burst = burst
        self.burst_units = burst * RATE_LIMIT_UNITS_PER_TOKEN
        limit = max(1, round(per_s * RATE_LIMIT_UNITS_PER_TOKEN * _INTERVAL_MS / 1000))
        self.rates = [Rate(limit, _INTERVAL_MS, self.burst_units)]

    async def take(self, name: str, units: int) -> Verdict:
        """Spend `units` from `name`'s bucket if it holds them (a cost larger than the whole
        bucket is charged as the whole bucket, so that it can pass at all)."""
        return await self._check(name, min(max(units, 1), self.burst_units), spend=True)

    async def peek(self, name: str, units: int) -> Verdict:
        """Whether `units` would pass now, spending nothing."""
        return await self._check(name, min(max(units, 1), self.burst_units), spend=False)

    async def _check(self, name: str, units: int, *, spend: bool) -> Verdict:
        store = self.storage.store(f"{self.prefix}:{name}"[:RATE_LIMIT_KEY_LENGTH_MAX])
        now = _now_ms()
        try:
            if spend:
                decision: Any = store.check(ALGORITHM, self.rates, now, units)
                if isawaitable(decision):
                    decision = await decision
                allowed, retry_ms = decision.allowed, decision.retry_after_ms or 0
            # The file store keeps the state it just wrote (one lock, not two); others read.
            state: Any = getattr(store, "last_state", None) if spend else None
            if state is None:
                state = store.read(ALGORITHM, self.rates)
                if isawaitable(state):
                    state = await state
        except Exception:
            # The storage is unreachable (Redis down): let the request through rather than
            # refuse every client, and say so in the log.
            log.warning("rate limit storage unavailable; request not limited", exc_info=True)
            return Verdict(True, self.burst_units, 0)
        if not spend:
            _, decision = ALGORITHM.step(self.rates, state, now, units)
            allowed, retry_ms = decision.allowed, decision.retry_after_ms or 0
        owed = ALGORITHM.consumed(self.rates, state, now)
        return Verdict(allowed, max(0, self.burst_units - owed), 0 if allowed else retry_ms)

    def seconds(self, verdict: Verdict) -> int:
        """Whole seconds until a 1-token request passes (RateLimit-Reset), 0 when it would now."""
        missing = RATE_LIMIT_UNITS_PER_TOKEN - verdict.remaining_units
        if missing <= 0:
            return 0
        return math.ceil(missing / (self.per_s * RATE_LIMIT_UNITS_PER_TOKEN))


def request_cost(method: str, path: str, query: bytes) -> int:
    """What a request costs, in units, before its body is read: 1 token, and for a GET with a
    page size, 1/100 token an item past the default page (a listing's `limit`) or 1/50 token an
    entry (a statement page's `limit`, 1,000 when not given). A batch's size is charged by its
    route (`tenancy.access.spend`)."""
    units = RATE_LIMIT_UNITS_PER_TOKEN
    if method != "GET":
        return units
    statement = path.endswith("/statement")
    limit = STATEMENT_PAGE_ENTRIES_MAX if statement else PAGE_SIZE_DEFAULT
    if query:
        # Parsed as the route parses it (percent-escapes decoded, a sign allowed): the raw
        # bytes `limit=` would miss `li%6Dit=100` or `limit=%2B100`, full pages at 1 token.
        for name, value in parse_qsl(query.decode("latin-1")):
            if name == "limit" and len(value) <= 12:
                with contextlib.suppress(ValueError):
                    limit = max(0, int(value))  # the last one counts, as for the route
    if statement:
        return units + min(limit, STATEMENT_PAGE_ENTRIES_MAX) * RATE_LIMIT_UNITS_PER_STATEMENT_ENTRY
    # A limit out of range is refused by the route (400); it costs no more than the largest.
    return units + max(0, min(limit, PAGE_SIZE_MAX) - PAGE_SIZE_DEFAULT) * (
        RATE_LIMIT_UNITS_PER_LISTED_ITEM
    )


# -- the embedded storage: a memory-mapped file ---------------------------------------------

_MAGIC: Final = b"SRRATE01"


def open_table(
    path: Path,
    sets: int = RATE_LIMIT_FILE_SETS,
    slots: int = RATE_LIMIT_FILE_SLOTS_PER_SET,
) -> SlotFile:
    """The buckets' table: each slot a name's digest and its bucket's number (GCRA's TAT, us).
    A name not in its set takes a free slot or, when the set is full, the one whose bucket is
    closest to full (the smallest number): at worst a bucket is forgotten early, which can let
    its owner through sooner, never later."""
    return SlotFile(path, magic=_MAGIC, sets=sets, slots=slots)


def find_bucket(table: SlotFile, offset: int, digest: bytes) -> tuple[int, int]:
    """(slot offset, stored number) of `digest`; a slot to take, with 0, when it is absent."""
    slot = table.lookup(offset, digest)
    return slot.at, slot.value if slot.found else 0


class FileStateStore(StateStore):
    """pyrate-limiter's store interface over one name's slot of a SlotFile."""

    is_async = False

    def __init__(self, table: SlotFile, name: str) -> None:
        self.table = table
        self.digest = table.digest(name)
        self.last_state: tuple[int] | None = None  # as `check` left it

    def check(self, algorithm: Any, rates: list[Rate], now: int, weight: int) -> Any:
        with self.table.locked(self.digest) as offset:
            at, tat = find_bucket(self.table, offset, self.digest)
            state, decision = algorithm.step(rates, (tat,), now, weight)
            if decision.allowed:
                self.table.write(at, self.digest, int(state[0]))
        self.last_state = (int(state[0]),)
        return decision

    def read(self, algorithm: Any, rates: list[Rate]) -> Any:
        with self.table.locked(self.digest) as offset:
            _at, tat = find_bucket(self.table, offset, self.digest)
        return (tat,)

    def reset(self) -> None:
        with self.table.locked(self.digest) as offset:
            at, _tat = find_bucket(self.table, offset, self.digest)
            self.table.write(at, self.digest, 0)


class FileStorage:
    """Buckets in a SlotFile at `path`, opened on first use (again after `close`: an app's
    lifespan may run more than once, as in tests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SlotFileHandle(lambda: open_table(path))

    @property
    def table(self) -> SlotFile:
        return self._file.open()

    def store(self, name: str) -> StateStore:
        return FileStateStore(self.table, name)

    async def close(self) -> None:
        self._file.close()


class RedisStorage:
    """Buckets in Redis (pyrate-limiter's RedisStateStore on an asyncio client), under
    `strongroom:ratelimit:<namespace>:` so that deployments sharing a Redis keep apart."""

    def __init__(self, url: str, namespace: str) -> None:
        from redis.asyncio import Redis  # only deployments that configure Redis need it

        self.client: Any = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = f"strongroom:ratelimit:{namespace}:"

    def store(self, name: str) -> StateStore:
        from pyrate_limiter import RedisStateStore

        return RedisStateStore(self.client, self.prefix + name)

    async def close(self) -> None:
        await self.client.aclose()


def default_file(database_url: str, sqlite_path: str | None) -> Path:
    """Where `file` storage keeps its buckets: next to a SQLite database; for PostgreSQL in a
    private directory (mode 0700) of the system's temporary directory, one file a database, so
    that every worker of this host shares it."""
    if sqlite_path:
        return Path(sqlite_path + ".ratelimit")
    directory = Path(tempfile.gettempdir()) / f"strongroom-{os.getuid()}"
    directory.mkdir(mode=0o700, exist_ok=True)
    if directory.is_symlink() or directory.stat().st_uid != os.getuid():
        raise RuntimeError(f"{directory} is not this user's own directory")
    name = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return directory / f"ratelimit-{name}"


def open_storage(setting: str, database_url: str, sqlite_path: str | None) -> Storage:
    """The storage STRONGROOM_RATE_LIMIT_STORAGE names: `file` (the default), `file:PATH`, or a
    `redis://` / `rediss://` URL."""
    if setting.startswith(("redis://", "rediss://")):
        # One namespace a database: the deployment's workers share it, another's is apart.
        return RedisStorage(setting, hashlib.sha256(database_url.encode()).hexdigest()[:16])
    if setting.startswith("file:") and len(setting) > len("file:"):
        return FileStorage(Path(setting.removeprefix("file:")))
    assert setting == "file", setting  # the settings validate it
    return FileStorage(default_file(database_url, sqlite_path))
