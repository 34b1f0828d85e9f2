"""What every listing shares: the page size check and the opaque cursor (`cur_...`) that says
which way and from where a listing goes on (a listing whose filter has no index examines a
bounded range per request and goes on from where it stopped)."""

from __future__ import annotations

import base64
import binascii
from typing import Final

from strongroom.core.errors import InvalidRequest
from strongroom.core.limits import PAGE_SIZE_MAX

CURSOR_PREFIX: Final = "cur_"
OLDER, NEWER = "o", "n"  # on towards older items (a list's order) or back to newer ones
_POSITION_MAX: Final = 2**63 - 1


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_SIZE_MAX:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {PAGE_SIZE_MAX}",
            param="limit",
            code="invalid_limit",
        )
    return limit


def encode_cursor(kind: str, direction: str, position: int) -> str:
    """`kind`: one letter naming the listing, so a cursor of one is refused by another."""
    assert len(kind) == 1
    assert direction in (OLDER, NEWER)
    assert 0 <= position <= _POSITION_MAX
    raw = f"{kind}{direction}{position}".encode()
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> tuple[bool, int]:
    """(towards older items, position) of a cursor of that kind; invalid_cursor otherwise."""
    bad = InvalidRequest(
        "not a cursor of this listing: give next_cursor from its previous page",
        param="cursor",
        code="invalid_cursor",
    )
    if not cursor.startswith(CURSOR_PREFIX) or len(cursor) > 64:
        raise bad
    body = cursor[len(CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise bad from None
    if len(raw) < 3 or raw[0] != kind or raw[1] not in (OLDER, NEWER):
        raise bad
    digits = raw[2:]
    if not digits.isdigit() or not digits.isascii() or int(digits) > _POSITION_MAX:
        raise bad
    return raw[1] == OLDER, int(digits)
