"""`GET /v1/compliance/report` (compliance:read): the latest stored report of the controls, as
the caller's tenant sees it (its own findings and the deployment's; another tenant's are
neither shown nor counted). It reads one stored row: the controls run in `strongroom compliance
check` and in the scheduled job, never per request. 404 `not_found` before the first run."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from strongroom.compliance.controls.service import ControlsService
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.tenancy.access import authorize, requires
from strongroom.tenancy.model import Principal, Scope

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.get(
    "/compliance/report",
    tags=["compliance"],
    openapi_extra=error_codes("not_found") | requires(Scope.COMPLIANCE_READ),
)
async def get_compliance_report(request: Request) -> dict[str, Any]:
    """The latest report: its id, outcome, times, and per control the outcome, a summary, what
    was examined and the findings (evidence: ids, table and column names, masked numbers)."""
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    controls: ControlsService = request.app.state.compliance_controls
    return await run_in_threadpool(lambda: controls.latest_for(key.tenant_id))
