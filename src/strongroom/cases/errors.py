"""The error codes of the case queue (see core.errors)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import Conflict, ErrorCode, StrongroomError

CASES_ERRORS: Final = (
    ErrorCode(
        "case_not_open",
        409,
        "The case was already decided or closed (or its transfer was posted or voided): "
        "nothing was written",
    ),
    ErrorCode(
        "case_transfer_refused",
        422,
        "The ledger refused to post or void the case's transfer (a gate, a limit): the case "
        "stays open",
    ),
    ErrorCode(
        "case_notes_full",
        400,
        "The case holds as many notes as it may (500): nothing was written",
    ),
)


class CaseNotOpen(Conflict):
    code = "case_not_open"


class CaseTransferRefused(StrongroomError):
    """The ledger refused the decision's post or void for a reason of its own (a gate's block,
    an overflow): the detail names the ledger's result code."""

    code = "case_transfer_refused"
    status = 422
