"""The HTTP layer's app factory. It knows no domain: `runtime.create_app` hands it the
routers, the webhooks they send, the domains' middleware, the error catalogue, the lifespan and
the readiness checks. It adds RFC 9457 error handlers answering from that catalogue, the
request-context and body-limit middleware (outermost), /healthz, /readyz, /metrics, an OpenAPI
document true to the wire (http.openapi) and its interactive docs at /docs (Swagger UI) and
/redoc, whose scripts the app serves itself: a deployment without Internet access shows them
too."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from strongroom.core.errors import ErrorCatalogue, StrongroomError
from strongroom.http import errors, openapi
from strongroom.http.middleware import BodyLimit, RequestContext
from strongroom.http.routing import PrefixRoutes, exact_routes

log = logging.getLogger("strongroom.http")

# The interactive docs, and where the app serves their scripts (fastapi-offline ships them).
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
DOCS_ASSETS_URL = "/docs/assets"

# (a pure ASGI middleware class, its keyword arguments)
Middleware = tuple[Callable[..., ASGIApp], dict[str, Any]]


def build_api(
    *,
    title: str,
    version: str,
    summary: str,
    catalogue: ErrorCatalogue,
    routers: Sequence[APIRouter],
    middleware: Sequence[Middleware],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]],
    readiness: Callable[[Request], Awaitable[dict[str, str]]],
    metrics: Callable[[], tuple[bytes, str]],
    observe_request: Callable[[str, str, int, float], None],
    metrics_token: str | None = None,
    webhooks: Sequence[APIRouter] = (),
    readiness_details: Callable[[Request], Awaitable[dict[str, Any]]] | None = None,
    gate_codes: Sequence[str] = (),
    separate_apis: Mapping[str, errors.RefusalRenderer] | None = None,
    form_paths: Sequence[str] = (),
) -> FastAPI:
    """`middleware` runs innermost first, inside the body limit and the request context;
    `readiness(request)` answers each check's state ("ok" or why not), and
    `readiness_details(request)` more for /readyz's body (the background jobs); `metrics()` the
    exposition body and its media type, to a scraper sending `Bearer <metrics_token>` when
    one is set. `webhooks` declare the requests the server sends (for the document only).
    `separate_apis`: path prefix -> renderer of the APIs served beside /v1 with their own
    error format (errors.RefusalRenderer): the HTTP layer's refusals on their paths are theirs
    to render. `form_paths`: routes whose body is a form, not JSON (OAuth 2.0's endpoints)."""
    for code in ("invalid_request", "invalid_json", "not_found", "internal_error"):
        assert code in catalogue, f"the catalogue lacks the HTTP layer's {code}"
    app = FastAPIOffline(
        title=title,
        version=version,
        summary=summary,
        lifespan=lifespan,
        docs_url=DOCS_URL,
        redoc_url=REDOC_URL,
        static_url=DOCS_ASSETS_URL,
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.errors = catalogue
    app.state.gate_codes = tuple(gate_codes)
    app.state.separate_apis = dict(separate_apis or {})
    app.add_exception_handler(StrongroomError, errors.strongroom_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, errors.http_error_handler)
    app.add_exception_handler(UnicodeEncodeError, errors.unencodable_text_handler)
    app.add_exception_handler(Exception, errors.internal_error_handler)
    # A separate API's routers are not included: their routes go first, behind their prefix
    # (routing.PrefixRoutes), so that neither API pays a match against the other's routes.
    separate_routes: dict[str, list[Any]] = {}
    for router in routers:
        prefix = next((p for p in app.state.separate_apis if router.prefix.startswith(p)), None)
        if prefix is None:
            app.include_router(router)
        else:
            separate_routes.setdefault(prefix, []).extend(router.routes)
    for prefix, routes in separate_routes.items():
        app.router.routes.insert(0, PrefixRoutes(prefix, routes))
    for router in webhooks:
        app.webhooks.include_router(router, generate_unique_id_function=openapi.operation_id)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        checks = await readiness(request)
        ready = all(v == "ok" for v in checks.values())
        details = await readiness_details(request) if readiness_details is not None else {}
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks, **details},
            status_code=200 if ready else 503,
        )

    expected = f"Bearer {metrics_token}".encode() if metrics_token else None

    @app.get("/metrics", include_in_schema=False)
    async def metrics_endpoint(request: Request) -> Response:
        if expected is not None:
            sent = request.headers.get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(sent, expected):  # in constant time
                return errors.problem(
                    request,
                    "metrics_token_required",
                    "send the metrics token as 'Authorization: Bearer ...'",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        body, media_type = metrics()
        return Response(body, media_type=media_type)

    # Added innermost first; RequestContext, outermost, sees every answer, the others' too.
    for cls, options in middleware:
        app.add_middleware(cls, **options)
    app.add_middleware(BodyLimit, form_paths=form_paths)
    app.add_middleware(RequestContext, observe=observe_request)
    # Last, once every route is in: the parameterless routes found by their path first
    # (routing.ExactRoutes), each only where no route before it would take its requests.
    app.router.routes.insert(0, exact_routes(app.router.routes))
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, completed by http.openapi.finish; built once."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
        webhooks=app.webhooks.routes,
    )
    app.openapi_schema = openapi.finish(document, app.state.errors, app.state.gate_codes)
    return app.openapi_schema
