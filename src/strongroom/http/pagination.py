"""The shape of every list answer: {"object": "list", "data": [...], "has_more": ...}, and
for listings that may stop short of `limit` (a scan budget), "next_cursor"."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def list_body(
    data: Iterable[dict[str, Any]], has_more: bool, next_cursor: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"object": "list", "data": list(data), "has_more": has_more}
    if next_cursor is not None:
        body["next_cursor"] = next_cursor
    return body
