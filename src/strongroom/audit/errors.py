"""The error codes of the audit log (see core.errors)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import ErrorCode, ServiceUnavailable

AUDIT_ERRORS: Final = (
    ErrorCode(
        "checkpoint_pending",
        503,
        "No published checkpoint holds this yet: retry after Retry-After seconds",
    ),
)


class CheckpointPending(ServiceUnavailable):
    """A read needs a checkpoint that holds a leaf and the latest published one does not
    (reads never sign one; `serve` publishes at an interval). `published_at_us` is when the
    latest one was published (None: none yet), from which the next one can be told."""

    code = "checkpoint_pending"

    def __init__(self, detail: str, *, retry_after_s: int, published_at_us: int | None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.published_at_us = published_at_us
