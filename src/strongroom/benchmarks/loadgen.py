"""A lean HTTP/1.1 load generator: keep-alive connections over loopback, pre-encoded requests.

A general-purpose client (httpx, aiohttp) spends more CPU per request than the server under
test does on a small machine, and then measures itself. This one writes bytes that were encoded
before the clock started and parses no more of the answer than its status line and framing.
It runs in processes of its own (`python -m strongroom.benchmarks.loadgen`, the run pickled on
stdin and the result on stdout), so it shares no GIL with the command that starts it, and the
processes start their clocks together.

Each run is bounded twice: by a request count and by a duration. Every request's latency (from
the first byte written to the last byte of the answer read) is kept; answers outside 2xx and
transport failures are counted, and the first few are kept as samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CONNECTIONS_MAX = 1_024
PROCESSES_MAX = 8
REQUESTS_MAX = 10_000_000
DURATION_S_MAX = 600.0
# A run that has not finished this long after its duration is abandoned (a hung server).
GRACE_S = 30.0
HEAD_BYTES_MAX = 64 * 1024
BODY_BYTES_MAX = 64 * 1024 * 1024
# A load generator process starts (spawned: a fresh interpreter) and connects within this.
START_S_MAX = 60.0
CONNECT_GAP_S = 0.005
# A connection that fails this many times in a row gives up rather than spin.
CONNECT_FAILURES_MAX = 20
ERROR_SAMPLES_MAX = 5
ERROR_SAMPLE_CHARS_MAX = 300

assert ERROR_SAMPLES_MAX * ERROR_SAMPLE_CHARS_MAX <= HEAD_BYTES_MAX


def encode_request(
    method: str,
    path: str,
    host: str,
    *,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """One HTTP/1.1 request, keep-alive, with Content-Length when it has a body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass(frozen=True)
class LoadSpec:
    """One run: `connections` clients each send the next request of `requests` (in turn) as soon
    as the previous answer is in, until `requests_max` were sent or `duration_s` has passed."""

    host: str
    port: int
    requests: tuple[bytes, ...]
    connections: int
    requests_max: int
    duration_s: float
    # Answers to requests sent in the first `warmup_s` are not measured (the server's caches,
    # pools and lazily built state fill up); the duration counts after it.
    warmup_s: float = 0.0
    # Where in `requests` this run starts, so that parallel processes send different ones.
    offset: int = 0

    def __post_init__(self) -> None:
        assert self.requests, "a load needs at least one request"
        assert 1 <= self.connections <= CONNECTIONS_MAX
        assert 1 <= self.requests_max <= REQUESTS_MAX
        assert 0 < self.duration_s <= DURATION_S_MAX
        assert 0 <= self.warmup_s <= DURATION_S_MAX


