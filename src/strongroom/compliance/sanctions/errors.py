"""The error codes of sanctions screening (core.errors: the composition root collects them).
`sanctions_blocked` and `sanctions_unavailable` are ledger refusals the payee gate answers
(422, as the risk gate's)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import Conflict, ErrorCode

SANCTIONS_BLOCKED: Final = "sanctions_blocked"
SANCTIONS_UNAVAILABLE: Final = "sanctions_unavailable"
LISTS_NOT_LOADED: Final = "sanctions_lists_not_loaded"
SANCTIONS_CONFIRMED: Final = "sanctions_confirmed"

SANCTIONS_GATE_ERRORS: Final = (
    ErrorCode(SANCTIONS_BLOCKED, 422, "The payee is a confirmed sanctions match"),
    ErrorCode(
        SANCTIONS_UNAVAILABLE,
        422,
        "Sanctions screening is unavailable and fails closed; retry later",
    ),
)
SANCTIONS_ERRORS: Final = (
    ErrorCode(
        LISTS_NOT_LOADED,
        409,
        "No sanctions list is loaded: nothing can be screened (`strongroom sanctions load`)",
    ),
    ErrorCode(
        SANCTIONS_CONFIRMED,
        409,
        "The account's customer is a confirmed sanctions match: no account of theirs may be "
        "opened or unfrozen",
    ),
)


class ListsNotLoaded(Conflict):
    """409, not 503: nothing transient, the deployment has no list until an operator loads one
    (and a 5xx would read as the server's fault)."""

    code = LISTS_NOT_LOADED


class SanctionsConfirmed(Conflict):
    """An account created for, or unfrozen of, a customer whose sanctions subject is
    `confirmed` (compliance/sanctions/owners.py, the ledger's owner guard): nothing written."""

    code = SANCTIONS_CONFIRMED
