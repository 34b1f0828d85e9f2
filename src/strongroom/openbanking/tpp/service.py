"""The TPP client registry: the deployment operator registers third-party providers, rotates
their keys, disables and enables them; the authorization server looks up an active client and
its keys (`get_active`, `active_keys`).

Clients are deployment-wide (one authorization server per deployment), so every change is a
leaf of the system tenant's audit log (its id from `log_id`), written in the change's
transaction. A change that changes nothing (disabling a disabled client, rotating to the keys
already registered) writes nothing. No event is emitted: the system tenant holds no webhook
endpoint (an operator's key holds tenants:admin alone), so none could be delivered."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final

from joserfc.jwk import KeySet
from sqlalchemy.engine import Engine

from strongroom.audit.hooks import AuditRecorder
from strongroom.core import clock, ids
from strongroom.core.errors import NotFound
from strongroom.core.pagination import check_limit
from strongroom.db.uow import UnitOfWork
from strongroom.openbanking.errors import InvalidClient
from strongroom.openbanking.ports import RegisteredClient
from strongroom.openbanking.tpp import store
from strongroom.openbanking.tpp.errors import ClientDisabled
from strongroom.openbanking.tpp.model import (
    CheckedJwks,
    TppClient,
    TppStatus,
    check_jwks,
    registration,
)

CREATED: Final = "openbanking_client.created"
KEYS_ROTATED: Final = "openbanking_client.keys_rotated"
DISABLED: Final = "openbanking_client.disabled"
ENABLED: Final = "openbanking_client.enabled"


class TppService:
    def __init__(
        self,
        engine: Engine,
        *,
        audit: AuditRecorder | None = None,
        log_id: Callable[[], str] | None = None,
    ) -> None:
        """`audit` records every change in the log `log_id()` names (the system tenant's:
        runtime passes TenancyService.system_tenant's id)."""
        assert (audit is None) == (log_id is None), "an audit recorder needs the log's id"
        self.engine = engine
        self._audit = audit
        self._log_id = log_id

    def _log(self) -> str | None:
        """The log's id, found before a change's transaction opens: finding it may write (the
        system tenant is made on first use), and SQLite has one writer at a time."""
        return None if self._log_id is None else self._log_id()

    def _record(
        self, uow: UnitOfWork, log_id: str | None, actor: str, kind: str, ref: str, data: Any
    ) -> None:
        if self._audit is not None and log_id is not None:
            self._audit.record_all(uow, log_id, actor, [(kind, ref, data)])

    # -- the operator's ------------------------------------------------------------------

    def register(
        self,
        *,
        name: object,
        redirect_uris: object,
        jwks: object,
        actor: str,
        scopes: object = None,
        software_id: object = None,
        id: str | None = None,
    ) -> TppClient:
        """A new active client, every field checked first (model.registration): a refusal
        writes nothing. With `id` (an idempotent request's, core.idempotency), the client that
        already has it is the answer: the request ran before."""
        if id is not None:
            with contextlib.suppress(NotFound):
                return self.get(id)
        checked = registration(name, redirect_uris, jwks, scopes=scopes, software_id=software_id)
        now = clock.now_us()
        client = TppClient(
            id=id or ids.new_id("tpp"),
            name=checked.name,
            software_id=checked.software_id,
            jwks=checked.jwks.text,
            redirect_uris=checked.redirect_uris,
            scopes=checked.scopes,
            status=TppStatus.ACTIVE,
            created_at=now,
            created_by=actor,
            updated_at=now,
        )
        log_id = self._log()
        with UnitOfWork(self.engine) as uow:
            store.insert_client(uow, client)
            data = {
                "client_id": client.id,
                "name": client.name,
                "software_id": client.software_id,
                "redirect_uris": list(client.redirect_uris),
                "scopes": sorted(s.value for s in client.scopes),
                **_keys_data(checked.jwks),
            }
            self._record(uow, log_id, actor, CREATED, client.id, data)
            uow.commit()
        return client

    def rotate_keys(self, client_id: str, jwks: object, *, actor: str) -> TppClient:
        """Replace the client's JWK set (checked first: a refusal writes nothing). Keys in the
        old set and not in the new one stop verifying at once."""
        checked = check_jwks(jwks)
        log_id = self._log()
        with UnitOfWork(self.engine) as uow:
            current = store.get_client(uow, client_id)
            if current is None:
                raise _not_found(client_id)
            if current.jwks == checked.text:
                return current
            store.set_jwks(uow, client_id, checked.text, clock.now_us())
            self._record(uow, log_id, actor, KEYS_ROTATED, client_id, {
                "client_id": client_id, **_keys_data(checked)
            })  # fmt: skip
            client = store.get_client(uow, client_id)
            uow.commit()
        assert client is not None
        return client

    def set_enabled(self, client_id: str, enabled: bool, *, actor: str) -> TppClient:
        """Enable or disable the client. A disabled client is refused by the authorization
        server (`get_active`); its registration is kept."""
        status = TppStatus.ACTIVE if enabled else TppStatus.DISABLED
        log_id = self._log()
        with UnitOfWork(self.engine) as uow:
            changed = store.set_status(uow, client_id, status, clock.now_us())
            if changed:
                kind = ENABLED if enabled else DISABLED
                self._record(uow, log_id, actor, kind, client_id, {"client_id": client_id})
            client = store.get_client(uow, client_id)
            if client is None:
                raise _not_found(client_id)
            uow.commit()
        return client

    def get(self, client_id: str) -> TppClient:
        with UnitOfWork(self.engine, write=False) as uow:
            client = store.get_client(uow, client_id)
        if client is None:
            raise _not_found(client_id)
        return client

    def list_clients(
        self, *, starting_after: str | None, limit: int
    ) -> tuple[list[TppClient], bool]:
        """A page of clients by id, and whether more follow."""
        check_limit(limit)
        with UnitOfWork(self.engine, write=False) as uow:
            rows = store.list_clients(uow, starting_after, limit + 1)
        return rows[:limit], len(rows) > limit

    # -- the authorization server's ------------------------------------------------------

    def get_active(self, client_id: str) -> TppClient:
        """The client, if it is registered and active: 404 not_found otherwise, 403
        openbanking_client_disabled when it is disabled."""
        client = self.get(client_id)
        if not client.active:
            raise ClientDisabled(f"the client {client_id} is disabled", param="client_id")
        return client

    def active_keys(self, client_id: str) -> tuple[TppClient, KeySet]:
        """The active client and its public keys, parsed (to verify its signed requests)."""
        client = self.get_active(client_id)
        return client, client.key_set()

    def lookup(self, client_id: str) -> RegisteredClient:
        """The authorization server's port (openbanking.ports.ClientLookup): an unknown or
        disabled client is 401 invalid_client, the same for both, as OAuth answers a client
        that cannot authenticate."""
        try:
            client = self.get_active(client_id)
        except (NotFound, ClientDisabled):
            raise InvalidClient("the client is unknown or disabled", param="client_id") from None
        return RegisteredClient(
            id=client.id,
            name=client.name,
            redirect_uris=client.redirect_uris,
            scopes=frozenset(s.value for s in client.scopes),
            jwks=client.client_jwks(),
        )


def _keys_data(jwks: CheckedJwks) -> dict[str, list[str]]:
    """What a leaf records of a JWK set: the keys' ids and RFC 7638 thumbprints."""
    return {"kids": list(jwks.kids), "thumbprints": list(jwks.thumbprints)}


def _not_found(client_id: str) -> NotFound:
    return NotFound(f"no open banking client {client_id}", param="client_id")
