"""The shape of every list answer: {"object": "list", "data": [...], "has_more": ...}."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def list_body(data: Iterable[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "data": list(data), "has_more": has_more}
