"""A route class for the hot POST routes: their common request skips FastAPI's generic body
handling and dependency solving, which cost more than the rest of a single transfer's request
in the HTTP layer (measured with cProfile on the ASGI app).

The fast path is taken only where it cannot answer differently from the general one: a body
declared `application/json`, ASCII without a backslash (no escapes, so every string is the same
whichever parser reads it), that pydantic validates straight from the bytes. Anything else
(invalid JSON, a field refused, another media type, an escape) goes to FastAPI's own handler,
which parses the body again and answers exactly as before, error bodies included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

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
