"""Path and query parameters with their bounds (core.limits), for every domain's routes: the
OpenAPI document states each bound, and a longer value is refused (400, `invalid_id` for an
id) before a handler runs, so no error echoes an unbounded input."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from strongroom.core.clock import Timestamp
from strongroom.core.limits import ID_LENGTH_MAX, TIMESTAMP_LENGTH_MAX

IdPath = Annotated[str, Path(min_length=1, max_length=ID_LENGTH_MAX)]
IdQuery = Annotated[str, Query(min_length=1, max_length=ID_LENGTH_MAX)]
OptionalIdQuery = Annotated[str | None, Query(min_length=1, max_length=ID_LENGTH_MAX)]
TimeQuery = Annotated[
    Timestamp | None, Query(max_length=TIMESTAMP_LENGTH_MAX, description="an RFC 3339 time")
]
