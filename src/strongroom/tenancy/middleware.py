"""The tenancy layer of the HTTP API, as pure ASGI middleware inside the HTTP layer's own
(request context, body limit): authentication (`Bearer sk_...` API keys, and users' sessions as
`Bearer st_...` or a cookie; failures limited per client address), a rate limit per principal
shared by every worker, and `Idempotency-Key` records. `runtime.create_app` installs them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Collection
from http.cookies import CookieError, SimpleCookie
from typing import Final, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from strongroom.core.errors import ServiceUnavailable, StrongroomError
from strongroom.core.idempotency import STATE_KEY as IDEMPOTENT_REQUEST
from strongroom.core.idempotency import IdempotentRequest, subject_of
from strongroom.core.limits import IDEMPOTENCY_KEY_LENGTH_MAX, RATE_LIMIT_UNITS_PER_TOKEN
from strongroom.http.errors import PROBLEM_JSON
from strongroom.http.middleware import header_of, send_problem, state_of
from strongroom.tenancy.model import IdempotencyState, Principal
from strongroom.tenancy.ratelimit import Buckets, Verdict, request_cost
from strongroom.tenancy.service import TenancyService

log = logging.getLogger("strongroom.http")


class RateLimited(StrongroomError):
    """Over a rate limit: the answer carries Retry-After and the RateLimit headers."""

    code = "rate_limited"
    status = 429


def client_address(scope: Scope) -> str:
    """The client's address: the peer's, or the one a trusted proxy forwarded (the proxy
    headers middleware, installed for STRONGROOM_TRUSTED_PROXIES, has rewritten it)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _retry_after(ms: int) -> bytes:
    return str(max(1, math.ceil(ms / 1000))).encode()


class SessionAuthenticator(Protocol):
    """Users' sessions (security/auth): the principal of a live session token, or None."""

    def authenticate(self, token: str) -> Principal | None: ...


SESSION_TOKEN_PREFIX = "st_"  # noqa: S105 - the public prefix of a session token


def cookie_of(scope: Scope, name: str) -> str | None:
    header = header_of(scope, b"cookie")
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of a request a page of this origin (or the user, typing) made.
_OWN_SITE: Final = frozenset({"same-origin", "none"})


def _cross_site_change(scope: Scope) -> bool:
    """A state-changing request the browser says another origin made (Sec-Fetch-Site): the
    session cookie does not authenticate it. SameSite=Strict keeps the cookie from other
    sites but not from a sibling subdomain (same site, another origin), whose form could
    POST as the user. A browser too old to send the header is left to SameSite."""
    if scope["method"] in _SAFE_METHODS:
        return False
    site = header_of(scope, b"sec-fetch-site")
    return site is not None and site.lower() not in _OWN_SITE


class Authenticate:
    """`Authorization: Bearer sk_...` (an API key) or a user's session (`Bearer st_...`, or
    the session cookie a browser holds) on every /v1 route but the `public` ones (signing in);
    the principal lands in scope state as `api_key` (the name predates users).

    Failed authentications are limited per client address (`failures`): each spends a token of
    the address's bucket, and a failure from an address whose bucket is empty is answered 429
    instead of 401. A valid key is always let through, whatever others sent from its address
    (behind NAT or an untrusted proxy one client must not lock out the rest): a key is 256
    random bits, so the limit is there against floods of bad keys, not against guessing."""

    def __init__(
        self,
        app: ASGIApp,
        tenancy: TenancyService,
        failures: Buckets,
        sessions: SessionAuthenticator | None = None,
        session_cookie: str | None = None,
        public: Collection[str] = (),
    ) -> None:
        self.app = app
        self.tenancy = tenancy
        self.failures = failures
        self.sessions = sessions
        self.session_cookie = session_cookie
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not scope["path"].startswith("/v1/")
            or scope["path"] in self.public
        ):
            await self.app(scope, receive, send)
            return
        header = header_of(scope, b"authorization") or ""
        scheme, _, secret = header.partition(" ")
        secret = secret.strip() if scheme.lower() == "bearer" else ""
        if not header and self.session_cookie is not None and not _cross_site_change(scope):
            secret = cookie_of(scope, self.session_cookie) or ""
        key: Principal | None = None
        if self.sessions is not None and secret.startswith(SESSION_TOKEN_PREFIX):
            key = await run_in_threadpool(self.sessions.authenticate, secret)
        elif secret:
            key = self.tenancy.cached(secret)
            if key is None:
                key = await run_in_threadpool(self.tenancy.authenticate, secret)
        if key is None:
            address = client_address(scope)
            verdict = await self.failures.take(address, RATE_LIMIT_UNITS_PER_TOKEN)
            if not verdict.allowed:
                await send_problem(
                    scope,
                    send,
                    "rate_limited",
                    "too many failed authentications from this address",
                    state_of(scope).get("request_id"),
                    [(b"retry-after", _retry_after(verdict.retry_after_ms))],
                )
                return
            await send_problem(
                scope,
                send,
                "unauthenticated",
                "send an API key as 'Authorization: Bearer sk_...', or a session token",
                state_of(scope).get("request_id"),
                [(b"www-authenticate", b'Bearer realm="strongroom"')],
            )
            return
        state_of(scope)["api_key"] = key
        await self.app(scope, receive, send)


