"""The HTTP layer's app factory. It knows no domain: `runtime.create_app` hands it the
routers, the domains' middleware, the error catalogue, the lifespan and the readiness checks.
It adds RFC 9457 error handlers answering from that catalogue, the request-context and
body-limit middleware (outermost), /healthz, /readyz, /metrics and an OpenAPI document true to
the wire."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from strongroom.core.errors import ErrorCatalogue, StrongroomError
from strongroom.http import errors
from strongroom.http.middleware import BodyLimit, RequestContext

log = logging.getLogger("strongroom.http")

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
) -> FastAPI:
    """`middleware` runs innermost first, inside the body limit and the request context;
    `readiness(request)` answers each check's state ("ok" or why not); `metrics()` the
    exposition body and its media type, to a scraper sending `Bearer <metrics_token>` when
    one is set."""
    for code in ("invalid_request", "invalid_json", "not_found", "internal_error"):
        assert code in catalogue, f"the catalogue lacks the HTTP layer's {code}"
    app = FastAPI(
        title=title,
        version=version,
        summary=summary,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.errors = catalogue
    app.add_exception_handler(StrongroomError, errors.strongroom_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, errors.http_error_handler)
    app.add_exception_handler(UnicodeEncodeError, errors.unencodable_text_handler)
    app.add_exception_handler(Exception, errors.internal_error_handler)
    for router in routers:
        app.include_router(router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> Response:
        checks = await readiness(request)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks},
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
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestContext, observe=observe_request)
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, made true to the wire: error bodies are application/problem+json,
    and every /v1 operation needs a bearer API key."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    document.setdefault("components", {})["securitySchemes"] = {
        "apiKey": {"type": "http", "scheme": "bearer", "description": "sk_... (an API key)"}
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            if path.startswith("/v1/"):
                operation["security"] = [{"apiKey": []}]
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[errors.PROBLEM_JSON] = content.pop("application/json")
    app.openapi_schema = document
    return document
