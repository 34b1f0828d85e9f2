"""The HTTP layer's pure ASGI middleware, outermost: request context (id, security headers,
access log, metrics) and body limit; the tenancy layer's (authentication, rate limit,
idempotency) run inside them (tenancy/middleware.py). Pure ASGI so that bodies stream through
untouched except where a layer must read them."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, MutableMapping
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.core import ids
from strongroom.core.limits import REQUEST_BODY_BYTES_MAX, REQUEST_HEAD_BYTES_MAX
from strongroom.http.errors import PROBLEM_JSON, problem_body, separate_renderer

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
    """Answer a problem from a middleware, as the app's catalogue declares `code` (or as the
    separate API whose path it is renders it)."""
    status, body = problem_body(scope["app"].state.errors, code, detail, request_id)
    own = [(b"content-type", PROBLEM_JSON.encode())]
    renderer = separate_renderer(scope)
    if renderer is not None:
        status, rendered, body = renderer(scope, status, code, detail)
        own = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in rendered.items()]
    headers = [*own, (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
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


# On every answer, errors and the tenancy layer's included: nothing is cached anywhere (answers
# carry balances, and webhook signing secrets), and a browser never guesses a media type.
# Uvicorn's `server` banner is off (http/server.py).
SECURITY_HEADERS: Final = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
)


class RequestContext:
    """A request id (in the `Request-Id` header of every response), the SECURITY_HEADERS, one
    structured log line per request, and the request metrics. Logs carry no bodies and no
    secrets."""

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
                message["headers"] = [
                    *message.get("headers", ()),
                    *SECURITY_HEADERS,
                    (b"request-id", request_id.encode()),
                ]
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
    """Guards every request before the app sees it: 431 for a head (request line and headers)
    over REQUEST_HEAD_BYTES_MAX, 413 for a body over REQUEST_BODY_BYTES_MAX (by Content-Length
    or while streaming), 415 for a body that is not JSON (except on `form_paths`), and 400 for
    a NUL character anywhere in the path, query or body (raw, or JSON's escape for it): no
    database column can store one."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int = REQUEST_BODY_BYTES_MAX,
        head_limit: int = REQUEST_HEAD_BYTES_MAX,
        form_paths: Collection[str] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.head_limit = head_limit
        # Routes whose body is a form (OAuth 2.0's endpoints): the route checks the media
        # type; the size and NUL checks hold for them too.
        self.form_paths = frozenset(form_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = state_of(scope).get("request_id")
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        if head_bytes(scope["method"], raw_path, query, scope["headers"]) > self.head_limit:
            await send_problem(
                scope,
                send,
                "request_headers_too_large",
                f"the request line and headers are over {self.head_limit} bytes",
                request_id,
            )
            return
        length = header_of(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await send_problem(
                scope, send, "request_too_large", f"the body is over {self.limit} bytes", request_id
            )
            return
        if b"%00" in raw_path or b"%00" in query or "\x00" in scope["path"]:
            await send_problem(scope, send, "invalid_request", _NUL_DETAIL, request_id)
            return
        if (
            length not in (None, "0")
            and scope["method"] in ("POST", "PUT", "PATCH")
            and scope["path"] not in self.form_paths
        ):
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
        nul = NulScanner()
        refused: _Refused | None = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.limit:
                    refused = _Refused("request_too_large", f"the body is over {self.limit} bytes")
                    raise refused
                if nul.feed(chunk):
                    refused = _Refused("invalid_request", _NUL_DETAIL)
                    raise refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is not None and not started:
                # The app's own answer to the body it could not read (FastAPI turns any error
                # while reading into a 400): this refusal is the answer instead.
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refused is None or started:
                raise
        if refused is not None and not started:
            await send_problem(scope, send, refused.code, refused.detail, request_id)


def head_bytes(
    method: str, raw_path: bytes, query: bytes, headers: list[tuple[bytes, bytes]]
) -> int:
    """The size of a request's head as sent: `METHOD path?query HTTP/1.1` and `name: value`
    lines, each with its CRLF."""
    size = len(method) + len(raw_path) + len(query) + 13
    for name, value in headers:
        size += len(name) + len(value) + 4
    return size


# An escape of a JSON string: a backslash and what it escapes. Scanned from the left, each
# match consumes its backslash, so `\\u0000` (an escaped backslash, then the text u0000)
# holds no NUL while `\u0000` is one. A match that ends the data may be cut short by the end
# of a chunk (a lone backslash, `\u0`...): it is carried to the next chunk.
_ESCAPE = re.compile(rb"\\(u0000|u0{0,3}\Z|\Z|.)", re.DOTALL)
_NUL_ESCAPE = b"u0000"


class NulScanner:
    r"""Finds a NUL in a JSON body read chunk by chunk: a raw NUL byte, or the escape
    `\u0000` (which decodes to one). Text that only looks like it, such as the JSON string
    "\\u0000" (a backslash, then u0000), holds no NUL and passes."""

    def __init__(self) -> None:
        self._carry = b""

    def feed(self, chunk: bytes) -> bool:
        """True once the body so far holds a NUL."""
        if b"\x00" in chunk:
            return True
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        if b"\\" not in data:
            return False
        for match in _ESCAPE.finditer(data):
            escaped = match.group(1)
            if escaped == _NUL_ESCAPE:
                return True
            if match.end() == len(data) and _NUL_ESCAPE.startswith(escaped):
                self._carry = match.group(0)  # maybe the start of `\u0000`
        return False


_NUL_DETAIL = "text may not contain the NUL character"


class _Refused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
