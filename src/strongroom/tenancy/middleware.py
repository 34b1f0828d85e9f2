"""The tenancy layer of the HTTP API, as pure ASGI middleware inside the HTTP layer's own
(request context, body limit): authentication (`Bearer sk_...`), a rate limit per API key, and
`Idempotency-Key` records. `runtime.create_app` installs them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.core.errors import ServiceUnavailable
from strongroom.core.idempotency import STATE_KEY as IDEMPOTENT_REQUEST
from strongroom.core.idempotency import IdempotentRequest
from strongroom.core.limits import IDEMPOTENCY_KEY_LENGTH_MAX
from strongroom.http.errors import PROBLEM_JSON
from strongroom.http.middleware import header_of, send_problem, state_of
from strongroom.tenancy.model import ApiKey, IdempotencyState
from strongroom.tenancy.service import TenancyService, fingerprint

log = logging.getLogger("strongroom.http")


class Authenticate:
    """`Authorization: Bearer sk_...` on every /v1 route; the key lands in scope state."""

    def __init__(self, app: ASGIApp, tenancy: TenancyService) -> None:
        self.app = app
        self.tenancy = tenancy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        header = header_of(scope, b"authorization") or ""
        scheme, _, secret = header.partition(" ")
        key = None
        if scheme.lower() == "bearer" and secret:
            key = self.tenancy.cached(secret.strip())
            if key is None:
                key = await run_in_threadpool(self.tenancy.authenticate, secret.strip())
        if key is None:
            await send_problem(
                scope,
                send,
                "unauthenticated",
                "send an API key as 'Authorization: Bearer sk_...'",
                state_of(scope).get("request_id"),
                [(b"www-authenticate", b'Bearer realm="strongroom"')],
            )
            return
        state_of(scope)["api_key"] = key
        await self.app(scope, receive, send)


class RateLimit:
    """A token bucket per API key, with the IETF RateLimit headers on every /v1 response."""

    def __init__(self, app: ASGIApp, rate_per_s: float, burst: int) -> None:
        self.app = app
        self.rate = rate_per_s
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _take(self, key_id: str) -> tuple[bool, int, int]:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key_id] = (tokens, now)
        reset_s = 0 if tokens >= 1.0 else math.ceil((1.0 - tokens) / self.rate)
        return allowed, int(tokens), reset_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: ApiKey | None = state_of(scope).get("api_key") if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        allowed, remaining, reset_s = self._take(key.id)
        headers = [
            (b"ratelimit-limit", str(self.burst).encode()),
            (b"ratelimit-remaining", str(remaining).encode()),
            (b"ratelimit-reset", str(reset_s).encode()),
        ]
        if not allowed:
            await send_problem(
                scope,
                send,
                "rate_limited",
                f"over {self.rate:g} requests/s for this API key",
                state_of(scope).get("request_id"),
                [*headers, (b"retry-after", str(max(1, reset_s)).encode())],
            )
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_wrapper)


class Idempotency:
    """`Idempotency-Key` on a POST: scoped to the tenant (any of its API keys) and remembered
    IDEMPOTENCY_RETENTION_S with a fingerprint of method, path and body. The same key and body
    replays the stored answer (`Idempotent-Replayed: true`); another body is a 422; a duplicate
    while an attempt holds the key is a 409 with `Retry-After`.

    An attempt holds the key under a lease (STRONGROOM_IDEMPOTENCY_LEASE_S, default
    IDEMPOTENCY_LEASE_S, renewed while it runs). After
    a 5xx it lets the lease go at once; after a crash the lease runs out. Either way the retry
    runs the request again under the same claim, and handlers mint the same ids for it
    (core.idempotency): whatever the failed attempt committed is found (the ledger answers
    `exists`), never made twice."""

    def __init__(self, app: ASGIApp, tenancy: TenancyService) -> None:
        self.app = app
        self.tenancy = tenancy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: ApiKey | None = state_of(scope).get("api_key") if scope["type"] == "http" else None
        idem = header_of(scope, b"idempotency-key") if key is not None else None
        if key is None or idem is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request_id = state_of(scope).get("request_id")
        if not 1 <= len(idem) <= IDEMPOTENCY_KEY_LENGTH_MAX or not idem.isprintable():
            await send_problem(
                scope,
                send,
                "invalid_idempotency_key",
                f"an Idempotency-Key is 1 to {IDEMPOTENCY_KEY_LENGTH_MAX} printable characters",
                request_id,
            )
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        path = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        tenant_id = key.tenant_id
        try:
            outcome = await run_in_threadpool(
                self.tenancy.begin_idempotent, tenant_id, idem, fingerprint("POST", path, body)
            )
        except ServiceUnavailable as exc:
            # The key could not even be claimed (SQLite's writer lock stayed taken): nothing
            # was stored for it, so the retry this 503 asks for runs as a first request.
            await send_problem(
                scope,
                send,
                exc.code,
                exc.detail,
                request_id,
                [(b"retry-after", str(exc.retry_after_s).encode())],
            )
            return
        if outcome.state is IdempotencyState.MISMATCH:
            await send_problem(
                scope,
                send,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
                request_id,
            )
            return
        if outcome.state is IdempotencyState.IN_FLIGHT:
            await send_problem(
                scope,
                send,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
                request_id,
                [(b"retry-after", str(max(1, outcome.retry_after_s)).encode())],
            )
            return
        if outcome.state is IdempotencyState.REPLAY:
            assert outcome.status_code is not None
            stored = outcome.body or b""
            media = PROBLEM_JSON if outcome.status_code >= 400 else "application/json"
            await send(
                {
                    "type": "http.response.start",
                    "status": outcome.status_code,
                    "headers": [
                        (b"content-type", media.encode()),
                        (b"content-length", str(len(stored)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": stored})
            return
        owner = outcome.owner
        state_of(scope)[IDEMPOTENT_REQUEST] = IdempotentRequest(
            tenant_id, idem, outcome.claimed_at_us, outcome.resumed
        )
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        # The answer is held back until it is stored: a client that retries the moment it has
        # the answer must find it remembered (a replay), not still in flight (a 409).
        status = [500]
        captured: list[bytes] = []
        held: list[Message] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                captured.append(message.get("body", b""))
            held.append(message)

        renewer = asyncio.create_task(self._renew(tenant_id, idem, owner, request_id))
        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            renewer.cancel()
            with contextlib.suppress(Exception):
                await run_in_threadpool(self.tenancy.release_idempotent, tenant_id, idem, owner)
            raise
        renewer.cancel()
        if status[0] >= 500:
            try:
                await run_in_threadpool(self.tenancy.release_idempotent, tenant_id, idem, owner)
            except ServiceUnavailable:
                # Still busy (SQLite's writer lock): the answer is a 5xx anyway, most likely
                # this same 503, so send it rather than a 500. The lease runs out within
                # one lease and the retry runs then.
                log.warning(
                    "could not release an Idempotency-Key after a 5xx",
                    extra={"request_id": request_id},
                )
        else:
            await run_in_threadpool(
                self.tenancy.finish_idempotent,
                tenant_id,
                idem,
                owner,
                status[0],
                b"".join(captured),
            )
        for message in held:
            await send(message)

    async def _renew(self, tenant_id: str, key: str, owner: str, request_id: object) -> None:
        """Keep the lease while the attempt runs (it may take longer than one lease)."""
        while True:
            await asyncio.sleep(self.tenancy.idempotency_lease_s / 3)
            try:
                held = await run_in_threadpool(self.tenancy.renew_idempotent, tenant_id, key, owner)
            except ServiceUnavailable:
                continue  # the writer lock is busy: try again at the next third
            if not held:
                log.warning(
                    "an Idempotency-Key's lease was taken over while its attempt ran",
                    extra={"request_id": request_id},
                )
                return


Observe = Callable[[str, str, int, float], None]
AsyncCall = Callable[[Scope, Receive, Send], Awaitable[None]]