class Charge:
    """A request's account with its API key's bucket, in scope state as `rate_limit`: what
    the RateLimit headers report, and more to spend once a route knows its work
    (`tenancy.access.spend`)."""

    def __init__(self, buckets: Buckets, name: str, verdict: Verdict) -> None:
        self.buckets = buckets
        self.name = name
        self.verdict = verdict

    async def spend(self, units: int) -> None:
        self.verdict = await self.buckets.take(self.name, units)
        if not self.verdict.allowed:
            raise RateLimited(self.detail())

    def detail(self) -> str:
        return (
            f"over this API key's rate limit ({self.buckets.per_s:g} tokens a second, "
            f"{self.buckets.burst} at once; an expensive request costs more than one)"
        )

    def headers(self) -> list[tuple[bytes, bytes]]:
        verdict = self.verdict
        headers = [
            (b"ratelimit-limit", str(self.buckets.burst).encode()),
            (
                b"ratelimit-remaining",
                str(verdict.remaining_units // RATE_LIMIT_UNITS_PER_TOKEN).encode(),
            ),
            (b"ratelimit-reset", str(self.buckets.seconds(verdict)).encode()),
        ]
        if not verdict.allowed:
            headers.append((b"retry-after", _retry_after(verdict.retry_after_ms)))
        return headers


class RateLimit:
    """A token bucket per API key, shared by every worker process (tenancy/ratelimit.py), with
    the IETF RateLimit headers (draft 7: RateLimit-Limit, -Remaining, -Reset, in tokens and
    seconds) on every /v1 response. A request costs `request_cost` up front; a route may spend
    more (a batch, by its size)."""

    def __init__(self, app: ASGIApp, buckets: Buckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key: Principal | None = state_of(scope).get("api_key") if scope["type"] == "http" else None
        if key is None:
            await self.app(scope, receive, send)
            return
        units = request_cost(scope["method"], scope["path"], scope.get("query_string", b""))
        charge = Charge(self.buckets, key.id, await self.buckets.take(key.id, units))
        if not charge.verdict.allowed:
            await send_problem(
                scope,
                send,
                "rate_limited",
                charge.detail(),
                state_of(scope).get("request_id"),
                charge.headers(),
            )
            return
        state_of(scope)["rate_limit"] = charge

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *charge.headers()]
            await send(message)

        await self.app(scope, receive, send_wrapper)


# Answers not stored for a key: a request refused for its input, its scope or its rate did
# nothing (a 400 is answered before anything is written), so a retry with the input fixed
# and the same key runs as a first request, as Stripe's keys do.
_NOT_REMEMBERED = frozenset({400, 403, 429})


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
        key: Principal | None = state_of(scope).get("api_key") if scope["type"] == "http" else None
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
                lambda: self.tenancy.begin_idempotent(
                    tenant_id, idem, self.tenancy.fingerprint("POST", path, body)
                )
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
        if status[0] in _NOT_REMEMBERED and not outcome.resumed:
            # Refused before doing anything: forgotten, so the retry (after Retry-After, with
            # the right key) runs as a first request, and a read key stores nothing.
            await run_in_threadpool(self.tenancy.abandon_idempotent, tenant_id, idem, owner)
        elif status[0] >= 500 or status[0] in _NOT_REMEMBERED:
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
            # A route whose answer holds a data subject's (masked) personal data named the
            # subject (core.idempotency.concerns): its erasure replaces this answer.
            await run_in_threadpool(
                self.tenancy.finish_idempotent,
                tenant_id,
                idem,
                owner,
                status[0],
                b"".join(captured),
                subject_of(state_of(scope)),
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
