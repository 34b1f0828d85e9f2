"""Pure ASGI middleware, outermost first: request context (id, access log, metrics), body
limit, authentication, rate limit, idempotency. Pure ASGI so that bodies stream through
untouched except where a layer must read them (idempotency)."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.core import ids
from strongroom.core.errors import ServiceUnavailable
from strongroom.core.limits import IDEMPOTENCY_KEY_LENGTH_MAX, REQUEST_BODY_BYTES_MAX
from strongroom.http.errors import PROBLEM_JSON
from strongroom.tenancy.model import ApiKey, IdempotencyState
from strongroom.tenancy.service import TenancyService, fingerprint

log = logging.getLogger("strongroom.http")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})


def _problem_message(status: int, code: str, detail: str, request_id: str | None) -> bytes:
    from strongroom.http.errors import ERROR_CODES

    return json.dumps(
        {
            "type": f"urn:strongroom:error:{code}",
            "title": ERROR_CODES[code][1],
            "status": status,
            "detail": detail,
            "code": code,
            "request_id": request_id,
        }
    ).encode()


async def send_problem(
    send: Send,
    status: int,
    code: str,
    detail: str,
    request_id: str | None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = _problem_message(status, code, detail, request_id)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    # RequestContext adds the Request-Id header to every answer, this one included.
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _state(scope: Scope) -> MutableMapping[str, Any]:
    state: MutableMapping[str, Any] = scope.setdefault("state", {})
    return state


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContext:
    """A request id (in the `Request-Id` header of every response), one structured log line per
    request, and the request metrics. Logs carry no bodies and no secrets."""

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int, float], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ids.new_id("req")
        _state(scope)["request_id"] = request_id
        start = time.perf_counter()
        status_holder = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"request-id", request_id.encode())]
            await send(message)

        started = [False]

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send_wrapper(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            # A bug: log it with the request id and answer a problem that carries the id too
            # (no internals). If the answer had begun, the connection is all we can end.
            log.exception("unhandled error", extra={"request_id": request_id})
            if started[0]:
                raise
            status_holder[0] = 500
            await send_problem(
                send_wrapper, 500, "internal_error", "an internal error occurred", request_id
            )
        finally:
            duration = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            api_key: ApiKey | None = _state(scope).get("api_key")
            self.observe(scope["method"], template, status_holder[0], duration)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "tenant": api_key.tenant_id if api_key else None,
                    "api_key": api_key.id if api_key else None,
                    "method": scope["method"],
                    "route": template,
                    "status": status_holder[0],
                    "duration_ms": round(duration * 1000, 3),
                },
            )


class BodyLimit:
    """Guards every body before the app sees it: 413 over REQUEST_BODY_BYTES_MAX (by
    Content-Length or while streaming), 415 for a body that is not JSON, and 400 for a NUL
    character anywhere in the path, query or body: no database column can store one."""

    def __init__(self, app: ASGIApp, limit: int = REQUEST_BODY_BYTES_MAX) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _state(scope).get("request_id")
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await send_problem(
                send, 413, "request_too_large", f"the body is over {self.limit} bytes", request_id
            )
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        if b"%00" in raw_path or b"%00" in query or "\x00" in scope["path"]:
            await send_problem(send, 400, "invalid_request", _NUL_DETAIL, request_id)
            return
        if length not in (None, "0") and scope["method"] in ("POST", "PUT", "PATCH"):
            media = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                await send_problem(
                    send,
                    415,
                    "unsupported_media_type",
                    "send the body as application/json",
                    request_id,
                )
                return
        seen = 0
        tail = b""

        async def guarded_receive() -> Message:
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.limit:
                    raise _Refused(413, "request_too_large", f"the body is over {self.limit} bytes")
                # JSON writes NUL as the escape \u0000; keep a tail so a split one is seen.
                window = tail + chunk
                if b"\\u0000" in window or b"\x00" in window:
                    raise _Refused(400, "invalid_request", _NUL_DETAIL)
                tail = window[-5:]
            return message

        try:
            await self.app(scope, guarded_receive, send)
        except _Refused as refused:
            await send_problem(send, refused.status, refused.code, refused.detail, request_id)


_NUL_DETAIL = "text may not contain the NUL character"


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class Authenticate:
    """`Authorization: Bearer sk_...` on every /v1 route; the key lands in scope state."""

    def __init__(self, app: ASGIApp, tenancy: TenancyService) -> None:
        self.app = app
        self.tenancy = tenancy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization") or ""
        scheme, _, secret = header.partition(" ")
        key = None
        if scheme.lower() == "bearer" and secret:
            key = self.tenancy.cached(secret.strip())
            if key is None:
                key = await run_in_threadpool(self.tenancy.authenticate, secret.strip())
        if key is None:
            await send_problem(
                send,
                401,
                "unauthenticated",
                "send an API key as 'Authorization: Bearer sk_...'",
                _state(scope).get("request_id"),
                [(b"www-authenticate", b'Bearer realm="strongroom"')],
            )
            return
        _state(scope)["api_key"] = key
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
        key: ApiKey | None = _state(scope).get("api_key") if scope["type"] == "http" else None
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
                send,
                429,
                "rate_limited",
                f"over {self.rate:g} requests/s for this API key",
                _state(scope).get("request_id"),
                [*headers, (b"retry-after", str(max(1, reset_s)).encode())],
            )
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_wrapper)


class Idempotency:
    """`Idempotency-Key` on a POST: scoped to the API key and remembered 24 h with a
    fingerprint of method, path and body. The same key and body replays the stored answer
    (`Idempotent-Replayed: true`); another body is a 422; a duplicate still in flight is a 409.
    A 5xx is not remembered, so a retry runs again."""

    def __init__(self, app: ASGIApp, tenancy: TenancyService) -> None:
        self.app = app
        self.tenancy = tenancy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: ApiKey | None = _state(scope).get("api_key") if scope["type"] == "http" else None
        idem = _header(scope, b"idempotency-key") if key is not None else None
        if key is None or idem is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request_id = _state(scope).get("request_id")
        if not 1 <= len(idem) <= IDEMPOTENCY_KEY_LENGTH_MAX or not idem.isprintable():
            await send_problem(
                send,
                400,
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
        try:
            outcome = await run_in_threadpool(
                self.tenancy.begin_idempotent, key.id, idem, fingerprint("POST", path, body)
            )
        except ServiceUnavailable as exc:
            # The key could not even be claimed (SQLite's writer lock stayed taken): nothing
            # was stored for it, so the retry this 503 asks for runs as a first request.
            await send_problem(
                send,
                exc.status,
                exc.code,
                exc.detail,
                request_id,
                [(b"retry-after", str(exc.retry_after_s).encode())],
            )
            return
        if outcome.state is IdempotencyState.MISMATCH:
            await send_problem(
                send,
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request",
                request_id,
            )
            return
        if outcome.state is IdempotencyState.IN_FLIGHT:
            await send_problem(
                send,
                409,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed",
                request_id,
            )
            return
        if outcome.state is IdempotencyState.REPLAY:
            assert outcome.status_code is not None
            stored = (outcome.body or "").encode()
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

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await run_in_threadpool(self.tenancy.release_idempotent, key.id, idem)
            raise
        if status[0] >= 500:
            try:
                await run_in_threadpool(self.tenancy.release_idempotent, key.id, idem)
            except ServiceUnavailable:
                # Still busy (SQLite's writer lock): the answer is a 5xx anyway, most likely
                # this same 503, so send it rather than a 500. The key stays in flight until
                # it expires (IDEMPOTENCY_RETENTION_S): its retries answer 409 meanwhile.
                log.warning(
                    "could not release an Idempotency-Key after a 5xx",
                    extra={"request_id": request_id},
                )
        else:
            await run_in_threadpool(
                self.tenancy.finish_idempotent, key.id, idem, status[0], b"".join(captured)
            )
        for message in held:
            await send(message)


Observe = Callable[[str, str, int, float], None]
AsyncCall = Callable[[Scope, Receive, Send], Awaitable[None]]
