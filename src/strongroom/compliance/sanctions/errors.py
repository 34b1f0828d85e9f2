"""The error codes of sanctions screening (core.errors: the composition root collects them).
`sanctions_blocked` and `sanctions_unavailable` are ledger refusals the payee gate answers
(422, as the risk gate's)."""

from __future__ import annotations

from typing import Final

from strongroom.core.errors import Conflict, ErrorCode, InvalidRequest

SANCTIONS_BLOCKED: Final = "sanctions_blocked"
SANCTIONS_UNAVAILABLE: Final = "sanctions_unavailable"
LISTS_NOT_LOADED: Final = "sanctions_lists_not_loaded"
DUPLICATES_NAMED_MAX: Final = 10  # the duplicate entry ids a refused load names
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


class DuplicateEntry(InvalidRequest):
    """A list file names one entry id more than once: refused, nothing stored. Which of the
    two is the list's is not ours to guess (merging them would make up an entry), and a list
    published that way is one to report to its publisher. `invalid_request` (400) in the
    catalogue: only `strongroom sanctions load` meets it, and it exits non-zero naming the
    ids."""

    def __init__(self, source: str, entry_ids: list[str]) -> None:
        shown = ", ".join(entry_ids[:DUPLICATES_NAMED_MAX])
        more = len(entry_ids) - DUPLICATES_NAMED_MAX
        super().__init__(
            f"{source}: entry id(s) {shown}{f' and {more} more' if more > 0 else ''} appear more "
            "than once in the list: nothing was loaded",
            param="path",
        )
        self.entry_ids = entry_ids


class LoadRaced(Conflict):
    """A list load that kept losing its version number to concurrent loads of the same list
    (each is retried: the same content found stored answers `unchanged`). Nothing stored."""


class SanctionsConfirmed(Conflict):
    """An account created for, or unfrozen of, a customer whose sanctions subject is
    `confirmed` (compliance/sanctions/owners.py, the ledger's owner guard): nothing written."""

    code = SANCTIONS_CONFIRMED
