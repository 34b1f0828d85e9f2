"""The HTTP layer's pure ASGI middleware, outermost: request context (id, access log,
metrics) and body limit; the tenancy layer's (authentication, rate limit, idempotency) run
inside them (tenancy/middleware.py). Pure ASGI so that bodies stream through untouched except
where a layer must read them."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.core import ids
from strongroom.core.limits import REQUEST_BODY_BYTES_MAX
from strongroom.http.errors import PROBLEM_JSON, problem_body

log = logging.getLogger("strongroom.http")

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"})


async def send_problem(
    scope: Scope,
    send: Send,
    code: str,
    detail: str,
    request_id: str | None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer a problem from a middleware, as the app's catalogue declares `code`."""
    status, body = problem_body(scope["app"].state.errors, code, detail, request_id)
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    # RequestContext adds the Request-Id header to every answer, this one included.
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def state_of(scope: Scope) -> MutableMapping[str, Any]:
    state: MutableMapping[str, Any] = scope.setdefault("state", {})
    return state


def header_of(scope: Scope, name: bytes) -> str | None:
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
        state_of(scope)["request_id"] = request_id
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
                scope, send_wrapper, "internal_error", "an internal error occurred", request_id
            )
        finally:
            duration = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            # Whoever authenticated the request (the tenancy layer's API key), if anyone.
            api_key = state_of(scope).get("api_key")
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
        request_id = state_of(scope).get("request_id")
        length = header_of(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await send_problem(
                scope, send, "request_too_large", f"the body is over {self.limit} bytes", request_id
            )
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        if b"%00" in raw_path or b"%00" in query or "\x00" in scope["path"]:
            await send_problem(scope, send, "invalid_request", _NUL_DETAIL, request_id)
            return
        if length not in (None, "0") and scope["method"] in ("POST", "PUT", "PATCH"):
            media = (header_of(scope, b"content-type") or "").split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                await send_problem(
                    scope,
                    send,
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
            await send_problem(scope, send, refused.code, refused.detail, request_id)


_NUL_DETAIL = "text may not contain the NUL character"


class _Refused(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