@dataclass
class LoadResult:
    completed: int = 0  # measured answers received, whatever their status
    warmup_completed: int = 0  # answers to requests sent during the warm-up
    cpu_s: float = 0.0  # this load generator's own CPU time, warm-up included
    elapsed_s: float = 0.0  # from the end of the warm-up to the last answer received
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    transport_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    timed_out: bool = False  # abandoned GRACE_S after its duration: the server hung

    @property
    def not_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def failed(self) -> int:
        return self.not_2xx + self.transport_errors

    @property
    def per_s(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def sample(self, text: str) -> None:
        if len(self.error_samples) < ERROR_SAMPLES_MAX:
            self.error_samples.append(text[:ERROR_SAMPLE_CHARS_MAX])


class _ProtocolError(Exception):
    pass


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.") or len(head) < 12:
        raise _ProtocolError(f"not an HTTP/1.x answer: {head[:40]!r}")
    status = int(head[9:12])
    lower = head.lower()
    keep_alive = b"\r\nconnection: close\r\n" not in lower
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        length = int(lower[at + 17 : end])
        if length > BODY_BYTES_MAX:
            raise _ProtocolError(f"a body of {length} bytes is over {BODY_BYTES_MAX}")
        body = await reader.readexactly(length) if length else b""
        return status, body, keep_alive
    if b"\r\ntransfer-encoding: chunked\r\n" in lower:
        chunks: list[bytes] = []
        size_total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            size_total += size
            if size_total > BODY_BYTES_MAX:
                raise _ProtocolError(f"a chunked body over {BODY_BYTES_MAX} bytes")
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, b"".join(chunks), keep_alive
            chunks.append(chunk[:-2])
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", keep_alive
    # A body delimited by closing the connection: read it, the connection is done.
    return status, await reader.read(BODY_BYTES_MAX), False


class _Run:
    """The shared state of one process's clients (one event loop: no locks needed)."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.result = LoadResult()
        self.sent = 0
        self.measure_from = 0.0
        self.deadline = 0.0
        self.last_answer = 0.0

    def next_request(self) -> bytes | None:
        spec = self.spec
        if self.sent >= spec.requests_max or time.perf_counter() >= self.deadline:
            return None
        request = spec.requests[(spec.offset + self.sent) % len(spec.requests)]
        self.sent += 1
        return request

    async def connect(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(CONNECT_FAILURES_MAX):
            try:
                return await asyncio.open_connection(
                    self.spec.host, self.spec.port, limit=HEAD_BYTES_MAX
                )
            except OSError as exc:
                self.result.transport_errors += 1
                self.result.sample(f"connect: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.05)
        return None

    async def client(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        result = self.result
        failures = 0
        request = self.next_request()
        while request is not None:
            if conn is None:
                conn = await self.connect()
                if conn is None:
                    return
            reader, writer = conn
            start = time.perf_counter()
            try:
                writer.write(request)
                status, body, keep_alive = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                result.transport_errors += 1
                result.sample(f"transport: {type(exc).__name__}: {exc}")
                writer.close()
                conn = None
                failures += 1
                if failures >= CONNECT_FAILURES_MAX:
                    return
                request = self.next_request()
                continue
            except _ProtocolError as exc:
                result.transport_errors += 1
                result.sample(f"protocol: {exc}")
                writer.close()
                return
            end = time.perf_counter()
            failures = 0
            if start >= self.measure_from:
                result.latencies_s.append(end - start)
                result.completed += 1
                result.statuses[status] = result.statuses.get(status, 0) + 1
                self.last_answer = end
            else:
                result.warmup_completed += 1
                if not 200 <= status < 300:
                    # A failure in the warm-up is still a failure of the run.
                    result.statuses[status] = result.statuses.get(status, 0) + 1
            if not 200 <= status < 300:
                result.sample(f"{status}: {body.decode('utf-8', 'replace')}")
            if not keep_alive:
                writer.close()
                conn = None
            request = self.next_request()
        if conn is not None:
            conn[1].close()


async def _drive(spec: LoadSpec, ready: Callable[[], None] | None) -> LoadResult:
    run = _Run(spec)
    # Connect first, so that the measured time holds requests only.
    # One at a time, a little apart: a server whose workers share one listening socket (uvicorn
    # --workers) lets whichever worker wakes first accept every connection waiting in the
    # backlog, so a burst of connects can land all on one worker.
    conns = []
    for _ in range(spec.connections):
        conns.append(await run.connect())
        await asyncio.sleep(CONNECT_GAP_S)
    if ready is not None:
        # Blocking the loop here is fine: nothing else runs on it yet.
        ready()
    cpu_start = time.process_time()
    start = time.perf_counter()
    run.measure_from = start + spec.warmup_s
    run.deadline = run.measure_from + spec.duration_s
    run.last_answer = run.measure_from
    tasks = [asyncio.create_task(run.client(conn)) for conn in conns]
    done, pending = await asyncio.wait(tasks, timeout=spec.warmup_s + spec.duration_s + GRACE_S)
    for task in pending:
        task.cancel()
    for task in done:
        exc = task.exception()
        if exc is not None:
            run.result.transport_errors += 1
            run.result.sample(f"client crashed: {type(exc).__name__}: {exc}")
    if pending:
        run.result.timed_out = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*pending, return_exceptions=True)
    run.result.elapsed_s = run.last_answer - run.measure_from
    run.result.cpu_s = time.process_time() - cpu_start
    return run.result


def run_here(spec: LoadSpec, ready: Callable[[], None] | None = None) -> LoadResult:
    """One run on an event loop in this process (uvloop where installed); `ready` is called
    once every connection is open, and the clock starts when it returns."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard] on Linux
        with asyncio.Runner() as runner:
            return runner.run(_drive(spec, ready))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_drive(spec, ready))


