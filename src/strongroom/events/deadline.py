"""A total deadline for one HTTP request: connecting, sending and reading the answer's head,
all together.

httpx's timeouts apply to each network operation: a receiver that answers one byte at a time,
each within the read timeout, holds a request for as long as it likes (one sending a byte every
2 s held an attempt for 112 s, past its lease). Here every operation on a connection is given
at most the time left until the deadline of the request that opened it, and none starts once
that has passed: the socket's own timeout ends a trickle at the deadline.

The deadline is per thread (set with `DeadlineBackend.deadline()` around `client.send`), and
a connection carries the deadline of the thread that opened it. That is sound because the
dispatcher's client keeps no connection alive: each request opens its own, in its own thread.

One residue: a write is bounded by the time left when it starts, and a receiver that reads a
body byte by byte could stretch one; the body (one event, a few KB) fits a socket's send
buffer, so it is written at once.
"""

from __future__ import annotations

import ssl
import threading
import time
import typing
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpcore
import httpx

_SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


def _time_left(
    deadline_s: float | None, timeout: float | None, expired: type[Exception]
) -> float | None:
    """The timeout to give one operation: `timeout`, cut to the time left; raises `expired`
    when none is left."""
    if deadline_s is None:
        return timeout
    left = deadline_s - time.monotonic()
    if left <= 0:
        raise expired("the attempt's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, deadline_s: float | None) -> None:
        self._inner = inner
        self._deadline_s = deadline_s

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        left = _time_left(self._deadline_s, timeout, httpcore.ReadTimeout)
        return self._inner.read(max_bytes, left)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        left = _time_left(self._deadline_s, timeout, httpcore.WriteTimeout)
        self._inner.write(buffer, left)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(self._deadline_s, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, left), self._deadline_s
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's blocking sockets, with the calling thread's deadline on every operation."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()

    @contextmanager
    def deadline(self, deadline_s: float) -> Iterator[None]:
        """Connections opened by this thread inside the block end by `deadline_s`
        (time.monotonic())."""
        self._local.deadline_s = deadline_s
        try:
            yield
        finally:
            self._local.deadline_s = None

    def _deadline_s(self) -> float | None:
        value: float | None = getattr(self._local, "deadline_s", None)
        return value

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        deadline_s = self._deadline_s()
        left = _time_left(deadline_s, timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, deadline_s)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        deadline_s = self._deadline_s()
        left = _time_left(deadline_s, timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, left, socket_options), deadline_s
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's transport (no proxy), whose connections keep to DeadlineBackend's deadlines."""

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self.backend = DeadlineBackend()
        # httpx takes no network backend, so the pool it built is replaced by one built the
        # same way with ours (the trickle test in tests/integration fails if this is lost).
        assert isinstance(self._pool, httpcore.ConnectionPool)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
