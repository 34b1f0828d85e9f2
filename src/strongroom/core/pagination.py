"""Page size checks shared by every listing."""

from __future__ import annotations

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import PAGE_SIZE_MAX


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {PAGE_SIZE_MAX}",
            param="limit",
            code="invalid_limit",
        )
    return limit
