"""HTTP routes of the card vault. Another tenant's card is a 404, as one that does not exist.

Nothing a route answers, logs or stores carries a card number, a security code or a holder's
name, except the reveal's answer itself: a GET (so no Idempotency-Key record ever stores it),
under the `vault:reveal` scope, which `admin` does not imply, answered only once its audit leaf
is committed.

A card's `fingerprint` (the same for the same number) is shown only to a principal holding
`vault:reveal` by name, who may reveal the number anyway: to any other, a key that may tokenize
would find a stored number from its BIN and last four (shown) by tokenizing each Luhn-valid
candidate and comparing fingerprints, with no reveal and no audit leaf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from strongroom.core import clock
from strongroom.core.idempotency import RANDOM_IDS, Minter, request_of
from strongroom.core.limits import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from strongroom.http.errors import ERROR_RESPONSES
from strongroom.http.openapi import error_codes
from strongroom.http.pagination import list_body
from strongroom.http.params import IdPath, OptionalIdQuery
from strongroom.security.vault.committer import GroupCommit
from strongroom.security.vault.errors import VAULT_INPUT_ERRORS
from strongroom.security.vault.model import check_card
from strongroom.security.vault.schemas import (
    CardCreate,
    CardDeleted,
    CardList,
    CardNumberOut,
    CardOut,
)
from strongroom.security.vault.service import (
    CARD_REVEALED,
    FINGERPRINT_PATTERN,
    AuditNote,
    VaultService,
    VaultWrite,
)
from strongroom.tenancy.access import authorize, require_scope, require_step_up, requires
from strongroom.tenancy.model import Principal, Scope


@dataclass(frozen=True)
class VaultCtx:
    key: Principal
    vault: VaultService
    committer: GroupCommit[VaultWrite]
    ids: Minter = RANDOM_IDS  # derived from the request's Idempotency-Key, if any
    resumed: bool = False  # an earlier attempt of this idempotent request ran


async def context(request: Request) -> VaultCtx:
    """The principal is let in on the route's declared scopes (tenancy.access.requires)
    before its body is read (a card number in a refused request is never parsed)."""
    state = request.app.state
    key: Principal = request.state.api_key
    authorize(request.scope, key)
    idem = request_of(request.scope.get("state", {}))
    if idem is None:
        return VaultCtx(key, state.vault, state.vault_committer)
    return VaultCtx(key, state.vault, state.vault_committer, idem, idem.resumed)


Ctx = Annotated[VaultCtx, Depends(context)]


def shown(card: dict[str, Any], key: Principal) -> dict[str, Any]:
    """A card's answer for `key`: its `fingerprint` null unless the key holds `vault:reveal`
    by name (the same-card signal is an oracle on the number for whoever may tokenize)."""
    if key.allows(Scope.VAULT_REVEAL):
        return card
    return {**card, "fingerprint": None}


Limit = Annotated[int, Query(ge=1, le=PAGE_SIZE_MAX)]
Fingerprint = Annotated[
    str | None,
    Query(
        min_length=22,
        max_length=22,
        pattern=FINGERPRINT_PATTERN,
        description="only the tokens of the card with this fingerprint; needs `vault:reveal` "
        "(403 `insufficient_scope` without it)",
    ),
]

router = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)


@router.post(
    "/cards",
    status_code=201,
    response_model=CardOut,
    tags=["cards"],
    openapi_extra=error_codes(VAULT_INPUT_ERRORS, "overloaded") | requires(Scope.CARDS_WRITE),
)
async def create_card(body: CardCreate, ctx: Ctx) -> dict[str, Any]:
    """Tokenize a card: a new token `card_...` each time, even for a card tokenized before
    (its `fingerprint` is the same: list the tokens of a fingerprint to find them; it is
    shown only to a key holding `vault:reveal`, null otherwise). The security code, when
    sent, is checked and forgotten; it is never stored."""
    today = clock.to_datetime(clock.now_us())
    card = check_card(
        body.number,
        body.exp_month,
        body.exp_year,
        body.holder_name,
        body.cvc,
        year=today.year,
        month=today.month,
    )
    card_id = ctx.ids.new_id("card")
    if ctx.resumed:
        # An earlier attempt of this request may have committed this very token.
        found = await run_in_threadpool(ctx.vault.find, ctx.key.tenant_id, card_id)
        if found is not None:
            return shown(found.to_dict(), ctx.key)
    new = ctx.vault.seal(ctx.key.tenant_id, ctx.key.actor, card, card_id)
    del card  # the number in clear goes no further than this request
    await ctx.committer.submit_async(new)
    return shown(new.card.to_dict(), ctx.key)


@router.get(
    "/cards",
    response_model=CardList,
    tags=["cards"],
    openapi_extra=error_codes() | requires(Scope.CARDS_READ),
)
async def list_cards(
    ctx: Ctx,
    fingerprint: Fingerprint = None,
    limit: Limit = PAGE_SIZE_DEFAULT,
    starting_after: OptionalIdQuery = None,
) -> dict[str, Any]:
    """The tenant's tokens, newest first, masked; `fingerprint` lists one card's tokens and
    needs `vault:reveal` (403 `insufficient_scope` without it: it says whether a number was
    tokenized). Fingerprints are shown only to a key holding `vault:reveal`."""
    if fingerprint is not None:
        require_scope(ctx.key, Scope.VAULT_REVEAL)
    page = await run_in_threadpool(
        lambda: ctx.vault.list(
            ctx.key.tenant_id, fingerprint=fingerprint, starting_after=starting_after, limit=limit
        )
    )
    return list_body([shown(c.to_dict(), ctx.key) for c in page.data], page.has_more)


@router.get(
    "/cards/{card_id}",
    response_model=CardOut,
    tags=["cards"],
    openapi_extra=error_codes("not_found") | requires(Scope.CARDS_READ),
)
async def get_card(card_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The card, masked: its brand, BIN, last four, expiry and, for a key holding
    `vault:reveal`, its fingerprint (null otherwise)."""
    card = await run_in_threadpool(ctx.vault.get, ctx.key.tenant_id, card_id)
    return shown(card.to_dict(), ctx.key)


