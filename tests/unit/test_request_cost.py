"""A request's rate-limit cost is read from its query as the route reads it."""

from __future__ import annotations

import pytest

from strongroom.tenancy.ratelimit import request_cost


@pytest.mark.parametrize(
    "query",
    [b"limit=100", b"li%6Dit=100", b"limit=%2B100", b"limit=1&limit=100", b"a=1&limit=100"],
)
def test_an_encoded_limit_costs_what_the_page_holds(query: bytes) -> None:
    assert request_cost("GET", "/v1/transfers", query) == request_cost(
        "GET", "/v1/transfers", b"limit=100"
    )
    assert request_cost("GET", "/v1/transfers", query) > request_cost("GET", "/v1/transfers", b"")


def test_a_bad_limit_costs_the_default_page() -> None:
    assert request_cost("GET", "/v1/transfers", b"limit=abc") == request_cost(
        "GET", "/v1/transfers", b""
    )
