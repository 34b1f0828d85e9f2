"""What other domains see of the audit log: a way to add leaves to a tenant's log inside
their own transaction. A protocol, so that they depend on no more than this."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from strongroom.db.uow import UnitOfWork


class AuditRecorder(Protocol):
    def record_all(
        self,
        uow: UnitOfWork,
        log_id: str,
        actor: str,
        items: Sequence[tuple[str, str | None, dict[str, Any]]],
    ) -> None:
        """(type, ref, data) leaves of log `log_id` (a tenant id), written through `uow`.
        `data` holds no secret and no personal data: the log proves it forever."""