@router.get(
    "/cards/{card_id}/number",
    response_model=CardNumberOut,
    tags=["cards"],
    operation_id="getCardNumber",
    openapi_extra=error_codes(
        "not_found", "data_erased", "key_unavailable", "overloaded", "database_busy"
    )
    | requires(Scope.VAULT_REVEAL),
)
async def reveal_card_number(card_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """The card's number and holder in clear (detokenization). Needs the `vault:reveal`
    scope, which `admin` does not imply, and a user steps up first; each reveal is a
    `card.revealed` leaf of the tenant's audit log, naming the principal and the token,
    committed before the number is sent."""
    require_step_up(ctx.key, Scope.VAULT_REVEAL)
    revealed = await run_in_threadpool(ctx.vault.open, ctx.key.tenant_id, card_id)
    await ctx.committer.submit_async(
        AuditNote(CARD_REVEALED, ctx.key.tenant_id, ctx.key.actor, card_id)
    )
    card = revealed.card
    return {
        "id": card.id,
        "object": "card_number",
        "number": revealed.number,
        "holder_name": revealed.holder_name,
        "brand": card.brand.value,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }


@router.delete(
    "/cards/{card_id}",
    response_model=CardDeleted,
    tags=["cards"],
    openapi_extra=error_codes("not_found") | requires(Scope.CARDS_WRITE),
)
async def delete_card(card_id: IdPath, ctx: Ctx) -> dict[str, Any]:
    """Delete the card for good: its row goes and its data key is shredded, so no copy of
    its sealed number (a backup, the write-ahead log) opens again."""
    await run_in_threadpool(ctx.vault.delete, ctx.key.tenant_id, card_id, ctx.key.actor)
    return {"id": card_id, "object": "card", "deleted": True}
