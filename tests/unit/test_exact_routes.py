"""routing.ExactRoutes: parameterless routes found by their path, each only where no route
before it would take its requests, so that every request reaches the route it reached
before."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter, FastAPI

from strongroom.http.routing import ExactRoutes, exact_routes


def _app(*, indexed: bool = True) -> FastAPI:
    app = FastAPI()
    first = APIRouter()

    @first.get("/things/{thing_id}")
    async def one_thing(thing_id: str) -> dict[str, str]:
        return {"route": "param", "id": thing_id}

    @first.post("/things")
    async def make_thing() -> dict[str, str]:
        return {"route": "make"}

    second = APIRouter()

    @second.get("/things/special")  # shadowed: the parameter route before takes it
    async def special() -> dict[str, str]:
        return {"route": "special"}

    @second.get("/other")
    async def other() -> dict[str, str]:
        return {"route": "other"}

    app.include_router(first)
    app.include_router(second)
    if indexed:
        app.router.routes.insert(0, exact_routes(app.router.routes))
    return app


def test_only_unshadowed_parameterless_routes_are_indexed() -> None:
    app = _app()
    index = app.router.routes[0]
    assert isinstance(index, ExactRoutes)
    assert sorted(index.by_path) == ["/other", "/things"]


REQUESTS = [
    ("GET", "/things/special"),
    ("GET", "/things/7"),
    ("POST", "/things"),
    ("GET", "/other"),
    ("HEAD", "/other"),
    ("GET", "/things"),  # a known path, another method
    ("DELETE", "/other"),
    ("GET", "/nowhere"),
]


def _answers(app: FastAPI) -> list[tuple[int, bytes]]:
    async def calls() -> list[tuple[int, bytes]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                ((r := await client.request(method, path)).status_code, r.content)
                for method, path in REQUESTS
            ]

    return asyncio.run(calls())


def test_every_request_reaches_the_route_it_reached_before() -> None:
    indexed = _answers(_app())
    assert indexed == _answers(_app(indexed=False))
    assert [status for status, _ in indexed] == [200, 200, 200, 200, 405, 405, 405, 404]
    assert indexed[0][1] == b'{"route":"param","id":"special"}'  # not the shadowed route
    assert indexed[2][1] == b'{"route":"make"}'
