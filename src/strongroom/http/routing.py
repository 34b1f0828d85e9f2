"""Routing for the hot paths.

A route class for the hot POST routes: their common request skips FastAPI's generic body
handling and dependency solving, which cost more than the rest of a single transfer's request
in the HTTP layer (measured with cProfile on the ASGI app).

The fast path is taken only where it cannot answer differently from the general one: a body
declared `application/json`, ASCII without a backslash (no escapes, so every string is the same
whichever parser reads it), that pydantic validates straight from the bytes. Anything else
(invalid JSON, a field refused, another media type, an escape) goes to FastAPI's own handler,
which parses the body again and answers exactly as before, error bodies included.

And PrefixRoutes: a separate API's routes, tried first but only for paths under its prefix."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import URLPath
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

ModelT = TypeVar("ModelT", bound=BaseModel)

# What the fast path answers with: the endpoint, given the request and its validated body.
FastCall = Callable[[Request, ModelT], Awaitable[Response]]


def json_body_route(model: type[ModelT], fast: FastCall[ModelT]) -> type[APIRoute]:
    """An APIRoute class whose requests, when their body is plain JSON that `model` accepts,
    are answered by `fast(request, body)`; `fast` must do what the endpoint does with the
    dependencies it declares (the route's OpenAPI operation is still the endpoint's)."""

    class JsonBodyRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            general = super().get_route_handler()

            async def handler(request: Request) -> Response:
                raw = await request.body()  # kept on the request: `general` reads it again
                if _plain_json(request, raw):
                    try:
                        body = model.model_validate_json(raw)
                    except ValidationError:
                        pass  # the general path answers with FastAPI's own error
                    else:
                        return await fast(request, body)
                return await general(request)

            return handler

    return JsonBodyRoute


def _plain_json(request: Request, raw: bytes) -> bool:
    """Declared application/json (as FastAPI reads the header), ASCII, no escapes. Python's
    json module and pydantic's parser agree on such a body: the same duplicate key wins, the
    same integers (both refuse over 4,300 digits), the same refusals of NaN and floats; they
    differ on escapes (a lone surrogate) and on bytes outside UTF-8, which this rules out."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media == "application/json" and raw.isascii() and b"\\" not in raw


# Where PrefixRoutes leaves the route it matched, for its `handle`.
CHOSEN_ROUTE: Final = "strongroom.route"


class PrefixRoutes(BaseRoute):
    """The routes of a separate API (`/ob/...`), tried only for a path under its `prefix`.

    The app's router tries its routes in order, and FastAPI tries every route of an included
    router whatever the router's prefix: a request for a route included last paid a match
    against every /v1 route first, about 0.7 ms on a 2-core machine (measured: a quarter of the
    server's CPU for an open banking read). Placed first, this costs any other request one
    `str.startswith`, and its own requests a match against its routes only. Its routes are
    FastAPI routes with their full paths (an APIRouter's own, not an included router's)."""

    def __init__(self, prefix: str, routes: Sequence[BaseRoute]) -> None:
        assert prefix.startswith("/"), prefix
        assert prefix.endswith("/"), prefix
        for route in routes:
            assert isinstance(route, APIRoute), f"not a route of its own: {route!r}"
            assert route.path.startswith(prefix), (route.path, prefix)
        self.prefix = prefix
        self.routes = list(routes)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefix):
            return Match.NONE, {}
        partial: Scope | None = None
        for route in self.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, CHOSEN_ROUTE: route}
            if match is Match.PARTIAL and partial is None:  # another method: a 405
                partial = {**child, CHOSEN_ROUTE: route}
        if partial is not None:
            return Match.PARTIAL, partial
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope[CHOSEN_ROUTE]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                continue
        raise NoMatchFound(name, path_params)
