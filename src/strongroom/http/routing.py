"""Routing for the hot paths.

A route class for the hot POST routes: their common request skips FastAPI's generic body
handling and dependency solving, which cost more than the rest of a single transfer's request
in the HTTP layer (measured with cProfile on the ASGI app).

The fast path is taken only where it cannot answer differently from the general one: a body
declared `application/json`, ASCII without a backslash (no escapes, so every string is the same
whichever parser reads it), that pydantic validates straight from the bytes. Anything else
(invalid JSON, a field refused, another media type, an escape) goes to FastAPI's own handler,
which parses the body again and answers exactly as before, error bodies included.

And PrefixRoutes: a separate API's routes, tried first but only for paths under its prefix;
ExactRoutes: the routes without path parameters, found by their path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
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


class ExactRoutes(BaseRoute):
    """The app's routes whose path has no parameter, found by one dict lookup of the request's
    path, tried before every other route.

    Starlette tries an app's routes in order, and FastAPI (0.165) tries each route of each
    included router in turn: measured on this app, finding `POST /v1/transfers` cost 37 us,
    `POST /oauth2/token` 460 us and `GET /readyz` 380 us a request (the last two come after
    every /v1 route). A route is taken here only when no route before it, in the order the
    app would try them, matches its path with one of its methods (`exact_routes` checks with
    the routes' own matching), so each request goes to the route it went to before. A path
    known here whose method is not is left to the routes in order (their 405)."""

    def __init__(self, by_path: Mapping[str, Sequence[BaseRoute]]) -> None:
        self.by_path = {path: list(routes) for path, routes in by_path.items()}

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        candidates = self.by_path.get(scope["path"])
        if candidates is None:
            return Match.NONE, {}
        for route in candidates:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return match, {**child, CHOSEN_ROUTE: route}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope[CHOSEN_ROUTE]
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)  # the routes in order answer it


def _router_routes(entry: BaseRoute) -> Sequence[BaseRoute] | None:
    """The routes of an included router, in its order (FastAPI 0.165 keeps an included router
    as one entry); None for anything else."""
    router = getattr(entry, "original_router", None)
    routes = getattr(router, "routes", None)
    return list(routes) if isinstance(routes, list) else None


def _shadowed(path: str, methods: Iterable[str], earlier: Sequence[BaseRoute]) -> bool:
    """Whether a route before would take a request for `path` with one of `methods`."""
    for method in methods:
        scope: Scope = {"type": "http", "path": path, "root_path": "", "method": method}
        for route in earlier:
            if route.matches(dict(scope))[0] is Match.FULL:
                return True
    return False


def exact_routes(routes: Sequence[BaseRoute]) -> ExactRoutes:
    """An ExactRoutes over `routes` (an app's, in order): each parameterless APIRoute, directly
    in the list or in an included router, that nothing before it would take."""
    by_path: dict[str, list[BaseRoute]] = {}
    earlier: list[BaseRoute] = []
    for entry in routes:
        inner = _router_routes(entry)
        for route in [entry] if inner is None else inner:
            if (
                isinstance(route, APIRoute)
                and not route.param_convertors
                and not _shadowed(route.path, route.methods or (), earlier)
            ):
                by_path.setdefault(route.path, []).append(route)
            if inner is not None:
                earlier.append(route)
        if inner is None:
            earlier.append(entry)
    return ExactRoutes(by_path)