READY = b"R"
GO = b"G"


def _child_main() -> None:
    """`python -m strongroom.benchmarks.loadgen`: a LoadSpec in, READY out once connected,
    GO in to start, the LoadResult out."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Only ever our own parent's pickle, over a pipe it opened.
    spec = pickle.load(stdin)  # noqa: S301
    assert isinstance(spec, LoadSpec)

    def ready() -> None:
        stdout.write(READY)
        stdout.flush()
        assert stdin.read(1) == GO, "the parent went away before the start"

    result = run_here(spec, ready)
    pickle.dump(result, stdout, protocol=pickle.HIGHEST_PROTOCOL)
    stdout.flush()


def merge(results: Sequence[LoadResult]) -> LoadResult:
    merged = LoadResult()
    for r in results:
        merged.completed += r.completed
        merged.warmup_completed += r.warmup_completed
        merged.cpu_s += r.cpu_s
        merged.elapsed_s = max(merged.elapsed_s, r.elapsed_s)
        merged.latencies_s.extend(r.latencies_s)
        for status, n in r.statuses.items():
            merged.statuses[status] = merged.statuses.get(status, 0) + n
        merged.transport_errors += r.transport_errors
        for text in r.error_samples:
            merged.sample(text)
        merged.timed_out = merged.timed_out or r.timed_out
    return merged


def _await_ready(child: subprocess.Popen[bytes], deadline: float) -> None:
    assert child.stdout is not None
    fd = child.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"a load generator did not connect within {START_S_MAX:.0f} s")
        readable, _, _ = select.select([fd], [], [], min(left, 0.5))
        if readable:
            if os.read(fd, 1) != READY:
                raise RuntimeError(f"a load generator failed (exit code {child.wait()})")
            return


def _kill_all(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.kill()


def run(spec: LoadSpec, processes: int = 1) -> LoadResult:
    """The run in `processes` fresh processes, the connections and the request count split
    between them; their clocks start together, once all of them are connected."""
    assert 1 <= processes <= min(PROCESSES_MAX, spec.connections)
    children: list[subprocess.Popen[bytes]] = []
    # Children are killed if they outlive every bound they were given (a hung server is
    # already handled inside them; this is for a hung child).
    watchdog: threading.Timer | None = None
    try:
        for i in range(processes):
            share = LoadSpec(
                host=spec.host,
                port=spec.port,
                requests=spec.requests,
                connections=spec.connections // processes + (i < spec.connections % processes),
                requests_max=max(1, spec.requests_max // processes),
                duration_s=spec.duration_s,
                warmup_s=spec.warmup_s,
                offset=spec.offset + i * (len(spec.requests) // processes),
            )
            child = subprocess.Popen(
                [sys.executable, "-m", "strongroom.benchmarks.loadgen"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            children.append(child)
            assert child.stdin is not None
            pickle.dump(share, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            child.stdin.flush()
        deadline = time.monotonic() + START_S_MAX
        for child in children:
            _await_ready(child, deadline)
        watchdog = threading.Timer(
            START_S_MAX + spec.warmup_s + spec.duration_s + GRACE_S,
            _kill_all,
            args=(children,),
        )
        watchdog.start()
        for child in children:
            assert child.stdin is not None
            child.stdin.write(GO)
            child.stdin.close()
        results = []
        for child in children:
            assert child.stdout is not None
            data = child.stdout.read()
            if child.wait() != 0 or not data:
                raise RuntimeError(f"a load generator failed (exit code {child.returncode})")
            # Only ever our own child's pickle, over a pipe we opened.
            result = pickle.loads(data)  # noqa: S301
            assert isinstance(result, LoadResult)
            results.append(result)
        return merge(results)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        for child in children:
            if child.poll() is None:
                child.kill()
            child.wait()


if __name__ == "__main__":
    # Run as the imported module, not as __main__, so that the classes pickled both ways are
    # strongroom.benchmarks.loadgen's.
    from strongroom.benchmarks import loadgen

    loadgen._child_main()
